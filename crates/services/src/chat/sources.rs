//! Turning retrieved documents into numbered sources for a model, and sources back
//! into the citations a member sees.

use ruleiq_ai::Source;
use ruleiq_db::repositories::assessments::FrameworkQuestion;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::search::{Passage, SearchKind};

/// Most characters of one document given to a model: enough for a control's
/// guidance or the relevant part of a policy, and it bounds the prompt.
const SOURCE_CHARS: usize = 3_000;

/// Something an answer drew on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Citation {
    pub kind: SearchKind,
    pub id: Uuid,
    /// The control's reference (`A.8.5`), or the policy's or evidence item's title.
    #[serde(rename = "ref")]
    pub reference: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub framework_slug: Option<String>,
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(SOURCE_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// A control's search title is "REF Title"; split it back.
fn split_reference(kind: SearchKind, title: &str) -> (String, String) {
    match kind {
        SearchKind::Control => title.split_once(' ').map_or_else(
            || (title.to_owned(), title.to_owned()),
            |(r, t)| (r.to_owned(), t.to_owned()),
        ),
        SearchKind::Policy | SearchKind::Evidence => (title.to_owned(), title.to_owned()),
    }
}

fn pair(
    kind: SearchKind,
    id: Uuid,
    reference: String,
    title: String,
    slug: Option<String>,
    text: &str,
) -> (Source, Citation) {
    (
        Source {
            kind: kind.as_str().to_owned(),
            id: id.to_string(),
            reference: reference.clone(),
            title: title.clone(),
            text: clip(text),
            framework_slug: slug.clone(),
        },
        Citation {
            kind,
            id,
            reference,
            title,
            framework_slug: slug,
        },
    )
}

/// Sources in retrieval order, with the citation each stands for (same index).
#[must_use]
pub fn from_passages(passages: Vec<Passage>) -> (Vec<Source>, Vec<Citation>) {
    passages
        .into_iter()
        .map(|p| {
            let (reference, title) = split_reference(p.kind, &p.title);
            pair(p.kind, p.id, reference, title, p.framework_slug, &p.body)
        })
        .unzip()
}

/// Sources for one assessment question: its controls' guidance first, then what
/// retrieval found that is not already there.
#[must_use]
pub fn for_question(
    rows: &[FrameworkQuestion],
    framework_slug: Option<&str>,
    passages: Vec<Passage>,
) -> (Vec<Source>, Vec<Citation>) {
    let mut sources = Vec::new();
    let mut citations: Vec<Citation> = Vec::new();
    for r in rows {
        let mut text = r.guidance.clone();
        if let Some(help) = r.help.as_deref().filter(|h| !h.trim().is_empty()) {
            text = format!("{help}\n{text}");
        }
        let (s, c) = pair(
            SearchKind::Control,
            r.control_id,
            r.control_ref.clone(),
            r.control_title.clone(),
            framework_slug.map(str::to_owned),
            &text,
        );
        sources.push(s);
        citations.push(c);
    }
    let (more_sources, more_citations) = from_passages(passages);
    for (s, c) in more_sources.into_iter().zip(more_citations) {
        if citations.iter().any(|k| k.id == c.id) {
            continue;
        }
        sources.push(s);
        citations.push(c);
    }
    (sources, citations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_split_their_reference_from_their_title() {
        let (s, c) = from_passages(vec![Passage {
            kind: SearchKind::Control,
            id: Uuid::nil(),
            framework_slug: Some("iso27001-2022".into()),
            title: "A.8.5 Secure authentication".into(),
            body: "x".repeat(5_000),
        }]);
        assert_eq!(c[0].reference, "A.8.5");
        assert_eq!(c[0].title, "Secure authentication");
        assert_eq!(s[0].text.chars().count(), SOURCE_CHARS + 1);
    }
}
