//! The content library as files: parsing `content/` (format in content/README.md) into
//! checked types. A file that breaks a rule is refused with its path, the line, the
//! field and what is wrong, so whoever edited it can go straight to the mistake.

use include_dir::{Dir, include_dir};
use ruleiq_core::{Criticality, Relation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt,
    path::Path,
};

/// The content shipped inside the binary, so `ruleiq` needs no files beside it.
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../content");

const MAX_DESCRIPTION: usize = 1_500;
const MAX_GUIDANCE: usize = 3_000;

/// A framework file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameworkDef {
    pub slug: String,
    pub name: String,
    pub version: String,
    pub content_version: u32,
    pub publisher: String,
    pub jurisdiction: String,
    #[serde(default)]
    pub url: Option<String>,
    pub description: String,
    pub domains: Vec<DomainDef>,
    pub controls: Vec<ControlDef>,
}

/// A heading.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainDef {
    #[serde(rename = "ref")]
    pub reference: String,
    pub name: String,
    #[serde(default)]
    pub parent: Option<String>,
}

/// An assessable control.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlDef {
    #[serde(rename = "ref")]
    pub reference: String,
    pub title: String,
    pub domain: String,
    pub criticality: Criticality,
    /// Person-days a business starting from nothing needs to put the control in
    /// place, in half-day steps; plans schedule tasks by it.
    pub effort_days: f64,
    pub description: String,
    pub guidance: String,
    pub evidence: Vec<String>,
    #[serde(default)]
    pub questions: Vec<String>,
}

/// `questions.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionBankFile {
    questions: Vec<SharedQuestion>,
}

/// A question of the shared bank, answered once for every control it evidences.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedQuestion {
    pub key: String,
    pub text: String,
    #[serde(default)]
    pub help: Option<String>,
    /// Framework slug to the refs of its controls this question evidences.
    pub controls: BTreeMap<String, Vec<String>>,
}

/// `mappings/<a>--<b>.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSet {
    pub source: String,
    pub target: String,
    pub basis: String,
    pub mappings: Vec<MappingDef>,
}

/// One typed pair.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingDef {
    pub source: String,
    pub target: String,
    pub relation: Relation,
}

/// The whole library, checked.
#[derive(Debug, Clone)]
pub struct Library {
    pub frameworks: Vec<FrameworkDef>,
    pub questions: Vec<SharedQuestion>,
    pub mappings: Vec<MappingSet>,
    /// SHA-256 over every file's path and bytes: unchanged content, unchanged hash.
    pub hash: String,
    /// Per framework slug, the hash of its file.
    pub framework_hashes: HashMap<String, String>,
}

/// What is wrong with a content file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ContentError {
    /// Path relative to `content/`'s parent, e.g. `content/frameworks/nis2.yaml`.
    pub file: String,
    pub line: Option<usize>,
    /// The field, as a path (`controls[3].criticality`).
    pub field: String,
    pub message: String,
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

/// One content file's path (relative, with `/`) and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// The files built into the binary.
#[must_use]
pub fn embedded_files() -> Vec<SourceFile> {
    let mut out = Vec::new();
    collect_embedded(&EMBEDDED, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn collect_embedded(dir: &Dir<'_>, out: &mut Vec<SourceFile>) {
    for file in dir.files() {
        let path = file.path().to_string_lossy().replace('\\', "/");
        if path.ends_with(".yaml") {
            out.push(SourceFile {
                path: format!("content/{path}"),
                text: String::from_utf8_lossy(file.contents()).into_owned(),
            });
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

/// The `.yaml` files under a `content/` directory on disk.
///
/// # Errors
/// When the directory or a file cannot be read, or a file is not UTF-8.
pub fn files_in(dir: &Path) -> Result<Vec<SourceFile>, ContentError> {
    let mut out = Vec::new();
    let io = |path: &Path, e: std::io::Error| ContentError {
        file: path.display().to_string(),
        line: None,
        field: String::new(),
        message: format!("cannot be read: {e}"),
    };
    for sub in ["", "frameworks", "mappings", "policies"] {
        let d = dir.join(sub);
        if !d.is_dir() {
            continue;
        }
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .map_err(|e| io(&d, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        entries.sort();
        for path in entries {
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let text = String::from_utf8(bytes).map_err(|_| ContentError {
                file: path.display().to_string(),
                line: None,
                field: String::new(),
                message: "is not UTF-8 text".into(),
            })?;
            let rel = if sub.is_empty() {
                format!("content/{}", file_name(&path))
            } else {
                format!("content/{sub}/{}", file_name(&path))
            };
            out.push(SourceFile { path: rel, text });
        }
    }
    Ok(out)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The library built into the binary.
///
/// # Errors
/// When the embedded content breaks a rule (a test keeps that from shipping).
pub fn embedded() -> Result<Library, ContentError> {
    load(&embedded_files())
}

/// Parses and checks every file.
///
/// # Errors
/// The first rule broken, with its file, line and field.
pub fn load(files: &[SourceFile]) -> Result<Library, ContentError> {
    let mut frameworks: Vec<(FrameworkDef, &SourceFile)> = Vec::new();
    let mut bank: Option<(Vec<SharedQuestion>, &SourceFile)> = None;
    let mut mappings: Vec<(MappingSet, &SourceFile)> = Vec::new();
    let mut hasher = Sha256::new();
    let mut framework_hashes = HashMap::new();
    for file in files {
        hasher.update(file.path.as_bytes());
        hasher.update([0]);
        hasher.update(file.text.as_bytes());
        hasher.update([0]);
        if let Some(stem) = file
            .path
            .strip_prefix("content/frameworks/")
            .and_then(|n| n.strip_suffix(".yaml"))
        {
            let def: FrameworkDef = parse(file)?;
            check_framework(&def, stem, file)?;
            framework_hashes.insert(def.slug.clone(), hex::encode(Sha256::digest(&file.text)));
            frameworks.push((def, file));
        } else if file.path == "content/questions.yaml" {
            let parsed: QuestionBankFile = parse(file)?;
            bank = Some((parsed.questions, file));
        } else if file.path.starts_with("content/mappings/") {
            mappings.push((parse(file)?, file));
        }
    }

    let mut slugs = HashSet::new();
    for (def, file) in &frameworks {
        if !slugs.insert(def.slug.as_str()) {
            return Err(at(
                file,
                Some(1),
                "slug",
                "is used by another framework file",
            ));
        }
    }
    let refs: HashMap<&str, HashSet<&str>> = frameworks
        .iter()
        .map(|(f, _)| {
            (
                f.slug.as_str(),
                f.controls.iter().map(|c| c.reference.as_str()).collect(),
            )
        })
        .collect();

    let mut served: HashSet<(&str, &str)> = HashSet::new();
    if let Some((questions, file)) = &bank {
        check_bank(questions, file, &refs)?;
        for q in questions {
            for (slug, list) in &q.controls {
                for r in list {
                    served.insert((slug.as_str(), r.as_str()));
                }
            }
        }
    }
    for (def, file) in &frameworks {
        let loc = Locator::new(&file.text);
        for (i, c) in def.controls.iter().enumerate() {
            if c.questions.is_empty()
                && !served.contains(&(def.slug.as_str(), c.reference.as_str()))
            {
                return Err(at(
                    file,
                    loc.field("controls", i, "questions"),
                    &format!("controls[{i}].questions"),
                    &format!(
                        "control {} has no question of its own and none in questions.yaml",
                        c.reference
                    ),
                ));
            }
        }
    }
    for (set, file) in &mappings {
        check_mappings(set, file, &refs)?;
    }

    Ok(Library {
        frameworks: frameworks.into_iter().map(|(f, _)| f).collect(),
        questions: bank.map(|(q, _)| q).unwrap_or_default(),
        mappings: mappings.into_iter().map(|(m, _)| m).collect(),
        hash: hex::encode(hasher.finalize()),
        framework_hashes,
    })
}

fn parse<T: serde::de::DeserializeOwned>(file: &SourceFile) -> Result<T, ContentError> {
    serde_yaml_ng::from_str(&file.text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        let mut message = e.to_string();
        // The location is reported separately, as `file:line`.
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        let (field, message) = match message.split_once(": ") {
            Some((path, rest)) if !path.contains(' ') => (path.to_owned(), rest.to_owned()),
            _ => (String::new(), message),
        };
        ContentError {
            file: file.path.clone(),
            line,
            field,
            message,
        }
    })
}

fn at(file: &SourceFile, line: Option<usize>, field: &str, message: &str) -> ContentError {
    ContentError {
        file: file.path.clone(),
        line,
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn check_framework(def: &FrameworkDef, stem: &str, file: &SourceFile) -> Result<(), ContentError> {
    let loc = Locator::new(&file.text);
    let top = |field: &str| loc.top(field);
    if !valid_slug(&def.slug) {
        return Err(at(
            file,
            top("slug"),
            "slug",
            "use lowercase letters, digits, '-' and '.' only",
        ));
    }
    if def.slug != stem {
        return Err(at(
            file,
            top("slug"),
            "slug",
            &format!("must match the file name ({stem}.yaml)"),
        ));
    }
    for (field, value) in [
        ("name", &def.name),
        ("version", &def.version),
        ("publisher", &def.publisher),
        ("jurisdiction", &def.jurisdiction),
        ("description", &def.description),
    ] {
        if value.trim().is_empty() {
            return Err(at(file, top(field), field, "must not be empty"));
        }
    }
    if def.content_version == 0 {
        return Err(at(
            file,
            top("content_version"),
            "content_version",
            "starts at 1",
        ));
    }
    let mut domains: HashSet<&str> = HashSet::new();
    for (i, d) in def.domains.iter().enumerate() {
        let field = |f: &str| format!("domains[{i}].{f}");
        let line = |f: &str| loc.field("domains", i, f);
        if d.reference.trim().is_empty() {
            return Err(at(file, line("ref"), &field("ref"), "must not be empty"));
        }
        if d.name.trim().is_empty() {
            return Err(at(file, line("name"), &field("name"), "must not be empty"));
        }
        if let Some(parent) = &d.parent
            && !domains.contains(parent.as_str())
        {
            return Err(at(
                file,
                line("parent"),
                &field("parent"),
                &format!("no domain {parent:?} is listed before this one"),
            ));
        }
        if !domains.insert(&d.reference) {
            return Err(at(
                file,
                line("ref"),
                &field("ref"),
                &format!("domain {:?} is listed twice", d.reference),
            ));
        }
    }
    let mut refs = HashSet::new();
    for (i, c) in def.controls.iter().enumerate() {
        let field = |f: &str| format!("controls[{i}].{f}");
        let line = |f: &str| loc.field("controls", i, f);
        if c.reference.trim().is_empty() {
            return Err(at(file, line("ref"), &field("ref"), "must not be empty"));
        }
        if !refs.insert(c.reference.as_str()) {
            return Err(at(
                file,
                line("ref"),
                &field("ref"),
                &format!("control {:?} is listed twice", c.reference),
            ));
        }
        if !domains.contains(c.domain.as_str()) {
            return Err(at(
                file,
                line("domain"),
                &field("domain"),
                &format!("no domain {:?} in this file", c.domain),
            ));
        }
        for (f, value, max) in [
            ("title", &c.title, 300),
            ("description", &c.description, MAX_DESCRIPTION),
            ("guidance", &c.guidance, MAX_GUIDANCE),
        ] {
            if value.trim().is_empty() {
                return Err(at(file, line(f), &field(f), "must not be empty"));
            }
            if value.chars().count() > max {
                return Err(at(
                    file,
                    line(f),
                    &field(f),
                    &format!("is longer than {max} characters"),
                ));
            }
        }
        if !valid_effort(c.effort_days) {
            return Err(at(
                file,
                line("effort_days"),
                &field("effort_days"),
                "must be a number of days from 0.5 to 60 in half-day steps",
            ));
        }
        if c.evidence.is_empty()
            || c.evidence.len() > 5
            || c.evidence.iter().any(|e| e.trim().is_empty())
        {
            return Err(at(
                file,
                line("evidence"),
                &field("evidence"),
                "list one to five non-empty examples",
            ));
        }
        if let Some(q) = c.questions.iter().find(|q| !is_question(q)) {
            return Err(at(
                file,
                line("questions"),
                &field("questions"),
                &format!("{q:?} is not a question ending with '?'"),
            ));
        }
    }
    if def.controls.is_empty() {
        return Err(at(file, top("controls"), "controls", "lists no controls"));
    }
    Ok(())
}

fn is_question(q: &str) -> bool {
    let q = q.trim();
    q.len() > 3 && q.ends_with('?')
}

fn check_bank(
    questions: &[SharedQuestion],
    file: &SourceFile,
    refs: &HashMap<&str, HashSet<&str>>,
) -> Result<(), ContentError> {
    let loc = Locator::new(&file.text);
    let mut keys = HashSet::new();
    for (i, q) in questions.iter().enumerate() {
        let field = |f: &str| format!("questions[{i}].{f}");
        let line = |f: &str| loc.field("questions", i, f);
        let key_ok = !q.key.is_empty()
            && q.key.len() <= 100
            && q.key.split('-').all(|w| {
                !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !key_ok {
            return Err(at(
                file,
                line("key"),
                &field("key"),
                "use lowercase words joined by '-'",
            ));
        }
        if !keys.insert(q.key.as_str()) {
            return Err(at(
                file,
                line("key"),
                &field("key"),
                &format!("question {:?} is listed twice", q.key),
            ));
        }
        if !is_question(&q.text) {
            return Err(at(
                file,
                line("text"),
                &field("text"),
                "must be a question ending with '?'",
            ));
        }
        if q.controls.is_empty() {
            return Err(at(
                file,
                line("controls"),
                &field("controls"),
                "links to no control",
            ));
        }
        for (slug, list) in &q.controls {
            let Some(known) = refs.get(slug.as_str()) else {
                return Err(at(
                    file,
                    line("controls"),
                    &field(&format!("controls.{slug}")),
                    &format!("no framework {slug:?} in content/frameworks"),
                ));
            };
            if let Some(missing) = list.iter().find(|r| !known.contains(r.as_str())) {
                return Err(at(
                    file,
                    line("controls"),
                    &field(&format!("controls.{slug}")),
                    &format!("{slug} has no control {missing:?}"),
                ));
            }
        }
    }
    Ok(())
}

fn check_mappings(
    set: &MappingSet,
    file: &SourceFile,
    refs: &HashMap<&str, HashSet<&str>>,
) -> Result<(), ContentError> {
    let loc = Locator::new(&file.text);
    let framework = |field: &str, slug: &str| {
        refs.get(slug).ok_or_else(|| {
            at(
                file,
                loc.top(field),
                field,
                &format!("no framework {slug:?} in content/frameworks"),
            )
        })
    };
    let sources = framework("source", &set.source)?;
    let targets = framework("target", &set.target)?;
    if set.source == set.target {
        return Err(at(
            file,
            loc.top("target"),
            "target",
            "maps a framework to itself",
        ));
    }
    let mut pairs = HashSet::new();
    for (i, m) in set.mappings.iter().enumerate() {
        let line = loc.item("mappings", i);
        if !sources.contains(m.source.as_str()) {
            return Err(at(
                file,
                line,
                &format!("mappings[{i}].source"),
                &format!("{} has no control {:?}", set.source, m.source),
            ));
        }
        if !targets.contains(m.target.as_str()) {
            return Err(at(
                file,
                line,
                &format!("mappings[{i}].target"),
                &format!("{} has no control {:?}", set.target, m.target),
            ));
        }
        if !pairs.insert((m.source.as_str(), m.target.as_str())) {
            return Err(at(
                file,
                line,
                &format!("mappings[{i}]"),
                &format!("the pair {} → {} is listed twice", m.source, m.target),
            ));
        }
    }
    Ok(())
}

/// Finds the line of a field after parsing, for rules serde cannot check. The files
/// are block-style YAML as content/README.md shows; anything it cannot place falls
/// back to the item's first line, or to no line.
struct Locator<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            lines: text.lines().collect(),
        }
    }

    /// 1-based line of a top-level key.
    fn top(&self, key: &str) -> Option<usize> {
        let prefix = format!("{key}:");
        self.lines
            .iter()
            .position(|l| l.starts_with(&prefix))
            .map(|i| i + 1)
    }

    /// 0-based line ranges of the items of a top-level list.
    fn items(&self, key: &str) -> Vec<(usize, usize)> {
        let Some(start) = self.top(key) else {
            return Vec::new();
        };
        let mut items: Vec<usize> = Vec::new();
        let mut indent = None;
        let mut end = self.lines.len();
        for (i, line) in self.lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let this = line.len() - trimmed.len();
            if this == 0 && !trimmed.starts_with('-') {
                end = i;
                break;
            }
            if trimmed.starts_with("- ") || trimmed == "-" {
                let want = *indent.get_or_insert(this);
                if this == want {
                    items.push(i);
                }
            }
        }
        items
            .iter()
            .enumerate()
            .map(|(n, &s)| (s, items.get(n + 1).copied().unwrap_or(end)))
            .collect()
    }

    fn item(&self, key: &str, index: usize) -> Option<usize> {
        self.items(key).get(index).map(|(s, _)| s + 1)
    }

    fn field(&self, key: &str, index: usize, field: &str) -> Option<usize> {
        let (start, end) = *self.items(key).get(index)?;
        let needle = format!("{field}:");
        (start..end)
            .find(|&i| {
                let t = self.lines[i].trim_start();
                let t = t.strip_prefix("- ").unwrap_or(t).trim_start();
                t.starts_with(&needle)
                    || t.contains(&format!("{{ {needle}"))
                    || t.contains(&format!(", {needle}"))
            })
            .or(Some(start))
            .map(|i| i + 1)
    }
}

#[cfg(test)]
mod tests;

/// An effort estimate is whole or half days, from half a day to about three months.
#[must_use]
pub fn valid_effort(days: f64) -> bool {
    (0.5..=60.0).contains(&days) && (days * 2.0).fract() == 0.0
}
