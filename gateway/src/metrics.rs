//! HTTP metrics and the Prometheus text rendering of `/metrics`.
//!
//! Hand-rolled (no global recorder) so that every [`crate::AppState`] has its own registry:
//! tests build many apps in one process.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tierkv_engine::metrics::{Histogram, HistogramSnapshot, LATENCY_BUCKETS};

use crate::backend::EngineMetrics;

/// Per-app HTTP counters.
#[derive(Debug, Default)]
pub(crate) struct HttpMetrics {
    /// Route (the matched path pattern) → method → its series. Keyed by owned strings that
    /// a request looks up by `&str`: a known series costs one lock and no allocation.
    series: Mutex<BTreeMap<String, BTreeMap<String, Series>>>,
    in_flight: AtomicI64,
}

/// The figures of one route and method.
#[derive(Debug, Default)]
struct Series {
    by_status: BTreeMap<u16, u64>,
    latency: Histogram,
}

/// Decrements the in-flight gauge when dropped (also when the request future is dropped).
pub(crate) struct InFlight<'a>(&'a HttpMetrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HttpMetrics {
    pub(crate) fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Counts one answer. `route` is the matched path pattern as the router has it (the
    /// label renders `{*key}` as `{key}`).
    pub(crate) fn record(&self, route: &str, method: &str, status: u16, took: Duration) {
        let mut series = self.series.lock();
        let by_method = match series.get_mut(route) {
            Some(m) => m,
            None => series.entry(route.to_owned()).or_default(),
        };
        let s = match by_method.get_mut(method) {
            Some(s) => s,
            None => by_method.entry(method.to_owned()).or_default(),
        };
        *s.by_status.entry(status).or_default() += 1;
        s.latency.observe(took);
    }

    /// Renders HTTP metrics, the shard count and (when the storage is in this process)
    /// engine metrics in the Prometheus text format (0.0.4).
    pub(crate) fn render(&self, shards: u32, engine: Option<&EngineMetrics>) -> String {
        // Copy under the lock, format outside it.
        let mut rows = Vec::new();
        for (route, by_method) in self.series.lock().iter() {
            for (method, s) in by_method {
                let labels = format!(
                    "route=\"{}\",method=\"{}\"",
                    esc(&route.replace("{*key}", "{key}")),
                    esc(method)
                );
                rows.push((labels, s.by_status.clone(), s.latency.snapshot()));
            }
        }
        let mut out = String::new();
        header(
            &mut out,
            "tierkv_http_requests_total",
            "counter",
            "HTTP requests answered.",
        );
        for (labels, by_status, _) in &rows {
            for (status, n) in by_status {
                let _ = writeln!(
                    out,
                    "tierkv_http_requests_total{{{labels},status=\"{status}\"}} {n}"
                );
            }
        }
        header(
            &mut out,
            "tierkv_http_request_duration_seconds",
            "histogram",
            "HTTP request latency.",
        );
        for (labels, _, snap) in &rows {
            histogram_lines(
                &mut out,
                "tierkv_http_request_duration_seconds",
                labels,
                snap,
            );
        }
        header(
            &mut out,
            "tierkv_http_requests_in_flight",
            "gauge",
            "HTTP requests being served.",
        );
        let _ = writeln!(
            out,
            "tierkv_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        for (name, help, v) in [
            (
                "tierkv_shards",
                "Shards in the keyspace.",
                u64::from(shards),
            ),
            ("tierkv_up", "Always 1.", 1),
        ] {
            header(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {v}");
        }
        if let Some(engine) = engine {
            render_engine(&mut out, engine);
        }
        out
    }
}

fn render_engine(out: &mut String, m: &EngineMetrics) {
    let gauges: [(&str, &str, u64); 9] = [
        (
            "tierkv_memtable_bytes",
            "Bytes in active memtables.",
            m.memtable_bytes,
        ),
        (
            "tierkv_unflushed_bytes",
            "Bytes not yet flushed to object storage.",
            m.unflushed_bytes,
        ),
        (
            "tierkv_frozen_memtables",
            "Frozen memtables waiting for flush.",
            m.frozen_memtables,
        ),
        ("tierkv_wal_bytes", "Bytes in live WAL files.", m.wal_bytes),
        ("tierkv_wal_files", "Live WAL files.", m.wal_files),
        (
            "tierkv_wal_poisoned",
            "1 when the WAL is poisoned.",
            m.wal_poisoned,
        ),
        ("tierkv_segments", "Live segments.", m.segments),
        (
            "tierkv_segment_bytes",
            "Bytes in live segments.",
            m.segment_bytes,
        ),
        (
            "tierkv_fenced_shards",
            "Shards fenced by a newer writer.",
            m.fenced_shards,
        ),
    ];
    for (name, help, v) in gauges {
        header(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {v}");
    }
    let counters: [(&str, &str, u64); 15] = [
        (
            "tierkv_wal_appends_total",
            "WAL records appended.",
            m.wal_appends,
        ),
        (
            "tierkv_wal_syncs_total",
            "WAL fdatasync calls.",
            m.wal_syncs,
        ),
        ("tierkv_flushes_total", "Memtable flushes.", m.flushes),
        ("tierkv_flush_bytes_total", "Bytes flushed.", m.flush_bytes),
        (
            "tierkv_flush_errors_total",
            "Failed flush attempts.",
            m.flush_errors,
        ),
        ("tierkv_compactions_total", "Compactions.", m.compactions),
        (
            "tierkv_compaction_bytes_total",
            "Bytes written by compactions.",
            m.compaction_bytes,
        ),
        (
            "tierkv_compaction_errors_total",
            "Failed compactions.",
            m.compaction_errors,
        ),
        (
            "tierkv_ttl_deletes_total",
            "Entries deleted by the TTL sweeper.",
            m.ttl_deletes,
        ),
        (
            "tierkv_segments_deleted_total",
            "Obsolete segments deleted.",
            m.segments_deleted,
        ),
        (
            "tierkv_object_store_errors_total",
            "Failed object-store calls.",
            m.store_errors,
        ),
        (
            "tierkv_object_store_put_bytes_total",
            "Bytes written to object storage.",
            m.store_bytes_put,
        ),
        (
            "tierkv_object_store_get_bytes_total",
            "Bytes read from object storage.",
            m.store_bytes_get,
        ),
        (
            "tierkv_block_cache_hits_total",
            "Block-cache hits.",
            m.cache_hits,
        ),
        (
            "tierkv_block_cache_misses_total",
            "Block-cache misses.",
            m.cache_misses,
        ),
    ];
    for (name, help, v) in counters {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
    for (name, help, snap) in [
        (
            "tierkv_wal_fsync_duration_seconds",
            "WAL fdatasync latency.",
            &m.fsync_latency,
        ),
        (
            "tierkv_object_store_request_duration_seconds",
            "Object-store call latency.",
            &m.store_latency,
        ),
    ] {
        header(out, name, "histogram", help);
        histogram_lines(out, name, "", snap);
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Cumulative `_bucket` lines plus `_sum` and `_count`.
fn histogram_lines(out: &mut String, name: &str, labels: &str, snap: &HistogramSnapshot) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0u64;
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        cumulative += snap.buckets.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
        snap.count
    );
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", snap.sum_secs);
    let _ = writeln!(out, "{name}_count{braces} {}", snap.count);
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_engine_figures() {
        let m = HttpMetrics::default();
        m.record("/v1/kv/{*key}", "GET", 200, Duration::from_millis(3));
        m.record("/v1/kv/{*key}", "GET", 200, Duration::from_millis(30));
        m.record("/v1/kv/{*key}", "GET", 404, Duration::from_millis(1));
        m.record("/v1/kv/{*key}", "PUT", 200, Duration::from_millis(1));
        let text = m.render(4, Some(&EngineMetrics::default()));
        assert!(text.contains(
            "tierkv_http_requests_total{route=\"/v1/kv/{key}\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "tierkv_http_requests_total{route=\"/v1/kv/{key}\",method=\"GET\",status=\"404\"} 1"
        ));
        assert!(text.contains(
            "tierkv_http_requests_total{route=\"/v1/kv/{key}\",method=\"PUT\",status=\"200\"} 1"
        ));
        assert!(text.contains(
            "tierkv_http_request_duration_seconds_bucket{route=\"/v1/kv/{key}\",method=\"GET\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("tierkv_http_requests_in_flight 0"));
        assert!(text.contains("tierkv_wal_fsync_duration_seconds_count 0"));
        assert!(text.contains("\ntierkv_shards 4\n"));
    }

    #[test]
    fn a_backend_without_local_storage_exports_no_engine_figures() {
        let text = HttpMetrics::default().render(8, None);
        assert!(text.contains("\ntierkv_shards 8\n"));
        assert!(text.contains("\ntierkv_up 1\n"));
        assert!(!text.contains("tierkv_wal"), "{text}");
        assert!(!text.contains("tierkv_memtable_bytes"), "{text}");
    }
}
