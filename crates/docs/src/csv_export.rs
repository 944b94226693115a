//! CSV export of one [`Sheet`], for people who open it in a spreadsheet and for tools that
//! import it.
//!
//! Choices, all for Excel, the program most of these files end up in:
//! - UTF-8 with a byte-order mark. Without it Excel reads the file in the local ANSI code page
//!   and mangles every non-ASCII character; other readers (the `csv` crate, pandas, LibreOffice)
//!   skip or accept it. It also stops Excel mistaking a file whose first header is "ID" for SYLK.
//! - Comma separated, CRLF line ends (RFC 4180), fields quoted only where needed.
//! - Spreadsheet formula injection is neutralised (OWASP "CSV Injection"): a text field that
//!   starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, which makes
//!   spreadsheets show it as text. Typed numbers are not touched (a negative number is a number),
//!   and text is otherwise unchanged, so a program reading the file sees the data plus at most
//!   that one apostrophe.
//! - Dates are ISO 8601 (`2025-03-01`), date-times `2025-03-01 14:30:00` in UTC (the form Excel
//!   recognises), booleans `TRUE`/`FALSE`, links "text (url)".

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::xlsx::{Cell, Sheet, link_text};
use crate::{DocsError, panic_message};

/// The UTF-8 byte-order mark that tells Excel the file is UTF-8.
pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Renders `sheet` as CSV: a byte-order mark, the header row, then the rows, every row padded
/// to the sheet's width. The sheet's name is not part of a CSV file.
///
/// # Errors
///
/// [`DocsError::TooLarge`] over the same row, column and cell limits as
/// [`crate::render_xlsx`] (so the file opens whole in Excel), [`DocsError::Csv`] if the writer
/// fails, and [`DocsError::Panicked`] if it panics.
pub fn render_csv(sheet: &Sheet) -> Result<Vec<u8>, DocsError> {
    sheet.check_size()?;
    catch_unwind(AssertUnwindSafe(|| write(sheet))).unwrap_or_else(|payload| {
        Err(DocsError::Panicked {
            renderer: "csv",
            message: panic_message(payload.as_ref()),
        })
    })
}

fn write(sheet: &Sheet) -> Result<Vec<u8>, DocsError> {
    let width = sheet.width();
    let mut out = Vec::with_capacity(64 + sheet.rows.len() * width * 8);
    out.extend_from_slice(UTF8_BOM);
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    let error = |err: csv::Error| DocsError::Csv(err.to_string());

    let mut record: Vec<String> = Vec::with_capacity(width);
    record.extend(sheet.columns.iter().map(|c| neutralise(c.header.clone())));
    record.resize(width, String::new());
    if width > 0 {
        writer.write_record(&record).map_err(error)?;
    }
    for row in &sheet.rows {
        record.clear();
        record.extend(row.iter().map(field));
        record.resize(width, String::new());
        if width > 0 {
            writer.write_record(&record).map_err(error)?;
        }
    }
    writer
        .into_inner()
        .map_err(|err| DocsError::Csv(err.error().to_string()))
}

/// One cell as a CSV field.
fn field(cell: &Cell) -> String {
    match cell {
        Cell::Text(text) => neutralise(text.clone()),
        // Rust's shortest round-trip form: full precision, never an exponent.
        Cell::Number(n) if n.is_finite() => n.to_string(),
        Cell::Number(_) | Cell::Empty => String::new(),
        Cell::Integer(i) => i.to_string(),
        Cell::Date(date) => date.format("%Y-%m-%d").to_string(),
        Cell::DateTime(moment) => moment.format("%Y-%m-%d %H:%M:%S").to_string(),
        Cell::Bool(true) => "TRUE".to_owned(),
        Cell::Bool(false) => "FALSE".to_owned(),
        Cell::Link { url, text } => neutralise(link_text(url, text)),
    }
}

/// Prefixes `'` to text a spreadsheet would read as a formula.
pub(crate) fn neutralise(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        let mut out = String::with_capacity(text.len() + 1);
        out.push('\'');
        out.push_str(&text);
        out
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_neutralised() {
        for text in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(text.to_owned()), format!("'{text}"));
        }
        for text in ["a=1", " =1", "", "'quoted", "1-2"] {
            assert_eq!(neutralise(text.to_owned()), text);
        }
        assert_eq!(field(&Cell::Number(-2.5)), "-2.5");
        assert_eq!(field(&Cell::Number(f64::NAN)), "");
    }
}
