//! Failover and replicated-write latency of a three-node cluster (N=3, W=2, fsync on) with
//! a gateway, all separate `tierkv` processes on 127.0.0.1.
//!
//! ```sh
//! cargo bench --bench failover                          # 20 failover trials, lease 2s
//! TIERKV_BENCH_TRIALS=5 TIERKV_BENCH_LEASE_MS=1000 cargo bench --bench failover
//! ```
//!
//! 1. Write latency: closed-loop PUTs of 100-byte values through the gateway, 1 client and
//!    then 32 clients, `TIERKV_BENCH_SECS` (default 10) each; prints throughput and
//!    p50/p90/p99/p99.9/max.
//! 2. Failover: for each trial, 4 clients write to keys of one shard; its leader is killed
//!    with SIGKILL; the time from the kill to the acknowledgement of the first write invoked
//!    after it is the failover time. Prints every trial, p50 and max.
//! 3. Handover back: in the same trial, with the clients still writing, the killed node is
//!    restarted; if it ranks first for the shard, the leader that took over hands the shard
//!    back to it once it has acked steadily for `TIERKV_BENCH_HANDOVER_MS` (default 2000).
//!    The slowest write invoked between the restart and 100 writes after the shard is back is
//!    the handover pause (it includes the catch-up of the restarted node). Prints every
//!    trial, p50 and max.
//! 4. Rolling restart: `TIERKV_BENCH_ROLLING` rounds (default 2) of stopping each node with
//!    SIGTERM (it hands its shards over first) while 4 clients write to keys of every shard,
//!    restarting it and waiting until it leads the shards it ranks first again. Prints, per
//!    stop, how long the node took to exit, the slowest write and the failed writes invoked
//!    from the SIGTERM until 100 writes after the node came back, and p50/max over stops.

#[path = "../tests/cluster/mod.rs"]
mod cluster;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cluster::{Cluster, Opts};
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(h: &Histogram<u64>, q: f64) -> String {
    format!("{:.2}ms", h.value_at_quantile(q) as f64 / 1000.0)
}

/// Closed-loop writes with `clients` clients for `secs`; prints a summary line.
async fn write_latency(c: &Cluster, clients: usize, secs: u64) {
    let hist = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
    ));
    let errors = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let value = "x".repeat(100);
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (http, url, hist, errors, value) = (
            c.http.clone(),
            c.url.clone(),
            hist.clone(),
            errors.clone(),
            value.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("h");
            let mut i = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                let r = http
                    .put(format!("{url}/v1/kv/lat-{w}-{}", i % 10_000))
                    .body(value.clone())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
                        let _ = local.record(us.max(1));
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
            let _ = hist.lock().await.add(&local);
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let h = hist.lock().await;
    println!(
        "writes, {clients:>2} clients: {:>7.0} ops/s  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  errors {}",
        h.len() as f64 / secs as f64,
        pct(&h, 0.5),
        pct(&h, 0.9),
        pct(&h, 0.99),
        pct(&h, 0.999),
        pct(&h, 1.0),
        errors.load(Ordering::Relaxed)
    );
}

/// One failover trial on `shard`; returns kill → first acknowledged write, and the handover
/// pause if the killed node ranks first for the shard.
async fn trial(c: &mut Cluster, shard: u32, n: u32) -> (Duration, Option<Duration>) {
    let leader = c.wait_leader(shard, None, Duration::from_secs(30)).await;
    let keys = c.keys_in_shard(shard, &format!("fo{n}-"), 20_000);
    let stop = Arc::new(AtomicBool::new(false));
    let last_ok = Arc::new(Mutex::new(None::<(Instant, Instant)>));
    let count = Arc::new(AtomicU64::new(0));
    // Writes invoked since `since` (set at the restart): the slowest one's latency.
    let since = Arc::new(Mutex::new(None::<Instant>));
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let failed_since = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for chunk in keys.chunks(5_000) {
        let chunk = chunk.to_vec();
        let (http, url, stop, last_ok, count) = (
            c.http.clone(),
            c.url.clone(),
            stop.clone(),
            last_ok.clone(),
            count.clone(),
        );
        let (since, slowest, failed_since) = (since.clone(), slowest.clone(), failed_since.clone());
        tasks.push(tokio::spawn(async move {
            for k in chunk {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let started = Instant::now();
                let r = http.put(format!("{url}/v1/kv/{k}")).body("v").send().await;
                let ok = r.is_ok_and(|r| r.status().is_success());
                if since.lock().await.is_some_and(|s| started >= s) {
                    let mut w = slowest.lock().await;
                    *w = (*w).max(started.elapsed());
                    if !ok {
                        failed_since.fetch_add(1, Ordering::SeqCst);
                    }
                }
                if ok {
                    // (invoked, acknowledged): only writes invoked after the kill count.
                    *last_ok.lock().await = Some((started, Instant::now()));
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let warm = Instant::now() + Duration::from_secs(10);
    while count.load(Ordering::SeqCst) < 100 && Instant::now() < warm {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    c.kill(leader);
    let killed = Instant::now();
    let took = loop {
        if let Some((invoked, acked)) = *last_ok.lock().await
            && invoked > killed
        {
            break acked - killed;
        }
        if killed.elapsed() > Duration::from_secs(60) {
            break killed.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    println!(
        "trial {n:>2}: shard {shard}, killed n{leader}, first write acknowledged after {took:?}"
    );
    // Ranks are the same in every node's map: ask one that runs.
    let first_rank = c
        .status(c.running()[0])
        .await
        .and_then(|st| st.get(&shard).and_then(|s| s.replicas.first().copied()));
    c.restart(leader);
    *since.lock().await = Some(Instant::now());
    let mut pause = None;
    if first_rank == Some(leader) {
        let restarted = Instant::now();
        let back = wait_home(c, leader, &[shard])
            .await
            .then(|| restarted.elapsed());
        let more = count.load(Ordering::SeqCst) + 100;
        let deadline = Instant::now() + Duration::from_secs(10);
        while count.load(Ordering::SeqCst) < more && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let worst = *slowest.lock().await;
        match back {
            Some(b) => {
                println!(
                    "trial {n:>2}: shard {shard} back on n{leader} {b:?} after its restart; slowest write meanwhile {worst:?}, failed writes {}",
                    failed_since.load(Ordering::SeqCst)
                );
                pause = Some(worst);
            }
            None => {
                println!("trial {n:>2}: shard {shard} did not go back to n{leader} within 30 s")
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    (took, pause)
}

/// Writers over keys of every shard until dropped; the slowest write invoked since
/// `window` was set, and the failed ones.
struct Load {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    window: Arc<Mutex<Option<Instant>>>,
    /// The slowest write in the window and when it was invoked (since the window opened).
    slowest: Arc<Mutex<(Duration, Duration)>>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(c: &Cluster, prefix: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let window = Arc::new(Mutex::new(None::<Instant>));
        let slowest = Arc::new(Mutex::new((Duration::ZERO, Duration::ZERO)));
        let failed = Arc::new(AtomicU64::new(0));
        let tasks = (0..4)
            .map(|w| {
                let (http, url, prefix) = (c.http.clone(), c.url.clone(), prefix.to_owned());
                let (stop, count, window, slowest, failed) = (
                    stop.clone(),
                    count.clone(),
                    window.clone(),
                    slowest.clone(),
                    failed.clone(),
                );
                tokio::spawn(async move {
                    for i in 0..1_000_000u64 {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let started = Instant::now();
                        let r = http
                            .put(format!("{url}/v1/kv/{prefix}{w}-{}", i % 20_000))
                            .body("v")
                            .send()
                            .await;
                        let ok = r.is_ok_and(|r| r.status().is_success());
                        let opened = *window.lock().await;
                        if let Some(s) = opened.filter(|s| started >= *s) {
                            let mut worst = slowest.lock().await;
                            if started.elapsed() > worst.0 {
                                *worst = (started.elapsed(), started - s);
                            }
                            if !ok {
                                failed.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        Self {
            stop,
            count,
            window,
            slowest,
            failed,
            tasks,
        }
    }

    /// Starts a measuring window now, with nothing measured yet.
    async fn open_window(&self) {
        *self.slowest.lock().await = (Duration::ZERO, Duration::ZERO);
        self.failed.store(0, Ordering::SeqCst);
        *self.window.lock().await = Some(Instant::now());
    }

    /// Waits for `n` more writes (at most 10 s), then the slowest write (its latency, and
    /// when it was invoked after the window opened) and the failures since the window opened.
    async fn close_window_after(&self, n: u64) -> ((Duration, Duration), u64) {
        let more = self.count.load(Ordering::SeqCst) + n;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.count.load(Ordering::SeqCst) < more && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        *self.window.lock().await = None;
        (
            *self.slowest.lock().await,
            self.failed.load(Ordering::SeqCst),
        )
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Polls (at most 30 s) until `node` leads every shard in `shards`.
async fn wait_home(c: &Cluster, node: u32, shards: &[u32]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let leaders = c.leaders().await;
        if shards
            .iter()
            .all(|s| leaders.get(s).is_some_and(|(l, _)| *l == node))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// One rolling restart: each node stopped with SIGTERM, restarted, given its shards back.
/// Returns the slowest write of each stop.
async fn rolling_restart(c: &mut Cluster, round: u32) -> Vec<Duration> {
    let load = Load::start(c, &format!("rr{round}-"));
    let mut worst = Vec::new();
    for node in 1..=3 {
        let home = c.first_ranked(node).await.unwrap_or_default();
        if !wait_home(c, node, &home).await {
            println!("rolling {round}: n{node} does not lead its shards {home:?}; skipped");
            continue;
        }
        load.open_window().await;
        let stopping = Instant::now();
        let status = c.terminate(node).await;
        let exited = stopping.elapsed();
        c.restart(node);
        let back = wait_home(c, node, &home).await.then(|| stopping.elapsed());
        let ((slowest, at), failed) = load.close_window_after(100).await;
        println!(
            "rolling {round}: n{node} (first for shards {home:?}) exited ({status}) {exited:?} after SIGTERM, led them again {back:?} after; slowest write {slowest:?} (invoked {at:?} after SIGTERM), failed writes {failed}"
        );
        worst.push(slowest);
    }
    load.finish().await;
    worst
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let trials: u32 = env_or("TIERKV_BENCH_TRIALS", 20);
        let lease = Duration::from_millis(env_or("TIERKV_BENCH_LEASE_MS", 2000));
        let handover: u64 = env_or("TIERKV_BENCH_HANDOVER_MS", 2000);
        let secs: u64 = env_or("TIERKV_BENCH_SECS", 10);
        let mut c = Cluster::start(Opts {
            shards: 8,
            lease,
            memtable_bytes: 64 << 20,
            heartbeat: Duration::from_millis(250).min(lease / 4),
            env: vec![(
                "TIERKV_CLUSTER__HANDOVER_AFTER".into(),
                format!("{handover}ms"),
            )],
            ..Opts::default()
        })
        .await;
        println!(
            "cluster: 3 nodes + gateway (processes), N=3 W=2, WAL sync always, lease {lease:?}, 8 shards"
        );
        write_latency(&c, 1, secs).await;
        write_latency(&c, 32, secs).await;
        let (mut times, mut pauses) = (Vec::new(), Vec::new());
        for n in 0..trials {
            let (took, pause) = trial(&mut c, n % 8, n).await;
            times.push(took);
            pauses.extend(pause);
        }
        let rounds: u32 = env_or("TIERKV_BENCH_ROLLING", 2);
        let mut stops = Vec::new();
        for round in 0..rounds {
            stops.extend(rolling_restart(&mut c, round).await);
        }
        for (what, mut v) in [
            ("failover", times),
            ("handover pause", pauses),
            ("rolling restart, slowest write per stop", stops),
        ] {
            v.sort();
            if let (Some(p50), Some(max)) = (v.get(v.len() / 2), v.last()) {
                println!(
                    "{what} over {} trials: p50 {p50:?}, max {max:?} (lease {lease:?})",
                    v.len()
                );
            }
        }
    });
}
