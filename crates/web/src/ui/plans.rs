//! Implementation plans for people: the list, and one plan's tasks grouped by status,
//! each with small forms to change its status, assignee, due date and notes (each a
//! post, redirect, get with a flash message).

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use ruleiq_core::Permission;
use ruleiq_services::plans::{PlanError, TaskChange, TaskStatus};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    Chrome, EXPIRED_FORM, Viewer,
    assessments::{FieldError, day, failed, not_found, parse_date, severity_label, sign_in_first},
    charts::number,
};
use crate::{extract::Client, state::AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/plans", get(list))
        .route("/plans/{id}", get(show))
        .route("/plans/{plan_id}/tasks/{task_id}", post(update_task))
}

pub(super) fn status_label(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::InProgress => "In progress",
        TaskStatus::Todo => "To do",
        TaskStatus::Blocked => "Blocked",
        TaskStatus::Done => "Done",
    }
}

fn parse_status(s: &str) -> Option<TaskStatus> {
    TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
}

fn plan_missing(viewer: &Viewer) -> Response {
    not_found(
        viewer,
        "There is no such plan in your organisation.",
        "/plans",
        "your plans",
    )
}

struct PlanRow {
    href: String,
    title: String,
    framework: String,
    done: usize,
    total: usize,
    target: String,
    projected_end: String,
    target_met: bool,
    has_target: bool,
}

#[derive(Template)]
#[template(path = "plans/list.html")]
struct ListPage {
    chrome: Chrome,
    plans: Vec<PlanRow>,
}

async fn list(State(state): State<AppState>, viewer: Viewer) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Ok(permit) = account.principal.require(Permission::ComplianceRead) else {
        return viewer.redirect("/dashboard", Some("Your role cannot see plans."), None);
    };
    let plans = match state.plans.list(permit.organization_id()).await {
        Ok(p) => p,
        Err(e) => return failed(&viewer, e),
    };
    let page = ListPage {
        chrome: viewer.chrome(),
        plans: plans
            .into_iter()
            .map(|p| PlanRow {
                href: format!("/plans/{}", p.id),
                title: p.title,
                framework: p.framework_name,
                done: p.tasks_done,
                total: p.tasks_total,
                has_target: p.target_date.is_some(),
                target: p.target_date.map(day).unwrap_or_default(),
                projected_end: day(p.projected_end_date),
                target_met: p.target_met,
            })
            .collect(),
    };
    viewer.page(StatusCode::OK, &page)
}

struct TaskRow {
    id: Uuid,
    reference: String,
    title: String,
    description: String,
    priority: &'static str,
    status: &'static str,
    status_value: &'static str,
    done: bool,
    due: String,
    due_iso: String,
    overdue: bool,
    effort: String,
    assignee: String,
    assignee_id: String,
    notes: String,
    /// A rejected change: the input's id and the message.
    error: Option<FieldError>,
}

impl TaskRow {
    /// The error for this task's `input` (`status`, `assignee`, `due` or `notes`).
    fn error_on(&self, input: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|e| e.field == format!("{input}-{}", self.id))
            .map(|e| e.message.as_str())
    }
}

struct Group {
    label: &'static str,
    slug: &'static str,
    tasks: Vec<TaskRow>,
}

struct Member {
    id: String,
    name: String,
}

struct StatusOption {
    value: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "plans/show.html")]
struct PlanPage {
    chrome: Chrome,
    id: Uuid,
    title: String,
    framework: String,
    assessment_href: String,
    start: String,
    target: String,
    has_target: bool,
    projected_end: String,
    target_met: bool,
    schedule_note: String,
    done: usize,
    total: usize,
    groups: Vec<Group>,
    members: Vec<Member>,
    statuses: Vec<StatusOption>,
    can_write: bool,
    errors: Vec<FieldError>,
}

/// What a rejected form sent, to show again with its error.
struct Rejected {
    task: Uuid,
    error: FieldError,
    due: Option<String>,
    notes: Option<String>,
}

async fn plan_page(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
    rejected: Option<Rejected>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(viewer);
    };
    let Ok(permit) = account.principal.require(Permission::ComplianceRead) else {
        return viewer.redirect("/dashboard", Some("Your role cannot see plans."), None);
    };
    let org = permit.organization_id();
    let plan = match state.plans.get(org, id).await {
        Ok(p) => p,
        Err(PlanError::NotFound(_)) => return plan_missing(viewer),
        Err(e) => return failed(viewer, e),
    };
    // Read straight from the repository: choosing an assignee needs the names of the
    // organisation's people, which is less than `users:manage` lets one see.
    let people = match ruleiq_db::repositories::identity::members(&state.db, org.as_uuid()).await {
        Ok(p) => p,
        Err(e) => return failed(viewer, e),
    };
    let name_of = |id: Uuid| {
        people
            .iter()
            .find(|(_, u)| u.id == id)
            .map(|(_, u)| {
                if u.is_active {
                    u.full_name.clone()
                } else {
                    format!("{} (deactivated)", u.full_name)
                }
            })
            .unwrap_or_else(|| "Someone who has left".to_owned())
    };
    let today = state.plans.today();
    let mut groups: Vec<Group> = TaskStatus::ALL
        .into_iter()
        .map(|s| Group {
            label: status_label(s),
            slug: s.as_str(),
            tasks: Vec::new(),
        })
        .collect();
    for t in plan.tasks {
        let mine = rejected.as_ref().filter(|r| r.task == t.id);
        let row = TaskRow {
            id: t.id,
            reference: t.reference,
            title: t.title,
            description: t.description,
            priority: severity_label(t.priority),
            status: status_label(t.status),
            status_value: t.status.as_str(),
            done: t.status == TaskStatus::Done,
            due: day(t.due_date),
            due_iso: mine
                .and_then(|r| r.due.clone())
                .unwrap_or_else(|| t.due_date.format("%Y-%m-%d").to_string()),
            overdue: t.status != TaskStatus::Done && t.due_date < today,
            effort: if (t.effort_days - 1.0).abs() < f64::EPSILON {
                "1 day".to_owned()
            } else {
                format!("{} days", number(t.effort_days))
            },
            assignee: t.assignee_id.map(name_of).unwrap_or_default(),
            assignee_id: t.assignee_id.map(|a| a.to_string()).unwrap_or_default(),
            notes: mine
                .and_then(|r| r.notes.clone())
                .or(t.notes)
                .unwrap_or_default(),
            error: mine.map(|r| r.error.clone()),
        };
        if let Some(g) = groups.iter_mut().find(|g| g.slug == t.status.as_str()) {
            g.tasks.push(row);
        }
    }
    let errors: Vec<FieldError> = rejected.iter().map(|r| r.error.clone()).collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = PlanPage {
        chrome: viewer.chrome(),
        id,
        title: plan.title,
        framework: plan.framework_name,
        assessment_href: format!("/assessments/{}/results", plan.assessment_id),
        start: day(plan.start_date),
        has_target: plan.target_date.is_some(),
        target: plan.target_date.map(day).unwrap_or_default(),
        projected_end: day(plan.projected_end_date),
        target_met: plan.target_met,
        schedule_note: plan.schedule_note.unwrap_or_default(),
        done: plan.tasks_done,
        total: plan.tasks_total,
        groups,
        members: people
            .into_iter()
            .filter(|(_, u)| u.is_active)
            .map(|(_, u)| Member {
                id: u.id.to_string(),
                name: u.full_name,
            })
            .collect(),
        statuses: TaskStatus::ALL
            .into_iter()
            .map(|s| StatusOption {
                value: s.as_str(),
                label: status_label(s),
            })
            .collect(),
        can_write: account.principal.can(Permission::ComplianceWrite),
        errors,
    };
    viewer.page(status, &page)
}

async fn show(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return plan_missing(&viewer);
    };
    plan_page(&state, &viewer, id, None).await
}

/// One of the task's small forms: each sends only the field it changes.
#[derive(Debug, Deserialize)]
struct TaskForm {
    #[serde(default)]
    csrf_token: String,
    status: Option<String>,
    assignee_id: Option<String>,
    due_date: Option<String>,
    notes: Option<String>,
}

async fn update_task(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Path((plan_id, task_id)): Path<(String, String)>,
    Form(form): Form<TaskForm>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let (Ok(plan_id), Ok(task_id)) = (plan_id.parse::<Uuid>(), task_id.parse::<Uuid>()) else {
        return plan_missing(&viewer);
    };
    let back = format!("/plans/{plan_id}");
    if !viewer.csrf_ok(&form.csrf_token) {
        return viewer.redirect(&back, Some(EXPIRED_FORM), None);
    }
    let Ok(permit) = account.principal.require(Permission::ComplianceWrite) else {
        return viewer.redirect(&back, Some("Your role cannot change plans."), None);
    };
    let reject = |field: &str, message: &str| Rejected {
        task: task_id,
        error: FieldError::new(format!("{field}-{task_id}"), message),
        due: form.due_date.clone(),
        notes: form.notes.clone(),
    };
    let mut change = TaskChange::default();
    if let Some(s) = &form.status {
        let Some(s) = parse_status(s) else {
            let r = reject("status", "Status must be one from the list.");
            return plan_page(&state, &viewer, plan_id, Some(r)).await;
        };
        change.status = Some(s);
    }
    if let Some(a) = &form.assignee_id {
        change.assignee_id = Some(if a.is_empty() {
            None
        } else if let Ok(a) = a.parse::<Uuid>() {
            Some(a)
        } else {
            let r = reject(
                "assignee",
                "Assignee must be a member of your organisation.",
            );
            return plan_page(&state, &viewer, plan_id, Some(r)).await;
        });
    }
    if let Some(d) = &form.due_date {
        match parse_date(d) {
            Ok(Some(d)) => change.due_date = Some(d),
            _ => {
                let r = reject("due", "Due date must be a date, such as 2025-06-30.");
                return plan_page(&state, &viewer, plan_id, Some(r)).await;
            }
        }
    }
    if let Some(n) = &form.notes {
        change.notes = Some(Some(n.clone()));
    }
    match state
        .plans
        .update_task(
            permit.organization_id(),
            account.principal.user_id,
            plan_id,
            task_id,
            change,
            &client,
        )
        .await
    {
        Ok(task) => viewer.redirect(
            &format!("{back}#task-{task_id}"),
            Some(&format!("Saved {} {}.", task.reference, task.title)),
            None,
        ),
        Err(PlanError::Invalid { field, message }) => {
            let (input, label) = match field {
                "assignee_id" => ("assignee", "Assignee"),
                "due_date" => ("due", "Due date"),
                "notes" => ("notes", "Notes"),
                _ => ("status", "Status"),
            };
            let r = reject(input, &super::assessments::sentence(label, message));
            plan_page(&state, &viewer, plan_id, Some(r)).await
        }
        Err(PlanError::NotFound(_)) => plan_missing(&viewer),
        Err(e) => failed(&viewer, e),
    }
}
