//! The gateway's own figures on `/metrics`: HTTP answers by route, method and status, their
//! latency, the requests in flight, the shard count and `tierkv_up`. They are registered into
//! the registry the gateway serves ([`crate::AppState::with_registry`]), next to whatever
//! the process put there (the cluster client's `tierkv_gateway_*`, a node's figures).
//!
//! A request records into pre-resolved handles: the table from (route, method, status) to
//! its counter and latency histogram is read without a lock (an `ArcSwap` snapshot), and only
//! a series not seen before goes through the families (and their locks), once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::http::Method;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use tierkv_engine::metrics::{Counter, Gauge, Histogram, Registry};

/// Labels of `tierkv_http_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

/// Labels of `tierkv_http_request_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

/// The handles of one (route, method, status).
#[derive(Debug, Clone)]
struct Series {
    method: Method,
    status: u16,
    requests: Counter,
    latency: Histogram,
}

/// Route (the matched path pattern as the router has it) → its series.
type Table = HashMap<Box<str>, Vec<Series>>;

/// The gateway's HTTP figures.
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    in_flight: Gauge,
    /// Pre-resolved handles, replaced (copied and grown) when a new series appears.
    table: ArcSwap<Table>,
    /// Serializes growing `table`.
    grow: Mutex<()>,
}

/// Cumulative answers over a set of routes ([`HttpMetrics::totals`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HttpTotals {
    /// Answers.
    pub(crate) requests: u64,
    /// 4xx answers.
    pub(crate) client_errors: u64,
    /// 5xx answers.
    pub(crate) server_errors: u64,
    /// Latency: non-cumulative counts per bucket of `LATENCY_BUCKETS`, then +Inf.
    pub(crate) latency: Vec<u64>,
}

/// Decrements the in-flight gauge when dropped (also when the request future is dropped).
pub(crate) struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl HttpMetrics {
    /// Declares the gateway's families in `registry`; `shards` is the keyspace's shard count.
    pub(crate) fn new(registry: &mut Registry, shards: u32) -> Self {
        let m = Self {
            requests: Family::default(),
            latency: Family::default(),
            in_flight: Gauge::default(),
            table: ArcSwap::default(),
            grow: Mutex::new(()),
        };
        registry.register(
            "tierkv_http_requests",
            "HTTP requests answered",
            m.requests.clone(),
        );
        registry.register(
            "tierkv_http_request_duration_seconds",
            "HTTP request latency",
            m.latency.clone(),
        );
        registry.register(
            "tierkv_http_requests_in_flight",
            "HTTP requests being served",
            m.in_flight.clone(),
        );
        let shard_gauge: Gauge = Gauge::default();
        shard_gauge.set(i64::from(shards));
        registry.register("tierkv_shards", "Shards in the keyspace", shard_gauge);
        let up: Gauge = Gauge::default();
        up.set(1);
        registry.register("tierkv_up", "Always 1", up);
        m
    }

    pub(crate) fn start(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Counts one answer. `route` is the matched path pattern as the router has it (the
    /// label renders `{*key}` as `{key}`).
    pub(crate) fn record(&self, route: &str, method: &Method, status: u16, took: Duration) {
        if !Self::observe(&self.table.load(), route, method, status, took) {
            self.add_series(route, method, status);
            Self::observe(&self.table.load(), route, method, status, took);
        }
    }

    /// Records into the handles of `table`; false when it has none for this series.
    fn observe(table: &Table, route: &str, method: &Method, status: u16, took: Duration) -> bool {
        let found = table.get(route).and_then(|series| {
            series
                .iter()
                .find(|s| s.status == status && s.method == method)
        });
        if let Some(s) = found {
            s.requests.inc();
            s.latency.observe(took);
        }
        found.is_some()
    }

    /// Answers so far over the routes whose pattern starts with `prefix`: what the admin
    /// API's traffic figures are sampled from (`admin::traffic`).
    pub(crate) fn totals(&self, prefix: &str) -> HttpTotals {
        let table = self.table.load();
        let mut t = HttpTotals::default();
        for series in table
            .iter()
            .filter(|(r, _)| r.starts_with(prefix))
            .map(|(_, s)| s)
        {
            let mut methods: Vec<&Method> = Vec::new();
            for s in series {
                let n = s.requests.get();
                t.requests += n;
                match s.status {
                    400..=499 => t.client_errors += n,
                    500..=599 => t.server_errors += n,
                    _ => {}
                }
                // Series of one method share its latency histogram: count it once.
                if !methods.contains(&&s.method) {
                    methods.push(&s.method);
                    let snap = s.latency.snapshot();
                    if t.latency.len() < snap.buckets.len() {
                        t.latency.resize(snap.buckets.len(), 0);
                    }
                    for (sum, b) in t.latency.iter_mut().zip(snap.buckets) {
                        *sum += b;
                    }
                }
            }
        }
        t
    }

    /// Resolves the handles of a new series and publishes a table that has them.
    #[cold]
    fn add_series(&self, route: &str, method: &Method, status: u16) {
        let _one = self.grow.lock();
        let current = self.table.load_full();
        if let Some(series) = current.get(route)
            && series
                .iter()
                .any(|s| s.status == status && s.method == method)
        {
            return;
        }
        let label = route.replace("{*key}", "{key}");
        let requests = self.requests.get_or_create_owned(&RequestLabels {
            route: label.clone(),
            method: method.as_str().to_owned(),
            status,
        });
        let latency = self.latency.get_or_create_owned(&RouteLabels {
            route: label,
            method: method.as_str().to_owned(),
        });
        let mut table = Table::clone(&current);
        table.entry(route.into()).or_default().push(Series {
            method: method.clone(),
            status,
            requests,
            latency,
        });
        self.table.store(Arc::new(table));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use tierkv_engine::metrics::encode_text;

    /// `(name, type)` of every family in `text`, from its `# TYPE` lines.
    fn families(text: &str) -> BTreeSet<(String, String)> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .map(|(n, t)| (n.to_owned(), t.to_owned()))
            .collect()
    }

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let mut r = Registry::default();
        let m = HttpMetrics::new(&mut r, 4);
        m.record("/v1/kv/{*key}", &Method::GET, 200, Duration::from_millis(3));
        m.record(
            "/v1/kv/{*key}",
            &Method::GET,
            200,
            Duration::from_millis(30),
        );
        m.record("/v1/kv/{*key}", &Method::GET, 404, Duration::from_millis(1));
        m.record("/v1/kv/{*key}", &Method::PUT, 200, Duration::from_millis(1));
        let in_flight = m.start();
        let text = encode_text(&r).expect("encodes");
        drop(in_flight);
        for line in [
            "tierkv_http_requests_total{route=\"/v1/kv/{key}\",method=\"GET\",status=\"200\"} 2",
            "tierkv_http_requests_total{route=\"/v1/kv/{key}\",method=\"GET\",status=\"404\"} 1",
            "tierkv_http_requests_total{route=\"/v1/kv/{key}\",method=\"PUT\",status=\"200\"} 1",
            "tierkv_http_request_duration_seconds_bucket{route=\"/v1/kv/{key}\",method=\"GET\",le=\"0.0025\"} 1",
            "tierkv_http_request_duration_seconds_bucket{route=\"/v1/kv/{key}\",method=\"GET\",le=\"+Inf\"} 3",
            "tierkv_http_request_duration_seconds_count{route=\"/v1/kv/{key}\",method=\"GET\"} 3",
            "tierkv_http_requests_in_flight 1",
            "tierkv_shards 4",
            "tierkv_up 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let want: BTreeSet<(String, String)> = [
            ("tierkv_http_requests_total", "counter"),
            ("tierkv_http_request_duration_seconds", "histogram"),
            ("tierkv_http_requests_in_flight", "gauge"),
            ("tierkv_shards", "gauge"),
            ("tierkv_up", "gauge"),
        ]
        .into_iter()
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect();
        assert_eq!(families(&text), want);
        assert!(
            encode_text(&r)
                .expect("encodes")
                .contains("\ntierkv_http_requests_in_flight 0\n"),
            "the guard gives the request back"
        );
    }

    #[test]
    fn a_series_is_resolved_once() {
        let mut r = Registry::default();
        let m = HttpMetrics::new(&mut r, 1);
        for _ in 0..3 {
            m.record("/health/live", &Method::GET, 200, Duration::ZERO);
        }
        m.record("/health/live", &Method::GET, 503, Duration::ZERO);
        let table = m.table.load();
        assert_eq!(table.len(), 1);
        assert_eq!(table.get("/health/live").map(Vec::len), Some(2));
        let text = encode_text(&r).expect("encodes");
        assert!(text.contains(
            "tierkv_http_requests_total{route=\"/health/live\",method=\"GET\",status=\"200\"} 3\n"
        ));
    }
}
