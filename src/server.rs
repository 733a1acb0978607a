//! Running a server: open object storage, check the shard count recorded there, open the
//! block cache and the node's storage (WAL replay, every shard), serve the HTTP API until
//! Ctrl-C or SIGTERM, then drain in-flight requests, flush memtables and close.

use std::sync::Arc;

use tierkv_cache::FoyerBlockCache;
use tierkv_engine::block_cache::BlockCache;
use tierkv_engine::clock::{Clock, SystemClock};
use tierkv_engine::db::{Db, DbComponents};
use tierkv_engine::dirlock::DirLock;
use tierkv_engine::metrics::Registry;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::ShardId;
use tierkv_gateway::{AppState, LocalBackend};

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
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = ObjStore::open(&cfg.store_options())?;
    tierkv_engine::meta::ensure_shard_count(&store, cfg.shards, clock.now_millis()).await?;
    let cache = Arc::new(FoyerBlockCache::open(&cfg.cache_options()).await?);
    let dyn_cache: Arc<dyn BlockCache> = cache.clone();
    let db = Db::open(
        data_dir.join("wal"),
        &cfg.wal,
        cfg.engine.clone(),
        DbComponents {
            store: store.clone(),
            cache: dyn_cache,
            clock: Arc::clone(&clock),
        },
        (0..cfg.shards).map(ShardId),
    )
    .await?;
    let db = Arc::new(db);
    // One exporter for the process: the gateway's `/metrics` shows the storage's figures too.
    let mut metrics = Registry::default();
    db.register_metrics(&mut metrics);
    store.register_metrics(&mut metrics);
    cache.register_metrics(&mut metrics);
    let backend = LocalBackend::new(Arc::clone(&db), store.clone(), cfg.shards);
    let state = AppState::with_registry(Arc::new(backend), cfg.gateway.clone(), clock, metrics);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "TierKV {} listening on http://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  data dir:     {}", data_dir.display());
    println!("  object store: {}", store.description());
    println!("  shards:       {}", cfg.shards);
    println!(
        "  wal replay:   {}",
        db.torn_tail().map_or("clean".to_owned(), |t| format!(
            "torn tail truncated at {}:{}",
            t.file.display(),
            t.offset
        ))
    );
    println!("  effective configuration:\n{}", cfg.to_printable_json()?);
    tracing::info!(%addr, "serving");
    tierkv_gateway::serve(listener, state, shutdown).await?;
    tracing::info!("draining done; flushing memtables");
    let closed = db.close(cfg.shutdown_flush_timeout).await;
    if let Err(e) = cache.close().await {
        tracing::warn!(error = %e, "closing the block cache");
    }
    closed?;
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
