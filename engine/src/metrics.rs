//! The metric types the engine measures with, exported through `prometheus-client`.
//!
//! Every component declares its own figures (name, help, type) in the module that measures
//! them and registers them into a [`Registry`] it is handed (`register_metrics`); whoever
//! builds the components of a process (the binary, a test) decides which registry each goes
//! to, and serves it. Nothing here is global.
//!
//! - [`Counter`] and [`Gauge`] are the library's (atomics).
//! - [`Histogram`] is ours: lock-free fixed buckets ([`LATENCY_BUCKETS`]), because the
//!   library's histogram takes a lock on every observation and ours sit on request paths.
//!   It encodes as a Prometheus histogram (`_bucket{le}`, `_sum`, `_count`).
//! - [`Observed`] is a gauge read when scraped, for state a component keeps anyway (bytes
//!   in files, a poisoned flag).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::{MetricType, TypedMetric};

pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the histogram buckets; the last bucket is +Inf.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// A fixed-bucket latency histogram; clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    inner: Arc<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    /// Non-cumulative counts per bucket of [`LATENCY_BUCKETS`], then the +Inf bucket. The
    /// observation count is their sum.
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// A point-in-time copy of a [`Histogram`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Non-cumulative counts per bucket of [`LATENCY_BUCKETS`] plus a final +Inf bucket.
    pub buckets: Vec<u64>,
    /// Observations.
    pub count: u64,
    /// Sum of observations in seconds.
    pub sum_secs: f64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let idx = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(b) = self.inner.counts.get(idx) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Copies the current counts.
    #[must_use]
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<u64> = self
            .inner
            .counts
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            count: buckets.iter().sum(),
            buckets,
            #[expect(clippy::cast_precision_loss, reason = "metrics are approximate")]
            sum_secs: self.inner.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.snapshot();
        // Finite bounds only: the encoder writes the +Inf bucket from the count, which is
        // the sum of these buckets and the +Inf one, so the series stays monotonic.
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .zip(snap.buckets.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(
            snap.sum_secs,
            snap.count,
            &buckets,
            None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A gauge whose value is read when it is scraped.
pub struct Observed {
    read: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl Observed {
    /// A gauge with the value `read` returns at each scrape.
    pub fn gauge(read: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self {
            read: Box::new(read),
        }
    }
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed").finish_non_exhaustive()
    }
}

impl EncodeMetric for Observed {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&(self.read)())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// `registry` in the Prometheus text format (0.0.4), the one `/metrics` endpoints serve
/// (with [`TEXT_CONTENT_TYPE`]).
///
/// # Errors
///
/// When a metric fails to encode (a collector's own error; writing to a `String` does not
/// fail).
pub fn encode_text(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}

/// The content type of [`encode_text`]'s output.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_renders_cumulative_buckets_sum_and_count() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(30));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let mut r = Registry::default();
        r.register("tierkv_test_duration_seconds", "Test latency", h.clone());
        let text = encode_text(&r).expect("encodes");
        for line in [
            "# HELP tierkv_test_duration_seconds Test latency.",
            "# TYPE tierkv_test_duration_seconds histogram",
            "tierkv_test_duration_seconds_bucket{le=\"5e-05\"} 1",
            "tierkv_test_duration_seconds_bucket{le=\"0.0025\"} 1",
            "tierkv_test_duration_seconds_bucket{le=\"0.005\"} 2",
            "tierkv_test_duration_seconds_bucket{le=\"10\"} 2",
            "tierkv_test_duration_seconds_bucket{le=\"+Inf\"} 3",
            "tierkv_test_duration_seconds_count 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("tierkv_test_duration_seconds_sum "))
            .and_then(|v| v.parse().ok())
            .expect("a sum");
        assert!((sum - 20.00303).abs() < 1e-9, "{sum}");
        assert_eq!(h.snapshot().count, 3);
    }

    #[test]
    fn observed_gauges_read_at_scrape_time() {
        let v = Arc::new(AtomicU64::new(7));
        let mut r = Registry::default();
        let read = Arc::clone(&v);
        r.register(
            "tierkv_test_bytes",
            "Bytes",
            Observed::gauge(move || read.load(Ordering::Relaxed)),
        );
        assert!(
            encode_text(&r)
                .expect("encodes")
                .contains("\ntierkv_test_bytes 7\n")
        );
        v.store(9, Ordering::Relaxed);
        let text = encode_text(&r).expect("encodes");
        assert!(text.contains("# TYPE tierkv_test_bytes gauge\n"), "{text}");
        assert!(text.contains("\ntierkv_test_bytes 9\n"), "{text}");
    }

    #[test]
    fn counters_get_their_total_suffix_from_the_library() {
        let c = Counter::<u64>::default();
        let mut r = Registry::default();
        r.register("tierkv_test_things", "Things", c.clone());
        c.inc_by(4);
        let text = encode_text(&r).expect("encodes");
        assert!(
            text.contains("# TYPE tierkv_test_things_total counter\n"),
            "{text}"
        );
        assert!(text.contains("\ntierkv_test_things_total 4\n"), "{text}");
    }
}
