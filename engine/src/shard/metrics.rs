//! The shards' figures on `/metrics`: memtables, segments, flushes, compactions, TTL
//! deletes and fenced shards, summed over the shards of a node. They are read from each
//! shard's [`ShardStats`] when scraped (one `stats` call per shard and scrape); the shards
//! keep their counters themselves (`ShardMetrics`), per shard.

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::{Shard, ShardInner, ShardStats};

/// One family: name (counters without their `_total`, which the encoder adds), help, type
/// and the figure of one shard.
type Figure = (
    &'static str,
    &'static str,
    MetricType,
    fn(&ShardStats) -> u64,
);

/// Every family this collector exports.
const FIGURES: [Figure; 18] = [
    (
        "tierkv_memtable_bytes",
        "Write-buffer bytes of active memtables (entries, overwritten versions the log keeps, index structures).",
        MetricType::Gauge,
        |s| s.memtable_bytes,
    ),
    (
        "tierkv_frozen_memtable_bytes",
        "Write-buffer bytes of frozen memtables (being flushed, or awaiting the leader's flush).",
        MetricType::Gauge,
        |s| s.frozen_memtable_bytes,
    ),
    (
        "tierkv_point_reads",
        "Point reads served.",
        MetricType::Counter,
        |s| s.point_reads,
    ),
    (
        "tierkv_point_read_object_store_gets",
        "Object-store GETs made by point reads (blocks missing from every cache).",
        MetricType::Counter,
        |s| s.point_read_gets,
    ),
    (
        "tierkv_point_reads_over_one_get",
        "Point reads that made more than one object-store GET.",
        MetricType::Counter,
        |s| s.point_reads_over_one_get,
    ),
    (
        "tierkv_segment_index_bytes",
        "Bytes of open segments' indexes and bloom filters held in memory (part of the block cache's memory budget).",
        MetricType::Gauge,
        |s| s.segment_index_bytes,
    ),
    (
        "tierkv_unflushed_bytes",
        "Bytes not yet flushed to object storage.",
        MetricType::Gauge,
        |s| s.unflushed_bytes,
    ),
    (
        "tierkv_frozen_memtables",
        "Frozen memtables waiting for flush.",
        MetricType::Gauge,
        |s| s.frozen_memtables,
    ),
    (
        "tierkv_segments",
        "Live segments.",
        MetricType::Gauge,
        |s| s.l0_segments + s.l1_segments,
    ),
    (
        "tierkv_segment_bytes",
        "Bytes in live segments.",
        MetricType::Gauge,
        |s| s.segment_bytes,
    ),
    (
        "tierkv_flushes",
        "Memtable flushes.",
        MetricType::Counter,
        |s| s.flushes,
    ),
    (
        "tierkv_flush_bytes",
        "Bytes flushed.",
        MetricType::Counter,
        |s| s.flush_bytes,
    ),
    (
        "tierkv_flush_errors",
        "Failed flush attempts.",
        MetricType::Counter,
        |s| s.flush_errors,
    ),
    (
        "tierkv_compactions",
        "Compactions.",
        MetricType::Counter,
        |s| s.compactions,
    ),
    (
        "tierkv_compaction_bytes",
        "Bytes written by compactions.",
        MetricType::Counter,
        |s| s.compaction_bytes,
    ),
    (
        "tierkv_compaction_errors",
        "Failed compactions.",
        MetricType::Counter,
        |s| s.compaction_errors,
    ),
    (
        "tierkv_ttl_deletes",
        "Entries deleted by the TTL sweeper.",
        MetricType::Counter,
        |s| s.ttl_deletes,
    ),
    (
        "tierkv_segments_deleted",
        "Obsolete segments deleted.",
        MetricType::Counter,
        |s| s.segments_deleted,
    ),
];

/// A collector of the figures of a set of shards (a node's), registered with
/// `Registry::register_collector`. It does not keep the shards alive: a closed and dropped
/// shard no longer counts.
pub struct ShardFigures {
    shards: Vec<Weak<ShardInner>>,
}

impl ShardFigures {
    /// Figures summed over `shards`.
    pub fn new<'a>(shards: impl IntoIterator<Item = &'a Shard>) -> Self {
        Self {
            shards: shards
                .into_iter()
                .map(|s| Arc::downgrade(&s.inner))
                .collect(),
        }
    }
}

impl std::fmt::Debug for ShardFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardFigures")
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl Collector for ShardFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats: Vec<ShardStats> = self
            .shards
            .iter()
            .filter_map(Weak::upgrade)
            .map(|s| s.stats())
            .collect();
        for (name, help, kind, figure) in FIGURES {
            let value: u64 = stats.iter().map(figure).sum();
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            if kind == MetricType::Counter {
                metric.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            } else {
                metric.encode_gauge(&value)?;
            }
        }
        Ok(())
    }
}
