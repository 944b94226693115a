//! OSCAL 1.x catalogs in and out.
//!
//! Import reads groups (as headings), controls and their nested enhancements, parts,
//! parameters, properties and links; it keeps each control's OSCAL fields verbatim so
//! a later export gives the same parts back. Controls get their published label
//! (`AC-2(1)`) as their ref. ruleIQ's own additions travel in our namespace: questions
//! and evidence examples as parts, criticality as a property, and cross-framework
//! mappings as links to `urn:ruleiq:control:<framework>:<ref>` with the relation as
//! `rel`. A catalog that breaks the model is refused with the JSON path of the first
//! problem.

use chrono::{DateTime, SecondsFormat, Utc};
use ruleiq_core::Relation;
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::{control, framework, framework_domain},
    repositories::{frameworks as repo, search as search_repo},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

use super::library::{position, question_row};
use crate::search::{self, SearchDocument, SearchKind};

/// Our namespace for the parts and properties OSCAL has no name for.
pub const NS: &str = "https://ruleiq.dev/ns/oscal";
/// The prefix of a link to another framework's control.
pub const URN: &str = "urn:ruleiq:control:";
/// The OSCAL version our exports declare.
pub const OSCAL_VERSION: &str = "1.1.2";
/// Fixed namespace for the UUIDs of exported catalogs (OSCAL wants v4 or v5).
const EXPORT_NS: Uuid = Uuid::from_u128(0x5e1f_1c2a_7d3b_4e11_9a0c_2b6d_8f4e_0a17);
/// At most this many controls per catalog (NIST's full SP 800-53 has about 1,200).
const MAX_CONTROLS: usize = 20_000;

#[derive(Debug, Deserialize, Serialize)]
struct Document {
    catalog: Catalog,
}

#[derive(Debug, Deserialize, Serialize)]
struct Catalog {
    uuid: String,
    metadata: Metadata,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    params: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    controls: Vec<Control>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<Group>,
    #[serde(
        rename = "back-matter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    back_matter: Option<Value>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Metadata {
    title: String,
    #[serde(rename = "last-modified")]
    last_modified: String,
    version: String,
    #[serde(rename = "oscal-version")]
    oscal_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    props: Vec<Prop>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parties: Vec<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remarks: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Party {
    uuid: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Group {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class: Option<String>,
    title: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    params: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    props: Vec<Prop>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<Group>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    controls: Vec<Control>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Control {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class: Option<String>,
    title: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    params: Vec<Param>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    props: Vec<Prop>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    controls: Vec<Control>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Param {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    select: Option<Select>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Select {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    choice: Vec<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    props: Vec<Prop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prose: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Prop {
    name: String,
    value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Link {
    href: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rel: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Why a catalog was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The document breaks the OSCAL catalog model at `path`.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// The organisation already has this catalog at this version.
    #[error("this catalog (version {version}) is already imported as {slug}")]
    Duplicate { slug: String, version: String },
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ImportError {
    ImportError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// What an import created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub id: Uuid,
    pub slug: String,
    pub controls: usize,
    pub groups: usize,
    pub mappings: usize,
}

/// A control flattened out of the tree, before it is stored.
struct Flat<'a> {
    control: &'a Control,
    path: String,
    reference: String,
    parent: Option<String>,
    domain: Option<String>,
}

/// What an import of `body` would store, without storing anything: the catalog
/// parsed, checked and turned into rows; the numbers of domains and controls. The pure
/// half of [`import`], which the fuzz target `oscal_import` drives.
///
/// # Errors
/// [`ImportError::Invalid`] naming the JSON path of the first problem.
pub fn check(body: &[u8]) -> Result<(usize, usize), ImportError> {
    let doc = parse(body)?;
    let (domains, flats) = flatten(&doc.catalog)?;
    for (i, f) in flats.iter().enumerate() {
        control_row(Uuid::nil(), f, i, DateTime::UNIX_EPOCH);
    }
    Ok((domains.len(), flats.len()))
}

/// Parses `body` as an OSCAL catalog and stores it as a framework of `org` (or of
/// the shared library when `org` is `None`).
///
/// # Errors
/// [`ImportError::Invalid`] naming the JSON path of the first problem;
/// [`ImportError::Duplicate`] when the same catalog and version is already there.
pub async fn import(
    db: &DatabaseConnection,
    org: Option<Uuid>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Imported, ImportError> {
    let doc = parse(body)?;
    let cat = &doc.catalog;
    let (domains, flats) = flatten(cat)?;

    let version = cat.metadata.version.trim().to_owned();
    let existing = repo::visible(db, org).await?;
    if let Some(dup) = existing.iter().find(|f| {
        f.organization_id == org
            && f.source_uuid.as_deref() == Some(cat.uuid.as_str())
            && f.version == version
    }) {
        return Err(ImportError::Duplicate {
            slug: dup.slug.clone(),
            version,
        });
    }
    let taken: HashSet<&str> = existing.iter().map(|f| f.slug.as_str()).collect();
    let slug = free_slug(&cat.metadata, &taken);
    let publisher = cat
        .metadata
        .parties
        .iter()
        .find(|p| p.kind == "organization")
        .and_then(|p| p.name.clone())
        .unwrap_or_else(|| "Not stated".to_owned());
    let jurisdiction = prop(&cat.metadata.props, "jurisdiction", Some(NS))
        .unwrap_or("Not stated")
        .to_owned();
    let description = cat.metadata.remarks.clone().unwrap_or_else(|| {
        format!(
            "Imported from an OSCAL {} catalog.",
            cat.metadata.oscal_version
        )
    });
    let url = cat
        .metadata
        .rest
        .get("links")
        .and_then(|l| l.get(0))
        .and_then(|l| l.get("href"))
        .and_then(Value::as_str)
        .filter(|h| h.starts_with("http"))
        .map(str::to_owned);

    let txn = ruleiq_db::begin(db).await?;
    let framework_id = repo::insert_framework(
        &txn,
        framework::Model {
            id: Uuid::now_v7(),
            organization_id: org,
            scope: repo::scope_of(org),
            slug: slug.clone(),
            name: cat.metadata.title.trim().to_owned(),
            version: version.clone(),
            publisher,
            jurisdiction,
            url,
            description,
            source: "oscal".into(),
            content_version: 1,
            content_hash: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body)),
            source_uuid: Some(cat.uuid.clone()),
            oscal: Some(json!({
                "metadata": serde_json::to_value(&cat.metadata).unwrap_or(Value::Null),
                "params": cat.params,
                "back-matter": cat.back_matter,
            })),
            created_at: now,
            updated_at: now,
        },
    )
    .await
    .map_err(|e| match e.sql_err() {
        // Another import took the name between the check above and this insert.
        Some(ruleiq_db::sea_orm::SqlErr::UniqueConstraintViolation(_)) => ImportError::Duplicate {
            slug: slug.clone(),
            version: version.clone(),
        },
        _ => ImportError::Db(e),
    })?;
    repo::replace_domains(
        &txn,
        framework_id,
        domains
            .iter()
            .enumerate()
            .map(|(i, d)| framework_domain::Model {
                id: Uuid::now_v7(),
                framework_id,
                reference: d.reference.clone(),
                name: d.name.clone(),
                parent_ref: d.parent.clone(),
                position: position(i),
                oscal: Some(d.oscal.clone()),
                created_at: now,
                updated_at: now,
            })
            .collect(),
    )
    .await?;
    let rows: Vec<control::Model> = flats
        .iter()
        .enumerate()
        .map(|(i, f)| control_row(framework_id, f, i, now))
        .collect();
    let descriptions: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.title.clone(), r.description.clone(), r.guidance.clone()))
        .collect();
    let ids = repo::upsert_controls(&txn, framework_id, rows, now).await?;

    // Our questions, stored as the organisation's own.
    let mut qrows = Vec::new();
    let mut qlinks = Vec::new();
    for f in &flats {
        for (n, text) in ns_parts(&f.control.parts, "question").enumerate() {
            let key = format!("{framework_id}/{}#{}", f.reference, n + 1);
            let mut row = question_row(&key, text, None, false, qrows.len(), now);
            row.organization_id = org;
            qlinks.push((key, ids[&f.reference]));
            qrows.push(row);
        }
    }
    if !qrows.is_empty() {
        let qids = repo::upsert_questions(&txn, qrows).await?;
        let links: Vec<(Uuid, Uuid)> = qlinks.iter().map(|(k, c)| (qids[k], *c)).collect();
        let all: Vec<Uuid> = qids.values().copied().collect();
        repo::replace_question_links(&txn, &all, links, now).await?;
    }

    // Links into other frameworks become mappings when their target is within reach.
    let mut by_slug: HashMap<&str, HashMap<String, Uuid>> = HashMap::new();
    let mut mappings = Vec::new();
    for f in &flats {
        for link in &f.control.links {
            let Some((target_slug, target_ref, relation)) = mapping_link(link) else {
                continue;
            };
            if !by_slug.contains_key(target_slug) {
                let refs = match existing.iter().find(|x| x.slug == target_slug) {
                    Some(x) => repo::all_controls(&txn, &[x.id])
                        .await?
                        .into_iter()
                        .map(|c| (c.reference, c.id))
                        .collect(),
                    None => HashMap::new(),
                };
                by_slug.insert(target_slug, refs);
            }
            if let Some(target) = by_slug[target_slug].get(target_ref) {
                mappings.push((ids[&f.reference], *target, relation.as_str()));
            }
        }
    }
    let mapping_count = mappings.len();
    repo::insert_mappings(&txn, mappings, now).await?;

    let docs = flats
        .iter()
        .zip(&descriptions)
        .map(|(f, (title, description, guidance))| {
            let questions: Vec<&str> = ns_parts(&f.control.parts, "question").collect();
            SearchDocument {
                organization_id: org,
                kind: SearchKind::Control,
                subject_id: ids[&f.reference],
                framework_slug: Some(slug.clone()),
                title: format!("{} {}", f.reference, title),
                body: search::control_body(description, guidance, &questions),
            }
            .into_row(now)
        })
        .collect();
    search_repo::upsert(&txn, docs).await?;
    repo::bump_revision(&txn, org, now).await?;
    txn.commit().await?;
    Ok(Imported {
        id: framework_id,
        slug,
        controls: flats.len(),
        groups: domains.len(),
        mappings: mapping_count,
    })
}

fn parse(body: &[u8]) -> Result<Document, ImportError> {
    // PostgreSQL text cannot hold NUL, and no catalog needs it.
    if body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Err(invalid("$", "contains a NUL character (\\u0000)"));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(invalid(
            "$",
            "an OSCAL catalog is a JSON object with a `catalog` member",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let doc: Document = serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner().to_string();
        let path = e.path().to_string();
        let mut json_path = if path == "." || path.is_empty() {
            "$".to_owned()
        } else if path.starts_with('[') {
            format!("${path}")
        } else {
            format!("$.{path}")
        };
        let message = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            json_path.push('.');
            json_path.push_str(field);
            return invalid(json_path, "is required but missing");
        }
        if e.inner().is_syntax() || e.inner().is_eof() {
            return invalid(json_path, format!("the body is not valid JSON: {message}"));
        }
        invalid(json_path, message)
    })?;
    if Uuid::parse_str(&doc.catalog.uuid).is_err() {
        return Err(invalid("$.catalog.uuid", "must be a UUID"));
    }
    if doc.catalog.metadata.title.trim().is_empty() {
        return Err(invalid("$.catalog.metadata.title", "must not be empty"));
    }
    if doc.catalog.metadata.version.trim().is_empty() {
        return Err(invalid("$.catalog.metadata.version", "must not be empty"));
    }
    for (path, value, max) in [
        ("$.catalog.metadata.title", &doc.catalog.metadata.title, 300),
        (
            "$.catalog.metadata.version",
            &doc.catalog.metadata.version,
            120,
        ),
    ] {
        if value.trim().chars().count() > max {
            return Err(invalid(path, format!("is longer than {max} characters")));
        }
    }
    for (i, p) in doc.catalog.metadata.parties.iter().enumerate() {
        if p.name.as_deref().is_some_and(|n| n.chars().count() > 300) {
            return Err(invalid(
                format!("$.catalog.metadata.parties[{i}].name"),
                "is longer than 300 characters",
            ));
        }
    }
    Ok(doc)
}

/// A heading read from a group.
struct FlatGroup {
    reference: String,
    name: String,
    parent: Option<String>,
    oscal: Value,
}

fn flatten(cat: &Catalog) -> Result<(Vec<FlatGroup>, Vec<Flat<'_>>), ImportError> {
    let mut groups = Vec::new();
    let mut controls = Vec::new();
    let mut seen_ids: HashSet<&str> = HashSet::new();
    let mut seen_refs: HashSet<String> = HashSet::new();
    walk_controls(
        &cat.controls,
        "$.catalog.controls",
        None,
        None,
        &mut controls,
        &mut seen_ids,
        &mut seen_refs,
    )?;
    walk_groups(
        &cat.groups,
        "$.catalog.groups",
        None,
        &mut groups,
        &mut controls,
        &mut seen_ids,
        &mut seen_refs,
    )?;
    if controls.is_empty() {
        return Err(invalid("$.catalog", "contains no controls"));
    }
    if controls.len() > MAX_CONTROLS {
        return Err(invalid(
            "$.catalog",
            format!("has more than {MAX_CONTROLS} controls"),
        ));
    }
    Ok((groups, controls))
}

fn walk_groups<'a>(
    list: &'a [Group],
    path: &str,
    parent: Option<&str>,
    groups: &mut Vec<FlatGroup>,
    controls: &mut Vec<Flat<'a>>,
    seen_ids: &mut HashSet<&'a str>,
    seen_refs: &mut HashSet<String>,
) -> Result<(), ImportError> {
    for (i, g) in list.iter().enumerate() {
        let here = format!("{path}[{i}]");
        if g.title.trim().is_empty() {
            return Err(invalid(format!("{here}.title"), "must not be empty"));
        }
        if let Some(id) = &g.id {
            if !is_token(id) {
                return Err(invalid(format!("{here}.id"), "is not a valid OSCAL token"));
            }
            if !seen_ids.insert(id) {
                return Err(invalid(
                    format!("{here}.id"),
                    format!("{id:?} is used twice"),
                ));
            }
        }
        // A carrier holds a heading's own controls beside its sub-headings (OSCAL lets a
        // group have one or the other); its controls belong to the parent heading.
        if let Some(parent) = parent
            && prop(&g.props, "carrier", Some(NS)) == Some("controls")
        {
            walk_controls(
                &g.controls,
                &format!("{here}.controls"),
                None,
                Some(parent),
                controls,
                seen_ids,
                seen_refs,
            )?;
            continue;
        }
        let base = prop(&g.props, "label", None)
            .map(str::to_owned)
            .or_else(|| g.id.clone())
            .unwrap_or_else(|| format!("group-{}", groups.len() + 1));
        if base.chars().count() > 100 {
            return Err(invalid(
                format!("{here}.props"),
                "the group's label is longer than 100 characters",
            ));
        }
        let mut reference = base.clone();
        let mut n = 1;
        while groups.iter().any(|x: &FlatGroup| x.reference == reference) {
            n += 1;
            reference = format!("{base}-{n}");
        }
        groups.push(FlatGroup {
            reference: reference.clone(),
            name: g.title.trim().to_owned(),
            parent: parent.map(str::to_owned),
            oscal: json!({
                "id": g.id, "class": g.class, "params": g.params, "props": g.props,
                "links": g.links, "parts": g.parts,
            }),
        });
        walk_controls(
            &g.controls,
            &format!("{here}.controls"),
            None,
            Some(&reference),
            controls,
            seen_ids,
            seen_refs,
        )?;
        walk_groups(
            &g.groups,
            &format!("{here}.groups"),
            Some(&reference),
            groups,
            controls,
            seen_ids,
            seen_refs,
        )?;
    }
    Ok(())
}

fn walk_controls<'a>(
    list: &'a [Control],
    path: &str,
    parent: Option<&str>,
    domain: Option<&str>,
    out: &mut Vec<Flat<'a>>,
    seen_ids: &mut HashSet<&'a str>,
    seen_refs: &mut HashSet<String>,
) -> Result<(), ImportError> {
    for (i, c) in list.iter().enumerate() {
        let here = format!("{path}[{i}]");
        if !is_token(&c.id) {
            return Err(invalid(format!("{here}.id"), "is not a valid OSCAL token"));
        }
        if !seen_ids.insert(&c.id) {
            return Err(invalid(
                format!("{here}.id"),
                format!("control id {:?} is used twice", c.id),
            ));
        }
        if c.title.trim().is_empty() {
            return Err(invalid(format!("{here}.title"), "must not be empty"));
        }
        for (j, p) in c.parts.iter().enumerate() {
            check_part(p, &format!("{here}.parts[{j}]"))?;
        }
        let label = prop(&c.props, "label", None)
            .filter(|l| !l.trim().is_empty() && l.len() <= 120)
            .map(str::to_owned);
        let reference = match label {
            Some(l) if !seen_refs.contains(&l) => l,
            _ => c.id.clone(),
        };
        if !seen_refs.insert(reference.clone()) || reference.len() > 120 {
            return Err(invalid(
                format!("{here}.id"),
                format!("control {reference:?} clashes with another control's label"),
            ));
        }
        out.push(Flat {
            control: c,
            path: here.clone(),
            reference: reference.clone(),
            parent: parent.map(str::to_owned),
            domain: domain.map(str::to_owned),
        });
        walk_controls(
            &c.controls,
            &format!("{here}.controls"),
            Some(&reference),
            domain,
            out,
            seen_ids,
            seen_refs,
        )?;
    }
    Ok(())
}

fn check_part(p: &Part, path: &str) -> Result<(), ImportError> {
    if !is_token(&p.name) {
        return Err(invalid(
            format!("{path}.name"),
            "is not a valid OSCAL token",
        ));
    }
    for (i, sub) in p.parts.iter().enumerate() {
        check_part(sub, &format!("{path}.parts[{i}]"))?;
    }
    Ok(())
}

/// OSCAL's token: a letter or `_`, then letters, digits, `.`, `-` or `_`.
fn is_token(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The value of the first property `name` (in `ns`, or in no namespace and with no
/// class when `ns` is `None`).
fn prop<'a>(props: &'a [Prop], name: &str, ns: Option<&str>) -> Option<&'a str> {
    props
        .iter()
        .find(|p| p.name == name && p.ns.as_deref() == ns && (ns.is_some() || p.class.is_none()))
        .or_else(|| {
            props
                .iter()
                .find(|p| p.name == name && p.ns.as_deref() == ns)
        })
        .map(|p| p.value.as_str())
}

fn ns_parts<'a>(parts: &'a [Part], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    parts
        .iter()
        .filter(move |p| p.name == name && p.ns.as_deref() == Some(NS))
        .filter_map(|p| p.prose.as_deref())
}

fn mapping_link(link: &Link) -> Option<(&str, &str, Relation)> {
    let rest = link.href.strip_prefix(URN)?;
    let (slug, reference) = rest.split_once(':')?;
    let relation: Relation = link.rel.as_deref()?.parse().ok()?;
    Some((slug, reference, relation))
}

fn control_row(
    framework_id: Uuid,
    f: &Flat<'_>,
    index: usize,
    now: DateTime<Utc>,
) -> control::Model {
    let c = f.control;
    let params: HashMap<&str, &Param> = c.params.iter().map(|p| (p.id.as_str(), p)).collect();
    let statement = c
        .parts
        .iter()
        .filter(|p| p.name == "statement")
        .map(|p| flatten_prose(p, &params))
        .collect::<Vec<_>>()
        .join("\n");
    let guidance = c
        .parts
        .iter()
        .filter(|p| p.name == "guidance")
        .map(|p| flatten_prose(p, &params))
        .collect::<Vec<_>>()
        .join("\n");
    let criticality = prop(&c.props, "criticality", Some(NS))
        .and_then(|v| v.parse::<ruleiq_core::Criticality>().ok())
        .unwrap_or(ruleiq_core::Criticality::Medium);
    // Our own exports carry the estimate; another publisher's catalog has none.
    #[allow(clippy::cast_possible_truncation)]
    let effort_half_days = prop(&c.props, "effort-days", Some(NS))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|d| super::content::valid_effort(*d))
        .map(|d| (d * 2.0) as i32);
    let evidence: Vec<&str> = ns_parts(&c.parts, "evidence-example").collect();
    let mut oscal = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Some(obj) = oscal.as_object_mut() {
        obj.remove("controls");
        obj.insert("path".into(), Value::String(f.path.clone()));
    }
    control::Model {
        id: Uuid::now_v7(),
        framework_id,
        reference: f.reference.clone(),
        parent_ref: f.parent.clone(),
        domain_ref: f.domain.clone(),
        title: c.title.trim().to_owned(),
        description: statement,
        guidance,
        criticality: criticality.as_str().to_owned(),
        effort_half_days,
        evidence_examples: json!(evidence),
        oscal: Some(oscal),
        position: position(index),
        retired_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// A part's prose and its sub-parts', each line led by its label, with parameter
/// insertions written as `[label]`.
fn flatten_prose(part: &Part, params: &HashMap<&str, &Param>) -> String {
    let mut lines = Vec::new();
    flatten_into(part, params, &mut lines);
    lines.join("\n")
}

fn flatten_into(part: &Part, params: &HashMap<&str, &Param>, lines: &mut Vec<String>) {
    let label = prop(&part.props, "label", None);
    if let Some(prose) = &part.prose {
        let text = substitute(prose, params);
        lines.push(match label {
            Some(l) => format!("{l} {text}"),
            None => text,
        });
    }
    for sub in &part.parts {
        flatten_into(sub, params, lines);
    }
}

fn substitute(prose: &str, params: &HashMap<&str, &Param>) -> String {
    let mut out = String::with_capacity(prose.len());
    let mut rest = prose;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &rest[start + 2..start + end];
        let id = inner.rsplit(',').next().unwrap_or("").trim();
        let text = params.get(id).map_or_else(
            || format!("[{id}]"),
            |p| match (&p.label, &p.select) {
                (Some(label), _) => format!("[Assignment: {label}]"),
                (None, Some(sel)) if !sel.choice.is_empty() => {
                    format!("[Selection: {}]", sel.choice.join("; "))
                }
                _ => format!("[{id}]"),
            },
        );
        out.push_str(&text);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn slugify(s: &str) -> String {
    let mut out = String::new();
    for ch in s.to_lowercase().chars() {
        if ch.is_ascii_alphanumeric() || ch == '.' {
            out.push(ch);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_matches(|c| c == '-' || c == '.').to_owned();
    out.chars().take(80).collect()
}

fn free_slug(meta: &Metadata, taken: &HashSet<&str>) -> String {
    let wanted = prop(&meta.props, "slug", Some(NS)).map(slugify);
    let title = slugify(&meta.title);
    let version = slugify(&meta.version);
    let base = match wanted {
        Some(w) if !w.is_empty() => w,
        _ if title.contains(&version) || version.is_empty() => title,
        _ => format!("{title}-{version}"),
    };
    let base = if base.is_empty() {
        "catalog".to_owned()
    } else {
        base
    };
    // Paths under /frameworks/ that a slug must not shadow.
    let free =
        |s: &str| !taken.contains(s) && !matches!(s, "compare" | "recommendations" | "import");
    if free(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|s| free(s))
        .unwrap_or(base)
}

/// A token made from a ref, with `prefix` when the ref does not start with a letter.
fn token_of(prefix: &str, reference: &str) -> String {
    let mut s: String = reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s = format!("{prefix}{s}");
    }
    s
}

/// The framework as an OSCAL 1.1 catalog.
///
/// # Errors
/// On a database error.
pub async fn export(
    db: &DatabaseConnection,
    org: Option<Uuid>,
    framework: &framework::Model,
) -> Result<Value, DbErr> {
    let domains = repo::domains(db, &[framework.id]).await?;
    let controls = repo::all_controls(db, &[framework.id]).await?;
    let ids: Vec<Uuid> = controls.iter().map(|c| c.id).collect();
    let questions = repo::questions_for(db, &ids).await?;
    let mappings = repo::mappings_for(db, &ids).await?;
    let visible = |o: Option<Uuid>| o.is_none() || o == org;

    let mut links_of: HashMap<Uuid, Vec<Link>> = HashMap::new();
    for m in &mappings {
        let relation: Relation = m.relation.parse().unwrap_or(Relation::Intersect);
        let (me, slug, reference, rel) = if m.source_framework == framework.id {
            if !visible(m.target_org) {
                continue;
            }
            (m.source_id, &m.target_slug, &m.target_ref, relation)
        } else {
            if !visible(m.source_org) {
                continue;
            }
            (
                m.target_id,
                &m.source_slug,
                &m.source_ref,
                relation.reversed(),
            )
        };
        links_of.entry(me).or_default().push(Link {
            href: format!("{URN}{slug}:{reference}"),
            rel: Some(rel.as_str().to_owned()),
            rest: Map::new(),
        });
    }
    let mut questions_of: HashMap<Uuid, Vec<&str>> = HashMap::new();
    for q in &questions {
        questions_of
            .entry(q.control_id)
            .or_default()
            .push(q.text.as_str());
    }

    let imported = framework.source == "oscal";
    let mut used_ids: HashSet<String> = HashSet::new();
    let mut built: HashMap<String, Control> = HashMap::new();
    let mut order: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for c in &controls {
        let mut links = links_of.remove(&c.id).unwrap_or_default();
        links.sort_by(|a, b| a.href.cmp(&b.href));
        let control = if imported && let Some(stored) = &c.oscal {
            let mut stored: Control =
                serde_json::from_value(stored.clone()).unwrap_or_else(|_| Control {
                    id: token_of("c-", &c.reference),
                    class: None,
                    title: c.title.clone(),
                    params: Vec::new(),
                    props: Vec::new(),
                    links: Vec::new(),
                    parts: Vec::new(),
                    controls: Vec::new(),
                });
            stored.links.retain(|l| !l.href.starts_with(URN));
            stored.links.extend(links);
            stored.controls.clear();
            stored
        } else {
            library_control(
                c,
                questions_of.get(&c.id).map(Vec::as_slice).unwrap_or(&[]),
                links,
            )
        };
        let mut control = control;
        if !used_ids.insert(control.id.clone()) {
            control.id = format!("{}_{}", control.id, used_ids.len());
            used_ids.insert(control.id.clone());
        }
        order.push((
            c.reference.clone(),
            c.parent_ref.clone(),
            c.domain_ref.clone(),
        ));
        built.insert(c.reference.clone(), control);
    }
    // Nest enhancements under their parents, deepest first.
    for (reference, parent, _) in order.iter().rev() {
        if let Some(parent) = parent
            && built.contains_key(parent)
            && let Some(child) = built.remove(reference)
            && let Some(p) = built.get_mut(parent)
        {
            p.controls.insert(0, child);
        }
    }
    let mut by_domain: HashMap<Option<String>, Vec<Control>> = HashMap::new();
    for (reference, _, domain) in &order {
        if let Some(c) = built.remove(reference) {
            by_domain.entry(domain.clone()).or_default().push(c);
        }
    }
    let mut groups_built: HashMap<String, Group> = HashMap::new();
    for d in &domains {
        let stored = d.oscal.as_ref().filter(|_| imported);
        let get = |k: &str| stored.and_then(|s| s.get(k)).cloned();
        let from = |k: &str| -> Vec<Value> {
            get(k)
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default()
        };
        let props: Vec<Prop> = get("props")
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_else(|| {
                vec![Prop {
                    name: "label".into(),
                    value: d.reference.clone(),
                    ns: None,
                    class: None,
                    rest: Map::new(),
                }]
            });
        let mut id = get("id")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| token_of("g-", &format!("g-{}", d.reference)));
        if !used_ids.insert(id.clone()) {
            id = format!("{id}_{}", used_ids.len());
            used_ids.insert(id.clone());
        }
        groups_built.insert(
            d.reference.clone(),
            Group {
                id: Some(id),
                class: get("class").and_then(|v| v.as_str().map(str::to_owned)),
                title: d.name.clone(),
                params: from("params"),
                props,
                links: get("links")
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default(),
                parts: get("parts")
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default(),
                groups: Vec::new(),
                controls: by_domain
                    .remove(&Some(d.reference.clone()))
                    .unwrap_or_default(),
            },
        );
    }
    for d in domains.iter().rev() {
        if let Some(parent) = &d.parent_ref
            && groups_built.contains_key(parent)
            && let Some(child) = groups_built.remove(&d.reference)
            && let Some(p) = groups_built.get_mut(parent)
        {
            p.groups.insert(0, child);
        }
    }
    let mut groups: Vec<Group> = domains
        .iter()
        .filter_map(|d| groups_built.remove(&d.reference))
        .collect();
    groups.iter_mut().for_each(carry_mixed);
    let loose: Vec<Control> = by_domain.into_values().flatten().collect();

    let stored = framework.oscal.as_ref().filter(|_| imported);
    let metadata = stored
        .and_then(|s| s.get("metadata"))
        .and_then(|m| serde_json::from_value::<Metadata>(m.clone()).ok())
        .unwrap_or_else(|| library_metadata(framework));
    let catalog = Catalog {
        uuid: framework
            .source_uuid
            .clone()
            .filter(|_| imported)
            .unwrap_or_else(|| Uuid::new_v5(&EXPORT_NS, framework.id.as_bytes()).to_string()),
        metadata,
        params: stored
            .and_then(|s| s.get("params"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
        controls: loose,
        groups,
        back_matter: stored
            .and_then(|s| s.get("back-matter"))
            .filter(|v| !v.is_null())
            .cloned(),
    };
    Ok(serde_json::to_value(Document { catalog }).unwrap_or(Value::Null))
}

/// Moves the controls of a group that also has sub-groups into a first sub-group
/// marked as their carrier, since an OSCAL group holds either groups or controls.
fn carry_mixed(group: &mut Group) {
    group.groups.iter_mut().for_each(carry_mixed);
    if group.groups.is_empty() || group.controls.is_empty() {
        return;
    }
    let id = group.id.as_deref().map(|id| format!("{id}-own"));
    let carrier = Group {
        id,
        class: None,
        title: group.title.clone(),
        params: Vec::new(),
        props: vec![Prop {
            name: "carrier".into(),
            value: "controls".into(),
            ns: Some(NS.into()),
            class: None,
            rest: Map::new(),
        }],
        links: Vec::new(),
        parts: Vec::new(),
        groups: Vec::new(),
        controls: std::mem::take(&mut group.controls),
    };
    group.groups.insert(0, carrier);
}

fn library_metadata(f: &framework::Model) -> Metadata {
    let party = Uuid::new_v5(&EXPORT_NS, f.publisher.as_bytes()).to_string();
    let mut rest = Map::new();
    if let Some(url) = &f.url {
        rest.insert("links".into(), json!([{ "href": url, "rel": "homepage" }]));
    }
    Metadata {
        title: f.name.clone(),
        last_modified: f.updated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        version: f.version.clone(),
        oscal_version: OSCAL_VERSION.to_owned(),
        props: vec![
            Prop {
                name: "slug".into(),
                value: f.slug.clone(),
                ns: Some(NS.into()),
                class: None,
                rest: Map::new(),
            },
            Prop {
                name: "jurisdiction".into(),
                value: f.jurisdiction.clone(),
                ns: Some(NS.into()),
                class: None,
                rest: Map::new(),
            },
            Prop {
                name: "content-version".into(),
                value: f.content_version.to_string(),
                ns: Some(NS.into()),
                class: None,
                rest: Map::new(),
            },
        ],
        parties: vec![Party {
            uuid: party,
            kind: "organization".into(),
            name: Some(f.publisher.clone()),
            rest: Map::new(),
        }],
        remarks: Some(f.description.clone()),
        rest,
    }
}

fn library_control(c: &control::Model, questions: &[&str], links: Vec<Link>) -> Control {
    let id = token_of("c-", &c.reference);
    let part = |suffix: &str, name: &str, ns: Option<&str>, prose: &str| Part {
        id: Some(format!("{id}_{suffix}")),
        name: name.to_owned(),
        ns: ns.map(str::to_owned),
        class: None,
        title: None,
        props: Vec::new(),
        prose: Some(prose.to_owned()),
        parts: Vec::new(),
        links: Vec::new(),
    };
    let mut parts = vec![part("smt", "statement", None, &c.description)];
    if !c.guidance.is_empty() {
        parts.push(part("gdn", "guidance", None, &c.guidance));
    }
    for (i, q) in questions.iter().enumerate() {
        parts.push(part(&format!("qst.{}", i + 1), "question", Some(NS), q));
    }
    let evidence: Vec<String> =
        serde_json::from_value(c.evidence_examples.clone()).unwrap_or_default();
    for (i, e) in evidence.iter().enumerate() {
        parts.push(part(
            &format!("evd.{}", i + 1),
            "evidence-example",
            Some(NS),
            e,
        ));
    }
    Control {
        id,
        class: None,
        title: c.title.clone(),
        params: Vec::new(),
        props: [
            Some(Prop {
                name: "label".into(),
                value: c.reference.clone(),
                ns: None,
                class: None,
                rest: Map::new(),
            }),
            Some(Prop {
                name: "criticality".into(),
                value: c.criticality.clone(),
                ns: Some(NS.into()),
                class: None,
                rest: Map::new(),
            }),
            c.effort_half_days.map(|h| Prop {
                name: "effort-days".into(),
                value: format!("{}", f64::from(h) / 2.0),
                ns: Some(NS.into()),
                class: None,
                rest: Map::new(),
            }),
        ]
        .into_iter()
        .flatten()
        .collect(),
        links,
        parts,
        controls: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_is_checked_without_a_database() {
        let body = br#"{"catalog": {"uuid": "5b3f3bde-2a6e-4f5c-9d55-0c5f6a0b8e11",
            "metadata": {"title": "Tiny", "last-modified": "2024-01-01T00:00:00Z",
                "version": "1", "oscal-version": "1.1.2"},
            "groups": [{"id": "g1", "title": "Group", "controls": [
                {"id": "c-1", "title": "One"}, {"id": "c-2", "title": "Two"}]}]}}"#;
        assert_eq!(check(body).unwrap(), (1, 2));
        assert!(matches!(check(b"{}"), Err(ImportError::Invalid { .. })));
        assert!(matches!(check(b"\xff"), Err(ImportError::Invalid { .. })));
    }

    #[test]
    fn tokens_and_slugs() {
        assert!(is_token("ac-2.1"));
        assert!(!is_token("4.1"));
        assert!(!is_token("a b"));
        assert_eq!(token_of("c-", "4.1"), "c-4.1");
        assert_eq!(token_of("c-", "Art.5(1)(a)"), "art.5_1__a_");
        assert_eq!(
            slugify("NIST SP 800-53 Rev 5.1.1"),
            "nist-sp-800-53-rev-5.1.1"
        );
    }

    #[test]
    fn parameters_are_written_out() {
        let p = Param {
            id: "p1".into(),
            label: Some("frequency".into()),
            select: None,
            rest: Map::new(),
        };
        let params = HashMap::from([("p1", &p)]);
        assert_eq!(
            substitute(
                "Review {{ insert: param, p1 }} and {{ insert: param, p9 }}.",
                &params
            ),
            "Review [Assignment: frequency] and [p9]."
        );
    }

    #[test]
    fn problems_carry_a_json_path() {
        let body = br#"{"catalog":{"uuid":"74c8ba1e-5cd4-4ad1-bbfd-d888e2f6c724","metadata":{"title":"T","last-modified":"2024-01-01T00:00:00Z","version":"1","oscal-version":"1.1.2"},"groups":[{"title":"G","controls":[{"id":"c-1"}]}]}}"#;
        let Err(ImportError::Invalid { path, .. }) =
            parse(body).and_then(|d| flatten(&d.catalog).map(|_| ()))
        else {
            panic!("accepted")
        };
        assert_eq!(path, "$.catalog.groups[0].controls[0].title");
        let body = br#"{"catalog":{"uuid":"nope","metadata":{"title":"T","last-modified":"x","version":"1","oscal-version":"1.1.2"}}}"#;
        assert!(
            matches!(parse(body), Err(ImportError::Invalid { path, .. }) if path == "$.catalog.uuid")
        );
        let body = br#"{"catalog":{"uuid":"74c8ba1e-5cd4-4ad1-bbfd-d888e2f6c724","metadata":{"title":"T","last-modified":"x","version":"1","oscal-version":"1.1.2"},"controls":[{"id":"x","title":"X","parts":[{"name":5}]}]}}"#;
        assert!(
            matches!(parse(body), Err(ImportError::Invalid { path, .. }) if path == "$.catalog.controls[0].parts[0].name")
        );
    }
}
