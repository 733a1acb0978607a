//! The span of a client operation that carries a trace context (design note 0011).

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use tierkv_wire::proto::{Request, TraceContext};

/// The kind of an operation, as a span field.
fn kind_name(req: &Request) -> &'static str {
    match req {
        Request::Get { .. } => "get",
        Request::Write { .. } => "write",
        Request::Scan { .. } => "scan",
        Request::Status => "status",
        Request::StatusWithConfigurations => "status_with_configurations",
        Request::GetIfChanged { .. } => "get_if_changed",
        Request::GetLeased { .. } => "get_leased",
        Request::Describe { .. } => "describe",
    }
}

fn shard_of(req: &Request) -> Option<u32> {
    match req {
        Request::Get { shard, .. }
        | Request::Write { shard, .. }
        | Request::Scan { shard, .. }
        | Request::GetIfChanged { shard, .. }
        | Request::GetLeased { shard, .. } => Some(shard.0),
        Request::Status | Request::StatusWithConfigurations | Request::Describe { .. } => None,
    }
}

/// A `node.op` span for `req`, child of the caller's span in `trace`; `Span::none()` for an
/// operation without a context (untraced operations cost nothing).
pub(crate) fn op_span(trace: Option<&TraceContext>, req: &Request) -> tracing::Span {
    let Some(trace) = trace else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!(
        "node.op",
        kind = kind_name(req),
        shard = shard_of(req),
        otel.kind = "server",
    );
    let parent = SpanContext::new(
        TraceId::from_bytes(trace.trace_id),
        SpanId::from_bytes(trace.span_id),
        TraceFlags::new(trace.flags),
        true,
        TraceState::default(),
    );
    // Fails only when no OpenTelemetry layer is installed: the span is then a log span.
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    span
}
