//! The background writer thread: group commit, rolling, release.
//!
//! Appenders encode their frame outside any lock, then lock the shared [`Queue`] briefly to
//! copy the bytes in, register a oneshot sender for completion, and wake the writer. The
//! writer loops:
//!
//! 1. take everything queued (swapping the buffer with an empty spare one);
//! 2. one `write_all` to the active file;
//! 3. `Always`: one `fdatasync`, then complete the per-record oneshot of every record
//!    written (each waiter is woken exactly once, only when its record is covered);
//!    `Interval(d)`: complete them right after the write, `fdatasync` if `d` has passed
//!    since the last one (or at close, or before rolling);
//! 4. roll to a new file if the active one now exceeds `segment_bytes` (a new file starts
//!    with a promise record for every shard's latest promise, see `files.rs`);
//! 5. delete files that `release` made deletable;
//! 6. keep zeros ahead of the end of the active file (below).
//!
//! # Preallocation
//!
//! An `fdatasync` after an append that grew the file must also write the inode (its new
//! size): a second synchronous write per group commit (on ext4 without a journal it showed
//! as ~40 % of the sync time). So the writer keeps the active file zero-filled
//! [`prealloc_bytes`] ahead of the last record (real zeros, not `fallocate`d unwritten
//! extents, whose conversion is a metadata write too); appends then overwrite zeros and
//! the file size changes once per chunk, not once per sync. The zeros are written after a
//! round's records are acknowledged, so no waiting append pays for them. A file is cut back
//! to its records before the next one is created (rolling) and when the WAL closes, so only
//! the last file can have a zero tail, which recovery cuts off (`recovery.rs`: a crash leaves
//! the same zeros when a write never reached the disk).
//!
//! While it writes and syncs, new appends accumulate for the next round: that is the group
//! commit. A failed write, fdatasync or file creation poisons the WAL for good (an fsync is
//! never retried): appends are refused and every waiter not yet durable gets
//! `Error::WalPoisoned`; the thread then exits.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::metrics::{Counter, Histogram};
use crate::paths;
use crate::types::{Epoch, ShardId};

use super::files::{FileTable, Mark};
use super::format::{self, HEADER_LEN};
use super::recovery::sync_dir;
use super::{SyncPolicy, WalFaults};

/// What appenders hand to the writer.
#[derive(Debug, Default)]
pub(super) struct Queue {
    /// Encoded frames not yet written.
    buf: Vec<u8>,
    /// What each queued record means for the file bookkeeping, in log order.
    marks: Vec<Mark>,
    /// Completion of each queued record: `Ok` once durable, `Err(op)` once poisoned.
    waiters: Vec<Ack>,
    /// `close` was called: refuse appends, write what is queued, stop.
    pub(super) closing: bool,
    /// Set once a write or sync failed.
    pub(super) poisoned: Option<&'static str>,
    /// `release` made some file deletable.
    gc: bool,
}

/// Completion of one record: `Ok` once durable, `Err(failed op)` if the WAL was poisoned
/// first.
pub(super) type AckResult = std::result::Result<(), &'static str>;
/// The writer's end of a record's completion.
pub(super) type Ack = oneshot::Sender<AckResult>;

/// State shared by the handles and the writer thread.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) dir: PathBuf,
    pub(super) sync: SyncPolicy,
    pub(super) segment_bytes: u64,
    pub(super) faults: Option<Arc<WalFaults>>,
    pub(super) queue: Mutex<Queue>,
    pub(super) wake: Condvar,
    pub(super) files: Mutex<FileTable>,
    pub(super) poisoned: AtomicBool,
    pub(super) appends: Counter,
    pub(super) syncs: Counter,
    pub(super) sync_latency: Histogram,
}

impl Shared {
    /// Queues one encoded frame; `ack` is completed when it is durable or poisoned.
    pub(super) fn enqueue(&self, frame: &[u8], mark: Mark, ack: Ack) -> Result<()> {
        let mut q = self.queue.lock();
        if let Some(op) = q.poisoned {
            return Err(Error::WalPoisoned { op });
        }
        if q.closing {
            return Err(Error::Closed);
        }
        q.buf.extend_from_slice(frame);
        q.marks.push(mark);
        q.waiters.push(ack);
        drop(q);
        self.wake.notify_one();
        Ok(())
    }

    /// Asks the writer to delete deletable files. Returns false if the writer is not running
    /// (closing or poisoned), in which case the caller deletes them itself.
    pub(super) fn request_gc(&self) -> bool {
        let mut q = self.queue.lock();
        if q.closing || q.poisoned.is_some() {
            return false;
        }
        q.gc = true;
        drop(q);
        self.wake.notify_one();
        true
    }

    /// Deletes every file the table says is deletable.
    pub(super) fn delete_released(&self) {
        let doomed = self.files.lock().take_deletable();
        for path in doomed {
            match fs::remove_file(&path) {
                Ok(()) => tracing::debug!(file = %path.display(), "wal: deleted released file"),
                Err(e) => tracing::warn!(
                    file = %path.display(),
                    error = %e,
                    "wal: could not delete released file; it will be replayed on restart"
                ),
            }
        }
    }

    /// Poisons the WAL: refuse appends, fail every waiter not yet durable.
    /// `unacked` are the waiters of records the writer took but did not complete.
    fn poison(&self, op: &'static str, err: &Error, unacked: &mut Vec<Ack>) {
        tracing::error!(op, error = %err, "wal: poisoned; refusing writes until restart");
        self.poisoned.store(true, Ordering::SeqCst);
        let queued = {
            let mut q = self.queue.lock();
            q.poisoned = Some(op);
            q.buf = Vec::new();
            q.marks = Vec::new();
            std::mem::take(&mut q.waiters)
        };
        for ack in unacked.drain(..).chain(queued) {
            // A dropped receiver only means nobody waits for this record.
            let _ = ack.send(Err(op));
        }
    }
}

/// The file being appended to.
#[derive(Debug)]
pub(super) struct ActiveFile {
    pub(super) no: u64,
    pub(super) path: PathBuf,
    file: File,
    pub(super) len: u64,
    /// Length of the header plus the head promises: the file holds nothing else yet.
    base_len: u64,
    /// Size of the file on disk: `len` plus the zeros written ahead (preallocation).
    allocated: u64,
}

/// How far ahead of its last record the active file is kept zero-filled: a quarter of a
/// segment, between 4 KiB and 1 MiB.
pub(super) fn prealloc_bytes(segment_bytes: u64) -> u64 {
    (segment_bytes / 4).clamp(4 << 10, 1 << 20)
}

impl ActiveFile {
    /// Writes zeros from the end of the file up to `prealloc` bytes past the last record, if
    /// less than half of that is left; whether it wrote (the caller makes it durable).
    fn fill_zeros(&mut self, prealloc: u64) -> Result<bool> {
        if self.allocated.saturating_sub(self.len) >= prealloc / 2 {
            return Ok(false);
        }
        let start = self.allocated.max(self.len);
        let end = self.len + prealloc;
        let zeros = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
        self.file
            .write_all_at(&zeros, start)
            .map_err(|e| Error::io("preallocate wal file", &self.path, e))?;
        self.allocated = end;
        Ok(true)
    }

    /// [`ActiveFile::fill_zeros`], durably.
    fn preallocate(&mut self, prealloc: u64) -> Result<()> {
        if self.fill_zeros(prealloc)? {
            self.file
                .sync_data()
                .map_err(|e| Error::io("fsync preallocated wal file", &self.path, e))?;
        }
        Ok(())
    }

    /// Cuts the zeros off the end, durably: the file then holds exactly its records.
    fn trim(&mut self) -> Result<()> {
        if self.allocated > self.len {
            self.file
                .set_len(self.len)
                .and_then(|()| self.file.sync_data())
                .map_err(|e| Error::io("trim wal file", &self.path, e))?;
            self.allocated = self.len;
        }
        Ok(())
    }
}

/// The head of a new file: one promise record per shard, in shard order.
pub(super) fn head_promises(promises: &HashMap<ShardId, Epoch>) -> Vec<u8> {
    let mut sorted: Vec<(&ShardId, &Epoch)> = promises.iter().collect();
    sorted.sort_unstable();
    let mut head = Vec::new();
    for (shard, epoch) in sorted {
        head.extend_from_slice(&format::encode_promise(*shard, *epoch));
    }
    head
}

/// Creates WAL file `no` in `dir` with its header followed by `head` (encoded frames, the
/// head promises) and `prealloc` zeros, fsyncs it and the directory. Once this returns,
/// `head` is durable.
pub(super) fn create_file(dir: &Path, no: u64, head: &[u8], prealloc: u64) -> Result<ActiveFile> {
    let path = dir.join(paths::wal_file(no));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io("create wal file", &path, e))?;
    file.write_all(&format::encode_header(no))
        .map_err(|e| Error::io("write wal file header", &path, e))?;
    file.write_all(head)
        .map_err(|e| Error::io("write wal head promises", &path, e))?;
    let len = (HEADER_LEN + head.len()) as u64;
    let mut active = ActiveFile {
        no,
        path,
        file,
        len,
        base_len: len,
        allocated: len,
    };
    active.fill_zeros(prealloc)?;
    active
        .file
        .sync_all()
        .map_err(|e| Error::io("fsync new wal file", &active.path, e))?;
    sync_dir(dir)?;
    Ok(active)
}

/// One round's worth of work taken from the queue.
struct Round {
    closing: bool,
    gc: bool,
}

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    active: ActiveFile,
    /// Bytes taken from the queue this round; swapped with the queue's buffer.
    buf: Vec<u8>,
    marks: Vec<Mark>,
    /// Waiters of the records taken this round, until completed.
    waiters: Vec<Ack>,
    /// Written but not yet fdatasync'ed.
    dirty: bool,
    last_sync: Instant,
}

/// Poisons the WAL if the writer thread unwinds, so that no waiter hangs.
struct PanicGuard(Arc<Shared>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poison(
                "wal writer thread",
                &Error::Invariant {
                    what: "wal writer thread panicked",
                },
                &mut Vec::new(),
            );
        }
    }
}

/// Body of the writer thread.
pub(super) fn run(shared: Arc<Shared>, active: ActiveFile) {
    let _guard = PanicGuard(Arc::clone(&shared));
    let mut w = Writer {
        shared,
        active,
        buf: Vec::new(),
        marks: Vec::new(),
        waiters: Vec::new(),
        dirty: false,
        last_sync: Instant::now(),
    };
    if let Err(Failure(failure)) = w.run_loop() {
        let (op, err) = *failure;
        w.shared.poison(op, &err, &mut w.waiters);
    }
}

/// A failed operation (the name `Error::WalPoisoned` reports) and its error.
struct Failure(Box<(&'static str, Error)>);

impl Failure {
    fn new(op: &'static str, err: Error) -> Self {
        Self(Box::new((op, err)))
    }
}

impl Writer {
    /// Blocks until there is work, then takes it.
    fn next_round(&mut self) -> Round {
        let mut q = self.shared.queue.lock();
        loop {
            if !q.buf.is_empty() || q.closing || q.gc {
                break;
            }
            match self.shared.sync {
                SyncPolicy::Interval(d) if self.dirty => {
                    let deadline = self.last_sync + d;
                    if Instant::now() >= deadline {
                        break;
                    }
                    self.shared.wake.wait_until(&mut q, deadline);
                }
                _ => self.shared.wake.wait(&mut q),
            }
        }
        std::mem::swap(&mut q.buf, &mut self.buf);
        std::mem::swap(&mut q.marks, &mut self.marks);
        std::mem::swap(&mut q.waiters, &mut self.waiters);
        Round {
            closing: q.closing,
            gc: std::mem::take(&mut q.gc),
        }
    }

    /// Completes the waiters of every record taken so far.
    fn ack(&mut self) {
        for ack in self.waiters.drain(..) {
            // A dropped receiver only means nobody waits for this record.
            let _ = ack.send(Ok(()));
        }
    }

    fn run_loop(&mut self) -> Result<(), Failure> {
        // Recovered files without records (or already released) can go at once.
        self.shared.delete_released();
        loop {
            let round = self.next_round();
            let wrote = !self.buf.is_empty();
            if wrote {
                self.write()?;
                if matches!(self.shared.sync, SyncPolicy::Interval(_)) {
                    self.ack();
                }
            }
            let sync_now = self.dirty
                && match self.shared.sync {
                    SyncPolicy::Always => true,
                    SyncPolicy::Interval(d) => round.closing || self.last_sync.elapsed() >= d,
                };
            if sync_now {
                self.sync()?;
            }
            if wrote && self.shared.sync == SyncPolicy::Always {
                self.ack();
            }
            // A file holding only its head is not rolled (its successor would be no smaller).
            if self.active.len > self.shared.segment_bytes
                && self.active.len > self.active.base_len
                && !round.closing
            {
                self.roll()?;
            }
            if round.gc {
                self.shared.delete_released();
            }
            if round.closing {
                return self
                    .active
                    .trim()
                    .map_err(|e| Failure::new("trim wal file", e));
            }
            if wrote {
                self.active
                    .preallocate(prealloc_bytes(self.shared.segment_bytes))
                    .map_err(|e| Failure::new("preallocate wal file", e))?;
            }
        }
    }

    fn write(&mut self) -> Result<(), Failure> {
        self.active.file.write_all(&self.buf).map_err(|e| {
            Failure::new("write", Error::io("write wal file", &self.active.path, e))
        })?;
        let n = self.buf.len() as u64;
        self.active.len += n;
        self.dirty = true;
        self.shared
            .files
            .lock()
            .note(self.active.no, &self.marks, n);
        self.buf.clear();
        self.marks.clear();
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Failure> {
        let injected = self
            .shared
            .faults
            .as_ref()
            .is_some_and(|f| f.fail_next_sync.swap(false, Ordering::SeqCst));
        let start = Instant::now();
        let res = if injected {
            Err(std::io::Error::other(
                "injected fdatasync failure (WalFaults)",
            ))
        } else {
            self.active.file.sync_data()
        };
        self.shared.sync_latency.observe(start.elapsed());
        self.shared.syncs.inc();
        res.map_err(|e| {
            Failure::new(
                "fdatasync",
                Error::io("fdatasync wal file", &self.active.path, e),
            )
        })?;
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Starts a new file; the old one is complete and synced, hence immutable.
    fn roll(&mut self) -> Result<(), Failure> {
        if self.dirty {
            self.sync()?;
        }
        // Only the last file may end in zeros (recovery cuts them off there, and calls them
        // corruption anywhere else).
        self.active
            .trim()
            .map_err(|e| Failure::new("trim wal file", e))?;
        let next = self.active.no.checked_add(1).ok_or_else(|| {
            Failure::new(
                "roll",
                Error::Invariant {
                    what: "wal file number overflow",
                },
            )
        })?;
        // The head promises are taken after the old file's last write was noted, so they
        // include every promise written so far; the old file may then be deleted freely.
        let head = head_promises(self.shared.files.lock().promises());
        let prealloc = prealloc_bytes(self.shared.segment_bytes);
        let new = create_file(&self.shared.dir, next, &head, prealloc)
            .map_err(|e| Failure::new("create wal file", e))?;
        self.shared
            .files
            .lock()
            .set_active(new.no, new.path.clone(), new.len);
        tracing::debug!(file = %new.path.display(), "wal: rolled to a new file");
        self.active = new;
        self.shared.delete_released();
        Ok(())
    }
}
