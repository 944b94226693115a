//! Health of the process and the parts it depends on, and the live measurements
//! behind `/monitoring`: request latencies ([`performance`]), slow database queries
//! ([`queries`]) and the process's resident memory.
//!
//! The database check is a real round trip for every call: that is what a load
//! balancer asks about. Calls that arrive while a round trip is in flight share it
//! (single flight), so every answer still reflects a round trip that finished after
//! the call arrived, but a burst of probes costs the database one query, not one each.
//! The storage and job-queue checks touch the disk and run aggregate queries, so their
//! results are reused for a short while; a health probe at thousands of requests a
//! second must not become the load itself.

pub mod performance;
pub mod queries;

use futures::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use ruleiq_db::{DatabaseConnection, DatabaseHealth, database_health, migrations_pending};
use serde::Serialize;
use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    jobs::Jobs,
    ratelimit::{RateLimitBackend, RateLimiter},
};

/// How long a storage or job-queue result is reused.
const SLOW_CHECK_TTL: Duration = Duration::from_secs(5);

/// One component's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentStatus {
    Healthy,
    Degraded,
    Unhealthy,
}

/// The database check.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseCheck {
    pub status: ComponentStatus,
    pub backend: &'static str,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The data directory check.
#[derive(Debug, Clone, Serialize)]
pub struct StorageCheck {
    pub status: ComponentStatus,
    pub writable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The job queue check.
#[derive(Debug, Clone, Serialize)]
pub struct JobsCheck {
    pub status: ComponentStatus,
    pub backend: &'static str,
    pub queued: u64,
    pub running: u64,
    pub failed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The Redis the rate limits are shared through, when one is configured.
#[derive(Debug, Clone, Serialize)]
pub struct RedisCheck {
    pub status: ComponentStatus,
    /// `redis`, or `memory` while Redis does not answer.
    pub rate_limits: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every check, and the overall verdict.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub status: ComponentStatus,
    pub database: DatabaseCheck,
    pub storage: StorageCheck,
    pub jobs: JobsCheck,
    pub redis: Option<RedisCheck>,
}

/// Whether the instance should receive traffic.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub database: bool,
    pub pending_migrations: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
struct SlowChecks {
    at: Instant,
    storage: StorageCheck,
    jobs: JobsCheck,
}

/// Runs health checks.
#[derive(Debug, Clone)]
pub struct Monitor {
    db: DatabaseConnection,
    backend: &'static str,
    data_dir: PathBuf,
    jobs: Jobs,
    cache: Arc<Mutex<Option<SlowChecks>>>,
    in_flight: Arc<Mutex<Option<InFlight>>>,
    generations: Arc<AtomicU64>,
    limiter: Option<Arc<dyn RateLimiter>>,
    files: Option<crate::evidence::store::BlobStore>,
}

/// The database round trip currently under way, shared by every caller that arrives
/// before it finishes.
#[derive(Clone)]
struct InFlight {
    generation: u64,
    round_trip: Shared<BoxFuture<'static, DatabaseHealth>>,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InFlight({})", self.generation)
    }
}

impl Monitor {
    /// A monitor of these components.
    #[must_use]
    pub fn new(
        db: DatabaseConnection,
        backend: &'static str,
        data_dir: PathBuf,
        jobs: Jobs,
    ) -> Self {
        Self {
            db,
            backend,
            data_dir,
            jobs,
            cache: Arc::new(Mutex::new(None)),
            in_flight: Arc::new(Mutex::new(None)),
            generations: Arc::new(AtomicU64::new(0)),
            limiter: None,
            files: None,
        }
    }

    /// Also checks that the evidence file store (a directory or an S3 bucket) accepts
    /// writes.
    #[must_use]
    pub fn with_files(mut self, files: crate::evidence::store::BlobStore) -> Self {
        self.files = Some(files);
        self
    }

    /// Also reports on the rate limiter's Redis, when it uses one.
    #[must_use]
    pub fn with_rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    fn redis_check(&self) -> Option<RedisCheck> {
        match self.limiter.as_ref()?.backend() {
            RateLimitBackend::Memory => None,
            RateLimitBackend::Redis => Some(RedisCheck {
                status: ComponentStatus::Healthy,
                rate_limits: "redis",
                error: None,
            }),
            RateLimitBackend::RedisFallback { error } => Some(RedisCheck {
                status: ComponentStatus::Degraded,
                rate_limits: "memory",
                error: Some(error),
            }),
        }
    }

    /// One database round trip, joined with any already in flight.
    async fn round_trip(&self) -> DatabaseHealth {
        let joined = {
            let Ok(mut slot) = self.in_flight.lock() else {
                return database_health(&self.db).await;
            };
            match slot.as_ref() {
                Some(running) => running.clone(),
                None => {
                    let db = self.db.clone();
                    let generation = self.generations.fetch_add(1, Ordering::Relaxed);
                    let started = InFlight {
                        generation,
                        round_trip: async move { database_health(&db).await }.boxed().shared(),
                    };
                    *slot = Some(started.clone());
                    started
                }
            }
        };
        let result = joined.round_trip.clone().await;
        // The first caller back clears the slot, so the next call starts a new trip.
        if let Ok(mut slot) = self.in_flight.lock()
            && slot
                .as_ref()
                .is_some_and(|r| r.generation == joined.generation)
        {
            *slot = None;
        }
        result
    }

    /// Checks every component. The database is unhealthy → the whole is; any other
    /// component unwell → degraded.
    pub async fn health(&self) -> HealthReport {
        let db = self.round_trip().await;
        let database = DatabaseCheck {
            status: if db.ok {
                ComponentStatus::Healthy
            } else {
                ComponentStatus::Unhealthy
            },
            backend: self.backend,
            latency_ms: (db.latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            error: db.error,
        };
        let slow = self.slow_checks(db.ok).await;
        let redis = self.redis_check();
        let status = if database.status == ComponentStatus::Unhealthy {
            ComponentStatus::Unhealthy
        } else if slow.storage.status != ComponentStatus::Healthy
            || slow.jobs.status != ComponentStatus::Healthy
            || redis
                .as_ref()
                .is_some_and(|r| r.status != ComponentStatus::Healthy)
        {
            ComponentStatus::Degraded
        } else {
            ComponentStatus::Healthy
        };
        HealthReport {
            status,
            database,
            storage: slow.storage,
            jobs: slow.jobs,
            redis,
        }
    }

    async fn slow_checks(&self, db_ok: bool) -> SlowChecks {
        if let Ok(guard) = self.cache.lock()
            && let Some(cached) = guard.as_ref()
            && cached.at.elapsed() < SLOW_CHECK_TTL
        {
            return cached.clone();
        }
        let mut storage = check_storage(self.data_dir.clone()).await;
        if storage.writable
            && let Some(files) = &self.files
        {
            let probe = tokio::time::timeout(Duration::from_secs(5), files.check_writable()).await;
            let error = match probe {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("file storage: {e}")),
                Err(_) => Some("file storage did not answer within 5 s".to_owned()),
            };
            if let Some(e) = error {
                storage = StorageCheck {
                    status: ComponentStatus::Degraded,
                    writable: false,
                    error: Some(e),
                };
            }
        }
        let jobs = if db_ok {
            match self.jobs.counts().await {
                Ok(c) => JobsCheck {
                    status: ComponentStatus::Healthy,
                    backend: self.jobs.queue_backend(),
                    queued: c.queued,
                    running: c.running,
                    failed: c.failed,
                    error: None,
                },
                Err(e) => self.jobs_unknown(e.to_string()),
            }
        } else {
            self.jobs_unknown("database unreachable".into())
        };
        let fresh = SlowChecks {
            at: Instant::now(),
            storage,
            jobs,
        };
        if let Ok(mut guard) = self.cache.lock() {
            *guard = Some(fresh.clone());
        }
        fresh
    }

    fn jobs_unknown(&self, error: String) -> JobsCheck {
        JobsCheck {
            status: ComponentStatus::Degraded,
            backend: self.jobs.queue_backend(),
            queued: 0,
            running: 0,
            failed: 0,
            error: Some(error),
        }
    }

    /// Readiness: the database answers and every migration has been applied.
    pub async fn readiness(&self) -> Readiness {
        let db = database_health(&self.db).await;
        if !db.ok {
            return Readiness {
                ready: false,
                database: false,
                pending_migrations: Vec::new(),
                error: db.error,
            };
        }
        match migrations_pending(&self.db).await {
            Ok(pending) => Readiness {
                ready: pending.is_empty(),
                database: true,
                pending_migrations: pending,
                error: None,
            },
            Err(e) => Readiness {
                ready: false,
                database: true,
                pending_migrations: Vec::new(),
                error: Some(e.to_string()),
            },
        }
    }
}

/// Whether files can be created in the data directory. Blocking file I/O runs off the
/// async threads.
async fn check_storage(dir: PathBuf) -> StorageCheck {
    let result = tokio::task::spawn_blocking(move || probe_writable(&dir)).await;
    match result {
        Ok(Ok(())) => StorageCheck {
            status: ComponentStatus::Healthy,
            writable: true,
            error: None,
        },
        Ok(Err(e)) => StorageCheck {
            status: ComponentStatus::Degraded,
            writable: false,
            error: Some(e),
        },
        Err(e) => StorageCheck {
            status: ComponentStatus::Degraded,
            writable: false,
            error: Some(e.to_string()),
        },
    }
}

/// Creates, writes and removes a probe file in `dir`.
///
/// # Errors
/// A message saying which step failed.
pub fn probe_writable(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"ok").map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    std::fs::remove_file(&probe).map_err(|e| format!("cannot remove {}: {e}", probe.display()))
}

/// The process's resident memory (`VmRSS`) in bytes, on Linux; `None` elsewhere or
/// when `/proc` cannot be read. Reading `/proc/self/status` is answered from kernel
/// memory without touching a disk, so it is safe on the async threads.
#[must_use]
pub fn resident_memory_bytes() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// The `VmRSS:` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let rest = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut parts = rest.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => value.checked_mul(1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\truleiq\nVmPeak:\t  200000 kB\nVmRSS:\t   51234 kB\nThreads:\t8\n";
        assert_eq!(parse_vm_rss(status), Some(51_234 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn this_process_reports_its_memory_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_memory_bytes().is_some_and(|b| b > 0));
        } else {
            assert_eq!(resident_memory_bytes(), None);
        }
    }
}
