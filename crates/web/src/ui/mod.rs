//! The web UI: server-rendered pages that work without JavaScript.
//!
//! A signed-in browser holds an HttpOnly, SameSite=Lax session cookie (`Secure` in
//! production) carrying a browser token for its session, so signing out or deactivation
//! ends it at once, as for API tokens. Every form carries a CSRF token that must match
//! the `ruleiq_csrf` cookie (double submit). One-shot messages travel in a flash cookie.

mod account;
mod ai_settings;
mod assessments;
mod assistant;
mod auth;
mod charts;
mod dashboard;
mod evidence;
mod frameworks;
mod jobs;
mod mail;
mod notifications;
mod onboarding;
mod plans;
mod policies;
mod recovery;
mod reports;

use askama::Template;
use axum::{
    Router,
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use ruleiq_services::identity::{Authenticated, IdentityError};
use std::sync::OnceLock;

use crate::state::{AppState, VERSION};

pub(crate) const SESSION_COOKIE: &str = "ruleiq_session";
pub(crate) const CSRF_COOKIE: &str = "ruleiq_csrf";
const FLASH_COOKIE: &str = "ruleiq_flash";

/// The stylesheet, embedded at build time.
const CSS: &str = include_str!("../../static/app.css");

/// `/static/app.css?v=<hash of its content>`: the URL changes whenever the content does,
/// so the file can be cached for ever.
fn css_href() -> &'static str {
    static HREF: OnceLock<String> = OnceLock::new();
    HREF.get_or_init(|| {
        // FNV-1a: enough to tell versions of one file apart.
        let hash = CSS.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("/static/app.css?v={hash:016x}")
    })
}

/// The page routes that take a file upload (up to `MAX_UPLOAD_SIZE`, not the JSON
/// limit); a `*` segment matches any one segment.
pub(crate) const UPLOAD_PATHS: &[&str] = &["/evidence/new", "/evidence/*/versions"];

/// The page routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/static/app.css", get(stylesheet))
        .merge(auth::router())
        .merge(dashboard::router())
        .merge(recovery::router())
        .merge(account::router())
        .merge(frameworks::router())
        .merge(onboarding::router())
        .merge(assessments::router())
        .merge(plans::router())
        .merge(evidence::router())
        .merge(policies::router())
        .merge(assistant::router())
        .merge(ai_settings::router())
        .merge(reports::router())
        .merge(jobs::router())
        .merge(mail::router())
        .merge(notifications::router())
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        CSS,
    )
        .into_response()
}

/// `/`: members to their dashboard, everyone else to sign in.
async fn home(viewer: Viewer) -> Redirect {
    if viewer.account.is_some() {
        Redirect::to("/dashboard")
    } else {
        Redirect::to("/sign-in")
    }
}

/// The value of cookie `name`.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path /, `Secure` when asked.
pub(crate) fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Who is looking at a page (maybe nobody), the CSRF token their forms carry, and the
/// flash message waiting for them.
pub(crate) struct Viewer {
    pub account: Option<Authenticated>,
    pub csrf: String,
    /// Whether the CSRF cookie must be set on this response.
    new_csrf: bool,
    pub flash: Option<String>,
    secure: bool,
    /// The bell's number; read for pages (GET), not for form posts, which redirect.
    pub unread: Option<u64>,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let account = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(token) => match state.identity.authenticate_browser(&token).await {
                Ok(account) => Some(account),
                // A session that cannot be checked is not a signed-out visitor: the
                // page fails (a 503 when the database is unreachable, see db_gate)
                // rather than sending a member to the sign-in form.
                Err(e @ IdentityError::Database(_)) => {
                    return Err(crate::problem::ApiError::from(e).into_response());
                }
                Err(_) => None,
            },
            None => None,
        };
        let existing = cookie(&parts.headers, CSRF_COOKIE).filter(|c| c.len() == 43);
        let new_csrf = existing.is_none();
        let csrf = existing.unwrap_or_else(ruleiq_services::identity::tokens::opaque_token);
        let flash = cookie(&parts.headers, FLASH_COOKIE)
            .and_then(|f| urlencoding_decode(&f))
            .filter(|f| !f.is_empty());
        // The layout shows the count on every page; a page still renders without it.
        let unread = match &account {
            Some(a) if parts.method == Method::GET || parts.method == Method::HEAD => {
                match state.notifications.unread_count(&a.principal).await {
                    Ok(n) => Some(n),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not count unread notifications");
                        None
                    }
                }
            }
            _ => None,
        };
        Ok(Self {
            account,
            csrf,
            new_csrf,
            flash,
            secure: state.settings.environment.is_production(),
            unread,
        })
    }
}

fn urlencoding_decode(s: &str) -> Option<String> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn urlencoding_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Who the layout shows as signed in.
pub(crate) struct NavUser {
    pub name: String,
    pub organization: String,
    pub can_manage_users: bool,
    pub can_manage_jobs: bool,
    pub can_manage_organization: bool,
    pub can_read_audit: bool,
    pub can_use_ai: bool,
    pub can_manage_ai: bool,
    /// Unread notifications; `None` when not known (the bell shows no number).
    pub unread: Option<u64>,
}

impl NavUser {
    /// What the bell says to a screen reader: "Notifications (3 unread)".
    pub(crate) fn bell_label(&self) -> String {
        match self.unread {
            Some(n) => format!("Notifications ({n} unread)"),
            None => "Notifications".to_owned(),
        }
    }

    /// The number on the bell: only when there is something unread.
    pub(crate) fn unread_badge(&self) -> Option<u64> {
        self.unread.filter(|n| *n > 0)
    }
}

impl Viewer {
    /// The layout's part of a page for this viewer.
    pub(crate) fn chrome(&self) -> Chrome {
        Chrome {
            css_href: css_href(),
            version: VERSION,
            user: self.nav_user(),
            csrf: self.csrf.clone(),
            flash: self.flash.clone(),
        }
    }

    pub(crate) fn nav_user(&self) -> Option<NavUser> {
        self.account.as_ref().map(|a| NavUser {
            name: a.account.full_name.clone(),
            organization: a.account.organization_name.clone(),
            can_manage_users: a.principal.can(ruleiq_core::Permission::UsersManage),
            can_manage_jobs: a.principal.can(ruleiq_core::Permission::JobsManage),
            can_manage_organization: a.principal.can(ruleiq_core::Permission::OrganizationManage),
            can_read_audit: a.principal.can(ruleiq_core::Permission::AuditRead),
            can_use_ai: a.principal.can(ruleiq_core::Permission::AiUse),
            can_manage_ai: a.principal.can(ruleiq_core::Permission::AiManage),
            unread: self.unread,
        })
    }

    /// Whether `submitted` is this browser's CSRF token.
    pub(crate) fn csrf_ok(&self, submitted: &str) -> bool {
        !self.new_csrf && constant_time_eq(self.csrf.as_bytes(), submitted.as_bytes())
    }

    /// Renders a page with `status`, setting the CSRF cookie if new and consuming the
    /// flash message.
    pub(crate) fn page(&self, status: StatusCode, template: &impl Template) -> Response {
        let body = match template.render() {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(error = %e, "template failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let mut response = (status, Html(body)).into_response();
        self.finish(&mut response);
        response
    }

    /// Adds this viewer's cookies to a response.
    pub(crate) fn finish(&self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.new_csrf {
            headers.append(
                header::SET_COOKIE,
                set_cookie(CSRF_COOKIE, &self.csrf, 60 * 60 * 24 * 14, self.secure),
            );
        }
        if self.flash.is_some() {
            headers.append(
                header::SET_COOKIE,
                set_cookie(FLASH_COOKIE, "", 0, self.secure),
            );
        }
    }

    /// A redirect that also carries a flash message and, optionally, a session cookie
    /// (empty to sign out).
    pub(crate) fn redirect(
        &self,
        to: &str,
        flash: Option<&str>,
        session: Option<&str>,
    ) -> Response {
        let mut response = Redirect::to(to).into_response();
        let headers = response.headers_mut();
        if let Some(flash) = flash {
            headers.append(
                header::SET_COOKIE,
                set_cookie(FLASH_COOKIE, &urlencoding_encode(flash), 60, self.secure),
            );
        }
        match session {
            Some("") => {
                headers.append(
                    header::SET_COOKIE,
                    set_cookie(SESSION_COOKIE, "", 0, self.secure),
                );
            }
            Some(token) => {
                headers.append(
                    header::SET_COOKIE,
                    set_cookie(SESSION_COOKIE, token, 60 * 60 * 24 * 14, self.secure),
                );
            }
            None => {}
        }
        response
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the layout of every page shows: the stylesheet, the version, who is signed in,
/// the CSRF token its forms carry, and the flash message.
pub(crate) struct Chrome {
    pub css_href: &'static str,
    pub version: &'static str,
    pub user: Option<NavUser>,
    pub csrf: String,
    pub flash: Option<String>,
}

/// The sentence to show on a form for a failed action.
pub(crate) const EXPIRED_FORM: &str = "Your form had expired; please try again.";

/// The status and the sentence (capitalised, one full stop) for a failed form.
pub(crate) fn form_error(e: &IdentityError) -> (StatusCode, String) {
    let status = match e {
        IdentityError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        IdentityError::EmailTaken | IdentityError::Conflict(_) => StatusCode::CONFLICT,
        IdentityError::BadCredentials
        | IdentityError::InvalidToken
        | IdentityError::RefreshReused
        | IdentityError::Deactivated => StatusCode::UNAUTHORIZED,
        IdentityError::Locked { .. } => StatusCode::LOCKED,
        IdentityError::NotFound(_) => StatusCode::NOT_FOUND,
        IdentityError::NotAllowed(_) => StatusCode::FORBIDDEN,
        IdentityError::Database(_) | IdentityError::Internal(_) => {
            tracing::error!(error = %e, "page action failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let text = match e {
        IdentityError::Invalid { field, message } => {
            format!("{}: {message}", field.replace('_', " "))
        }
        IdentityError::Database(_) | IdentityError::Internal(_) => {
            "something went wrong on our side; please try again".into()
        }
        other => other.to_string(),
    };
    let mut chars = text.trim_end_matches('.').chars();
    let sentence = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect::<String>() + ".")
        .unwrap_or_default();
    (status, sentence)
}
