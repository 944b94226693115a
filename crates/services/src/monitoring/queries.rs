//! The slowest recent database queries, from the time SeaORM measures for every
//! statement it runs (its metric callback, installed at start-up when
//! `ENABLE_DATABASE_MONITORING` is on).
//!
//! Only the SQL text is kept, never the bound values: those are names, e-mail
//! addresses and answers, personal data that has no place in a monitoring view. Quoted
//! literals written into the text itself are blanked for the same reason, and the text
//! is cut to [`MAX_SQL_CHARS`]. The queries at or over [`SLOW_QUERY_THRESHOLD`] go
//! into a ring of the [`KEPT`] most recent; a faster query costs one atomic add.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::{
    collections::VecDeque,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// A query taking at least this long is kept. Most of ours answer in single-digit
/// milliseconds; a tenth of a second is worth an operator's look.
pub const SLOW_QUERY_THRESHOLD: Duration = Duration::from_millis(100);
/// How many slow queries are kept: the most recent ones.
pub const KEPT: usize = 20;
/// Longest SQL text kept, in characters.
pub const MAX_SQL_CHARS: usize = 1_000;

/// One slow query.
#[derive(Debug, Clone, Serialize)]
pub struct SlowQuery {
    /// The statement, literals blanked and cut to length; never its bound values.
    pub sql: String,
    pub duration_ms: f64,
    /// When it finished.
    pub at: DateTime<Utc>,
    /// Whether it returned an error.
    pub failed: bool,
}

/// The queries this process has run, and the slowest recent ones.
#[derive(Debug)]
pub struct QueryLog {
    threshold: Duration,
    queries: AtomicU64,
    slow: AtomicU64,
    recent: Mutex<VecDeque<SlowQuery>>,
}

impl Default for QueryLog {
    fn default() -> Self {
        Self::new(SLOW_QUERY_THRESHOLD)
    }
}

impl QueryLog {
    /// An empty log keeping queries that take at least `threshold`.
    #[must_use]
    pub fn new(threshold: Duration) -> Self {
        Self {
            threshold,
            queries: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::with_capacity(KEPT)),
        }
    }

    /// The threshold a query must reach to be kept.
    #[must_use]
    pub fn threshold(&self) -> Duration {
        self.threshold
    }

    /// Notes one statement that took `elapsed`.
    pub fn observe(&self, elapsed: Duration, sql: &str, failed: bool) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        if elapsed < self.threshold {
            return;
        }
        self.slow.fetch_add(1, Ordering::Relaxed);
        let query = SlowQuery {
            sql: redact(sql),
            duration_ms: (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
            at: Utc::now(),
            failed,
        };
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == KEPT {
                recent.pop_front();
            }
            recent.push_back(query);
        }
    }

    /// The kept slow queries, slowest first.
    #[must_use]
    pub fn slowest(&self) -> Vec<SlowQuery> {
        let mut list: Vec<SlowQuery> = self
            .recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default();
        list.sort_by(|a, b| b.duration_ms.total_cmp(&a.duration_ms));
        list
    }

    /// Statements timed since start.
    #[must_use]
    pub fn queries_total(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Statements at or over the threshold since start.
    #[must_use]
    pub fn slow_total(&self) -> u64 {
        self.slow.load(Ordering::Relaxed)
    }
}

/// The SQL with every single-quoted literal replaced by `'?'`, whitespace runs
/// collapsed, and cut to [`MAX_SQL_CHARS`] characters.
#[must_use]
pub fn redact(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len().min(MAX_SQL_CHARS + 4));
    let mut chars = sql.chars().peekable();
    let mut kept = 0;
    let mut space = false;
    while let Some(c) = chars.next() {
        if kept >= MAX_SQL_CHARS {
            out.push('…');
            break;
        }
        if c == '\'' {
            // Skip to the closing quote; a doubled quote is an escaped one.
            loop {
                match chars.next() {
                    None => break,
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                    }
                    Some('\'') => break,
                    Some(_) => {}
                }
            }
            out.push_str("'?'");
            kept += 3;
            space = false;
        } else if c.is_whitespace() {
            if !space && kept > 0 {
                out.push(' ');
                kept += 1;
            }
            space = true;
        } else {
            out.push(c);
            kept += 1;
            space = false;
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_blanked_and_whitespace_collapsed() {
        assert_eq!(
            redact("SELECT *\n  FROM \"user\" WHERE email = 'ann@example.co.uk' AND x = 'it''s'  "),
            "SELECT * FROM \"user\" WHERE email = '?' AND x = '?'"
        );
        assert_eq!(redact("SELECT $1, ?"), "SELECT $1, ?");
        assert_eq!(redact("SELECT 'unterminated"), "SELECT '?'");
    }

    #[test]
    fn long_statements_are_cut() {
        let sql = format!("SELECT {}", "x, ".repeat(2_000));
        let kept = redact(&sql);
        assert!(kept.ends_with('…'));
        assert!(kept.chars().count() <= MAX_SQL_CHARS + 1);
    }

    #[test]
    fn only_slow_queries_are_kept_and_only_the_most_recent() {
        let log = QueryLog::new(Duration::from_millis(100));
        log.observe(Duration::from_millis(5), "SELECT fast", false);
        assert!(log.slowest().is_empty());
        for i in 0..(KEPT + 5) {
            let ms = 100 + u64::try_from(i).unwrap();
            log.observe(Duration::from_millis(ms), &format!("SELECT {i}"), false);
        }
        let kept = log.slowest();
        assert_eq!(kept.len(), KEPT);
        // The five oldest made room; the slowest comes first.
        assert_eq!(kept[0].sql, format!("SELECT {}", KEPT + 4));
        assert_eq!(kept.last().unwrap().sql, "SELECT 5");
        assert_eq!(log.queries_total(), 1 + KEPT as u64 + 5);
        assert_eq!(log.slow_total(), KEPT as u64 + 5);
    }
}
