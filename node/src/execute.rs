//! [`Node::execute`]: one client operation of the node RPC (a gateway's batch item, or
//! `tierkv serve` in process) carried out on the shard it names, with the shard's load
//! counted for the admin API. The answers of the reads that compare a cached version are
//! in `reads.rs`; `Status` and `Describe` in `facts.rs`.

use tierkv_engine::types::ShardId;
use tierkv_wire::proto::{RemoteError, Request, Response};

use crate::driver::ShardHandle;
use crate::node::Node;

impl Node {
    /// Carries out one client operation on the shard it names and answers it: what the RPC
    /// server does with each operation of a gateway's batch, and what `tierkv serve` does
    /// in process. A shard this node does not host is `NotHosted`; engine errors travel as
    /// [`RemoteError`]s. `GetIfChanged` is a strong `Get` that answers `Unchanged` instead of
    /// the entry when its version is the caller's.
    pub async fn execute(&self, req: Request) -> Response {
        let err = |e: tierkv_engine::Error| Response::Error(RemoteError::from_engine(&e));
        let not_hosted = |shard| {
            Response::Error(RemoteError::NotHosted {
                shard,
                map_version: self.map().version(),
            })
        };
        match req {
            Request::Get {
                shard,
                key,
                consistency,
            } => match self.counted(shard, false) {
                None => not_hosted(shard),
                Some(h) => h
                    .get(&key, consistency)
                    .await
                    .map_or_else(err, Response::Got),
            },
            Request::Write { shard, batch } => match self.counted(shard, true) {
                None => not_hosted(shard),
                Some(h) => h
                    .write(batch)
                    .await
                    .map_or_else(err, |(seq, prior)| Response::Written { seq, prior }),
            },
            Request::Scan {
                shard,
                prefix,
                start_after,
                limit,
                consistency,
            } => match self.counted(shard, false) {
                None => not_hosted(shard),
                Some(h) => h
                    .scan(
                        &prefix,
                        start_after.as_deref(),
                        usize::try_from(limit).unwrap_or(usize::MAX),
                        consistency,
                    )
                    .await
                    .map_or_else(err, Response::Scanned),
            },
            Request::Status => Response::Status(self.status(false)),
            Request::StatusWithConfigurations => Response::Status(self.status(true)),
            Request::GetIfChanged { shard, key, known } => match self.counted(shard, false) {
                None => not_hosted(shard),
                Some(h) => crate::reads::get_if_changed(&h, &key, known).await,
            },
            Request::GetLeased { shard, key, known } => match self.counted(shard, false) {
                None => not_hosted(shard),
                Some(h) => crate::reads::get_leased(&h, &key, known).await,
            },
            Request::Describe { max_events } => Response::Described(Box::new(
                self.describe(usize::try_from(max_events).unwrap_or(usize::MAX)),
            )),
        }
    }

    /// The hosted shard `shard`, counting the operation on it for the admin API's load.
    fn counted(&self, shard: ShardId, write: bool) -> Option<ShardHandle> {
        if write {
            self.inner.ops.write(shard);
        } else {
            self.inner.ops.read(shard);
        }
        self.shard(shard)
    }
}
