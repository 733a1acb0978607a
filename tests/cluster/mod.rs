//! A three-node cluster plus a gateway as separate `tierkv` processes on 127.0.0.1, for the
//! cluster tests: start, find leaders through each node's `/status`, `kill -9`, SIGSTOP /
//! SIGCONT, restart, and call a node's RPC directly. Every process is killed on drop.

#![allow(dead_code, unreachable_pub)]

pub mod load;
pub mod members;
pub mod proxy;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tierkv_engine::routing::shard_for;
use tierkv_engine::types::{EntryKind, ReadConsistency, ShardId};
use tierkv_node::wire::proto::{self, Request, Response};

/// Settings of a test cluster.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Shards of the cluster.
    pub shards: u32,
    /// Lease duration given to the nodes.
    pub lease: Duration,
    /// Each shard's memtable size (small: flushes happen during tests): the nodes get
    /// `engine.write_buffer_bytes = memtable_bytes × shards / 2`, from which they derive it
    /// (design note 0007).
    pub memtable_bytes: u64,
    /// Heartbeat interval, also the clock-drift margin.
    pub heartbeat: Duration,
    /// Object store URL (default: `file://<tempdir>/objects`).
    pub store_url: Option<String>,
    /// Extra environment for every process (e.g. S3 endpoint and credentials).
    pub env: Vec<(String, String)>,
    /// Extra environment for one node: `(node id, name, value)`.
    pub node_env: Vec<(u32, String, String)>,
    /// Gateways to start (each with its own cache directory under the cluster's).
    pub gateways: usize,
    /// Extra environment for the gateways only.
    pub gateway_env: Vec<(String, String)>,
    /// Nodes that may join later (ids 4, 5, …): their ports are reserved at start, so that
    /// the proxies and every process's `peer_addresses` cover them from the start.
    pub spare_nodes: u32,
    /// Every node → node and gateway → node connection goes through a proxy of
    /// [`proxy::Net`] (`Cluster::net`), so that a test can partition and delay links.
    pub proxied: bool,
    /// The processes serve TLS (their `[tls]` settings come through `env`, `node_env` and
    /// `gateway_env`): the harness reaches them over `https://` trusting this CA (PEM) and
    /// presenting this client certificate.
    pub tls: Option<HarnessTls>,
}

/// How the harness's own client reaches processes that serve TLS.
#[derive(Debug, Clone)]
pub struct HarnessTls {
    /// The CA the processes' certificates chain to (PEM).
    pub ca: String,
    /// The harness's client certificate and key (PEM).
    pub client: tierkv_tls::testing::Pem,
}

impl HarnessTls {
    /// A client trusting only `self.ca`, presenting the client certificate.
    pub fn client(&self) -> reqwest::ClientBuilder {
        let identity = format!("{}{}", self.client.cert, self.client.key);
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca.as_bytes()).expect("CA")])
            .identity(reqwest::Identity::from_pem(identity.as_bytes()).expect("identity"))
    }
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            shards: 4,
            lease: Duration::from_secs(1),
            memtable_bytes: 256 << 10,
            heartbeat: Duration::from_millis(100),
            store_url: None,
            env: Vec::new(),
            node_env: Vec::new(),
            gateways: 1,
            gateway_env: Vec::new(),
            spare_nodes: 0,
            proxied: false,
            tls: None,
        }
    }
}

/// Per-shard state as a node's `/status` reports it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ShardState {
    pub shard: u32,
    /// The shard's replicas in rank order (the first is the preferred leader).
    pub replicas: Vec<u32>,
    pub role: String,
    pub epoch: u64,
    pub leader: Option<u32>,
    pub commit_seq: u64,
    pub last_seq: u64,
    pub flushed_seq: u64,
    pub applied_seq: u64,
    /// Rejoining after disk loss (design note 0002).
    #[serde(default)]
    pub rejoining: bool,
    /// A voter of its configuration in force (not a learner, not removed).
    #[serde(default)]
    pub voter: bool,
    /// Move phase (`done`, `learning`, `joint`, `final`, `releasing`; design note 0009).
    #[serde(default)]
    pub phase: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct NodeState {
    shards: Vec<ShardState>,
}

struct NodeProc {
    id: u32,
    port: u16,
    child: Option<Child>,
}

struct GatewayProc {
    child: Option<Child>,
    url: String,
}

/// The cluster; every process is killed when it is dropped.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub opts: Opts,
    nodes: Vec<NodeProc>,
    gateways: Vec<GatewayProc>,
    /// Base URL of the first gateway's public API.
    pub url: String,
    members: String,
    /// Sends [`Cluster::api_key`] with every request that names no credentials of its own
    /// (node endpoints get the cluster secret per request).
    pub http: reqwest::Client,
    /// The proxies between processes (with [`Opts::proxied`]).
    pub net: Option<proxy::Net>,
    /// An `admin` API key made with `tierkv admin keys create` before the gateways start.
    pub api_key: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(c) = &mut n.child {
                let _ = Command::new("kill")
                    .args(["-CONT", &c.id().to_string()])
                    .status();
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for g in &mut self.gateways {
            if let Some(c) = &mut g.child {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// A port of 127.0.0.1 that was free a moment ago, for a process started later (a node's
/// address must be known before it starts: the members list names it, and a restarted node
/// binds it again). Chosen below the kernel's ephemeral range when there is room: outgoing
/// connections of every process take their source ports from that range, so a port picked
/// inside it (what binding port 0 gives) can be taken by some connection before the node
/// binds it, or while a killed node is down ("Address already in use"). Random and checked
/// by binding, so that concurrent test processes rarely pick the same one.
pub fn free_port() -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(0);
    if ephemeral_low > 20_000 {
        for _ in 0..1_000 {
            let port = rand::random_range(10_000..ephemeral_low);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `Authorization: Bearer <key>` with the admin key `tierkv dev` or `tierkv serve` keeps in
/// `data_dir/admin.key` (design note 0012).
pub fn dev_key_headers(data_dir: &std::path::Path) -> reqwest::header::HeaderMap {
    let key = std::fs::read_to_string(data_dir.join("admin.key")).expect("admin.key");
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", key.trim()).parse().expect("header"),
    );
    h
}

/// Polls `child` until it exits (its status) or `within` passes (None).
pub async fn exit_within(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a child's stdout line containing "listening on " and returns the URL after it.
pub fn url_of(child: &mut Child) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(url) = line.split("listening on ").nth(1) {
                let _ = tx.send(url.trim().to_owned());
                sent = true;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("process printed its URL")
}

impl Cluster {
    /// Starts three nodes and a gateway and waits until every shard has a serving leader.
    pub async fn start(opts: Opts) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let all = 3 + opts.spare_nodes;
        let ports: Vec<u16> = (0..all).map(|_| free_port()).collect();
        let members = (1..=3u32)
            .zip(&ports)
            .map(|(i, p)| format!("{i}=127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let net = if opts.proxied {
            let real = (1..=all)
                .zip(&ports)
                .map(|(i, p)| (i, format!("127.0.0.1:{p}")))
                .collect();
            Some(proxy::Net::start(&real, opts.gateways.max(1)).await)
        } else {
            None
        };
        let http = opts
            .tls
            .as_ref()
            .map_or_else(reqwest::Client::builder, HarnessTls::client)
            .timeout(Duration::from_secs(15))
            .build()
            .expect("client");
        let mut c = Self {
            dir,
            opts,
            nodes: (1..=all)
                .zip(ports)
                .map(|(id, port)| NodeProc {
                    id,
                    port,
                    child: None,
                })
                .collect(),
            gateways: Vec::new(),
            url: String::new(),
            members,
            http,
            net,
            api_key: String::new(),
        };
        c.api_key = c.create_key(&["--role", "admin", "--name", "tests"]);
        c.http = c
            .opts
            .tls
            .as_ref()
            .map_or_else(reqwest::Client::builder, HarnessTls::client)
            .timeout(Duration::from_secs(15))
            .default_headers(c.auth_headers())
            .build()
            .expect("client");
        for id in 1..=3 {
            c.spawn_node(id);
        }
        for i in 0..c.opts.gateways.max(1) {
            let (child, url) = c.spawn_gateway(i);
            c.gateways.push(GatewayProc {
                child: Some(child),
                url,
            });
        }
        c.url = c.gateways[0].url.clone();
        for s in 0..c.opts.shards {
            c.wait_leader(s, None, Duration::from_secs(30)).await;
        }
        c
    }

    /// The object store URL every process uses.
    pub fn store_url(&self) -> String {
        self.opts
            .store_url
            .clone()
            .unwrap_or_else(|| format!("file://{}", self.dir.path().join("objects").display()))
    }

    /// Runs `tierkv admin keys <args>` against the cluster's object store; its stdout.
    pub fn admin_keys(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_tierkv"))
            .args(["admin", "keys"])
            .args(args)
            .args(["--store-url", &self.store_url()])
            .envs(self.opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "warn")
            .output()
            .expect("run tierkv admin keys");
        assert!(
            out.status.success(),
            "tierkv admin keys {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// `Authorization: Bearer <api_key>`, for clients of the gateways built elsewhere.
    pub fn auth_headers(&self) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", self.api_key).parse().expect("header"),
        );
        h
    }

    /// A new API key (`tierkv admin keys create <args>`).
    pub fn create_key(&self, args: &[&str]) -> String {
        let mut a = vec!["create"];
        a.extend_from_slice(args);
        self.admin_keys(&a).trim().to_owned()
    }

    fn command(&self, sub: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tierkv"));
        let store = self.store_url();
        cmd.arg(sub)
            .args(["--store-url", &store])
            // Two leases, as by default (it may not be shorter than the lease); `env` may
            // override it.
            .env(
                "TIERKV_CLUSTER__HANDOVER_AFTER",
                format!("{}ms", 2 * self.opts.lease.as_millis()),
            )
            .envs(self.opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            // TIERKV_TEST_LOG sets the nodes' RUST_LOG when a test needs their logs.
            .env(
                "RUST_LOG",
                std::env::var("TIERKV_TEST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .env(
                "TIERKV_CLUSTER__LEASE_DURATION",
                format!("{}ms", self.opts.lease.as_millis()),
            )
            .env(
                "TIERKV_CLUSTER__HEARTBEAT_INTERVAL",
                format!("{}ms", self.opts.heartbeat.as_millis()),
            )
            .env(
                "TIERKV_CLUSTER__MAX_CLOCK_DRIFT",
                format!("{}ms", self.opts.heartbeat.as_millis()),
            )
            .env("TIERKV_GATEWAY__CLUSTER__LEADER_WAIT", "10s")
            .env(
                "TIERKV_ENGINE__WRITE_BUFFER_BYTES",
                (self.opts.memtable_bytes * u64::from(self.opts.shards) / 2)
                    .max(4096)
                    .to_string(),
            )
            .env("TIERKV_CACHE__DISK_BYTES", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        cmd
    }

    /// Gateway `i`'s cache directory (its value cache's disk tier).
    pub fn gateway_cache_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("gateway-{i}-cache"))
    }

    fn spawn_gateway(&self, i: usize) -> (Child, String) {
        let mut g = self
            .command("gateway")
            .args(["--listen", "127.0.0.1:0"])
            .env("TIERKV_GATEWAY__CACHE__DISK_DIR", self.gateway_cache_dir(i))
            .envs(self.net.as_ref().map(|net| {
                (
                    "TIERKV_GATEWAY__CLUSTER__PEER_ADDRESSES",
                    net.overrides_env(proxy::End::Gateway(i)),
                )
            }))
            .env(
                "TIERKV_GATEWAY__CACHE__DISK_BYTES",
                (16u64 << 20).to_string(),
            )
            .envs(
                self.opts
                    .gateway_env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .spawn()
            .expect("spawn gateway");
        let url = url_of(&mut g);
        (g, url)
    }

    /// Base URL of gateway `i`'s public API.
    pub fn gateway_url(&self, i: usize) -> String {
        self.gateways[i].url.clone()
    }

    /// SIGTERM gateway `i` and wait (at most 20 s) until it exits; its exit status.
    pub async fn stop_gateway(&mut self, i: usize) -> std::process::ExitStatus {
        let mut child = self.gateways[i].child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        if let Some(s) = exit_within(&mut child, Duration::from_secs(20)).await {
            return s;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("gateway {i} did not exit within 20 s of SIGTERM");
    }

    /// Starts gateway `i` again (same cache directory, a new port): its URL.
    pub fn restart_gateway(&mut self, i: usize) -> String {
        assert!(self.gateways[i].child.is_none(), "gateway {i} is running");
        let (child, url) = self.spawn_gateway(i);
        self.gateways[i] = GatewayProc {
            child: Some(child),
            url: url.clone(),
        };
        if i == 0 {
            self.url = url.clone();
        }
        url
    }

    /// Node `id`'s data directory.
    pub fn node_dir(&self, id: u32) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    /// The command that starts node `id` (the genesis members 1–3 with
    /// `--initial-members`, later ones without: they wait for a map that lists them).
    fn node_command(&self, id: u32) -> Command {
        let port = self.node(id).port;
        let mut cmd = self.command("node");
        cmd.args(["--shards", &self.opts.shards.to_string()])
            .args(["--node-id", &id.to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(self.node_dir(id))
            .envs(self.net.as_ref().map(|net| {
                (
                    "TIERKV_CLUSTER__PEER_ADDRESSES",
                    net.overrides_env(proxy::End::Node(id)),
                )
            }))
            .envs(
                self.opts
                    .node_env
                    .iter()
                    .filter(|(n, _, _)| *n == id)
                    .map(|(_, k, v)| (k.as_str(), v.as_str())),
            );
        if id <= 3 {
            cmd.args(["--initial-members", &self.members]);
        }
        cmd
    }

    fn spawn_node(&mut self, id: u32) {
        let mut child = self.node_command(id).spawn().expect("spawn node");
        let _ = url_of(&mut child);
        self.node_mut(id).child = Some(child);
    }

    /// Node `id`'s address as the shard map records it (its real port).
    pub fn node_addr(&self, id: u32) -> String {
        format!("127.0.0.1:{}", self.node(id).port)
    }

    /// The cluster's object store.
    pub fn store(&self) -> tierkv_engine::store::ObjStore {
        let url = self
            .opts
            .store_url
            .clone()
            .unwrap_or_else(|| format!("file://{}", self.dir.path().join("objects").display()));
        tierkv_engine::store::ObjStore::open(&tierkv_engine::store::StoreOptions {
            url,
            ..tierkv_engine::store::StoreOptions::default()
        })
        .expect("open the object store")
    }

    /// Starts node `id` and expects it to exit with an error within 30 s (a retired id):
    /// its stderr.
    pub async fn start_refused(&self, id: u32) -> String {
        let mut child = self
            .node_command(id)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node");
        let status = exit_within(&mut child, Duration::from_secs(30)).await;
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("node {id} was not refused within 30 s");
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
            .expect("read stderr");
        assert!(
            !status.success(),
            "node {id} exited with {status}: {stderr}"
        );
        stderr
    }

    fn node(&self, id: u32) -> &NodeProc {
        self.nodes.iter().find(|n| n.id == id).expect("node id")
    }

    fn node_mut(&mut self, id: u32) -> &mut NodeProc {
        self.nodes.iter_mut().find(|n| n.id == id).expect("node id")
    }

    /// Base URL of node `id` (`https` when the cluster serves TLS).
    pub fn node_url(&self, id: u32) -> String {
        let scheme = if self.opts.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.node(id).port)
    }

    /// Ids of the nodes whose process runs.
    pub fn running(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// Node `id`'s view of its shards (None if it does not answer).
    pub async fn status(&self, id: u32) -> Option<BTreeMap<u32, ShardState>> {
        let r = self
            .http
            .get(format!("{}/status", self.node_url(id)))
            .bearer_auth(self.secret())
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let s: NodeState = r.json().await.ok()?;
        Some(s.shards.into_iter().map(|x| (x.shard, x)).collect())
    }

    /// Shard → (leader, epoch) over every shard, as the running nodes report it (serving
    /// leaders only; the highest epoch wins).
    pub async fn leaders(&self) -> BTreeMap<u32, (u32, u64)> {
        let mut out: BTreeMap<u32, (u32, u64)> = BTreeMap::new();
        for id in self.running() {
            for (shard, s) in self.status(id).await.unwrap_or_default() {
                if s.role == "leader" && out.get(&shard).is_none_or(|(_, e)| s.epoch > *e) {
                    out.insert(shard, (id, s.epoch));
                }
            }
        }
        out
    }

    /// The shards whose first-ranked replica is `node`, from its own status, once it reports
    /// all of them (None before).
    pub async fn first_ranked(&self, node: u32) -> Option<Vec<u32>> {
        let st = self.status(node).await?;
        (st.len() == self.opts.shards as usize).then(|| {
            st.values()
                .filter(|s| s.replicas.first() == Some(&node))
                .map(|s| s.shard)
                .collect()
        })
    }

    /// The node that reports itself serving leader of `shard` with the highest epoch, among
    /// running nodes other than `except`.
    pub async fn leader_of(&self, shard: u32, except: Option<u32>) -> Option<(u32, u64)> {
        let mut best: Option<(u32, u64)> = None;
        for id in self.running() {
            if Some(id) == except {
                continue;
            }
            if let Some(st) = self.status(id).await
                && let Some(s) = st.get(&shard)
                && s.role == "leader"
                && best.is_none_or(|(_, e)| s.epoch > e)
            {
                best = Some((id, s.epoch));
            }
        }
        best
    }

    /// Polls until some running node other than `except` leads `shard`; returns it.
    pub async fn wait_leader(&self, shard: u32, except: Option<u32>, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some((id, _)) = self.leader_of(shard, except).await {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "no leader for shard {shard} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9` node `id` and reap it.
    pub fn kill(&mut self, id: u32) {
        if let Some(mut c) = self.node_mut(id).child.take() {
            c.kill().expect("kill -9");
            c.wait().expect("wait");
        }
    }

    /// SIGTERM node `id` and wait (at most 20 s) until it exits; its exit status.
    pub async fn terminate(&mut self, id: u32) -> std::process::ExitStatus {
        self.signal(id, "-TERM");
        let mut child = self.node_mut(id).child.take().expect("running");
        if let Some(s) = exit_within(&mut child, Duration::from_secs(20)).await {
            return s;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("node {id} did not exit within 20 s of SIGTERM");
    }

    /// Restarts node `id` (same data directory and port).
    /// Deletes node `id`'s data directory (a lost disk); the node must be down.
    pub fn wipe(&self, id: u32) {
        assert!(self.node(id).child.is_none(), "node {id} is running");
        std::fs::remove_dir_all(self.node_dir(id)).expect("remove the node's data directory");
    }

    pub fn restart(&mut self, id: u32) {
        assert!(self.node(id).child.is_none(), "node {id} is running");
        self.spawn_node(id);
    }

    fn signal(&self, id: u32, sig: &str) {
        let pid = self.node(id).child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill {sig} {pid}");
    }

    /// SIGSTOP node `id` (a process that is alive but silent: a partition from its side).
    /// Returns once every thread of the process has stopped: `kill` only queues the
    /// signal, and a busy machine can let the process run on for milliseconds (answering
    /// messages a test assumes it cannot see).
    pub fn pause(&self, id: u32) {
        self.signal(id, "-STOP");
        let pid = self.node(id).child.as_ref().expect("running").id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !all_threads_stopped(pid) {
            assert!(
                Instant::now() < deadline,
                "node {id} (pid {pid}) did not stop within 10 s of SIGSTOP"
            );
            std::thread::yield_now();
        }
    }

    /// SIGCONT node `id`.
    pub fn resume(&self, id: u32) {
        self.signal(id, "-CONT");
    }

    /// The `/metrics` text of the process at `base` (None if it does not answer).
    pub async fn metrics_text(&self, base: &str) -> Option<String> {
        self.http
            .get(format!("{base}/metrics"))
            .bearer_auth(self.secret())
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    }

    /// A gauge or counter from node `id`'s `/metrics` (None if it does not answer).
    pub async fn metric(&self, id: u32, name: &str) -> Option<u64> {
        series(&self.metrics_text(&self.node_url(id)).await?, name)
    }

    /// A gauge or counter (`name` with its labels, if any) from the gateway's `/metrics`.
    pub async fn gateway_metric(&self, name: &str) -> Option<u64> {
        series(&self.metrics_text(&self.url).await?, name)
    }

    /// `n` user keys starting with `prefix` that route to `shard`.
    pub fn keys_in_shard(&self, shard: u32, prefix: &str, n: usize) -> Vec<String> {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .filter(|k| shard_for(k.as_bytes(), self.opts.shards) == ShardId(shard))
            .take(n)
            .collect()
    }

    /// The cluster secret the processes run with (the development default, `cluster.secret`):
    /// nodes take it on their RPC routes, gateways on the admin API.
    pub fn secret(&self) -> &'static str {
        "tierkv-dev-secret"
    }

    /// A `tierkv <sub>` command with this cluster's object store and settings, for a
    /// process the test manages itself (e.g. a node that joins the cluster).
    pub fn tierkv(&self, sub: &str) -> Command {
        self.command(sub)
    }

    /// Calls node `id`'s client RPC directly (bypassing the gateway).
    pub async fn rpc(&self, id: u32, req: &Request) -> Result<Response, String> {
        let r = self
            .http
            .post(format!("{}/rpc/v1/kv", self.node_url(id)))
            .bearer_auth(self.secret())
            .body(proto::encode_request(req))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("status {}", r.status()));
        }
        let body: Bytes = r.bytes().await.map_err(|e| e.to_string())?;
        proto::decode_response(&body).map_err(|e| e.to_string())
    }

    /// Reads every key of `shard` from `node` itself (eventual reads: its own state) and
    /// expects `value(key)` for each.
    pub async fn assert_node_holds(
        &self,
        node: u32,
        shard: u32,
        keys: &[String],
        value: impl Fn(&str) -> String,
    ) {
        for k in keys {
            let mut key = vec![0x01];
            key.extend_from_slice(k.as_bytes());
            let req = Request::Get {
                shard: ShardId(shard),
                key: Bytes::from(key),
                consistency: ReadConsistency::Eventual,
            };
            match self.rpc(node, &req).await {
                Ok(Response::Got(Some(e))) => {
                    let EntryKind::Put { value: v, .. } = e.kind else {
                        panic!("key {k} is a tombstone on node {node}");
                    };
                    assert_eq!(v, Bytes::from(value(k)), "key {k} on node {node}");
                }
                other => panic!("key {k} on node {node}: {other:?}"),
            }
        }
    }

    /// PUT through the gateway; the status and the version from the ETag.
    pub async fn put(&self, key: &str, value: &str) -> Result<(u16, Option<u64>), String> {
        let r = self
            .http
            .put(format!("{}/v1/kv/{key}", self.url))
            .body(value.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok((r.status().as_u16(), etag(&r)))
    }

    /// Strong GET through the gateway: status and body.
    pub async fn get(&self, key: &str) -> Result<(u16, String), String> {
        let r = self
            .http
            .get(format!("{}/v1/kv/{key}", self.url))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        Ok((status, r.text().await.unwrap_or_default()))
    }
}

/// Whether every thread of process `pid` is in the stopped state (`T` in
/// `/proc/<pid>/task/<tid>/stat`, the field after the parenthesised command name).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                == Some('T')
        })
    })
}

/// The value of series `name` in Prometheus text.
fn series(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The version in a response's ETag (`"<n>"`).
pub fn etag(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("etag")?
        .to_str()
        .ok()?
        .trim_matches('"')
        .parse()
        .ok()
}

/// Runs `tierkv` with `args` (its stderr captured), expects it to exit with an error within
/// 30 s, and returns its stderr.
pub async fn refused_start(args: &[std::ffi::OsString]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tierkv");
    let status = exit_within(&mut child, Duration::from_secs(30))
        .await
        .expect("tierkv did not exit");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(
        !status.success(),
        "tierkv {args:?} exited with {status}: {stderr}"
    );
    stderr
}
