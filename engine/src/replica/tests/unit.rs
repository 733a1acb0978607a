//! Single-replica tests: each safety rule driven by hand.

use bytes::Bytes;

use crate::replica::{
    Config, Input, Millis, Msg, NodeId, Output, PersistOp, Record, Recovered, Replica, Role,
};
use crate::types::{Entry, EntryKind, Epoch, SeqNo, ShardId};

pub(super) fn cfg(me: u32) -> Config {
    Config::new(
        ShardId(7),
        NodeId(me),
        vec![NodeId(1), NodeId(2), NodeId(3)],
    )
}

pub(super) fn rec(epoch: u64, seq: u64) -> Record {
    Record {
        epoch: Epoch(epoch),
        seq: SeqNo(seq),
        entries: vec![Entry {
            key: Bytes::from(format!("k{seq}")),
            seq: SeqNo(seq),
            kind: EntryKind::Put {
                value: Bytes::from_static(b"v"),
                content_type: None,
            },
            expires_at: None,
        }],
        membership: None,
    }
}

pub(super) fn replica(me: u32, promised: u64, records: Vec<Record>) -> Replica {
    let r = Recovered {
        promised_epoch: Epoch(promised),
        records,
        ..Recovered::default()
    };
    Replica::new(cfg(me), r, Millis(0)).expect("valid config")
}

pub(super) fn persisted_all(r: &mut Replica, now: Millis, outs: &[Output]) -> Vec<Output> {
    let mut got = Vec::new();
    for o in outs {
        if let Output::Persist { id, .. } = o {
            got.extend(r.handle(now, Input::Persisted { id: *id }));
        }
    }
    got
}

pub(super) fn sends(outs: &[Output]) -> Vec<(NodeId, Msg)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

fn append(epoch: u64, prev: u64, prev_epoch: u64, records: Vec<Record>, commit: u64) -> Input {
    Input::Message {
        from: NodeId(1),
        msg: Msg::Append {
            epoch: Epoch(epoch),
            prev_seq: SeqNo(prev),
            prev_epoch: Epoch(prev_epoch),
            records,
            commit_seq: SeqNo(commit),
            flushed_seq: SeqNo(0),
            sent_at: Millis(5),
        },
    }
}

#[test]
fn config_must_be_a_majority_quorum() {
    let mut c = cfg(1);
    c.quorum = 1;
    assert!(Replica::new(c, Recovered::default(), Millis(0)).is_err());
    let c = Config::new(ShardId(1), NodeId(9), Vec::new());
    assert!(Replica::new(c, Recovered::default(), Millis(0)).is_err());
    // A replica outside the genesis configuration is a learner (design note 0009).
    let c = Config::new(ShardId(1), NodeId(9), vec![NodeId(1)]);
    let r = Replica::new(c, Recovered::default(), Millis(0)).expect("a learner");
    assert!(!r.is_voter());
}

#[test]
fn promise_is_answered_only_once_durable_and_not_during_the_lease() {
    let mut r = replica(2, 1, vec![rec(1, 1)]);
    // A restarted replica refuses promises for one lease.
    let outs = r.handle(
        Millis(10),
        Input::Message {
            from: NodeId(3),
            msg: Msg::Promise {
                epoch: Epoch(2),
                handover_of: None,
            },
        },
    );
    assert!(matches!(
        sends(&outs)[..],
        [(
            _,
            Msg::Refused {
                lease_remaining: Millis(1990),
                ..
            }
        )]
    ));
    let now = Millis(2500);
    let outs = r.handle(
        now,
        Input::Message {
            from: NodeId(3),
            msg: Msg::Promise {
                epoch: Epoch(2),
                handover_of: None,
            },
        },
    );
    assert!(
        sends(&outs).is_empty(),
        "no answer before the promise is durable"
    );
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Persist {
            op: PersistOp::Promise(Epoch(2)),
            ..
        }
    )));
    let got = persisted_all(&mut r, now, &outs);
    assert_eq!(
        sends(&got),
        vec![(
            NodeId(3),
            Msg::Promised {
                epoch: Epoch(2),
                last_epoch: Epoch(1),
                last_seq: SeqNo(1),
                membership: None,
            }
        )]
    );
    // Appends from the old epoch are refused from now on.
    let outs = r.handle(now, append(1, 1, 1, vec![rec(1, 2)], 0));
    assert!(matches!(
        sends(&outs)[..],
        [(
            _,
            Msg::Refused {
                promised_epoch: Epoch(2),
                ..
            }
        )]
    ));
}

#[test]
fn follower_acks_after_durable_and_truncates_only_older_epoch_tails() {
    let mut r = replica(2, 1, vec![rec(1, 1), rec(1, 2), rec(1, 3)]);
    // Leader of epoch 2 adopted a log ending at 1, then wrote 2 and 3 in epoch 2.
    let outs = r.handle(Millis(10), append(2, 1, 1, vec![rec(2, 2), rec(2, 3)], 1));
    let ops: Vec<&PersistOp> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Persist { op, .. } => Some(op),
            _ => None,
        })
        .collect();
    assert!(matches!(
        ops[..],
        [
            PersistOp::Promise(Epoch(2)),
            PersistOp::Truncate { after: SeqNo(1) },
            PersistOp::Append(_)
        ]
    ));
    assert!(sends(&outs).is_empty(), "ack waits for durability");
    let got = persisted_all(&mut r, Millis(11), &outs);
    assert_eq!(
        sends(&got),
        vec![(
            NodeId(1),
            Msg::Ack {
                epoch: Epoch(2),
                last_seq: SeqNo(3),
                sent_at: Millis(5),
                rejoining: false,
            }
        )]
    );
    assert_eq!(r.log().get(SeqNo(3)).map(|x| x.epoch), Some(Epoch(2)));
    assert_eq!(r.commit_seq(), SeqNo(1));
}

#[test]
fn follower_reports_a_gap_when_the_prefix_does_not_match() {
    let mut r = replica(2, 1, vec![rec(1, 1), rec(1, 2)]);
    let outs = r.handle(Millis(10), append(3, 5, 3, vec![], 0));
    assert_eq!(
        sends(&outs),
        vec![(
            NodeId(1),
            Msg::Gap {
                epoch: Epoch(3),
                last_seq: SeqNo(2)
            }
        )]
    );
    let outs = r.handle(Millis(10), append(3, 2, 2, vec![], 0));
    assert_eq!(
        sends(&outs),
        vec![(
            NodeId(1),
            Msg::Gap {
                epoch: Epoch(3),
                last_seq: SeqNo(0)
            }
        )]
    );
}

/// Drives replica 1 through a takeover with scripted answers from 2 and 3.
#[test]
fn takeover_adopts_the_longest_log_and_commits_through_a_barrier() {
    let mut r = replica(1, 1, vec![rec(1, 1)]);
    let t = Millis(3000);
    let outs = r.handle(t, Input::Tick);
    assert!(outs.contains(&Output::LoadManifest));
    let outs = r.handle(
        t,
        Input::ManifestLoaded {
            flushed_seq: SeqNo(0),
            flushed_epoch: Epoch(0),
            membership: None,
        },
    );
    assert!(outs.contains(&Output::ClaimEpoch { at_least: Epoch(2) }));
    let outs = r.handle(
        t,
        Input::EpochClaimed {
            epoch: Epoch(2),
            won: true,
        },
    );
    assert_eq!(sends(&outs).len(), 2);
    persisted_all(&mut r, t, &outs);
    let promised = |last_epoch, last_seq| Input::Message {
        from: NodeId(2),
        msg: Msg::Promised {
            epoch: Epoch(2),
            last_epoch: Epoch(last_epoch),
            last_seq: SeqNo(last_seq),
            membership: None,
        },
    };
    let outs = r.handle(t, promised(1, 3));
    assert_eq!(
        sends(&outs),
        vec![(
            NodeId(2),
            Msg::Fetch {
                epoch: Epoch(2),
                after_seq: SeqNo(0)
            }
        )]
    );
    let outs = r.handle(
        t,
        Input::Message {
            from: NodeId(2),
            msg: Msg::Records {
                epoch: Epoch(2),
                prev_seq: SeqNo(0),
                prev_epoch: Epoch(0),
                records: vec![rec(1, 1), rec(1, 2), rec(1, 3)],
            },
        },
    );
    assert_eq!(r.role(), Role::Recovering);
    assert_eq!(r.log().last_seq(), SeqNo(4));
    assert!(r.log().get(SeqNo(4)).is_some_and(Record::is_barrier));
    // Not serving before the barrier commits.
    let p = r.handle(
        t,
        Input::Propose {
            entries: rec(2, 9).entries,
        },
    );
    assert!(p.iter().any(|o| matches!(o, Output::Rejected { .. })));
    let mut got = persisted_all(&mut r, t, &outs);
    got.extend(r.handle(
        t,
        Input::Message {
            from: NodeId(3),
            msg: Msg::Ack {
                epoch: Epoch(2),
                last_seq: SeqNo(4),
                sent_at: t,
                rejoining: false,
            },
        },
    ));
    assert!(got.contains(&Output::Committed { upto: SeqNo(4) }));
    assert_eq!(r.role(), Role::Leader);
    assert!(r.can_serve_strong_read(Millis(3000 + 1749)));
    assert!(!r.can_serve_strong_read(Millis(3000 + 1750)));
}

/// Replica 1 as the serving leader of epoch 2 with the barrier at seq 2 committed.
pub(super) fn leader() -> (Replica, Millis) {
    leader_on(1, 2)
}

/// Replica `me` as the serving leader of epoch 2 (barrier at seq 2 committed), elected with
/// the promise and ack of `peer`.
pub(super) fn leader_on(me: u32, peer: u32) -> (Replica, Millis) {
    let mut r = replica(me, 1, vec![rec(1, 1)]);
    let t = Millis(3000);
    r.handle(t, Input::Tick);
    r.handle(
        t,
        Input::ManifestLoaded {
            flushed_seq: SeqNo(0),
            flushed_epoch: Epoch(0),
            membership: None,
        },
    );
    let outs = r.handle(
        t,
        Input::EpochClaimed {
            epoch: Epoch(2),
            won: true,
        },
    );
    persisted_all(&mut r, t, &outs);
    let promised = Msg::Promised {
        epoch: Epoch(2),
        last_epoch: Epoch(1),
        last_seq: SeqNo(1),
        membership: None,
    };
    let outs = r.handle(
        t,
        Input::Message {
            from: NodeId(peer),
            msg: promised,
        },
    );
    persisted_all(&mut r, t, &outs);
    let ack = Msg::Ack {
        epoch: Epoch(2),
        last_seq: SeqNo(2),
        sent_at: t,
        rejoining: false,
    };
    r.handle(
        t,
        Input::Message {
            from: NodeId(peer),
            msg: ack,
        },
    );
    assert_eq!(r.role(), Role::Leader);
    (r, t)
}

#[test]
fn leader_commits_at_the_quorum_th_durable_match_and_steps_down_on_a_newer_epoch() {
    let (mut r, t) = leader();
    let outs = r.handle(
        t,
        Input::Propose {
            entries: rec(2, 3).entries,
        },
    );
    assert!(outs.contains(&Output::Proposed { seq: SeqNo(3) }));
    // A follower's ack alone does not commit: the leader's own copy is not durable yet.
    let ack = Msg::Ack {
        epoch: Epoch(2),
        last_seq: SeqNo(3),
        sent_at: t,
        rejoining: false,
    };
    let got = r.handle(
        t,
        Input::Message {
            from: NodeId(3),
            msg: ack,
        },
    );
    assert!(!got.contains(&Output::Committed { upto: SeqNo(3) }));
    assert_eq!(r.commit_seq(), SeqNo(2));
    persisted_all(&mut r, t, &outs);
    assert_eq!(r.commit_seq(), SeqNo(3));
    // An ack from an older epoch is ignored.
    let old = Msg::Ack {
        epoch: Epoch(1),
        last_seq: SeqNo(9),
        sent_at: t,
        rejoining: false,
    };
    r.handle(
        t,
        Input::Message {
            from: NodeId(2),
            msg: old,
        },
    );
    assert_eq!(r.commit_seq(), SeqNo(3));
    let refused = Msg::Refused {
        promised_epoch: Epoch(5),
        lease_remaining: Millis(0),
    };
    let outs = r.handle(
        t,
        Input::Message {
            from: NodeId(2),
            msg: refused,
        },
    );
    assert!(outs.contains(&Output::RoleChanged {
        role: Role::Follower,
        epoch: Epoch(2)
    }));
    assert!(!r.can_serve_strong_read(t));
    let outs = r.handle(
        t,
        Input::Propose {
            entries: rec(2, 4).entries,
        },
    );
    assert!(outs.iter().any(|o| matches!(o, Output::Rejected { .. })));
}

#[test]
fn a_leader_refuses_promises_while_its_own_lease_promise_holds() {
    let (mut r, t) = leader();
    let outs = r.handle(
        t,
        Input::Message {
            from: NodeId(3),
            msg: Msg::Promise {
                epoch: Epoch(3),
                handover_of: None,
            },
        },
    );
    assert!(matches!(
        sends(&outs)[..],
        [(
            _,
            Msg::Refused {
                promised_epoch: Epoch(2),
                ..
            }
        )]
    ));
    assert_eq!(r.role(), Role::Leader);
}

#[test]
fn lost_claim_backs_off_and_claims_above_the_winner() {
    let mut r = replica(1, 1, vec![]);
    let t = Millis(3000);
    r.handle(t, Input::Tick);
    r.handle(
        t,
        Input::ManifestLoaded {
            flushed_seq: SeqNo(0),
            flushed_epoch: Epoch(0),
            membership: None,
        },
    );
    let outs = r.handle(
        t,
        Input::EpochClaimed {
            epoch: Epoch(4),
            won: false,
        },
    );
    assert!(outs.contains(&Output::RoleChanged {
        role: Role::Follower,
        epoch: Epoch(1)
    }));
    // Rank 0 backs off by one rank delay (plus jitter < 150 ms), not a whole lease.
    let outs = r.handle(Millis(3000 + 460), Input::Tick);
    assert!(outs.contains(&Output::LoadManifest));
    let outs = r.handle(
        Millis(3460),
        Input::ManifestLoaded {
            flushed_seq: SeqNo(0),
            flushed_epoch: Epoch(0),
            membership: None,
        },
    );
    assert!(outs.contains(&Output::ClaimEpoch { at_least: Epoch(5) }));
}

#[test]
fn manifest_base_keeps_a_continuing_tail_and_truncates_a_divergent_one() {
    use crate::replica::log::Log;
    let recs = vec![rec(1, 1), rec(1, 2), rec(2, 3)];
    let mut log = Log::new(SeqNo(0), Epoch(0), None, recs.clone());
    log.advance_base(SeqNo(2), Epoch(1), None);
    assert_eq!(
        (log.base(), log.last_seq(), log.len()),
        (SeqNo(2), SeqNo(3), 1)
    );
    let mut log = Log::new(SeqNo(0), Epoch(0), None, recs);
    // Our record at 2 is from epoch 1 but the flushed one is from epoch 3: our tail diverged.
    log.advance_base(SeqNo(2), Epoch(3), None);
    assert_eq!(
        (log.base(), log.last_seq(), log.last_epoch()),
        (SeqNo(2), SeqNo(2), Epoch(3))
    );
}

pub(super) fn msg_from(from: u32, msg: Msg) -> Input {
    Input::Message {
        from: NodeId(from),
        msg,
    }
}

pub(super) fn ack(last_seq: u64, sent_at: Millis) -> Msg {
    Msg::Ack {
        epoch: Epoch(2),
        last_seq: SeqNo(last_seq),
        sent_at,
        rejoining: false,
    }
}

#[test]
fn a_leader_of_another_rank_hands_over_to_the_first_rank_once_it_is_steady_and_caught_up() {
    // n2 leads epoch 2 (with n3's help); n1 ranks first.
    let (mut r, t) = leader_on(2, 3);
    let mut now = n1_acks_steadily(&mut r, t);
    // A write that n1 has not acked yet when the handover starts.
    let outs = r.handle(
        now,
        Input::Propose {
            entries: rec(2, 3).entries,
        },
    );
    assert!(outs.contains(&Output::Proposed { seq: SeqNo(3) }));
    persisted_all(&mut r, now, &outs);
    now = now.plus(Millis(250));
    let outs = r.handle(now, Input::Tick);
    assert!(!handover(&outs), "no handover before n1 holds seq 3");
    assert_eq!(r.role(), Role::Leader);
    // Sequencing stopped while handing over.
    let outs = r.handle(
        now,
        Input::Propose {
            entries: rec(2, 4).entries,
        },
    );
    assert!(outs.contains(&Output::Rejected {
        reason: crate::replica::RejectReason::NotReady
    }));
    // n1 acks seq 3: the leader steps down first, then sends Handover.
    let outs = r.handle(now, msg_from(1, ack(3, now)));
    let stepped = outs.iter().position(|o| {
        matches!(
            o,
            Output::RoleChanged {
                role: Role::Follower,
                ..
            }
        )
    });
    let handed = outs.iter().position(|o| {
        matches!(
            o,
            Output::Send {
                to: NodeId(1),
                msg: Msg::Handover { epoch: Epoch(2) }
            }
        )
    });
    assert!(
        matches!((stepped, handed), (Some(a), Some(b)) if a < b),
        "{outs:?}"
    );
    assert!(!r.can_serve_strong_read(now));
    let outs = r.handle(
        now,
        Input::Propose {
            entries: rec(2, 5).entries,
        },
    );
    assert!(outs.contains(&Output::Rejected {
        reason: crate::replica::RejectReason::NotLeader {
            leader: Some(NodeId(1))
        }
    }));
    // It grants the new leader's promise although its own lease promise still holds.
    let p = Msg::Promise {
        epoch: Epoch(3),
        handover_of: Some(Epoch(2)),
    };
    let outs = r.handle(now, msg_from(1, p));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Persist {
            op: PersistOp::Promise(Epoch(3)),
            ..
        }
    )));
}

/// Whether `outs` send a `Handover`.
fn handover(outs: &[Output]) -> bool {
    !handed_to(outs).is_empty()
}

/// The replicas `outs` send a `Handover` to.
pub(super) fn handed_to(outs: &[Output]) -> Vec<NodeId> {
    sends(outs)
        .into_iter()
        .filter(|(_, m)| matches!(m, Msg::Handover { .. }))
        .map(|(to, _)| to)
        .collect()
}

fn default_handover_after() -> Millis {
    cfg(1).handover_after.expect("on by default")
}

/// n1 (first-ranked) acks the leader `r` at `t` and then every heartbeat until just before
/// `handover_after` has passed; no handover may start meanwhile. Returns the last heartbeat's
/// time.
fn n1_acks_steadily(r: &mut Replica, t: Millis) -> Millis {
    let mut now = t;
    r.handle(now, msg_from(1, ack(2, now)));
    while now < t.plus(default_handover_after()).minus(Millis(250)) {
        now = now.plus(Millis(250));
        assert!(!handover(&r.handle(now, Input::Tick)), "at {now:?}");
        r.handle(now, msg_from(1, ack(2, now)));
    }
    now
}

#[test]
fn a_handover_releases_only_a_lease_promise_of_the_epoch_that_ended() {
    // n3 follows n1 in epoch 2, past its restart guard.
    let mut r = replica(3, 2, vec![rec(1, 1)]);
    let now = Millis(3000);
    r.handle(now, append(2, 1, 1, vec![rec(2, 2)], 1));
    let refused = |outs: &[Output]| {
        sends(outs)
            .iter()
            .any(|(_, m)| matches!(m, Msg::Refused { .. }))
    };
    for other in [None, Some(Epoch(1))] {
        let p = Msg::Promise {
            epoch: Epoch(3),
            handover_of: other,
        };
        assert!(refused(&r.handle(now, msg_from(2, p))), "{other:?}");
    }
    let p = Msg::Promise {
        epoch: Epoch(3),
        handover_of: Some(Epoch(2)),
    };
    let outs = r.handle(now, msg_from(2, p));
    assert!(!refused(&outs));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Persist {
            op: PersistOp::Promise(Epoch(3)),
            ..
        }
    )));

    // Within the restart guard it may have acked a leader it no longer knows of: refused.
    let mut r = replica(3, 2, vec![rec(1, 1)]);
    let now = Millis(100);
    r.handle(now, append(2, 1, 1, vec![rec(2, 2)], 1));
    let p = Msg::Promise {
        epoch: Epoch(3),
        handover_of: Some(Epoch(2)),
    };
    assert!(refused(&r.handle(now, msg_from(2, p))));
}

#[test]
fn the_target_of_a_handover_takes_over_at_once_and_says_so_in_its_promises() {
    let mut r = replica(2, 2, vec![rec(1, 1)]);
    let now = Millis(3000);
    r.handle(now, append(2, 1, 1, vec![rec(2, 2)], 1));
    // Not from the leader it follows, or not its epoch: ignored.
    r.handle(now, msg_from(3, Msg::Handover { epoch: Epoch(2) }));
    r.handle(now, msg_from(1, Msg::Handover { epoch: Epoch(1) }));
    assert_eq!(r.role(), Role::Follower);
    let outs = r.handle(now, msg_from(1, Msg::Handover { epoch: Epoch(2) }));
    assert_eq!(r.role(), Role::Candidate);
    assert!(outs.contains(&Output::LoadManifest));
    let loaded = Input::ManifestLoaded {
        flushed_seq: SeqNo(0),
        flushed_epoch: Epoch(0),
        membership: None,
    };
    let outs = r.handle(now, loaded);
    assert!(outs.contains(&Output::ClaimEpoch { at_least: Epoch(3) }));
    // A late Append of the ended epoch does not turn it back into a follower.
    r.handle(now, append(2, 2, 2, Vec::new(), 2));
    assert_eq!(r.role(), Role::Candidate);
    let won = Input::EpochClaimed {
        epoch: Epoch(3),
        won: true,
    };
    let outs = r.handle(now, won);
    let promise = Msg::Promise {
        epoch: Epoch(3),
        handover_of: Some(Epoch(2)),
    };
    assert_eq!(
        sends(&outs),
        vec![(NodeId(1), promise.clone()), (NodeId(3), promise)]
    );
}

#[test]
fn a_first_ranked_replica_that_lags_gets_no_handover_and_stalls_no_write() {
    let (mut r, t) = leader_on(2, 3);
    let after = default_handover_after();
    let mut now = t;
    // n1 acks every heartbeat but stays at seq 2 while n3 commits every write with us.
    while now < t.plus(after).plus(Millis(1000)) {
        now = now.plus(Millis(250));
        assert!(!handover(&r.handle(now, Input::Tick)));
        let outs = r.handle(
            now,
            Input::Propose {
                entries: rec(2, 9).entries,
            },
        );
        assert!(
            !outs.iter().any(|o| matches!(o, Output::Rejected { .. })),
            "sequencing stopped for a lagging target"
        );
        persisted_all(&mut r, now, &outs);
        let last = r.log().last_seq().0;
        r.handle(now, msg_from(3, ack(last, now)));
        assert_eq!(r.commit_seq(), SeqNo(last));
        r.handle(now, msg_from(1, ack(2, now)));
    }
    // Once it holds everything, the next tick hands over (it has been steady all along).
    let last = r.log().last_seq().0;
    r.handle(now, msg_from(1, ack(last, now)));
    now = now.plus(Millis(50));
    assert!(handover(&r.handle(now, Input::Tick)));
    assert_eq!(r.role(), Role::Follower);
}

#[test]
fn a_draining_leader_hands_over_to_the_most_up_to_date_steady_replica_and_takes_nothing_over() {
    // n1 ranks first and leads; n3 acked more than n2 (n2 elected us with its ack of 2).
    let (mut r, t) = leader_on(1, 2);
    let now = t.plus(Millis(100));
    let outs = r.handle(
        now,
        Input::Propose {
            entries: rec(2, 3).entries,
        },
    );
    persisted_all(&mut r, now, &outs);
    r.handle(now, msg_from(3, ack(3, now)));
    r.handle(now, msg_from(2, ack(2, now)));
    // n3 holds everything, so the handover goes out at once, to n3 rather than n2.
    let outs = r.handle(now, Input::Drain);
    let handed = handed_to(&outs);
    assert_eq!(handed, vec![NodeId(3)], "{outs:?}");
    assert_eq!(r.role(), Role::Follower);
    // As a draining follower it never starts a takeover, however long it hears nothing.
    for s in 1..40 {
        r.handle(now.plus(Millis(250 * s)), Input::Tick);
        assert_eq!(r.role(), Role::Follower);
    }
}

#[test]
fn a_handover_within_the_restart_guard_is_taken_when_the_guard_ends() {
    // Restarted at 0 (guard until the lease, 2 s), following n1 in epoch 2.
    let mut r = replica(2, 2, vec![rec(1, 1)]);
    let now = Millis(300);
    r.handle(now, append(2, 1, 1, vec![rec(2, 2)], 1));
    r.handle(now, msg_from(1, Msg::Handover { epoch: Epoch(2) }));
    assert_eq!(r.role(), Role::Follower);
    r.handle(Millis(1990), Input::Tick);
    assert_eq!(r.role(), Role::Follower, "not within the guard");
    let outs = r.handle(Millis(2000), Input::Tick);
    assert_eq!(r.role(), Role::Candidate);
    assert!(outs.contains(&Output::LoadManifest));
    let loaded = Input::ManifestLoaded {
        flushed_seq: SeqNo(0),
        flushed_epoch: Epoch(0),
        membership: None,
    };
    r.handle(Millis(2000), loaded);
    let won = Input::EpochClaimed {
        epoch: Epoch(3),
        won: true,
    };
    let outs = r.handle(Millis(2000), won);
    assert!(sends(&outs).iter().all(|(_, m)| *m
        == Msg::Promise {
            epoch: Epoch(3),
            handover_of: Some(Epoch(2))
        }));
    // A deferred handover that no longer applies (a newer epoch was promised meanwhile) is
    // dropped.
    let mut r = replica(2, 2, vec![rec(1, 1)]);
    r.handle(now, append(2, 1, 1, vec![rec(2, 2)], 1));
    r.handle(now, msg_from(1, Msg::Handover { epoch: Epoch(2) }));
    r.handle(Millis(400), append(3, 2, 2, Vec::new(), 2));
    r.handle(Millis(2000), Input::Tick);
    assert_eq!(r.role(), Role::Follower);
}

#[test]
fn a_lost_connection_restarts_the_count_of_steady_acks() {
    let (mut r, t) = leader_on(2, 3);
    let after = default_handover_after();
    let mut now = n1_acks_steadily(&mut r, t);
    // n1 restarts quickly: its acks go on within two heartbeats, but the connection broke.
    r.handle(now, Input::PeerLost { node: NodeId(1) });
    let lost_at = now;
    while now < lost_at.plus(after).minus(Millis(250)) {
        now = now.plus(Millis(250));
        r.handle(now, msg_from(1, ack(2, now)));
        assert!(!handover(&r.handle(now, Input::Tick)), "at {now:?}");
    }
    now = now.plus(Millis(250));
    r.handle(now, msg_from(1, ack(2, now)));
    now = now.plus(Millis(250));
    assert!(handover(&r.handle(now, Input::Tick)));
}

/// n2 restarting with an empty disk, floor epoch 2 (the newest claimed).
fn rejoining() -> Replica {
    let r = Recovered {
        amnesia_floor: Some(Epoch(2)),
        ..Recovered::default()
    };
    Replica::new(cfg(2), r, Millis(0)).expect("valid config")
}

#[test]
fn a_rejoining_replica_promises_nothing_and_accepts_nothing_older_than_its_floor() {
    let mut r = rejoining();
    assert!(r.is_rejoining());
    assert_eq!(r.promised_epoch(), Epoch(2));
    // Long past the restart guard, a promise of a newer epoch gets no answer and no
    // persisted promise: as if the replica were down.
    let now = Millis(10_000);
    let p = Msg::Promise {
        epoch: Epoch(3),
        handover_of: None,
    };
    let outs = r.handle(now, msg_from(3, p));
    assert!(outs.is_empty(), "{outs:?}");
    // Nor does the candidate of the floor epoch, which the lost state may have promised, get
    // records to adopt.
    let fetch = Msg::Fetch {
        epoch: Epoch(2),
        after_seq: SeqNo(0),
    };
    assert!(r.handle(now, msg_from(3, fetch)).is_empty());
    // A leader of an older epoch than the floor is refused (it steps down on that).
    let outs = r.handle(now, append(1, 0, 0, vec![rec(1, 1)], 0));
    assert!(
        matches!(
            sends(&outs)[..],
            [(
                _,
                Msg::Refused {
                    promised_epoch: Epoch(2),
                    ..
                }
            )]
        ),
        "{outs:?}"
    );
    // It never starts a takeover, however long it hears nothing.
    for s in 1..40 {
        r.handle(now.plus(Millis(250 * s)), Input::Tick);
        assert_eq!(r.role(), Role::Follower);
    }
}

#[test]
fn a_rejoin_ends_only_with_a_durable_record_of_an_epoch_after_the_floor() {
    let mut r = rejoining();
    let now = Millis(3000);
    // The leader of the floor epoch itself: its records are accepted and acked, flagged as
    // rejoining, but its epoch does not end the rejoin (the lost state may have helped
    // commit records of this epoch that have not reached us yet).
    let outs = r.handle(now, append(2, 0, 0, vec![rec(1, 1), rec(2, 2)], 2));
    let got = persisted_all(&mut r, now, &outs);
    assert_eq!(
        sends(&got),
        vec![(
            NodeId(1),
            Msg::Ack {
                epoch: Epoch(2),
                last_seq: SeqNo(2),
                sent_at: Millis(5),
                rejoining: true,
            }
        )]
    );
    assert!(r.is_rejoining());
    // The barrier of epoch 3: once it is durable the rejoin is over.
    let outs = r.handle(now, append(3, 2, 2, vec![rec(3, 3)], 2));
    assert!(r.is_rejoining(), "not before the record is durable");
    let got = persisted_all(&mut r, now, &outs);
    assert!(!r.is_rejoining());
    assert!(
        sends(&got).iter().any(|(_, m)| matches!(
            m,
            Msg::Ack {
                rejoining: false,
                ..
            }
        )),
        "{got:?}"
    );
    // Now it answers promises again (after the lease promise it gave epoch 3's leader).
    let p = Msg::Promise {
        epoch: Epoch(4),
        handover_of: None,
    };
    let outs = r.handle(now.plus(Millis(5000)), msg_from(3, p));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Persist {
            op: PersistOp::Promise(Epoch(4)),
            ..
        }
    )));
}

#[test]
fn a_restart_of_a_rejoining_replica_keeps_the_rejoin_until_a_newer_epoch_is_durable() {
    // Restarted mid-rejoin: its durable log reaches only the floor epoch.
    let r = Recovered {
        promised_epoch: Epoch(2),
        records: vec![rec(1, 1), rec(2, 2)],
        amnesia_floor: Some(Epoch(2)),
        ..Recovered::default()
    };
    let r = Replica::new(cfg(2), r, Millis(0)).expect("valid config");
    assert!(r.is_rejoining());
    // A manifest whose flushed prefix ends in a newer epoch ends it as well.
    let mut r = r;
    r.handle(
        Millis(10),
        Input::ManifestLoaded {
            flushed_seq: SeqNo(3),
            flushed_epoch: Epoch(3),
            membership: None,
        },
    );
    assert!(!r.is_rejoining());
    let done = Recovered {
        records: vec![rec(1, 1), rec(3, 2)],
        amnesia_floor: Some(Epoch(2)),
        ..Recovered::default()
    };
    let done = Replica::new(cfg(2), done, Millis(0)).expect("valid config");
    assert!(!done.is_rejoining());
}

#[test]
fn a_leader_hands_the_shard_on_once_a_rejoining_replica_is_caught_up_but_never_to_it() {
    // n1 leads epoch 2 elected with n3; n2 (ranked before n3) rejoins after disk loss.
    let (mut r, t) = leader_on(1, 3);
    let rejoining_ack = |now: Millis| Msg::Ack {
        epoch: Epoch(2),
        last_seq: SeqNo(2),
        sent_at: now,
        rejoining: true,
    };
    // n3 and n2 (acking since `t`) are not yet steady for a lease: no handover, although n2
    // is caught up.
    r.handle(t, msg_from(2, rejoining_ack(t)));
    let mut now = t;
    while now.plus(Millis(250)) < t.plus(Millis(2000)) {
        now = now.plus(Millis(250));
        r.handle(now, msg_from(3, ack(2, now)));
        let outs = r.handle(now, msg_from(2, rejoining_ack(now)));
        assert!(!handover(&outs), "at {now:?}");
        assert!(!handover(&r.handle(now, Input::Tick)), "at {now:?}");
    }
    // Once n3 has acked steadily for a lease, the shard goes to n3, never to n2.
    now = now.plus(Millis(250));
    r.handle(now, msg_from(3, ack(2, now)));
    r.handle(now, msg_from(2, rejoining_ack(now)));
    let outs = r.handle(now, Input::Tick);
    let handed = handed_to(&outs);
    assert_eq!(handed, vec![NodeId(3)], "{outs:?}");
}

/// A follower that misses records its leader already committed reports how many until it
/// holds them: the commit point of an `Append` counts even when its prefix does not match.
#[test]
fn a_follower_is_behind_until_it_holds_what_its_leader_committed() {
    let mut r = replica(2, 1, vec![rec(1, 1)]);
    assert_eq!(r.records_behind(), 0);
    // The leader has committed up to 4; we hold record 1 but do not know it committed (a
    // restarted replica knows no commit point): the prefix at 3 does not match.
    let outs = r.handle(Millis(10), append(1, 3, 1, vec![rec(1, 4)], 4));
    assert!(
        sends(&outs)
            .iter()
            .any(|(_, m)| matches!(m, Msg::Gap { .. })),
        "{outs:?}"
    );
    assert_eq!(r.records_behind(), 4);
    // The records from 2 on arrive: once durable and committed, nothing is missing.
    let outs = r.handle(
        Millis(20),
        append(1, 1, 1, vec![rec(1, 2), rec(1, 3), rec(1, 4)], 4),
    );
    persisted_all(&mut r, Millis(20), &outs);
    assert_eq!(r.commit_seq(), SeqNo(4));
    assert_eq!(r.records_behind(), 0);
}
