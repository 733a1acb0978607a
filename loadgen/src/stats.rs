//! Per-worker measurement: one HdrHistogram per operation kind (microseconds, 3 significant
//! digits, 1 µs .. 1 h, larger values saturate) plus outcome and error counters.
//!
//! Only operations that completed without an error (ok, not found, conflict) enter the
//! latency histograms; a refused connection returns in microseconds and would flatter the
//! percentiles. Errors are counted by kind instead.

use crate::target::{OpError, OpResult, Outcome};
use crate::workload::OpKind;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// Highest trackable latency: one hour, in microseconds.
const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// A fresh latency histogram.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKABLE_US, 3).expect("static bounds are valid")
}

/// Counters and latencies for one operation kind.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Latencies (µs) of completed, non-error operations.
    pub hist: Histogram<u64>,
    /// Completed as asked.
    pub ok: u64,
    /// Reads that found no value.
    pub not_found: u64,
    /// Conditional writes that lost.
    pub conflicts: u64,
    /// Failed operations.
    pub errors: u64,
}

impl Default for OpStats {
    fn default() -> Self {
        Self {
            hist: new_histogram(),
            ok: 0,
            not_found: 0,
            conflicts: 0,
            errors: 0,
        }
    }
}

impl OpStats {
    /// Every finished operation, error or not.
    pub fn total(&self) -> u64 {
        self.ok + self.not_found + self.conflicts + self.errors
    }
}

/// One worker's measurements.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// Indexed by [`OpKind::index`].
    pub ops: [OpStats; 3],
    /// Errors by kind.
    pub errors: BTreeMap<OpError, u64>,
    /// Open loop: operations that started after their intended time because every
    /// in-flight slot was busy.
    pub late_starts: u64,
}

impl Recorder {
    /// Records one finished operation that took `latency`.
    pub fn record(&mut self, kind: OpKind, latency: Duration, result: &OpResult) {
        let s = &mut self.ops[kind.index()];
        match result {
            Ok(outcome) => {
                let us = u64::try_from(latency.as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                s.hist.saturating_record(us);
                match outcome {
                    Outcome::Ok => s.ok += 1,
                    Outcome::NotFound => s.not_found += 1,
                    Outcome::Conflict => s.conflicts += 1,
                }
            }
            Err(e) => {
                s.errors += 1;
                *self.errors.entry(e.clone()).or_default() += 1;
            }
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Recorder) {
        for (a, b) in self.ops.iter_mut().zip(other.ops.iter()) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = a.hist.add(&b.hist);
            a.ok += b.ok;
            a.not_found += b.not_found;
            a.conflicts += b.conflicts;
            a.errors += b.errors;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.late_starts += other.late_starts;
    }

    /// Finished operations of every kind.
    pub fn total(&self) -> u64 {
        self.ops.iter().map(OpStats::total).sum()
    }

    /// Errors of every kind.
    pub fn error_count(&self) -> u64 {
        self.ops.iter().map(|s| s.errors).sum()
    }

    /// The latency histogram of all kinds together.
    pub fn overall_histogram(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for s in &self.ops {
            let _ = h.add(&s.hist);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_counts_and_merges() {
        let mut a = Recorder::default();
        a.record(OpKind::Read, Duration::from_micros(100), &Ok(Outcome::Ok));
        a.record(
            OpKind::Read,
            Duration::from_micros(5),
            &Ok(Outcome::NotFound),
        );
        a.record(
            OpKind::Rmw,
            Duration::from_millis(2),
            &Ok(Outcome::Conflict),
        );
        a.record(
            OpKind::Update,
            Duration::from_micros(1),
            &Err(OpError::Status { status: 503 }),
        );
        let mut b = Recorder::default();
        b.record(OpKind::Update, Duration::from_secs(7200), &Ok(Outcome::Ok));
        b.late_starts = 3;
        a.merge(&b);
        assert_eq!(a.total(), 5);
        assert_eq!(a.error_count(), 1);
        assert_eq!(a.late_starts, 3);
        assert_eq!(a.errors.get(&OpError::Status { status: 503 }), Some(&1));
        let h = a.overall_histogram();
        assert_eq!(h.len(), 4, "errors are not in the histogram");
        assert!(
            h.max() >= MAX_TRACKABLE_US * 99 / 100,
            "saturates at the bound"
        );
    }
}
