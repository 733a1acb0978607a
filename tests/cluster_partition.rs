//! Partitions at process level: every node → node and gateway → node connection of the
//! cluster goes through a TCP proxy of the test (`cluster/proxy.rs`, the processes dial it
//! through `cluster.peer_addresses`), and a test black-holes links (connections stay open
//! and silent: half-open peers) or delays them while clients write, read strongly and CAS
//! through the gateway.
//!
//! With its leader cut off from both followers (both ways, or only what it sends), a shard
//! elects a new leader within the lease plus a margin and writes continue; the old leader
//! serves no strong read and acknowledges no write meanwhile; after the heal it follows
//! the new epoch. With the followers' answers to the leader lost (one way, the other
//! direction), the leader loses its lease and the shard still ends up served. A delayed
//! link slows the shard down without breaking it. Every acknowledged write is then readable
//! and every key's history passes the linearizability checker. `TIERKV_TEST_SEED=<n>`
//! replays the clients' choices.

mod cluster;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::load::{self, Load};
use cluster::proxy::End;
use cluster::{Cluster, Opts};
use tierkv_engine::types::{ReadConsistency, ShardId, WriteBatch};
use tierkv_node::wire::proto::{Request, Response};

/// What a test does to the links of shard 0's leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing passes between the leader and either follower.
    BothWays,
    /// Nothing passes between the leader and any other process, the gateway included:
    /// the gateway's pooled connection to it goes silent (half-open).
    Isolated,
    /// The followers hear nothing from the leader; the leader hears them.
    LeaderToFollowers,
    /// The leader hears nothing from the followers; they hear it.
    FollowersToLeader,
    /// Everything between the leader and the followers is delayed.
    Delay(Duration),
}

const SHARD: u32 = 0;

fn opts() -> Opts {
    Opts {
        shards: 2,
        proxied: true,
        ..Opts::default()
    }
}

/// The running node other than `except` that reports itself leader of `shard` in an epoch
/// above `above`.
async fn new_leader(c: &Cluster, except: u32, above: u64) -> Option<(u32, u64)> {
    c.leader_of(SHARD, Some(except))
        .await
        .filter(|(_, e)| *e > above)
}

/// Strong reads and writes sent to `node` directly: none may succeed.
async fn assert_serves_nothing(c: &Cluster, node: u32, keys: &[String]) {
    for (i, k) in keys.iter().enumerate() {
        let mut key = vec![0x01];
        key.extend_from_slice(k.as_bytes());
        let read = Request::Get {
            shard: ShardId(SHARD),
            key: Bytes::from(key.clone()),
            consistency: ReadConsistency::Strong,
        };
        let write = Request::Write {
            shard: ShardId(SHARD),
            batch: WriteBatch::new().put(Bytes::from(key), Bytes::from(format!("stale-{i}"))),
        };
        let (r, w) = futures::join!(c.rpc(node, &read), c.rpc(node, &write));
        assert!(
            !matches!(r, Ok(Response::Got(_))),
            "the cut-off leader n{node} served a strong read of {k}: {r:?}"
        );
        assert!(
            !matches!(w, Ok(Response::Written { .. })),
            "the cut-off leader n{node} acknowledged a write of {k}: {w:?}"
        );
    }
}

async fn run(fault: Fault) {
    let seed = load::seed();
    let c = Cluster::start(opts()).await;
    let lease = c.opts.lease;
    let net = c.net.as_ref().expect("proxied");
    let old = c.wait_leader(SHARD, None, Duration::from_secs(20)).await;
    let old_epoch = c.status(old).await.expect("status")[&SHARD].epoch;
    let followers: Vec<u32> = (1..=3).filter(|&n| n != old).collect();
    let keys = c.keys_in_shard(SHARD, "h-", 2);
    let unique = c.keys_in_shard(SHARD, "u-", 3000);
    let clients = Load::start(&c.http, &c.url, seed, 3, &keys, vec![unique], 3000);
    assert!(
        clients.rec.wait_progress(60, Duration::from_secs(20)).await,
        "no progress before the fault"
    );
    // The processes really dial each other through the proxies (`peer_addresses`).
    for from in [End::Gateway(0), End::Node(followers[0])] {
        assert!(
            net.proxy(from, old).connections() > 0,
            "no connection from {from:?} to n{old} goes through its proxy"
        );
    }
    let cut = Instant::now();
    if fault == Fault::Isolated {
        net.isolate(old, true);
    }
    for &f in &followers {
        match fault {
            Fault::BothWays => {
                net.block(End::Node(old), End::Node(f));
                net.block(End::Node(f), End::Node(old));
            }
            Fault::LeaderToFollowers => net.block(End::Node(old), End::Node(f)),
            Fault::FollowersToLeader => net.block(End::Node(f), End::Node(old)),
            Fault::Isolated => {}
            Fault::Delay(d) => {
                net.delay(End::Node(old), End::Node(f), d);
                net.delay(End::Node(f), End::Node(old), d);
            }
        }
    }
    println!("{fault:?}: shard {SHARD} leader n{old} (epoch {old_epoch}), followers {followers:?}");
    if let Fault::Delay(_) = fault {
        // No failover needed: the shard keeps serving, only slower.
        assert!(
            clients
                .rec
                .wait_progress(150, Duration::from_secs(20))
                .await,
            "no progress over delayed links"
        );
    } else {
        // A follower takes over within the lease plus a margin (one-way losses of the
        // followers' answers may cost one more lease: the leader must notice first).
        let within = match fault {
            Fault::FollowersToLeader => 2 * lease + Duration::from_secs(3),
            _ => lease + Duration::from_secs(3),
        };
        let (new, new_epoch) = loop {
            if let Some(l) = new_leader(&c, old, old_epoch).await {
                break l;
            }
            assert!(
                cut.elapsed() < within,
                "seed {seed}: no new leader within {within:?} of the cut"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        println!(
            "n{new} leads in epoch {new_epoch} {:?} after the cut",
            cut.elapsed()
        );
        assert!(
            clients
                .rec
                .wait_progress(150, Duration::from_secs(15))
                .await,
            "seed {seed}: writes did not continue under the new leader"
        );
        assert_serves_nothing(&c, old, &keys).await;
    }
    net.heal_all();
    // After the heal the old leader follows the newest epoch.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let leader = c.leader_of(SHARD, None).await;
        let st = c.status(old).await.map(|s| s[&SHARD].clone());
        if let (Some((l, e)), Some(s)) = (leader, st)
            && (l == old || (s.role == "follower" && s.epoch >= e))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: n{old} does not follow the newest epoch after the heal"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        clients
            .rec
            .wait_progress(150, Duration::from_secs(15))
            .await,
        "seed {seed}: no progress after the heal"
    );
    let rec = clients.stop().await;
    let acked = rec.acked.lock().await.clone();
    assert!(acked.len() > 20, "only {} acknowledged writes", acked.len());
    for (k, v) in &acked {
        assert_eq!(c.get(k).await, Ok((200, v.clone())), "seed {seed}: key {k}");
    }
    let errors = rec.errors.lock().await.clone();
    for (what, answer) in &errors {
        println!("unanswered: {what}: {answer}");
    }
    let errors = errors.len();
    let n = rec.check(seed).await;
    println!(
        "{} acknowledged unique writes readable; {n} operations linearizable; {errors} unanswered",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_cut_off_both_ways_is_replaced_and_serves_nothing_stale() {
    run(Fault::BothWays).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_cut_off_from_every_process_is_replaced_and_the_gateway_moves_on() {
    run(Fault::Isolated).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_whose_messages_are_lost_is_replaced() {
    run(Fault::LeaderToFollowers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_that_hears_no_acks_is_replaced() {
    run(Fault::FollowersToLeader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delayed_links_to_the_leader_slow_writes_but_lose_nothing() {
    run(Fault::Delay(Duration::from_millis(80))).await;
}

/// The proxy itself: it forwards both ways, a blocked direction discards bytes while the
/// connection stays open, healing closes the connections that lost bytes, and a delay
/// holds every chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_forwards_blocks_heals_and_delays() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An echo server.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = echo.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let proxy = cluster::proxy::Proxy::start(target, &[]).await;
    let mut conn = tokio::net::TcpStream::connect(proxy.addr())
        .await
        .expect("connect");
    let mut buf = [0u8; 5];
    conn.write_all(b"hello").await.expect("write");
    conn.read_exact(&mut buf).await.expect("echo");
    assert_eq!(&buf, b"hello");
    // Blocked: nothing comes back, and the connection is not closed either.
    proxy.set_blocked(true, true);
    conn.write_all(b"lost!").await.expect("write");
    let silent = tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await;
    assert!(
        silent.is_err(),
        "a blocked direction let bytes through: {silent:?}"
    );
    assert_eq!(proxy.connections(), 1);
    // Healed: the damaged connection is closed; a new one works.
    proxy.set_blocked(true, false);
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the damaged connection stayed open: {closed:?}"
    );
    let mut conn = tokio::net::TcpStream::connect(proxy.addr())
        .await
        .expect("connect");
    // Delayed: the echo takes at least the delay (both ways: twice).
    proxy.set_delay(true, Duration::from_millis(100));
    proxy.set_delay(false, Duration::from_millis(100));
    let sent = Instant::now();
    conn.write_all(b"later").await.expect("write");
    conn.read_exact(&mut buf).await.expect("echo");
    assert_eq!(&buf, b"later");
    assert!(sent.elapsed() >= Duration::from_millis(200));
}
