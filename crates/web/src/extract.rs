//! Extractors that turn a request into the domain's types.

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts},
};
use ruleiq_services::{
    audit::ClientInfo,
    identity::{Authenticated, Principal},
};
use std::net::{IpAddr, SocketAddr};

use crate::{problem::ApiError, state::AppState};

/// The authenticated caller, from `Authorization: Bearer <access token>`. Rejects with
/// 401 for a missing, malformed, expired, revoked or foreign token, and for a
/// deactivated account.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let CurrentAccount(auth) = CurrentAccount::from_request_parts(parts, state).await?;
        Ok(Self(auth.principal))
    }
}

/// The authenticated caller with their account details, read in the same query that
/// checked the token.
#[derive(Debug, Clone)]
pub struct CurrentAccount(pub Authenticated);

impl FromRequestParts<AppState> for CurrentAccount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty() && t.len() <= 4096)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "Send an access token: `Authorization: Bearer <token>`.".into(),
                )
            })?;
        Ok(Self(state.identity.authenticate(token).await?))
    }
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy
/// (`TRUSTED_PROXIES`), the nearest address in `X-Forwarded-For` that is not one.
#[must_use]
pub fn client_ip(
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
    trusted: &[ruleiq_config::IpRange],
) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    // Walk back from the proxy nearest us; the first untrusted hop is the client.
    Some(
        forwarded
            .iter()
            .rev()
            .copied()
            .find(|ip| !is_trusted(*ip))
            .or_else(|| forwarded.first().copied())
            .unwrap_or(peer),
    )
}

/// Where the request came from, for the audit trail.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = client_ip(
            &parts.extensions,
            &parts.headers,
            &state.settings.server.trusted_proxies,
        )
        .map(|ip| ip.to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self(ClientInfo { ip, user_agent }))
    }
}
