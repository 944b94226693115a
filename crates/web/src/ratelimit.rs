//! Applying the request budgets of API.md to routes.
//!
//! Classes: `auth` (per client address) on the sign-in and sign-up routes; `ai` (per
//! account) on AI routes; `general` (per account, or per address when anonymous) on the
//! rest of the API. Health, the OpenAPI document and `/metrics` are never limited: load
//! balancers and scrapers must always get through. Every limited response carries
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds until
//! the window resets); a refusal is a 429 problem with `Retry-After`.

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use ruleiq_services::ratelimit::Decision;
use std::time::Duration;

use crate::{problem::Problem, state::AppState};

const WINDOW: Duration = Duration::from_secs(60);

/// The routes of the `auth` class, below the API prefix.
const AUTH_ROUTES: &[&str] = &[
    "/auth/register",
    "/auth/token",
    "/auth/login",
    "/auth/refresh",
    "/auth/forgot-password",
    "/auth/reset-password",
    "/auth/accept-invitation",
];

/// Routes never limited, below the API prefix.
const UNLIMITED_PREFIXES: &[&str] = &["/health", "/openapi.json"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Auth,
    Ai,
    General,
}

impl Class {
    /// The bucket's name in `/metrics` (`ruleiq_rate_limited_total{bucket}`).
    fn as_str(self) -> &'static str {
        match self {
            Class::Auth => "auth",
            Class::Ai => "ai",
            Class::General => "general",
        }
    }
}

fn classify(prefix: &str, route: &str) -> Option<Class> {
    let rest = route.strip_prefix(prefix)?;
    if UNLIMITED_PREFIXES.iter().any(|p| rest.starts_with(p)) {
        return None;
    }
    if AUTH_ROUTES.contains(&rest) {
        Some(Class::Auth)
    } else if rest.starts_with("/ai/") || rest.starts_with("/chat/") {
        Some(Class::Ai)
    } else {
        Some(Class::General)
    }
}

static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn add_headers(response: &mut Response, d: &Decision) {
    let h = response.headers_mut();
    h.insert(LIMIT.clone(), HeaderValue::from(d.limit));
    h.insert(REMAINING.clone(), HeaderValue::from(d.remaining));
    h.insert(
        RESET.clone(),
        HeaderValue::from(d.reset_after.as_secs().max(1)),
    );
}

/// The middleware.
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let settings = &state.settings.rate_limits;
    if !settings.enabled {
        return next.run(req).await;
    }
    let Some(route) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
    else {
        return next.run(req).await;
    };
    let Some(class) = classify(&state.settings.server.api_v1_prefix, &route) else {
        return next.run(req).await;
    };
    let ip = crate::extract::client_ip(
        req.extensions(),
        req.headers(),
        &state.settings.server.trusted_proxies,
    )
    .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let user = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .and_then(|t| state.identity.token_subject(t.trim()));
    let (key, limit) = match (class, user) {
        (Class::Auth, _) => (format!("auth:ip:{ip}"), settings.auth_per_minute),
        (Class::Ai, Some(user)) => (format!("ai:user:{user}"), settings.ai_per_minute),
        (Class::Ai, None) => (format!("ai:ip:{ip}"), settings.ai_per_minute),
        (Class::General, Some(user)) => (format!("general:user:{user}"), settings.per_minute),
        (Class::General, None) => (format!("general:ip:{ip}"), settings.per_minute),
    };
    let decision = state.limiter.hit(&key, limit, WINDOW).await;
    if !decision.allowed {
        state.metrics.count_rate_limited(class.as_str());
        let retry = decision.reset_after.as_secs().max(1);
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many requests; this budget allows {limit} a minute. Try again in {retry} s."
            ),
        )
        .into_response();
        add_headers(&mut response, &decision);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return response;
    }
    let mut response = next.run(req).await;
    add_headers(&mut response, &decision);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_into_their_classes() {
        let p = "/api/v1";
        assert_eq!(classify(p, "/api/v1/auth/login"), Some(Class::Auth));
        assert_eq!(classify(p, "/api/v1/auth/me"), Some(Class::General));
        assert_eq!(classify(p, "/api/v1/users/{id}"), Some(Class::General));
        assert_eq!(classify(p, "/api/v1/chat/conversations"), Some(Class::Ai));
        assert_eq!(classify(p, "/api/v1/health"), None);
        assert_eq!(classify(p, "/api/v1/health/ready"), None);
        assert_eq!(classify(p, "/metrics"), None);
    }

    #[test]
    fn every_bucket_has_its_series_in_metrics() {
        for class in [Class::Auth, Class::Ai, Class::General] {
            assert!(crate::metrics::RATE_LIMIT_BUCKETS.contains(&class.as_str()));
        }
    }
}
