//! The counters operators read the batching factors from: client operations and the
//! gateway batches that carried them (`tierkv_rpc_*` on nodes, `tierkv_gateway_node_*` on
//! the gateway), WAL appends and replication messages; and the gateway's routing counters.
//! Also the families each process exports, with their types and label sets.

mod cluster;

use std::collections::BTreeSet;

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

/// `(name, type)` of every family in a `/metrics` text, from its `# TYPE` lines.
fn families(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect()
}

/// `name{label,...}` of every labelled sample in a `/metrics` text.
fn label_sets(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, mut rest) = l.split_once('{')?;
            let mut keys = Vec::new();
            // `key="value"` pairs; values may hold `{`, `}` and `,` (routes) and `\"`.
            while let Some((key, after)) = rest.split_once("=\"") {
                keys.push(key.trim_start_matches(','));
                let mut escaped = false;
                let end = after
                    .char_indices()
                    .find_map(|(i, ch)| match (escaped, ch) {
                        (false, '"') => Some(i),
                        (false, '\\') => {
                            escaped = true;
                            None
                        }
                        _ => {
                            escaped = false;
                            None
                        }
                    })?;
                rest = after.get(end + 1..)?;
                if rest.starts_with('}') {
                    break;
                }
            }
            Some(format!("{name}{{{}}}", keys.join(",")))
        })
        .collect()
}

/// The label values of `label` in the samples of `name`.
fn label_values(text: &str, name: &str, label: &str) -> BTreeSet<String> {
    let prefix = format!("{name}{{{label}=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix)?.split_once('"'))
        .map(|(v, _)| v.to_owned())
        .collect()
}

fn owned(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect()
}

/// The families a node and a gateway export, with their types and label sets: the names
/// dashboards and alerts use. A node exports its replicas, client RPCs, transport, WAL,
/// shards, object-store calls and block cache; a gateway its HTTP figures and its cluster
/// client's, its read tier's and its per-key limits', and no storage figures. This cluster
/// speaks plain HTTP, so neither exports the `tierkv_tls_*` families (the lists below are
/// exact; `cluster_tls.rs` checks those families on a cluster over TLS).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metric_families_keep_their_names_types_and_labels() {
    let c = Cluster::start(Opts::default()).await;
    let (status, _) = c.put("families", "v").await.expect("put");
    assert_eq!(status, 201);
    let gateway = c.metrics_text(&c.url).await.expect("gateway metrics");
    assert_eq!(
        families(&gateway),
        owned(&[
            ("tierkv_gateway_auth_failures_total", "counter"),
            ("tierkv_gateway_auth_keys", "gauge"),
            ("tierkv_gateway_auth_keyset_version", "gauge"),
            ("tierkv_gateway_backoffs_total", "counter"),
            ("tierkv_gateway_cache_coalesced_total", "counter"),
            ("tierkv_gateway_cache_flights_total", "counter"),
            ("tierkv_gateway_cache_lookups_total", "counter"),
            ("tierkv_gateway_cache_reads_total", "counter"),
            ("tierkv_gateway_gave_up_total", "counter"),
            ("tierkv_gateway_map_changes_total", "counter"),
            ("tierkv_gateway_map_version", "gauge"),
            ("tierkv_gateway_members", "gauge"),
            ("tierkv_gateway_members_answering", "gauge"),
            ("tierkv_gateway_node_operations_total", "counter"),
            ("tierkv_gateway_node_requests_total", "counter"),
            ("tierkv_gateway_outcome_unknown_total", "counter"),
            ("tierkv_gateway_retries_total", "counter"),
            ("tierkv_gateway_throttled_total", "counter"),
            ("tierkv_http_request_duration_seconds", "histogram"),
            ("tierkv_http_requests_in_flight", "gauge"),
            ("tierkv_http_requests_total", "counter"),
            ("tierkv_shards", "gauge"),
            ("tierkv_up", "gauge"),
        ]),
        "{gateway}"
    );
    let want: BTreeSet<String> = [
        "tierkv_gateway_auth_failures_total{reason}",
        "tierkv_gateway_cache_lookups_total{tier,result}",
        "tierkv_gateway_cache_reads_total{answer}",
        "tierkv_gateway_retries_total{reason}",
        "tierkv_gateway_throttled_total{reason}",
        "tierkv_http_request_duration_seconds_bucket{route,method,le}",
        "tierkv_http_request_duration_seconds_count{route,method}",
        "tierkv_http_request_duration_seconds_sum{route,method}",
        "tierkv_http_requests_total{route,method,status}",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(label_sets(&gateway), want, "{gateway}");
    assert_eq!(
        label_values(&gateway, "tierkv_gateway_retries_total", "reason"),
        [
            "not_hosted",
            "not_leader",
            "read_failed",
            "redirect",
            "unreachable"
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    );
    assert!(gateway.contains(
        "tierkv_http_requests_total{route=\"/v1/kv/{key}\",method=\"PUT\",status=\"201\"} 1\n"
    ));
    // The read tier and the limits (design note 0008): no per-key labels.
    let set = |v: &[&str]| {
        v.iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<String>>()
    };
    assert_eq!(
        label_values(&gateway, "tierkv_gateway_cache_reads_total", "answer"),
        set(&["hit", "leased", "miss", "revalidated"])
    );
    assert_eq!(
        label_values(&gateway, "tierkv_gateway_cache_lookups_total", "tier"),
        set(&["disk", "memory"])
    );
    assert_eq!(
        label_values(&gateway, "tierkv_gateway_throttled_total", "reason"),
        set(&["key_read_rate", "key_write_rate"])
    );

    let node = c.metrics_text(&c.node_url(1)).await.expect("node metrics");
    assert_eq!(
        families(&node),
        owned(&[
            ("tierkv_backpressure_total", "counter"),
            ("tierkv_block_cache_hits_by_tier_total", "counter"),
            ("tierkv_block_cache_hits_total", "counter"),
            ("tierkv_block_cache_misses_total", "counter"),
            ("tierkv_compaction_bytes_total", "counter"),
            ("tierkv_compaction_duration_seconds", "histogram"),
            ("tierkv_compaction_errors_total", "counter"),
            ("tierkv_compaction_queue", "gauge"),
            ("tierkv_compactions_total", "counter"),
            ("tierkv_flush_bytes_total", "counter"),
            ("tierkv_flush_duration_seconds", "histogram"),
            ("tierkv_flush_errors_total", "counter"),
            ("tierkv_flush_queue", "gauge"),
            ("tierkv_flush_requests_received_total", "counter"),
            ("tierkv_flush_requests_sent_total", "counter"),
            ("tierkv_flush_triggers_total", "counter"),
            ("tierkv_flushes_total", "counter"),
            ("tierkv_frozen_memtable_bytes", "gauge"),
            ("tierkv_frozen_memtables", "gauge"),
            ("tierkv_memtable_bytes", "gauge"),
            ("tierkv_memtable_target_bytes", "gauge"),
            ("tierkv_node_poisoned_replicas", "gauge"),
            ("tierkv_node_read_leases", "gauge"),
            ("tierkv_node_rejoining_replicas", "gauge"),
            ("tierkv_node_replicas", "gauge"),
            ("tierkv_object_store_errors_total", "counter"),
            ("tierkv_object_store_get_bytes_total", "counter"),
            ("tierkv_object_store_put_bytes_total", "counter"),
            ("tierkv_object_store_request_duration_seconds", "histogram"),
            ("tierkv_point_read_object_store_gets_total", "counter"),
            ("tierkv_point_reads_over_one_get_total", "counter"),
            ("tierkv_point_reads_total", "counter"),
            ("tierkv_replica_handovers_total", "counter"),
            ("tierkv_replica_leaderships_total", "counter"),
            ("tierkv_replica_learners", "gauge"),
            ("tierkv_replica_move_appends_throttled_total", "counter"),
            ("tierkv_replica_move_lag_records", "gauge"),
            ("tierkv_replica_moves_total", "counter"),
            ("tierkv_replica_read_lease_requests_total", "counter"),
            ("tierkv_replica_read_lease_writes_held_total", "counter"),
            ("tierkv_replication_batches_total", "counter"),
            ("tierkv_replication_messages_dropped_total", "counter"),
            ("tierkv_replication_messages_sent_total", "counter"),
            ("tierkv_replication_streams_failed_total", "counter"),
            ("tierkv_replication_unapplied_records", "gauge"),
            ("tierkv_replication_uncommitted_records", "gauge"),
            ("tierkv_rpc_operations_total", "counter"),
            ("tierkv_rpc_requests_total", "counter"),
            ("tierkv_segment_bytes", "gauge"),
            ("tierkv_segment_index_bytes", "gauge"),
            ("tierkv_segments", "gauge"),
            ("tierkv_segments_deleted_total", "counter"),
            ("tierkv_ttl_deletes_total", "counter"),
            ("tierkv_unflushed_bytes", "gauge"),
            ("tierkv_wal_appends_total", "counter"),
            ("tierkv_wal_bytes", "gauge"),
            ("tierkv_wal_files", "gauge"),
            ("tierkv_wal_fsync_duration_seconds", "histogram"),
            ("tierkv_wal_oldest_file_age_seconds", "gauge"),
            ("tierkv_wal_poisoned", "gauge"),
            ("tierkv_wal_syncs_total", "counter"),
            ("tierkv_write_buffer_budget_bytes", "gauge"),
            ("tierkv_write_buffer_limit_bytes", "gauge"),
            ("tierkv_write_buffer_peak_bytes", "gauge"),
        ]),
        "{node}"
    );
    let want: BTreeSet<String> = [
        "tierkv_block_cache_hits_by_tier_total{tier}",
        "tierkv_compaction_duration_seconds_bucket{le}",
        "tierkv_flush_duration_seconds_bucket{le}",
        "tierkv_flush_requests_received_total{kind}",
        "tierkv_flush_requests_sent_total{kind}",
        "tierkv_flush_triggers_total{reason}",
        "tierkv_node_replicas{role}",
        "tierkv_replica_moves_total{kind}",
        "tierkv_replica_read_lease_requests_total{result}",
        "tierkv_object_store_request_duration_seconds_bucket{le}",
        "tierkv_wal_fsync_duration_seconds_bucket{le}",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(label_sets(&node), want, "{node}");
    assert_eq!(
        label_values(&node, "tierkv_flush_triggers_total", "reason"),
        [
            "budget",
            "flush_request",
            "memtable_full",
            "shutdown",
            "wal_age",
            "wal_size"
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    );
    assert_eq!(
        label_values(&node, "tierkv_node_replicas", "role"),
        ["candidate", "follower", "leader", "recovering"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
}
