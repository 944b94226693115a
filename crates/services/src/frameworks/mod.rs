//! The framework library: content, catalogue queries, comparison, applicability and
//! OSCAL exchange. Reads are scoped: an organisation sees the library plus its own
//! imports, never another organisation's.

pub mod applicability;
pub mod content;
pub mod library;
pub mod oscal;
pub mod revisions;

use ruleiq_core::{Criticality, Relation};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::{control, framework},
    repositories::frameworks as repo,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// A framework with its headings and control counts.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameworkSummary {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub version: String,
    pub publisher: String,
    pub jurisdiction: String,
    pub description: String,
    pub url: Option<String>,
    /// `library` or `oscal` (imported by the organisation).
    pub source: String,
    pub content_version: i32,
    pub control_count: i64,
    pub domains: Vec<DomainSummary>,
}

/// A heading and how many controls sit under it (sub-headings included).
#[derive(Debug, Clone, PartialEq)]
pub struct DomainSummary {
    pub reference: String,
    pub name: String,
    pub parent: Option<String>,
    pub control_count: i64,
}

/// A control with everything a reader needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlView {
    pub id: Uuid,
    pub framework_id: Uuid,
    pub framework_slug: String,
    pub reference: String,
    pub parent: Option<String>,
    pub title: String,
    pub description: String,
    pub domain: Option<String>,
    pub guidance: String,
    pub criticality: Criticality,
    pub evidence_examples: Vec<String>,
    pub questions: Vec<QuestionView>,
    pub mappings: Vec<MappingView>,
}

/// A question serving a control.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionView {
    pub id: Uuid,
    pub text: String,
    pub help: Option<String>,
    /// True when the question comes from the shared bank.
    pub shared: bool,
}

/// A relation from this control to a control of another framework.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingView {
    pub control_id: Uuid,
    pub framework_slug: String,
    pub reference: String,
    pub relation: Relation,
}

/// Two frameworks side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub a: FrameworkSummary,
    pub b: FrameworkSummary,
    /// Every mapped pair, read from `a`'s side.
    pub pairs: Vec<ComparedPair>,
    /// Share (0–100) of `a`'s controls with at least one mapping into `b`.
    pub a_covered_by_b: f64,
    /// Share (0–100) of `b`'s controls with at least one mapping into `a`.
    pub b_covered_by_a: f64,
    pub a_mapped: usize,
    pub b_mapped: usize,
}

/// One mapped pair.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparedPair {
    pub a_control_id: Uuid,
    pub a_ref: String,
    pub b_control_id: Uuid,
    pub b_ref: String,
    pub relation: Relation,
}

/// What the control listing accepts.
#[derive(Debug, Clone, Default)]
pub struct ControlFilter {
    /// A heading; its sub-headings' controls are included.
    pub domain: Option<String>,
    /// Words that must all appear in the control's ref, title, description or guidance.
    pub q: Option<String>,
    /// Position after which to continue.
    pub after: Option<i32>,
    pub limit: u64,
}

/// The catalogue, read side.
#[derive(Debug, Clone)]
pub struct Catalog {
    db: DatabaseConnection,
    revisions: std::sync::Arc<revisions::RevisionCache>,
}

impl Catalog {
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            revisions: std::sync::Arc::new(revisions::cache()),
        }
    }

    /// The remembered revisions, shared with the search index and the listener that
    /// clears them on other instances' changes.
    #[must_use]
    pub fn revisions(&self) -> std::sync::Arc<revisions::RevisionCache> {
        std::sync::Arc::clone(&self.revisions)
    }

    /// Forgets remembered revisions after a change made through this process.
    pub fn changed(&self) {
        self.revisions.clear();
    }

    /// The revision of everything in `org`'s reach, remembered or read.
    ///
    /// # Errors
    /// On a database error.
    pub async fn current_revision(&self, org: Option<Uuid>) -> Result<repo::Revision, DbErr> {
        current_revision(&self.db, &self.revisions, org).await
    }

    /// Every framework the organisation can see.
    ///
    /// # Errors
    /// On a database error.
    pub async fn list(&self, org: Option<Uuid>) -> Result<Vec<FrameworkSummary>, DbErr> {
        let frameworks = repo::visible(&self.db, org).await?;
        self.summaries(frameworks).await
    }

    /// One framework by id or slug.
    ///
    /// # Errors
    /// On a database error.
    pub async fn get(
        &self,
        org: Option<Uuid>,
        id_or_slug: &str,
    ) -> Result<Option<FrameworkSummary>, DbErr> {
        let Some(f) = repo::find_visible(&self.db, org, id_or_slug).await? else {
            return Ok(None);
        };
        Ok(self.summaries(vec![f]).await?.pop())
    }

    async fn summaries(
        &self,
        frameworks: Vec<framework::Model>,
    ) -> Result<Vec<FrameworkSummary>, DbErr> {
        let ids: Vec<Uuid> = frameworks.iter().map(|f| f.id).collect();
        let domains = repo::domains(&self.db, &ids).await?;
        let counts = repo::control_counts(&self.db, &ids).await?;
        Ok(frameworks
            .into_iter()
            .map(|f| {
                let direct: HashMap<Option<&str>, i64> = counts
                    .iter()
                    .filter(|(fid, _, _)| *fid == f.id)
                    .map(|(_, d, n)| (d.as_deref(), *n))
                    .collect();
                let mine: Vec<_> = domains.iter().filter(|d| d.framework_id == f.id).collect();
                let parents: HashMap<&str, Option<&str>> = mine
                    .iter()
                    .map(|d| (d.reference.as_str(), d.parent_ref.as_deref()))
                    .collect();
                // Roll each heading's direct count up through its ancestors.
                let mut rolled: HashMap<&str, i64> = HashMap::new();
                for (domain, n) in &direct {
                    let mut at = *domain;
                    let mut guard = 0;
                    while let Some(d) = at {
                        *rolled.entry(d).or_default() += n;
                        at = parents.get(d).copied().flatten();
                        guard += 1;
                        if guard > 32 {
                            break;
                        }
                    }
                }
                FrameworkSummary {
                    control_count: direct.values().sum(),
                    domains: mine
                        .iter()
                        .map(|d| DomainSummary {
                            reference: d.reference.clone(),
                            name: d.name.clone(),
                            parent: d.parent_ref.clone(),
                            control_count: rolled.get(d.reference.as_str()).copied().unwrap_or(0),
                        })
                        .collect(),
                    id: f.id,
                    slug: f.slug,
                    name: f.name,
                    version: f.version,
                    publisher: f.publisher,
                    jurisdiction: f.jurisdiction,
                    description: f.description,
                    url: f.url,
                    source: f.source,
                    content_version: f.content_version,
                }
            })
            .collect())
    }

    /// A page of a framework's controls, with questions and mappings, in published
    /// order. Returns the controls and, when more follow, the cursor to continue from.
    ///
    /// # Errors
    /// On a database error.
    pub async fn controls(
        &self,
        org: Option<Uuid>,
        framework: &FrameworkSummary,
        filter: &ControlFilter,
    ) -> Result<(Vec<ControlView>, Option<i32>), DbErr> {
        let domains = filter.domain.as_ref().map(|d| {
            let mut set = vec![d.clone()];
            // Sub-headings, breadth first (domains are listed parents first).
            for dom in &framework.domains {
                if dom.parent.as_ref().is_some_and(|p| set.contains(p)) {
                    set.push(dom.reference.clone());
                }
            }
            set
        });
        let words: Vec<String> = filter
            .q
            .as_deref()
            .map(|q| {
                q.to_lowercase()
                    .split_whitespace()
                    .take(8)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Vec::new();
        let mut after = filter.after;
        // With words to match, filter in pages until the page is full.
        loop {
            let batch = if words.is_empty() {
                filter.limit + 1
            } else {
                500
            };
            let rows =
                repo::controls(&self.db, framework.id, domains.as_deref(), after, batch).await?;
            let exhausted = (rows.len() as u64) < batch;
            after = rows.last().map(|r| r.position).or(after);
            out.extend(rows.into_iter().filter(|c| matches_words(c, &words)));
            if exhausted || out.len() as u64 > filter.limit {
                break;
            }
        }
        let more = out.len() as u64 > filter.limit;
        out.truncate(usize::try_from(filter.limit).unwrap_or(usize::MAX));
        let next = if more {
            out.last().map(|c| c.position)
        } else {
            None
        };
        let views = self.views(org, out, &framework.slug).await?;
        Ok((views, next))
    }

    /// One control by id.
    ///
    /// # Errors
    /// On a database error.
    pub async fn control(&self, org: Option<Uuid>, id: Uuid) -> Result<Option<ControlView>, DbErr> {
        let Some((c, f)) = repo::find_control(&self.db, org, id).await? else {
            return Ok(None);
        };
        if c.retired_at.is_some() {
            return Ok(None);
        }
        Ok(self.views(org, vec![c], &f.slug).await?.pop())
    }

    async fn views(
        &self,
        org: Option<Uuid>,
        controls: Vec<control::Model>,
        slug: &str,
    ) -> Result<Vec<ControlView>, DbErr> {
        let ids: Vec<Uuid> = controls.iter().map(|c| c.id).collect();
        let questions = repo::questions_for(&self.db, &ids).await?;
        let mappings = repo::mappings_for(&self.db, &ids).await?;
        let mut q_by: HashMap<Uuid, Vec<QuestionView>> = HashMap::new();
        for q in questions {
            q_by.entry(q.control_id).or_default().push(QuestionView {
                id: q.id,
                text: q.text,
                help: q.help,
                shared: q.shared,
            });
        }
        let visible = |o: Option<Uuid>| o.is_none() || o == org;
        let mut m_by: HashMap<Uuid, Vec<MappingView>> = HashMap::new();
        let wanted: HashSet<Uuid> = ids.iter().copied().collect();
        for m in mappings {
            let relation = m.relation.parse().unwrap_or(Relation::Intersect);
            if wanted.contains(&m.source_id) && visible(m.target_org) {
                m_by.entry(m.source_id).or_default().push(MappingView {
                    control_id: m.target_id,
                    framework_slug: m.target_slug.clone(),
                    reference: m.target_ref.clone(),
                    relation,
                });
            }
            if wanted.contains(&m.target_id) && visible(m.source_org) {
                m_by.entry(m.target_id).or_default().push(MappingView {
                    control_id: m.source_id,
                    framework_slug: m.source_slug,
                    reference: m.source_ref,
                    relation: relation.reversed(),
                });
            }
        }
        Ok(controls
            .into_iter()
            .map(|c| {
                let mut mappings = m_by.remove(&c.id).unwrap_or_default();
                mappings.sort_by(|a, b| {
                    (&a.framework_slug, &a.reference).cmp(&(&b.framework_slug, &b.reference))
                });
                ControlView {
                    questions: q_by.remove(&c.id).unwrap_or_default(),
                    mappings,
                    id: c.id,
                    framework_id: c.framework_id,
                    framework_slug: slug.to_owned(),
                    criticality: c.criticality.parse().unwrap_or(Criticality::Medium),
                    evidence_examples: serde_json::from_value(c.evidence_examples)
                        .unwrap_or_default(),
                    reference: c.reference,
                    parent: c.parent_ref,
                    title: c.title,
                    description: c.description,
                    domain: c.domain_ref,
                    guidance: c.guidance,
                }
            })
            .collect())
    }

    /// The mapped pairs between two frameworks and how much of each the other covers.
    ///
    /// # Errors
    /// On a database error.
    pub async fn compare(
        &self,
        a: FrameworkSummary,
        b: FrameworkSummary,
    ) -> Result<Comparison, DbErr> {
        let rows = repo::mappings_between(&self.db, a.id, b.id).await?;
        let mut pairs: Vec<ComparedPair> = rows
            .into_iter()
            .map(|m| {
                let relation: Relation = m.relation.parse().unwrap_or(Relation::Intersect);
                if m.source_framework == a.id {
                    ComparedPair {
                        a_control_id: m.source_id,
                        a_ref: m.source_ref,
                        b_control_id: m.target_id,
                        b_ref: m.target_ref,
                        relation,
                    }
                } else {
                    ComparedPair {
                        a_control_id: m.target_id,
                        a_ref: m.target_ref,
                        b_control_id: m.source_id,
                        b_ref: m.source_ref,
                        relation: relation.reversed(),
                    }
                }
            })
            .collect();
        let order = self.positions(&[a.id, b.id]).await?;
        pairs.sort_by_key(|p| {
            (
                order.get(&p.a_control_id).copied(),
                order.get(&p.b_control_id).copied(),
            )
        });
        pairs.dedup_by(|x, y| x.a_control_id == y.a_control_id && x.b_control_id == y.b_control_id);
        let a_mapped = pairs
            .iter()
            .map(|p| p.a_control_id)
            .collect::<HashSet<_>>()
            .len();
        let b_mapped = pairs
            .iter()
            .map(|p| p.b_control_id)
            .collect::<HashSet<_>>()
            .len();
        let share = |n: usize, of: i64| {
            if of <= 0 {
                0.0
            } else {
                ((n as f64) * 1000.0 / (of as f64)).round() / 10.0
            }
        };
        Ok(Comparison {
            a_covered_by_b: share(a_mapped, a.control_count),
            b_covered_by_a: share(b_mapped, b.control_count),
            a_mapped,
            b_mapped,
            pairs,
            a,
            b,
        })
    }

    /// The revision of everything `org` can read here; it changes whenever the
    /// library is reloaded or anything is imported or deleted in reach, on any
    /// server instance.
    ///
    /// # Errors
    /// On a database error.
    pub async fn revision(&self, org: Option<Uuid>) -> Result<String, DbErr> {
        Ok(self.current_revision(org).await?.key())
    }

    /// The stored framework row, by id or slug, if visible.
    ///
    /// # Errors
    /// On a database error.
    pub async fn find_model(
        &self,
        org: Option<Uuid>,
        id_or_slug: &str,
    ) -> Result<Option<framework::Model>, DbErr> {
        repo::find_visible(&self.db, org, id_or_slug).await
    }

    /// Deletes a framework the organisation imported, with its controls and mappings.
    ///
    /// # Errors
    /// On a database error.
    pub async fn delete_imported(&self, org: Uuid, id: Uuid) -> Result<bool, DbErr> {
        let controls: Vec<Uuid> = repo::all_controls(&self.db, &[id])
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        let txn = ruleiq_db::begin(&self.db).await?;
        let deleted = repo::delete_imported(&txn, org, id).await?;
        if deleted {
            ruleiq_db::repositories::search::remove(&txn, Some(org), "control", &controls).await?;
            repo::bump_revision(&txn, Some(org), chrono::Utc::now()).await?;
        }
        txn.commit().await?;
        self.changed();
        Ok(deleted)
    }

    async fn positions(&self, frameworks: &[Uuid]) -> Result<HashMap<Uuid, (Uuid, i32)>, DbErr> {
        Ok(repo::all_controls(&self.db, frameworks)
            .await?
            .into_iter()
            .map(|c| (c.id, (c.framework_id, c.position)))
            .collect())
    }
}

fn matches_words(c: &control::Model, words: &[String]) -> bool {
    if words.is_empty() {
        return true;
    }
    let text = format!(
        "{} {} {} {}",
        c.reference, c.title, c.description, c.guidance
    )
    .to_lowercase();
    words.iter().all(|w| text.contains(w.as_str()))
}

/// The revision of `org`'s reach from `cache`, or read from the database and
/// remembered.
///
/// # Errors
/// On a database error.
pub async fn current_revision(
    db: &DatabaseConnection,
    cache: &revisions::RevisionCache,
    org: Option<Uuid>,
) -> Result<repo::Revision, DbErr> {
    if let Some(r) = cache.get(&org) {
        return Ok(r);
    }
    let generation = cache.generation();
    let r = repo::revision(db, org).await?;
    cache.put(org, generation, r.clone());
    Ok(r)
}
