//! One line of totals after Goose's own tables: every route's requests together.
//!
//! Goose prints percentiles per route, and in its JSON report only in whole
//! milliseconds; a target such as "p99 < 50 ms over the whole mix" needs the mix's own
//! percentiles, which this merges from the routes' microsecond histograms.

use std::collections::BTreeMap;

use goose::metrics::{GooseMetrics, GooseRequestMetricTimingData};

/// What the run came to.
pub struct Totals {
    pub failed: usize,
    pub transaction_errors: usize,
}

/// Prints the totals of `metrics` and returns them.
pub fn print(metrics: &GooseMetrics) -> Totals {
    let mut all = GooseRequestMetricTimingData::default();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut failed = 0;
    for route in metrics.requests.values() {
        let times = &route.raw_data;
        for (&bucket, &count) in times.times_us.iter() {
            let had = all.times_us.get(&bucket).copied().unwrap_or(0);
            all.times_us.insert(bucket, had + count);
        }
        if times.counter > 0 {
            if all.counter == 0 || times.minimum_time_us < all.minimum_time_us {
                all.minimum_time_us = times.minimum_time_us;
            }
            all.maximum_time_us = all.maximum_time_us.max(times.maximum_time_us);
        }
        all.total_time_us += times.total_time_us;
        all.counter += times.counter;
        for (&status, &count) in &route.status_code_counts {
            *statuses.entry(status).or_default() += count;
        }
        failed += route.fail_count;
    }
    let transaction_errors = metrics
        .transaction_errors
        .values()
        .map(|e| e.occurrences)
        .sum();
    let seconds = metrics.duration.max(1);
    let ms = |percent: f32| all.percentile_us(percent) as f64 / 1000.0;
    // Status 0 is Goose's mark for a request that got no answer at all.
    let statuses: Vec<String> = statuses
        .iter()
        .map(|(status, count)| match status {
            0 => format!("no answer × {count}"),
            _ => format!("{status} × {count}"),
        })
        .collect();
    println!(
        "ruleiq-load totals: {} requests in {seconds} s = {:.1} req/s; p50 {:.2} ms, p95 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms; {failed} failed requests, {transaction_errors} transaction \
         errors; status {}",
        all.counter,
        all.counter as f64 / seconds as f64,
        ms(0.50),
        ms(0.95),
        ms(0.99),
        all.maximum_time_us as f64 / 1000.0,
        if statuses.is_empty() {
            "none".to_owned()
        } else {
            statuses.join(", ")
        },
    );
    Totals {
        failed,
        transaction_errors,
    }
}
