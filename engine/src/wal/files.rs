//! Bookkeeping of the WAL files that exist, for `release` and stats.
//!
//! For each file: its size and, per shard with records in it, the highest seq there. Per
//! shard: the released mark (records with seq <= mark are in object storage). A file may be
//! deleted once it is not the active file and every shard with records in it has a mark at
//! or above its max seq in the file (a file without records qualifies at once).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::types::{SeqNo, ShardId};

use super::recovery::RecoveredFile;

/// What is known about one file.
#[derive(Debug)]
struct FileMeta {
    path: PathBuf,
    bytes: u64,
    max_seq: HashMap<ShardId, SeqNo>,
}

/// All live WAL files, the active one, and the released marks.
#[derive(Debug)]
pub(super) struct FileTable {
    files: BTreeMap<u64, FileMeta>,
    active: u64,
    released: HashMap<ShardId, SeqNo>,
}

impl FileTable {
    /// A table of the recovered files plus the (new, empty) active file.
    pub(super) fn new(
        recovered: Vec<RecoveredFile>,
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
            },
        );
        Self {
            files,
            active,
            released: HashMap::new(),
        }
    }

    /// Makes a newly created file the active one.
    pub(super) fn set_active(&mut self, no: u64, path: PathBuf, bytes: u64) {
        self.files.insert(
            no,
            FileMeta {
                path,
                bytes,
                max_seq: HashMap::new(),
            },
        );
        self.active = no;
    }

    /// Notes that `bytes` holding records `marks` (shard, seq) were written to file `no`.
    pub(super) fn note(&mut self, no: u64, marks: &[(ShardId, SeqNo)], bytes: u64) {
        if let Some(f) = self.files.get_mut(&no) {
            f.bytes += bytes;
            for (shard, seq) in marks {
                let m = f.max_seq.entry(*shard).or_insert(*seq);
                *m = (*m).max(*seq);
            }
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

    /// (number of files, total bytes).
    pub(super) fn totals(&self) -> (u64, u64) {
        let bytes = self.files.values().map(|f| f.bytes).sum();
        (self.files.len() as u64, bytes)
    }
}
