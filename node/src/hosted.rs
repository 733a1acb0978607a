//! Which shards a node hosts: the `HOSTED` file of its data directory (design note 0009,
//! "Part 2 plan", step 5).
//!
//! Without the file a node hosts the shards the genesis map places on it (every directory
//! of before membership changes). Once reconciliation creates a replica the genesis map did
//! not place here (a learner), the node writes the file, after the learner's promise floor
//! is durable in the WAL and before the replica answers anything: a restart must bring that
//! replica back (a learner may have become a voter whose acks counted), never forget it.
//!
//! Format (text, written to a temporary file, fsynced, renamed, directory fsynced):
//!
//! ```text
//! tierkv hosted 1
//! <shard>
//! ...
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use tierkv_engine::types::ShardId;

use crate::identity::{IdentityError, io, write_durably};

/// Name of the file in a node's data directory.
pub(crate) const HOSTED_FILE: &str = "HOSTED";
const HEADER: &str = "tierkv hosted 1";

/// Writes `shards` durably as `dir`'s `HOSTED` file (replacing an older one). Blocking I/O.
pub(crate) fn write(dir: &Path, shards: &BTreeSet<ShardId>) -> Result<(), IdentityError> {
    let mut text = format!("{HEADER}\n");
    for shard in shards {
        text.push_str(&format!("{}\n", shard.0));
    }
    write_durably(dir, HOSTED_FILE, text.as_bytes())
}

/// The shards of `dir`'s `HOSTED` file; `None` if there is none. Blocking I/O.
pub(crate) fn read(dir: &Path) -> Result<Option<BTreeSet<ShardId>>, IdentityError> {
    let path = dir.join(HOSTED_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
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
    let mut out = BTreeSet::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let shard = line.trim().parse().map_err(|_| unreadable())?;
        out.insert(ShardId(shard));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn hosted_shards_round_trip_and_a_missing_file_means_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let shards = BTreeSet::from([ShardId(0), ShardId(5), ShardId(63)]);
        write(dir.path(), &shards).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(shards));
        write(dir.path(), &BTreeSet::new()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(BTreeSet::new()));
        assert!(!dir.path().join(format!("{HOSTED_FILE}.tmp")).exists());
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_set() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "",
            "tierkv hosted 2\n",
            "tierkv hosted 1\nx\n",
            "tierkv hosted 1\n-1\n",
        ] {
            fs::write(dir.path().join(HOSTED_FILE), bad).unwrap();
            assert!(
                matches!(read(dir.path()), Err(IdentityError::Unreadable { .. })),
                "{bad:?}"
            );
        }
    }
}
