//! Recovery rules: torn tails versus corruption.

use std::path::{Path, PathBuf};

use super::super::format::{FRAME_HEADER_LEN, HEADER_LEN};
use super::*;

/// Writes `n` records (shards 1 and 2 alternating) in one session; returns them and the
/// (single) file holding them.
async fn write_log(dir: &Path, n: u64) -> (Vec<WalRecord>, PathBuf) {
    let (wal, _) = Wal::open(opts(dir)).unwrap();
    let recs: Vec<WalRecord> = (1..=n).map(|i| rec(1 + (i % 2) as u32, i, 3)).collect();
    append_all(&wal, &recs).await;
    wal.close().unwrap();
    let files = wal_files(dir);
    assert_eq!(files.len(), 1);
    (recs, files[0].clone())
}

fn flip(path: &Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at] ^= 0x40;
    std::fs::write(path, data).unwrap();
}

/// Appends `n` zero bytes to `path`: preallocated space the writer never reached.
fn append_zeros(path: &Path, n: usize) {
    let mut data = std::fs::read(path).unwrap();
    data.resize(data.len() + n, 0);
    std::fs::write(path, data).unwrap();
}

/// Opening must report a torn tail at `offset` and recover exactly `records`.
fn assert_torn_at(dir: &Path, offset: usize, records: &[WalRecord]) {
    let (wal, recovery) = Wal::open(opts(dir)).unwrap();
    assert_eq!(recovery.torn_tail.unwrap().offset, offset as u64);
    assert_eq!(recovery.records, records);
    wal.close().unwrap();
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Opening must fail with `Corrupt` naming `path` and `offset`.
fn assert_corrupt_at(dir: &Path, path: &Path, offset: usize) {
    let err = Wal::open(opts(dir)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "got {err:?}");
    let msg = err.to_string();
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(msg.contains(name), "{msg}");
    assert!(msg.contains(&format!("at offset {offset}:")), "{msg}");
}

#[tokio::test]
async fn torn_tail_is_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, path) = write_log(dir.path(), 5).await;
    let offs = frame_offsets(&path);
    let last = offs[4];
    let cut = last + FRAME_HEADER_LEN + 5; // mid-payload
    let full = file_len(&path);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();

    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(
        recovery.torn_tail,
        Some(TornTail {
            file: path.clone(),
            offset: last as u64,
            dropped_bytes: (cut - last) as u64,
        })
    );
    assert!(full > cut as u64);
    assert_eq!(recovery.records, recs[..4]);
    assert_eq!(file_len(&path), last as u64);
    let more: Vec<WalRecord> = (6..=7).map(|i| rec(1, i, 1)).collect();
    append_all(&wal, &more).await;
    wal.close().unwrap();

    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(recovery.torn_tail, None);
    let expected: Vec<WalRecord> = recs[..4].iter().chain(&more).cloned().collect();
    assert_eq!(recovery.records, expected);
    wal.close().unwrap();
}

#[tokio::test]
async fn cut_inside_a_frame_header_is_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, path) = write_log(dir.path(), 3).await;
    let last = frame_offsets(&path)[2];
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len((last + 7) as u64)
        .unwrap();
    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(
        recovery.torn_tail.map(|t| (t.offset, t.dropped_bytes)),
        Some((last as u64, 7))
    );
    assert_eq!(recovery.records, recs[..2]);
    wal.close().unwrap();
}

#[tokio::test]
async fn flipped_byte_mid_log_is_a_startup_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = write_log(dir.path(), 5).await;
    let at = frame_offsets(&path)[2];
    flip(&path, at + FRAME_HEADER_LEN + 9); // inside the epoch field of the payload
    assert_corrupt_at(dir.path(), &path, at);
}

#[tokio::test]
async fn flipped_length_byte_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = write_log(dir.path(), 5).await;
    let offs = frame_offsets(&path);
    // A middle frame: a flipped length would otherwise look like a frame running past EOF.
    flip(&path, offs[2] + 1);
    assert_corrupt_at(dir.path(), &path, offs[2]);
    flip(&path, offs[2] + 1);
    // The last frame too: its bytes are not all zero, so it is not a torn tail.
    flip(&path, offs[4]);
    assert_corrupt_at(dir.path(), &path, offs[4]);
}

#[tokio::test]
async fn checksum_mismatch_in_last_frame_is_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, path) = write_log(dir.path(), 4).await;
    let last = frame_offsets(&path)[3];
    let len = file_len(&path);
    flip(&path, last + FRAME_HEADER_LEN + 30);
    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    let torn = recovery.torn_tail.unwrap();
    assert_eq!(
        (torn.offset, torn.dropped_bytes),
        (last as u64, len - last as u64)
    );
    assert_eq!(recovery.records, recs[..3]);
    assert_eq!(file_len(&path), last as u64);
    wal.close().unwrap();
}

#[tokio::test]
async fn checksum_mismatch_before_last_frame_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = write_log(dir.path(), 4).await;
    let at = frame_offsets(&path)[2];
    flip(&path, at + 8); // payload_crc of the frame before the last
    assert_corrupt_at(dir.path(), &path, at);
}

#[tokio::test]
async fn zeroed_tail_is_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, path) = write_log(dir.path(), 3).await;
    // Preallocated-but-unwritten space after the last frame.
    let len = file_len(&path);
    append_zeros(&path, 100);
    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    let torn = recovery.torn_tail.unwrap();
    assert_eq!((torn.offset, torn.dropped_bytes), (len, 100));
    assert_eq!(recovery.records, recs);
    wal.close().unwrap();

    // A last frame whose bytes never reached the disk (all zero) is a torn tail too.
    let dir = tempfile::tempdir().unwrap();
    let (recs, path) = write_log(dir.path(), 3).await;
    let last = frame_offsets(&path)[2];
    let mut data = std::fs::read(&path).unwrap();
    data[last..].fill(0);
    std::fs::write(&path, &data).unwrap();
    assert_torn_at(dir.path(), last, &recs[..2]);
}

#[tokio::test]
async fn corruption_in_older_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions {
        segment_bytes: 400,
        ..opts(dir.path())
    };
    let (wal, _) = Wal::open(o).unwrap();
    let recs: Vec<WalRecord> = (1..=20).map(|i| rec(1 + (i % 2) as u32, i, 3)).collect();
    append_all(&wal, &recs).await;
    wal.close().unwrap();
    let files = wal_files(dir.path());
    assert!(
        files.len() >= 3,
        "expected several files, got {}",
        files.len()
    );

    // The last frame of the first file: in the last file this would be a torn tail.
    let first = &files[0];
    let last = *frame_offsets(first).last().unwrap();
    flip(first, last + FRAME_HEADER_LEN + 20);
    assert_corrupt_at(dir.path(), first, last);
    flip(first, last + FRAME_HEADER_LEN + 20);

    // A cut older file is an error too, not a torn tail.
    let second = &files[1];
    let last = *frame_offsets(second).last().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(second)
        .unwrap()
        .set_len((last + 3) as u64)
        .unwrap();
    assert_corrupt_at(dir.path(), second, last);
}

#[tokio::test]
async fn header_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = write_log(dir.path(), 2).await;
    let good = std::fs::read(&path).unwrap();

    let mut data = good.clone();
    data[4..6].copy_from_slice(&7u16.to_le_bytes());
    let crc = crc32c::crc32c(&data[..16]);
    data[16..20].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &data).unwrap();
    let err = Wal::open(opts(dir.path())).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedVersion { actual: 7, .. }),
        "{err:?}"
    );

    let mut data = good.clone();
    data[0] ^= 1;
    std::fs::write(&path, &data).unwrap();
    let err = Wal::open(opts(dir.path())).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");

    let mut data = good;
    data[10] ^= 1; // file number, so the header crc fails
    std::fs::write(&path, &data).unwrap();
    let err = Wal::open(opts(dir.path())).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}

#[tokio::test]
async fn torn_header_of_last_file_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, _) = write_log(dir.path(), 2).await;
    let partial = dir.path().join(crate::paths::wal_file(2));
    std::fs::write(
        &partial,
        &super::super::format::encode_header(2)[..HEADER_LEN - 5],
    )
    .unwrap();
    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(recovery.records, recs);
    let torn = recovery.torn_tail.unwrap();
    assert_eq!(
        (torn.file, torn.offset, torn.dropped_bytes),
        (partial.clone(), 0, 15)
    );
    assert!(!partial.exists());
    wal.close().unwrap();
    // The next file number is past the removed one.
    assert!(dir.path().join(crate::paths::wal_file(3)).exists());
}

/// Copies the WAL files in `from` to `to` as they are on disk now: what a `kill -9` of the
/// process would leave (the page cache survives it).
fn snapshot(from: &Path, to: &Path) {
    for f in wal_files(from) {
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

#[tokio::test]
async fn active_file_is_preallocated_and_trimmed_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(opts(dir.path())).unwrap();
    let recs: Vec<WalRecord> = (1..=5).map(|i| rec(1, i, 3)).collect();
    append_all(&wal, &recs).await;
    let files = wal_files(dir.path());
    let path = files.last().unwrap();
    let data = std::fs::read(path).unwrap();
    let prealloc = super::super::writer::prealloc_bytes(opts(dir.path()).segment_bytes);
    assert!(
        data.len() as u64 >= prealloc && data.ends_with(&[0u8; 64]),
        "the active file ({} bytes) is not zero-filled ahead",
        data.len()
    );

    // Killed now: every acknowledged record is recovered, the zeros are cut off.
    let crashed = tempfile::tempdir().unwrap();
    snapshot(dir.path(), crashed.path());
    let (copy, recovery) = Wal::open(opts(crashed.path())).unwrap();
    assert_eq!(recovery.records, recs);
    let torn = recovery.torn_tail.expect("the zero tail is cut off");
    assert_eq!(torn.dropped_bytes, data.len() as u64 - torn.offset);
    copy.close().unwrap();

    // Closed cleanly: the file holds exactly its records, and a restart cuts nothing.
    wal.close().unwrap();
    let trimmed = std::fs::read(path).unwrap();
    assert_ne!(trimmed.last(), Some(&0), "zero tail left after close");
    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(recovery.records, recs);
    assert_eq!(recovery.torn_tail, None);
    wal.close().unwrap();
}

#[tokio::test]
async fn damaged_last_frame_before_preallocated_zeros_is_a_torn_tail() {
    // Payload damaged (a sector of the last write lost), zeros after it.
    let dir = tempfile::tempdir().unwrap();
    let (recs, path) = write_log(dir.path(), 4).await;
    let last = frame_offsets(&path)[3];
    flip(&path, last + FRAME_HEADER_LEN + 2);
    append_zeros(&path, 4096);
    assert_torn_at(dir.path(), last, &recs[..3]);

    // Only part of the last frame's header written, zeros everywhere after it.
    let dir = tempfile::tempdir().unwrap();
    let (recs, path) = write_log(dir.path(), 4).await;
    let last = frame_offsets(&path)[3];
    let mut data = std::fs::read(&path).unwrap();
    data[last + 6..].fill(0);
    std::fs::write(&path, &data).unwrap();
    append_zeros(&path, 4096);
    assert_torn_at(dir.path(), last, &recs[..3]);

    // The same damage with a record after it is corruption, zeros or not.
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = write_log(dir.path(), 4).await;
    let third = frame_offsets(&path)[2];
    flip(&path, third + FRAME_HEADER_LEN + 2);
    append_zeros(&path, 4096);
    assert_corrupt_at(dir.path(), &path, third);
}
