//! The `tierkv` binary: `tierkv dev` runs the embedded default (every shard in this process,
//! object storage on the local filesystem under `./data`); `tierkv serve` runs with a
//! configuration file; `tierkv config` prints the effective configuration; `tierkv openapi`
//! prints the API contract.

mod config;
mod server;
mod telemetry;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides, StoreUrl};

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
    /// Run the embedded default: all shards in this process, object storage on the local
    /// filesystem under ./data, nothing else to set up.
    Dev(ServeArgs),
    /// Run a server with a configuration file, environment and flags.
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
    /// Object store URL: file:///path, s3://bucket/prefix or memory://.
    #[arg(long)]
    store_url: Option<String>,
}

impl ServeArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let o = Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            shards: self.shards,
            store: self.store_url.clone().map(|url| StoreUrl { url }),
        };
        Config::load(self.config.as_deref(), &o)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Dev(a) | Cmd::Serve(a) => a.load().and_then(server::main),
        Cmd::Config(a) => a.load().and_then(|c| {
            println!("{}", serde_json::to_string_pretty(&c)?);
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
