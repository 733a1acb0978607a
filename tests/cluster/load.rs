//! Client load for the fault tests, through a gateway: recorded histories for the
//! linearizability checker (`tierkv-checker`) and writes of unique keys whose
//! acknowledgements are kept, so that a test can read every acknowledged write back.
//! Every loop is bounded in operations and stops when told; errors are recorded, never
//! retried here (the gateway retries `not_leader` itself within `leader_wait`).

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tierkv_checker::{Call, Operation, Outcome, Verdict};
use tokio::sync::Mutex;

use super::etag;

/// What the clients saw.
pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Operation>>,
    /// Answers that were neither a success nor an expected failure (412, 404), and
    /// transport errors: `(what, answer)`.
    pub errors: Mutex<Vec<(String, String)>>,
    /// Acknowledged writes of unique keys: key → value.
    pub acked: Mutex<BTreeMap<String, String>>,
    /// Operations that completed with a success, over all clients (progress).
    pub ok: AtomicUsize,
    pub stop: AtomicBool,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
            acked: Mutex::new(BTreeMap::new()),
            ok: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    async fn push(&self, client: usize, key: &str, call: Call, outcome: Outcome, invoked: u64) {
        let returned = self.now();
        if outcome != Outcome::Unknown {
            self.ok.fetch_add(1, Ordering::SeqCst);
        }
        self.ops.lock().await.push(Operation {
            client,
            key: key.to_owned(),
            call,
            outcome,
            invoked,
            returned,
        });
    }

    async fn error(&self, what: String, answer: String) {
        self.errors.lock().await.push((what, answer));
    }

    /// Waits (at most `within`) until `n` more operations succeeded than now.
    pub async fn wait_progress(&self, n: usize, within: Duration) -> bool {
        let target = self.ok.load(Ordering::SeqCst) + n;
        let deadline = Instant::now() + within;
        while self.ok.load(Ordering::SeqCst) < target {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Checks every key's history with the checker; panics naming the first that is not
    /// linearizable. Returns the number of operations checked.
    pub async fn check(&self, seed: u64) -> usize {
        let history = self.ops.lock().await.clone();
        let mut keys: Vec<String> = history.iter().map(|o| o.key.clone()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let ops: Vec<Operation> = history.iter().filter(|o| o.key == key).cloned().collect();
            let n = ops.len();
            match tierkv_checker::check_key(&key, ops) {
                Verdict::Linearizable => println!("{key}: {n} operations, linearizable"),
                v => panic!("seed {seed}: key {key} is not linearizable: {v:#?}"),
            }
        }
        history.len()
    }
}

/// Pause between one client's operations: paces the history so that the checker's search
/// stays small (not a synchronisation).
const PACE: Duration = Duration::from_millis(10);

async fn describe(r: Result<reqwest::Response, reqwest::Error>) -> String {
    match r {
        Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
        Err(e) => e.to_string(),
    }
}

/// One client of the linearizability history: puts, strong reads, CAS on the version
/// read and creates on `keys`, at most `max_ops` operations, until `rec.stop`.
pub async fn history_client(
    http: reqwest::Client,
    url: String,
    id: usize,
    seed: u64,
    keys: Vec<String>,
    rec: Arc<Recorder>,
    max_ops: usize,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (id as u64).wrapping_mul(0x9E37));
    for i in 0..max_ops {
        if rec.stop.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(PACE).await;
        let key = &keys[rng.random_range(0..keys.len())];
        let value = format!("c{id}-{i}");
        let kurl = format!("{url}/v1/kv/{key}");
        let create = rng.random_range(0..4) == 0;
        if rng.random_bool(0.4) {
            let t = rec.now();
            let mut req = http.put(&kurl).body(value.clone());
            if create {
                req = req.header("if-none-match", "*");
            }
            let r = req.send().await;
            let outcome = match &r {
                Ok(r) if r.status().is_success() => Outcome::Ok,
                Ok(r) if r.status().as_u16() == 412 => Outcome::Failed,
                _ => Outcome::Unknown,
            };
            let call = if create {
                Call::Create(value)
            } else {
                Call::Write(value)
            };
            if outcome == Outcome::Unknown {
                rec.error(format!("put {key}"), describe(r).await).await;
            }
            rec.push(id, key, call, outcome, t).await;
            continue;
        }
        let t = rec.now();
        let r = http.get(&kurl).send().await;
        let (observed, version) = match r {
            Ok(r) if r.status().as_u16() == 200 => {
                let v = etag(&r);
                (Some(r.text().await.unwrap_or_default()), v)
            }
            Ok(r) if r.status().as_u16() == 404 => (None, None),
            r => {
                // A read without an answer observed nothing.
                rec.error(format!("get {key}"), describe(r).await).await;
                continue;
            }
        };
        rec.push(id, key, Call::Read, Outcome::Read(observed.clone()), t)
            .await;
        if let (Some(expect), Some(version), true) = (observed, version, rng.random_bool(0.5)) {
            let t = rec.now();
            let r = http
                .put(&kurl)
                .header("if-match", format!("\"{version}\""))
                .body(value.clone())
                .send()
                .await;
            let outcome = match &r {
                Ok(r) if r.status().is_success() => Outcome::Ok,
                Ok(r) if r.status().as_u16() == 412 => Outcome::Failed,
                _ => Outcome::Unknown,
            };
            if outcome == Outcome::Unknown {
                rec.error(format!("cas {key}"), describe(r).await).await;
            }
            rec.push(id, key, Call::Cas { expect, new: value }, outcome, t)
                .await;
        }
    }
}

/// Writes each of `keys` once (value `v-<key>`), in order, until `rec.stop`; acknowledged
/// ones go to `rec.acked`.
pub async fn unique_writer(
    http: reqwest::Client,
    url: String,
    keys: Vec<String>,
    rec: Arc<Recorder>,
) {
    for key in keys {
        if rec.stop.load(Ordering::SeqCst) {
            return;
        }
        let value = format!("v-{key}");
        let r = http
            .put(format!("{url}/v1/kv/{key}"))
            .body(value.clone())
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => {
                rec.ok.fetch_add(1, Ordering::SeqCst);
                rec.acked.lock().await.insert(key, value);
            }
            r => rec.error(format!("put {key}"), describe(r).await).await,
        }
    }
}

/// The clients of a test: `history` clients on `keys` and one unique-key writer per
/// prefix in `writers`, through `url`.
pub struct Load {
    pub rec: Arc<Recorder>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(
        http: &reqwest::Client,
        url: &str,
        seed: u64,
        history: usize,
        keys: &[String],
        unique: Vec<Vec<String>>,
        max_ops: usize,
    ) -> Self {
        let rec = Recorder::new();
        let mut tasks = Vec::new();
        for id in 0..history {
            tasks.push(tokio::spawn(history_client(
                http.clone(),
                url.to_owned(),
                id,
                seed,
                keys.to_vec(),
                Arc::clone(&rec),
                max_ops,
            )));
        }
        for keys in unique {
            tasks.push(tokio::spawn(unique_writer(
                http.clone(),
                url.to_owned(),
                keys,
                Arc::clone(&rec),
            )));
        }
        Self { rec, tasks }
    }

    /// Stops the clients and waits for them.
    pub async fn stop(self) -> Arc<Recorder> {
        self.rec.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.expect("client task");
        }
        self.rec
    }
}

/// A seed from `TIERKV_TEST_SEED` or a random one, printed.
pub fn seed() -> u64 {
    let seed: u64 = std::env::var("TIERKV_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (replay with TIERKV_TEST_SEED={seed})");
    seed
}
