//! The organisation and its members: settings, invitations, roles, deactivation.
//!
//! Every method takes a [`Permit`] and confines itself to the permit's organisation: an
//! account of another organisation is simply not found.

use chrono::Duration;
use ruleiq_core::{Email, Permission, Role};
use ruleiq_db::{
    entities::{invitation, membership, organization, user},
    repositories::identity::{self as repo, NewUser},
};
use uuid::Uuid;

use super::{
    Identity, IdentityError, Permit, Registration, password, service::bounded_text, tokens,
};
use crate::audit::{AuditEvent, ClientInfo};

/// How long an invitation may be accepted.
pub const INVITATION_DAYS: i64 = 7;

/// A new invitation and the token that redeems it (sent to the invitee, never stored).
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub invitation: invitation::Model,
    pub token: String,
}

/// What to change about a member.
#[derive(Debug, Clone, Default)]
pub struct MemberChange {
    pub role: Option<String>,
    pub is_active: Option<bool>,
}

/// What accepting an invitation needs.
#[derive(Debug, Clone)]
pub struct AcceptInput {
    pub token: String,
    pub full_name: String,
    pub password: String,
}

fn parse_role(field: &'static str, value: &str) -> Result<Role, IdentityError> {
    value.parse::<Role>().map_err(|e| IdentityError::Invalid {
        field,
        message: e.to_string(),
    })
}

impl Identity {
    /// The caller's organisation.
    ///
    /// # Errors
    /// On a database error.
    pub async fn organization(
        &self,
        permit: &Permit<'_>,
    ) -> Result<organization::Model, IdentityError> {
        repo::find_organization(&self.db, permit.organization_id().as_uuid())
            .await?
            .ok_or(IdentityError::NotFound("organisation"))
    }

    /// Renames the caller's organisation (`organization:manage`).
    ///
    /// # Errors
    /// `Invalid` for a bad name, or a database error.
    pub async fn rename_organization(
        &self,
        permit: &Permit<'_>,
        name: &str,
        client: &ClientInfo,
    ) -> Result<organization::Model, IdentityError> {
        debug_assert_eq!(permit.permission(), Permission::OrganizationManage);
        let name = bounded_text("name", name, 2, 200)?;
        let org = permit.organization_id().as_uuid();
        repo::rename_organization(&self.db, org, &name, self.clock.now()).await?;
        self.identity_changed().await;
        self.audit
            .record(
                AuditEvent::new(
                    "organization.renamed",
                    Some(org),
                    Some(permit.principal().user_id.as_uuid()),
                )
                .target("organization", org)
                .details(serde_json::json!({"name": name})),
                client,
            )
            .await?;
        self.organization(permit).await
    }

    /// The organisation's members (`users:manage`).
    ///
    /// # Errors
    /// On a database error.
    pub async fn members(
        &self,
        permit: &Permit<'_>,
    ) -> Result<Vec<(membership::Model, user::Model)>, IdentityError> {
        debug_assert_eq!(permit.permission(), Permission::UsersManage);
        Ok(repo::members(&self.db, permit.organization_id().as_uuid()).await?)
    }

    /// Invites `email` to join in `role` (`users:manage`). Only an owner may invite an
    /// owner.
    ///
    /// # Errors
    /// `Invalid`, `NotAllowed`, `EmailTaken`, or a database error.
    pub async fn invite(
        &self,
        permit: &Permit<'_>,
        email: &str,
        role: &str,
        client: &ClientInfo,
    ) -> Result<NewInvitation, IdentityError> {
        debug_assert_eq!(permit.permission(), Permission::UsersManage);
        let email = Email::parse(email).map_err(|e| IdentityError::Invalid {
            field: "email",
            message: e.to_string(),
        })?;
        let role = parse_role("role", role)?;
        if role == Role::Owner && permit.principal().role != Role::Owner {
            return Err(IdentityError::NotAllowed(
                "only an owner may invite an owner".into(),
            ));
        }
        if repo::find_user_by_email(&self.db, email.as_str())
            .await?
            .is_some()
        {
            return Err(IdentityError::EmailTaken);
        }
        let now = self.clock.now();
        let token = tokens::opaque_token();
        let invitation = repo::insert_invitation(
            &self.db,
            invitation::Model {
                id: Uuid::now_v7(),
                organization_id: permit.organization_id().as_uuid(),
                email: email.as_str().to_owned(),
                role: role.as_str().to_owned(),
                token_hash: tokens::token_hash(&token),
                invited_by: permit.principal().user_id.as_uuid(),
                expires_at: now + Duration::days(INVITATION_DAYS),
                accepted_at: None,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
        self.audit
            .record(
                AuditEvent::new(
                    "invitation.created",
                    Some(invitation.organization_id),
                    Some(permit.principal().user_id.as_uuid()),
                )
                .target("invitation", invitation.id)
                .details(serde_json::json!({"email": invitation.email, "role": invitation.role})),
                client,
            )
            .await?;
        let inviter = repo::find_user(&self.db, permit.principal().user_id.as_uuid())
            .await?
            .map(|u| u.full_name)
            .unwrap_or_else(|| "A member".into());
        let org_name = repo::find_organization(&self.db, invitation.organization_id)
            .await?
            .map(|o| o.name)
            .unwrap_or_default();
        self.send_later(crate::mail::Email {
            to: invitation.email.clone(),
            subject: format!("You are invited to join {org_name} on ruleIQ"),
            body: format!(
                "Hello,\n\n{inviter} invited you to join {org_name} on ruleIQ as {role}. \
                 To accept, open this link within {INVITATION_DAYS} days:\n\n\
                 {base}/accept-invitation?token={token}\n\n\
                 Or send the token to the API: POST /api/v1/auth/accept-invitation.\n",
                role = invitation.role,
                base = self.public_url,
            ),
        });
        Ok(NewInvitation { invitation, token })
    }

    /// Redeems an invitation: creates the account in the inviting organisation and
    /// signs it in. A token works once, until it expires.
    ///
    /// # Errors
    /// `Invalid` for a bad token, name or password, `EmailTaken`, or a database error.
    pub async fn accept_invitation(
        &self,
        input: AcceptInput,
        client: &ClientInfo,
    ) -> Result<Registration, IdentityError> {
        let invalid_token = || IdentityError::Invalid {
            field: "token",
            message: "this invitation is not valid: it may have been used or have expired".into(),
        };
        let now = self.clock.now();
        let invitation = repo::find_invitation(&self.db, &tokens::token_hash(input.token.trim()))
            .await?
            .filter(|i| i.accepted_at.is_none() && i.expires_at > now)
            .ok_or_else(invalid_token)?;
        let full_name = bounded_text("full_name", &input.full_name, 1, 200)?;
        password::check(&input.password, &invitation.email, &[&full_name]).map_err(|e| {
            IdentityError::Invalid {
                field: "password",
                message: e.to_string(),
            }
        })?;
        if repo::find_user_by_email(&self.db, &invitation.email)
            .await?
            .is_some()
        {
            return Err(IdentityError::EmailTaken);
        }
        let role = parse_role("role", &invitation.role)?;
        let hash = password::hash(input.password)
            .await
            .map_err(IdentityError::Internal)?;
        let txn = ruleiq_db::begin(&self.db).await?;
        if !repo::accept_invitation(&txn, invitation.id, now).await? {
            return Err(invalid_token());
        }
        let user = repo::insert_user(
            &txn,
            NewUser {
                email: invitation.email.clone(),
                full_name,
                password_hash: hash,
            },
            now,
        )
        .await
        .map_err(|e| match e.sql_err() {
            Some(ruleiq_db::sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                IdentityError::EmailTaken
            }
            _ => IdentityError::Database(e),
        })?;
        repo::insert_membership(
            &txn,
            invitation.organization_id,
            user.id,
            role.as_str(),
            now,
        )
        .await?;
        txn.commit().await?;
        self.audit
            .record(
                AuditEvent::new(
                    "invitation.accepted",
                    Some(invitation.organization_id),
                    Some(user.id),
                )
                .target("invitation", invitation.id)
                .details(serde_json::json!({"role": role.as_str()})),
                client,
            )
            .await?;
        let organization = repo::find_organization(&self.db, invitation.organization_id)
            .await?
            .ok_or(IdentityError::NotFound("organisation"))?;
        let tokens = self.start_session(user.id, organization.id, role).await?;
        Ok(Registration {
            user,
            organization,
            tokens,
        })
    }

    /// Changes a member's role or activation (`users:manage`). Nobody changes their own;
    /// only an owner grants or removes the owner role; the last active owner stays.
    /// Deactivating ends every session of the account at once.
    ///
    /// # Errors
    /// `NotFound` for an account outside the organisation, `Invalid`, `NotAllowed`,
    /// `Conflict`, or a database error.
    pub async fn update_member(
        &self,
        permit: &Permit<'_>,
        user_id: Uuid,
        change: MemberChange,
        client: &ClientInfo,
    ) -> Result<(membership::Model, user::Model), IdentityError> {
        debug_assert_eq!(permit.permission(), Permission::UsersManage);
        let org = permit.organization_id().as_uuid();
        let actor = permit.principal();
        let (current, account) = repo::member(&self.db, org, user_id)
            .await?
            .ok_or(IdentityError::NotFound("member"))?;
        if user_id == actor.user_id.as_uuid() {
            return Err(IdentityError::NotAllowed(
                "you cannot change your own role or deactivate yourself; ask another administrator"
                    .into(),
            ));
        }
        let current_role = parse_role("role", &current.role)?;
        let new_role = change
            .role
            .as_deref()
            .map(|r| parse_role("role", r))
            .transpose()?;
        let touches_owner = current_role == Role::Owner || new_role == Some(Role::Owner);
        if touches_owner && actor.role != Role::Owner {
            return Err(IdentityError::NotAllowed(
                "only an owner may change an owner or make one".into(),
            ));
        }
        let loses_owner = current_role == Role::Owner
            && (new_role.is_some_and(|r| r != Role::Owner) || change.is_active == Some(false));
        if loses_owner && repo::active_owner_count(&self.db, org).await? <= 1 {
            return Err(IdentityError::Conflict(
                "the organisation must keep at least one active owner".into(),
            ));
        }
        let now = self.clock.now();
        let by = Some(actor.user_id.as_uuid());
        if let Some(role) = new_role.filter(|r| *r != current_role) {
            repo::set_role(&self.db, org, user_id, role.as_str(), now).await?;
            self.identity_changed().await;
            self.audit
                .record(
                    AuditEvent::new("member.role_changed", Some(org), by)
                        .target("user", user_id)
                        .details(
                            serde_json::json!({"from": current_role.as_str(), "to": role.as_str()}),
                        ),
                    client,
                )
                .await?;
        }
        if let Some(active) = change.is_active.filter(|a| *a != account.is_active) {
            repo::set_active(&self.db, user_id, active, now).await?;
            // At once, even if what follows fails: the account's status has changed.
            self.identity_changed().await;
            if !active {
                repo::revoke_other_sessions(&self.db, user_id, None, "deactivated", now).await?;
            }
            self.identity_changed().await;
            self.audit
                .record(
                    AuditEvent::new(
                        if active {
                            "member.reactivated"
                        } else {
                            "member.deactivated"
                        },
                        Some(org),
                        by,
                    )
                    .target("user", user_id),
                    client,
                )
                .await?;
        }
        repo::member(&self.db, org, user_id)
            .await?
            .ok_or(IdentityError::NotFound("member"))
    }
}
