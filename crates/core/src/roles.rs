//! Roles and the permissions each grants.
//!
//! The mapping lives in code, not only in the `roles` table, so that authorisation
//! never depends on seed data being present; `ruleiq seed` writes the same mapping to
//! the database so that operators and the API can list it.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// Something a member of an organisation may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "organization:delete")]
    OrganizationDelete,
    #[serde(rename = "organization:manage")]
    OrganizationManage,
    #[serde(rename = "users:manage")]
    UsersManage,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "monitoring:read")]
    MonitoringRead,
    #[serde(rename = "jobs:manage")]
    JobsManage,
    #[serde(rename = "compliance:read")]
    ComplianceRead,
    #[serde(rename = "compliance:write")]
    ComplianceWrite,
    #[serde(rename = "compliance:approve")]
    ComplianceApprove,
    #[serde(rename = "reports:read")]
    ReportsRead,
    #[serde(rename = "reports:export")]
    ReportsExport,
    #[serde(rename = "ai:use")]
    AiUse,
    #[serde(rename = "ai:manage")]
    AiManage,
}

impl Permission {
    /// Every permission, in a stable order.
    pub const ALL: [Permission; 13] = [
        Permission::OrganizationDelete,
        Permission::OrganizationManage,
        Permission::UsersManage,
        Permission::AuditRead,
        Permission::MonitoringRead,
        Permission::JobsManage,
        Permission::ComplianceRead,
        Permission::ComplianceWrite,
        Permission::ComplianceApprove,
        Permission::ReportsRead,
        Permission::ReportsExport,
        Permission::AiUse,
        Permission::AiManage,
    ];

    /// The permission's wire name, such as `monitoring:read`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::OrganizationDelete => "organization:delete",
            Permission::OrganizationManage => "organization:manage",
            Permission::UsersManage => "users:manage",
            Permission::AuditRead => "audit:read",
            Permission::MonitoringRead => "monitoring:read",
            Permission::JobsManage => "jobs:manage",
            Permission::ComplianceRead => "compliance:read",
            Permission::ComplianceWrite => "compliance:write",
            Permission::ComplianceApprove => "compliance:approve",
            Permission::ReportsRead => "reports:read",
            Permission::ReportsExport => "reports:export",
            Permission::AiUse => "ai:use",
            Permission::AiManage => "ai:manage",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member's role within one organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    ComplianceManager,
    Contributor,
    Auditor,
    Viewer,
}

/// The text a role name failed to parse from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role `{0}`; expected one of owner, admin, compliance_manager, contributor, auditor, viewer"
)]
pub struct UnknownRole(pub String);

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 6] = [
        Role::Owner,
        Role::Admin,
        Role::ComplianceManager,
        Role::Contributor,
        Role::Auditor,
        Role::Viewer,
    ];

    /// The role's wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::ComplianceManager => "compliance_manager",
            Role::Contributor => "contributor",
            Role::Auditor => "auditor",
            Role::Viewer => "viewer",
        }
    }

    /// One sentence on what the role is for.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Role::Owner => "Everything, including deleting the organisation.",
            Role::Admin => "Everything except deleting the organisation.",
            Role::ComplianceManager => "All compliance work, including approvals.",
            Role::Contributor => {
                "Creates and edits assessments, evidence, tasks and drafts; cannot approve."
            }
            Role::Auditor => "Reads everything, including the audit log, and exports.",
            Role::Viewer => "Reads dashboards and reports.",
        }
    }

    /// The permissions the role grants.
    #[must_use]
    pub fn permissions(self) -> Vec<Permission> {
        use Permission as P;
        match self {
            Role::Owner => P::ALL.to_vec(),
            Role::Admin => P::ALL
                .into_iter()
                .filter(|p| *p != P::OrganizationDelete)
                .collect(),
            Role::ComplianceManager => vec![
                P::ComplianceRead,
                P::ComplianceWrite,
                P::ComplianceApprove,
                P::ReportsRead,
                P::ReportsExport,
                P::AiUse,
            ],
            Role::Contributor => vec![
                P::ComplianceRead,
                P::ComplianceWrite,
                P::ReportsRead,
                P::AiUse,
            ],
            Role::Auditor => vec![
                P::ComplianceRead,
                P::AuditRead,
                P::ReportsRead,
                P::ReportsExport,
            ],
            Role::Viewer => vec![P::ComplianceRead, P::ReportsRead],
        }
    }

    /// Whether the role grants `permission`.
    #[must_use]
    pub fn allows(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_may_delete_the_organisation() {
        for role in Role::ALL {
            assert_eq!(
                role.allows(Permission::OrganizationDelete),
                role == Role::Owner,
                "{role}"
            );
        }
    }

    #[test]
    fn approvals_belong_to_managers_not_contributors() {
        assert!(Role::ComplianceManager.allows(Permission::ComplianceApprove));
        assert!(!Role::Contributor.allows(Permission::ComplianceApprove));
        assert!(!Role::Viewer.allows(Permission::ComplianceWrite));
        assert!(Role::Auditor.allows(Permission::AuditRead));
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("superuser".parse::<Role>().is_err());
    }
}
