//! The offline engine: answers from the sources alone, with no model and no network.
//!
//! It is the last link of every fallback chain, so it must always work, be fast
//! and be predictable: the same request gives the same answer, byte for byte. For
//! questions it quotes the sentences of the sources that share the most words with
//! the question; for policies it returns the template-filled draft unchanged.
//!
//! The work is linear in the size of the sources: each is split and scanned once,
//! and only the few best sentences are kept.

use async_trait::async_trait;
use futures::StreamExt;

use crate::{
    ChatRequest, Completion, EventStream, Finish, LlmError, LlmProvider, ProviderName, Source,
    StreamEvent, Task, Usage,
};

/// The model name the offline engine reports.
pub const OFFLINE_MODEL: &str = "ruleiq-offline-1";
/// Most sentences quoted in one answer.
const MAX_QUOTES: usize = 4;
/// Longest quoted sentence, in characters; longer ones are shortened with "…".
const MAX_QUOTE_CHARS: usize = 400;
/// A matched question word in the sentence is worth this much; one in the title, 1.
const SENTENCE_WEIGHT: usize = 4;

/// What the offline engine says when nothing matches. Public so callers and tests
/// can recognise it.
pub const NOTHING_FOUND: &str = "I could not find anything in your organisation's library, \
policies or evidence that covers this question. Try rephrasing it with the words your \
documents use, such as the name of a control, a policy or a framework.";

/// The deterministic engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offline;

/// Words that carry no meaning for matching.
fn is_stop_word(w: &str) -> bool {
    matches!(
        w,
        "a" | "about"
            | "all"
            | "am"
            | "an"
            | "and"
            | "any"
            | "are"
            | "as"
            | "at"
            | "be"
            | "been"
            | "but"
            | "by"
            | "can"
            | "could"
            | "did"
            | "do"
            | "doe"
            | "does"
            | "for"
            | "from"
            | "had"
            | "has"
            | "have"
            | "how"
            | "i"
            | "if"
            | "in"
            | "into"
            | "is"
            | "it"
            | "its"
            | "me"
            | "my"
            | "need"
            | "no"
            | "not"
            | "of"
            | "on"
            | "or"
            | "our"
            | "please"
            | "should"
            | "so"
            | "tell"
            | "than"
            | "that"
            | "the"
            | "their"
            | "them"
            | "then"
            | "there"
            | "these"
            | "they"
            | "this"
            | "those"
            | "to"
            | "us"
            | "was"
            | "we"
            | "were"
            | "what"
            | "when"
            | "where"
            | "which"
            | "who"
            | "why"
            | "will"
            | "with"
            | "would"
            | "you"
            | "your"
    )
}

/// A light suffix-stripping stemmer: enough that "reviews", "reviewed" and
/// "reviewing" meet, and "policy" meets "policies".
fn stem(w: &str) -> &str {
    let mut w = w;
    if w.len() > 4 && w.ends_with("sses") {
        w = &w[..w.len() - 2];
    } else if w.len() > 4 && w.ends_with("ies") {
        w = &w[..w.len() - 3];
    } else if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w = &w[..w.len() - 1];
    }
    if w.len() > 5 && w.ends_with("ing") {
        w = &w[..w.len() - 3];
    } else if w.len() > 4 && w.ends_with("ed") {
        w = &w[..w.len() - 2];
    }
    if w.len() > 3 && w.ends_with('y') {
        w = &w[..w.len() - 1];
    }
    w
}

/// Calls `f` with each word of `text`, lowercased and stemmed, leaving out stop
/// words when `skip_stop_words` is set. Sentences need no such filter: a stop word
/// can never equal a question word, since those were filtered already.
fn for_each_word(text: &str, skip_stop_words: bool, mut f: impl FnMut(&str)) {
    let mut lower = String::new();
    for raw in text.split(|c: char| !c.is_alphanumeric()) {
        if raw.is_empty() {
            continue;
        }
        lower.clear();
        if raw.is_ascii() {
            lower.push_str(raw);
            lower.make_ascii_lowercase();
        } else {
            lower.extend(raw.chars().flat_map(char::to_lowercase));
        }
        if !(skip_stop_words && is_stop_word(&lower)) {
            f(stem(&lower));
        }
    }
}

/// The distinct content words of the question.
fn question_words(question: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for_each_word(question, true, |w| {
        if !words.iter().any(|q| q == w) {
            words.push(w.to_owned());
        }
    });
    words
}

/// How many distinct question words occur in `text`.
fn overlap(text: &str, question: &[String], seen: &mut Vec<bool>) -> usize {
    seen.clear();
    seen.resize(question.len(), false);
    for_each_word(text, false, |w| {
        if let Some(i) = question.iter().position(|q| q == w) {
            seen[i] = true;
        }
    });
    seen.iter().filter(|s| **s).count()
}

/// Sentences of `text`: ends at `.`, `!` or `?` followed by a space or the end, and
/// at every line break (lists and headings have no full stops).
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let mut end = rest.len();
            let mut chars = rest.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                let next_is_space = chars.peek().is_none_or(|(_, n)| n.is_whitespace());
                if c == '\n' || (matches!(c, '.' | '!' | '?') && next_is_space) {
                    end = i + c.len_utf8();
                    break;
                }
            }
            let sentence = rest[..end].trim();
            rest = &rest[end..];
            // Skip list bullets, numbering and blank lines.
            let sentence = sentence
                .trim_start_matches(['-', '*', '•', '#', '>', ' '])
                .trim();
            if sentence.split_whitespace().count() >= 2 {
                return Some(sentence);
            }
        }
    })
}

#[derive(Debug, Clone, Copy)]
struct Pick<'a> {
    score: usize,
    source: usize,
    position: usize,
    text: &'a str,
}

fn shorten(sentence: &str) -> String {
    if sentence.chars().count() <= MAX_QUOTE_CHARS {
        return sentence.to_owned();
    }
    let cut: String = sentence.chars().take(MAX_QUOTE_CHARS).collect();
    format!("{}…", cut.trim_end())
}

/// The best sentences, best first; ties go to the earlier source, then the earlier
/// sentence, so the choice never depends on anything but the input.
fn pick<'a>(req: &'a ChatRequest, question: &[String]) -> Vec<Pick<'a>> {
    let mut seen = Vec::new();
    let mut all: Vec<Pick<'a>> = Vec::new();
    for (source, s) in req.sources.iter().enumerate() {
        let title_hits = overlap(&s.title, question, &mut seen);
        for (position, text) in sentences(&s.text).enumerate() {
            let hits = overlap(text, question, &mut seen);
            if hits > 0 {
                all.push(Pick {
                    score: hits * SENTENCE_WEIGHT + title_hits,
                    source,
                    position,
                    text,
                });
            }
        }
    }
    all.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(a.source.cmp(&b.source))
            .then(a.position.cmp(&b.position))
    });
    let mut chosen: Vec<Pick<'a>> = Vec::with_capacity(MAX_QUOTES);
    if req.task == Task::Help
        && let Some(guide) = all
            .iter()
            .find(|p| req.sources[p.source].kind.eq_ignore_ascii_case("guidance"))
    {
        chosen.push(*guide);
    }
    for p in all {
        if chosen.len() == MAX_QUOTES {
            break;
        }
        // The same sentence in two documents is quoted once.
        if !chosen.iter().any(|c| c.text == p.text) {
            chosen.push(p);
        }
    }
    chosen
}

fn describe(n: usize, s: &Source) -> String {
    let name = [s.reference.trim(), s.title.trim()]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        format!("[{n}] {} {}", s.kind, s.id)
    } else {
        format!("[{n}] {name}")
    }
}

/// Tokens estimated as one per four characters, rounded up.
fn estimate_tokens(chars: usize) -> u64 {
    u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX)
}

fn input_chars(req: &ChatRequest) -> usize {
    req.instructions.chars().count()
        + req
            .messages
            .iter()
            .map(|m| m.content.chars().count())
            .sum::<usize>()
        + req
            .sources
            .iter()
            .map(|s| s.title.chars().count() + s.text.chars().count())
            .sum::<usize>()
        + req.draft.as_deref().map_or(0, |d| d.chars().count())
}

impl Offline {
    /// The answer text for `req`.
    ///
    /// # Errors
    /// [`LlmError::Offline`] for a policy request without a draft.
    pub fn text(req: &ChatRequest) -> Result<String, LlmError> {
        if req.task == Task::Policy {
            return req.draft.clone().ok_or_else(|| {
                LlmError::Offline(
                    "no policy draft was supplied, and writing one from scratch needs an AI provider"
                        .to_owned(),
                )
            });
        }
        let question = question_words(req.question());
        let chosen = pick(req, &question);
        if chosen.is_empty() {
            return Ok(NOTHING_FOUND.to_owned());
        }
        let mut text = String::from(match req.task {
            Task::Help => "Here is what the ruleIQ guidance and your records say:\n\n",
            _ => "Here is what your organisation's records say:\n\n",
        });
        let mut cited: Vec<usize> = Vec::new();
        for p in &chosen {
            let n = p.source + 1;
            text.push_str(&format!("> {} [{n}]\n\n", shorten(p.text)));
            if !cited.contains(&n) {
                cited.push(n);
            }
        }
        cited.sort_unstable();
        let names: Vec<String> = cited
            .iter()
            .map(|n| describe(*n, &req.sources[n - 1]))
            .collect();
        text.push_str(&format!("Sources: {}.\n\n", names.join("; ")));
        text.push_str(
            "_Answered without an AI model: these are the closest passages, quoted as written._",
        );
        Ok(text)
    }

    /// The whole completion for `req`.
    ///
    /// # Errors
    /// As [`Offline::text`].
    pub fn answer(req: &ChatRequest) -> Result<Completion, LlmError> {
        let text = Self::text(req)?;
        Ok(Completion {
            usage: Usage {
                input_tokens: estimate_tokens(input_chars(req)),
                output_tokens: estimate_tokens(text.chars().count()),
            },
            text,
            model: OFFLINE_MODEL.to_owned(),
            finish: Finish::Stop,
        })
    }
}

#[async_trait]
impl LlmProvider for Offline {
    fn name(&self) -> ProviderName {
        ProviderName::Offline
    }

    fn model(&self) -> &str {
        OFFLINE_MODEL
    }

    async fn complete(&self, req: &ChatRequest) -> Result<Completion, LlmError> {
        Self::answer(req)
    }

    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, LlmError> {
        Ok(word_stream(Self::answer(req)?))
    }
}

/// Streams a finished completion as word-sized tokens (spaces kept, so the tokens
/// join back to the exact text) and then `Done`.
pub fn word_stream(c: Completion) -> EventStream {
    let mut events: Vec<Result<StreamEvent, LlmError>> = c
        .text
        .split_inclusive(char::is_whitespace)
        .map(|w| Ok(StreamEvent::Token(w.to_owned())))
        .collect();
    events.push(Ok(StreamEvent::Done {
        usage: c.usage,
        model: c.model,
        finish: c.finish,
    }));
    futures::stream::iter(events).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    fn src(kind: &str, reference: &str, title: &str, text: &str) -> Source {
        Source {
            kind: kind.into(),
            id: reference.to_lowercase(),
            reference: reference.into(),
            title: title.into(),
            text: text.into(),
            framework_slug: None,
        }
    }

    fn ask(task: Task, question: &str, sources: Vec<Source>) -> ChatRequest {
        ChatRequest {
            task,
            instructions: "Answer from the sources.".into(),
            messages: vec![Message::user(question)],
            sources,
            draft: None,
            max_output_tokens: 400,
        }
    }

    fn library() -> Vec<Source> {
        vec![
            src(
                "policy",
                "POL-7",
                "Access Control Policy",
                "Access rights are reviewed every quarter by the system owner. \
                 Leavers lose access on their last day.\n- Privileged accounts need MFA.",
            ),
            src(
                "evidence",
                "EV-12",
                "Q3 access review",
                "The Q3 review of access rights found two stale accounts. Both were removed.",
            ),
            src(
                "control",
                "A.8.13",
                "Information backup",
                "Backups are tested monthly. Restores are reviewed by IT.",
            ),
        ]
    }

    #[test]
    fn quotes_the_best_sentences_with_citations() {
        let req = ask(
            Task::Answer,
            "How often are access rights reviewed?",
            library(),
        );
        let text = Offline::text(&req).unwrap();
        let expected = "Here is what your organisation's records say:\n\n\
            > The Q3 review of access rights found two stale accounts. [2]\n\n\
            > Access rights are reviewed every quarter by the system owner. [1]\n\n\
            > Leavers lose access on their last day. [1]\n\n\
            > Restores are reviewed by IT. [3]\n\n\
            Sources: [1] POL-7 Access Control Policy; [2] EV-12 Q3 access review; [3] A.8.13 Information backup.\n\n\
            _Answered without an AI model: these are the closest passages, quoted as written._";
        assert_eq!(text, expected);
        // The evidence sentence wins: it matches as many question words as the
        // policy's, and its title ("access review") matches more.
        // Deterministic: the same input, the same bytes.
        for _ in 0..3 {
            assert_eq!(Offline::text(&req).unwrap(), expected);
        }
        // Every citation is grounded.
        let g = crate::grounding::ground(&text, &req.sources);
        assert_eq!(g.text, text);
        assert_eq!(g.cited, vec![2, 1, 3]);
    }

    #[test]
    fn says_plainly_when_nothing_matches() {
        let req = ask(Task::Answer, "What is the canteen menu?", library());
        assert_eq!(Offline::text(&req).unwrap(), NOTHING_FOUND);
        let req = ask(Task::Answer, "What about the backups?", vec![]);
        assert_eq!(Offline::text(&req).unwrap(), NOTHING_FOUND);
    }

    #[test]
    fn help_leads_with_the_guidance() {
        let mut sources = library();
        sources.push(src(
            "guidance",
            "HELP-3",
            "Reviewing access in ruleIQ",
            "Open Evidence and choose Upload to attach a review.",
        ));
        let req = ask(Task::Help, "How do I upload an access review?", sources);
        let text = Offline::text(&req).unwrap();
        let first = text.lines().find(|l| l.starts_with("> ")).unwrap();
        assert_eq!(
            first,
            "> Open Evidence and choose Upload to attach a review. [4]"
        );
        assert!(text.starts_with("Here is what the ruleIQ guidance"));
    }

    #[test]
    fn policy_returns_the_draft_or_refuses() {
        let mut req = ask(Task::Policy, "Write an access policy", vec![]);
        assert!(matches!(Offline::text(&req), Err(LlmError::Offline(_))));
        req.draft = Some("# Access Control Policy\n\nOwner: {{owner}}\n".into());
        let c = Offline::answer(&req).unwrap();
        assert_eq!(c.text, "# Access Control Policy\n\nOwner: {{owner}}\n");
        assert_eq!(c.model, OFFLINE_MODEL);
    }

    #[test]
    fn tokens_are_estimated_from_characters() {
        let req = ask(Task::Answer, "backups", library());
        let c = Offline::answer(&req).unwrap();
        assert_eq!(
            c.usage.output_tokens,
            estimate_tokens(c.text.chars().count())
        );
        assert_eq!(estimate_tokens(0), 0);
        assert_eq!(estimate_tokens(1), 1);
        assert_eq!(estimate_tokens(8), 2);
        assert_eq!(estimate_tokens(9), 3);
    }

    #[test]
    fn stemming_meets_common_forms() {
        for (a, b) in [
            ("reviews", "review"),
            ("reviewed", "review"),
            ("reviewing", "review"),
            ("policies", "policy"),
            ("processes", "process"),
            ("keys", "key"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} / {b}");
        }
        assert_eq!(stem("access"), "access");
    }

    #[tokio::test]
    async fn streaming_joins_back_to_the_answer() {
        let req = ask(Task::Answer, "access rights", library());
        let whole = Offline::answer(&req).unwrap();
        let events: Vec<_> = Offline.stream(&req).await.unwrap().collect().await;
        let mut text = String::new();
        let mut tokens = 0;
        for e in &events[..events.len() - 1] {
            match e {
                Ok(StreamEvent::Token(t)) => {
                    text.push_str(t);
                    tokens += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(tokens > 10);
        assert_eq!(text, whole.text);
        assert_eq!(
            events.last(),
            Some(&Ok(StreamEvent::Done {
                usage: whole.usage,
                model: OFFLINE_MODEL.into(),
                finish: Finish::Stop
            }))
        );
    }

    /// Not a timed assertion (machines differ); it shows the work stays linear by
    /// running a large library and reporting how long it took.
    #[test]
    fn a_large_library_is_cheap() {
        let sources: Vec<Source> = (0..20)
            .map(|i| {
                let text: String = (0..20)
                    .map(|j| {
                        format!(
                            "Supplier {i}-{j} is assessed before onboarding and reviewed every year. \
                             The assessment covers security controls and continuity plans. "
                        )
                    })
                    .collect();
                src("evidence", &format!("EV-{i}"), "Supplier file", &text)
            })
            .collect();
        assert!(sources.iter().all(|s| s.text.len() >= 2048));
        let req = ask(
            Task::Answer,
            "How are suppliers assessed for data protection?",
            sources,
        );
        let mut fastest = std::time::Duration::MAX;
        let mut text = String::new();
        for _ in 0..5 {
            let started = std::time::Instant::now();
            text = Offline::text(&req).unwrap();
            fastest = fastest.min(started.elapsed());
        }
        eprintln!("offline answer over 20 sources of 2.8 KB: fastest of 5 took {fastest:?}");
        assert!(text.contains("[1]"));
        assert_eq!(
            text.lines().filter(|l| l.starts_with("> ")).count(),
            MAX_QUOTES
        );
    }
}
