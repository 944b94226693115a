//! Implementation plans: a completed assessment's gaps as dated, assignable tasks.
//!
//! One task per gap, most severe first (and, within a severity, controls answered
//! `no` or `unknown` before those answered `partial`). Effort comes from the
//! content's estimate for the control (half of it for a `partial` answer, since part
//! of the work is done); controls imported without an estimate get one by
//! criticality. [`schedule`] dates the tasks.

pub mod schedule;

use chrono::{DateTime, Days, NaiveDate, Utc};
use ruleiq_core::{Clock, Criticality, OrganizationId, UserId};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::{plan, plan_task},
    repositories::readiness::DashboardVersion,
    repositories::{
        assessments as assessments_repo, frameworks as frameworks_repo, identity as identity_repo,
        plans as repo, readiness as readiness_repo,
    },
};
use serde::Serialize;
use std::{collections::HashMap, sync::Arc};
use uuid::Uuid;

use crate::{
    assessments::{Results, scoring::Response},
    audit::{Audit, AuditEvent, ClientInfo},
};

/// Why a plan operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A task's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Todo,
    InProgress,
    Blocked,
    Done,
}

impl TaskStatus {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Todo => "todo",
            Self::InProgress => "in_progress",
            Self::Blocked => "blocked",
            Self::Done => "done",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "in_progress" => Self::InProgress,
            "blocked" => Self::Blocked,
            "done" => Self::Done,
            _ => Self::Todo,
        }
    }

    /// Every status, in the order a plan page shows them.
    pub const ALL: [Self; 4] = [Self::InProgress, Self::Todo, Self::Blocked, Self::Done];
}

/// A task as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    pub id: Uuid,
    pub plan_id: Uuid,
    pub control_id: Uuid,
    #[serde(rename = "ref")]
    pub reference: String,
    pub title: String,
    pub description: String,
    pub priority: Criticality,
    pub response: Response,
    pub status: TaskStatus,
    pub assignee_id: Option<Uuid>,
    pub due_date: NaiveDate,
    pub effort_days: f64,
    pub notes: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A plan as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanView {
    pub id: Uuid,
    pub assessment_id: Uuid,
    pub framework_id: Uuid,
    pub framework_slug: String,
    pub framework_name: String,
    pub title: String,
    /// `active` until every task is done, then `completed`.
    pub status: &'static str,
    pub start_date: NaiveDate,
    pub target_date: Option<NaiveDate>,
    pub projected_end_date: NaiveDate,
    pub target_met: bool,
    pub schedule_note: Option<String>,
    pub tasks_total: usize,
    pub tasks_done: usize,
    pub created_at: DateTime<Utc>,
    /// Empty in lists; every task, in order, for one plan.
    pub tasks: Vec<TaskView>,
}

/// A change to a task; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TaskChange {
    pub status: Option<TaskStatus>,
    /// `Some(None)` unassigns.
    pub assignee_id: Option<Option<Uuid>>,
    pub due_date: Option<NaiveDate>,
    /// `Some(None)` clears the notes.
    pub notes: Option<Option<String>>,
}

/// The plan service.
#[derive(Clone)]
pub struct Plans {
    db: DatabaseConnection,
    audit: Audit,
    clock: Arc<dyn Clock>,
    /// Each organisation's plan list, with the version it was read at.
    kept: Arc<std::sync::Mutex<HashMap<Uuid, KeptList>>>,
}

/// A plan list and the [`DashboardVersion`] it was read at (plans are never edited
/// once made: their number, their tasks and the frameworks' names are what changes).
type KeptList = (DashboardVersion, Arc<Vec<PlanView>>);

impl std::fmt::Debug for Plans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plans").finish_non_exhaustive()
    }
}

const MAX_NOTES: usize = 5_000;

/// How far from today a plan may start or end: far enough for any real plan, near
/// enough that date arithmetic cannot overflow.
const MAX_YEARS: u64 = 10;

/// An estimate for a control its content gives none for, in half days.
fn default_effort(c: Criticality) -> u32 {
    match c {
        Criticality::Critical => 10,
        Criticality::High => 6,
        Criticality::Medium => 4,
        Criticality::Low => 2,
    }
}

fn priority_rank(c: Criticality) -> u8 {
    match c {
        Criticality::Critical => 0,
        Criticality::High => 1,
        Criticality::Medium => 2,
        Criticality::Low => 3,
    }
}

impl Plans {
    #[must_use]
    pub fn new(db: DatabaseConnection, audit: Audit, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            audit,
            clock,
            kept: Arc::default(),
        }
    }

    /// Today by the service's clock: what "overdue" is judged against, here as on
    /// the dashboard.
    #[must_use]
    pub fn today(&self) -> NaiveDate {
        self.clock.now().date_naive()
    }

    /// Turns a completed assessment's gaps into a dated plan.
    ///
    /// # Errors
    /// `NotFound` for an assessment outside the organisation; `Conflict` while it is
    /// in progress; `Invalid` for dates out of range.
    pub async fn create(
        &self,
        org: OrganizationId,
        by: UserId,
        assessment_id: Uuid,
        start_date: Option<NaiveDate>,
        target_date: Option<NaiveDate>,
        client: &ClientInfo,
    ) -> Result<PlanView, PlanError> {
        let org_id = org.as_uuid();
        let a = assessments_repo::find(&self.db, org_id, assessment_id)
            .await?
            .ok_or(PlanError::NotFound(
                "no such assessment in your organisation",
            ))?;
        let results = match (&a.status[..], a.results) {
            ("completed", Some(r)) => serde_json::from_value::<Results>(r)
                .map_err(|e| DbErr::Custom(format!("stored results: {e}")))?,
            _ => {
                return Err(PlanError::Conflict(
                    "complete the assessment first: a plan is made from its results",
                ));
            }
        };
        let now = self.clock.now();
        let today = now.date_naive();
        let start = start_date.unwrap_or(today);
        let in_range = |d: NaiveDate| {
            d >= today - Days::new(365 * MAX_YEARS) && d <= today + Days::new(365 * MAX_YEARS)
        };
        if !in_range(start) {
            return Err(PlanError::Invalid {
                field: "start_date",
                message: "must be within ten years of today",
            });
        }
        if let Some(t) = target_date {
            if !in_range(t) {
                return Err(PlanError::Invalid {
                    field: "target_date",
                    message: "must be within ten years of today",
                });
            }
            if t < start {
                return Err(PlanError::Invalid {
                    field: "target_date",
                    message: "must not be before the start date",
                });
            }
        }
        let ids: Vec<Uuid> = results.gaps.iter().map(|g| g.control_id).collect();
        let efforts: HashMap<Uuid, Option<i32>> = repo::control_efforts(&self.db, &ids)
            .await?
            .into_iter()
            .collect();
        let mut gaps: Vec<(usize, &crate::assessments::GapResult)> =
            results.gaps.iter().enumerate().collect();
        gaps.sort_by_key(|(i, g)| {
            (
                priority_rank(g.severity),
                u8::from(g.response == Response::Partial),
                *i,
            )
        });
        let effort: Vec<u32> = gaps
            .iter()
            .map(|(_, g)| {
                let full = efforts
                    .get(&g.control_id)
                    .copied()
                    .flatten()
                    .and_then(|h| u32::try_from(h).ok())
                    .filter(|h| *h > 0)
                    .unwrap_or_else(|| default_effort(g.severity));
                if g.response == Response::Partial {
                    full.div_ceil(2)
                } else {
                    full
                }
            })
            .collect();
        let dated = schedule::schedule(&effort, start, target_date);
        let framework = frameworks_repo::by_ids(&self.db, &[a.framework_id])
            .await?
            .into_iter()
            .next()
            .ok_or(PlanError::NotFound("the assessment's framework is gone"))?;
        let id = Uuid::now_v7();
        let row = plan::Model {
            id,
            organization_id: org_id,
            assessment_id,
            framework_id: a.framework_id,
            title: format!("{} implementation plan", framework.name),
            start_date: start,
            target_date,
            projected_end_date: dated.end,
            target_met: dated.target_met,
            schedule_note: Some(dated.note.clone()),
            created_by: Some(by.as_uuid()),
            created_at: now,
            updated_at: now,
        };
        let tasks: Vec<plan_task::Model> = gaps
            .iter()
            .zip(&effort)
            .zip(&dated.due)
            .enumerate()
            .map(|(i, (((_, g), &half_days), &due))| plan_task::Model {
                id: Uuid::now_v7(),
                organization_id: org_id,
                plan_id: id,
                control_id: g.control_id,
                reference: g.reference.clone(),
                title: g.title.clone(),
                description: g.recommendation.clone(),
                priority: g.severity.as_str().to_owned(),
                response: response_str(g.response).to_owned(),
                position: i32::try_from(i).unwrap_or(i32::MAX),
                status: "todo".into(),
                assignee_id: None,
                due_date: due,
                effort_half_days: i32::try_from(half_days).unwrap_or(i32::MAX),
                notes: None,
                completed_at: None,
                created_at: now,
                updated_at: now,
            })
            .collect();
        let txn = ruleiq_db::begin(&self.db).await?;
        repo::insert(&txn, row.clone(), tasks.clone()).await?;
        txn.commit().await?;
        self.audit
            .record(
                AuditEvent::new("plan.created", Some(org_id), Some(by.as_uuid()))
                    .target("plan", id)
                    .details(serde_json::json!({
                        "assessment_id": assessment_id,
                        "tasks": tasks.len(),
                        "start_date": start,
                        "target_date": target_date,
                        "target_met": dated.target_met,
                    })),
                client,
            )
            .await?;
        Ok(plan_view(
            row,
            &framework,
            tasks.into_iter().map(task_view).collect(),
            None,
        ))
    }

    /// The organisation's plans, newest first, without their tasks: one query when
    /// nothing changed since the last reader, three more otherwise, however many plans
    /// and tasks there are.
    ///
    /// # Errors
    /// On a database error.
    pub async fn list(&self, org: OrganizationId) -> Result<Vec<PlanView>, PlanError> {
        let key = org.as_uuid();
        let version = readiness_repo::dashboard_version(&self.db, key)
            .await?
            .without_activity();
        if let Some((v, list)) = self.kept.lock().ok().and_then(|k| k.get(&key).cloned())
            && v == version
        {
            return Ok((*list).clone());
        }
        let list = self.read_list(org).await?;
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() >= 10_000 {
                kept.clear();
            }
            // Under the version read before: a change meanwhile moves it.
            kept.insert(key, (version, Arc::new(list.clone())));
        }
        Ok(list)
    }

    async fn read_list(&self, org: OrganizationId) -> Result<Vec<PlanView>, PlanError> {
        let plans = repo::list(&self.db, org.as_uuid()).await?;
        let mut counts: HashMap<Uuid, (usize, usize)> = HashMap::new();
        for c in repo::task_counts(&self.db, org.as_uuid()).await? {
            let n = usize::try_from(c.count).unwrap_or(0);
            let entry = counts.entry(c.plan_id).or_default();
            entry.0 += n;
            if c.status == "done" {
                entry.1 += n;
            }
        }
        let mut ids: Vec<Uuid> = plans.iter().map(|p| p.framework_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let frameworks: HashMap<Uuid, _> = frameworks_repo::by_ids(&self.db, &ids)
            .await?
            .into_iter()
            .map(|f| (f.id, f))
            .collect();
        Ok(plans
            .into_iter()
            .filter_map(|p| {
                let f = frameworks.get(&p.framework_id)?;
                let count = counts.get(&p.id).copied().unwrap_or_default();
                Some(plan_view(p, f, Vec::new(), Some(count)))
            })
            .collect())
    }

    /// One plan with its tasks.
    ///
    /// # Errors
    /// `NotFound` outside the organisation.
    pub async fn get(&self, org: OrganizationId, id: Uuid) -> Result<PlanView, PlanError> {
        let p = repo::find(&self.db, org.as_uuid(), id)
            .await?
            .ok_or(PlanError::NotFound("no such plan in your organisation"))?;
        let framework = frameworks_repo::by_ids(&self.db, &[p.framework_id])
            .await?
            .into_iter()
            .next()
            .ok_or(PlanError::NotFound("the plan's framework is gone"))?;
        let tasks = repo::tasks(&self.db, org.as_uuid(), id).await?;
        Ok(plan_view(
            p,
            &framework,
            tasks.into_iter().map(task_view).collect(),
            None,
        ))
    }

    /// Changes a task (audited, with what changed).
    ///
    /// # Errors
    /// `NotFound` for a plan or task outside the organisation; `Invalid` for an
    /// assignee who is not an active member, a due date out of range or long notes.
    pub async fn update_task(
        &self,
        org: OrganizationId,
        by: UserId,
        plan_id: Uuid,
        task_id: Uuid,
        change: TaskChange,
        client: &ClientInfo,
    ) -> Result<TaskView, PlanError> {
        let org_id = org.as_uuid();
        let mut task = repo::find_task(&self.db, org_id, plan_id, task_id)
            .await?
            .ok_or(PlanError::NotFound("no such task in this plan"))?;
        let before = task.clone();
        let now = self.clock.now();
        if let Some(Some(user)) = change.assignee_id {
            let member = identity_repo::member(&self.db, org_id, user).await?;
            if !member.is_some_and(|(_, u)| u.is_active) {
                return Err(PlanError::Invalid {
                    field: "assignee_id",
                    message: "must be an active member of your organisation",
                });
            }
        }
        if let Some(due) = change.due_date {
            let today = now.date_naive();
            if due < today - Days::new(365 * MAX_YEARS) || due > today + Days::new(365 * MAX_YEARS)
            {
                return Err(PlanError::Invalid {
                    field: "due_date",
                    message: "must be within ten years of today",
                });
            }
            task.due_date = due;
        }
        if let Some(notes) = change.notes {
            let notes = notes.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
            if notes
                .as_ref()
                .is_some_and(|n| n.chars().count() > MAX_NOTES)
            {
                return Err(PlanError::Invalid {
                    field: "notes",
                    message: "must be at most 5,000 characters",
                });
            }
            task.notes = notes;
        }
        if let Some(assignee) = change.assignee_id {
            task.assignee_id = assignee;
        }
        if let Some(status) = change.status {
            task.status = status.as_str().to_owned();
            task.completed_at = match (status, before.completed_at) {
                (TaskStatus::Done, Some(at)) => Some(at),
                (TaskStatus::Done, None) => Some(now),
                _ => None,
            };
        }
        if task == before {
            return Ok(task_view(task));
        }
        task.updated_at = now;
        repo::update_task(&self.db, &before, task.clone()).await?;
        let mut changed = serde_json::Map::new();
        if task.status != before.status {
            changed.insert(
                "status".into(),
                serde_json::json!([before.status, task.status]),
            );
        }
        if task.assignee_id != before.assignee_id {
            changed.insert(
                "assignee_id".into(),
                serde_json::json!([before.assignee_id, task.assignee_id]),
            );
        }
        if task.due_date != before.due_date {
            changed.insert(
                "due_date".into(),
                serde_json::json!([before.due_date, task.due_date]),
            );
        }
        if task.notes != before.notes {
            changed.insert("notes".into(), serde_json::json!("changed"));
        }
        self.audit
            .record(
                AuditEvent::new("plan_task.updated", Some(org_id), Some(by.as_uuid()))
                    .target("plan_task", task_id)
                    .details(serde_json::json!({ "plan_id": plan_id, "changed": changed })),
                client,
            )
            .await?;
        Ok(task_view(task))
    }
}

fn plan_view(
    p: plan::Model,
    f: &ruleiq_db::entities::framework::Model,
    tasks: Vec<TaskView>,
    counts: Option<(usize, usize)>,
) -> PlanView {
    let (total, done) = counts.unwrap_or_else(|| {
        (
            tasks.len(),
            tasks
                .iter()
                .filter(|t| t.status == TaskStatus::Done)
                .count(),
        )
    });
    PlanView {
        id: p.id,
        assessment_id: p.assessment_id,
        framework_id: f.id,
        framework_slug: f.slug.clone(),
        framework_name: f.name.clone(),
        title: p.title,
        status: if done == total { "completed" } else { "active" },
        start_date: p.start_date,
        target_date: p.target_date,
        projected_end_date: p.projected_end_date,
        target_met: p.target_met,
        schedule_note: p.schedule_note,
        tasks_total: total,
        tasks_done: done,
        created_at: p.created_at,
        tasks,
    }
}

/// A stored task as shown.
#[must_use]
pub fn task_view(t: plan_task::Model) -> TaskView {
    TaskView {
        id: t.id,
        plan_id: t.plan_id,
        control_id: t.control_id,
        reference: t.reference,
        title: t.title,
        description: t.description,
        priority: t.priority.parse().unwrap_or(Criticality::Medium),
        response: crate::assessments::parse_response(&t.response),
        status: TaskStatus::parse(&t.status),
        assignee_id: t.assignee_id,
        due_date: t.due_date,
        effort_days: f64::from(t.effort_half_days) / 2.0,
        notes: t.notes,
        completed_at: t.completed_at,
    }
}

fn response_str(r: Response) -> &'static str {
    crate::assessments::response_str(r)
}
