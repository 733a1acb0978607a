//! Bookkeeping of the WAL files that exist, for `release` and stats.
//!
//! For each file: its size and, per shard with records in it, the highest seq there. Per
//! shard: the released mark (records with seq <= mark are in object storage). A file may be
//! deleted once it is not the active file and every shard with records in it has a mark at
//! or above its max seq in the file (a file without records qualifies at once).
//!
//! Two more rules keep deletion safe for the replication record kinds:
//!
//! - **Promises are repeated, so they never pin a file.** The table remembers the latest
//!   promised epoch of every shard (from recovery and from every promise written), and the
//!   writer puts a promise record for each of them at the head of every new file, before any
//!   other record and inside the file's creation fsync. The active file is never deleted, so
//!   it always holds every shard's latest promise, and older files can go whatever promises
//!   they hold.
//! - **A truncate pins its file** (see [`truncate_pin`]): a file holding `Truncate{s, after}`
//!   counts as holding records of shard `s` up to a seq at least as high as every record of
//!   `s` it may have voided.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use crate::types::{Epoch, SeqNo, ShardId};

use super::recovery::RecoveredFile;

/// What one written record means for the bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    /// A batch of `shard` at `seq`.
    Batch {
        /// The shard.
        shard: ShardId,
        /// Its seq.
        seq: SeqNo,
    },
    /// A promise of `epoch` for `shard`.
    Promise {
        /// The shard.
        shard: ShardId,
        /// The promised epoch.
        epoch: Epoch,
    },
    /// A truncation of `shard` after `after`.
    Truncate {
        /// The shard.
        shard: ShardId,
        /// Records above this seq written before are void.
        after: SeqNo,
    },
}

/// The seq up to which a file holding `Truncate{s, after}` counts as holding records of `s`:
/// `max(after, every seq of s in the live files)`, where `live` yields the max seq of `s` of
/// every live file (the truncate's own file included, as far as written before it).
///
/// Why: the truncate voids records of `s` written before it, which may sit in older files.
/// If the truncate's file were deleted while such a file survives, a restart would replay the
/// voided records without the truncate, and resurrect a log tail the replica had discarded
/// (typically an uncommitted tail of an older epoch, possibly at the same seqs as newer
/// records). With the pin, the truncate's file goes only once `s` has released everything it
/// had in the live files when the truncate was written; by then every voided record is
/// either deleted with its file or at or below the shard's released mark, and replay skips
/// records at or below what the manifest holds. Including `after` defines the pin when no
/// live file holds records of `s`; it costs nothing, since the records up to `after` are the
/// shard's kept log, which it flushes and releases anyway.
pub(super) fn truncate_pin(after: SeqNo, live: impl IntoIterator<Item = SeqNo>) -> SeqNo {
    live.into_iter().fold(after, SeqNo::max)
}

/// What is known about one file.
#[derive(Debug)]
struct FileMeta {
    path: PathBuf,
    bytes: u64,
    max_seq: HashMap<ShardId, SeqNo>,
    /// When this process created the file (or, for a recovered file, opened the WAL).
    created: Instant,
}

/// All live WAL files, the active one, the released marks and the latest promises.
#[derive(Debug)]
pub(super) struct FileTable {
    files: BTreeMap<u64, FileMeta>,
    active: u64,
    released: HashMap<ShardId, SeqNo>,
    /// Highest promised epoch per shard, recovered or written since: repeated at the head of
    /// every new file.
    promises: HashMap<ShardId, Epoch>,
}

impl FileTable {
    /// A table of the recovered files plus the (new) active file, which holds no records
    /// besides the head promises of `promises`.
    pub(super) fn new(
        recovered: Vec<RecoveredFile>,
        promises: HashMap<ShardId, Epoch>,
        active: u64,
        path: PathBuf,
        bytes: u64,
    ) -> Self {
        let mut files: BTreeMap<u64, FileMeta> = recovered
            .into_iter()
            .map(|f| {
                let meta = FileMeta {
                    path: f.path,
                    bytes: f.bytes,
                    max_seq: f.max_seq,
                    created: Instant::now(),
                };
                (f.no, meta)
            })
            .collect();
        files.insert(
            active,
            FileMeta {
                path,
                bytes,
                max_seq: HashMap::new(),
                created: Instant::now(),
            },
        );
        Self {
            files,
            active,
            released: HashMap::new(),
            promises,
        }
    }

    /// The latest promise of every shard: what a new file starts with.
    pub(super) fn promises(&self) -> &HashMap<ShardId, Epoch> {
        &self.promises
    }

    /// Makes a newly created file the active one.
    pub(super) fn set_active(&mut self, no: u64, path: PathBuf, bytes: u64) {
        self.files.insert(
            no,
            FileMeta {
                path,
                bytes,
                max_seq: HashMap::new(),
                created: Instant::now(),
            },
        );
        self.active = no;
    }

    /// Notes that `bytes` holding the records `marks` (in log order) were written to file
    /// `no`.
    pub(super) fn note(&mut self, no: u64, marks: &[Mark], bytes: u64) {
        if let Some(f) = self.files.get_mut(&no) {
            f.bytes += bytes;
        }
        for mark in marks {
            match *mark {
                Mark::Batch { shard, seq } => self.raise(no, shard, seq),
                Mark::Promise { shard, epoch } => {
                    let e = self.promises.entry(shard).or_insert(epoch);
                    *e = (*e).max(epoch);
                }
                Mark::Truncate { shard, after } => {
                    let live = self.files.values().filter_map(|f| f.max_seq.get(&shard));
                    let pin = truncate_pin(after, live.copied());
                    self.raise(no, shard, pin);
                }
            }
        }
    }

    /// Raises the max seq of `shard` in file `no` to at least `seq`.
    fn raise(&mut self, no: u64, shard: ShardId, seq: SeqNo) {
        if let Some(f) = self.files.get_mut(&no) {
            let m = f.max_seq.entry(shard).or_insert(seq);
            *m = (*m).max(seq);
        }
    }

    /// Raises the released mark of `shard` to `upto` (marks never go down). Returns whether
    /// some file can now be deleted.
    pub(super) fn release(&mut self, shard: ShardId, upto: SeqNo) -> bool {
        let m = self.released.entry(shard).or_insert(upto);
        *m = (*m).max(upto);
        self.any_deletable()
    }

    fn deletable(&self, no: u64, f: &FileMeta) -> bool {
        no != self.active
            && f.max_seq
                .iter()
                .all(|(shard, max)| self.released.get(shard).is_some_and(|r| r >= max))
    }

    /// Whether some file can be deleted.
    pub(super) fn any_deletable(&self) -> bool {
        self.files.iter().any(|(no, f)| self.deletable(*no, f))
    }

    /// Removes every deletable file from the table and returns their paths (the caller
    /// unlinks them).
    pub(super) fn take_deletable(&mut self) -> Vec<PathBuf> {
        let doomed: Vec<u64> = self
            .files
            .iter()
            .filter(|(no, f)| self.deletable(**no, f))
            .map(|(no, _)| *no)
            .collect();
        doomed
            .into_iter()
            .filter_map(|no| self.files.remove(&no).map(|f| f.path))
            .collect()
    }

    /// The oldest live file and the shards keeping it (each with its max seq there, above
    /// its released mark): what a flush must cover to delete it. `None` when only the active
    /// file is left.
    pub(super) fn oldest(&self) -> Option<(Instant, Vec<(ShardId, SeqNo)>)> {
        let (no, f) = self.files.iter().next()?;
        if *no == self.active {
            return None;
        }
        let mut pins: Vec<(ShardId, SeqNo)> = f
            .max_seq
            .iter()
            .filter(|(shard, max)| self.released.get(shard).is_none_or(|r| r < *max))
            .map(|(shard, max)| (*shard, *max))
            .collect();
        pins.sort();
        Some((f.created, pins))
    }

    /// (number of files, total bytes).
    pub(super) fn totals(&self) -> (u64, u64) {
        let bytes = self.files.values().map(|f| f.bytes).sum();
        (self.files.len() as u64, bytes)
    }
}
