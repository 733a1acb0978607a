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
//! finds its id already registered is refused unless `cluster.rejoin_empty` is set, since
//! an empty replica answering as the old one can cost acknowledged writes (design note 0002,
//! "Non-goals", says when it is safe).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tierkv_engine::replica::NodeId;
use tierkv_engine::store::{CreateOutcome, ObjStore};

/// Name of the identity file in a node's data directory.
pub const ID_FILE: &str = "NODE_ID";

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
        recorded: u32,
        /// The node id this process was started with.
        configured: u32,
    },
    /// The directory is empty but this node id has run before: a replaced disk.
    #[error(
        "node {node} has run before, and its data directory {dir} is empty (a replaced disk?): the replica's promises and log are gone, and rejoining at once can lose acknowledged writes; once the other replicas are ready (design note 0002, \"Non-goals\"), start it once with cluster.rejoin_empty = true (TIERKV_CLUSTER__REJOIN_EMPTY=true)"
    )]
    ReplacedDisk {
        /// The node id.
        node: u32,
        /// The empty data directory.
        dir: PathBuf,
    },
    /// The registration in object storage could not be read or written.
    #[error("registering node {node} in object storage: {source}")]
    Register {
        /// The node id.
        node: u32,
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

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError {
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
                    recorded,
                    configured: me.0,
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Found::Nothing),
        Err(e) => Err(io("read", &path)(e)),
    }
}

/// Object key of node `me`'s registration.
fn registration_key(me: NodeId) -> String {
    format!("cluster/nodes/{:010}", me.0)
}

/// Makes sure `dir` is node `me`'s and may be used: checks the identity file, registers the
/// id in object storage, refuses an empty directory of an id that was registered before
/// (unless `rejoin_empty`), and records the identity of an empty one.
pub async fn claim(
    dir: &Path,
    me: NodeId,
    store: &ObjStore,
    rejoin_empty: bool,
) -> Result<(), IdentityError> {
    let d = dir.to_path_buf();
    let found = off_thread(move || inspect(&d, me)).await?;
    let body = bytes::Bytes::from(format!("{{\"node\":{}}}\n", me.0));
    let registered = store
        .put_create(&registration_key(me), body)
        .await
        .map_err(|source| IdentityError::Register { node: me.0, source })?;
    if found == Found::This {
        return Ok(());
    }
    if registered == CreateOutcome::AlreadyExists {
        if !rejoin_empty {
            return Err(IdentityError::ReplacedDisk {
                node: me.0,
                dir: dir.to_path_buf(),
            });
        }
        tracing::warn!(node = me.0, dir = %dir.display(), "rejoining on an empty data directory (cluster.rejoin_empty)");
    }
    let d = dir.to_path_buf();
    off_thread(move || record(&d, me)).await
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
    let path = dir.join(ID_FILE);
    let tmp = dir.join(format!("{ID_FILE}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(format!("node {}\n", me.0).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io("write", &tmp))?;
    fs::rename(&tmp, &path).map_err(io("rename into place", &path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync", dir))?;
    tracing::info!(dir = %dir.display(), node = me.0, "data directory recorded as this node's");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[tokio::test]
    async fn first_start_records_the_id_and_later_starts_must_match_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjStore::in_memory();
        let data = dir.path().join("node-data");
        claim(&data, NodeId(3), &store, false).await.unwrap();
        assert_eq!(fs::read_to_string(data.join(ID_FILE)).unwrap(), "node 3\n");
        claim(&data, NodeId(3), &store, false).await.unwrap();
        match claim(&data, NodeId(4), &store, false).await {
            Err(IdentityError::OtherNode {
                recorded: 3,
                configured: 4,
                ..
            }) => {}
            other => panic!("expected OtherNode, got {other:?}"),
        }
        // The refused start changed nothing.
        assert_eq!(fs::read_to_string(data.join(ID_FILE)).unwrap(), "node 3\n");
        assert!(!data.join(format!("{ID_FILE}.tmp")).exists());
    }

    #[tokio::test]
    async fn an_empty_directory_of_a_registered_node_needs_rejoin_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjStore::in_memory();
        claim(&dir.path().join("first"), NodeId(2), &store, false)
            .await
            .unwrap();
        // Node 2's disk is replaced: refused, and nothing is recorded on the new one.
        let second = dir.path().join("second");
        match claim(&second, NodeId(2), &store, false).await {
            Err(IdentityError::ReplacedDisk { node: 2, dir: d }) => assert_eq!(d, second),
            other => panic!("expected ReplacedDisk, got {other:?}"),
        }
        assert!(!second.join(ID_FILE).exists());
        // Another node's first disk is not affected.
        claim(&dir.path().join("third"), NodeId(3), &store, false)
            .await
            .unwrap();
        // With the override it starts, and from then on the directory is node 2's.
        claim(&second, NodeId(2), &store, true).await.unwrap();
        claim(&second, NodeId(2), &store, false).await.unwrap();
    }

    #[tokio::test]
    async fn a_damaged_identity_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjStore::in_memory();
        fs::write(dir.path().join(ID_FILE), "nodes 3\n").unwrap();
        let err = claim(dir.path(), NodeId(3), &store, true)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, IdentityError::Unreadable { found, .. } if found == "nodes 3\n"),
            "{err}"
        );
        fs::write(dir.path().join(ID_FILE), "node x").unwrap();
        assert!(matches!(
            claim(dir.path(), NodeId(3), &store, true).await,
            Err(IdentityError::Unreadable { .. })
        ));
    }
}
