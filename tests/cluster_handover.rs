//! Handovers (design note 0006), with node processes on 127.0.0.1 under writes.
//!
//! - Leadership goes back to the first-ranked replica. A node is killed, the shards it led
//!   fail over, and it comes back: the replicas that took over are alive and renew their
//!   leases, so only a handover can move those shards back to it. They must move back while
//!   clients keep writing, and every acknowledged write must stay readable.
//! - A node stopped with SIGTERM hands the shards it leads over before it exits: the moment
//!   it is gone, every shard already has a serving leader on the other nodes (a failover
//!   would leave its shards leaderless for a lease).

mod cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cluster::{Cluster, Opts};
use tokio::sync::Mutex;

const NODE: u32 = 1;

/// Polls until `done(leaders)` holds; panics after `within` with `what`.
async fn wait_leaders(
    c: &Cluster,
    within: Duration,
    what: &str,
    done: impl Fn(&BTreeMap<u32, (u32, u64)>) -> bool,
) -> BTreeMap<u32, (u32, u64)> {
    let deadline = Instant::now() + within;
    loop {
        let l = c.leaders().await;
        if done(&l) {
            return l;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}: {l:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Four writers on keys `{prefix}{w}-{i}`, each written once, until stopped; acknowledged
/// writes are kept, failed ones counted.
struct Writers {
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    failed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    fn start(c: &Cluster, prefix: &str) -> Self {
        let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let failed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..4)
            .map(|w| {
                let (http, url, prefix) = (c.http.clone(), c.url.clone(), prefix.to_owned());
                let (acked, failed, stop) = (acked.clone(), failed.clone(), stop.clone());
                tokio::spawn(async move {
                    for i in 0..20_000u32 {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let (key, value) = (format!("{prefix}{w}-{i}"), format!("v{w}-{i}"));
                        let r = http
                            .put(format!("{url}/v1/kv/{key}"))
                            .body(value.clone())
                            .send()
                            .await;
                        if r.is_ok_and(|r| r.status().is_success()) {
                            acked.lock().await.insert(key, value);
                        } else {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        Self {
            acked,
            failed,
            stop,
            tasks,
        }
    }

    /// Polls until `n` more writes than now are acknowledged; panics with `what` after 20 s.
    async fn wait_for_more(&self, n: usize, what: &str) {
        let want = self.acked.lock().await.len() + n;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.acked.lock().await.len() < want {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the writers and reads every acknowledged write back through the gateway;
    /// returns how many were verified and how many writes failed.
    async fn stop_and_verify(self, c: &Cluster) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.expect("writer");
        }
        let acked = self.acked.lock().await;
        for (k, v) in acked.iter() {
            assert_eq!(c.get(k).await, Ok((200, v.clone())), "key {k}");
        }
        (acked.len(), self.failed.load(Ordering::SeqCst))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_node_gets_its_shards_back_without_losing_writes() {
    let mut c = Cluster::start(Opts {
        shards: 8,
        env: vec![("TIERKV_CLUSTER__HANDOVER_AFTER".into(), "2s".into())],
        ..Opts::default()
    })
    .await;
    let shards = c.opts.shards;
    // The shards NODE ranks first, from its own status.
    let deadline = Instant::now() + Duration::from_secs(20);
    let home: BTreeSet<u32> = loop {
        if let Some(home) = c.first_ranked(NODE).await {
            break home.into_iter().collect();
        }
        assert!(
            Instant::now() < deadline,
            "node {NODE} did not report its shards"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!home.is_empty(), "node {NODE} ranks first for no shard");
    let all_home = |l: &BTreeMap<u32, (u32, u64)>| {
        l.len() == shards as usize
            && home
                .iter()
                .all(|s| l.get(s).is_some_and(|(n, _)| *n == NODE))
    };
    wait_leaders(
        &c,
        Duration::from_secs(30),
        "node 1 leading its shards",
        all_home,
    )
    .await;

    // Writers on every shard, each key written once.
    let writers = Writers::start(&c, "w");
    writers.wait_for_more(200, "writes did not start").await;

    c.kill(NODE);
    let failed_over = wait_leaders(
        &c,
        Duration::from_secs(20),
        "failover of node 1's shards",
        |l| {
            home.iter()
                .all(|s| l.get(s).is_some_and(|(n, _)| *n != NODE))
        },
    )
    .await;
    c.restart(NODE);
    let back = wait_leaders(
        &c,
        Duration::from_secs(40),
        "node 1 getting its shards back",
        all_home,
    )
    .await;
    // The replicas that took over handed the shards back, and node 1 counts the leaderships.
    let mut handed = 0;
    for n in [2, 3] {
        handed += c
            .metric(n, "tierkv_replica_handovers_total")
            .await
            .unwrap_or(0);
    }
    assert!(
        handed >= home.len() as u64,
        "{handed} handovers counted for {} shards",
        home.len()
    );
    let led = c.metric(NODE, "tierkv_replica_leaderships_total").await;
    assert!(
        led >= Some(home.len() as u64),
        "node {NODE} counts {led:?} leaderships"
    );
    for s in &home {
        assert!(
            back[s].1 > failed_over[s].1,
            "shard {s}: epoch {} after the handover, {} after the failover",
            back[s].1,
            failed_over[s].1
        );
    }
    // Writes go on under the returned leaders.
    writers
        .wait_for_more(200, "writes did not continue after the handover")
        .await;
    let (verified, _) = writers.stop_and_verify(&c).await;
    println!("shards {home:?} went back to node {NODE}; {verified} acknowledged writes verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_stopped_with_sigterm_hands_its_shards_over_before_it_exits() {
    let mut c = Cluster::start(Opts {
        shards: 8,
        ..Opts::default()
    })
    .await;
    let shards = c.opts.shards as usize;
    let led = wait_leaders(&c, Duration::from_secs(30), "node 1 leading a shard", |l| {
        l.len() == shards && l.values().any(|(n, _)| *n == NODE)
    })
    .await;
    let writers = Writers::start(&c, "t");
    writers.wait_for_more(200, "writes did not start").await;
    let status = c.terminate(NODE).await;
    assert!(status.success(), "node {NODE} exited with {status}");
    // The moment it is gone: a serving leader for every shard, none of them on NODE.
    let now = c.leaders().await;
    let moved: Vec<u32> = led
        .iter()
        .filter(|(_, (n, _))| *n == NODE)
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(
        now.len(),
        shards,
        "shards without a serving leader right after node {NODE} stopped (it led {moved:?}): {now:?}"
    );
    for s in &moved {
        assert!(
            now[s].1 > led[s].1,
            "shard {s} did not move to a newer epoch: {now:?}"
        );
    }
    // Writes go on, the node comes back, and everything acknowledged is there.
    writers.wait_for_more(200, "writes did not continue").await;
    c.restart(NODE);
    let (verified, failed) = writers.stop_and_verify(&c).await;
    println!(
        "node {NODE} handed over shards {moved:?} before exiting; {verified} acknowledged writes verified, {failed} failed"
    );
}
