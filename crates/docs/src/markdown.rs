//! Standalone Markdown export: the title block as Markdown, then the body unchanged.

use crate::Document;

/// Renders `doc` as one Markdown file: `# title`, the subtitle in italics, the meta fields as a
/// two-column table, the body, and the footer as a closing line.
///
/// Header fields are escaped so a title like `*Draft*` stays literal; the body is the user's
/// Markdown and is copied as is.
#[must_use]
pub fn render_markdown(doc: &Document) -> String {
    let mut out = String::with_capacity(doc.body_markdown.len() + 256);
    out.push_str("# ");
    out.push_str(&escape_inline(&doc.title));
    out.push_str("\n\n");
    if let Some(subtitle) = &doc.subtitle {
        out.push('*');
        out.push_str(&escape_inline(subtitle));
        out.push_str("*\n\n");
    }
    if !doc.meta.is_empty() {
        out.push_str("| Field | Value |\n| --- | --- |\n");
        for (key, value) in &doc.meta {
            out.push_str("| ");
            out.push_str(&escape_inline(key));
            out.push_str(" | ");
            out.push_str(&escape_inline(value));
            out.push_str(" |\n");
        }
        out.push('\n');
    }
    out.push_str(doc.body_markdown.trim_end());
    out.push('\n');
    if let Some(footer) = &doc.footer {
        out.push_str("\n---\n\n");
        out.push_str(&escape_inline(footer));
        out.push('\n');
    }
    out
}

/// Escapes a single-line header field for Markdown: backslash before every ASCII punctuation
/// character (CommonMark allows escaping any of them, and `|` must be escaped inside tables), and
/// line breaks folded to spaces so a field cannot start a new block.
fn escape_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
            out.push(c);
        } else if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_escaped() {
        assert_eq!(escape_inline("a|b *c*\nd"), "a\\|b \\*c\\* d");
    }
}
