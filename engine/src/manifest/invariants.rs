//! Invariants checked before every manifest publish. Each is a named function so a failure
//! says which rule broke; a violation is a bug and is reported as `Error::Invariant` rather than
//! published.

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::types::Epoch;

/// The next manifest must be exactly one version after the current one: versions are
/// contiguous so that a stale writer's create of `v+1` always collides with an existing object.
pub fn version_is_next(cur: &Manifest, next: &Manifest) -> Result<()> {
    ok_if(
        next.version.0 == cur.version.0 + 1,
        "manifest version is not current + 1",
    )
}

/// The epoch never decreases: a manifest from an older writer must never follow a newer one.
pub fn epoch_never_decreases(cur: &Manifest, next: &Manifest) -> Result<()> {
    ok_if(next.epoch >= cur.epoch, "manifest epoch decreased")
}

/// `flushed_seq` never decreases: WAL space released up to it must never be needed again.
pub fn flushed_seq_never_decreases(cur: &Manifest, next: &Manifest) -> Result<()> {
    ok_if(next.flushed_seq >= cur.flushed_seq, "flushed_seq decreased")
}

/// `flushed_epoch` is the epoch of the record at `flushed_seq`: no record is written in an
/// epoch above the publisher's (a writer only writes in its own epoch, a leader only flushes
/// records it has), and with nothing flushed there is no such record (0).
pub fn flushed_epoch_is_consistent(next: &Manifest) -> Result<()> {
    ok_if(
        next.flushed_epoch <= next.epoch
            && (next.flushed_seq.0 > 0 || next.flushed_epoch == Epoch(0)),
        "flushed_epoch above the manifest epoch, or set with nothing flushed",
    )
}

/// The sorted run is sorted and non-overlapping, or a point read could pick the wrong segment.
pub fn l1_is_sorted_and_disjoint(next: &Manifest) -> Result<()> {
    let ok = next.l1.windows(2).all(|w| match w {
        [a, b] => a.max_key < b.min_key,
        _ => true,
    });
    ok_if(ok, "l1 segments overlap or are out of order")
}

/// No segment is listed twice, and no live segment is also awaiting deletion.
pub fn segments_are_unique(next: &Manifest) -> Result<()> {
    let mut ids: Vec<_> = next.segments().map(|s| s.id).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    let dead_live = next
        .obsolete
        .iter()
        .any(|o| ids.binary_search(&o.id).is_ok());
    ok_if(
        ids.len() == n && !dead_live,
        "segment listed twice or both live and obsolete",
    )
}

/// No flushed segment holds data newer than `flushed_seq`, which would be replayed twice
/// with a different meaning after a crash.
pub fn segments_within_flushed_seq(next: &Manifest) -> Result<()> {
    ok_if(
        next.segments().all(|s| s.max_seq <= next.flushed_seq),
        "segment holds entries above flushed_seq",
    )
}

/// A recorded configuration is never dropped: without it, a replica loading the manifest
/// past its log would fall back to the genesis configuration and count the wrong quorums
/// (design note 0009 §1).
pub fn configuration_kept(cur: &Manifest, next: &Manifest) -> Result<()> {
    ok_if(
        cur.membership.is_none() || next.membership.is_some(),
        "the configuration recorded at the flushed prefix was dropped",
    )
}

/// Runs every invariant for the transition `cur -> next`.
pub fn check(cur: &Manifest, next: &Manifest) -> Result<()> {
    version_is_next(cur, next)?;
    epoch_never_decreases(cur, next)?;
    flushed_seq_never_decreases(cur, next)?;
    flushed_epoch_is_consistent(next)?;
    l1_is_sorted_and_disjoint(next)?;
    segments_are_unique(next)?;
    segments_within_flushed_seq(next)?;
    configuration_kept(cur, next)
}

fn ok_if(cond: bool, what: &'static str) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Invariant { what })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::seg;
    use crate::types::{ManifestVersion, SeqNo};

    #[test]
    fn flushed_epoch_must_not_exceed_the_epoch_or_exist_without_flushed_data() {
        let cur = Manifest::default();
        let ok = Manifest {
            version: ManifestVersion(1),
            epoch: Epoch(4),
            flushed_seq: SeqNo(10),
            flushed_epoch: Epoch(4),
            ..Manifest::default()
        };
        assert!(check(&cur, &ok).is_ok());
        let above = Manifest {
            flushed_epoch: Epoch(5),
            ..ok.clone()
        };
        assert!(matches!(
            flushed_epoch_is_consistent(&above),
            Err(Error::Invariant { .. })
        ));
        let nothing_flushed = Manifest {
            flushed_seq: SeqNo(0),
            flushed_epoch: Epoch(2),
            ..ok
        };
        assert!(check(&cur, &nothing_flushed).is_err());
    }

    #[test]
    fn a_recorded_configuration_is_never_dropped() {
        use crate::replica::{Membership, NodeId};
        let with = Manifest {
            membership: Some(Membership::Steady(vec![NodeId(1), NodeId(2), NodeId(4)])),
            ..Manifest::default()
        };
        let next = Manifest {
            version: ManifestVersion(1),
            ..Manifest::default()
        };
        assert!(matches!(
            configuration_kept(&with, &next),
            Err(Error::Invariant { .. })
        ));
        assert!(
            check(
                &with,
                &Manifest {
                    membership: with.membership.clone(),
                    ..next.clone()
                }
            )
            .is_ok()
        );
        assert!(
            check(
                &Manifest::default(),
                &Manifest {
                    membership: with.membership.clone(),
                    ..next
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn overlapping_l1_is_rejected() {
        let cur = Manifest::default();
        let next = Manifest {
            version: ManifestVersion(1),
            flushed_seq: SeqNo(10),
            l1: vec![seg(1, "a", "m", (1, 2)), seg(2, "k", "z", (1, 2))],
            ..Manifest::default()
        };
        assert!(check(&cur, &next).is_err());
    }

    #[test]
    fn skipping_a_version_is_rejected() {
        let cur = Manifest::default();
        let next = Manifest {
            version: ManifestVersion(2),
            ..Manifest::default()
        };
        assert!(matches!(
            version_is_next(&cur, &next),
            Err(Error::Invariant { .. })
        ));
    }
}
