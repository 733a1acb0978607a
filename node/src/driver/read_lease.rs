//! The driver's part of read leases (design note 0014): grants asked for by the read path,
//! and a wake-up at the end of a commit hold (rather than up to a tick later).

use tierkv_engine::replica::{ReadLease, ReadLeaseRefusal};
use tokio::sync::oneshot;

use super::Driver;

/// Resolves at `at` (never when `None`; the loop only polls it when set).
pub(super) async fn hold_wake(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// Grants a read lease (or says why not) before the caller reads: only a replica whose
    /// view holds every committed record may, and the grant is recorded before the answer.
    pub(super) fn grant_read_lease(
        &mut self,
        reply: oneshot::Sender<Result<ReadLease, ReadLeaseRefusal>>,
    ) {
        let r = if self.poisoned || !self.caught_up() {
            Err(ReadLeaseRefusal::NotLeader)
        } else {
            self.replica.grant_read_lease(self.clock.now())
        };
        self.status.publish_read_leases(&self.replica);
        let _ = reply.send(r);
    }

    /// The commit hold ended: the replica's tick commits what waited for it.
    pub(super) fn on_hold_end(&mut self) {
        self.hold_until = None;
        self.step(tierkv_engine::replica::Input::Tick);
    }

    /// Arms the wake-up for the end of the replica's commit hold, if records wait for it.
    pub(super) fn arm_hold(&mut self) {
        self.hold_until = self
            .replica
            .commit_hold_until(self.clock.now())
            .map(|t| self.clock.instant_of(t));
    }
}
