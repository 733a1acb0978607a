//! Spans of traced writes on their leader (design note 0011): while a write that arrived with
//! a trace context is in flight, its `wal.append` span (until its record is durable here) and
//! one `replicate` span per follower (until that follower acknowledged the record).
//!
//! Only writes whose operation span is enabled get any: an untraced cluster keeps nothing
//! here. The spans end when dropped: on the event they wait for, when leadership is lost
//! (`clear`), or when more than [`MAX_OPEN`] are open (the oldest go first), so a follower
//! that never answers cannot make this grow.

use std::collections::{BTreeMap, VecDeque};

use tierkv_engine::replica::NodeId;
use tierkv_engine::types::SeqNo;

/// Most open `replicate` spans kept.
const MAX_OPEN: usize = 4096;

#[derive(Default)]
pub(super) struct WriteTraces {
    /// `wal.append` spans by the seq of their record.
    wal: BTreeMap<SeqNo, tracing::Span>,
    /// `replicate` spans in proposal order: (follower, seq, span).
    replicating: VecDeque<(NodeId, SeqNo, tracing::Span)>,
}

impl WriteTraces {
    /// A write was proposed as record `seq` under the operation's `span`: opens its spans.
    pub(super) fn proposed(
        &mut self,
        span: &tracing::Span,
        seq: SeqNo,
        followers: impl Iterator<Item = NodeId>,
    ) {
        if span.is_disabled() {
            return;
        }
        self.wal.insert(
            seq,
            tracing::info_span!(parent: span, "wal.append", seq = seq.0),
        );
        for follower in followers {
            self.replicating.push_back((
                follower,
                seq,
                tracing::info_span!(parent: span, "replicate", follower = follower.0, seq = seq.0),
            ));
        }
        while self.replicating.len() > MAX_OPEN {
            self.replicating.pop_front();
        }
        while self.wal.len() > MAX_OPEN {
            self.wal.pop_first();
        }
    }

    /// The `wal.append` span of record `seq`, if it is traced (the caller drops it once the
    /// record is durable).
    pub(super) fn wal_span(&mut self, seq: SeqNo) -> Option<tracing::Span> {
        if self.wal.is_empty() {
            return None;
        }
        self.wal.remove(&seq)
    }

    /// `follower` holds the log durably up to `last_seq`: its spans up to there end.
    pub(super) fn acked(&mut self, follower: NodeId, last_seq: SeqNo) {
        if self.replicating.is_empty() {
            return;
        }
        self.replicating
            .retain(|(f, seq, _)| *f != follower || *seq > last_seq);
    }

    /// Leadership is gone: every open span ends.
    pub(super) fn clear(&mut self) {
        self.wal.clear();
        self.replicating.clear();
    }
}
