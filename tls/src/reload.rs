//! Reloading TLS material when its files change (design note 0013, "Reload without restart").
//!
//! A watch task per configuration checks the files' stamps every `interval`. When they
//! differ from the last ones it saw, it loads a complete new value and swaps it in; a value
//! that fails to load leaves the current one in force and is logged (once per change of the
//! files). Each outcome is counted in the configuration's [`TlsFigures`], with the expiry of
//! the certificate in force. The task stops when the value it feeds is dropped.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::figures::TlsFigures;
use crate::load::stamps;
use crate::settings::TlsError;

/// Starts the watch of `files` feeding `target` with `load`'s results (a value and the
/// not-after time of its own certificate) and counting them in `figures`. `section` names
/// the configuration section in logs. Without a Tokio runtime nothing is watched (logged).
pub(crate) fn watch<T, F>(
    section: &'static str,
    figures: &Arc<TlsFigures>,
    files: Vec<PathBuf>,
    interval: Duration,
    target: &Arc<ArcSwap<T>>,
    load: F,
) where
    T: Send + Sync + 'static,
    F: Fn() -> Result<(T, Option<i64>), TlsError> + Send + 'static,
{
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            what = section,
            "no async runtime: certificate files are not watched"
        );
        return;
    };
    let target: Weak<ArcSwap<T>> = Arc::downgrade(target);
    let figures = Arc::clone(figures);
    let mut seen = stamps(&files);
    rt.spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(target) = target.upgrade() else {
                return;
            };
            let now = stamps(&files);
            if now == seen {
                continue;
            }
            seen = now;
            match load() {
                Ok((v, not_after)) => {
                    target.store(Arc::new(v));
                    figures.reloaded(not_after);
                    tracing::info!(what = section, "TLS certificates reloaded");
                }
                Err(e) => {
                    figures.failed();
                    tracing::error!(
                        what = section,
                        error = %e,
                        "reloading TLS certificates failed; the previous ones stay in force"
                    );
                }
            }
        }
    });
}
