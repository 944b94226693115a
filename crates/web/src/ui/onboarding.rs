//! Onboarding, "from profile to plan": step 1 the business profile, step 2 the
//! frameworks it makes relevant (with the reasons), step 3 starting an assessment
//! (`POST /assessments`, which opens the assessment wizard).
//!
//! The form is parsed here rather than by serde so that every problem, a number that
//! is not one as much as a rule the profile breaks, is shown at once beside its field.

use askama::Template;
use axum::{Form, Router, extract::State, http::StatusCode, response::Response, routing::get};
use ruleiq_core::{
    BusinessProfile, Permission,
    profile::{DataSensitivity, Industry},
};
use ruleiq_services::profiles::ProfileError;

use super::{
    Chrome, EXPIRED_FORM, Viewer,
    assessments::{FieldError, error_for, failed, sentence, sign_in_first},
};
use crate::{extract::Client, state::AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/onboarding", get(profile_page).post(save_profile))
        .route("/onboarding/frameworks", get(frameworks_page))
}

const INDUSTRIES: [(Industry, &str, &str); 12] = [
    (Industry::Technology, "technology", "Technology"),
    (Industry::Finance, "finance", "Finance"),
    (Industry::Healthcare, "healthcare", "Healthcare"),
    (Industry::Retail, "retail", "Retail"),
    (Industry::Manufacturing, "manufacturing", "Manufacturing"),
    (Industry::Education, "education", "Education"),
    (Industry::PublicSector, "public_sector", "Public sector"),
    (Industry::Charity, "charity", "Charity"),
    (
        Industry::ProfessionalServices,
        "professional_services",
        "Professional services",
    ),
    (Industry::Hospitality, "hospitality", "Hospitality"),
    (Industry::Construction, "construction", "Construction"),
    (Industry::Other, "other", "Other"),
];

const SENSITIVITIES: [(DataSensitivity, &str, &str, &str); 4] = [
    (
        DataSensitivity::Low,
        "low",
        "Low",
        "Mostly public or business contact details.",
    ),
    (
        DataSensitivity::Medium,
        "medium",
        "Medium",
        "Customer and staff records, contracts, internal finances.",
    ),
    (
        DataSensitivity::High,
        "high",
        "High",
        "Financial, identity or confidential client data.",
    ),
    (
        DataSensitivity::Critical,
        "critical",
        "Critical",
        "Health, special category or payment card data at scale.",
    ),
];

/// The yes/no questions: the profile's field, and how the form asks it.
const FLAGS: [(&str, &str); 10] = [
    (
        "handles_personal_data",
        "We handle personal data (staff, customer or supplier records count)",
    ),
    (
        "processes_special_category_data",
        "We process special category data (health, ethnicity, religion, biometrics…)",
    ),
    (
        "processes_payment_cards",
        "We take or store payment card details",
    ),
    ("stores_health_data", "We store health data"),
    (
        "provides_financial_services",
        "We provide financial services",
    ),
    (
        "operates_critical_infrastructure",
        "We run critical infrastructure or essential services",
    ),
    ("serves_eu_customers", "We serve customers in the EU"),
    (
        "transfers_data_internationally",
        "We transfer personal data outside the UK",
    ),
    ("remote_workforce", "Some of our people work remotely"),
    ("uses_cloud_services", "We use cloud services"),
];

/// How the profile's fields are named to people, for error messages.
fn label_of(field: &str) -> &'static str {
    match field {
        "company_name" => "Company name",
        "industry" => "Industry",
        "employee_count" => "Number of employees",
        "annual_turnover_gbp" => "Annual turnover",
        "country" => "Country",
        "data_sensitivity" => "Data sensitivity",
        "cloud_providers" => "Cloud providers",
        "existing_certifications" => "Existing certifications",
        "planned_frameworks" => "Planned frameworks",
        _ => "This answer",
    }
}

/// The id of the input an error about `field` links to (a radio group or checkbox
/// list links to its first option).
fn input_of(field: &str) -> String {
    match field {
        "data_sensitivity" => "data_sensitivity-low".into(),
        "planned_frameworks" => "planned_frameworks".into(),
        other => other.into(),
    }
}

struct Flag {
    name: &'static str,
    label: &'static str,
    checked: bool,
}

struct Option3 {
    value: String,
    label: String,
    hint: String,
    selected: bool,
}

/// The form's values as text, so a rejected form comes back as it was sent.
struct Fields {
    company_name: String,
    industry: String,
    employee_count: String,
    annual_turnover_gbp: String,
    country: String,
    data_sensitivity: String,
    flags: Vec<&'static str>,
    cloud_providers: String,
    existing_certifications: String,
    planned_frameworks: Vec<String>,
}

impl Fields {
    fn from_profile(p: &BusinessProfile) -> Self {
        let flags = [
            p.handles_personal_data,
            p.processes_special_category_data,
            p.processes_payment_cards,
            p.stores_health_data,
            p.provides_financial_services,
            p.operates_critical_infrastructure,
            p.serves_eu_customers,
            p.transfers_data_internationally,
            p.remote_workforce,
            p.uses_cloud_services,
        ];
        Self {
            company_name: p.company_name.clone(),
            industry: INDUSTRIES
                .iter()
                .find(|(i, _, _)| *i == p.industry)
                .map(|(_, v, _)| (*v).to_owned())
                .unwrap_or_default(),
            employee_count: p.employee_count.to_string(),
            annual_turnover_gbp: p
                .annual_turnover_gbp
                .map(|t| t.to_string())
                .unwrap_or_default(),
            country: p.country.clone(),
            data_sensitivity: SENSITIVITIES
                .iter()
                .find(|(s, ..)| *s == p.data_sensitivity)
                .map(|(_, v, ..)| (*v).to_owned())
                .unwrap_or_default(),
            flags: FLAGS
                .iter()
                .zip(flags)
                .filter(|(_, on)| *on)
                .map(|((name, _), _)| *name)
                .collect(),
            cloud_providers: p.cloud_providers.join(", "),
            existing_certifications: p.existing_certifications.join(", "),
            planned_frameworks: p.planned_frameworks.clone(),
        }
    }

    fn new(company_name: &str) -> Self {
        Self {
            company_name: company_name.to_owned(),
            industry: String::new(),
            employee_count: String::new(),
            annual_turnover_gbp: String::new(),
            country: "GB".into(),
            data_sensitivity: String::new(),
            flags: Vec::new(),
            cloud_providers: String::new(),
            existing_certifications: String::new(),
            planned_frameworks: Vec::new(),
        }
    }

    fn from_form(pairs: &[(String, String)]) -> Self {
        let one = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        Self {
            company_name: one("company_name"),
            industry: one("industry"),
            employee_count: one("employee_count"),
            annual_turnover_gbp: one("annual_turnover_gbp"),
            country: one("country"),
            data_sensitivity: one("data_sensitivity"),
            flags: FLAGS
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| pairs.iter().any(|(k, v)| k == name && v == "true"))
                .collect(),
            cloud_providers: one("cloud_providers"),
            existing_certifications: one("existing_certifications"),
            planned_frameworks: pairs
                .iter()
                .filter(|(k, _)| k == "planned_frameworks")
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    /// The profile these fields describe, or every problem with them.
    fn parse(&self) -> Result<BusinessProfile, Vec<FieldError>> {
        let mut errors: Vec<FieldError> = Vec::new();
        let industry = INDUSTRIES
            .iter()
            .find(|(_, v, _)| *v == self.industry)
            .map(|(i, _, _)| *i);
        if industry.is_none() {
            errors.push(FieldError::new("industry", "Choose your industry."));
        }
        let digits = |s: &str| -> String {
            s.chars()
                .filter(|c| !matches!(c, ',' | ' ' | '£' | '_'))
                .collect()
        };
        let employee_count = digits(&self.employee_count).parse::<u32>().ok();
        if employee_count.is_none() {
            errors.push(FieldError::new(
                "employee_count",
                "Number of employees must be a whole number, such as 12.",
            ));
        }
        let turnover = digits(&self.annual_turnover_gbp);
        let annual_turnover_gbp = if turnover.is_empty() {
            None
        } else if let Ok(t) = turnover.parse::<u64>() {
            Some(t)
        } else {
            errors.push(FieldError::new(
                "annual_turnover_gbp",
                "Annual turnover must be a whole number of pounds, such as 850000, or empty.",
            ));
            None
        };
        let data_sensitivity = SENSITIVITIES
            .iter()
            .find(|(_, v, ..)| *v == self.data_sensitivity)
            .map(|(s, ..)| *s);
        if data_sensitivity.is_none() {
            errors.push(FieldError::new(
                "data_sensitivity-low",
                "Choose how sensitive your data is.",
            ));
        }
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let flag = |name: &str| self.flags.contains(&name);
        let profile = BusinessProfile {
            company_name: self.company_name.trim().to_owned(),
            industry: industry.unwrap_or(Industry::Other),
            employee_count: employee_count.unwrap_or(1),
            annual_turnover_gbp,
            country: self.country.trim().to_ascii_uppercase(),
            data_sensitivity: data_sensitivity.unwrap_or(DataSensitivity::Low),
            handles_personal_data: flag("handles_personal_data"),
            processes_special_category_data: flag("processes_special_category_data"),
            processes_payment_cards: flag("processes_payment_cards"),
            stores_health_data: flag("stores_health_data"),
            provides_financial_services: flag("provides_financial_services"),
            operates_critical_infrastructure: flag("operates_critical_infrastructure"),
            serves_eu_customers: flag("serves_eu_customers"),
            transfers_data_internationally: flag("transfers_data_internationally"),
            remote_workforce: flag("remote_workforce"),
            uses_cloud_services: flag("uses_cloud_services"),
            cloud_providers: list(&self.cloud_providers),
            existing_certifications: list(&self.existing_certifications),
            planned_frameworks: self.planned_frameworks.clone(),
        };
        // The profile's own rules, for the fields that parsed.
        for p in profile.problems() {
            let input = input_of(p.field);
            if !errors.iter().any(|e| e.field == input) {
                errors.push(FieldError::new(
                    input,
                    sentence(label_of(p.field), p.message),
                ));
            }
        }
        if errors.is_empty() {
            Ok(profile)
        } else {
            Err(errors)
        }
    }
}

#[derive(Template)]
#[template(path = "onboarding/profile.html")]
struct ProfilePage {
    chrome: Chrome,
    first_time: bool,
    can_write: bool,
    errors: Vec<FieldError>,
    company_name: String,
    industries: Vec<Option3>,
    employee_count: String,
    annual_turnover_gbp: String,
    country: String,
    sensitivities: Vec<Option3>,
    flags: Vec<Flag>,
    cloud_providers: String,
    existing_certifications: String,
    frameworks: Vec<Option3>,
}

impl ProfilePage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

async fn render_profile(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    fields: Fields,
    errors: Vec<FieldError>,
    first_time: bool,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(viewer);
    };
    let org = account.principal.organization_id.as_uuid();
    let frameworks = match state.catalog.list(Some(org)).await {
        Ok(f) => f,
        Err(e) => return failed(viewer, e),
    };
    let page = ProfilePage {
        chrome: viewer.chrome(),
        first_time,
        can_write: account.principal.can(Permission::ComplianceWrite),
        errors,
        company_name: fields.company_name,
        industries: INDUSTRIES
            .iter()
            .map(|(_, v, l)| Option3 {
                value: (*v).to_owned(),
                label: (*l).to_owned(),
                hint: String::new(),
                selected: *v == fields.industry,
            })
            .collect(),
        employee_count: fields.employee_count,
        annual_turnover_gbp: fields.annual_turnover_gbp,
        country: fields.country,
        sensitivities: SENSITIVITIES
            .iter()
            .map(|(_, v, l, hint)| Option3 {
                value: (*v).to_owned(),
                label: (*l).to_owned(),
                hint: (*hint).to_owned(),
                selected: *v == fields.data_sensitivity,
            })
            .collect(),
        flags: FLAGS
            .iter()
            .map(|(name, label)| Flag {
                name,
                label,
                checked: fields.flags.contains(name),
            })
            .collect(),
        cloud_providers: fields.cloud_providers,
        existing_certifications: fields.existing_certifications,
        frameworks: frameworks
            .into_iter()
            .map(|f| Option3 {
                selected: fields.planned_frameworks.contains(&f.slug),
                value: f.slug,
                label: f.name,
                hint: String::new(),
            })
            .collect(),
    };
    viewer.page(status, &page)
}

async fn profile_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let (fields, first_time) = match state.profiles.get(account.principal.organization_id).await {
        Ok(saved) => (Fields::from_profile(&saved.profile), false),
        Err(ProfileError::Missing) => (Fields::new(&account.account.organization_name), true),
        Err(e) => return failed(&viewer, e),
    };
    render_profile(
        &state,
        &viewer,
        StatusCode::OK,
        fields,
        Vec::new(),
        first_time,
    )
    .await
}

async fn save_profile(
    State(state): State<AppState>,
    viewer: Viewer,
    Client(client): Client,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if !viewer.csrf_ok(csrf) {
        return viewer.redirect("/onboarding", Some(EXPIRED_FORM), None);
    }
    let Ok(permit) = account.principal.require(Permission::ComplianceWrite) else {
        return viewer.redirect(
            "/onboarding",
            Some("Your role cannot change the business profile."),
            None,
        );
    };
    let fields = Fields::from_form(&pairs);
    let first_time = matches!(
        state.profiles.get(permit.organization_id()).await,
        Err(ProfileError::Missing)
    );
    let profile = match fields.parse() {
        Ok(p) => p,
        Err(errors) => {
            return render_profile(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                fields,
                errors,
                first_time,
            )
            .await;
        }
    };
    match state
        .profiles
        .save(
            permit.organization_id(),
            account.principal.user_id,
            profile,
            &state.catalog,
            &client,
        )
        .await
    {
        Ok(_) => viewer.redirect(
            "/onboarding/frameworks",
            Some("Your business profile is saved."),
            None,
        ),
        Err(ProfileError::Invalid { field, message }) => {
            let errors = vec![FieldError::new(
                input_of(field),
                sentence(label_of(field), message),
            )];
            render_profile(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                fields,
                errors,
                first_time,
            )
            .await
        }
        Err(ProfileError::UnknownFramework(_)) => {
            let errors = vec![FieldError::new(
                "planned_frameworks",
                "Planned frameworks must be chosen from the list.",
            )];
            render_profile(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                fields,
                errors,
                first_time,
            )
            .await
        }
        Err(e) => failed(&viewer, e),
    }
}

struct RecommendationRow {
    slug: String,
    name: String,
    mandatory: bool,
    applicable: bool,
    relevance: u8,
    reasons: Vec<String>,
    /// An assessment of this framework already under way.
    in_progress: Option<String>,
}

#[derive(Template)]
#[template(path = "onboarding/frameworks.html")]
struct FrameworksPage {
    chrome: Chrome,
    can_write: bool,
    recommended: Vec<RecommendationRow>,
    others: Vec<RecommendationRow>,
}

async fn frameworks_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let Some(account) = &viewer.account else {
        return sign_in_first(&viewer);
    };
    let Ok(permit) = account.principal.require(Permission::ComplianceRead) else {
        return viewer.redirect("/dashboard", Some("Your role cannot see frameworks."), None);
    };
    let org = permit.organization_id();
    let recommendations = match state.profiles.recommendations(org, &state.catalog).await {
        Ok(r) => r,
        Err(ProfileError::Missing) => {
            return viewer.redirect(
                "/onboarding",
                Some("Tell us about your business first."),
                None,
            );
        }
        Err(e) => return failed(&viewer, e),
    };
    let assessments = match state.assessments.list(org).await {
        Ok(a) => a,
        Err(e) => return failed(&viewer, e),
    };
    let (recommended, others): (Vec<_>, Vec<_>) = recommendations
        .into_iter()
        .map(|r| RecommendationRow {
            in_progress: assessments
                .iter()
                .find(|a| a.framework_id == r.framework_id && a.status != "completed")
                .map(|a| format!("/assessments/{}", a.id)),
            slug: r.slug,
            name: r.name,
            mandatory: r.verdict.mandatory,
            applicable: r.verdict.applicable,
            relevance: r.verdict.relevance_score,
            reasons: r.verdict.reasons,
        })
        .partition(|r| r.applicable);
    let page = FrameworksPage {
        chrome: viewer.chrome(),
        can_write: account.principal.can(Permission::ComplianceWrite),
        recommended,
        others,
    };
    viewer.page(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_full_form_parses_into_the_profile() {
        let p = Fields::from_form(&form(&[
            ("company_name", " Bakery Ltd "),
            ("industry", "retail"),
            ("employee_count", "1,200"),
            ("annual_turnover_gbp", "£850,000"),
            ("country", "gb"),
            ("data_sensitivity", "high"),
            ("handles_personal_data", "true"),
            ("cloud_providers", "AWS, , Microsoft 365"),
            ("planned_frameworks", "cyber-essentials"),
            ("planned_frameworks", "uk-gdpr"),
        ]))
        .parse()
        .unwrap();
        assert_eq!(p.company_name, "Bakery Ltd");
        assert_eq!(p.industry, Industry::Retail);
        assert_eq!(p.employee_count, 1200);
        assert_eq!(p.annual_turnover_gbp, Some(850_000));
        assert_eq!(p.country, "GB");
        assert!(p.handles_personal_data && !p.remote_workforce);
        assert_eq!(p.cloud_providers, ["AWS", "Microsoft 365"]);
        assert_eq!(p.planned_frameworks, ["cyber-essentials", "uk-gdpr"]);
    }

    #[test]
    fn every_problem_is_reported_at_once_against_its_input() {
        let errors = Fields::from_form(&form(&[
            ("company_name", "A"),
            ("industry", "mining"),
            ("employee_count", "lots"),
            ("country", "GBR"),
        ]))
        .parse()
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "industry",
                "employee_count",
                "data_sensitivity-low",
                "company_name",
                "country"
            ]
        );
        assert!(
            errors[3]
                .message
                .starts_with("Company name must be 2 to 200")
        );
    }
}
