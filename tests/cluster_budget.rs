//! Followers' memory (design note 0007): three `tierkv node` processes, node 3 with a much
//! smaller write-buffer budget (1 MiB, limit 2 MiB) than its peers (16 MiB, whose shards'
//! memtables alone may grow to 4 MiB each). Node 3 follows most shards, and its peers would
//! not flush them for their own budgets: node 3 asks their leaders to (`FlushRequest`), and
//! past its limit asks them to refuse writes. Its write buffers stay bounded, writes go on,
//! and nothing acknowledged is lost.

mod cluster;

use std::collections::HashMap;

use cluster::{Cluster, Opts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_a_small_budget_keeps_it_by_asking_its_leaders() {
    let small = [
        ("TIERKV_ENGINE__WRITE_BUFFER_BYTES", 1u64 << 20),
        ("TIERKV_ENGINE__MAX_UNFLUSHED_BYTES", 2 << 20),
    ];
    let c = Cluster::start(Opts {
        shards: 8,
        // The big nodes: 16 MiB over 8 shards, 4 MiB memtables.
        memtable_bytes: 4 << 20,
        node_env: small
            .iter()
            .map(|(k, v)| (3, (*k).to_owned(), v.to_string()))
            .collect(),
        ..Opts::default()
    })
    .await;
    let mut acked: HashMap<String, String> = HashMap::new();
    let mut refused = 0u32;
    // ~8 MiB through the gateway, 1 KiB values.
    for i in 0..8_000u32 {
        let key = format!("k{:05}", i % 4000);
        let value = format!("{i:>1000}");
        match c.put(&key, &value).await {
            Ok((200 | 201, _)) => {
                acked.insert(key, value);
            }
            Ok((503, _)) => refused += 1,
            other => panic!("put {key}: {other:?}"),
        }
    }
    let peak = c
        .metric(3, "tierkv_write_buffer_peak_bytes")
        .await
        .expect("node 3's peak");
    let soft = c
        .metric(3, "tierkv_flush_requests_sent_total{kind=\"soft\"}")
        .await
        .unwrap_or(0);
    let received = c
        .metric(1, "tierkv_flush_requests_received_total{kind=\"soft\"}")
        .await
        .unwrap_or(0)
        + c.metric(2, "tierkv_flush_requests_received_total{kind=\"soft\"}")
            .await
            .unwrap_or(0);
    eprintln!(
        "node 3: peak {peak}, {soft} soft flush requests sent ({received} received by nodes 1 and 2), {refused} writes refused"
    );
    assert!(soft > 0, "node 3 never asked its leaders to flush");
    assert!(received > 0, "no leader got a flush request");
    // Its limit plus what arrives while its requests travel; without them its copies of the
    // 8 shards would hold ~8 MiB (the leaders' own budgets never ask them to flush).
    assert!(
        peak <= 3 << 20,
        "node 3's write buffers peaked at {peak} bytes, past its limit of 2 MiB by over 1 MiB"
    );
    assert!(
        refused < 4000,
        "most writes went through: {refused} of 8,000 refused"
    );
    for (key, value) in &acked {
        assert_eq!(
            c.get(key).await.expect("get"),
            (200, value.clone()),
            "{key}"
        );
    }
}
