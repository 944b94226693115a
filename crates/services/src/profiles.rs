//! The business profile: saved once per organisation, read by applicability rules
//! and (later) by assessments and plans.

use chrono::{DateTime, Utc};
use ruleiq_core::{BusinessProfile, Clock, OrganizationId, UserId};
use ruleiq_db::{DatabaseConnection, DbErr, repositories::profiles as repo};
use std::sync::Arc;

use crate::{
    audit::{Audit, AuditEvent, ClientInfo},
    frameworks::{Catalog, applicability},
};

/// A saved profile.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedProfile {
    pub id: uuid::Uuid,
    pub profile: BusinessProfile,
    pub updated_at: DateTime<Utc>,
}

/// One framework's verdict for the organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub framework_id: uuid::Uuid,
    pub slug: String,
    pub name: String,
    pub verdict: applicability::Verdict,
}

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    #[error("this organisation has no business profile yet; save one with PUT /business-profile")]
    Missing,
    #[error("{0}")]
    UnknownFramework(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The profile service.
#[derive(Clone)]
pub struct Profiles {
    db: DatabaseConnection,
    audit: Audit,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Profiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiles").finish_non_exhaustive()
    }
}

impl Profiles {
    #[must_use]
    pub fn new(db: DatabaseConnection, audit: Audit, clock: Arc<dyn Clock>) -> Self {
        Self { db, audit, clock }
    }

    /// The organisation's profile.
    ///
    /// # Errors
    /// [`ProfileError::Missing`] before the first save.
    pub async fn get(&self, org: OrganizationId) -> Result<SavedProfile, ProfileError> {
        let row = repo::find(&self.db, org.as_uuid())
            .await?
            .ok_or(ProfileError::Missing)?;
        let profile = serde_json::from_value(row.profile).map_err(|e| {
            ProfileError::Db(DbErr::Custom(format!("stored profile unreadable: {e}")))
        })?;
        Ok(SavedProfile {
            id: row.id,
            profile,
            updated_at: row.updated_at,
        })
    }

    /// Checks and saves the profile; returns whether it was the first save.
    ///
    /// # Errors
    /// The first rule the profile breaks, or a planned framework that does not exist.
    pub async fn save(
        &self,
        org: OrganizationId,
        by: UserId,
        mut profile: BusinessProfile,
        catalog: &Catalog,
        client: &ClientInfo,
    ) -> Result<(SavedProfile, bool), ProfileError> {
        profile.company_name = profile.company_name.trim().to_owned();
        if let Some(p) = profile.problems().into_iter().next() {
            return Err(ProfileError::Invalid {
                field: p.field,
                message: p.message,
            });
        }
        let known = catalog.list(Some(org.as_uuid())).await?;
        if let Some(unknown) = profile
            .planned_frameworks
            .iter()
            .find(|s| !known.iter().any(|f| &f.slug == *s))
        {
            return Err(ProfileError::UnknownFramework(format!(
                "planned_frameworks: no framework has the slug {unknown:?}; GET /frameworks lists them"
            )));
        }
        let now = self.clock.now();
        let value = serde_json::to_value(&profile)
            .map_err(|e| ProfileError::Db(DbErr::Custom(e.to_string())))?;
        let existed = repo::save(&self.db, org.as_uuid(), value, by.as_uuid(), now).await?;
        let id = repo::find(&self.db, org.as_uuid())
            .await?
            .map(|r| r.id)
            .ok_or(ProfileError::Missing)?;
        self.audit
            .record(
                AuditEvent::new(
                    if existed {
                        "business_profile.updated"
                    } else {
                        "business_profile.created"
                    },
                    Some(org.as_uuid()),
                    Some(by.as_uuid()),
                )
                .target("organization", org),
                client,
            )
            .await?;
        Ok((
            SavedProfile {
                id,
                profile,
                updated_at: now,
            },
            !existed,
        ))
    }

    /// Deletes the organisation's profile (audited).
    ///
    /// # Errors
    /// [`ProfileError::Missing`] when there is none.
    pub async fn delete(
        &self,
        org: OrganizationId,
        by: UserId,
        client: &ClientInfo,
    ) -> Result<(), ProfileError> {
        if !repo::delete(&self.db, org.as_uuid()).await? {
            return Err(ProfileError::Missing);
        }
        self.audit
            .record(
                AuditEvent::new(
                    "business_profile.deleted",
                    Some(org.as_uuid()),
                    Some(by.as_uuid()),
                )
                .target("organization", org),
                client,
            )
            .await?;
        Ok(())
    }

    /// Every visible framework's verdict, most relevant first.
    ///
    /// # Errors
    /// [`ProfileError::Missing`] before the profile is saved.
    pub async fn recommendations(
        &self,
        org: OrganizationId,
        catalog: &Catalog,
    ) -> Result<Vec<Recommendation>, ProfileError> {
        let saved = self.get(org).await?;
        let mut out: Vec<Recommendation> = catalog
            .list(Some(org.as_uuid()))
            .await?
            .into_iter()
            .map(|f| Recommendation {
                verdict: applicability::assess(&saved.profile, &f.slug),
                framework_id: f.id,
                slug: f.slug,
                name: f.name,
            })
            .collect();
        out.sort_by(|a, b| {
            (b.verdict.mandatory, b.verdict.relevance_score)
                .cmp(&(a.verdict.mandatory, a.verdict.relevance_score))
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(out)
    }
}
