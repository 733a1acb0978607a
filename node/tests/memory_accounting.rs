//! The write-buffer accounting (design note 0007) against what the process really holds: a
//! one-replica node in this process takes ~48 MiB of writes (1 KiB values, a fifth of them
//! overwrites, which the replication log keeps until the flush) with a budget that never
//! flushes; the growth of the process's resident memory must be within 20 % of the growth of
//! the accounted write-buffer bytes. (One test per process: nextest runs each test in a
//! process of its own, so nothing else allocates meanwhile.)

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::OneReplica;
use tierkv_engine::clock::SystemClock;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::routing::shard_for;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::WriteBatch;

const SHARDS: u32 = 4;

/// Resident memory of this process, in bytes (Linux: `/proc/self/statm`, in pages).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounted_write_buffers_match_resident_memory_within_a_fifth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ObjStore::in_memory();
    let opened = OneReplica {
        shards: SHARDS,
        engine: EngineOptions {
            write_buffer_bytes: 1 << 30,
            max_unflushed_bytes: 1 << 30,
            ..EngineOptions::default()
        },
        ..OneReplica::default()
    };
    let node = opened.open(dir.path(), &store, Arc::new(SystemClock)).await;
    let buffers = node.write_buffers().clone();
    // Warm up the allocator, the runtime and the WAL with a first batch of writes, then
    // measure the second.
    let write = |from: u64, to: u64| {
        let node = node.clone();
        async move {
            let writers = (0..8u64).map(|w| {
                let node = node.clone();
                async move {
                    let mut i = from + w;
                    while i < to {
                        // 4 in 5 writes are new keys, 1 in 5 overwrites one.
                        let k = if i % 5 == 4 { i / 2 } else { i };
                        let key = format!("user{k:010}");
                        let shard = shard_for(key.as_bytes(), SHARDS);
                        let h = node.shard(shard).expect("hosted");
                        let v = Bytes::from(format!("{i:>1024}"));
                        h.write(WriteBatch::new().put(key, v)).await.expect("write");
                        i += 8;
                    }
                }
            });
            futures::future::join_all(writers).await;
        }
    };
    write(0, 4_000).await;
    let (rss0, acc0) = (rss(), buffers.total_bytes());
    write(4_000, 52_000).await;
    let (rss1, acc1) = (rss(), buffers.total_bytes());
    let grew = rss1.saturating_sub(rss0) as f64;
    let accounted = (acc1 - acc0) as f64;
    let ratio = accounted / grew;
    eprintln!(
        "resident memory grew {:.1} MiB, accounted write buffers {:.1} MiB: {:.2}",
        grew / 1048576.0,
        accounted / 1048576.0,
        ratio
    );
    assert!(
        (0.8..=1.2).contains(&ratio),
        "accounted {accounted} bytes for {grew} bytes of resident memory (ratio {ratio:.2})"
    );
    assert_eq!(buffers.frozen_bytes(), 0, "nothing was frozen");
    node.abandon().await;
}
