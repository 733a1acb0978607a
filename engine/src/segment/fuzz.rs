//! Fuzz targets of the segment format's decoders (see [`crate::fuzzing`]): each part on its
//! own behind its checksum (footer, index, bloom filter, info, data block), and a whole
//! object read through [`SegmentReader`] from an in-memory store.

use std::sync::Arc;

use bytes::Bytes;

use super::block::Block;
use super::bloom::Bloom;
use super::format::{FOOTER_LEN, Footer, HEADER_LEN, Span, decode_index, decode_info};
use super::{SegmentBuilder, SegmentOptions, SegmentReader};
use crate::block_cache::MemBlockCache;
use crate::fuzzing::{Reseal, Target, runtime, sample_entries};
use crate::store::ObjStore;
use crate::types::{Entry, SegmentId, SeqNo};

const KEY: &str = "shards/00001/segments/fuzz.seg";

/// A segment of several 1 KiB blocks, with a bloom filter, tombstones, expiries and
/// content types.
fn sample() -> Bytes {
    let mut entries: Vec<Entry> = Vec::new();
    for i in 0..40u64 {
        let mut e = sample_entries(100 + i)[usize::try_from(i % 3).unwrap_or(0)].clone();
        e.key = Bytes::from(format!("key-{i:03}"));
        e.seq = SeqNo(100 + i);
        entries.push(e);
    }
    let opts = SegmentOptions {
        block_bytes: SegmentOptions::MIN_BLOCK_BYTES,
        ..SegmentOptions::default()
    };
    let mut b = SegmentBuilder::new(&opts);
    // The sample is valid by construction: building it cannot fail.
    #[allow(clippy::expect_used)]
    {
        for e in &entries {
            b.add(e).expect("a valid entry");
        }
        b.finish().expect("a valid segment").0
    }
}

fn part(obj: &Bytes, s: Span) -> Bytes {
    let start = usize::try_from(s.offset).unwrap_or(usize::MAX);
    let end = usize::try_from(s.end()).unwrap_or(usize::MAX);
    obj.get(start..end)
        .map(|p| obj.slice_ref(p))
        .unwrap_or_default()
}

/// The segment format's targets.
pub(crate) fn targets() -> Vec<Target> {
    let obj = sample();
    let size = obj.len() as u64;
    let footer_at = usize::try_from(size - FOOTER_LEN).unwrap_or(0);
    let footer_bytes = obj.slice(footer_at..);
    // The sample is valid by construction.
    #[allow(clippy::expect_used)]
    let footer = Footer::decode(&footer_bytes, size, "fuzz").expect("the sample's footer");
    #[allow(clippy::expect_used)]
    let index = decode_index(&part(&obj, footer.index), footer.index.offset, "fuzz")
        .expect("the sample's index");
    let blocks: Vec<Bytes> = index.iter().map(|e| part(&obj, e.block)).collect();
    let data_end = footer.index.offset;
    let rt = runtime();
    vec![
        Target {
            name: "segment.footer",
            samples: vec![footer_bytes],
            reseal: Reseal::Crc32cTrailer,
            fixed_allocation: 0,
            decode: Box::new(move |b| {
                let _ = Footer::decode(b, size, "fuzz");
            }),
        },
        Target {
            name: "segment.index",
            samples: vec![part(&obj, footer.index)],
            reseal: Reseal::Crc32cTrailer,
            fixed_allocation: 0,
            decode: Box::new(move |b| {
                let _ = decode_index(b, data_end, "fuzz");
            }),
        },
        Target {
            name: "segment.bloom",
            samples: vec![part(&obj, footer.bloom)],
            reseal: Reseal::Crc32cTrailer,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                if let Ok(bloom) = Bloom::decode(b) {
                    let _ = bloom.may_contain(b"key-001");
                }
            }),
        },
        Target {
            name: "segment.info",
            samples: vec![part(&obj, footer.info)],
            reseal: Reseal::Crc32cTrailer,
            fixed_allocation: 0,
            decode: Box::new(move |b| {
                let _ = decode_info(b, size, "fuzz");
            }),
        },
        Target {
            name: "segment.block",
            samples: blocks,
            reseal: Reseal::Crc32cTrailer,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                if let Ok(block) = Block::parse(b.clone()) {
                    let _ = block.validate(None, b"key-999");
                }
            }),
        },
        Target {
            name: "segment.object",
            samples: vec![obj],
            reseal: Reseal::None,
            // A store, a block cache and their tasks per case.
            fixed_allocation: 4 << 20,
            decode: Box::new(move |b| rt.block_on(read_object(b.clone()))),
        },
    ]
}

/// Opens `bytes` as a segment object, gets a few keys and iterates all of it.
async fn read_object(bytes: Bytes) {
    let store = ObjStore::in_memory();
    let size = bytes.len() as u64;
    if store.put(KEY, bytes).await.is_err() || size < HEADER_LEN {
        return;
    }
    let cache = Arc::new(MemBlockCache::new(1 << 20));
    let Ok(r) = SegmentReader::open(store, KEY.to_owned(), SegmentId(1), size, cache).await else {
        return;
    };
    let r = Arc::new(r);
    for key in [&b"key-000"[..], b"key-017", b"key-039", b"zzz"] {
        let _ = r.get(key).await;
    }
    let mut it = r.iter(None);
    while let Ok(Some(_)) = it.next().await {}
}
