//! A leader that is paused (SIGSTOP: alive, holding its sockets, silent — what a partition
//! looks like from its side) loses the shard to a new epoch; once resumed it cannot
//! acknowledge a write or serve a strong read, and it steps down.

mod cluster;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::{Cluster, Opts};
use tierkv_engine::types::{ReadConsistency, ShardId, WriteBatch};
use tierkv_node::wire::proto::{Request, Response};

/// Writes `key` through the gateway until it is acknowledged (errors around a failover are
/// expected), within `within`.
async fn put_until_ok(c: &Cluster, key: &str, value: &str, within: Duration) {
    let deadline = Instant::now() + within;
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
async fn a_paused_leader_cannot_ack_after_a_new_epoch_and_steps_down() {
    let opts = Opts {
        shards: 2,
        ..Opts::default()
    };
    let c = Cluster::start(opts).await;
    let shard = 0;
    let keys = c.keys_in_shard(shard, "p-", 40);
    let old = c.wait_leader(shard, None, Duration::from_secs(20)).await;
    let old_epoch = c.status(old).await.expect("status")[&shard].epoch;
    for k in &keys[..10] {
        put_until_ok(&c, k, &format!("v-{k}"), Duration::from_secs(10)).await;
    }

    c.pause(old);
    let new = c
        .wait_leader(shard, Some(old), Duration::from_secs(15))
        .await;
    let new_epoch = c.status(new).await.expect("status")[&shard].epoch;
    assert!(
        new_epoch > old_epoch,
        "new epoch {new_epoch} <= {old_epoch}"
    );
    for k in &keys[10..30] {
        put_until_ok(&c, k, &format!("v-{k}"), Duration::from_secs(20)).await;
    }

    c.resume(old);
    // Straight after waking up, the old leader still believes it leads: it must neither
    // acknowledge a write nor answer a strong read.
    let mut calls = Vec::new();
    let cr = &c;
    for (i, k) in keys[30..].iter().enumerate() {
        let mut key = vec![0x01];
        key.extend_from_slice(k.as_bytes());
        let write = Request::Write {
            shard: ShardId(shard),
            batch: WriteBatch::new()
                .put(Bytes::from(key.clone()), Bytes::from(format!("stale-{i}"))),
        };
        let read = Request::Get {
            shard: ShardId(shard),
            key: Bytes::from(key),
            consistency: ReadConsistency::Strong,
        };
        calls.push(async move { (cr.rpc(old, &write).await, cr.rpc(old, &read).await) });
    }
    for (w, r) in futures::future::join_all(calls).await {
        assert!(
            !matches!(w, Ok(Response::Written { .. })),
            "the stale leader acknowledged a write: {w:?}"
        );
        assert!(
            !matches!(r, Ok(Response::Got(_))),
            "the stale leader served a strong read: {r:?}"
        );
    }

    // It steps down and follows the new leader.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = c.status(old).await {
            let s = &st[&shard];
            if s.role == "follower" && s.epoch >= new_epoch {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the old leader did not step down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing it was sent after waking up took effect; everything acknowledged did.
    for k in &keys[..30] {
        assert_eq!(c.get(k).await, Ok((200, format!("v-{k}"))), "key {k}");
    }
    for k in &keys[30..] {
        assert_eq!(c.get(k).await.map(|(s, _)| s), Ok(404), "key {k}");
    }
}
