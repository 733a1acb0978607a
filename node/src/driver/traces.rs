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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::{Context, SubscriberExt as _};
    use tracing_subscriber::registry::LookupSpan;

    use super::*;

    /// Counts open spans by name.
    #[derive(Clone, Default)]
    struct Open(Arc<Mutex<HashMap<&'static str, i64>>>);

    impl Open {
        fn get(&self, name: &str) -> i64 {
            self.0.lock().expect("lock").get(name).copied().unwrap_or(0)
        }
    }

    impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Open {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: Context<'_, S>,
        ) {
            *self
                .0
                .lock()
                .expect("lock")
                .entry(attrs.metadata().name())
                .or_default() += 1;
        }

        fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(&id) {
                *self.0.lock().expect("lock").entry(span.name()).or_default() -= 1;
            }
        }
    }

    #[test]
    fn spans_end_when_their_follower_acks_or_the_record_is_durable() {
        let open = Open::default();
        let subscriber = tracing_subscriber::registry().with(open.clone());
        tracing::subscriber::with_default(subscriber, || {
            let mut t = WriteTraces::default();
            // Untraced writes keep nothing.
            t.proposed(
                &tracing::Span::none(),
                SeqNo(1),
                [NodeId(2), NodeId(3)].into_iter(),
            );
            assert_eq!(open.get("replicate"), 0);
            assert!(t.wal_span(SeqNo(1)).is_none());

            let op = tracing::info_span!("node.op");
            t.proposed(&op, SeqNo(2), [NodeId(2), NodeId(3)].into_iter());
            t.proposed(&op, SeqNo(3), [NodeId(2), NodeId(3)].into_iter());
            assert_eq!((open.get("replicate"), open.get("wal.append")), (4, 2));
            // The WAL span goes to the persist; dropped once durable.
            drop(t.wal_span(SeqNo(2)));
            assert_eq!(open.get("wal.append"), 1);
            // Follower 2 acked up to 2: only its span of record 2 ends.
            t.acked(NodeId(2), SeqNo(2));
            assert_eq!(open.get("replicate"), 3);
            // Follower 3 acked everything.
            t.acked(NodeId(3), SeqNo(3));
            assert_eq!(open.get("replicate"), 1);
            // Leadership lost: the rest end.
            t.clear();
            assert_eq!((open.get("replicate"), open.get("wal.append")), (0, 0));
            drop(op);
        });
    }

    #[test]
    fn a_follower_that_never_acks_cannot_grow_it() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let mut t = WriteTraces::default();
            let op = tracing::info_span!("node.op");
            for seq in 0..(MAX_OPEN as u64 + 100) {
                t.proposed(&op, SeqNo(seq), [NodeId(2)].into_iter());
            }
            assert_eq!(t.replicating.len(), MAX_OPEN);
            assert_eq!(t.wal.len(), MAX_OPEN);
        });
    }
}
