//! The driver's object-store work: epoch claims, manifest loads and refreshes, and the
//! completions ([`Io`]) its loop receives for them.

use tierkv_engine::error::Result;
use tierkv_engine::manifest::Manifest;
use tierkv_engine::replica::{Input, Millis};
use tierkv_engine::shard::{LoadedManifest, Prepared};
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{Epoch, SeqNo, ShardId};

use super::Driver;
use super::handle::{ProposeReply, Reply};

/// Result of an object-store call made for the replica.
pub(super) enum Io {
    Claimed(Result<(Epoch, bool)>),
    Manifest(Result<Option<LoadedManifest>>),
    PublishedEpoch(Result<()>),
    Prepared(Result<Prepared>, Reply),
}

impl Driver {
    /// Loads and installs the latest manifest (one load at a time); `answer`: the replica
    /// asked for it and gets `ManifestLoaded` back.
    pub(super) fn load_manifest(&mut self, answer: bool) {
        self.manifest_answer |= answer;
        if self.manifest_inflight {
            return;
        }
        self.manifest_inflight = true;
        let shard = self.shard.clone();
        self.io.push(Box::pin(
            async move { Io::Manifest(shard.load_latest().await) },
        ));
    }

    pub(super) fn maybe_refresh_manifest(&mut self) {
        let now = self.clock.now();
        if self.leading || now < self.next_refresh {
            return;
        }
        let every = u64::try_from(self.settings.manifest_refresh.as_millis()).unwrap_or(u64::MAX);
        self.next_refresh = now.plus(Millis(every));
        self.load_manifest(false);
    }

    pub(super) fn on_io(&mut self, done: Io) {
        match done {
            Io::Claimed(Ok((epoch, won))) => self.step(Input::EpochClaimed { epoch, won }),
            Io::Claimed(Err(e)) => {
                // The candidate times out and tries again.
                tracing::warn!(shard = %self.id, error = %e, "epoch claim failed");
            }
            Io::Manifest(Ok(loaded)) => {
                self.manifest_inflight = false;
                let answer = std::mem::take(&mut self.manifest_answer);
                let (flushed_seq, flushed_epoch, membership) = match loaded {
                    Some(l) => {
                        let at = (
                            l.manifest.flushed_seq,
                            l.manifest.flushed_epoch,
                            l.manifest.membership.clone(),
                        );
                        self.shard.install(l);
                        at
                    }
                    None => (SeqNo(0), Epoch(0), None),
                };
                self.apply(self.replica.commit_seq());
                if answer || flushed_seq > self.replica.log().base() {
                    // The configuration in force at the flushed prefix (manifest format 3;
                    // none: no configuration record was ever flushed, note 0009 §1).
                    self.step(Input::ManifestLoaded {
                        flushed_seq,
                        flushed_epoch,
                        membership,
                    });
                }
            }
            Io::Manifest(Err(e)) => {
                self.manifest_inflight = false;
                tracing::warn!(shard = %self.id, error = %e, "manifest load failed");
            }
            Io::PublishedEpoch(r) => {
                if let Err(e) = r {
                    tracing::warn!(shard = %self.id, error = %e, "publishing the leader's epoch failed");
                }
            }
            Io::Prepared(Ok(prepared), reply) => {
                self.on_propose(prepared, reply, true, tracing::Span::none());
            }
            Io::Prepared(Err(e), reply) => {
                let _ = reply.send(ProposeReply::Failed(e));
            }
        }
    }
}

/// The latest manifest of `shard` (an empty one if it never published).
pub(crate) async fn latest_manifest(store: &ObjStore, shard: ShardId) -> Result<Manifest> {
    let m = tierkv_engine::manifest::ManifestStore::new(store.clone(), shard);
    Ok(m.load_latest().await?.unwrap_or_default())
}
