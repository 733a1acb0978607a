//! The `tierkv` binary:
//! - `tierkv dev`: the embedded default, a gateway and three nodes in this process on
//!   loopback, object storage on the local filesystem under `./data`;
//! - `tierkv node` / `tierkv gateway`: one storage node or one stateless gateway of a cluster;
//! - `tierkv serve`: one process, no network hop: every shard here with one replica, through
//!   the same replica driver as a cluster's, and the public API over it (`tierkv::local`);
//! - `tierkv config` prints the effective configuration; `tierkv openapi` the API contract;
//! - `tierkv admin add|drain|remove|replace|status`: membership changes through a gateway's
//!   admin API (design note 0009).
//! - `tierkv admin keys create|list|revoke`: API keys, directly on the object store (the
//!   bootstrap of a new cluster; design note 0012).

mod admin;
mod cluster;
mod config;
mod keys;
mod server;
mod telemetry;
mod tls_metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{ClusterOverrides, Config, Overrides, StoreUrl};

/// mimalloc instead of glibc's allocator: the RPC paths allocate many small buffers across
/// threads, where glibc's arenas showed up at ~8 % of CPU in profiles (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "tierkv",
    version,
    about = "TierKV: a key-value database over object storage"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the embedded default: a gateway and three nodes in this process on loopback,
    /// object storage on the local filesystem under ./data, nothing else to set up.
    #[command(after_long_help = config::settings_help(config::Process::Dev))]
    Dev(DevArgs),
    /// Run one storage node of a cluster: it hosts shard replicas and answers gateways and
    /// other nodes on its RPC address. It serves no public API.
    #[command(after_long_help = config::settings_help(config::Process::Node))]
    Node(NodeArgs),
    /// Run one stateless gateway of a cluster: the public HTTP API, routed to the nodes
    /// found in the shard map in object storage.
    #[command(after_long_help = config::settings_help(config::Process::Gateway))]
    Gateway(GatewayArgs),
    /// Run a single-node database in this process: one replica per shard (no replication),
    /// the HTTP API served without network hops.
    #[command(after_long_help = config::settings_help(config::Process::Serve))]
    Serve(ServeArgs),
    /// Print the effective configuration (defaults, then file, environment and flags) and
    /// exit.
    #[command(after_long_help = config::settings_help(config::Process::Dev))]
    Config(ConfigArgs),
    /// Print the OpenAPI document of the HTTP API and exit.
    Openapi,
    /// Administer the cluster: membership changes through a gateway's admin API (add,
    /// drain, remove, replace; status and --wait show the replica moves), and API keys
    /// directly on the object store (`keys`, run where the cluster's configuration is).
    Admin(admin::AdminArgs),
}

/// Where `tierkv admin keys` finds the cluster's object store (the configuration file is
/// `tierkv admin --config`).
#[derive(Debug, Args)]
struct AdminTarget {
    #[command(flatten)]
    storage: StorageArgs,
    /// Object store URL (`file:///path`, `s3://bucket/prefix`, `memory://`). [default: the
    /// configuration's, else file://<data-dir>/objects]
    #[arg(long, value_name = "URL")]
    store_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Make an API key and print it on standard output (the only time it is shown).
    Create {
        /// read (get, head, list), write (read + put, delete, batch) or admin (everything).
        #[arg(long)]
        role: tierkv_gateway::auth::Role,
        /// What the key is for.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Limit the key to keys starting with this prefix (repeat for several; not for
        /// admin keys).
        #[arg(long = "prefix", value_name = "PREFIX")]
        prefixes: Vec<String>,
        #[command(flatten)]
        target: AdminTarget,
    },
    /// List the API keys (never their secrets).
    List {
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Revoke an API key: gateways refuse it within their poll interval.
    Revoke {
        /// The key's id (16 hex characters).
        id: String,
        #[command(flatten)]
        target: AdminTarget,
    },
}

/// Flags every server command takes.
#[derive(Debug, Args)]
struct CommonArgs {
    /// TOML configuration file (settings below the flags: see the list at the end of --help).
    #[arg(long, env = "TIERKV_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Object store: file:///path, s3://bucket/prefix or memory:// (every process of a
    /// cluster uses the same one). [default: file://<data_dir>/objects]
    #[arg(long, value_name = "URL")]
    store_url: Option<String>,
    /// Async worker threads of this process (0: one per CPU core). [default: 0]
    #[arg(long, value_name = "N")]
    worker_threads: Option<usize>,
}

/// Flags of the commands that keep data on this machine.
#[derive(Debug, Args)]
struct StorageArgs {
    /// Directory for the WAL, the disk cache and the default object store. [default: ./data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Number of shards; fixed when the object store is first used. [default: 64]
    #[arg(long, value_name = "N")]
    shards: Option<u32>,
}

#[derive(Debug, Args)]
struct DevArgs {
    /// Address of the public HTTP API (port 0 picks a free port). [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address of the public HTTP API (port 0 picks a free port). [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct NodeArgs {
    /// This node's id: unique in the cluster, the same at every start on this data
    /// directory. [default: 1]
    #[arg(long, value_name = "ID")]
    node_id: Option<u32>,
    /// Address of this node's RPC, health, status and metrics endpoint. Other nodes and the
    /// gateways reach the node at the address recorded for it in the shard map (this one,
    /// or --advertise), so it must be the same at every start, and match this node's entry
    /// in --initial-members: a fixed port (0 is refused). [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Address other processes use to reach this node, recorded in the shard map, when it
    /// differs from --listen (e.g. `node1:7001` behind NAT or in containers).
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Members of a new cluster, `1=host:port,2=host:port,3=host:port`: the first node to
    /// find no shard map in object storage publishes it; later starts ignore it.
    #[arg(long, value_delimiter = ',', value_name = "ID=HOST:PORT,...")]
    initial_members: Option<Vec<String>>,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct GatewayArgs {
    /// Address of the public HTTP API (port 0 picks a free port). [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    common: CommonArgs,
}

/// `tierkv config` takes every flag of the server commands.
#[derive(Debug, Args)]
struct ConfigArgs {
    /// Address of the HTTP API (a node's RPC address for `tierkv node`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// This node's id (`tierkv node`).
    #[arg(long, value_name = "ID")]
    node_id: Option<u32>,
    /// Address recorded in the shard map (`tierkv node`).
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Members of a new cluster (`tierkv node`).
    #[arg(long, value_delimiter = ',', value_name = "ID=HOST:PORT,...")]
    initial_members: Option<Vec<String>>,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    common: CommonArgs,
}

/// Flags as a partial configuration, and the file they name.
fn load(
    common: &CommonArgs,
    storage: Option<&StorageArgs>,
    listen: Option<SocketAddr>,
    cluster: ClusterOverrides,
) -> anyhow::Result<Config> {
    let o = Overrides {
        listen,
        data_dir: storage.and_then(|s| s.data_dir.clone()),
        shards: storage.and_then(|s| s.shards),
        worker_threads: common.worker_threads,
        store: common.store_url.clone().map(|url| StoreUrl { url }),
        cluster,
    };
    Config::load(common.config.as_deref(), &o)
}

impl NodeArgs {
    fn load(&self) -> anyhow::Result<Config> {
        if let Some(l) = self.listen
            && l.port() == 0
        {
            anyhow::bail!(
                "--listen {l}: a node needs a fixed port (its address is recorded in the shard \
                 map and must stay the same across restarts); port 0 only suits `tierkv dev`, \
                 `serve` and `gateway`"
            );
        }
        let cluster = ClusterOverrides {
            node_id: self.node_id,
            advertise: self.advertise.clone(),
            initial_members: self.initial_members.clone(),
        };
        let cfg = load(&self.common, Some(&self.storage), self.listen, cluster)?;
        anyhow::ensure!(
            cfg.listen.port() != 0 || cfg.cluster.advertise.is_some(),
            "listen = {}: a node needs a fixed port (its address is recorded in the shard map \
             and must stay the same across restarts)",
            cfg.listen
        );
        Ok(cfg)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve(a) => load(
            &a.common,
            Some(&a.storage),
            a.listen,
            ClusterOverrides::default(),
        )
        .and_then(server::main),
        Cmd::Dev(a) => load(
            &a.common,
            Some(&a.storage),
            a.listen,
            ClusterOverrides::default(),
        )
        .and_then(cluster::dev),
        Cmd::Node(a) => a.load().and_then(cluster::node),
        Cmd::Gateway(a) => {
            load(&a.common, None, a.listen, ClusterOverrides::default()).and_then(cluster::gateway)
        }
        Cmd::Config(a) => {
            let cluster = ClusterOverrides {
                node_id: a.node_id,
                advertise: a.advertise.clone(),
                initial_members: a.initial_members.clone(),
            };
            load(&a.common, Some(&a.storage), a.listen, cluster)
        }
        .and_then(|c| {
            println!("{}", c.to_printable_json()?);
            Ok(())
        }),
        Cmd::Admin(a) => admin::main(a),
        Cmd::Openapi => {
            print!("{}", tierkv_gateway::openapi_yaml());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `tierkv admin keys …`: API keys directly on the cluster's object store (note 0012).
fn admin_keys(config: Option<PathBuf>, cmd: KeysCmd) -> anyhow::Result<()> {
    let (target, cmd) = match cmd {
        KeysCmd::Create {
            role,
            name,
            prefixes,
            target,
        } => (
            target,
            keys::KeysCommand::Create {
                role,
                name,
                prefixes,
            },
        ),
        KeysCmd::List { target } => (target, keys::KeysCommand::List),
        KeysCmd::Revoke { id, target } => (target, keys::KeysCommand::Revoke { id }),
    };
    let common = CommonArgs {
        config,
        store_url: target.store_url,
        worker_threads: None,
    };
    load(
        &common,
        Some(&target.storage),
        None,
        ClusterOverrides::default(),
    )
    .and_then(|cfg| keys::keys(&cfg, cmd))
}
