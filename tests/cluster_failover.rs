//! `kill -9` the leader of a shard while clients write to it: writes resume within the lease
//! plus two seconds, and every acknowledged write is then readable with strong consistency.
//! Repeated over several shards, with kill times drawn from a printed seed
//! (`TIERKV_TEST_SEED=<n>` replays one).

mod cluster;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cluster::{Cluster, Opts};
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;

/// Acknowledged writes: key → value.
type Acked = Arc<Mutex<BTreeMap<String, String>>>;

/// Writers loop over `keys` (each written once, unique values) until `stop`.
fn writers(
    c: &Cluster,
    keys: Vec<String>,
    acked: &Acked,
    stop: &Arc<AtomicBool>,
    last_ok: &Arc<Mutex<Option<(Instant, Instant)>>>,
    count: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let per = keys.len().div_ceil(4);
    keys.chunks(per)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let (http, url) = (c.http.clone(), c.url.clone());
            let (acked, stop, last_ok, count) =
                (acked.clone(), stop.clone(), last_ok.clone(), count.clone());
            tokio::spawn(async move {
                for key in chunk {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let value = format!("v-{key}");
                    let started = Instant::now();
                    let r = http
                        .put(format!("{url}/v1/kv/{key}"))
                        .body(value.clone())
                        .send()
                        .await;
                    if let Ok(r) = r
                        && r.status().is_success()
                    {
                        acked.lock().await.insert(key, value);
                        // (invoked, acknowledged)
                        *last_ok.lock().await = Some((started, Instant::now()));
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_leader_under_writes_loses_no_acknowledged_write() {
    let seed: u64 = std::env::var("TIERKV_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (replay with TIERKV_TEST_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let opts = Opts::default();
    let lease = opts.lease;
    let mut c = Cluster::start(opts).await;
    let acked: Acked = Arc::default();
    let mut failovers = Vec::new();
    for trial in 0..3u32 {
        let shard = trial % c.opts.shards;
        let leader = c.wait_leader(shard, None, Duration::from_secs(20)).await;
        let keys = c.keys_in_shard(shard, &format!("t{trial}-"), 4000);
        let stop = Arc::new(AtomicBool::new(false));
        let last_ok = Arc::new(Mutex::new(None));
        let count = Arc::new(AtomicUsize::new(0));
        let tasks = writers(&c, keys, &acked, &stop, &last_ok, &count);
        let kill_after = rng.random_range(50..300usize);
        let deadline = Instant::now() + Duration::from_secs(20);
        while count.load(Ordering::SeqCst) < kill_after {
            assert!(Instant::now() < deadline, "writes did not start");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        c.kill(leader);
        let killed_at = Instant::now();
        *last_ok.lock().await = None;
        // Wait for the first acknowledged write that was invoked after the kill.
        let resumed = loop {
            if let Some((invoked, done)) = *last_ok.lock().await
                && invoked > killed_at
            {
                break done;
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(20),
                "trial {trial} (seed {seed}): writes did not resume after killing node {leader}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let failover = resumed - killed_at;
        println!(
            "trial {trial}: shard {shard}, killed leader n{leader}, writes resumed after {failover:?}"
        );
        failovers.push(failover);
        assert!(
            failover < lease + Duration::from_secs(2),
            "trial {trial} (seed {seed}): failover took {failover:?}"
        );
        // Some more writes under the new leader, then stop and bring the node back.
        let more = count.load(Ordering::SeqCst) + 100;
        while count.load(Ordering::SeqCst) < more && killed_at.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await.expect("writer");
        }
        c.restart(leader);
        // Every acknowledged write is readable with strong consistency.
        let acked = acked.lock().await;
        for (k, v) in acked.iter() {
            let got = c.get(k).await;
            assert_eq!(
                got,
                Ok((200, v.clone())),
                "trial {trial} (seed {seed}): key {k}"
            );
        }
        println!(
            "trial {trial}: {} acknowledged writes verified",
            acked.len()
        );
    }
    println!("failover times: {failovers:?}");
}
