//! Search across everything a user can reach: controls now, evidence and policies as
//! they arrive. Behind [`SearchIndex`] so the store can change without touching
//! callers; the database-backed index works the same on both engines and with any
//! number of server instances, because the index lives in the database and every
//! instance checks its revision before answering from memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::search_document,
    repositories::{frameworks as frameworks_repo, search as repo},
};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, RwLock},
};

use crate::frameworks::revisions::RevisionCache;
use uuid::Uuid;

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchKind {
    Control,
    Evidence,
    Policy,
}

impl SearchKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Evidence => "evidence",
            Self::Policy => "policy",
        }
    }

    /// Parses `control`, `evidence` or `policy`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Control, Self::Evidence, Self::Policy]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A thing to make findable.
#[derive(Debug, Clone)]
pub struct SearchDocument {
    /// `None` for library content every organisation sees.
    pub organization_id: Option<Uuid>,
    pub kind: SearchKind,
    pub subject_id: Uuid,
    pub framework_slug: Option<String>,
    pub title: String,
    pub body: String,
}

impl SearchDocument {
    /// The stored row.
    #[must_use]
    pub fn into_row(self, now: DateTime<Utc>) -> search_document::Model {
        search_document::Model {
            id: Uuid::now_v7(),
            organization_id: self.organization_id,
            kind: self.kind.as_str().to_owned(),
            subject_id: self.subject_id,
            framework_slug: self.framework_slug,
            title: self.title,
            body: self.body,
            seq: 0,
            created_at: now,
            updated_at: now,
        }
    }
}

/// The searchable text of a control.
#[must_use]
pub fn control_body(description: &str, guidance: &str, questions: &[&str]) -> String {
    let mut body = format!("{}\n{}", description.trim(), guidance.trim());
    for q in questions {
        body.push('\n');
        body.push_str(q.trim());
    }
    body
}

fn normalise(text: &str) -> String {
    text.to_lowercase()
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Lower-cased words; a document must contain all of them.
    pub terms: Vec<String>,
    pub kind: Option<SearchKind>,
    pub limit: usize,
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("type at least one letter or digit to search for")]
    Empty,
    #[error("keep the search under 200 characters")]
    TooLong,
}

/// At most this many words count; the rest are ignored.
const MAX_TERMS: usize = 8;

impl SearchQuery {
    /// Splits `q` into words. Anything but letters, digits, `.` and `-` separates
    /// words, so SQL or search-engine syntax is just text here.
    ///
    /// # Errors
    /// An empty or over-long query.
    pub fn parse(q: &str, kind: Option<SearchKind>, limit: usize) -> Result<Self, QueryError> {
        if q.chars().count() > 200 {
            return Err(QueryError::TooLong);
        }
        let mut terms: Vec<String> = Vec::new();
        for word in normalise(q).split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-')) {
            let word = word.trim_matches(|c| c == '.' || c == '-');
            if !word.is_empty() && !terms.iter().any(|t| t == word) && terms.len() < MAX_TERMS {
                terms.push(word.to_owned());
            }
        }
        if terms.is_empty() {
            return Err(QueryError::Empty);
        }
        Ok(Self {
            terms,
            kind,
            limit: limit.clamp(1, 50),
        })
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub kind: SearchKind,
    pub id: Uuid,
    pub title: String,
    /// HTML-escaped text around the best match, with matches wrapped in `<mark>`.
    pub snippet: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework_slug: Option<String>,
    #[serde(skip)]
    pub score: u32,
}

/// Where search results come from.
#[async_trait]
pub trait SearchIndex: Send + Sync + std::fmt::Debug {
    /// Adds or refreshes documents.
    async fn index(&self, docs: Vec<SearchDocument>) -> Result<(), DbErr>;
    /// Forgets documents of one scope (an organisation's, or the library's).
    async fn remove(
        &self,
        organization_id: Option<Uuid>,
        kind: SearchKind,
        subjects: &[Uuid],
    ) -> Result<(), DbErr>;
    /// The best matches within the organisation's reach, best first.
    async fn search(
        &self,
        organization_id: Option<Uuid>,
        query: &SearchQuery,
    ) -> Result<Vec<SearchHit>, DbErr>;
    /// Passages for the assistant: documents of the library and of this organisation
    /// (never another's) matching any of the question's words, best first, whole.
    async fn retrieve(
        &self,
        organization_id: Uuid,
        question: &str,
        limit: usize,
    ) -> Result<Vec<Passage>, DbErr>;
}

/// A document the assistant may quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    pub kind: SearchKind,
    pub id: Uuid,
    pub framework_slug: Option<String>,
    pub title: String,
    pub body: String,
}

/// Words too common to say what a question is about.
const STOP_WORDS: &[&str] = &[
    "a", "about", "an", "and", "any", "are", "as", "at", "be", "by", "can", "do", "does", "for",
    "from", "has", "have", "how", "i", "if", "in", "is", "it", "its", "me", "my", "need", "of",
    "on", "or", "our", "should", "so", "that", "the", "their", "them", "there", "this", "to", "us",
    "we", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// The content words of a question, as search terms (at most [`MAX_TERMS`]).
#[must_use]
pub fn question_terms(question: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in words(&normalise(question)) {
        if word.chars().count() < 2 || STOP_WORDS.contains(&word) {
            continue;
        }
        // Terms match the words they begin, so a rough stem finds every form:
        // "restoring" → "restor" finds "restore" and "restored"; "passwords" finds
        // "password".
        let stem = ["ing", "ed", "s"]
            .iter()
            .find_map(|suffix| word.strip_suffix(suffix).filter(|s| s.len() >= 4))
            .unwrap_or(word);
        if !terms.iter().any(|t| t == stem) && terms.len() < MAX_TERMS {
            terms.push(stem.to_owned());
        }
    }
    terms
}

/// The index in the `search_documents` table, searched in memory. Each server instance
/// keeps the documents of the scopes it has been asked about (the library's, shared by
/// every organisation, and each organisation's own) and checks one revision row per
/// search, so a change made through any instance is seen by all at their next search.
///
/// An organisation's scope is brought up to date by reading only what changed: every
/// indexing round numbers its rows (`seq`, one more than the scope's highest, taken
/// while holding the scope's revision row, so numbers commit in order) and sets the
/// revision to `BASE+SEQ`. A kept scope whose revision has the same `BASE` has missed
/// only indexing rounds, and reads the rows numbered above the highest it holds. Any
/// other change (a removal, a framework import or deletion) gives a new `BASE`, and the
/// scope is read whole again, as it is when replaced documents pile up.
#[derive(Debug, Clone)]
pub struct DbSearchIndex {
    db: DatabaseConnection,
    scopes: Arc<RwLock<HashMap<Option<Uuid>, Arc<Scope>>>>,
    revisions: Arc<RevisionCache>,
    building: Arc<tokio::sync::Mutex<()>>,
    full_reads: Arc<std::sync::atomic::AtomicU64>,
}

/// One scope's documents, as of `revision`.
#[derive(Debug)]
struct Scope {
    revision: String,
    /// The highest `seq` among the documents read.
    watermark: i64,
    /// `None` where a document was replaced by a later version (further on).
    docs: Vec<Option<Arc<Doc>>>,
    /// Where each subject's current version is in `docs`.
    at: HashMap<(SearchKind, Uuid), u32>,
    /// Every word of the documents, sorted, with the documents it appears in: a query
    /// word matches the words it begins (`backup` finds `backups`).
    words: Vec<(Arc<str>, Arc<[u32]>)>,
}

/// The `BASE` of a revision `BASE+SEQ` (the whole revision when it has no `+`).
fn revision_base(revision: &str) -> &str {
    revision.split_once('+').map_or(revision, |(base, _)| base)
}

/// Adds the words of `d` (document number `i`) to `index`.
fn index_words(index: &mut HashMap<String, Vec<u32>>, d: &Doc, i: u32) {
    let mut seen = HashSet::new();
    for text in [&d.lower_title, &d.lower_body] {
        for word in words(text) {
            // "multi-factor" and "a.8.5" are found whole and by their parts.
            let parts = word
                .split(['-', '.'])
                .filter(|p| !p.is_empty() && *p != word);
            for w in std::iter::once(word).chain(parts) {
                if seen.insert(w) {
                    index.entry(w.to_owned()).or_default().push(i);
                }
            }
        }
    }
}

/// `index` as a sorted list.
fn sorted_words(index: HashMap<String, Vec<u32>>) -> Vec<(Arc<str>, Arc<[u32]>)> {
    let mut words: Vec<(Arc<str>, Arc<[u32]>)> = index
        .into_iter()
        .map(|(w, d)| (Arc::from(w), Arc::from(d)))
        .collect();
    words.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    words
}

impl Scope {
    fn new(revision: String, watermark: i64, docs: Vec<Doc>) -> Self {
        let mut index: HashMap<String, Vec<u32>> = HashMap::new();
        let mut at = HashMap::with_capacity(docs.len());
        for (i, d) in docs.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            index_words(&mut index, d, i);
            at.insert((d.kind, d.subject_id), i);
        }
        Self {
            revision,
            watermark,
            docs: docs.into_iter().map(|d| Some(Arc::new(d))).collect(),
            at,
            words: sorted_words(index),
        }
    }

    /// This scope with `changed` documents added or put in place of their earlier
    /// versions; `None` once replaced versions would be a quarter of what is kept,
    /// when reading the scope whole again is the better buy.
    fn with_changes(&self, revision: String, watermark: i64, changed: Vec<Doc>) -> Option<Self> {
        let mut docs = self.docs.clone();
        let mut at = self.at.clone();
        let mut index: HashMap<String, Vec<u32>> = HashMap::new();
        for d in changed {
            let i = u32::try_from(docs.len()).ok()?;
            if let Some(old) = at.insert((d.kind, d.subject_id), i) {
                docs[old as usize] = None;
            }
            index_words(&mut index, &d, i);
            docs.push(Some(Arc::new(d)));
        }
        if (docs.len() - at.len()) * 4 > at.len() + 64 {
            return None;
        }
        // Both lists are sorted: one pass merges them, sharing every untouched entry.
        let added = sorted_words(index);
        let mut words = Vec::with_capacity(self.words.len() + added.len());
        let mut old = self.words.iter().peekable();
        for (w, d) in added {
            while let Some(o) = old.next_if(|o| o.0 < w) {
                words.push(o.clone());
            }
            match old.next_if(|o| o.0 == w) {
                Some((_, before)) => {
                    words.push((w, before.iter().chain(d.iter()).copied().collect()));
                }
                None => words.push((w, d)),
            }
        }
        words.extend(old.cloned());
        Some(Self {
            revision,
            watermark: watermark.max(self.watermark),
            docs,
            at,
            words,
        })
    }

    fn doc(&self, i: usize) -> Option<&Doc> {
        self.docs.get(i)?.as_deref()
    }

    /// The documents containing every term (as a word or the start of one).
    fn matching(&self, terms: &[String]) -> Vec<u32> {
        let mut result: Option<Vec<u32>> = None;
        for t in terms {
            let start = self.words.partition_point(|(w, _)| **w < *t.as_str());
            let mut docs: Vec<u32> = self.words[start..]
                .iter()
                .take_while(|(w, _)| w.starts_with(t.as_str()))
                .flat_map(|(_, d)| d.iter().copied())
                .collect();
            docs.sort_unstable();
            docs.dedup();
            result = Some(match result {
                None => docs,
                Some(prev) => prev
                    .into_iter()
                    .filter(|d| docs.binary_search(d).is_ok())
                    .collect(),
            });
            if result.as_ref().is_some_and(Vec::is_empty) {
                break;
            }
        }
        result.unwrap_or_default()
    }
}

/// The documents of `scope` containing every term.
fn found<'a>(scope: &'a Scope, terms: &[String]) -> Vec<&'a Doc> {
    scope
        .matching(terms)
        .into_iter()
        .filter_map(|i| scope.doc(i as usize))
        .collect()
}

/// The words of lower-cased text, as queries split them.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-'))
        .map(|w| w.trim_matches(|c| c == '.' || c == '-'))
        .filter(|w| !w.is_empty())
}

/// Stored rows as documents (rows of an unknown kind are skipped).
fn docs_of(rows: Vec<repo::Candidate>) -> Vec<Doc> {
    rows.into_iter()
        .filter_map(|c| {
            Some(Doc {
                kind: SearchKind::parse(&c.kind)?,
                subject_id: c.subject_id,
                framework_slug: c.framework_slug,
                lower_title: normalise(&c.title),
                lower_body: normalise(&c.body),
                title: c.title,
                body: c.body,
            })
        })
        .collect()
}

/// A document with its lower-cased text.
#[derive(Debug, Clone)]
struct Doc {
    kind: SearchKind,
    subject_id: Uuid,
    framework_slug: Option<String>,
    title: String,
    body: String,
    lower_title: String,
    lower_body: String,
}

/// Organisations whose documents are kept; past it, the cache starts again.
const MAX_SCOPES: usize = 1_000;

impl DbSearchIndex {
    /// The index, trusting `revisions` (the catalogue's, shared) for freshness.
    #[must_use]
    pub fn new(db: DatabaseConnection, revisions: Arc<RevisionCache>) -> Self {
        Self {
            db,
            scopes: Arc::new(RwLock::new(HashMap::new())),
            revisions,
            building: Arc::default(),
            full_reads: Arc::default(),
        }
    }

    /// How many times a scope was read whole, since start-up.
    #[must_use]
    pub fn full_reads(&self) -> u64 {
        self.full_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn scope(&self, org: Option<Uuid>, revision: String) -> Result<Arc<Scope>, DbErr> {
        if let Some(s) = self.read().get(&org)
            && s.revision == revision
        {
            return Ok(s.clone());
        }
        // One build at a time: concurrent first readers of a large scope would each
        // read and index every document; the later ones find the first's result.
        let _building = self.building.lock().await;
        let kept = self.read().get(&org).cloned();
        if let Some(s) = &kept
            && s.revision == revision
        {
            return Ok(s.clone());
        }
        // Only indexing rounds since: read what they wrote.
        let updated = match kept {
            Some(kept)
                if org.is_some() && revision_base(&kept.revision) == revision_base(&revision) =>
            {
                let changed = repo::changed_since(&self.db, org, kept.watermark).await?;
                let watermark = changed
                    .iter()
                    .map(|c| c.seq)
                    .max()
                    .unwrap_or(kept.watermark);
                kept.with_changes(revision.clone(), watermark, docs_of(changed))
            }
            _ => None,
        };
        let scope = Arc::new(match updated {
            Some(scope) => scope,
            None => {
                self.full_reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let all = repo::all_in_scope(&self.db, org).await?;
                let watermark = all.iter().map(|c| c.seq).max().unwrap_or(0);
                Scope::new(revision, watermark, docs_of(all))
            }
        });
        let mut map = self
            .scopes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_SCOPES {
            map.clear();
        }
        map.insert(org, scope.clone());
        Ok(scope)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Option<Uuid>, Arc<Scope>>> {
        self.scopes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SearchIndex for DbSearchIndex {
    async fn index(&self, docs: Vec<SearchDocument>) -> Result<(), DbErr> {
        let now = Utc::now();
        // Sorted, so that two rounds touching the same scopes hold them in one order.
        let scopes: BTreeSet<Option<Uuid>> = docs.iter().map(|d| d.organization_id).collect();
        let txn = ruleiq_db::begin(&self.db).await?;
        let mut rounds: HashMap<Option<Uuid>, i64> = HashMap::new();
        for org in scopes {
            if org.is_none() {
                // The library is read whole whenever it changes (rarely).
                frameworks_repo::bump_revision(&txn, None, now).await?;
                rounds.insert(None, 0);
                continue;
            }
            let held = frameworks_repo::hold_revision(&txn, org, now).await?;
            // After the revision's number as well as the rows': numbers never go back,
            // even when the rows' were reset (by rolling the column's migration back).
            let last_round = held
                .as_deref()
                .and_then(|r| r.split_once('+'))
                .and_then(|(_, n)| n.parse::<i64>().ok())
                .unwrap_or(0);
            let seq = repo::highest_seq(&txn, org).await?.max(last_round) + 1;
            let base = held
                .as_deref()
                .map(revision_base)
                .filter(|b| !b.is_empty())
                .map_or_else(|| Uuid::now_v7().simple().to_string(), str::to_owned);
            frameworks_repo::set_revision(&txn, org, &format!("{base}+{seq}"), now).await?;
            rounds.insert(org, seq);
        }
        let rows = docs
            .into_iter()
            .map(|d| {
                let seq = rounds.get(&d.organization_id).copied().unwrap_or(0);
                search_document::Model {
                    seq,
                    ..d.into_row(now)
                }
            })
            .collect();
        repo::upsert(&txn, rows).await?;
        txn.commit().await?;
        self.revisions.clear();
        Ok(())
    }

    async fn remove(
        &self,
        organization_id: Option<Uuid>,
        kind: SearchKind,
        subjects: &[Uuid],
    ) -> Result<(), DbErr> {
        let txn = ruleiq_db::begin(&self.db).await?;
        repo::remove(&txn, organization_id, kind.as_str(), subjects).await?;
        frameworks_repo::bump_revision(&txn, organization_id, Utc::now()).await?;
        txn.commit().await?;
        self.revisions.clear();
        Ok(())
    }

    async fn search(
        &self,
        organization_id: Option<Uuid>,
        query: &SearchQuery,
    ) -> Result<Vec<SearchHit>, DbErr> {
        let revision =
            crate::frameworks::current_revision(&self.db, &self.revisions, organization_id).await?;
        let library = self
            .scope(
                None,
                format!("{}/{}", revision.library, revision.library_imports),
            )
            .await?;
        let own = match organization_id {
            Some(org) => Some(self.scope(Some(org), revision.organization.clone()).await?),
            None => None,
        };
        let mut hits: Vec<(u32, &Doc)> = found(&library, &query.terms)
            .into_iter()
            .chain(
                own.as_deref()
                    .map(|s| found(s, &query.terms))
                    .unwrap_or_default(),
            )
            .filter(|d| query.kind.is_none_or(|k| k == d.kind))
            .map(|d| (score(&query.terms, &d.lower_title, &d.lower_body), d))
            .collect();
        hits.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1.title.cmp(&b.1.title))
                .then_with(|| a.1.subject_id.cmp(&b.1.subject_id))
        });
        hits.truncate(query.limit);
        Ok(hits
            .into_iter()
            .map(|(score, d)| SearchHit {
                kind: d.kind,
                id: d.subject_id,
                title: d.title.clone(),
                snippet: snippet(&d.body, &query.terms),
                framework_slug: d.framework_slug.clone(),
                score,
            })
            .collect())
    }
    async fn retrieve(
        &self,
        organization_id: Uuid,
        question: &str,
        limit: usize,
    ) -> Result<Vec<Passage>, DbErr> {
        let terms = question_terms(question);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let revision =
            crate::frameworks::current_revision(&self.db, &self.revisions, Some(organization_id))
                .await?;
        let library = self
            .scope(
                None,
                format!("{}/{}", revision.library, revision.library_imports),
            )
            .await?;
        let own = self
            .scope(Some(organization_id), revision.organization.clone())
            .await?;
        // More of the question's words first; then relevance; then title, so the
        // same question always retrieves the same passages in the same order.
        let mut hits: Vec<(usize, u32, &Doc)> = found_any(&library, &terms)
            .into_iter()
            .chain(found_any(&own, &terms))
            .map(|(n, d)| (n, score(&terms, &d.lower_title, &d.lower_body), d))
            .collect();
        hits.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(b.1.cmp(&a.1))
                .then_with(|| a.2.title.cmp(&b.2.title))
                .then_with(|| a.2.subject_id.cmp(&b.2.subject_id))
        });
        hits.truncate(limit);
        Ok(hits
            .into_iter()
            .map(|(_, _, d)| Passage {
                kind: d.kind,
                id: d.subject_id,
                framework_slug: d.framework_slug.clone(),
                title: d.title.clone(),
                body: d.body.clone(),
            })
            .collect())
    }
}

/// The documents of `scope` containing any of the terms, each with how many of the
/// terms it contains.
fn found_any<'a>(scope: &'a Scope, terms: &[String]) -> Vec<(usize, &'a Doc)> {
    // One counter a document, and the last term that counted it, so a term matching a
    // document through several words (`backup`, `backups`) counts once. Linear in the
    // postings read, however many documents match.
    let mut counts = vec![0u8; scope.docs.len()];
    let mut last = vec![u8::MAX; scope.docs.len()];
    for (ti, t) in terms.iter().enumerate() {
        let ti = u8::try_from(ti).unwrap_or(u8::MAX - 1);
        let start = scope.words.partition_point(|(w, _)| **w < *t.as_str());
        for (_, postings) in scope.words[start..]
            .iter()
            .take_while(|(w, _)| w.starts_with(t.as_str()))
        {
            for &d in postings.iter() {
                let d = d as usize;
                if last[d] != ti {
                    last[d] = ti;
                    counts[d] = counts[d].saturating_add(1);
                }
            }
        }
    }
    // Only the documents matching the most terms are worth scoring: take them in
    // order of matched terms (then title and subject, so that the choice does not
    // depend on where a document sits in memory) up to a bound.
    let mut by_count: Vec<(u8, &Doc)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .filter_map(|(i, c)| Some((*c, scope.doc(i)?)))
        .collect();
    by_count.sort_unstable_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.title.cmp(&b.1.title))
            .then_with(|| a.1.subject_id.cmp(&b.1.subject_id))
    });
    by_count
        .into_iter()
        .take(RETRIEVAL_CANDIDATES)
        .map(|(n, d)| (usize::from(n), d))
        .collect()
}

/// Documents of one scope scored for a question: enough to find the best few among
/// those matching the most words, and bounded so a large evidence library costs no
/// more to ask about than a small one.
const RETRIEVAL_CANDIDATES: usize = 200;

/// Relevance: a match in the title counts far more than one in the body, an exact
/// reference (`a.8.5`) most of all, and repeated body matches add with diminishing
/// weight so a long text does not win by length alone. Takes lower-cased text.
fn score(terms: &[String], title: &str, body: &str) -> u32 {
    let reference = title.split_whitespace().next().unwrap_or("");
    let mut total = 0u32;
    for t in terms {
        if reference == t {
            total += 100;
        }
        let in_title = count(title, t);
        total += 20 * in_title.min(3);
        if title
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == t.as_str())
        {
            total += 10;
        }
        let in_body = count(body, t);
        total += match in_body {
            0 => 0,
            1 => 4,
            2..=3 => 6,
            _ => 8,
        };
    }
    total
}

fn count(haystack: &str, needle: &str) -> u32 {
    u32::try_from(haystack.matches(needle).count()).unwrap_or(u32::MAX)
}

const SNIPPET_CHARS: usize = 180;

/// The part of `body` around the first match, HTML-escaped, with every match of a
/// term wrapped in `<mark>`.
#[must_use]
pub fn snippet(body: &str, terms: &[String]) -> String {
    // ASCII lower-casing keeps byte offsets, so matches map back onto `body`.
    let lower = body.to_ascii_lowercase();
    let first = terms
        .iter()
        .filter_map(|t| lower.find(t.as_str()))
        .min()
        .unwrap_or(0);
    let start = floor_boundary(body, first.saturating_sub(60));
    let start = if start == 0 {
        0
    } else {
        body[start..first]
            .find(' ')
            .map_or(start, |i| start + i + 1)
    };
    let mut end = start;
    for (taken, (i, ch)) in body[start..].char_indices().enumerate() {
        if taken >= SNIPPET_CHARS {
            break;
        }
        end = start + i + ch.len_utf8();
    }
    if end < body.len()
        && let Some(space) = body[start..end].rfind(' ')
        && space > 0
    {
        end = start + space;
    }
    let window = &body[start..end];
    let lower_window = &lower[start..end];
    let mut marks: Vec<(usize, usize)> = Vec::new();
    for t in terms {
        let mut from = 0;
        while let Some(i) = lower_window[from..].find(t.as_str()) {
            let s = from + i;
            marks.push((s, s + t.len()));
            from = s + t.len().max(1);
        }
    }
    marks.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in marks {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut out = String::with_capacity(window.len() + 32);
    if start > 0 {
        out.push('…');
    }
    let mut at = 0;
    for (s, e) in merged {
        if !window.is_char_boundary(s) || !window.is_char_boundary(e) {
            continue;
        }
        escape_into(&mut out, &window[at..s]);
        out.push_str("<mark>");
        escape_into(&mut out, &window[s..e]);
        out.push_str("</mark>");
        at = e;
    }
    escape_into(&mut out, &window[at..]);
    if end < body.len() {
        out.push('…');
    }
    out.replace('\n', " ")
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn escape_into(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_split_into_words_and_syntax_is_text() {
        let q = SearchQuery::parse("MFA' OR 1=1; -- \"admin*\" A.8.5", None, 20).unwrap();
        assert_eq!(q.terms, ["mfa", "or", "1", "admin", "a.8.5"]);
        assert_eq!(
            SearchQuery::parse("%_\\", None, 20).unwrap_err(),
            QueryError::Empty
        );
        let p = SearchQuery::parse("50%_off", None, 5).unwrap();
        assert_eq!(p.terms, ["50", "off"]);
        assert!(SearchQuery::parse(&"x".repeat(201), None, 5).is_err());
    }

    #[test]
    fn snippets_escape_and_mark_every_match() {
        let body = "Use <b>multi-factor</b> authentication for admins. MFA stops most attacks.";
        let s = snippet(body, &["mfa".into(), "admins".into()]);
        assert_eq!(
            s,
            "Use &lt;b&gt;multi-factor&lt;/b&gt; authentication for <mark>admins</mark>. <mark>MFA</mark> stops most attacks."
        );
        let long = format!("{} needle {}", "word ".repeat(100), "tail ".repeat(100));
        let s = snippet(&long, &["needle".into()]);
        assert!(s.starts_with('…') && s.ends_with('…') && s.contains("<mark>needle</mark>"));
    }

    fn doc(title: &str, body: &str) -> Doc {
        Doc {
            kind: SearchKind::Control,
            subject_id: Uuid::now_v7(),
            framework_slug: None,
            title: title.into(),
            body: body.into(),
            lower_title: normalise(title),
            lower_body: normalise(body),
        }
    }

    #[test]
    fn retrieval_ranks_by_terms_matched_and_bounds_the_candidates() {
        let mut docs = vec![
            doc("Backup policy", "Restore tests run every quarter."),
            doc("Backups", "Keep three copies."),
        ];
        // Thousands of documents matching one word only.
        docs.extend((0..5_000).map(|i| doc(&format!("Log {i}"), "restore")));
        let scope = Scope::new(String::new(), 0, docs);
        let terms = question_terms("How often should we test restoring our backups?");
        assert_eq!(terms, ["often", "test", "restor", "backup"]);
        let found = found_any(&scope, &terms);
        assert_eq!(found.len(), RETRIEVAL_CANDIDATES, "bounded");
        assert_eq!(found[0].1.title, "Backup policy");
        assert_eq!(found[0].0, 3, "test, restore and backup");
        assert_eq!(found[1].1.title, "Backups", "one term, and first in order");
    }

    #[test]
    fn the_index_matches_words_by_prefix_parts_and_all_terms() {
        let scope = Scope::new(
            "r".into(),
            0,
            vec![
                doc("A.8.13 Information backup", "Keep backups offline."),
                doc(
                    "A.8.5 Secure authentication",
                    "Use multi-factor sign-in for admins.",
                ),
                doc(
                    "A.5.17 Authentication information",
                    "Passwords and factor management.",
                ),
            ],
        );
        let terms = |q: &str| SearchQuery::parse(q, None, 10).unwrap().terms;
        assert_eq!(scope.matching(&terms("backup")), [0]);
        assert_eq!(
            scope.matching(&terms("BACK")),
            [0],
            "a word's beginning matches"
        );
        assert!(
            scope.matching(&terms("ackup")).is_empty(),
            "but not its middle"
        );
        assert_eq!(
            scope.matching(&terms("factor")),
            [1, 2],
            "parts of multi-factor count"
        );
        assert_eq!(scope.matching(&terms("multi-factor")), [1]);
        assert_eq!(scope.matching(&terms("a.8.5")), [1]);
        assert_eq!(
            scope.matching(&terms("authentication admins")),
            [1],
            "every term"
        );
        assert!(scope.matching(&terms("backup admins")).is_empty());
    }

    /// The titles of the documents `q` finds in `scope`.
    fn titles(scope: &Scope, q: &str) -> Vec<String> {
        let terms = SearchQuery::parse(q, None, 10).unwrap().terms;
        let mut out: Vec<String> = found(scope, &terms)
            .into_iter()
            .map(|d| d.title.clone())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn changes_are_merged_into_a_kept_scope_as_a_full_read_would_find_them() {
        let backup = doc("Backup policy", "Keep three copies offline.");
        let patching = doc("Patching", "Apply fixes within fourteen days.");
        let kept = Scope::new("b+1".into(), 1, vec![backup, patching.clone()]);
        // The patching document is edited and a new one arrives.
        let edited = Doc {
            title: "Patch management".into(),
            lower_title: normalise("Patch management"),
            body: "Apply critical fixes within seven days.".into(),
            lower_body: normalise("Apply critical fixes within seven days."),
            ..patching
        };
        let added = doc(
            "Access reviews",
            "Review access every quarter, offline too.",
        );
        let merged = kept
            .with_changes("b+3".into(), 3, vec![edited.clone(), added.clone()])
            .expect("two changes are worth merging");
        assert_eq!((merged.revision.as_str(), merged.watermark), ("b+3", 3));
        let whole = Scope::new(
            "b+3".into(),
            3,
            vec![
                doc("Backup policy", "Keep three copies offline."),
                edited,
                added,
            ],
        );
        for q in [
            "fourteen",
            "seven",
            "patch",
            "offline",
            "quarter",
            "apply fixes",
            "copies",
        ] {
            assert_eq!(titles(&merged, q), titles(&whole, q), "{q}");
        }
        assert!(
            titles(&merged, "fourteen").is_empty(),
            "the old version is gone"
        );
        assert_eq!(
            titles(&merged, "offline"),
            ["Access reviews", "Backup policy"]
        );
        let terms = question_terms("How quickly do we apply fixes?");
        let passages: Vec<&str> = found_any(&merged, &terms)
            .iter()
            .map(|(_, d)| d.title.as_str())
            .collect();
        assert_eq!(passages, ["Patch management"]);
    }

    #[test]
    fn a_scope_mostly_replaced_is_read_whole_again() {
        let d = doc("Backup policy", "Keep copies.");
        let kept = Scope::new("b+1".into(), 1, vec![d.clone()]);
        let mut scope = kept;
        let mut merged = 0;
        for round in 2..200 {
            match scope.with_changes(format!("b+{round}"), round, vec![d.clone()]) {
                Some(next) => {
                    scope = next;
                    merged += 1;
                }
                None => break,
            }
        }
        assert!(
            (10..100).contains(&merged),
            "replaced versions pile up only so far: {merged}"
        );
        assert_eq!(titles(&scope, "backup"), ["Backup policy"]);
    }

    #[test]
    fn revisions_are_compared_by_their_base() {
        assert_eq!(revision_base("0190abcd+42"), "0190abcd");
        assert_eq!(revision_base("0190abcd"), "0190abcd");
    }

    #[test]
    fn references_and_titles_outrank_body_text() {
        let terms = vec!["a.8.5".to_owned()];
        assert!(
            score(&terms, "a.8.5 secure authentication", "")
                > score(&terms, "a.5.1 policies", "see a.8.5")
        );
        let terms = vec!["backup".to_owned()];
        assert!(
            score(&terms, "backup", "x") > score(&terms, "other", "backup backup backup backup")
        );
    }
}
