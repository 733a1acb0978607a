//! Linearizability with the gateway cache on (design note 0008): two gateways, each with its
//! value cache (memory and disk tier) and coalescing; concurrent clients put, read (strong),
//! CAS and create a few keys, each operation through a gateway chosen at random (so writes go
//! through one gateway and reads through the other), while a nemesis stops and restarts
//! leaders (`kill -9` or SIGTERM). Each key's history is checked with the Wing–Gong checker.
//! It runs twice: with the default settings (no read leases: every strong read revalidates
//! at the leader), and with read leases (design note 0014) on and granted without a quiet
//! period (`cluster.read_lease = 300ms`, `read_lease_quiet = 0s`), so that strong reads are
//! served from the caches under leases between writes, and writes wait for them; each run
//! requires that its path was taken.
//!
//! The second test plants a bug (`TIERKV_PLANTED_BUG=strong-reads-from-cache`: strong reads
//! served from the cache without revalidation) and shows that the checker rejects the
//! history: the first test can fail. `TIERKV_TEST_SEED=<n>` replays the client and nemesis
//! choices.

mod cluster;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cluster::{Cluster, Opts, etag};
use rand::{Rng, SeedableRng};
use tierkv_checker::{Call, Operation, Outcome, Verdict};
use tierkv_engine::routing::shard_for;
use tokio::sync::Mutex;

const KEYS: [&str; 3] = ["clin-a", "clin-b", "clin-c"];
const CLIENTS: usize = 5;
const OPS_PER_CLIENT: usize = 400;
const NEMESIS_FOR: Duration = Duration::from_secs(15);
/// Pause between one client's operations (paces the history; not a synchronisation).
const PACE: Duration = Duration::from_millis(15);

struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Operation>>,
}

impl Recorder {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
        })
    }
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

fn write_outcome(r: &Result<reqwest::Response, reqwest::Error>) -> Outcome {
    match r {
        Ok(r) if r.status().is_success() => Outcome::Ok,
        Ok(r) if r.status().as_u16() == 412 => Outcome::Failed,
        _ => Outcome::Unknown,
    }
}

/// A strong read through `url`: what it observed and the version, or `None` when it
/// observed nothing (no answer, or an error).
async fn read(
    http: &reqwest::Client,
    url: &str,
    key: &str,
) -> Option<(Option<String>, Option<u64>)> {
    let r = http.get(format!("{url}/v1/kv/{key}")).send().await.ok()?;
    match r.status().as_u16() {
        200 => {
            let v = etag(&r);
            Some((Some(r.text().await.ok()?), v))
        }
        404 => Some((None, None)),
        _ => None,
    }
}

async fn client(
    http: reqwest::Client,
    urls: Arc<std::sync::Mutex<Vec<String>>>,
    id: usize,
    seed: u64,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (id as u64).wrapping_mul(0x9E37));
    for i in 0..OPS_PER_CLIENT {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(PACE).await;
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let value = format!("c{id}-{i}");
        let url = {
            let urls = urls.lock().expect("urls");
            urls[rng.random_range(0..urls.len())].clone()
        };
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
                let t = rec.now();
                let Some((observed, version)) = read(&http, &url, key).await else {
                    continue;
                };
                rec.push(id, key, Call::Read, Outcome::Read(observed.clone()), t)
                    .await;
                if let (Some(expect), Some(version), true) =
                    (observed, version, rng.random_bool(0.5))
                {
                    // The CAS goes through either gateway too.
                    let url = {
                        let urls = urls.lock().expect("urls");
                        urls[rng.random_range(0..urls.len())].clone()
                    };
                    let t = rec.now();
                    let r = http
                        .put(format!("{url}/v1/kv/{key}"))
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

fn seed() -> u64 {
    let seed: u64 = std::env::var("TIERKV_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (replay with TIERKV_TEST_SEED={seed})");
    seed
}

/// Runs the clients until they finish or `stop` is set; returns their tasks.
fn start_clients(
    c: &Cluster,
    urls: &Arc<std::sync::Mutex<Vec<String>>>,
    seed: u64,
    rec: &Arc<Recorder>,
    stop: &Arc<AtomicBool>,
    finished: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|id| {
            let (http, urls, rec, stop, finished) = (
                c.http.clone(),
                Arc::clone(urls),
                Arc::clone(rec),
                Arc::clone(stop),
                Arc::clone(finished),
            );
            tokio::spawn(async move {
                client(http, urls, id, seed, rec, stop).await;
                finished.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect()
}

/// Each key's verdict.
async fn verdicts(rec: &Recorder, keys: &[&str]) -> Vec<(String, usize, Verdict)> {
    let history = rec.ops.lock().await.clone();
    keys.iter()
        .map(|key| {
            let ops: Vec<Operation> = history.iter().filter(|o| o.key == *key).cloned().collect();
            let n = ops.len();
            ((*key).to_owned(), n, tierkv_checker::check_key(key, ops))
        })
        .collect()
}

fn two_gateways(mut env: Vec<(String, String)>, read_leases: bool) -> Opts {
    let node_env = if read_leases {
        env.push((
            "TIERKV_GATEWAY__CACHE__READ_LEASES".to_owned(),
            "true".to_owned(),
        ));
        vec![
            ("TIERKV_CLUSTER__READ_LEASE".to_owned(), "300ms".to_owned()),
            (
                "TIERKV_CLUSTER__READ_LEASE_QUIET".to_owned(),
                "0s".to_owned(),
            ),
        ]
    } else {
        Vec::new()
    };
    Opts {
        gateways: 2,
        gateway_env: env,
        env: node_env,
        // With read leases, one shard: every key is read under the marks that the others'
        // reads renew (design note 0014, I5), and a write to one key moves the mark of all.
        shards: if read_leases {
            1
        } else {
            Opts::default().shards
        },
        ..Opts::default()
    }
}

/// `tierkv_gateway_cache_reads_total{answer}` of one gateway.
async fn cache_reads(c: &Cluster, url: &str, answer: &str) -> u64 {
    let text = c.metrics_text(url).await.expect("metrics");
    let prefix = format!("tierkv_gateway_cache_reads_total{{answer=\"{answer}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_reads_through_two_gateways_under_leader_kills_are_linearizable() {
    under_leader_kills(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leased_reads_through_two_gateways_under_leader_kills_are_linearizable() {
    under_leader_kills(true).await;
}

/// Clients through both gateways while a nemesis stops and restarts leaders; every key's
/// history must be linearizable, and the cache path under test must have been taken.
async fn under_leader_kills(read_leases: bool) {
    let seed = seed();
    let opts = two_gateways(Vec::new(), read_leases);
    let shards = opts.shards;
    let mut c = Cluster::start(opts).await;
    let urls = Arc::new(std::sync::Mutex::new(vec![
        c.gateway_url(0),
        c.gateway_url(1),
    ]));
    let rec = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicU64::new(0));
    let tasks = start_clients(&c, &urls, seed, &rec, &stop, &finished);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut kills, mut stops) = (0, 0);
    let deadline = Instant::now() + NEMESIS_FOR;
    while finished.load(Ordering::SeqCst) < CLIENTS as u64 && Instant::now() < deadline {
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let shard = shard_for(key.as_bytes(), shards).0;
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
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
    let n = rec.ops.lock().await.len();
    println!("{n} operations, {kills} leader kills, {stops} SIGTERM stops");
    assert!(
        kills + stops >= 2,
        "the nemesis stopped only {}",
        kills + stops
    );
    assert!(n > 200, "only {n} operations");
    // The caches were used: strong reads revalidated cached versions and, with read leases
    // on, some were served under a lease without a round trip (without, none).
    let (mut revalidated, mut leased) = (0, 0);
    for g in [c.gateway_url(0), c.gateway_url(1)] {
        revalidated += cache_reads(&c, &g, "revalidated").await;
        leased += cache_reads(&c, &g, "leased").await;
    }
    println!("{revalidated} revalidated and {leased} leased strong reads");
    assert!(revalidated > 0, "no read was revalidated");
    if read_leases {
        assert!(leased > 0, "no read was served under a read lease");
    } else {
        assert_eq!(leased, 0, "read leases are off by default");
    }
    for (key, n, v) in verdicts(&rec, &KEYS).await {
        match v {
            Verdict::Linearizable => println!("{key}: {n} operations, linearizable"),
            v => panic!("seed {seed}: key {key} is not linearizable: {v:#?}"),
        }
    }
}

/// The same checks catch strong reads served from the cache without revalidation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checker_catches_strong_reads_served_without_revalidation() {
    let seed = seed();
    let planted = vec![(
        tierkv_gateway::cache::PLANTED_BUG_ENV.to_owned(),
        tierkv_gateway::cache::PLANTED_BUG_VALUE.to_owned(),
    )];
    let c = Cluster::start(two_gateways(planted, false)).await;
    let (a, b) = (c.gateway_url(0), c.gateway_url(1));
    let rec = Recorder::new();
    // A write through one gateway, a read through the other, another write, another read:
    // the second read is served from the second gateway's cache.
    let probe = "clin-probe";
    for (i, value) in ["first", "second"].into_iter().enumerate() {
        let t = rec.now();
        let r = c
            .http
            .put(format!("{a}/v1/kv/{probe}"))
            .body(value)
            .send()
            .await;
        rec.push(
            99,
            probe,
            Call::Write(value.to_owned()),
            write_outcome(&r),
            t,
        )
        .await;
        let t = rec.now();
        let (observed, _) = read(&c.http, &b, probe).await.expect("read");
        println!("read {i} through the other gateway: {observed:?}");
        rec.push(99, probe, Call::Read, Outcome::Read(observed), t)
            .await;
    }
    // And the randomized clients for a few seconds.
    let urls = Arc::new(std::sync::Mutex::new(vec![a, b]));
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicU64::new(0));
    let tasks = start_clients(&c, &urls, seed, &rec, &stop, &finished);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("client");
    }
    let mut keys = KEYS.to_vec();
    keys.push(probe);
    let results = verdicts(&rec, &keys).await;
    let caught: Vec<&str> = results
        .iter()
        .filter(|(_, _, v)| !matches!(v, Verdict::Linearizable))
        .map(|(k, _, _)| k.as_str())
        .collect();
    println!("keys not linearizable with the planted bug: {caught:?}");
    assert!(
        caught.contains(&probe),
        "the checker accepted a stale strong read"
    );
}
