//! Which node a data directory belongs to.
//!
//! A node's WAL holds its promises and its log: what it has told the other replicas. Started
//! under another node id, a data directory would make that node claim promises it never
//! made, and the node whose directory it was would come back empty and forget its own (a
//! replica that forgets a promise can help a stale leader to a quorum). So the first start
//! writes `<data_dir>/NODE_ID` (`node <id>`, written to a temporary file, fsynced, renamed),
//! and every later start with another `--node-id` is refused before it touches the shard map
//! or the WAL. A directory from before this file existed is adopted by the id it is started
//! with.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tierkv_engine::replica::NodeId;

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

/// Checks that `dir` belongs to node `me`, recording it on first use. Blocking I/O.
pub fn claim(dir: &Path, me: NodeId) -> Result<(), IdentityError> {
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
                Ok(())
            } else {
                Err(IdentityError::OtherNode {
                    dir: dir.to_path_buf(),
                    recorded,
                    configured: me.0,
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => record(dir, &path, me),
        Err(e) => Err(io("read", &path)(e)),
    }
}

/// Writes the identity file durably: temporary file, fsync, rename, fsync of the directory.
fn record(dir: &Path, path: &Path, me: NodeId) -> Result<(), IdentityError> {
    let tmp = dir.join(format!("{ID_FILE}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(format!("node {}\n", me.0).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io("rename into place", path))?;
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

    #[test]
    fn first_start_records_the_id_and_later_starts_must_match_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("node-data");
        claim(&data, NodeId(3)).unwrap();
        assert_eq!(fs::read_to_string(data.join(ID_FILE)).unwrap(), "node 3\n");
        claim(&data, NodeId(3)).unwrap();
        match claim(&data, NodeId(4)) {
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

    #[test]
    fn a_damaged_identity_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(ID_FILE), "nodes 3\n").unwrap();
        let err = claim(dir.path(), NodeId(3)).unwrap_err();
        assert!(
            matches!(&err, IdentityError::Unreadable { found, .. } if found == "nodes 3\n"),
            "{err}"
        );
        fs::write(dir.path().join(ID_FILE), "node x").unwrap();
        assert!(matches!(
            claim(dir.path(), NodeId(3)),
            Err(IdentityError::Unreadable { .. })
        ));
    }
}
