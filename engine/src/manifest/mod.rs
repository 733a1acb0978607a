//! The manifest: the per-shard record of which segments hold the shard's flushed data.
//!
//! Each version is an immutable object `shards/<sid>/manifest/<version>`, written
//! create-only: publishing version `v+1` succeeds for exactly one writer (the compare-and-swap
//! every backend offers). The manifest carries the writer's epoch; a writer that finds a newer
//! epoch in the latest manifest is fenced and stops. Open = latest manifest + WAL replay of
//! everything after `flushed_seq`.
//!
//! # Levels and the compaction policy
//!
//! `l0` holds segments straight from memtable flushes, newest first; their key ranges
//! overlap but their sequence ranges do not. `l1` is one sorted run: non-overlapping segments
//! ordered by key. A point read touches at most `l0.len() + 1` segments. Compaction merges
//! *all* of `l0` with the `l1` segments their key range overlaps into new `l1` segments,
//! once `l0` reaches its trigger; flushes stall while `l0` is at its hard limit, so the
//! number of segments a read may touch is bounded by that limit plus one.
//!
//! # Byte layout (format version 2; format 3 when a configuration is recorded)
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u32 | magic `0x4D56_4B54` ("TKVM" little-endian) |
//! | 4 | u16 | format version (2) |
//! | 6 | u16 | reserved, 0 |
//! | 8 | u64 | manifest version |
//! | 16 | u64 | writer epoch |
//! | 24 | u64 | flushed_seq: every entry with seq <= this is in a listed segment |
//! | 32 | u64 | flushed_epoch: epoch of the log record at flushed_seq (0 if flushed_seq is 0) |
//! | 40 | u64 | created_at (unix millis) |
//! | 48 | u32 + n × segment | l0 segments, newest first |
//! | . | u32 + n × segment | l1 segments, ascending key ranges |
//! | . | u32 + n × (u128 id, u64 since) | obsolete segments awaiting deletion after a grace period |
//! | . | configuration | format 3 only: the configuration in force at `flushed_seq` (design note 0009 §1), in the encoding of [`crate::replica::membership`] |
//! | end-4 | u32 | crc32c of all preceding bytes |
//!
//! This build writes format 2 byte for byte while no configuration is recorded (the genesis
//! configuration holds: no configuration record was ever flushed), and format 3 once one is:
//! until a membership change happens, nodes of the previous version read every manifest
//! (note 0009, "Compatibility"). Format 2 and 1 manifests decode with no configuration.
//!
//! A segment record: id u128, size u64, entries u64, tombstones u64, min_seq u64, max_seq u64,
//! min_expires_at u64 (`u64::MAX` = none), min_key (u16 len + bytes), max_key (u16 len + bytes).
//!
//! # Format version 1 (still read)
//!
//! The same without `flushed_epoch`: created_at at offset 32, l0 from offset 40.
//!
//! Migration: a version 1 manifest decodes with `flushed_epoch = epoch` (0 if `flushed_seq`
//! is 0), and is rewritten as version 2 at the shard's next publish. Version 1 was written
//! only by single-process writers, which log every record in their own epoch, so the
//! writer's epoch is the epoch of the record at `flushed_seq`. One exception: a writer that
//! replays a previous writer's unflushed WAL records at open publishes a manifest in its new
//! epoch before it flushes them, and then flushes them under that epoch. There
//! `flushed_epoch` is above the epoch the records carry in the WAL (never below it). The
//! same holds for the version 2 manifests a single-process writer publishes (its flusher
//! sets its own epoch whenever `flushed_seq` advances). Single-process mode never reads
//! `flushed_epoch`; replicas do.

pub mod invariants;
mod store;

use bytes::Bytes;

pub use store::{ManifestStore, Published};

use crate::codec::{Dec, DecodeError, Enc, split_crc_trailer};
use crate::error::{Error, Result};
use crate::replica::Membership;
use crate::types::{Epoch, ManifestVersion, SegmentId, SeqNo, UnixMillis};

/// Magic number at the start of every manifest.
pub const MANIFEST_MAGIC: u32 = 0x4D56_4B54;
/// The format version this build writes while no configuration is recorded: 2 (adds
/// `flushed_epoch`).
pub const MANIFEST_VERSION: u16 = 2;
/// The first format version, without `flushed_epoch`; still read.
pub const MANIFEST_VERSION_1: u16 = 1;
/// The format version this build writes when a configuration is recorded: 3 (format 2 plus
/// the configuration in force at `flushed_seq`).
pub const MANIFEST_VERSION_3: u16 = 3;
/// Format versions this build reads.
pub const SUPPORTED_VERSIONS: &[u16] = &[MANIFEST_VERSION_1, MANIFEST_VERSION, MANIFEST_VERSION_3];

/// What the manifest records about one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    /// The segment's unique id (its object name).
    pub id: SegmentId,
    /// Object size in bytes.
    pub size: u64,
    /// Entries in it.
    pub entries: u64,
    /// Tombstones among them.
    pub tombstones: u64,
    /// Lowest entry version.
    pub min_seq: SeqNo,
    /// Highest entry version.
    pub max_seq: SeqNo,
    /// Earliest expiry of any entry.
    pub min_expires_at: Option<UnixMillis>,
    /// Smallest key.
    pub min_key: Bytes,
    /// Largest key.
    pub max_key: Bytes,
}

impl SegmentMeta {
    /// Whether `key` lies within the segment's key range.
    #[must_use]
    pub fn covers(&self, key: &[u8]) -> bool {
        self.min_key.as_ref() <= key && key <= self.max_key.as_ref()
    }

    /// Whether the segment's key range intersects `[lo, hi]`.
    #[must_use]
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        self.min_key.as_ref() <= hi && lo <= self.max_key.as_ref()
    }
}

/// A segment replaced by compaction, deleted once its grace period has passed (readers that
/// opened it before the replacement may still be reading it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obsolete {
    /// The segment.
    pub id: SegmentId,
    /// When it was replaced.
    pub since: UnixMillis,
}

/// One manifest version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Its version (object name).
    pub version: ManifestVersion,
    /// Epoch of the writer that published it.
    pub epoch: Epoch,
    /// Every entry with seq <= this is in `l0` or `l1`.
    pub flushed_seq: SeqNo,
    /// Epoch of the log record at `flushed_seq` (0 when nothing was flushed). Replicas use it
    /// to compare their logs from the flushed prefix on. Read from a version 1 manifest it is
    /// the manifest's `epoch` (see the module docs).
    pub flushed_epoch: Epoch,
    /// When it was published.
    pub created_at: UnixMillis,
    /// Flushed segments, newest first.
    pub l0: Vec<SegmentMeta>,
    /// The sorted run: non-overlapping segments in key order.
    pub l1: Vec<SegmentMeta>,
    /// Replaced segments awaiting deletion.
    pub obsolete: Vec<Obsolete>,
    /// The configuration of the shard's replica set in force at `flushed_seq` (design note
    /// 0009 §1); `None`: no configuration record was ever flushed, the genesis configuration
    /// holds. Recorded by format 3 only.
    pub membership: Option<Membership>,
}

impl Manifest {
    /// Every live segment.
    pub fn segments(&self) -> impl Iterator<Item = &SegmentMeta> {
        self.l0.iter().chain(self.l1.iter())
    }

    /// Encodes this manifest (see the module's byte table).
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut e = Enc::with_capacity(256);
        e.u32(MANIFEST_MAGIC);
        e.u16(if self.membership.is_some() {
            MANIFEST_VERSION_3
        } else {
            MANIFEST_VERSION
        });
        e.u16(0);
        e.u64(self.version.0);
        e.u64(self.epoch.0);
        e.u64(self.flushed_seq.0);
        e.u64(self.flushed_epoch.0);
        e.u64(self.created_at);
        for level in [&self.l0, &self.l1] {
            e.u32(len_u32(level.len()));
            for s in level {
                put_segment(&mut e, s);
            }
        }
        e.u32(len_u32(self.obsolete.len()));
        for o in &self.obsolete {
            e.u128(o.id.0);
            e.u64(o.since);
        }
        if let Some(m) = &self.membership {
            m.encode(&mut e);
        }
        e.crc_trailer();
        e.finish()
    }

    /// Decodes a manifest read from `location`.
    pub fn decode(buf: &[u8], location: &str) -> Result<Self> {
        let corrupt = |e: DecodeError| Error::corrupt("manifest", location, e);
        let body = split_crc_trailer(buf).map_err(corrupt)?;
        let mut d = Dec::new(body);
        if d.u32().map_err(corrupt)? != MANIFEST_MAGIC {
            return Err(corrupt(DecodeError {
                what: "bad magic",
                offset: 0,
            }));
        }
        let fv = d.u16().map_err(corrupt)?;
        if !SUPPORTED_VERSIONS.contains(&fv) {
            return Err(Error::UnsupportedVersion {
                format: "manifest",
                location: location.to_owned(),
                supported: SUPPORTED_VERSIONS,
                actual: fv,
            });
        }
        let inner = |d: &mut Dec<'_>| -> Result<Self, DecodeError> {
            d.u16()?;
            let version = ManifestVersion(d.u64()?);
            let epoch = Epoch(d.u64()?);
            let flushed_seq = SeqNo(d.u64()?);
            let flushed_epoch = if fv == MANIFEST_VERSION_1 {
                // Single-process writers logged every record in their own epoch.
                if flushed_seq == SeqNo(0) {
                    Epoch(0)
                } else {
                    epoch
                }
            } else {
                Epoch(d.u64()?)
            };
            let mut m = Self {
                version,
                epoch,
                flushed_seq,
                flushed_epoch,
                created_at: d.u64()?,
                ..Self::default()
            };
            for level in [&mut m.l0, &mut m.l1] {
                let n = d.u32()?;
                for _ in 0..n {
                    level.push(get_segment(d)?);
                }
            }
            let n = d.u32()?;
            for _ in 0..n {
                m.obsolete.push(Obsolete {
                    id: SegmentId(d.u128()?),
                    since: d.u64()?,
                });
            }
            if fv == MANIFEST_VERSION_3 {
                m.membership = Some(Membership::decode(d)?);
            }
            d.finish()?;
            Ok(m)
        };
        inner(&mut d).map_err(corrupt)
    }
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_segment(e: &mut Enc, s: &SegmentMeta) {
    e.u128(s.id.0);
    e.u64(s.size);
    e.u64(s.entries);
    e.u64(s.tombstones);
    e.u64(s.min_seq.0);
    e.u64(s.max_seq.0);
    e.u64(s.min_expires_at.unwrap_or(u64::MAX));
    e.bytes16(&s.min_key);
    e.bytes16(&s.max_key);
}

fn get_segment(d: &mut Dec<'_>) -> Result<SegmentMeta, DecodeError> {
    let m = SegmentMeta {
        id: SegmentId(d.u128()?),
        size: d.u64()?,
        entries: d.u64()?,
        tombstones: d.u64()?,
        min_seq: SeqNo(d.u64()?),
        max_seq: SeqNo(d.u64()?),
        min_expires_at: match d.u64()? {
            u64::MAX => None,
            t => Some(t),
        },
        min_key: Bytes::copy_from_slice(d.bytes16()?),
        max_key: Bytes::copy_from_slice(d.bytes16()?),
    };
    if m.min_key > m.max_key || m.min_seq > m.max_seq {
        return Err(d.err("segment ranges inverted"));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn seg(id: u128, lo: &str, hi: &str, seqs: (u64, u64)) -> SegmentMeta {
        SegmentMeta {
            id: SegmentId(id),
            size: 100,
            entries: 3,
            tombstones: 1,
            min_seq: SeqNo(seqs.0),
            max_seq: SeqNo(seqs.1),
            min_expires_at: Some(5),
            min_key: Bytes::copy_from_slice(lo.as_bytes()),
            max_key: Bytes::copy_from_slice(hi.as_bytes()),
        }
    }

    fn sample() -> Manifest {
        Manifest {
            version: ManifestVersion(3),
            epoch: Epoch(2),
            flushed_seq: SeqNo(40),
            flushed_epoch: Epoch(1),
            created_at: 1234,
            l0: vec![seg(1, "a", "z", (31, 40)), seg(2, "b", "c", (21, 30))],
            l1: vec![seg(3, "a", "f", (1, 20)), seg(4, "g", "k", (1, 20))],
            obsolete: vec![Obsolete {
                id: SegmentId(9),
                since: 77,
            }],
            membership: None,
        }
    }

    fn joint() -> Membership {
        use crate::types::NodeId;
        Membership::Joint {
            old: vec![NodeId(1), NodeId(2), NodeId(3)],
            new: vec![NodeId(2), NodeId(3), NodeId(4)],
        }
    }

    #[test]
    fn round_trips_with_a_configuration_as_version_3() {
        use crate::types::NodeId;
        for membership in [joint(), Membership::Steady(vec![NodeId(7)])] {
            let m = Manifest {
                membership: Some(membership),
                ..sample()
            };
            let b = m.encode();
            assert_eq!(&b[4..6], &MANIFEST_VERSION_3.to_le_bytes());
            assert_eq!(Manifest::decode(&b, "x").ok(), Some(m));
        }
    }

    /// Format 3 is format 2 with the version field 3 and the configuration (tag, u16 count,
    /// u32 ids per set) between the obsolete list and the crc: built here from format 2's
    /// bytes and literal configuration bytes, not by the encoder under test.
    #[test]
    fn version_3_golden_bytes() {
        let v2 = sample().encode();
        assert_eq!(&v2[4..6], &2u16.to_le_bytes(), "no configuration: format 2");
        let mut body = v2[..v2.len() - 4].to_vec();
        body[4..6].copy_from_slice(&3u16.to_le_bytes());
        body.extend_from_slice(&[
            2, // joint
            3, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, // old {1,2,3}
            3, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, // new {2,3,4}
        ]);
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        let m = Manifest {
            membership: Some(joint()),
            ..sample()
        };
        assert_eq!(m.encode().as_ref(), body.as_slice());
        assert_eq!(Manifest::decode(&body, "golden").ok(), Some(m));
    }

    #[test]
    fn version_3_damage_is_rejected() {
        let b = Manifest {
            membership: Some(joint()),
            ..sample()
        }
        .encode();
        for cut in 0..b.len() {
            assert!(Manifest::decode(&b[..cut], "x").is_err(), "cut {cut}");
        }
        for i in 0..b.len() {
            let mut c = b.to_vec();
            c[i] ^= 0x01;
            assert!(Manifest::decode(&c, "x").is_err(), "flip {i}");
        }
        // A version 2 manifest relabelled 3 (no configuration) is malformed.
        let mut e = Enc::default();
        let v2 = sample().encode();
        let mut body = v2[..v2.len() - 4].to_vec();
        body[4..6].copy_from_slice(&3u16.to_le_bytes());
        e.raw(&body);
        e.crc_trailer();
        assert!(Manifest::decode(&e.finish(), "x").is_err());
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(Manifest::decode(&m.encode(), "x").ok(), Some(m));
    }

    #[test]
    fn writes_version_2_with_flushed_epoch_at_offset_32() {
        let b = sample().encode();
        assert_eq!(&b[4..6], &2u16.to_le_bytes());
        assert_eq!(&b[24..32], &40u64.to_le_bytes());
        assert_eq!(&b[32..40], &1u64.to_le_bytes());
        assert_eq!(&b[40..48], &1234u64.to_le_bytes());
    }

    /// A version 1 manifest as a version 1 build wrote it (committed bytes, not produced by
    /// this build's encoder): version 7, epoch 3, flushed_seq 42, created_at
    /// 1_700_000_000_000, one L0 segment, one L1 segment, one obsolete segment.
    const V1_FIXTURE: &str = concat!(
        "544b564d01000000070000000000000003000000000000002a00000000000000",
        "0068e5cf8b010000010000001100000000000000000000000000000064000000",
        "000000000300000000000000010000000000000028000000000000002a000000",
        "00000000ffffffffffffffff01006101006b0100000022000000000000000000",
        "000000000000c800000000000000050000000000000000000000000000000100",
        "0000000000002700000000000000050000000000000001006201007a01000000",
        "330000000000000000000000000000004d00000000000000414e7977",
    );

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
            .collect()
    }

    #[test]
    fn version_1_fixture_decodes_with_flushed_epoch_from_epoch() {
        let bytes = unhex(V1_FIXTURE);
        let expected = Manifest {
            version: ManifestVersion(7),
            epoch: Epoch(3),
            flushed_seq: SeqNo(42),
            flushed_epoch: Epoch(3),
            created_at: 1_700_000_000_000,
            l0: vec![SegmentMeta {
                id: SegmentId(0x11),
                size: 100,
                entries: 3,
                tombstones: 1,
                min_seq: SeqNo(40),
                max_seq: SeqNo(42),
                min_expires_at: None,
                min_key: Bytes::from_static(b"a"),
                max_key: Bytes::from_static(b"k"),
            }],
            l1: vec![SegmentMeta {
                id: SegmentId(0x22),
                size: 200,
                entries: 5,
                tombstones: 0,
                min_seq: SeqNo(1),
                max_seq: SeqNo(39),
                min_expires_at: Some(5),
                min_key: Bytes::from_static(b"b"),
                max_key: Bytes::from_static(b"z"),
            }],
            obsolete: vec![Obsolete {
                id: SegmentId(0x33),
                since: 77,
            }],
            membership: None,
        };
        let m = Manifest::decode(&bytes, "fixture").expect("v1 fixture decodes");
        assert_eq!(m, expected);
        // Re-encoding writes version 2, which round-trips to the same struct.
        let v2 = m.encode();
        assert_eq!(&v2[4..6], &MANIFEST_VERSION.to_le_bytes());
        assert_eq!(v2.len(), bytes.len() + 8);
        assert_eq!(Manifest::decode(&v2, "x").expect("v2 decodes"), expected);
        // Damage to the fixture is still detected.
        for i in 0..bytes.len() {
            let mut c = bytes.clone();
            c[i] ^= 0x01;
            assert!(Manifest::decode(&c, "x").is_err(), "flip {i}");
        }
    }

    #[test]
    fn version_1_without_flushed_data_has_flushed_epoch_0() {
        let mut e = Enc::default();
        e.u32(MANIFEST_MAGIC);
        e.u16(MANIFEST_VERSION_1);
        e.u16(0);
        e.u64(1); // manifest version
        e.u64(5); // epoch
        e.u64(0); // flushed_seq
        e.u64(99); // created_at
        e.u32(0);
        e.u32(0);
        e.u32(0);
        e.crc_trailer();
        let m = Manifest::decode(&e.finish(), "x").expect("v1 decodes");
        assert_eq!(
            (m.epoch, m.flushed_seq, m.flushed_epoch),
            (Epoch(5), SeqNo(0), Epoch(0))
        );
        assert_eq!(m.created_at, 99);
    }

    #[test]
    fn every_truncation_and_flip_is_rejected() {
        let b = sample().encode();
        for cut in 0..b.len() {
            assert!(Manifest::decode(&b[..cut], "x").is_err(), "cut {cut}");
        }
        for i in 0..b.len() {
            let mut c = b.to_vec();
            c[i] ^= 0x01;
            assert!(Manifest::decode(&c, "x").is_err(), "flip {i}");
        }
    }

    #[test]
    fn unsupported_version_is_reported() {
        let mut e = Enc::default();
        e.u32(MANIFEST_MAGIC);
        e.u16(99);
        e.u16(0);
        e.crc_trailer();
        let r = Manifest::decode(&e.finish(), "x");
        assert!(matches!(
            r,
            Err(Error::UnsupportedVersion { actual: 99, .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = Manifest::decode(&data, "x");
        }

        #[test]
        fn decoder_never_panics_with_valid_crc(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            fv in 1u16..=3,
        ) {
            let mut e = Enc::default();
            e.u32(MANIFEST_MAGIC);
            e.u16(fv);
            e.raw(&data);
            e.crc_trailer();
            let _ = Manifest::decode(&e.finish(), "x");
        }
    }
}
