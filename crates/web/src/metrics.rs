//! Prometheus metrics, owned by the application rather than installed globally, so
//! that two applications in one test process keep separate counts; and the sliding
//! window of request latencies behind `/monitoring/performance`, recorded by the same
//! call so a request pays for one lookup.

use metrics::{Counter, Histogram, Label, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use ruleiq_services::monitoring::performance::{RequestWindow, RouteWindow};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

/// Request latency buckets, in seconds: fine-grained below 10 ms, where this server's
/// answers should fall.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The metrics registry of one application.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    /// Handles per (method, route, status), so a request costs a read lock and two
    /// atomic updates rather than building labels and looking them up in the registry.
    /// Routes are the matched templates, so this map stays small.
    requests: Arc<RwLock<HashMap<RequestKey, RequestHandles>>>,
    /// The sliding window, when `ENABLE_PERFORMANCE_MONITORING` is on.
    window: Option<Arc<RequestWindow>>,
    /// Requests refused with 429, by rate-limit bucket, registered up front so that
    /// every bucket's series exists (at 0) from the first scrape.
    rate_limited: Arc<HashMap<&'static str, Counter>>,
    /// When the gauges that cost a query were last refreshed.
    refreshed: Arc<Mutex<Option<Instant>>>,
}

#[derive(Clone)]
struct RequestHandles {
    counter: Counter,
    histogram: Histogram,
    window: Option<Arc<RouteWindow>>,
}

/// The rate-limit buckets (see [`crate::ratelimit`]).
pub const RATE_LIMIT_BUCKETS: [&str; 3] = ["auth", "ai", "general"];

#[derive(Clone, PartialEq, Eq, Hash)]
struct RequestKey {
    method: String,
    route: String,
    status: u16,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry.
    #[must_use]
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .map_or_else(
                |_| PrometheusBuilder::new().build_recorder(),
                |b| b.build_recorder(),
            );
        let handle = recorder.handle();
        let rate_limited = RATE_LIMIT_BUCKETS
            .iter()
            .map(|bucket| {
                let key = metrics::Key::from_parts(
                    "ruleiq_rate_limited_total",
                    vec![Label::new("bucket", *bucket)],
                );
                (*bucket, recorder.register_counter(&key, &METADATA))
            })
            .collect();
        Self {
            recorder: Arc::new(recorder),
            handle,
            requests: Arc::default(),
            window: Some(Arc::new(RequestWindow::new())),
            rate_limited: Arc::new(rate_limited),
            refreshed: Arc::default(),
        }
    }

    /// Keeps the sliding window of request latencies or not
    /// (`ENABLE_PERFORMANCE_MONITORING`). The Prometheus series are kept either way:
    /// scrapers depend on them.
    #[must_use]
    pub fn with_performance(mut self, enabled: bool) -> Self {
        self.window = enabled.then(|| Arc::new(RequestWindow::new()));
        self
    }

    /// The sliding window of request latencies; `None` when it is turned off.
    #[must_use]
    pub fn performance(&self) -> Option<&RequestWindow> {
        self.window.as_deref()
    }

    /// Counts one request refused by the rate limiter.
    pub fn count_rate_limited(&self, bucket: &'static str) {
        match self.rate_limited.get(bucket) {
            Some(counter) => counter.increment(1),
            None => {
                let key = metrics::Key::from_parts(
                    "ruleiq_rate_limited_total",
                    vec![Label::new("bucket", bucket)],
                );
                self.recorder.register_counter(&key, &METADATA).increment(1);
            }
        }
    }

    /// Whether the gauges that cost a query are due for a refresh (`every` has passed
    /// since the last one); a `true` answer books the refresh, so of several scrapes
    /// arriving together only one runs the queries.
    #[must_use]
    pub fn refresh_due(&self, every: Duration) -> bool {
        let Ok(mut last) = self.refreshed.lock() else {
            return false;
        };
        match *last {
            Some(at) if at.elapsed() < every => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    /// Counts one HTTP request and records its latency.
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let key = RequestKey {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        let cached = self
            .requests
            .read()
            .ok()
            .and_then(|map| map.get(&key).cloned());
        let handles = match cached {
            Some(handles) => handles,
            None => {
                let handles = self.register(&key);
                if let Ok(mut map) = self.requests.write() {
                    map.insert(key, handles.clone());
                }
                handles
            }
        };
        handles.counter.increment(1);
        handles.histogram.record(elapsed.as_secs_f64());
        if let Some(window) = &handles.window {
            window.record(elapsed, status);
        }
    }

    fn register(&self, key: &RequestKey) -> RequestHandles {
        let labels = vec![
            Label::new("method", key.method.clone()),
            Label::new("route", key.route.clone()),
            Label::new("status", key.status.to_string()),
        ];
        let counter_key = metrics::Key::from_parts("http_requests_total", labels.clone());
        let histogram_key = metrics::Key::from_parts("http_request_duration_seconds", labels);
        RequestHandles {
            counter: self.recorder.register_counter(&counter_key, &METADATA),
            histogram: self.recorder.register_histogram(&histogram_key, &METADATA),
            window: self
                .window
                .as_ref()
                .map(|w| w.route(&key.method, &key.route)),
        }
    }

    /// Sets a gauge, such as the job queue depth.
    pub fn set_gauge(&self, name: &'static str, value: f64) {
        let key = metrics::Key::from_name(name);
        self.recorder.register_gauge(&key, &METADATA).set(value);
    }

    /// The Prometheus text exposition of everything recorded.
    #[must_use]
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
