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
//! than the read's bound. A flight's answer is published through a `watch` channel; the task
//! that drives the flight is spawned, so a reader that goes away (client disconnect, timeout)
//! cancels nobody else's read.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;
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
    /// The value (or its absence) came from the node.
    Miss,
}

impl Answer {
    /// The `X-TierKV-Cache` header value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Revalidated => "revalidated",
            Self::Miss => "miss",
        }
    }
}

/// A flight's answer: the key's live value at an instant after `sent_at` (none: absent).
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) value: Option<CachedValue>,
    pub(crate) answer: Answer,
}

/// What members of a flight receive.
pub(crate) type FlightResult = Result<Resolved, BackendError>;

/// One upstream request for one key.
#[derive(Debug)]
pub(crate) struct Flight {
    /// Set (once) when the flight closes, under the table's lock.
    sent_at: OnceLock<Instant>,
    done: watch::Receiver<Option<FlightResult>>,
}

impl Flight {
    /// Waits for the flight's answer.
    pub(crate) async fn wait(&self) -> FlightResult {
        let mut rx = self.done.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or(Err(ENDED)),
            Err(_) => Err(ENDED),
        }
    }
}

/// The answer of a flight whose task ended without one (it panicked).
const ENDED: BackendError = BackendError::Protocol {
    node: None,
    what: "a coalesced read ended without an answer",
};

/// The driving side of a new flight.
pub(crate) struct Driver {
    pub(crate) flight: Arc<Flight>,
    pub(crate) tx: watch::Sender<Option<FlightResult>>,
    /// The key's oldest in-flight flight when this one was opened with [`MAX_IN_FLIGHT`]
    /// already in flight: it is sent after that one ends.
    pub(crate) previous: Option<Arc<Flight>>,
}

/// What a read does.
pub(crate) enum Joined {
    /// Wait for someone else's flight.
    Member(Arc<Flight>),
    /// Drive a new flight (and wait for it like the others).
    Driver(Driver),
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
    slots: Mutex<HashMap<Bytes, Slot>>,
}

fn new_driver(previous: Option<Arc<Flight>>) -> Driver {
    let (tx, done) = watch::channel(None);
    Driver {
        flight: Arc::new(Flight {
            sent_at: OnceLock::new(),
            done,
        }),
        tx,
        previous,
    }
}

impl Flights {
    /// Joins or opens a flight for `key`. `bound`: `None` for a strong read (only an open
    /// flight will do); `Some(b)` for an eventual read, which may also join the in-flight
    /// flight if it was sent at or after `b` (`Some(None)`: any in-flight flight).
    pub(crate) fn join(&self, key: &Bytes, bound: Option<Option<Instant>>) -> Joined {
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
        let driver = new_driver(previous);
        slot.open = Some(Arc::clone(&driver.flight));
        Joined::Driver(driver)
    }

    /// Closes `flight` (nobody joins it from now on) and returns its `sent_at`: call right
    /// before handing its request to the RPC layer.
    pub(crate) fn close(&self, key: &Bytes, flight: &Arc<Flight>) -> Instant {
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

    /// Removes `flight` once its answer is published.
    pub(crate) fn finish(&self, key: &Bytes, flight: &Arc<Flight>) {
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
    pub(crate) fn alone() -> Driver {
        new_driver(None)
    }

    /// Keys with a flight (tests).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.slots.lock().len()
    }
}
