//! Cluster processes: `tierkv node` (one storage node), `tierkv gateway` (one stateless
//! gateway), and `tierkv dev` (a gateway and three nodes in this process on loopback, the
//! embedded default).
//!
//! Every process reads the same configuration tree; `listen` is the node's RPC address for
//! `node` and the public API address for `gateway` and `dev`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tierkv_cache::{BlockCacheOptions, FoyerBlockCache};
use tierkv_engine::block_cache::BlockCache;
use tierkv_engine::clock::{Clock, SystemClock};
use tierkv_engine::dirlock::DirLock;
use tierkv_engine::metrics::Registry;
use tierkv_engine::store::ObjStore;
use tierkv_gateway::cluster::ClusterBackend;
use tierkv_gateway::{AppState, ValueStore};
use tierkv_node::node::{Node, NodeComponents, NodeOptions};
use tierkv_node::settings::{ClusterSettings, DEV_SECRET};
use tierkv_tls::TlsFigures;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::server::shutdown_signal;
use tierkv_node::server::StopOptions;

/// Runs `f` on a new multi-threaded runtime with telemetry set up.
fn run<F>(cfg: Config, f: impl FnOnce(Config) -> F) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>>,
{
    let _telemetry = crate::telemetry::init(&cfg.telemetry)?;
    let rt = cfg.runtime()?;
    // `f` registers the signal handlers at once (`shutdown_signal`): inside the runtime.
    let _in_runtime = rt.enter();
    rt.block_on(f(cfg))
}

/// `tierkv node`.
pub(crate) fn node(cfg: Config) -> anyhow::Result<()> {
    run(cfg, |cfg| run_node(cfg, shutdown_signal()))
}

/// `tierkv gateway`.
pub(crate) fn gateway(cfg: Config) -> anyhow::Result<()> {
    run(cfg, |cfg| run_gateway(cfg, shutdown_signal()))
}

/// `tierkv dev`.
pub(crate) fn dev(cfg: Config) -> anyhow::Result<()> {
    run(cfg, |cfg| run_dev(cfg, shutdown_signal()))
}

fn warn_dev_secret(c: &ClusterSettings) {
    if c.secret == DEV_SECRET {
        tracing::warn!(
            "cluster.secret is the development default; set your own before exposing RPC ports"
        );
    }
}

/// The data directory, created if needed. Callers lock it ([`DirLock`]) before they open
/// anything in it, and hold the lock until they return.
fn data_dir(cfg: &Config) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    Ok(std::fs::canonicalize(&cfg.data_dir)?)
}

/// Opens object storage (the default location under `data_dir`) and checks the shard count.
async fn open_store(cfg: &Config, clock: &Arc<dyn Clock>) -> anyhow::Result<ObjStore> {
    let store = ObjStore::open(&cfg.store_options())?;
    tierkv_engine::meta::ensure_shard_count(&store, cfg.shards, clock.now_millis()).await?;
    Ok(store)
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// `tcp` with the process's `[tls]` (plain HTTP without it; design note 0013). The files are
/// loaded now: a bad one stops the start. A plain listener on a non-loopback address logs a
/// warning.
pub(crate) fn secure(cfg: &Config, tcp: TcpListener) -> anyhow::Result<tierkv_tls::Listener> {
    let addr = tcp.local_addr()?;
    let listener = tierkv_tls::Listener::new(tcp, &cfg.tls)
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    if !listener.is_tls() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "serving plain HTTP on a non-loopback address; set tls.cert_file and tls.key_file"
        );
    }
    Ok(listener)
}

/// A node with its own data directory (WAL, disk cache), its listener bound at `bound`.
async fn open_node(
    cfg: &Config,
    cluster: ClusterSettings,
    dir: &Path,
    bound: SocketAddr,
    store: ObjStore,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(Node, Arc<FoyerBlockCache>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cache = Arc::new(
        FoyerBlockCache::open(&BlockCacheOptions {
            memory_bytes: cfg.cache.memory_bytes,
            disk_dir: (cfg.cache.disk_bytes > 0).then(|| dir.join("cache")),
            disk_bytes: cfg.cache.disk_bytes.max(tierkv_cache::MIN_DISK_BYTES),
        })
        .await?,
    );
    let dyn_cache: Arc<dyn BlockCache> = cache.clone();
    let advertise = match &cluster.advertise {
        Some(a) => a.clone(),
        None => bound.to_string(),
    };
    let node = Node::open(
        NodeOptions {
            cluster,
            advertise,
            shards: cfg.shards,
            engine: cfg.engine.clone(),
            wal: cfg.wal.clone(),
            data_dir: dir.to_owned(),
        },
        NodeComponents {
            store,
            cache: dyn_cache,
            clock,
        },
    )
    .await?;
    Ok((node, cache))
}

/// What a node's `/metrics` serves: the node's figures, the calls of its object-store
/// handle and its block cache's, and the reloads of its listener's TLS (`listener_tls`) and
/// its RPC client's.
fn node_metrics(
    node: &Node,
    store: &ObjStore,
    cache: &FoyerBlockCache,
    listener_tls: Option<Arc<TlsFigures>>,
) -> Registry {
    let mut metrics = Registry::default();
    node.register_metrics(&mut metrics);
    store.register_metrics(&mut metrics);
    cache.register_metrics(&mut metrics);
    crate::tls_metrics::register(&mut metrics, [listener_tls, node.tls_figures()]);
    metrics
}

/// The API over the cluster whose shard map is in `store`, with its value cache (when
/// `gateway.cache.enabled`; closed by the caller after serving); its `/metrics` serves the
/// gateway's figures and its cluster client's, and the reloads of the TLS of its listener
/// (`listener_tls`) and of its cluster client.
async fn gateway_state(
    cfg: &Config,
    store: ObjStore,
    clock: Arc<dyn Clock>,
    listener_tls: Option<Arc<TlsFigures>>,
) -> anyhow::Result<(AppState, Option<ValueStore>)> {
    crate::keys::check_auth_setting(cfg, cfg.listen)?;
    let mut opts = cfg.gateway.cluster.clone();
    opts.secret.clone_from(&cfg.cluster.secret);
    opts.tls.clone_from(&cfg.cluster.tls);
    let backend = Arc::new(ClusterBackend::connect(store.clone(), opts).await?);
    let mut metrics = Registry::default();
    backend.register_metrics(&mut metrics);
    crate::tls_metrics::register(&mut metrics, [listener_tls, backend.tls_figures()]);
    let cache = if cfg.gateway.cache.enabled {
        Some(ValueStore::open(&cfg.gateway.cache, cfg.gateway.max_value_bytes).await?)
    } else {
        None
    };
    let state = AppState::with_cache(
        backend.clone(),
        cfg.gateway.clone(),
        clock,
        metrics,
        cache.clone(),
    );
    // The operator's credential is the cluster secret (note 0010); API keys beside it
    // (note 0012).
    state.enable_admin(&cfg.cluster.secret, backend);
    crate::keys::enable(&state, &store).await?;
    Ok((state, cache))
}

/// Closes the gateway's value cache after the server stopped (its memory tier goes to disk).
async fn close_cache(cache: Option<ValueStore>) {
    if let Some(c) = cache
        && let Err(e) = c.close().await
    {
        tracing::warn!(error = %e, "closing the gateway cache");
    }
}

/// Runs one storage node until `shutdown`.
pub(crate) async fn run_node(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    warn_dev_secret(&cfg.cluster);
    let dir = data_dir(&cfg)?;
    let _lock = DirLock::acquire(&dir)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&cfg, &clock).await?;
    let listener = secure(&cfg, bind(cfg.listen).await?)?;
    let addr = listener.local_addr()?;
    let (node, cache) =
        open_node(&cfg, cfg.cluster.clone(), &dir, addr, store.clone(), clock).await?;
    println!(
        "TierKV {} node {} listening on {}://{addr}",
        env!("CARGO_PKG_VERSION"),
        node.id(),
        listener.scheme()
    );
    println!("  data dir:     {}", dir.display());
    println!("  object store: {}", store.description());
    println!("  shards here:  {}", node.shards().count());
    let stop = StopOptions {
        // `handover_after = 0s` turns handovers off altogether (mixed-version clusters).
        hand_over: !cfg.cluster.handover_after.is_zero(),
        flush_timeout: cfg.shutdown_flush_timeout,
    };
    let metrics = node_metrics(&node, &store, &cache, listener.figures());
    tierkv_node::server::serve(node, listener, metrics, shutdown, stop).await?;
    if let Err(e) = cache.close().await {
        tracing::warn!(error = %e, "closing the block cache");
    }
    tracing::info!("node shut down");
    Ok(())
}

/// Runs one gateway until `shutdown`.
pub(crate) async fn run_gateway(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    warn_dev_secret(&cfg.cluster);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = ObjStore::open(&cfg.store_options())?;
    // The listener's certificate files are checked before waiting for a shard map.
    let listener = secure(&cfg, bind(cfg.listen).await?)?;
    let (state, cache) = gateway_state(&cfg, store.clone(), clock, listener.figures()).await?;
    let addr = listener.local_addr()?;
    let scheme = listener.scheme();
    println!(
        "TierKV {} gateway listening on {scheme}://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  object store: {}", store.description());
    if let Some(dir) = &cfg.gateway.cache.disk_dir {
        println!("  cache dir:    {}", dir.display());
    }
    println!("  dashboard:    {scheme}://{addr}/ui/ (sign in with the cluster secret)");
    println!("  API keys:     `tierkv admin keys create --role ...` on a node host");
    let served = tierkv_gateway::serve(listener, state, shutdown).await;
    close_cache(cache).await;
    served?;
    tracing::info!("gateway shut down");
    Ok(())
}

/// Prints the dashboard's one-time sign-in link (`tierkv dev`, `tierkv serve`). The token
/// rides in the URL fragment, which browsers never send to a server, so it reaches no access
/// log; it works once, for ten minutes (design note 0010). Printed for the operator at the
/// terminal, never logged.
pub(crate) fn print_dashboard_link(state: &AppState, scheme: &str, addr: SocketAddr) {
    let Some(token) = state.admin_login_token() else {
        return;
    };
    let host = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    println!("  dashboard:    {scheme}://{host}/ui/#login={token}");
    println!(
        "                (one-time sign-in link, valid {} minutes; later, sign in with the cluster secret)",
        tierkv_gateway::admin::LOGIN_TOKEN_LIFETIME.as_secs() / 60
    );
}

/// Prints the development admin key (`tierkv dev`, `tierkv serve`): made on the first start
/// and kept in `<data_dir>/admin.key` (mode 0600), the same at later starts. Printed for the
/// operator at the terminal, never logged.
pub(crate) fn print_admin_key(key: &str, data_dir: &Path) {
    println!("admin key: {key}");
    println!(
        "  (also in {}; send it as `Authorization: Bearer <key>`)",
        data_dir.join(crate::keys::DEV_KEY_FILE).display()
    );
}

/// Nodes in `tierkv dev`.
const DEV_NODES: u32 = 3;

/// Runs a gateway and three nodes in this process until `shutdown`.
pub(crate) async fn run_dev(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let dir = data_dir(&cfg)?;
    let _lock = DirLock::acquire(&dir)?;
    let single = dir.join("wal");
    if std::fs::read_dir(&single).is_ok_and(|mut d| d.next().is_some()) {
        tracing::warn!(
            wal = %single.display(),
            "this data directory has the WAL of `tierkv serve` (one node, one replica per \
             shard); the cluster does not replay it: use another --data-dir"
        );
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&cfg, &clock).await?;
    let mut listeners = Vec::new();
    for _ in 0..DEV_NODES {
        listeners.push(bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?);
    }
    let mut members = Vec::new();
    for (i, l) in (1..).zip(&listeners) {
        members.push(format!("{i}={}", l.local_addr()?));
    }
    let stop_nodes = CancellationToken::new();
    let mut nodes = Vec::new();
    let mut caches = Vec::new();
    for (i, listener) in (1..).zip(listeners) {
        let cluster = ClusterSettings {
            node_id: i,
            advertise: None,
            initial_members: members.clone(),
            // In-process nodes on loopback speak plain HTTP (design note 0013).
            tls: tierkv_tls::ClientTlsSettings::default(),
            ..cfg.cluster.clone()
        };
        let node_dir = dir.join(format!("node-{i}"));
        // Each node counts its own object-store calls: its `/metrics` shows only its figures.
        let node_store = store.with_own_metrics();
        let bound = listener.local_addr()?;
        let (node, cache) = open_node(
            &cfg,
            cluster,
            &node_dir,
            bound,
            node_store.clone(),
            Arc::clone(&clock),
        )
        .await?;
        // In-process nodes listen in plain HTTP.
        let metrics = node_metrics(&node, &node_store, &cache, None);
        caches.push(cache);
        let stop = stop_nodes.clone();
        nodes.push(tokio::spawn(tierkv_node::server::serve(
            node,
            listener,
            metrics,
            async move { stop.cancelled().await },
            // All three stop at once: nobody to hand shards to.
            StopOptions {
                hand_over: false,
                flush_timeout: cfg.shutdown_flush_timeout,
            },
        )));
    }
    // The dev gateway's disk tier lives in the data directory unless configured elsewhere.
    let mut gw_cfg = cfg.clone();
    gw_cfg.cluster.tls = tierkv_tls::ClientTlsSettings::default();
    if gw_cfg.gateway.cache.disk_dir.is_none() {
        gw_cfg.gateway.cache.disk_dir = Some(dir.join("gateway-cache"));
    }
    // Before the gateway reads the key set, so that it knows the key from its first request.
    let admin_key = crate::keys::dev_admin_key(&store, &dir, clock.now_millis()).await?;
    let listener = secure(&cfg, bind(cfg.listen).await?)?;
    let (state, cache) = gateway_state(
        &gw_cfg,
        store.clone(),
        Arc::clone(&clock),
        listener.figures(),
    )
    .await?;
    let addr = listener.local_addr()?;
    let scheme = listener.scheme();
    println!(
        "TierKV {} listening on {scheme}://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  nodes:        {}", members.join(", "));
    println!("  data dir:     {}", dir.display());
    println!("  object store: {}", store.description());
    println!(
        "  shards:       {} (replicas: {}, write quorum: {})",
        cfg.shards, cfg.cluster.replication, cfg.cluster.write_quorum
    );
    print_dashboard_link(&state, scheme, addr);
    println!("  effective configuration:\n{}", cfg.to_printable_json()?);
    print_admin_key(&admin_key, &dir);
    let served = tierkv_gateway::serve(listener, state, shutdown).await;
    close_cache(cache).await;
    tracing::info!("gateway drained; stopping the nodes");
    stop_nodes.cancel();
    for n in nodes {
        match n.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "node server"),
            Err(e) => tracing::warn!(error = %e, "node task"),
        }
    }
    for c in caches {
        if let Err(e) = c.close().await {
            tracing::warn!(error = %e, "closing a block cache");
        }
    }
    served?;
    tracing::info!("shut down cleanly");
    Ok(())
}
