//! Membership changes driven by hand (design note 0009): the leader's steps, quorums of joint
//! configurations, candidates counting the adopted log's configuration, learners, retired
//! ids, and the invariants.

use crate::replica::invariants;
use crate::replica::{
    ChangePhase, Input, Membership, Millis, Msg, NodeId, Output, PersistOp, Record, Role,
};
use crate::types::{Epoch, SeqNo};

use super::unit::{ack, leader, msg_from, persisted_all, rec, replica, sends};

fn ids(v: &[u32]) -> Vec<NodeId> {
    v.iter().copied().map(NodeId).collect()
}

fn appended_config(outs: &[Output]) -> Option<Membership> {
    outs.iter().find_map(|o| match o {
        Output::Persist {
            op: PersistOp::Append(records),
            ..
        } => records.iter().find_map(|r| r.membership.clone()),
        _ => None,
    })
}

fn committed(outs: &[Output]) -> Option<SeqNo> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Committed { upto } => Some(*upto),
            _ => None,
        })
        .max()
}

/// A leader of {1,2,3} moving to {1,2,4}: 4 learns, then the joint configuration (committed
/// only by a quorum of both halves), then the final one; 3 gets a last `Append` and is
/// dropped.
#[test]
fn a_leader_moves_through_learning_joint_and_final() {
    let (mut r, t) = leader();
    assert_eq!(r.change_phase(), ChangePhase::Done);
    r.handle(
        t,
        Input::SetTarget {
            voters: ids(&[1, 2, 4]),
        },
    );
    assert_eq!(r.change_phase(), ChangePhase::Learning);
    let t = t.plus(Millis(250));
    let outs = r.handle(t, Input::Tick);
    assert!(
        sends(&outs)
            .iter()
            .any(|(to, m)| *to == NodeId(4) && matches!(m, Msg::Append { .. })),
        "the learner gets Appends: {outs:?}"
    );
    assert_eq!(appended_config(&outs), None, "not before the learner acked");
    let l = r.learners();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].node, NodeId(4));
    assert!(!l[0].acked);

    // The learner acks the whole log: the joint configuration is appended on the next tick.
    r.handle(t, msg_from(4, ack(2, t)));
    assert!(r.learners()[0].acked);
    let outs = r.handle(t, Input::Tick);
    let joint = Membership::Joint {
        old: ids(&[1, 2, 3]),
        new: ids(&[1, 2, 4]),
    };
    assert_eq!(appended_config(&outs), Some(joint.clone()));
    assert_eq!(r.membership(), &joint, "in force once appended");
    assert_eq!(
        r.committed_membership(),
        &Membership::Steady(ids(&[1, 2, 3])),
        "not committed yet"
    );
    assert_eq!(r.change_phase(), ChangePhase::Joint);
    assert_eq!(r.log().last_seq(), SeqNo(3));

    // Our copy and 3's: a quorum of the old half only.
    let mut got = persisted_all(&mut r, t, &outs);
    got.extend(r.handle(t, msg_from(3, ack(3, t))));
    assert_eq!(committed(&got), None, "the new half has no quorum yet");
    let got = r.handle(t, msg_from(4, ack(3, t)));
    assert_eq!(committed(&got), Some(SeqNo(3)));
    assert_eq!(r.committed_membership(), &joint);
    // Proposals are still taken during the change (we are a voter of both halves).
    let outs = r.handle(
        t,
        Input::Propose {
            entries: rec(2, 4).entries,
        },
    );
    assert!(outs.contains(&Output::Proposed { seq: SeqNo(4) }));
    persisted_all(&mut r, t, &outs);

    // The final configuration follows the committed joint one.
    let outs = r.handle(t, Input::Tick);
    let fin = Membership::Steady(ids(&[1, 2, 4]));
    assert_eq!(appended_config(&outs), Some(fin.clone()));
    assert_eq!(r.change_phase(), ChangePhase::Final);
    persisted_all(&mut r, t, &outs);
    // 3's ack counts for nothing under {1,2,4}; 4's completes the quorum, and 3 gets a last
    // Append carrying the commit point, then nothing.
    let got = r.handle(t, msg_from(3, ack(5, t)));
    assert_eq!(committed(&got), None);
    let got = r.handle(t, msg_from(4, ack(5, t)));
    assert_eq!(committed(&got), Some(SeqNo(5)));
    assert!(
        sends(&got).iter().any(|(to, m)| *to == NodeId(3)
            && matches!(m, Msg::Append { commit_seq, .. } if *commit_seq == SeqNo(5))),
        "the removed replica learns the commit: {got:?}"
    );
    assert_eq!(r.change_phase(), ChangePhase::Done);
    let outs = r.handle(t.plus(Millis(500)), Input::Tick);
    assert!(sends(&outs).iter().all(|(to, _)| *to != NodeId(3)));
    assert!(sends(&outs).iter().any(|(to, _)| *to == NodeId(4)));
}

/// A learner far behind the commit point is not promoted.
#[test]
fn a_learner_that_lags_is_not_made_a_voter() {
    let (mut r, t) = leader();
    for s in 3..80 {
        let outs = r.handle(
            t,
            Input::Propose {
                entries: rec(2, s).entries,
            },
        );
        persisted_all(&mut r, t, &outs);
    }
    r.handle(t, msg_from(2, ack(79, t)));
    assert_eq!(r.commit_seq(), SeqNo(79));
    r.handle(
        t,
        Input::SetTarget {
            voters: ids(&[1, 2, 3, 4]),
        },
    );
    r.handle(t, msg_from(4, ack(2, t)));
    let outs = r.handle(t.plus(Millis(10)), Input::Tick);
    assert_eq!(appended_config(&outs), None);
    assert_eq!(r.learners()[0].records_behind, 77);
    let behind = r.learners()[0].bytes_behind;
    let payload: u64 = (3..80)
        .flat_map(|s| rec(2, s).entries)
        .map(|e| e.data_len() as u64)
        .sum();
    assert!(payload > 0);
    assert_eq!(behind, payload, "the entries of records 3..=79");
    r.handle(t, msg_from(4, ack(75, t)));
    let after: u64 = (76..80)
        .flat_map(|s| rec(2, s).entries)
        .map(|e| e.data_len() as u64)
        .sum();
    assert_eq!(r.learners()[0].bytes_behind, after);
    let outs = r.handle(t.plus(Millis(20)), Input::Tick);
    assert!(matches!(
        appended_config(&outs),
        Some(Membership::Joint { .. })
    ));
}

/// A candidate counts promises toward the configuration of the log it would adopt: with a
/// joint configuration there, a promise from the old half alone is not enough, and it asks
/// the new voters it did not know.
#[test]
fn a_candidate_needs_a_quorum_of_the_adopted_logs_configuration() {
    let mut r = replica(1, 1, vec![rec(1, 1)]);
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
    let joint = Membership::Joint {
        old: ids(&[1, 2, 3]),
        new: ids(&[1, 4, 5]),
    };
    let promised = Msg::Promised {
        epoch: Epoch(2),
        last_epoch: Epoch(1),
        last_seq: SeqNo(3),
        membership: Some(joint),
    };
    let outs = r.handle(t, msg_from(2, promised));
    assert_eq!(r.role(), Role::Candidate);
    assert!(
        !sends(&outs)
            .iter()
            .any(|(_, m)| matches!(m, Msg::Fetch { .. })),
        "{{1,2}} is no quorum of the new half {{1,4,5}}"
    );
    let asked: Vec<NodeId> = sends(&outs)
        .iter()
        .filter(|(_, m)| matches!(m, Msg::Promise { .. }))
        .map(|(to, _)| *to)
        .collect();
    assert!(
        asked.contains(&NodeId(4)) && asked.contains(&NodeId(5)),
        "{asked:?}"
    );
    let outs = r.handle(
        t,
        msg_from(
            4,
            Msg::Promised {
                epoch: Epoch(2),
                last_epoch: Epoch(0),
                last_seq: SeqNo(0),
                membership: None,
            },
        ),
    );
    assert!(
        sends(&outs)
            .iter()
            .any(|(to, m)| *to == NodeId(2) && matches!(m, Msg::Fetch { .. })),
        "adopts 2's log once both halves promised: {outs:?}"
    );
}

/// A candidate whose adopted log's configuration does not list it abandons the takeover.
#[test]
fn a_candidate_that_the_adopted_log_removed_abandons() {
    let mut r = replica(3, 1, vec![rec(1, 1)]);
    let t = Millis(4000);
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
    assert_eq!(r.role(), Role::Candidate);
    let promised = Msg::Promised {
        epoch: Epoch(2),
        last_epoch: Epoch(1),
        last_seq: SeqNo(4),
        membership: Some(Membership::Steady(ids(&[1, 2, 4]))),
    };
    r.handle(t, msg_from(2, promised));
    assert_eq!(r.role(), Role::Follower);
}

/// A learner (not in the configuration in force) never starts a takeover, nor takes a
/// handover; once a configuration lists it, it is a voter.
#[test]
fn a_learner_starts_no_takeover_until_a_configuration_lists_it() {
    let mut r = replica(4, 1, vec![rec(1, 1)]);
    assert!(!r.is_voter());
    let outs = r.handle(Millis(60_000), Input::Tick);
    assert!(!outs.contains(&Output::LoadManifest), "{outs:?}");
    assert_eq!(r.role(), Role::Follower);
    // Its leader's Appends are taken (from a node it has no configuration for yet).
    let joint = Record {
        epoch: Epoch(2),
        seq: SeqNo(2),
        entries: Vec::new(),
        membership: Some(Membership::Joint {
            old: ids(&[1, 2, 3]),
            new: ids(&[1, 2, 4]),
        }),
    };
    let outs = r.handle(
        Millis(60_001),
        Input::Message {
            from: NodeId(1),
            msg: Msg::Append {
                epoch: Epoch(2),
                prev_seq: SeqNo(1),
                prev_epoch: Epoch(1),
                records: vec![joint],
                commit_seq: SeqNo(1),
                flushed_seq: SeqNo(0),
                sent_at: Millis(5),
            },
        },
    );
    assert!(r.is_voter(), "in force once appended");
    let got = persisted_all(&mut r, Millis(60_001), &outs);
    assert!(sends(&got).iter().any(|(to, m)| *to == NodeId(1)
        && matches!(m, Msg::Ack { last_seq, .. } if *last_seq == SeqNo(2))));
}

/// A retired id is ignored: its promises and acks are never counted.
#[test]
fn messages_from_a_retired_id_are_ignored() {
    let (mut r, t) = leader();
    r.handle(t, Input::Retired { node: NodeId(3) });
    let outs = r.handle(
        t,
        Input::Propose {
            entries: rec(2, 3).entries,
        },
    );
    persisted_all(&mut r, t, &outs);
    let got = r.handle(t, msg_from(3, ack(3, t)));
    assert_eq!(committed(&got), None);
    assert!(got.is_empty());
    let outs = r.handle(t.plus(Millis(300)), Input::Tick);
    assert!(sends(&outs).iter().all(|(to, _)| *to != NodeId(3)));
}

#[test]
fn the_configuration_chain_and_its_rules() {
    let c = Membership::Steady(ids(&[1, 2, 3]));
    let j = Membership::Joint {
        old: ids(&[3, 2, 1]),
        new: ids(&[1, 2, 4]),
    };
    let t = Membership::Steady(ids(&[4, 2, 1]));
    assert!(invariants::config_chain_step(&c, &j).is_ok());
    assert!(invariants::config_chain_step(&j, &t).is_ok());
    assert!(
        invariants::config_chain_step(&c, &t).is_err(),
        "skips the joint step"
    );
    assert!(
        invariants::config_chain_step(&j, &c).is_err(),
        "a joint ends in its new set"
    );
    assert!(
        invariants::one_config_change_in_flight(Some(SeqNo(5)), SeqNo(4), &c, &j).is_err(),
        "the previous change is not committed"
    );
    assert!(invariants::one_config_change_in_flight(Some(SeqNo(5)), SeqNo(5), &c, &j).is_ok());
    assert!(invariants::config_change_after_barrier(true, SeqNo(3), SeqNo(4)).is_err());
    assert!(invariants::learner_caught_up(SeqNo(10), SeqNo(18), 8).is_ok());
    assert!(invariants::learner_caught_up(SeqNo(9), SeqNo(18), 8).is_err());
    assert!(invariants::learners_not_counted(&j, 1, &ids(&[3, 4])).is_err());
    assert!(invariants::learners_not_counted(&j, 1, &ids(&[1, 2])).is_ok());
    assert!(
        invariants::promise_quorum_of_adopted_config(&t, 1, NodeId(3), &ids(&[1, 2, 3])).is_err(),
        "not a voter"
    );
}

/// The log knows the configuration in force at every seq, across truncations and manifests.
#[test]
fn the_log_tracks_the_configuration_in_force() {
    use crate::replica::log::Log;
    let cfg = |seq: u64, m: Membership| Record {
        epoch: Epoch(1),
        seq: SeqNo(seq),
        entries: Vec::new(),
        membership: Some(m),
    };
    let j = Membership::Joint {
        old: ids(&[1, 2, 3]),
        new: ids(&[1, 2, 4]),
    };
    let t = Membership::Steady(ids(&[1, 2, 4]));
    let mut log = Log::new(
        SeqNo(0),
        Epoch(0),
        None,
        vec![rec(1, 1), cfg(2, j.clone()), rec(1, 3), cfg(4, t.clone())],
    );
    assert_eq!(log.membership(), Some(&t));
    assert_eq!(log.membership_at(SeqNo(3)), Some(&j));
    assert_eq!(log.membership_at(SeqNo(1)), None);
    log.truncate_after(SeqNo(3));
    assert_eq!(log.membership(), Some(&j));
    log.advance_base(SeqNo(3), Epoch(1), None);
    assert_eq!(
        log.base_membership(),
        Some(&j),
        "kept from the dropped records"
    );
    assert_eq!(log.membership(), Some(&j));
    // A manifest past a divergent tail brings its own configuration.
    log.advance_base(SeqNo(9), Epoch(2), Some(t.clone()));
    assert_eq!(log.membership(), Some(&t));
}

/// A leader that the new configuration removes finishes the change, takes no more writes,
/// and hands the shard to a voter of the new configuration; a learner's phase is
/// `Learning`, a removed follower's `Releasing`.
#[test]
fn a_removed_leader_finishes_the_change_then_hands_over_to_a_new_voter() {
    let (mut r, t) = leader();
    let target = ids(&[2, 3, 4]);
    r.handle(
        t,
        Input::SetTarget {
            voters: target.clone(),
        },
    );
    r.handle(t, msg_from(4, ack(2, t)));
    r.handle(t, msg_from(3, ack(2, t)));
    let outs = r.handle(t, Input::Tick);
    assert!(matches!(
        appended_config(&outs),
        Some(Membership::Joint { .. })
    ));
    persisted_all(&mut r, t, &outs);
    for n in [2, 3, 4] {
        r.handle(t, msg_from(n, ack(3, t)));
    }
    assert_eq!(r.commit_seq(), SeqNo(3));
    let outs = r.handle(t, Input::Tick);
    assert_eq!(
        appended_config(&outs),
        Some(Membership::Steady(target.clone())),
        "a leader outside the new set still appends the final record"
    );
    persisted_all(&mut r, t, &outs);
    assert!(!r.is_voter());
    let refused = r.handle(
        t,
        Input::Propose {
            entries: rec(2, 5).entries,
        },
    );
    assert!(
        refused.contains(&Output::Rejected {
            reason: crate::replica::RejectReason::NotReady
        }),
        "no client writes on a leader that is not a voter: {refused:?}"
    );
    let mut handed = Vec::new();
    for n in [2, 3, 4] {
        let got = r.handle(t, msg_from(n, ack(4, t)));
        handed.extend(
            sends(&got)
                .into_iter()
                .filter_map(|(to, m)| matches!(m, Msg::Handover { .. }).then_some(to)),
        );
    }
    assert_eq!(r.commit_seq(), SeqNo(4));
    let got = r.handle(t.plus(Millis(10)), Input::Tick);
    handed.extend(
        sends(&got)
            .into_iter()
            .filter_map(|(to, m)| matches!(m, Msg::Handover { .. }).then_some(to)),
    );
    assert_eq!(handed.len(), 1, "{handed:?}");
    assert!(target.contains(&handed[0]));
    assert_eq!(r.role(), Role::Follower);
    assert_eq!(r.change_phase(), ChangePhase::Releasing);

    // A learner of that target, fed nothing yet, is learning.
    let mut l = replica(4, 1, vec![rec(1, 1)]);
    l.handle(t, Input::SetTarget { voters: target });
    assert_eq!(l.change_phase(), ChangePhase::Learning);
}
