//! The `tierkv` binary:
//! - `tierkv dev`: the embedded default, a gateway and three nodes in this process on
//!   loopback, object storage on the local filesystem under `./data`;
//! - `tierkv node` / `tierkv gateway`: one storage node or one stateless gateway of a cluster;
//! - `tierkv serve`: a single unreplicated process (every shard here, no RPC);
//! - `tierkv config` prints the effective configuration; `tierkv openapi` the API contract.

mod cluster;
mod config;
mod server;
mod telemetry;

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
    Dev(ServeArgs),
    /// Run one storage node of a cluster (`listen` is its RPC and health address).
    Node(ServeArgs),
    /// Run one stateless gateway of a cluster (`listen` is the public HTTP API).
    Gateway(ServeArgs),
    /// Run a single unreplicated server: every shard in this process.
    Serve(ServeArgs),
    /// Print the effective configuration (after file, environment and flags) and exit.
    Config(ServeArgs),
    /// Print the OpenAPI document of the HTTP API and exit.
    Openapi,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "TIERKV_CONFIG")]
    config: Option<PathBuf>,
    /// Address of the HTTP API (port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory for the WAL, the disk cache and the default object store.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Number of shards (fixed when the object store is first used).
    #[arg(long)]
    shards: Option<u32>,
    /// Async worker threads (0: one per CPU core).
    #[arg(long)]
    worker_threads: Option<usize>,
    /// Object store URL: file:///path, s3://bucket/prefix or memory://.
    #[arg(long)]
    store_url: Option<String>,
    /// This node's id (`tierkv node`).
    #[arg(long)]
    node_id: Option<u32>,
    /// Address other processes use to reach this node (default: the bound address).
    #[arg(long)]
    advertise: Option<String>,
    /// Members of a new cluster: `1=host:port,2=host:port,3=host:port`.
    #[arg(long, value_delimiter = ',')]
    initial_members: Option<Vec<String>>,
}

impl ServeArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let o = Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            shards: self.shards,
            worker_threads: self.worker_threads,
            store: self.store_url.clone().map(|url| StoreUrl { url }),
            cluster: ClusterOverrides {
                node_id: self.node_id,
                advertise: self.advertise.clone(),
                initial_members: self.initial_members.clone(),
            },
        };
        Config::load(self.config.as_deref(), &o)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve(a) => a.load().and_then(server::main),
        Cmd::Dev(a) => a.load().and_then(cluster::dev),
        Cmd::Node(a) => a.load().and_then(cluster::node),
        Cmd::Gateway(a) => a.load().and_then(cluster::gateway),
        Cmd::Config(a) => a.load().and_then(|c| {
            println!("{}", c.to_printable_json()?);
            Ok(())
        }),
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
