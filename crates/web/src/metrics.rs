//! Prometheus metrics, owned by the application rather than installed globally, so
//! that two applications in one test process keep separate counts.

use metrics::{Counter, Histogram, Label, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
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
    requests: Arc<RwLock<HashMap<RequestKey, (Counter, Histogram)>>>,
}

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
        Self {
            recorder: Arc::new(recorder),
            handle,
            requests: Arc::default(),
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
        let (counter, histogram) = match cached {
            Some(handles) => handles,
            None => {
                let handles = self.register(&key);
                if let Ok(mut map) = self.requests.write() {
                    map.insert(key, handles.clone());
                }
                handles
            }
        };
        counter.increment(1);
        histogram.record(elapsed.as_secs_f64());
    }

    fn register(&self, key: &RequestKey) -> (Counter, Histogram) {
        let labels = vec![
            Label::new("method", key.method.clone()),
            Label::new("route", key.route.clone()),
            Label::new("status", key.status.to_string()),
        ];
        let counter_key = metrics::Key::from_parts("http_requests_total", labels.clone());
        let histogram_key = metrics::Key::from_parts("http_request_duration_seconds", labels);
        (
            self.recorder.register_counter(&counter_key, &METADATA),
            self.recorder.register_histogram(&histogram_key, &METADATA),
        )
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
