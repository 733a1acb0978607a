//! The progress line: once a second, on stderr, until told to stop (the sender of `stop`
//! fires or is dropped when the measured phase ends).

use crate::stats::Recorder;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Prints `elapsed, ops/s (last second), p99 so far, errors` to stderr every second.
pub(crate) async fn progress_loop(
    start: Instant,
    measure_from: Instant,
    recorders: Vec<Arc<Mutex<Recorder>>>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last_total = 0u64;
    let mut last_at = start;
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            now = tick.tick() => {
                let mut all = Recorder::default();
                for r in &recorders {
                    all.merge(&r.lock().unwrap_or_else(|p| p.into_inner()));
                }
                let total = all.total();
                let secs = now.saturating_duration_since(last_at).as_secs_f64().max(1e-9);
                let rate = (total - last_total) as f64 / secs;
                let p99 = all.overall_histogram().value_at_quantile(0.99);
                let phase = if now < measure_from { "  (warmup)" } else { "" };
                let line = format!(
                    "[{:>7.1}s] {:>10.0} ops/s  p99 {:>8} us  errors {}{}",
                    now.saturating_duration_since(start).as_secs_f64(),
                    rate,
                    p99,
                    all.error_count(),
                    phase,
                );
                let _ = writeln!(std::io::stderr().lock(), "{line}");
                last_total = total;
                last_at = now;
            }
        }
    }
}
