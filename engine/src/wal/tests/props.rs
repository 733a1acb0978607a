//! Property tests: decoders never panic, records round-trip, damaged logs yield a prefix.

use proptest::prelude::*;

use super::super::format::{self, HEADER_LEN, Payload};
use super::super::recovery::scan_file;
use super::*;

fn arb_entry() -> impl Strategy<Value = Entry> {
    (
        proptest::collection::vec(any::<u8>(), 1..=40),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=64)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=20)),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(key, value, ct, expires_at)| Entry {
            key: Bytes::from(key),
            seq: SeqNo(0),
            kind: match value {
                Some(v) => EntryKind::Put {
                    value: Bytes::from(v),
                    content_type: ct.map(Bytes::from),
                },
                None => EntryKind::Tombstone,
            },
            expires_at,
        })
}

fn arb_record() -> impl Strategy<Value = WalRecord> {
    (
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(arb_entry(), 0..6),
    )
        .prop_map(|(shard, epoch, seq, mut entries)| {
            for e in &mut entries {
                e.seq = SeqNo(seq);
            }
            WalRecord {
                shard: ShardId(shard),
                epoch: Epoch(epoch),
                seq: SeqNo(seq),
                entries,
                membership: None,
            }
        })
}

/// A record of any kind; batches are the most likely.
fn arb_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        3 => arb_record().prop_map(Payload::Batch),
        1 => (any::<u32>(), any::<u64>()).prop_map(|(s, e)| Payload::Promise {
            shard: ShardId(s),
            epoch: Epoch(e),
        }),
        1 => (any::<u32>(), any::<u64>()).prop_map(|(s, n)| Payload::Truncate {
            shard: ShardId(s),
            after: SeqNo(n),
        }),
    ]
}

/// One complete frame holding `p`.
fn encode(p: &Payload) -> Vec<u8> {
    match p {
        Payload::Batch(r) => format::encode_frame(r).unwrap().to_vec(),
        Payload::Promise { shard, epoch } => format::encode_promise(*shard, *epoch).to_vec(),
        Payload::Truncate { shard, after } => format::encode_truncate(*shard, *after).to_vec(),
    }
}

/// A file holding `recs` after a valid header for file 1.
fn file_bytes(recs: &[Payload]) -> Vec<u8> {
    let mut data = format::encode_header(1).to_vec();
    for r in recs {
        data.extend_from_slice(&encode(r));
    }
    data
}

proptest! {
    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        raw in proptest::collection::vec(any::<u8>(), 0..512),
        is_last in any::<bool>(),
    ) {
        let b = Bytes::from(raw.clone());
        let _ = format::decode_payload(&b);
        for pos in [0, 1, 7, 12, 600] {
            let _ = format::read_frame(&b, pos);
        }
        let _ = format::check_header(&raw, 1, "x");
        let path = std::path::Path::new("x.wal");
        let _ = scan_file(&b, 1, is_last, path);
        let with_header = Bytes::from([&format::encode_header(1)[..], &raw].concat());
        let _ = scan_file(&with_header, 1, is_last, path);
    }

    /// Payloads starting with each kind byte, so that the decoders of every kind see
    /// arbitrary (often short or overlong) bodies.
    #[test]
    fn decoder_never_panics_on_any_kind(
        kind in 0u8..=4,
        raw in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let b = Bytes::from([&[kind][..], &raw].concat());
        let r = format::decode_payload(&b);
        if kind == 0 || kind == 4 {
            prop_assert!(r.is_err());
        }
        if kind == 2 || kind == 3 {
            // Exactly shard (4) + u64 (8) bytes, no more, no less.
            prop_assert_eq!(r.is_ok(), raw.len() == 12, "{}-byte body of kind {}", raw.len(), kind);
        }
    }

    #[test]
    fn records_round_trip(recs in proptest::collection::vec(arb_payload(), 0..8)) {
        let data = Bytes::from(file_bytes(&recs));
        let scan = scan_file(&data, 1, false, std::path::Path::new("x.wal")).unwrap();
        prop_assert!(!scan.torn);
        prop_assert_eq!(scan.records, recs);
    }

    /// A frame of a promise or truncate decodes to what was encoded, from exactly 25 bytes.
    #[test]
    fn small_kinds_round_trip(p in arb_payload()) {
        let frame = Bytes::from(encode(&p));
        if !matches!(p, Payload::Batch(_)) {
            prop_assert_eq!(frame.len(), format::FRAME_HEADER_LEN + 13);
        }
        let (back, end) = format::read_frame(&frame, 0).unwrap();
        prop_assert_eq!(end, frame.len());
        prop_assert_eq!(back, p);
    }

    #[test]
    fn damaged_last_file_yields_a_prefix_or_an_error(
        recs in proptest::collection::vec(arb_payload(), 1..6),
        cut in any::<prop::sample::Index>(),
        flip in proptest::option::of((any::<prop::sample::Index>(), 1u8..=255)),
    ) {
        let mut data = file_bytes(&recs);
        if let Some((at, mask)) = flip {
            let i = HEADER_LEN + at.index(data.len() - HEADER_LEN);
            data[i] ^= mask;
        }
        data.truncate(HEADER_LEN + cut.index(data.len() - HEADER_LEN + 1));
        let data = Bytes::from(data);
        if let Ok(scan) = scan_file(&data, 1, true, std::path::Path::new("x.wal")) {
            prop_assert!(scan.records.len() <= recs.len());
            prop_assert_eq!(&scan.records[..], &recs[..scan.records.len()]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Recovery of a real file written with arbitrary bytes after a valid header.
    #[test]
    fn recovery_of_arbitrary_file_contents_never_panics(
        raw in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::paths::wal_file(1));
        std::fs::write(&path, [&format::encode_header(1)[..], &raw].concat()).unwrap();
        if let Ok((wal, _)) = Wal::open(opts(dir.path())) {
            wal.close().unwrap();
        }
    }
}
