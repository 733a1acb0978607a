//! Model-based property test: random operation sequences against a shard whose only
//! replica is a node in this process (writes through its replication driver) and a
//! `BTreeMap` model, with clean close/reopen, crashes (stop without close, optionally leaving
//! a torn WAL tail), flushes, compactions, TTL sweeps and a manual clock.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use tierkv_engine::clock::ManualClock;
use tierkv_engine::error::{Error, ErrorKind};
use tierkv_engine::options::EngineOptions;
use tierkv_engine::segment::SegmentOptions;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{
    Condition, EntryKind, Mutation, ReadConsistency, SeqNo, ShardId, WriteBatch,
};
use tierkv_engine::wal::WalSettings;
use tierkv_node::ShardHandle;
use tierkv_node::node::Node;

use common::OneReplica;

const SHARD: ShardId = ShardId(3);
const KEYS: u8 = 12;

#[derive(Debug, Clone)]
enum Op {
    Put { k: u8, v: u16, ttl: Option<u16> },
    Delete { k: u8 },
    Cas { k: u8, v: u16, current: bool },
    Create { k: u8, v: u16 },
    Batch { ks: Vec<(u8, Option<u16>)> },
    Get { k: u8 },
    Scan { prefix: u8, limit: u8 },
    Advance { ms: u16 },
    Flush,
    Compact,
    Sweep,
    Reopen,
    Crash { torn: Vec<u8> },
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS;
    prop_oneof![
        6 => (k.clone(), any::<u16>(), proptest::option::of(1u16..400)).prop_map(|(k, v, ttl)| Op::Put { k, v, ttl }),
        2 => k.clone().prop_map(|k| Op::Delete { k }),
        2 => (k.clone(), any::<u16>(), any::<bool>()).prop_map(|(k, v, current)| Op::Cas { k, v, current }),
        1 => (k.clone(), any::<u16>()).prop_map(|(k, v)| Op::Create { k, v }),
        2 => proptest::collection::vec((k.clone(), proptest::option::of(any::<u16>())), 1..4).prop_map(|ks| Op::Batch { ks }),
        4 => k.clone().prop_map(|k| Op::Get { k }),
        1 => (0u8..3, 1u8..6).prop_map(|(prefix, limit)| Op::Scan { prefix, limit }),
        2 => (0u16..300).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Sweep),
        1 => Just(Op::Reopen),
        1 => proptest::collection::vec(any::<u8>(), 0..11).prop_map(|torn| Op::Crash { torn }),
    ]
}

fn key(k: u8) -> Bytes {
    // Keys share prefixes so that prefix scans select subsets: "a0", "a1", "b2", ...
    Bytes::from(format!("{}{}", (b'a' + k % 3) as char, k))
}

#[derive(Debug, Clone, PartialEq)]
struct Val {
    value: Bytes,
    version: SeqNo,
    expires_at: Option<u64>,
}

struct Harness {
    data_dir: tempfile::TempDir,
    store: ObjStore,
    clock: Arc<ManualClock>,
    node: Option<Node>,
    model: BTreeMap<Bytes, Val>,
}

fn opts() -> EngineOptions {
    EngineOptions {
        write_buffer_bytes: 4096,
        max_unflushed_bytes: 1 << 20,
        l0_compaction_trigger: 2,
        l0_max: 4,
        target_segment_bytes: 2048,
        segment: SegmentOptions {
            block_bytes: 1024,
            bloom_bits_per_key: 8,
        },
        obsolete_grace: Duration::from_millis(500),
        ttl_sweep_interval: Duration::from_secs(3600),
        ..EngineOptions::default()
    }
}

impl Harness {
    async fn open(&mut self) {
        let one = OneReplica {
            shards: 4,
            engine: opts(),
            wal: WalSettings {
                segment_bytes: 8 << 10,
                ..WalSettings::default()
            },
            cache_bytes: 64 << 10,
            faults: None,
            ..OneReplica::default()
        };
        let node = one
            .open(self.data_dir.path(), &self.store, self.clock.clone())
            .await;
        self.node = Some(node);
    }

    /// Stops the node as a crash would (nothing flushed; the WAL keeps what it acked).
    async fn crash(&mut self) {
        if let Some(node) = self.node.take() {
            node.abandon().await;
        }
    }

    async fn close(&mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown(Duration::from_secs(10)).await;
        }
    }

    fn now(&self) -> u64 {
        use tierkv_engine::clock::Clock;
        self.clock.now_millis()
    }

    fn live(&self, k: &Bytes) -> Option<&Val> {
        let now = self.now();
        self.model
            .get(k)
            .filter(|v| v.expires_at.is_none_or(|t| t > now))
    }

    fn shard(&self) -> ShardHandle {
        self.node
            .as_ref()
            .and_then(|n| n.shard(SHARD))
            .expect("open shard")
    }

    async fn write(&mut self, muts: Vec<(Mutation, Condition)>) -> Result<SeqNo, Error> {
        let mut b = WriteBatch::new();
        for (m, c) in &muts {
            b = b.op(m.clone(), *c);
        }
        let r = self.shard().write(b).await.map(|(seq, _)| seq);
        if let Ok(v) = r {
            for (m, _) in muts {
                match m {
                    Mutation::Put {
                        key,
                        value,
                        expires_at,
                        ..
                    } => {
                        self.model.insert(
                            key,
                            Val {
                                value,
                                version: v,
                                expires_at,
                            },
                        );
                    }
                    Mutation::Delete { key } => {
                        self.model.remove(&key);
                    }
                }
            }
        }
        r
    }

    async fn check_get(&self, k: &Bytes) {
        let got = self
            .shard()
            .get(k, ReadConsistency::Strong)
            .await
            .expect("get");
        let want = self.live(k);
        match (got, want) {
            (None, None) => {}
            (Some(e), Some(w)) => {
                assert_eq!(e.seq, w.version, "version of {k:?}");
                assert!(
                    matches!(&e.kind, EntryKind::Put { value, .. } if *value == w.value),
                    "value of {k:?}"
                );
            }
            (g, w) => panic!("key {k:?}: engine {g:?} model {w:?}"),
        }
    }

    async fn apply(&mut self, op: Op) {
        let put = |k: u8, v: u16, exp: Option<u64>| Mutation::Put {
            key: key(k),
            value: Bytes::from(format!("v{v}")),
            content_type: None,
            expires_at: exp,
        };
        match op {
            Op::Put { k, v, ttl } => {
                let exp = ttl.map(|t| self.now() + u64::from(t));
                self.write(vec![(put(k, v, exp), Condition::None)])
                    .await
                    .expect("put");
            }
            Op::Delete { k } => {
                self.write(vec![(Mutation::Delete { key: key(k) }, Condition::None)])
                    .await
                    .expect("delete");
            }
            Op::Cas { k, v, current } => {
                let live = self.live(&key(k)).map(|v| v.version);
                let expect = if current {
                    live.unwrap_or(SeqNo(1 << 40))
                } else {
                    SeqNo(1 << 41)
                };
                let r = self
                    .write(vec![(put(k, v, None), Condition::VersionIs(expect))])
                    .await;
                assert_eq!(r.is_ok(), live == Some(expect), "cas on {k}: {r:?}");
                if let Err(e) = r {
                    assert_eq!(e.kind(), ErrorKind::Conflict);
                }
            }
            Op::Create { k, v } => {
                let exists = self.live(&key(k)).is_some();
                let r = self
                    .write(vec![(put(k, v, None), Condition::MustNotExist)])
                    .await;
                assert_eq!(r.is_ok(), !exists, "create {k}: {r:?}");
            }
            Op::Batch { ks } => {
                let mut seen = std::collections::HashSet::new();
                let muts: Vec<_> = ks
                    .into_iter()
                    .filter(|(k, _)| seen.insert(*k))
                    .map(|(k, v)| match v {
                        Some(v) => (put(k, v, None), Condition::None),
                        None => (Mutation::Delete { key: key(k) }, Condition::None),
                    })
                    .collect();
                self.write(muts).await.expect("batch");
            }
            Op::Get { k } => self.check_get(&key(k)).await,
            Op::Scan { prefix, limit } => {
                let p = [b'a' + prefix];
                let mut got = Vec::new();
                let mut cursor: Option<Bytes> = None;
                loop {
                    let page = self
                        .shard()
                        .scan(
                            &p,
                            cursor.as_deref(),
                            usize::from(limit),
                            ReadConsistency::Strong,
                        )
                        .await
                        .expect("scan");
                    assert!(page.entries.len() <= usize::from(limit));
                    got.extend(page.entries.into_iter().map(|e| (e.key, e.seq)));
                    match page.next {
                        Some(n) => cursor = Some(n),
                        None => break,
                    }
                }
                let want: Vec<_> = self
                    .model
                    .iter()
                    .filter(|(k, _)| k.starts_with(&p) && self.live(k).is_some())
                    .map(|(k, v)| (k.clone(), v.version))
                    .collect();
                assert_eq!(got, want, "scan of {:?}", p);
            }
            Op::Advance { ms } => self.clock.advance(u64::from(ms)),
            Op::Flush => self.shard().shard().flush().await.expect("flush"),
            Op::Compact => {
                self.shard().shard().compact().await.expect("compact");
            }
            Op::Sweep => {
                let expired = self
                    .model
                    .values()
                    .filter(|v| v.expires_at.is_some_and(|t| t <= self.now()))
                    .count() as u64;
                let out = self.shard().shard().sweep_expired().await.expect("sweep");
                assert!(
                    out.deleted <= expired,
                    "swept {} but only {expired} expired",
                    out.deleted
                );
                let now = self.now();
                self.model
                    .retain(|_, v| v.expires_at.is_none_or(|t| t > now));
            }
            Op::Reopen => {
                self.close().await;
                self.open().await;
            }
            Op::Crash { torn } => {
                self.crash().await;
                if !torn.is_empty() {
                    append_to_last_wal_file(&self.data_dir.path().join("wal"), &torn);
                }
                self.open().await;
            }
        }
    }

    async fn check_all(&self) {
        for k in 0..KEYS {
            self.check_get(&key(k)).await;
        }
    }
}

/// Simulates a write torn by a crash: fewer bytes than a frame header at the end of the log.
fn append_to_last_wal_file(dir: &std::path::Path, bytes: &[u8]) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("wal dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    files.sort();
    if let Some(last) = files.last() {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(last)
            .expect("open wal file");
        f.write_all(bytes).expect("append");
    }
}

fn run(ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut h = Harness {
            data_dir: tempfile::tempdir().expect("tempdir"),
            store: ObjStore::in_memory(),
            clock: ManualClock::new(1_700_000_000_000),
            node: None,
            model: BTreeMap::new(),
        };
        h.open().await;
        for op in ops {
            h.apply(op).await;
        }
        h.check_all().await;
        // Every acknowledged write survives a final crash, and a reopen after it.
        h.crash().await;
        h.open().await;
        h.check_all().await;
        h.close().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_model(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops);
    }
}
