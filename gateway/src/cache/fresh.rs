//! Freshness facts: what this gateway knows about how current each key's state is (design
//! note 0008, invariant 4). In memory only, so a restarted gateway knows nothing and serves
//! nothing from its disk tier before a leader confirmed it.
//!
//! A [`Fact`] says: the key's committed state was [`Fact::state`] at some instant in
//! `[verified_at, learned_at]` (monotonic instants of this process). Facts come from flights
//! (`verified_at` = when the request was closed for sending) and from this gateway's own
//! writes (`verified_at` = when the write was sent). [`Facts::learn`] keeps the later of two
//! facts when it can tell which is later, and forgets the key when it cannot.

use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hashbrown::{HashMap, HashTable};
use parking_lot::{Mutex, RwLock};
use tierkv_engine::replica::LeaseMark;
use tierkv_engine::types::ShardId;
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

/// What was true of a key at some instant in `[verified_at, learned_at]`, and, with a read
/// lease, at every instant of `[verified_at, leased_until)` (design note 0014) and while the
/// shard holds a lease of the same mark ([`ShardLeases`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fact {
    pub(crate) state: State,
    pub(crate) verified_at: Instant,
    pub(crate) learned_at: Instant,
    /// End of the read lease the leader granted with this state (none: not leased).
    pub(crate) leased_until: Option<Instant>,
    /// The mark of that lease: the shard's committed state this one was read from.
    pub(crate) mark: Option<LeaseMark>,
}

impl Fact {
    fn version(&self) -> Option<u64> {
        match self.state {
            State::Present(v) => Some(v),
            State::Absent(v) => v,
        }
    }

    /// Whether a read lease vouches for the state at `now`.
    pub(crate) fn leased_at(&self, now: Instant) -> bool {
        self.leased_until.is_some_and(|t| now < t)
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
const FACT_OVERHEAD: u64 = 96;

/// Tables of the facts (a power of two).
const SHARDS: usize = 16;

/// A fact with its key.
struct Held {
    hash: u64,
    key: Bytes,
    fact: Fact,
}

impl Held {
    fn weight(&self) -> u64 {
        self.key.len() as u64 + FACT_OVERHEAD
    }
}

#[derive(Default)]
struct Table {
    map: HashTable<Held>,
    bytes: u64,
}

/// The facts table: [`SHARDS`] mutex-guarded hash tables, each bounded to its share of the
/// bytes; facts verified longer than the largest `max_staleness` ago count as absent. A
/// table that a new fact would overfill first drops such expired facts and then, if that
/// freed less than a quarter of its bytes, the least recently verified quarter of its facts
/// (dropping a fact is always safe: it costs a round trip). One lookup or update hashes the
/// key once and takes one table's lock.
pub(crate) struct Facts {
    tables: [Mutex<Table>; SHARDS],
    hasher: foldhash::quality::RandomState,
    per_table_bytes: u64,
    ttl: Duration,
}

impl std::fmt::Debug for Facts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facts")
            .field("entries", &self.len())
            .finish()
    }
}

impl Facts {
    /// A table of at most about `bytes` bytes whose facts live at most `ttl`.
    pub(crate) fn new(bytes: u64, ttl: Duration) -> Self {
        Self {
            tables: std::array::from_fn(|_| Mutex::new(Table::default())),
            hasher: foldhash::quality::RandomState::default(),
            per_table_bytes: (bytes / SHARDS as u64).max(4 * (FACT_OVERHEAD + 64)),
            ttl,
        }
    }

    fn table(&self, key: &[u8]) -> (u64, &Mutex<Table>) {
        let hash = self.hasher.hash_one(key);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the top bits pick one of SHARDS tables"
        )]
        let i = (hash >> (64 - SHARDS.trailing_zeros())) as usize;
        (hash, &self.tables[i])
    }

    fn expired(&self, f: &Fact, now: Instant) -> bool {
        now.saturating_duration_since(f.verified_at) > self.ttl
    }

    /// The fact about `key`, if any.
    pub(crate) fn get(&self, key: &Bytes) -> Option<Fact> {
        let (hash, t) = self.table(key);
        let t = t.lock();
        let f = t.map.find(hash, |h| h.hash == hash && h.key == *key)?.fact;
        (!self.expired(&f, Instant::now())).then_some(f)
    }

    /// Records `fact` about `key` against the one held (atomically per key).
    pub(crate) fn learn(&self, key: &Bytes, fact: Fact) {
        let (hash, t) = self.table(key);
        let mut t = t.lock();
        let now = Instant::now();
        match t.map.find_entry(hash, |h| h.hash == hash && h.key == *key) {
            Ok(mut e) => {
                let held = e.get_mut();
                let keep = if self.expired(&held.fact, now) {
                    Keep::New
                } else {
                    order(&held.fact, &fact)
                };
                match keep {
                    Keep::New => {
                        // Two true statements of one state: its lease is the longer one, its
                        // mark the later one (the shard's lease follows the latest mark).
                        let same = held.fact.state == fact.state && fact.version().is_some();
                        let (lease, mark) = if same {
                            (
                                held.fact.leased_until.max(fact.leased_until),
                                held.fact.mark.max(fact.mark),
                            )
                        } else {
                            (fact.leased_until, fact.mark)
                        };
                        held.fact = Fact {
                            leased_until: lease,
                            mark,
                            ..fact
                        };
                    }
                    Keep::Old => {}
                    Keep::Neither => {
                        let (held, _) = e.remove();
                        t.bytes -= held.weight();
                    }
                }
            }
            Err(_) => {
                let held = Held {
                    hash,
                    key: key.clone(),
                    fact,
                };
                let w = held.weight();
                if t.bytes + w > self.per_table_bytes {
                    self.sweep(&mut t, now);
                }
                t.bytes += w;
                t.map.insert_unique(hash, held, |h| h.hash);
            }
        }
    }

    /// Makes room in a full table.
    #[cold]
    fn sweep(&self, t: &mut Table, now: Instant) {
        let budget = self.per_table_bytes;
        let mut freed = 0;
        t.map.retain(|h| {
            let keep = !self.expired(&h.fact, now);
            if !keep {
                freed += h.weight();
            }
            keep
        });
        t.bytes -= freed;
        if t.bytes + budget / 4 > budget && !t.map.is_empty() {
            let mut ats: Vec<Instant> = t.map.iter().map(|h| h.fact.verified_at).collect();
            let quarter = (ats.len() / 4).min(ats.len() - 1);
            let (_, cut, _) = ats.select_nth_unstable(quarter);
            let cut = *cut;
            let mut freed = 0;
            t.map.retain(|h| {
                let keep = h.fact.verified_at > cut;
                if !keep {
                    freed += h.weight();
                }
                keep
            });
            t.bytes -= freed;
        }
    }

    /// Forgets what is known about `key`.
    pub(crate) fn forget(&self, key: &Bytes) {
        let (hash, t) = self.table(key);
        let mut t = t.lock();
        if let Ok(e) = t.map.find_entry(hash, |h| h.hash == hash && h.key == *key) {
            let (held, _) = e.remove();
            t.bytes -= held.weight();
        }
    }

    /// Facts held.
    pub(crate) fn len(&self) -> usize {
        self.tables.iter().map(|t| t.lock().map.len()).sum()
    }

    /// Bytes the facts are counted at (tests).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.lock().bytes).sum()
    }
}

/// Per shard, the latest read lease this gateway holds by its mark (design note 0014): the
/// latest end of a lease of that mark. Leases of one mark vouch for one committed state of
/// the shard, constant from the first grant to the end of the last one's hold, so every
/// fact read under that mark is current until then, whichever key's read renewed it.
#[derive(Debug, Default)]
pub(crate) struct ShardLeases {
    leases: RwLock<HashMap<ShardId, ShardLease>>,
}

/// One shard's lease.
#[derive(Debug)]
struct ShardLease {
    mark: LeaseMark,
    until: Instant,
    /// The length of the latest lease that extended it: a renewal is due in its second half.
    length: Duration,
    /// A renewal was started and has not ended (one at a time per shard).
    renewing: AtomicBool,
}

impl ShardLeases {
    /// A lease of `mark` on `shard`, `length` long, that ends at `until`: extends the held
    /// lease of the same mark, replaces one of an earlier mark (its facts then need a round
    /// trip again), leaves one of a later mark.
    pub(crate) fn extend(&self, shard: ShardId, mark: LeaseMark, until: Instant, length: Duration) {
        let mut leases = self.leases.write();
        let fresh = ShardLease {
            mark,
            until,
            length,
            renewing: AtomicBool::new(false),
        };
        match leases.entry(shard) {
            hashbrown::hash_map::Entry::Vacant(e) => {
                e.insert(fresh);
            }
            hashbrown::hash_map::Entry::Occupied(mut e) => {
                let held = e.get_mut();
                if held.mark == mark {
                    if until > held.until {
                        held.until = until;
                        held.length = length;
                    }
                } else if held.mark < mark {
                    *held = fresh;
                }
            }
        }
    }

    /// Whether the shard's lease vouches for a fact of `mark` at `now`.
    pub(crate) fn vouches(&self, shard: ShardId, mark: Option<LeaseMark>, now: Instant) -> bool {
        let Some(mark) = mark else {
            return false;
        };
        self.leases
            .read()
            .get(&shard)
            .is_some_and(|l| l.mark == mark && now < l.until)
    }

    /// Whether the caller should renew the shard's lease now, ahead of its end: it is in the
    /// second half of its latest length and no renewal is under way (the caller then owns
    /// the renewal and calls [`ShardLeases::renewed`] when it ends). Reads of a busy shard so
    /// never all find its lease ended at once and go to the leader together.
    pub(crate) fn renewal_due(&self, shard: ShardId, now: Instant) -> bool {
        self.leases.read().get(&shard).is_some_and(|l| {
            now < l.until
                && l.until.saturating_duration_since(now) < l.length / 2
                && !l.renewing.swap(true, Ordering::AcqRel)
        })
    }

    /// A renewal [`ShardLeases::renewal_due`] handed out ended (renewed or not).
    pub(crate) fn renewed(&self, shard: ShardId) {
        if let Some(l) = self.leases.read().get(&shard) {
            l.renewing.store(false, Ordering::Release);
        }
    }
}
