//! Citation grounding: an answer may cite only the sources it was given.
//!
//! A model sometimes invents `[7]` when there are three sources, or cites a number
//! from a document quoted inside a source. Such markers would point at nothing (or
//! at the wrong passage) in the interface, so they are removed.

use crate::Source;

/// An answer with only real citations left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grounded {
    pub text: String,
    /// The 1-based numbers of the sources cited (the `n` of `[n]`, so source `n`
    /// is `sources[n - 1]`), each once, in the order first cited.
    pub cited: Vec<usize>,
}

/// Keeps only `[n]` markers with `1 <= n <= sources.len()` and lists what was cited.
///
/// Lists such as `[1, 3]` or `[1,9]` are understood: valid numbers stay (`[1]`),
/// and a marker with none left goes, together with the space before it. Brackets
/// that are not citations (`[draft]`, `[ ]`) are left alone.
pub fn ground(text: &str, sources: &[Source]) -> Grounded {
    let mut out = String::with_capacity(text.len());
    let mut cited = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let (before, from_open) = rest.split_at(open);
        out.push_str(before);
        let Some(close) = from_open.find(']') else {
            out.push_str(from_open);
            rest = "";
            break;
        };
        let inner = &from_open[1..close];
        match citation_numbers(inner) {
            Some(numbers) => {
                let valid: Vec<usize> = numbers
                    .into_iter()
                    .filter(|n| (1..=sources.len()).contains(n))
                    .collect();
                if valid.is_empty() {
                    // Keep the sentence tidy: "covered [9]." becomes "covered."
                    let trimmed = out.trim_end_matches([' ', '\t']).len();
                    out.truncate(trimmed);
                } else {
                    let list: Vec<String> = valid.iter().map(usize::to_string).collect();
                    out.push('[');
                    out.push_str(&list.join(", "));
                    out.push(']');
                    for n in valid {
                        if !cited.contains(&n) {
                            cited.push(n);
                        }
                    }
                }
                rest = &from_open[close + 1..];
            }
            None => {
                // Not a citation: keep the `[` and look again from the next character,
                // since `[see [2]]` still holds one.
                out.push('[');
                rest = &from_open[1..];
            }
        }
    }
    out.push_str(rest);
    Grounded { text: out, cited }
}

impl Grounded {
    /// The same answer with its markers numbered by citation rather than by source:
    /// the first source cited becomes `[1]`, the second `[2]`, and so on, so the
    /// numbers a reader sees match the list of citations shown beside the answer.
    #[must_use]
    pub fn renumbered(self) -> Self {
        let mut out = String::with_capacity(self.text.len());
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('[') {
            let (before, from_open) = rest.split_at(open);
            out.push_str(before);
            let Some(close) = from_open.find(']') else {
                out.push_str(from_open);
                rest = "";
                break;
            };
            match citation_numbers(&from_open[1..close]) {
                Some(numbers) => {
                    let list: Vec<String> = numbers
                        .iter()
                        .map(|n| {
                            self.cited
                                .iter()
                                .position(|c| c == n)
                                .map_or_else(|| n.to_string(), |i| (i + 1).to_string())
                        })
                        .collect();
                    out.push('[');
                    out.push_str(&list.join(", "));
                    out.push(']');
                    rest = &from_open[close + 1..];
                }
                None => {
                    out.push('[');
                    rest = &from_open[1..];
                }
            }
        }
        out.push_str(rest);
        // `cited` still lists the sources, in the order the new numbers follow.
        Self {
            text: out,
            cited: self.cited,
        }
    }
}

/// `Some` when the bracket holds only numbers separated by commas and spaces.
fn citation_numbers(inner: &str) -> Option<Vec<usize>> {
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    // Numbers too long for usize are certainly not a valid source.
    Some(
        parts
            .into_iter()
            .map(|p| p.parse().unwrap_or(usize::MAX))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbering_follows_the_order_of_citation() {
        let g = ground("B [4]. A [2]. Both [2, 4]. Not [x].", &sources(5)).renumbered();
        assert_eq!(g.text, "B [1]. A [2]. Both [2, 1]. Not [x].");
        assert_eq!(g.cited, vec![4, 2], "still the sources, in citation order");
    }

    fn sources(n: usize) -> Vec<Source> {
        (0..n)
            .map(|i| Source {
                kind: "control".into(),
                id: i.to_string(),
                reference: format!("A.{i}"),
                title: String::new(),
                text: String::new(),
                framework_slug: None,
            })
            .collect()
    }

    #[test]
    fn removes_citations_beyond_the_sources() {
        let g = ground(
            "Access is reviewed quarterly [2]. Backups are tested [7]. Keys rotate [1][3].",
            &sources(3),
        );
        assert_eq!(
            g.text,
            "Access is reviewed quarterly [2]. Backups are tested. Keys rotate [1][3]."
        );
        assert_eq!(g.cited, vec![2, 1, 3]);
    }

    #[test]
    fn deduplicates_in_first_cited_order_and_filters_lists() {
        let g = ground(
            "A [3]. B [1, 9, 3]. C [0]. D [3]. E [99999999999999999999999].",
            &sources(3),
        );
        assert_eq!(g.text, "A [3]. B [1, 3]. C. D [3]. E.");
        assert_eq!(g.cited, vec![3, 1]);
    }

    #[test]
    fn leaves_other_brackets_alone() {
        let text = "Fill in [Company name] and [ ] tick, see [note [2]] and a lone [ bracket";
        let g = ground(text, &sources(2));
        assert_eq!(g.text, text);
        assert_eq!(g.cited, vec![2]);
        assert_eq!(ground("no sources [1]", &[]).text, "no sources");
    }
}
