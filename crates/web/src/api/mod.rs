//! The JSON API: one module per domain, each with its own `router()`.

pub mod ai;
pub mod assessments;
pub mod audit;
pub mod auth;
pub mod chat;
pub mod dashboard;
pub mod evidence;
pub mod frameworks;
pub mod health;
pub mod jobs;
pub mod mail;
pub mod monitoring;
pub mod notifications;
pub mod organization;
pub mod plans;
pub mod policies;
pub mod profiles;
pub mod rbac;
pub mod reports;
pub mod search;
#[cfg(test)]
mod tests;
pub mod users;

use axum::{
    Router,
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{from_fn, from_fn_with_state},
    routing::get,
};
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::{
    CompressionLevel,
    catch_panic::CatchPanicLayer,
    compression::{CompressionLayer, DefaultPredicate, Predicate},
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
    request_id::{PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use ruleiq_config::Settings;

use crate::{
    metrics::Metrics,
    middleware::{
        MakeRandomRequestId, X_REQUEST_ID, panic_response, problem_details, record_metrics,
        sanitize_request_id, security_headers,
    },
    problem::Problem,
    state::{AppState, VERSION},
    ui,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ruleIQ API",
        description = "Compliance automation for UK small and medium businesses. Errors are RFC 9457 problem documents (`application/problem+json`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    tags(
        (name = "health", description = "Liveness, readiness and component health"),
        (name = "monitoring", description = "What this instance is doing, from live measurements: components, request latencies, the database pool and slow queries"),
        (name = "identity", description = "Accounts, sign-in, sessions, roles and the audit trail"),
        (name = "jobs", description = "Background jobs of the organisation"),
        (name = "frameworks", description = "The framework library, mappings, applicability, OSCAL exchange and search"),
        (name = "profiles", description = "The organisation's business profile"),
        (name = "assessments", description = "Assessments of a framework, answers and scores"),
        (name = "plans", description = "Implementation plans: gaps as dated, assignable tasks"),
        (name = "dashboard", description = "Where the organisation stands and what needs doing"),
        (name = "evidence", description = "Evidence files and links: uploads, versions, controls, approval and expiry"),
        (name = "policies", description = "Policies: templates, generation, versions, approval and export"),
        (name = "assistant", description = "The compliance assistant: conversations, streamed answers with citations, question help"),
        (name = "ai", description = "AI providers, spending, usage and budgets"),
        (name = "mail", description = "The organisation's outgoing e-mail: what was sent, what waits, what failed"),
        (name = "notifications", description = "The caller's notifications (in the app and by e-mail) and their channel preferences"),
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::problem::Problem, crate::problem::FieldError))
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the protected operations name.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The API routes with their OpenAPI description, under `prefix`.
fn api_routes(prefix: &str) -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .merge(frameworks::router())
        .merge(search::router())
        .merge(profiles::router())
        .merge(assessments::router())
        .merge(plans::router())
        .merge(dashboard::router())
        .merge(evidence::router())
        .merge(policies::router())
        .merge(reports::router())
        .merge(chat::router())
        .merge(ai::router())
        .merge(health::router())
        .merge(monitoring::router())
        .merge(auth::router())
        .merge(rbac::router())
        .merge(organization::router())
        .merge(users::router())
        .merge(jobs::router())
        .merge(mail::router())
        .merge(notifications::router())
        .merge(audit::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest(prefix, api)
}

/// The OpenAPI document of the API mounted at `prefix`.
#[must_use]
pub fn openapi(prefix: &str) -> utoipa::openapi::OpenApi {
    let (_, mut api) = api_routes(prefix).split_for_parts();
    finish(&mut api);
    api
}

/// What the derived document needs once every route has added its schemas.
fn finish(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, schema::Schema};
    doc.info.version = VERSION.to_owned();
    // A business profile refuses unknown fields on input (a 422), which utoipa writes
    // as `additionalProperties: false`. The saved profile flattens it beside `id` and
    // `updated_at`, and under `allOf` that flag would forbid those two, so the answer
    // would break its own schema; the refusal is the request's, not the shape's.
    if let Some(components) = doc.components.as_mut()
        && let Some(RefOr::T(Schema::Object(profile))) =
            components.schemas.get_mut("BusinessProfile")
    {
        profile.additional_properties = None;
    }
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    let prefix = settings.server.api_v1_prefix.clone();
    let (api, mut doc) = api_routes(&prefix).split_for_parts();
    finish(&mut doc);

    // `/api/*` is never cached by browsers or CDNs (roadmap: CDN page rules).
    let api = api
        .route_layer(from_fn_with_state(state.clone(), crate::ratelimit::limit))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));

    let app = Router::new()
        .merge(api)
        .merge(SwaggerUi::new("/api/docs").url(format!("{prefix}/openapi.json"), doc))
        .route("/metrics", get(monitoring::scrape))
        .merge(ui::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    // Inside the panic catcher, so a panic is reported (by the hook) with this
    // request's route and id while it unwinds, and once.
    let app = match crate::error_reports::start_reporter(&settings) {
        Some(reporter) => app.layer(from_fn_with_state(
            reporter,
            crate::error_reports::report_server_errors,
        )),
        None => app,
    };
    // Outside the error report, which sees the failure that closed the gate, and
    // not every request turned away after it.
    let app = app.layer(from_fn_with_state(state.clone(), crate::db_gate::guard));
    // Outermost of the application's own layers: a shed request costs no more than
    // the check, and the metrics and request id (outside) still see it.
    let app = app.layer(from_fn_with_state(state.clone(), crate::shed::admit));

    with_middleware(app, &settings, state.metrics.clone())
}

/// Wraps `app` in the layers every response passes through. Outermost first: the
/// request id exists before anything logs, and every error made by an inner layer
/// is turned into a problem that carries it.
pub fn with_middleware(app: Router, settings: &Settings, metrics: Metrics) -> Router {
    let cors = cors_layer(
        &settings.server.allowed_origins,
        settings.server.cors_allow_credentials,
    );
    let hsts = settings.environment.is_production();
    app.layer(
        ServiceBuilder::new()
            .layer(from_fn(sanitize_request_id))
            .layer(SetRequestIdLayer::new(
                X_REQUEST_ID.clone(),
                MakeRandomRequestId,
            ))
            .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
            .layer(TraceLayer::new_for_http().make_span_with(make_span))
            .layer(from_fn_with_state(metrics, record_metrics))
            .layer(from_fn_with_state(hsts, security_headers))
            .layer(from_fn(problem_details))
            .layer(from_fn(crate::middleware::refuse_nul))
            .layer(cors)
            // Files are sent as stored: compressing them would break `Range` and the
            // length a download promises. The fastest level: answers are made per
            // request, and the default level cost a third of the throughput of the
            // compliance mix for a few per cent of size (docs/PERFORMANCE.md).
            .layer(
                CompressionLayer::new()
                    .quality(CompressionLevel::Fastest)
                    .compress_when(DefaultPredicate::new().and(
                        |_: StatusCode,
                         _: http::Version,
                         h: &http::HeaderMap,
                         _: &http::Extensions| {
                            !h.contains_key(header::CONTENT_DISPOSITION)
                        },
                    )),
            )
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                settings.server.request_timeout,
            ))
            .layer(from_fn_with_state(
                std::sync::Arc::new(crate::middleware::BodyLimits {
                    json: settings.server.max_json_body_size as u64,
                    upload: settings.uploads.max_upload_size + crate::upload::MULTIPART_SLACK,
                    upload_paths: ["/frameworks/import", "/evidence", "/evidence/*/versions"]
                        .iter()
                        .map(|p| format!("{}{p}", settings.server.api_v1_prefix))
                        .chain(crate::ui::UPLOAD_PATHS.iter().map(|p| (*p).to_owned()))
                        .collect(),
                    api_prefix: settings.server.api_v1_prefix.clone(),
                }),
                crate::middleware::declared_body_limit,
            ))
            // Extractors read at most a JSON body; the catalog import reads its own,
            // larger, limit from the raw body.
            .layer(axum::extract::DefaultBodyLimit::max(
                settings.server.max_json_body_size,
            ))
            .layer(RequestBodyLimitLayer::new(
                settings.server.max_json_body_size.max(
                    usize::try_from(
                        settings.uploads.max_upload_size + crate::upload::MULTIPART_SLACK,
                    )
                    .unwrap_or(usize::MAX),
                ),
            ))
            .layer(CatchPanicLayer::custom(panic_response)),
    )
}

fn make_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %req.method(),
        uri = %req.uri().path(),
        request_id = %request_id,
    )
}

fn cors_layer(origins: &[String], credentials: bool) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            X_REQUEST_ID.clone(),
        ])
        .expose_headers([X_REQUEST_ID.clone()])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        // Validation refuses `*` with credentials in production; elsewhere a wildcard
        // means "any origin", reflected so that credentials still work in development.
        if credentials {
            base.allow_origin(AllowOrigin::mirror_request())
                .allow_credentials(true)
        } else {
            base.allow_origin(tower_http::cors::Any)
        }
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        base.allow_origin(list).allow_credentials(credentials)
    }
}

async fn not_found() -> Problem {
    Problem::for_status(StatusCode::NOT_FOUND)
}

async fn method_not_allowed() -> Problem {
    Problem::for_status(StatusCode::METHOD_NOT_ALLOWED)
}
