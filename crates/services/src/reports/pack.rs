//! The audit pack: one ZIP with an index (HTML and PDF), each assessed framework's
//! controls with the organisation's answers, the evidence files in folders by
//! control, the approved policies, and `manifest.json` listing every file's SHA-256
//! and size, which [`verify`] (and `ruleiq audit-pack verify FILE`) checks.
//!
//! The archive is written to a temporary file and each evidence file is copied into
//! it a chunk at a time, so memory stays flat however large the evidence is. An
//! evidence item linked to several controls is stored once, in the folder of the
//! first of them, and the index lists it under every control it supports: copying
//! the bytes into every folder would multiply the pack's size for no new fact.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use ruleiq_db::{DatabaseConnection, DbErr, repositories::reports as repo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{
    collections::{BTreeMap, HashMap},
    io::{Read, Write},
};
use uuid::Uuid;

use super::{
    build::{Context, File, cell},
    table::{Table, Value},
};
use crate::evidence::store::BlobStore;

/// The manifest's format name; a later layout gets a new one.
pub const MANIFEST_FORMAT: &str = "ruleiq-audit-pack/1";

/// Records a report's progress; failures to record are logged, never fatal.
#[derive(Clone)]
pub(crate) struct Progress {
    db: DatabaseConnection,
    id: Uuid,
}

impl Progress {
    pub(crate) fn new(db: DatabaseConnection, id: Uuid) -> Self {
        Self { db, id }
    }

    pub(crate) async fn at(&self, percent: i32, note: &str) {
        if let Err(e) = repo::progress(&self.db, self.id, percent, note).await {
            tracing::warn!(error = %e, report = %self.id, "could not record a report's progress");
        }
    }
}

/// One file of the pack as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub organisation: String,
    pub generated_at: DateTime<Utc>,
    pub files: Vec<ManifestEntry>,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Files whose bytes match the manifest.
    pub verified: usize,
    pub bytes: u64,
    /// Listed in the manifest but not in the archive.
    pub missing: Vec<String>,
    /// In the archive but not listed.
    pub unlisted: Vec<String>,
    /// Listed with another hash or size than the bytes have.
    pub changed: Vec<String>,
}

impl Verification {
    /// Whether the pack is exactly what its manifest says.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.missing.is_empty() && self.unlisted.is_empty() && self.changed.is_empty()
    }
}

/// Checks an audit pack against its manifest: every listed file present with the
/// listed SHA-256 and size, and nothing else but the manifest.
///
/// # Errors
/// A sentence saying why the file is not an audit pack at all (not a ZIP, no
/// manifest, a manifest that cannot be read).
pub fn verify(reader: impl Read + std::io::Seek) -> Result<Verification, String> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| format!("not a ZIP archive ({e})"))?;
    let manifest: Manifest = {
        let entry = zip.by_name("manifest.json").map_err(|_| {
            "the archive has no manifest.json; it is not a ruleIQ audit pack".to_owned()
        })?;
        serde_json::from_reader(entry.take(64 * 1024 * 1024))
            .map_err(|e| format!("manifest.json cannot be read: {e}"))?
    };
    if manifest.format != MANIFEST_FORMAT {
        return Err(format!(
            "manifest.json is of format {:?}; this build reads {MANIFEST_FORMAT:?}",
            manifest.format
        ));
    }
    let mut out = Verification::default();
    let listed: HashMap<&str, &ManifestEntry> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("reading entry {i}: {e}"))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map_err(|e| format!("entry {i} has an unreadable name: {e}"))?
            .into_owned();
        if name == "manifest.json" {
            continue;
        }
        let Some(expected) = listed.get(name.as_str()) else {
            out.unlisted.push(name);
            continue;
        };
        seen.insert(name.clone());
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        let intact = loop {
            match entry.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    size += n as u64;
                }
                // A corrupted entry fails its CRC check while being read.
                Err(_) => break false,
            }
        };
        if intact && hex::encode(hasher.finalize()) == expected.sha256 && size == expected.size {
            out.verified += 1;
            out.bytes += size;
        } else {
            out.changed.push(name);
        }
    }
    out.missing = manifest
        .files
        .iter()
        .filter(|f| !seen.contains(&f.path))
        .map(|f| f.path.clone())
        .collect();
    Ok(out)
}

/// A name safe as one path segment in any unzip tool: no separators, no dot-dot, no
/// control characters, bounded length.
fn segment(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_matches('.').to_owned();
    let cut: String = trimmed.chars().take(80).collect();
    if cut.is_empty() { "_".into() } else { cut }
}

/// An evidence file to copy in.
struct EvidenceFile {
    path: String,
    sha256: String,
}

/// One control's line of the index.
struct IndexLine {
    framework: String,
    control_ref: String,
    title: String,
    answers: Vec<String>,
    evidence: Vec<String>,
}

/// Everything the pack holds but the evidence bytes, gathered before writing.
struct Plan {
    organisation: String,
    generated_at: DateTime<Utc>,
    frameworks: Vec<(String, Table)>,
    index: Vec<IndexLine>,
    evidence: Vec<EvidenceFile>,
    links: Vec<(String, String)>,
    policies: Vec<(String, String)>,
}

async fn plan(ctx: &Context<'_>) -> Result<Plan, DbErr> {
    use ruleiq_db::repositories::{
        assessments as assessments_repo, frameworks as frameworks_repo, identity as identity_repo,
    };
    let org = ctx.organization_id.as_uuid();
    let organisation = identity_repo::find_organization(ctx.db, org)
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    let mut assessed: Vec<Uuid> = ruleiq_db::repositories::assessments::list_completed(ctx.db, org)
        .await?
        .into_iter()
        .map(|a| a.framework_id)
        .filter(|f| ctx.framework_id.is_none_or(|id| id == *f))
        .collect();
    assessed.sort_unstable();
    assessed.dedup();
    let frameworks = frameworks_repo::by_ids(ctx.db, &assessed).await?;
    let links = repo::evidence_links(ctx.db, org).await?;
    let mut evidence_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (e, c) in &links {
        evidence_of.entry(*c).or_default().push(*e);
    }
    // Live evidence, by id.
    let mut items: HashMap<Uuid, ruleiq_db::entities::evidence_item::Model> = HashMap::new();
    let mut after = None;
    loop {
        let page = repo::evidence_page(ctx.db, org, after, 1_000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        items.extend(page.into_iter().map(|e| (e.id, e)));
    }
    let mut placed: HashMap<Uuid, String> = HashMap::new();
    let mut evidence = Vec::new();
    let mut sheets = Vec::new();
    let mut index = Vec::new();
    for f in &frameworks {
        let questions = assessments_repo::framework_questions(ctx.db, f.id).await?;
        let qids: Vec<Uuid> = questions.iter().map(|q| q.question_id).collect();
        let answers: HashMap<Uuid, ruleiq_db::entities::answer::Model> =
            assessments_repo::latest_answers(ctx.db, org, &qids)
                .await?
                .into_iter()
                .map(|a| (a.question_id, a))
                .collect();
        let mut table = Table::new(
            "Controls",
            &[
                ("Control", 10.0),
                ("Title", 40.0),
                ("Question", 60.0),
                ("Answer", 14.0),
                ("Notes", 40.0),
                ("Answered", 18.0),
            ],
        );
        let mut by_control: BTreeMap<i32, IndexLine> = BTreeMap::new();
        for q in &questions {
            let a = answers.get(&q.question_id);
            table.push(vec![
                Value::text(&q.control_ref),
                Value::text(&q.control_title),
                Value::text(&q.text),
                Value::text(a.map_or("unanswered", |a| a.response.as_str())),
                Value::opt(a.and_then(|a| a.notes.as_deref())),
                a.map_or(Value::Empty, |a| Value::DateTime(a.answered_at)),
            ]);
            let line = by_control.entry(q.position).or_insert_with(|| IndexLine {
                framework: f.name.clone(),
                control_ref: q.control_ref.clone(),
                title: q.control_title.clone(),
                answers: Vec::new(),
                evidence: Vec::new(),
            });
            line.answers
                .push(a.map_or("unanswered".to_owned(), |a| a.response.clone()));
            if line.evidence.is_empty() {
                let mut ids = evidence_of.get(&q.control_id).cloned().unwrap_or_default();
                ids.sort_unstable();
                for id in ids {
                    let Some(item) = items.get(&id) else { continue };
                    let path = match (&item.sha256, placed.get(&id)) {
                        (Some(_), Some(p)) => p.clone(),
                        (Some(sha), None) => {
                            let name = item.file_name.clone().unwrap_or_else(|| item.title.clone());
                            let p = format!(
                                "evidence/{}/{}/{}-{}",
                                segment(&f.slug),
                                segment(&q.control_ref),
                                &id.simple().to_string()[..8],
                                segment(&name)
                            );
                            placed.insert(id, p.clone());
                            evidence.push(EvidenceFile {
                                path: p.clone(),
                                sha256: sha.clone(),
                            });
                            p
                        }
                        (None, _) => format!(
                            "{} (link: {})",
                            item.title,
                            item.url.as_deref().unwrap_or("no address")
                        ),
                    };
                    line.evidence.push(path);
                }
            }
        }
        sheets.push((
            format!("frameworks/{}/controls.csv", segment(&f.slug)),
            table,
        ));
        index.extend(by_control.into_values());
    }
    let policies = repo::approved_policies(ctx.db, org)
        .await?
        .into_iter()
        .map(|p| {
            (
                format!("policies/{}-v{}.md", segment(&p.title), p.version),
                format!("# {}\n\n{}", p.title, p.content_markdown),
            )
        })
        .collect();
    let links = items
        .values()
        .filter(|e| e.sha256.is_none())
        .map(|e| (e.title.clone(), e.url.clone().unwrap_or_default()))
        .collect();
    Ok(Plan {
        organisation,
        generated_at: ctx.now,
        frameworks: sheets,
        index,
        evidence,
        links,
        policies,
    })
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn index_html(p: &Plan) -> String {
    use std::fmt::Write;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Audit pack — {org}</title>\
         <style>body{{font-family:sans-serif;margin:2rem}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.25rem .5rem;text-align:left;vertical-align:top}}</style>\
         </head><body><h1>Audit pack</h1><p>{org}. Generated {at}. Every file is listed with its SHA-256 in <code>manifest.json</code>; check it with <code>ruleiq audit-pack verify</code>.</p>",
        org = escape_html(&p.organisation),
        at = p.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    let _ = write!(
        h,
        "<h2>Controls</h2><table><thead><tr><th scope=\"col\">Framework</th><th scope=\"col\">Control</th><th scope=\"col\">Answers</th><th scope=\"col\">Evidence</th></tr></thead><tbody>"
    );
    for l in &p.index {
        let evidence: Vec<String> = l
            .evidence
            .iter()
            .map(|e| {
                if e.starts_with("evidence/") {
                    format!("<a href=\"{0}\">{0}</a>", escape_html(e))
                } else {
                    escape_html(e)
                }
            })
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td></tr>",
            escape_html(&l.framework),
            escape_html(&l.control_ref),
            escape_html(&l.title),
            escape_html(&l.answers.join(", ")),
            if evidence.is_empty() {
                "none".into()
            } else {
                evidence.join("<br>")
            }
        );
    }
    let _ = write!(h, "</tbody></table><h2>Policies</h2><ul>");
    for (path, _) in &p.policies {
        let _ = write!(h, "<li><a href=\"{0}\">{0}</a></li>", escape_html(path));
    }
    let _ = writeln!(h, "</ul></body></html>");
    h
}

/// A control's evidence for the printed index: the first few paths and a count, so
/// that an organisation with tens of thousands of items still gets a readable (and
/// typesettable) index; `index.html` lists them all.
fn evidence_summary(evidence: &[String]) -> String {
    const SHOWN: usize = 3;
    match evidence.len() {
        0 => "none".to_owned(),
        n if n <= SHOWN => evidence.join("; "),
        n => format!(
            "{}; and {} more (see index.html)",
            evidence[..SHOWN].join("; "),
            n - SHOWN
        ),
    }
}

fn index_pdf(p: &Plan) -> Result<Vec<u8>, String> {
    use std::fmt::Write;
    let mut b = String::new();
    let _ = writeln!(
        b,
        "Every file in this pack is listed with its SHA-256 in manifest.json; `ruleiq audit-pack verify` checks them.\n"
    );
    let _ = writeln!(
        b,
        "## Controls\n\n| Framework | Control | Answers | Evidence |\n|---|---|---|---|"
    );
    for l in &p.index {
        let _ = writeln!(
            b,
            "| {} | {} {} | {} | {} |",
            cell(&l.framework),
            cell(&l.control_ref),
            cell(&l.title),
            cell(&l.answers.join(", ")),
            cell(&evidence_summary(&l.evidence))
        );
    }
    let _ = writeln!(b, "\n## Policies\n");
    for (path, _) in &p.policies {
        let _ = writeln!(b, "- {}", path.replace('_', "\\_"));
    }
    let doc = ruleiq_docs::Document {
        title: "Audit pack".into(),
        subtitle: Some(p.organisation.clone()),
        meta: vec![(
            "Generated".into(),
            p.generated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        )],
        body_markdown: b,
        footer: Some(format!("Audit pack — {}", p.organisation)),
        ..Default::default()
    };
    ruleiq_docs::render_pdf(&doc).map_err(|e| e.to_string())
}

/// Writes files into the archive, hashing each for the manifest.
struct Writer {
    zip: zip::ZipWriter<std::fs::File>,
    manifest: Vec<ManifestEntry>,
    /// The one buffer every local evidence file is copied through.
    buf: Vec<u8>,
}

/// How much of an evidence file is read at a time.
const COPY_BUFFER: usize = 128 * 1024;

impl Writer {
    fn new(file: std::fs::File) -> Self {
        Self {
            zip: zip::ZipWriter::new(file),
            manifest: Vec::new(),
            buf: vec![0; COPY_BUFFER],
        }
    }

    fn options(compress: bool) -> zip::write::SimpleFileOptions {
        zip::write::SimpleFileOptions::default()
            .compression_method(if compress {
                zip::CompressionMethod::Deflated
            } else {
                zip::CompressionMethod::Stored
            })
            .large_file(true)
    }

    fn add(&mut self, path: &str, bytes: &[u8]) -> Result<(), String> {
        self.zip
            .start_file(path, Self::options(true))
            .map_err(|e| e.to_string())?;
        self.zip.write_all(bytes).map_err(|e| e.to_string())?;
        self.manifest.push(ManifestEntry {
            path: path.to_owned(),
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
        });
        Ok(())
    }

    /// Copies a stored blob in, a chunk at a time: from its file through the one
    /// buffer when the store is local, else as the store streams it.
    fn copy_blob(
        &mut self,
        handle: &tokio::runtime::Handle,
        store: &BlobStore,
        path: &str,
        sha256: &str,
    ) -> Result<u64, String> {
        let damaged = |e: &dyn std::fmt::Display| format!("evidence {path}: {e}");
        // Evidence is mostly already compressed (PDF, images, office files).
        self.zip
            .start_file(path, Self::options(false))
            .map_err(|e| e.to_string())?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        if let Some(mut file) = store.local_file(sha256).map_err(|e| damaged(&e))? {
            loop {
                let n = match file.read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(damaged(&e)),
                };
                hasher.update(&self.buf[..n]);
                size += n as u64;
                self.zip
                    .write_all(&self.buf[..n])
                    .map_err(|e| e.to_string())?;
            }
        } else {
            let mut stream = handle
                .block_on(store.get(sha256))
                .map_err(|e| damaged(&e))?;
            while let Some(chunk) = handle.block_on(stream.next()) {
                let chunk = chunk.map_err(|e| damaged(&e))?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
                self.zip.write_all(&chunk).map_err(|e| e.to_string())?;
            }
        }
        let got = hex::encode(hasher.finalize());
        if got != sha256 {
            return Err(format!(
                "evidence {path} does not match its recorded SHA-256 (storage damaged?); run `ruleiq evidence verify`"
            ));
        }
        self.manifest.push(ManifestEntry {
            path: path.to_owned(),
            sha256: got,
            size,
        });
        Ok(size)
    }
}

/// Builds the audit pack into a temporary file.
///
/// # Errors
/// A message for the job's record.
pub(super) async fn audit_pack(
    ctx: &Context<'_>,
    progress: &super::build::Progress,
) -> Result<File, String> {
    let plan = plan(ctx).await.map_err(|e| e.to_string())?;
    progress.at(15, "writing the archive").await;
    let store = ctx.store.clone();
    let progress = progress.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || -> Result<File, String> {
        let temp = tempfile::NamedTempFile::new()
            .map_err(|e| format!("a temporary file for the pack: {e}"))?;
        let (file, path) = temp.into_parts();
        let mut w = Writer::new(file);
        w.add("index.html", index_html(&plan).as_bytes())?;
        w.add("index.pdf", &index_pdf(&plan)?)?;
        for (name, table) in plan.frameworks.iter().cloned() {
            w.add(&name, &table.csv()?)?;
        }
        for (name, text) in &plan.policies {
            w.add(name, text.as_bytes())?;
        }
        if !plan.links.is_empty() {
            let mut links = Table::new("Links", &[("Title", 40.0), ("Address", 60.0)]);
            for (t, u) in &plan.links {
                links.push(vec![Value::text(t), Value::text(u)]);
            }
            w.add("evidence/links.csv", &links.csv()?)?;
        }
        let total = plan.evidence.len().max(1);
        for (i, e) in plan.evidence.iter().enumerate() {
            w.copy_blob(&handle, &store, &e.path, &e.sha256)?;
            if i % 20 == 0 {
                let pct = 15 + i32::try_from(i * 75 / total).unwrap_or(75);
                handle.block_on(
                    progress.at(pct, &format!("copying evidence {} of {}", i + 1, total)),
                );
            }
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            organisation: plan.organisation.clone(),
            generated_at: plan.generated_at,
            files: w.manifest.clone(),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
        w.zip
            .start_file("manifest.json", Writer::options(true))
            .map_err(|e| e.to_string())?;
        w.zip.write_all(&json).map_err(|e| e.to_string())?;
        w.zip.finish().map_err(|e| e.to_string())?;
        Ok(File::Temp(path))
    })
    .await
    .map_err(|e| format!("the pack stopped: {e}"))?
}
