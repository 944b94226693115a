//! Word (DOCX) rendering with docx-rs.
//!
//! Headings use styles named like Word's built-in ones ("heading 1", id `Heading1`) and carry an
//! outline level, so Word's navigation pane and table of contents pick them up. Lists use real
//! numbering definitions: one shared bullet list, and one numbering instance per numbered list so
//! each restarts at its own start value.
//!
//! Charts are not drawn: Word would need a picture (a rasteriser this crate does not carry) or
//! a DrawingML chart part (which docx-rs cannot write). A chart becomes its caption in bold and
//! a table of its data, which also keeps every number accessible to screen readers.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use docx_rs::{
    AbstractNumbering, AlignmentType, BorderType, BreakType, Docx, FieldCharType, Footer,
    Hyperlink, HyperlinkType, IndentLevel, InstrText, InstrToC, Level, LevelJc, LevelOverride,
    LevelText, LineSpacing, NumPages, NumberFormat, Numbering, NumberingId, PageMargin, PageNum,
    Paragraph, ParagraphBorder, ParagraphBorderPosition, Run, RunFonts, SpecialIndentType, Start,
    Style, StyleType, Table, TableCell, TableRow, WidthType,
};
use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

use crate::chart::{ChartTable, chart_table};
use crate::typst_markup::MAX_TABLE_COLUMNS;
use crate::{
    Block, DocsError, Document, OUTLINE_DEPTH, check_size, is_safe_link, outline, panic_message,
    parser_options,
};

/// docx-rs always writes abstract numbering 1 and numbering 1 itself; ours start after them.
const BULLET_ABSTRACT_ID: usize = 2;
const DECIMAL_ABSTRACT_ID: usize = 3;
const BULLET_NUM_ID: usize = 2;
const FIRST_DECIMAL_NUM_ID: usize = 3;

/// Word supports list levels 0–8.
const MAX_LIST_LEVEL: usize = 8;
/// One indentation step: 0.5 inch in twentieths of a point.
const INDENT_STEP: i32 = 720;
/// A4 text width with our margins, in twips: 11906 − 2 × 1247.
const TEXT_WIDTH: usize = 9412;
const MONO_FONT: &str = "Consolas";

/// Renders `doc` as a Word document.
///
/// # Errors
///
/// [`DocsError::TooLarge`] for oversized input, [`DocsError::Docx`] if the package cannot be
/// written, and [`DocsError::Panicked`] if docx-rs panics.
pub fn render_docx(doc: &Document) -> Result<Vec<u8>, DocsError> {
    check_size(doc)?;
    // docx-rs is not ours; a panic in it must not take down the caller's thread.
    catch_unwind(AssertUnwindSafe(|| build(doc))).unwrap_or_else(|payload| {
        Err(DocsError::Panicked {
            renderer: "docx",
            message: panic_message(payload.as_ref()),
        })
    })
}

fn build(doc: &Document) -> Result<Vec<u8>, DocsError> {
    let mut writer = Writer::new(base(doc));
    writer.title_block(doc);
    if doc.contents {
        writer.contents(&outline(doc));
    }
    writer.body(&doc.body_markdown);
    for block in &doc.blocks {
        match block {
            Block::Markdown(markdown) => writer.body(markdown),
            Block::Chart(chart) => writer.chart_table(&chart_table(chart)),
            Block::PageBreak => writer.page_break(),
        }
    }
    let docx = writer.finish();
    let mut out = Cursor::new(Vec::new());
    docx.pack(&mut out)
        .map_err(|err| DocsError::Docx(err.to_string()))?;
    Ok(out.into_inner())
}

/// Page setup, styles, numbering definitions and the footer.
fn base(doc: &Document) -> Docx {
    let mut docx = Docx::new()
        .page_size(11906, 16838)
        .page_margin(
            PageMargin::new()
                .top(1361)
                .bottom(1474)
                .left(1247)
                .right(1247)
                .header(709)
                .footer(709),
        )
        .default_fonts(
            RunFonts::new()
                .ascii("Calibri")
                .hi_ansi("Calibri")
                .cs("Calibri"),
        )
        .default_size(22)
        .default_line_spacing(LineSpacing::new().after(120).line(264))
        .add_abstract_numbering(bullet_numbering())
        .add_abstract_numbering(decimal_numbering())
        .add_numbering(Numbering::new(BULLET_NUM_ID, BULLET_ABSTRACT_ID))
        .footer(footer(doc.footer.as_deref()));
    for style in styles() {
        docx = docx.add_style(style);
    }
    docx
}

fn styles() -> Vec<Style> {
    let paragraph = |id: &str, name: &str| {
        Style::new(id, StyleType::Paragraph)
            .name(name)
            .based_on("Normal")
            .next("Normal")
            .q_format(true)
    };
    let mut styles = vec![
        paragraph("Title", "Title").size(52).bold(),
        paragraph("Subtitle", "Subtitle").size(28).color("595959"),
        paragraph("Quote", "Quote").italic().color("404040").indent(
            Some(INDENT_STEP),
            None,
            None,
            None,
        ),
        paragraph("ListParagraph", "List Paragraph"),
        paragraph("SourceCode", "Source Code")
            .fonts(
                RunFonts::new()
                    .ascii(MONO_FONT)
                    .hi_ansi(MONO_FONT)
                    .cs(MONO_FONT),
            )
            .size(18),
        paragraph("Footer", "footer").size(16).color("555555"),
        // Word's own name for the title of a table of contents; deliberately no outline level,
        // so the contents do not list themselves.
        paragraph("TOCHeading", "TOC Heading")
            .bold()
            .size(32)
            .color("1F3864"),
        paragraph("Caption", "caption").bold().size(22),
        Style::new("Hyperlink", StyleType::Character)
            .name("Hyperlink")
            .color("0563C1")
            .underline("single"),
    ];
    // Word's built-in contents entry styles ("toc 1"…), indented by level; Word uses them
    // again when it rebuilds the field (adding its own right-aligned page-number tab stops).
    for level in 1..=OUTLINE_DEPTH {
        let indent = INDENT_STEP / 2 * i32::try_from(level - 1).unwrap_or(0);
        styles.push(
            paragraph(&format!("TOC{level}"), &format!("toc {level}")).indent(
                Some(indent),
                None,
                None,
                None,
            ),
        );
    }
    for (level, size) in [(1, 32), (2, 28), (3, 24), (4, 22)] {
        styles.push(
            paragraph(&format!("Heading{level}"), &format!("heading {level}"))
                .bold()
                .size(size)
                .color("1F3864")
                // Outline level is what makes Word list the heading in the navigation pane.
                .outline_lvl(level - 1),
        );
    }
    styles
}

fn bullet_numbering() -> AbstractNumbering {
    let bullets = ["\u{2022}", "\u{25E6}", "\u{25AA}"];
    (0..=MAX_LIST_LEVEL).fold(AbstractNumbering::new(BULLET_ABSTRACT_ID), |abs, level| {
        abs.add_level(list_level(
            level,
            "bullet",
            bullets[level % bullets.len()].to_owned(),
        ))
    })
}

fn decimal_numbering() -> AbstractNumbering {
    let formats = ["decimal", "lowerLetter", "lowerRoman"];
    (0..=MAX_LIST_LEVEL).fold(AbstractNumbering::new(DECIMAL_ABSTRACT_ID), |abs, level| {
        abs.add_level(list_level(
            level,
            formats[level % formats.len()],
            format!("%{}.", level + 1),
        ))
    })
}

fn list_level(level: usize, format: &str, text: String) -> Level {
    let left = INDENT_STEP * (i32::try_from(level).unwrap_or(0) + 1);
    Level::new(
        level,
        Start::new(1),
        NumberFormat::new(format),
        LevelText::new(text),
        LevelJc::new("left"),
    )
    .indent(
        Some(left),
        Some(SpecialIndentType::Hanging(360)),
        None,
        None,
    )
}

fn footer(text: Option<&str>) -> Footer {
    let mut footer = Footer::new();
    if let Some(text) = text {
        footer = footer.add_paragraph(
            Paragraph::new()
                .style("Footer")
                .add_run(Run::new().add_text(xml_text(text))),
        );
    }
    footer.add_paragraph(
        Paragraph::new()
            .style("Footer")
            .align(AlignmentType::Right)
            .add_run(Run::new().add_text("Page "))
            .add_page_num(PageNum::new())
            .add_run(Run::new().add_text(" of "))
            .add_num_pages(NumPages::new()),
    )
}

/// XML 1.0 forbids most control characters, and Word refuses a file containing them; line breaks
/// inside a run mean nothing to Word either. All become spaces.
fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

struct ListLevelState {
    num_id: usize,
    /// The next paragraph is the first of an item and gets the bullet or number.
    pending_marker: bool,
}

struct TableState {
    columns: usize,
    rows: Vec<TableRow>,
    cells: Vec<TableCell>,
    cell_paragraphs: Vec<Paragraph>,
    in_head: bool,
}

struct OpenLink {
    url: String,
    runs: Vec<Run>,
    text: String,
}

/// Walks the Markdown events, keeping just enough state to style each paragraph and run.
struct Writer {
    docx: Docx,
    paragraph: Option<Paragraph>,
    link: Option<OpenLink>,
    bold: usize,
    italic: usize,
    strike: usize,
    heading: Option<usize>,
    quote_depth: usize,
    lists: Vec<ListLevelState>,
    table: Option<TableState>,
    code: Option<String>,
    next_num_id: usize,
    /// Nothing has been written since the last page break (or the document start).
    at_page_start: bool,
    /// Level 1–3 headings written so far; the next one's bookmark id.
    outline_headings: usize,
    /// The bookmark the open heading paragraph started.
    heading_bookmark: Option<usize>,
    /// A page break waits for the next content: written before it, it can never make an empty
    /// page, whether breaks repeat or end the document (as typst's weak page breaks in the
    /// PDF).
    pending_break: bool,
}

impl Writer {
    fn new(docx: Docx) -> Self {
        Self {
            docx,
            paragraph: None,
            link: None,
            bold: 0,
            italic: 0,
            strike: 0,
            heading: None,
            quote_depth: 0,
            lists: Vec::new(),
            table: None,
            code: None,
            next_num_id: FIRST_DECIMAL_NUM_ID,
            at_page_start: true,
            outline_headings: 0,
            heading_bookmark: None,
            pending_break: false,
        }
    }

    fn finish(mut self) -> Docx {
        self.close_paragraph();
        if self.table.is_some() {
            self.end_table();
        }
        self.docx
    }

    fn title_block(&mut self, doc: &Document) {
        self.push_paragraph(
            Paragraph::new()
                .style("Title")
                .add_run(Run::new().add_text(xml_text(&doc.title))),
        );
        if let Some(subtitle) = &doc.subtitle {
            self.push_paragraph(
                Paragraph::new()
                    .style("Subtitle")
                    .add_run(Run::new().add_text(xml_text(subtitle))),
            );
        }
        if !doc.meta.is_empty() {
            let key_width = 2600;
            let rows = doc
                .meta
                .iter()
                .map(|(key, value)| {
                    TableRow::new(vec![
                        TableCell::new()
                            .width(key_width, WidthType::Dxa)
                            .add_paragraph(
                                Paragraph::new().add_run(Run::new().add_text(xml_text(key)).bold()),
                            ),
                        TableCell::new()
                            .width(TEXT_WIDTH - key_width, WidthType::Dxa)
                            .add_paragraph(
                                Paragraph::new().add_run(Run::new().add_text(xml_text(value))),
                            ),
                    ])
                })
                .collect();
            let table = Table::new(rows).set_grid(vec![key_width, TEXT_WIDTH - key_width]);
            self.docx = std::mem::take(&mut self.docx).add_table(table);
        }
        self.push_paragraph(rule());
    }

    /// A contents title, a Word table of contents field, and a page break.
    ///
    /// The field's cached result lists `headings` (level 1–3), each a link to a bookmark on its
    /// heading, so the contents read correctly in any viewer. Page numbers are left out of the
    /// cached result because only a layout engine knows them; the field is marked dirty, so
    /// Word rebuilds it with page numbers when the document is opened (after asking).
    /// docx-rs's own automatic table of contents is not used: it caches "1" as every page
    /// number and places the number's tab stop off the page.
    fn contents(&mut self, headings: &[(usize, String)]) {
        self.push_paragraph(
            Paragraph::new()
                .style("TOCHeading")
                .add_run(Run::new().add_text("Contents")),
        );
        let begin = Run::new()
            .add_field_char(FieldCharType::Begin, true)
            .add_instr_text(InstrText::TOC(
                InstrToC::new()
                    .heading_styles_range(1, OUTLINE_DEPTH)
                    .hyperlink(),
            ))
            .add_field_char(FieldCharType::Separate, false);
        let end = Run::new().add_field_char(FieldCharType::End, false);
        let last = headings.len().saturating_sub(1);
        let mut paragraphs = Vec::with_capacity(headings.len().max(1));
        for i in 0..=last {
            let level = headings.get(i).map_or(1, |(level, _)| *level);
            let mut paragraph = Paragraph::new().style(&format!("TOC{level}"));
            if i == 0 {
                paragraph = paragraph.add_run(begin.clone());
            }
            if let Some((_, text)) = headings.get(i) {
                paragraph = paragraph.add_hyperlink(
                    Hyperlink::new(bookmark_name(i + 1), HyperlinkType::Anchor)
                        .add_run(Run::new().add_text(xml_text(text))),
                );
            }
            if i == last {
                paragraph = paragraph.add_run(end.clone());
            }
            paragraphs.push(paragraph);
        }
        for paragraph in paragraphs {
            self.push_paragraph(paragraph);
        }
        self.page_break();
    }

    /// Parses one Markdown text and leaves no state open, so the next block starts clean.
    fn body(&mut self, markdown: &str) {
        for event in Parser::new_ext(markdown, parser_options()) {
            self.event(event);
        }
        self.close_paragraph();
        if self.table.is_some() {
            self.end_table();
        }
        self.lists.clear();
        self.quote_depth = 0;
        (self.bold, self.italic, self.strike) = (0, 0, 0);
        self.heading = None;
        self.code = None;
    }

    /// A page break before whatever comes next, unless nothing was written since the last one.
    fn page_break(&mut self) {
        self.close_paragraph();
        if !self.at_page_start {
            self.pending_break = true;
            self.at_page_start = true;
        }
    }

    /// Adds a table to the body, after any pending page break.
    fn add_table(&mut self, table: Table) {
        if std::mem::take(&mut self.pending_break) {
            // A table cannot start a page by itself; an empty paragraph holding the break can.
            self.docx = std::mem::take(&mut self.docx)
                .add_paragraph(Paragraph::new().add_run(Run::new().add_break(BreakType::Page)));
        }
        self.docx = std::mem::take(&mut self.docx).add_table(table);
        self.at_page_start = false;
    }

    /// A chart's caption and data table.
    fn chart_table(&mut self, table: &ChartTable) {
        self.close_paragraph();
        if !table.caption.trim().is_empty() {
            self.push_paragraph(
                Paragraph::new()
                    .style("Caption")
                    .keep_next(true)
                    .add_run(Run::new().add_text(xml_text(&table.caption))),
            );
        }
        let columns = table.header.len().clamp(1, MAX_TABLE_COLUMNS);
        let width = TEXT_WIDTH / columns;
        let row = |cells: &[String], bold: bool| {
            let mut cells: Vec<TableCell> = cells
                .iter()
                .take(columns)
                .map(|text| {
                    let mut run = Run::new().add_text(xml_text(text));
                    if bold {
                        run = run.bold();
                    }
                    TableCell::new()
                        .width(width, WidthType::Dxa)
                        .add_paragraph(Paragraph::new().add_run(run))
                })
                .collect();
            while cells.len() < columns {
                cells.push(
                    TableCell::new()
                        .width(width, WidthType::Dxa)
                        .add_paragraph(Paragraph::new()),
                );
            }
            TableRow::new(cells)
        };
        let rows = std::iter::once(row(&table.header, true))
            .chain(table.rows.iter().map(|cells| row(cells, false)))
            .collect();
        self.add_table(Table::new(rows).set_grid(vec![width; columns]));
        // Word merges two tables with nothing between them; an empty paragraph keeps a chart's
        // table apart from a Markdown table that follows.
        self.push_paragraph(Paragraph::new());
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => {
                if let Some(code) = &mut self.code {
                    code.push_str(&text);
                } else {
                    self.text(&text);
                }
            }
            Event::Code(code) => {
                let run = self.styled(Run::new().add_text(xml_text(&code))).fonts(
                    RunFonts::new()
                        .ascii(MONO_FONT)
                        .hi_ansi(MONO_FONT)
                        .cs(MONO_FONT),
                );
                self.add_run(run, &code);
            }
            Event::Html(html) | Event::InlineHtml(html) => self.text(&html),
            Event::InlineMath(math) | Event::DisplayMath(math) => self.text(&math),
            Event::FootnoteReference(label) => self.text(&format!("[^{label}]")),
            Event::SoftBreak => self.text(" "),
            Event::HardBreak => self.add_run(Run::new().add_break(BreakType::TextWrapping), ""),
            Event::Rule => {
                self.close_paragraph();
                self.push_paragraph(rule());
            }
            Event::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock => self.open_paragraph(),
            Tag::Heading { level, .. } => {
                self.close_paragraph();
                let level = match level {
                    HeadingLevel::H1 => 1,
                    HeadingLevel::H2 => 2,
                    HeadingLevel::H3 => 3,
                    _ => 4,
                };
                self.heading = Some(level);
                self.open_paragraph();
                if level <= OUTLINE_DEPTH {
                    // Counted exactly as `outline` counts, so entry n of the contents links to
                    // heading n.
                    self.outline_headings += 1;
                    let id = self.outline_headings;
                    self.heading_bookmark = Some(id);
                    if let Some(paragraph) = self.paragraph.take() {
                        self.paragraph = Some(paragraph.add_bookmark_start(id, bookmark_name(id)));
                    }
                }
            }
            Tag::BlockQuote(_) => {
                self.close_paragraph();
                self.quote_depth += 1;
            }
            Tag::CodeBlock(_) => {
                self.close_paragraph();
                self.code = Some(String::new());
            }
            Tag::List(start) => {
                self.close_paragraph();
                let num_id = match start {
                    None => BULLET_NUM_ID,
                    Some(start) => self.new_numbering(start),
                };
                self.lists.push(ListLevelState {
                    num_id,
                    pending_marker: false,
                });
            }
            Tag::Item => {
                self.close_paragraph();
                if let Some(list) = self.lists.last_mut() {
                    list.pending_marker = true;
                }
            }
            Tag::Table(aligns) => {
                self.close_paragraph();
                // A table inside a table cannot come from GFM; if one did, keep the outer one.
                if self.table.is_none() {
                    self.table = Some(TableState {
                        columns: aligns.len().clamp(1, MAX_TABLE_COLUMNS),
                        rows: Vec::new(),
                        cells: Vec::new(),
                        cell_paragraphs: Vec::new(),
                        in_head: false,
                    });
                }
            }
            Tag::TableHead => {
                if let Some(table) = &mut self.table {
                    table.in_head = true;
                }
            }
            Tag::Emphasis => self.italic += 1,
            Tag::Strong => self.bold += 1,
            Tag::Strikethrough => self.strike += 1,
            Tag::Link { dest_url, .. } => {
                self.flush_link();
                self.link = Some(OpenLink {
                    url: dest_url.into_string(),
                    runs: Vec::new(),
                    text: String::new(),
                });
            }
            // Images are never loaded: their alt text arrives as ordinary text events.
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock => self.close_paragraph(),
            TagEnd::Heading(_) => {
                self.flush_link();
                if let Some(id) = self.heading_bookmark.take()
                    && let Some(paragraph) = self.paragraph.take()
                {
                    self.paragraph = Some(paragraph.add_bookmark_end(id));
                }
                self.close_paragraph();
                self.heading = None;
            }
            TagEnd::BlockQuote(_) => {
                self.close_paragraph();
                self.quote_depth = self.quote_depth.saturating_sub(1);
            }
            TagEnd::CodeBlock => {
                let code = self.code.take().unwrap_or_default();
                let mut paragraph = self.new_paragraph().style("SourceCode");
                for (i, line) in code.trim_end_matches('\n').split('\n').enumerate() {
                    let mut run = Run::new();
                    if i > 0 {
                        run = run.add_break(BreakType::TextWrapping);
                    }
                    paragraph = paragraph.add_run(run.add_text(xml_text(line)));
                }
                self.push_paragraph(paragraph);
            }
            TagEnd::List(_) => {
                self.close_paragraph();
                self.lists.pop();
            }
            TagEnd::Item => self.close_paragraph(),
            TagEnd::Table => self.end_table(),
            TagEnd::TableHead | TagEnd::TableRow => self.end_row(),
            TagEnd::TableCell => self.end_cell(),
            TagEnd::Emphasis => self.italic = self.italic.saturating_sub(1),
            TagEnd::Strong => self.bold = self.bold.saturating_sub(1),
            TagEnd::Strikethrough => self.strike = self.strike.saturating_sub(1),
            TagEnd::Link => self.flush_link(),
            _ => {}
        }
    }

    fn new_numbering(&mut self, start: u64) -> usize {
        let id = self.next_num_id;
        self.next_num_id += 1;
        let level = self.lists.len().min(MAX_LIST_LEVEL);
        let start = usize::try_from(start.min(1_000_000_000)).unwrap_or(1);
        self.docx = std::mem::take(&mut self.docx).add_numbering(
            Numbering::new(id, DECIMAL_ABSTRACT_ID)
                .add_override(LevelOverride::new(level).start(start)),
        );
        id
    }

    /// A paragraph styled for where we are: heading, list item, continuation or quote.
    fn new_paragraph(&mut self) -> Paragraph {
        let mut paragraph = Paragraph::new();
        if let Some(level) = self.heading {
            return paragraph.style(&format!("Heading{level}"));
        }
        let level = self.lists.len().saturating_sub(1).min(MAX_LIST_LEVEL);
        if let Some(list) = self.lists.last_mut() {
            if list.pending_marker {
                list.pending_marker = false;
                paragraph = paragraph
                    .style("ListParagraph")
                    .numbering(NumberingId::new(list.num_id), IndentLevel::new(level));
            } else {
                let left = INDENT_STEP * (i32::try_from(level).unwrap_or(0) + 1);
                paragraph = paragraph
                    .style("ListParagraph")
                    .indent(Some(left), None, None, None);
            }
        } else if self.quote_depth > 0 && self.table.is_none() {
            let depth = i32::try_from(self.quote_depth.min(MAX_LIST_LEVEL)).unwrap_or(1);
            paragraph =
                paragraph
                    .style("Quote")
                    .indent(Some(INDENT_STEP * depth), None, None, None);
        }
        paragraph
    }

    fn open_paragraph(&mut self) {
        if self.paragraph.is_none() {
            self.paragraph = Some(self.new_paragraph());
        }
    }

    fn close_paragraph(&mut self) {
        self.flush_link();
        if let Some(paragraph) = self.paragraph.take() {
            self.push_paragraph(paragraph);
        }
    }

    /// Sends a finished paragraph to the open table cell, or to the document body (starting a
    /// new page if a break is pending).
    fn push_paragraph(&mut self, paragraph: Paragraph) {
        match &mut self.table {
            Some(table) => table.cell_paragraphs.push(paragraph),
            None => {
                self.at_page_start = false;
                let mut paragraph = paragraph;
                if std::mem::take(&mut self.pending_break) {
                    // Not `page_break_before(false)` otherwise: docx-rs writes the element
                    // whenever it is set, whatever the value.
                    paragraph = paragraph.page_break_before(true);
                }
                self.docx = std::mem::take(&mut self.docx).add_paragraph(paragraph);
            }
        }
    }

    fn styled(&self, mut run: Run) -> Run {
        let in_head = self.table.as_ref().is_some_and(|t| t.in_head);
        if self.bold > 0 || in_head {
            run = run.bold();
        }
        if self.italic > 0 {
            run = run.italic();
        }
        if self.strike > 0 {
            run = run.strike();
        }
        run
    }

    fn text(&mut self, text: &str) {
        let run = self.styled(Run::new().add_text(xml_text(text)));
        self.add_run(run, text);
    }

    fn add_run(&mut self, run: Run, text: &str) {
        if let Some(link) = &mut self.link {
            link.runs.push(run);
            link.text.push_str(text);
            return;
        }
        self.open_paragraph();
        if let Some(paragraph) = self.paragraph.take() {
            self.paragraph = Some(paragraph.add_run(run));
        }
    }

    /// Writes an open link: clickable for web and mail URLs, always followed by the URL in
    /// brackets when the text differs, so a printout keeps the destination.
    fn flush_link(&mut self) {
        let Some(link) = self.link.take() else { return };
        self.open_paragraph();
        let Some(mut paragraph) = self.paragraph.take() else {
            return;
        };
        let url = xml_text(link.url.trim());
        let text_is_url = link.text.trim().is_empty() || link.text.trim() == url;
        let runs = if link.runs.is_empty() || text_is_url {
            vec![Run::new().add_text(url.clone())]
        } else {
            link.runs
        };
        if is_safe_link(&url) {
            let hyperlink = runs.into_iter().fold(
                Hyperlink::new(url.clone(), HyperlinkType::External),
                |h, run| h.add_run(run.style("Hyperlink")),
            );
            paragraph = paragraph.add_hyperlink(hyperlink);
        } else {
            for run in runs {
                paragraph = paragraph.add_run(run);
            }
        }
        if !text_is_url {
            paragraph = paragraph.add_run(Run::new().add_text(format!(" ({url})")));
        }
        self.paragraph = Some(paragraph);
    }

    fn end_cell(&mut self) {
        self.close_paragraph();
        if let Some(table) = &mut self.table {
            let mut cell = TableCell::new();
            let paragraphs = std::mem::take(&mut table.cell_paragraphs);
            // Word needs at least one paragraph in every cell.
            if paragraphs.is_empty() {
                cell = cell.add_paragraph(Paragraph::new());
            }
            for paragraph in paragraphs {
                cell = cell.add_paragraph(paragraph);
            }
            table.cells.push(cell);
        }
    }

    fn end_row(&mut self) {
        if let Some(table) = &mut self.table {
            let mut cells = std::mem::take(&mut table.cells);
            // Like the PDF, keep every row at the header's width so columns line up.
            cells.truncate(table.columns);
            while cells.len() < table.columns {
                cells.push(TableCell::new().add_paragraph(Paragraph::new()));
            }
            let width = TEXT_WIDTH / table.columns;
            let cells = cells
                .into_iter()
                .map(|c| c.width(width, WidthType::Dxa))
                .collect();
            table.rows.push(TableRow::new(cells));
            table.in_head = false;
        }
    }

    fn end_table(&mut self) {
        self.close_paragraph();
        if let Some(table) = self.table.take() {
            let width = TEXT_WIDTH / table.columns;
            self.add_table(Table::new(table.rows).set_grid(vec![width; table.columns]));
        }
    }
}

/// The hidden bookmark on the `n`th outline heading; Word names its own `_Toc…`.
fn bookmark_name(n: usize) -> String {
    format!("_Toc_ruleiq_{n}")
}

/// An empty paragraph with a bottom border: Word's usual horizontal rule.
fn rule() -> Paragraph {
    let mut paragraph = Paragraph::new();
    paragraph.property = paragraph.property.set_border(
        ParagraphBorder::new(ParagraphBorderPosition::Bottom)
            .val(BorderType::Single)
            .size(6)
            .color("A0A0A0"),
    );
    paragraph
}
