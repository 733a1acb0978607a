//! A follower that was down catches up: from the leader's log when the records it missed
//! are still there, and from the manifest (segments shared through object storage) when the
//! leader already flushed them. Checked with eventual reads served by the follower itself.
//! A node stopped with SIGTERM exits although its peers keep replication streams open to
//! it, and catches up like the others when it comes back.

mod cluster;

use std::time::{Duration, Instant};

use cluster::{Cluster, Opts};

const SHARD: u32 = 0;

/// A two-shard cluster with memtables of `memtable_bytes`, and the leader of [`SHARD`].
/// Handovers are off: these tests name one leader and one follower for their whole run
/// (`cluster_handover.rs` covers leadership moving back).
async fn start(memtable_bytes: u64) -> (Cluster, u32) {
    let c = Cluster::start(Opts {
        shards: 2,
        memtable_bytes,
        env: vec![("TIERKV_CLUSTER__HANDOVER_AFTER".into(), "0s".into())],
        ..Opts::default()
    })
    .await;
    let leader = c.wait_leader(SHARD, None, Duration::from_secs(20)).await;
    (c, leader)
}

async fn put_all(c: &Cluster, keys: &[String], pad: usize) {
    for k in keys {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((s, _)) = c.put(k, &value(k, pad)).await
                && (200..300).contains(&s)
            {
                break;
            }
            assert!(Instant::now() < deadline, "PUT {k} never succeeded");
        }
    }
}

fn value(k: &str, pad: usize) -> String {
    format!("v-{k}-{}", "x".repeat(pad))
}

/// Waits until `node` has applied everything the leader committed for `SHARD`.
async fn wait_caught_up(c: &Cluster, node: u32, leader: u32) -> cluster::ShardState {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let l = c.status(leader).await.map(|s| s[&SHARD].clone());
        let f = c.status(node).await.map(|s| s[&SHARD].clone());
        if let (Some(l), Some(f)) = (l, f)
            && f.applied_seq >= l.commit_seq
            && f.role == "follower"
        {
            return f;
        }
        assert!(Instant::now() < deadline, "node {node} did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_follower_catches_up_from_the_log() {
    let (mut c, leader) = start(64 << 20).await;
    // Exactly one strong-read lease per shard once the leaders are settled, never more.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut leases = 0;
        for n in 1..=3 {
            leases += c.metric(n, "tierkv_node_read_leases").await.unwrap_or(0);
        }
        assert!(leases <= 2, "{leases} read leases for 2 shards");
        if leases == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "leases did not settle: {leases}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let follower = (1..=3).find(|n| *n != leader).expect("a follower");
    let keys = c.keys_in_shard(SHARD, "log-", 300);
    put_all(&c, &keys[..50], 10).await;
    c.kill(follower);
    put_all(&c, &keys[50..], 10).await;
    let before = c.status(leader).await.expect("leader status")[&SHARD].clone();
    assert_eq!(
        before.flushed_seq, 0,
        "nothing should be flushed in this test"
    );
    c.restart(follower);
    let f = wait_caught_up(&c, follower, leader).await;
    assert_eq!(
        f.flushed_seq, 0,
        "the follower caught up from the log alone"
    );
    c.assert_node_holds(follower, SHARD, &keys, |k| value(k, 10))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_follower_catches_up_from_the_manifest() {
    let (mut c, leader) = start(64 << 10).await;
    let follower = (1..=3).find(|n| *n != leader).expect("a follower");
    let keys = c.keys_in_shard(SHARD, "man-", 1200);
    put_all(&c, &keys[..20], 200).await;
    let was = c.status(follower).await.expect("follower status")[&SHARD].clone();
    c.kill(follower);
    put_all(&c, &keys[20..], 200).await;
    // The leader flushed past everything the follower had: those records left its log.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let l = c.status(leader).await.expect("leader status")[&SHARD].clone();
        if l.flushed_seq > was.last_seq + 100 {
            break;
        }
        assert!(Instant::now() < deadline, "the leader did not flush: {l:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.restart(follower);
    let f = wait_caught_up(&c, follower, leader).await;
    assert!(
        f.flushed_seq > was.last_seq,
        "the follower should have installed a manifest past its old log end: {f:?}"
    );
    c.assert_node_holds(follower, SHARD, &keys, |k| value(k, 200))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_stopped_with_sigterm_exits_and_catches_up_after_restart() {
    let (mut c, leader) = start(64 << 20).await;
    let keys = c.keys_in_shard(SHARD, "term-", 100);
    put_all(&c, &keys[..50], 10).await;
    // Both followers stream to the leader: a graceful stop must not wait for them.
    let status = c.terminate(leader).await;
    assert!(status.success(), "node {leader} exited with {status}");
    put_all(&c, &keys[50..], 10).await;
    let new_leader = c
        .wait_leader(SHARD, Some(leader), Duration::from_secs(20))
        .await;
    c.restart(leader);
    wait_caught_up(&c, leader, new_leader).await;
    c.assert_node_holds(leader, SHARD, &keys, |k| value(k, 10))
        .await;
}

/// A restarted node says it is ready (`/health/ready`, the signal a rolling restart waits
/// for) only once each of its replicas holds everything its leader committed, not as soon
/// as it has heard of a leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_node_is_ready_only_once_caught_up() {
    let (mut c, leader) = start(64 << 20).await;
    let follower = (1..=3).find(|n| *n != leader).expect("a follower");
    let mut keys = c.keys_in_shard(SHARD, "ready-", 300);
    keys.extend(c.keys_in_shard(1, "ready-other-", 300));
    c.kill(follower);
    put_all(&c, &keys, 100).await;
    c.restart(follower);
    let ready_url = format!("{}/health/ready", c.node_url(follower));
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http.get(&ready_url).send().await.expect("node answers");
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(
            Instant::now() < deadline,
            "never ready: {:?}",
            r.text().await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // No write since the restart: the leaders' commit points stand still.
    let mine = c.status(follower).await.expect("follower status");
    for (shard, s) in &mine {
        let (l, _) = c.leader_of(*shard, None).await.expect("a leader");
        let lead = c.status(l).await.expect("leader status")[shard].clone();
        assert!(
            s.applied_seq >= lead.commit_seq,
            "shard {shard}: ready with applied {} < the leader's commit {}",
            s.applied_seq,
            lead.commit_seq
        );
    }
}
