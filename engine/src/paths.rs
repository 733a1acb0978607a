//! Every object-storage key and local file name the engine uses is built here, and nowhere
//! else.
//!
//! ```text
//! shards/<sid:05>/epoch/<epoch:020>          who writes the shard from this epoch on (create-only)
//! shards/<sid:05>/manifest/<version:020>     manifest versions (create-only: the CAS)
//! shards/<sid:05>/segments/<id:032x>.seg     immutable sorted segments, never rewritten
//! cluster/meta.json                          cluster-wide settings fixed at creation (create-only)
//! cluster/shardmap/<version:020>             shard map versions (create-only: the CAS)
//! cluster/nodes/<id:010>                     a node id has run (create-only registration)
//! cluster/ready-probe/                       listed (never written) to check the store answers
//! ```
//! Zero-padded decimal numbers make lexicographic listing order equal numeric order.

use crate::types::{Epoch, ManifestVersion, SegmentId, ShardId};

/// Key of the cluster metadata object.
#[must_use]
pub fn cluster_meta() -> String {
    "cluster/meta.json".to_owned()
}

/// Prefix under which every shard map version lives.
pub const SHARDMAP_PREFIX: &str = "cluster/shardmap/";

/// Key of shard map `version`: zero-padded so that listing order is version order.
#[must_use]
pub fn shardmap(version: u64) -> String {
    format!("{SHARDMAP_PREFIX}{version:020}")
}

/// Parses the version out of a shard map key; `None` for any other key.
#[must_use]
pub fn parse_shardmap(key: &str) -> Option<u64> {
    let digits = key.strip_prefix(SHARDMAP_PREFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Key of node `id`'s registration (written once, the first time the id runs).
#[must_use]
pub fn node_registration(id: u32) -> String {
    format!("cluster/nodes/{id:010}")
}

/// A prefix under which nothing is ever written: listing it proves the store answers.
pub const READY_PROBE_PREFIX: &str = "cluster/ready-probe/";

/// Prefix of every object of one shard.
#[must_use]
pub fn shard_prefix(shard: ShardId) -> String {
    format!("shards/{:05}", shard.0)
}

/// Prefix under which a shard's manifests live.
#[must_use]
pub fn manifest_prefix(shard: ShardId) -> String {
    format!("{}/manifest/", shard_prefix(shard))
}

/// Key of one manifest version.
#[must_use]
pub fn manifest(shard: ShardId, v: ManifestVersion) -> String {
    format!("{}{:020}", manifest_prefix(shard), v.0)
}

/// Parses the version out of a manifest key.
#[must_use]
pub fn parse_manifest(shard: ShardId, key: &str) -> Option<ManifestVersion> {
    key.strip_prefix(&manifest_prefix(shard))?
        .parse()
        .ok()
        .map(ManifestVersion)
}

/// Prefix under which a shard's epoch claims live.
#[must_use]
pub fn epoch_prefix(shard: ShardId) -> String {
    format!("{}/epoch/", shard_prefix(shard))
}

/// Key of one epoch claim.
#[must_use]
pub fn epoch(shard: ShardId, e: Epoch) -> String {
    format!("{}{:020}", epoch_prefix(shard), e.0)
}

/// Parses the epoch out of an epoch-claim key.
#[must_use]
pub fn parse_epoch(shard: ShardId, key: &str) -> Option<Epoch> {
    key.strip_prefix(&epoch_prefix(shard))?
        .parse()
        .ok()
        .map(Epoch)
}

/// Key of one segment.
#[must_use]
pub fn segment(shard: ShardId, id: SegmentId) -> String {
    format!("{}/segments/{id}.seg", shard_prefix(shard))
}

/// Prefix under which a shard's segments live.
#[must_use]
pub fn segment_prefix(shard: ShardId) -> String {
    format!("{}/segments/", shard_prefix(shard))
}

/// Parses a segment id out of a segment key.
#[must_use]
pub fn parse_segment(shard: ShardId, key: &str) -> Option<SegmentId> {
    let hex = key
        .strip_prefix(&segment_prefix(shard))?
        .strip_suffix(".seg")?;
    u128::from_str_radix(hex, 16).ok().map(SegmentId)
}

/// File name of a WAL segment file.
#[must_use]
pub fn wal_file(file_no: u64) -> String {
    format!("{file_no:020}.wal")
}

/// Parses a WAL segment file name.
#[must_use]
pub fn parse_wal_file(name: &str) -> Option<u64> {
    name.strip_suffix(".wal")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let s = ShardId(7);
        let v = ManifestVersion(42);
        assert_eq!(parse_manifest(s, &manifest(s, v)), Some(v));
        assert_eq!(parse_epoch(s, &epoch(s, Epoch(3))), Some(Epoch(3)));
        let id = SegmentId(0xdead_beef);
        assert_eq!(parse_segment(s, &segment(s, id)), Some(id));
        assert_eq!(parse_wal_file(&wal_file(9)), Some(9));
        assert!(manifest(s, ManifestVersion(2)) < manifest(s, ManifestVersion(10)));
    }

    #[test]
    fn shardmap_keys_sort_by_version_and_parse_back() {
        assert_eq!(shardmap(7), "cluster/shardmap/00000000000000000007");
        assert!(shardmap(9) < shardmap(10));
        assert_eq!(parse_shardmap(&shardmap(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_shardmap("cluster/shardmap/12"), None);
        assert_eq!(
            parse_shardmap("cluster/shardmap/+0000000000000000001"),
            None
        );
        assert_eq!(parse_shardmap("cluster/meta.json"), None);
        assert_eq!(node_registration(3), "cluster/nodes/0000000003");
    }
}
