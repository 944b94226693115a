//! Report schedules: a report type and format generated on a five-field cron
//! expression in a time zone, and mailed to its recipients when ready.
//!
//! Each schedule keeps its next run time. A tick claims a due schedule by moving
//! `next_run_at` on with a conditional update (`WHERE next_run_at = <the time it
//! read>`): of several server instances ticking at once exactly one update succeeds,
//! so each run happens once without a separate leader lock, and on PostgreSQL and
//! SQLite alike.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cron_parser::Schedule;
use ruleiq_core::OrganizationId;
use ruleiq_db::{
    DbErr, entities::report_schedule, repositories::frameworks as frameworks_repo,
    repositories::reports as repo,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CreateReport, Format, ReportError, ReportType, Reports, invalid};
use crate::{
    audit::{AuditEvent, ClientInfo},
    identity::Permit,
};

/// Most recipients one schedule mails.
pub const MAX_RECIPIENTS: usize = 20;
/// Most schedules one organisation keeps.
pub const MAX_SCHEDULES: usize = 50;

/// A new schedule.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    pub report_type: ReportType,
    pub format: Format,
    pub framework_id: Option<Uuid>,
    /// Five fields: minute hour day-of-month month day-of-week, e.g. `0 8 * * 1`
    /// (08:00 every Monday).
    pub cron: String,
    /// An IANA time zone, e.g. `Europe/London`; the cron fields are read in it.
    pub timezone: String,
    /// Who receives the report (e-mail addresses).
    pub recipients: Vec<String>,
}

/// A schedule as shown.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub id: Uuid,
    pub report_type: String,
    pub format: String,
    pub framework_id: Option<Uuid>,
    pub cron: String,
    pub timezone: String,
    pub recipients: Vec<String>,
    pub enabled: bool,
    pub next_run_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<report_schedule::Model> for ScheduleView {
    fn from(s: report_schedule::Model) -> Self {
        Self {
            id: s.id,
            report_type: s.report_type,
            format: s.format,
            framework_id: s.framework_id,
            cron: s.cron,
            timezone: s.timezone,
            recipients: serde_json::from_value(s.recipients).unwrap_or_default(),
            enabled: s.enabled,
            next_run_at: s.next_run_at,
            last_run_at: s.last_run_at,
            created_at: s.created_at,
        }
    }
}

/// A checked cron expression in its zone.
#[derive(Debug, Clone)]
pub struct When {
    schedule: Schedule,
    zone: Tz,
}

impl When {
    /// Parses `cron` (five fields) and `timezone` (IANA).
    ///
    /// # Errors
    /// The field and a sentence on what is wrong.
    pub fn parse(cron: &str, timezone: &str) -> Result<Self, (&'static str, String)> {
        let cron = cron.trim();
        let fields = cron.split_whitespace().count();
        if fields != 5 {
            return Err((
                "cron",
                format!(
                    "expected five fields (minute hour day-of-month month day-of-week), found {fields}"
                ),
            ));
        }
        let schedule = Schedule::parse(cron).map_err(|e| ("cron", e.to_string()))?;
        let zone: Tz = timezone.trim().parse().map_err(|_| {
            (
                "timezone",
                format!("{timezone:?} is not an IANA time zone; for example Europe/London or UTC"),
            )
        })?;
        Ok(Self { schedule, zone })
    }

    /// The first run strictly after `after`.
    #[must_use]
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .next_after(&after.with_timezone(&self.zone))
            .map(|t| t.with_timezone(&Utc))
    }
}

fn is_email(s: &str) -> bool {
    s.parse::<lettre::Address>().is_ok() && s.len() <= 254
}

impl Reports {
    /// Adds a schedule.
    ///
    /// # Errors
    /// [`ReportError::Invalid`] for a bad cron expression, time zone, recipient or
    /// combination; [`ReportError::NotFound`] for a framework out of reach.
    pub async fn create_schedule(
        &self,
        permit: &Permit<'_>,
        req: CreateSchedule,
        client: &ClientInfo,
    ) -> Result<ScheduleView, ReportError> {
        let org = permit.organization_id();
        let by = permit.principal().user_id.as_uuid();
        let report = CreateReport {
            report_type: req.report_type,
            format: req.format,
            framework_id: req.framework_id,
        };
        self.check(org, &report).await?;
        let when = When::parse(&req.cron, &req.timezone).map_err(|(f, m)| invalid(f, m))?;
        let mut recipients: Vec<String> = req
            .recipients
            .iter()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect();
        recipients.dedup();
        if recipients.is_empty() {
            return Err(invalid("recipients", "name at least one e-mail address"));
        }
        if recipients.len() > MAX_RECIPIENTS {
            return Err(invalid(
                "recipients",
                format!("at most {MAX_RECIPIENTS} addresses"),
            ));
        }
        if let Some(bad) = recipients.iter().find(|r| !is_email(r)) {
            return Err(invalid(
                "recipients",
                format!("{bad:?} is not an e-mail address"),
            ));
        }
        if repo::schedules(&self.db, org.as_uuid()).await?.len() >= MAX_SCHEDULES {
            return Err(invalid(
                "report_type",
                format!(
                    "an organisation keeps at most {MAX_SCHEDULES} schedules; delete one first"
                ),
            ));
        }
        let now = self.writer.clock.now();
        let next = when
            .next_after(now)
            .ok_or_else(|| invalid("cron", "this expression never runs"))?;
        let row = report_schedule::Model {
            id: Uuid::now_v7(),
            organization_id: org.as_uuid(),
            report_type: req.report_type.as_str().to_owned(),
            format: req.format.as_str().to_owned(),
            framework_id: req.framework_id,
            cron: req.cron.trim().to_owned(),
            timezone: req.timezone.trim().to_owned(),
            recipients: serde_json::json!(recipients),
            enabled: true,
            created_by: Some(by),
            next_run_at: next,
            last_run_at: None,
            created_at: now,
        };
        repo::insert_schedule(&self.db, row.clone()).await?;
        self.audit
            .record(
                AuditEvent::new("report_schedule.created", Some(org.as_uuid()), Some(by))
                    .target("report_schedule", row.id)
                    .details(serde_json::json!({
                        "report_type": row.report_type,
                        "cron": row.cron,
                        "timezone": row.timezone,
                    })),
                client,
            )
            .await?;
        Ok(row.into())
    }

    /// The organisation's schedules, oldest first.
    ///
    /// # Errors
    /// On a database error.
    pub async fn schedules(&self, org: OrganizationId) -> Result<Vec<ScheduleView>, ReportError> {
        Ok(repo::schedules(&self.db, org.as_uuid())
            .await?
            .into_iter()
            .map(ScheduleView::from)
            .collect())
    }

    /// Deletes one of the organisation's schedules.
    ///
    /// # Errors
    /// [`ReportError::NotFound`].
    pub async fn delete_schedule(
        &self,
        permit: &Permit<'_>,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), ReportError> {
        let org = permit.organization_id().as_uuid();
        if !repo::delete_schedule(&self.db, org, id).await? {
            return Err(ReportError::NotFound("no such schedule"));
        }
        self.audit
            .record(
                AuditEvent::new(
                    "report_schedule.deleted",
                    Some(org),
                    Some(permit.principal().user_id.as_uuid()),
                )
                .target("report_schedule", id),
                client,
            )
            .await?;
        Ok(())
    }

    /// Starts every report whose schedule is due, each exactly once however many
    /// instances tick together. Returns how many this instance started.
    ///
    /// # Errors
    /// On a database error reading the schedules.
    pub async fn tick(&self) -> Result<usize, DbErr> {
        let now = self.writer.clock.now();
        let mut started = 0;
        for s in repo::due_schedules(&self.db, now, 100).await? {
            // A schedule whose expression no longer parses (edited in the database)
            // is switched off rather than retried every tick.
            let next = When::parse(&s.cron, &s.timezone)
                .ok()
                .and_then(|w| w.next_after(now));
            let Some(next) = next else {
                repo::disable_schedule(&self.db, s.id).await?;
                tracing::warn!(schedule = %s.id, "report schedule has no next run; switched off");
                continue;
            };
            if !repo::advance_schedule(&self.db, s.id, s.next_run_at, next, now).await? {
                continue; // another instance took this tick
            }
            let (Some(report_type), Some(format)) =
                (ReportType::parse(&s.report_type), Format::parse(&s.format))
            else {
                continue;
            };
            // The framework may have been deleted since: run without it.
            let framework_id = match s.framework_id {
                Some(f) => {
                    frameworks_repo::find_visible(&self.db, Some(s.organization_id), &f.to_string())
                        .await?
                        .map(|_| f)
                }
                None => None,
            };
            let req = CreateReport {
                report_type,
                format,
                framework_id,
            };
            match self
                .start(
                    OrganizationId::from(s.organization_id),
                    req,
                    s.created_by,
                    Some(s.id),
                )
                .await
            {
                Ok(_) => started += 1,
                Err(e) => {
                    tracing::warn!(error = %e, schedule = %s.id, "could not start a scheduled report")
                }
            }
        }
        Ok(started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_fields_in_a_zone_give_the_next_run_in_utc() {
        let w = When::parse("0 8 * * 1", "Europe/London").unwrap();
        // Wednesday 25 November 2026, 12:00 UTC → Monday 30 November, 08:00 GMT.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(
            w.next_after(now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap()
        );
        // In British Summer Time 08:00 local is 07:00 UTC.
        let june = Utc.with_ymd_and_hms(2026, 6, 3, 12, 0, 0).unwrap();
        assert_eq!(
            w.next_after(june).unwrap(),
            Utc.with_ymd_and_hms(2026, 6, 8, 7, 0, 0).unwrap()
        );
    }

    #[test]
    fn bad_expressions_and_zones_say_what_is_wrong() {
        let (field, msg) = When::parse("0 8 * *", "UTC").unwrap_err();
        assert_eq!(field, "cron");
        assert!(msg.contains("five fields"), "{msg}");
        let (field, _) = When::parse("0 25 * * *", "UTC").unwrap_err();
        assert_eq!(field, "cron");
        let (field, _) = When::parse("0 0 * * * *", "UTC").unwrap_err();
        assert_eq!(field, "cron");
        let (field, msg) = When::parse("0 8 * * 1", "Mars/Olympus").unwrap_err();
        assert_eq!(field, "timezone");
        assert!(msg.contains("IANA"), "{msg}");
    }

    #[test]
    fn addresses_are_checked() {
        assert!(is_email("board@quokka.example"));
        assert!(!is_email("board"));
        assert!(!is_email("a@b@c"));
    }
}
