//! Accounts, sign-in and sessions.

use chrono::{DateTime, Duration, Utc};
use ruleiq_core::{Clock, Email, OrganizationId, Role, UserId};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::{organization, user},
    repositories::identity::{self as repo, NewUser},
    sea_orm::SqlErr,
};
use std::sync::Arc;
use uuid::Uuid;

use super::{
    password::{self, WeakPassword},
    principal::Principal,
    sessions::{self, SessionCache},
    tokens::{self, TokenKeys},
};
use crate::{
    audit::{Audit, AuditEvent, ClientInfo},
    mail::{LogMailer, Mailer},
};

/// Consecutive failed sign-ins that lock an account.
pub const LOCKOUT_THRESHOLD: i32 = 10;
/// How long a locked account stays locked.
pub const LOCKOUT_MINUTES: i64 = 15;
/// How long a refresh token, and so a session, lasts.
pub const REFRESH_DAYS: i64 = 14;

/// What can go wrong, each mapped to one status at the edge.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    #[error("incorrect e-mail address or password")]
    BadCredentials,
    #[error("this account is locked after too many failed sign-ins; try again after {until}")]
    Locked { until: DateTime<Utc> },
    #[error("this account has been deactivated; ask an administrator of your organisation")]
    Deactivated,
    #[error("the token is missing, invalid, expired or revoked")]
    InvalidToken,
    #[error("the refresh token was already used; every session of its family has been ended")]
    RefreshReused,
    #[error("no such {0} in your organisation")]
    NotFound(&'static str),
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("{0}")]
    Internal(String),
}

impl IdentityError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// An access and refresh token pair.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

/// A new account with its organisation and first tokens.
#[derive(Debug, Clone)]
pub struct Registration {
    pub user: user::Model,
    pub organization: organization::Model,
    pub tokens: TokenPair,
}

/// The account behind a request, as read when its token was checked.
#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    pub full_name: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub organization_name: String,
}

/// An authenticated request: who, and their account as of this request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    pub account: Account,
}

/// What registering needs.
#[derive(Debug, Clone)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub full_name: String,
    pub organization_name: String,
}

/// The identity service.
#[derive(Debug, Clone)]
pub struct Identity {
    pub(super) db: DatabaseConnection,
    pub(super) clock: Arc<dyn Clock>,
    keys: TokenKeys,
    access_lifetime: Duration,
    pub(super) audit: Audit,
    pub(super) mailer: Arc<dyn Mailer>,
    pub(super) public_url: String,
    sessions: Arc<SessionCache>,
}

pub(super) fn bounded_text(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<String, IdentityError> {
    let trimmed = value.trim();
    let len = trimmed.chars().count();
    if len < min || len > max {
        return Err(IdentityError::invalid(
            field,
            format!("must be {min}–{max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(IdentityError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

fn weak(e: WeakPassword) -> IdentityError {
    IdentityError::invalid("password", e.to_string())
}

impl Identity {
    /// The service, signing with `jwt_secret`.
    #[must_use]
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        jwt_secret: &[u8],
        access_minutes: u32,
        audit: Audit,
    ) -> Self {
        Self {
            db,
            clock,
            keys: TokenKeys::new(jwt_secret),
            access_lifetime: Duration::minutes(i64::from(access_minutes)),
            audit,
            mailer: Arc::new(LogMailer { show_content: true }),
            public_url: "http://127.0.0.1:8000".into(),
            sessions: Arc::new(sessions::cache(std::time::Duration::ZERO)),
        }
    }

    /// Caches session lookups for up to `ttl` (zero: never). See [`SessionCache`].
    #[must_use]
    pub fn with_session_cache(mut self, ttl: std::time::Duration) -> Self {
        self.sessions = Arc::new(sessions::cache(ttl));
        self
    }

    /// The session cache, for the listener that clears it on other instances' changes.
    #[must_use]
    pub fn session_cache(&self) -> Arc<SessionCache> {
        Arc::clone(&self.sessions)
    }

    /// Forgets cached sessions here and tells every other instance to do the same
    /// (PostgreSQL `NOTIFY`). Called after every change to who may do what.
    pub(super) async fn identity_changed(&self) {
        self.sessions.clear();
        if self.db.get_database_backend() == ruleiq_db::sea_orm::DbBackend::Postgres {
            let notify = ruleiq_db::sea_orm::Statement::from_string(
                ruleiq_db::sea_orm::DbBackend::Postgres,
                format!("SELECT pg_notify('{}', '')", sessions::CHANNEL),
            );
            if let Err(e) = ruleiq_db::sea_orm::ConnectionTrait::execute_raw(&self.db, notify).await
            {
                // The other instances' entries still expire on their own.
                tracing::warn!(error = %e, "could not announce an identity change");
            }
        }
    }

    /// Sends its messages (password resets, invitations) through `mailer`, with links
    /// to `public_url`.
    #[must_use]
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>, public_url: &str) -> Self {
        self.mailer = mailer;
        self.public_url = public_url.trim_end_matches('/').to_owned();
        self
    }

    /// Sends a message without holding up the request: the caller's response time must
    /// not depend on the mail server, nor reveal whether a message was sent at all.
    pub(super) fn send_later(&self, email: crate::mail::Email) {
        let mailer = Arc::clone(&self.mailer);
        tokio::spawn(async move {
            let to = email.to.clone();
            if let Err(error) = mailer.send(email).await {
                tracing::error!(%to, %error, "could not send e-mail");
            }
        });
    }

    /// The audit service the identity events go to.
    #[must_use]
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Creates an organisation with its first account as `owner`, and signs it in.
    ///
    /// # Errors
    /// `Invalid` naming the field, `EmailTaken`, or a database error.
    pub async fn register(
        &self,
        input: RegisterInput,
        client: &ClientInfo,
    ) -> Result<Registration, IdentityError> {
        let (user, organization) = self.create_owner(input, "user.registered", client).await?;
        let tokens = self
            .start_session(user.id, organization.id, Role::Owner)
            .await?;
        Ok(Registration {
            user,
            organization,
            tokens,
        })
    }

    /// Creates an organisation and its owner without signing in: `ruleiq admin create`.
    ///
    /// # Errors
    /// As [`Self::register`].
    pub async fn create_admin(
        &self,
        input: RegisterInput,
    ) -> Result<(user::Model, organization::Model), IdentityError> {
        let client = ClientInfo {
            ip: None,
            user_agent: Some("ruleiq admin create".into()),
        };
        self.create_owner(input, "user.created_by_operator", &client)
            .await
    }

    async fn create_owner(
        &self,
        input: RegisterInput,
        event: &'static str,
        client: &ClientInfo,
    ) -> Result<(user::Model, organization::Model), IdentityError> {
        let email = Email::parse(&input.email)
            .map_err(|e| IdentityError::invalid("email", e.to_string()))?;
        let full_name = bounded_text("full_name", &input.full_name, 1, 200)?;
        let org_name = bounded_text("organization_name", &input.organization_name, 2, 200)?;
        password::check(&input.password, email.as_str(), &[&full_name, &org_name]).map_err(weak)?;
        if repo::find_user_by_email(&self.db, email.as_str())
            .await?
            .is_some()
        {
            return Err(IdentityError::EmailTaken);
        }
        let hash = password::hash(input.password)
            .await
            .map_err(IdentityError::Internal)?;
        let now = self.clock.now();
        let txn = ruleiq_db::begin(&self.db).await?;
        let organization = repo::insert_organization(&txn, &org_name, now).await?;
        let user = match repo::insert_user(
            &txn,
            NewUser {
                email: email.as_str().to_owned(),
                full_name,
                password_hash: hash,
            },
            now,
        )
        .await
        {
            Ok(u) => u,
            // Two registrations raced for one address: the unique index decides.
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(IdentityError::EmailTaken);
            }
            Err(e) => return Err(e.into()),
        };
        repo::insert_membership(&txn, organization.id, user.id, Role::Owner.as_str(), now).await?;
        txn.commit().await?;
        self.audit
            .record(
                AuditEvent::new(event, Some(organization.id), Some(user.id))
                    .target("user", user.id),
                client,
            )
            .await?;
        Ok((user, organization))
    }

    /// Signs in with an e-mail address and password.
    ///
    /// # Errors
    /// `BadCredentials` (the same for an unknown address and a wrong password),
    /// `Locked`, `Deactivated`, or a database error.
    pub async fn login(
        &self,
        email: &str,
        password_text: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, IdentityError> {
        let Ok(email) = Email::parse(email) else {
            password::verify_dummy(password_text.to_owned()).await;
            return Err(IdentityError::BadCredentials);
        };
        if password_text.chars().count() > password::MAX_LEN {
            return Err(IdentityError::BadCredentials);
        }
        let Some(user) = repo::find_user_by_email(&self.db, email.as_str()).await? else {
            password::verify_dummy(password_text.to_owned()).await;
            self.audit
                .record(
                    AuditEvent::new("auth.login_failed", None, None)
                        .details(serde_json::json!({"reason": "unknown_email"})),
                    client,
                )
                .await?;
            return Err(IdentityError::BadCredentials);
        };
        let membership = repo::membership_of(&self.db, user.id).await?;
        let org_id = membership.as_ref().map(|(m, _)| m.organization_id);
        let now = self.clock.now();
        if let Some(until) = user.locked_until
            && until > now
        {
            self.audit
                .record(
                    AuditEvent::new("auth.login_refused_locked", org_id, Some(user.id))
                        .target("user", user.id),
                    client,
                )
                .await?;
            return Err(IdentityError::Locked { until });
        }
        if !password::verify(password_text.to_owned(), user.password_hash.clone()).await {
            let lock_until = now + Duration::minutes(LOCKOUT_MINUTES);
            let updated =
                repo::record_failed_login(&self.db, user.id, LOCKOUT_THRESHOLD, lock_until, now)
                    .await?;
            self.audit
                .record(
                    AuditEvent::new("auth.login_failed", org_id, Some(user.id))
                        .target("user", user.id)
                        .details(serde_json::json!({"reason": "wrong_password"})),
                    client,
                )
                .await?;
            if let Some(until) = updated.and_then(|u| u.locked_until).filter(|u| *u > now) {
                self.audit
                    .record(
                        AuditEvent::new("auth.account_locked", org_id, Some(user.id))
                            .target("user", user.id)
                            .details(serde_json::json!({"until": until})),
                        client,
                    )
                    .await?;
            }
            return Err(IdentityError::BadCredentials);
        }
        let Some((membership, _)) = membership.filter(|_| user.is_active) else {
            return Err(IdentityError::Deactivated);
        };
        repo::record_successful_login(&self.db, user.id, now).await?;
        let role = membership
            .role
            .parse::<Role>()
            .map_err(|e| IdentityError::Internal(e.to_string()))?;
        self.audit
            .record(
                AuditEvent::new(
                    "auth.login",
                    Some(membership.organization_id),
                    Some(user.id),
                )
                .target("user", user.id),
                client,
            )
            .await?;
        self.start_session(user.id, membership.organization_id, role)
            .await
    }

    pub(super) async fn start_session(
        &self,
        user: Uuid,
        org: Uuid,
        role: Role,
    ) -> Result<TokenPair, IdentityError> {
        let now = self.clock.now();
        let expires = now + Duration::days(REFRESH_DAYS);
        let session = repo::insert_session(&self.db, user, org, expires, now).await?;
        self.issue(user, org, role, session.id, expires).await
    }

    async fn issue(
        &self,
        user: Uuid,
        org: Uuid,
        role: Role,
        session: Uuid,
        refresh_expires: DateTime<Utc>,
    ) -> Result<TokenPair, IdentityError> {
        let now = self.clock.now();
        let refresh = tokens::opaque_token();
        repo::insert_refresh_token(
            &self.db,
            session,
            &tokens::token_hash(&refresh),
            refresh_expires,
            now,
        )
        .await?;
        let claims =
            tokens::access_claims(user, org, role.as_str(), session, now, self.access_lifetime);
        let access = self.keys.sign(&claims).map_err(IdentityError::Internal)?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in: self.access_lifetime.num_seconds(),
        })
    }

    /// Exchanges a refresh token for a new pair. The old token stops working; showing it
    /// again ends its whole session.
    ///
    /// # Errors
    /// `InvalidToken`, `RefreshReused`, `Deactivated`, or a database error.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, IdentityError> {
        let now = self.clock.now();
        let Some(stored) =
            repo::find_refresh_token(&self.db, &tokens::token_hash(refresh_token.trim())).await?
        else {
            return Err(IdentityError::InvalidToken);
        };
        let Some(session) = repo::find_session(&self.db, stored.session_id).await? else {
            return Err(IdentityError::InvalidToken);
        };
        let fresh =
            stored.used_at.is_none() && repo::use_refresh_token(&self.db, stored.id, now).await?;
        if !fresh {
            repo::revoke_session(&self.db, session.id, "refresh_reuse", now).await?;
            self.identity_changed().await;
            self.audit
                .record(
                    AuditEvent::new(
                        "auth.refresh_reused",
                        Some(session.organization_id),
                        Some(session.user_id),
                    )
                    .target("session", session.id),
                    client,
                )
                .await?;
            return Err(IdentityError::RefreshReused);
        }
        if session.revoked_at.is_some() || stored.expires_at <= now || session.expires_at <= now {
            return Err(IdentityError::InvalidToken);
        }
        let principal = repo::session_principal(&self.db, session.id)
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        if !principal.user_active {
            return Err(IdentityError::Deactivated);
        }
        let role = principal
            .role
            .parse::<Role>()
            .map_err(|e| IdentityError::Internal(e.to_string()))?;
        self.issue(
            session.user_id,
            session.organization_id,
            role,
            session.id,
            session.expires_at,
        )
        .await
    }

    /// Resolves an access token to its principal: the signature, expiry and type must
    /// hold, the session must be live and the account active. Checked on every request,
    /// so logging out or deactivating takes effect at once.
    ///
    /// # Errors
    /// `InvalidToken` or `Deactivated`, or a database error.
    pub async fn authenticate(&self, access_token: &str) -> Result<Authenticated, IdentityError> {
        self.authenticate_typ(access_token, "access").await
    }

    /// As [`Self::authenticate`], for the web UI's session cookie.
    ///
    /// # Errors
    /// As [`Self::authenticate`].
    pub async fn authenticate_browser(&self, cookie: &str) -> Result<Authenticated, IdentityError> {
        self.authenticate_typ(cookie, "browser").await
    }

    /// A browser session token for the session an access token belongs to, valid as long
    /// as the session: the web UI keeps it in an HttpOnly cookie.
    ///
    /// # Errors
    /// `InvalidToken` for a bad access token.
    pub fn browser_token(&self, access_token: &str) -> Result<String, IdentityError> {
        let mut claims = self
            .keys
            .verify(access_token)
            .map_err(|_| IdentityError::InvalidToken)?;
        let now = self.clock.now();
        claims.typ = "browser".into();
        claims.jti = Uuid::new_v4();
        claims.iat = now.timestamp();
        claims.exp = (now + Duration::days(REFRESH_DAYS)).timestamp();
        self.keys.sign(&claims).map_err(IdentityError::Internal)
    }

    async fn authenticate_typ(
        &self,
        token: &str,
        typ: &str,
    ) -> Result<Authenticated, IdentityError> {
        let claims = self.keys.verify_typ(token, typ).map_err(|reason| {
            tracing::debug!(%reason, "token refused");
            IdentityError::InvalidToken
        })?;
        let row = match self.sessions.get(&claims.sid) {
            Some(row) => row,
            None => {
                let generation = self.sessions.generation();
                let row = Arc::new(
                    repo::session_principal(&self.db, claims.sid)
                        .await?
                        .ok_or(IdentityError::InvalidToken)?,
                );
                self.sessions.put(claims.sid, generation, Arc::clone(&row));
                row
            }
        };
        if row.user_id != claims.sub
            || row.organization_id != claims.org
            || row.session_revoked
            || row.session_expires_at <= self.clock.now()
        {
            return Err(IdentityError::InvalidToken);
        }
        if !row.user_active {
            return Err(IdentityError::Deactivated);
        }
        let role = row
            .role
            .parse::<Role>()
            .map_err(|e| IdentityError::Internal(e.to_string()))?;
        Ok(Authenticated {
            principal: Principal {
                user_id: UserId::from(row.user_id),
                organization_id: OrganizationId::from(row.organization_id),
                role,
                session_id: claims.sid,
            },
            account: Account {
                email: row.email.clone(),
                full_name: row.full_name.clone(),
                is_active: row.user_active,
                created_at: row.user_created_at,
                organization_name: row.organization_name.clone(),
            },
        })
    }

    /// The account a well-signed, unexpired access token names, without asking the
    /// database: enough to key a rate limit by user, never to authorise.
    #[must_use]
    pub fn token_subject(&self, access_token: &str) -> Option<Uuid> {
        self.keys.verify(access_token).ok().map(|c| c.sub)
    }

    /// Ends the caller's session: its access token and refresh family stop working.
    ///
    /// # Errors
    /// On a database error.
    pub async fn logout(
        &self,
        principal: &Principal,
        client: &ClientInfo,
    ) -> Result<(), IdentityError> {
        repo::revoke_session(&self.db, principal.session_id, "logout", self.clock.now()).await?;
        self.identity_changed().await;
        self.audit
            .record(
                AuditEvent::new(
                    "auth.logout",
                    Some(principal.organization_id.as_uuid()),
                    Some(principal.user_id.as_uuid()),
                )
                .target("session", principal.session_id),
                client,
            )
            .await?;
        Ok(())
    }

    /// Changes the caller's password and ends their other sessions.
    ///
    /// # Errors
    /// `BadCredentials` for a wrong current password, `Invalid` for a weak new one.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
        client: &ClientInfo,
    ) -> Result<(), IdentityError> {
        let user = repo::find_user(&self.db, principal.user_id.as_uuid())
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        if current.chars().count() > password::MAX_LEN
            || !password::verify(current.to_owned(), user.password_hash.clone()).await
        {
            return Err(IdentityError::BadCredentials);
        }
        password::check(new, &user.email, &[&user.full_name])
            .map_err(|e| IdentityError::invalid("new_password", e.to_string()))?;
        let hash = password::hash(new.to_owned())
            .await
            .map_err(IdentityError::Internal)?;
        let now = self.clock.now();
        repo::set_password_hash(&self.db, user.id, &hash, now).await?;
        let ended = repo::revoke_other_sessions(
            &self.db,
            user.id,
            Some(principal.session_id),
            "password_changed",
            now,
        )
        .await?;
        self.identity_changed().await;
        self.audit
            .record(
                AuditEvent::new(
                    "auth.password_changed",
                    Some(principal.organization_id.as_uuid()),
                    Some(user.id),
                )
                .target("user", user.id)
                .details(serde_json::json!({"other_sessions_ended": ended})),
                client,
            )
            .await?;
        Ok(())
    }
}
