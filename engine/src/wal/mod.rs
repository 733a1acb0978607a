//! The node-level write-ahead log, shared by every shard on the node, with group commit.
//!
//! Each [`WalRecord`] is one atomic write batch of one shard. [`Wal::append`] encodes a record
//! and queues it synchronously, so the order of `append` calls is the log order; the returned
//! [`Durable`] resolves once the record is durable per the [`SyncPolicy`]. Replicated nodes
//! also log, in the same order and group commit, a shard's promised epoch
//! ([`Wal::append_promise`]) and truncations of its log ([`Wal::append_truncate`]); recovery
//! reports the highest promise per shard and applies the truncations to the records it
//! returns. One background OS thread writes everything queued with one `write_all` and
//! (policy `Always`) one `fdatasync`, so concurrent appenders share fsyncs (see `writer.rs`).
//!
//! Files are `<dir>/<file_no:020>.wal`, numbered from 1 (format in `format.rs`). The active
//! file is rolled over once it exceeds `segment_bytes` after a write; while active it is kept
//! zero-filled ahead of its last record so that syncs do not change its size (`writer.rs`,
//! "Preallocation"). [`Wal::open`] replays
//! every file and cuts off a torn tail of the last one (rules in `recovery.rs`), then appends
//! to a new file so that recovered files are never modified. Once every shard with records
//! in a non-active file has released them ([`Wal::release`]: they are in object storage),
//! the file is deleted. Promises never keep a file alive (every new file starts with the
//! latest promise of every shard); a truncate keeps its file until the records it voided
//! are released (rules in `files.rs`).
//!
//! Records that were written but never acknowledged (the process died before the fsync, or
//! the fsync failed) may still be replayed: callers must accept replayed records that they
//! never acknowledged, and must skip records at or below what their manifest already holds.

mod files;
mod format;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod fuzz;
mod recovery;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::dirlock::DirLock;
use crate::error::{Error, Result};
use crate::metrics::{Counter, Histogram, HistogramSnapshot, Observed, Registry};
use crate::types::{Entry, Epoch, SeqNo, ShardId};

use self::files::{FileTable, Mark};
use self::writer::{AckResult, Queue, Shared};

/// Configuration of a [`Wal`].
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// Directory of the WAL files (created if missing).
    pub dir: PathBuf,
    /// When an append counts as durable.
    pub sync: SyncPolicy,
    /// The active file is rolled over once it exceeds this many bytes after a write.
    pub segment_bytes: u64,
    /// Fault injection for tests.
    #[doc(hidden)]
    pub faults: Option<Arc<WalFaults>>,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./data/wal"),
            sync: SyncPolicy::Always,
            segment_bytes: 64 << 20,
            faults: None,
        }
    }
}

/// WAL settings of a node, as configured (`[wal]`): the parts of [`WalOptions`] an operator
/// chooses.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalSettings {
    /// `always` (ack after an fdatasync covering the write; group commit shares it) or
    /// `{ interval = "5ms" }` (ack once written to the OS; fdatasync at most every
    /// interval: survives a process crash, not a power loss). Default: `always`.
    pub sync: SyncPolicy,
    /// Size at which WAL files roll over. Default: 64 MiB.
    pub segment_bytes: u64,
    /// Bound on the live WAL files: while they hold more, every shard with unreleased records
    /// in the oldest file flushes them (a shard this node follows asks its leader to), so the
    /// file goes. What a restart replays stays about this plus one file (note 0007).
    /// Default: 1 GiB.
    pub max_bytes: u64,
    /// Age of the oldest live WAL file past which the shards keeping it flush (or ask their
    /// leader to): a shard that gets few writes would otherwise keep its file, and every
    /// later one, forever. Default: 10m.
    #[serde(with = "humantime_serde")]
    pub max_file_age: Duration,
}

impl Default for WalSettings {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::Always,
            segment_bytes: 64 << 20,
            max_bytes: 1 << 30,
            max_file_age: Duration::from_secs(600),
        }
    }
}

impl WalSettings {
    /// The options of a WAL in `dir` with these settings.
    #[must_use]
    pub fn options(&self, dir: PathBuf) -> WalOptions {
        WalOptions {
            dir,
            sync: self.sync,
            segment_bytes: self.segment_bytes,
            ..WalOptions::default()
        }
    }
}

/// When an append is acknowledged. In configuration: `"always"` or `{ interval = "5ms" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// An append's [`Durable`] resolves only after an `fdatasync` that covers it. One
    /// `fdatasync` covers every record queued meanwhile (group commit). Acknowledged writes
    /// survive power loss.
    Always,
    /// An append's [`Durable`] resolves once the record is written to the file (the OS page
    /// cache), and `fdatasync` runs at most once per interval (plus before rolling a file and
    /// at close). Acknowledged writes survive a crash of the process (`kill -9`) but the
    /// last interval's worth may be lost on power loss or a kernel crash. In exchange,
    /// latency does not include an fsync and the disk sees fewer flushes.
    Interval(#[serde(with = "humantime_serde")] Duration),
}

/// Test hook to simulate disk failures.
#[derive(Debug, Default)]
pub struct WalFaults {
    /// The next `fdatasync` reports an error as if the disk failed (then resets).
    pub fail_next_sync: AtomicBool,
}

/// One atomic write batch of one shard, or one configuration record of its replicated log
/// (design note 0009; WAL record kind 4, no entries).
///
/// Every entry has version `seq`: the encoder ignores [`Entry::seq`] and the decoder sets it
/// to the record's `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    /// The shard.
    pub shard: ShardId,
    /// Epoch of the shard writer that wrote it.
    pub epoch: Epoch,
    /// Sequence number of the batch.
    pub seq: SeqNo,
    /// The entries (keys 1..=`MAX_KEY_LEN` bytes, content types up to 255 bytes).
    pub entries: Vec<Entry>,
    /// Set for a configuration record (then `entries` is empty): the replica set
    /// configuration it puts in force. Only replicated nodes that change their members write
    /// one; a batch or barrier has `None`.
    pub membership: Option<crate::replica::Membership>,
}

/// What [`Wal::open`] replayed.
#[derive(Debug)]
pub struct WalRecovery {
    /// Batch records in log order, all shards interleaved, with truncations applied: a
    /// truncate record of shard `s` after seq `n` removed every batch of `s` with seq > `n`
    /// written before it (batches written after it are here). Their byte fields share the
    /// buffers of the files they were read from.
    pub records: Vec<WalRecord>,
    /// The highest epoch promised per shard ([`Wal::append_promise`]) in the replayed files.
    /// Empty on a node that never wrote a promise.
    pub promises: HashMap<ShardId, Epoch>,
    /// The torn tail that was cut off the last file, if any.
    pub torn_tail: Option<TornTail>,
    /// Number of files replayed and kept.
    pub files: usize,
    /// Bytes in those files (after truncation).
    pub bytes: u64,
}

/// A partially written end of the last file, cut off during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file.
    pub file: PathBuf,
    /// Where the first incomplete frame started; the file now ends here (0: the file had no
    /// complete header and was removed).
    pub offset: u64,
    /// Bytes cut off.
    pub dropped_bytes: u64,
}

/// Counters of a [`Wal`].
#[derive(Debug, Clone)]
pub struct WalStats {
    /// Bytes in live WAL files (headers included).
    pub bytes: u64,
    /// Live WAL files, the active one included.
    pub files: u64,
    /// Records appended since open, of every kind (the promises repeated at the head of each
    /// new file are not counted).
    pub appends: u64,
    /// `fdatasync` calls on the log (rolls and creations not counted).
    pub syncs: u64,
    /// Latency of those `fdatasync` calls.
    pub sync_latency: HistogramSnapshot,
    /// Whether a write or sync failed.
    pub poisoned: bool,
}

/// The oldest live WAL file (not the active one) and what keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldestFile {
    /// Time since the file was created (recovered files: since the WAL was opened).
    pub age: Duration,
    /// Each shard with records in it not yet released, and its highest seq there.
    pub pins: Vec<(ShardId, SeqNo)>,
}

/// Resolves when its record is durable per the sync policy.
#[must_use = "a record is not known to be durable until Durable::wait returns Ok"]
#[derive(Debug)]
pub struct Durable {
    rx: oneshot::Receiver<AckResult>,
}

impl Durable {
    /// Waits until the record is durable; `Err(WalPoisoned)` if a write or fsync failed
    /// before it was.
    pub async fn wait(self) -> Result<()> {
        match self.rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(op)) => Err(Error::WalPoisoned { op }),
            // The writer dropped the record without completing it: only possible if its
            // thread died, which poisons the WAL.
            Err(_) => Err(Error::WalPoisoned {
                op: "wal writer thread",
            }),
        }
    }
}

/// The node's write-ahead log. Cheap to clone; the last handle dropped closes it.
#[derive(Clone, Debug)]
pub struct Wal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The directory lock, released at close.
    lock: Mutex<Option<DirLock>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = close(self) {
            tracing::warn!(error = %e, "wal: close on drop failed");
        }
    }
}

/// Stops the writer after it has written and synced what is queued, then releases the
/// directory lock (the next process, or the next open in this one, may take the directory).
fn close(inner: &Inner) -> Result<()> {
    let shared = &inner.shared;
    shared.queue.lock().closing = true;
    shared.wake.notify_one();
    let mut handle = inner.thread.lock();
    if let Some(h) = handle.take() {
        h.join().map_err(|_| Error::Invariant {
            what: "wal writer thread panicked",
        })?;
    }
    drop(handle);
    inner.lock.lock().take();
    match shared.queue.lock().poisoned {
        Some(op) => Err(Error::WalPoisoned { op }),
        None => Ok(()),
    }
}

impl Wal {
    /// Opens the WAL (creating the directory if needed), locks the directory against other
    /// processes (`Err(DirLocked)` while another holds it), replays every file, cuts off a
    /// torn tail, and starts the writer thread on a new file. Blocking I/O.
    pub fn open(opts: WalOptions) -> Result<(Self, WalRecovery)> {
        if opts.segment_bytes == 0 {
            return Err(Error::Config {
                field: "wal.segment_bytes",
                reason: "must be at least 1".to_owned(),
            });
        }
        std::fs::create_dir_all(&opts.dir)
            .map_err(|e| Error::io("create wal directory", &opts.dir, e))?;
        let lock = DirLock::acquire(&opts.dir)?;
        let replay = recovery::replay_dir(&opts.dir)?;
        let next = replay.last_no.checked_add(1).ok_or(Error::Invariant {
            what: "wal file number overflow",
        })?;
        // The first file starts with the recovered promises, so the files holding them can
        // be deleted like any other.
        let head = writer::head_promises(&replay.promises);
        let prealloc = writer::prealloc_bytes(opts.segment_bytes);
        let active = writer::create_file(&opts.dir, next, &head, prealloc)?;
        let recovery = WalRecovery {
            files: replay.files.len(),
            bytes: replay.files.iter().map(|f| f.bytes).sum(),
            records: replay.records,
            promises: replay.promises,
            torn_tail: replay.torn_tail,
        };
        tracing::info!(
            dir = %opts.dir.display(),
            files = recovery.files,
            bytes = recovery.bytes,
            records = recovery.records.len(),
            promises = recovery.promises.len(),
            torn_tail = recovery.torn_tail.is_some(),
            "wal: recovered"
        );
        let table = FileTable::new(
            replay.files,
            recovery.promises.clone(),
            active.no,
            active.path.clone(),
            active.len,
        );
        let shared = Arc::new(Shared {
            dir: opts.dir.clone(),
            sync: opts.sync,
            segment_bytes: opts.segment_bytes,
            faults: opts.faults,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            files: Mutex::new(table),
            poisoned: AtomicBool::new(false),
            appends: Counter::default(),
            syncs: Counter::default(),
            sync_latency: Histogram::default(),
        });
        let for_thread = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("tierkv-wal".to_owned())
            .spawn(move || writer::run(for_thread, active))
            .map_err(|e| Error::io("spawn wal writer thread", &opts.dir, e))?;
        let wal = Self {
            inner: Arc::new(Inner {
                shared,
                thread: Mutex::new(Some(handle)),
                lock: Mutex::new(Some(lock)),
            }),
        };
        Ok((wal, recovery))
    }

    /// Encodes and queues `rec`. The order of `append` calls is the log order. Fails at once
    /// with `Err(WalPoisoned)` or `Err(Closed)` if the WAL can no longer accept writes, and
    /// with `Err(Invalid)` if an entry breaks a limit or the record exceeds 256 MiB.
    pub fn append(&self, rec: &WalRecord) -> Result<Durable> {
        let frame = format::encode_frame(rec)?;
        self.enqueue(
            &frame,
            Mark::Batch {
                shard: rec.shard,
                seq: rec.seq,
            },
        )
    }

    /// Queues a promise record: this replica promised `epoch` for `shard`. Same order, group
    /// commit and errors as [`Wal::append`] (the record cannot be invalid).
    ///
    /// [`WalRecovery::promises`] reports the highest promise per shard after a restart, also
    /// once the file holding this record is deleted: every new file starts with the latest
    /// promise of every shard.
    pub fn append_promise(&self, shard: ShardId, epoch: Epoch) -> Result<Durable> {
        self.enqueue(
            &format::encode_promise(shard, epoch),
            Mark::Promise { shard, epoch },
        )
    }

    /// Queues a truncate record: the records of `shard` with seq > `after` appended before
    /// this call are void. Same order, group commit and errors as [`Wal::append`].
    ///
    /// Recovery drops the voided records from [`WalRecovery::records`] and keeps records of
    /// `shard` appended after this call, whatever their seq. The file holding this record is
    /// kept until `shard` has released every record it had in the WAL when it was written.
    pub fn append_truncate(&self, shard: ShardId, after: SeqNo) -> Result<Durable> {
        self.enqueue(
            &format::encode_truncate(shard, after),
            Mark::Truncate { shard, after },
        )
    }

    /// Queues one encoded frame and counts it.
    fn enqueue(&self, frame: &[u8], mark: Mark) -> Result<Durable> {
        let shared = &self.inner.shared;
        let (tx, rx) = oneshot::channel();
        shared.enqueue(frame, mark, tx)?;
        shared.appends.inc();
        Ok(Durable { rx })
    }

    /// Records of `shard` with seq <= `upto` are in object storage and no longer needed.
    ///
    /// A file is deleted (by the writer thread, shortly after) once it is not the active file
    /// and, for every shard with records in it, that shard's max seq in the file is <= its
    /// released mark. Marks only go up; `SeqNo(u64::MAX)` releases a shard entirely. Marks
    /// are not persisted: after a restart, shards release again what they have flushed.
    pub fn release(&self, shard: ShardId, upto: SeqNo) {
        let shared = &self.inner.shared;
        let deletable = shared.files.lock().release(shard, upto);
        // After `close` the directory may already belong to a new WAL (the next open, after
        // a crash-like drop); a late release from a lingering task must not touch it. The
        // files are deleted at that next open, once its shards release them again.
        if deletable && !shared.request_gc() && !shared.queue.lock().closing {
            shared.delete_released();
        }
    }

    /// The oldest live file other than the active one, if any, and the shards keeping it.
    #[must_use]
    pub fn oldest_file(&self) -> Option<OldestFile> {
        let (created, pins) = self.inner.shared.files.lock().oldest()?;
        Some(OldestFile {
            age: created.elapsed(),
            pins,
        })
    }

    /// Current counters.
    pub fn stats(&self) -> WalStats {
        let shared = &self.inner.shared;
        let (files, bytes) = shared.files.lock().totals();
        WalStats {
            bytes,
            files,
            appends: shared.appends.get(),
            syncs: shared.syncs.get(),
            sync_latency: shared.sync_latency.snapshot(),
            poisoned: self.is_poisoned(),
        }
    }

    /// Registers the WAL's figures into `registry`: `tierkv_wal_*` (records appended,
    /// `fdatasync` calls and their latency, live files and bytes, poisoned). The gauges are
    /// read when scraped and read 0 once the WAL is gone.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let shared = &self.inner.shared;
        registry.register(
            "tierkv_wal_appends",
            "WAL records appended",
            shared.appends.clone(),
        );
        registry.register(
            "tierkv_wal_syncs",
            "WAL fdatasync calls",
            shared.syncs.clone(),
        );
        registry.register(
            "tierkv_wal_fsync_duration_seconds",
            "WAL fdatasync latency",
            shared.sync_latency.clone(),
        );
        let read = |f: fn(&Shared) -> u64| {
            let weak = Arc::downgrade(shared);
            Observed::gauge(move || weak.upgrade().map_or(0, |s| f(&s)))
        };
        registry.register(
            "tierkv_wal_bytes",
            "Bytes in live WAL files",
            read(|s| s.files.lock().totals().1),
        );
        registry.register(
            "tierkv_wal_files",
            "Live WAL files",
            read(|s| s.files.lock().totals().0),
        );
        registry.register(
            "tierkv_wal_oldest_file_age_seconds",
            "Age of the oldest WAL file other than the active one (0 when there is none)",
            read(|s| {
                s.files
                    .lock()
                    .oldest()
                    .map_or(0, |(created, _)| created.elapsed().as_secs())
            }),
        );
        registry.register(
            "tierkv_wal_poisoned",
            "1 when the WAL is poisoned",
            read(|s| u64::from(s.poisoned.load(Ordering::SeqCst))),
        );
    }

    /// Whether a write or sync failed; the WAL then refuses writes until restart.
    pub fn is_poisoned(&self) -> bool {
        self.inner.shared.poisoned.load(Ordering::SeqCst)
    }

    /// Writes and syncs what is queued and stops the writer thread (blocking until it has
    /// stopped). Later appends get `Err(Closed)`. Idempotent; also done when the last handle
    /// is dropped. Returns `Err(WalPoisoned)` if the WAL is poisoned.
    pub fn close(&self) -> Result<()> {
        close(&self.inner)
    }
}
