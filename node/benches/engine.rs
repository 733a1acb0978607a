//! Engine benchmarks on the local-filesystem backend with fsync on (SyncPolicy::Always),
//! through the one write path: a node whose shard has one replica (as `tierkv serve` runs
//! it), its replication driver sequencing every put.
//!
//! `cargo bench -p tierkv-node --bench engine` runs the criterion groups and first prints a
//! latency report (throughput and p50/p95/p99/p99.9 from an HdrHistogram) for 1 and 64
//! concurrent writers, which is what the group-commit goal is stated in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hdrhistogram::Histogram;
use tierkv_engine::block_cache::MemBlockCache;
use tierkv_engine::clock::SystemClock;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::store::{ObjStore, StoreOptions};
use tierkv_engine::types::{ReadConsistency, ShardId, WriteBatch};
use tierkv_engine::wal::WalSettings;
use tierkv_node::ShardHandle;
use tierkv_node::node::{Node, NodeComponents, NodeOptions};
use tierkv_node::settings::ClusterSettings;

const VALUE: [u8; 256] = [b'v'; 256];

struct Bench {
    _dir: tempfile::TempDir,
    node: Node,
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
    let addr = "127.0.0.1:1";
    let node = rt.block_on(async {
        let node = Node::open(
            NodeOptions {
                cluster: ClusterSettings::default().one_replica(addr),
                advertise: addr.to_owned(),
                shards: 1,
                engine: EngineOptions::default(),
                wal: WalSettings::default(),
                data_dir: dir.path().to_path_buf(),
            },
            NodeComponents {
                store,
                cache: Arc::new(MemBlockCache::new(64 << 20)),
                clock: Arc::new(SystemClock),
            },
        )
        .await
        .expect("open");
        let serving = shard_of(&node).wait_serving(Duration::from_secs(10)).await;
        assert!(serving, "the shard does not serve");
        node
    });
    Bench { _dir: dir, node }
}

fn shard_of(node: &Node) -> ShardHandle {
    node.shard(ShardId(0)).expect("shard").clone()
}

fn shard(b: &Bench) -> ShardHandle {
    shard_of(&b.node)
}

async fn put(s: &ShardHandle, key: String) {
    s.write(WriteBatch::new().put(key, &VALUE[..]))
        .await
        .expect("put");
}

async fn get(s: &ShardHandle, key: String) {
    s.get(key.as_bytes(), ReadConsistency::Strong)
        .await
        .expect("get")
        .expect("present");
}

/// Runs `writers` concurrent writers doing `per_writer` puts each; returns (ops/s, latencies).
async fn load(s: &ShardHandle, writers: usize, per_writer: usize) -> (f64, Histogram<u64>) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3).expect("histogram");
                for i in 0..per_writer {
                    let t = Instant::now();
                    put(&s, format!("w{w:03}-{i:08}")).await;
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
            b.node.wal_stats().syncs,
            writers * per,
        );
        rt.block_on(b.node.shutdown(Duration::from_secs(30)));
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
            async move { put(&s, k).await }
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
            put(&s, format!("read-{i:06}")).await;
        }
    });
    let mut i = 0u64;
    g.bench_function("memtable_hit", |bench| {
        bench.to_async(rt).iter(|| {
            i = (i + 7919) % 10_000;
            let s = s.clone();
            let k = format!("read-{i:06}");
            async move { get(&s, k).await }
        });
    });
    rt.block_on(s.shard().flush()).expect("flush");
    g.bench_function("segment_cached_block", |bench| {
        bench.to_async(rt).iter(|| {
            i = (i + 7919) % 10_000;
            let s = s.clone();
            let k = format!("read-{i:06}");
            async move { get(&s, k).await }
        });
    });
    g.finish();
    rt.block_on(b.node.shutdown(Duration::from_secs(30)));
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
