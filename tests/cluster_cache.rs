//! The gateway cache tier end to end (design note 0008), over three `tierkv node`s and two
//! `tierkv gateway`s, each gateway with its own value cache (memory and disk tier):
//! strong reads after writes through the other gateway are never stale; eventual reads are
//! served from the cache and never staler than `max_staleness`; a gateway restarted with a
//! warm disk tier serves nothing unconfirmed; concurrent strong reads of one key cost the
//! nodes far fewer operations than reads, and none misses a write completed before it began;
//! strong reads under a leader's read lease (design note 0014) need no round trip, and a
//! write through the other gateway waits for the lease, so the next strong read sees it.

mod cluster;

use std::time::{Duration, Instant};

use cluster::{Cluster, Opts};

fn two_gateways() -> Opts {
    Opts {
        gateways: 2,
        ..Opts::default()
    }
}

struct Read {
    status: u16,
    body: String,
    cache: Option<String>,
}

async fn get(c: &Cluster, url: &str, key: &str, query: &str) -> Read {
    let r = c
        .http
        .get(format!("{url}/v1/kv/{key}{query}"))
        .send()
        .await
        .expect("get");
    let cache = r
        .headers()
        .get("x-tierkv-cache")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Read {
        status: r.status().as_u16(),
        cache,
        body: r.text().await.expect("body"),
    }
}

async fn put(c: &Cluster, url: &str, key: &str, value: &str) {
    let r = c
        .http
        .put(format!("{url}/v1/kv/{key}"))
        .body(value.to_owned())
        .send()
        .await
        .expect("put");
    assert!(r.status().is_success(), "put {key}: {}", r.status());
}

/// Sum of a counter over the running nodes.
async fn node_sum(c: &Cluster, name: &str) -> u64 {
    let mut total = 0;
    for id in c.running() {
        total += c.metric(id, name).await.unwrap_or(0);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strong_reads_are_never_stale_and_eventual_reads_respect_their_bound() {
    let c = Cluster::start(two_gateways()).await;
    let (a, b) = (c.gateway_url(0), c.gateway_url(1));
    // Strong: every write through A is seen by the next strong read through B, whose cache
    // holds the previous value each time.
    for i in 0..40 {
        put(&c, &a, "strong", &format!("v{i}")).await;
        let r = get(&c, &b, "strong", "").await;
        assert_eq!((r.status, r.body.as_str()), (200, format!("v{i}").as_str()));
        // Unchanged since: the cached version is confirmed without the value.
        let again = get(&c, &b, "strong", "").await;
        assert_eq!(again.body, format!("v{i}"));
        assert_eq!(again.cache.as_deref(), Some("revalidated"));
    }
    // Eventual within a long bound: the cache answers without a round trip, even though the
    // key changed through the other gateway meanwhile.
    put(&c, &a, "ev", "one").await;
    assert_eq!(get(&c, &b, "ev", "?consistency=eventual").await.body, "one");
    put(&c, &a, "ev", "two").await;
    let stale = get(&c, &b, "ev", "?consistency=eventual&max_staleness=3600s").await;
    assert_eq!(
        (stale.body.as_str(), stale.cache.as_deref()),
        ("one", Some("hit"))
    );
    // Bound 0: as fresh as a strong read.
    let fresh = get(&c, &b, "ev", "?consistency=eventual&max_staleness=0ms").await;
    assert_eq!(fresh.body, "two");
    // A bound of 300 ms: a read that starts 300 ms or more after a write completed sees it.
    let bound = Duration::from_millis(300);
    put(&c, &a, "bounded", "old").await;
    assert_eq!(get(&c, &b, "bounded", "").await.body, "old");
    put(&c, &a, "bounded", "new").await;
    let written = Instant::now();
    let mut saw_old = 0;
    loop {
        let started = Instant::now();
        let r = get(
            &c,
            &b,
            "bounded",
            "?consistency=eventual&max_staleness=300ms",
        )
        .await;
        if r.body == "old" {
            assert!(
                started < written + bound,
                "served a value {:?} staler than the bound",
                started - written
            );
            saw_old += 1;
        } else {
            assert_eq!(r.body, "new");
            if started >= written + bound + Duration::from_millis(200) {
                break;
            }
        }
        assert!(written.elapsed() < Duration::from_secs(10), "never fresh");
    }
    println!("{saw_old} eventual reads were answered from the cache within the bound");
    // A write through a gateway is visible to its own eventual reads at once: from the
    // cache when it held the key (the write replaced the value), from the leader when not
    // (a write adds no value to the cache).
    put(&c, &b, "fresh-key", "mine").await;
    let own = get(
        &c,
        &b,
        "fresh-key",
        "?consistency=eventual&max_staleness=3600s",
    )
    .await;
    assert_eq!(
        (own.body.as_str(), own.cache.as_deref()),
        ("mine", Some("miss"))
    );
    put(&c, &b, "own", "first").await;
    assert_eq!(get(&c, &b, "own", "").await.body, "first");
    put(&c, &b, "own", "mine").await;
    let own = get(&c, &b, "own", "?consistency=eventual&max_staleness=3600s").await;
    assert_eq!(
        (own.body.as_str(), own.cache.as_deref()),
        ("mine", Some("hit"))
    );
    // A bad bound is a 400.
    assert_eq!(get(&c, &b, "own", "?max_staleness=1s").await.status, 400);
    assert_eq!(
        get(&c, &b, "own", "?consistency=eventual&max_staleness=2h")
            .await
            .status,
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_restarted_with_a_warm_disk_tier_serves_nothing_stale() {
    let mut c = Cluster::start(two_gateways()).await;
    let a = c.gateway_url(0);
    let b = c.gateway_url(1);
    put(&c, &a, "warm-same", "kept").await;
    put(&c, &a, "warm-changed", "before").await;
    for k in ["warm-same", "warm-changed"] {
        assert_eq!(get(&c, &b, k, "").await.status, 200);
    }
    // A clean stop writes the memory tier to the disk tier.
    let status = c.stop_gateway(1).await;
    assert!(status.success(), "gateway exited with {status}");
    put(&c, &a, "warm-changed", "after").await;
    let b = c.restart_gateway(1);
    // Even with the loosest bound, nothing comes from the disk tier unconfirmed.
    let loose = "?consistency=eventual&max_staleness=3600s";
    let changed = get(&c, &b, "warm-changed", loose).await;
    assert_eq!(changed.body, "after");
    let same = get(&c, &b, "warm-same", loose).await;
    assert_eq!(
        (same.body.as_str(), same.cache.as_deref()),
        ("kept", Some("revalidated"))
    );
    let report: serde_json::Value = c
        .http
        .get(format!("{b}/admin/v1/hot-keys"))
        .bearer_auth(c.secret())
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert!(
        report["cache"][1]["hits"].as_u64() >= Some(1) && report["cache"][1]["tier"] == "disk",
        "the value came from the disk tier: {report}"
    );
    assert_eq!(
        report["reads"][0]["key"]
            .as_str()
            .map(|k| k.starts_with("warm-")),
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_strong_reads_of_one_key_coalesce() {
    let c = Cluster::start(Opts::default()).await;
    let url = c.url.clone();
    // Many connections: the reads really are concurrent.
    let http = reqwest::Client::builder()
        .default_headers(c.auth_headers())
        .pool_max_idle_per_host(128)
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    put(&c, &url, "hot", "v0").await;
    const READERS: usize = 64;
    const ROUNDS: usize = 10;
    let before = node_sum(&c, "tierkv_rpc_operations_total").await;
    for round in 1..=ROUNDS {
        // A write completes before the reads begin: none of them may miss it.
        let value = format!("v{round}");
        put(&c, &url, "hot", &value).await;
        let reads = (0..READERS).map(|_| {
            let http = http.clone();
            let u = format!("{url}/v1/kv/hot");
            async move {
                let r = http.get(u).send().await.expect("get");
                assert_eq!(r.status(), 200);
                r.text().await.expect("body")
            }
        });
        for got in futures::future::join_all(reads).await {
            assert_eq!(
                got, value,
                "a strong read missed a write completed before it"
            );
        }
    }
    let ops = node_sum(&c, "tierkv_rpc_operations_total").await - before;
    let reads = (READERS * ROUNDS) as u64;
    println!("{reads} strong reads and {ROUNDS} writes cost {ops} node operations");
    // Writes, status polls and the coalesced reads: far fewer than one per read.
    assert!(ops * 4 < reads, "{ops} node operations for {reads} reads");
    let coalesced = c
        .gateway_metric("tierkv_gateway_cache_coalesced_total")
        .await
        .expect("metric");
    assert!(
        coalesced > reads / 2,
        "{coalesced} of {reads} reads coalesced"
    );
}

/// Polls strong reads of `key` through `url` until one is answered under a read lease (the
/// shard was quiet for `cluster.read_lease_quiet`, 1 s by default); returns its body.
async fn until_leased(c: &Cluster, url: &str, key: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(c, url, key, "").await;
        assert_eq!(r.status, 200, "{key}: {}", r.body);
        if r.cache.as_deref() == Some("leased") {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "{key}: no read lease within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_through_another_gateway_wait_for_read_leases_and_are_never_missed() {
    let c = Cluster::start(Opts {
        // Read leases are off by default, in nodes and gateways (design note 0014).
        env: vec![("TIERKV_CLUSTER__READ_LEASE".to_owned(), "300ms".to_owned())],
        gateway_env: vec![(
            "TIERKV_GATEWAY__CACHE__READ_LEASES".to_owned(),
            "true".to_owned(),
        )],
        ..two_gateways()
    })
    .await;
    let (a, b) = (c.gateway_url(0), c.gateway_url(1));
    put(&c, &a, "leased", "v0").await;
    for i in 1..=3 {
        // B holds a lease on the key's shard: its strong reads need no round trip...
        let body = until_leased(&c, &b, "leased").await;
        assert_eq!(body, format!("v{}", i - 1));
        // ...until A's write, which the leader holds until the lease ended, has completed:
        // the next strong read through B sees it.
        put(&c, &a, "leased", &format!("v{i}")).await;
        let r = get(&c, &b, "leased", "").await;
        assert_eq!((r.status, r.body.as_str()), (200, format!("v{i}").as_str()));
        assert_ne!(r.cache.as_deref(), Some("leased"));
    }
    assert!(node_sum(&c, "tierkv_replica_read_lease_writes_held_total").await >= 3);
    let text = c.metrics_text(&b).await.expect("metrics");
    assert!(
        text.lines().any(|l| l
            .strip_prefix("tierkv_gateway_cache_reads_total{answer=\"leased\"} ")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|v| v >= 3)),
        "no leased reads counted:\n{text}"
    );
}
