//! Rejoining after disk loss: the `REJOIN` file of a node's data directory.
//!
//! A node whose id has run before but whose data directory is empty (a replaced disk) lost
//! every promise and log record its replicas had. Before it records its identity, it reads
//! the newest claimed epoch of every shard from object storage (every epoch a replica ever
//! promised was claimed first, so this bounds what the lost state promised or acked) and
//! writes them to `<data_dir>/REJOIN`. From then on, at every start, each replica begins
//! with that floor ([`tierkv_engine::replica::Recovered::amnesia_floor`]): it accepts
//! nothing older, promises nothing and takes nothing over until its log holds a record of a
//! newer epoch (design note 0002, "Rejoining after disk loss"). The file is kept afterwards:
//! a replica past its floor ignores it.
//!
//! Format (text, written to a temporary file, fsynced, renamed, directory fsynced):
//!
//! ```text
//! tierkv rejoin 1
//! <shard> <floor epoch>
//! ...
//! ```
//!
//! One line per shard that had an epoch claimed; shards that never had a leader are left
//! out (there was nothing to lose).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use tierkv_engine::manifest::ManifestStore;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{Epoch, ShardId};

use crate::identity::{IdentityError, io, write_durably};

/// Name of the file in a node's data directory.
pub(crate) const REJOIN_FILE: &str = "REJOIN";
const HEADER: &str = "tierkv rejoin 1";

/// Rejoin floor per shard.
pub(crate) type Floors = BTreeMap<ShardId, Epoch>;

/// The newest claimed epoch of each of `shards` shards that has one (the listings run
/// concurrently: one per shard).
pub(crate) async fn floors(store: &ObjStore, shards: u32) -> Result<Floors, tierkv_engine::Error> {
    let newest = futures::future::try_join_all((0..shards).map(|s| async move {
        let shard = ShardId(s);
        let e = ManifestStore::new(store.clone(), shard)
            .newest_epoch()
            .await?;
        Ok::<_, tierkv_engine::Error>((shard, e))
    }))
    .await?;
    Ok(newest.into_iter().filter(|(_, e)| *e > Epoch(0)).collect())
}

/// Writes `floors` durably as `dir`'s `REJOIN` file (replacing an older one). Blocking I/O.
pub(crate) fn write(dir: &Path, floors: &Floors) -> Result<(), IdentityError> {
    let mut text = format!("{HEADER}\n");
    for (shard, epoch) in floors {
        text.push_str(&format!("{} {}\n", shard.0, epoch.0));
    }
    write_durably(dir, REJOIN_FILE, text.as_bytes())
}

/// The floors of `dir`'s `REJOIN` file; empty if there is none. Blocking I/O.
pub(crate) fn read(dir: &Path) -> Result<Floors, IdentityError> {
    let path = dir.join(REJOIN_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Floors::new()),
        Err(e) => return Err(io("read", &path)(e)),
    };
    let unreadable = || IdentityError::Unreadable {
        path: path.clone(),
        found: text.chars().take(64).collect(),
    };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(unreadable());
    }
    let mut out = Floors::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let (shard, epoch) = line.split_once(' ').ok_or_else(unreadable)?;
        let shard = shard.parse().map_err(|_| unreadable())?;
        let epoch = epoch.trim().parse().map_err(|_| unreadable())?;
        out.insert(ShardId(shard), Epoch(epoch));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn floors_round_trip_and_a_missing_file_means_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
        let floors = BTreeMap::from([(ShardId(0), Epoch(7)), (ShardId(63), Epoch(2))]);
        write(dir.path(), &floors).unwrap();
        assert_eq!(read(dir.path()).unwrap(), floors);
        assert!(!dir.path().join(format!("{REJOIN_FILE}.tmp")).exists());
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_set_of_floors() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "",
            "tierkv rejoin 2\n",
            "tierkv rejoin 1\n0\n",
            "tierkv rejoin 1\n0 x\n",
        ] {
            fs::write(dir.path().join(REJOIN_FILE), bad).unwrap();
            assert!(
                matches!(read(dir.path()), Err(IdentityError::Unreadable { .. })),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn floors_are_the_newest_claimed_epochs_of_shards_that_had_one() {
        let store = ObjStore::in_memory();
        let m = ManifestStore::new(store.clone(), ShardId(1));
        assert!(m.try_claim_epoch(Epoch(1)).await.unwrap().1);
        assert!(m.try_claim_epoch(Epoch(4)).await.unwrap().1);
        let got = floors(&store, 3).await.unwrap();
        assert_eq!(got, BTreeMap::from([(ShardId(1), Epoch(4))]));
    }
}
