//! `/assessments`: answering a framework's questions, and the results.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use ruleiq_core::Permission;
use ruleiq_services::assessments::{
    AnswerView, AssessmentError, AssessmentView, QuestionView, Results, scoring::Response as Answer,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    api::frameworks::{FrameworkRef, invalid},
    extract::AuthUser,
    problem::{ApiError, ApiJson, Problem},
    state::AppState,
};

/// The assessment routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get))
        .routes(routes!(questions))
        .routes(routes!(answer))
        .routes(routes!(complete))
        .routes(routes!(results))
        .routes(routes!(responses))
        .routes(routes!(status))
}

impl From<AssessmentError> for ApiError {
    fn from(e: AssessmentError) -> Self {
        match e {
            AssessmentError::NotFound(m) => ApiError::NotFound(m.into()),
            AssessmentError::Conflict(m) => ApiError::Conflict(m.into()),
            AssessmentError::Invalid { field, message } => invalid(field, message),
            AssessmentError::Db(db) => ApiError::internal(db),
        }
    }
}

/// Progress through the questions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    pub answered: usize,
    pub total: usize,
    /// One decimal place.
    pub percent: f64,
}

/// An assessment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssessmentResponse {
    pub id: Uuid,
    pub framework: FrameworkRef,
    pub name: String,
    /// in_progress or completed.
    pub status: String,
    pub progress: Progress,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<AssessmentView> for AssessmentResponse {
    fn from(a: AssessmentView) -> Self {
        let percent = if a.total == 0 {
            0.0
        } else {
            ((a.answered as f64) * 1000.0 / (a.total as f64)).round() / 10.0
        };
        Self {
            id: a.id,
            framework: FrameworkRef {
                id: a.framework_id,
                slug: a.framework_slug,
                name: a.framework_name,
            },
            name: a.name,
            status: a.status,
            progress: Progress {
                answered: a.answered,
                total: a.total,
                percent,
            },
            created_at: a.created_at,
            completed_at: a.completed_at,
        }
    }
}

/// A new assessment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAssessment {
    /// A framework id or slug.
    pub framework_id: String,
    pub name: Option<String>,
}

/// Starts an assessment; answers given to the same questions elsewhere in the
/// organisation are pre-filled (`prefilled_from`).
#[utoipa::path(
    post,
    path = "/assessments",
    tag = "assessments",
    security(("bearer" = [])),
    request_body = CreateAssessment,
    responses((status = 201, body = AssessmentResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiJson(req): ApiJson<CreateAssessment>,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let a = state
        .assessments
        .create(
            permit.organization_id(),
            principal.user_id,
            &req.framework_id,
            req.name.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(AssessmentResponse::from(a))).into_response())
}

/// The organisation's assessments.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssessmentList {
    pub items: Vec<AssessmentResponse>,
    pub next_cursor: Option<String>,
}

/// The organisation's assessments, newest first.
#[utoipa::path(
    get,
    path = "/assessments",
    tag = "assessments",
    security(("bearer" = [])),
    responses((status = 200, body = AssessmentList), (status = 401, body = Problem))
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<AssessmentList>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let items = state
        .assessments
        .list(permit.organization_id())
        .await?
        .into_iter()
        .map(AssessmentResponse::from)
        .collect();
    Ok(ApiJson(AssessmentList {
        items,
        next_cursor: None,
    }))
}

fn id_of(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("no such assessment in your organisation".into()))
}

/// One assessment.
#[utoipa::path(
    get,
    path = "/assessments/{id}",
    tag = "assessments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The assessment's id")),
    responses((status = 200, body = AssessmentResponse), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn get(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<AssessmentResponse>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let a = state
        .assessments
        .get(permit.organization_id(), id_of(&id)?)
        .await?;
    Ok(ApiJson(a.into()))
}

/// An answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerResponse {
    pub response: Answer,
    pub notes: Option<String>,
    pub evidence_ids: Vec<Uuid>,
    pub answered_at: DateTime<Utc>,
    /// The assessment this answer was copied from.
    pub prefilled_from: Option<Uuid>,
}

impl From<AnswerView> for AnswerResponse {
    fn from(a: AnswerView) -> Self {
        Self {
            response: a.response,
            notes: a.notes,
            evidence_ids: a.evidence_ids,
            answered_at: a.answered_at,
            prefilled_from: a.prefilled_from,
        }
    }
}

/// A question with its answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionItem {
    pub id: Uuid,
    pub domain: Option<String>,
    pub text: String,
    pub help: Option<String>,
    pub control_refs: Vec<String>,
    pub answer: Option<AnswerResponse>,
}

impl From<QuestionView> for QuestionItem {
    fn from(q: QuestionView) -> Self {
        Self {
            id: q.id,
            domain: q.domain,
            text: q.text,
            help: q.help,
            control_refs: q.control_refs,
            answer: q.answer.map(AnswerResponse::from),
        }
    }
}

/// The questions.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionList {
    pub items: Vec<QuestionItem>,
}

/// The questions in domain order, with their answers.
#[utoipa::path(
    get,
    path = "/assessments/{id}/questions",
    tag = "assessments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The assessment's id")),
    responses((status = 200, body = QuestionList), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn questions(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<QuestionList>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let items = state
        .assessments
        .questions(permit.organization_id(), id_of(&id)?)
        .await?
        .into_iter()
        .map(QuestionItem::from)
        .collect();
    Ok(ApiJson(QuestionList { items }))
}

/// An answer to save.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub response: Answer,
    pub notes: Option<String>,
    #[serde(default)]
    pub evidence_ids: Vec<Uuid>,
}

/// Saves one answer (a person can stop and resume at any point).
#[utoipa::path(
    put,
    path = "/assessments/{id}/answers/{question_id}",
    tag = "assessments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The assessment's id"), ("question_id" = Uuid, Path, description = "The question's id")),
    request_body = AnswerRequest,
    responses((status = 200, body = AnswerResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Completed", body = Problem), (status = 422, body = Problem))
)]
async fn answer(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path((id, question_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<AnswerRequest>,
) -> Result<ApiJson<AnswerResponse>, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let question_id = question_id
        .parse()
        .map_err(|_| ApiError::NotFound("no such question in this assessment".into()))?;
    let saved = state
        .assessments
        .answer(
            permit.organization_id(),
            principal.user_id,
            id_of(&id)?,
            question_id,
            req.response,
            req.notes,
            req.evidence_ids,
        )
        .await?;
    Ok(ApiJson(saved.into()))
}

/// A domain's score.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainScoreResponse {
    pub domain: String,
    pub score: f64,
    pub answered: usize,
    pub total: usize,
}

/// A gap.
#[derive(Debug, Serialize, ToSchema)]
pub struct GapResponse {
    pub control_id: Uuid,
    #[serde(rename = "ref")]
    pub reference: String,
    pub title: String,
    pub severity: ruleiq_core::Criticality,
    pub response: Answer,
    pub recommendation: String,
}

/// Results.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsResponse {
    pub score: f64,
    pub band: ruleiq_services::assessments::scoring::Band,
    pub by_domain: Vec<DomainScoreResponse>,
    pub gaps: Vec<GapResponse>,
    /// Empty while the assessment is in progress (the results are then as they stand).
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<Results> for ResultsResponse {
    fn from(r: Results) -> Self {
        Self {
            score: r.score,
            band: r.band,
            by_domain: r
                .by_domain
                .into_iter()
                .map(|d| DomainScoreResponse {
                    domain: d.domain,
                    score: d.score,
                    answered: d.answered,
                    total: d.total,
                })
                .collect(),
            gaps: r
                .gaps
                .into_iter()
                .map(|g| GapResponse {
                    control_id: g.control_id,
                    reference: g.reference,
                    title: g.title,
                    severity: g.severity,
                    response: g.response,
                    recommendation: g.recommendation,
                })
                .collect(),
            completed_at: r.completed_at,
        }
    }
}

/// Completes the assessment and scores it (unanswered questions count as `unknown`).
#[utoipa::path(
    post,
    path = "/assessments/{id}/complete",
    tag = "assessments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The assessment's id")),
    responses((status = 200, body = ResultsResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem))
)]
async fn complete(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<ResultsResponse>, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let r = state
        .assessments
        .complete(permit.organization_id(), id_of(&id)?)
        .await?;
    Ok(ApiJson(r.into()))
}

/// The results: final once completed, as they stand before.
#[utoipa::path(
    get,
    path = "/assessments/{id}/results",
    tag = "assessments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The assessment's id")),
    responses((status = 200, body = ResultsResponse), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn results(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<ResultsResponse>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let r = state
        .assessments
        .results(permit.organization_id(), id_of(&id)?)
        .await?;
    Ok(ApiJson(r.into()))
}

/// A framework's readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct FrameworkReadiness {
    pub framework: FrameworkRef,
    pub assessment_score: f64,
    /// Share of applicable controls with approved, unexpired evidence (0 until evidence lands).
    pub evidence_coverage: f64,
    /// Share of controls covered by an approved policy (0 until policies land).
    pub policy_coverage: f64,
    pub readiness_score: f64,
    pub band: ruleiq_services::assessments::scoring::Band,
    pub last_assessed_at: DateTime<Utc>,
}

impl From<ruleiq_services::assessments::Readiness> for FrameworkReadiness {
    fn from(r: ruleiq_services::assessments::Readiness) -> Self {
        Self {
            framework: FrameworkRef {
                id: r.framework_id,
                slug: r.framework_slug,
                name: r.framework_name,
            },
            assessment_score: r.assessment_score,
            evidence_coverage: r.evidence_coverage,
            policy_coverage: r.policy_coverage,
            readiness_score: r.readiness_score,
            band: r.band,
            last_assessed_at: r.last_assessed_at,
        }
    }
}

/// Readiness across frameworks.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceStatus {
    /// The mean readiness of the assessed frameworks (0 when none is).
    pub overall_score: f64,
    pub frameworks: Vec<FrameworkReadiness>,
}

/// Readiness per framework from its latest completed assessment: 0.5 × assessment
/// score + 0.3 × evidence coverage + 0.2 × policy coverage.
#[utoipa::path(
    get,
    path = "/compliance/status",
    tag = "assessments",
    security(("bearer" = [])),
    responses((status = 200, body = ComplianceStatus), (status = 401, body = Problem))
)]
async fn status(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<ComplianceStatus>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let status = state
        .dashboard
        .status(permit.organization_id())
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiJson(ComplianceStatus {
        overall_score: ruleiq_services::dashboard::overall(&status),
        frameworks: status.into_iter().map(FrameworkReadiness::from).collect(),
    }))
}

/// One answer in the original system's shape.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegacyAnswer {
    pub question_id: String,
    /// Either `response` or `answer`.
    pub response: Option<Answer>,
    pub answer: Option<Answer>,
    pub notes: Option<String>,
}

/// The original system's body: one answer, or `{answers: [...]}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LegacyResponses {
    Many { answers: Vec<LegacyAnswer> },
    One(LegacyAnswer),
}

/// The answers saved.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerList {
    pub items: Vec<AnswerResponse>,
}

/// Compatibility: the original system's `POST /assessments/{id}/responses`, saving one
/// answer or several (each as `PUT /assessments/{id}/answers/{question_id}`).
#[utoipa::path(
    post,
    path = "/assessments/{id}/responses",
    tag = "assessments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The assessment's id")),
    request_body = LegacyResponses,
    responses((status = 200, body = AnswerList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
async fn responses(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<LegacyResponses>,
) -> Result<ApiJson<AnswerList>, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let id = id_of(&id)?;
    let answers = match body {
        LegacyResponses::Many { answers } => answers,
        LegacyResponses::One(one) => vec![one],
    };
    if answers.is_empty() || answers.len() > 500 {
        return Err(invalid("answers", "send 1 to 500 answers"));
    }
    // Check the shape of every answer before saving any.
    let mut parsed = Vec::with_capacity(answers.len());
    for a in answers {
        let response = a
            .response
            .or(a.answer)
            .ok_or_else(|| invalid("response", "give `response` (or `answer`)"))?;
        let question_id: Uuid = a
            .question_id
            .parse()
            .map_err(|_| ApiError::NotFound("no such question in this assessment".into()))?;
        parsed.push((question_id, response, a.notes));
    }
    let mut items = Vec::with_capacity(parsed.len());
    for (question_id, response, notes) in parsed {
        let saved = state
            .assessments
            .answer(
                permit.organization_id(),
                principal.user_id,
                id,
                question_id,
                response,
                notes,
                Vec::new(),
            )
            .await?;
        items.push(saved.into());
    }
    Ok(ApiJson(AnswerList { items }))
}
