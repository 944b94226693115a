//! Retries with jittered backoff, `Retry-After`, and a circuit breaker per provider.
//!
//! Invariants:
//! - 400, 401 and 403 are never retried: the same request would fail the same way;
//! - a `Retry-After` longer than [`MAX_RETRY_AFTER`] is not waited for; the caller
//!   falls back to the next provider instead of keeping a user waiting;
//! - the breaker counts calls, not attempts: one call that used all its retries and
//!   still failed is one failure;
//! - while half-open exactly one trial call is let through, and a trial abandoned
//!   without an outcome (its future dropped) frees the slot for the next caller.

use std::{
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rand::Rng;

use crate::LlmError;

/// First backoff ceiling; doubles with each retry.
pub const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Highest backoff ceiling.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Longest `Retry-After` worth waiting for inside one user request.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// "Full jitter": a uniform wait between zero and the exponential ceiling, so that
/// many clients that failed together do not retry together.
pub fn backoff(retry: u32, rng: &mut impl Rng) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(retry.min(16)))
        .min(BACKOFF_CAP);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.random_range(0..=millis))
}

/// Reads a `Retry-After` header: delay-seconds or an HTTP date (IMF-fixdate).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // Some servers send fractional seconds although the standard says integer.
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`, the only date form HTTP senders may use.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let (_, rest) = value.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's
/// algorithm), to avoid a date crate for one header.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// How many times, and how patiently, one call is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
}

impl RetryPolicy {
    /// Runs `attempt` until it succeeds, fails for good, or the retries run out.
    ///
    /// # Errors
    /// The last attempt's error.
    pub async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<T, LlmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, LlmError>>,
    {
        let mut retry = 0;
        loop {
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if !error.retryable() || retry >= self.max_retries {
                return Err(error);
            }
            let wait = match &error {
                LlmError::RateLimited {
                    retry_after: Some(hint),
                } => {
                    if *hint > MAX_RETRY_AFTER {
                        return Err(error);
                    }
                    *hint
                }
                _ => backoff(retry, &mut rand::rng()),
            };
            tracing::debug!(retry, ?wait, %error, "retrying model call");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }
}

/// Where a provider's circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused at once until the cool-down ends.
    Open,
    /// The cool-down ended: the next call is a trial.
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Option<Instant>,
    trial_running: bool,
    last_error: Option<String>,
}

/// A circuit breaker. Time is passed in, so transitions are testable without sleeping.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    inner: Arc<Mutex<Inner>>,
}

/// Leave to make one call. Report the outcome with [`Permit::success`] or
/// [`Permit::failure`]; dropping it unreported frees a half-open trial slot.
#[derive(Debug)]
pub struct Permit {
    breaker: Breaker,
    trial: bool,
    reported: bool,
}

impl Breaker {
    /// `threshold` consecutive failed calls open it; it stays open for `cool_down`.
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cool_down,
            inner: Arc::new(Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: None,
                trial_running: false,
                last_error: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the counters half-updated in
        // a harmful way, so a poisoned lock is still used.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks to make a call at `now`.
    ///
    /// # Errors
    /// [`LlmError::CircuitOpen`] while open, or while another trial is running.
    pub fn admit(&self, now: Instant) -> Result<Permit, LlmError> {
        let mut inner = self.lock();
        if inner.state == BreakerState::Open
            && inner
                .opened_at
                .is_none_or(|at| now.saturating_duration_since(at) >= self.cool_down)
        {
            inner.state = BreakerState::HalfOpen;
        }
        let trial = match inner.state {
            BreakerState::Closed => false,
            BreakerState::Open => return Err(LlmError::CircuitOpen),
            BreakerState::HalfOpen if inner.trial_running => return Err(LlmError::CircuitOpen),
            BreakerState::HalfOpen => {
                inner.trial_running = true;
                true
            }
        };
        Ok(Permit {
            breaker: self.clone(),
            trial,
            reported: false,
        })
    }

    /// The state as a status page should show it at `now`.
    pub fn state(&self, now: Instant) -> BreakerState {
        let inner = self.lock();
        match (inner.state, inner.opened_at) {
            (BreakerState::Open, Some(at))
                if now.saturating_duration_since(at) >= self.cool_down =>
            {
                BreakerState::HalfOpen
            }
            (state, _) => state,
        }
    }

    /// The last failure in plain words, kept after recovery for the status page.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    fn record_success(&self) {
        let mut inner = self.lock();
        inner.state = BreakerState::Closed;
        inner.failures = 0;
        inner.opened_at = None;
        inner.trial_running = false;
    }

    fn record_failure(&self, error: &LlmError, now: Instant) {
        let mut inner = self.lock();
        inner.failures = inner.failures.saturating_add(1);
        inner.trial_running = false;
        inner.last_error = Some(error.short_reason());
        // A wrong key will not fix itself, so there is no point in more failures
        // before pausing; the cool-down still allows a retry after a key change.
        let open = inner.state == BreakerState::HalfOpen
            || inner.failures >= self.threshold
            || matches!(error, LlmError::Unauthorized(_));
        if open {
            inner.state = BreakerState::Open;
            inner.opened_at = Some(now);
        }
    }
}

impl Permit {
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.record_success();
    }

    pub fn failure(mut self, error: &LlmError, now: Instant) {
        self.reported = true;
        self.breaker.record_failure(error, now);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.trial && !self.reported {
            self.breaker.lock().trial_running = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770); // Sun, 06 Nov 1994 08:49:30 GMT
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 PST", now),
            None
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_835_438_400))
        );
    }

    #[test]
    fn backoff_stays_under_its_exponential_ceiling() {
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 0..20 {
            let ceiling = (BACKOFF_BASE * 2u32.pow(retry.min(10))).min(BACKOFF_CAP);
            for _ in 0..50 {
                assert!(backoff(retry, &mut rng) <= ceiling);
            }
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| backoff(3, &mut rng)).collect();
        assert!(spread.len() > 10, "jitter should spread the waits");
    }

    #[test]
    fn breaker_opens_after_consecutive_failures_and_recovers_through_one_trial() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(30);
        let b = Breaker::new(3, cool);
        let boom = LlmError::Server {
            status: 503,
            message: "down".into(),
        };

        b.admit(t0).unwrap().failure(&boom, t0);
        b.admit(t0).unwrap().failure(&boom, t0);
        // A success in between resets the count: failures must be consecutive.
        b.admit(t0).unwrap().success();
        b.admit(t0).unwrap().failure(&boom, t0);
        b.admit(t0).unwrap().failure(&boom, t0);
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.admit(t0).unwrap().failure(&boom, t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert_eq!(b.last_error().as_deref(), Some("server error 503"));

        let early = t0 + cool - Duration::from_secs(1);
        assert_eq!(b.admit(early).unwrap_err(), LlmError::CircuitOpen);

        let later = t0 + cool;
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        let trial = b.admit(later).unwrap();
        // Only one trial at a time.
        assert_eq!(b.admit(later).unwrap_err(), LlmError::CircuitOpen);
        // A failed trial opens it again for a full cool-down.
        trial.failure(&boom, later);
        assert_eq!(b.state(later), BreakerState::Open);
        assert!(b.admit(later + cool / 2).is_err());

        let trial = b.admit(later + cool).unwrap();
        trial.success();
        assert_eq!(b.state(later + cool), BreakerState::Closed);
        assert!(b.admit(later + cool).is_ok());
    }

    #[test]
    fn unauthorized_opens_at_once() {
        let t0 = Instant::now();
        let b = Breaker::new(5, Duration::from_secs(60));
        b.admit(t0)
            .unwrap()
            .failure(&LlmError::Unauthorized("Incorrect API key".into()), t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert_eq!(b.last_error().as_deref(), Some("invalid API key"));
    }

    #[test]
    fn an_abandoned_trial_frees_the_slot() {
        let t0 = Instant::now();
        let b = Breaker::new(1, Duration::ZERO);
        b.admit(t0).unwrap().failure(&LlmError::Timeout, t0);
        let trial = b.admit(t0).unwrap();
        assert!(b.admit(t0).is_err());
        drop(trial);
        assert!(b.admit(t0).is_ok());
    }

    #[tokio::test]
    async fn retries_stop_at_the_limit_and_never_retry_bad_requests() {
        let policy = RetryPolicy { max_retries: 2 };
        let mut calls = 0;
        let result: Result<(), _> = policy
            .run(|| {
                calls += 1;
                async { Err(LlmError::Timeout) }
            })
            .await;
        assert_eq!(result, Err(LlmError::Timeout));
        assert_eq!(calls, 3);

        let mut calls = 0;
        let _ = policy
            .run(|| {
                calls += 1;
                async { Err::<(), _>(LlmError::Unauthorized("no".into())) }
            })
            .await;
        assert_eq!(calls, 1);

        let mut calls = 0;
        let result = policy
            .run(|| {
                calls += 1;
                async {
                    Err::<(), _>(LlmError::RateLimited {
                        retry_after: Some(Duration::from_secs(120)),
                    })
                }
            })
            .await;
        assert_eq!(calls, 1, "a two-minute Retry-After is not waited for");
        assert!(matches!(result, Err(LlmError::RateLimited { .. })));
    }
}
