//! Fuzz targets: every decoder of bytes that come from the network or from disk, each with
//! valid sample inputs, and the mutations a fuzz run applies to them (the workspace's
//! `tests/fuzz_decoders.rs` runs them all; `TIERKV_FUZZ_CASES` sets the cases per target).
//!
//! Random bytes rarely get past a checksum, so most cases start from a valid sample and
//! mutate it: bit flips, byte changes, cuts, insertions, removals, duplicated ranges, and
//! large numbers written over 2, 4 or 8 bytes (the shape of a hostile length or count
//! field). A target whose format ends in a crc32c trailer over the rest gets the trailer
//! recomputed after the mutation ([`Reseal::Crc32cTrailer`]), so that the field decoders
//! behind the checksum see the damage; WAL frames get their header recomputed.
//!
//! Compiled for the engine's own tests and, with the `testing` feature, for other crates'.

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::manifest::{Manifest, Obsolete, SegmentMeta};
use crate::replica::msg::{self, Msg};
use crate::replica::{Membership, Millis, NodeId, Record};
use crate::types::{Entry, EntryKind, Epoch, ManifestVersion, SegmentId, SeqNo, ShardId};

/// How a mutated input is made consistent again before it is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reseal {
    /// Decoded as mutated.
    None,
    /// The last 4 bytes are the crc32c (little-endian) of everything before them.
    Crc32cTrailer,
    /// A WAL frame: length, crc of the length, crc of the payload, then the payload.
    WalFrame,
}

/// One decoder and inputs it accepts.
pub struct Target {
    /// Stable name (`area.format`), used in failure messages.
    pub name: &'static str,
    /// Valid encodings the mutations start from (at least one).
    pub samples: Vec<Bytes>,
    /// How mutated samples are resealed (half of the mutated cases; the other half are
    /// decoded as mutated).
    pub reseal: Reseal,
    /// Bytes the decoder may allocate whatever the input (a runtime, a cache), on top of
    /// what is proportional to the input.
    pub fixed_allocation: usize,
    /// Runs the decoder (and whatever reads the decoded value further); must never panic.
    pub decode: Box<dyn Fn(&Bytes) + Send + Sync>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("samples", &self.samples.len())
            .field("reseal", &self.reseal)
            .finish_non_exhaustive()
    }
}

/// One change to an input.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flips one bit.
    FlipBit(Index, u8),
    /// Sets one byte.
    SetByte(Index, u8),
    /// Cuts the input at a position.
    Truncate(Index),
    /// Inserts bytes at a position.
    Insert(Index, Vec<u8>),
    /// Removes up to this many bytes from a position.
    Remove(Index, u8),
    /// Repeats up to this many bytes from a position right after themselves.
    Duplicate(Index, u8),
    /// Writes a number little-endian over 2, 4 or 8 bytes from a position.
    Number(Index, u8, u64),
}

/// A change to an input, weighted toward the kinds that find decoder bugs.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let number = prop_oneof![
        Just(u64::MAX),
        Just(u64::from(u32::MAX)),
        Just(u64::from(u32::MAX >> 1)),
        Just(1 << 24),
        Just(1 << 31),
        Just(u64::from(u16::MAX)),
        0u64..64,
        any::<u64>(),
    ];
    prop_oneof![
        2 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1u8..32).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<Index>(), 1u8..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        3 => (any::<Index>(), prop_oneof![Just(2u8), Just(4), Just(8)], number)
            .prop_map(|(i, w, v)| Mutation::Number(i, w, v)),
    ]
}

/// Applies `muts` in order to `input`.
#[must_use]
pub fn apply(input: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut v = input.to_vec();
    for m in muts {
        let len = v.len();
        match m {
            Mutation::FlipBit(i, bit) if len > 0 => v[i.index(len)] ^= 1 << (bit % 8),
            Mutation::SetByte(i, b) if len > 0 => v[i.index(len)] = *b,
            Mutation::Truncate(i) => v.truncate(i.index(len + 1)),
            Mutation::Insert(i, bytes) => {
                let at = i.index(len + 1);
                v.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove(i, n) if len > 0 => {
                let at = i.index(len);
                let end = (at + usize::from(*n)).min(len);
                v.drain(at..end);
            }
            Mutation::Duplicate(i, n) if len > 0 => {
                let at = i.index(len);
                let end = (at + usize::from(*n)).min(len);
                let copy = v[at..end].to_vec();
                v.splice(end..end, copy);
            }
            Mutation::Number(i, width, value) => {
                let w = usize::from(*width);
                if len >= w {
                    let at = i.index(len - w + 1);
                    v[at..at + w].copy_from_slice(&value.to_le_bytes()[..w]);
                }
            }
            _ => {}
        }
    }
    v
}

/// Makes `v` consistent again under `how`.
#[must_use]
pub fn reseal(mut v: Vec<u8>, how: Reseal) -> Vec<u8> {
    match how {
        Reseal::None => {}
        Reseal::Crc32cTrailer => {
            if let Some(body) = v.len().checked_sub(4) {
                let crc = crc32c::crc32c(&v[..body]);
                v[body..].copy_from_slice(&crc.to_le_bytes());
            }
        }
        Reseal::WalFrame => {
            if v.len() >= 12 {
                let payload_len = u32::try_from(v.len() - 12).unwrap_or(u32::MAX);
                let payload_crc = crc32c::crc32c(&v[12..]);
                v[0..4].copy_from_slice(&payload_len.to_le_bytes());
                v[4..8].copy_from_slice(&crc32c::crc32c(&payload_len.to_le_bytes()).to_le_bytes());
                v[8..12].copy_from_slice(&payload_crc.to_le_bytes());
            }
        }
    }
    v
}

/// Cases per target: `TIERKV_FUZZ_CASES`, else `default`.
#[must_use]
pub fn cases(default: u32) -> u32 {
    std::env::var("TIERKV_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Every decoder of the engine: replication messages, manifests, WAL payloads, frames and
/// files, and every part of a segment object.
#[must_use]
pub fn targets() -> Vec<Target> {
    let mut out = vec![replica_messages(), manifests()];
    out.extend(crate::wal::fuzz::targets());
    out.extend(crate::segment::fuzz::targets());
    out
}

/// Sample entries: a put with every optional field, a bare put, a tombstone.
#[must_use]
pub fn sample_entries(seq: u64) -> Vec<Entry> {
    vec![
        Entry {
            key: Bytes::from_static(b"key-1"),
            seq: SeqNo(seq),
            kind: EntryKind::Put {
                value: Bytes::from_static(b"value one"),
                content_type: Some(Bytes::from_static(b"text/plain")),
            },
            expires_at: Some(1_700_000_000_000),
        },
        Entry {
            key: Bytes::from_static(b"key-2"),
            seq: SeqNo(seq),
            kind: EntryKind::Put {
                value: Bytes::from_static(&[0, 1, 2, 3, 4, 5, 6, 7]),
                content_type: None,
            },
            expires_at: None,
        },
        Entry {
            key: Bytes::from_static(b"key-3"),
            seq: SeqNo(seq),
            kind: EntryKind::Tombstone,
            expires_at: None,
        },
    ]
}

/// A joint configuration (both halves non-trivial).
#[must_use]
pub fn sample_membership() -> Membership {
    Membership::Joint {
        old: vec![NodeId(1), NodeId(2), NodeId(3)],
        new: vec![NodeId(2), NodeId(3), NodeId(4)],
    }
}

fn replica_messages() -> Target {
    let records = vec![
        Record {
            epoch: Epoch(4),
            seq: SeqNo(10),
            entries: sample_entries(10),
            membership: None,
        },
        Record {
            epoch: Epoch(4),
            seq: SeqNo(11),
            entries: Vec::new(),
            membership: Some(sample_membership()),
        },
    ];
    let msgs = [
        Msg::Append {
            epoch: Epoch(4),
            prev_seq: SeqNo(9),
            prev_epoch: Epoch(3),
            records: records.clone(),
            commit_seq: SeqNo(9),
            flushed_seq: SeqNo(2),
            sent_at: Millis(123_456),
        },
        Msg::Append {
            epoch: Epoch(4),
            prev_seq: SeqNo(9),
            prev_epoch: Epoch(3),
            records: records[..1].to_vec(),
            commit_seq: SeqNo(9),
            flushed_seq: SeqNo(2),
            sent_at: Millis(123_456),
        },
        Msg::Ack {
            epoch: Epoch(4),
            last_seq: SeqNo(11),
            sent_at: Millis(5),
            rejoining: true,
        },
        Msg::Promised {
            epoch: Epoch(5),
            last_epoch: Epoch(4),
            last_seq: SeqNo(11),
            membership: Some(sample_membership()),
        },
        Msg::Promise {
            epoch: Epoch(5),
            handover_of: Some(Epoch(4)),
        },
        Msg::Records {
            epoch: Epoch(4),
            prev_seq: SeqNo(9),
            prev_epoch: Epoch(3),
            records,
        },
        Msg::FlushRequest {
            epoch: Epoch(4),
            upto: SeqNo(8),
            hard: true,
        },
    ];
    Target {
        name: "replica.message",
        samples: msgs
            .iter()
            .map(|m| msg::encode(ShardId(7), NodeId(2), m))
            .collect(),
        reseal: Reseal::Crc32cTrailer,
        fixed_allocation: 0,
        decode: Box::new(|b| {
            let _ = msg::decode(b);
        }),
    }
}

fn manifests() -> Target {
    let seg = |id: u128, lo: &'static [u8], hi: &'static [u8]| SegmentMeta {
        id: SegmentId(id),
        size: 4096,
        entries: 30,
        tombstones: 2,
        min_seq: SeqNo(1),
        max_seq: SeqNo(30),
        min_expires_at: Some(1_700_000_000_000),
        min_key: Bytes::from_static(lo),
        max_key: Bytes::from_static(hi),
    };
    let mut m = Manifest {
        version: ManifestVersion(3),
        epoch: Epoch(2),
        flushed_seq: SeqNo(40),
        flushed_epoch: Epoch(1),
        created_at: 1234,
        l0: vec![seg(1, b"a", b"z")],
        l1: vec![seg(3, b"a", b"f"), seg(4, b"g", b"k")],
        obsolete: vec![Obsolete {
            id: SegmentId(9),
            since: 77,
        }],
        membership: None,
    };
    let format_2 = m.encode();
    m.membership = Some(sample_membership());
    Target {
        name: "manifest",
        samples: vec![format_2, m.encode()],
        reseal: Reseal::Crc32cTrailer,
        fixed_allocation: 0,
        decode: Box::new(|b| {
            let _ = Manifest::decode(b, "fuzz");
        }),
    }
}

/// A current-thread runtime for targets whose decoders are async.
pub(crate) fn runtime() -> Arc<tokio::runtime::Runtime> {
    // A runtime that cannot be built is a broken test machine, not an input the decoders
    // must survive.
    #[allow(clippy::expect_used)]
    Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime"),
    )
}

/// What one target's run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The target.
    pub name: &'static str,
    /// Cases decoded.
    pub cases: u32,
    /// Most bytes one case allocated, and that case's input length.
    pub largest_allocation: (usize, usize),
}

/// Bytes a decoder may allocate for an input of `len` bytes: proportional to the input
/// (decoded values are at most a small multiple of their encoding) plus a constant; a
/// length or count field taken at its word cannot stay under it.
#[must_use]
pub fn allocation_bound(len: usize, fixed: usize) -> usize {
    len.saturating_mul(64)
        .saturating_add(64 << 10)
        .saturating_add(fixed)
}

/// Runs `target` on `cases` inputs: mutated samples (half of them resealed) and arbitrary
/// bytes. `allocated` runs a closure and returns the bytes allocated meanwhile (the
/// caller's global allocator counts them). A panic, or an allocation past
/// [`allocation_bound`] twice in a row on the same input (once could be another thread's),
/// fails with the shrunk input.
pub fn run(
    target: &Target,
    cases: u32,
    allocated: &dyn Fn(&dyn Fn()) -> usize,
) -> Result<Outcome, String> {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let samples = target.samples.len();
    if samples == 0 {
        return Err(format!("{}: no samples", target.name));
    }
    let input = prop_oneof![
        4 => (
            0..samples,
            proptest::collection::vec(mutation(), 1..8),
            any::<bool>()
        )
            .prop_map(|(i, muts, seal)| (Some((i, muts, seal)), Vec::new())),
        1 => proptest::collection::vec(any::<u8>(), 0..1024).prop_map(|raw| (None, raw)),
    ];
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let largest = std::cell::Cell::new((0usize, 0usize));
    let result = runner.run(&input, |(mutated, raw)| {
        let bytes = match mutated {
            Some((i, muts, seal)) => {
                let v = apply(&target.samples[i], &muts);
                Bytes::from(if seal { reseal(v, target.reseal) } else { v })
            }
            None => Bytes::from(raw),
        };
        let bound = allocation_bound(bytes.len(), target.fixed_allocation);
        let mut used = allocated(&|| (target.decode)(&bytes));
        if used > bound {
            used = used.min(allocated(&|| (target.decode)(&bytes)));
        }
        if used > largest.get().0 {
            largest.set((used, bytes.len()));
        }
        if used > bound {
            return Err(TestCaseError::fail(format!(
                "allocated {used} bytes for a {}-byte input (bound {bound})",
                bytes.len()
            )));
        }
        Ok(())
    });
    match result {
        Ok(()) => Ok(Outcome {
            name: target.name,
            cases,
            largest_allocation: largest.get(),
        }),
        Err(e) => Err(format!("{}: {e}", target.name)),
    }
}
