//! The caching reader (design note 0014): a gateway that revalidates keys with the leader,
//! asks for a read lease with each revalidation, and answers strong reads from its cache,
//! without a round trip, while the lease (measured on its own drifting clock from when it
//! sent the request) holds. Every read it answers goes into the history that the
//! linearizability check sees, so a leader that lets a write commit under an outstanding
//! read lease (or hands the shard over under one) fails the run.
//!
//! Like the gateway, the reader also keeps the shard's latest lease by its mark (the
//! leader's epoch and commit point at the grant) and serves any key it last read under a
//! lease of that mark while the shard's lease holds: a renewal through one key renews every
//! key read at the same committed state. A mark that does not change with commits lets it
//! serve a key older than a write, which the history check catches.

use std::collections::BTreeMap;

use bytes::Bytes;
use rand::Rng;

use crate::replica::{LeaseMark, Role};

use super::history::HistOp;
use super::{Ev, MS, Sim};

/// The history's client id of the caching reader.
const READER: usize = 200;

/// What the reader knows of a key: the value a leased answer confirmed, the end of its
/// lease on the reader's clock (µs; 0: not leased), and the lease's mark.
#[derive(Debug)]
struct Cached {
    value: Option<Bytes>,
    until: u64,
    mark: Option<LeaseMark>,
}

/// The reader's cache, and the shard's latest lease: its mark and the latest end of a
/// lease of that mark (reader's clock, µs).
#[derive(Debug, Default)]
pub(crate) struct CachingReader {
    cache: BTreeMap<Bytes, Cached>,
    shard: Option<(LeaseMark, u64)>,
    /// Its clock's rate error (parts per million).
    pub(crate) drift_ppm: i64,
}

impl CachingReader {
    /// Whether a lease vouches for `c` at `local`: its own, or the shard's lease of its mark.
    fn leased(&self, c: &Cached, local: u64) -> bool {
        local < c.until
            || matches!((c.mark, self.shard), (Some(m), Some((sm, until))) if m == sm && local < until)
    }
}

/// A leased revalidation on its way back to the reader.
#[derive(Debug)]
pub(crate) struct LeaseAnswer {
    key: Bytes,
    value: Option<Bytes>,
    lease_ms: u64,
    mark: Option<LeaseMark>,
    sent_local: u64,
    invoked: u64,
}

impl Sim {
    /// The reader's clock in µs.
    fn reader_local(&self) -> u64 {
        let ppm = self.reader.drift_ppm;
        ((i128::from(self.now) * (1_000_000 + i128::from(ppm))) / 1_000_000) as u64
    }

    /// A strong read by the caching reader: from its cache while the key's lease holds,
    /// else a leased revalidation sent to the node it believes leads.
    pub(super) fn lease_read(&mut self) {
        let key = Bytes::from(format!("k{}", self.rng.random_range(0..4)));
        let local = self.reader_local();
        if let Some(c) = self.reader.cache.get(&key)
            && self.reader.leased(c, local)
        {
            self.stats.leased_reads += 1;
            if local >= c.until {
                self.stats.mark_leased_reads += 1;
            }
            let value = c.value.clone();
            self.history
                .push(HistOp::read(READER, key, value, self.now, self.now));
            return;
        }
        let leader = (0..self.nodes.len()).find(|j| {
            self.nodes[*j]
                .rep
                .as_ref()
                .is_some_and(|r| r.role() == Role::Leader)
        });
        let node = match leader {
            Some(l) if self.rng.random_bool(0.9) => l,
            _ => self.rng.random_range(0..self.nodes.len()),
        };
        let t = self.now + self.net_delay();
        let invoked = self.now;
        self.at(
            t,
            Ev::LeaseArrive {
                node,
                key,
                sent_local: local,
                invoked,
            },
        );
    }

    fn net_delay(&mut self) -> u64 {
        if self.faulty() && self.rng.random_bool(0.05) {
            self.rng.random_range(20 * MS..400 * MS)
        } else {
            self.rng.random_range(MS..15 * MS)
        }
    }

    /// The revalidation reaches node `i`: a serving leader with a valid lease grants a read
    /// lease (or refuses one), then reads the key, and answers.
    pub(super) fn lease_arrive(&mut self, i: usize, key: Bytes, sent_local: u64, invoked: u64) {
        let now = self.local(i);
        let Some(rep) = self.nodes[i].rep.as_mut() else {
            return;
        };
        if !rep.can_serve_strong_read(now) {
            return; // not_leader: the reader tries again on its next read
        }
        let lease = rep.grant_read_lease(now).ok();
        let lease_ms = lease.map_or(0, |l| l.duration.0);
        if lease_ms > 0 {
            self.stats.read_leases += 1;
        }
        // The value is read after the grant is recorded; the node's state is applied up to
        // its commit point after every input.
        let value = self.nodes[i].kv.get(&key).cloned();
        if self.faulty() && self.rng.random_bool(0.05) {
            return; // the answer is lost
        }
        let t = self.now + self.net_delay();
        let answer = LeaseAnswer {
            key,
            value,
            lease_ms,
            mark: lease.map(|l| l.mark),
            sent_local,
            invoked,
        };
        self.at(t, Ev::LeaseAnswer(Box::new(answer)));
    }

    /// The answer is back: the read returns, and the cache keeps the value with its lease
    /// (counted from the send) and mark; a lease of the shard's mark extends the shard's
    /// lease, a later mark replaces it.
    pub(super) fn lease_answer(&mut self, a: LeaseAnswer) {
        self.history.push(HistOp::read(
            READER,
            a.key.clone(),
            a.value.clone(),
            a.invoked,
            self.now,
        ));
        let (until, mark) = match a.mark {
            Some(m) if a.lease_ms > 0 => (a.sent_local + a.lease_ms * 1000, Some(m)),
            _ => (0, None),
        };
        if let Some(m) = mark {
            self.reader.shard = match self.reader.shard {
                Some((sm, su)) if sm == m => Some((m, su.max(until))),
                Some((sm, su)) if sm > m => Some((sm, su)),
                _ => Some((m, until)),
            };
        }
        self.reader.cache.insert(
            a.key,
            Cached {
                value: a.value,
                until,
                mark,
            },
        );
    }
}
