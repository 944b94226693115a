//! Comparing two versions of a policy, line by line.

use serde::Serialize;
use similar::{ChangeTag, TextDiff};

/// One line of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DiffLine {
    /// `equal`, `insert` or `delete`.
    pub tag: &'static str,
    pub text: String,
}

/// Two versions compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PolicyDiff {
    pub from: i32,
    pub to: i32,
    pub insertions: usize,
    pub deletions: usize,
    /// A unified diff, as `diff -u` prints it.
    pub unified: String,
    pub lines: Vec<DiffLine>,
}

/// Compares `old` (version `from`) with `new` (version `to`).
#[must_use]
pub fn compare(from: i32, to: i32, old: &str, new: &str) -> PolicyDiff {
    let diff = TextDiff::from_lines(old, new);
    let mut lines = Vec::new();
    let (mut insertions, mut deletions) = (0, 0);
    for change in diff.iter_all_changes() {
        let tag = match change.tag() {
            ChangeTag::Equal => "equal",
            ChangeTag::Insert => {
                insertions += 1;
                "insert"
            }
            ChangeTag::Delete => {
                deletions += 1;
                "delete"
            }
        };
        lines.push(DiffLine {
            tag,
            text: change.value().trim_end_matches('\n').to_owned(),
        });
    }
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("version {from}"), &format!("version {to}"))
        .to_string();
    PolicyDiff {
        from,
        to,
        insertions,
        deletions,
        unified,
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_are_marked() {
        let d = compare(
            1,
            2,
            "## A\nkeep\nold rule\n",
            "## A\nkeep\nnew rule\nextra\n",
        );
        assert_eq!((d.insertions, d.deletions), (2, 1));
        assert!(
            d.unified.contains("-old rule\n+new rule\n+extra"),
            "{}",
            d.unified
        );
        assert!(d.unified.starts_with("--- version 1\n+++ version 2"));
        assert_eq!(
            d.lines[0],
            DiffLine {
                tag: "equal",
                text: "## A".into()
            }
        );
    }
}
