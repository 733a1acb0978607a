//! Read leases driven by hand (design note 0014): grants and their refusals, the commit
//! hold, and a handover that waits for the lease.

use crate::replica::{Input, Millis, NodeId, Output, ReadLeaseRefusal, Role, SeqNo};
use crate::types::Epoch;

use super::unit::{ack, handed_to, leader_on, msg_from, persisted_all, rec};

#[test]
fn a_leader_grants_read_leases_only_when_quiet_and_holds_commits_until_they_end() {
    let (mut r, t) = leader_on(1, 2);
    // Off by default.
    assert_eq!(r.grant_read_lease(t), Err(ReadLeaseRefusal::Off));
    r.cfg.read_lease = Millis(300);
    r.cfg.read_lease_quiet = Millis(1000);
    // The own lease runs to t + 2000 − 250; the margin is 250 × 300 / 2000 + 1 = 39 ms.
    let first = r.grant_read_lease(t).map(|l| l.duration);
    assert_eq!(first, Ok(Millis(300)));
    let mark = r.grant_read_lease(t).map(|l| l.mark);
    assert_eq!(
        mark.map(|m| (m.epoch, m.seq)),
        Ok((r.leader_epoch().unwrap_or(Epoch(0)), SeqNo(2)))
    );
    let held_until = t.plus(Millis(339));

    // A write proposed under the lease is sequenced, persisted and acked, but not committed.
    let now = t.plus(Millis(10));
    let outs = r.handle(
        now,
        Input::Propose {
            entries: rec(2, 3).entries,
        },
    );
    assert!(outs.contains(&Output::Proposed { seq: SeqNo(3) }));
    let got = persisted_all(&mut r, now, &outs);
    assert!(!got.iter().any(|o| matches!(o, Output::Committed { .. })));
    let got = r.handle(now, msg_from(2, ack(3, now)));
    assert!(!got.iter().any(|o| matches!(o, Output::Committed { .. })));
    assert_eq!(r.commit_seq(), SeqNo(2));
    // No lease while a write is uncommitted.
    assert_eq!(
        r.grant_read_lease(now.plus(Millis(5))),
        Err(ReadLeaseRefusal::Pending)
    );
    let got = r.handle(held_until.minus(Millis(1)), Input::Tick);
    assert!(!got.contains(&Output::Committed { upto: SeqNo(3) }));
    let got = r.handle(held_until, Input::Tick);
    assert!(
        got.contains(&Output::Committed { upto: SeqNo(3) }),
        "{got:?}"
    );

    // Committed, but a write was proposed within the quiet window.
    assert_eq!(
        r.grant_read_lease(now.plus(Millis(999))),
        Err(ReadLeaseRefusal::Recent)
    );
    let quiet = now.plus(Millis(1000));
    let after = r.grant_read_lease(quiet);
    assert_eq!(after.map(|l| l.duration), Ok(Millis(300)));
    // The write moved the mark: keys read under the first lease are not vouched for now.
    let after_mark = after.map(|l| l.mark);
    assert_eq!(after_mark.map(|m| m.seq), Ok(SeqNo(3)));
    match (after_mark, mark) {
        (Ok(a), Ok(b)) => assert!(a > b, "{a:?} after {b:?}"),
        other => panic!("{other:?}"),
    }
    // Near the end of the own lease (the ack of the write sent at `now` renewed it to
    // now + 1750) the lease is shortened, then refused.
    let late = now.plus(Millis(1600));
    assert_eq!(
        r.grant_read_lease(late).map(|l| l.duration),
        Ok(Millis(111))
    );
    assert_eq!(
        r.grant_read_lease(now.plus(Millis(1720))),
        Err(ReadLeaseRefusal::LeaseShort)
    );
    assert_eq!(
        r.grant_read_lease(now.plus(Millis(1750))),
        Err(ReadLeaseRefusal::NotLeader)
    );
    let counts = r.read_lease_counts();
    assert_eq!(counts.granted, 4);
    assert_eq!(counts.writes_held, 1);
    assert_eq!(counts.refused(ReadLeaseRefusal::Pending), 1);
    assert_eq!(counts.refused(ReadLeaseRefusal::Recent), 1);
    assert_eq!(counts.refused(ReadLeaseRefusal::LeaseShort), 1);
    assert_eq!(counts.refused(ReadLeaseRefusal::NotLeader), 1);
    assert_eq!(counts.refused(ReadLeaseRefusal::Off), 1);
}

#[test]
fn a_draining_leader_hands_over_only_once_its_read_leases_ended() {
    let (mut r, t) = leader_on(1, 2);
    r.cfg.read_lease = Millis(300);
    r.cfg.read_lease_quiet = Millis(0);
    let now = t.plus(Millis(100));
    r.handle(now, msg_from(3, ack(2, now)));
    r.handle(now, msg_from(2, ack(2, now)));
    assert_eq!(r.grant_read_lease(now).map(|l| l.duration), Ok(Millis(300)));
    let until = now.plus(Millis(339));
    let outs = r.handle(now, Input::Drain);
    assert!(handed_to(&outs).is_empty(), "{outs:?}");
    assert_eq!(r.role(), Role::Leader);
    // No new lease while handing over.
    assert_eq!(
        r.grant_read_lease(now.plus(Millis(1))),
        Err(ReadLeaseRefusal::HandingOver)
    );
    let mut at = now;
    while at < until {
        at = at.plus(Millis(20)).min(until.minus(Millis(1)));
        // Keep the peers acking (steady) meanwhile.
        r.handle(at, msg_from(3, ack(2, at)));
        r.handle(at, msg_from(2, ack(2, at)));
        let outs = r.handle(at, Input::Tick);
        assert!(handed_to(&outs).is_empty(), "handed over at {at:?}");
        if at == until.minus(Millis(1)) {
            break;
        }
    }
    let outs = r.handle(until, Input::Tick);
    assert_eq!(handed_to(&outs).len(), 1, "{outs:?}");
    assert_ne!(handed_to(&outs), vec![NodeId(1)]);
    assert_eq!(r.role(), Role::Follower);
}
