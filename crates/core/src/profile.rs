//! The business profile: what an organisation tells ruleIQ about itself once, and
//! everything that decides which frameworks apply (API.md, "Business profile").

use serde::{Deserialize, Serialize};

/// The sector an organisation works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Industry {
    Technology,
    Finance,
    Healthcare,
    Retail,
    Manufacturing,
    Education,
    PublicSector,
    Charity,
    ProfessionalServices,
    Hospitality,
    Construction,
    Other,
}

impl Industry {
    /// Sectors NIS2 lists in its annexes (Annex I highly critical, Annex II other
    /// critical) that an SME of these kinds is most likely to sit in. Technology covers
    /// digital infrastructure and ICT service management; manufacturing covers the
    /// Annex II manufacturing of medical devices, electronics, machinery and vehicles.
    #[must_use]
    pub fn nis2_sector(self) -> bool {
        matches!(
            self,
            Self::Technology
                | Self::Finance
                | Self::Healthcare
                | Self::Manufacturing
                | Self::PublicSector
        )
    }
}

/// How sensitive the data an organisation holds is, overall.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DataSensitivity {
    Low,
    Medium,
    High,
    Critical,
}

/// The organisation's one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessProfile {
    pub company_name: String,
    pub industry: Industry,
    pub employee_count: u32,
    #[serde(default)]
    pub annual_turnover_gbp: Option<u64>,
    /// ISO 3166 alpha-2.
    #[serde(default = "default_country")]
    pub country: String,
    pub data_sensitivity: DataSensitivity,
    #[serde(default)]
    pub handles_personal_data: bool,
    #[serde(default)]
    pub processes_special_category_data: bool,
    #[serde(default)]
    pub processes_payment_cards: bool,
    #[serde(default)]
    pub stores_health_data: bool,
    #[serde(default)]
    pub provides_financial_services: bool,
    #[serde(default)]
    pub operates_critical_infrastructure: bool,
    #[serde(default)]
    pub serves_eu_customers: bool,
    #[serde(default)]
    pub transfers_data_internationally: bool,
    #[serde(default)]
    pub remote_workforce: bool,
    #[serde(default)]
    pub uses_cloud_services: bool,
    #[serde(default)]
    pub cloud_providers: Vec<String>,
    #[serde(default)]
    pub existing_certifications: Vec<String>,
    /// Framework slugs the organisation intends to pursue.
    #[serde(default)]
    pub planned_frameworks: Vec<String>,
}

fn default_country() -> String {
    "GB".to_owned()
}

/// One field of a profile that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    pub field: &'static str,
    pub message: &'static str,
}

impl BusinessProfile {
    /// A profile with every flag off, for tests and examples.
    #[must_use]
    pub fn minimal(company_name: &str, industry: Industry, employee_count: u32) -> Self {
        Self {
            company_name: company_name.to_owned(),
            industry,
            employee_count,
            annual_turnover_gbp: None,
            country: default_country(),
            data_sensitivity: DataSensitivity::Low,
            handles_personal_data: false,
            processes_special_category_data: false,
            processes_payment_cards: false,
            stores_health_data: false,
            provides_financial_services: false,
            operates_critical_infrastructure: false,
            serves_eu_customers: false,
            transfers_data_internationally: false,
            remote_workforce: false,
            uses_cloud_services: false,
            cloud_providers: Vec::new(),
            existing_certifications: Vec::new(),
            planned_frameworks: Vec::new(),
        }
    }

    /// Every rule API.md states for the fields, checked at once.
    #[must_use]
    pub fn problems(&self) -> Vec<ProfileError> {
        let mut out = Vec::new();
        let name = self.company_name.trim().chars().count();
        if !(2..=200).contains(&name) {
            out.push(ProfileError {
                field: "company_name",
                message: "must be 2 to 200 characters",
            });
        }
        if !(1..=1_000_000).contains(&self.employee_count) {
            out.push(ProfileError {
                field: "employee_count",
                message: "must be between 1 and 1,000,000",
            });
        }
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            out.push(ProfileError {
                field: "country",
                message: "must be an ISO 3166 alpha-2 code in capitals, such as GB",
            });
        }
        for (field, list) in [
            ("cloud_providers", &self.cloud_providers),
            ("existing_certifications", &self.existing_certifications),
            ("planned_frameworks", &self.planned_frameworks),
        ] {
            if list.len() > 50 || list.iter().any(|v| v.trim().is_empty() || v.len() > 100) {
                out.push(ProfileError {
                    field,
                    message: "takes at most 50 entries of 1 to 100 characters",
                });
            }
        }
        out
    }

    /// Medium-sized or larger in the EU sense NIS2 uses: 50 or more staff, or an
    /// annual turnover above EUR 10 million (about GBP 8.5 million).
    #[must_use]
    pub fn at_least_medium_sized(&self) -> bool {
        self.employee_count >= 50 || self.annual_turnover_gbp.is_some_and(|t| t > 8_500_000)
    }

    /// Whether the organisation names `slug` among its plans or certifications.
    #[must_use]
    pub fn mentions(&self, slug: &str) -> bool {
        let hit = |v: &String| {
            let v = v.to_ascii_lowercase();
            v == slug || slug.starts_with(&v) || v.starts_with(slug)
        };
        self.planned_frameworks.iter().any(hit) || self.existing_certifications.iter().any(hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_each_bad_field() {
        let mut p = BusinessProfile::minimal("A", Industry::Retail, 0);
        p.country = "gbr".into();
        let fields: Vec<_> = p.problems().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["company_name", "employee_count", "country"]);
        assert!(
            BusinessProfile::minimal("Acme Ltd", Industry::Retail, 12)
                .problems()
                .is_empty()
        );
    }

    #[test]
    fn unknown_industry_is_refused_by_serde() {
        let json = r#"{"company_name":"Acme","industry":"mining","employee_count":3,"data_sensitivity":"low"}"#;
        assert!(serde_json::from_str::<BusinessProfile>(json).is_err());
    }
}
