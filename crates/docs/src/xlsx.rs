//! Spreadsheets: report data (evidence register, gap analysis, statement of applicability) as an
//! Excel workbook, written by rust_xlsxwriter entirely in memory.
//!
//! A [`Workbook`] is a title and sheets; a [`Sheet`] is named columns and rows of typed
//! [`Cell`]s. The same [`Sheet`] can be exported as CSV with [`crate::render_csv`].
//!
//! Invariants [`render_xlsx`] keeps:
//! - Text is written as a string cell, never as a formula, whatever it starts with.
//! - Sheet names are made valid and unique ([`sheet_names`]), so no title a user chose can make
//!   the export fail.
//! - Dates and times are real Excel dates with a date format, so they sort and filter as dates.
//! - Nothing that fits the limits below makes it fail: text longer than a cell holds is cut,
//!   values Excel cannot hold are written as text or left empty, and a link Excel would refuse
//!   is written as text.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, FormatBorder, Url, Worksheet};

use crate::{DocsError, MAX_HEADER_BYTES, is_safe_link, panic_message};

/// Most data rows in a sheet: Excel's 1,048,576 rows less the header row.
pub const MAX_SHEET_ROWS: usize = 1_048_575;
/// Most columns in a sheet: Excel's limit.
pub const MAX_SHEET_COLUMNS: usize = 16_384;
/// Most sheets in a workbook. Excel has no fixed limit; a report has a handful.
pub const MAX_SHEETS: usize = 256;
/// Most cells (headers included) in a workbook, or in one CSV file. rust_xlsxwriter holds the
/// whole workbook in memory at a few dozen bytes a cell; this keeps one export well under a GiB
/// and a few seconds, and is far above any register ruleIQ holds.
pub const MAX_CELLS: usize = 5_000_000;
/// Most characters (UTF-16 code units, as Excel counts) in one cell; longer text is cut to this,
/// ending in "…".
pub const MAX_CELL_CHARS: usize = 32_767;
/// Longest sheet name Excel accepts, in UTF-16 code units.
const MAX_SHEET_NAME: usize = 31;
/// Excel keeps at most this many hyperlinks in a sheet; later links are written as text.
const MAX_LINKS_PER_SHEET: usize = 65_530;
/// Integers of this magnitude and above are written as text: Excel keeps 15 significant digits
/// and would silently round, say, a 16-digit reference number.
const MAX_EXACT_INTEGER: u64 = 1_000_000_000_000_000;
/// Auto-fitted column widths look at this many rows (the ones a reader sees first), so a big
/// sheet does not pay for measuring every cell...
const AUTOFIT_ROWS: u32 = 1_000;
/// ...and stop at this width in pixels (about 60 characters), so one long description does not
/// make a column wider than the screen.
const AUTOFIT_MAX_PIXELS: u32 = 420;
/// Excel's largest column width, in characters.
const MAX_COLUMN_WIDTH: f64 = 255.0;

/// An Excel workbook.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workbook {
    /// Stored as the document title property (File › Info in Excel).
    pub title: String,
    /// In tab order. A workbook without sheets gets one empty sheet, as Excel needs one.
    pub sheets: Vec<Sheet>,
}

/// One sheet: a bold, frozen header row with a filter, then the rows.
///
/// Rows need not match the columns: a shorter row is padded with empty cells, and a longer one
/// gets unnamed extra columns, so no data is dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sheet {
    /// The tab name; made valid for Excel by [`sheet_names`]. Not used by CSV.
    pub name: String,
    /// The header row, left to right.
    pub columns: Vec<Column>,
    /// The data rows, top to bottom.
    pub rows: Vec<Vec<Cell>>,
}

/// A column's header and width.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Column {
    /// Printed in bold in the frozen first row.
    pub header: String,
    /// Width in characters (Excel's unit, clamped to 0–255); `None` fits the header and the
    /// first rows' contents, up to about 60 characters.
    pub width: Option<f64>,
}

impl Column {
    /// A column with `header` and a fitted width.
    pub fn new(header: impl Into<String>) -> Self {
        Self {
            header: header.into(),
            width: None,
        }
    }

    /// The same column, `width` characters wide.
    #[must_use]
    pub fn with_width(self, width: f64) -> Self {
        Self {
            width: Some(width),
            ..self
        }
    }
}

/// One cell's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Cell {
    /// A string, always stored as text: `=SUM(A1)` is shown, never calculated.
    Text(String),
    /// A number in Excel's General format. NaN and infinities, which Excel cannot store, leave
    /// the cell empty.
    Number(f64),
    /// A whole number, shown without decimals; from 10¹⁵ in magnitude written as text, since
    /// Excel would round it.
    Integer(i64),
    /// A date, as an Excel date formatted `yyyy-mm-dd`. Dates Excel cannot show (before 1900 or
    /// after 9999) are written as ISO 8601 text.
    Date(NaiveDate),
    /// A moment, as an Excel date-time in UTC formatted `yyyy-mm-dd hh:mm:ss`; outside Excel's
    /// range, ISO 8601 text.
    DateTime(DateTime<Utc>),
    /// TRUE or FALSE.
    Bool(bool),
    /// Nothing.
    #[default]
    Empty,
    /// A hyperlink showing `text` (or the URL when `text` is empty). Only `http`, `https` and
    /// `mailto` URLs become clickable; any other is written as "text (url)".
    Link {
        /// The destination.
        url: String,
        /// What the cell shows.
        text: String,
    },
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<f64> for Cell {
    fn from(number: f64) -> Self {
        Self::Number(number)
    }
}

impl From<i64> for Cell {
    fn from(number: i64) -> Self {
        Self::Integer(number)
    }
}

impl From<bool> for Cell {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<NaiveDate> for Cell {
    fn from(date: NaiveDate) -> Self {
        Self::Date(date)
    }
}

impl From<DateTime<Utc>> for Cell {
    fn from(moment: DateTime<Utc>) -> Self {
        Self::DateTime(moment)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Empty, Into::into)
    }
}

impl Sheet {
    /// How many columns the sheet really has: the header's, or the longest row's if longer.
    pub(crate) fn width(&self) -> usize {
        self.rows
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(self.columns.len())
    }

    /// Cells including the header row, as counted against [`MAX_CELLS`].
    pub(crate) fn cells(&self) -> usize {
        self.columns.len() + self.rows.iter().map(Vec::len).sum::<usize>()
    }

    /// Rejects a sheet over Excel's row or column limit or over [`MAX_CELLS`].
    pub(crate) fn check_size(&self) -> Result<(), DocsError> {
        DocsError::check("sheet", self.rows.len(), MAX_SHEET_ROWS, "rows")?;
        DocsError::check("sheet", self.width(), MAX_SHEET_COLUMNS, "columns")?;
        DocsError::check("sheet", self.cells(), MAX_CELLS, "cells")
    }
}

/// Renders `workbook` as an XLSX file.
///
/// # Errors
///
/// [`DocsError::TooLarge`] over [`MAX_SHEETS`], [`MAX_SHEET_ROWS`], [`MAX_SHEET_COLUMNS`],
/// [`MAX_CELLS`] or a title over [`MAX_HEADER_BYTES`]; [`DocsError::Xlsx`] if rust_xlsxwriter
/// refuses the workbook (a bug here, since input is made valid first); [`DocsError::Panicked`]
/// if it panics.
pub fn render_xlsx(workbook: &Workbook) -> Result<Vec<u8>, DocsError> {
    DocsError::check("title", workbook.title.len(), MAX_HEADER_BYTES, "bytes")?;
    DocsError::check("workbook", workbook.sheets.len(), MAX_SHEETS, "sheets")?;
    for sheet in &workbook.sheets {
        sheet.check_size()?;
    }
    let cells = workbook.sheets.iter().map(Sheet::cells).sum();
    DocsError::check("workbook", cells, MAX_CELLS, "cells")?;
    // rust_xlsxwriter is not ours; a panic in it must not take down the caller's thread.
    catch_unwind(AssertUnwindSafe(|| build(workbook))).unwrap_or_else(|payload| {
        Err(DocsError::Panicked {
            renderer: "xlsx",
            message: panic_message(payload.as_ref()),
        })
    })
}

/// The cell formats, made once per workbook.
struct Formats {
    header: Format,
    date: Format,
    datetime: Format,
    integer: Format,
}

fn build(workbook: &Workbook) -> Result<Vec<u8>, DocsError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    book.set_properties(&DocProperties::new().set_title(clean_text(&workbook.title)));
    let formats = Formats {
        header: Format::new()
            .set_bold()
            .set_border_bottom(FormatBorder::Thin),
        date: Format::new().set_num_format("yyyy-mm-dd"),
        datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        integer: Format::new().set_num_format("0"),
    };
    let names = sheet_names(workbook.sheets.iter().map(|s| s.name.as_str()));
    for (sheet, name) in workbook.sheets.iter().zip(names) {
        let worksheet = book.add_worksheet();
        worksheet.set_name(name).map_err(xlsx_error)?;
        write_sheet(worksheet, sheet, &formats)?;
    }
    if workbook.sheets.is_empty() {
        book.add_worksheet();
    }
    book.save_to_buffer().map_err(xlsx_error)
}

fn xlsx_error(err: rust_xlsxwriter::XlsxError) -> DocsError {
    DocsError::Xlsx(err.to_string())
}

fn write_sheet(ws: &mut Worksheet, sheet: &Sheet, formats: &Formats) -> Result<(), DocsError> {
    let width = sheet.width();
    // Both fit: check_size capped rows at 1,048,575 and columns at 16,384.
    let last_row = u32::try_from(sheet.rows.len()).map_err(|_| too_many("rows"))?;
    let columns = u16::try_from(width).map_err(|_| too_many("columns"))?;

    for (col, column) in (0..columns).zip(&sheet.columns) {
        ws.write_string_with_format(0, col, cell_text(&column.header), &formats.header)
            .map_err(xlsx_error)?;
    }
    let mut links = 0;
    for (row, cells) in (1..).zip(&sheet.rows) {
        for (col, cell) in (0..columns).zip(cells) {
            write_cell(ws, row, col, cell, formats, &mut links)?;
        }
    }

    if columns > 0 {
        ws.set_freeze_panes(1, 0).map_err(xlsx_error)?;
        ws.autofilter(0, 0, last_row, columns - 1)
            .map_err(xlsx_error)?;
    }
    if (0..width).any(|i| sheet.columns.get(i).and_then(|c| c.width).is_none()) {
        ws.set_autofit_max_row(AUTOFIT_ROWS);
        ws.set_autofit_max_width(AUTOFIT_MAX_PIXELS);
        ws.autofit();
    }
    // After autofit, which sets every column: explicit widths win.
    for (col, column) in (0..columns).zip(&sheet.columns) {
        if let Some(w) = column.width.filter(|w| !w.is_nan()) {
            ws.set_column_width(col, w.clamp(0.0, MAX_COLUMN_WIDTH))
                .map_err(xlsx_error)?;
        }
    }
    Ok(())
}

fn too_many(unit: &'static str) -> DocsError {
    DocsError::Xlsx(format!("too many {unit} for a worksheet"))
}

fn write_cell(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    cell: &Cell,
    formats: &Formats,
    links: &mut usize,
) -> Result<(), DocsError> {
    let result = match cell {
        Cell::Text(text) => ws.write_string(row, col, cell_text(text)),
        Cell::Number(n) if n.is_finite() => ws.write_number(row, col, *n),
        Cell::Number(_) | Cell::Empty => return Ok(()),
        Cell::Integer(i) if i.unsigned_abs() < MAX_EXACT_INTEGER => {
            ws.write_number_with_format(row, col, *i as f64, &formats.integer)
        }
        Cell::Integer(i) => ws.write_string(row, col, i.to_string()),
        Cell::Date(date) => match excel_date(*date) {
            Some(dt) => ws.write_datetime_with_format(row, col, dt, &formats.date),
            None => ws.write_string(row, col, date.format("%Y-%m-%d").to_string()),
        },
        Cell::DateTime(moment) => match excel_datetime(*moment) {
            Some(dt) => ws.write_datetime_with_format(row, col, dt, &formats.datetime),
            None => ws.write_string(row, col, moment.to_rfc3339()),
        },
        Cell::Bool(b) => ws.write_boolean(row, col, *b),
        Cell::Link { url, text } => {
            let shown = if text.trim().is_empty() { url } else { text };
            let clickable = is_safe_link(url)
                && *links < MAX_LINKS_PER_SHEET
                && ws
                    .write_url_with_text(row, col, Url::new(url.trim()), cell_text(shown))
                    .is_ok();
            if clickable {
                *links += 1;
                return Ok(());
            }
            ws.write_string(row, col, cell_text(&link_text(url, text)))
        }
    };
    result.map(|_| ()).map_err(xlsx_error)
}

/// A link as plain text: its text, then the URL in brackets when they differ.
pub(crate) fn link_text(url: &str, text: &str) -> String {
    if text.trim().is_empty() || text.trim() == url.trim() {
        url.to_owned()
    } else {
        format!("{text} ({url})")
    }
}

/// Text cut to [`MAX_CELL_CHARS`] UTF-16 units, ending in "…" when cut.
fn cell_text(text: &str) -> String {
    if text.len() <= MAX_CELL_CHARS {
        // At most one UTF-16 unit per byte.
        return text.to_owned();
    }
    let mut units = 0;
    let mut out = String::with_capacity(MAX_CELL_CHARS);
    for c in text.chars() {
        units += c.len_utf16();
        if units > MAX_CELL_CHARS - 1 {
            out.push('…');
            return out;
        }
        out.push(c);
    }
    out
}

/// Control characters (which XML 1.0 forbids in most places) become spaces.
fn clean_text(text: &str) -> String {
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

/// `date` as an Excel date, if Excel can show it (1900-01-01 to 9999-12-31).
fn excel_date(date: NaiveDate) -> Option<ExcelDateTime> {
    let year = u16::try_from(date.year()).ok()?;
    let month = u8::try_from(date.month()).ok()?;
    let day = u8::try_from(date.day()).ok()?;
    if !(1900..=9999).contains(&year) {
        return None;
    }
    ExcelDateTime::from_ymd(year, month, day).ok()
}

fn excel_datetime(moment: DateTime<Utc>) -> Option<ExcelDateTime> {
    let time = moment.time();
    let hour = u16::try_from(time.hour()).ok()?;
    let minute = u8::try_from(time.minute()).ok()?;
    // A leap second (nanoseconds past 10⁹) would be second 60, which Excel refuses: it is
    // folded into second 59.
    let seconds = f64::from(time.second()) + f64::from(time.nanosecond().min(999_999_999)) / 1e9;
    excel_date(moment.date_naive())?
        .and_hms(hour, minute, seconds)
        .ok()
}

/// Valid, unique Excel sheet names for `names`, in order.
///
/// Excel's rules: 1–31 UTF-16 units; none of `[ ] : * ? / \`; no apostrophe first or last; not
/// "History" (reserved); unique ignoring case. Brackets become parentheses and the other
/// forbidden characters dashes, control characters spaces; an empty name becomes "Sheet n"; a
/// repeated one gets " (2)", " (3)"… within the 31 units.
pub fn sheet_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::from(["history".to_owned()]);
    // Per base name, the next suffix to try, so many equal names cost linear time.
    let mut next_suffix: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let cleaned: String = name
            .chars()
            .map(|c| match c {
                '[' => '(',
                ']' => ')',
                ':' | '*' | '?' | '/' | '\\' => '-',
                c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => ' ',
                c => c,
            })
            .collect();
        let base = trim_name(&cleaned, MAX_SHEET_NAME);
        let base = if base.is_empty() {
            format!("Sheet {}", i + 1)
        } else {
            base
        };
        let mut candidate = base.clone();
        let key = base.to_lowercase();
        while taken.contains(&candidate.to_lowercase()) {
            let n = next_suffix.entry(key.clone()).or_insert(2);
            let suffix = format!(" ({n})");
            *n += 1;
            candidate = trim_name(&base, MAX_SHEET_NAME.saturating_sub(suffix.len())) + &suffix;
        }
        taken.insert(candidate.to_lowercase());
        out.push(candidate);
    }
    out
}

/// `name` cut to `max` UTF-16 units, without surrounding whitespace or apostrophes.
fn trim_name(name: &str, max: usize) -> String {
    let mut units = 0;
    let cut: String = name
        .trim()
        .chars()
        .take_while(|c| {
            units += c.len_utf16();
            units <= max
        })
        .collect();
    cut.trim_matches(|c: char| c == '\'' || c.is_whitespace())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_follow_excel_rules() {
        let long = "A very long sheet name that Excel would refuse outright";
        let names = sheet_names([
            "Gap analysis: ISO/IEC 27001 [draft]",
            "",
            "'quoted'",
            "History",
            "gap analysis- iso-iec 27001 (draft)",
            long,
            long,
            "tab\there",
            "'''",
        ]);
        assert_eq!(
            names,
            [
                "Gap analysis- ISO-IEC 27001 (dr",
                "Sheet 2",
                "quoted",
                "History (2)",
                "gap analysis- iso-iec 27001 (2)",
                "A very long sheet name that Exc",
                "A very long sheet name that (2)",
                "tab here",
                "Sheet 9",
            ]
        );
    }

    #[test]
    fn every_sheet_name_is_valid_and_unique() {
        let names = sheet_names(["x"; 300].iter().copied().chain(["😀".repeat(40).as_str()]));
        let mut seen = HashSet::new();
        for name in &names {
            assert!(
                !name.is_empty() && name.encode_utf16().count() <= 31,
                "{name}"
            );
            assert!(
                !name.contains(['[', ']', ':', '*', '?', '/', '\\']),
                "{name}"
            );
            assert!(!name.starts_with('\'') && !name.ends_with('\''), "{name}");
            assert!(seen.insert(name.to_lowercase()), "duplicate {name}");
        }
    }

    #[test]
    fn long_text_is_cut_to_a_cell() {
        let text = "é".repeat(MAX_CELL_CHARS + 10);
        let cut = cell_text(&text);
        assert_eq!(cut.encode_utf16().count(), MAX_CELL_CHARS);
        assert!(cut.ends_with('…'));
        let emoji = "😀".repeat(MAX_CELL_CHARS);
        assert!(cell_text(&emoji).encode_utf16().count() <= MAX_CELL_CHARS);
        assert_eq!(cell_text("short"), "short");
    }
}
