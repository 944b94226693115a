//! Builds each report from the organisation's data: gathers it (every query scoped to
//! the organisation), shapes it into a document or a table, and renders the format.

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::{Stream, StreamExt};
use ruleiq_core::OrganizationId;
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::{evidence_item, plan_task},
    repositories::{
        ai::{GroupBy, totals},
        assessments as assessments_repo, evidence as evidence_repo, frameworks as frameworks_repo,
        identity as identity_repo, policies as policies_repo, reports as repo,
    },
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

use super::{Format, ReportType};
use crate::{
    ai::usd,
    assessments::{Assessments, Readiness, Results, scoring::Response},
    dashboard::Dashboard,
    evidence::store::BlobStore,
};

pub(super) use super::pack::Progress;

/// What a build reads from.
pub(super) struct Context<'a> {
    pub db: &'a DatabaseConnection,
    pub store: &'a BlobStore,
    pub dashboard: &'a Dashboard,
    pub organization_id: OrganizationId,
    pub framework_id: Option<Uuid>,
    pub now: DateTime<Utc>,
    pub clock: std::sync::Arc<dyn ruleiq_core::Clock>,
}

impl Context<'_> {
    fn org(&self) -> Uuid {
        self.organization_id.as_uuid()
    }

    async fn organisation_name(&self) -> Result<String, DbErr> {
        Ok(identity_repo::find_organization(self.db, self.org())
            .await?
            .map(|o| o.name)
            .unwrap_or_default())
    }

    /// Each assessed framework's readiness and results, limited to the report's
    /// framework when it has one.
    async fn results(&self) -> Result<Vec<(Readiness, Results)>, String> {
        let all = Assessments::new(self.db.clone(), self.clock.clone())
            .latest_results(self.organization_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(all
            .into_iter()
            .filter(|(r, _)| self.framework_id.is_none_or(|f| f == r.framework_id))
            .collect())
    }

    /// Member e-mail addresses by user id, for owners and approvers.
    async fn people(&self) -> Result<HashMap<Uuid, String>, DbErr> {
        Ok(identity_repo::members(self.db, self.org())
            .await?
            .into_iter()
            .map(|(_, u)| (u.id, u.email))
            .collect())
    }
}

/// A finished file: in memory, or (for archives) in a temporary file.
pub(super) enum File {
    Memory(Vec<u8>),
    Temp(tempfile::TempPath),
}

impl File {
    /// The file's bytes as a stream; a temporary file is removed once read.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
        match self {
            File::Memory(bytes) => {
                futures::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed()
            }
            File::Temp(path) => futures::stream::once(async move {
                let file = tokio::fs::File::open(&path).await?;
                // The path (and so the file) lives as long as the stream reading it.
                Ok::<_, std::io::Error>(
                    tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(
                        move |chunk| {
                            let _keep = &path;
                            chunk
                        },
                    ),
                )
            })
            .map(|opened| match opened {
                Ok(s) => s.boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten()
            .boxed(),
        }
    }
}

/// Builds a report in the given format.
///
/// # Errors
/// A message for the job's record.
pub(super) async fn build(
    ctx: &Context<'_>,
    kind: ReportType,
    format: Format,
    progress: &Progress,
) -> Result<File, String> {
    progress.at(5, "reading the organisation's data").await;
    let db = |e: DbErr| e.to_string();
    match kind {
        ReportType::ExecutiveSummary => {
            let data = executive_summary(ctx).await?;
            progress.at(50, "typesetting").await;
            render(format, data.document(), &data, None).await
        }
        ReportType::GapAnalysis => {
            let data = gap_analysis(ctx).await?;
            progress.at(50, "writing the table").await;
            render(format, data.document(), &data, Some(data.table())).await
        }
        ReportType::EvidenceRegister => {
            let data = evidence_register(ctx, progress).await.map_err(db)?;
            progress.at(60, "writing the table").await;
            render(format, data.document(), &data, Some(data.table())).await
        }
        ReportType::StatementOfApplicability => {
            let data = statement_of_applicability(ctx).await?;
            progress.at(50, "writing the statement").await;
            render(format, data.document(), &data, Some(data.table())).await
        }
        ReportType::PolicyPack => {
            let data = policy_pack(ctx).await.map_err(db)?;
            progress.at(50, "typesetting the policies").await;
            render(format, data.document(), &data, None).await
        }
        ReportType::AuditPack => super::pack::audit_pack(ctx, progress).await,
    }
}

/// Renders a report's document, table or data in `format`, off the async threads.
async fn render<T: Serialize>(
    format: Format,
    doc: ruleiq_docs::Document,
    data: &T,
    table: Option<super::table::Table>,
) -> Result<File, String> {
    if format == Format::Json {
        return serde_json::to_vec_pretty(data)
            .map(File::Memory)
            .map_err(|e| e.to_string());
    }
    tokio::task::spawn_blocking(move || match format {
        Format::Pdf => ruleiq_docs::render_pdf(&doc).map_err(|e| e.to_string()),
        Format::Docx => ruleiq_docs::render_docx(&doc).map_err(|e| e.to_string()),
        Format::Xlsx => table
            .ok_or_else(|| "this report has no table".to_owned())
            .and_then(|t| t.xlsx(&doc.title)),
        Format::Csv => table
            .ok_or_else(|| "this report has no table".to_owned())
            .and_then(|t| t.csv()),
        Format::Json | Format::Zip => Err(format!("{} is not made here", format.as_str())),
    })
    .await
    .map_err(|e| format!("rendering stopped: {e}"))?
    .map(File::Memory)
}

/// Escapes text for a Markdown table cell.
pub(super) fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn day(d: DateTime<Utc>) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn pct(v: f64) -> String {
    format!("{v:.1} %")
}

/// One framework's line of the executive summary.
#[derive(Debug, Serialize)]
pub(super) struct FrameworkLine {
    pub framework: String,
    pub readiness: f64,
    pub assessment_score: f64,
    pub evidence_coverage: f64,
    pub policy_coverage: f64,
    pub band: String,
    pub last_assessed_at: DateTime<Utc>,
    /// Oldest first.
    pub trend: Vec<(NaiveDate, f64)>,
}

/// One gap.
#[derive(Debug, Serialize)]
pub(super) struct GapLine {
    pub framework: String,
    pub control_ref: String,
    pub control: String,
    pub severity: String,
    pub response: String,
    pub recommendation: String,
    pub task: Option<String>,
    pub task_status: Option<String>,
    pub owner: Option<String>,
    pub due_date: Option<NaiveDate>,
}

/// A task of the plan.
#[derive(Debug, Serialize)]
pub(super) struct TaskLine {
    pub control_ref: String,
    pub task: String,
    pub priority: String,
    pub status: String,
    pub owner: Option<String>,
    pub due_date: NaiveDate,
}

/// The executive summary's data.
#[derive(Debug, Serialize)]
pub(super) struct ExecutiveSummary {
    pub organisation: String,
    pub generated_at: DateTime<Utc>,
    pub overall_readiness: f64,
    pub frameworks: Vec<FrameworkLine>,
    pub open_gaps: BTreeMap<String, usize>,
    pub top_gaps: Vec<GapLine>,
    pub tasks_total: usize,
    pub tasks_done: usize,
    pub tasks_overdue: usize,
    /// The next open tasks, soonest due first.
    pub next_due: Vec<TaskLine>,
    pub evidence_by_status: BTreeMap<String, i64>,
    pub evidence_expiring_30_days: u64,
    pub evidence_awaiting_approval: u64,
    pub policies_by_status: BTreeMap<String, i64>,
    pub ai_spend_this_month_usd: rust_decimal::Decimal,
    pub ai_calls_this_month: i64,
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        _ => 3,
    }
}

fn as_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Every gap of the report's frameworks with the task that closes it.
async fn gaps(ctx: &Context<'_>, results: &[(Readiness, Results)]) -> Result<Vec<GapLine>, String> {
    let tasks = repo::tasks(ctx.db, ctx.org())
        .await
        .map_err(|e| e.to_string())?;
    let people = ctx.people().await.map_err(|e| e.to_string())?;
    // The newest plan's task for each control.
    let mut by_control: HashMap<Uuid, &plan_task::Model> = HashMap::new();
    for t in &tasks {
        let newer = by_control
            .get(&t.control_id)
            .is_none_or(|k| k.created_at <= t.created_at);
        if newer {
            by_control.insert(t.control_id, t);
        }
    }
    let mut out = Vec::new();
    for (r, res) in results {
        for g in &res.gaps {
            let task = by_control.get(&g.control_id);
            out.push(GapLine {
                framework: r.framework_name.clone(),
                control_ref: g.reference.clone(),
                control: g.title.clone(),
                severity: as_text(&g.severity),
                response: as_text(&g.response),
                recommendation: g.recommendation.clone(),
                task: task.map(|t| t.title.clone()),
                task_status: task.map(|t| t.status.clone()),
                owner: task
                    .and_then(|t| t.assignee_id)
                    .and_then(|u| people.get(&u).cloned()),
                due_date: task.map(|t| t.due_date),
            });
        }
    }
    out.sort_by(|a, b| {
        severity_rank(&a.severity)
            .cmp(&severity_rank(&b.severity))
            .then(a.due_date.cmp(&b.due_date))
            .then(a.framework.cmp(&b.framework))
            .then(a.control_ref.cmp(&b.control_ref))
    });
    Ok(out)
}

async fn executive_summary(ctx: &Context<'_>) -> Result<ExecutiveSummary, String> {
    let e = |e: DbErr| e.to_string();
    let summary = ctx
        .dashboard
        .summary(ctx.organization_id, false)
        .await
        .map_err(e)?;
    let results = ctx.results().await?;
    let frameworks: Vec<FrameworkLine> = summary
        .frameworks
        .iter()
        .filter(|f| {
            ctx.framework_id
                .is_none_or(|id| id == f.readiness.framework_id)
        })
        .map(|f| FrameworkLine {
            framework: f.readiness.framework_name.clone(),
            readiness: f.readiness.readiness_score,
            assessment_score: f.readiness.assessment_score,
            evidence_coverage: f.readiness.evidence_coverage,
            policy_coverage: f.readiness.policy_coverage,
            band: as_text(&f.readiness.band),
            last_assessed_at: f.readiness.last_assessed_at,
            trend: f.trend.clone(),
        })
        .collect();
    let all_gaps = gaps(ctx, &results).await?;
    let mut open_gaps = BTreeMap::new();
    for g in &all_gaps {
        *open_gaps.entry(g.severity.clone()).or_insert(0) += 1;
    }
    let tasks = repo::tasks(ctx.db, ctx.org()).await.map_err(e)?;
    let today = ctx.now.date_naive();
    let open = |t: &&plan_task::Model| t.status != "done";
    let people = ctx.people().await.map_err(e)?;
    let next_due: Vec<TaskLine> = tasks
        .iter()
        .filter(open)
        .take(5)
        .map(|t| TaskLine {
            control_ref: t.reference.clone(),
            task: t.title.clone(),
            priority: t.priority.clone(),
            status: t.status.clone(),
            owner: t.assignee_id.and_then(|u| people.get(&u).cloned()),
            due_date: t.due_date,
        })
        .collect();
    let mut evidence_by_status = BTreeMap::new();
    for (status, _, n) in evidence_repo::counts(ctx.db, ctx.org()).await.map_err(e)? {
        *evidence_by_status.entry(status).or_insert(0) += n;
    }
    let policies_by_status: BTreeMap<String, i64> = policies_repo::counts(ctx.db, ctx.org())
        .await
        .map_err(e)?
        .into_iter()
        .collect();
    let month_start = chrono::Datelike::with_day(&today, 1).unwrap_or(today);
    let spend = totals(
        ctx.db,
        ctx.org(),
        &month_start.format("%Y-%m-%d").to_string(),
        &today.format("%Y-%m-%d").to_string(),
        GroupBy::Nothing,
    )
    .await
    .map_err(e)?
    .into_iter()
    .next()
    .unwrap_or_default();
    Ok(ExecutiveSummary {
        organisation: ctx.organisation_name().await.map_err(e)?,
        generated_at: ctx.now,
        overall_readiness: crate::dashboard::overall(
            &summary
                .frameworks
                .iter()
                .filter(|f| {
                    ctx.framework_id
                        .is_none_or(|id| id == f.readiness.framework_id)
                })
                .map(|f| f.readiness.clone())
                .collect::<Vec<_>>(),
        ),
        frameworks,
        open_gaps,
        top_gaps: all_gaps.into_iter().take(10).collect(),
        tasks_total: tasks.len(),
        tasks_done: tasks.iter().filter(|t| t.status == "done").count(),
        tasks_overdue: tasks
            .iter()
            .filter(open)
            .filter(|t| t.due_date < today)
            .count(),
        next_due,
        evidence_by_status,
        evidence_expiring_30_days: summary.evidence_expiring_count,
        evidence_awaiting_approval: summary.pending_approvals,
        policies_by_status,
        ai_spend_this_month_usd: usd(spend.cost_nanos),
        ai_calls_this_month: spend.requests,
    })
}

/// The standard title block of a report.
fn document(
    kind: ReportType,
    organisation: &str,
    at: DateTime<Utc>,
    scope: &str,
) -> ruleiq_docs::Document {
    ruleiq_docs::Document {
        title: kind.title().to_owned(),
        subtitle: Some(organisation.to_owned()),
        meta: vec![
            (
                "Generated".into(),
                at.format("%Y-%m-%d %H:%M UTC").to_string(),
            ),
            ("Scope".into(), scope.to_owned()),
            (
                "Source".into(),
                "ruleIQ, from the organisation's own records".into(),
            ),
        ],
        footer: Some(format!("{} — {}", kind.title(), organisation)),
        ..Default::default()
    }
}

impl ExecutiveSummary {
    pub(super) fn document(&self) -> ruleiq_docs::Document {
        use std::fmt::Write;
        let mut b = String::new();
        // The text before the trend chart; the rest follows it.
        let mut intro = String::new();
        let _ = writeln!(b, "## At a glance\n");
        if self.frameworks.is_empty() {
            let _ = writeln!(
                b,
                "No framework has a completed assessment yet, so there is no readiness to report. Complete an assessment to see it here.\n"
            );
        } else {
            let _ = writeln!(
                b,
                "Overall readiness is **{}** across {} framework{}. There are {} open gaps ({} critical, {} high). {} of {} plan tasks are done; {} are overdue.\n",
                pct(self.overall_readiness),
                self.frameworks.len(),
                if self.frameworks.len() == 1 { "" } else { "s" },
                self.open_gaps.values().sum::<usize>(),
                self.open_gaps.get("critical").copied().unwrap_or(0),
                self.open_gaps.get("high").copied().unwrap_or(0),
                self.tasks_done,
                self.tasks_total,
                self.tasks_overdue,
            );
            let _ = writeln!(
                b,
                "| Framework | Readiness | Assessment | Evidence | Policies | Band | Last assessed |\n|---|---:|---:|---:|---:|---|---|"
            );
            for f in &self.frameworks {
                let _ = writeln!(
                    b,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    cell(&f.framework),
                    pct(f.readiness),
                    pct(f.assessment_score),
                    pct(f.evidence_coverage),
                    pct(f.policy_coverage),
                    cell(&f.band),
                    day(f.last_assessed_at)
                );
            }
            b.push('\n');
            let _ = writeln!(b, "## Readiness over time\n");
            intro = std::mem::take(&mut b);
            let points: usize = self.frameworks.iter().map(|f| f.trend.len()).sum();
            if points == 0 {
                let _ = writeln!(b, "No daily snapshots have been taken yet.\n");
            } else {
                let _ = writeln!(
                    b,
                    "| Framework | First | Latest | Change | Days recorded |\n|---|---:|---:|---:|---:|"
                );
                for f in &self.frameworks {
                    if let (Some(first), Some(last)) = (f.trend.first(), f.trend.last()) {
                        let _ = writeln!(
                            b,
                            "| {} | {} ({}) | {} ({}) | {:+.1} | {} |",
                            cell(&f.framework),
                            pct(first.1),
                            first.0,
                            pct(last.1),
                            last.0,
                            last.1 - first.1,
                            f.trend.len()
                        );
                    }
                }
                b.push('\n');
            }
        }
        let _ = writeln!(b, "## Top gaps\n");
        if self.top_gaps.is_empty() {
            let _ = writeln!(b, "No open gaps.\n");
        } else {
            let _ = writeln!(
                b,
                "| Severity | Framework | Control | Recommendation | Owner | Due |\n|---|---|---|---|---|---|"
            );
            for g in &self.top_gaps {
                let _ = writeln!(
                    b,
                    "| {} | {} | {} {} | {} | {} | {} |",
                    cell(&g.severity),
                    cell(&g.framework),
                    cell(&g.control_ref),
                    cell(&g.control),
                    cell(&g.recommendation),
                    cell(g.owner.as_deref().unwrap_or("unassigned")),
                    g.due_date
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "no task".into())
                );
            }
            b.push('\n');
        }
        let _ = writeln!(b, "## Implementation plan\n");
        let _ = writeln!(
            b,
            "{} tasks, {} done, {} overdue.\n",
            self.tasks_total, self.tasks_done, self.tasks_overdue
        );
        if !self.next_due.is_empty() {
            let _ = writeln!(
                b,
                "| Due | Task | Priority | Status | Owner |\n|---|---|---|---|---|"
            );
            for t in &self.next_due {
                let _ = writeln!(
                    b,
                    "| {} | {} {} | {} | {} | {} |",
                    t.due_date,
                    cell(&t.control_ref),
                    cell(&t.task),
                    cell(&t.priority),
                    cell(&t.status),
                    cell(t.owner.as_deref().unwrap_or("unassigned"))
                );
            }
            b.push('\n');
        }
        let _ = writeln!(b, "## Evidence\n");
        let total: i64 = self.evidence_by_status.values().sum();
        let _ = writeln!(
            b,
            "{total} evidence items: {}. {} expire within 30 days; {} await approval.\n",
            if self.evidence_by_status.is_empty() {
                "none yet".to_owned()
            } else {
                self.evidence_by_status
                    .iter()
                    .map(|(s, n)| format!("{n} {}", s.replace('_', " ")))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            self.evidence_expiring_30_days,
            self.evidence_awaiting_approval
        );
        let _ = writeln!(b, "## Policies\n");
        let _ = writeln!(
            b,
            "{}.\n",
            if self.policies_by_status.is_empty() {
                "No policies yet".to_owned()
            } else {
                self.policies_by_status
                    .iter()
                    .map(|(s, n)| format!("{n} {}", s.replace('_', " ")))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        let _ = writeln!(b, "## AI use\n");
        let _ = writeln!(
            b,
            "${} spent this month on {} model calls.",
            self.ai_spend_this_month_usd, self.ai_calls_this_month
        );
        let mut doc = document(
            ReportType::ExecutiveSummary,
            &self.organisation,
            self.generated_at,
            &scope_of(
                &self
                    .frameworks
                    .iter()
                    .map(|f| f.framework.clone())
                    .collect::<Vec<_>>(),
            ),
        );
        let trend: Vec<ruleiq_docs::Series> = self
            .frameworks
            .iter()
            .filter(|f| !f.trend.is_empty())
            .take(ruleiq_docs::MAX_CHART_SERIES)
            .map(|f| ruleiq_docs::Series {
                label: f.framework.clone(),
                // The last year is what a board reads; older days stay in the data.
                points: f.trend.iter().rev().take(366).rev().copied().collect(),
            })
            .collect();
        if intro.is_empty() {
            doc.body_markdown = b;
        } else {
            doc.body_markdown = intro;
            if !trend.is_empty() {
                doc.blocks
                    .push(ruleiq_docs::Block::Chart(ruleiq_docs::Chart::Line {
                        title: "Readiness by framework".into(),
                        y_label: "Readiness (%)".into(),
                        series: trend,
                    }));
            }
            doc.blocks.push(ruleiq_docs::Block::Markdown(b));
        }
        if !self.evidence_by_status.is_empty() {
            doc.blocks
                .push(ruleiq_docs::Block::Chart(ruleiq_docs::Chart::Bar {
                    title: "Evidence by status".into(),
                    bars: self
                        .evidence_by_status
                        .iter()
                        .map(|(s, n)| (s.replace('_', " "), *n as f64))
                        .collect(),
                }));
        }
        doc
    }
}

fn scope_of(frameworks: &[String]) -> String {
    if frameworks.is_empty() {
        "all frameworks".into()
    } else {
        frameworks.join(", ")
    }
}

/// The gap analysis's data.
#[derive(Debug, Serialize)]
pub(super) struct GapAnalysis {
    pub organisation: String,
    pub generated_at: DateTime<Utc>,
    pub frameworks: Vec<String>,
    pub gaps: Vec<GapLine>,
}

async fn gap_analysis(ctx: &Context<'_>) -> Result<GapAnalysis, String> {
    let results = ctx.results().await?;
    Ok(GapAnalysis {
        organisation: ctx.organisation_name().await.map_err(|e| e.to_string())?,
        generated_at: ctx.now,
        frameworks: results
            .iter()
            .map(|(r, _)| r.framework_name.clone())
            .collect(),
        gaps: gaps(ctx, &results).await?,
    })
}

impl GapAnalysis {
    pub(super) fn document(&self) -> ruleiq_docs::Document {
        use std::fmt::Write;
        let mut b = String::new();
        let _ = writeln!(
            b,
            "{} open gaps from the latest completed assessment of each framework, most severe first.\n",
            self.gaps.len()
        );
        if !self.gaps.is_empty() {
            let _ = writeln!(
                b,
                "| Severity | Framework | Control | Answer | Recommendation | Task | Owner | Due |\n|---|---|---|---|---|---|---|---|"
            );
            for g in &self.gaps {
                let _ = writeln!(
                    b,
                    "| {} | {} | {} {} | {} | {} | {} | {} | {} |",
                    cell(&g.severity),
                    cell(&g.framework),
                    cell(&g.control_ref),
                    cell(&g.control),
                    cell(&g.response),
                    cell(&g.recommendation),
                    cell(
                        &g.task
                            .as_ref()
                            .map(|t| format!("{t} ({})", g.task_status.as_deref().unwrap_or("")))
                            .unwrap_or_else(|| "no plan yet".into())
                    ),
                    cell(g.owner.as_deref().unwrap_or("unassigned")),
                    g.due_date.map(|d| d.to_string()).unwrap_or_default()
                );
            }
        }
        let mut doc = document(
            ReportType::GapAnalysis,
            &self.organisation,
            self.generated_at,
            &scope_of(&self.frameworks),
        );
        doc.body_markdown = b;
        doc
    }

    pub(super) fn table(&self) -> super::table::Table {
        use super::table::{Table, Value};
        let mut t = Table::new(
            "Gaps",
            &[
                ("Severity", 10.0),
                ("Framework", 24.0),
                ("Control", 10.0),
                ("Title", 40.0),
                ("Answer", 10.0),
                ("Recommendation", 60.0),
                ("Task", 40.0),
                ("Task status", 12.0),
                ("Owner", 28.0),
                ("Due date", 12.0),
            ],
        );
        for g in &self.gaps {
            t.push(vec![
                Value::text(&g.severity),
                Value::text(&g.framework),
                Value::text(&g.control_ref),
                Value::text(&g.control),
                Value::text(&g.response),
                Value::text(&g.recommendation),
                Value::opt(g.task.as_deref()),
                Value::opt(g.task_status.as_deref()),
                Value::opt(g.owner.as_deref()),
                g.due_date.map_or(Value::Empty, Value::Date),
            ]);
        }
        t
    }
}

/// One evidence item of the register.
#[derive(Debug, Serialize)]
pub(super) struct EvidenceLine {
    pub id: Uuid,
    pub title: String,
    pub evidence_type: String,
    pub status: String,
    pub controls: Vec<String>,
    pub version: i32,
    pub file_name: Option<String>,
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub size_bytes: Option<i64>,
    pub effective_date: Option<NaiveDate>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The evidence register's data.
#[derive(Debug, Serialize)]
pub(super) struct EvidenceRegister {
    pub organisation: String,
    pub generated_at: DateTime<Utc>,
    pub items: Vec<EvidenceLine>,
}

/// Control references (`framework ref`) by control id.
async fn control_names(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, String>, DbErr> {
    let controls = repo::controls_by_id(db, ids).await?;
    let mut fw: Vec<Uuid> = controls.iter().map(|c| c.framework_id).collect();
    fw.sort_unstable();
    fw.dedup();
    let slugs: HashMap<Uuid, String> = frameworks_repo::by_ids(db, &fw)
        .await?
        .into_iter()
        .map(|f| (f.id, f.slug))
        .collect();
    Ok(controls
        .into_iter()
        .map(|c| {
            let slug = slugs.get(&c.framework_id).cloned().unwrap_or_default();
            (c.id, format!("{slug} {}", c.reference))
        })
        .collect())
}

async fn evidence_register(
    ctx: &Context<'_>,
    progress: &Progress,
) -> Result<EvidenceRegister, DbErr> {
    let links = repo::evidence_links(ctx.db, ctx.org()).await?;
    let mut ids: Vec<Uuid> = links.iter().map(|(_, c)| *c).collect();
    ids.sort_unstable();
    ids.dedup();
    let names = control_names(ctx.db, &ids).await?;
    let mut controls_of: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (e, c) in &links {
        if let Some(n) = names.get(c) {
            controls_of.entry(*e).or_default().push(n.clone());
        }
    }
    let limited: Option<std::collections::HashSet<Uuid>> = match ctx.framework_id {
        Some(f) => Some(
            repo::controls_by_id(ctx.db, &ids)
                .await?
                .into_iter()
                .filter(|c| c.framework_id == f)
                .map(|c| c.id)
                .collect(),
        ),
        None => None,
    };
    let in_scope: Option<std::collections::HashSet<Uuid>> = limited.map(|controls| {
        links
            .iter()
            .filter(|(_, c)| controls.contains(c))
            .map(|(e, _)| *e)
            .collect()
    });
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let page = repo::evidence_page(ctx.db, ctx.org(), after, 1_000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for e in page {
            if in_scope.as_ref().is_some_and(|s| !s.contains(&e.id)) {
                continue;
            }
            let mut controls = controls_of.remove(&e.id).unwrap_or_default();
            controls.sort();
            items.push(evidence_line(e, controls));
        }
        progress
            .at(
                10 + i32::try_from(items.len() / 1_000).unwrap_or(40).min(40),
                "reading evidence",
            )
            .await;
    }
    items.sort_by(|a, b| a.title.cmp(&b.title).then(a.id.cmp(&b.id)));
    Ok(EvidenceRegister {
        organisation: ctx.organisation_name().await?,
        generated_at: ctx.now,
        items,
    })
}

fn evidence_line(e: evidence_item::Model, controls: Vec<String>) -> EvidenceLine {
    EvidenceLine {
        id: e.id,
        title: e.title,
        evidence_type: e.evidence_type,
        status: e.status,
        controls,
        version: e.current_version,
        file_name: e.file_name,
        url: e.url,
        sha256: e.sha256,
        size_bytes: e.size_bytes,
        effective_date: e.effective_date,
        expires_at: e.expires_at,
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

impl EvidenceRegister {
    pub(super) fn document(&self) -> ruleiq_docs::Document {
        let mut doc = document(
            ReportType::EvidenceRegister,
            &self.organisation,
            self.generated_at,
            "all evidence",
        );
        doc.body_markdown = format!("{} evidence items.", self.items.len());
        doc
    }

    pub(super) fn table(&self) -> super::table::Table {
        use super::table::{Table, Value};
        let mut t = Table::new(
            "Evidence",
            &[
                ("Title", 40.0),
                ("Type", 14.0),
                ("Status", 12.0),
                ("Controls", 40.0),
                ("Version", 8.0),
                ("File or link", 30.0),
                ("SHA-256", 66.0),
                ("Size (bytes)", 12.0),
                ("Effective", 12.0),
                ("Expires", 12.0),
                ("Created", 18.0),
                ("Updated", 18.0),
                ("Id", 38.0),
            ],
        );
        for e in &self.items {
            t.push(vec![
                Value::text(&e.title),
                Value::text(&e.evidence_type),
                Value::text(&e.status),
                Value::text(&e.controls.join("; ")),
                Value::Integer(i64::from(e.version)),
                Value::opt(e.file_name.as_deref().or(e.url.as_deref())),
                Value::opt(e.sha256.as_deref()),
                e.size_bytes.map_or(Value::Empty, Value::Integer),
                e.effective_date.map_or(Value::Empty, Value::Date),
                e.expires_at
                    .map_or(Value::Empty, |d| Value::Date(d.date_naive())),
                Value::DateTime(e.created_at),
                Value::DateTime(e.updated_at),
                Value::text(&e.id.to_string()),
            ]);
        }
        t
    }
}

/// One Annex A control of the statement of applicability.
#[derive(Debug, Serialize)]
pub(super) struct SoaLine {
    pub control_ref: String,
    pub control: String,
    pub applicable: Option<bool>,
    pub justification: String,
    pub implementation: String,
    pub evidence: Vec<String>,
}

/// The statement of applicability's data.
#[derive(Debug, Serialize)]
pub(super) struct StatementOfApplicability {
    pub organisation: String,
    pub generated_at: DateTime<Utc>,
    pub framework: String,
    pub controls: Vec<SoaLine>,
}

/// The library's ISO/IEC 27001:2022 framework.
pub(super) const ISO27001: &str = "iso27001-2022";

async fn statement_of_applicability(ctx: &Context<'_>) -> Result<StatementOfApplicability, String> {
    let e = |e: DbErr| e.to_string();
    let framework = frameworks_repo::find_visible(ctx.db, None, ISO27001)
        .await
        .map_err(e)?
        .ok_or("the ISO/IEC 27001:2022 framework is not in the library; run `ruleiq seed`")?;
    let controls: Vec<_> = frameworks_repo::all_controls(ctx.db, &[framework.id])
        .await
        .map_err(e)?
        .into_iter()
        .filter(|c| c.reference.starts_with("A."))
        .collect();
    let questions = assessments_repo::framework_questions(ctx.db, framework.id)
        .await
        .map_err(e)?;
    let qids: Vec<Uuid> = questions.iter().map(|q| q.question_id).collect();
    let answers: HashMap<Uuid, ruleiq_db::entities::answer::Model> =
        assessments_repo::latest_answers(ctx.db, ctx.org(), &qids)
            .await
            .map_err(e)?
            .into_iter()
            .map(|a| (a.question_id, a))
            .collect();
    let mut by_control: HashMap<Uuid, Vec<&ruleiq_db::entities::answer::Model>> = HashMap::new();
    for q in &questions {
        if let Some(a) = answers.get(&q.question_id) {
            by_control.entry(q.control_id).or_default().push(a);
        }
    }
    // Only the evidence of Annex A's controls, read by id: an organisation's library
    // may hold tens of thousands of items, most for other frameworks.
    let control_ids: Vec<Uuid> = controls.iter().map(|c| c.id).collect();
    let links = repo::evidence_links_to(ctx.db, ctx.org(), &control_ids)
        .await
        .map_err(e)?;
    let mut evidence_ids: Vec<Uuid> = links.iter().map(|(ev, _)| *ev).collect();
    evidence_ids.sort_unstable();
    evidence_ids.dedup();
    let titles: HashMap<Uuid, String> =
        repo::live_evidence_titles(ctx.db, ctx.org(), &evidence_ids)
            .await
            .map_err(e)?
            .into_iter()
            .collect();
    let mut evidence_of: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (ev, c) in &links {
        if let Some(t) = titles.get(ev) {
            evidence_of.entry(*c).or_default().push(t.clone());
        }
    }
    let lines = controls
        .iter()
        .map(|c| {
            let answered = by_control.get(&c.id).cloned().unwrap_or_default();
            let responses: Vec<Response> = answered
                .iter()
                .filter_map(|a| {
                    serde_json::from_value(serde_json::Value::String(a.response.clone())).ok()
                })
                .collect();
            let notes: Vec<&str> = answered
                .iter()
                .filter_map(|a| a.notes.as_deref())
                .filter(|n| !n.trim().is_empty())
                .collect();
            let (applicable, implementation) = implementation(&responses);
            let justification = if !notes.is_empty() {
                notes.join(" ")
            } else {
                match applicable {
                    Some(true) => {
                        "Included: the control applies to the organisation's assessed scope.".into()
                    }
                    Some(false) => "Excluded: answered not applicable in the assessment.".into(),
                    None => "Not yet assessed: decide whether it applies.".into(),
                }
            };
            let mut evidence = evidence_of.remove(&c.id).unwrap_or_default();
            evidence.sort();
            SoaLine {
                control_ref: c.reference.clone(),
                control: c.title.clone(),
                applicable,
                justification,
                implementation: implementation.into(),
                evidence,
            }
        })
        .collect();
    Ok(StatementOfApplicability {
        organisation: ctx.organisation_name().await.map_err(e)?,
        generated_at: ctx.now,
        framework: framework.name,
        controls: lines,
    })
}

/// Applicability and implementation from a control's answers.
fn implementation(responses: &[Response]) -> (Option<bool>, &'static str) {
    let counted: Vec<Response> = responses
        .iter()
        .copied()
        .filter(|r| *r != Response::Unknown)
        .collect();
    if counted.is_empty() {
        return (None, "not assessed");
    }
    if counted.iter().all(|r| *r == Response::NotApplicable) {
        return (Some(false), "not applicable");
    }
    let applied: Vec<Response> = counted
        .into_iter()
        .filter(|r| *r != Response::NotApplicable)
        .collect();
    let status = if applied.iter().all(|r| *r == Response::Yes) {
        "implemented"
    } else if applied.iter().all(|r| *r == Response::No) {
        "not implemented"
    } else {
        "partially implemented"
    };
    (Some(true), status)
}

impl StatementOfApplicability {
    pub(super) fn document(&self) -> ruleiq_docs::Document {
        use std::fmt::Write;
        let applicable = self
            .controls
            .iter()
            .filter(|c| c.applicable == Some(true))
            .count();
        let excluded = self
            .controls
            .iter()
            .filter(|c| c.applicable == Some(false))
            .count();
        let open = self.controls.len() - applicable - excluded;
        let mut b = String::new();
        let _ = writeln!(
            b,
            "{} Annex A controls: {applicable} applicable, {excluded} excluded, {open} not yet assessed. Applicability and implementation come from the organisation's latest answers; justifications are its own notes where it gave them.\n",
            self.controls.len()
        );
        let _ = writeln!(
            b,
            "| Control | Title | Applicable | Justification | Implementation | Evidence |\n|---|---|---|---|---|---|"
        );
        for c in &self.controls {
            let _ = writeln!(
                b,
                "| {} | {} | {} | {} | {} | {} |",
                cell(&c.control_ref),
                cell(&c.control),
                yes_no(c.applicable),
                cell(&c.justification),
                cell(&c.implementation),
                cell(&c.evidence.join("; "))
            );
        }
        let mut doc = document(
            ReportType::StatementOfApplicability,
            &self.organisation,
            self.generated_at,
            &self.framework,
        );
        doc.body_markdown = b;
        doc
    }

    pub(super) fn table(&self) -> super::table::Table {
        use super::table::{Table, Value};
        let mut t = Table::new(
            "Statement of applicability",
            &[
                ("Control", 10.0),
                ("Title", 44.0),
                ("Applicable", 12.0),
                ("Justification", 60.0),
                ("Implementation", 22.0),
                ("Evidence", 50.0),
            ],
        );
        for c in &self.controls {
            t.push(vec![
                Value::text(&c.control_ref),
                Value::text(&c.control),
                Value::text(yes_no(c.applicable)),
                Value::text(&c.justification),
                Value::text(&c.implementation),
                Value::text(&c.evidence.join("; ")),
            ]);
        }
        t
    }
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "Yes",
        Some(false) => "No",
        None => "Undecided",
    }
}

/// The policy pack's data: every approved policy.
#[derive(Debug, Serialize)]
pub(super) struct PolicyPack {
    pub organisation: String,
    pub generated_at: DateTime<Utc>,
    pub policies: Vec<PackedPolicy>,
}

/// One approved policy.
#[derive(Debug, Serialize)]
pub(super) struct PackedPolicy {
    pub title: String,
    pub version: i32,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub next_review_at: Option<DateTime<Utc>>,
    pub content_markdown: String,
}

async fn policy_pack(ctx: &Context<'_>) -> Result<PolicyPack, DbErr> {
    let people = ctx.people().await?;
    let policies = repo::approved_policies(ctx.db, ctx.org())
        .await?
        .into_iter()
        .map(|p| PackedPolicy {
            title: p.title,
            version: p.version,
            approved_by: p.approved_by.and_then(|u| people.get(&u).cloned()),
            approved_at: p.approved_at,
            next_review_at: p.next_review_at,
            content_markdown: p.content_markdown,
        })
        .collect();
    Ok(PolicyPack {
        organisation: ctx.organisation_name().await?,
        generated_at: ctx.now,
        policies,
    })
}

impl PolicyPack {
    pub(super) fn document(&self) -> ruleiq_docs::Document {
        use std::fmt::Write;
        let mut doc = document(
            ReportType::PolicyPack,
            &self.organisation,
            self.generated_at,
            &format!("{} approved policies", self.policies.len()),
        );
        if self.policies.is_empty() {
            doc.body_markdown =
                "No policy has been approved yet. Approve policies to include them here.".into();
            return doc;
        }
        doc.body_markdown = format!(
            "The organisation's {} approved policies, each as approved, with who approved it and when it is next due for review.",
            self.policies.len()
        );
        doc.contents = true;
        for p in &self.policies {
            let mut b = String::new();
            let _ = writeln!(b, "# {}\n", p.title);
            let _ = writeln!(
                b,
                "Version {}; approved by {} on {}; next review {}.\n",
                p.version,
                p.approved_by.as_deref().unwrap_or("a former member"),
                p.approved_at
                    .map_or_else(|| "an unrecorded date".into(), day),
                p.next_review_at.map_or_else(|| "not set".into(), day)
            );
            // A policy's own headings move down a level, under its title.
            for line in p.content_markdown.lines() {
                if line.starts_with('#') {
                    let _ = writeln!(b, "#{line}");
                } else {
                    let _ = writeln!(b, "{line}");
                }
            }
            doc.blocks.push(ruleiq_docs::Block::PageBreak);
            doc.blocks.push(ruleiq_docs::Block::Markdown(b));
        }
        doc
    }
}
