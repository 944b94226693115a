//! `/frameworks`, `/controls` and `/business-profile`: the library, comparison,
//! applicability, and OSCAL exchange.

use axum::{
    body::{Body, Bytes},
    extract::{OriginalUri, Path, Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use ruleiq_core::{Criticality, Permission, Relation};
use ruleiq_services::{
    frameworks::{
        Comparison, ControlFilter, ControlView, FrameworkSummary,
        oscal::{self, ImportError},
    },
    profiles::ProfileError,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    extract::{AuthUser, Client},
    problem::{ApiError, ApiJson, ApiQuery, FieldError, Problem},
    state::AppState,
};

/// The framework routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(recommendations))
        .routes(routes!(compare))
        .routes(routes!(import))
        .routes(routes!(get, delete))
        .routes(routes!(controls))
        .routes(routes!(export))
        .routes(routes!(control))
}

/// A heading of a framework.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainResponse {
    #[serde(rename = "ref")]
    pub reference: String,
    pub name: String,
    pub parent_ref: Option<String>,
    /// Controls under this heading, sub-headings included.
    pub control_count: i64,
}

/// A framework.
#[derive(Debug, Serialize, ToSchema)]
pub struct FrameworkResponse {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub version: String,
    pub publisher: String,
    pub jurisdiction: String,
    pub description: String,
    pub url: Option<String>,
    /// `library` (built in) or `oscal` (imported by your organisation).
    pub source: String,
    /// Revision of ruleIQ's content for this framework.
    pub content_version: i32,
    pub control_count: i64,
    pub domains: Vec<DomainResponse>,
}

impl From<FrameworkSummary> for FrameworkResponse {
    fn from(f: FrameworkSummary) -> Self {
        Self {
            id: f.id,
            slug: f.slug,
            name: f.name,
            version: f.version,
            publisher: f.publisher,
            jurisdiction: f.jurisdiction,
            description: f.description,
            url: f.url,
            source: f.source,
            content_version: f.content_version,
            control_count: f.control_count,
            domains: f
                .domains
                .into_iter()
                .map(|d| DomainResponse {
                    reference: d.reference,
                    name: d.name,
                    parent_ref: d.parent,
                    control_count: d.control_count,
                })
                .collect(),
        }
    }
}

/// The frameworks.
#[derive(Debug, Serialize, ToSchema)]
pub struct FrameworkList {
    pub items: Vec<FrameworkResponse>,
    pub next_cursor: Option<String>,
}

/// A question that assesses a control.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionResponse {
    pub id: Uuid,
    pub text: String,
    pub help: Option<String>,
    /// From the shared bank: one answer serves every control it is linked to.
    pub shared: bool,
}

/// A relation to a control of another framework.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingResponse {
    pub control_id: Uuid,
    pub framework_slug: String,
    #[serde(rename = "ref")]
    pub reference: String,
    /// How this control's scope compares with the other's.
    pub relation: Relation,
}

/// A control.
#[derive(Debug, Serialize, ToSchema)]
pub struct ControlResponse {
    pub id: Uuid,
    pub framework_id: Uuid,
    pub framework_slug: String,
    #[serde(rename = "ref")]
    pub reference: String,
    /// The control this one enhances (OSCAL imports).
    pub parent_ref: Option<String>,
    pub title: String,
    pub description: String,
    pub domain: Option<String>,
    pub guidance: String,
    pub criticality: Criticality,
    pub evidence_examples: Vec<String>,
    pub questions: Vec<QuestionResponse>,
    pub mappings: Vec<MappingResponse>,
}

impl From<ControlView> for ControlResponse {
    fn from(c: ControlView) -> Self {
        Self {
            id: c.id,
            framework_id: c.framework_id,
            framework_slug: c.framework_slug,
            reference: c.reference,
            parent_ref: c.parent,
            title: c.title,
            description: c.description,
            domain: c.domain,
            guidance: c.guidance,
            criticality: c.criticality,
            evidence_examples: c.evidence_examples,
            questions: c
                .questions
                .into_iter()
                .map(|q| QuestionResponse {
                    id: q.id,
                    text: q.text,
                    help: q.help,
                    shared: q.shared,
                })
                .collect(),
            mappings: c
                .mappings
                .into_iter()
                .map(|m| MappingResponse {
                    control_id: m.control_id,
                    framework_slug: m.framework_slug,
                    reference: m.reference,
                    relation: m.relation,
                })
                .collect(),
        }
    }
}

/// A page of controls.
#[derive(Debug, Serialize, ToSchema)]
pub struct ControlPage {
    pub items: Vec<ControlResponse>,
    pub next_cursor: Option<String>,
}

/// Filters and paging for controls.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ControlParams {
    /// A heading's ref; controls under its sub-headings are included.
    pub domain: Option<String>,
    /// Words that must all appear in the ref, title, description or guidance.
    pub q: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

pub(crate) fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::Validation {
        detail: format!("{field}: {message}"),
        errors: vec![FieldError {
            field: field.into(),
            message: message.into(),
        }],
    }
}

/// Answers a catalogue read from the response cache when nothing in the caller's
/// reach changed since it was rendered, else renders and keeps it.
async fn cached<T, F, Fut>(
    state: &AppState,
    org: Uuid,
    request: &RequestParts,
    render: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let revision = state
        .catalog
        .revision(Some(org))
        .await
        .map_err(ApiError::internal)?;
    let key = format!(
        "{org} {}",
        request
            .uri
            .path_and_query()
            .map_or(request.uri.path(), |p| p.as_str())
    );
    if let Some(hit) = state.responses.get(&key, &revision) {
        return Ok(hit.response(&request.headers));
    }
    let lock = state.responses.render_lock(&key);
    let _rendering = lock.lock().await;
    if let Some(hit) = state.responses.get(&key, &revision) {
        return Ok(hit.response(&request.headers));
    }
    let value = render().await?;
    let plain = Bytes::from(serde_json::to_vec(&value).map_err(ApiError::internal)?);
    let rendered = crate::cache::Rendered::new(plain);
    state.responses.put(key, revision, rendered.clone());
    Ok(rendered.response(&request.headers))
}

/// What a cached read needs of its request.
#[derive(Debug)]
struct RequestParts {
    uri: axum::http::Uri,
    /// Only `Accept-Encoding` matters to the answer.
    headers: axum::http::HeaderMap,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestParts {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        let mut headers = axum::http::HeaderMap::new();
        for v in parts.headers.get_all(header::ACCEPT_ENCODING) {
            headers.append(header::ACCEPT_ENCODING, v.clone());
        }
        Ok(Self { uri, headers })
    }
}

fn no_framework(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no framework {id:?} in the library or your organisation's imports"
    ))
}

/// The library and your organisation's imports.
#[utoipa::path(
    get,
    path = "/frameworks",
    tag = "frameworks",
    security(("bearer" = [])),
    responses((status = 200, body = FrameworkList), (status = 401, body = Problem))
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    request: RequestParts,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let org = permit.organization_id().as_uuid();
    cached(&state, org, &request, || async {
        let items = state
            .catalog
            .list(Some(org))
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(FrameworkResponse::from)
            .collect();
        Ok(FrameworkList {
            items,
            next_cursor: None,
        })
    })
    .await
}

/// One framework, by id or slug.
#[utoipa::path(
    get,
    path = "/frameworks/{id}",
    tag = "frameworks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The framework's id or slug")),
    responses((status = 200, body = FrameworkResponse), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn get(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    request: RequestParts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let org = permit.organization_id().as_uuid();
    cached(&state, org, &request, || async {
        let f = state
            .catalog
            .get(Some(org), &id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| no_framework(&id))?;
        Ok(FrameworkResponse::from(f))
    })
    .await
}

/// Deletes a framework your organisation imported (library frameworks cannot be
/// deleted).
#[utoipa::path(
    delete,
    path = "/frameworks/{id}",
    tag = "frameworks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The framework's id or slug")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem))
)]
async fn delete(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let org = permit.organization_id().as_uuid();
    let f = state
        .catalog
        .find_model(Some(org), &id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| no_framework(&id))?;
    if f.organization_id != Some(org) {
        return Err(ApiError::Conflict(
            "this framework belongs to the shared library, not to your organisation, and cannot be deleted here".into(),
        ));
    }
    let deleted = state
        .catalog
        .delete_imported(org, f.id)
        .await
        .map_err(ApiError::internal)?;
    if !deleted {
        return Err(no_framework(&id));
    }
    audit_after_commit(
        &state,
        ruleiq_services::audit::AuditEvent::new(
            "framework.deleted",
            Some(org),
            Some(principal.user_id.as_uuid()),
        )
        .target("framework", f.id)
        .details(serde_json::json!({"slug": f.slug})),
        &client,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Records an audit entry for a change already committed: a failure here is logged
/// loudly rather than turned into an error for a change that did happen.
async fn audit_after_commit(
    state: &AppState,
    event: ruleiq_services::audit::AuditEvent,
    client: &ruleiq_services::audit::ClientInfo,
) {
    if let Err(e) = state.audit.record(event, client).await {
        tracing::error!(error = %e, "a committed change could not be written to the audit log");
    }
}

/// A framework's controls in published order, with questions and mappings.
#[utoipa::path(
    get,
    path = "/frameworks/{id}/controls",
    tag = "frameworks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The framework's id or slug"), ControlParams),
    responses((status = 200, body = ControlPage), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
async fn controls(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    request: RequestParts,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<ControlParams>,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let org = Some(permit.organization_id().as_uuid());
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(invalid("limit", "must be between 1 and 200"));
    }
    let after = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<i32>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| invalid("cursor", "is not one this server issued"))?,
        ),
    };
    if params.q.as_deref().is_some_and(|q| q.chars().count() > 200) {
        return Err(invalid("q", "keep it under 200 characters"));
    }
    let org_id = permit.organization_id().as_uuid();
    let state2 = state.clone();
    cached(&state, org_id, &request, || async move {
        let state = state2;
        let framework = state
            .catalog
            .get(org, &id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| no_framework(&id))?;
        let domain = params.domain.filter(|d| !d.is_empty());
        if let Some(d) = &domain
            && !framework.domains.iter().any(|x| &x.reference == d)
        {
            return Err(invalid(
                "domain",
                &format!("{} has no heading {d:?}", framework.slug),
            ));
        }
        let filter = ControlFilter {
            domain,
            q: params.q.filter(|q| !q.trim().is_empty()),
            after,
            limit,
        };
        let (views, next) = state
            .catalog
            .controls(org, &framework, &filter)
            .await
            .map_err(ApiError::internal)?;
        let next_cursor = next.map(|p| p.to_string());
        Ok(ControlPage {
            items: views.into_iter().map(ControlResponse::from).collect(),
            next_cursor,
        })
    })
    .await
}

/// One control.
#[utoipa::path(
    get,
    path = "/controls/{id}",
    tag = "frameworks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The control's id")),
    responses((status = 200, body = ControlResponse), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn control(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    request: RequestParts,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let org = permit.organization_id().as_uuid();
    let not_found = || ApiError::NotFound("no such control within your reach".into());
    let id = id.parse::<Uuid>().map_err(|_| not_found())?;
    let state2 = state.clone();
    cached(&state, org, &request, || async move {
        let c = state2
            .catalog
            .control(Some(org), id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(not_found)?;
        Ok(ControlResponse::from(c))
    })
    .await
}

/// Two frameworks to compare.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    /// Two framework ids or slugs.
    pub framework_ids: Vec<String>,
}

/// A framework's side of a comparison.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompareSide {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub control_count: i64,
    /// Its controls with at least one mapping into the other framework.
    pub mapped_controls: usize,
    /// `mapped_controls` as a percentage of `control_count`, one decimal place.
    pub covered_percent: f64,
}

/// One end of a mapped pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairEnd {
    pub control_id: Uuid,
    #[serde(rename = "ref")]
    pub reference: String,
}

/// A mapped pair, read from the first framework's side.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairResponse {
    pub a: PairEnd,
    pub b: PairEnd,
    pub relation: Relation,
}

/// The comparison.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompareResponse {
    pub a: CompareSide,
    pub b: CompareSide,
    pub pairs: Vec<PairResponse>,
}

impl From<Comparison> for CompareResponse {
    fn from(c: Comparison) -> Self {
        Self {
            a: CompareSide {
                id: c.a.id,
                slug: c.a.slug,
                name: c.a.name,
                control_count: c.a.control_count,
                mapped_controls: c.a_mapped,
                covered_percent: c.a_covered_by_b,
            },
            b: CompareSide {
                id: c.b.id,
                slug: c.b.slug,
                name: c.b.name,
                control_count: c.b.control_count,
                mapped_controls: c.b_mapped,
                covered_percent: c.b_covered_by_a,
            },
            pairs: c
                .pairs
                .into_iter()
                .map(|p| PairResponse {
                    a: PairEnd {
                        control_id: p.a_control_id,
                        reference: p.a_ref,
                    },
                    b: PairEnd {
                        control_id: p.b_control_id,
                        reference: p.b_ref,
                    },
                    relation: p.relation,
                })
                .collect(),
        }
    }
}

/// The mapped control pairs of two frameworks and how much of each the other covers.
#[utoipa::path(
    post,
    path = "/frameworks/compare",
    tag = "frameworks",
    security(("bearer" = [])),
    request_body = CompareRequest,
    responses((status = 200, body = CompareResponse), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
async fn compare(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiJson(req): ApiJson<CompareRequest>,
) -> Result<ApiJson<CompareResponse>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let org = Some(permit.organization_id().as_uuid());
    let [a, b] = req.framework_ids.as_slice() else {
        return Err(invalid("framework_ids", "name exactly two frameworks"));
    };
    let fa = state
        .catalog
        .get(org, a)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| no_framework(a))?;
    let fb = state
        .catalog
        .get(org, b)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| no_framework(b))?;
    if fa.id == fb.id {
        return Err(invalid("framework_ids", "name two different frameworks"));
    }
    let comparison = state
        .catalog
        .compare(fa, fb)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiJson(comparison.into()))
}

/// The framework a recommendation is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct FrameworkRef {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

/// Whether a framework applies to your organisation, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendationResponse {
    pub framework: FrameworkRef,
    pub applicable: bool,
    pub mandatory: bool,
    /// 0–100.
    pub relevance_score: u8,
    pub reasons: Vec<String>,
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Invalid { field, message } => invalid(field, message),
            ProfileError::UnknownFramework(m) => ApiError::Validation {
                detail: m.clone(),
                errors: vec![FieldError {
                    field: "planned_frameworks".into(),
                    message: m,
                }],
            },
            ProfileError::Missing => ApiError::NotFound(e.to_string()),
            ProfileError::Db(db) => ApiError::internal(db),
        }
    }
}

/// Which frameworks apply, from the organisation's business profile, most relevant
/// first.
#[utoipa::path(
    get,
    path = "/frameworks/recommendations",
    tag = "frameworks",
    security(("bearer" = [])),
    responses(
        (status = 200, body = [RecommendationResponse]),
        (status = 401, body = Problem),
        (status = 404, description = "No business profile saved yet", body = Problem),
    )
)]
async fn recommendations(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<Vec<RecommendationResponse>>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let items = state
        .profiles
        .recommendations(permit.organization_id(), &state.catalog)
        .await?
        .into_iter()
        .map(|r| RecommendationResponse {
            framework: FrameworkRef {
                id: r.framework_id,
                slug: r.slug,
                name: r.name,
            },
            applicable: r.verdict.applicable,
            mandatory: r.verdict.mandatory,
            relevance_score: r.verdict.relevance_score,
            reasons: r.verdict.reasons,
        })
        .collect();
    Ok(ApiJson(items))
}

/// Imports an OSCAL 1.x catalog (JSON) as a framework of your organisation. The same
/// catalog (by its `uuid`) at the same `metadata.version` is refused with 409; a new
/// version imports as a new framework beside the old one.
#[utoipa::path(
    post,
    path = "/frameworks/import",
    tag = "frameworks",
    security(("bearer" = [])),
    request_body(content = serde_json::Value, content_type = "application/json", description = "An OSCAL catalog document"),
    responses(
        (status = 201, body = FrameworkResponse),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 409, description = "Already imported", body = Problem),
        (status = 413, body = Problem),
        (status = 415, body = Problem),
        (status = 422, description = "Not a valid OSCAL catalog; `errors[0].field` is the JSON path", body = Problem),
    )
)]
async fn import(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    request: Request,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let org = permit.organization_id().as_uuid();
    let limit = state.settings.uploads.max_upload_size;
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "an OSCAL catalog may be at most {} MB (MAX_UPLOAD_SIZE)",
            limit / (1024 * 1024)
        ))
    };
    let headers = request.headers();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.starts_with("application/json")
                || (v.starts_with("application/") && v.contains("+json"))
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType(
            "send the catalog as JSON with `Content-Type: application/json`".into(),
        ));
    }
    // Refuse a declared oversize body before reading a byte of it.
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(
        request.into_body(),
        usize::try_from(limit).unwrap_or(usize::MAX),
    )
    .await
    .map_err(|_| too_large())?;
    let imported = oscal::import(&state.db, Some(org), &body, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            ImportError::Invalid { path, message } => ApiError::Validation {
                detail: format!("not a valid OSCAL catalog: {path}: {message}"),
                errors: vec![FieldError {
                    field: path,
                    message,
                }],
            },
            ImportError::Duplicate { .. } => ApiError::Conflict(e.to_string()),
            ImportError::Db(db) => ApiError::internal(db),
        })?;
    state.catalog.changed();
    audit_after_commit(
        &state,
        ruleiq_services::audit::AuditEvent::new(
            "framework.imported",
            Some(org),
            Some(principal.user_id.as_uuid()),
        )
        .target("framework", imported.id)
        .details(serde_json::json!({"slug": imported.slug, "controls": imported.controls})),
        &client,
    )
    .await;
    let f = state
        .catalog
        .get(Some(org), &imported.id.to_string())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::Internal("imported framework vanished".into()))?;
    let location = format!(
        "{}/frameworks/{}",
        state.settings.server.api_v1_prefix, imported.id
    );
    let mut response = (StatusCode::CREATED, ApiJson(FrameworkResponse::from(f))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Export options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Only `oscal` (an OSCAL 1.1 catalog in JSON).
    pub format: Option<String>,
}

/// The framework as an OSCAL 1.1 catalog, with ruleIQ's questions, evidence examples,
/// criticality and mappings in its own namespace.
#[utoipa::path(
    get,
    path = "/frameworks/{id}/export",
    tag = "frameworks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The framework's id or slug"), ExportParams),
    responses((status = 200, description = "An OSCAL catalog", body = serde_json::Value), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
async fn export(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let org = Some(permit.organization_id().as_uuid());
    if params.format.as_deref().unwrap_or("oscal") != "oscal" {
        return Err(invalid("format", "only `oscal` is supported"));
    }
    let f = state
        .catalog
        .find_model(org, &id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| no_framework(&id))?;
    let doc = oscal::export(&state.db, org, &f)
        .await
        .map_err(ApiError::internal)?;
    let body = serde_json::to_vec_pretty(&doc).map_err(ApiError::internal)?;
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-oscal-catalog.json\"",
        f.slug
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
