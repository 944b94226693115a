//! `/auth/*` and `/users/me`: registration, sign-in, sessions, the caller's account.

use axum::{
    Form,
    extract::{FromRequest, Request, State},
    http::{StatusCode, header},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use ruleiq_services::identity::{
    AcceptInput, Authenticated, RegisterInput, Registration, TokenPair,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    extract::{AuthUser, Client, CurrentAccount},
    problem::{ApiError, ApiJson, Problem},
    state::AppState,
};

/// The identity routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(token))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(users_me))
        .routes(routes!(change_password))
        .routes(routes!(accept_invitation))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
}

/// A forgotten password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ForgotPasswordRequest {
    pub email: String,
}

/// A new password with its reset token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetPasswordRequest {
    pub token: String,
    pub new_password: String,
}

/// E-mails a one-hour reset link if the address has an active account. Always 202, so
/// the answer does not reveal which addresses have accounts.
#[utoipa::path(
    post,
    path = "/auth/forgot-password",
    tag = "identity",
    request_body = ForgotPasswordRequest,
    responses((status = 202, description = "If the address has an account, a link is on its way"))
)]
async fn forgot_password(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<ForgotPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state.identity.forgot_password(&req.email, &client).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with a reset token; every session of the account ends.
#[utoipa::path(
    post,
    path = "/auth/reset-password",
    tag = "identity",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "The password is changed"),
        (status = 422, description = "The token is invalid, used or expired, or the password too weak", body = Problem),
    )
)]
async fn reset_password(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .reset_password(&req.token, &req.new_password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new organisation and its first account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    /// 10–128 characters, not the e-mail address, not easily guessed.
    pub password: String,
    pub full_name: String,
    pub organization_name: String,
}

/// Credentials for the OAuth2 password grant (JSON or form).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The e-mail address.
    pub username: String,
    pub password: String,
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A refresh token to exchange.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// A token pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Opaque; exchange it at `/auth/refresh`. Valid 14 days, once.
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(t: TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: "bearer".into(),
            expires_in: t.expires_in,
        }
    }
}

/// An account.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

/// An organisation, briefly.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationRef {
    pub id: Uuid,
    pub name: String,
}

/// A new account, its organisation and its first tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    pub user: UserResponse,
    pub organization: OrganizationRef,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub organization: OrganizationRef,
    pub role: String,
    pub permissions: Vec<String>,
}

impl From<Authenticated> for MeResponse {
    fn from(me: Authenticated) -> Self {
        let p = me.principal;
        Self {
            id: p.user_id.as_uuid(),
            email: me.account.email,
            full_name: me.account.full_name,
            is_active: me.account.is_active,
            created_at: me.account.created_at,
            organization: OrganizationRef {
                id: p.organization_id.as_uuid(),
                name: me.account.organization_name,
            },
            role: p.role.as_str().to_owned(),
            permissions: p
                .role
                .permissions()
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
        }
    }
}

/// Creates an organisation and its first account (its `owner`), signed in.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "identity",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = RegisterResponse),
        (status = 409, description = "The e-mail address has an account", body = Problem),
        (status = 422, description = "A field is invalid or the password too weak", body = Problem),
    )
)]
async fn register(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let reg = state
        .identity
        .register(
            RegisterInput {
                email: req.email,
                password: req.password,
                full_name: req.full_name,
                organization_name: req.organization_name,
            },
            &client,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(RegisterResponse::from(reg))))
}

impl From<Registration> for RegisterResponse {
    fn from(reg: Registration) -> Self {
        let tokens = TokenResponse::from(reg.tokens);
        Self {
            user: UserResponse {
                id: reg.user.id,
                email: reg.user.email,
                full_name: reg.user.full_name,
                is_active: reg.user.is_active,
                created_at: reg.user.created_at,
            },
            organization: OrganizationRef {
                id: reg.organization.id,
                name: reg.organization.name,
            },
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_type: tokens.token_type,
            expires_in: tokens.expires_in,
        }
    }
}

/// Accepting an invitation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AcceptInvitationRequest {
    pub token: String,
    pub full_name: String,
    pub password: String,
}

/// Accepts an invitation: creates the account in the inviting organisation, in the
/// invited role, and signs it in (answers like register).
#[utoipa::path(
    post,
    path = "/auth/accept-invitation",
    tag = "identity",
    request_body = AcceptInvitationRequest,
    responses(
        (status = 201, body = RegisterResponse),
        (status = 409, description = "The address already has an account", body = Problem),
        (status = 422, description = "The token is invalid, used or expired, or a field is invalid", body = Problem),
    )
)]
async fn accept_invitation(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<AcceptInvitationRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let reg = state
        .identity
        .accept_invitation(
            AcceptInput {
                token: req.token,
                full_name: req.full_name,
                password: req.password,
            },
            &client,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(RegisterResponse::from(reg))))
}

/// `TokenRequest` from a JSON body or an `application/x-www-form-urlencoded` one.
struct Credentials(TokenRequest);

impl<S: Send + Sync> FromRequest<S> for Credentials {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_form = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        });
        if is_form {
            let Form(body) = Form::<TokenRequest>::from_request(req, state)
                .await
                .map_err(|e| ApiError::Validation {
                    detail: format!(
                        "The form does not match the expected fields: {}",
                        e.body_text()
                    ),
                    errors: vec![],
                })?;
            Ok(Self(body))
        } else {
            let ApiJson(body) = ApiJson::<TokenRequest>::from_request(req, state).await?;
            Ok(Self(body))
        }
    }
}

/// OAuth2 password grant: JSON `{username, password}` or the equivalent form.
#[utoipa::path(
    post,
    path = "/auth/token",
    tag = "identity",
    request_body(content = TokenRequest, content_type = "application/json"),
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Wrong e-mail address or password (the same answer for both)", body = Problem),
        (status = 423, description = "Locked after ten failed sign-ins", body = Problem),
    )
)]
async fn token(
    State(state): State<AppState>,
    Client(client): Client,
    Credentials(req): Credentials,
) -> Result<ApiJson<TokenResponse>, ApiError> {
    let pair = state
        .identity
        .login(&req.username, &req.password, &client)
        .await?;
    Ok(ApiJson(pair.into()))
}

/// Signs in with an e-mail address and password.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "identity",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, body = Problem),
        (status = 423, body = Problem),
    )
)]
async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<ApiJson<TokenResponse>, ApiError> {
    let pair = state
        .identity
        .login(&req.email, &req.password, &client)
        .await?;
    Ok(ApiJson(pair.into()))
}

/// Exchanges a refresh token for a new pair; the old one stops working, and showing it
/// again ends the whole session.
#[utoipa::path(
    post,
    path = "/auth/refresh",
    tag = "identity",
    request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem))
)]
async fn refresh(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<ApiJson<TokenResponse>, ApiError> {
    let pair = state.identity.refresh(&req.refresh_token, &client).await?;
    Ok(ApiJson(pair.into()))
}

/// Ends the session: the access token and its refresh family stop working at once.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "identity",
    security(("bearer" = [])),
    responses((status = 204, description = "Signed out"), (status = 401, body = Problem))
)]
async fn logout(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
) -> Result<StatusCode, ApiError> {
    state.identity.logout(&principal, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account, organisation, role and permissions.
#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "identity",
    security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = Problem))
)]
async fn me(CurrentAccount(me): CurrentAccount) -> ApiJson<MeResponse> {
    ApiJson(me.into())
}

/// The same as `/auth/me`.
#[utoipa::path(
    get,
    path = "/users/me",
    tag = "identity",
    security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = Problem))
)]
async fn users_me(CurrentAccount(me): CurrentAccount) -> ApiJson<MeResponse> {
    ApiJson(me.into())
}

/// Changes the caller's password and ends their other sessions.
#[utoipa::path(
    post,
    path = "/auth/change-password",
    tag = "identity",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed"),
        (status = 401, description = "Wrong current password or no valid token", body = Problem),
        (status = 422, description = "The new password is too weak", body = Problem),
    )
)]
async fn change_password(
    State(state): State<AppState>,
    AuthUser(principal): AuthUser,
    Client(client): Client,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .change_password(
            &principal,
            &req.current_password,
            &req.new_password,
            &client,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
