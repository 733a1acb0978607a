//! The caching reader (design note 0014): a gateway that revalidates keys with the leader,
//! asks for a read lease with each revalidation, and answers strong reads from its cache,
//! without a round trip, while the lease (measured on its own drifting clock from when it
//! sent the request) holds. Every read it answers goes into the history that the
//! linearizability check sees, so a leader that lets a write commit under an outstanding
//! read lease (or hands the shard over under one) fails the run.

use std::collections::BTreeMap;

use bytes::Bytes;
use rand::Rng;

use crate::replica::Role;

use super::history::HistOp;
use super::{Ev, MS, Sim};

/// The history's client id of the caching reader.
const READER: usize = 200;

/// The reader's cache: per key, the value a leased answer confirmed and the end of its
/// lease on the reader's clock (µs; 0: not leased).
#[derive(Debug, Default)]
pub(crate) struct CachingReader {
    cache: BTreeMap<Bytes, (Option<Bytes>, u64)>,
    /// Its clock's rate error (parts per million).
    pub(crate) drift_ppm: i64,
}

/// A leased revalidation on its way back to the reader.
#[derive(Debug)]
pub(crate) struct LeaseAnswer {
    key: Bytes,
    value: Option<Bytes>,
    lease_ms: u64,
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
        if let Some((value, until)) = self.reader.cache.get(&key)
            && local < *until
        {
            self.stats.leased_reads += 1;
            let value = value.clone();
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
        let lease_ms = rep.grant_read_lease(now).map_or(0, |d| d.0);
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
            sent_local,
            invoked,
        };
        self.at(t, Ev::LeaseAnswer(Box::new(answer)));
    }

    /// The answer is back: the read returns, and the cache keeps the value with its lease
    /// (counted from the send).
    pub(super) fn lease_answer(&mut self, a: LeaseAnswer) {
        self.history.push(HistOp::read(
            READER,
            a.key.clone(),
            a.value.clone(),
            a.invoked,
            self.now,
        ));
        let until = if a.lease_ms > 0 {
            a.sent_local + a.lease_ms * 1000
        } else {
            0
        };
        self.reader.cache.insert(a.key, (a.value, until));
    }
}
