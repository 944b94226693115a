//! Standalone Markdown export: the title block as Markdown, then the body and the Markdown
//! blocks unchanged, charts as tables of their data.

use crate::chart::chart_table;
use crate::{Block, Document, outline};

/// Renders `doc` as one Markdown file: `# title`, the subtitle in italics, the meta fields as a
/// two-column table, the contents as a list of headings if asked for, the body, each block (a
/// chart as its caption in bold and a table of its data, a page break as a thematic break), and
/// the footer as a closing line.
///
/// Header fields and chart text are escaped so a title like `*Draft*` stays literal; the body
/// and Markdown blocks are the user's Markdown and are copied as is — which also means that,
/// unlike in the PDF and the DOCX, a block that leaves a code fence open runs on into the next.
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
    if doc.contents {
        contents(doc, &mut out);
    }
    out.push_str(doc.body_markdown.trim_end());
    out.push('\n');
    for block in &doc.blocks {
        out.push('\n');
        match block {
            Block::Markdown(markdown) => {
                out.push_str(markdown.trim_end());
                out.push('\n');
            }
            Block::Chart(chart) => {
                let table = chart_table(chart);
                if !table.caption.trim().is_empty() {
                    out.push_str("**");
                    out.push_str(&escape_inline(&table.caption));
                    out.push_str("**\n\n");
                }
                write_table(&table.header, &table.rows, &mut out);
            }
            Block::PageBreak => out.push_str("---\n"),
        }
    }
    if let Some(footer) = &doc.footer {
        out.push_str("\n---\n\n");
        out.push_str(&escape_inline(footer));
        out.push('\n');
    }
    out
}

/// A `## Contents` list of the level 1–3 headings of the body and the Markdown blocks, indented
/// by level. Plain text, not links: heading anchors differ between Markdown renderers.
fn contents(doc: &Document, out: &mut String) {
    out.push_str("## Contents\n\n");
    for (level, title) in outline(doc) {
        out.push_str(&"  ".repeat(level.saturating_sub(1)));
        out.push_str("- ");
        out.push_str(&escape_inline(&title));
        out.push('\n');
    }
    out.push('\n');
}

/// A GitHub table; every cell escaped.
fn write_table(header: &[String], rows: &[Vec<String>], out: &mut String) {
    let row = |cells: &[String], out: &mut String| {
        out.push('|');
        for cell in cells {
            out.push(' ');
            out.push_str(&escape_inline(cell));
            out.push_str(" |");
        }
        out.push('\n');
    };
    row(header, out);
    out.push('|');
    for _ in header {
        out.push_str(" --- |");
    }
    out.push('\n');
    for cells in rows {
        row(cells, out);
    }
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
