//! The admin API over a cluster of processes (three nodes, one gateway): credentials, every
//! endpoint with real node facts gathered over node RPC (`Describe`, design note 0010), and a
//! leader killed with `kill -9` showing as `member_down` and `became_leader` events.

mod cluster;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cluster::{Cluster, Opts};
use serde_json::Value;
use tokio::time::Instant;

/// The development default (`cluster.secret`), which the test cluster runs with.
const SECRET: &str = "tierkv-dev-secret";

async fn admin(c: &Cluster, path: &str) -> Value {
    let r = c
        .http
        .get(format!("{}{path}", c.url))
        .bearer_auth(SECRET)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.expect("json")
}

/// Polls `path` until `ok` holds for its document (at most `within`).
async fn admin_until(
    c: &Cluster,
    path: &str,
    within: Duration,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = admin(c, path).await;
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never satisfied the check: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_api_shows_the_cluster_and_a_leader_kill() {
    let mut c = Cluster::start(Opts::default()).await;
    let shards = u64::from(c.opts.shards);

    for path in ["/admin/v1/cluster", "/admin/v1/shards", "/admin/v1/events"] {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", c.url))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 401, "{path} without credentials");
        let r = c
            .http
            .get(format!("{}{path}", c.url))
            .bearer_auth("wrong")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 401, "{path} with a wrong secret");
    }

    for i in 0..50 {
        let (status, _) = c
            .put(&format!("admin/{i}"), "some value")
            .await
            .expect("put");
        assert_eq!(status, 201);
    }

    let overview = admin_until(&c, "/admin/v1/cluster", Duration::from_secs(20), |o| {
        o["health"]["status"] == "healthy"
    })
    .await;
    assert_eq!(overview["health"]["members_up"], 3);
    assert_eq!(overview["roles"]["leader"], shards);
    assert_eq!(overview["map"]["shards"], shards);
    for m in overview["members"].as_array().expect("members") {
        assert_eq!(m["facts"], "ok", "{m}");
        assert_eq!(m["version"], env!("CARGO_PKG_VERSION"));
        assert!(
            m["last_heartbeat_ms"]
                .as_u64()
                .is_some_and(|t| t + 60_000 > now_ms())
        );
    }

    let nodes = admin(&c, "/admin/v1/nodes").await;
    let nodes = nodes["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        assert!(n["wal_bytes"].as_u64().is_some_and(|b| b > 0), "{n}");
        assert_eq!(n["shards_hosted"], shards);
        assert!(n["block_cache"]["hits"].as_u64().is_some());
    }
    let memtables: u64 = nodes
        .iter()
        .filter_map(|n| n["memtable_bytes"].as_u64())
        .sum();
    assert!(memtables > 0, "the writes are in memtables");

    let list = admin(&c, "/admin/v1/shards").await;
    let list = list["shards"].as_array().expect("shards");
    assert_eq!(list.len() as u64, shards);
    let written: u64 = list.iter().filter_map(|s| s["commit_seq"].as_u64()).sum();
    assert!(written >= 50, "commit points cover the writes: {written}");
    for s in list {
        assert!(s["leader"].as_u64().is_some(), "{s}");
        let reps = s["replicas"].as_array().expect("replicas");
        assert_eq!(reps.len(), 3);
        assert_eq!(reps.iter().filter(|r| r["role"] == "leader").count(), 1);
        for r in reps.iter().filter(|r| r["role"] == "follower") {
            assert!(
                r["lag"].as_u64().is_some(),
                "the leader reports follower progress: {s}"
            );
        }
    }

    // Kill the leader of shard 0.
    let (victim, _) = c.leader_of(0, None).await.expect("shard 0 has a leader");
    let killed_at = now_ms();
    c.kill(victim);
    c.wait_leader(0, Some(victim), Duration::from_secs(20))
        .await;

    let overview = admin_until(&c, "/admin/v1/cluster", Duration::from_secs(20), |o| {
        o["health"]["members_up"] == 2 && o["health"]["shards_without_leader"] == 0
    })
    .await;
    assert_eq!(overview["health"]["status"], "degraded");
    let down = &overview["members"][usize::try_from(victim - 1).expect("small")];
    assert_eq!(down["up"], false);
    assert_eq!(down["facts"], "unreachable");

    // The replica that took shard 0 over names the leader it replaced.
    let took_over = |e: &Value| {
        e["kind"] == "became_leader"
            && e["shard"] == 0
            && e["peer"] == victim
            && e["at_ms"].as_u64().is_some_and(|t| t + 1000 >= killed_at)
    };
    let events = admin_until(
        &c,
        "/admin/v1/events?limit=1000",
        Duration::from_secs(20),
        |v| {
            v["events"].as_array().is_some_and(|es| {
                es.iter()
                    .any(|e| e["kind"] == "member_down" && e["node"] == victim)
                    && es.iter().any(took_over)
            })
        },
    )
    .await;
    assert_eq!(events["missing_from"], serde_json::json!([victim]));
    let es = events["events"].as_array().expect("events");
    let times: Vec<u64> = es.iter().filter_map(|e| e["at_ms"].as_u64()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let took = es.iter().find(|e| took_over(e)).expect("the takeover");
    assert_ne!(took["node"], victim);
    assert!(
        took["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("previous leader: node {victim}")))
    );
}

/// Kills a process on drop.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `tierkv admin <args>` against the cluster's gateway; its exit success, stdout and
/// stderr.
async fn cli(c: &Cluster, args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tierkv"))
            .arg("admin")
            .args(["--gateway", &c.url])
            .args(args)
            .env("TIERKV_CLUSTER__SECRET", SECRET)
            .env_remove("TIERKV_CONFIG")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("tierkv admin finished in time")
    .expect("tierkv admin ran");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Membership through the CLI (design note 0009 §6): a fourth node starts without initial
/// members and waits; `tierkv admin add --wait` makes it a member and returns once every
/// move is done; the node then holds its replicas as voters with the earlier writes;
/// `tierkv admin status` shows nothing moving, and a refused operation exits with its
/// problem code. Then the node is drained (removing it before it is empty is refused with
/// `member_not_empty`) and removed, and every write is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_adds_a_node_and_follows_its_moves() {
    let c = Cluster::start(Opts::default()).await;
    for i in 0..20 {
        let (status, _) = c.put(&format!("grow/{i}"), "v").await.expect("put");
        assert_eq!(status, 201);
    }
    let port = cluster::free_port();
    let addr = format!("127.0.0.1:{port}");
    let _node4 = Killed(
        c.tierkv("node")
            .args(["--shards", &c.opts.shards.to_string()])
            .args(["--node-id", "4"])
            .args(["--listen", &addr])
            .arg("--data-dir")
            .arg(c.dir.path().join("node-4"))
            .spawn()
            .expect("spawn node 4"),
    );

    let (ok, out, err) = cli(
        &c,
        &[
            "add",
            "--id",
            "4",
            "--address",
            &addr,
            "--wait",
            "--timeout",
            "90s",
        ],
    )
    .await;
    assert!(ok, "add failed: {out}{err}");
    assert!(out.contains("added node 4"), "{out}");
    assert!(out.contains("every move is done"), "{out}");

    // What the moves document says is placed on node 4 is there, as voters.
    let moves = admin(&c, "/admin/v1/moves").await;
    assert_eq!(moves["shards_moving"], 0, "{moves}");
    let placed: Vec<u64> = moves["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .filter(|s| {
            s["target"]
                .as_array()
                .is_some_and(|t| t.contains(&Value::from(4)))
        })
        .map(|s| s["shard"].as_u64().expect("shard"))
        .collect();
    assert!(!placed.is_empty(), "node 4 got no replica: {moves}");
    let status: Value = c
        .http
        .get(format!("http://{addr}/status"))
        .bearer_auth(c.secret())
        .send()
        .await
        .expect("node 4 status")
        .json()
        .await
        .expect("json");
    for s in &placed {
        let shard = status["shards"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["shard"].as_u64() == Some(*s)))
            .unwrap_or_else(|| panic!("node 4 does not host shard {s}: {status}"));
        assert_eq!(shard["voter"], true, "{shard}");
    }
    for i in 0..20 {
        let (status, body) = c.get(&format!("grow/{i}")).await.expect("get");
        assert_eq!((status, body.as_str()), (200, "v"), "grow/{i}");
    }

    let (ok, out, err) = cli(&c, &["status"]).await;
    assert!(ok, "status failed: {out}{err}");
    assert!(out.contains("0 of 4 shards moving"), "{out}");
    let (ok, _, err) = cli(&c, &["remove", "4"]).await;
    assert!(!ok, "removing an active member must be refused");
    assert!(err.contains("member_state"), "{err}");

    // Drain it, and remove it too early (it still hosts replicas), then once it is empty.
    let (ok, out, err) = cli(&c, &["drain", "4"]).await;
    assert!(ok, "drain failed: {out}{err}");
    let (ok, _, err) = cli(&c, &["remove", "4"]).await;
    assert!(
        !ok,
        "removing a member that still hosts replicas must be refused"
    );
    assert!(err.contains("member_not_empty"), "{err}");
    let (ok, out, err) = cli(&c, &["status", "--wait", "--timeout", "90s"]).await;
    assert!(ok, "status --wait failed: {out}{err}");
    // The leaders are done; node 4 releases its replicas once it hears so.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out, err) = cli(&c, &["remove", "4"]).await;
        if ok {
            assert!(out.contains("removed node 4"), "{out}");
            break;
        }
        assert!(err.contains("member_not_empty"), "{err}");
        assert!(
            Instant::now() < deadline,
            "node 4 never became empty: {err}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let overview = admin_until(&c, "/admin/v1/cluster", Duration::from_secs(10), |o| {
        o["members"].as_array().is_some_and(|m| m.len() == 3)
    })
    .await;
    assert!(
        overview["members"]
            .as_array()
            .is_some_and(|m| m.iter().all(|m| m["id"] != 4)),
        "{overview}"
    );
    for i in 0..20 {
        let (status, body) = c.get(&format!("grow/{i}")).await.expect("get");
        assert_eq!(
            (status, body.as_str()),
            (200, "v"),
            "grow/{i} after the shrink"
        );
    }
}
