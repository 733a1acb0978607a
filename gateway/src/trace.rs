//! Trace context across hops (design note 0011): the W3C `traceparent` of an incoming
//! request becomes the parent of the gateway's request span, and each node RPC gets a
//! `node_rpc` span whose context travels with the operation (`Traced`, wire revision 4).
//!
//! Everything here is a no-op unless an OpenTelemetry layer is installed (the process was
//! given `telemetry.otlp_endpoint`): spans then have no valid context, and operations go
//! unwrapped.

use axum::http::HeaderMap;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use tierkv_wire::proto::TraceContext;

/// Reads propagation headers out of an HTTP request.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}

/// Makes `span` a child of the context the request's headers carry (`traceparent`), if any.
pub(crate) fn adopt_remote_parent(span: &tracing::Span, headers: &HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    if cx.span().span_context().is_valid() {
        // Fails only without an OpenTelemetry layer: nothing to join then.
        let _ = span.set_parent(cx);
    }
}

/// The W3C context of `span`, if it is recorded by OpenTelemetry.
pub(crate) fn context_of(span: &tracing::Span) -> Option<TraceContext> {
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| TraceContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
    })
}

/// Whether the current span is recorded by OpenTelemetry (cheap when it is not).
pub(crate) fn current_is_traced() -> bool {
    context_of(&tracing::Span::current()).is_some()
}
