//! `tierkv admin`: membership operations through a gateway's admin API (design note 0009
//! §6): add, drain, remove and replace a member, and the status of the moves they cause
//! (`--wait`: a progress bar polling `GET /admin/v1/moves` until every move is done).
//!
//! The gateway is `--gateway` (or `TIERKV_ADMIN_GATEWAY`), else `http://<listen>` of the
//! configuration (a local `tierkv dev` by default); the credential is the cluster secret of
//! the configuration (`cluster.secret` in the file, or `TIERKV_CLUSTER__SECRET`), never a
//! flag (command lines are visible to every user of the machine).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::config::{Config, Overrides};

/// `tierkv admin`.
#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// Base URL of a gateway, e.g. `http://10.0.0.5:8080`. [default: http://<listen> of the
    /// configuration]
    #[arg(long, env = "TIERKV_ADMIN_GATEWAY", value_name = "URL", global = true)]
    gateway: Option<String>,
    /// TOML configuration file: its `cluster.secret` is the credential, its `listen` the
    /// default gateway address.
    #[arg(long, env = "TIERKV_CONFIG", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    op: AdminOp,
}

#[derive(Debug, Subcommand)]
enum AdminOp {
    /// Add a member. Start its node first (same object store, no --initial-members): it
    /// waits until the new shard map lists it, then takes replicas over.
    Add {
        /// The new node's id (its --node-id), never used before in this cluster.
        #[arg(long)]
        id: u32,
        /// Where other nodes and gateways reach it (its --listen or --advertise).
        #[arg(long, value_name = "HOST:PORT")]
        address: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Drain a member: its replicas move to the other members (refused when fewer than N
    /// active members would remain). Then `remove` it.
    Drain {
        /// The member's node id.
        id: u32,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Remove a drained member that hosts nothing any more; its node can then be stopped.
    /// With --drain, one command: drain it first (unless it is draining already), wait
    /// until its replicas moved and it released them, then remove it.
    Remove {
        /// The member's node id.
        id: u32,
        /// Drain the member first and wait (with a progress bar) until it hosts nothing.
        #[arg(long)]
        drain: bool,
        /// With --drain: give up after this long (e.g. `30m`).
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Replace a member lost for good by a new node (its id is retired for ever).
    Replace {
        /// The node id of the member replaced.
        id: u32,
        /// The new node's id, never used before in this cluster.
        #[arg(long)]
        new_id: u32,
        /// Where other nodes and gateways reach the new node.
        #[arg(long, value_name = "HOST:PORT")]
        address: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Every shard's move toward the current placement, progress and ETA.
    Status {
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// API keys (design note 0012), directly on the object store: the same operations as
    /// `/admin/v1/keys`, and the bootstrap of a new cluster's first admin key.
    Keys {
        #[command(subcommand)]
        cmd: crate::KeysCmd,
    },
}

#[derive(Debug, Args)]
struct WaitArgs {
    /// Wait until every move is done, with a progress bar.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this long (e.g. `30m`).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// How often `--wait` polls the moves.
const POLL: Duration = Duration::from_millis(500);

struct Gateway {
    http: reqwest::Client,
    base: String,
    secret: String,
}

impl Gateway {
    /// Sends one admin request; a refusal becomes an error naming its code and what to do.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.secret);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the gateway at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            return serde_json::from_str(&text).with_context(|| {
                format!("the gateway answered {path} with something else than JSON")
            });
        }
        let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = problem["code"].as_str().unwrap_or("unknown");
        let detail = problem["detail"].as_str().unwrap_or(text.as_str());
        Err(Refusal {
            code: code.to_owned(),
            message: format!(
                "refused ({code}, HTTP {}): {detail}{}",
                status.as_u16(),
                hint(code)
            ),
        }
        .into())
    }
}

/// A refusal by the gateway: its problem code and the message shown to the operator.
#[derive(Debug)]
struct Refusal {
    code: String,
    message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// The problem code of `e` when it is a refusal.
fn refusal_code(e: &anyhow::Error) -> Option<&str> {
    e.downcast_ref::<Refusal>().map(|r| r.code.as_str())
}

/// `remove --drain`: drains member `id` (a member draining already is left as it is),
/// follows the moves, then removes it, retrying while it still releases its replicas
/// (`member_not_empty`) until `timeout` has passed since the start.
async fn drain_then_remove(gw: &Gateway, id: u32, timeout: Duration) -> anyhow::Result<Value> {
    use reqwest::Method;
    let started = tokio::time::Instant::now();
    match gw
        .call(Method::POST, &format!("/admin/v1/members/{id}/drain"), None)
        .await
    {
        Ok(v) => {
            println!("draining node {id}: its replicas move to the other members");
            follow(gw, v["map_version"].as_u64().unwrap_or(0), timeout).await?;
        }
        // Draining already (or not drainable: the removal below says why).
        Err(e) if refusal_code(&e) == Some("member_state") => {
            follow(gw, 0, timeout).await?;
        }
        Err(e) => return Err(e),
    }
    loop {
        match gw
            .call(Method::DELETE, &format!("/admin/v1/members/{id}"), None)
            .await
        {
            Err(e)
                if refusal_code(&e) == Some("member_not_empty") && started.elapsed() < timeout =>
            {
                tokio::time::sleep(POLL).await;
            }
            other => return other,
        }
    }
}

/// What an operator does about a refusal.
fn hint(code: &str) -> &'static str {
    match code {
        "unauthorized" => {
            "\n  the credential is the cluster secret: set cluster.secret in --config or TIERKV_CLUSTER__SECRET"
        }
        "member_not_empty" => "\n  drain it first and wait: tierkv admin remove <id> --drain",
        "member_state" => "\n  remove takes a draining member; replace takes one not retired",
        "too_few_members" => {
            "\n  add a member first: a shard needs N active members for its N replicas"
        }
        "members_outdated" => "\n  upgrade every node to this version first",
        "member_exists" => "\n  ids are never reused, retired ones included: pick a new id",
        _ => "",
    }
}

/// Runs `tierkv admin`.
pub(crate) fn main(args: AdminArgs) -> anyhow::Result<()> {
    let op = match args.op {
        AdminOp::Keys { cmd } => return crate::admin_keys(args.config, cmd),
        op => op,
    };
    let cfg = Config::load(args.config.as_deref(), &Overrides::default())?;
    let base = match args.gateway {
        Some(g) => g.trim_end_matches('/').to_owned(),
        None => {
            let mut addr = cfg.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
            }
            format!("http://{addr}")
        }
    };
    let gw = Gateway {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?,
        base,
        secret: cfg.cluster.secret.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run(&gw, op))
}

async fn run(gw: &Gateway, op: AdminOp) -> anyhow::Result<()> {
    use reqwest::Method;
    let (changed, wait) = match op {
        AdminOp::Keys { .. } => {
            anyhow::bail!("`tierkv admin keys` works on the object store, not a gateway")
        }
        AdminOp::Add { id, address, wait } => {
            let body = json!({ "id": id, "address": address });
            let v = gw
                .call(Method::POST, "/admin/v1/members", Some(body))
                .await?;
            println!("added node {id} at {address}");
            (Some(v), wait)
        }
        AdminOp::Drain { id, wait } => {
            let v = gw
                .call(Method::POST, &format!("/admin/v1/members/{id}/drain"), None)
                .await?;
            println!("draining node {id}: its replicas move to the other members");
            (Some(v), wait)
        }
        AdminOp::Remove { id, drain, timeout } => {
            let v = if drain {
                drain_then_remove(gw, id, timeout).await?
            } else {
                gw.call(Method::DELETE, &format!("/admin/v1/members/{id}"), None)
                    .await?
            };
            println!("removed node {id}: its process can be stopped");
            (
                Some(v),
                WaitArgs {
                    wait: false,
                    timeout: Duration::ZERO,
                },
            )
        }
        AdminOp::Replace {
            id,
            new_id,
            address,
            wait,
        } => {
            let body = json!({ "id": new_id, "address": address });
            let v = gw
                .call(
                    Method::POST,
                    &format!("/admin/v1/members/{id}/replace"),
                    Some(body),
                )
                .await?;
            println!("replaced node {id} by node {new_id} at {address}; id {id} is retired");
            (Some(v), wait)
        }
        AdminOp::Status { wait } => (None, wait),
    };
    let version = match &changed {
        Some(v) => {
            let version = v["map_version"].as_u64().unwrap_or(0);
            println!("shard map version {version}:");
            for m in v["members"].as_array().into_iter().flatten() {
                println!(
                    "  node {:>4}  {:<9} {}",
                    m["id"],
                    plain(&m["state"]),
                    plain(&m["addr"])
                );
            }
            version
        }
        None => 0,
    };
    if wait.wait {
        follow(gw, version, wait.timeout).await
    } else if changed.is_none() {
        let moves = gw.call(Method::GET, "/admin/v1/moves", None).await?;
        print_moves(&moves);
        Ok(())
    } else {
        Ok(())
    }
}

/// A JSON string without its quotes (other values as they are).
fn plain(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

fn set(v: &Value) -> String {
    match v.as_array() {
        Some(a) if a.iter().all(Value::is_array) => {
            a.iter().map(set).collect::<Vec<_>>().join(" → ")
        }
        Some(a) => format!(
            "{{{}}}",
            a.iter().map(Value::to_string).collect::<Vec<_>>().join(",")
        ),
        None => "?".to_owned(),
    }
}

fn print_moves(m: &Value) {
    // (Gateways before `shards_unreported` send none.)
    let unreported = match m["shards_unreported"].as_u64() {
        Some(n) if n > 0 => format!("; {n} with no leader reporting"),
        _ => String::new(),
    };
    println!(
        "shard map version {}: {} of {} shards moving; progress {:.0}%{}{}",
        m["map_version"],
        m["shards_moving"],
        m["shards_total"],
        m["progress"].as_f64().unwrap_or(0.0) * 100.0,
        eta(m),
        unreported
    );
    println!(
        "{:>5}  {:>6}  {:<20} {:<12} {:<9} {:>8} {:>10}",
        "shard", "leader", "current", "target", "phase", "records", "bytes"
    );
    for s in m["shards"].as_array().into_iter().flatten() {
        let leader = s["leader"]
            .as_u64()
            .map_or_else(|| "-".to_owned(), |l| l.to_string());
        println!(
            "{:>5}  {:>6}  {:<20} {:<12} {:<9} {:>8} {:>10}",
            s["shard"],
            leader,
            set(&s["current"]),
            set(&s["target"]),
            plain(&s["phase"]),
            s["records_behind"],
            s["bytes_behind"]
        );
    }
}

fn eta(m: &Value) -> String {
    m["eta_secs"].as_u64().map_or_else(String::new, |s| {
        format!(
            "; ETA {}",
            humantime::format_duration(Duration::from_secs(s))
        )
    })
}

/// Polls the moves until the map is at least `version` and nothing moves, with a progress
/// bar; fails after `timeout`.
async fn follow(gw: &Gateway, version: u64, timeout: Duration) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} shards moved {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        let m = gw
            .call(reqwest::Method::GET, "/admin/v1/moves", None)
            .await?;
        let moving = m["shards_moving"].as_u64().unwrap_or(u64::MAX);
        let to_move = m["shards_to_move"].as_u64().unwrap_or(0);
        let current = m["map_version"].as_u64().unwrap_or(0) >= version;
        bar.set_length(to_move.max(1));
        bar.set_position(to_move.saturating_sub(moving));
        bar.set_message(eta(&m));
        if current && moving == 0 {
            bar.finish_and_clear();
            println!(
                "every move is done (shard map version {}, {:.1} s)",
                m["map_version"],
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() >= timeout {
            bar.abandon();
            print_moves(&m);
            bail!(
                "moves still under way after {}",
                humantime::format_duration(timeout)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}
