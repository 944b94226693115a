//! Every job kind this build can run.

use async_trait::async_trait;
use ruleiq_services::{
    dashboard::Dashboard,
    jobs::{Attempt, JobHandler},
};
use serde::Deserialize;
use std::{collections::HashMap, sync::Arc};

/// The canary: proves that a job travels from the API or CLI through the queue to a
/// worker and back into the status record. `ruleiq jobs test` sends one.
pub const CANARY: &str = "canary";

/// Canary payload. `fail_attempts` makes the first N attempts fail, which exercises
/// retries and the dead state end to end.
#[derive(Debug, Deserialize)]
struct CanaryJob {
    #[serde(default)]
    message: String,
    #[serde(default)]
    fail_attempts: u32,
}

/// Runs [`CANARY`] jobs.
#[derive(Debug, Default)]
pub struct CanaryHandler;

#[async_trait]
impl JobHandler for CanaryHandler {
    async fn run(
        &self,
        attempt: Attempt,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let job: CanaryJob =
            serde_json::from_value(payload).map_err(|e| format!("bad canary payload: {e}"))?;
        if attempt.number <= job.fail_attempts {
            return Err(format!(
                "canary asked to fail its first {} attempts; this was attempt {}",
                job.fail_attempts, attempt.number
            ));
        }
        Ok(serde_json::json!({
            "echo": job.message,
            "attempt": attempt.number,
            "worker_pid": std::process::id(),
        }))
    }
}

/// The daily readiness snapshot every assessed organisation's trend is drawn from.
/// The server queues one a day; `ruleiq readiness snapshot` takes one at once.
pub const READINESS_SNAPSHOT: &str = "readiness_snapshot";

/// Runs [`READINESS_SNAPSHOT`] jobs. Idempotent: a second run on one day keeps the
/// later figures, so a retry or a job queued by two instances does no harm.
#[derive(Debug)]
pub struct ReadinessSnapshotHandler(pub Dashboard);

#[async_trait]
impl JobHandler for ReadinessSnapshotHandler {
    async fn run(
        &self,
        _attempt: Attempt,
        _payload: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let run = self
            .0
            .snapshot()
            .await
            .map_err(|e| format!("readiness snapshot: {e}"))?;
        Ok(serde_json::json!({
            "day": run.day,
            "organizations": run.organizations,
            "frameworks": run.frameworks,
        }))
    }
}

/// The handlers of every kind, for the jobs service.
#[must_use]
pub fn handlers(dashboard: Dashboard) -> HashMap<String, Arc<dyn JobHandler>> {
    let mut map: HashMap<String, Arc<dyn JobHandler>> = HashMap::new();
    map.insert(CANARY.to_owned(), Arc::new(CanaryHandler));
    map.insert(
        READINESS_SNAPSHOT.to_owned(),
        Arc::new(ReadinessSnapshotHandler(dashboard)),
    );
    map
}
