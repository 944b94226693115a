//! The dashboard: where the organisation stands and what needs doing, and the daily
//! readiness snapshot its trends are drawn from.
//!
//! Every figure comes from the organisation's own rows. A summary costs a fixed
//! number of queries (eight, plus one for the activity list), whatever the amount of
//! data: counts and lists are bounded in SQL, never by loading everything. It is then
//! kept in memory against the organisation's [`DashboardVersion`] (one single-row
//! query), so a reader sees every change at once, made on any instance, and an
//! unchanged dashboard is not recomputed. The activity list is read afresh each time
//! (one bounded query): sign-ins appear in it, but do not move the version.

use chrono::{DateTime, Days, NaiveDate, Utc};
use ruleiq_core::{Clock, Criticality, OrganizationId};
use ruleiq_db::repositories::readiness::DashboardVersion;
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::{audit_entry, readiness_snapshot},
    repositories::{
        audit as audit_repo, evidence as evidence_repo, plans as plans_repo, readiness as repo,
    },
};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
};
use uuid::Uuid;

use crate::{
    assessments::{Assessments, Readiness},
    plans::{TaskView, task_view},
};

/// How many days of trend the dashboard draws.
pub const TREND_DAYS: u64 = 90;

/// Tasks due within this many days count as upcoming.
pub const UPCOMING_DAYS: u64 = 14;

/// The most tasks listed in each of overdue and upcoming.
const TASKS_LISTED: u64 = 10;

/// A framework's readiness with its trend.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameworkReadiness {
    pub readiness: Readiness,
    /// Oldest first, one point per day a snapshot was taken.
    pub trend: Vec<(NaiveDate, f64)>,
}

/// Open gaps counted by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GapCounts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
}

impl GapCounts {
    /// All open gaps.
    #[must_use]
    pub fn total(&self) -> usize {
        self.critical + self.high + self.medium + self.low
    }

    fn add(&mut self, c: Criticality) {
        match c {
            Criticality::Critical => self.critical += 1,
            Criticality::High => self.high += 1,
            Criticality::Medium => self.medium += 1,
            Criticality::Low => self.low += 1,
        }
    }
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub today: NaiveDate,
    pub overall_score: f64,
    pub frameworks: Vec<FrameworkReadiness>,
    pub open_gaps: GapCounts,
    pub overdue_count: u64,
    pub overdue: Vec<TaskView>,
    pub upcoming_count: u64,
    pub upcoming: Vec<TaskView>,
    /// `None` when the reader may not see the audit trail.
    pub recent_activity: Option<Vec<audit_entry::Model>>,
    /// Live evidence expiring within 30 days (not yet expired).
    pub evidence_expiring_count: u64,
    /// The first of them, soonest first: `(id, title, expires_at)`.
    pub evidence_expiring: Vec<(Uuid, String, DateTime<Utc>)>,
    /// Evidence submitted and awaiting a decision.
    pub pending_approvals: u64,
}

/// What a snapshot run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotRun {
    pub day: NaiveDate,
    pub organizations: usize,
    pub frameworks: usize,
}

/// A computed summary and what it was computed from.
type Kept = (DashboardVersion, NaiveDate, Arc<Summary>);

/// An activity list and the newest audit entry's `seq` when it was read.
type KeptActivity = (Option<i64>, Arc<Vec<audit_entry::Model>>);

/// How many computation locks organisations share: enough that one organisation's
/// recomputation rarely holds up another's, few enough to keep without bookkeeping.
const COMPUTE_LOCKS: usize = 64;

/// The most summaries kept; past it the store starts again (a few kilobytes each).
const MAX_KEPT: usize = 10_000;

/// The dashboard service.
#[derive(Clone)]
pub struct Dashboard {
    db: DatabaseConnection,
    assessments: Assessments,
    clock: Arc<dyn Clock>,
    kept: Arc<Mutex<HashMap<Uuid, Kept>>>,
    /// The activity list, by the newest audit entry it was read at.
    activity: Arc<Mutex<HashMap<Uuid, KeptActivity>>>,
    computing: Arc<[tokio::sync::Mutex<()>]>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

/// The mean of the frameworks' readiness, to one decimal (0 with none assessed).
#[must_use]
pub fn overall(frameworks: &[Readiness]) -> f64 {
    if frameworks.is_empty() {
        return 0.0;
    }
    let mean = frameworks.iter().map(|f| f.readiness_score).sum::<f64>() / frameworks.len() as f64;
    (mean * 10.0).round() / 10.0
}

impl Dashboard {
    #[must_use]
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        let assessments = Assessments::new(db.clone(), clock.clone());
        Self {
            db,
            assessments,
            clock,
            kept: Arc::new(Mutex::new(HashMap::new())),
            activity: Arc::new(Mutex::new(HashMap::new())),
            computing: (0..COMPUTE_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The organisation's dashboard: recomputed only when something it shows changed
    /// (or the day did).
    ///
    /// # Errors
    /// On a database error.
    pub async fn summary(
        &self,
        org: OrganizationId,
        with_activity: bool,
    ) -> Result<Summary, DbErr> {
        let version = repo::dashboard_version(&self.db, org.as_uuid()).await?;
        let mut summary = self
            .readiness_summary(org, version.without_activity())
            .await?;
        if with_activity {
            summary.recent_activity = Some(self.activity(org, version.activity).await?);
        }
        Ok(summary)
    }

    /// The ten newest audit entries, read again only when there is a newer one.
    async fn activity(
        &self,
        org: OrganizationId,
        newest: Option<i64>,
    ) -> Result<Vec<audit_entry::Model>, DbErr> {
        let key = org.as_uuid();
        if let Some((seq, list)) = self.activity.lock().ok().and_then(|k| k.get(&key).cloned())
            && seq == newest
        {
            return Ok((*list).clone());
        }
        let list = audit_repo::list(&self.db, key, None, 10).await?;
        if let Ok(mut kept) = self.activity.lock() {
            if kept.len() >= MAX_KEPT {
                kept.clear();
            }
            // Kept under the newest entry seen before reading: a later one makes the
            // next reader read again.
            kept.insert(key, (newest, Arc::new(list.clone())));
        }
        Ok(list)
    }

    /// The summary without the activity list, kept against its version.
    async fn readiness_summary(
        &self,
        org: OrganizationId,
        version: DashboardVersion,
    ) -> Result<Summary, DbErr> {
        let key = org.as_uuid();
        let today = self.clock.now().date_naive();
        let fresh = |kept: &Mutex<HashMap<Uuid, Kept>>| {
            kept.lock()
                .ok()
                .and_then(|k| k.get(&key).cloned())
                .filter(|(v, day, _)| *v == version && *day == today)
                .map(|(_, _, summary)| (*summary).clone())
        };
        if let Some(summary) = fresh(&self.kept) {
            return Ok(summary);
        }
        // One computation at a time per organisation, in a task of its own: a crowd of
        // readers arriving after a change waits for one result instead of each
        // computing it, and a reader that gives up does not throw the work away.
        let stripe = usize::from(key.as_bytes()[15]) % self.computing.len();
        let _turn = self.computing[stripe].lock().await;
        if let Some(summary) = fresh(&self.kept) {
            return Ok(summary);
        }
        let this = self.clone();
        tokio::spawn(async move {
            let summary = this.compute(org, today).await?;
            // Kept under the version read before computing: a change made meanwhile
            // moves the version, so the next reader recomputes rather than trusting this.
            if let Ok(mut kept) = this.kept.lock() {
                if kept.len() >= MAX_KEPT {
                    kept.clear();
                }
                kept.insert(key, (version, today, Arc::new(summary.clone())));
            }
            Ok(summary)
        })
        .await
        .map_err(|e| DbErr::Custom(format!("dashboard: {e}")))?
    }

    /// Readiness per framework, from the same kept summary as the dashboard.
    ///
    /// # Errors
    /// On a database error.
    pub async fn status(&self, org: OrganizationId) -> Result<Vec<Readiness>, DbErr> {
        Ok(self
            .summary(org, false)
            .await?
            .frameworks
            .into_iter()
            .map(|f| f.readiness)
            .collect())
    }

    async fn compute(&self, org: OrganizationId, today: NaiveDate) -> Result<Summary, DbErr> {
        let org_id = org.as_uuid();
        let latest = self
            .assessments
            .latest_results(org)
            .await
            .map_err(|e| match e {
                crate::assessments::AssessmentError::Db(db) => db,
                other => DbErr::Custom(other.to_string()),
            })?;
        // A gap is closed by a done task of a plan made from the same assessment; one
        // closed in an older round and found open again counts as open.
        let done: HashSet<(Uuid, Uuid)> = plans_repo::done_controls(&self.db, org_id)
            .await?
            .into_iter()
            .collect();
        let mut open_gaps = GapCounts::default();
        for (readiness, results) in &latest {
            for gap in results
                .gaps
                .iter()
                .filter(|g| !done.contains(&(readiness.assessment_id, g.control_id)))
            {
                open_gaps.add(gap.severity);
            }
        }
        let snapshots = repo::since(&self.db, org_id, today - Days::new(TREND_DAYS - 1)).await?;
        let mut trends: BTreeMap<Uuid, Vec<(NaiveDate, f64)>> = BTreeMap::new();
        for s in snapshots {
            trends
                .entry(s.framework_id)
                .or_default()
                .push((s.day, s.readiness_score));
        }
        let readiness: Vec<Readiness> = latest.into_iter().map(|(r, _)| r).collect();
        let overall_score = overall(&readiness);
        // Today's point is the live figure, so the trend moves as soon as an
        // assessment is completed rather than at the next snapshot.
        let frameworks = readiness
            .into_iter()
            .map(|r| {
                let mut trend = trends.remove(&r.framework_id).unwrap_or_default();
                trend.retain(|(day, _)| *day != today);
                trend.push((today, r.readiness_score));
                FrameworkReadiness {
                    trend,
                    readiness: r,
                }
            })
            .collect();
        let horizon = today + Days::new(UPCOMING_DAYS + 1);
        let overdue_count = plans_repo::count_open_due_before(&self.db, org_id, today).await?;
        let due_soon = plans_repo::count_open_due_before(&self.db, org_id, horizon).await?;
        let overdue: Vec<TaskView> =
            plans_repo::open_tasks_due(&self.db, org_id, None, today, TASKS_LISTED)
                .await?
                .into_iter()
                .map(task_view)
                .collect();
        let upcoming: Vec<TaskView> =
            plans_repo::open_tasks_due(&self.db, org_id, Some(today), horizon, TASKS_LISTED)
                .await?
                .into_iter()
                .map(task_view)
                .collect();
        let now = self.clock.now();
        let soon = now + chrono::Duration::days(30);
        let (evidence_expiring_count, pending_approvals) =
            evidence_repo::expiring_and_pending(&self.db, org_id, now, soon).await?;
        let evidence_expiring = evidence_repo::expiring(&self.db, org_id, now, soon, TASKS_LISTED)
            .await?
            .into_iter()
            .filter_map(|e| Some((e.id, e.title, e.expires_at?)))
            .collect();
        Ok(Summary {
            today,
            overall_score,
            frameworks,
            open_gaps,
            overdue_count,
            overdue,
            // Two reads: a task finished between them must not make this negative.
            upcoming_count: due_soon.saturating_sub(overdue_count),
            upcoming,
            recent_activity: None,
            evidence_expiring_count,
            evidence_expiring,
            pending_approvals,
        })
    }

    /// Records every assessed organisation's readiness for today. Taking it twice
    /// on one day keeps the later figures.
    ///
    /// # Errors
    /// On a database error.
    pub async fn snapshot(&self) -> Result<SnapshotRun, DbErr> {
        // Readiness computed afresh: the stored results are the source, not a summary.
        let now = self.clock.now();
        let day = now.date_naive();
        let orgs = repo::assessed_organizations(&self.db).await?;
        let mut frameworks = 0;
        for org in &orgs {
            let rows = self
                .snapshot_rows(OrganizationId::from(*org), day, now)
                .await?;
            frameworks += rows.len();
            repo::upsert(&self.db, rows).await?;
        }
        Ok(SnapshotRun {
            day,
            organizations: orgs.len(),
            frameworks,
        })
    }

    /// Whether today's snapshot is still to be taken: some organisation has been
    /// assessed and nothing has been recorded today.
    ///
    /// # Errors
    /// On a database error.
    pub async fn snapshot_due(&self) -> Result<bool, DbErr> {
        Ok(
            !repo::taken_on(&self.db, self.clock.now().date_naive()).await?
                && !repo::assessed_organizations(&self.db).await?.is_empty(),
        )
    }

    async fn snapshot_rows(
        &self,
        org: OrganizationId,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Vec<readiness_snapshot::Model>, DbErr> {
        let status = self.assessments.status(org).await.map_err(|e| match e {
            crate::assessments::AssessmentError::Db(db) => db,
            other => DbErr::Custom(other.to_string()),
        })?;
        Ok(status
            .into_iter()
            .map(|r| readiness_snapshot::Model {
                id: Uuid::now_v7(),
                organization_id: org.as_uuid(),
                framework_id: r.framework_id,
                day,
                assessment_score: r.assessment_score,
                evidence_coverage: r.evidence_coverage,
                policy_coverage: r.policy_coverage,
                readiness_score: r.readiness_score,
                created_at: now,
            })
            .collect())
    }
}
