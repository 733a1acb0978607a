//! Logs and traces: a `tracing` subscriber writing text or JSON logs to stderr, plus an
//! OpenTelemetry layer exporting spans over OTLP/HTTP when an endpoint is configured (off by
//! default). W3C `traceparent` propagation is installed globally so spans join the caller's
//! trace.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log and trace settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TelemetryOptions {
    /// Log filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    /// Default: `info,foyer=warn,foyer_storage=warn,foyer_memory=warn`.
    pub(crate) log_level: String,
    /// `text` or `json`. Default: `text`.
    pub(crate) log_format: LogFormat,
    /// OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`. Default: none
    /// (no export).
    pub(crate) otlp_endpoint: Option<String>,
    /// `service.name` of exported spans. Default: `tierkv`.
    pub(crate) service_name: String,
}

impl Default for TelemetryOptions {
    fn default() -> Self {
        Self {
            log_level: "info,foyer=warn,foyer_storage=warn,foyer_memory=warn".to_owned(),
            log_format: LogFormat::Text,
            otlp_endpoint: None,
            service_name: "tierkv".to_owned(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Keeps the trace exporter alive; flushes and stops it on drop.
pub(crate) struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("trace exporter shutdown: {e}");
        }
    }
}

/// Installs the global subscriber.
pub(crate) fn init(opts: &TelemetryOptions) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&opts.log_level))
        .map_err(|e| anyhow::anyhow!("invalid telemetry.log_level {:?}: {e}", opts.log_level))?;
    let (otel, provider) = match &opts.otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| anyhow::anyhow!("OTLP exporter for {endpoint}: {e}"))?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    Resource::builder()
                        .with_service_name(opts.service_name.clone())
                        .build(),
                )
                .build();
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            let tracer = provider.tracer("tierkv");
            // Traces get their own filter: quieter logs must not silence request spans.
            let spans = tracing_subscriber::filter::Targets::new()
                .with_default(tracing::Level::WARN)
                .with_target("tierkv", tracing::Level::INFO)
                .with_target("tierkv_gateway", tracing::Level::INFO)
                .with_target("tierkv_engine", tracing::Level::INFO)
                .with_target("tierkv_node", tracing::Level::INFO);
            (
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(spans),
                ),
                Some(provider),
            )
        }
        None => (None, None),
    };
    let registry = tracing_subscriber::registry().with(otel);
    let result = match opts.log_format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    Ok(TelemetryGuard { provider })
}
