//! The `tierkv_tls_*` families (design note 0013, "Observability"): what the reloads of a
//! process's TLS configurations did and when their certificates expire. The `tls` crate
//! keeps them as plain atomics ([`TlsFigures`]); this is the one place that names and
//! exports them, into the registry a process serves on `/metrics`.
//!
//! - `tierkv_tls_reloads_total{what, result}`: reloads by configuration (`listener`,
//!   `node_client`) and `result` (`ok`: new files in force; `error`: the previous ones stay).
//! - `tierkv_tls_certificate_expiry_seconds{what}`: the not-after time (Unix seconds) of the
//!   certificate in force, for configurations with one of their own (a listener's; a node
//!   client's when it presents a client certificate).
//!
//! A process without TLS exports neither family.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use tierkv_engine::metrics::Registry;
use tierkv_tls::TlsFigures;

/// Registered as a counter: the exporter appends `_total`.
const RELOADS: &str = "tierkv_tls_reloads";
const EXPIRY: &str = "tierkv_tls_certificate_expiry_seconds";

/// Registers the figures of a process's TLS configurations (the `None`s are plain ones) into
/// `registry`; nothing when there are none.
pub(crate) fn register(
    registry: &mut Registry,
    figures: impl IntoIterator<Item = Option<Arc<TlsFigures>>>,
) {
    let figures: Vec<Arc<TlsFigures>> = figures.into_iter().flatten().collect();
    if figures.is_empty() {
        return;
    }
    registry.register(
        RELOADS,
        "TLS reloads after certificate files changed, by configuration and result (error: the previous certificates stay in force)",
        Reloads(figures.clone()),
    );
    registry.register(
        EXPIRY,
        "Not-after time (Unix seconds) of the certificate in force, by configuration",
        Expiry(figures),
    );
}

#[derive(Debug)]
struct Reloads(Vec<Arc<TlsFigures>>);

impl EncodeMetric for Reloads {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            for (result, n) in [("ok", f.reloads_ok()), ("error", f.reloads_failed())] {
                let labels = [("what", f.what()), ("result", result)];
                encoder
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

#[derive(Debug)]
struct Expiry(Vec<Arc<TlsFigures>>);

impl EncodeMetric for Expiry {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            if let Some(t) = f.not_after() {
                let labels = [("what", f.what())];
                encoder.encode_family(&labels)?.encode_gauge(&t)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}
