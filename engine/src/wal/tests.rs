//! Tests of the WAL: writer, group commit, release and poisoning here; recovery rules in
//! `tests/recovery.rs`; promise and truncate records in `tests/kinds.rs`; property tests in
//! `tests/props.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kinds;
mod props;
mod recovery;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::format::{self, HEADER_LEN, Payload};
use super::*;
use crate::types::EntryKind;

pub(super) fn opts(dir: &Path) -> WalOptions {
    WalOptions {
        dir: dir.to_path_buf(),
        ..WalOptions::default()
    }
}

/// A record whose entries carry the record's seq (as the decoder sets it).
pub(super) fn rec(shard: u32, seq: u64, n: usize) -> WalRecord {
    let entries = (0..n)
        .map(|i| Entry {
            key: Bytes::from(format!("s{shard}-k{seq}-{i}")),
            seq: SeqNo(seq),
            kind: if i % 3 == 2 {
                EntryKind::Tombstone
            } else {
                EntryKind::Put {
                    value: Bytes::from(format!("value-{seq}-{i}")),
                    content_type: (i % 2 == 1).then(|| Bytes::from_static(b"text/plain")),
                }
            },
            expires_at: (i % 4 == 3).then_some(1_700_000_000_000),
        })
        .collect();
    WalRecord {
        shard: ShardId(shard),
        epoch: Epoch(3),
        seq: SeqNo(seq),
        entries,
        membership: None,
    }
}

/// Appends each record and waits for it before the next.
pub(super) async fn append_all(wal: &Wal, recs: &[WalRecord]) {
    for r in recs {
        wal.append(r).unwrap().wait().await.unwrap();
    }
}

/// WAL files in `dir`, in order.
pub(super) fn wal_files(dir: &Path) -> Vec<PathBuf> {
    super::recovery::list_files(dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// Every record of a valid file, of any kind, in order (the active file of a running WAL
/// ends in preallocated zeros, nothing else may follow the records).
pub(super) fn payloads(path: &Path) -> Vec<Payload> {
    let no = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(crate::paths::parse_wal_file)
        .unwrap();
    let data = Bytes::from(std::fs::read(path).unwrap());
    let scan = super::recovery::scan_file(&data, no, true, path).unwrap();
    assert!(data[scan.valid_len..].iter().all(|b| *b == 0));
    scan.records
}

/// The batch records among `payloads`.
pub(super) fn batches(payloads: &[Payload]) -> Vec<WalRecord> {
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Batch(r) => Some(r.clone()),
            Payload::Promise { .. } | Payload::Truncate { .. } => None,
        })
        .collect()
}

/// Offsets of the frames of a valid file.
pub(super) fn frame_offsets(path: &Path) -> Vec<usize> {
    let data = Bytes::from(std::fs::read(path).unwrap());
    let mut pos = HEADER_LEN;
    let mut out = Vec::new();
    while pos < data.len() {
        out.push(pos);
        pos = format::read_frame(&data, pos).unwrap().1;
    }
    out
}

/// Polls `cond` until it holds or 10 s pass.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::yield_now();
    }
}

#[tokio::test]
async fn replays_records_of_many_shards_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let recs: Vec<WalRecord> = (1..=30)
        .map(|i| rec(i % 3, 100 + i as u64, 1 + (i % 4) as usize))
        .collect();
    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert!(recovery.records.is_empty());
    append_all(&wal, &recs).await;
    wal.close().unwrap();
    assert!(matches!(wal.append(&recs[0]), Err(Error::Closed)));
    wal.close().unwrap();

    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(recovery.records, recs);
    assert_eq!(recovery.torn_tail, None);
    assert!(recovery.files >= 1);
    wal.close().unwrap();
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Wal>();
    check::<WalRecord>();
    fn check_send<T: Send>() {}
    check_send::<Durable>();
}

#[tokio::test]
async fn invalid_records_are_refused_before_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(opts(dir.path())).unwrap();
    let mut bad = rec(1, 1, 1);
    bad.entries[0].key = Bytes::new();
    assert!(matches!(wal.append(&bad), Err(Error::Invalid { .. })));
    bad.entries[0].key = Bytes::from(vec![b'k'; crate::types::MAX_KEY_LEN + 1]);
    assert!(matches!(wal.append(&bad), Err(Error::Invalid { .. })));
    assert_eq!(wal.stats().appends, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolls_files_and_release_deletes_only_fully_released_files() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions {
        segment_bytes: 300,
        ..opts(dir.path())
    };
    let (wal, _) = Wal::open(o.clone()).unwrap();
    // Shards 1 and 2 interleaved; every file holds records of both.
    let recs: Vec<WalRecord> = (1..=24).map(|i| rec(1 + i % 2, i as u64, 2)).collect();
    append_all(&wal, &recs).await;
    wal.close().unwrap();
    let files = wal_files(dir.path());
    assert_eq!(wal.stats().files, files.len() as u64);
    assert!(
        files.len() >= 4,
        "expected several files, got {}",
        files.len()
    );
    // (A trailing header-only file may go at once after reopening: it holds no records.)
    let with_records: Vec<PathBuf> = files
        .iter()
        .filter(|f| !frame_offsets(f).is_empty())
        .cloned()
        .collect();

    // Releasing shard 1 entirely frees nothing: shard 2 still needs every file.
    let (wal, recovery) = Wal::open(o.clone()).unwrap();
    assert_eq!(recovery.records, recs);
    wal.release(ShardId(1), SeqNo(u64::MAX));
    wal.close().unwrap();
    for f in &with_records {
        assert!(
            f.exists(),
            "{} deleted though shard 2 needs it",
            f.display()
        );
    }

    // After a restart (marks are not persisted) release again, plus shard 2 up to the max
    // seq it has in the first file: exactly the first file goes.
    let (wal, _) = Wal::open(o).unwrap();
    let first = batches(&payloads(&files[0]));
    let max2 = first
        .iter()
        .filter(|r| r.shard == ShardId(2))
        .map(|r| r.seq)
        .max()
        .unwrap();
    assert!(first.iter().any(|r| r.shard == ShardId(1)));
    wal.release(ShardId(1), SeqNo(u64::MAX));
    wal.release(ShardId(2), max2);
    eventually("first file deleted", || !files[0].exists());
    for f in &with_records[1..] {
        assert!(f.exists(), "{} deleted too early", f.display());
    }
    // Releasing shard 2 entirely leaves only the active file.
    wal.release(ShardId(2), SeqNo(u64::MAX));
    eventually("all released files deleted", || {
        wal_files(dir.path()).len() == 1
    });
    assert_eq!(wal.stats().files, 1);
    wal.close().unwrap();
}

#[tokio::test]
async fn failed_sync_poisons_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(WalFaults::default());
    let o = WalOptions {
        faults: Some(Arc::clone(&faults)),
        ..opts(dir.path())
    };
    let (wal, _) = Wal::open(o.clone()).unwrap();
    let first = rec(1, 1, 2);
    append_all(&wal, std::slice::from_ref(&first)).await;

    faults.fail_next_sync.store(true, Ordering::SeqCst);
    let results: Vec<Result<Durable>> = (2..12).map(|i| wal.append(&rec(1, i, 1))).collect();
    for r in results {
        let outcome = match r {
            Ok(d) => d.wait().await,
            Err(e) => Err(e),
        };
        assert!(
            matches!(outcome, Err(Error::WalPoisoned { .. })),
            "got {outcome:?}"
        );
    }
    assert!(wal.is_poisoned());
    assert!(wal.stats().poisoned);
    assert!(matches!(
        wal.append(&rec(1, 99, 1)),
        Err(Error::WalPoisoned { .. })
    ));
    assert!(matches!(wal.close(), Err(Error::WalPoisoned { .. })));
    drop(wal);

    // The acknowledged record survives; the rest may or may not have reached the file.
    let (wal, recovery) = Wal::open(o).unwrap();
    assert_eq!(recovery.records.first(), Some(&first));
    assert!(!wal.is_poisoned());
    wal.close().unwrap();
}

/// 64 tasks, each its own shard, each appending 20 records and awaiting each one.
async fn run_concurrent(wal: &Wal, tasks: u32, per_task: u64) {
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let wal = wal.clone();
            tokio::spawn(async move {
                for s in 1..=per_task {
                    wal.append(&rec(t, s, 1)).unwrap().wait().await.unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
}

#[tokio::test]
async fn registers_its_figures_read_at_scrape_time() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(opts(dir.path())).unwrap();
    let mut registry = crate::metrics::Registry::default();
    wal.register_metrics(&mut registry);
    append_all(&wal, &[rec(0, 1, 2), rec(1, 1, 1)]).await;
    let stats = wal.stats();
    let text = crate::metrics::encode_text(&registry).unwrap();
    for line in [
        "# TYPE tierkv_wal_appends_total counter".to_owned(),
        "tierkv_wal_appends_total 2".to_owned(),
        "# TYPE tierkv_wal_syncs_total counter".to_owned(),
        format!("tierkv_wal_syncs_total {}", stats.syncs),
        "# TYPE tierkv_wal_fsync_duration_seconds histogram".to_owned(),
        format!("tierkv_wal_fsync_duration_seconds_count {}", stats.syncs),
        "# TYPE tierkv_wal_bytes gauge".to_owned(),
        format!("tierkv_wal_bytes {}", stats.bytes),
        "# TYPE tierkv_wal_files gauge".to_owned(),
        "tierkv_wal_files 1".to_owned(),
        "# TYPE tierkv_wal_poisoned gauge".to_owned(),
        "tierkv_wal_poisoned 0".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    assert!(stats.syncs >= 1 && stats.bytes > 0, "{stats:?}");
    wal.close().unwrap();
    drop(wal);
    let text = crate::metrics::encode_text(&registry).unwrap();
    assert!(
        text.lines().any(|l| l == "tierkv_wal_files 0"),
        "a registry does not keep a dropped WAL alive:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_shares_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(opts(dir.path())).unwrap();
    run_concurrent(&wal, 64, 20).await;
    let stats = wal.stats();
    assert_eq!(stats.appends, 64 * 20);
    assert!(
        stats.syncs < stats.appends,
        "syncs {} appends {}",
        stats.syncs,
        stats.appends
    );
    assert_eq!(stats.sync_latency.count, stats.syncs);
    wal.close().unwrap();

    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(recovery.records.len(), 64 * 20);
    let mut last = std::collections::HashMap::new();
    for r in &recovery.records {
        let prev = last.insert(r.shard, r.seq).unwrap_or(SeqNo(0));
        assert_eq!(r.seq, prev.next(), "per-shard log order");
    }
    wal.close().unwrap();
}

#[tokio::test]
async fn interval_policy_acks_before_sync() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions {
        sync: SyncPolicy::Interval(Duration::from_secs(3600)),
        ..opts(dir.path())
    };
    let (wal, _) = Wal::open(o.clone()).unwrap();
    let recs: Vec<WalRecord> = (1..=5).map(|i| rec(7, i, 2)).collect();
    append_all(&wal, &recs).await;
    assert_eq!(wal.stats().syncs, 0, "acknowledged without any fdatasync");
    wal.close().unwrap();
    assert!(wal.stats().syncs >= 1, "close syncs what was written");
    let (wal, recovery) = Wal::open(o).unwrap();
    assert_eq!(recovery.records, recs);
    wal.close().unwrap();
}

#[tokio::test]
async fn interval_policy_syncs_when_the_interval_passes() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions {
        sync: SyncPolicy::Interval(Duration::from_millis(5)),
        ..opts(dir.path())
    };
    let (wal, _) = Wal::open(o).unwrap();
    append_all(&wal, &[rec(1, 1, 1)]).await;
    eventually("interval fdatasync", || wal.stats().syncs >= 1);
    wal.close().unwrap();
}

/// Prints records/s for 1 appender vs 64 (run by hand:
/// `cargo test -p tierkv-engine --release print_group_commit_rate -- --ignored --nocapture`).
#[test]
#[ignore = "prints a measurement; no assertions on timing"]
fn print_group_commit_rate() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (tasks, per_task) in [(1u32, 3000u64), (64, 1000)] {
            let dir = tempfile::tempdir().unwrap();
            let (wal, _) = Wal::open(opts(dir.path())).unwrap();
            let start = Instant::now();
            run_concurrent(&wal, tasks, per_task).await;
            let secs = start.elapsed().as_secs_f64();
            let stats = wal.stats();
            let n = f64::from(tasks) * per_task as f64;
            println!(
                "{tasks:>3} appenders: {:>9.0} records/s ({} records, {} fdatasyncs, {:.1} records/sync, mean fdatasync {:.3} ms)",
                n / secs,
                stats.appends,
                stats.syncs,
                n / stats.syncs as f64,
                stats.sync_latency.sum_secs * 1e3 / stats.syncs as f64,
            );
            wal.close().unwrap();
        }
    });
}

#[test]
fn a_second_open_of_the_directory_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(opts(dir.path())).unwrap();
    let d = wal.append(&rec(1, 1, 1)).unwrap();
    futures::executor::block_on(d.wait()).unwrap();
    let err = Wal::open(opts(dir.path())).unwrap_err();
    assert!(
        matches!(&err, Error::DirLocked { dir: d, .. } if d == dir.path()),
        "expected DirLocked, got {err}"
    );
    // A handle that outlives close (a lingering task's) holds nothing: the next open takes
    // the directory, and dropping the old handle later does not release the new lock.
    let lingering = wal.clone();
    wal.close().unwrap();
    let (again, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(
        recovery.records.len(),
        1,
        "the refused open changed nothing"
    );
    drop(lingering);
    assert!(matches!(
        Wal::open(opts(dir.path())),
        Err(Error::DirLocked { .. })
    ));
    // Dropping the last handle releases it too.
    drop(again);
    let (_third, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(recovery.records.len(), 1);
}
