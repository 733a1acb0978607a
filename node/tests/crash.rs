//! Durability under `kill -9`: a child process writes through a node whose shards have one
//! replica each (the replication driver, as `tierkv serve` runs it) with concurrent writers (small memtables, so flushes and compactions run constantly) and prints each
//! operation before issuing it (`BEGIN`) and once it is acknowledged (`ACK`). The parent
//! kills it with SIGKILL at a random moment, reopens the data directory, and checks that
//! every acknowledged write is there: each key must hold its last acknowledged state, or the
//! state of an operation that began but was not acknowledged before the kill.
//!
//! The child is this same test binary re-executed with `TIERKV_CRASH_CHILD` set, running the
//! ignored test `crash_child`.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tierkv_engine::clock::SystemClock;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::segment::SegmentOptions;
use tierkv_engine::store::{ObjStore, StoreOptions};
use tierkv_engine::types::{EntryKind, ReadConsistency, ShardId, WriteBatch};
use tierkv_node::node::Node;

use common::OneReplica;

const SHARDS: [ShardId; 2] = [ShardId(0), ShardId(1)];
const WRITERS: usize = 8;

fn opts() -> EngineOptions {
    EngineOptions {
        write_buffer_bytes: 16 << 10,
        max_unflushed_bytes: 4 << 20,
        l0_compaction_trigger: 3,
        l0_max: 8,
        target_segment_bytes: 32 << 10,
        segment: SegmentOptions {
            block_bytes: 2048,
            bloom_bits_per_key: 10,
        },
        obsolete_grace: Duration::from_millis(200),
        ..EngineOptions::default()
    }
}

async fn open(dir: &Path) -> Node {
    let store = ObjStore::open(&StoreOptions {
        url: format!("file://{}", dir.join("objects").display()),
        ..StoreOptions::default()
    })
    .expect("store");
    let one = OneReplica {
        shards: 2,
        engine: opts(),
        ..OneReplica::default()
    };
    one.open(dir, &store, Arc::new(SystemClock)).await
}

fn value_for(key: &str, n: u64) -> String {
    format!("{key}={n}:{}", "x".repeat((n % 200) as usize))
}

/// The writer process: runs until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run only as the child of kill9_loses_no_acknowledged_write"]
async fn crash_child() {
    let Ok(dir) = std::env::var("TIERKV_CRASH_CHILD") else {
        return;
    };
    let round: u64 = std::env::var("TIERKV_CRASH_ROUND")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let node = open(Path::new(&dir)).await;
    println!("READY");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0u64.. {
                // Each writer owns its keys; a few keys get overwritten and deleted often.
                // `println!` writes whole lines (stdout is line-buffered) before the write is
                // issued, so every write that may have happened has its BEGIN on the pipe.
                let key = format!("r{round}-w{w}-k{}", n % 50);
                let shard = node.shard(SHARDS[(n % 2) as usize]).expect("shard").clone();
                let delete = n % 7 == 3;
                let op = if delete {
                    "del".to_owned()
                } else {
                    value_for(&key, n)
                };
                let id = shard.shard().id().0;
                println!("BEGIN {id} {key} {op}");
                let batch = if delete {
                    WriteBatch::new().delete(key.clone())
                } else {
                    WriteBatch::new().put(key.clone(), op.clone())
                };
                match shard.write(batch).await {
                    Ok(_) => println!("ACK {id} {key} {op}"),
                    Err(e) => {
                        println!("ERR {e}");
                        return;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[derive(Default)]
struct Expect {
    /// Last acknowledged state per (shard, key): Some(value) or None (deleted).
    acked: BTreeMap<(u32, String), Option<String>>,
    /// States of operations begun but not acknowledged, per key.
    in_flight: HashMap<(u32, String), HashSet<Option<String>>>,
}

fn parse(line: &str, exp: &mut Expect) {
    let mut it = line.splitn(4, ' ');
    let (Some(kind), Some(shard), Some(key), Some(op)) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return;
    };
    let Ok(shard) = shard.parse::<u32>() else {
        return;
    };
    let state = if op == "del" {
        None
    } else {
        Some(op.to_owned())
    };
    let id = (shard, key.to_owned());
    match kind {
        "BEGIN" => {
            exp.in_flight.entry(id).or_default().insert(state);
        }
        "ACK" => {
            if let Some(s) = exp.in_flight.get_mut(&id) {
                s.remove(&state);
            }
            exp.acked.insert(id, state);
        }
        _ => {}
    }
}

fn child(dir: &Path, round: u64) -> std::process::Child {
    Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("TIERKV_CRASH_CHILD", dir)
        .env("TIERKV_CRASH_ROUND", round.to_string())
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child")
}

/// Reopens `dir` and checks every key: it must hold its last acknowledged state or the state
/// of an operation in flight at the kill. Then records what the reopen decided as the new
/// acknowledged state (in-flight operations either happened or not, for good).
async fn verify_and_resolve(dir: &Path, exp: &mut Expect) -> usize {
    let node = open(dir).await;
    let mut checked = 0;
    for ((shard, key), acked) in exp.acked.iter_mut() {
        let got = node
            .shard(ShardId(*shard))
            .expect("shard")
            .get(key.as_bytes(), ReadConsistency::Strong)
            .await
            .expect("get")
            .and_then(|e| match e.kind {
                EntryKind::Put { value, .. } => Some(String::from_utf8_lossy(&value).into_owned()),
                EntryKind::Tombstone => None,
            });
        let maybe = exp.in_flight.get(&(*shard, key.clone()));
        let ok = got == *acked || maybe.is_some_and(|m| m.contains(&got));
        assert!(
            ok,
            "key {key}: found {got:?}, last acknowledged {acked:?}, in flight {maybe:?}"
        );
        *acked = got;
        checked += 1;
    }
    exp.in_flight.clear();
    node.shutdown(Duration::from_secs(10)).await;
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_no_acknowledged_write() {
    let rounds: u64 = std::env::var("TIERKV_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(25);
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().to_path_buf();
    let mut total_acked = 0usize;
    let mut all = Expect::default();
    for round in 0..rounds {
        let mut c = child(&dir, round);
        let pid = c.id();
        let stdout = c.stdout.take().expect("stdout");
        // Kill after a random number of acknowledgements (or a time bound), then read the
        // pipe to its end so that every acknowledgement printed before the kill is counted.
        let kill_after = 50 + rand::random_range(0..2000u64);
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut acks = 0u64;
            let start = Instant::now();
            let mut killed = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ACK") {
                    acks += 1;
                }
                lines.push(line);
                if !killed && (acks >= kill_after || start.elapsed() > Duration::from_secs(20)) {
                    killed = Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .status()
                        .is_ok_and(|s| s.success());
                }
            }
            (lines, killed)
        });
        let (lines, killed) = reader.join().expect("reader thread");
        let _ = c.wait();
        assert!(
            killed,
            "child exited before the kill: {:?}",
            lines.iter().rev().take(3).collect::<Vec<_>>()
        );
        assert!(
            !lines.iter().any(|l| l.starts_with("ERR")),
            "child saw a write error"
        );
        for l in &lines {
            parse(l, &mut all);
        }
        let checked = verify_and_resolve(&dir, &mut all).await;
        total_acked += lines.iter().filter(|l| l.starts_with("ACK")).count();
        assert!(checked > 0);
    }
    println!("kill -9 rounds: {rounds}, acknowledged writes checked: {total_acked}");
}
