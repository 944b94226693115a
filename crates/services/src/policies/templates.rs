//! Policy templates: our own policy texts in `content/policies/*.yaml` (format in
//! content/README.md), each mapped to the controls it covers, filled from the
//! business profile. The offline engine writes a policy with nothing else; a remote
//! model is given the filled template to tailor.

use include_dir::{Dir, include_dir};
use ruleiq_core::profile::BusinessProfile;
use serde::Deserialize;
use std::{collections::HashMap, fmt::Write as _, sync::LazyLock};

static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../content/policies");

/// The placeholders a template may use; anything else in double braces is an error.
pub const PLACEHOLDERS: [&str; 9] = [
    "company_name",
    "industry",
    "employee_count",
    "country",
    "cloud_providers",
    "data_sensitivity",
    "policy_owner",
    "review_months",
    "effective_date",
];

/// The profile facts a section may depend on.
pub const FLAGS: [&str; 10] = [
    "handles_personal_data",
    "processes_special_category_data",
    "processes_payment_cards",
    "stores_health_data",
    "provides_financial_services",
    "operates_critical_infrastructure",
    "serves_eu_customers",
    "transfers_data_internationally",
    "remote_workforce",
    "uses_cloud_services",
];

/// A policy template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub policy_type: String,
    pub name: String,
    pub description: String,
    pub template_version: u32,
    pub review_months: u32,
    pub controls: Vec<ControlRefs>,
    pub sections: Vec<Section>,
}

/// Controls of one framework a template covers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlRefs {
    pub framework: String,
    pub refs: Vec<String>,
}

/// One section of a template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub heading: String,
    /// A profile flag that must be true for the section to appear.
    #[serde(default)]
    pub when: Option<String>,
    pub body: String,
}

/// Why the templates could not be loaded: the file and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content/policies/{file}: {message}")]
pub struct TemplateError {
    pub file: String,
    pub message: String,
}

static LIBRARY: LazyLock<Result<Vec<Template>, TemplateError>> = LazyLock::new(|| {
    let mut out = Vec::new();
    let mut files: Vec<_> = EMBEDDED
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort_by_key(|f| f.path().to_path_buf());
    for f in files {
        let name = f.path().display().to_string();
        let text = f.contents_utf8().ok_or_else(|| TemplateError {
            file: name.clone(),
            message: "not UTF-8".into(),
        })?;
        out.push(parse(&name, text)?);
    }
    Ok(out)
});

/// Parses and checks one template file.
///
/// # Errors
/// A [`TemplateError`] naming the rule broken.
pub fn parse(file: &str, text: &str) -> Result<Template, TemplateError> {
    let err = |message: String| TemplateError {
        file: file.to_owned(),
        message,
    };
    let t: Template = serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?;
    let stem = file.trim_end_matches(".yaml");
    if stem.rsplit('/').next() != Some(t.policy_type.as_str()) {
        return Err(err(format!(
            "policy_type `{}` must match the file name",
            t.policy_type
        )));
    }
    if t.sections.is_empty() {
        return Err(err("a template needs at least one section".into()));
    }
    if !(1..=60).contains(&t.review_months) {
        return Err(err("review_months: between 1 and 60".into()));
    }
    for (i, s) in t.sections.iter().enumerate() {
        if let Some(flag) = &s.when
            && !FLAGS.contains(&flag.as_str())
        {
            return Err(err(format!(
                "sections[{i}].when: `{flag}` is not a profile flag (one of {})",
                FLAGS.join(", ")
            )));
        }
        for p in placeholders(&s.body) {
            if !PLACEHOLDERS.contains(&p) {
                return Err(err(format!(
                    "sections[{i}].body: unknown placeholder {{{{{p}}}}} (allowed: {})",
                    PLACEHOLDERS.join(", ")
                )));
            }
        }
    }
    Ok(t)
}

/// The names inside `{{ }}` in `text`.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split("{{")
        .skip(1)
        .filter_map(|rest| rest.split_once("}}").map(|(name, _)| name.trim()))
}

/// Parses the policy templates among `files` (those under `content/policies/`) and
/// checks that every control they name exists in `library`.
///
/// # Errors
/// The first [`TemplateError`] found.
pub fn check(
    files: &[crate::frameworks::content::SourceFile],
    library: &crate::frameworks::content::Library,
) -> Result<Vec<Template>, TemplateError> {
    let mut out = Vec::new();
    for f in files {
        let Some(name) = f.path.strip_prefix("content/policies/") else {
            continue;
        };
        let t = parse(name, &f.text)?;
        for (i, c) in t.controls.iter().enumerate() {
            let Some(framework) = library.frameworks.iter().find(|d| d.slug == c.framework) else {
                return Err(TemplateError {
                    file: name.to_owned(),
                    message: format!("controls[{i}].framework: no framework `{}`", c.framework),
                });
            };
            if let Some(missing) = c
                .refs
                .iter()
                .find(|r| !framework.controls.iter().any(|k| &k.reference == *r))
            {
                return Err(TemplateError {
                    file: name.to_owned(),
                    message: format!(
                        "controls[{i}].refs: `{missing}` is not a control of {}",
                        c.framework
                    ),
                });
            }
        }
        out.push(t);
    }
    Ok(out)
}

/// Every template, in policy-type order.
///
/// # Errors
/// When a shipped template is broken (`ruleiq content check` says which).
pub fn library() -> Result<&'static [Template], TemplateError> {
    LIBRARY.as_ref().map(Vec::as_slice).map_err(Clone::clone)
}

/// One template.
#[must_use]
pub fn find(policy_type: &str) -> Option<&'static Template> {
    library()
        .ok()?
        .iter()
        .find(|t| t.policy_type == policy_type)
}

/// What a template is filled with.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub organisation_name: &'a str,
    pub profile: Option<&'a BusinessProfile>,
    pub effective_date: chrono::NaiveDate,
    pub policy_owner: &'a str,
}

impl Template {
    /// The policy as Markdown: a heading per included section, placeholders filled.
    /// Deterministic: the same facts always give the same text.
    #[must_use]
    pub fn render(&self, facts: &Facts<'_>) -> String {
        let values = self.values(facts);
        let mut out = String::with_capacity(8_192);
        for s in &self.sections {
            if let Some(flag) = &s.when
                && !facts.profile.is_some_and(|p| flag_of(p, flag))
            {
                continue;
            }
            let _ = write!(out, "## {}\n\n", s.heading.trim());
            out.push_str(&fill(s.body.trim_end(), &values));
            out.push_str("\n\n");
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    }

    fn values(&self, facts: &Facts<'_>) -> HashMap<&'static str, String> {
        let p = facts.profile;
        let clouds = p.filter(|p| !p.cloud_providers.is_empty()).map_or_else(
            || "our cloud providers".to_owned(),
            |p| p.cloud_providers.join(", "),
        );
        let name = p.map_or(facts.organisation_name, |p| p.company_name.as_str());
        HashMap::from([
            ("company_name", name.to_owned()),
            (
                "industry",
                p.map_or_else(|| "our sector".to_owned(), |p| words(&p.industry)),
            ),
            (
                "employee_count",
                p.map_or_else(|| "our".to_owned(), |p| p.employee_count.to_string()),
            ),
            (
                "country",
                p.map_or_else(|| "the United Kingdom".to_owned(), |p| p.country.clone()),
            ),
            ("cloud_providers", clouds),
            (
                "data_sensitivity",
                p.map_or_else(|| "moderate".to_owned(), |p| words(&p.data_sensitivity)),
            ),
            ("policy_owner", facts.policy_owner.to_owned()),
            ("review_months", self.review_months.to_string()),
            (
                "effective_date",
                facts.effective_date.format("%-d %B %Y").to_string(),
            ),
        ])
    }
}

/// A serialisable enum's value in plain words (`financial_services` → "financial services").
fn words<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}

fn flag_of(p: &BusinessProfile, flag: &str) -> bool {
    match flag {
        "handles_personal_data" => p.handles_personal_data,
        "processes_special_category_data" => p.processes_special_category_data,
        "processes_payment_cards" => p.processes_payment_cards,
        "stores_health_data" => p.stores_health_data,
        "provides_financial_services" => p.provides_financial_services,
        "operates_critical_infrastructure" => p.operates_critical_infrastructure,
        "serves_eu_customers" => p.serves_eu_customers,
        "transfers_data_internationally" => p.transfers_data_internationally,
        "remote_workforce" => p.remote_workforce,
        "uses_cloud_services" => p.uses_cloud_services,
        _ => false,
    }
}

fn fill(text: &str, values: &HashMap<&'static str, String>) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.split_once("}}") {
            Some((name, tail)) => {
                match values.get(name.trim()) {
                    Some(v) => out.push_str(v),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                }
                rest = tail;
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleiq_core::profile::Industry;

    fn facts(profile: Option<&BusinessProfile>) -> Facts<'_> {
        Facts {
            organisation_name: "Fallback Ltd",
            profile,
            effective_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap_or_default(),
            policy_owner: "the Information Security Lead",
        }
    }

    #[test]
    fn every_shipped_template_parses_and_fills_every_placeholder() {
        let lib = library().expect("templates load");
        assert!(lib.len() >= 14, "only {} templates", lib.len());
        let mut p = BusinessProfile::minimal("Acme Widgets Ltd", Industry::Technology, 40);
        p.uses_cloud_services = true;
        p.cloud_providers = vec!["AWS".into(), "Microsoft 365".into()];
        for t in lib {
            let text = t.render(&facts(Some(&p)));
            assert!(!text.contains("{{"), "{} left a placeholder", t.policy_type);
            assert!(text.contains("## "), "{} has no headings", t.policy_type);
            assert!(
                !t.controls.is_empty(),
                "{} covers no controls",
                t.policy_type
            );
        }
    }

    #[test]
    fn every_control_a_shipped_template_names_exists() {
        let files = crate::frameworks::content::embedded_files();
        let library = crate::frameworks::content::load(&files).expect("library loads");
        let checked = check(&files, &library).expect("templates check");
        assert_eq!(checked.len(), library_len());
        // A reference that does not exist is refused with its name.
        let mut broken = files.clone();
        let f = broken
            .iter_mut()
            .find(|f| f.path == "content/policies/backup.yaml")
            .expect("backup template");
        f.text = f.text.replacen("refs: [", "refs: [\"Z.99\", ", 1);
        let e = check(&broken, &library).unwrap_err();
        assert!(e.message.contains("`Z.99` is not a control"), "{e}");
    }

    fn library_len() -> usize {
        library().map(<[Template]>::len).unwrap_or_default()
    }

    #[test]
    fn sections_follow_the_profile() {
        let t = parse(
            "x.yaml",
            "policy_type: x\nname: X\ndescription: d\ntemplate_version: 1\nreview_months: 12\ncontrols: []\nsections:\n  - heading: Always\n    body: For {{company_name}}, owned by {{policy_owner}}.\n  - heading: Cards\n    when: processes_payment_cards\n    body: Card rules.\n",
        )
        .expect("parses");
        let mut p = BusinessProfile::minimal("Acme Ltd", Industry::Retail, 5);
        let without = t.render(&facts(Some(&p)));
        assert!(without.contains("For Acme Ltd, owned by the Information Security Lead."));
        assert!(!without.contains("Cards"));
        p.processes_payment_cards = true;
        assert!(
            t.render(&facts(Some(&p)))
                .contains("## Cards\n\nCard rules.")
        );
        assert_eq!(t.render(&facts(Some(&p))), t.render(&facts(Some(&p))));
        // No profile yet: the organisation's name still appears.
        assert!(t.render(&facts(None)).contains("Fallback Ltd"));
    }

    #[test]
    fn broken_templates_are_refused_with_the_reason() {
        let base = "policy_type: x\nname: X\ndescription: d\ntemplate_version: 1\nreview_months: 12\ncontrols: []\nsections:\n  - heading: A\n";
        let e = parse("x.yaml", &format!("{base}    body: Hi {{{{ceo_name}}}}\n")).unwrap_err();
        assert!(
            e.message.contains("unknown placeholder {{ceo_name}}"),
            "{e}"
        );
        let e = parse(
            "x.yaml",
            &format!("{base}    when: likes_cats\n    body: b\n"),
        )
        .unwrap_err();
        assert!(
            e.message.contains("`likes_cats` is not a profile flag"),
            "{e}"
        );
        let e = parse("y.yaml", &format!("{base}    body: b\n")).unwrap_err();
        assert!(e.message.contains("must match the file name"), "{e}");
    }
}
