//! Tests of the wire format: round trips, golden bytes, damage and arbitrary input.

use bytes::{BufMut, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use tierkv_engine::codec::Enc;
use tierkv_engine::error::InvalidReason;
use tierkv_engine::types::{Condition, EntryKind, Epoch, Mutation, WriteOp};
use tierkv_engine::{Error, ErrorKind};

use super::codec::{
    REQ_STATUS, REQ_WRITE, RESP_DESCRIBED, RESP_LEASED, RESP_STATUS, RESP_WRITTEN, finish, header,
};
use super::describe::{CacheFacts, FollowerFacts, LearnerFacts, NodeEvent, ShardFacts, WalFacts};
use super::*;
use crate::fuzzing::{sample_configured_status, samples};
use tierkv_engine::replica::{ChangePhase, LeaseMark};

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Keys of stored entries obey the engine's limits (1..=MAX_KEY_LEN bytes).
fn entry_key() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 1..24).prop_map(Bytes::from)
}

fn consistency() -> impl Strategy<Value = ReadConsistency> {
    prop_oneof![
        Just(ReadConsistency::Strong),
        Just(ReadConsistency::Eventual)
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        Just(Condition::None),
        Just(Condition::MustNotExist),
        Just(Condition::MustExist),
        any::<u64>().prop_map(|s| Condition::VersionIs(SeqNo(s))),
        any::<u64>().prop_map(|s| Condition::ExpiredVersion(SeqNo(s))),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (
            bytes(24),
            bytes(40),
            proptest::option::of(bytes(300)),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(key, value, content_type, expires_at)| Mutation::Put {
                key,
                value,
                content_type,
                expires_at,
            }),
        bytes(24).prop_map(|key| Mutation::Delete { key }),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    let kind = prop_oneof![
        Just(EntryKind::Tombstone),
        (bytes(40), proptest::option::of(bytes(32))).prop_map(|(value, content_type)| {
            EntryKind::Put {
                value,
                content_type,
            }
        }),
    ];
    (
        entry_key(),
        any::<u64>(),
        kind,
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(key, seq, kind, expires_at)| Entry {
            key,
            seq: SeqNo(seq),
            kind,
            expires_at,
        })
}

fn shard() -> impl Strategy<Value = ShardId> {
    any::<u32>().prop_map(ShardId)
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (shard(), bytes(24), consistency()).prop_map(|(shard, key, consistency)| {
            Request::Get {
                shard,
                key,
                consistency,
            }
        }),
        (shard(), vec((mutation(), condition()), 0..6), any::<bool>()).prop_map(
            |(shard, ops, report_prior)| Request::Write {
                shard,
                batch: WriteBatch {
                    ops: ops
                        .into_iter()
                        .map(|(mutation, condition)| WriteOp {
                            mutation,
                            condition,
                        })
                        .collect(),
                    report_prior,
                },
            }
        ),
        (
            shard(),
            bytes(16),
            proptest::option::of(bytes(16)),
            any::<u32>(),
            consistency()
        )
            .prop_map(|(shard, prefix, start_after, limit, consistency)| {
                Request::Scan {
                    shard,
                    prefix,
                    start_after,
                    limit,
                    consistency,
                }
            }),
        Just(Request::Status),
        (shard(), bytes(24), any::<u64>()).prop_map(|(shard, key, known)| {
            Request::GetIfChanged {
                shard,
                key,
                known: SeqNo(known),
            }
        }),
        any::<u32>().prop_map(|max_events| Request::Describe { max_events }),
        Just(Request::StatusWithConfigurations),
        (shard(), bytes(24), proptest::option::of(any::<u64>())).prop_map(|(shard, key, known)| {
            Request::GetLeased {
                shard,
                key,
                known: known.map(SeqNo),
            }
        }),
    ]
}

fn description() -> impl Strategy<Value = NodeDescription> {
    let shard = (
        any::<u32>(),
        "[a-z]{0,10}",
        any::<[u64; 12]>(),
        proptest::option::of(any::<u32>()),
        any::<(bool, bool)>(),
        vec((any::<u32>(), any::<u64>()), 0..3),
        (
            vec(vec(any::<u32>(), 1..4), 1..3),
            vec(any::<u32>(), 0..4),
            "[a-z]{0,9}",
            vec((any::<u32>(), any::<[u64; 2]>(), any::<bool>()), 0..3),
        ),
    )
        .prop_map(
            |(
                shard,
                role,
                n,
                leader,
                (rejoining, poisoned),
                followers,
                (configuration, target, phase, learners),
            )| ShardFacts {
                shard,
                role,
                epoch: n[0],
                leader,
                commit_seq: n[1],
                applied_seq: n[2],
                last_seq: n[3],
                flushed_seq: n[4],
                records_behind: n[5],
                rejoining,
                poisoned,
                memtable_bytes: n[6],
                unflushed_bytes: n[7],
                frozen_memtables: n[8],
                l0_segments: n[9],
                l1_segments: n[10],
                segment_bytes: n[11],
                reads: n[0] ^ n[1],
                writes: n[2] ^ n[3],
                followers: followers
                    .into_iter()
                    .map(|(node, match_seq)| FollowerFacts { node, match_seq })
                    .collect(),
                voter: rejoining ^ poisoned,
                configuration,
                target,
                phase,
                learners: learners
                    .into_iter()
                    .map(
                        |(node, [records_behind, bytes_behind], acked)| LearnerFacts {
                            node,
                            records_behind,
                            bytes_behind,
                            acked,
                        },
                    )
                    .collect(),
            },
        );
    let event = (
        any::<(u64, u64)>(),
        "\\PC{0,12}",
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(
            |((id, at_ms), kind, shard, epoch, peer, map_version)| NodeEvent {
                id,
                at_ms,
                kind,
                shard,
                epoch,
                peer,
                map_version,
            },
        );
    (
        any::<u32>(),
        "\\PC{0,12}",
        any::<[u64; 7]>(),
        any::<bool>(),
        vec(shard, 0..4),
        vec(event, 0..4),
    )
        .prop_map(
            |(node, version, n, poisoned, shards, events)| NodeDescription {
                node,
                version,
                wire_revision: u16::from(poisoned),
                started_at_ms: n[0],
                now_ms: n[1],
                map_version: n[2],
                wal: WalFacts {
                    bytes: n[3],
                    files: n[4],
                    poisoned,
                },
                block_cache: CacheFacts {
                    hits: n[5],
                    misses: n[6],
                },
                shards,
                events,
            },
        )
}

fn role() -> impl Strategy<Value = ReplicaRole> {
    prop_oneof![
        Just(ReplicaRole::Follower),
        Just(ReplicaRole::Candidate),
        Just(ReplicaRole::Recovering),
        Just(ReplicaRole::Leader),
    ]
}

fn voters() -> impl Strategy<Value = Vec<NodeId>> {
    proptest::collection::btree_set(any::<u32>(), 1..6)
        .prop_map(|s| s.into_iter().map(NodeId).collect())
}

fn membership() -> impl Strategy<Value = Membership> {
    prop_oneof![
        voters().prop_map(Membership::Steady),
        (voters(), voters()).prop_map(|(old, new)| Membership::Joint { old, new }),
    ]
}

fn phase() -> impl Strategy<Value = ChangePhase> {
    prop_oneof![
        Just(ChangePhase::Done),
        Just(ChangePhase::Learning),
        Just(ChangePhase::Joint),
        Just(ChangePhase::Final),
        Just(ChangePhase::Releasing),
    ]
}

fn configuration() -> impl Strategy<Value = ShardConfiguration> {
    (membership(), membership(), vec(any::<u32>(), 0..6), phase()).prop_map(
        |(committed, in_force, target, phase)| ShardConfiguration {
            committed,
            in_force,
            target: target.into_iter().map(NodeId).collect(),
            phase,
        },
    )
}

fn shard_status() -> impl Strategy<Value = ShardStatus> {
    (
        shard(),
        role(),
        any::<u64>(),
        proptest::option::of(any::<u32>()),
        any::<[u64; 3]>(),
        proptest::option::of(configuration()),
    )
        .prop_map(
            |(shard, role, epoch, leader, [c, l, f], configuration)| ShardStatus {
                shard,
                role,
                epoch: Epoch(epoch),
                leader: leader.map(NodeId),
                commit_seq: SeqNo(c),
                last_seq: SeqNo(l),
                flushed_seq: SeqNo(f),
                configuration,
            },
        )
}

fn invalid_reason() -> impl Strategy<Value = InvalidReason> {
    prop_oneof![
        Just(InvalidReason::KeyEmpty),
        Just(InvalidReason::KeyTooLong),
        Just(InvalidReason::ValueTooLarge),
        Just(InvalidReason::ContentTypeTooLong),
        Just(InvalidReason::BatchEmpty),
        Just(InvalidReason::DuplicateKey),
        Just(InvalidReason::ZeroLimit),
    ]
}

fn error_kind() -> impl Strategy<Value = ErrorKind> {
    prop_oneof![
        Just(ErrorKind::Invalid),
        Just(ErrorKind::Conflict),
        Just(ErrorKind::Unavailable),
        Just(ErrorKind::Fenced),
        Just(ErrorKind::Closed),
        Just(ErrorKind::Data),
        Just(ErrorKind::Internal),
    ]
}

fn remote_error() -> impl Strategy<Value = RemoteError> {
    prop_oneof![
        (bytes(24), condition(), proptest::option::of(any::<u64>())).prop_map(
            |(key, expected, actual)| RemoteError::ConditionFailed {
                key,
                expected,
                actual: actual.map(SeqNo),
            }
        ),
        invalid_reason().prop_map(|reason| RemoteError::Invalid { reason }),
        (shard(), any::<u64>(), any::<u64>()).prop_map(|(shard, unflushed_bytes, limit)| {
            RemoteError::Backpressure {
                shard,
                unflushed_bytes,
                limit,
            }
        }),
        (shard(), proptest::option::of(any::<u32>())).prop_map(|(shard, leader)| {
            RemoteError::NotLeader {
                shard,
                leader: leader.map(NodeId),
            }
        }),
        shard().prop_map(|shard| RemoteError::OutcomeUnknown { shard }),
        Just(RemoteError::Closed),
        (shard(), any::<u64>())
            .prop_map(|(shard, map_version)| RemoteError::NotHosted { shard, map_version }),
        (error_kind(), ".{0,40}").prop_map(|(kind, message)| RemoteError::Other { kind, message }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        proptest::option::of(entry()).prop_map(Response::Got),
        (any::<u64>(), vec(proptest::option::of(any::<u64>()), 0..8)).prop_map(|(seq, prior)| {
            Response::Written {
                seq: SeqNo(seq),
                prior: prior.into_iter().map(|p| p.map(SeqNo)).collect(),
            }
        }),
        (vec(entry(), 0..5), proptest::option::of(entry_key()))
            .prop_map(|(entries, next)| Response::Scanned(ScanPage { entries, next })),
        (any::<u32>(), any::<u64>(), vec(shard_status(), 0..5)).prop_map(
            |(node, map_version, shards)| Response::Status(NodeStatus {
                node: NodeId(node),
                map_version,
                shards,
            })
        ),
        remote_error().prop_map(Response::Error),
        Just(Response::Unchanged),
        description().prop_map(|d| Response::Described(Box::new(d))),
        (
            any::<u32>(),
            any::<(u64, u64)>(),
            proptest::option::of(proptest::option::of(entry()))
        )
            .prop_map(|(lease_ms, (epoch, seq), read)| Response::Leased {
                lease_ms,
                mark: LeaseMark {
                    epoch: Epoch(epoch),
                    seq: SeqNo(seq),
                },
                read: read.map_or(LeasedRead::Unchanged, LeasedRead::Got),
            }),
    ]
}

proptest! {
    #[test]
    fn every_request_round_trips(req in request()) {
        let b = encode_request(&req);
        prop_assert_eq!(decode_request(&b), Ok(req));
        // A request is not a response.
        prop_assert!(decode_response(&b).is_err());
    }

    #[test]
    fn every_response_round_trips(resp in response()) {
        let b = encode_response(&resp);
        prop_assert_eq!(decode_response(&b), Ok(resp));
        prop_assert!(decode_request(&b).is_err());
    }

    #[test]
    fn traced_requests_round_trip(
        req in request(),
        trace_id in any::<[u8; 16]>(),
        span_id in any::<[u8; 8]>(),
        flags in any::<u8>(),
    ) {
        let ctx = TraceContext { trace_id, span_id, flags };
        let b = encode_traced(&ctx, &encode_request(&req));
        if ctx.is_valid() {
            prop_assert_eq!(decode_traced_request(&b), Ok((req.clone(), Some(ctx))));
            // Callers that do not trace see the inner request.
            prop_assert_eq!(decode_request(&b), Ok(req));
        } else {
            prop_assert!(decode_request(&b).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..512)) {
        let b = Bytes::from(data);
        // Random bytes essentially never carry a valid checksum; the point is no panic.
        let _ = decode_request(&b);
        let _ = decode_response(&b);
    }

    #[test]
    fn valid_crc_over_garbage_never_panics(kind in any::<u8>(), data in vec(any::<u8>(), 0..256)) {
        // Past the checksum the field decoders see arbitrary bytes.
        let mut enc = header(kind);
        enc.raw(&data);
        let b = finish(enc);
        let _ = decode_request(&b);
        let _ = decode_response(&b);
    }
}

#[test]
fn every_truncation_and_bit_flip_is_an_error() {
    let (requests, responses) = samples();
    let encoded: Vec<(Bytes, bool)> = requests
        .iter()
        .map(|r| (encode_request(r), true))
        .chain(responses.iter().map(|r| (encode_response(r), false)))
        .collect();
    for (b, is_request) in encoded {
        let decode = |x: &Bytes| {
            if is_request {
                decode_request(x).map(drop)
            } else {
                decode_response(x).map(drop)
            }
        };
        assert!(decode(&b).is_ok());
        for cut in 0..b.len() {
            assert!(decode(&b.slice(..cut)).is_err(), "cut at {cut} of {b:02x?}");
        }
        for byte in 0..b.len() {
            for bit in 0..8 {
                let mut v = b.to_vec();
                v[byte] ^= 1 << bit;
                assert!(
                    decode(&Bytes::from(v)).is_err(),
                    "flip of bit {bit} in byte {byte} of {b:02x?}"
                );
            }
        }
        let mut long = b.to_vec();
        long.push(0);
        assert!(
            decode(&Bytes::from(long)).is_err(),
            "trailing byte accepted"
        );
    }
}

#[test]
fn huge_counts_are_rejected_without_allocating() {
    let mut enc = header(RESP_WRITTEN);
    enc.u64(1);
    enc.u32(u32::MAX);
    let err = decode_response(&finish(enc)).err();
    assert_eq!(err.map(|e| e.what), Some("count exceeds input"));
    let mut enc = header(REQ_WRITE);
    enc.u32(0);
    enc.u8(0);
    enc.u32(u32::MAX);
    let err = decode_request(&finish(enc)).err();
    assert_eq!(err.map(|e| e.what), Some("count exceeds input"));
}

#[test]
fn wrong_magic_and_version_are_named() {
    let mut enc = Enc::default();
    enc.u32(MAGIC ^ 1);
    enc.u16(VERSION);
    enc.u8(REQ_STATUS);
    assert_eq!(
        decode_request(&finish(enc)).err().map(|e| e.what),
        Some("bad magic")
    );
    let mut enc = Enc::default();
    enc.u32(MAGIC);
    enc.u16(VERSION + 1);
    enc.u8(REQ_STATUS);
    assert_eq!(
        decode_request(&finish(enc)).err().map(|e| e.what),
        Some("unsupported message version")
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Snapshot of the format: if this changes, the wire format changed (bump [`VERSION`]).
#[test]
fn golden_bytes() {
    let get = encode_request(&Request::Get {
        shard: ShardId(7),
        key: Bytes::from_static(b"k1"),
        consistency: ReadConsistency::Eventual,
    });
    assert_eq!(hex(&get), GOLDEN_GET);
    let not_leader = encode_response(&Response::Error(RemoteError::NotLeader {
        shard: ShardId(7),
        leader: Some(NodeId(2)),
    }));
    assert_eq!(hex(&not_leader), GOLDEN_NOT_LEADER);
    let revalidate = encode_request(&Request::GetIfChanged {
        shard: ShardId(7),
        key: Bytes::from_static(b"k1"),
        known: SeqNo(9),
    });
    assert_eq!(hex(&revalidate), GOLDEN_GET_IF_CHANGED);
    assert_eq!(
        hex(&encode_response(&Response::Unchanged)),
        GOLDEN_UNCHANGED
    );
}

/// "TKVC", version 1, kind 5 (GetIfChanged, revision 2), shard 7, key length 2, "k1",
/// known 9, crc32c.
const GOLDEN_GET_IF_CHANGED: &str = "544b564301000507000000020000006b310900000000000000038b30b9";
/// "TKVC", version 1, kind 21 (Unchanged, revision 2), crc32c.
const GOLDEN_UNCHANGED: &str = "544b56430100150827f2c3";

/// `GetLeased` and `Leased` (revision 6, design note 0014).
#[test]
fn read_lease_golden_bytes() {
    let req = encode_request(&Request::GetLeased {
        shard: ShardId(7),
        key: Bytes::from_static(b"k1"),
        known: Some(SeqNo(9)),
    });
    assert_eq!(hex(&req), GOLDEN_GET_LEASED);
    let miss = encode_request(&Request::GetLeased {
        shard: ShardId(7),
        key: Bytes::from_static(b"k1"),
        known: None,
    });
    assert_eq!(hex(&miss), GOLDEN_GET_LEASED_MISS);
    let unchanged = encode_response(&Response::Leased {
        lease_ms: 300,
        mark: LeaseMark {
            epoch: Epoch(4),
            seq: SeqNo(11),
        },
        read: LeasedRead::Unchanged,
    });
    assert_eq!(hex(&unchanged), GOLDEN_LEASED_UNCHANGED);
    let absent = encode_response(&Response::Leased {
        lease_ms: 0,
        mark: LeaseMark {
            epoch: Epoch(0),
            seq: SeqNo(0),
        },
        read: LeasedRead::Got(None),
    });
    assert_eq!(hex(&absent), GOLDEN_LEASED_ABSENT);
    // An unknown answer code does not decode.
    let mut enc = header(RESP_LEASED);
    enc.u32(300);
    enc.u64(4);
    enc.u64(11);
    enc.u8(3);
    assert!(decode_response(&finish(enc)).is_err());
}

/// "TKVC", version 1, kind 9 (GetLeased, revision 6), shard 7, key length 2, "k1", known
/// present 9, crc32c.
const GOLDEN_GET_LEASED: &str = "544b564301000907000000020000006b31010900000000000000a90e1c90";
/// The same without a known version.
const GOLDEN_GET_LEASED_MISS: &str = "544b564301000907000000020000006b3100d45b285c";
/// "TKVC", version 1, kind 24 (Leased), lease_ms 300, mark epoch 4 and seq 11, answer 0
/// (unchanged), crc32c.
const GOLDEN_LEASED_UNCHANGED: &str =
    "544b56430100182c01000004000000000000000b0000000000000000b1cfb988";
/// Kind 24, lease_ms 0, mark zeros, answer 1 (no live entry), crc32c.
const GOLDEN_LEASED_ABSENT: &str =
    "544b5643010018000000000000000000000000000000000000000001b191eb6e";

/// The kinds of revision 1 keep their bytes (the golden bytes above), and each request
/// names the revision that introduced it: a gateway sends revision-2 kinds only to nodes
/// that announced revision 2 (design note 0008).
#[test]
fn revisions_of_request_kinds() {
    assert_eq!(REVISION, 6);
    let leased = Request::GetLeased {
        shard: ShardId(1),
        key: Bytes::from_static(b"k"),
        known: None,
    };
    assert_eq!(leased.revision(), REVISION_READ_LEASES);
    assert_eq!(
        Request::StatusWithConfigurations.revision(),
        REVISION_CONFIGURATIONS
    );
    assert_eq!(REVISION_TRACE_CONTEXT, 4);
    let get = Request::Get {
        shard: ShardId(1),
        key: Bytes::from_static(b"k"),
        consistency: ReadConsistency::Strong,
    };
    assert_eq!(get.revision(), 1);
    assert_eq!(Request::Status.revision(), 1);
    let gic = Request::GetIfChanged {
        shard: ShardId(1),
        key: Bytes::from_static(b"k"),
        known: SeqNo(3),
    };
    assert_eq!(gic.revision(), REVISION_GET_IF_CHANGED);
    assert_eq!(
        Request::Describe { max_events: 1 }.revision(),
        REVISION_DESCRIBE
    );
}

/// `Describe` and `Described` (design note 0010): the request's one field, the answer's
/// format and JSON document; documents of another format, or that do not parse, are refused;
/// fields a reader does not know are ignored and fields a writer did not send get defaults.
#[test]
fn describe_golden_bytes_and_document_evolution() {
    let req = encode_request(&Request::Describe { max_events: 16 });
    assert_eq!(hex(&req), GOLDEN_DESCRIBE);
    let described = |format: u16, json: &[u8]| {
        let mut enc = header(RESP_DESCRIBED);
        enc.u16(format);
        enc.bytes32(json);
        decode_response(&finish(enc))
    };
    let json = br#"{"node":3,"version":"0.9.0","shards":[{"shard":1,"role":"learner","later":[1]}],"added_later":{"x":1}}"#;
    let Ok(Response::Described(doc)) = described(DESCRIBE_FORMAT, json) else {
        panic!("a document with unknown fields decodes");
    };
    assert_eq!(doc.node, 3);
    assert_eq!(doc.shards.len(), 1);
    assert_eq!(doc.shards[0].role, "learner");
    assert_eq!(
        doc.shards[0].followers,
        vec![],
        "missing fields take defaults"
    );
    assert_eq!(doc.wal, WalFacts::default());
    assert_eq!(
        described(DESCRIBE_FORMAT + 1, json).err().map(|e| e.what),
        Some("unsupported describe format")
    );
    assert_eq!(
        described(DESCRIBE_FORMAT, b"{not json")
            .err()
            .map(|e| e.what),
        Some("describe document is not valid JSON")
    );
    assert_eq!(
        described(DESCRIBE_FORMAT, br#"{"node":"three"}"#)
            .err()
            .map(|e| e.what),
        Some("describe document is not valid JSON")
    );
}

/// "TKVC", version 1, kind 6 (Describe), max_events 16, crc32c.
const GOLDEN_DESCRIBE: &str = "544b564301000610000000e61ce0b6";

/// "TKVC", version 1, kind 1 (Get), shard 7, key length 2, "k1", eventual, crc32c.
const GOLDEN_GET: &str = "544b564301000107000000020000006b3101a60f2120";
/// "TKVC", version 1, kind 20 (Error), code 4 (NotLeader), shard 7, leader Some(2), crc32c.
const GOLDEN_NOT_LEADER: &str = "544b5643010014040700000001020000005345a97e";

#[test]
fn engine_errors_become_wire_errors() {
    let same = [
        Error::NotLeader {
            shard: ShardId(1),
            leader: Some(NodeId(2)),
        },
        Error::OutcomeUnknown { shard: ShardId(1) },
        Error::Closed,
        Error::Invalid {
            reason: InvalidReason::DuplicateKey,
        },
        Error::Backpressure {
            shard: ShardId(1),
            unflushed_bytes: 10,
            limit: 5,
        },
        Error::ConditionFailed {
            key: Bytes::from_static(b"k"),
            expected: Condition::MustExist,
            actual: None,
        },
    ];
    // The errors a gateway tells apart travel as themselves, with the same text.
    for e in same {
        let wire = RemoteError::from_engine(&e);
        assert_eq!(wire.to_string(), e.to_string());
        assert!(!matches!(wire, RemoteError::Other { .. }), "{wire:?}");
    }
    let fenced = Error::Fenced {
        shard: ShardId(1),
        ours: Epoch(1),
        current: Epoch(2),
    };
    let wire = RemoteError::from_engine(&fenced);
    assert_eq!(
        wire,
        RemoteError::Other {
            kind: ErrorKind::Fenced,
            message: fenced.to_string(),
        }
    );
    assert_eq!(ReplicaRole::from(Role::Recovering), ReplicaRole::Recovering);
    assert_eq!(ReplicaRole::from(Role::Leader), ReplicaRole::Leader);
}

/// Batches: requests round trip through their frames; answers are read back from a body cut
/// into chunks anywhere, in the order they were written; damage is an error, not a panic.
#[test]
fn batches_round_trip_and_answers_survive_any_chunking() {
    let reqs = [
        Request::Status,
        Request::Get {
            shard: ShardId(2),
            key: Bytes::from_static(b"k"),
            consistency: ReadConsistency::Eventual,
        },
    ];
    let body = batch::encode_requests(&reqs.iter().map(encode_request).collect::<Vec<_>>());
    assert_eq!(batch::decode_requests(&body).expect("decodes"), reqs);
    assert!(batch::decode_requests(&body.slice(..body.len() - 1)).is_err());

    let answers = [
        (1, Response::Got(None)),
        (
            0,
            Response::Written {
                seq: SeqNo(9),
                prior: vec![None, Some(SeqNo(3))],
            },
        ),
        (7, Response::Error(RemoteError::Closed)),
    ];
    let mut stream = BytesMut::new();
    for (index, resp) in &answers {
        batch::put_answer(&mut stream, *index, resp);
    }
    for a in 0..=stream.len() {
        for b in a..=stream.len() {
            let mut reader = batch::AnswerReader::default();
            let mut got = Vec::new();
            for chunk in [&stream[..a], &stream[a..b], &stream[b..]] {
                reader.push(chunk);
                while let Some((i, r)) = reader.next_answer().expect("well formed") {
                    got.push((i, r.expect("decodes")));
                }
            }
            assert!(reader.is_clean());
            assert_eq!(got, answers, "cut at {a} and {b}");
        }
    }
    let mut reader = batch::AnswerReader::default();
    reader.push(&stream[..stream.len() - 1]);
    while reader.next_answer().expect("well formed so far").is_some() {}
    assert!(!reader.is_clean(), "a cut answer is left over");

    let mut huge = BytesMut::new();
    huge.put_u32_le(0);
    huge.put_u32_le(u32::MAX);
    let mut reader = batch::AnswerReader::default();
    reader.push(&huge);
    assert!(reader.next_answer().is_err());
    let mut flipped = stream.to_vec();
    flipped[12] ^= 0x01;
    let mut reader = batch::AnswerReader::default();
    reader.push(&flipped);
    let (_, first) = reader
        .next_answer()
        .expect("framing intact")
        .expect("whole");
    assert!(first.is_err(), "a damaged envelope does not decode");
}

fn sample_context() -> TraceContext {
    TraceContext {
        trace_id: [0x4b; 16],
        span_id: [0x0f; 8],
        flags: 1,
    }
}

/// Golden bytes of a `Traced` Status (note 0011): the context, then the inner envelope.
#[test]
fn traced_golden_bytes() {
    let inner = encode_request(&Request::Status);
    let b = encode_traced(&sample_context(), &inner);
    assert_eq!(&b[..7], &[b'T', b'K', b'V', b'C', 1, 0, 7]);
    assert_eq!(&b[7..23], &[0x4b; 16]);
    assert_eq!(&b[23..31], &[0x0f; 8]);
    assert_eq!(b[31], 1);
    assert_eq!(
        &b[32..36],
        &u32::try_from(inner.len()).expect("small").to_le_bytes()
    );
    assert_eq!(&b[36..36 + inner.len()], &inner[..]);
    assert_eq!(b.len(), 36 + inner.len() + 4);
    // Untraced requests decode with no context.
    assert_eq!(decode_traced_request(&inner), Ok((Request::Status, None)));
}

#[test]
fn nested_traced_requests_do_not_decode() {
    let once = encode_traced(&sample_context(), &encode_request(&Request::Status));
    let twice = encode_traced(&sample_context(), &once);
    assert!(decode_traced_request(&twice).is_err());
    assert!(decode_request(&twice).is_err());
}

#[test]
fn traced_requests_in_a_batch_keep_their_own_context() {
    let mut other = sample_context();
    other.span_id = [7; 8];
    let bodies = [
        encode_traced(&sample_context(), &encode_request(&Request::Status)),
        encode_request(&Request::Describe { max_events: 3 }),
        encode_traced(&other, &encode_request(&Request::Status)),
    ];
    let got = batch::decode_traced_requests(&batch::encode_requests(&bodies)).expect("decodes");
    assert_eq!(
        got,
        vec![
            (Request::Status, Some(sample_context())),
            (Request::Describe { max_events: 3 }, None),
            (Request::Status, Some(other)),
        ]
    );
}

/// Revision 5 (design note 0009): `StatusWithConfigurations` (kind 8) and its answer (kind
/// 23); a `Status` whose shards carry no configuration keeps kind 19's bytes, so that older
/// gateways read every plain `Status` answer as before.
#[test]
fn status_with_configurations_golden_bytes() {
    assert_eq!(
        hex(&encode_request(&Request::StatusWithConfigurations)),
        GOLDEN_STATUS_WITH_CONFIGURATIONS
    );
    let configured = sample_configured_status();
    let bytes = encode_response(&Response::Status(configured.clone()));
    assert_eq!(hex(&bytes), GOLDEN_CONFIGURED_STATUS);
    assert_eq!(
        decode_response(&bytes).ok(),
        Some(Response::Status(configured.clone()))
    );
    let mut plain = configured;
    for s in &mut plain.shards {
        s.configuration = None;
    }
    let plain_bytes = encode_response(&Response::Status(plain.clone()));
    assert_eq!(
        plain_bytes[6], RESP_STATUS,
        "kind 19 without configurations"
    );
    assert_eq!(hex(&plain_bytes), GOLDEN_PLAIN_STATUS);
}

/// "TKVC", version 1, kind 8 (StatusWithConfigurations), crc32c.
const GOLDEN_STATUS_WITH_CONFIGURATIONS: &str = "544b5643010008b4ac846c";
/// "TKVC", version 1, kind 23, node 2, map version 7, 2 shards. Shard 0: leader (4), epoch
/// 3, leader Some(2), commit 5, last 6, flushed 1, configuration present: committed steady
/// (tag 1, 3 voters: 1, 2, 3), in force joint (tag 2: 3 voters 1, 2, 3; 3 voters 1, 2, 4),
/// target 3 ids (1, 2, 4), phase 2 (joint). Shard 1: follower (1), epoch 3, no leader, seqs
/// 0, no configuration. crc32c.
const GOLDEN_CONFIGURED_STATUS: &str = "544b5643010017020000000700000000000000020000000000000004030000000000000001020000000500000000000000060000000000000001000000000000000101030001000000020000000300000002030001000000020000000300000003000100000002000000040000000300010000000200000004000000020100000001030000000000000000000000000000000000000000000000000000000000000000001e9bf9df";
/// The same status without configurations: kind 19, as revisions 1–4 write it.
const GOLDEN_PLAIN_STATUS: &str = "544b564301001302000000070000000000000002000000000000000403000000000000000102000000050000000000000006000000000000000100000000000000010000000103000000000000000000000000000000000000000000000000000000000000000038f659fa";
