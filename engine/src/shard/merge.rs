//! Ordered merge of a view's sources: for every key, the entry with the highest sequence
//! number across memtables and segments. Used by scans, compaction and the TTL sweeper.
//!
//! Memtables are read in bounded chunks from a cursor (concurrent inserts after the cursor
//! may or may not be seen: scans are not snapshots); segments stream block by block.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::memtable::Memtable;
use crate::segment::{SegmentIter, SegmentReader};
use crate::shard::view::View;
use crate::types::Entry;

/// One ordered source.
enum Source {
    Mem {
        mem: Arc<Memtable>,
        buf: VecDeque<Entry>,
        last: Option<Bytes>,
    },
    /// A run of non-overlapping segments in key order, read one after another.
    Run {
        segs: VecDeque<Arc<SegmentReader>>,
        cur: Option<SegmentIter>,
        after: Option<Bytes>,
        /// Read in bulk, past the cache (compaction).
        bulk: bool,
    },
}

impl Source {
    async fn next(&mut self) -> Result<Option<Entry>> {
        match self {
            Self::Mem { mem, buf, last } => {
                if buf.is_empty() {
                    buf.extend(mem.chunk_after(last.as_ref()));
                }
                let e = buf.pop_front();
                if let Some(e) = &e {
                    *last = Some(e.key.clone());
                }
                Ok(e)
            }
            Self::Run {
                segs,
                cur,
                after,
                bulk,
            } => loop {
                if let Some(it) = cur {
                    if let Some(e) = it.next().await? {
                        return Ok(Some(e));
                    }
                    *cur = None;
                }
                let Some(s) = segs.pop_front() else {
                    return Ok(None);
                };
                *cur = Some(if *bulk {
                    s.iter_bulk()
                } else {
                    s.iter(after.clone())
                });
            },
        }
    }
}

/// Merges sources into one ordered stream of newest-version entries.
pub(crate) struct MergeIter {
    sources: Vec<Source>,
    heads: Vec<Option<Entry>>,
    done: Vec<bool>,
}

impl MergeIter {
    /// Merges every source of `view`, starting after `after` (from the start when None).
    pub(crate) fn over_view(view: &View, after: Option<Bytes>) -> Self {
        let mut sources = Vec::new();
        for m in std::iter::once(&view.active).chain(view.frozen.iter()) {
            sources.push(Source::Mem {
                mem: Arc::clone(m),
                buf: VecDeque::new(),
                last: after.clone(),
            });
        }
        for s in &view.l0 {
            sources.push(Self::run(vec![Arc::clone(s)], after.clone()));
        }
        let l1: Vec<_> = view
            .l1
            .iter()
            .filter(|s| after.as_ref().is_none_or(|a| s.info().max_key > *a))
            .cloned()
            .collect();
        sources.push(Self::run(l1, after));
        Self::new(sources)
    }

    /// Merges segments only: each of `l0` on its own, plus `l1` as one run (for compaction).
    /// Segments are read in bulk, past the block cache ([`SegmentReader::iter_bulk`]).
    pub(crate) fn over_segments(l0: &[Arc<SegmentReader>], l1: &[Arc<SegmentReader>]) -> Self {
        let mut sources: Vec<_> = l0
            .iter()
            .map(|s| Self::bulk_run(vec![Arc::clone(s)]))
            .collect();
        sources.push(Self::bulk_run(l1.to_vec()));
        Self::new(sources)
    }

    fn bulk_run(segs: Vec<Arc<SegmentReader>>) -> Source {
        Source::Run {
            segs: segs.into(),
            cur: None,
            after: None,
            bulk: true,
        }
    }

    /// Merges frozen memtables (for flushing): the newest version of each key wins.
    pub(crate) fn over_memtables(mems: &[Arc<Memtable>]) -> Self {
        Self::new(
            mems.iter()
                .map(|mem| Source::Mem {
                    mem: Arc::clone(mem),
                    buf: VecDeque::new(),
                    last: None,
                })
                .collect(),
        )
    }

    fn run(segs: Vec<Arc<SegmentReader>>, after: Option<Bytes>) -> Source {
        Source::Run {
            segs: segs.into(),
            cur: None,
            after,
            bulk: false,
        }
    }

    fn new(sources: Vec<Source>) -> Self {
        let n = sources.len();
        Self {
            sources,
            heads: vec![None; n],
            done: vec![false; n],
        }
    }

    /// The next key's newest entry (tombstones and expired entries included).
    pub(crate) async fn next(&mut self) -> Result<Option<Entry>> {
        for i in 0..self.sources.len() {
            let (Some(head), Some(done), Some(src)) = (
                self.heads.get_mut(i),
                self.done.get_mut(i),
                self.sources.get_mut(i),
            ) else {
                continue;
            };
            if head.is_none() && !*done {
                *head = src.next().await?;
                *done = head.is_none();
            }
        }
        let Some(min) = self.heads.iter().flatten().map(|e| e.key.clone()).min() else {
            return Ok(None);
        };
        let mut best: Option<Entry> = None;
        for h in &mut self.heads {
            if h.as_ref().is_some_and(|e| e.key == min)
                && let Some(e) = h.take()
                && best.as_ref().is_none_or(|b| e.seq > b.seq)
            {
                best = Some(e);
            }
        }
        Ok(best)
    }
}
