//! `tierkv serve` (16 shards, one replica each) with a 4 MiB write-buffer budget under
//! sustained writes, as a process (design note 0007): its write buffers' peak stays within
//! the budget plus one memtable, WAL files are released as shards flush, and after `kill -9`
//! and a restart every acknowledged write reads back.

mod cluster;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BUDGET: u64 = 4 << 20;
const SHARDS: u64 = 16;
/// Each shard's memtable: `2 × budget / shards`.
const MEMTABLE: u64 = 2 * BUDGET / SHARDS;

struct Serve {
    child: Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &std::path::Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args(["serve", "--listen", "127.0.0.1:0", "--shards", "16"])
        .arg("--data-dir")
        .arg(data)
        .env("TIERKV_ENGINE__WRITE_BUFFER_BYTES", BUDGET.to_string())
        // The limit is the budget plus one memtable.
        .env(
            "TIERKV_ENGINE__MAX_UNFLUSHED_BYTES",
            (BUDGET + MEMTABLE).to_string(),
        )
        .env("TIERKV_WAL__SEGMENT_BYTES", (256u64 << 10).to_string())
        .env("TIERKV_CACHE__DISK_BYTES", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tierkv serve");
    let url = cluster::url_of(&mut child);
    Serve { child, url }
}

/// The value of an unlabelled series in a Prometheus text page.
fn series(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

async fn metrics(c: &reqwest::Client, url: &str) -> String {
    c.get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_budget_holds_under_sustained_writes_and_kill9_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path());
    let c = reqwest::Client::builder()
        .default_headers(cluster::dev_key_headers(dir.path()))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let stop = Arc::new(AtomicBool::new(false));
    // Each writer owns its keys, so the last value it got acknowledged is the key's value.
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let (c, url, stop) = (c.clone(), s.url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut acked: HashMap<String, String> = HashMap::new();
                let mut refused = 0u64;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{w}-{:05}", i % 600);
                    let value = format!("{i:>1000}");
                    let r = c
                        .put(format!("{url}/v1/kv/{key}"))
                        .body(value.clone())
                        .send()
                        .await
                        .expect("put");
                    match r.status().as_u16() {
                        200 | 201 => {
                            acked.insert(key, value);
                            i += 1;
                        }
                        503 => refused += 1,
                        other => panic!("put {key}: {other}"),
                    }
                }
                (acked, refused)
            })
        })
        .collect();
    let mut max_files = 0;
    let started = Instant::now();
    let mut written = 0;
    while started.elapsed() < Duration::from_secs(60) && written < 12_000 {
        let m = metrics(&c, &s.url).await;
        max_files = max_files.max(series(&m, "tierkv_wal_files").unwrap_or(0));
        written = series(&m, "tierkv_wal_appends_total").unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = HashMap::new();
    let mut refused = 0;
    for w in writers {
        let (a, r) = w.await.expect("writer");
        acked.extend(a);
        refused += r;
    }
    let m = metrics(&c, &s.url).await;
    let peak = series(&m, "tierkv_write_buffer_peak_bytes").expect("peak");
    let flushes = series(&m, "tierkv_flushes_total").expect("flushes");
    eprintln!(
        "{written} records, {} keys acknowledged, {refused} refused, peak {peak}, {flushes} flushes, max WAL files {max_files}",
        acked.len()
    );
    // A write in flight may land after the check that admitted it: 8 writers' worth.
    assert!(
        peak <= BUDGET + MEMTABLE + 8 * 4096,
        "write buffers peaked at {peak}: over the budget {BUDGET} plus one memtable {MEMTABLE}"
    );
    assert!(flushes > 10, "only {flushes} flushes");
    assert!(
        max_files <= 40,
        "WAL files not released: up to {max_files} of 256 KiB for ~12 MiB written"
    );

    drop(s); // kill -9
    let s = start(dir.path());
    for (key, value) in &acked {
        let r = c
            .get(format!("{}/v1/kv/{key}", s.url))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "{key} lost");
        assert_eq!(&r.text().await.expect("body"), value, "{key}");
    }
}
