//! A shard's part in the node's memory budget (design note 0007): freezing its memtable when
//! the node's scheduler says so, asking its leader to flush when it only follows the shard,
//! and, as leader, answering followers' flush requests (and refusing writes while a follower
//! is past its limit).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::shard::{Shard, ShardInner};
use crate::types::SeqNo;
use crate::write_buffers::Trigger;

/// How a follower's storage asks its leader to flush up to a seq (`hard`: this node is past
/// its limit, refuse writes). Set by the replication driver, which sends a `FlushRequest`
/// (note 0007); returns whether the request was queued.
pub type FlushRequester = Arc<dyn Fn(SeqNo, bool) -> bool + Send + Sync>;

/// Least time between two soft requests for one shard.
const SOFT_REQUEST_EVERY_MS: u64 = 1000;
/// Least time between two hard requests for one shard (the leader's refusal lasts
/// [`HARD_PRESSURE_MS`], so a follower that stays past its limit keeps it up).
const HARD_REQUEST_EVERY_MS: u64 = 250;
/// How long a leader refuses writes after a follower's hard request.
pub(crate) const HARD_PRESSURE_MS: u64 = 1000;
/// Least time between two freezes a leader makes for followers' requests.
const REQUEST_FREEZE_EVERY_MS: u64 = 500;

/// Wall-clock millis of rate limits and expiries (0: never).
#[derive(Debug, Default)]
pub(crate) struct PressureState {
    /// Follower: when it last sent a soft / hard request.
    soft_sent: AtomicU64,
    hard_sent: AtomicU64,
    /// Leader: when it last froze for a request.
    request_freeze: AtomicU64,
    /// Leader: writes are refused until then (a follower is past its limit).
    refuse_until: AtomicU64,
}

impl ShardInner {
    /// Write-buffer bytes of the active memtable.
    pub(crate) fn active_memory(&self) -> usize {
        self.current_view().active.memory_bytes()
    }

    /// Whether any memtable holds something not flushed yet.
    pub(crate) fn has_unflushed(&self) -> bool {
        let v = self.current_view();
        self.holds_unflushed(&v.active) || !v.frozen.is_empty()
    }

    /// Whether a frozen memtable waits for a flush (a follower: for its leader's).
    pub(crate) fn has_frozen(&self) -> bool {
        !self.current_view().frozen.is_empty()
    }

    /// Highest seq applied to the memtables.
    pub(crate) fn applied_seq(&self) -> SeqNo {
        SeqNo(self.applied.load(Ordering::SeqCst))
    }

    /// Freezes the active memtable for `why` if it holds unflushed data and, with `upto`,
    /// records at or below `upto` (those above are for a later flush). Returns whether it
    /// froze. A leader's flusher then flushes it; a follower keeps it until its leader's
    /// manifest covers it.
    pub(crate) fn freeze_for(&self, why: Trigger, upto: Option<SeqNo>) -> bool {
        let _s = self.apply_lock.lock();
        let view = self.current_view();
        if !self.holds_unflushed(&view.active) {
            return false;
        }
        if let Some(u) = upto
            && view.active.first_covered().is_none_or(|f| f > u)
        {
            return false;
        }
        self.rotate(&view);
        self.buffers.note_trigger(why);
        true
    }

    /// A follower asks its leader to flush up to `upto` (`hard`: and to refuse writes), at
    /// most once per second (hard: every 250 ms). Returns whether it asked.
    pub(crate) fn request_flush(&self, upto: SeqNo, hard: bool) -> bool {
        let Some(requester) = self.flush_requester.get() else {
            return false;
        };
        let now = self.clock.now_millis();
        let (last, every) = if hard {
            (&self.pressure.hard_sent, HARD_REQUEST_EVERY_MS)
        } else {
            (&self.pressure.soft_sent, SOFT_REQUEST_EVERY_MS)
        };
        let prev = last.load(Ordering::Relaxed);
        if prev != 0 && now < prev.saturating_add(every) {
            return false;
        }
        last.store(now, Ordering::Relaxed);
        let sent = requester(upto, hard);
        if sent {
            self.buffers.note_request_sent(hard);
        }
        sent
    }

    /// Whether a follower's hard request still refuses writes.
    pub(crate) fn refused_by_follower(&self) -> bool {
        self.clock.now_millis() < self.pressure.refuse_until.load(Ordering::Relaxed)
    }
}

impl Shard {
    /// Sets how this replica asks its leader to flush while it follows (once; later calls
    /// are ignored).
    pub fn set_flush_requester(&self, r: FlushRequester) {
        let _ = self.inner.flush_requester.set(r);
    }

    /// A follower asked this leader to flush up to `upto` (at most the commit point: the
    /// replica caps it). Freezes the active memtable if it holds records at or below `upto`
    /// (at most once per 500 ms for requests), which the flusher then flushes; a `hard`
    /// request also refuses writes to the shard for a second (the follower is past its
    /// limit and repeats it while it stays there).
    pub fn on_flush_request(&self, upto: SeqNo, hard: bool) {
        let inner = &self.inner;
        inner.buffers.note_request_received(hard);
        let now = inner.clock.now_millis();
        if hard {
            inner
                .pressure
                .refuse_until
                .fetch_max(now.saturating_add(HARD_PRESSURE_MS), Ordering::Relaxed);
        }
        if !inner.may_lead() {
            return;
        }
        let last = inner.pressure.request_freeze.load(Ordering::Relaxed);
        if last != 0 && now < last.saturating_add(REQUEST_FREEZE_EVERY_MS) {
            return;
        }
        if inner.freeze_for(Trigger::FlushRequest, Some(upto)) {
            inner.pressure.request_freeze.store(now, Ordering::Relaxed);
        }
    }

    /// Bytes of this shard's memtables charged to the node: (active, frozen).
    #[must_use]
    pub fn memtable_memory(&self) -> (usize, usize) {
        let v = self.inner.current_view();
        (
            v.active.memory_bytes(),
            v.frozen.iter().map(|m| m.memory_bytes()).sum(),
        )
    }
}
