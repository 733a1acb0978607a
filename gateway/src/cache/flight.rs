//! Flights: one upstream request per key shared by the reads that may use its answer
//! (design note 0008, invariant 3).
//!
//! Per key there is at most one *open* flight (its request not handed to the RPC layer yet)
//! and up to [`MAX_IN_FLIGHT`] *in-flight* ones (closed at `sent_at`, answer pending): an
//! open flight is sent at once while fewer are in flight, else when the oldest one ends, so
//! a hot key costs its leader a bounded number of requests per round trip, and a warm key
//! pays no extra wait. Joining and closing
//! happen under one lock, so a read that joins an open flight arrived before that flight's
//! `sent_at`, and the leader's answer describes an instant after it. A strong read joins only
//! an open flight; an eventual read also joins the in-flight one when it was sent no earlier
//! than the read's bound.
//!
//! The read that opens a flight drives it in its own request (no task is spawned per read)
//! and publishes the answer to the members. If that read goes away before it answered
//! (client disconnect, timeout, a panic), the flight is *abandoned*: it leaves the table and
//! its members start over (join or open a flight again, which for a strong read is still one
//! sent after it arrived), so a reader that goes away delays the others but fails none.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::store::CachedValue;
use crate::backend::BackendError;

/// How a read was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// From the cache, without a round trip.
    Hit,
    /// The leader confirmed the cached version.
    Revalidated,
    /// A strong read answered from the cache without a round trip, under a read lease the
    /// leader granted with an earlier revalidation (design note 0014).
    Leased,
    /// The value (or its absence) came from the node.
    Miss,
}

impl Answer {
    /// The `X-TierKV-Cache` header value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Revalidated => "revalidated",
            Self::Leased => "leased",
            Self::Miss => "miss",
        }
    }
}

/// A flight's answer: the key's live value at an instant after `sent_at` (none: absent).
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) value: Option<CachedValue>,
    pub(crate) answer: Answer,
    /// The read lease that came with the answer, counted from `sent_at`.
    pub(crate) lease: Option<crate::backend::Lease>,
}

/// What members of a flight receive.
pub(crate) type FlightResult = Result<Resolved, BackendError>;

/// One upstream request for one key.
#[derive(Debug, Default)]
pub(crate) struct Flight {
    /// Set (once) when the flight closes, under the table's lock.
    sent_at: OnceLock<Instant>,
    /// The answer, or `None` when the driving read went away without one.
    outcome: OnceLock<Option<FlightResult>>,
    done: Notify,
}

impl Flight {
    /// Waits for the flight's answer; `None`: the flight was abandoned (start over).
    pub(crate) async fn wait(&self) -> Option<FlightResult> {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            // Registered before looking, so a publication in between is not missed.
            notified.as_mut().enable();
            if let Some(o) = self.outcome.get() {
                return o.clone();
            }
            notified.await;
        }
    }

    /// Publishes the flight's outcome (the first one stays) and wakes its members.
    fn publish(&self, outcome: Option<FlightResult>) {
        if self.outcome.set(outcome).is_ok() {
            self.done.notify_waiters();
        }
    }
}

/// The driving side of a new flight: the read that holds it sends the request and calls
/// [`Driver::answer`]; dropped without answering, it abandons the flight. Either way the
/// flight leaves the table.
pub(crate) struct Driver<'a> {
    pub(crate) flight: Arc<Flight>,
    /// The key's oldest in-flight flight when this one was opened with [`MAX_IN_FLIGHT`]
    /// already in flight: it is sent after that one ends.
    pub(crate) previous: Option<Arc<Flight>>,
    /// The table and key the flight is listed under (none: shared with nobody).
    listed: Option<(&'a Flights, Bytes)>,
}

impl Driver<'_> {
    /// Closes the flight (nobody joins it from now on) and returns its `sent_at`: call right
    /// before handing its request to the RPC layer.
    pub(crate) fn close(&self) -> Instant {
        match &self.listed {
            Some((flights, key)) => flights.close(key, &self.flight),
            None => *self.flight.sent_at.get_or_init(Instant::now),
        }
    }

    /// Takes the flight off the table and hands `result` to its members, if it has any
    /// (nobody can join any more, so a flight held here alone has none).
    pub(crate) fn answer(&mut self, result: &FlightResult) {
        if let Some((flights, key)) = self.listed.take() {
            flights.finish(&key, &self.flight);
        }
        if Arc::strong_count(&self.flight) > 1 {
            self.flight.publish(Some(result.clone()));
        }
    }
}

impl Drop for Driver<'_> {
    fn drop(&mut self) {
        // Leave the table first: nobody joins from now on, and whoever holds the flight
        // already finds the outcome below.
        if let Some((flights, key)) = &self.listed {
            flights.finish(key, &self.flight);
        }
        // Abandoned unless answered (then this does nothing).
        self.flight.publish(None);
    }
}

/// What a read does.
pub(crate) enum Joined<'a> {
    /// Wait for someone else's flight.
    Member(Arc<Flight>),
    /// Drive a new flight.
    Driver(Driver<'a>),
}

/// Flights of one key sent and not answered yet, at most; a new one waits for the oldest.
pub(crate) const MAX_IN_FLIGHT: usize = 2;

#[derive(Debug, Default)]
struct Slot {
    open: Option<Arc<Flight>>,
    /// Oldest first.
    inflight: VecDeque<Arc<Flight>>,
}

/// The flights of every key with one pending.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    /// Never held across an await.
    slots: Mutex<HashMap<Bytes, Slot, foldhash::fast::RandomState>>,
}

impl Flights {
    /// Joins or opens a flight for `key`. `bound`: `None` for a strong read (only an open
    /// flight will do); `Some(b)` for an eventual read, which may also join the in-flight
    /// flight if it was sent at or after `b` (`Some(None)`: any in-flight flight).
    pub(crate) fn join(&self, key: &Bytes, bound: Option<Option<Instant>>) -> Joined<'_> {
        let mut slots = self.slots.lock();
        let slot = slots.entry(key.clone()).or_default();
        if let Some(b) = bound
            && let Some(f) = slot.inflight.back()
            && f.sent_at.get().is_some_and(|s| b.is_none_or(|b| *s >= b))
        {
            return Joined::Member(Arc::clone(f));
        }
        if let Some(f) = &slot.open {
            return Joined::Member(Arc::clone(f));
        }
        let previous = (slot.inflight.len() >= MAX_IN_FLIGHT)
            .then(|| slot.inflight.front().cloned())
            .flatten();
        let flight = Arc::new(Flight::default());
        slot.open = Some(Arc::clone(&flight));
        Joined::Driver(Driver {
            flight,
            previous,
            listed: Some((self, key.clone())),
        })
    }

    /// Closes `flight` (nobody joins it from now on) and returns its `sent_at`.
    fn close(&self, key: &Bytes, flight: &Arc<Flight>) -> Instant {
        let mut slots = self.slots.lock();
        let now = Instant::now();
        let sent_at = *flight.sent_at.get_or_init(|| now);
        let slot = slots.entry(key.clone()).or_default();
        if slot.open.as_ref().is_some_and(|f| Arc::ptr_eq(f, flight)) {
            slot.open = None;
        }
        slot.inflight.push_back(Arc::clone(flight));
        sent_at
    }

    /// Removes `flight` once its answer is published (or it was abandoned).
    fn finish(&self, key: &Bytes, flight: &Arc<Flight>) {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get_mut(key) {
            slot.inflight.retain(|f| !Arc::ptr_eq(f, flight));
            if slot.open.as_ref().is_some_and(|f| Arc::ptr_eq(f, flight)) {
                slot.open = None;
            }
            if slot.open.is_none() && slot.inflight.is_empty() {
                slots.remove(key);
            }
        }
    }

    /// A flight for one read, shared with nobody (coalescing off).
    pub(crate) fn alone() -> Driver<'static> {
        Driver {
            flight: Arc::new(Flight::default()),
            previous: None,
            listed: None,
        }
    }

    /// Keys with a flight (tests).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.slots.lock().len()
    }
}
