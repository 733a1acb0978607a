use super::*;

fn op(client: usize, call: Call, outcome: Outcome, invoked: u64, returned: u64) -> Operation {
    Operation {
        client,
        key: "k".to_owned(),
        call,
        outcome,
        invoked,
        returned,
    }
}
fn w(v: &str) -> Call {
    Call::Write(v.to_owned())
}
fn read(v: Option<&str>) -> Outcome {
    Outcome::Read(v.map(str::to_owned))
}
fn cas(e: &str, n: &str) -> Call {
    Call::Cas {
        expect: e.to_owned(),
        new: n.to_owned(),
    }
}
fn ok(h: &[Operation]) -> bool {
    check(h) == Verdict::Linearizable
}

#[test]
fn sequential_history_is_linearizable() {
    let h = [
        op(0, Call::Read, read(None), 0, 1),
        op(0, w("a"), Outcome::Ok, 2, 3),
        op(0, Call::Read, read(Some("a")), 4, 5),
        op(0, cas("a", "b"), Outcome::Ok, 6, 7),
        op(0, cas("a", "c"), Outcome::Failed, 8, 9),
        op(0, Call::Delete, Outcome::Ok, 10, 11),
        op(0, Call::Create("d".to_owned()), Outcome::Ok, 12, 13),
        op(0, Call::Create("e".to_owned()), Outcome::Failed, 14, 15),
        op(0, Call::Read, read(Some("d")), 16, 17),
    ];
    assert!(ok(&h));
}

#[test]
fn stale_read_after_a_completed_write_is_rejected() {
    let h = [
        op(0, w("a"), Outcome::Ok, 0, 1),
        op(0, w("b"), Outcome::Ok, 2, 3),
        op(1, Call::Read, read(Some("a")), 4, 5),
    ];
    assert!(matches!(check(&h), Verdict::NotLinearizable { .. }));
}

#[test]
fn concurrent_read_may_see_either_value() {
    for seen in ["a", "b"] {
        let h = [
            op(0, w("a"), Outcome::Ok, 0, 1),
            op(0, w("b"), Outcome::Ok, 2, 10),
            op(1, Call::Read, read(Some(seen)), 3, 4),
        ];
        assert!(ok(&h), "{seen}");
    }
}

#[test]
fn reads_must_not_go_back_in_time() {
    // While "b" is being written, one read sees b and a later read sees a again: not
    // linearizable even though both reads overlap the write.
    let h = [
        op(0, w("a"), Outcome::Ok, 0, 1),
        op(0, w("b"), Outcome::Ok, 2, 20),
        op(1, Call::Read, read(Some("b")), 3, 4),
        op(2, Call::Read, read(Some("a")), 5, 6),
    ];
    assert!(!ok(&h));
}

#[test]
fn two_successful_cas_on_the_same_value_are_rejected() {
    let h = [
        op(0, w("a"), Outcome::Ok, 0, 1),
        op(1, cas("a", "x"), Outcome::Ok, 2, 5),
        op(2, cas("a", "y"), Outcome::Ok, 2, 5),
    ];
    assert!(!ok(&h));
    let one_fails = [
        op(0, w("a"), Outcome::Ok, 0, 1),
        op(1, cas("a", "x"), Outcome::Ok, 2, 5),
        op(2, cas("a", "y"), Outcome::Failed, 2, 5),
    ];
    assert!(ok(&one_fails));
}

#[test]
fn lost_acknowledged_write_is_rejected() {
    let h = [
        op(0, w("a"), Outcome::Ok, 0, 1),
        op(1, Call::Read, read(None), 2, 3),
    ];
    assert!(!ok(&h));
}

#[test]
fn unknown_outcomes_may_or_may_not_take_effect() {
    let applied = [
        op(0, w("a"), Outcome::Unknown, 0, 0),
        op(1, Call::Read, read(Some("a")), 5, 6),
    ];
    assert!(ok(&applied));
    let not_applied = [
        op(0, w("a"), Outcome::Unknown, 0, 0),
        op(1, Call::Read, read(None), 5, 6),
        op(1, Call::Read, read(None), 7, 8),
    ];
    assert!(ok(&not_applied));
    // But it cannot take effect before it was invoked.
    let too_early = [
        op(1, Call::Read, read(Some("a")), 0, 1),
        op(0, w("a"), Outcome::Unknown, 5, 5),
    ];
    assert!(!ok(&too_early));
    // Nor flicker: seen, then gone without any other write.
    let flicker = [
        op(0, w("a"), Outcome::Unknown, 0, 0),
        op(1, Call::Read, read(Some("a")), 5, 6),
        op(1, Call::Read, read(None), 7, 8),
    ];
    assert!(!ok(&flicker));
}

#[test]
fn keys_are_checked_independently() {
    let mut a = op(0, w("1"), Outcome::Ok, 0, 1);
    a.key = "x".to_owned();
    let mut b = op(1, Call::Read, read(None), 2, 3);
    b.key = "y".to_owned();
    assert!(ok(&[a.clone(), b]));
    let mut c = op(1, Call::Read, read(None), 2, 3);
    c.key = "x".to_owned();
    match check(&[a, c]) {
        Verdict::NotLinearizable { key, .. } => assert_eq!(key, "x"),
        Verdict::Linearizable => panic!("lost write on x accepted"),
    }
}

#[test]
fn larger_concurrent_history_with_a_planted_violation() {
    // 6 clients, each writes its own unique values and reads; timestamps interleave.
    let mut h = Vec::new();
    let mut t = 0;
    let mut last = None;
    for round in 0..40 {
        let v = format!("v{round}");
        h.push(op(round % 6, w(&v), Outcome::Ok, t, t + 3));
        h.push(op(
            (round + 1) % 6,
            Call::Read,
            read(Some(&v)),
            t + 4,
            t + 6,
        ));
        h.push(op(
            (round + 2) % 6,
            Call::Read,
            read(last.as_deref()),
            t + 1,
            t + 2,
        ));
        last = Some(v);
        t += 10;
    }
    assert!(ok(&h));
    // Plant a read that sees an old value long after it was overwritten.
    h.push(op(5, Call::Read, read(Some("v3")), t + 1, t + 2));
    assert!(!ok(&h));
}
