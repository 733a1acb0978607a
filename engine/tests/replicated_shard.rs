//! The replicated mode of a shard (`shard/replicated.rs`), driven the way the node's
//! replication driver drives it, through the public API only:
//!
//! - committed log records are applied in seq order ([`Shard::apply_committed`]) and only
//!   they become visible; [`Shard::applied`] is the applied point;
//! - a leader evaluates a client batch with [`Shard::prepare`] + [`Shard::evaluate`] against
//!   its overlay of proposed-but-unapplied entries, then the memtables, then the segments;
//! - only a leader ([`Shard::set_leading`]) flushes and runs background work, and its
//!   manifests record the log position its memtables cover;
//! - followers catch up with [`Shard::load_latest`] + [`Shard::install`], and an old version
//!   in a follower's memtable never wins over a newer one another leader flushed.
//!
//! Every replica is a `Shard` opened with [`Shard::open_replicated`] on one shared in-memory
//! object store, each with its own WAL in a temporary directory and a manual clock. The
//! committed log is simulated by [`Log`], which also keeps the expected state per seq.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use parking_lot::Mutex;
use tierkv_engine::block_cache::MemBlockCache;
use tierkv_engine::clock::ManualClock;
use tierkv_engine::manifest::{Manifest, ManifestStore};
use tierkv_engine::options::EngineOptions;
use tierkv_engine::paths;
use tierkv_engine::replica::Record;
use tierkv_engine::shard::{PrepareOutcome, Proposer, Shard, ShardComponents};
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{
    Condition, Entry, EntryKind, Epoch, Mutation, SeqNo, ShardId, WriteBatch,
};
use tierkv_engine::wal::{SyncPolicy, Wal, WalOptions};
use tierkv_engine::write_buffers::WriteBuffers;
use tierkv_engine::{Error, ErrorKind};

const S: ShardId = ShardId(0);
const E1: Epoch = Epoch(1);
const E2: Epoch = Epoch(2);
const E3: Epoch = Epoch(3);
/// Start of the manual clock (unix millis).
const NOW: u64 = 1_000_000;
/// How long a test waits for a background task before failing.
const DEADLINE: Duration = Duration::from_secs(10);

/// Small memtables; compaction effectively off, so L0 counts are exact.
fn opts() -> EngineOptions {
    EngineOptions {
        write_buffer_bytes: 4096,
        max_unflushed_bytes: 1 << 20,
        l0_compaction_trigger: 16,
        l0_max: 32,
        ttl_sweep_interval: Duration::from_secs(3600),
        ..EngineOptions::default()
    }
}

/// Replicas of shards on one object store.
struct Cluster {
    dir: tempfile::TempDir,
    store: ObjStore,
    clock: Arc<ManualClock>,
}

impl Cluster {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            store: ObjStore::in_memory(),
            clock: ManualClock::new(NOW),
        }
    }

    /// Opens a replica of shard `S` named `name` (its WAL directory) at the latest manifest.
    async fn replica(&self, name: &str) -> Shard {
        self.replica_of(name, S, opts()).await
    }

    /// Opens a replica of `shard` with `opts`, as the node does: at the latest manifest.
    async fn replica_of(&self, name: &str, shard: ShardId, opts: EngineOptions) -> Shard {
        let (wal, _) = Wal::open(WalOptions {
            dir: self.dir.path().join(name),
            sync: SyncPolicy::Always,
            segment_bytes: 1 << 20,
            ..WalOptions::default()
        })
        .expect("open wal");
        let manifest = self.latest_of(shard).await.unwrap_or_default();
        Shard::open_replicated(
            shard,
            Arc::new(opts.clone()),
            ShardComponents {
                store: self.store.clone(),
                cache: Arc::new(MemBlockCache::new(1 << 20)),
                clock: self.clock.clone(),
                wal,
                buffers: WriteBuffers::standalone(&opts),
            },
            manifest,
        )
        .await
        .expect("open replicated shard")
    }

    async fn latest_of(&self, shard: ShardId) -> Option<Manifest> {
        ManifestStore::new(self.store.clone(), shard)
            .load_latest()
            .await
            .expect("load latest manifest")
    }

    async fn latest(&self) -> Manifest {
        self.latest_of(S).await.expect("a published manifest")
    }

    /// Number of manifest versions and of segment objects of `shard` in the store.
    async fn objects(&self, shard: ShardId) -> (usize, usize) {
        let manifests = self
            .store
            .list(&paths::manifest_prefix(shard), None)
            .await
            .expect("list manifests")
            .len();
        let segments = self
            .store
            .list(&paths::segment_prefix(shard), None)
            .await
            .expect("list segments")
            .len();
        (manifests, segments)
    }
}

/// Expected state of one key: its newest version and value (None: deleted).
type Model = BTreeMap<String, (SeqNo, Option<String>)>;

/// The committed log of shard `S`, as the replication core would hand it to the driver.
#[derive(Default)]
struct Log {
    records: Vec<Record>,
}

impl Log {
    fn next(&self) -> SeqNo {
        SeqNo(self.records.len() as u64 + 1)
    }

    /// Appends a batch: `(key, Some(value))` puts, `(key, None)` deletes.
    fn write(&mut self, epoch: Epoch, ops: &[(&str, Option<&str>)]) -> SeqNo {
        let seq = self.next();
        let entries = ops
            .iter()
            .map(|(k, v)| match v {
                Some(v) => put_entry(k, v, seq),
                None => Entry {
                    key: Bytes::copy_from_slice(k.as_bytes()),
                    seq,
                    kind: EntryKind::Tombstone,
                    expires_at: None,
                },
            })
            .collect();
        self.records.push(Record {
            epoch,
            seq,
            entries,
            membership: None,
        });
        seq
    }

    fn put(&mut self, epoch: Epoch, key: &str, value: &str) -> SeqNo {
        self.write(epoch, &[(key, Some(value))])
    }

    fn delete(&mut self, epoch: Epoch, key: &str) -> SeqNo {
        self.write(epoch, &[(key, None)])
    }

    /// Appends a record of `entries` as they are.
    fn push(&mut self, epoch: Epoch, entries: Vec<Entry>) -> SeqNo {
        let seq = self.next();
        self.records.push(Record {
            epoch,
            seq,
            entries,
            membership: None,
        });
        seq
    }

    /// A new leader's barrier (no entries).
    fn barrier(&mut self, epoch: Epoch) -> SeqNo {
        self.push(epoch, Vec::new())
    }

    /// Records `from..=to`.
    fn range(&self, from: u64, to: u64) -> &[Record] {
        let lo = usize::try_from(from.saturating_sub(1)).expect("small");
        let hi = usize::try_from(to).expect("small");
        &self.records[lo..hi]
    }

    /// Records `1..=to`.
    fn upto(&self, to: u64) -> &[Record] {
        self.range(1, to)
    }

    /// The state after applying records `1..=to`.
    fn model(&self, to: u64) -> Model {
        let mut m = Model::new();
        for r in self.upto(to) {
            for e in &r.entries {
                let key = String::from_utf8(e.key.to_vec()).expect("utf-8 key");
                m.insert(key, (r.seq, value_of(e)));
            }
        }
        m
    }
}

fn put_entry(key: &str, value: &str, seq: SeqNo) -> Entry {
    Entry {
        key: Bytes::copy_from_slice(key.as_bytes()),
        seq,
        kind: EntryKind::Put {
            value: Bytes::copy_from_slice(value.as_bytes()),
            content_type: None,
        },
        expires_at: None,
    }
}

fn value_of(e: &Entry) -> Option<String> {
    match &e.kind {
        EntryKind::Put { value, .. } => Some(String::from_utf8(value.to_vec()).expect("utf-8")),
        EntryKind::Tombstone => None,
    }
}

/// The version and value `s` serves for `key` (None: absent, deleted or expired).
async fn read(s: &Shard, key: &str) -> Option<(SeqNo, String)> {
    s.get(key.as_bytes()).await.expect("get").map(|e| {
        let v = value_of(&e).expect("get returned a tombstone");
        (e.seq, v)
    })
}

/// Checks every key of `model` with `get`, and a full scan against the live part of it.
async fn assert_serves(s: &Shard, model: &Model, what: &str) {
    for (key, (seq, value)) in model {
        let want = value.as_ref().map(|v| (*seq, v.clone()));
        assert_eq!(read(s, key).await, want, "{what}: key {key}");
    }
    let page = s.scan(b"", None, 10_000).await.expect("scan");
    let got: Vec<(String, SeqNo, Option<String>)> = page
        .entries
        .iter()
        .map(|e| {
            let key = String::from_utf8(e.key.to_vec()).expect("utf-8 key");
            (key, e.seq, value_of(e))
        })
        .collect();
    let want: Vec<(String, SeqNo, Option<String>)> = model
        .iter()
        .filter(|(_, (_, v))| v.is_some())
        .map(|(k, (seq, v))| (k.clone(), *seq, v.clone()))
        .collect();
    assert_eq!(got, want, "{what}: scan");
}

/// Polls `cond` until it holds; fails the test after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `s` has published a manifest at `flushed_seq` or later.
async fn published_at_least(s: &Shard, flushed_seq: SeqNo) -> (SeqNo, Epoch) {
    let mut rx = s.published();
    let got = tokio::time::timeout(DEADLINE, rx.wait_for(|(f, _)| *f >= flushed_seq))
        .await
        .expect("timed out waiting for a publish")
        .expect("publisher alive");
    *got
}

/// A proposer that records the batches the TTL sweeper hands it and refuses them.
fn recording_proposer() -> (Proposer, Arc<Mutex<Vec<WriteBatch>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let p: Proposer = Arc::new(move |batch: WriteBatch| {
        sink.lock().push(batch);
        async {
            Err::<SeqNo, Error>(Error::NotLeader {
                shard: S,
                leader: None,
            })
        }
        .boxed()
    });
    (p, seen)
}

fn put(key: &str, value: &str) -> Mutation {
    Mutation::Put {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
        content_type: None,
        expires_at: None,
    }
}

fn conditional(key: &str, cond: Condition) -> WriteBatch {
    WriteBatch::new().op(put(key, "new"), cond)
}

async fn evaluate(
    s: &Shard,
    batch: WriteBatch,
    overlay: &HashMap<Bytes, Entry>,
) -> tierkv_engine::Result<PrepareOutcome> {
    let p = s.prepare(batch).await.expect("prepare");
    s.evaluate(&p, overlay)
}

fn ready(r: tierkv_engine::Result<PrepareOutcome>) -> (Vec<Entry>, Vec<Option<SeqNo>>) {
    match r {
        Ok(PrepareOutcome::Ready { entries, prior }) => (entries, prior),
        other => panic!("expected Ready, got {other:?}"),
    }
}

fn failed(r: tierkv_engine::Result<PrepareOutcome>) -> (Bytes, Condition, Option<SeqNo>) {
    match r {
        Err(Error::ConditionFailed {
            key,
            expected,
            actual,
        }) => (key, expected, actual),
        other => panic!("expected a failed condition, got {other:?}"),
    }
}

fn is_retry(r: &tierkv_engine::Result<PrepareOutcome>) -> bool {
    matches!(r, Ok(PrepareOutcome::Retry))
}

// ---------------------------------------------------------------------------------------
// Applying committed records.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn committed_records_apply_in_seq_order_and_replays_are_skipped() {
    let c = Cluster::new();
    let s = c.replica("a").await;
    assert_eq!(s.applied(), SeqNo(0));

    let mut log = Log::default();
    log.put(E1, "a", "a1"); // 1
    log.put(E1, "b", "b1"); // 2
    log.write(E1, &[("a", Some("a3")), ("c", Some("c3"))]); // 3
    log.delete(E1, "b"); // 4

    s.apply_committed(log.upto(2));
    assert_eq!(s.applied(), SeqNo(2));
    assert_serves(&s, &log.model(2), "after 1..=2").await;
    assert_eq!(read(&s, "c").await, None, "seq 3 is not applied yet");

    // The driver hands over an overlapping range: 1 and 2 are skipped, 3 and 4 applied.
    s.apply_committed(log.upto(4));
    assert_eq!(s.applied(), SeqNo(4));
    assert_serves(&s, &log.model(4), "after 1..=4").await;
    assert_eq!(read(&s, "a").await, Some((SeqNo(3), "a3".to_owned())));
    assert_eq!(read(&s, "b").await, None, "deleted at 4");

    // A record at or below the applied point is skipped even if its content differs.
    let bogus = Record {
        epoch: E1,
        seq: SeqNo(3),
        entries: vec![put_entry("a", "bogus", SeqNo(3))],
        membership: None,
    };
    s.apply_committed([&bogus]);
    assert_eq!(s.applied(), SeqNo(4));
    assert_eq!(read(&s, "a").await, Some((SeqNo(3), "a3".to_owned())));

    // A barrier advances the applied point and inserts nothing.
    let bytes = s.stats().memtable_bytes;
    let b = log.barrier(E2); // 5
    s.apply_committed(log.range(5, 5));
    assert_eq!(s.applied(), b);
    assert_eq!(s.stats().memtable_bytes, bytes, "a barrier inserts nothing");
    assert_serves(&s, &log.model(5), "after the barrier").await;

    // Later records apply on top, in order.
    log.put(E2, "a", "a6"); // 6
    log.write(E2, &[("b", Some("b7")), ("c", None)]); // 7
    s.apply_committed(log.range(6, 7));
    assert_eq!(s.applied(), SeqNo(7));
    assert_eq!(read(&s, "a").await, Some((SeqNo(6), "a6".to_owned())));
    assert_eq!(read(&s, "b").await, Some((SeqNo(7), "b7".to_owned())));
    assert_eq!(read(&s, "c").await, None);
    assert_serves(&s, &log.model(7), "after 6..=7").await;
}

// ---------------------------------------------------------------------------------------
// Evaluating batches at the leader.
// ---------------------------------------------------------------------------------------

/// A leader with `a@1 b@2 c@3` in a segment, `d@4 a@5` in the memtable, and an overlay of
/// proposed-but-unapplied entries `e@6` (put) and `b@7` (delete).
async fn evaluation_setup(c: &Cluster) -> (Shard, HashMap<Bytes, Entry>) {
    let s = c.replica("leader").await;
    s.set_leading(Some(E1));
    s.publish_epoch().await.expect("publish epoch");
    let mut log = Log::default();
    log.put(E1, "a", "a1");
    log.put(E1, "b", "b2");
    log.put(E1, "c", "c3");
    s.apply_committed(log.upto(3));
    s.flush().await.expect("flush");
    let st = s.stats();
    assert_eq!(
        (st.l0_segments, st.memtable_bytes),
        (1, 0),
        "a, b, c are in a segment"
    );
    log.put(E1, "d", "d4");
    log.put(E1, "a", "a5");
    s.apply_committed(log.range(4, 5));

    let mut overlay = HashMap::new();
    let e6 = put_entry("e", "e6", SeqNo(6));
    let b7 = Entry {
        key: Bytes::from_static(b"b"),
        seq: SeqNo(7),
        kind: EntryKind::Tombstone,
        expires_at: None,
    };
    overlay.insert(e6.key.clone(), e6);
    overlay.insert(b7.key.clone(), b7);
    (s, overlay)
}

#[tokio::test]
async fn evaluate_checks_conditions_against_overlay_then_memtables_then_segments() {
    let c = Cluster::new();
    let (s, overlay) = evaluation_setup(&c).await;
    let k = |k: &'static str| Bytes::from_static(k.as_bytes());

    // Segments: c@3 only exists there.
    ready(
        evaluate(
            &s,
            conditional("c", Condition::VersionIs(SeqNo(3))),
            &overlay,
        )
        .await,
    );
    ready(evaluate(&s, conditional("c", Condition::MustExist), &overlay).await);
    assert_eq!(
        failed(evaluate(&s, conditional("c", Condition::MustNotExist), &overlay).await),
        (k("c"), Condition::MustNotExist, Some(SeqNo(3)))
    );

    // Memtables: a@5 shadows a@1 in the segment; d@4 is only in the memtable.
    ready(
        evaluate(
            &s,
            conditional("a", Condition::VersionIs(SeqNo(5))),
            &overlay,
        )
        .await,
    );
    assert_eq!(
        failed(
            evaluate(
                &s,
                conditional("a", Condition::VersionIs(SeqNo(1))),
                &overlay
            )
            .await
        ),
        (k("a"), Condition::VersionIs(SeqNo(1)), Some(SeqNo(5)))
    );
    ready(
        evaluate(
            &s,
            conditional("d", Condition::VersionIs(SeqNo(4))),
            &overlay,
        )
        .await,
    );

    // Overlay: e@6 is proposed but not applied; b's proposed delete shadows b@2.
    assert_eq!(read(&s, "e").await, None, "the overlay is not readable");
    ready(
        evaluate(
            &s,
            conditional("e", Condition::VersionIs(SeqNo(6))),
            &overlay,
        )
        .await,
    );
    assert_eq!(
        failed(evaluate(&s, conditional("e", Condition::MustNotExist), &overlay).await),
        (k("e"), Condition::MustNotExist, Some(SeqNo(6)))
    );
    assert_eq!(read(&s, "b").await, Some((SeqNo(2), "b2".to_owned())));
    assert_eq!(
        failed(evaluate(&s, conditional("b", Condition::MustExist), &overlay).await),
        (k("b"), Condition::MustExist, None)
    );
    ready(evaluate(&s, conditional("b", Condition::MustNotExist), &overlay).await);
    // Without the overlay, the same batches see the applied state.
    let none = HashMap::new();
    ready(evaluate(&s, conditional("b", Condition::VersionIs(SeqNo(2))), &none).await);
    ready(evaluate(&s, conditional("e", Condition::MustNotExist), &none).await);

    // Absent everywhere.
    ready(evaluate(&s, conditional("z", Condition::MustNotExist), &overlay).await);
    assert_eq!(
        failed(evaluate(&s, conditional("z", Condition::MustExist), &overlay).await),
        (k("z"), Condition::MustExist, None)
    );

    // One failing op fails the batch.
    let batch = WriteBatch::new()
        .op(put("a", "x"), Condition::VersionIs(SeqNo(5)))
        .op(put("c", "y"), Condition::VersionIs(SeqNo(2)));
    assert_eq!(
        failed(evaluate(&s, batch, &overlay).await),
        (k("c"), Condition::VersionIs(SeqNo(2)), Some(SeqNo(3)))
    );

    // Ready carries the batch as entries (seq assigned later by the replica), no priors.
    let batch = WriteBatch::new()
        .op(put("a", "x"), Condition::VersionIs(SeqNo(5)))
        .delete("d");
    let (entries, prior) = ready(evaluate(&s, batch, &overlay).await);
    assert!(prior.is_empty());
    assert_eq!(
        entries,
        vec![
            put_entry("a", "x", SeqNo(0)),
            Entry {
                key: k("d"),
                seq: SeqNo(0),
                kind: EntryKind::Tombstone,
                expires_at: None,
            },
        ]
    );
}

#[tokio::test]
async fn report_prior_yields_each_ops_prior_live_version() {
    let c = Cluster::new();
    let (s, overlay) = evaluation_setup(&c).await;
    let batch = WriteBatch::new()
        .put("a", "1") // memtable a@5
        .put("c", "1") // segment c@3
        .put("e", "1") // overlay e@6
        .put("b", "1") // overlay delete b@7
        .put("z", "1") // absent
        .delete("d") // memtable d@4
        .reporting_prior();
    let (entries, prior) = ready(evaluate(&s, batch, &overlay).await);
    assert_eq!(entries.len(), 6);
    assert_eq!(
        prior,
        vec![
            Some(SeqNo(5)),
            Some(SeqNo(3)),
            Some(SeqNo(6)),
            None,
            None,
            Some(SeqNo(4)),
        ]
    );

    // An expired version is no prior version.
    let c2 = Cluster::new();
    let s2 = c2.replica("a").await;
    let mut log = Log::default();
    let mut expiring = put_entry("t", "v", SeqNo(1));
    expiring.expires_at = Some(NOW + 10);
    log.push(E1, vec![expiring]);
    s2.apply_committed(log.upto(1));
    let batch = || WriteBatch::new().put("t", "w").reporting_prior();
    let none = HashMap::new();
    assert_eq!(
        ready(evaluate(&s2, batch(), &none).await).1,
        vec![Some(SeqNo(1))]
    );
    c2.clock.advance(10);
    assert_eq!(ready(evaluate(&s2, batch(), &none).await).1, vec![None]);
}

#[tokio::test]
async fn a_memtable_rotation_between_prepare_and_evaluate_makes_an_inspecting_batch_retry() {
    let c = Cluster::new();
    let s = c.replica("leader").await;
    s.set_leading(Some(E1));
    s.publish_epoch().await.expect("publish epoch");
    let mut log = Log::default();
    log.put(E1, "a", "a1");
    s.apply_committed(log.upto(1));

    let none = HashMap::new();
    let cond = s
        .prepare(conditional("a", Condition::VersionIs(SeqNo(1))))
        .await
        .expect("prepare");
    let prior = s
        .prepare(WriteBatch::new().put("a", "x").reporting_prior())
        .await
        .expect("prepare");
    let plain = s
        .prepare(WriteBatch::new().put("a", "x"))
        .await
        .expect("prepare");

    // Committed records fill the memtable past `memtable_bytes`: it rotates while applying.
    let big = "x".repeat(4000);
    log.put(E1, "a", &big); // 2
    log.put(E1, "f", &big); // 3
    s.apply_committed(log.range(2, 3));
    assert_eq!(s.applied(), SeqNo(3));
    assert!(
        s.stats().memtable_bytes < 4096,
        "the memtable rotated while applying"
    );

    let r = s.evaluate(&cond, &none);
    assert!(is_retry(&r), "conditional batch: {r:?}");
    let r = s.evaluate(&prior, &none);
    assert!(is_retry(&r), "report_prior batch: {r:?}");
    // A batch that inspects nothing needs no consistent read.
    ready(s.evaluate(&plain, &none));

    // Prepared again, it sees a@2 wherever the rotated memtable is by now.
    assert_eq!(
        failed(evaluate(&s, conditional("a", Condition::VersionIs(SeqNo(1))), &none).await),
        (
            Bytes::from_static(b"a"),
            Condition::VersionIs(SeqNo(1)),
            Some(SeqNo(2))
        )
    );
    ready(evaluate(&s, conditional("a", Condition::VersionIs(SeqNo(2))), &none).await);
}

// ---------------------------------------------------------------------------------------
// Leading: who flushes, and what a flush publishes.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_replica_that_does_not_lead_never_flushes() {
    let c = Cluster::new();
    let s = c.replica("follower").await;
    let mut log = Log::default();
    let big = "v".repeat(1000);
    for i in 0..10 {
        log.put(E1, &format!("k{i}"), &big);
    }
    s.apply_committed(log.upto(10));
    assert!(
        s.stats().frozen_memtables >= 1,
        "applying rotated memtables"
    );

    s.flush().await.expect("flush of a follower is a no-op");
    let st = s.stats();
    assert_eq!(c.objects(S).await, (0, 0), "no manifest, no segment");
    assert_eq!(*s.published().borrow(), (SeqNo(0), Epoch(0)));
    assert_eq!(
        (st.flushes, st.l0_segments, st.flushed_seq),
        (0, 0, SeqNo(0))
    );
    assert!(
        st.frozen_memtables >= 2,
        "flush froze the active memtable and kept it"
    );
    assert_serves(&s, &log.model(10), "memtables still serve").await;

    // Nor may it publish its epoch.
    let e = s
        .publish_epoch()
        .await
        .expect_err("publish without leading");
    assert_eq!(e.kind(), ErrorKind::Fenced);
    assert_eq!(c.objects(S).await, (0, 0));
}

#[tokio::test]
async fn background_tasks_of_a_replica_that_does_not_lead_publish_nothing() {
    let c = Cluster::new();
    let fast = EngineOptions {
        ttl_sweep_interval: Duration::from_millis(10),
        // Garbage collection (and the compactor's timer) every second.
        obsolete_grace: Duration::from_secs(2),
        manifest_keep: 1,
        ..opts()
    };
    let expired = |key: &str, seq: u64| Entry {
        expires_at: Some(NOW - 1),
        ..put_entry(key, "gone", SeqNo(seq))
    };

    // The follower: an expired entry (the sweeper would propose its delete) and enough data
    // to rotate (the flusher is woken).
    let f = c.replica_of("follower", S, fast.clone()).await;
    let (fp, f_calls) = recording_proposer();
    f.set_proposer(fp);
    let mut log = Log::default();
    log.push(E1, vec![expired("dead", 1)]);
    let big = "v".repeat(1000);
    for i in 0..9 {
        log.put(E1, &format!("k{i}"), &big);
    }
    let last = SeqNo(10);
    f.apply_committed(log.upto(10));
    assert!(f.stats().frozen_memtables >= 1);

    // A canary: a leading replica of another shard, opened after the follower with the same
    // timers. Once its sweeper has run twice and its garbage collector has run on its timer
    // (deleting an old manifest), the follower's timers, started earlier, have fired too.
    const CANARY: ShardId = ShardId(1);
    let canary = c.replica_of("canary", CANARY, fast.clone()).await;
    let (cp, canary_calls) = recording_proposer();
    canary.set_proposer(cp);
    canary.set_leading(Some(E1)); // also wakes its compactor: one collection right away
    canary.publish_epoch().await.expect("canary epoch");
    let mut clog = Log::default();
    clog.push(E1, vec![expired("dead1", 1), expired("dead2", 1)]);
    canary.apply_committed(clog.upto(1));
    canary.flush().await.expect("canary flush");
    let (cl, calls) = (&c, &canary_calls);
    eventually("a garbage collection of the canary", || async move {
        cl.objects(CANARY).await.0 == 1
    })
    .await;
    // From here on only the timer runs the canary's garbage collection.
    clog.put(E1, "live", "v");
    canary.apply_committed(clog.range(2, 2));
    canary.flush().await.expect("canary flush");
    assert_eq!(cl.objects(CANARY).await.0, 2);
    eventually(
        "a timed garbage collection and two sweeps of the canary",
        || async move { calls.lock().len() >= 2 && cl.objects(CANARY).await.0 == 1 },
    )
    .await;

    assert_eq!(c.objects(S).await, (0, 0), "the follower published nothing");
    assert!(f_calls.lock().is_empty(), "the follower's sweeper proposed");
    assert_eq!(*f.published().borrow(), (SeqNo(0), Epoch(0)));
    assert_eq!(f.stats().flushes, 0);

    // Leading, the same replica's tasks do their work: the flusher publishes the frozen
    // memtables and the sweeper proposes the delete of the expired entry.
    f.flush().await.expect("freeze the rest"); // still not leading: only freezes
    assert_eq!(c.objects(S).await, (0, 0));
    f.set_leading(Some(E1));
    assert_eq!(published_at_least(&f, last).await, (last, E1));
    let seen = &f_calls;
    eventually("the leader's sweeper proposes", || async move {
        !seen.lock().is_empty()
    })
    .await;
    let batch = f_calls.lock()[0].clone();
    assert_eq!(
        batch
            .ops
            .first()
            .map(|op| (op.mutation.clone(), op.condition)),
        Some((
            Mutation::Delete {
                key: Bytes::from_static(b"dead")
            },
            Condition::ExpiredVersion(SeqNo(1))
        ))
    );
    let m = c.latest().await;
    assert_eq!((m.flushed_seq, m.flushed_epoch, m.epoch), (last, E1, E1));
}

#[tokio::test]
async fn a_leader_flush_publishes_the_covered_log_position_and_its_records_epoch() {
    let c = Cluster::new();
    let s = c.replica("leader").await;
    s.set_leading(Some(E2));
    s.publish_epoch().await.expect("publish epoch");
    let m = c.latest().await;
    assert_eq!(
        (m.epoch, m.flushed_seq, m.flushed_epoch),
        (E2, SeqNo(0), Epoch(0))
    );

    // Records of the previous leader, then this leader's barrier.
    let mut log = Log::default();
    log.put(E1, "a", "1");
    log.put(E1, "b", "2");
    log.put(E1, "c", "3");
    let barrier = log.barrier(E2);
    s.apply_committed(log.upto(4));
    assert_eq!(s.applied(), barrier);

    s.flush().await.expect("flush");
    let m = c.latest().await;
    assert_eq!(
        (m.epoch, m.flushed_seq, m.flushed_epoch),
        (E2, SeqNo(4), E2),
        "flushed up to the trailing barrier, with the barrier's epoch"
    );
    assert_eq!(m.l0.len(), 1);
    assert_eq!((m.l0[0].min_seq, m.l0[0].max_seq), (SeqNo(1), SeqNo(3)));
    assert_eq!(*s.published().borrow(), (SeqNo(4), E2));
    let st = s.stats();
    assert_eq!(
        (st.flushed_seq, st.l0_segments, st.memtable_bytes),
        (SeqNo(4), 1, 0)
    );
    assert_serves(&s, &log.model(4), "from the segment").await;

    // A later leader flushing records of an older epoch records that older epoch.
    s.set_leading(Some(E3));
    s.publish_epoch().await.expect("publish epoch 3");
    log.put(E2, "d", "5");
    s.apply_committed(log.range(5, 5));
    s.flush().await.expect("flush");
    let m = c.latest().await;
    assert_eq!(
        (m.epoch, m.flushed_seq, m.flushed_epoch),
        (E3, SeqNo(5), E2)
    );
    assert_eq!(*s.published().borrow(), (SeqNo(5), E2));
    assert_eq!(m.l0.len(), 2);

    // Having stepped down, it flushes nothing.
    let before = c.objects(S).await;
    s.set_leading(None);
    log.put(E3, "e", "6");
    s.apply_committed(log.range(6, 6));
    s.flush().await.expect("flush after stepping down");
    assert_eq!(c.objects(S).await, before);
    assert_eq!(*s.published().borrow(), (SeqNo(5), E2));
    assert_eq!(c.latest().await.flushed_seq, SeqNo(5));
    assert_serves(&s, &log.model(6), "memtable and segments").await;
}

#[tokio::test]
async fn a_flush_records_the_configuration_in_force_at_its_flushed_prefix() {
    use tierkv_engine::replica::{Membership, NodeId};
    let c = Cluster::new();
    let s = c.replica("leader").await;
    s.set_leading(Some(E2));
    s.publish_epoch().await.expect("publish epoch");
    let mut log = Log::default();
    log.put(E1, "a", "1");
    log.barrier(E2);
    s.apply_committed(log.upto(2));
    s.flush().await.expect("flush");
    let m = c.latest().await;
    assert_eq!((m.flushed_seq, m.membership.as_ref()), (SeqNo(2), None));

    // A joint configuration record, then a batch: the manifest records the joint one.
    let joint = Membership::Joint {
        old: vec![NodeId(1), NodeId(2), NodeId(3)],
        new: vec![NodeId(1), NodeId(2), NodeId(4)],
    };
    log.records.push(Record {
        epoch: E2,
        seq: log.next(),
        entries: Vec::new(),
        membership: Some(joint.clone()),
    });
    log.put(E2, "b", "2");
    s.apply_committed(log.range(3, 4));
    s.flush().await.expect("flush");
    let m = c.latest().await;
    assert_eq!(
        (m.flushed_seq, m.membership.as_ref()),
        (SeqNo(4), Some(&joint))
    );

    // A batch without configuration records keeps it.
    log.put(E2, "c", "3");
    s.apply_committed(log.range(5, 5));
    s.flush().await.expect("flush");
    let m = c.latest().await;
    assert_eq!(
        (m.flushed_seq, m.membership.as_ref()),
        (SeqNo(5), Some(&joint))
    );
    assert_serves(&s, &log.model(5), "after the flushes").await;
}

// ---------------------------------------------------------------------------------------
// Followers installing the leader's manifests.
// ---------------------------------------------------------------------------------------

/// Records 1..=12 of epoch 1 over keys k0..k5, with overwrites and deletes.
fn mixed_log() -> Log {
    let mut log = Log::default();
    for i in 1..=12u64 {
        let key = format!("k{}", i % 6);
        if i % 5 == 0 {
            log.delete(E1, &key);
        } else {
            log.put(E1, &key, &format!("v{i}"));
        }
    }
    log
}

#[tokio::test]
async fn a_follower_that_missed_records_catches_up_by_installing_the_leaders_manifest() {
    let c = Cluster::new();
    let log = mixed_log();
    let a = c.replica("a").await;
    a.set_leading(Some(E1));
    a.publish_epoch().await.expect("publish epoch");
    let b = c.replica("b").await;

    a.apply_committed(log.upto(10));
    a.flush().await.expect("leader flush");
    a.apply_committed(log.range(11, 12));
    assert_eq!(c.latest().await.flushed_seq, SeqNo(10));

    // The follower applied 1..=3 (frozen by a flush that publishes nothing) and 4..=6, and
    // missed 7..=10.
    b.apply_committed(log.upto(3));
    b.flush().await.expect("follower flush");
    b.apply_committed(log.range(4, 6));
    let st = b.stats();
    assert_eq!((st.frozen_memtables, st.l0_segments), (1, 0));
    assert!(st.memtable_bytes > 0);
    assert_eq!(b.applied(), SeqNo(6));
    let before_install = b
        .prepare(conditional("k1", Condition::MustExist))
        .await
        .expect("prepare");

    let loaded = b.load_latest().await.expect("load").expect("a manifest");
    assert_eq!(loaded.manifest.flushed_seq, SeqNo(10));
    assert!(b.install(loaded), "a newer manifest installs");
    assert_eq!(
        b.applied(),
        SeqNo(10),
        "jumped to the manifest's flushed_seq"
    );
    let st = b.stats();
    assert_eq!(
        (
            st.frozen_memtables,
            st.memtable_bytes,
            st.l0_segments,
            st.flushed_seq
        ),
        (0, 0, 1, SeqNo(10)),
        "memtables whose records are all flushed are dropped"
    );
    assert_serves(&b, &log.model(10), "follower after install").await;
    let r = b.evaluate(&before_install, &HashMap::new());
    assert!(
        is_retry(&r),
        "dropping memtables invalidates a prepared read: {r:?}"
    );

    // The driver hands over its log again: 1..=10 are skipped, 11..=12 applied on top.
    b.apply_committed(log.upto(12));
    assert_eq!(b.applied(), SeqNo(12));
    assert_serves(&b, &log.model(12), "follower").await;
    assert_serves(&a, &log.model(12), "leader").await;
}

#[tokio::test]
async fn install_keeps_memtables_that_hold_records_above_the_flushed_seq() {
    let c = Cluster::new();
    let log = mixed_log();
    let a = c.replica("a").await;
    a.set_leading(Some(E1));
    a.publish_epoch().await.expect("publish epoch");
    let b = c.replica("b").await;
    a.apply_committed(log.upto(10));
    a.flush().await.expect("leader flush");

    // The follower is ahead of the flush: a frozen memtable covering 1..=5, an active one
    // covering 6..=12.
    b.apply_committed(log.upto(5));
    b.flush().await.expect("follower flush");
    b.apply_committed(log.range(6, 12));
    let active = b.stats().memtable_bytes;
    assert_eq!(b.stats().frozen_memtables, 1);

    let loaded = b.load_latest().await.expect("load").expect("a manifest");
    assert!(b.install(loaded));
    let st = b.stats();
    assert_eq!(b.applied(), SeqNo(12), "the applied point never goes back");
    assert_eq!(
        st.frozen_memtables, 0,
        "the memtable covering 1..=5 is dropped"
    );
    assert_eq!(
        st.memtable_bytes, active,
        "the memtable covering 6..=12 is kept"
    );
    assert_eq!(st.l0_segments, 1);
    assert_serves(&b, &log.model(12), "memtable over segments").await;
}

/// The log of the stale-version scenario: `k@5` ("old"), `k@15` ("new"), other keys
/// elsewhere, up to seq 20, all of epoch 1.
fn stale_version_log() -> Log {
    let mut log = Log::default();
    for i in 1..=20u64 {
        match i {
            5 => log.put(E1, "k", "old"),
            15 => log.put(E1, "k", "new"),
            _ => log.put(E1, &format!("f{i:02}"), &format!("v{i}")),
        };
    }
    log
}

#[tokio::test]
async fn install_never_lets_an_old_memtable_version_win_over_a_newer_flushed_one() {
    let c = Cluster::new();
    let mut log = stale_version_log();
    let a = c.replica("a").await;
    a.set_leading(Some(E1));
    a.publish_epoch().await.expect("publish epoch");
    let b = c.replica("b").await;

    a.apply_committed(log.upto(20));
    a.flush().await.expect("leader flush");
    let m = c.latest().await;
    assert_eq!((m.flushed_seq, m.l0.len()), (SeqNo(20), 1));
    let flushed_segment = m.l0[0].id;

    b.apply_committed(log.upto(10));
    assert_eq!(read(&b, "k").await, Some((SeqNo(5), "old".to_owned())));
    let loaded = b.load_latest().await.expect("load").expect("a manifest");
    assert!(b.install(loaded));
    assert_eq!(b.applied(), SeqNo(20));
    assert_eq!(read(&b, "k").await, Some((SeqNo(15), "new".to_owned())));
    assert_serves(&b, &log.model(20), "follower after install").await;

    // The follower becomes leader and flushes: nothing of its old memtable is published.
    a.set_leading(None);
    b.set_leading(Some(E2));
    b.publish_epoch().await.expect("publish epoch 2");
    b.flush().await.expect("new leader flush");
    let m = c.latest().await;
    assert_eq!(m.epoch, E2);
    assert_eq!(m.flushed_seq, SeqNo(20));
    assert_eq!(
        m.l0.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![flushed_segment],
        "no newer L0 segment"
    );
    assert_eq!(c.objects(S).await.1, 1, "no segment uploaded");
    assert_eq!(read(&b, "k").await, Some((SeqNo(15), "new".to_owned())));

    // New writes apply on top and flush.
    log.barrier(E2); // 21
    log.put(E2, "f22", "v22");
    log.put(E2, "f23", "v23");
    log.put(E2, "f24", "v24");
    let newest = log.put(E2, "k", "newest"); // 25
    b.apply_committed(log.range(21, 25));
    assert_eq!(read(&b, "k").await, Some((newest, "newest".to_owned())));
    b.flush().await.expect("flush");
    let m = c.latest().await;
    assert_eq!(
        (m.flushed_seq, m.flushed_epoch, m.l0.len()),
        (newest, E2, 2)
    );
    assert_eq!(read(&b, "k").await, Some((newest, "newest".to_owned())));
    assert_serves(&b, &log.model(25), "new leader").await;

    // A replica opened now reads the same from segments alone.
    let fresh = c.replica("c").await;
    assert_eq!(fresh.applied(), newest);
    assert_serves(&fresh, &log.model(25), "fresh replica").await;
}

#[tokio::test]
async fn a_new_leader_does_not_flush_a_memtable_another_leader_already_flushed() {
    let c = Cluster::new();
    let mut log = stale_version_log();
    let a = c.replica("a").await;
    a.set_leading(Some(E1));
    a.publish_epoch().await.expect("publish epoch");
    let b = c.replica("b").await;
    a.apply_committed(log.upto(20));
    a.flush().await.expect("leader flush");
    let flushed_segment = c.latest().await.l0[0].id;

    // The follower never installed that manifest: it learns of it only when its epoch
    // publish loses the race to it. Its memtable (1..=10, k@5) is fully covered.
    b.apply_committed(log.upto(10));
    a.set_leading(None);
    b.set_leading(Some(E2));
    b.publish_epoch().await.expect("publish epoch 2");
    assert_eq!(*b.published().borrow(), (SeqNo(20), E1));
    b.flush().await.expect("new leader flush");

    let m = c.latest().await;
    assert_eq!(
        (m.epoch, m.flushed_seq, m.flushed_epoch),
        (E2, SeqNo(20), E1)
    );
    assert_eq!(
        m.l0.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![flushed_segment],
        "the covered memtable is dropped, not flushed"
    );
    assert_eq!(c.objects(S).await.1, 1, "no segment uploaded");
    assert_eq!(b.stats().frozen_memtables, 0);
    assert_eq!(read(&b, "k").await, Some((SeqNo(15), "new".to_owned())));

    // The driver applies the rest of the log on top.
    log.barrier(E2); // 21
    let newest = log.put(E2, "k", "newest"); // 22
    b.apply_committed(log.range(11, 22));
    assert_eq!(b.applied(), newest);
    assert_serves(&b, &log.model(22), "new leader").await;
}

#[tokio::test]
async fn install_after_an_epoch_publish_adopted_a_newer_manifest_still_installs_it() {
    let c = Cluster::new();
    let log = stale_version_log();
    let a = c.replica("a").await;
    a.set_leading(Some(E1));
    a.publish_epoch().await.expect("publish epoch");
    let b = c.replica("b").await;
    a.apply_committed(log.upto(20));
    a.flush().await.expect("leader flush");

    // The new leader took over with a short log (1..=10) and asked for the manifest; its
    // epoch publish completes first and adopts the manifest flushed at 20.
    b.apply_committed(log.upto(10));
    a.set_leading(None);
    b.set_leading(Some(E2));
    b.publish_epoch().await.expect("publish epoch 2");
    // publish_epoch installed the manifest it adopted: the view holds it already, and the
    // driver's load-and-install that follows is a no-op rather than a refusal that leaves
    // applied() behind.
    assert_eq!(b.applied(), SeqNo(20));
    assert_eq!(read(&b, "k").await, Some((SeqNo(15), "new".to_owned())));
    let loaded = b.load_latest().await.expect("load").expect("a manifest");
    assert_eq!(loaded.manifest.flushed_seq, SeqNo(20));
    assert!(
        !b.install(loaded),
        "the same version again installs nothing"
    );
    assert_eq!(b.applied(), SeqNo(20));
    assert_eq!(read(&b, "k").await, Some((SeqNo(15), "new".to_owned())));
    assert_serves(&b, &log.model(20), "new leader after install").await;
}

#[tokio::test]
async fn a_new_leader_flushing_behind_a_newer_manifest_never_shows_a_torn_batch() {
    let c = Cluster::new();
    let mut log = Log::default();
    for i in 1..=20u64 {
        match i {
            9 => log.put(E1, "k", "old"),
            15 => log.write(E1, &[("j", Some("new")), ("k", Some("new"))]),
            _ => log.put(E1, &format!("f{i:02}"), &format!("v{i}")),
        };
    }
    let a = c.replica("a").await;
    a.set_leading(Some(E1));
    a.publish_epoch().await.expect("publish epoch");
    let b = c.replica("b").await;
    a.apply_committed(log.upto(20));
    a.flush().await.expect("leader flush");

    // The follower froze 1..=8 (as a follower it never flushes) and applied 9..=10.
    b.apply_committed(log.upto(8));
    b.flush().await.expect("follower flush");
    b.apply_committed(log.range(9, 10));
    assert_eq!(b.stats().frozen_memtables, 1);

    // It takes over; its flusher wakes at once and flushes the frozen memtable, learning
    // of the manifest flushed at 20 when its publish loses. The driver has not applied or
    // installed anything yet.
    a.set_leading(None);
    b.set_leading(Some(E2));
    let f = &b;
    eventually("the new leader's flusher", || async move {
        f.stats().frozen_memtables == 0
    })
    .await;
    let state = (read(&b, "j").await, read(&b, "k").await);
    let at_10 = (None, Some((SeqNo(9), "old".to_owned())));
    let new = Some((SeqNo(15), "new".to_owned()));
    let at_20 = (new.clone(), new);
    assert!(
        state == at_10 || state == at_20,
        "batch 15 half visible: (j, k) = {state:?}, applied {:?}",
        b.applied()
    );
}

#[tokio::test]
async fn a_leader_ignores_a_manifest_older_than_its_own_publish() {
    let c = Cluster::new();
    let log = stale_version_log();
    let a = c.replica("a").await;
    a.set_leading(Some(E1));
    a.publish_epoch().await.expect("publish epoch");
    a.apply_committed(log.upto(10));
    a.flush().await.expect("flush 1");
    let older = a.load_latest().await.expect("load").expect("a manifest");
    assert_eq!(older.manifest.flushed_seq, SeqNo(10));
    a.apply_committed(log.range(11, 20));
    a.flush().await.expect("flush 2");

    assert!(!a.install(older), "an older manifest is a no-op");
    assert_eq!(a.stats().l0_segments, 2);
    assert_eq!(read(&a, "k").await, Some((SeqNo(15), "new".to_owned())));
    assert_serves(&a, &log.model(20), "leader").await;
}

#[tokio::test]
async fn a_follower_ignores_a_manifest_older_than_the_installed_one() {
    let c = Cluster::new();
    let log = stale_version_log();
    let a = c.replica("a").await;
    a.set_leading(Some(E1));
    a.publish_epoch().await.expect("publish epoch");
    let b = c.replica("b").await;

    a.apply_committed(log.upto(10));
    a.flush().await.expect("flush 1");
    let older = b.load_latest().await.expect("load").expect("a manifest");
    assert_eq!(older.manifest.flushed_seq, SeqNo(10));
    a.apply_committed(log.range(11, 20));
    a.flush().await.expect("flush 2");
    let newer = b.load_latest().await.expect("load").expect("a manifest");
    assert_eq!(newer.manifest.flushed_seq, SeqNo(20));

    assert!(b.install(newer));
    assert_eq!(read(&b, "k").await, Some((SeqNo(15), "new".to_owned())));
    assert!(!b.install(older), "an older manifest is a no-op");
    assert_eq!(b.applied(), SeqNo(20));
    assert_eq!(b.stats().l0_segments, 2);
    assert_eq!(read(&b, "k").await, Some((SeqNo(15), "new".to_owned())));
    assert_serves(&b, &log.model(20), "follower").await;
}
