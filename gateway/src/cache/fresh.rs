//! Freshness facts: what this gateway knows about how current each key's state is (design
//! note 0008, invariant 4). In memory only, so a restarted gateway knows nothing and serves
//! nothing from its disk tier before a leader confirmed it.
//!
//! A [`Fact`] says: the key's committed state was [`Fact::state`] at some instant in
//! `[verified_at, learned_at]` (monotonic instants of this process). Facts come from flights
//! (`verified_at` = when the request was closed for sending) and from this gateway's own
//! writes (`verified_at` = when the write was sent). [`Facts::learn`] keeps the later of two
//! facts when it can tell which is later, and forgets the key when it cannot.

use std::time::Duration;

use bytes::Bytes;
use moka::ops::compute::Op;
use tokio::time::Instant;

/// A key's committed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// A live value at this version.
    Present(u64),
    /// No live value; the tombstone's version when this gateway deleted it, `None` when a
    /// read found nothing (its version is unknown).
    Absent(Option<u64>),
}

/// What was true of a key at some instant in `[verified_at, learned_at]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fact {
    pub(crate) state: State,
    pub(crate) verified_at: Instant,
    pub(crate) learned_at: Instant,
}

impl Fact {
    fn version(&self) -> Option<u64> {
        match self.state {
            State::Present(v) => Some(v),
            State::Absent(v) => v,
        }
    }

    /// Whether the fact's instant is no earlier than `bound` (an eventual read's arrival
    /// minus its `max_staleness`; `None` when that lies before this process started).
    pub(crate) fn verified_since(&self, bound: Option<Instant>) -> bool {
        bound.is_none_or(|b| self.verified_at >= b)
    }
}

/// Which of two facts about one key to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    Old,
    New,
    /// They cannot be ordered: forget the key (always safe: it costs a round trip).
    Neither,
}

/// Orders `old` and `new`: by version when both are known (a key's versions grow with
/// commit order), else by their intervals when those do not overlap.
pub(crate) fn order(old: &Fact, new: &Fact) -> Keep {
    match (old.version(), new.version()) {
        (Some(a), Some(b)) if b > a => Keep::New,
        (Some(a), Some(b)) if b < a => Keep::Old,
        // The same state: keep the later confirmation.
        (Some(_), Some(_)) if new.verified_at >= old.verified_at => Keep::New,
        (Some(_), Some(_)) => Keep::Old,
        _ if new.verified_at > old.learned_at => Keep::New,
        _ if old.verified_at > new.learned_at => Keep::Old,
        _ => Keep::Neither,
    }
}

/// Memory per fact besides its key, for the bound.
const FACT_OVERHEAD: u32 = 96;

/// The facts table: bounded by bytes, facts older than the largest `max_staleness`
/// dropped.
pub(crate) struct Facts {
    table: moka::sync::Cache<Bytes, Fact>,
}

impl std::fmt::Debug for Facts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facts")
            .field("entries", &self.table.entry_count())
            .finish()
    }
}

impl Facts {
    /// A table of at most about `bytes` bytes whose facts live at most `ttl`.
    pub(crate) fn new(bytes: u64, ttl: Duration) -> Self {
        Self {
            table: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|k: &Bytes, _: &Fact| {
                    u32::try_from(k.len())
                        .unwrap_or(u32::MAX)
                        .saturating_add(FACT_OVERHEAD)
                })
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The fact about `key`, if any.
    pub(crate) fn get(&self, key: &Bytes) -> Option<Fact> {
        self.table.get(key)
    }

    /// Records `fact` about `key` against the one held (atomically per key).
    pub(crate) fn learn(&self, key: &Bytes, fact: Fact) {
        let _ = self
            .table
            .entry(key.clone())
            .and_compute_with(|old| match old {
                None => Op::Put(fact),
                Some(old) => match order(old.value(), &fact) {
                    Keep::New => Op::Put(fact),
                    Keep::Old => Op::Nop,
                    Keep::Neither => Op::Remove,
                },
            });
    }

    /// Forgets what is known about `key`.
    pub(crate) fn forget(&self, key: &Bytes) {
        self.table.invalidate(key);
    }
}
