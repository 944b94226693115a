//! Request counts, latency percentiles and error rates over a sliding window, for
//! `/monitoring/performance`.
//!
//! The window is the last five minutes, kept per route as ten 30-second slices: the
//! slice now being written and the nine before it, so an answer covers between 270
//! and 300 seconds of traffic. A slice that has aged out is cleared when it is next
//! written and skipped when read; memory per route is therefore fixed (ten slices of a
//! fixed-size histogram, about 8 KB) however much traffic passes, and the number of
//! routes is bounded by the router's templates (methods outside the usual seven are
//! counted as `OTHER`, and past [`MAX_ROUTES`] new routes share one entry).
//!
//! Latencies go into log-linear bins, eight per power of two of microseconds, and a
//! percentile is reported as its bin's midpoint: within about 6% of the true value,
//! which is what an operator needs to see a route slow down. Recording takes one short
//! lock on that route's slices only, so busy routes never wait for each other.
//!
//! An error is a 5xx answer: the server failed. A 4xx is the caller's mistake (a
//! refused token, a 404, a 429) and does not count as an error here.

use serde::Serialize;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

/// How far back an answer looks.
pub const WINDOW: Duration = Duration::from_secs(300);
/// The step the window moves in.
pub const SLICE: Duration = Duration::from_secs(30);
const SLICES: usize = (WINDOW.as_secs() / SLICE.as_secs()) as usize;

/// Most distinct (method, route) pairs tracked; later ones share one `OTHER` entry.
pub const MAX_ROUTES: usize = 1_000;

/// Bins per power of two.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// The largest power of two kept apart; longer requests (over about 134 s, beyond any
/// request timeout) fall into the last bin.
const TOP_EXP: u32 = 26;
const MAX_MICROS: u64 = (1 << (TOP_EXP + 1)) - 1;
const BINS: usize = (TOP_EXP as usize - SUB_BITS as usize + 2) * SUB;

/// The bin of a latency in microseconds.
fn bin(micros: u64) -> usize {
    let v = micros.min(MAX_MICROS);
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let sub = (v >> (exp - SUB_BITS)) as usize & (SUB - 1);
    (exp - SUB_BITS + 1) as usize * SUB + sub
}

/// The midpoint of a bin, in microseconds.
fn midpoint(bin: usize) -> f64 {
    if bin < SUB {
        return bin as f64 + 0.5;
    }
    let exp = (bin / SUB) as u32 + SUB_BITS - 1;
    let width = 1u64 << (exp - SUB_BITS);
    let low = ((SUB + bin % SUB) as u64) << (exp - SUB_BITS);
    low as f64 + width as f64 / 2.0
}

/// One route's traffic in one 30-second slice.
#[derive(Clone)]
struct Slice {
    /// Which slice of time since start this holds; `u64::MAX` when never written.
    epoch: u64,
    count: u64,
    errors: u64,
    bins: [u32; BINS],
}

impl Slice {
    const EMPTY: Slice = Slice {
        epoch: u64::MAX,
        count: 0,
        errors: 0,
        bins: [0; BINS],
    };
}

/// One route's window. Cheap to record into from many requests at once.
pub struct RouteWindow {
    method: String,
    route: String,
    started: Instant,
    slices: Mutex<Box<[Slice; SLICES]>>,
}

impl std::fmt::Debug for RouteWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RouteWindow({} {})", self.method, self.route)
    }
}

fn epoch_of(started: Instant) -> u64 {
    started.elapsed().as_secs() / SLICE.as_secs()
}

impl RouteWindow {
    /// Counts one request that took `elapsed` and answered `status`.
    pub fn record(&self, elapsed: Duration, status: u16) {
        let epoch = epoch_of(self.started);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let Ok(mut slices) = self.slices.lock() else {
            return;
        };
        let slot = &mut slices[(epoch % SLICES as u64) as usize];
        if slot.epoch != epoch {
            *slot = Slice::EMPTY;
            slot.epoch = epoch;
        }
        slot.count += 1;
        if status >= 500 {
            slot.errors += 1;
        }
        let b = &mut slot.bins[bin(micros)];
        *b = b.saturating_add(1);
    }

    /// The route's traffic within the window, or `None` when it had none.
    fn report(&self, now: u64) -> Option<RouteReport> {
        let mut bins = vec![0u64; BINS];
        let (mut count, mut errors) = (0u64, 0u64);
        {
            let slices = self.slices.lock().ok()?;
            for s in slices.iter() {
                if s.epoch == u64::MAX || s.epoch > now || now - s.epoch >= SLICES as u64 {
                    continue;
                }
                count += s.count;
                errors += s.errors;
                for (total, n) in bins.iter_mut().zip(s.bins.iter()) {
                    *total += u64::from(*n);
                }
            }
        }
        if count == 0 {
            return None;
        }
        Some(RouteReport {
            method: self.method.clone(),
            route: self.route.clone(),
            count,
            p50_ms: percentile_ms(&bins, count, 0.50),
            p95_ms: percentile_ms(&bins, count, 0.95),
            p99_ms: percentile_ms(&bins, count, 0.99),
            error_rate: rate(errors, count),
            errors,
        })
    }
}

/// The latency below which a share `q` of the `count` requests in `bins` fell, in
/// milliseconds rounded to the microsecond.
fn percentile_ms(bins: &[u64], count: u64, q: f64) -> f64 {
    // The rank of the request that marks the percentile (1-based, nearest rank).
    let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
    let mut seen = 0;
    for (i, n) in bins.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return midpoint(i).round() / 1000.0;
        }
    }
    0.0
}

fn rate(errors: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        errors as f64 / count as f64
    }
}

/// One route's traffic in the window.
#[derive(Debug, Clone, Serialize)]
pub struct RouteReport {
    pub method: String,
    /// The matched route template (`/api/v1/evidence/{id}`), never the raw path.
    pub route: String,
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Share of the requests answered with a 5xx.
    pub error_rate: f64,
    #[serde(skip)]
    pub errors: u64,
}

/// The whole window.
#[derive(Debug, Clone, Serialize)]
pub struct PerformanceReport {
    pub window_seconds: u64,
    pub total_requests: u64,
    /// Share of all requests answered with a 5xx.
    pub error_rate: f64,
    /// Busiest first.
    pub routes: Vec<RouteReport>,
}

/// Every route's window.
pub struct RequestWindow {
    started: Instant,
    routes: RwLock<HashMap<(String, String), Arc<RouteWindow>>>,
}

impl std::fmt::Debug for RequestWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestWindow")
    }
}

impl Default for RequestWindow {
    fn default() -> Self {
        Self::new()
    }
}

/// The method as a label: the usual seven by name, anything else as `OTHER`, so a
/// caller inventing methods cannot make new entries.
fn method_label(method: &str) -> &str {
    match method {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => method,
        _ => "OTHER",
    }
}

impl RequestWindow {
    /// An empty window starting now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            routes: RwLock::default(),
        }
    }

    /// The window of one route, made on first use. Callers keep the handle, so this
    /// lookup happens once per route rather than once per request.
    #[must_use]
    pub fn route(&self, method: &str, route: &str) -> Arc<RouteWindow> {
        let mut key = (method_label(method).to_owned(), route.to_owned());
        if let Ok(routes) = self.routes.read()
            && let Some(found) = routes.get(&key)
        {
            return found.clone();
        }
        let Ok(mut routes) = self.routes.write() else {
            return Arc::new(self.make(key));
        };
        if routes.len() >= MAX_ROUTES && !routes.contains_key(&key) {
            key = ("OTHER".to_owned(), "other".to_owned());
        }
        routes
            .entry(key.clone())
            .or_insert_with(|| Arc::new(self.make(key)))
            .clone()
    }

    fn make(&self, (method, route): (String, String)) -> RouteWindow {
        RouteWindow {
            method,
            route,
            started: self.started,
            slices: Mutex::new(Box::new([Slice::EMPTY; SLICES])),
        }
    }

    /// Every route's traffic within the window, busiest first.
    #[must_use]
    pub fn report(&self) -> PerformanceReport {
        let now = epoch_of(self.started);
        let windows: Vec<Arc<RouteWindow>> = self
            .routes
            .read()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        let mut routes: Vec<RouteReport> = windows.iter().filter_map(|w| w.report(now)).collect();
        routes.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.route.cmp(&b.route))
                .then_with(|| a.method.cmp(&b.method))
        });
        let total: u64 = routes.iter().map(|r| r.count).sum();
        let errors: u64 = routes.iter().map(|r| r.errors).sum();
        PerformanceReport {
            window_seconds: WINDOW.as_secs(),
            total_requests: total,
            error_rate: rate(errors, total),
            routes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_ordered_and_midpoints_fall_inside_them() {
        let mut last = 0;
        for micros in (0..100_000).chain([MAX_MICROS, MAX_MICROS + 1, u64::MAX]) {
            let b = bin(micros);
            assert!(b >= last && b < BINS, "{micros} → {b}");
            last = b;
        }
        for micros in [8u64, 9, 15, 16, 100, 1_000, 12_345, 1_000_000, 60_000_000] {
            let mid = midpoint(bin(micros));
            let error = (mid - micros as f64).abs() / micros as f64;
            assert!(error <= 0.0625, "{micros} µs reported as {mid}");
        }
    }

    #[test]
    fn percentiles_and_error_rates_follow_the_requests() {
        let window = RequestWindow::new();
        let route = window.route("GET", "/api/v1/things/{id}");
        // 90 fast answers at 1 ms, 9 slow at 200 ms, 1 failure at 2 s.
        for _ in 0..90 {
            route.record(Duration::from_millis(1), 200);
        }
        for _ in 0..9 {
            route.record(Duration::from_millis(200), 404);
        }
        route.record(Duration::from_secs(2), 500);
        window
            .route("POST", "/api/v1/things")
            .record(Duration::from_millis(5), 201);

        let report = window.report();
        assert_eq!(report.window_seconds, 300);
        assert_eq!(report.total_requests, 101);
        assert!((report.error_rate - 1.0 / 101.0).abs() < 1e-9);
        let r = &report.routes[0];
        assert_eq!((r.method.as_str(), r.count), ("GET", 100));
        assert!((r.p50_ms - 1.0).abs() <= 0.07, "{r:?}");
        assert!((r.p95_ms - 200.0).abs() <= 13.0, "{r:?}");
        assert!((r.p99_ms - 200.0).abs() <= 13.0, "{r:?}");
        // 4xx are the caller's; only the 5xx counts.
        assert!((r.error_rate - 0.01).abs() < 1e-9);
        assert_eq!(report.routes[1].route, "/api/v1/things");
        assert_eq!(report.routes[1].error_rate, 0.0);
    }

    #[test]
    fn the_same_route_shares_one_window_and_odd_methods_share_one_label() {
        let window = RequestWindow::new();
        let a = window.route("GET", "/x");
        let b = window.route("GET", "/x");
        assert!(Arc::ptr_eq(&a, &b));
        let c = window.route("BREW", "/x");
        let d = window.route("WHEN", "/x");
        assert!(Arc::ptr_eq(&c, &d));
        assert_eq!(c.method, "OTHER");
    }

    #[test]
    fn routes_beyond_the_limit_share_one_entry() {
        let window = RequestWindow::new();
        for i in 0..MAX_ROUTES {
            let _ = window.route("GET", &format!("/r{i}"));
        }
        let late = window.route("GET", "/late");
        assert_eq!(late.route, "other");
        assert!(Arc::ptr_eq(&late, &window.route("GET", "/later")));
    }

    #[test]
    fn slices_older_than_the_window_are_not_reported() {
        let window = RequestWindow::new();
        let route = window.route("GET", "/x");
        route.record(Duration::from_millis(1), 200);
        let epoch = epoch_of(window.started);
        assert_eq!(route.report(epoch).map(|r| r.count), Some(1));
        assert_eq!(
            route.report(epoch + SLICES as u64 - 1).map(|r| r.count),
            Some(1)
        );
        assert!(route.report(epoch + SLICES as u64).is_none());
    }
}
