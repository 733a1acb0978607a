//! The cluster as separate processes on S3-compatible object storage (moto, started by
//! `scripts/test`): epoch claims, manifests, segments and the shard map all go through S3's
//! conditional puts. Writes survive a leader kill and every acknowledged one is readable.
//!
//! Configure with `TIERKV_TEST_S3_ENDPOINT` and `TIERKV_TEST_S3_BUCKET`; without them the
//! test returns early, unless `TIERKV_REQUIRE_S3=1` (set by the test script).

mod cluster;

use std::time::{Duration, Instant};

use cluster::{Cluster, Opts};

fn s3_opts() -> Option<Opts> {
    let (Ok(endpoint), Ok(bucket)) = (
        std::env::var("TIERKV_TEST_S3_ENDPOINT"),
        std::env::var("TIERKV_TEST_S3_BUCKET"),
    ) else {
        assert!(
            std::env::var("TIERKV_REQUIRE_S3").is_err(),
            "TIERKV_REQUIRE_S3 is set but TIERKV_TEST_S3_ENDPOINT/BUCKET are not"
        );
        eprintln!("skipping: no S3 endpoint configured");
        return None;
    };
    let prefix = format!("cluster-{:016x}", rand::random::<u64>());
    let env = [
        ("TIERKV_STORE__S3__ENDPOINT", endpoint.as_str()),
        ("TIERKV_STORE__S3__ALLOW_HTTP", "true"),
        ("TIERKV_STORE__S3__ACCESS_KEY_ID", "test"),
        ("TIERKV_STORE__S3__SECRET_ACCESS_KEY", "test"),
    ];
    Some(Opts {
        shards: 2,
        memtable_bytes: 32 << 10,
        store_url: Some(format!("s3://{bucket}/{prefix}")),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Opts::default()
    })
}

async fn put_until_ok(c: &Cluster, key: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((s, _)) = c.put(key, value).await
            && (200..300).contains(&s)
        {
            return;
        }
        assert!(Instant::now() < deadline, "PUT {key} never succeeded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_on_s3_keeps_acknowledged_writes_across_a_leader_kill() {
    let Some(opts) = s3_opts() else { return };
    let mut c = Cluster::start(opts).await;
    let shard = 0;
    let keys = c.keys_in_shard(shard, "s3-", 400);
    let value = |k: &str| format!("{k}-{}", "v".repeat(200));
    for k in &keys[..200] {
        put_until_ok(&c, k, &value(k)).await;
    }
    let leader = c.wait_leader(shard, None, Duration::from_secs(20)).await;
    // 200 writes of ~200 bytes fill several 32 KiB memtables: the leader flushes to S3.
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.status(leader).await.expect("status")[&shard].flushed_seq == 0 {
        assert!(
            Instant::now() < deadline,
            "the leader flushed nothing to S3"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.kill(leader);
    for k in &keys[200..] {
        put_until_ok(&c, k, &value(k)).await;
    }
    c.restart(leader);
    for k in &keys {
        assert_eq!(c.get(k).await, Ok((200, value(k))), "key {k}");
    }
}
