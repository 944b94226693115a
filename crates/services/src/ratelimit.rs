//! Request budgets: how many requests a caller may make per minute.
//!
//! Both implementations count in fixed windows: the first request of a key opens a
//! window of one minute, every request in it counts, and the window's end is the reset
//! time. In Redis that is one `INCR` and, for the first, a `PEXPIRE`, run atomically by
//! a Lua script, so any number of server processes on one Redis share one budget. The
//! in-memory limiter counts the same way, so the headers mean the same whichever is in
//! use. (DESIGN.md names governor for memory; its GCRA has no window to report as
//! `X-RateLimit-Reset`, and a second algorithm would make the two backends disagree.)
//!
//! When Redis stops answering, [`FallbackLimiter`] counts in memory, logs the switch
//! once, reports it in health, and goes back to Redis when it answers again.

use async_trait::async_trait;
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the window closes and the budget is whole again.
    pub reset_after: Duration,
}

impl Decision {
    fn from_count(count: u64, limit: u32, reset_after: Duration) -> Self {
        let limit64 = u64::from(limit);
        Self {
            allowed: count <= limit64,
            limit,
            remaining: u32::try_from(limit64.saturating_sub(count)).unwrap_or(0),
            reset_after,
        }
    }
}

/// Counts requests against budgets.
#[async_trait]
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// Counts one request for `key` against `limit` per `window`.
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Decision;

    /// Where counts are kept now: `memory`, `redis`, or `memory (redis unreachable)`.
    fn backend(&self) -> RateLimitBackend;
}

/// Where a limiter keeps its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitBackend {
    Memory,
    Redis,
    /// Redis is configured but did not answer; counting in memory meanwhile.
    RedisFallback {
        error: String,
    },
}

/// Counts in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    windows: Mutex<HashMap<String, (Instant, u64)>>,
}

/// Past this many keys, expired windows are swept on the next hit.
const SWEEP_AT: usize = 10_000;

impl MemoryLimiter {
    /// Counts synchronously; the async trait method wraps this.
    pub fn hit_now(&self, key: &str, limit: u32, window: Duration) -> Decision {
        let now = Instant::now();
        let Ok(mut windows) = self.windows.lock() else {
            // A poisoned lock means a panic elsewhere; fail open rather than refuse all.
            return Decision::from_count(0, limit, window);
        };
        if windows.len() > SWEEP_AT {
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        let reset_after = window.saturating_sub(now.duration_since(entry.0));
        Decision::from_count(entry.1, limit, reset_after)
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Decision {
        self.hit_now(key, limit, window)
    }

    fn backend(&self) -> RateLimitBackend {
        RateLimitBackend::Memory
    }
}

/// `INCR` the key; on its first count give it the window as expiry; answer the count
/// and the milliseconds left.
const SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// Counts in Redis, shared by every process using the same `prefix`; falls back to
/// memory while Redis does not answer.
#[derive(Clone)]
pub struct FallbackLimiter {
    conn: redis::aio::ConnectionManager,
    script: Arc<redis::Script>,
    prefix: String,
    memory: Arc<MemoryLimiter>,
    degraded: Arc<AtomicBool>,
    last_error: Arc<Mutex<String>>,
}

impl std::fmt::Debug for FallbackLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackLimiter")
            .field("prefix", &self.prefix)
            .field("degraded", &self.degraded.load(Ordering::Relaxed))
            .finish()
    }
}

/// How long a Redis round trip may take before the request is counted in memory.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

impl FallbackLimiter {
    /// A limiter on the Redis at `url`, keys under `prefix`.
    ///
    /// # Errors
    /// When the URL is invalid or Redis cannot be reached at start.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            redis::aio::ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| "no answer within 5 s".to_owned())?
        .map_err(|e| e.to_string())?;
        Ok(Self {
            conn,
            script: Arc::new(redis::Script::new(SCRIPT)),
            prefix: prefix.to_owned(),
            memory: Arc::new(MemoryLimiter::default()),
            degraded: Arc::new(AtomicBool::new(false)),
            last_error: Arc::new(Mutex::new(String::new())),
        })
    }

    async fn hit_redis(&self, key: &str, window: Duration) -> Result<(u64, u64), String> {
        let mut conn = self.conn.clone();
        let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let mut invocation = self.script.key(format!("{}{key}", self.prefix));
        invocation.arg(millis);
        let call = invocation.invoke_async::<(u64, i64)>(&mut conn);
        match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok((count, ttl))) => Ok((count, u64::try_from(ttl).unwrap_or(millis))),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", REDIS_TIMEOUT.as_millis())),
        }
    }
}

#[async_trait]
impl RateLimiter for FallbackLimiter {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Decision {
        match self.hit_redis(key, window).await {
            Ok((count, ttl_ms)) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::warn!("Redis answers again; rate limits are shared again");
                }
                Decision::from_count(count, limit, Duration::from_millis(ttl_ms))
            }
            Err(error) => {
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::error!(%error, "Redis is unreachable; counting rate limits in memory until it answers");
                }
                if let Ok(mut last) = self.last_error.lock() {
                    *last = error;
                }
                self.memory.hit_now(key, limit, window)
            }
        }
    }

    fn backend(&self) -> RateLimitBackend {
        if self.degraded.load(Ordering::Relaxed) {
            RateLimitBackend::RedisFallback {
                error: self
                    .last_error
                    .lock()
                    .map(|e| e.clone())
                    .unwrap_or_default(),
            }
        } else {
            RateLimitBackend::Redis
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_counts_in_fixed_windows_per_key() {
        let l = MemoryLimiter::default();
        let w = Duration::from_secs(60);
        for n in 1..=3 {
            let d = l.hit_now("a", 3, w);
            assert!(d.allowed);
            assert_eq!(d.remaining, 3 - n);
        }
        let d = l.hit_now("a", 3, w);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(d.reset_after <= w && d.reset_after > Duration::from_secs(59));
        assert!(l.hit_now("b", 3, w).allowed, "keys are separate");
    }

    #[test]
    fn a_window_resets_when_it_ends() {
        let l = MemoryLimiter::default();
        let w = Duration::from_millis(30);
        assert!(l.hit_now("a", 1, w).allowed);
        assert!(!l.hit_now("a", 1, w).allowed);
        std::thread::sleep(Duration::from_millis(40));
        assert!(l.hit_now("a", 1, w).allowed);
    }
}
