//! Who is told what, and when: the daily sweep, the Monday digest, approvals and
//! ready reports.
//!
//! Dedupe keys name the event, so each is told once per member:
//! - `evidence_expiring:{id}:{30|7}:{expiry date}` — the expiry date is part of the
//!   key so that evidence renewed with a new date is warned about again;
//! - `task_due:{id}:{due date}` and `task_overdue:{id}:{due date}` — once per task and
//!   due date, not every day it stays overdue; moving the date re-arms both;
//! - `approval_requested:{policy|evidence}:{id}:{submitted at}` and
//!   `approval_decided:{…}:{id}:{decided at}` — each round of review is its own event;
//! - `report_ready:{report id}`; `weekly_digest:{ISO year}-W{ISO week}`.

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, Utc};
use ruleiq_core::{OrganizationId, Permission, Role, UserId};
use ruleiq_db::repositories::notifications as repo;
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

use super::{Delivered, Kind, Member, Notice, NotificationError, Notifications};

/// Rows read per query by the sweeps.
const BATCH: u64 = 500;
/// How far ahead evidence expiry is announced, and the nearer reminder.
const FIRST_WARNING_DAYS: i64 = 30;
const LAST_WARNING_DAYS: i64 = 7;
/// Items listed by name in a digest, of each sort.
const DIGEST_ITEMS: u64 = 10;

/// What one sweep told people.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub evidence_expiring: Delivered,
    pub task_due: Delivered,
    pub task_overdue: Delivered,
}

/// What one digest run sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DigestReport {
    /// Digests newly sent (or stored, for members with e-mail on and the app off).
    pub sent: Delivered,
    /// Members with the digest's e-mail off, or with nothing to report.
    pub skipped: u64,
}

/// What went through review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reviewed {
    Policy,
    Evidence,
}

impl Reviewed {
    fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::Evidence => "evidence",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::Evidence => "evidence",
        }
    }

    fn link(self, id: Uuid) -> String {
        match self {
            Self::Policy => format!("/policies/{id}"),
            Self::Evidence => format!("/evidence/{id}"),
        }
    }
}

/// One round of review: what, which item, who acted and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub what: Reviewed,
    pub id: Uuid,
    pub title: String,
    /// Who submitted or decided.
    pub by: UserId,
    /// When they did: part of the dedupe key.
    pub at: DateTime<Utc>,
}

/// How a review ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Rejected {
        comment: Option<String>,
    },
    /// A policy taken out of review back to draft.
    Returned,
}

fn date(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

fn in_days(days: i64) -> String {
    match days {
        0 => "today".to_owned(),
        1 => "tomorrow".to_owned(),
        n => format!("in {n} days"),
    }
}

/// Owners and admins: who hears of what has nobody else to hear of it.
fn managers(members: &[Member]) -> Vec<Uuid> {
    members
        .iter()
        .filter(|m| matches!(m.role, Some(Role::Owner | Role::Admin)))
        .map(|m| m.user_id)
        .collect()
}

impl Notifications {
    /// The organisation's members, read once per organisation per run.
    async fn members_cached<'a>(
        &self,
        cache: &'a mut HashMap<Uuid, Vec<Member>>,
        org: Uuid,
    ) -> Result<&'a [Member], NotificationError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(org) {
            slot.insert(self.members(org).await?);
        }
        Ok(cache.get(&org).map_or(&[][..], Vec::as_slice))
    }

    /// The daily sweep over every organisation at `now`: evidence expiring within 30
    /// and within 7 days (to whoever added it, or, if they have left, the owners and
    /// admins), and assigned tasks due today or tomorrow or overdue (to the assignee;
    /// unassigned tasks are the dashboard's business). Safe to run any number of
    /// times: each event is told once.
    ///
    /// # Errors
    /// On a database error; what was told before it stays told.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<SweepReport, NotificationError> {
        let mut report = SweepReport::default();
        let mut cache = HashMap::new();
        let today = now.date_naive();

        let until = now + Duration::days(FIRST_WARNING_DAYS);
        let mut after = None;
        loop {
            let items = repo::expiring_evidence(&self.db, now, until, after, BATCH).await?;
            after = items.last().map(|e| e.id);
            for item in &items {
                let Some(expires) = item.expires_at else {
                    continue;
                };
                let members = self
                    .members_cached(&mut cache, item.organization_id)
                    .await?;
                let author = item
                    .created_by
                    .filter(|a| members.iter().any(|m| m.user_id == *a));
                let recipients = author.map_or_else(|| managers(members), |a| vec![a]);
                let day = expires.date_naive();
                let left = (day - today).num_days();
                let mut windows = vec![FIRST_WARNING_DAYS];
                if expires <= now + Duration::days(LAST_WARNING_DAYS) {
                    windows.push(LAST_WARNING_DAYS);
                }
                for window in windows {
                    let title = one_title(&item.title);
                    let notice = Notice {
                        kind: Kind::EvidenceExpiring,
                        title: format!("Evidence expires within {window} days: {title}"),
                        body: format!(
                            "“{title}” expires on {} ({}). Add a new version or replace it before then, so the controls it backs stay covered.",
                            date(day),
                            in_days(left),
                        ),
                        link: Some(format!("/evidence/{}", item.id)),
                        subject_id: Some(item.id),
                        dedupe_key: format!("evidence_expiring:{}:{window}:{day}", item.id),
                    };
                    report.evidence_expiring += self
                        .notify_members(item.organization_id, members, &recipients, &notice)
                        .await?;
                }
            }
            if (items.len() as u64) < BATCH {
                break;
            }
        }

        let tomorrow = today + Days::new(1);
        let mut after = None;
        loop {
            let tasks = repo::open_assigned_tasks(&self.db, tomorrow, after, BATCH).await?;
            after = tasks.last().map(|t| t.id);
            for task in &tasks {
                let Some(assignee) = task.assignee_id else {
                    continue;
                };
                let members = self
                    .members_cached(&mut cache, task.organization_id)
                    .await?;
                let name = format!("{} {}", task.reference, one_title(&task.title));
                let overdue = task.due_date < today;
                let notice = if overdue {
                    Notice {
                        kind: Kind::TaskOverdue,
                        title: format!("Overdue: {name}"),
                        body: format!(
                            "The task “{name}” was due on {} and is not done yet. Finish it, or move its due date if the plan has changed.",
                            date(task.due_date)
                        ),
                        link: Some(format!("/plans/{}", task.plan_id)),
                        subject_id: Some(task.id),
                        dedupe_key: format!("task_overdue:{}:{}", task.id, task.due_date),
                    }
                } else {
                    let when = in_days((task.due_date - today).num_days());
                    Notice {
                        kind: Kind::TaskDue,
                        title: format!("Due {when}: {name}"),
                        body: format!("The task “{name}” is due {when} ({}).", date(task.due_date)),
                        link: Some(format!("/plans/{}", task.plan_id)),
                        subject_id: Some(task.id),
                        dedupe_key: format!("task_due:{}:{}", task.id, task.due_date),
                    }
                };
                let told = self
                    .notify_members(task.organization_id, members, &[assignee], &notice)
                    .await?;
                if overdue {
                    report.task_overdue += told;
                } else {
                    report.task_due += told;
                }
            }
            if (tasks.len() as u64) < BATCH {
                break;
            }
        }
        Ok(report)
    }

    /// The weekly digest at `now`, for every active member with the digest's e-mail
    /// on: their unread notices of the past seven days, their open tasks and those due
    /// within seven days. Members with nothing to report get nothing. Once per ISO week.
    ///
    /// # Errors
    /// On a database error; digests sent before it stay sent.
    pub async fn digest(&self, now: DateTime<Utc>) -> Result<DigestReport, NotificationError> {
        let mut report = DigestReport::default();
        let week = now.iso_week();
        let key = format!("weekly_digest:{}-W{:02}", week.year(), week.week());
        let today = now.date_naive();
        let soon = today + Days::new(7);
        let mut after = None;
        loop {
            let members = repo::active_members(&self.db, after, BATCH).await?;
            after = members.last().map(|(m, _)| m.id);
            for (membership, user) in &members {
                let org = membership.organization_id;
                let chosen = repo::preferences(&self.db, org, &[user.id]).await?;
                if !super::channels_of(&chosen, user.id, Kind::WeeklyDigest).email {
                    report.skipped += 1;
                    continue;
                }
                let (unread, newest) = repo::unread_since(
                    &self.db,
                    org,
                    user.id,
                    now - Duration::days(7),
                    DIGEST_ITEMS,
                )
                .await?;
                let (open, due_soon, soonest) =
                    repo::open_tasks_of(&self.db, org, user.id, soon, DIGEST_ITEMS).await?;
                if unread == 0 && open == 0 {
                    report.skipped += 1;
                    continue;
                }
                let mut body = format!(
                    "Your week in ruleIQ: {unread} unread notification{} from the past seven days, {open} open task{} assigned to you, {due_soon} of them due by {}.\n",
                    plural(unread),
                    plural(open),
                    date(soon),
                );
                if !newest.is_empty() {
                    body.push_str("\nUnread:\n");
                    for n in &newest {
                        body.push_str(&format!("- {}\n", n.title));
                    }
                }
                if !soonest.is_empty() {
                    body.push_str("\nYour open tasks, soonest first:\n");
                    for t in &soonest {
                        let late = if t.due_date < today { " (overdue)" } else { "" };
                        body.push_str(&format!(
                            "- {} {}: due {}{late}\n",
                            t.reference,
                            one_title(&t.title),
                            date(t.due_date)
                        ));
                    }
                }
                let notice = Notice {
                    kind: Kind::WeeklyDigest,
                    title: format!(
                        "Your weekly summary: {unread} unread, {open} open task{}",
                        plural(open)
                    ),
                    body,
                    link: Some("/notifications".to_owned()),
                    subject_id: None,
                    dedupe_key: key.clone(),
                };
                let member = Member {
                    user_id: user.id,
                    email: user.email.clone(),
                    name: user.full_name.clone(),
                    role: membership.role.parse().ok(),
                };
                report.sent += self
                    .notify_members(org, &[member], &[user.id], &notice)
                    .await?;
            }
            if (members.len() as u64) < BATCH {
                break;
            }
        }
        Ok(report)
    }

    /// Tells the members who may approve (`compliance:approve`) that `review` waits
    /// for them, except its submitter and those listed in `exclude` (authors, who may
    /// not approve their own work). Called after the submission is committed: a
    /// failure is logged, never returned, so it cannot undo or fail the submission.
    pub async fn approval_requested(&self, org: OrganizationId, review: &Review, exclude: &[Uuid]) {
        if let Err(e) = self.try_approval_requested(org, review, exclude).await {
            tracing::error!(error = %e, what = review.what.as_str(), id = %review.id, "could not notify approvers of a submission");
        }
    }

    async fn try_approval_requested(
        &self,
        org: OrganizationId,
        review: &Review,
        exclude: &[Uuid],
    ) -> Result<Delivered, NotificationError> {
        let members = self.members(org.as_uuid()).await?;
        let by = review.by.as_uuid();
        let submitter = members
            .iter()
            .find(|m| m.user_id == by)
            .map_or("A member", |m| m.name.as_str());
        let approvers: Vec<Uuid> = members
            .iter()
            .filter(|m| {
                m.role
                    .is_some_and(|r| r.allows(Permission::ComplianceApprove))
            })
            .map(|m| m.user_id)
            .filter(|id| *id != by && !exclude.contains(id))
            .collect();
        let title = one_title(&review.title);
        let noun = review.what.noun();
        let notice = Notice {
            kind: Kind::ApprovalRequested,
            title: format!("Approval requested: {title}"),
            body: format!(
                "{submitter} submitted the {noun} “{title}” for review. Approve it, or reject it with a reason, from its page."
            ),
            link: Some(review.what.link(review.id)),
            subject_id: Some(review.id),
            dedupe_key: format!(
                "approval_requested:{}:{}:{}",
                review.what.as_str(),
                review.id,
                review.at.timestamp_micros()
            ),
        };
        self.notify_members(org.as_uuid(), &members, &approvers, &notice)
            .await
    }

    /// Tells `recipients` (the item's authors and submitter; the decider is left out)
    /// how `review` ended. Called after the decision is committed: a failure is logged,
    /// never returned.
    pub async fn approval_decided(
        &self,
        org: OrganizationId,
        review: &Review,
        decision: &Decision,
        recipients: &[Uuid],
    ) {
        if let Err(e) = self
            .try_approval_decided(org, review, decision, recipients)
            .await
        {
            tracing::error!(error = %e, what = review.what.as_str(), id = %review.id, "could not notify authors of a review decision");
        }
    }

    async fn try_approval_decided(
        &self,
        org: OrganizationId,
        review: &Review,
        decision: &Decision,
        recipients: &[Uuid],
    ) -> Result<Delivered, NotificationError> {
        let members = self.members(org.as_uuid()).await?;
        let by = review.by.as_uuid();
        let decider = members
            .iter()
            .find(|m| m.user_id == by)
            .map_or("A member", |m| m.name.as_str());
        let to: Vec<Uuid> = recipients.iter().copied().filter(|r| *r != by).collect();
        let title = one_title(&review.title);
        let noun = review.what.noun();
        let (verb, extra) = match decision {
            Decision::Approved => ("approved", String::new()),
            Decision::Rejected { comment } => (
                "rejected",
                comment
                    .as_deref()
                    .map(|c| format!(" Their reason: {}", c.trim()))
                    .unwrap_or_default(),
            ),
            Decision::Returned => (
                "returned to draft",
                " Edit it and submit it again when it is ready.".to_owned(),
            ),
        };
        let notice = Notice {
            kind: Kind::ApprovalDecided,
            title: format!("{}: {title}", capitalise(verb)),
            body: format!("{decider} {verb} the {noun} “{title}”.{extra}"),
            link: Some(review.what.link(review.id)),
            subject_id: Some(review.id),
            dedupe_key: format!(
                "approval_decided:{}:{}:{}",
                review.what.as_str(),
                review.id,
                review.at.timestamp_micros()
            ),
        };
        self.notify_members(org.as_uuid(), &members, &to, &notice)
            .await
    }

    /// Tells `recipients` (members of `org`) that report `report_id`, titled `title`, is
    /// ready to download. Once per report and member.
    ///
    /// # Errors
    /// On a database error.
    pub async fn report_ready(
        &self,
        org: OrganizationId,
        report_id: Uuid,
        title: &str,
        recipients: &[Uuid],
    ) -> Result<Delivered, NotificationError> {
        let title = one_title(title);
        let notice = Notice {
            kind: Kind::ReportReady,
            title: format!("Report ready: {title}"),
            body: format!("The report “{title}” is ready to download."),
            link: Some(format!("/reports/{report_id}")),
            subject_id: Some(report_id),
            dedupe_key: format!("report_ready:{report_id}"),
        };
        self.notify(org, recipients, &notice).await
    }
}

fn one_title(s: &str) -> String {
    super::one_line(s)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates_read_as_words() {
        assert_eq!(in_days(0), "today");
        assert_eq!(in_days(1), "tomorrow");
        assert_eq!(in_days(5), "in 5 days");
        let d = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        assert_eq!(date(d), "2 December 2026");
        assert_eq!(capitalise("returned to draft"), "Returned to draft");
        assert_eq!(plural(1), "");
        assert_eq!(plural(2), "s");
    }

    #[test]
    fn owners_and_admins_hear_of_orphaned_evidence() {
        let m = |role| Member {
            user_id: Uuid::now_v7(),
            email: "x@example.com".into(),
            name: "X".into(),
            role: Some(role),
        };
        let members = [m(Role::Owner), m(Role::Contributor), m(Role::Admin)];
        let got = managers(&members);
        assert_eq!(got, vec![members[0].user_id, members[2].user_id]);
    }
}
