//! `tierkv serve`: one process, no network hop. Open object storage, check the shard count
//! recorded there, open the block cache, bind the listener, open a node whose shards have one
//! replica each (`tierkv::local`: WAL replay, one replica driver per shard, each taking over
//! at once), serve the HTTP API over it in process until Ctrl-C or SIGTERM, then drain
//! in-flight requests, flush memtables and close.

use std::sync::Arc;

use tierkv::local::{self, InProcess};
use tierkv_cache::FoyerBlockCache;
use tierkv_engine::block_cache::BlockCache;
use tierkv_engine::clock::{Clock, SystemClock};
use tierkv_engine::dirlock::DirLock;
use tierkv_engine::metrics::Registry;
use tierkv_engine::store::ObjStore;
use tierkv_gateway::AppState;
use tierkv_node::node::NodeComponents;

use crate::config::Config;

/// Runs the server on a new runtime until a shutdown signal.
pub(crate) fn main(cfg: Config) -> anyhow::Result<()> {
    let _telemetry = crate::telemetry::init(&cfg.telemetry)?;
    let rt = cfg.runtime()?;
    let _in_runtime = rt.enter();
    rt.block_on(run(cfg, shutdown_signal()))
}

/// Runs the server until `shutdown` resolves.
pub(crate) async fn run(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| anyhow::anyhow!("creating data dir {}: {e}", cfg.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&cfg.data_dir)?;
    // Held until this function returns: nothing else may open this directory meanwhile.
    let _lock = DirLock::acquire(&data_dir)?;
    crate::keys::check_auth_setting(&cfg, cfg.listen)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = ObjStore::open(&cfg.store_options())?;
    tierkv_engine::meta::ensure_shard_count(&store, cfg.shards, clock.now_millis()).await?;
    let cache = Arc::new(FoyerBlockCache::open(&cfg.cache_options()).await?);
    let dyn_cache: Arc<dyn BlockCache> = cache.clone();
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding {}: {e}", cfg.listen))?;
    let listener = crate::cluster::secure(&cfg, listener)?;
    let addr = listener.local_addr()?;
    let scheme = listener.scheme();
    let node = local::open(
        local::Options {
            data_dir: data_dir.clone(),
            addr: addr.to_string(),
            shards: cfg.shards,
            cluster: cfg.cluster.clone(),
            engine: cfg.engine.clone(),
            wal: cfg.wal.clone(),
        },
        NodeComponents {
            store: store.clone(),
            cache: Arc::clone(&dyn_cache),
            clock: Arc::clone(&clock),
        },
    )
    .await?;
    // One exporter for the process: the gateway's `/metrics` shows the node's figures too.
    let mut metrics = Registry::default();
    node.register_metrics(&mut metrics);
    store.register_metrics(&mut metrics);
    cache.register_metrics(&mut metrics);
    crate::tls_metrics::register(&mut metrics, [listener.figures(), node.tls_figures()]);
    let backend = Arc::new(InProcess::new(
        node.clone(),
        store.clone(),
        cfg.gateway.cluster.leader_wait,
    ));
    let state = AppState::with_registry(
        backend.clone(),
        cfg.gateway.clone(),
        Arc::clone(&clock),
        metrics,
    );
    // The operator's credential is the cluster secret here too (`cluster.secret`); API keys
    // beside it (note 0012).
    state.enable_admin(&cfg.cluster.secret, backend);
    let admin_key = crate::keys::dev_admin_key(&store, &data_dir, clock.now_millis()).await?;
    crate::keys::enable(&state, &store).await?;
    println!(
        "TierKV {} listening on {scheme}://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  data dir:     {}", data_dir.display());
    println!("  object store: {}", store.description());
    println!("  shards:       {}", cfg.shards);
    println!(
        "  wal replay:   {}",
        node.torn_tail().map_or("clean".to_owned(), |t| format!(
            "torn tail truncated at {}:{}",
            t.file.display(),
            t.offset
        ))
    );
    crate::cluster::print_dashboard_link(&state, scheme, addr);
    println!("  effective configuration:\n{}", cfg.to_printable_json()?);
    crate::cluster::print_admin_key(&admin_key, &data_dir);
    tracing::info!(%addr, "serving");
    let served = tierkv_gateway::serve(listener, state, shutdown).await;
    tracing::info!("draining done; flushing memtables");
    node.shutdown(cfg.shutdown_flush_timeout).await;
    if let Err(e) = cache.close().await {
        tracing::warn!(error = %e, "closing the block cache");
    }
    served?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT). Both are registered when this is called, not when
/// the future is first polled: a signal that arrives while the server is still starting (it
/// has announced its address, but its graceful shutdown has not begun waiting) then still
/// starts a graceful shutdown instead of killing the process with the default action. Call
/// it inside the runtime.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for {name}");
            None
        }
    };
    let term = listen(SignalKind::terminate(), "SIGTERM");
    let int = listen(SignalKind::interrupt(), "Ctrl-C");
    async move {
        tokio::select! {
            () = next_signal(term) => {}
            () = next_signal(int) => {}
        }
        tracing::info!("shutdown signal received");
    }
}

/// The next delivery of `s`; never, without a listener.
async fn next_signal(s: Option<tokio::signal::unix::Signal>) {
    match s {
        Some(mut s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
