//! This gateway's traffic over the last minutes (`GET /admin/v1/traffic`): every
//! [`INTERVAL`] a sampler task reads the cumulative HTTP figures of the `/v1/` routes (the
//! data plane: the dashboard's own polling is not counted) and keeps the last [`SAMPLES`];
//! the points are the differences between consecutive samples, with p50 and p99 estimated
//! from the latency buckets as Prometheus's `histogram_quantile` does (linear within a
//! bucket).

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use parking_lot::Mutex;
use tierkv_engine::metrics::LATENCY_BUCKETS;

use super::model::{Traffic, TrafficPoint};
use crate::metrics::HttpTotals;
use crate::state::Inner;

/// Time between samples.
pub(crate) const INTERVAL: Duration = Duration::from_secs(2);
/// Samples kept (ten minutes).
pub(crate) const SAMPLES: usize = 301;
/// Routes counted.
const DATA_PLANE: &str = "/v1/";

/// One reading of the cumulative figures.
#[derive(Debug, Clone)]
struct Sample {
    at_ms: u64,
    /// Monotonic time of the reading (rates do not follow wall-clock jumps).
    at: tokio::time::Instant,
    totals: HttpTotals,
}

/// The samples, oldest first.
#[derive(Debug, Default)]
pub(crate) struct TrafficLog {
    samples: Mutex<VecDeque<Sample>>,
}

impl TrafficLog {
    fn push(&self, s: Sample) {
        let mut samples = self.samples.lock();
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(s);
    }

    /// The points between consecutive samples, oldest first.
    pub(crate) fn traffic(&self) -> Traffic {
        let samples = self.samples.lock();
        let points = samples
            .iter()
            .zip(samples.iter().skip(1))
            .map(|(a, b)| point(a, b))
            .collect();
        Traffic {
            interval_secs: u32::try_from(INTERVAL.as_secs()).unwrap_or(u32::MAX),
            window_secs: u32::try_from(INTERVAL.as_secs() * (SAMPLES as u64 - 1))
                .unwrap_or(u32::MAX),
            points,
        }
    }
}

#[expect(clippy::cast_precision_loss, reason = "rates are approximate")]
fn point(a: &Sample, b: &Sample) -> TrafficPoint {
    let secs = b.at.saturating_duration_since(a.at).as_secs_f64().max(1e-3);
    let rate = |x: u64, y: u64| y.saturating_sub(x) as f64 / secs;
    let buckets: Vec<u64> = b
        .totals
        .latency
        .iter()
        .enumerate()
        .map(|(i, n)| n.saturating_sub(a.totals.latency.get(i).copied().unwrap_or(0)))
        .collect();
    TrafficPoint {
        at_ms: b.at_ms,
        requests_per_sec: rate(a.totals.requests, b.totals.requests),
        client_errors_per_sec: rate(a.totals.client_errors, b.totals.client_errors),
        server_errors_per_sec: rate(a.totals.server_errors, b.totals.server_errors),
        p50_ms: quantile(&buckets, 0.5).map(|s| s * 1e3),
        p99_ms: quantile(&buckets, 0.99).map(|s| s * 1e3),
    }
}

/// The `q` quantile in seconds of non-cumulative bucket counts over [`LATENCY_BUCKETS`]
/// (then +Inf, reported as the last finite bound); `None` without observations.
#[expect(clippy::cast_precision_loss, reason = "quantiles are approximate")]
pub(crate) fn quantile(buckets: &[u64], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, n) in buckets.iter().enumerate() {
        let upto = below + n;
        if *n > 0 && upto as f64 >= rank {
            let last = LATENCY_BUCKETS.last().copied().unwrap_or(10.0);
            let Some(&upper) = LATENCY_BUCKETS.get(i) else {
                return Some(last);
            };
            let lower = i
                .checked_sub(1)
                .and_then(|j| LATENCY_BUCKETS.get(j))
                .copied()
                .unwrap_or(0.0);
            let within = (rank - below as f64) / *n as f64;
            return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
        }
        below = upto;
    }
    LATENCY_BUCKETS.last().copied()
}

/// Takes a sample of `inner` now.
fn sample(inner: &Inner) {
    inner.admin.traffic.push(Sample {
        at_ms: inner.clock.now_millis(),
        at: tokio::time::Instant::now(),
        totals: inner.metrics.totals(DATA_PLANE),
    });
}

/// The sampler: one sample every [`INTERVAL`] until the state is dropped.
pub(crate) async fn run(state: Weak<Inner>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = state.upgrade() else { return };
        sample(&inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(at: &[(usize, u64)]) -> Vec<u64> {
        let mut b = vec![0; LATENCY_BUCKETS.len() + 1];
        for (i, n) in at {
            b[*i] = *n;
        }
        b
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        assert_eq!(quantile(&buckets(&[]), 0.5), None);
        // 100 observations in (1 ms, 2.5 ms]: the median is halfway.
        let b = buckets(&[(5, 100)]);
        let p50 = quantile(&b, 0.5).expect("some");
        assert!((p50 - 0.00175).abs() < 1e-9, "{p50}");
        // 98 fast ones, 2 slow ones in (0.25 s, 0.5 s]: p99 is in the slow bucket.
        let b = buckets(&[(4, 98), (12, 2)]);
        let p99 = quantile(&b, 0.99).expect("some");
        assert!((0.25..=0.5).contains(&p99), "{p99}");
        let p50 = quantile(&b, 0.5).expect("some");
        assert!(p50 <= 0.001, "{p50}");
        // The +Inf bucket reports the last finite bound.
        let b = buckets(&[(LATENCY_BUCKETS.len(), 5)]);
        assert_eq!(quantile(&b, 0.5), LATENCY_BUCKETS.last().copied());
    }

    #[test]
    fn points_are_rates_between_samples_and_the_log_is_bounded() {
        let log = TrafficLog::default();
        let start = tokio::time::Instant::now();
        for i in 0..(SAMPLES as u64 + 5) {
            log.push(Sample {
                at_ms: 1_000 * i,
                at: start + Duration::from_secs(2 * i),
                totals: HttpTotals {
                    requests: 10 * i,
                    client_errors: i,
                    server_errors: 0,
                    latency: {
                        let mut b = vec![0; LATENCY_BUCKETS.len() + 1];
                        b[5] = 10 * i;
                        b
                    },
                },
            });
        }
        let t = log.traffic();
        assert_eq!(t.points.len(), SAMPLES - 1);
        assert_eq!(t.window_secs, 600);
        let p = t.points.last().expect("points");
        assert!((p.requests_per_sec - 5.0).abs() < 1e-9);
        assert!((p.client_errors_per_sec - 0.5).abs() < 1e-9);
        assert!(p.server_errors_per_sec.abs() < 1e-9);
        assert!(p.p50_ms.is_some_and(|ms| (1.0..=2.5).contains(&ms)));
    }
}
