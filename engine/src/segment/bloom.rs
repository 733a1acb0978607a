//! The per-segment bloom filter: one xxh3-64 hash per key, expanded into k probes by double
//! hashing (Kirsch–Mitzenmacher). Layout in `format.rs`.

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_64;

use crate::codec::{Dec, DecodeError, Enc, split_crc_trailer};

use super::format::MIN_BLOOM_LEN;

/// Most probes a filter may use.
const MAX_PROBES: u32 = 30;

/// The hash a key is filtered by.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// Probes for `bits_per_key`: round(bits_per_key · ln 2), clamped to 1..=30.
pub(crate) fn probes_for(bits_per_key: u32) -> u32 {
    (bits_per_key.saturating_mul(69).saturating_add(50) / 100).clamp(1, MAX_PROBES)
}

/// Bit positions probed for hash `h` in a filter of `nbits` bits.
fn probe_bits(h: u64, k: u32, nbits: u64) -> impl Iterator<Item = u64> {
    let delta = h.rotate_left(32) | 1;
    (0..u64::from(k)).map(move |i| h.wrapping_add(i.wrapping_mul(delta)) % nbits)
}

/// Appends an encoded bloom block holding `hashes` at `bits_per_key` (> 0).
pub(crate) fn put_bloom(out: &mut Enc, hashes: &[u64], bits_per_key: u32) {
    let k = probes_for(bits_per_key);
    let want_bits = (hashes.len() as u64).saturating_mul(u64::from(bits_per_key));
    let nbytes = usize::try_from(want_bits.div_ceil(8))
        .unwrap_or(usize::MAX / 2)
        .max(8);
    let mut bits = vec![0u8; nbytes];
    let nbits = (nbytes as u64) * 8;
    for &h in hashes {
        for bit in probe_bits(h, k, nbits) {
            let byte = usize::try_from(bit / 8).unwrap_or(usize::MAX);
            if let Some(b) = bits.get_mut(byte) {
                *b |= 1 << (bit % 8);
            }
        }
    }
    let mut e = Enc::with_capacity(nbytes + 5);
    e.u8(u8::try_from(k).unwrap_or(1));
    e.raw(&bits);
    e.crc_trailer();
    out.raw(e.as_slice());
}

/// Encoded size of a bloom block for `n` keys (for size estimates).
pub(crate) fn bloom_len_estimate(n: usize, bits_per_key: u32) -> usize {
    if bits_per_key == 0 {
        0
    } else {
        (n.saturating_mul(bits_per_key as usize) / 8).max(8) + 5
    }
}

/// A decoded, verified bloom filter.
#[derive(Clone)]
pub(crate) struct Bloom {
    bits: Bytes,
    k: u32,
}

impl std::fmt::Debug for Bloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bloom")
            .field("bytes", &self.bits.len())
            .field("k", &self.k)
            .finish()
    }
}

impl Bloom {
    /// Verifies and decodes a bloom block.
    pub(crate) fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        if buf.len() < MIN_BLOOM_LEN as usize {
            return Err(DecodeError {
                what: "truncated input",
                offset: 0,
            });
        }
        let body = split_crc_trailer(buf)?;
        let mut d = Dec::new(body);
        let k = u32::from(d.u8()?);
        if !(1..=MAX_PROBES).contains(&k) {
            return Err(DecodeError {
                what: "probe count out of range",
                offset: 0,
            });
        }
        Ok(Self {
            bits: buf.slice(1..body.len()),
            k,
        })
    }

    /// False only if `key` was certainly not added.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        let nbits = (self.bits.len() as u64) * 8;
        if nbits == 0 {
            return true;
        }
        probe_bits(key_hash(key), self.k, nbits).all(|bit| {
            usize::try_from(bit / 8)
                .ok()
                .and_then(|i| self.bits.get(i))
                .is_some_and(|b| b & (1 << (bit % 8)) != 0)
        })
    }
}
