//! Traces across hops (design note 0011): three node processes and a gateway export their
//! spans over OTLP/HTTP to a receiver in this test, which decodes them. One PUT carrying a
//! W3C `traceparent` must yield one trace: the gateway's request span (child of the
//! client's), its `node_rpc` span, and on the shard's leader `node.op`, `wal.append` and one
//! `replicate` span per follower, linked parent to child.

mod cluster;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use cluster::{Cluster, Opts};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;

/// One exported span, flattened: the process it came from and what the test checks.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    name: String,
    attrs: HashMap<String, String>,
}

type Spans = Arc<Mutex<Vec<Got>>>;

/// The name of the gateway's request span (`otel.name`: method and route).
const REQUEST: &str = "PUT /v1/kv/{key}";

fn text(v: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

async fn export(State(spans): State<Spans>, body: Bytes) -> axum::http::StatusCode {
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    let mut got = spans.lock().expect("spans lock");
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                got.push(Got {
                    service: service.clone(),
                    trace_id: s.trace_id,
                    span_id: s.span_id,
                    parent: s.parent_span_id,
                    name: s.name,
                    attrs: s
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                        .collect(),
                });
            }
        }
    }
    axum::http::StatusCode::OK
}

/// An OTLP/HTTP (protobuf) traces receiver on 127.0.0.1: its endpoint and what it received.
async fn receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let app = Router::new()
        .route("/v1/traces", post(export))
        .with_state(Arc::clone(&spans));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("receiver address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/v1/traces"), spans)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One line per span, for failure messages.
fn summary<'a>(spans: impl Iterator<Item = &'a Got>) -> String {
    spans
        .map(|s| {
            format!(
                "\n  {} {} {} span {} parent {} {:?}",
                hex(&s.trace_id),
                s.service,
                s.name,
                hex(&s.span_id),
                hex(&s.parent),
                s.attrs
            )
        })
        .collect()
}

/// Whether `ancestor` is `span` or above it in `trace`.
fn is_ancestor(trace: &HashMap<Vec<u8>, Got>, ancestor: &[u8], span: &Got) -> bool {
    let mut at = Some(span);
    let mut hops = 0;
    while let Some(s) = at {
        if s.span_id == ancestor {
            return true;
        }
        hops += 1;
        if hops > 32 {
            return false;
        }
        at = trace.get(&s.parent);
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_put_yields_one_trace_across_gateway_and_nodes() {
    let (endpoint, spans) = receiver().await;
    let mut opts = Opts {
        env: vec![
            ("TIERKV_TELEMETRY__OTLP_ENDPOINT".to_owned(), endpoint),
            // Export every 100 ms instead of every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
        ],
        gateway_env: vec![(
            "TIERKV_TELEMETRY__SERVICE_NAME".to_owned(),
            "gateway".to_owned(),
        )],
        ..Opts::default()
    };
    for n in 1..=3u32 {
        opts.node_env.push((
            n,
            "TIERKV_TELEMETRY__SERVICE_NAME".to_owned(),
            format!("node-{n}"),
        ));
    }
    let c = Cluster::start(opts).await;
    let http = c.http.clone();
    let key = "traced-key";
    let shard = tierkv_engine::routing::shard_for(key.as_bytes(), 4).0;
    let leader = c.wait_leader(shard, None, Duration::from_secs(20)).await;
    let followers: Vec<String> = (1..=3u32)
        .filter(|n| *n != leader)
        .map(|n| n.to_string())
        .collect();

    // The gateway wraps operations for a node once the node announced wire revision 4 (its
    // first answers, e.g. to the gateway's status polls): until then a PUT's trace ends at
    // the gateway. Each attempt is a trace of its own.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempt = 0u64;
    let (trace, client_span) = loop {
        attempt += 1;
        let trace_id = format!(
            "{:032x}",
            0x7ace_0000_0000_0000_0000_0000_0000_0000_u128 + u128::from(attempt)
        );
        let client_span = format!("{:016x}", 0xc11e_0000_0000_0000_u64 + attempt);
        let r = http
            .put(format!("{}/v1/kv/{key}", c.url))
            .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
            .body(format!("v{attempt}"))
            .send()
            .await
            .expect("put");
        assert!(r.status().is_success(), "PUT answered {}", r.status());
        // Wait for this trace's spans to arrive (exports every 100 ms).
        let wait = Instant::now() + Duration::from_secs(5);
        let found = loop {
            let got: HashMap<Vec<u8>, Got> = spans
                .lock()
                .expect("spans lock")
                .iter()
                .filter(|s| hex(&s.trace_id) == trace_id)
                .map(|s| (s.span_id.clone(), s.clone()))
                .collect();
            let replicated = got.values().filter(|s| s.name == "replicate").count();
            let has = |name: &str| got.values().any(|s| s.name == name);
            if replicated >= 2
                && ["wal.append", "node.op", "node_rpc", REQUEST]
                    .iter()
                    .all(|n| has(n))
            {
                break Some(got);
            }
            if Instant::now() > wait {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if let Some(got) = found {
            break (got, client_span);
        }
        assert!(
            Instant::now() < deadline,
            "no trace with node spans after {attempt} PUTs; spans received: {}",
            summary(spans.lock().expect("spans lock").iter())
        );
    };

    let by_name = |name: &str| -> Vec<&Got> { trace.values().filter(|s| s.name == name).collect() };
    // The gateway's request span is the client's child.
    let request = by_name(REQUEST);
    assert_eq!(
        request.len(),
        1,
        "one request span: {}",
        summary(trace.values())
    );
    let request = request[0];
    assert_eq!(request.service, "gateway");
    assert_eq!(
        hex(&request.parent),
        client_span,
        "request span's parent is the client's"
    );
    // Its node RPC, then the leader's operation under it.
    let rpc = by_name("node_rpc");
    assert!(
        !rpc.is_empty(),
        "no node_rpc span: {}",
        summary(trace.values())
    );
    assert!(
        rpc.iter()
            .all(|s| s.service == "gateway" && s.parent == request.span_id)
    );
    let op = by_name("node.op");
    assert_eq!(op.len(), 1, "one node.op span: {}", summary(trace.values()));
    let op = op[0];
    assert_eq!(
        op.service,
        format!("node-{leader}"),
        "the operation ran on the leader"
    );
    assert_eq!(op.attrs.get("kind").map(String::as_str), Some("write"));
    assert!(
        rpc.iter().any(|r| r.span_id == op.parent),
        "node.op's parent is a node_rpc span"
    );
    assert!(is_ancestor(&trace, &request.span_id, op));
    // The WAL append and the replication to each follower, under the operation.
    for s in by_name("wal.append")
        .into_iter()
        .chain(by_name("replicate"))
    {
        assert_eq!(s.service, op.service, "{s:?}");
        assert_eq!(s.parent, op.span_id, "{s:?} is not the operation's child");
        assert!(is_ancestor(&trace, &request.span_id, s));
    }
    let mut replicated_to: Vec<String> = by_name("replicate")
        .iter()
        .filter_map(|s| s.attrs.get("follower").cloned())
        .collect();
    replicated_to.sort();
    assert_eq!(replicated_to, followers, "one replicate span per follower");
    // Everything is one trace.
    assert!(trace.values().all(|s| s.trace_id == request.trace_id));
}
