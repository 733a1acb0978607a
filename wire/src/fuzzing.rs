//! Fuzz targets of the node RPC format (see `tierkv_engine::fuzzing`): requests, traced
//! requests, responses, batch bodies and streamed answers, and shard maps as read from
//! object storage. The workspace's `tests/fuzz_decoders.rs` runs them.
//!
//! Compiled for this crate's tests and, with the `testing` feature, for other crates'.

use bytes::{Bytes, BytesMut};
use tierkv_engine::error::ErrorKind;
use tierkv_engine::fuzzing::{Reseal, Target};
use tierkv_engine::replica::{ChangePhase, Membership};
use tierkv_engine::shard::ScanPage;
use tierkv_engine::types::{
    Condition, Entry, EntryKind, Epoch, Mutation, NodeId, ReadConsistency, SeqNo, ShardId,
    WriteBatch,
};

use crate::proto::batch::{AnswerReader, decode_requests, encode_requests, put_answer};
use crate::proto::describe::{FollowerFacts, NodeEvent, ShardFacts};
use crate::proto::{
    NodeDescription, NodeStatus, RemoteError, ReplicaRole, Request, Response, ShardConfiguration,
    ShardStatus, TraceContext, decode_request, decode_response, decode_traced_request,
    encode_request, encode_response, encode_traced,
};
use crate::shardmap::ShardMap;

/// One message of each kind, with optional fields present.
pub fn samples() -> (Vec<Request>, Vec<Response>) {
    let entry = Entry {
        key: Bytes::from_static(b"key"),
        seq: SeqNo(9),
        kind: EntryKind::Put {
            value: Bytes::from_static(b"value"),
            content_type: Some(Bytes::from_static(b"text/plain")),
        },
        expires_at: Some(1_700_000_000_000),
    };
    let requests = vec![
        Request::Get {
            shard: ShardId(3),
            key: Bytes::from_static(b"k"),
            consistency: ReadConsistency::Eventual,
        },
        Request::Write {
            shard: ShardId(3),
            batch: WriteBatch::new()
                .put(&b"a"[..], &b"1"[..])
                .delete(&b"b"[..])
                .op(
                    Mutation::Put {
                        key: Bytes::from_static(b"c"),
                        value: Bytes::from_static(b"3"),
                        content_type: Some(Bytes::from_static(b"x/y")),
                        expires_at: Some(5),
                    },
                    Condition::VersionIs(SeqNo(4)),
                )
                .reporting_prior(),
        },
        Request::Scan {
            shard: ShardId(1),
            prefix: Bytes::from_static(b"p/"),
            start_after: Some(Bytes::from_static(b"p/a")),
            limit: 100,
            consistency: ReadConsistency::Strong,
        },
        Request::Status,
        Request::GetIfChanged {
            shard: ShardId(2),
            key: Bytes::from_static(b"k"),
            known: SeqNo(41),
        },
        Request::GetLeased {
            shard: ShardId(2),
            key: Bytes::from_static(b"k"),
            known: Some(SeqNo(41)),
        },
        Request::Describe { max_events: 100 },
        Request::StatusWithConfigurations,
    ];
    let responses = vec![
        Response::Unchanged,
        Response::Leased {
            lease_ms: 300,
            mark: tierkv_engine::replica::LeaseMark {
                epoch: tierkv_engine::types::Epoch(3),
                seq: SeqNo(10),
            },
            read: crate::proto::LeasedRead::Got(Some(entry.clone())),
        },
        Response::Got(Some(entry.clone())),
        Response::Written {
            seq: SeqNo(10),
            prior: vec![Some(SeqNo(2)), None],
        },
        Response::Scanned(ScanPage {
            entries: vec![entry],
            next: Some(Bytes::from_static(b"key")),
        }),
        Response::Status(NodeStatus {
            node: NodeId(2),
            map_version: 7,
            shards: vec![ShardStatus {
                shard: ShardId(0),
                role: ReplicaRole::Leader,
                epoch: Epoch(3),
                leader: Some(NodeId(2)),
                commit_seq: SeqNo(5),
                last_seq: SeqNo(6),
                flushed_seq: SeqNo(1),
                configuration: None,
            }],
        }),
        Response::Status(sample_configured_status()),
        Response::Error(RemoteError::ConditionFailed {
            key: Bytes::from_static(b"k"),
            expected: Condition::MustNotExist,
            actual: Some(SeqNo(1)),
        }),
        Response::Error(RemoteError::Other {
            kind: ErrorKind::Data,
            message: "corrupt segment".to_owned(),
        }),
        Response::Described(Box::new(NodeDescription {
            node: 2,
            version: "0.1.0".to_owned(),
            shards: vec![ShardFacts {
                shard: 1,
                role: "leader".to_owned(),
                followers: vec![FollowerFacts {
                    node: 3,
                    match_seq: 8,
                }],
                ..ShardFacts::default()
            }],
            events: vec![NodeEvent {
                id: 1,
                at_ms: 5,
                kind: "became_leader".to_owned(),
                shard: Some(1),
                ..NodeEvent::default()
            }],
            ..NodeDescription::default()
        })),
    ];
    (requests, responses)
}

/// A status with configurations: one shard moving (joint, target {1,2,4}), one without.
pub fn sample_configured_status() -> NodeStatus {
    NodeStatus {
        node: NodeId(2),
        map_version: 7,
        shards: vec![
            ShardStatus {
                shard: ShardId(0),
                role: ReplicaRole::Leader,
                epoch: Epoch(3),
                leader: Some(NodeId(2)),
                commit_seq: SeqNo(5),
                last_seq: SeqNo(6),
                flushed_seq: SeqNo(1),
                configuration: Some(ShardConfiguration {
                    committed: Membership::Steady(vec![NodeId(1), NodeId(2), NodeId(3)]),
                    in_force: Membership::Joint {
                        old: vec![NodeId(1), NodeId(2), NodeId(3)],
                        new: vec![NodeId(1), NodeId(2), NodeId(4)],
                    },
                    target: vec![NodeId(1), NodeId(2), NodeId(4)],
                    phase: ChangePhase::Joint,
                }),
            },
            ShardStatus {
                shard: ShardId(1),
                role: ReplicaRole::Follower,
                epoch: Epoch(3),
                leader: None,
                commit_seq: SeqNo(0),
                last_seq: SeqNo(0),
                flushed_seq: SeqNo(0),
                configuration: None,
            },
        ],
    }
}

/// The node RPC and shard map targets.
#[must_use]
pub fn targets() -> Vec<Target> {
    let (requests, responses) = samples();
    let encoded: Vec<Bytes> = requests.iter().map(encode_request).collect();
    let context = TraceContext {
        trace_id: [0x4b; 16],
        span_id: [0x0f; 8],
        flags: 1,
    };
    let traced = encoded.iter().map(|r| encode_traced(&context, r)).collect();
    let mut answers = BytesMut::new();
    for (i, r) in responses.iter().enumerate() {
        put_answer(&mut answers, u32::try_from(i).unwrap_or(u32::MAX), r);
    }
    let map = ShardMap::new(
        1,
        16,
        3,
        8,
        vec![
            crate::shardmap::Member::active(NodeId(1), "127.0.0.1:7001"),
            crate::shardmap::Member::active(NodeId(2), "127.0.0.1:7002"),
            crate::shardmap::Member::active(NodeId(3), "127.0.0.1:7003"),
        ],
    );
    let mut maps = Vec::new();
    if let Ok(map) = map {
        maps.push(map.to_json());
        if let Ok(draining) = map.drain_member(NodeId(3)) {
            maps.push(draining.to_json());
        }
    }
    vec![
        Target {
            name: "node_rpc.request",
            samples: encoded.clone(),
            reseal: Reseal::Crc32cTrailer,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                let _ = decode_request(b);
            }),
        },
        Target {
            name: "node_rpc.traced_request",
            samples: traced,
            reseal: Reseal::Crc32cTrailer,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                let _ = decode_traced_request(b);
            }),
        },
        Target {
            name: "node_rpc.response",
            samples: responses.iter().map(encode_response).collect(),
            reseal: Reseal::Crc32cTrailer,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                let _ = decode_response(b);
            }),
        },
        Target {
            name: "node_rpc.batch",
            samples: vec![encode_requests(&encoded)],
            reseal: Reseal::None,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                let _ = decode_requests(b);
            }),
        },
        Target {
            name: "node_rpc.answers",
            samples: vec![answers.freeze()],
            reseal: Reseal::None,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                // In two chunks, as a stream delivers them.
                let mut r = AnswerReader::default();
                let half = b.len() / 2;
                r.push(&b[..half]);
                while let Ok(Some(_)) = r.next_answer() {}
                r.push(&b[half..]);
                while let Ok(Some(_)) = r.next_answer() {}
                let _ = r.is_clean();
            }),
        },
        Target {
            name: "shardmap.json",
            samples: maps,
            reseal: Reseal::None,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                if let Ok(m) = ShardMap::from_json(b) {
                    let _ = m.replicas(ShardId(0));
                }
            }),
        },
    ]
}
