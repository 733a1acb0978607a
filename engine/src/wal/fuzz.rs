//! Fuzz targets of the WAL's decoders (see [`crate::fuzzing`]).

use std::path::Path;

use bytes::Bytes;

use super::WalRecord;
use super::format::{self, FRAME_HEADER_LEN};
use super::recovery::scan_file;
use crate::fuzzing::{Reseal, Target, sample_entries, sample_membership};
use crate::types::{Epoch, SeqNo, ShardId};

/// Frames of every record kind: a batch, a configuration, a promise, a truncation.
fn frames() -> Vec<Bytes> {
    let batch = WalRecord {
        shard: ShardId(3),
        epoch: Epoch(2),
        seq: SeqNo(17),
        entries: sample_entries(17),
        membership: None,
    };
    let config = WalRecord {
        shard: ShardId(3),
        epoch: Epoch(2),
        seq: SeqNo(18),
        entries: Vec::new(),
        membership: Some(sample_membership()),
    };
    let mut out = Vec::new();
    for rec in [&batch, &config] {
        // The samples are valid records: encoding them cannot fail.
        #[allow(clippy::expect_used)]
        out.push(format::encode_frame(rec).expect("a valid record").freeze());
    }
    out.push(format::encode_promise(ShardId(3), Epoch(5)).freeze());
    out.push(format::encode_truncate(ShardId(3), SeqNo(16)).freeze());
    out
}

/// The WAL's targets: payloads (behind the frame checksum), single frames (header
/// recomputed) and whole files (header, frames, torn tails).
pub(crate) fn targets() -> Vec<Target> {
    let frames = frames();
    let payloads = frames.iter().map(|f| f.slice(FRAME_HEADER_LEN..)).collect();
    let file: Vec<u8> = format::encode_header(1)
        .iter()
        .copied()
        .chain(frames.iter().flat_map(|f| f.iter().copied()))
        .collect();
    vec![
        Target {
            name: "wal.payload",
            samples: payloads,
            reseal: Reseal::None,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                let _ = format::decode_payload(b);
            }),
        },
        Target {
            name: "wal.frame",
            samples: frames,
            reseal: Reseal::WalFrame,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                let _ = format::read_frame(b, 0);
            }),
        },
        Target {
            name: "wal.file",
            samples: vec![Bytes::from(file)],
            reseal: Reseal::None,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                for is_last in [false, true] {
                    let _ = scan_file(b, 1, is_last, Path::new("00000001.wal"));
                }
            }),
        },
    ]
}
