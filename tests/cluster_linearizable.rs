//! Linearizability under leader failures: concurrent clients put, read (strong), CAS
//! (`If-Match` on the version read) and create (`If-None-Match: *`) a few keys through the
//! gateway while a nemesis stops and restarts leaders, half the time with `kill -9` (a
//! failover after the lease) and half with SIGTERM (the node hands its shards over first,
//! note 0006). The history of each key is checked with the Wing–Gong checker
//! (`tierkv-checker`). The seed is printed; `TIERKV_TEST_SEED=<n>` replays the client and
//! nemesis choices.

mod cluster;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cluster::{Cluster, Opts, etag};
use rand::{Rng, SeedableRng};
use tierkv_checker::{Call, Operation, Outcome, Verdict};
use tierkv_engine::routing::shard_for;
use tokio::sync::Mutex;

const KEYS: [&str; 3] = ["lin-a", "lin-b", "lin-c"];
const CLIENTS: usize = 5;
/// Most operations per client; clients also stop when the nemesis is done.
const OPS_PER_CLIENT: usize = 400;
/// How long the nemesis runs.
const NEMESIS_FOR: Duration = Duration::from_secs(15);
/// Pause between one client's operations (paces the history so the checker's search stays
/// small; not a synchronisation).
const PACE: Duration = Duration::from_millis(15);

struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Operation>>,
}

impl Recorder {
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
    async fn push(&self, client: usize, key: &str, call: Call, outcome: Outcome, invoked: u64) {
        let returned = self.now();
        self.ops.lock().await.push(Operation {
            client,
            key: key.to_owned(),
            call,
            outcome,
            invoked,
            returned,
        });
    }
}

/// A write's outcome from its HTTP answer: success, a failed precondition, or unknown.
fn write_outcome(r: &Result<reqwest::Response, reqwest::Error>) -> Outcome {
    match r {
        Ok(r) if r.status().is_success() => Outcome::Ok,
        Ok(r) if r.status().as_u16() == 412 => Outcome::Failed,
        _ => Outcome::Unknown,
    }
}

async fn client(
    c: Arc<(reqwest::Client, String)>,
    id: usize,
    seed: u64,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) {
    let (http, url) = (&c.0, &c.1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (id as u64).wrapping_mul(0x9E37));
    for i in 0..OPS_PER_CLIENT {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(PACE).await;
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let value = format!("c{id}-{i}");
        let kurl = format!("{url}/v1/kv/{key}");
        match rng.random_range(0..4) {
            0 => {
                let t = rec.now();
                let r = http.put(&kurl).body(value.clone()).send().await;
                rec.push(id, key, Call::Write(value), write_outcome(&r), t)
                    .await;
            }
            1 => {
                let t = rec.now();
                let r = http
                    .put(&kurl)
                    .header("if-none-match", "*")
                    .body(value.clone())
                    .send()
                    .await;
                rec.push(id, key, Call::Create(value), write_outcome(&r), t)
                    .await;
            }
            _ => {
                // Read, then (half the time) CAS on the version read.
                let t = rec.now();
                let Ok(r) = http.get(&kurl).send().await else {
                    continue; // a read without an answer observed nothing
                };
                let (observed, version) = match r.status().as_u16() {
                    200 => {
                        let v = etag(&r);
                        (Some(r.text().await.unwrap_or_default()), v)
                    }
                    404 => (None, None),
                    _ => continue,
                };
                rec.push(id, key, Call::Read, Outcome::Read(observed.clone()), t)
                    .await;
                if let (Some(expect), Some(version), true) =
                    (observed, version, rng.random_bool(0.5))
                {
                    let t = rec.now();
                    let r = http
                        .put(&kurl)
                        .header("if-match", format!("\"{version}\""))
                        .body(value.clone())
                        .send()
                        .await;
                    rec.push(
                        id,
                        key,
                        Call::Cas { expect, new: value },
                        write_outcome(&r),
                        t,
                    )
                    .await;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_under_leader_kills_are_linearizable() {
    let seed: u64 = std::env::var("TIERKV_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (replay with TIERKV_TEST_SEED={seed})");
    let opts = Opts::default();
    let shards = opts.shards;
    let mut c = Cluster::start(opts).await;
    let rec = Arc::new(Recorder {
        start: Instant::now(),
        ops: Mutex::new(Vec::new()),
    });
    let shared = Arc::new((c.http.clone(), c.url.clone()));
    let finished = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        let (shared, rec, finished, stop) =
            (shared.clone(), rec.clone(), finished.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            client(shared, id, seed, rec, stop).await;
            finished.fetch_add(1, Ordering::SeqCst);
        }));
    }
    // Nemesis: stop the leader of a key's shard, restart it, repeat, until the clients end.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut kills, mut stops) = (0, 0);
    let deadline = Instant::now() + NEMESIS_FOR;
    while finished.load(Ordering::SeqCst) < CLIENTS as u64 && Instant::now() < deadline {
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let shard = shard_for(key.as_bytes(), shards).0;
        let pause = Duration::from_millis(rng.random_range(300..1500));
        tokio::time::sleep(pause).await;
        if let Some((leader, _)) = c.leader_of(shard, None).await {
            if rng.random_bool(0.5) {
                c.kill(leader);
                kills += 1;
            } else {
                let status = c.terminate(leader).await;
                assert!(status.success(), "node {leader} exited with {status}");
                stops += 1;
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
            c.restart(leader);
        }
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("client");
    }
    let history = rec.ops.lock().await.clone();
    let unknown = history
        .iter()
        .filter(|o| o.outcome == Outcome::Unknown)
        .count();
    println!(
        "{} operations ({unknown} with unknown outcome), {kills} leader kills, {stops} SIGTERM stops",
        history.len()
    );
    assert!(
        kills + stops >= 2,
        "the nemesis stopped only {} leaders",
        kills + stops
    );
    assert!(history.len() > 200, "only {} operations", history.len());
    for key in KEYS {
        let ops: Vec<Operation> = history.iter().filter(|o| o.key == key).cloned().collect();
        let n = ops.len();
        match tierkv_checker::check_key(key, ops) {
            Verdict::Linearizable => println!("{key}: {n} operations, linearizable"),
            v => panic!("seed {seed}: key {key} is not linearizable: {v:#?}"),
        }
    }
}
