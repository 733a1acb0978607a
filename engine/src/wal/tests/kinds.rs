//! Promise and truncate records: encoding, replay, and the file deletion rules they need.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::super::files::{FileTable, Mark};
use super::super::format::{FRAME_HEADER_LEN, HEADER_LEN};
use super::*;

/// Options under which every record the tests append (one per round) gets a file of its own:
/// the active file exceeds 1 byte after every write, so the writer rolls after each round.
fn file_per_record(dir: &Path) -> WalOptions {
    WalOptions {
        segment_bytes: 1,
        ..opts(dir)
    }
}

/// A batch of shard `shard` at `seq` in `epoch`, with content that depends on all three.
fn rec_in(shard: u32, seq: u64, epoch: u64) -> WalRecord {
    let mut r = rec(shard, seq, 2);
    r.epoch = Epoch(epoch);
    for e in &mut r.entries {
        if let EntryKind::Put { value, .. } = &mut e.kind {
            *value = Bytes::from(format!("{value:?}-epoch-{epoch}"));
        }
    }
    r
}

async fn promise(wal: &Wal, shard: u32, epoch: u64) {
    wal.append_promise(ShardId(shard), Epoch(epoch))
        .unwrap()
        .wait()
        .await
        .unwrap();
}

async fn truncate(wal: &Wal, shard: u32, after: u64) {
    wal.append_truncate(ShardId(shard), SeqNo(after))
        .unwrap()
        .wait()
        .await
        .unwrap();
}

fn promises(pairs: &[(u32, u64)]) -> HashMap<ShardId, Epoch> {
    pairs
        .iter()
        .map(|(s, e)| (ShardId(*s), Epoch(*e)))
        .collect()
}

#[test]
fn promise_and_truncate_frames_have_the_documented_bytes() {
    let p = format::encode_promise(ShardId(0x0102_0304), Epoch(0x0A0B));
    let t = format::encode_truncate(ShardId(7), SeqNo(u64::MAX - 1));
    for (frame, payload) in [
        (
            &p[..],
            [2, 4, 3, 2, 1, 0x0B, 0x0A, 0, 0, 0, 0, 0, 0].as_slice(),
        ),
        (
            &t[..],
            [
                3, 7, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            ]
            .as_slice(),
        ),
    ] {
        assert_eq!(frame.len(), FRAME_HEADER_LEN + 13);
        assert_eq!(&frame[0..4], &13u32.to_le_bytes());
        assert_eq!(
            &frame[4..8],
            &crc32c::crc32c(&13u32.to_le_bytes()).to_le_bytes()
        );
        assert_eq!(&frame[8..12], &crc32c::crc32c(payload).to_le_bytes());
        assert_eq!(&frame[12..], payload);
    }
}

#[tokio::test]
async fn promises_and_truncations_round_trip_through_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(opts(dir.path())).unwrap();
    append_all(&wal, &[rec_in(1, 1, 3)]).await;
    promise(&wal, 1, 4).await;
    append_all(&wal, &[rec_in(2, 1, 3)]).await;
    truncate(&wal, 1, 0).await;
    append_all(&wal, &[rec_in(1, 1, 4)]).await;
    promise(&wal, 2, 6).await;
    promise(&wal, 2, 5).await; // a lower promise never lowers the recovered one
    assert_eq!(wal.stats().appends, 7);
    wal.close().unwrap();
    assert!(matches!(
        wal.append_promise(ShardId(1), Epoch(9)),
        Err(Error::Closed)
    ));
    assert!(matches!(
        wal.append_truncate(ShardId(1), SeqNo(9)),
        Err(Error::Closed)
    ));

    // Every kind is in the file, in call order.
    let files = wal_files(dir.path());
    assert_eq!(files.len(), 1);
    assert_eq!(
        payloads(&files[0]),
        vec![
            Payload::Batch(rec_in(1, 1, 3)),
            Payload::Promise {
                shard: ShardId(1),
                epoch: Epoch(4)
            },
            Payload::Batch(rec_in(2, 1, 3)),
            Payload::Truncate {
                shard: ShardId(1),
                after: SeqNo(0)
            },
            Payload::Batch(rec_in(1, 1, 4)),
            Payload::Promise {
                shard: ShardId(2),
                epoch: Epoch(6)
            },
            Payload::Promise {
                shard: ShardId(2),
                epoch: Epoch(5)
            },
        ]
    );

    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(recovery.records, vec![rec_in(2, 1, 3), rec_in(1, 1, 4)]);
    assert_eq!(recovery.promises, promises(&[(1, 4), (2, 6)]));
    wal.close().unwrap();
}

#[tokio::test]
async fn truncate_then_reappend_at_the_same_seqs_recovers_the_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(opts(dir.path())).unwrap();
    // Shard 1 writes seqs 1..=5 in epoch 3, interleaved with shard 2.
    for seq in 1..=5 {
        append_all(&wal, &[rec_in(1, seq, 3), rec_in(2, seq, 3)]).await;
    }
    // A new leader cuts shard 1 back to 2 and re-extends it in epoch 4...
    truncate(&wal, 1, 2).await;
    append_all(&wal, &[rec_in(1, 3, 4), rec_in(1, 4, 4)]).await;
    // ... then another cuts it back to 3 and writes seq 4 in epoch 5.
    truncate(&wal, 1, 3).await;
    append_all(&wal, &[rec_in(1, 4, 5)]).await;
    wal.close().unwrap();

    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    // The survivors, in log order.
    let expected = vec![
        rec_in(1, 1, 3),
        rec_in(2, 1, 3),
        rec_in(1, 2, 3),
        rec_in(2, 2, 3),
        rec_in(2, 3, 3),
        rec_in(2, 4, 3),
        rec_in(2, 5, 3),
        rec_in(1, 3, 4),
        rec_in(1, 4, 5),
    ];
    assert_eq!(recovery.records, expected);
    let shard1: Vec<(u64, u64)> = recovery
        .records
        .iter()
        .filter(|r| r.shard == ShardId(1))
        .map(|r| (r.seq.0, r.epoch.0))
        .collect();
    assert_eq!(shard1, vec![(1, 3), (2, 3), (3, 4), (4, 5)]);
    assert!(recovery.promises.is_empty());
    wal.close().unwrap();
}

#[tokio::test]
async fn promises_survive_the_deletion_of_the_files_that_held_them() {
    let dir = tempfile::tempdir().unwrap();
    let o = file_per_record(dir.path());
    let (wal, _) = Wal::open(o.clone()).unwrap();
    let first = wal_files(dir.path());
    assert_eq!(first.len(), 1);
    promise(&wal, 1, 5).await;
    promise(&wal, 2, 7).await;
    promise(&wal, 1, 4).await;
    let recs: Vec<WalRecord> = (1..=3).map(|seq| rec_in(3, seq, 3)).collect();
    append_all(&wal, &recs).await;
    // Files holding only promises were deleted as soon as they stopped being active.
    assert!(!first[0].exists(), "the file of the first promise survived");
    wal.release(ShardId(3), SeqNo(u64::MAX));
    wal.close().unwrap();

    // Only the active file is left; it starts with the latest promise of every shard.
    let files = wal_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let head = vec![
        Payload::Promise {
            shard: ShardId(1),
            epoch: Epoch(5),
        },
        Payload::Promise {
            shard: ShardId(2),
            epoch: Epoch(7),
        },
    ];
    assert_eq!(payloads(&files[0]), head);

    // A restart re-emits them into its first file, so the recovered file can go too.
    for _ in 0..2 {
        let (wal, recovery) = Wal::open(o.clone()).unwrap();
        assert!(recovery.records.is_empty());
        assert_eq!(recovery.promises, promises(&[(1, 5), (2, 7)]));
        wal.close().unwrap();
        let files = wal_files(dir.path());
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(payloads(&files[0]), head);
    }

    // Records written after the head come after it.
    let (wal, _) = Wal::open(opts(dir.path())).unwrap();
    append_all(&wal, &[rec_in(3, 4, 3)]).await;
    promise(&wal, 2, 8).await;
    wal.close().unwrap();
    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(recovery.records, vec![rec_in(3, 4, 3)]);
    assert_eq!(recovery.promises, promises(&[(1, 5), (2, 8)]));
    wal.close().unwrap();
}

#[tokio::test]
async fn new_files_hold_only_their_header_without_promises() {
    // A node that never promises (single-process mode) writes files exactly as before.
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(file_per_record(dir.path())).unwrap();
    let recs: Vec<WalRecord> = (1..=3).map(|seq| rec_in(1, seq, 3)).collect();
    append_all(&wal, &recs).await;
    wal.close().unwrap();
    let files = wal_files(dir.path());
    assert_eq!(files.len(), 4);
    for (f, r) in files.iter().zip(&recs) {
        assert_eq!(payloads(f), vec![Payload::Batch(r.clone())]);
        assert_eq!(frame_offsets(f)[0], HEADER_LEN);
    }
    assert_eq!(
        std::fs::metadata(&files[3]).unwrap().len(),
        HEADER_LEN as u64
    );
}

/// The file holding the one truncate record among `files`.
fn truncate_file(files: &[PathBuf]) -> PathBuf {
    let found: Vec<&PathBuf> = files
        .iter()
        .filter(|f| {
            payloads(f)
                .iter()
                .any(|p| matches!(p, Payload::Truncate { .. }))
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[tokio::test]
async fn truncate_pins_its_file_until_the_records_it_voided_are_released() {
    let dir = tempfile::tempdir().unwrap();
    let o = file_per_record(dir.path());
    let (wal, _) = Wal::open(o.clone()).unwrap();
    // Epoch 3 wrote seqs 1..=10, one per file; epoch 4 cut back to 5 and wrote 6..=8.
    let old: Vec<WalRecord> = (1..=10).map(|seq| rec_in(1, seq, 3)).collect();
    append_all(&wal, &old).await;
    truncate(&wal, 1, 5).await;
    let new: Vec<WalRecord> = (6..=8).map(|seq| rec_in(1, seq, 4)).collect();
    append_all(&wal, &new).await;
    // The roll after the last record may still be under way (records are acknowledged
    // before it).
    eventually("the last roll", || wal.stats().files == 15);
    let files = wal_files(dir.path());
    assert_eq!(files.len(), 15);
    let pinned = truncate_file(&files);
    assert_eq!(pinned, files[10]);

    // Seqs up to 8 flushed: the old files of 9 and 10 stay, and so must the truncate that
    // voids them, or a restart would resurrect them.
    wal.release(ShardId(1), SeqNo(8));
    wal.close().unwrap();
    assert!(
        pinned.exists(),
        "truncate deleted before the records it voided"
    );
    let left = wal_files(dir.path());
    assert_eq!(left, [&files[8..=10], &files[14..]].concat());

    let (wal, recovery) = Wal::open(o.clone()).unwrap();
    assert!(
        recovery.records.is_empty(),
        "voided records resurrected: {:?}",
        recovery
            .records
            .iter()
            .map(|r| (r.seq.0, r.epoch.0))
            .collect::<Vec<_>>()
    );
    // Marks are not persisted; recovery pins the truncate's file again.
    wal.release(ShardId(1), SeqNo(8));
    wal.close().unwrap();
    assert!(pinned.exists(), "recovery lost the pin of the truncate");

    // Once the voided records are released, everything but the active file goes.
    let (wal, recovery) = Wal::open(o).unwrap();
    assert!(recovery.records.is_empty());
    wal.release(ShardId(1), SeqNo(10));
    wal.close().unwrap();
    assert!(!pinned.exists());
    assert_eq!(wal_files(dir.path()).len(), 1);
}

#[tokio::test]
async fn truncate_without_older_records_is_pinned_at_its_after_seq() {
    let dir = tempfile::tempdir().unwrap();
    let o = file_per_record(dir.path());
    let (wal, _) = Wal::open(o).unwrap();
    truncate(&wal, 2, 4).await;
    append_all(&wal, &[rec_in(1, 1, 3)]).await;
    eventually("the last roll", || wal.stats().files == 3);
    let pinned = truncate_file(&wal_files(dir.path()));
    wal.release(ShardId(1), SeqNo(u64::MAX));
    wal.release(ShardId(2), SeqNo(3));
    wal.close().unwrap();
    assert!(pinned.exists());
    let (wal, _) = Wal::open(opts(dir.path())).unwrap();
    wal.release(ShardId(2), SeqNo(4));
    wal.close().unwrap();
    assert!(!pinned.exists());
}

#[test]
fn file_table_pins_a_truncate_at_the_highest_live_seq() {
    let path = |no: u64| PathBuf::from(crate::paths::wal_file(no));
    let s1 = ShardId(1);
    let s2 = ShardId(2);
    let mut t = FileTable::new(Vec::new(), HashMap::new(), 1, path(1), 20);
    t.note(
        1,
        &[
            Mark::Batch {
                shard: s1,
                seq: SeqNo(9),
            },
            Mark::Batch {
                shard: s1,
                seq: SeqNo(10),
            },
        ],
        100,
    );
    t.set_active(2, path(2), 20);
    // Shard 1's own records before the truncate in the same file count too.
    t.note(
        2,
        &[
            Mark::Batch {
                shard: s2,
                seq: SeqNo(1),
            },
            Mark::Truncate {
                shard: s1,
                after: SeqNo(5),
            },
            Mark::Batch {
                shard: s1,
                seq: SeqNo(6),
            },
            Mark::Promise {
                shard: s2,
                epoch: Epoch(4),
            },
        ],
        100,
    );
    t.set_active(3, path(3), 20);
    assert_eq!(t.promises(), &promises(&[(2, 4)]));
    t.release(s2, SeqNo(1));
    assert!(!t.release(s1, SeqNo(9)));
    assert!(t.take_deletable().is_empty());
    assert!(t.release(s1, SeqNo(10)));
    assert_eq!(t.take_deletable(), vec![path(1), path(2)]);
    assert_eq!(t.totals(), (1, 20));
}

#[tokio::test]
async fn torn_tail_inside_a_promise_frame_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(opts(dir.path())).unwrap();
    let recs: Vec<WalRecord> = (1..=3).map(|seq| rec_in(1, seq, 3)).collect();
    append_all(&wal, &recs).await;
    promise(&wal, 1, 2).await;
    promise(&wal, 1, 9).await;
    wal.close().unwrap();
    let files = wal_files(dir.path());
    assert_eq!(files.len(), 1);
    let path = &files[0];
    let last = *frame_offsets(path).last().unwrap();
    let cut = last + FRAME_HEADER_LEN + 6; // inside the epoch of the second promise
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
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
    assert_eq!(std::fs::metadata(path).unwrap().len(), last as u64);
    assert_eq!(recovery.records, recs);
    assert_eq!(recovery.promises, promises(&[(1, 2)]));
    wal.close().unwrap();

    // A flipped byte in a promise of a file other than the last is corruption, as for
    // batches.
    let mut data = std::fs::read(path).unwrap();
    let at = frame_offsets(path)[3];
    data[at + FRAME_HEADER_LEN + 6] ^= 0x40;
    let next = dir.path().join(crate::paths::wal_file(2));
    assert!(next.exists(), "the second session's file follows");
    std::fs::write(path, data).unwrap();
    let err = Wal::open(opts(dir.path())).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}

/// A configuration record (design note 0009) of shard `shard` at `seq`.
fn config_in(shard: u32, seq: u64, epoch: u64) -> WalRecord {
    use crate::replica::{Membership, NodeId};
    WalRecord {
        shard: ShardId(shard),
        epoch: Epoch(epoch),
        seq: SeqNo(seq),
        entries: Vec::new(),
        membership: Some(Membership::Joint {
            old: vec![NodeId(1), NodeId(2), NodeId(3)],
            new: vec![NodeId(1), NodeId(2), NodeId(4)],
        }),
    }
}

#[test]
fn configuration_frames_have_the_documented_bytes() {
    let frame = format::encode_frame(&config_in(7, 0x0102, 3)).unwrap();
    #[rustfmt::skip]
    let payload: &[u8] = &[
        4,                         // kind: configuration
        7, 0, 0, 0,                // shard
        3, 0, 0, 0, 0, 0, 0, 0,    // epoch
        2, 1, 0, 0, 0, 0, 0, 0,    // seq
        2,                         // joint
        3, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, // old {1,2,3}
        3, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, // new {1,2,4}
    ];
    let len = u32::try_from(payload.len()).unwrap();
    assert_eq!(&frame[0..4], &len.to_le_bytes());
    assert_eq!(
        &frame[4..8],
        &crc32c::crc32c(&len.to_le_bytes()).to_le_bytes()
    );
    assert_eq!(&frame[8..12], &crc32c::crc32c(payload).to_le_bytes());
    assert_eq!(&frame[12..], payload);
    assert_eq!(
        format::decode_payload(&Bytes::copy_from_slice(payload)).unwrap(),
        Payload::Batch(config_in(7, 0x0102, 3))
    );
    // A damaged configuration is an error, never a batch without entries.
    let mut bad = payload.to_vec();
    bad[21] = 9;
    assert_eq!(
        format::decode_payload(&Bytes::from(bad)).unwrap_err().what,
        "unknown configuration tag"
    );
    let mut dup = payload.to_vec();
    dup[28] = 1; // old {1,1,3}
    assert_eq!(
        format::decode_payload(&Bytes::from(dup)).unwrap_err().what,
        "a configuration lists a voter twice"
    );
    let cut = Bytes::copy_from_slice(&payload[..payload.len() - 1]);
    assert!(format::decode_payload(&cut).is_err());
    // A configuration record holds no entries.
    let mut both = config_in(7, 1, 3);
    both.entries = rec(7, 1, 1).entries;
    assert!(format::encode_frame(&both).is_err());
}

#[tokio::test]
async fn configuration_records_round_trip_through_recovery_and_truncations() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(opts(dir.path())).unwrap();
    append_all(
        &wal,
        &[rec_in(1, 1, 3), config_in(1, 2, 3), config_in(2, 1, 3)],
    )
    .await;
    // The shard-1 configuration record is voided by a truncation like a batch.
    truncate(&wal, 1, 1).await;
    append_all(&wal, &[config_in(1, 2, 4), rec_in(1, 3, 4)]).await;
    wal.close().unwrap();
    let (wal, recovery) = Wal::open(opts(dir.path())).unwrap();
    assert_eq!(
        recovery.records,
        vec![
            rec_in(1, 1, 3),
            config_in(2, 1, 3),
            config_in(1, 2, 4),
            rec_in(1, 3, 4)
        ]
    );
    wal.close().unwrap();
}
