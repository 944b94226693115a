//! Loading the content library into the database: on first start, on `ruleiq seed`,
//! and after an upgrade that changed the content. Idempotent, and in place: frameworks
//! and controls keep their ids across content changes (matched by slug and ref), so
//! answers, evidence links and plans made against them survive. A control dropped from
//! the content is retired, never deleted.

use chrono::{DateTime, Utc};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::{control, framework, framework_domain, question},
    repositories::{frameworks as repo, search as search_repo},
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

use super::content::{FrameworkDef, Library};
use crate::search::{self, SearchDocument, SearchKind};

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// False when the stored content was already this revision.
    pub changed: bool,
    pub frameworks: usize,
    pub controls: usize,
    pub questions: usize,
    pub mappings: usize,
}

const LIBRARY: &str = "library";

/// Loads `library` unless the database already holds this exact revision.
///
/// # Errors
/// On a database error; nothing is written then (one transaction).
pub async fn load(
    db: &DatabaseConnection,
    library: &Library,
    now: DateTime<Utc>,
) -> Result<LoadReport, DbErr> {
    let mut report = LoadReport {
        changed: false,
        frameworks: library.frameworks.len(),
        controls: library.frameworks.iter().map(|f| f.controls.len()).sum(),
        questions: library.questions.len(),
        mappings: library.mappings.iter().map(|m| m.mappings.len()).sum(),
    };
    if repo::content_hash(db, LIBRARY).await?.as_deref() == Some(library.hash.as_str()) {
        return Ok(report);
    }
    let txn = ruleiq_db::begin(db).await?;
    let mut framework_ids: HashMap<&str, Uuid> = HashMap::new();
    let mut control_ids: HashMap<(&str, &str), Uuid> = HashMap::new();
    let mut question_rows = Vec::new();
    let mut own_links: Vec<(String, (String, String))> = Vec::new();
    let mut docs = Vec::new();

    for def in &library.frameworks {
        let hash = library
            .framework_hashes
            .get(&def.slug)
            .cloned()
            .unwrap_or_default();
        let id = repo::upsert_framework(&txn, framework_row(def, hash, now)).await?;
        framework_ids.insert(def.slug.as_str(), id);
        repo::replace_domains(&txn, id, domain_rows(def, id, now)).await?;
        let ids = repo::upsert_controls(&txn, id, control_rows(def, id, now), now).await?;
        for c in &def.controls {
            let cid = ids[&c.reference];
            control_ids.insert((def.slug.as_str(), c.reference.as_str()), cid);
            for (n, text) in c.questions.iter().enumerate() {
                let key = format!("{}/{}#{}", def.slug, c.reference, n + 1);
                question_rows.push(question_row(
                    &key,
                    text,
                    None,
                    false,
                    question_rows.len(),
                    now,
                ));
                own_links.push((key, (def.slug.clone(), c.reference.clone())));
            }
        }
    }
    for q in &library.questions {
        question_rows.push(question_row(
            &q.key,
            &q.text,
            q.help.as_deref(),
            true,
            question_rows.len(),
            now,
        ));
    }
    let question_ids = repo::upsert_questions(&txn, question_rows).await?;
    let keep: HashSet<Uuid> = question_ids.values().copied().collect();
    let slugs: Vec<String> = library
        .frameworks
        .iter()
        .map(|f| format!("{}/", f.slug))
        .collect();
    repo::retire_library_questions_except(
        &txn,
        &keep,
        |key, shared| shared || slugs.iter().any(|s| key.starts_with(s.as_str())),
        now,
    )
    .await?;

    let mut links = Vec::new();
    let mut questions_of: HashMap<Uuid, Vec<&str>> = HashMap::new();
    for (key, (slug, reference)) in &own_links {
        let cid = control_ids[&(slug.as_str(), reference.as_str())];
        links.push((question_ids[key], cid));
    }
    for q in &library.questions {
        for (slug, refs) in &q.controls {
            for r in refs {
                let cid = control_ids[&(slug.as_str(), r.as_str())];
                links.push((question_ids[&q.key], cid));
                questions_of.entry(cid).or_default().push(q.text.as_str());
            }
        }
    }
    let all_questions: Vec<Uuid> = keep.iter().copied().collect();
    repo::replace_question_links(&txn, &all_questions, links, now).await?;

    for set in &library.mappings {
        let pairs = set
            .mappings
            .iter()
            .map(|m| {
                (
                    control_ids[&(set.source.as_str(), m.source.as_str())],
                    control_ids[&(set.target.as_str(), m.target.as_str())],
                    m.relation.as_str(),
                )
            })
            .collect();
        repo::replace_mappings(
            &txn,
            framework_ids[set.source.as_str()],
            framework_ids[set.target.as_str()],
            pairs,
            now,
        )
        .await?;
    }

    for def in &library.frameworks {
        for c in &def.controls {
            let cid = control_ids[&(def.slug.as_str(), c.reference.as_str())];
            let mut questions: Vec<&str> = c.questions.iter().map(String::as_str).collect();
            questions.extend(questions_of.get(&cid).into_iter().flatten().copied());
            docs.push(SearchDocument {
                organization_id: None,
                kind: SearchKind::Control,
                subject_id: cid,
                framework_slug: Some(def.slug.clone()),
                title: format!("{} {}", c.reference, c.title),
                body: search::control_body(&c.description, &c.guidance, &questions),
            });
        }
    }
    let content_slugs: Vec<String> = library.frameworks.iter().map(|f| f.slug.clone()).collect();
    search_repo::replace_library_controls(
        &txn,
        &content_slugs,
        docs.into_iter().map(|d| d.into_row(now)).collect(),
    )
    .await?;
    repo::set_content_hash(&txn, LIBRARY, &library.hash, now).await?;
    repo::announce_catalog_change(&txn).await?;
    txn.commit().await?;
    report.changed = true;
    Ok(report)
}

fn framework_row(def: &FrameworkDef, hash: String, now: DateTime<Utc>) -> framework::Model {
    framework::Model {
        id: Uuid::now_v7(),
        organization_id: None,
        scope: repo::scope_of(None),
        slug: def.slug.clone(),
        name: def.name.clone(),
        version: def.version.clone(),
        publisher: def.publisher.clone(),
        jurisdiction: def.jurisdiction.clone(),
        url: def.url.clone(),
        description: def.description.trim().to_owned(),
        source: "library".into(),
        content_version: i32::try_from(def.content_version).unwrap_or(i32::MAX),
        content_hash: hash,
        source_uuid: None,
        oscal: None,
        created_at: now,
        updated_at: now,
    }
}

fn domain_rows(def: &FrameworkDef, id: Uuid, now: DateTime<Utc>) -> Vec<framework_domain::Model> {
    def.domains
        .iter()
        .enumerate()
        .map(|(i, d)| framework_domain::Model {
            id: Uuid::now_v7(),
            framework_id: id,
            reference: d.reference.clone(),
            name: d.name.clone(),
            parent_ref: d.parent.clone(),
            position: position(i),
            oscal: None,
            created_at: now,
            updated_at: now,
        })
        .collect()
}

fn control_rows(def: &FrameworkDef, id: Uuid, now: DateTime<Utc>) -> Vec<control::Model> {
    def.controls
        .iter()
        .enumerate()
        .map(|(i, c)| control::Model {
            id: Uuid::now_v7(),
            framework_id: id,
            reference: c.reference.clone(),
            parent_ref: None,
            domain_ref: Some(c.domain.clone()),
            title: c.title.clone(),
            description: c.description.trim().to_owned(),
            guidance: c.guidance.trim().to_owned(),
            criticality: c.criticality.as_str().to_owned(),
            // Validated as whole or half days, so doubling is exact.
            #[allow(clippy::cast_possible_truncation)]
            effort_half_days: Some((c.effort_days * 2.0) as i32),
            evidence_examples: serde_json::json!(c.evidence),
            oscal: None,
            position: position(i),
            retired_at: None,
            created_at: now,
            updated_at: now,
        })
        .collect()
}

pub(crate) fn question_row(
    key: &str,
    text: &str,
    help: Option<&str>,
    shared: bool,
    index: usize,
    now: DateTime<Utc>,
) -> question::Model {
    question::Model {
        id: Uuid::now_v7(),
        key: key.to_owned(),
        organization_id: None,
        text: text.trim().to_owned(),
        help: help.map(|h| h.trim().to_owned()),
        shared,
        position: position(index),
        retired_at: None,
        created_at: now,
        updated_at: now,
    }
}

pub(crate) fn position(index: usize) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}
