//! Which node a data directory belongs to, and whether a node id has had a disk before.
//!
//! A node's WAL holds its promises and its log: what it has told the other replicas. Started
//! under another node id, a data directory would make that node claim promises it never
//! made, and the node whose directory it was would come back empty and forget its own (a
//! replica that forgets a promise can help a stale leader to a quorum). So the first start
//! writes `<data_dir>/NODE_ID` (`node <id>`, written to a temporary file, fsynced, renamed),
//! and every later start with another `--node-id` is refused before it touches the shard map
//! or the WAL. A directory from before this file existed is adopted by the id it is started
//! with.
//!
//! An empty directory is either a node's first disk or a replacement for a lost one; only
//! the cluster can tell. Every node registers its id in object storage
//! (`cluster/nodes/<id>`, create-only) when it starts; a start on an empty directory that
//! finds its id already registered is a replaced disk, and so is this node's directory
//! whose WAL directory holds no file (a node that ran keeps at least its active WAL file). Its replicas then rejoin: before the
//! identity is recorded, the floors of [`crate::rejoin`] are written, so that no replica
//! answers as the lost one (design note 0002, "Rejoining after disk loss").

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tierkv_engine::replica::NodeId;
use tierkv_engine::store::{CreateOutcome, ObjStore};

use crate::rejoin::Floors;

/// Name of the identity file in a node's data directory.
pub(crate) const ID_FILE: &str = "NODE_ID";

/// Why a data directory cannot be used as this node's.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The directory belongs to another node.
    #[error(
        "data directory {dir} belongs to node {recorded}, not node {configured}; start node {recorded} on it, or give node {configured} a directory of its own"
    )]
    OtherNode {
        /// The data directory.
        dir: PathBuf,
        /// The node id recorded in it.
        recorded: NodeId,
        /// The node id this process was started with.
        configured: NodeId,
    },
    /// The registration in object storage, or the epochs a rejoining node starts from,
    /// could not be read or written.
    #[error("registering node {node} in object storage: {source}")]
    Register {
        /// The node id.
        node: NodeId,
        /// The store's error.
        source: tierkv_engine::Error,
    },
    /// The identity file does not hold `node <id>`.
    #[error("{path} does not name a node (expected `node <id>`, found {found:?})")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What it holds (at most 64 bytes of it).
        found: String,
    },
    /// Reading or writing the file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError {
    let path = path.to_path_buf();
    move |source| IdentityError::Io { op, path, source }
}

/// What a data directory says about its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// It records this node's id.
    This,
    /// It records no node yet (a first start, or a replaced disk).
    Nothing,
}

/// Checks that `dir` (created if missing) belongs to node `me`. Blocking I/O.
fn inspect(dir: &Path, me: NodeId) -> Result<Found, IdentityError> {
    fs::create_dir_all(dir).map_err(io("create data directory", dir))?;
    let path = dir.join(ID_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let recorded = text
                .trim()
                .strip_prefix("node ")
                .and_then(|id| id.parse::<u32>().ok())
                .ok_or_else(|| IdentityError::Unreadable {
                    path: path.clone(),
                    found: text.chars().take(64).collect(),
                })?;
            if recorded == me.0 {
                Ok(Found::This)
            } else {
                Err(IdentityError::OtherNode {
                    dir: dir.to_path_buf(),
                    recorded: NodeId(recorded),
                    configured: me,
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Found::Nothing),
        Err(e) => Err(io("read", &path)(e)),
    }
}

/// Object key of node `me`'s registration.
fn registration_key(me: NodeId) -> String {
    tierkv_engine::paths::node_registration(me.0)
}

/// Makes sure `dir` is node `me`'s and may be used: checks the identity file, registers the
/// id in object storage, and records the identity of an empty directory; for an empty
/// directory of an id that was registered before (a replaced disk), first writes the
/// rejoin floors of the cluster's `shards` shards ([`crate::rejoin`]). Returns the floors
/// the directory holds (empty unless its node ever rejoined).
pub(crate) async fn claim(
    dir: &Path,
    wal_dir: &Path,
    me: NodeId,
    store: &ObjStore,
    shards: u32,
) -> Result<Floors, IdentityError> {
    let (d, w) = (dir.to_path_buf(), wal_dir.to_path_buf());
    let (found, wal_lost, floors) = off_thread(move || {
        let found = inspect(&d, me)?;
        let wal_lost = found == Found::This && !has_wal_files(&w)?;
        Ok((found, wal_lost, crate::rejoin::read(&d)?))
    })
    .await?;
    let body = bytes::Bytes::from(format!("{{\"node\":{}}}\n", me.0));
    let registered = store
        .put_create(&registration_key(me), body)
        .await
        .map_err(|source| IdentityError::Register { node: me, source })?;
    if wal_lost {
        // The directory is this node's but its WAL is gone (every node that ran keeps at
        // least its active WAL file): as lost as an empty disk.
        tracing::warn!(node = me.0, dir = %wal_dir.display(), "this node's WAL directory has no files: its replicas rejoin as after a lost disk");
        return write_floors(dir, store, me, shards).await;
    }
    if found == Found::This {
        return Ok(floors);
    }
    let floors = if registered == CreateOutcome::AlreadyExists {
        // Before the identity: a crash in between must not leave a directory that looks
        // like this node's own without its floors.
        tracing::warn!(node = me.0, dir = %dir.display(), "node has run before and its data directory is empty (a replaced disk): its replicas rejoin, promising nothing until they catch up with a newer epoch");
        write_floors(dir, store, me, shards).await?
    } else {
        floors
    };
    let d = dir.to_path_buf();
    off_thread(move || record(&d, me)).await?;
    Ok(floors)
}

/// Writes the rejoin floors of the cluster's `shards` shards into `dir` (a newer set
/// replaces an older one: a higher floor only asks more of the rejoin) and returns them.
async fn write_floors(
    dir: &Path,
    store: &ObjStore,
    me: NodeId,
    shards: u32,
) -> Result<Floors, IdentityError> {
    let floors = crate::rejoin::floors(store, shards)
        .await
        .map_err(|source| IdentityError::Register { node: me, source })?;
    let (d, written) = (dir.to_path_buf(), floors.clone());
    off_thread(move || crate::rejoin::write(&d, &written)).await?;
    Ok(floors)
}

/// Whether `wal_dir` holds a WAL file (`*.wal`); false if it does not exist.
fn has_wal_files(wal_dir: &Path) -> Result<bool, IdentityError> {
    let entries = match fs::read_dir(wal_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("read", wal_dir)(e)),
    };
    Ok(entries
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "wal")))
}

/// Writes `dir/name` so that a crash leaves either the old file or the whole new one:
/// temporary file, fsync, rename, fsync of the directory.
pub(crate) fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), IdentityError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io("write", &tmp))?;
    fs::rename(&tmp, &path).map_err(io("rename into place", &path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync", dir))
}

/// Runs blocking file I/O on the blocking pool.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IdentityError> + Send + 'static,
) -> Result<T, IdentityError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IdentityError::Io {
            op: "run identity check",
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })?
}

/// Writes the identity file durably: temporary file, fsync, rename, fsync of the directory.
fn record(dir: &Path, me: NodeId) -> Result<(), IdentityError> {
    write_durably(dir, ID_FILE, format!("node {}\n", me.0).as_bytes())?;
    tracing::info!(dir = %dir.display(), node = me.0, "data directory recorded as this node's");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// Where the node keeps its WAL, with one file in it (as after its first start).
    fn wal_of(dir: &Path) -> PathBuf {
        let wal = dir.join("wal");
        fs::create_dir_all(&wal).unwrap();
        fs::write(wal.join("00000000000000000001.wal"), b"").unwrap();
        wal
    }

    #[tokio::test]
    async fn first_start_records_the_id_and_later_starts_must_match_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjStore::in_memory();
        let data = dir.path().join("node-data");
        claim(&data, &wal_of(&data), NodeId(3), &store, 4)
            .await
            .unwrap();
        assert_eq!(fs::read_to_string(data.join(ID_FILE)).unwrap(), "node 3\n");
        claim(&data, &wal_of(&data), NodeId(3), &store, 4)
            .await
            .unwrap();
        match claim(&data, &wal_of(&data), NodeId(4), &store, 4).await {
            Err(IdentityError::OtherNode {
                recorded: NodeId(3),
                configured: NodeId(4),
                ..
            }) => {}
            other => panic!("expected OtherNode, got {other:?}"),
        }
        // The refused start changed nothing.
        assert_eq!(fs::read_to_string(data.join(ID_FILE)).unwrap(), "node 3\n");
        assert!(!data.join(format!("{ID_FILE}.tmp")).exists());
    }

    #[tokio::test]
    async fn an_empty_directory_of_a_registered_node_gets_rejoin_floors() {
        use std::collections::BTreeMap;
        use tierkv_engine::manifest::ManifestStore;
        use tierkv_engine::types::{Epoch, ShardId};

        let dir = tempfile::tempdir().unwrap();
        let store = ObjStore::in_memory();
        let first = dir.path().join("first");
        claim(&first, &wal_of(&first), NodeId(2), &store, 4)
            .await
            .unwrap();
        assert!(crate::rejoin::read(&first).unwrap().is_empty());
        let m = ManifestStore::new(store.clone(), ShardId(3));
        assert!(m.try_claim_epoch(Epoch(5)).await.unwrap().1);
        // Node 2's disk is replaced: the new directory gets the floors, then the identity.
        let second = dir.path().join("second");
        claim(&second, &wal_of(&second), NodeId(2), &store, 4)
            .await
            .unwrap();
        let floors = BTreeMap::from([(ShardId(3), Epoch(5))]);
        assert_eq!(crate::rejoin::read(&second).unwrap(), floors);
        assert_eq!(
            fs::read_to_string(second.join(ID_FILE)).unwrap(),
            "node 2\n"
        );
        // Later starts keep them (newer claims do not move them); another node's first disk
        // gets none.
        assert!(m.try_claim_epoch(Epoch(6)).await.unwrap().1);
        claim(&second, &wal_of(&second), NodeId(2), &store, 4)
            .await
            .unwrap();
        assert_eq!(crate::rejoin::read(&second).unwrap(), floors);
        let third = dir.path().join("third");
        claim(&third, &wal_of(&third), NodeId(3), &store, 4)
            .await
            .unwrap();
        assert!(crate::rejoin::read(&third).unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_directory_whose_wal_is_gone_gets_rejoin_floors_too() {
        use tierkv_engine::manifest::ManifestStore;
        use tierkv_engine::types::{Epoch, ShardId};

        let dir = tempfile::tempdir().unwrap();
        let store = ObjStore::in_memory();
        let wal = wal_of(dir.path());
        claim(dir.path(), &wal, NodeId(1), &store, 2).await.unwrap();
        let m = ManifestStore::new(store.clone(), ShardId(0));
        assert!(m.try_claim_epoch(Epoch(3)).await.unwrap().1);
        claim(dir.path(), &wal, NodeId(1), &store, 2).await.unwrap();
        assert!(crate::rejoin::read(dir.path()).unwrap().is_empty());
        // Only the WAL is lost (its files deleted): the identity stays, the floors come.
        fs::remove_dir_all(&wal).unwrap();
        claim(dir.path(), &wal, NodeId(1), &store, 2).await.unwrap();
        assert_eq!(
            crate::rejoin::read(dir.path()).unwrap().get(&ShardId(0)),
            Some(&Epoch(3))
        );
    }

    #[tokio::test]
    async fn a_damaged_identity_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjStore::in_memory();
        fs::write(dir.path().join(ID_FILE), "nodes 3\n").unwrap();
        let err = claim(dir.path(), &wal_of(dir.path()), NodeId(3), &store, 4)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, IdentityError::Unreadable { found, .. } if found == "nodes 3\n"),
            "{err}"
        );
        fs::write(dir.path().join(ID_FILE), "node x").unwrap();
        assert!(matches!(
            claim(dir.path(), &wal_of(dir.path()), NodeId(3), &store, 4).await,
            Err(IdentityError::Unreadable { .. })
        ));
    }
}
