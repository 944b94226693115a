//! Every job kind this build can run.

use async_trait::async_trait;
use ruleiq_services::{
    dashboard::Dashboard,
    evidence::{EXPIRE_JOB, EXTRACT_JOB, SWEEP_JOB, jobs::Upkeep},
    jobs::{Attempt, JobHandler},
    notifications::{self, Notifications},
    policies::{GENERATE_JOB, GenerateJob, PolicyWriter},
    reports::{self, ReportWriter},
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

/// Which version of which item to extract text from.
#[derive(Debug, Deserialize)]
struct ExtractJob {
    evidence_id: uuid::Uuid,
    version: i32,
}

/// Runs [`EXTRACT_JOB`]: a version's text for search and the assistant. A file the
/// parser cannot read is an outcome (`extraction: failed`), not a failed job.
#[derive(Debug)]
pub struct EvidenceExtractHandler(pub Upkeep);

#[async_trait]
impl JobHandler for EvidenceExtractHandler {
    async fn run(
        &self,
        _attempt: Attempt,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let job: ExtractJob =
            serde_json::from_value(payload).map_err(|e| format!("bad extraction payload: {e}"))?;
        let done = self.0.extract(job.evidence_id, job.version).await?;
        serde_json::to_value(done).map_err(|e| e.to_string())
    }
}

/// Runs [`EXPIRE_JOB`]: approved evidence past its date becomes `expired`.
#[derive(Debug)]
pub struct EvidenceExpireHandler(pub Upkeep);

#[async_trait]
impl JobHandler for EvidenceExpireHandler {
    async fn run(
        &self,
        _attempt: Attempt,
        _payload: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let expired = self
            .0
            .expire_due()
            .await
            .map_err(|e| format!("evidence expiry: {e}"))?;
        Ok(serde_json::json!({ "expired": expired }))
    }
}

/// Runs [`SWEEP_JOB`]: abandoned uploads and unreferenced blobs are removed.
#[derive(Debug)]
pub struct EvidenceSweepHandler(pub Upkeep);

#[async_trait]
impl JobHandler for EvidenceSweepHandler {
    async fn run(
        &self,
        _attempt: Attempt,
        _payload: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let swept = self.0.sweep().await?;
        serde_json::to_value(swept).map_err(|e| e.to_string())
    }
}

/// The handlers of every kind, for the jobs service.
#[must_use]
pub fn handlers(
    dashboard: Dashboard,
    upkeep: Upkeep,
    policies: PolicyWriter,
    reports: ReportWriter,
    notifications: Notifications,
) -> HashMap<String, Arc<dyn JobHandler>> {
    let mut map: HashMap<String, Arc<dyn JobHandler>> = HashMap::new();
    map.insert(CANARY.to_owned(), Arc::new(CanaryHandler));
    map.insert(
        READINESS_SNAPSHOT.to_owned(),
        Arc::new(ReadinessSnapshotHandler(dashboard)),
    );
    map.insert(
        EXTRACT_JOB.to_owned(),
        Arc::new(EvidenceExtractHandler(upkeep.clone())),
    );
    map.insert(
        EXPIRE_JOB.to_owned(),
        Arc::new(EvidenceExpireHandler(upkeep.clone())),
    );
    map.insert(SWEEP_JOB.to_owned(), Arc::new(EvidenceSweepHandler(upkeep)));
    map.insert(
        GENERATE_JOB.to_owned(),
        Arc::new(PolicyGenerateHandler(policies)),
    );
    map.insert(
        reports::GENERATE_JOB.to_owned(),
        Arc::new(ReportGenerateHandler(reports.clone())),
    );
    map.insert(
        reports::EXPIRE_JOB.to_owned(),
        Arc::new(ReportExpireHandler(reports)),
    );
    map.insert(
        notifications::SWEEP_JOB.to_owned(),
        Arc::new(NotificationsSweepHandler(notifications.clone())),
    );
    map.insert(
        notifications::DIGEST_JOB.to_owned(),
        Arc::new(NotificationsDigestHandler(notifications)),
    );
    map
}

/// Runs [`notifications::SWEEP_JOB`]: evidence expiring, tasks due and overdue.
/// Idempotent: every event is told once, however often the sweep runs.
#[derive(Debug)]
pub struct NotificationsSweepHandler(pub Notifications);

#[async_trait]
impl JobHandler for NotificationsSweepHandler {
    async fn run(
        &self,
        _attempt: Attempt,
        _payload: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let report = self
            .0
            .sweep(self.0.now())
            .await
            .map_err(|e| format!("notification sweep: {e}"))?;
        serde_json::to_value(report).map_err(|e| e.to_string())
    }
}

/// Runs [`notifications::DIGEST_JOB`]: the weekly digest. Idempotent: one digest per
/// member per ISO week.
#[derive(Debug)]
pub struct NotificationsDigestHandler(pub Notifications);

#[async_trait]
impl JobHandler for NotificationsDigestHandler {
    async fn run(
        &self,
        _attempt: Attempt,
        _payload: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let report = self
            .0
            .digest(self.0.now())
            .await
            .map_err(|e| format!("notification digest: {e}"))?;
        serde_json::to_value(report).map_err(|e| e.to_string())
    }
}

/// Builds a report. Idempotent: a report already ready is left alone. After the
/// last failed attempt the report is marked `failed` with the reason.
#[derive(Debug)]
pub struct ReportGenerateHandler(pub ReportWriter);

#[async_trait]
impl JobHandler for ReportGenerateHandler {
    async fn run(
        &self,
        attempt: Attempt,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let job: reports::GenerateJob =
            serde_json::from_value(payload).map_err(|e| format!("bad report payload: {e}"))?;
        match self.0.run(&job).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if attempt.number >= attempt.max_attempts
                    && let Err(db) = self.0.failed(&job, &e).await
                {
                    tracing::error!(error = %db, "could not mark a report failed");
                }
                Err(e)
            }
        }
    }

    async fn cancelled(&self, payload: serde_json::Value) -> Result<(), String> {
        let job: reports::GenerateJob =
            serde_json::from_value(payload).map_err(|e| format!("bad report payload: {e}"))?;
        self.0
            .failed(&job, "cancelled before it started; generate it again")
            .await
            .map_err(|e| e.to_string())
    }
}

/// Runs [`reports::EXPIRE_JOB`]: reports past their retention become `expired`.
#[derive(Debug)]
pub struct ReportExpireHandler(pub ReportWriter);

#[async_trait]
impl JobHandler for ReportExpireHandler {
    async fn run(
        &self,
        _attempt: Attempt,
        _payload: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let expired = self
            .0
            .expire_due()
            .await
            .map_err(|e| format!("report expiry: {e}"))?;
        Ok(serde_json::json!({ "expired": expired }))
    }
}

/// Writes a policy from its template (and a model, when one is configured and
/// affordable). Idempotent: a policy that is no longer pending is left alone. After
/// the last failed attempt the policy is marked `failed` with the reason, so it does
/// not look pending for ever.
#[derive(Debug)]
pub struct PolicyGenerateHandler(pub PolicyWriter);

#[async_trait]
impl JobHandler for PolicyGenerateHandler {
    async fn run(
        &self,
        attempt: Attempt,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let job: GenerateJob = serde_json::from_value(payload)
            .map_err(|e| format!("bad policy generation payload: {e}"))?;
        match self.0.run_generation(job.clone()).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if attempt.number >= attempt.max_attempts
                    && let Err(db) = self.0.generation_failed(&job, &e).await
                {
                    tracing::error!(error = %db, "could not mark a policy's generation failed");
                }
                Err(e)
            }
        }
    }

    async fn cancelled(&self, payload: serde_json::Value) -> Result<(), String> {
        let job: GenerateJob = serde_json::from_value(payload)
            .map_err(|e| format!("bad policy generation payload: {e}"))?;
        self.0
            .generation_failed(&job, "cancelled before it started; generate it again")
            .await
            .map_err(|e| e.to_string())
    }
}
