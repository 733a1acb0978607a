//! Starting a shard's driver task: its handle, the hooks its storage calls (the TTL
//! sweeper's proposals, a follower's flush requests), and the task.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use tierkv_engine::error::{Error, Result};
use tierkv_engine::types::{SeqNo, WriteBatch};
use tokio::sync::mpsc;

use super::handle::propose_raw;
use super::throttle::MoveThrottle;
use super::traces::WriteTraces;
use super::{Cmd, Driver, DriverParts, ShardHandle, ShardStatus};

/// Starts the driver task of a shard; returns its handle and the task.
pub(crate) fn spawn(parts: DriverParts) -> (ShardHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(parts.settings.inbox);
    let move_bytes_per_sec = parts.settings.move_bytes_per_sec;
    let id = parts.shard.id();
    let status = Arc::new(ShardStatus::default());
    status.leases_configured.store(
        parts.replica.read_leases_configured(),
        std::sync::atomic::Ordering::Relaxed,
    );
    status.publish(&parts.replica, false);
    status.publish_configurations(&parts.replica);
    let handle = ShardHandle {
        id,
        shard: parts.shard.clone(),
        tx,
        status: Arc::clone(&status),
        clock: parts.clock,
        stop: parts.cancel.clone(),
    };
    let weak = handle.tx.downgrade();
    parts.shard.set_proposer(Arc::new(
        move |batch: WriteBatch| -> BoxFuture<'static, Result<SeqNo>> {
            let weak = weak.clone();
            Box::pin(async move {
                let tx = weak.upgrade().ok_or(Error::Closed)?;
                propose_raw(id, &tx, batch).await
            })
        },
    ));
    let weak = handle.tx.downgrade();
    // A follower's storage asks its leader to flush through the replica (note 0007).
    parts
        .shard
        .set_flush_requester(Arc::new(move |upto: SeqNo, hard: bool| -> bool {
            weak.upgrade()
                .is_some_and(|tx| tx.try_send(Cmd::RequestFlush { upto, hard }).is_ok())
        }));
    let published = parts.shard.published();
    let now = parts.clock.now();
    let peer_breaks = parts
        .replica
        .peers()
        .map(|p| (p, parts.transport.stream_breaks(p)))
        .collect();
    let mut d = Driver {
        id,
        replica: parts.replica,
        shard: parts.shard,
        wal: parts.wal,
        store: parts.store,
        transport: parts.transport,
        clock: parts.clock,
        settings: parts.settings,
        cancel: parts.cancel,
        events: parts.events,
        rx,
        status,
        persists: FuturesOrdered::new(),
        io: FuturesUnordered::new(),
        waiters: BTreeMap::new(),
        overlay: HashMap::new(),
        held_failures: Vec::new(),
        published,
        poisoned: false,
        leading: false,
        next_refresh: now,
        manifest_inflight: false,
        manifest_answer: false,
        peer_breaks,
        known_leader: None,
        traces: WriteTraces::default(),
        throttle: MoveThrottle::new(move_bytes_per_sec),
        hold_until: None,
    };
    let task = tokio::spawn(async move { d.run().await });
    (handle, task)
}
