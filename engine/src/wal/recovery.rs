//! Replay of the WAL at start-up, and the torn-tail rules.
//!
//! Files named `<file_no:020>.wal` are replayed in `file_no` order (gaps are normal: `release`
//! deletes any fully released file, not only the oldest). Other names are ignored.
//!
//! # Files other than the last
//!
//! They were complete and synced before a newer file was created, so any bad byte (header or
//! frame) is a start-up error, `Error::Corrupt`, whose location names the file and the byte
//! offset of the bad frame. Nothing is truncated.
//!
//! # The last file
//!
//! A crash may leave a partially written frame at its end (a torn tail), followed by the
//! zeros the writer keeps ahead of the last record (preallocation, see `writer.rs`). At the
//! offset `X` of the first frame that fails to read:
//!
//! 1. fewer than 12 bytes (a frame header) are left: torn tail;
//! 2. `len_crc` does not match: torn tail only if every byte after the frame header (from
//!    `X + 12`) to the end is zero (the header was partly written, or not at all, over
//!    preallocated or never-filled space), else a corruption error;
//! 3. the header is valid but the payload extends past the end of the file: torn tail;
//! 4. the payload is complete but its checksum or decoding fails: torn tail only if nothing
//!    but zeros follows the frame (it is the last frame written), else a corruption error.
//!
//! A checksummed `len` over 256 MiB is always corruption. A torn tail is cut off
//! (`set_len(X)` and fsync), logged with `tracing::warn!` and reported in
//! [`super::WalRecovery::torn_tail`].
//!
//! If the last file is shorter than its 20-byte header, or consists only of zero bytes, it was
//! being created when the process stopped: it holds no records, and it is removed (a file
//! without a header would be invalid) and reported as a torn tail at offset 0.
//!
//! # Promises and truncations
//!
//! Replay walks every record of every kept file in log order:
//!
//! - a batch (kind 1) is appended to [`super::WalRecovery::records`];
//! - a promise (kind 2) raises the shard's entry in [`super::WalRecovery::promises`] (the
//!   highest promised epoch seen anywhere);
//! - a truncate `{shard, after}` (kind 3) removes every batch of `shard` with seq > `after`
//!   replayed so far. Batches replayed after it are kept, so a log cut back and then
//!   re-extended at the same seqs (by a newer epoch) yields the new records only.
//!
//! A single-process node writes only batches, for which replay is exactly what it always was.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::paths;
use crate::types::{Epoch, SeqNo, ShardId};

use super::files::truncate_pin;
use super::format::{self, FRAME_HEADER_LEN, FrameError, HEADER_LEN, Payload};
use super::{TornTail, WalRecord};

/// A file that survived recovery, with what `release` needs to know about it.
#[derive(Debug)]
pub(super) struct RecoveredFile {
    /// File number.
    pub(super) no: u64,
    /// Path.
    pub(super) path: PathBuf,
    /// Length after any truncation.
    pub(super) bytes: u64,
    /// Highest seq per shard with records in the file, raised by the pins of its truncate
    /// records (see `files.rs`).
    pub(super) max_seq: HashMap<ShardId, SeqNo>,
}

/// Everything replayed from a WAL directory.
#[derive(Debug, Default)]
pub(super) struct Replay {
    /// Batch records in log order, truncations applied.
    pub(super) records: Vec<WalRecord>,
    /// Highest promised epoch per shard.
    pub(super) promises: HashMap<ShardId, Epoch>,
    /// The torn tail that was cut off, if any.
    pub(super) torn_tail: Option<TornTail>,
    /// Files kept, in order.
    pub(super) files: Vec<RecoveredFile>,
    /// Highest file number seen (0 if none), including a removed torn file.
    pub(super) last_no: u64,
}

/// What scanning the bytes of one file found.
#[derive(Debug)]
pub(super) struct Scan {
    /// Records of every kind, in order.
    pub(super) records: Vec<Payload>,
    /// Length of the valid prefix; if `torn`, the file is cut to this length (0: removed).
    pub(super) valid_len: usize,
    /// Whether the file has a torn tail after `valid_len`.
    pub(super) torn: bool,
}

/// Location string naming a file and an offset.
fn location(path: &Path, offset: usize) -> String {
    format!("{} at offset {offset}", path.display())
}

/// Whether `bytes` (nothing at all if `None`) holds only zeros.
fn all_zero(bytes: Option<&[u8]>) -> bool {
    bytes.is_none_or(|b| b.iter().all(|x| *x == 0))
}

/// Scans the bytes of file `file_no` (`path` is for messages only) under the rules in the
/// module docs. Never panics on any input.
pub(super) fn scan_file(data: &Bytes, file_no: u64, is_last: bool, path: &Path) -> Result<Scan> {
    if is_last && (data.len() < HEADER_LEN || data.iter().all(|b| *b == 0)) {
        return Ok(Scan {
            records: Vec::new(),
            valid_len: 0,
            torn: true,
        });
    }
    format::check_header(data, file_no, &path.display().to_string())?;
    let mut records = Vec::new();
    let mut pos = HEADER_LEN;
    while pos < data.len() {
        match format::read_frame(data, pos) {
            Ok((rec, next)) => {
                records.push(rec);
                pos = next;
            }
            Err(fault) => {
                let rest = data.get(pos..).unwrap_or_default();
                let torn = is_last
                    && match &fault {
                        FrameError::ShortHeader | FrameError::PastEof => true,
                        FrameError::BadLenCrc => all_zero(rest.get(FRAME_HEADER_LEN..)),
                        FrameError::TooLong => false,
                        FrameError::BadPayload { end, .. } => all_zero(data.get(*end..)),
                    };
                if !torn {
                    return Err(Error::corrupt(
                        "wal frame",
                        location(path, pos),
                        fault.describe(pos),
                    ));
                }
                return Ok(Scan {
                    records,
                    valid_len: pos,
                    torn: true,
                });
            }
        }
    }
    Ok(Scan {
        records,
        valid_len: data.len(),
        torn: false,
    })
}

/// WAL files in `dir`, sorted by number.
pub(super) fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let rd = fs::read_dir(dir).map_err(|e| Error::io("list wal directory", dir, e))?;
    let mut files = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::io("list wal directory", dir, e))?;
        let Some(no) = ent.file_name().to_str().and_then(paths::parse_wal_file) else {
            continue;
        };
        let ft = ent
            .file_type()
            .map_err(|e| Error::io("stat wal file", ent.path(), e))?;
        if ft.is_file() {
            files.push((no, ent.path()));
        }
    }
    files.sort_unstable_by_key(|(no, _)| *no);
    Ok(files)
}

/// Fsyncs a directory so that file creations and removals in it are durable.
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync wal directory", dir, e))
}

/// Cuts a torn tail off `path` at `len` (removing the file if `len` is 0), durably.
fn cut_tail(dir: &Path, path: &Path, len: usize) -> Result<()> {
    if len == 0 {
        fs::remove_file(path).map_err(|e| Error::io("remove torn wal file", path, e))?;
        return sync_dir(dir);
    }
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open wal file for truncation", path, e))?;
    f.set_len(len as u64)
        .map_err(|e| Error::io("truncate torn wal tail", path, e))?;
    f.sync_all()
        .map_err(|e| Error::io("fsync truncated wal file", path, e))
}

/// Raises `map[key]` to at least `value`.
fn raise<K: std::hash::Hash + Eq, V: Ord + Copy>(map: &mut HashMap<K, V>, key: K, value: V) {
    let m = map.entry(key).or_insert(value);
    *m = (*m).max(value);
}

/// Replays every WAL file in `dir`, cutting off a torn tail of the last one, applying
/// truncations and collecting promises.
pub(super) fn replay_dir(dir: &Path) -> Result<Replay> {
    let listed = list_files(dir)?;
    let mut out = Replay::default();
    let count = listed.len();
    for (i, (no, path)) in listed.into_iter().enumerate() {
        out.last_no = no;
        let is_last = i + 1 == count;
        let data = Bytes::from(fs::read(&path).map_err(|e| Error::io("read wal file", &path, e))?);
        let scan = scan_file(&data, no, is_last, &path)?;
        let mut max_seq: HashMap<ShardId, SeqNo> = HashMap::new();
        for payload in scan.records {
            match payload {
                Payload::Batch(r) => {
                    raise(&mut max_seq, r.shard, r.seq);
                    out.records.push(r);
                }
                Payload::Promise { shard, epoch } => raise(&mut out.promises, shard, epoch),
                Payload::Truncate { shard, after } => {
                    // A linear pass per truncate: they are rare (one per leader change).
                    out.records.retain(|r| r.shard != shard || r.seq <= after);
                    // The same pin the writer set when it wrote this record, computed over
                    // the files that are still here (a pin only has to cover those).
                    let live = out
                        .files
                        .iter()
                        .filter_map(|f| f.max_seq.get(&shard))
                        .chain(max_seq.get(&shard))
                        .copied();
                    let pin = truncate_pin(after, live);
                    raise(&mut max_seq, shard, pin);
                }
            }
        }
        if scan.torn {
            let dropped = data.len() - scan.valid_len;
            tracing::warn!(
                file = %path.display(),
                offset = scan.valid_len,
                dropped_bytes = dropped,
                "wal: cutting off torn tail of the last file"
            );
            cut_tail(dir, &path, scan.valid_len)?;
            out.torn_tail = Some(TornTail {
                file: path.clone(),
                offset: scan.valid_len as u64,
                dropped_bytes: dropped as u64,
            });
            if scan.valid_len == 0 {
                continue;
            }
        }
        out.files.push(RecoveredFile {
            no,
            path,
            bytes: scan.valid_len as u64,
            max_seq,
        });
    }
    Ok(out)
}
