//! The counters operators read the batching factors from: client operations and the
//! gateway batches that carried them (`tierkv_rpc_*` on nodes, `tierkv_gateway_node_*` on
//! the gateway), WAL appends and replication messages; and the gateway's routing counters.

mod cluster;

use cluster::{Cluster, Opts};
use futures::future::join_all;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_count_client_operations_batches_and_replicated_records() {
    let c = Cluster::start(Opts::default()).await;
    let sum = |name: &'static str| {
        let c = &c;
        async move {
            let mut total = 0;
            for n in 1..=3 {
                total += c.metric(n, name).await.expect("node answers /metrics");
            }
            total
        }
    };
    let ops_before = sum("tierkv_rpc_operations_total").await;
    let reqs_before = sum("tierkv_rpc_requests_total").await;
    let appends_before = sum("tierkv_wal_appends_total").await;
    let gw = |name: &'static str| {
        let c = &c;
        async move {
            c.gateway_metric(name)
                .await
                .expect("gateway answers /metrics")
        }
    };
    let gw_ops_before = gw("tierkv_gateway_node_operations_total").await;

    const WRITES: u64 = 40;
    let puts = (0..WRITES).map(|i| {
        let c = &c;
        async move { c.put(&format!("metrics-{i}"), "v").await }
    });
    for r in join_all(puts).await {
        let (status, _) = r.expect("put");
        assert_eq!(status, 201);
    }

    let ops = sum("tierkv_rpc_operations_total").await - ops_before;
    let reqs = sum("tierkv_rpc_requests_total").await - reqs_before;
    let appends = sum("tierkv_wal_appends_total").await - appends_before;
    // Every write reached its leader as one operation (a redirect or retry adds more).
    assert!(ops >= WRITES, "{ops} operations for {WRITES} writes");
    assert!(
        (1..=ops).contains(&reqs),
        "{reqs} requests carried {ops} operations"
    );
    // Each acknowledged write is durable on at least W = 2 replicas' WALs.
    assert!(
        appends >= 2 * WRITES,
        "{appends} WAL appends for {WRITES} acknowledged writes"
    );

    // The gateway counts what it sent (its status polls are operations too), and exports no
    // engine figures of its own: a gateway has no WAL.
    let gw_ops = gw("tierkv_gateway_node_operations_total").await - gw_ops_before;
    assert!(gw_ops >= WRITES, "the gateway sent {gw_ops} operations");
    assert!(gw("tierkv_gateway_node_requests_total").await >= 1);
    assert_eq!(gw("tierkv_gateway_members").await, 3);
    assert_eq!(gw("tierkv_gateway_gave_up_total").await, 0);
    let text = c.metrics_text(&c.url).await.expect("gateway metrics");
    assert!(!text.contains("tierkv_wal_"), "{text}");
}
