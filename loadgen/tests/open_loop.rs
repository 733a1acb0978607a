//! Open-loop runs against the in-process mock TierKV server.

mod common;

use common::{opts, start_mock};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_issues_rate_times_duration_ops() {
    let (addr, kv) = start_mock().await;
    let o = opts(
        addr,
        &[
            "--workload=a",
            "--keys=100",
            "--rate=500",
            "--duration=1s",
            "--max-in-flight=4",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    // Tickets are due at i / 500 s for i in 0..500: exactly 500 in the one-second window.
    assert_eq!(r.total_ops, 500);
    assert_eq!(r.errors, 0, "{:?}", r.errors_by_kind);
    assert_eq!(
        kv.gets.load(Ordering::Relaxed) + kv.puts.load(Ordering::Relaxed),
        500
    );
    assert!(
        r.elapsed_secs >= 0.99 && r.elapsed_secs < 3.0,
        "{}",
        r.elapsed_secs
    );
    assert!((r.ops_per_sec - 500.0).abs() < 60.0, "{}", r.ops_per_sec);
    assert_eq!(r.mode.kind, "open");
    assert_eq!(r.mode.rate, Some(500.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_ops_bound_and_warmup() {
    let (addr, kv) = start_mock().await;
    // 100 warmup tickets (0.1 s at 1000/s), then 200 measured ones.
    let o = opts(
        addr,
        &[
            "--workload=c",
            "--keys=10",
            "--rate=1000",
            "--warmup=100ms",
            "--ops=200",
            "--max-in-flight=4",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!(r.total_ops, 200);
    assert_eq!(kv.gets.load(Ordering::Relaxed), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_latency_includes_queueing_behind_a_stall() {
    let (addr, kv) = start_mock().await;
    // One in-flight slot at 200 ops/s (one op due every 5 ms); request 20 stalls 300 ms, so
    // about 60 ops fall due while the only slot is busy and must wait.
    kv.stall_once(20, Duration::from_millis(300));
    let o = opts(
        addr,
        &[
            "--workload=c",
            "--keys=10",
            "--rate=200",
            "--duration=1s",
            "--max-in-flight=1",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!(r.total_ops, 200);
    assert_eq!(r.errors, 0, "{:?}", r.errors_by_kind);
    let l = &r.latency_us;
    assert!(l.max >= 300_000, "max {} us includes the stall", l.max);
    // Measured from the send time only one op would be slow. Measured from the intended time
    // the ops queued behind it are slow too: ~30 of 200 wait over 150 ms.
    assert!(l.p90 >= 100_000, "p90 {} us should include queueing", l.p90);
    assert!(r.late_starts >= 40, "late starts {}", r.late_starts);
    assert!(
        l.p50 < 100_000,
        "p50 {} us: the rest of the run was fast",
        l.p50
    );
}
