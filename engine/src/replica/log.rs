//! A replica's in-memory view of its shard log: the records after `base`, contiguous.
//!
//! `base` is the `flushed_seq` of the latest manifest this replica applied and `base_epoch`
//! the epoch of the record at `base` (also from the manifest). Everything at or below `base`
//! is in segments in object storage and committed, hence identical on every replica, so a
//! prefix check at or below `base` always succeeds.
//!
//! The log also knows the configuration in force (design note 0009 §1): the one in its newest
//! configuration record, else the one the manifest recorded at `base` (`None`: the genesis
//! configuration, which only the replica's settings know).
//!
//! Invariants (checked by [`Log::check`], called from the simulator's auditor):
//! - `records[i].seq == base + 1 + i` (contiguity: a log never has holes, because every append
//!   is matched against the record before it);
//! - epochs never decrease along the log and are `>= base_epoch` only where the log is a
//!   legitimate continuation (the caller truncates otherwise, see `Log::advance_base`).

use std::collections::VecDeque;

use crate::types::{Epoch, SeqNo};

use super::{Membership, Record};

/// Records after a base, in seq order and contiguous.
#[derive(Debug, Clone, Default)]
pub struct Log {
    base: SeqNo,
    base_epoch: Epoch,
    /// The configuration in force at `base` (`None`: genesis).
    base_membership: Option<Membership>,
    records: VecDeque<Record>,
    /// Seqs of the configuration records in `records`, ascending.
    config_seqs: Vec<SeqNo>,
}

/// What [`Log::advance_base`] did to the tail after the new base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BaseAdvance {
    /// The new base is not above the old one: nothing changed.
    Unchanged,
    /// Records up to the base were dropped; the rest continues the flushed prefix.
    Dropped,
    /// Our record at the new base differed from the flushed one (or we had none), so the
    /// tail after it was not a continuation of the committed log and was removed: the caller
    /// must persist a truncation after the new base.
    DroppedAndTruncated,
}

impl Log {
    /// A log starting after `base` (whose record has `base_epoch`, and where
    /// `base_membership` is in force), holding `records`.
    ///
    /// Records at or below `base` are skipped; the rest must be contiguous from `base + 1`
    /// (a recovered WAL is); the first gap ends the log.
    #[must_use]
    pub fn new(
        base: SeqNo,
        base_epoch: Epoch,
        base_membership: Option<Membership>,
        records: Vec<Record>,
    ) -> Self {
        let mut log = Self {
            base,
            base_epoch,
            base_membership,
            records: VecDeque::new(),
            config_seqs: Vec::new(),
        };
        for r in records {
            if r.seq <= base {
                continue;
            }
            if r.seq != log.last_seq().next() {
                break;
            }
            if r.membership.is_some() {
                log.config_seqs.push(r.seq);
            }
            log.records.push_back(r);
        }
        log
    }

    /// The configuration in force after the record at `seq` (at least the base): the newest
    /// configuration record at or before it, else the base's. `None`: genesis.
    #[must_use]
    pub fn membership_at(&self, seq: SeqNo) -> Option<&Membership> {
        self.config_seqs
            .iter()
            .rev()
            .find(|s| **s <= seq)
            .and_then(|s| self.get(*s))
            .and_then(|r| r.membership.as_ref())
            .or(self.base_membership.as_ref())
    }

    /// The configuration in force at the end of the log (`None`: genesis).
    #[must_use]
    pub fn membership(&self) -> Option<&Membership> {
        self.membership_at(self.last_seq())
    }

    /// Seq of the newest configuration record in the log (after the base), if any.
    #[must_use]
    pub fn last_config_seq(&self) -> Option<SeqNo> {
        self.config_seqs.last().copied()
    }

    /// The configuration in force at the base (`None`: genesis).
    #[must_use]
    pub fn base_membership(&self) -> Option<&Membership> {
        self.base_membership.as_ref()
    }

    /// Seq of the last flushed record (everything up to it is in segments).
    #[must_use]
    pub fn base(&self) -> SeqNo {
        self.base
    }

    /// Epoch of the record at [`Log::base`].
    #[must_use]
    pub fn base_epoch(&self) -> Epoch {
        self.base_epoch
    }

    /// Seq of the last record (the base if the log is empty).
    #[must_use]
    pub fn last_seq(&self) -> SeqNo {
        self.records.back().map_or(self.base, |r| r.seq)
    }

    /// Epoch of the last record (the base's if the log is empty).
    #[must_use]
    pub fn last_epoch(&self) -> Epoch {
        self.records.back().map_or(self.base_epoch, |r| r.epoch)
    }

    /// Number of records after the base.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record follows the base.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn index(&self, seq: SeqNo) -> Option<usize> {
        let off = seq.0.checked_sub(self.base.0)?.checked_sub(1)?;
        usize::try_from(off).ok()
    }

    /// The record at `seq`, if it is after the base and in the log.
    #[must_use]
    pub fn get(&self, seq: SeqNo) -> Option<&Record> {
        self.records.get(self.index(seq)?)
    }

    /// Epoch of the record at `seq`: the base's at the base, `None` below it or past the end.
    #[must_use]
    pub fn epoch_at(&self, seq: SeqNo) -> Option<Epoch> {
        if seq == self.base {
            Some(self.base_epoch)
        } else {
            self.get(seq).map(|r| r.epoch)
        }
    }

    /// Bytes of the keys, values and content types of the records after `seq` (those in the
    /// log: nothing at or below the base, which is in segments): what a replica whose log
    /// ends at `seq` still has to receive (design note 0009 §7, a learner's bytes behind).
    #[must_use]
    pub fn bytes_after(&self, seq: SeqNo) -> u64 {
        self.range(seq, self.last_seq())
            .flat_map(|r| &r.entries)
            .map(|e| e.data_len() as u64)
            .sum()
    }

    /// Records with `after < seq <= upto`, in order.
    pub fn range(&self, after: SeqNo, upto: SeqNo) -> impl Iterator<Item = &Record> {
        let from = after.max(self.base);
        let skip = usize::try_from(from.0 - self.base.0).unwrap_or(usize::MAX);
        self.records
            .iter()
            .skip(skip)
            .take_while(move |r| r.seq <= upto)
    }

    /// The last seq of the run of records that ends at `seq` and shares its epoch, minus one:
    /// where a follower whose record at `seq` conflicts asks the leader to resume from.
    #[must_use]
    pub fn before_epoch_run(&self, seq: SeqNo) -> SeqNo {
        let Some(e) = self.get(seq).map(|r| r.epoch) else {
            return self.base.min(seq);
        };
        let mut s = seq;
        while s > self.base && self.get(s).is_some_and(|r| r.epoch == e) {
            s = SeqNo(s.0 - 1);
        }
        s
    }

    /// Appends `r`, which must be the next seq. Returns false (and ignores it) otherwise.
    pub fn push(&mut self, r: Record) -> bool {
        if r.seq != self.last_seq().next() || r.epoch < self.last_epoch() {
            return false;
        }
        if r.membership.is_some() {
            self.config_seqs.push(r.seq);
        }
        self.records.push_back(r);
        true
    }

    /// Removes every record after `after` (never the base). Returns the removed records.
    pub fn truncate_after(&mut self, after: SeqNo) -> Vec<Record> {
        let keep = usize::try_from(after.0.saturating_sub(self.base.0)).unwrap_or(usize::MAX);
        if keep >= self.records.len() {
            return Vec::new();
        }
        self.config_seqs.retain(|s| *s <= after);
        self.records.split_off(keep).into()
    }

    /// Applies a manifest whose flushed prefix ends at `seq` with a record of `epoch`, and
    /// which records `membership` in force there (`None`: genesis).
    ///
    /// Records up to `seq` are dropped (they are in segments). If our record at `seq` has a
    /// different epoch, or we have none there, our tail is not a continuation of the committed
    /// log (a divergent, never-committed leftover: any committed record after `seq` has an
    /// epoch `>= epoch` and follows the committed record at `seq`), so it is removed too.
    pub(crate) fn advance_base(
        &mut self,
        seq: SeqNo,
        epoch: Epoch,
        membership: Option<Membership>,
    ) -> BaseAdvance {
        if seq <= self.base {
            return BaseAdvance::Unchanged;
        }
        let continues = self.get(seq).is_some_and(|r| r.epoch == epoch);
        let had_tail = self.last_seq() > seq;
        if continues {
            let derived = self.membership_at(seq).cloned();
            let drop = usize::try_from(seq.0 - self.base.0).unwrap_or(usize::MAX);
            self.records.drain(..drop.min(self.records.len()));
            self.config_seqs.retain(|s| *s > seq);
            // Both are the configuration in force at a committed seq; ours is as good as the
            // manifest's (a manifest of an older format records none).
            self.base_membership = membership.or(derived);
        } else {
            self.records.clear();
            self.config_seqs.clear();
            self.base_membership = membership;
        }
        self.base = seq;
        self.base_epoch = epoch;
        if !continues && had_tail {
            BaseAdvance::DroppedAndTruncated
        } else {
            BaseAdvance::Dropped
        }
    }

    /// Checks contiguity and epoch monotonicity; the first broken rule, if any.
    pub fn check(&self) -> Result<(), &'static str> {
        let mut seq = self.base;
        let mut epoch = Epoch(0);
        for r in &self.records {
            if r.seq != seq.next() {
                return Err("log is not contiguous");
            }
            if r.epoch < epoch {
                return Err("log epochs decrease");
            }
            seq = r.seq;
            epoch = r.epoch;
        }
        Ok(())
    }
}
