//! `/evidence`: uploads (multipart, streamed) and links, the library with its
//! filters, downloads with `ETag` and `Range`, versions, the controls an item backs,
//! and the submit/approve/reject workflow.

use axum::{
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use ruleiq_core::Permission;
use ruleiq_services::evidence::{
    EventView, EvidenceChange, EvidenceError, EvidenceView, ListQuery, NewEvidence, Stats,
    VersionView,
    workflow::{Action, Status},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    api::frameworks::invalid,
    extract::{AuthUser, Client},
    problem::{ApiError, ApiJson, ApiQuery, Problem},
    state::AppState,
    upload,
};

/// The evidence routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(stats))
        .routes(routes!(get, update, delete))
        .routes(routes!(download))
        .routes(routes!(add_version, versions))
        .routes(routes!(history))
        .routes(routes!(set_controls))
        .routes(routes!(submit))
        .routes(routes!(approve))
        .routes(routes!(reject))
}

impl From<EvidenceError> for ApiError {
    fn from(e: EvidenceError) -> Self {
        match e {
            EvidenceError::NotFound(m) => ApiError::NotFound(m.into()),
            EvidenceError::Conflict(m) => ApiError::Conflict(m),
            EvidenceError::Invalid { field, message } => invalid(field, &message),
            EvidenceError::BadUpload(m) => ApiError::BadRequest(m),
            e @ EvidenceError::TooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
            EvidenceError::Unsupported(m) => ApiError::UnsupportedMediaType(m),
            EvidenceError::Empty => invalid("file", "the file is empty"),
            e @ (EvidenceError::Store(_) | EvidenceError::Db(_)) => ApiError::internal(e),
        }
    }
}

fn id_of(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("no such evidence in your organisation".into()))
}

/// A link as evidence (a file is sent as `multipart/form-data` instead).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    pub title: String,
    /// An http(s) address.
    pub url: String,
    pub description: Option<String>,
    /// policy, procedure, log, certificate, configuration, screenshot, report,
    /// training_record or other.
    pub evidence_type: String,
    #[serde(default)]
    pub control_ids: Vec<Uuid>,
    pub effective_date: Option<NaiveDate>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The multipart form of a file upload, for the OpenAPI document.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CreateUpload {
    /// The file; its extension must be in `ALLOWED_EXTENSIONS` and its content must
    /// agree with it.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    pub title: String,
    pub description: Option<String>,
    pub evidence_type: String,
    /// Repeat the field for several controls.
    pub control_ids: Vec<Uuid>,
    /// YYYY-MM-DD.
    pub effective_date: Option<NaiveDate>,
    /// RFC 3339, or YYYY-MM-DD for midnight UTC at the start of that day.
    pub expires_at: Option<String>,
}

/// Parses `expires_at` from a form: RFC 3339, or a date meaning midnight UTC.
fn parse_expiry(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| {
            raw.parse::<NaiveDate>()
                .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        })
        .map_err(|_| {
            invalid(
                "expires_at",
                "must be a date (YYYY-MM-DD) or an RFC 3339 time",
            )
        })
}

/// The fields of a new item from an upload form.
pub(crate) fn new_from_form(form: &upload::Upload) -> Result<NewEvidence, ApiError> {
    let control_ids = form
        .all("control_ids")
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<Uuid>()
                .map_err(|_| invalid("control_ids", &format!("`{v}` is not a control id")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NewEvidence {
        title: form.text("title").unwrap_or_default(),
        description: form.text("description"),
        evidence_type: form.text("evidence_type").unwrap_or_else(|| "other".into()),
        url: None,
        control_ids,
        effective_date: form
            .text("effective_date")
            .map(|d| {
                d.parse::<NaiveDate>()
                    .map_err(|_| invalid("effective_date", "must be a date (YYYY-MM-DD)"))
            })
            .transpose()?,
        expires_at: form
            .text("expires_at")
            .map(|d| parse_expiry(&d))
            .transpose()?,
    })
}

/// Adds evidence: a file as `multipart/form-data` (streamed to storage as it
/// arrives), or a link as JSON.
#[utoipa::path(
    post,
    path = "/evidence",
    tag = "evidence",
    security(("bearer" = [])),
    request_body(content(
        (CreateUpload = "multipart/form-data"),
        (CreateLink = "application/json"),
    )),
    responses(
        (status = 201, body = EvidenceView),
        (status = 400, description = "A malformed multipart body", body = Problem),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 413, description = "Over MAX_UPLOAD_SIZE", body = Problem),
        (status = 415, description = "An extension outside ALLOWED_EXTENSIONS, or content that contradicts it", body = Problem),
        (status = 422, description = "An empty file, no file, two files, or a bad field", body = Problem),
    )
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    request: Request,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let view = if let Some(boundary) = upload::boundary(request.headers()) {
        let form = upload::read(&state.evidence, boundary, request.into_body(), |_| Ok(())).await?;
        let file = form.file.clone().ok_or_else(|| {
            invalid(
                "file",
                "no file part named `file`; send one, or JSON for a link",
            )
        })?;
        let new = new_from_form(&form)?;
        state
            .evidence
            .create(&permit, new, Some(file), &client)
            .await?
    } else {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send a file as multipart/form-data, or a link as application/json".into(),
            ));
        }
        let ApiJson(link) =
            <ApiJson<CreateLink> as axum::extract::FromRequest<AppState>>::from_request(
                request, &state,
            )
            .await?;
        state
            .evidence
            .create(
                &permit,
                NewEvidence {
                    title: link.title,
                    description: link.description,
                    evidence_type: link.evidence_type,
                    url: Some(link.url),
                    control_ids: link.control_ids,
                    effective_date: link.effective_date,
                    expires_at: link.expires_at,
                },
                None,
                &client,
            )
            .await?
    };
    Ok((StatusCode::CREATED, ApiJson(view)).into_response())
}

/// Filters for the evidence library.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// draft, submitted, approved, rejected or expired.
    pub status: Option<Status>,
    pub evidence_type: Option<String>,
    pub control_id: Option<Uuid>,
    pub framework_id: Option<Uuid>,
    /// Words in the title, description or file name.
    pub q: Option<String>,
    /// Items whose `expires_at` falls within this many days (and not yet expired).
    pub expiring_within_days: Option<u32>,
    /// `true`: items submitted by someone else, awaiting your decision.
    pub awaiting_my_approval: Option<bool>,
    /// 1–200, default 50.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of evidence.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceList {
    pub items: Vec<EvidenceView>,
    pub next_cursor: Option<String>,
}

/// The organisation's evidence, newest first.
#[utoipa::path(
    get,
    path = "/evidence",
    tag = "evidence",
    security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = EvidenceList), (status = 401, body = Problem), (status = 422, body = Problem))
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<ApiJson<EvidenceList>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(invalid("limit", "must be between 1 and 200"));
    }
    let page = state
        .evidence
        .list(
            permit.organization_id(),
            ListQuery {
                status: p.status,
                evidence_type: p.evidence_type,
                control_id: p.control_id,
                framework_id: p.framework_id,
                q: p.q,
                expiring_within_days: p.expiring_within_days,
                awaiting_approval_by: p
                    .awaiting_my_approval
                    .unwrap_or(false)
                    .then(|| principal.user_id.as_uuid()),
                cursor: p.cursor.filter(|c| !c.is_empty()),
                limit,
            },
        )
        .await?;
    Ok(ApiJson(EvidenceList {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Counts by status and type, items expiring within 30 days, and control coverage.
#[utoipa::path(
    get,
    path = "/evidence/stats",
    tag = "evidence",
    security(("bearer" = [])),
    responses((status = 200, body = Stats), (status = 401, body = Problem))
)]
async fn stats(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
) -> Result<ApiJson<Stats>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    Ok(ApiJson(
        state.evidence.stats(permit.organization_id()).await?,
    ))
}

/// One item.
#[utoipa::path(
    get,
    path = "/evidence/{id}",
    tag = "evidence",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    responses((status = 200, body = EvidenceView), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn get(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<EvidenceView>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    Ok(ApiJson(
        state
            .evidence
            .get(permit.organization_id(), id_of(&id)?)
            .await?,
    ))
}

/// A change to an item. A change to an item that is submitted, approved or expired
/// returns it to `draft` for a new review.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidencePatch {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "crate::api::plans::present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub evidence_type: Option<String>,
    #[serde(default, deserialize_with = "crate::api::plans::present")]
    #[schema(value_type = Option<NaiveDate>)]
    pub effective_date: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "crate::api::plans::present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

/// Changes an item's title, description, type or dates (audited).
#[utoipa::path(
    patch,
    path = "/evidence/{id}",
    tag = "evidence",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    request_body = EvidencePatch,
    responses((status = 200, body = EvidenceView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
async fn update(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<EvidencePatch>,
) -> Result<ApiJson<EvidenceView>, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let change = EvidenceChange {
        title: patch.title,
        description: patch.description,
        evidence_type: patch.evidence_type,
        effective_date: patch.effective_date,
        expires_at: patch.expires_at,
    };
    Ok(ApiJson(
        state
            .evidence
            .update(&permit, id_of(&id)?, change, &client)
            .await?,
    ))
}

/// Deletes an item softly: it leaves every list, search and download, and its
/// record stays for the audit trail.
#[utoipa::path(
    delete,
    path = "/evidence/{id}",
    tag = "evidence",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem))
)]
async fn delete(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    state.evidence.delete(&permit, id_of(&id)?, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which version to download.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DownloadParams {
    /// A version number; the current one by default.
    pub version: Option<i32>,
}

/// A byte range asked for, against a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    All,
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads a `Range` header. Anything but one `bytes=` range is answered with the whole
/// file, as RFC 9110 allows.
pub(crate) fn wanted(headers: &HeaderMap, size: u64, etag: &str) -> Wanted {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Wanted::All;
    };
    // A conditional range for another version of the file: send all of it.
    if let Some(cond) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok())
        && cond != etag
    {
        return Wanted::All;
    }
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return Wanted::All;
    };
    if spec.contains(',') {
        return Wanted::All;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Wanted::All;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(start), Some(end)) if start <= end => (start, end.min(size.saturating_sub(1))),
        (Some(start), None) if b.is_empty() => (start, size.saturating_sub(1)),
        (None, Some(suffix)) if a.is_empty() => {
            if suffix == 0 {
                return Wanted::Unsatisfiable;
            }
            (size.saturating_sub(suffix), size.saturating_sub(1))
        }
        _ => return Wanted::All,
    };
    if size == 0 || range.0 >= size {
        Wanted::Unsatisfiable
    } else {
        Wanted::Part(range.0, range.1)
    }
}

/// `attachment; filename="…"; filename*=UTF-8''…` with the name made header-safe.
pub(crate) fn disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Streams a stored file with its headers; shared with the pages.
pub(crate) async fn send_file(
    state: &AppState,
    org: ruleiq_core::OrganizationId,
    id: Uuid,
    version: Option<i32>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let file = state.evidence.file(org, id, version).await?;
    let etag = format!("\"{}\"", file.sha256);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let size = file.size_bytes;
    let (status, range) = match wanted(headers, size, &etag) {
        Wanted::All => (StatusCode::OK, None),
        Wanted::Part(a, b) => (StatusCode::PARTIAL_CONTENT, Some((a, b))),
        Wanted::Unsatisfiable => {
            let mut r = Problem::for_status(StatusCode::RANGE_NOT_SATISFIABLE).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let (_, stream) = state
        .evidence
        .download(org, id, version, range.map(|(a, b)| a..b + 1))
        .await?;
    let length = range.map_or(size, |(a, b)| b - a + 1);
    let mut response = Response::new(Body::from_stream(
        stream.map(|r| r.map_err(|e| std::io::Error::other(e.to_string()))),
    ));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&file.content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::CONTENT_DISPOSITION, disposition(&file.name));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some((a, b)) = range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{size}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    // Evidence is confidential: never kept by a shared cache.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

/// The file's bytes (`Content-Disposition: attachment`, `ETag` = its SHA-256);
/// `Range` and `If-None-Match` are honoured.
#[utoipa::path(
    get,
    path = "/evidence/{id}/download",
    tag = "evidence",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id"), DownloadParams),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 206, description = "Part of the file"),
        (status = 304, description = "Unchanged since the ETag given"),
        (status = 401, body = Problem),
        (status = 404, description = "No such item, a link, or a deleted item", body = Problem),
        (status = 416, description = "A range outside the file", body = Problem),
    )
)]
async fn download(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<DownloadParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    send_file(
        &state,
        permit.organization_id(),
        id_of(&id)?,
        p.version,
        &headers,
    )
    .await
}

/// The multipart form of a new version.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CreateVersion {
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Uploads a new version of the file; the item returns to `draft`.
#[utoipa::path(
    post,
    path = "/evidence/{id}/versions",
    tag = "evidence",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    request_body(content = CreateVersion, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = EvidenceView),
        (status = 400, body = Problem),
        (status = 401, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "A link, or a version added at the same moment", body = Problem),
        (status = 413, body = Problem),
        (status = 415, body = Problem),
        (status = 422, body = Problem),
    )
)]
async fn add_version(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    let id = id_of(&id)?;
    // Refuse another organisation's (or a missing) item before storing a byte.
    state.evidence.get(permit.organization_id(), id).await?;
    let boundary = upload::boundary(request.headers()).ok_or_else(|| {
        ApiError::UnsupportedMediaType("send the new version as multipart/form-data".into())
    })?;
    let form = upload::read(&state.evidence, boundary, request.into_body(), |_| Ok(())).await?;
    let file = form
        .file
        .ok_or_else(|| invalid("file", "no file part named `file`"))?;
    let view = state
        .evidence
        .add_version(&permit, id, file, &client)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(view)).into_response())
}

/// Every version of the file, newest first, with its hash.
#[utoipa::path(
    get,
    path = "/evidence/{id}/versions",
    tag = "evidence",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    responses((status = 200, body = [VersionView]), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn versions(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<Vec<VersionView>>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    Ok(ApiJson(
        state
            .evidence
            .versions(permit.organization_id(), id_of(&id)?)
            .await?,
    ))
}

/// What happened to the item, oldest first: uploads, edits, decisions and comments.
#[utoipa::path(
    get,
    path = "/evidence/{id}/history",
    tag = "evidence",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    responses((status = 200, body = [EventView]), (status = 401, body = Problem), (status = 404, body = Problem))
)]
async fn history(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Path(id): Path<String>,
) -> Result<ApiJson<Vec<EventView>>, ApiError> {
    let permit = principal.require(Permission::ComplianceRead)?;
    Ok(ApiJson(
        state
            .evidence
            .history(permit.organization_id(), id_of(&id)?)
            .await?,
    ))
}

/// The controls an item backs, in any frameworks.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlIds {
    pub control_ids: Vec<Uuid>,
}

/// Replaces the controls an item backs.
#[utoipa::path(
    put,
    path = "/evidence/{id}/controls",
    tag = "evidence",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    request_body = ControlIds,
    responses((status = 200, body = EvidenceView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, description = "A control that does not exist", body = Problem))
)]
async fn set_controls(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ControlIds>,
) -> Result<ApiJson<EvidenceView>, ApiError> {
    let permit = principal.require(Permission::ComplianceWrite)?;
    Ok(ApiJson(
        state
            .evidence
            .set_controls(&permit, id_of(&id)?, body.control_ids, &client)
            .await?,
    ))
}

/// A decision's comment.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub comment: Option<String>,
}

/// A decision's body is optional: none at all, or a JSON object.
/// A JSON body that may be absent (empty, or only whitespace).
pub(crate) async fn optional_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    request: Request,
) -> Result<Option<T>, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, state.settings.server.max_json_body_size)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge("the body is larger than MAX_JSON_BODY_SIZE".into())
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    let ApiJson(d) =
        <ApiJson<T> as axum::extract::FromRequest<AppState>>::from_request(request, state).await?;
    Ok(Some(d))
}

async fn decide(
    state: &AppState,
    principal: &ruleiq_services::identity::Principal,
    client: &ruleiq_services::audit::ClientInfo,
    id: &str,
    action: Action,
    body: Option<Decision>,
) -> Result<ApiJson<EvidenceView>, ApiError> {
    let permission = match action {
        Action::Approve | Action::Reject => Permission::ComplianceApprove,
        _ => Permission::ComplianceWrite,
    };
    let permit = principal.require(permission)?;
    let comment = body.and_then(|b| b.comment);
    Ok(ApiJson(
        state
            .evidence
            .transition(&permit, id_of(id)?, action, comment, client)
            .await?,
    ))
}

/// Sends an item for approval (`draft` or `rejected` → `submitted`).
#[utoipa::path(
    post,
    path = "/evidence/{id}/submit",
    tag = "evidence",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    request_body(content = Option<Decision>),
    responses((status = 200, body = EvidenceView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Not in a state that can be submitted", body = Problem))
)]
async fn submit(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
    request: Request,
) -> Result<ApiJson<EvidenceView>, ApiError> {
    let body = optional_body(&state, request).await?;
    decide(&state, &principal, &client, &id, Action::Submit, body).await
}

/// Approves a submitted item. The approver must not be the person who submitted it.
#[utoipa::path(
    post,
    path = "/evidence/{id}/approve",
    tag = "evidence",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    request_body(content = Option<Decision>),
    responses((status = 200, body = EvidenceView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Not submitted, or your own submission", body = Problem))
)]
async fn approve(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
    request: Request,
) -> Result<ApiJson<EvidenceView>, ApiError> {
    let body = optional_body(&state, request).await?;
    decide(&state, &principal, &client, &id, Action::Approve, body).await
}

/// Rejects a submitted item, saying why (`comment` is required).
#[utoipa::path(
    post,
    path = "/evidence/{id}/reject",
    tag = "evidence",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    request_body = Decision,
    responses((status = 200, body = EvidenceView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Not submitted, or your own submission", body = Problem), (status = 422, description = "No comment", body = Problem))
)]
async fn reject(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    Path(id): Path<String>,
    request: Request,
) -> Result<ApiJson<EvidenceView>, ApiError> {
    let body = optional_body(&state, request).await?;
    decide(&state, &principal, &client, &id, Action::Reject, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let e = "\"x\"";
        assert_eq!(wanted(&HeaderMap::new(), 10, e), Wanted::All);
        assert_eq!(wanted(&range("bytes=0-3"), 10, e), Wanted::Part(0, 3));
        assert_eq!(wanted(&range("bytes=5-"), 10, e), Wanted::Part(5, 9));
        assert_eq!(wanted(&range("bytes=-4"), 10, e), Wanted::Part(6, 9));
        assert_eq!(wanted(&range("bytes=8-100"), 10, e), Wanted::Part(8, 9));
        assert_eq!(wanted(&range("bytes=10-"), 10, e), Wanted::Unsatisfiable);
        assert_eq!(wanted(&range("bytes=-0"), 10, e), Wanted::Unsatisfiable);
        assert_eq!(wanted(&range("bytes=0-1,4-5"), 10, e), Wanted::All);
        assert_eq!(wanted(&range("items=0-1"), 10, e), Wanted::All);
        assert_eq!(wanted(&range("bytes=5-2"), 10, e), Wanted::All);
        let mut h = range("bytes=0-3");
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"other\""));
        assert_eq!(wanted(&h, 10, e), Wanted::All);
    }

    #[test]
    fn file_names_in_headers_are_safe() {
        let v = disposition("Rapport d'audit \"final\".pdf");
        let s = v.to_str().unwrap();
        assert!(
            s.starts_with("attachment; filename=\"Rapport d'audit _final_.pdf\""),
            "{s}"
        );
        assert!(
            s.contains("filename*=UTF-8''Rapport%20d%27audit%20%22final%22.pdf"),
            "{s}"
        );
        let v = disposition("política\r\n.pdf");
        assert!(v.to_str().unwrap().contains("pol_tica__.pdf"));
    }
}
