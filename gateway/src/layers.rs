//! The edge: every tower layer around the routes, in order from the outside in:
//!
//! 1. request id (`x-request-id`: kept if sent, generated otherwise, echoed on the response);
//! 2. a `tracing` span per request (`method`, `route`, `request_id`, `status`), child of the
//!    caller's W3C `traceparent` when traces are exported (design note 0011);
//! 3. HTTP metrics (count, latency histogram, in-flight gauge);
//! 4. error finishing: every error answer becomes problem+json with `instance`, retryable
//!    ones get `Retry-After`, and the full error is logged in the span (5xx error, 4xx info,
//!    401/403 warn);
//! 5. load shedding over a global concurrency limit (`503 overloaded`);
//! 6. request timeout (`504 timeout`);
//! 7. catch-panic (`500 internal`);
//! 8. body limit (`413 body_too_large`, enforced by the body extractors).

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::{ApiError, ProblemInfo};
use crate::problem::PROBLEM_JSON;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in every edge layer.
pub(crate) fn apply(router: Router, state: &AppState) -> Router {
    let opts = state.options();
    let edge = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, SequentialIds::new()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_response(|res: &Response<Body>, latency: Duration, span: &Span| {
                    span.record("status", res.status().as_u16());
                    tracing::debug!(latency_ms = latency.as_millis() as u64, "answered");
                }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), finish_errors))
        .layer(HandleErrorLayer::new(edge_error))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(
            opts.concurrency_limit.max(1),
        ))
        .timeout(opts.request_timeout)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(opts.max_body_bytes));
    router.layer(edge)
}

/// Request ids for requests that come without one: a random prefix per process, then a
/// counter (`"5f0c9d2e41b7a803-000000000000002a"`). Unique within the process and, with high
/// probability, across gateways, at the cost of an atomic increment (a random UUID per
/// request cost a `getrandom` system call each).
#[derive(Clone)]
struct SequentialIds {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl SequentialIds {
    fn new() -> Self {
        Self {
            prefix: rand::random(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for SequentialIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Written in place: no formatting machinery, one allocation (the header's).
        let mut id = [b'-'; 33];
        let (prefix, rest) = id.split_at_mut(16);
        hex(prefix, self.prefix);
        hex(rest.get_mut(1..).unwrap_or_default(), n);
        HeaderValue::from_bytes(&id).ok().map(RequestId::new)
    }
}

/// `v` as lower-case hex digits filling `out` (16 for a whole `u64`).
fn hex(out: &mut [u8], v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut v = v;
    for b in out.iter_mut().rev() {
        let d = (v & 0xf) as usize;
        *b = DIGITS[d];
        v >>= 4;
    }
}

/// The `route` label of a request: its matched path pattern with `{*key}` shown as `{key}`,
/// formatted only when a span records it (request spans are `info`: disabled at the default
/// `warn`, where building the label per request cost an allocation for nothing).
struct RouteLabel<'a>(Option<&'a MatchedPath>);

impl std::fmt::Display for RouteLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("unmatched"),
            Some(m) => match m.as_str().split_once("{*key}") {
                Some((a, b)) => write!(f, "{a}{{key}}{b}"),
                None => f.write_str(m.as_str()),
            },
        }
    }
}

fn make_span(req: &Request) -> Span {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let route = RouteLabel(req.extensions().get::<MatchedPath>());
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        request_id = %request_id,
        status = tracing::field::Empty,
        otel.name = %format_args!("{} {route}", req.method()),
        otel.kind = "server",
    );
    crate::trace::adopt_remote_parent(&span, req.headers());
    span
}

async fn record_metrics(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> impl IntoResponse {
    // Both cheap to clone (an `Arc<str>` and, for standard methods, a tag).
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let metrics = &state.inner.metrics;
    let _in_flight = metrics.start();
    let start = Instant::now();
    let res = next.run(req).await;
    metrics.record(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        &method,
        res.status().as_u16(),
        start.elapsed(),
    );
    res
}

/// Finishes error answers: problem+json everywhere, `instance`, `Retry-After`, logging.
async fn finish_errors(State(state): State<AppState>, req: Request, next: Next) -> Response<Body> {
    // A clone of the URI shares its buffer; the path is copied only for an error answer.
    let uri = req.uri().clone();
    let res = next.run(req).await;
    let status = res.status();
    if !status.is_client_error() && !status.is_server_error() {
        return res;
    }
    let info = res.extensions().get::<ProblemInfo>().cloned();
    let (mut res, info) = match info {
        Some(info) => (res, info),
        None => {
            // An answer produced outside our handlers (router 404/405, a layer): rebuild it.
            let allow = res.headers().get(header::ALLOW).cloned();
            let err = error_for_status(status);
            let mut fresh = err.into_response();
            if let Some(a) = allow {
                fresh.headers_mut().insert(header::ALLOW, a);
            }
            let info = fresh.extensions().get::<ProblemInfo>().cloned();
            match info {
                Some(i) => (fresh, i),
                None => return fresh,
            }
        }
    };
    let mut problem = (*info.problem).clone();
    problem.instance = Some(uri.path().to_owned());
    if let Ok(body) = serde_json::to_vec(&problem) {
        *res.body_mut() = Body::from(body);
        res.headers_mut().remove(header::CONTENT_LENGTH);
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    }
    if res.headers().contains_key(header::RETRY_AFTER) {
        res.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(
                info.retry_after_secs
                    .unwrap_or(state.options().retry_after_secs),
            ),
        );
    }
    let code = problem.code.as_str();
    let msg = &*info.log_message;
    // `event!` needs a constant level: one arm per level.
    match problem.code.log_level() {
        tracing::Level::ERROR => tracing::error!(code, error = msg, "request failed"),
        tracing::Level::WARN => tracing::warn!(code, error = msg, "request not served"),
        tracing::Level::INFO => tracing::info!(code, error = msg, "request rejected"),
        _ => tracing::debug!(code, error = msg, "request answered with an error"),
    }
    res
}

/// The error for an answer that carries only a status.
fn error_for_status(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized {
            detail: "credentials required",
        },
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge { max: 0 },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType {
            expected: "application/json",
        },
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ApiError::Timeout,
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Overloaded,
        StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited {
            retry_after_secs: state_retry_after(),
            writes: false,
        },
        s if s.is_client_error() => ApiError::invalid(format!("rejected with status {s}")),
        s => ApiError::internal(format!("answered {s} without an error body")),
    }
}

/// `Retry-After` of a 429 produced outside our handlers (none are; the layer's setting
/// replaces it anyway).
fn state_retry_after() -> u64 {
    1
}

/// Errors of the tower layers (timeout, load shedding).
async fn edge_error(err: tower::BoxError) -> Response<Body> {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout.into_response()
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Overloaded.into_response()
    } else {
        ApiError::internal(format!("edge layer failed: {err}")).into_response()
    }
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let what = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned());
    ApiError::internal(format!("handler panicked: {what}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Request ids read as `format!("{prefix:016x}-{n:016x}")`; route labels show `{key}`.
    #[test]
    fn request_ids_and_route_labels() {
        let mut ids = SequentialIds {
            prefix: 0x5f0c_9d2e_41b7_a803,
            next: Arc::new(AtomicU64::new(0x2a)),
        };
        let req = axum::http::Request::new(());
        let id = ids.make_request_id(&req).expect("an id");
        assert_eq!(
            id.header_value().to_str().ok(),
            Some("5f0c9d2e41b7a803-000000000000002a")
        );
        let id = ids.make_request_id(&req).expect("an id");
        assert_eq!(
            id.header_value().to_str().ok(),
            Some("5f0c9d2e41b7a803-000000000000002b")
        );
        assert_eq!(RouteLabel(None).to_string(), "unmatched");
    }
}
