//! Directory locks: a data directory belongs to one process at a time.
//!
//! Two processes appending to one WAL directory would interleave files and delete each
//! other's, and neither would notice until a restart found the damage; two nodes on one data
//! directory would also share a disk cache and publish each other's address. [`DirLock`]
//! takes an exclusive advisory lock (`flock`) on `<dir>/LOCK` and holds it until dropped; the
//! kernel releases it when the process dies, so a `kill -9` never leaves a stale lock
//! behind. The file holds the holder's pid, for the error the next process reports.
//! [`crate::wal::Wal::open`] locks its directory; the server locks its data directory before
//! it opens anything in it. On a filesystem without `flock` support (`Unsupported`) a
//! warning is logged and the directory stays unlocked.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Name of the lock file inside a locked directory (not a WAL file name: recovery skips it).
pub const LOCK_FILE: &str = "LOCK";

/// An exclusive lock on a directory, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    /// The open lock file (None: the filesystem cannot lock).
    _file: Option<File>,
}

impl DirLock {
    /// Locks `dir` (which must exist), or fails with [`Error::DirLocked`] naming the holder's
    /// pid while another process, or another open handle in this one, holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut held_by = String::new();
                // Best effort: the holder may be rewriting it.
                let _ = file.read_to_string(&mut held_by);
                return Err(Error::DirLocked {
                    dir: dir.to_path_buf(),
                    holder: describe(&held_by),
                });
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "the filesystem does not support file locks; nothing stops a second process from opening this directory"
                );
                return Ok(Self { _file: None });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock directory", &path, e)),
        }
        let who = format!("pid {}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(who.as_bytes()))
            .map_err(|e| Error::io("write lock file", &path, e))?;
        Ok(Self { _file: Some(file) })
    }
}

/// The holder as its lock file names it.
fn describe(content: &str) -> String {
    let s = content.trim();
    if s.is_empty() {
        "a process that did not record its pid yet".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn a_held_directory_is_refused_with_the_holders_pid_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        match DirLock::acquire(dir.path()) {
            Err(Error::DirLocked { dir: d, holder }) => {
                assert_eq!(d, dir.path());
                assert_eq!(holder, format!("pid {}", std::process::id()));
            }
            other => panic!("expected DirLocked, got {other:?}"),
        }
        drop(first);
        let again = DirLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            DirLock::acquire(dir.path()),
            Err(Error::DirLocked { .. })
        ));
        drop(again);
    }

    #[test]
    fn a_missing_directory_is_an_io_error_not_a_lock_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            DirLock::acquire(&missing),
            Err(Error::Io {
                op: "open lock file",
                ..
            })
        ));
    }
}
