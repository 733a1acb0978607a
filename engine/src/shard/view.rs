//! A view: an immutable snapshot of the sources a read consults, newest first.
//!
//! The shard swaps in a new `Arc<View>` when the active memtable is frozen (rotation), when a
//! flush turns a frozen memtable into an L0 segment, and when compaction replaces segments.
//! Readers clone the `Arc` and never block those changes. Every swap keeps the logical
//! content unchanged, except rotation, which opens a new active memtable: `generation` counts
//! rotations so a conditional write can detect that its snapshot missed one.

use std::sync::Arc;

use crate::error::Result;
use crate::memtable::Memtable;
use crate::segment::SegmentReader;
use crate::types::Entry;

/// Sources of a shard's data at one moment.
#[derive(Debug)]
pub(crate) struct View {
    /// Memtable rotations so far.
    pub(crate) generation: u64,
    /// The memtable receiving writes.
    pub(crate) active: Arc<Memtable>,
    /// Frozen memtables awaiting flush, newest first.
    pub(crate) frozen: Vec<Arc<Memtable>>,
    /// Flushed segments, newest first.
    pub(crate) l0: Vec<Arc<SegmentReader>>,
    /// The sorted run, in key order, non-overlapping.
    pub(crate) l1: Vec<Arc<SegmentReader>>,
}

impl View {
    /// A view with nothing in it.
    pub(crate) fn empty() -> Self {
        Self {
            generation: 0,
            active: Arc::new(Memtable::new()),
            frozen: Vec::new(),
            l0: Vec::new(),
            l1: Vec::new(),
        }
    }

    /// Newest entry of `key` in the memtables.
    pub(crate) fn mem_get(&self, key: &[u8]) -> Option<Entry> {
        let probe = Memtable::probe(key);
        self.active
            .get_probe(&probe)
            .or_else(|| self.frozen.iter().find_map(|m| m.get_probe(&probe)))
    }

    /// Newest entry of `key` in the segments: L0 newest first, then the one L1 segment whose
    /// range covers the key. Bloom filters skip segments without fetching blocks.
    pub(crate) async fn seg_get(&self, key: &[u8]) -> Result<Option<Entry>> {
        let mut gets = 0;
        self.seg_get_counted(key, &mut gets).await
    }

    /// [`View::seg_get`], adding the object-store GETs it made to `gets`.
    pub(crate) async fn seg_get_counted(
        &self,
        key: &[u8],
        gets: &mut u64,
    ) -> Result<Option<Entry>> {
        for s in &self.l0 {
            let i = s.info();
            if key < i.min_key.as_ref() || key > i.max_key.as_ref() {
                continue;
            }
            if let Some(e) = s.get_counted(key, gets).await? {
                return Ok(Some(e));
            }
        }
        if let Some(s) = self.l1_for(key) {
            return s.get_counted(key, gets).await;
        }
        Ok(None)
    }

    /// The L1 segment whose key range covers `key`.
    fn l1_for(&self, key: &[u8]) -> Option<&Arc<SegmentReader>> {
        let idx = self.l1.partition_point(|s| s.info().max_key.as_ref() < key);
        self.l1
            .get(idx)
            .filter(|s| s.info().min_key.as_ref() <= key)
    }

    /// Newest entry of `key` anywhere (tombstones and expired entries included).
    pub(crate) async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        let mut gets = 0;
        self.get_counted(key, &mut gets).await
    }

    /// [`View::get`], adding the object-store GETs it made to `gets`.
    pub(crate) async fn get_counted(&self, key: &[u8], gets: &mut u64) -> Result<Option<Entry>> {
        match self.mem_get(key) {
            Some(e) => Ok(Some(e)),
            None => self.seg_get_counted(key, gets).await,
        }
    }

    /// Bytes written to memtables and not yet in object storage (overwrites count: the WAL
    /// holds them until the flush).
    pub(crate) fn unflushed_bytes(&self) -> usize {
        self.active.written_bytes() + self.frozen.iter().map(|m| m.written_bytes()).sum::<usize>()
    }
}
