//! Forgotten passwords: a one-time, one-hour link by e-mail.

use chrono::Duration;
use ruleiq_core::Email;
use ruleiq_db::repositories::identity as repo;

use super::{Identity, IdentityError, password, tokens};
use crate::{
    audit::{AuditEvent, ClientInfo},
    mail,
};

/// How long a reset link works.
pub const RESET_MINUTES: i64 = 60;

impl Identity {
    /// Starts a reset for `email`, if it has an active account, by e-mailing a link.
    /// The answer is the same whether or not it does, and comes as quickly.
    ///
    /// # Errors
    /// On a database error only.
    pub async fn forgot_password(
        &self,
        email: &str,
        client: &ClientInfo,
    ) -> Result<(), IdentityError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let Some(user) = repo::find_user_by_email(&self.db, email.as_str()).await? else {
            return Ok(());
        };
        if !user.is_active {
            return Ok(());
        }
        let now = self.clock.now();
        let token = tokens::opaque_token();
        repo::insert_password_reset(
            &self.db,
            user.id,
            &tokens::token_hash(&token),
            now + Duration::minutes(RESET_MINUTES),
            now,
        )
        .await?;
        let org = repo::membership_of(&self.db, user.id)
            .await?
            .map(|(m, _)| m.organization_id);
        self.audit
            .record(
                AuditEvent::new("auth.password_reset_requested", org, Some(user.id))
                    .target("user", user.id),
                client,
            )
            .await?;
        self.send_later(mail::Email {
            to: user.email.clone(),
            subject: "Reset your ruleIQ password".into(),
            body: format!(
                "Hello {name},\n\nSomeone asked to reset the password of your ruleIQ account. \
                 To choose a new one, open this link within {RESET_MINUTES} minutes:\n\n\
                 {base}/reset-password?token={token}\n\n\
                 Or send the token to the API: POST /api/v1/auth/reset-password \
                 {{\"token\": \"{token}\", \"new_password\": \"…\"}}\n\n\
                 If it was not you, ignore this message: your password has not changed.\n",
                name = user.full_name,
                base = self.public_url,
            ),
        });
        Ok(())
    }

    /// Sets a new password with a reset token. The token works once; every session of
    /// the account ends, and any lock is lifted.
    ///
    /// # Errors
    /// `Invalid` for a bad, used or expired token or a weak password; a database error.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<(), IdentityError> {
        let invalid = || {
            IdentityError::Invalid {
            field: "token",
            message: "this reset link is not valid: it may have been used or have expired; ask for a new one".into(),
        }
        };
        let now = self.clock.now();
        let reset = repo::find_password_reset(&self.db, &tokens::token_hash(token.trim()))
            .await?
            .filter(|r| r.used_at.is_none() && r.expires_at > now)
            .ok_or_else(invalid)?;
        let user = repo::find_user(&self.db, reset.user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or_else(invalid)?;
        password::check(new_password, &user.email, &[&user.full_name]).map_err(|e| {
            IdentityError::Invalid {
                field: "new_password",
                message: e.to_string(),
            }
        })?;
        let hash = password::hash(new_password.to_owned())
            .await
            .map_err(IdentityError::Internal)?;
        if !repo::use_password_reset(&self.db, reset.id, now).await? {
            return Err(invalid());
        }
        repo::set_password_hash(&self.db, user.id, &hash, now).await?;
        repo::record_successful_login(&self.db, user.id, now).await?;
        let ended =
            repo::revoke_other_sessions(&self.db, user.id, None, "password_reset", now).await?;
        self.identity_changed().await;
        let org = repo::membership_of(&self.db, user.id)
            .await?
            .map(|(m, _)| m.organization_id);
        self.audit
            .record(
                AuditEvent::new("auth.password_reset", org, Some(user.id))
                    .target("user", user.id)
                    .details(serde_json::json!({"sessions_ended": ended})),
                client,
            )
            .await?;
        Ok(())
    }
}
