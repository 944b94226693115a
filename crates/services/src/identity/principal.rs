//! Who is asking, and proof of what they may do.
//!
//! A [`Principal`] is built only by authenticating a token against a live session. A
//! mutating service method takes a [`Permit`], which only [`Principal::require`] makes,
//! so a handler cannot reach it without the permission check having passed.

use ruleiq_core::{OrganizationId, Permission, Role, UserId};

/// An authenticated member of an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub organization_id: OrganizationId,
    pub role: Role,
    /// The session the request's token belongs to.
    pub session_id: uuid::Uuid,
}

/// The principal lacks a permission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("your role ({role}) does not allow {permission}")]
pub struct Forbidden {
    pub role: Role,
    pub permission: Permission,
}

/// Proof that a principal holds a permission.
#[derive(Debug, Clone, Copy)]
pub struct Permit<'a> {
    principal: &'a Principal,
    permission: Permission,
}

/// An approval by the author of what is approved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("approval needs a person other than its author")]
pub struct SelfApproval;

impl Principal {
    /// Whether the principal's role grants `permission`.
    #[must_use]
    pub fn can(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }

    /// A permit for `permission`.
    ///
    /// # Errors
    /// [`Forbidden`] when the role does not grant it.
    pub fn require(&self, permission: Permission) -> Result<Permit<'_>, Forbidden> {
        if self.can(permission) {
            Ok(Permit {
                principal: self,
                permission,
            })
        } else {
            Err(Forbidden {
                role: self.role,
                permission,
            })
        }
    }
}

impl<'a> Permit<'a> {
    /// Who holds the permit.
    #[must_use]
    pub fn principal(&self) -> &'a Principal {
        self.principal
    }

    /// What it permits.
    #[must_use]
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// The organisation every query under this permit is confined to.
    #[must_use]
    pub fn organization_id(&self) -> OrganizationId {
        self.principal.organization_id
    }

    /// The four-eyes rule: approving needs someone other than the author.
    ///
    /// # Errors
    /// [`SelfApproval`] when the permit's holder wrote what is being approved.
    pub fn approve_work_of(&self, author: UserId) -> Result<(), SelfApproval> {
        if author == self.principal.user_id {
            Err(SelfApproval)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal {
            user_id: UserId::new(),
            organization_id: OrganizationId::new(),
            role,
            session_id: uuid::Uuid::now_v7(),
        }
    }

    #[test]
    fn permits_follow_the_role() {
        let viewer = principal(Role::Viewer);
        assert!(viewer.require(Permission::ComplianceRead).is_ok());
        let err = viewer.require(Permission::UsersManage).unwrap_err();
        assert_eq!(err.permission, Permission::UsersManage);
        let admin = principal(Role::Admin);
        let permit = admin.require(Permission::UsersManage).unwrap();
        assert_eq!(permit.organization_id(), admin.organization_id);
    }

    #[test]
    fn nobody_approves_their_own_work() {
        let manager = principal(Role::ComplianceManager);
        let permit = manager.require(Permission::ComplianceApprove).unwrap();
        assert_eq!(permit.approve_work_of(manager.user_id), Err(SelfApproval));
        assert!(permit.approve_work_of(UserId::new()).is_ok());
    }
}
