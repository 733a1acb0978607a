//! Engine benchmarks on the local-filesystem backend with fsync on (SyncPolicy::Always).
//!
//! `cargo bench -p tierkv-engine --bench engine` runs the criterion groups and first prints a
//! latency report (throughput and p50/p95/p99/p99.9 from an HdrHistogram) for 1 and 64
//! concurrent writers, which is what the group-commit goal is stated in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hdrhistogram::Histogram;
use tierkv_engine::block_cache::MemBlockCache;
use tierkv_engine::clock::SystemClock;
use tierkv_engine::db::{Db, DbComponents, WalSettings};
use tierkv_engine::options::EngineOptions;
use tierkv_engine::shard::Shard;
use tierkv_engine::store::{ObjStore, StoreOptions};
use tierkv_engine::types::ShardId;

const VALUE: [u8; 256] = [b'v'; 256];

struct Bench {
    _dir: tempfile::TempDir,
    db: Db,
}

fn open(rt: &tokio::runtime::Runtime) -> Bench {
    let dir =
        tempfile::tempdir_in(std::env::var("TIERKV_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .expect("tempdir");
    let store = ObjStore::open(&StoreOptions {
        url: format!("file://{}", dir.path().join("objects").display()),
        ..StoreOptions::default()
    })
    .expect("store");
    let db = rt.block_on(async {
        Db::open(
            dir.path().join("wal"),
            &WalSettings::default(),
            EngineOptions::default(),
            DbComponents {
                store,
                cache: Arc::new(MemBlockCache::new(64 << 20)),
                clock: Arc::new(SystemClock),
            },
            [ShardId(0)],
        )
        .await
        .expect("open")
    });
    Bench { _dir: dir, db }
}

fn shard(b: &Bench) -> Shard {
    b.db.shard(ShardId(0)).expect("shard").clone()
}

/// Runs `writers` concurrent writers doing `per_writer` puts each; returns (ops/s, latencies).
async fn load(s: &Shard, writers: usize, per_writer: usize) -> (f64, Histogram<u64>) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3).expect("histogram");
                for i in 0..per_writer {
                    let t = Instant::now();
                    s.put(format!("w{w:03}-{i:08}"), &VALUE[..])
                        .await
                        .expect("put");
                    let _ = h.record(t.elapsed().as_micros() as u64);
                }
                h
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new(3).expect("histogram");
    for t in tasks {
        let h = t.await.expect("join");
        let _ = all.add(h);
    }
    let secs = start.elapsed().as_secs_f64();
    ((writers * per_writer) as f64 / secs, all)
}

fn report(rt: &tokio::runtime::Runtime) {
    println!("latency report: put, 256 B values, local fs backend, fsync on (group commit)");
    println!(
        "{:>8} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "writers", "ops/s", "p50 us", "p95 us", "p99 us", "p99.9 us"
    );
    let mut base = 0.0;
    for writers in [1usize, 8, 64] {
        let b = open(rt);
        let s = shard(&b);
        let per = (20_000 / writers).max(200);
        let (rate, h) = rt.block_on(load(&s, writers, per));
        if writers == 1 {
            base = rate;
        }
        println!(
            "{writers:>8} {rate:>10.0} {:>9} {:>9} {:>9} {:>9}   ({:.1}x the 1-writer rate, {} fsyncs for {} puts)",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.95),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            rate / base,
            b.db.wal_stats().syncs,
            writers * per,
        );
        rt.block_on(b.db.close(Duration::from_secs(30)))
            .expect("close");
    }
}

fn benches(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let b = open(rt);
    let s = shard(&b);
    let mut g = c.benchmark_group("put");
    g.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    g.bench_function("1_writer", |bench| {
        bench.to_async(rt).iter(|| {
            n += 1;
            let s = s.clone();
            let k = format!("single-{n:010}");
            async move { s.put(k, &VALUE[..]).await.expect("put") }
        });
    });
    g.bench_function("64_writers", |bench| {
        bench.to_async(rt).iter_custom(|iters| {
            let s = s.clone();
            async move {
                let per = (iters as usize).div_ceil(64);
                let start = Instant::now();
                let (_, _) = load(&s, 64, per).await;
                start.elapsed().mul_f64(iters as f64 / (per * 64) as f64)
            }
        });
    });
    g.finish();
    let mut g = c.benchmark_group("get");
    g.throughput(Throughput::Elements(1));
    rt.block_on(async {
        for i in 0..10_000 {
            s.put(format!("read-{i:06}"), &VALUE[..])
                .await
                .expect("put");
        }
    });
    let mut i = 0u64;
    g.bench_function("memtable_hit", |bench| {
        bench.to_async(rt).iter(|| {
            i = (i + 7919) % 10_000;
            let s = s.clone();
            let k = format!("read-{i:06}");
            async move { s.get(k.as_bytes()).await.expect("get").expect("present") }
        });
    });
    rt.block_on(s.flush()).expect("flush");
    g.bench_function("segment_cached_block", |bench| {
        bench.to_async(rt).iter(|| {
            i = (i + 7919) % 10_000;
            let s = s.clone();
            let k = format!("read-{i:06}");
            async move { s.get(k.as_bytes()).await.expect("get").expect("present") }
        });
    });
    g.finish();
    rt.block_on(b.db.close(Duration::from_secs(30)))
        .expect("close");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    report(&rt);
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    benches(&mut c, &rt);
    c.final_summary();
}
