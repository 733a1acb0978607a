//! The run report: text for people, one JSON object (`--json`) for scripts.
//!
//! # JSON schema (`"schema": "tierkv-loadgen/report/v1"`)
//!
//! ```text
//! {
//!   "schema": "tierkv-loadgen/report/v1",
//!   "target": "tierkv" | "etcd" | "redis",
//!   "endpoint": "127.0.0.1:8080",
//!   "workload": "a" | "b" | "c" | "w" | "f" | "ttl",
//!   "distribution": "uniform" | "zipfian",
//!   "zipf_theta": 0.99 | null,            // null for uniform
//!   "keys": 100000, "value_size": 256,
//!   "ttl_secs": 60 | null,                // only for the ttl workload
//!   "consistency": "strong" | "quorum" | "eventual" | null,
//!   "mode": { "kind": "closed" | "open", "workers": 32, "rate": 1000.0 | null },
//!   "warmup_secs": 0.0,
//!   "elapsed_secs": 10.0,                 // measured window (after warmup)
//!   "total_ops": 123456,                  // measured operations, errors included
//!   "ops_per_sec": 12345.6,               // total_ops / elapsed_secs
//!   "ok": 0, "not_found": 0, "conflicts": 0, "errors": 0,
//!   "late_starts": 0,                     // open loop: ops that could not start on time
//!   "latency_us": Latency,                // all kinds together
//!   "ops": { "read" | "update" | "rmw": {  // only kinds that ran
//!       "count": 0, "ok": 0, "not_found": 0, "conflicts": 0, "errors": 0,
//!       "latency_us": Latency } },
//!   "errors_by_kind": { "http_503": 3, "io": 1, "connect": 0, "timeout": 0,
//!                       "protocol": 0, "redis_ERR": 0 },
//!   "load": { "ops": 100000, "errors": 0, "elapsed_secs": 3.2 } | null
//! }
//! Latency = { "count", "min", "mean", "p50", "p90", "p99", "p999", "max" }  // microseconds
//! ```
//!
//! Latencies cover operations that completed without an error (ok, not found, conflict). In
//! open loop they run from the intended start time, so queueing delay is included.

use crate::stats::Recorder;
use crate::workload::OpKind;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// The `schema` value of this report version.
pub const SCHEMA: &str = "tierkv-loadgen/report/v1";

/// Latency summary in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Latency {
    /// Summarises a histogram (all zeros when empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One operation kind's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpReport {
    /// Finished operations, errors included.
    pub count: u64,
    /// Completed as asked.
    pub ok: u64,
    /// Reads that found nothing.
    pub not_found: u64,
    /// Conditional writes that lost.
    pub conflicts: u64,
    /// Failures.
    pub errors: u64,
    /// Latency of non-error operations.
    pub latency_us: Latency,
}

/// How load was offered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeReport {
    /// `closed` or `open`.
    pub kind: String,
    /// Workers = connections (closed: `--concurrency`; open: `--max-in-flight`).
    pub workers: usize,
    /// Open loop target rate (ops/s).
    pub rate: Option<f64>,
}

/// The load phase (`--load`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Keys written.
    pub ops: u64,
    /// Failed writes.
    pub errors: u64,
    /// Wall time of the phase.
    pub elapsed_secs: f64,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// Target kind.
    pub target: String,
    /// `host:port`.
    pub endpoint: String,
    /// Workload name.
    pub workload: String,
    /// Key distribution.
    pub distribution: String,
    /// Zipfian theta, when zipfian.
    pub zipf_theta: Option<f64>,
    /// Key count.
    pub keys: u64,
    /// Value bytes.
    pub value_size: usize,
    /// TTL of writes (ttl workload).
    pub ttl_secs: Option<u32>,
    /// Requested read consistency.
    pub consistency: Option<String>,
    /// Closed or open loop.
    pub mode: ModeReport,
    /// Warmup excluded from the figures.
    pub warmup_secs: f64,
    /// Measured window.
    pub elapsed_secs: f64,
    /// Measured operations, errors included.
    pub total_ops: u64,
    /// `total_ops / elapsed_secs`.
    pub ops_per_sec: f64,
    /// Completed as asked.
    pub ok: u64,
    /// Reads that found nothing.
    pub not_found: u64,
    /// Conditional writes that lost.
    pub conflicts: u64,
    /// Failures.
    pub errors: u64,
    /// Open loop: ops that could not start on time.
    pub late_starts: u64,
    /// All kinds together.
    pub latency_us: Latency,
    /// Per kind (`read`, `update`, `rmw`), only kinds that ran.
    pub ops: BTreeMap<String, OpReport>,
    /// Errors by kind (`http_<status>`, `connect`, `io`, `timeout`, `protocol`,
    /// `redis_<PREFIX>`).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Load phase, when run.
    pub load: Option<LoadReport>,
}

/// The figures of a [`Report`] that come from measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Totals from every worker, merged.
    pub ops: BTreeMap<String, OpReport>,
    /// Outcome totals.
    pub ok: u64,
    /// Outcome totals.
    pub not_found: u64,
    /// Outcome totals.
    pub conflicts: u64,
    /// Outcome totals.
    pub errors: u64,
    /// Every measured operation.
    pub total_ops: u64,
    /// Overall latency.
    pub latency_us: Latency,
    /// Errors by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Late starts.
    pub late_starts: u64,
}

impl Figures {
    /// Summarises merged measurements.
    pub fn from_recorder(r: &Recorder) -> Self {
        let mut ops = BTreeMap::new();
        for kind in OpKind::ALL {
            let s = &r.ops[kind.index()];
            if s.total() == 0 {
                continue;
            }
            ops.insert(
                kind.name().to_owned(),
                OpReport {
                    count: s.total(),
                    ok: s.ok,
                    not_found: s.not_found,
                    conflicts: s.conflicts,
                    errors: s.errors,
                    latency_us: Latency::from_histogram(&s.hist),
                },
            );
        }
        Self {
            ok: r.ops.iter().map(|s| s.ok).sum(),
            not_found: r.ops.iter().map(|s| s.not_found).sum(),
            conflicts: r.ops.iter().map(|s| s.conflicts).sum(),
            errors: r.error_count(),
            total_ops: r.total(),
            latency_us: Latency::from_histogram(&r.overall_histogram()),
            errors_by_kind: r.errors.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            late_starts: r.late_starts,
            ops,
        }
    }
}

fn latency_row(out: &mut String, name: &str, count: u64, errors: u64, l: &Latency) -> fmt::Result {
    writeln!(
        out,
        "{name:<8} {count:>10} {errors:>8} {:>9} {:>9} {:>9} {:>9} {:>10}",
        l.p50, l.p90, l.p99, l.p999, l.max
    )
}

impl Report {
    /// The human-readable form.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_text(&mut out);
        out
    }

    fn write_text(&self, out: &mut String) -> fmt::Result {
        let dist = match self.zipf_theta {
            Some(t) => format!("{}(theta={t})", self.distribution),
            None => self.distribution.clone(),
        };
        writeln!(
            out,
            "target {} @ {}  workload {}  keys {} {}  value {} B{}{}",
            self.target,
            self.endpoint,
            self.workload,
            self.keys,
            dist,
            self.value_size,
            self.ttl_secs
                .map(|t| format!("  ttl {t}s"))
                .unwrap_or_default(),
            self.consistency
                .as_ref()
                .map(|c| format!("  consistency {c}"))
                .unwrap_or_default(),
        )?;
        match self.mode.rate {
            Some(rate) => writeln!(
                out,
                "open loop: {rate} ops/s target, {} max in flight",
                self.mode.workers
            )?,
            None => writeln!(out, "closed loop: {} workers", self.mode.workers)?,
        }
        if let Some(l) = &self.load {
            writeln!(
                out,
                "load: {} keys in {:.2}s, {} errors",
                l.ops, l.elapsed_secs, l.errors
            )?;
        }
        writeln!(
            out,
            "elapsed {:.2}s (warmup {:.2}s excluded)  ops {}  ops/s {:.1}",
            self.elapsed_secs, self.warmup_secs, self.total_ops, self.ops_per_sec
        )?;
        writeln!(
            out,
            "ok {}  not_found {}  conflicts {}  errors {}  late_starts {}",
            self.ok, self.not_found, self.conflicts, self.errors, self.late_starts
        )?;
        writeln!(
            out,
            "{:<8} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "op", "count", "errors", "p50(us)", "p90", "p99", "p99.9", "max"
        )?;
        for (name, op) in &self.ops {
            latency_row(out, name, op.count, op.errors, &op.latency_us)?;
        }
        latency_row(out, "all", self.total_ops, self.errors, &self.latency_us)?;
        if !self.errors_by_kind.is_empty() {
            let parts: Vec<String> = self
                .errors_by_kind
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            writeln!(out, "errors: {}", parts.join(" "))?;
        }
        Ok(())
    }
}
