//! Closed-loop runs against the in-process mock TierKV server.

mod common;

use common::{opts, start_mock};
use std::sync::atomic::Ordering;
use tierkv_loadgen::Report;

fn assert_consistent(r: &Report) {
    assert_eq!(r.ok + r.not_found + r.conflicts + r.errors, r.total_ops);
    assert_eq!(r.ops.values().map(|o| o.count).sum::<u64>(), r.total_ops);
    assert_eq!(r.errors_by_kind.values().sum::<u64>(), r.errors);
    let non_error = r.total_ops - r.errors;
    assert_eq!(r.latency_us.count, non_error);
    assert!(r.latency_us.p50 <= r.latency_us.p99 && r.latency_us.p99 <= r.latency_us.max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_counts_add_up_and_json_parses() {
    let (addr, kv) = start_mock().await;
    let o = opts(
        addr,
        &[
            "--workload=a",
            "--keys=500",
            "--ops=2000",
            "--concurrency=8",
            "--load",
            "--value-size=64",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_consistent(&r);
    assert_eq!(r.total_ops, 2000);
    assert_eq!(r.errors, 0, "{:?}", r.errors_by_kind);
    assert_eq!(r.not_found, 0, "the load phase wrote every key");
    assert_eq!(kv.len(), 500);
    let load = r.load.as_ref().expect("load phase ran");
    assert_eq!((load.ops, load.errors), (500, 0));
    // Workload a is one request per op: server requests = load + measured.
    let served = kv.gets.load(Ordering::Relaxed) + kv.puts.load(Ordering::Relaxed);
    assert_eq!(served, 500 + 2000);
    let reads = r.ops["read"].count as f64 / r.total_ops as f64;
    assert!((reads - 0.5).abs() < 0.06, "read share {reads}");
    // Keep-alive: one connection per worker per phase, not one per request.
    assert!(kv.connections.load(Ordering::Relaxed) <= 16);

    let json = serde_json::to_string(&r).expect("serialise");
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["schema"], "tierkv-loadgen/report/v1");
    assert_eq!(v["mode"]["kind"], "closed");
    assert_eq!(v["total_ops"], 2000);
    assert!(v["latency_us"]["p999"].is_u64());
    assert!(v["ops"]["update"]["latency_us"]["p50"].is_u64());
    let back: Report = serde_json::from_str(&json).expect("round-trips");
    // Floats may differ in the last bit after a JSON round trip; compare the rest exactly.
    assert_eq!(
        (back.total_ops, &back.ops.keys().collect::<Vec<_>>()),
        (r.total_ops, &r.ops.keys().collect::<Vec<_>>())
    );
    assert_eq!(
        (back.latency_us.p99, back.latency_us.max),
        (r.latency_us.p99, r.latency_us.max)
    );
    assert!((back.latency_us.mean - r.latency_us.mean).abs() < 1e-6);
    assert!(r.to_text().contains("ops/s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_rmw_conflicts_are_not_errors() {
    let (addr, kv) = start_mock().await;
    // Few keys and many workers: conditional writes race and some lose.
    let o = opts(
        addr,
        &[
            "--workload=f",
            "--keys=2",
            "--ops=3000",
            "--concurrency=16",
            "--load",
            "--distribution=uniform",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_consistent(&r);
    assert_eq!(r.errors, 0, "{:?}", r.errors_by_kind);
    assert_eq!(r.conflicts, kv.conflicts.load(Ordering::Relaxed));
    assert!(r.conflicts > 0, "16 workers on 2 keys should conflict");
    let rmw = &r.ops["rmw"];
    assert_eq!(rmw.conflicts, r.conflicts);
    // Each read is one GET; each rmw is a GET and a PUT.
    let served = kv.gets.load(Ordering::Relaxed) + kv.puts.load(Ordering::Relaxed);
    assert_eq!(served, 2 + r.ops["read"].count + 2 * rmw.count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_ttl_and_consistency_reach_the_server() {
    let (addr, kv) = start_mock().await;
    let o = opts(
        addr,
        &[
            "--workload=ttl",
            "--ttl=30",
            "--keys=10",
            "--ops=50",
            "--concurrency=2",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!((r.total_ops, r.errors), (50, 0));
    assert_eq!(r.ttl_secs, Some(30));
    assert_eq!(
        kv.last_put_query.lock().expect("lock").as_deref(),
        Some("ttl=30")
    );

    let o = opts(
        addr,
        &[
            "--workload=c",
            "--consistency=eventual",
            "--keys=10",
            "--ops=20",
            "--concurrency=2",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!(r.total_ops, 20);
    assert_eq!(
        kv.last_get_query.lock().expect("lock").as_deref(),
        Some("consistency=eventual")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_warmup_is_excluded_and_duration_bounds_the_run() {
    let (addr, kv) = start_mock().await;
    let o = opts(
        addr,
        &[
            "--workload=c",
            "--keys=100",
            "--warmup=200ms",
            "--duration=300ms",
            "--concurrency=4",
        ],
    );
    let started = std::time::Instant::now();
    let r = tierkv_loadgen::run(&o).await.expect("run");
    let wall = started.elapsed();
    assert!(wall.as_millis() >= 500, "ran {wall:?}");
    assert!(wall.as_secs() < 10, "stopped by itself: {wall:?}");
    assert!(r.total_ops > 0);
    assert!(
        kv.gets.load(Ordering::Relaxed) > r.total_ops,
        "warmup ops are not reported"
    );
    assert!(
        r.elapsed_secs >= 0.3 && r.elapsed_secs < 5.0,
        "{}",
        r.elapsed_secs
    );
    assert_eq!(r.not_found, r.total_ops, "no load phase: every read misses");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_counted_as_errors() {
    // Bind and drop to get a port with nothing listening.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let o = opts(addr, &["--workload=a", "--ops=20", "--concurrency=2"]);
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!(r.total_ops, 20);
    assert_eq!(r.errors, 20);
    assert_eq!(r.errors_by_kind.get("connect"), Some(&20));
    assert_eq!(r.latency_us.count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_json_report_parses() {
    let (addr, _kv) = start_mock().await;
    let endpoint = format!("--endpoint={addr}");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tierkv-bench"))
        .args([
            endpoint.as_str(),
            "--workload=b",
            "--keys=100",
            "--ops=300",
            "--concurrency=4",
            "--load",
            "--json",
            "--quiet",
        ])
        .output()
        .await
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["total_ops"], 300);
    assert_eq!(v["workload"], "b");
    assert_eq!(v["errors"], 0);
    assert_eq!(v["load"]["ops"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_carries_the_api_key() {
    let (addr, kv) = start_mock().await;
    *kv.require_key.lock().expect("lock") = Some("tkv_test".to_owned());
    let o = opts(
        addr,
        &[
            "--workload=f",
            "--keys=50",
            "--ops=200",
            "--load",
            "--api-key=tkv_test",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!(r.errors, 0, "{:?}", r.errors_by_kind);
    assert_eq!(kv.unauthorized.load(Ordering::Relaxed), 0);
    // Without it, the same run is refused.
    let o = opts(addr, &["--workload=c", "--keys=50", "--ops=20"]);
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!(r.errors, 20);
    assert!(kv.unauthorized.load(Ordering::Relaxed) >= 20);
}
