//! A throwaway gateway over an in-memory object store and a temporary WAL, for poking the
//! API by hand or fuzzing it (e.g. with schemathesis):
//!
//! `cargo run -p tierkv-gateway --example memory_server -- 127.0.0.1:8080`

use std::sync::Arc;

use tierkv_engine::block_cache::{BlockCache, MemBlockCache};
use tierkv_engine::clock::SystemClock;
use tierkv_engine::db::{Db, DbComponents, WalSettings};
use tierkv_engine::options::EngineOptions;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::ShardId;
use tierkv_gateway::{AppState, GatewayOptions, LocalBackend};

const SHARDS: u32 = 4;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let dir = tempfile::tempdir()?;
    let store = ObjStore::in_memory();
    let cache: Arc<dyn BlockCache> = Arc::new(MemBlockCache::new(64 << 20));
    let db = Arc::new(
        Db::open(
            dir.path().join("wal"),
            &WalSettings::default(),
            EngineOptions::default(),
            DbComponents {
                store: store.clone(),
                cache,
                clock: Arc::new(SystemClock),
            },
            (0..SHARDS).map(ShardId),
        )
        .await?,
    );
    let backend = Arc::new(LocalBackend::new(Arc::clone(&db), store, SHARDS));
    let state = AppState::new(backend, GatewayOptions::default(), Arc::new(SystemClock));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    tierkv_gateway::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    db.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
