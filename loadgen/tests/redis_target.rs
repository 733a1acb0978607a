//! The Redis target against a tiny in-process RESP server (GET, SET [EX], WATCH, MULTI,
//! EXEC with optimistic-lock semantics).

mod common;

use bytes::BytesMut;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tierkv_loadgen::resp::{self, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// key -> (version, value)
type Store = HashMap<Vec<u8>, (u64, Vec<u8>)>;

#[derive(Default)]
struct MockRedis {
    data: Mutex<Store>,
    version: AtomicU64,
    commands: AtomicU64,
    aborted_execs: AtomicU64,
    last_set: Mutex<Vec<Vec<u8>>>,
}

impl MockRedis {
    fn version_of(&self, key: &[u8]) -> u64 {
        self.data
            .lock()
            .expect("lock")
            .get(key)
            .map_or(0, |(v, _)| *v)
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        let v = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        self.data
            .lock()
            .expect("lock")
            .insert(key.to_vec(), (v, value.to_vec()));
    }
}

fn bulk_args(f: Frame) -> Vec<Vec<u8>> {
    match f {
        Frame::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Frame::Bulk(b) => b.to_vec(),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect(),
        other => panic!("not a command: {other:?}"),
    }
}

async fn connection(state: Arc<MockRedis>, mut stream: TcpStream) {
    let mut buf = BytesMut::new();
    let mut watched: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut queued: Option<Vec<Vec<Vec<u8>>>> = None;
    loop {
        let frame = match resp::decode(&mut buf).expect("client sends valid RESP") {
            Some(f) => f,
            None => match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
        };
        state.commands.fetch_add(1, Ordering::Relaxed);
        let args = bulk_args(frame);
        let name = String::from_utf8_lossy(&args[0]).to_uppercase();
        let reply: Vec<u8> = match (name.as_str(), queued.as_mut()) {
            ("EXEC", Some(_)) => {
                let cmds = queued.take().unwrap_or_default();
                let clean = watched.iter().all(|(k, v)| state.version_of(k) == *v);
                watched.clear();
                if clean {
                    for c in &cmds {
                        state.set(&c[1], &c[2]);
                    }
                    format!("*{}\r\n{}", cmds.len(), "+OK\r\n".repeat(cmds.len())).into_bytes()
                } else {
                    state.aborted_execs.fetch_add(1, Ordering::Relaxed);
                    b"*-1\r\n".to_vec()
                }
            }
            (_, Some(q)) => {
                q.push(args);
                b"+QUEUED\r\n".to_vec()
            }
            ("GET", None) => match state.data.lock().expect("lock").get(&args[1]) {
                Some((_, v)) => {
                    let mut out = format!("${}\r\n", v.len()).into_bytes();
                    out.extend_from_slice(v);
                    out.extend_from_slice(b"\r\n");
                    out
                }
                None => b"$-1\r\n".to_vec(),
            },
            ("SET", None) => {
                state.set(&args[1], &args[2]);
                *state.last_set.lock().expect("lock") = args;
                b"+OK\r\n".to_vec()
            }
            ("WATCH", None) => {
                watched.push((args[1].clone(), state.version_of(&args[1])));
                b"+OK\r\n".to_vec()
            }
            ("MULTI", None) => {
                queued = Some(Vec::new());
                b"+OK\r\n".to_vec()
            }
            _ => b"-ERR unknown command\r\n".to_vec(),
        };
        if stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

async fn start_redis() -> (SocketAddr, Arc<MockRedis>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = Arc::new(MockRedis::default());
    let s = state.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            // Like Redis itself: replies are small, do not let Nagle delay them.
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(s.clone(), stream));
        }
    });
    (addr, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rmw_conflicts_on_nil_exec() {
    let (addr, redis) = start_redis().await;
    let o = common::opts(
        addr,
        &[
            "--target=redis",
            "--workload=f",
            "--keys=2",
            "--ops=2000",
            "--concurrency=16",
            "--load",
            "--distribution=uniform",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!(r.errors, 0, "{:?}", r.errors_by_kind);
    assert_eq!(r.total_ops, 2000);
    assert_eq!(r.not_found, 0);
    assert_eq!(r.conflicts, redis.aborted_execs.load(Ordering::Relaxed));
    assert!(r.conflicts > 0, "16 workers on 2 keys should conflict");
    // read = GET; rmw = WATCH, GET, MULTI, SET, EXEC.
    let expected = 2 + r.ops["read"].count + 5 * r.ops["rmw"].count;
    assert_eq!(redis.commands.load(Ordering::Relaxed), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_ttl_writes_use_set_ex() {
    let (addr, redis) = start_redis().await;
    let o = common::opts(
        addr,
        &[
            "--target=redis",
            "--workload=ttl",
            "--ttl=9",
            "--keys=5",
            "--ops=20",
            "--concurrency=2",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!((r.total_ops, r.errors), (20, 0));
    let last = redis.last_set.lock().expect("lock").clone();
    assert_eq!(last.len(), 5);
    assert_eq!((&last[3][..], &last[4][..]), (&b"EX"[..], &b"9"[..]));
}
