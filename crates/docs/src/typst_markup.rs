//! Markdown → typst markup.
//!
//! The body is walked as pulldown-cmark events and written as typst *function calls*
//! (`#list(..)`, `#table(..)`, `#heading(..)[..]`) rather than typst's own list and heading
//! syntax: content blocks nest by brackets, not indentation, so structure can never be changed by
//! what a user typed.
//!
//! Invariant: every piece of user text goes through [`escape_markup`] (or [`string_literal`] where
//! a typst string is needed), so no user character is read as typst code or markup.

use pulldown_cmark::{Alignment, Event, HeadingLevel, Parser, Tag};
use std::fmt::Write as _;

use crate::{is_safe_link, parser_options};

/// Containers nested deeper than this are written as plain content. typst lays out nested
/// content recursively; a hostile `>>>>>>…` or `- - - - …` body must not exhaust the stack.
const MAX_DEPTH: usize = 24;

/// Wider tables are cut to this many columns, the rest of a row joined into the last cell;
/// nothing wider fits on A4 anyway, and it bounds layout cost.
pub(crate) const MAX_TABLE_COLUMNS: usize = 32;

/// Escapes text for typst markup mode.
///
/// typst accepts a backslash before any non-space character as "this character, literally", so
/// escaping all ASCII punctuation neutralises every markup construct (`#` code, `$` math, `*`/`_`
/// emphasis, `<label>`, `@ref`, `[`/`]` content blocks, `//` comments, `-`/`+`/`=`/`/` markers,
/// `~`/`--`/`...` shorthands, `\` escapes and, via `:`, bare `https://` links) without our
/// having to track typst's grammar. Quotes stay unescaped so typst still sets typographic quotes.
/// Line breaks and other control characters become spaces: a newline could start a list or
/// heading line, and a blank line a new paragraph.
pub(crate) fn escape_markup(text: &str, out: &mut String) {
    escape(text, out, true);
}

/// Like [`escape_markup`], but quotes stay straight: for URLs and other text that must print
/// exactly as written.
fn escape_verbatim(text: &str, out: &mut String) {
    escape(text, out, false);
}

fn escape(text: &str, out: &mut String, smart_quotes: bool) {
    for c in text.chars() {
        match c {
            '\'' | '"' if smart_quotes => out.push(c),
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Writes `text` as a typst string literal (`"…"`), escaping quotes, backslashes and control
/// characters.
pub(crate) fn string_literal(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// What an open Markdown element has collected so far.
enum Frame {
    Root,
    Paragraph,
    Heading(u8),
    BlockQuote,
    /// Raw code text, written unescaped into a string literal at the end.
    CodeBlock(String),
    /// Raw HTML is shown as the text it is.
    HtmlBlock,
    List {
        start: Option<u64>,
        items: Vec<String>,
    },
    Item,
    Table {
        aligns: Vec<Alignment>,
        header: Option<Vec<String>>,
        rows: Vec<Vec<String>>,
    },
    /// Header or body row: collects rendered cells.
    Row(Vec<String>),
    Cell,
    Emphasis,
    Strong,
    Strikethrough,
    Link(String),
    Image,
    /// Anything we do not style (footnote definitions and the like): its content, unwrapped.
    Other,
}

struct Open {
    frame: Frame,
    /// Rendered content of this element's children.
    buf: String,
    /// Past [`MAX_DEPTH`]: written unwrapped.
    flat: bool,
}

/// What a closed element hands its parent.
enum Rendered {
    Content(String),
    Row(Vec<String>),
}

/// Converts a Markdown body to typst markup (to be evaluated in markup mode).
pub(crate) fn body_to_typst(markdown: &str) -> String {
    let mut stack = vec![Open {
        frame: Frame::Root,
        buf: String::with_capacity(markdown.len() * 2),
        flat: false,
    }];

    for event in Parser::new_ext(markdown, parser_options()) {
        match event {
            Event::Start(tag) => {
                let frame = frame_for(tag);
                let flat = stack.len() > MAX_DEPTH && !matches!(frame, Frame::CodeBlock(_));
                stack.push(Open {
                    frame,
                    buf: String::new(),
                    flat,
                });
            }
            Event::End(_) => {
                // The root never ends; pulldown-cmark balances Start/End, but be defensive.
                if stack.len() < 2 {
                    continue;
                }
                let Some(open) = stack.pop() else { continue };
                let rendered = close(open);
                if let Some(parent) = stack.last_mut() {
                    accept(parent, rendered);
                }
            }
            Event::Text(text) => {
                let Some(top) = stack.last_mut() else {
                    continue;
                };
                match &mut top.frame {
                    Frame::CodeBlock(code) => code.push_str(&text),
                    _ => escape_markup(&text, &mut top.buf),
                }
            }
            Event::Code(code) => {
                let Some(top) = stack.last_mut() else {
                    continue;
                };
                top.buf.push_str("#raw(");
                string_literal(&code, &mut top.buf);
                top.buf.push(')');
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                if let Some(top) = stack.last_mut() {
                    escape_markup(&html, &mut top.buf);
                }
            }
            Event::InlineMath(math) | Event::DisplayMath(math) => {
                if let Some(top) = stack.last_mut() {
                    escape_markup(&math, &mut top.buf);
                }
            }
            Event::FootnoteReference(label) => {
                if let Some(top) = stack.last_mut() {
                    escape_markup(&format!("[^{label}]"), &mut top.buf);
                }
            }
            Event::SoftBreak => push(&mut stack, " "),
            Event::HardBreak => push(&mut stack, "#linebreak()"),
            Event::Rule => push(
                &mut stack,
                "\n#block(above: 1em, below: 1em, line(length: 100%, stroke: 0.5pt + luma(160)))\n\n",
            ),
            Event::TaskListMarker(done) => {
                push(&mut stack, if done { "\\[x\\] " } else { "\\[ \\] " })
            }
        }
    }

    // Close anything left open (pulldown-cmark always balances, so this is belt and braces).
    while stack.len() > 1 {
        if let Some(open) = stack.pop() {
            let rendered = close(open);
            if let Some(parent) = stack.last_mut() {
                accept(parent, rendered);
            }
        }
    }
    stack.pop().map(|root| root.buf).unwrap_or_default()
}

fn push(stack: &mut [Open], s: &str) {
    if let Some(top) = stack.last_mut() {
        top.buf.push_str(s);
    }
}

fn frame_for(tag: Tag<'_>) -> Frame {
    match tag {
        Tag::Paragraph => Frame::Paragraph,
        Tag::Heading { level, .. } => Frame::Heading(match level {
            HeadingLevel::H1 => 1,
            HeadingLevel::H2 => 2,
            HeadingLevel::H3 => 3,
            // The house style has four heading levels; deeper ones are shown as level 4.
            _ => 4,
        }),
        Tag::BlockQuote(_) => Frame::BlockQuote,
        // The info string is ignored: syntax highlighting is not worth a user-chosen language
        // name reaching typst.
        Tag::CodeBlock(_) => Frame::CodeBlock(String::new()),
        Tag::HtmlBlock => Frame::HtmlBlock,
        Tag::List(start) => Frame::List {
            start,
            items: Vec::new(),
        },
        Tag::Item => Frame::Item,
        Tag::Table(aligns) => Frame::Table {
            aligns,
            header: None,
            rows: Vec::new(),
        },
        Tag::TableHead | Tag::TableRow => Frame::Row(Vec::new()),
        Tag::TableCell => Frame::Cell,
        Tag::Emphasis => Frame::Emphasis,
        Tag::Strong => Frame::Strong,
        Tag::Strikethrough => Frame::Strikethrough,
        Tag::Link { dest_url, .. } => Frame::Link(dest_url.into_string()),
        Tag::Image { .. } => Frame::Image,
        _ => Frame::Other,
    }
}

/// Adds a closed child's output to its parent.
fn accept(parent: &mut Open, rendered: Rendered) {
    match (&mut parent.frame, rendered) {
        (Frame::List { items, .. }, Rendered::Content(item)) if !parent.flat => items.push(item),
        (Frame::Row(cells), Rendered::Content(cell)) if !parent.flat => cells.push(cell),
        (Frame::Table { header, rows, .. }, Rendered::Row(cells)) if !parent.flat => {
            if header.is_none() && rows.is_empty() {
                *header = Some(cells);
            } else {
                rows.push(cells);
            }
        }
        (_, Rendered::Content(s)) => parent.buf.push_str(&s),
        (_, Rendered::Row(cells)) => {
            for cell in cells {
                parent.buf.push_str(&cell);
                parent.buf.push(' ');
            }
            parent.buf.push_str("\n\n");
        }
    }
}

/// Renders a closed element.
fn close(open: Open) -> Rendered {
    let Open { frame, buf, flat } = open;
    if flat {
        return match frame {
            Frame::Row(cells) => Rendered::Row(cells),
            Frame::List { items, .. } => Rendered::Content(items.concat() + &buf),
            Frame::Paragraph | Frame::Heading(_) | Frame::BlockQuote | Frame::Item => {
                Rendered::Content(buf + "\n\n")
            }
            _ => Rendered::Content(buf),
        };
    }
    let mut out = String::with_capacity(buf.len() + 32);
    match frame {
        Frame::Root | Frame::Other | Frame::Image | Frame::Cell => out = buf,
        Frame::Paragraph => {
            out.push_str(&buf);
            out.push_str("\n\n");
        }
        Frame::HtmlBlock => {
            out.push_str(&buf);
            out.push_str("\n\n");
        }
        Frame::Heading(level) => {
            let _ = write!(out, "\n#heading(level: {level})[{buf}]\n\n");
        }
        Frame::BlockQuote => {
            let _ = write!(out, "\n#quote(block: true)[{buf}]\n\n");
        }
        Frame::CodeBlock(code) => {
            out.push_str("\n#raw(block: true, ");
            string_literal(code.trim_end_matches('\n'), &mut out);
            out.push_str(")\n\n");
        }
        Frame::List { start, items } => {
            match start {
                // typst numbers are i64; no real list starts anywhere near the clamp.
                Some(n) => {
                    let _ = write!(out, "\n#enum(start: {}", n.min(1_000_000_000));
                }
                None => out.push_str("\n#list("),
            }
            for item in items {
                if start.is_some() || !out.ends_with('(') {
                    out.push_str(", ");
                }
                let _ = write!(out, "[{item}]");
            }
            out.push_str(")\n\n");
            out.push_str(&buf);
        }
        Frame::Item => out = buf,
        Frame::Table {
            aligns,
            header,
            rows,
        } => write_table(&mut out, &aligns, header, rows),
        Frame::Row(cells) => return Rendered::Row(cells),
        Frame::Emphasis => {
            let _ = write!(out, "#emph[{buf}]");
        }
        Frame::Strong => {
            let _ = write!(out, "#strong[{buf}]");
        }
        Frame::Strikethrough => {
            let _ = write!(out, "#strike[{buf}]");
        }
        Frame::Link(url) => write_link(&mut out, &url, &buf),
    }
    Rendered::Content(out)
}

/// A link shows its text followed by the URL, so the printed page keeps the destination. Only
/// web and mail links are clickable.
fn write_link(out: &mut String, url: &str, text_markup: &str) {
    let mut url_markup = String::with_capacity(url.len() + 8);
    escape_verbatim(url, &mut url_markup);
    let text_is_url = text_markup.is_empty() || text_markup == url_markup;
    let shown = if text_is_url {
        &url_markup
    } else {
        text_markup
    };
    if is_safe_link(url) {
        out.push_str("#link(");
        string_literal(url.trim(), out);
        let _ = write!(out, ")[{shown}]");
    } else {
        out.push_str(shown);
    }
    if !text_is_url {
        let _ = write!(out, " \\({url_markup}\\)");
    }
}

fn write_table(
    out: &mut String,
    aligns: &[Alignment],
    header: Option<Vec<String>>,
    rows: Vec<Vec<String>>,
) {
    let columns = aligns.len().clamp(1, MAX_TABLE_COLUMNS);
    let _ = write!(out, "\n#table(columns: {columns}, align: (");
    for i in 0..columns {
        let align = match aligns.get(i) {
            Some(Alignment::Center) => "center",
            Some(Alignment::Right) => "right",
            _ => "left",
        };
        let _ = write!(out, "{align}, ");
    }
    out.push_str("),\n");
    if let Some(cells) = header {
        out.push_str("table.header(");
        for cell in fit_row(cells, columns) {
            let _ = write!(out, "[#strong[{cell}]], ");
        }
        out.push_str("),\n");
    }
    for row in rows {
        for cell in fit_row(row, columns) {
            let _ = write!(out, "[{cell}], ");
        }
        out.push('\n');
    }
    out.push_str(")\n\n");
}

/// Pads or folds a row to exactly `columns` cells: typst's table places cells in order, so a
/// short row would shift every later cell.
pub(crate) fn fit_row(mut cells: Vec<String>, columns: usize) -> Vec<String> {
    if cells.len() > columns {
        let extra = cells.split_off(columns);
        if let Some(last) = cells.last_mut() {
            for cell in extra {
                last.push_str(" \\| ");
                last.push_str(&cell);
            }
        }
    }
    cells.resize(columns, String::new());
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 8);
        escape_markup(text, &mut out);
        out
    }

    #[test]
    fn escapes_every_markup_character() {
        let out = escaped("#panic() $x$ @ref <label> ] [ * _ ` \\ ~ / - + = http://x");
        for c in [
            '#', '$', '@', '<', '>', '[', ']', '*', '_', '`', '~', '/', '-', '+', '=', ':',
        ] {
            assert!(
                !out.contains(&format!(" {c}")) || out.contains(&format!("\\{c}")),
                "{c} not escaped in {out}"
            );
        }
        assert!(out.starts_with("\\#panic\\(\\)"));
        assert!(out.contains("\\\\"));
    }

    #[test]
    fn newlines_never_reach_the_markup() {
        assert_eq!(escaped("a\n= b\r\n- c"), "a \\= b  \\- c");
    }

    #[test]
    fn string_literal_escapes_quotes_and_controls() {
        let mut out = String::new();
        string_literal("a\"b\\c\nd\u{1}", &mut out);
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u{1}\"");
    }

    #[test]
    fn lists_and_tables_become_calls() {
        let out = body_to_typst("- a\n- b\n\n1. x\n2. y\n\n| h | i |\n|---|--:|\n| 1 | 2 |\n");
        assert!(out.contains("#list([a], [b])"), "{out}");
        assert!(out.contains("#enum(start: 1, [x], [y])"), "{out}");
        assert!(
            out.contains("#table(columns: 2, align: (left, right, )"),
            "{out}"
        );
        assert!(
            out.contains("table.header([#strong[h]], [#strong[i]], )"),
            "{out}"
        );
    }

    #[test]
    fn deep_nesting_is_flattened() {
        let body = ">".repeat(10_000) + " deep";
        let out = body_to_typst(&body);
        assert!(out.matches("#quote").count() <= MAX_DEPTH);
        assert!(out.contains("deep"));
    }

    #[test]
    fn rows_are_fitted_to_the_column_count() {
        let cells = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(fit_row(cells(1), 3), vec!["0", "", ""]);
        assert_eq!(fit_row(cells(4), 2), vec!["0", "1 \\| 2 \\| 3"]);
    }
}
