//! The server's configuration: one typed tree, layered as defaults → TOML file → environment
//! (`TIERKV_`, nested fields joined by `__`) → command-line flags.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! data_dir = "./data"
//! shards = 64
//! shutdown_flush_timeout = "30s"
//! worker_threads = 0                 # async worker threads; 0: one per CPU core
//!
//! [store]
//! url = "s3://my-bucket/tierkv"      # default: file://<data_dir>/objects
//! file_sync = true                   # file:// only: fsync objects as S3 makes PUTs durable
//! [store.s3]
//! endpoint = "http://127.0.0.1:9000"
//! allow_http = true
//!
//! [wal]
//! sync = "always"                    # or { interval = "5ms" }
//!
//! [engine]
//! write_buffer_bytes = 268435456     # the node's memtables (all shards); past it the largest flush
//! max_unflushed_bytes = 536870912    # past it, writes get 503 backpressure
//!
//! [cache]
//! memory_bytes = 268435456           # block cache memory, segment indexes and bloom filters included
//! disk_bytes = 1073741824            # disk tier under <data_dir>/cache; 0 disables it
//!
//! [gateway]
//! max_value_bytes = 1048576
//! [gateway.cache]                    # the gateway's value cache (design note 0008)
//! disk_dir = "/var/cache/tierkv-gateway"   # default: memory only (`dev`: <data_dir>/gateway-cache)
//! default_max_staleness = "1s"
//! [gateway.limits]                   # per-key rate limits (429 rate_limited)
//! writes_per_sec = 5000
//!
//! [telemetry]
//! log_level = "info"
//! otlp_endpoint = "http://127.0.0.1:4318/v1/traces"
//!
//! [cluster]                          # tierkv node / gateway / dev
//! node_id = 1
//! initial_members = ["1=10.0.0.1:7001", "2=10.0.0.2:7001", "3=10.0.0.3:7001"]
//! secret = "change-me"
//! lease_duration = "2s"
//! [cluster.tls]                      # connections to nodes (design note 0013); default plain
//! ca_file = "/etc/tierkv/ca.pem"     # set: nodes are reached over https, verified against it
//! cert_file = "/etc/tierkv/node1.pem"   # optional client certificate (in place of the secret)
//! key_file = "/etc/tierkv/node1.key"
//!
//! [tls]                              # this process's listener (`listen`); default plain HTTP
//! cert_file = "/etc/tierkv/node1.pem"
//! key_file = "/etc/tierkv/node1.key"
//! client_ca_file = "/etc/tierkv/ca.pem"   # nodes: client certificates accepted for RPC
//! require_client_cert = false
//! reload_interval = "10s"            # changed files are loaded for new connections
//! ```
//!
//! Environment example: `TIERKV_LISTEN=0.0.0.0:8080 TIERKV_ENGINE__WRITE_BUFFER_BYTES=134217728`.
//! Only variables whose first segment names a top-level field are read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use tierkv_cache::BlockCacheOptions;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::store::{S3Options, StoreOptions};
use tierkv_engine::wal::WalSettings;
use tierkv_gateway::GatewayOptions;
use tierkv_node::settings::ClusterSettings;
use tierkv_tls::ServerTlsSettings;

use crate::telemetry::TelemetryOptions;

/// Everything a server process is configured with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Address of the HTTP API. Port 0 picks a free port. Default: `127.0.0.1:8080`.
    pub(crate) listen: SocketAddr,
    /// Directory for the WAL, the disk cache and (by default) the object store.
    /// Default: `./data`.
    pub(crate) data_dir: PathBuf,
    /// Number of shards; fixed when the object store is first used. Default: 64.
    pub(crate) shards: u32,
    /// How long shutdown waits for the final memtable flush (what does not make it stays in
    /// the WAL and is replayed at the next start). Default: 30s.
    #[serde(with = "humantime_serde")]
    pub(crate) shutdown_flush_timeout: Duration,
    /// Worker threads of the process's async runtime; 0 means one per CPU core (or
    /// `TOKIO_WORKER_THREADS` when that is set). Processes that share a machine's cores (a
    /// gateway and nodes on one host) do better with their share each: fewer threads mean
    /// fewer cross-thread wake-ups per request. Default: 0.
    pub(crate) worker_threads: usize,
    /// Object storage.
    pub(crate) store: StoreSection,
    /// Write-ahead log.
    pub(crate) wal: WalSettings,
    /// Storage engine.
    pub(crate) engine: EngineOptions,
    /// Segment block cache (foyer: memory + disk).
    pub(crate) cache: CacheSection,
    /// HTTP API limits and behaviour.
    pub(crate) gateway: GatewayOptions,
    /// Logs and traces.
    pub(crate) telemetry: TelemetryOptions,
    /// Cluster membership, replication and RPC (`tierkv node`, `tierkv gateway`, `tierkv dev`).
    pub(crate) cluster: ClusterSettings,
    /// TLS of the `listen` listener (design note 0013): the node's RPC listener, or the
    /// public API of `gateway`, `dev` and `serve`. Default: off (plain HTTP).
    pub(crate) tls: ServerTlsSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            shards: 64,
            shutdown_flush_timeout: Duration::from_secs(30),
            worker_threads: 0,
            store: StoreSection::default(),
            wal: WalSettings::default(),
            engine: EngineOptions::default(),
            cache: CacheSection::default(),
            gateway: GatewayOptions::default(),
            telemetry: TelemetryOptions::default(),
            cluster: ClusterSettings::default(),
            tls: ServerTlsSettings::default(),
        }
    }
}

/// Object storage location.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StoreSection {
    /// `file:///path`, `s3://bucket/prefix` or `memory://`. Default: `file://<data_dir>/objects`.
    pub(crate) url: Option<String>,
    /// `file://`: fsync each object written before the write returns. Default: true.
    pub(crate) file_sync: bool,
    /// S3 endpoint, region, credentials and request style.
    pub s3: S3Options,
    /// Benchmark and test aid, not for production: every object-store read waits this long
    /// first, to imitate S3's latency on a local store (`bench/tiered --get-latency`).
    /// Default: 0s (off).
    #[serde(with = "humantime_serde")]
    pub(crate) bench_get_delay: Duration,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            url: None,
            file_sync: StoreOptions::default().file_sync,
            s3: S3Options::default(),
            bench_get_delay: Duration::ZERO,
        }
    }
}

/// Block cache sizes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CacheSection {
    /// The block cache's memory: its memory tier, plus the indexes and bloom filters of the
    /// segments the node has open, which are held in memory and reserved from it (a cold
    /// read then costs at most one object-store GET; note 0007). Default: 256 MiB.
    pub(crate) memory_bytes: usize,
    /// Disk tier under `<data_dir>/cache`; 0 disables it. Default: 1 GiB.
    pub(crate) disk_bytes: u64,
}

impl Default for CacheSection {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            disk_bytes: 1 << 30,
        }
    }
}

/// Top-level fields: environment variables `TIERKV_<FIELD>[__<NESTED>...]` are read only for
/// these, so other tools' `TIERKV_*` variables (test harness settings, `TIERKV_CONFIG`) are
/// not mistaken for configuration. Inside a section, unknown names are errors.
const SECTIONS: [&str; 13] = [
    "listen",
    "data_dir",
    "shards",
    "shutdown_flush_timeout",
    "worker_threads",
    "store",
    "wal",
    "engine",
    "cache",
    "gateway",
    "telemetry",
    "cluster",
    "tls",
];

/// Most worker threads a runtime may be configured with.
const MAX_WORKER_THREADS: usize = 1024;

/// Values given on the command line; they override every other layer.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) shards: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) worker_threads: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) store: Option<StoreUrl>,
    #[serde(skip_serializing_if = "ClusterOverrides::is_empty")]
    pub(crate) cluster: ClusterOverrides,
}

/// Cluster flags as a partial `[cluster]` table.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ClusterOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) node_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) advertise: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) initial_members: Option<Vec<String>>,
}

impl ClusterOverrides {
    fn is_empty(&self) -> bool {
        self.node_id.is_none() && self.advertise.is_none() && self.initial_members.is_none()
    }
}

/// `--store-url` as a partial `[store]` table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StoreUrl {
    pub(crate) url: String,
}

impl Config {
    /// Builds the layered configuration.
    pub(crate) fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Self::default()));
        if let Some(f) = file {
            anyhow::ensure!(f.exists(), "config file {} does not exist", f.display());
            fig = fig.merge(Toml::file(f));
        }
        let fig = fig
            .merge(
                Env::prefixed("TIERKV_")
                    .filter(|k| {
                        let top = k.as_str().split("__").next().unwrap_or_default();
                        SECTIONS.iter().any(|s| top.eq_ignore_ascii_case(s))
                    })
                    .split("__"),
            )
            .merge(Serialized::defaults(overrides));
        anyhow::ensure!(
            fig.find_value("engine.memtable_bytes").is_err(),
            "invalid configuration: engine.memtable_bytes (a per-shard memtable size) is gone: \
             set the node's memory for memtables with engine.write_buffer_bytes \
             (TIERKV_ENGINE__WRITE_BUFFER_BYTES); each shard's memtable is frozen at \
             2 × write_buffer_bytes / shards hosted (design note 0007)"
        );
        anyhow::ensure!(
            fig.find_value("cluster.client").is_err(),
            "invalid configuration: the gateway's cluster client settings moved from \
             `cluster.client` to `gateway.cluster` (TIERKV_GATEWAY__CLUSTER__…)"
        );
        let cfg: Self = fig
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        anyhow::ensure!(
            cfg.worker_threads <= MAX_WORKER_THREADS,
            "invalid configuration: worker_threads = {} (at most {MAX_WORKER_THREADS}; 0 for one per CPU core)",
            cfg.worker_threads
        );
        cfg.engine.validate()?;
        cfg.cluster.validate()?;
        cfg.tls
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        cfg.gateway
            .limits
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(cfg)
    }

    /// The process's multi-threaded async runtime, with `worker_threads` workers.
    pub(crate) fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.enable_all().thread_name("tierkv");
        if self.worker_threads > 0 {
            b.worker_threads(self.worker_threads);
        }
        b.build()
    }

    /// The configuration as pretty JSON for printing, with secrets replaced by
    /// `"<redacted>"` (the development default secret is shown, so it stands out).
    pub(crate) fn to_printable_json(&self) -> anyhow::Result<String> {
        let mut v = serde_json::to_value(self)?;
        if let Some(cluster) = v.get_mut("cluster").and_then(|c| c.as_object_mut())
            && self.cluster.secret != tierkv_node::settings::DEV_SECRET
        {
            cluster.insert("secret".into(), "<redacted>".into());
        }
        Ok(serde_json::to_string_pretty(&v)?)
    }

    /// The object store options, with the default location under the data directory.
    pub(crate) fn store_options(&self) -> StoreOptions {
        StoreOptions {
            url: self
                .store
                .url
                .clone()
                .unwrap_or_else(|| format!("file://{}", self.data_dir.join("objects").display())),
            file_sync: self.store.file_sync,
            s3: self.store.s3.clone(),
            bench_get_delay: self.store.bench_get_delay,
        }
    }

    /// The block cache options, with the disk tier under the data directory.
    pub(crate) fn cache_options(&self) -> BlockCacheOptions {
        BlockCacheOptions {
            memory_bytes: self.cache.memory_bytes,
            disk_dir: (self.cache.disk_bytes > 0).then(|| self.data_dir.join("cache")),
            disk_bytes: self.cache.disk_bytes.max(tierkv_cache::MIN_DISK_BYTES),
        }
    }
}

/// The process a configuration is for, as far as `--help` is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Process {
    /// `tierkv dev`: a gateway and three nodes.
    Dev,
    /// `tierkv node`.
    Node,
    /// `tierkv gateway`.
    Gateway,
    /// `tierkv serve`: one node (one replica per shard) and the API.
    Serve,
}

impl Process {
    /// Whether the setting at `path` (dotted TOML key) has an effect in this process.
    fn uses(self, path: &str) -> bool {
        let under = |p: &str| path == p || path.starts_with(&format!("{p}."));
        // Where a node is and who its peers are: only a cluster node has them.
        let membership = [
            "cluster.node_id",
            "cluster.advertise",
            "cluster.initial_members",
            "cluster.peer_addresses",
        ];
        match self {
            Self::Node => !under("gateway"),
            Self::Gateway => {
                [
                    "listen",
                    "data_dir",
                    "worker_threads",
                    "store",
                    "gateway",
                    "telemetry",
                    "tls",
                    "cluster.tls",
                ]
                .iter()
                .any(|p| under(p))
                    || path == "cluster.secret"
            }
            // Its in-process nodes speak plain HTTP on loopback: `[tls]` is the public
            // listener's only.
            Self::Dev => !membership.iter().any(|p| under(p)) && !under("cluster.tls"),
            Self::Serve => {
                // `serve` reads its one node in process: no value cache (reads still
                // coalesce, and limits and hot keys apply).
                let value_cache = [
                    "gateway.cache.enabled",
                    "gateway.cache.memory_bytes",
                    "gateway.cache.disk_dir",
                    "gateway.cache.disk_bytes",
                    "gateway.cache.freshness_bytes",
                ];
                !under("cluster") && !under("gateway.cluster") && !value_cache.contains(&path)
                    || [
                        "cluster.lease_duration",
                        "cluster.heartbeat_interval",
                        "cluster.tick",
                    ]
                    .contains(&path)
            }
        }
    }
}

/// The end of `tierkv <command> --help`: every setting the command reads, as its TOML key,
/// its environment variable and its default, from [`Config::default`] (so the list cannot
/// fall behind the code).
pub(crate) fn settings_help(process: Process) -> String {
    let mut out = String::from(
        "Settings (TOML key: environment variable [default]). Flags override the environment, \
         which overrides the file; `tierkv config` prints the result, README.md \
         (\"Configuration\") and src/config.rs say what each one does. Set secrets through the \
         environment or the file, never on a command line:\n",
    );
    let mut leaves = Vec::new();
    if let Ok(v) = serde_json::to_value(Config::default()) {
        flatten_json("", &v, &mut leaves);
    }
    for (path, default) in leaves.into_iter().filter(|(p, _)| process.uses(p)) {
        let env = format!("TIERKV_{}", path.replace('.', "__").to_ascii_uppercase());
        out.push_str(&format!("  {path}: {env} [{default}]\n"));
    }
    out
}

/// Every leaf of `v` as (dotted path, value as text); objects recurse, everything else is a
/// leaf (`null` and empty lists read "none").
fn flatten_json(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_json(&path, child, out);
            }
        }
        Value::Null => out.push((prefix.to_owned(), "none".to_owned())),
        Value::Array(a) if a.is_empty() => out.push((prefix.to_owned(), "none".to_owned())),
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tierkv.toml");
        std::fs::write(
            &file,
            "shards = 8\nlisten = \"127.0.0.1:9000\"\n[engine]\nwrite_buffer_bytes = 1048576\n",
        )
        .expect("write");
        let o = Overrides {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9999))),
            ..Overrides::default()
        };
        std::fs::write(
            &file,
            "shards = 8\nlisten = \"127.0.0.1:9000\"\n[engine]\nwrite_buffer_bytes = 1048576\n[wal]\nsync = \"always\"\n",
        )
        .expect("write");
        assert_eq!(
            Config::load(Some(&file), &o).expect("load").wal.sync,
            tierkv_engine::wal::SyncPolicy::Always
        );
        std::fs::write(&file, "[wal]\nsync = { interval = \"5ms\" }\n").expect("write");
        assert_eq!(
            Config::load(Some(&file), &o).expect("load").wal.sync,
            tierkv_engine::wal::SyncPolicy::Interval(std::time::Duration::from_millis(5))
        );
        std::fs::write(
            &file,
            "shards = 8\nlisten = \"127.0.0.1:9000\"\n[engine]\nwrite_buffer_bytes = 1048576\n",
        )
        .expect("write");
        let cfg = Config::load(Some(&file), &o).expect("load");
        assert_eq!(cfg.shards, 8);
        assert_eq!(cfg.engine.write_buffer_bytes, 1 << 20);
        assert_eq!(cfg.listen.port(), 9999);
        assert!(cfg.store_options().url.ends_with("data/objects"));
    }

    /// `worker_threads` sizes the runtime (file, then flag), 0 leaves it to the CPU count,
    /// and an absurd count is refused before any thread starts.
    #[test]
    fn worker_threads_size_the_runtime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "worker_threads = 1\n").expect("write");
        let cfg = Config::load(Some(&file), &Overrides::default()).expect("load");
        assert_eq!(cfg.runtime().expect("runtime").metrics().num_workers(), 1);

        let flag = Overrides {
            worker_threads: Some(3),
            ..Overrides::default()
        };
        let cfg = Config::load(Some(&file), &flag).expect("load");
        assert_eq!(cfg.runtime().expect("runtime").metrics().num_workers(), 3);

        let cfg = Config::load(None, &Overrides::default()).expect("load");
        assert_eq!(cfg.worker_threads, 0);
        assert!(cfg.runtime().expect("runtime").metrics().num_workers() >= 1);

        std::fs::write(&file, "worker_threads = 100000\n").expect("write");
        let e = Config::load(Some(&file), &Overrides::default()).expect_err("too many");
        assert!(e.to_string().contains("worker_threads"), "{e}");
    }

    /// The embedded object store is durable by default (a flush releases WAL files once its
    /// objects are written); turning that off is explicit and shows in the store's name.
    #[test]
    fn file_store_fsyncs_unless_turned_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        assert!(cfg.store_options().file_sync);
        let store = tierkv_engine::store::ObjStore::open(&cfg.store_options()).expect("open");
        assert!(
            !store.description().contains("no fsync"),
            "{}",
            store.description()
        );

        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[store]\nfile_sync = false\n").expect("write");
        let mut cfg = Config::load(Some(&file), &Overrides::default()).expect("load");
        cfg.data_dir = dir.path().to_owned();
        assert!(!cfg.store_options().file_sync);
        let store = tierkv_engine::store::ObjStore::open(&cfg.store_options()).expect("open");
        assert!(
            store.description().ends_with("(no fsync)"),
            "{}",
            store.description()
        );
    }

    #[test]
    fn printed_configuration_hides_the_cluster_secret() {
        let mut cfg = Config::default();
        cfg.cluster.secret = "s3cr3t-value".into();
        cfg.gateway.cluster.secret = "s3cr3t-value".into();
        let printed = cfg.to_printable_json().expect("json");
        assert!(!printed.contains("s3cr3t-value"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }

    /// The per-shard memtable size is gone; its setting is refused with the node-wide one
    /// named (design note 0007).
    #[test]
    fn the_per_shard_memtable_size_is_refused_naming_the_node_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("old.toml");
        std::fs::write(&file, "[engine]\nmemtable_bytes = 1048576\n").expect("write");
        let e = Config::load(Some(&file), &Overrides::default()).expect_err("refused");
        assert!(e.to_string().contains("engine.write_buffer_bytes"), "{e}");
        std::fs::write(
            &file,
            "[engine]\nwrite_buffer_bytes = 1048576\nmax_unflushed_bytes = 1048576\n",
        )
        .expect("write");
        let cfg = Config::load(Some(&file), &Overrides::default()).expect("new setting");
        assert_eq!(cfg.engine.memtable_bytes(4), 512 << 10);
    }

    #[test]
    fn the_old_place_of_the_client_settings_is_named_in_the_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("old.toml");
        std::fs::write(&file, "[cluster.client]\nleader_wait = \"3s\"\n").expect("write");
        let e = Config::load(Some(&file), &Overrides::default()).expect_err("moved");
        assert!(e.to_string().contains("gateway.cluster"), "{e}");
        std::fs::write(&file, "[gateway.cluster]\nleader_wait = \"3s\"\n").expect("write");
        let cfg = Config::load(Some(&file), &Overrides::default()).expect("new place");
        assert_eq!(cfg.gateway.cluster.leader_wait, Duration::from_secs(3));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "shardz = 8\n").expect("write");
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
        std::fs::write(&file, "[engine]\nwrite_buffer_bytes = 10\n").expect("write");
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
        assert!(
            Config::load(
                Some(&dir.path().join("missing.toml")),
                &Overrides::default()
            )
            .is_err()
        );
    }

    #[test]
    fn every_top_level_field_is_reachable_from_the_environment() {
        let json = serde_json::to_value(Config::default()).expect("json");
        let mut fields: Vec<String> = json.as_object().expect("object").keys().cloned().collect();
        let mut sections: Vec<String> = SECTIONS.iter().map(|s| (*s).to_owned()).collect();
        fields.sort();
        sections.sort();
        assert_eq!(fields, sections);
    }
}
