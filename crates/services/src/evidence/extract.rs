//! Text from evidence files (PDF, DOCX, XLSX, CSV, TXT), for search and the assistant.
//!
//! Parsers of untrusted files can panic, loop or balloon, so [`extract`]:
//! - refuses input over [`Limits::max_input_bytes`] without parsing it;
//! - runs the parser on a thread of its own, never on the async runtime's threads;
//! - catches a panic and returns it as [`ExtractError::Panicked`];
//! - waits at most [`Limits::timeout`], then gives up on the thread (which finishes in
//!   the background; its result is dropped);
//! - reads at most a bounded number of decompressed bytes from any ZIP entry, so a
//!   small DOCX cannot expand into gigabytes;
//! - keeps at most [`Limits::max_output_chars`] characters.

use std::{
    io::{Cursor, Read},
    panic::{AssertUnwindSafe, catch_unwind},
    time::Duration,
};

/// The formats text is extracted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Docx,
    Xlsx,
    Csv,
    Txt,
}

impl Format {
    /// From a lower-case extension without the dot; `None` when extraction does not
    /// apply.
    #[must_use]
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "pdf" => Some(Self::Pdf),
            "docx" => Some(Self::Docx),
            "xlsx" => Some(Self::Xlsx),
            "csv" => Some(Self::Csv),
            "txt" | "md" | "log" => Some(Self::Txt),
            _ => None,
        }
    }
}

/// How much extraction may take.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_input_bytes: u64,
    pub max_output_chars: usize,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 50 * 1024 * 1024,
            max_output_chars: 1_000_000,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why no text came out.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("the file is larger than the {limit} bytes text is extracted from")]
    TooLarge { limit: u64 },
    #[error("reading the file took longer than {} s", .0.as_secs())]
    TimedOut(Duration),
    #[error("the file could not be read (the parser failed: {0})")]
    Panicked(String),
    #[error("the file could not be read: {0}")]
    Malformed(String),
}

/// The most bytes read out of one compressed entry.
const MAX_INFLATED: u64 = 200 * 1024 * 1024;

/// Extraction on the calling thread, without the guards of [`extract`].
///
/// # Errors
/// [`ExtractError::Malformed`] when the parser refuses the file.
pub fn extract_blocking(
    format: Format,
    bytes: &[u8],
    max_output_chars: usize,
) -> Result<String, ExtractError> {
    let raw = match format {
        Format::Txt | Format::Csv => String::from_utf8_lossy(bytes).into_owned(),
        Format::Pdf => pdf(bytes)?,
        Format::Docx => docx(bytes)?,
        Format::Xlsx => xlsx(bytes)?,
    };
    Ok(truncate(&normalise(&raw), max_output_chars))
}

/// Extraction with every guard.
///
/// # Errors
/// [`ExtractError::TooLarge`], [`ExtractError::TimedOut`],
/// [`ExtractError::Panicked`] or [`ExtractError::Malformed`].
pub async fn extract(
    format: Format,
    bytes: Vec<u8>,
    limits: &Limits,
) -> Result<String, ExtractError> {
    if bytes.len() as u64 > limits.max_input_bytes {
        return Err(ExtractError::TooLarge {
            limit: limits.max_input_bytes,
        });
    }
    let max = limits.max_output_chars;
    run_guarded(
        move || extract_blocking(format, &bytes, max),
        limits.timeout,
    )
    .await
}

/// Runs `work` on its own thread, catching a panic and waiting at most `timeout`.
async fn run_guarded<F>(work: F, timeout: Duration) -> Result<String, ExtractError>
where
    F: FnOnce() -> Result<String, ExtractError> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("ruleiq-extract".into())
        .spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|payload| {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                Err(ExtractError::Panicked(message))
            });
            // The receiver is gone after a timeout; the result is dropped.
            let _ = tx.send(outcome);
        })
        .map_err(|e| ExtractError::Malformed(format!("cannot start the parser: {e}")))?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Err(ExtractError::Panicked("the parser thread ended".into())),
        Err(_) => Err(ExtractError::TimedOut(timeout)),
    }
}

fn pdf(bytes: &[u8]) -> Result<String, ExtractError> {
    let doc =
        lopdf::Document::load_mem(bytes).map_err(|e| ExtractError::Malformed(e.to_string()))?;
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let mut out = String::new();
    for page in pages {
        // A page whose text cannot be decoded is skipped, not the whole file.
        if let Ok(text) = doc.extract_text(&[page]) {
            out.push_str(&text);
            out.push('\n');
        }
    }
    Ok(out)
}

/// One ZIP entry's bytes, at most [`MAX_INFLATED`] of them.
fn entry(bytes: &[u8], name: &str) -> Result<Option<Vec<u8>>, ExtractError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError::Malformed(format!("not a valid package: {e}")))?;
    let file = match archive.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(ExtractError::Malformed(e.to_string())),
    };
    let mut out = Vec::new();
    file.take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|e| ExtractError::Malformed(e.to_string()))?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(ExtractError::Malformed(format!(
            "{name} is too large when decompressed"
        )));
    }
    Ok(Some(out))
}

fn docx(bytes: &[u8]) -> Result<String, ExtractError> {
    use quick_xml::events::Event;
    let xml = entry(bytes, "word/document.xml")?
        .ok_or_else(|| ExtractError::Malformed("no word/document.xml in the package".into()))?;
    let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
    let mut buf = Vec::new();
    let mut out = String::new();
    let mut in_text = false;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.name().as_ref() == b"w:t" => in_text = true,
            Ok(Event::End(e)) => match e.name().as_ref() {
                b"w:t" => in_text = false,
                b"w:p" => out.push('\n'),
                _ => {}
            },
            Ok(Event::Empty(e)) => match e.name().as_ref() {
                b"w:tab" => out.push('\t'),
                b"w:br" | b"w:cr" => out.push('\n'),
                _ => {}
            },
            Ok(Event::Text(t)) if in_text => {
                let text = t
                    .decode()
                    .map_err(|e| ExtractError::Malformed(e.to_string()))?;
                out.push_str(&unescape(&text));
            }
            Ok(Event::GeneralRef(r)) if in_text => {
                out.push_str(&unescape(&format!("&{};", String::from_utf8_lossy(&r))));
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(ExtractError::Malformed(format!("word/document.xml: {e}"))),
            Ok(_) => {}
        }
        buf.clear();
    }
    Ok(out)
}

/// The five XML entities and numeric references; anything else is kept as written.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let name = &tail[1..end];
        let c = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => name
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

fn xlsx(bytes: &[u8]) -> Result<String, ExtractError> {
    use calamine::Reader;
    // calamine inflates entries itself: check the sizes the package declares first.
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError::Malformed(format!("not a valid package: {e}")))?;
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let f = archive
            .by_index_raw(i)
            .map_err(|e| ExtractError::Malformed(e.to_string()))?;
        declared = declared.saturating_add(f.size());
    }
    if declared > MAX_INFLATED {
        return Err(ExtractError::Malformed(
            "the workbook is too large when decompressed".into(),
        ));
    }
    let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|e: calamine::XlsxError| ExtractError::Malformed(e.to_string()))?;
    let mut out = String::new();
    for name in book.sheet_names() {
        let range = book
            .worksheet_range(&name)
            .map_err(|e| ExtractError::Malformed(e.to_string()))?;
        out.push_str("# ");
        out.push_str(&name);
        out.push('\n');
        for row in range.rows() {
            let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
            out.push_str(cells.join("\t").trim_end());
            out.push('\n');
        }
    }
    Ok(out)
}

/// Runs of spaces and tabs become one space, lines are trimmed, and at most one
/// blank line is kept in a row.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line
            .split([' ', '\t'])
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.trim().to_owned()
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pdf_with(text: &str) -> Vec<u8> {
        let content = format!("BT /F1 12 Tf 72 712 Td ({text}) Tj ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
            format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for o in offsets {
            out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    fn package(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn text_comes_out_of_a_pdf() {
        let text = extract_blocking(Format::Pdf, &pdf_with("Access control policy"), 1000).unwrap();
        assert!(text.contains("Access control policy"), "{text:?}");
    }

    #[test]
    fn a_word_document_keeps_paragraphs_and_tabs() {
        let xml = br#"<?xml version="1.0"?><w:document xmlns:w="w"><w:body><w:p><w:r><w:t>Backup</w:t><w:tab/><w:t>policy &amp; scope</w:t></w:r></w:p><w:p><w:r><w:t xml:space="preserve">Second   line</w:t></w:r></w:p></w:body></w:document>"#;
        let docx = package(&[("word/document.xml", xml)]);
        let text = extract_blocking(Format::Docx, &docx, 1000).unwrap();
        assert_eq!(text, "Backup policy & scope\nSecond line");
    }

    #[test]
    fn a_workbook_gives_each_sheet_with_its_rows() {
        let workbook = br#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Assets" sheetId="1" r:id="rId1"/><sheet name="Owners" sheetId="2" r:id="rId2"/></sheets></workbook>"#;
        let rels = br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet2.xml"/></Relationships>"#;
        let sheet = |a: &str, b: &str| {
            format!(
                r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>{a}</t></is></c><c r="B1"><v>{b}</v></c></row></sheetData></worksheet>"#
            )
        };
        let (s1, s2) = (sheet("Laptop", "42"), sheet("Ann", "7"));
        let types = br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#;
        let root = br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
        let xlsx = package(&[
            ("[Content_Types].xml", types),
            ("_rels/.rels", root),
            ("xl/workbook.xml", workbook),
            ("xl/_rels/workbook.xml.rels", rels),
            ("xl/worksheets/sheet1.xml", s1.as_bytes()),
            ("xl/worksheets/sheet2.xml", s2.as_bytes()),
        ]);
        let text = extract_blocking(Format::Xlsx, &xlsx, 1000).unwrap();
        assert_eq!(text, "# Assets\nLaptop 42\n# Owners\nAnn 7");
    }

    #[test]
    fn csv_and_text_are_read_leniently() {
        let text = extract_blocking(Format::Csv, b"a,b\n\n\n\n1,  2\n", 100).unwrap();
        assert_eq!(text, "a,b\n\n1, 2");
        let text = extract_blocking(Format::Txt, b"caf\xff\n", 100).unwrap();
        assert_eq!(text, "caf\u{fffd}");
    }

    #[test]
    fn output_is_cut_on_a_character_boundary() {
        let text = extract_blocking(Format::Txt, "ééééé".as_bytes(), 3).unwrap();
        assert_eq!(text, "ééé");
    }

    #[test]
    fn broken_files_are_malformed_not_panics() {
        for (format, bytes) in [
            (Format::Pdf, b"%PDF-1.4 not really".to_vec()),
            (Format::Docx, b"PK\x03\x04 broken".to_vec()),
            (Format::Xlsx, package(&[("x.txt", b"no workbook")])),
            (Format::Docx, package(&[("x.txt", b"no document")])),
        ] {
            let err = extract_blocking(format, &bytes, 100).unwrap_err();
            assert!(
                matches!(err, ExtractError::Malformed(_)),
                "{format:?}: {err}"
            );
        }
    }

    #[test]
    fn a_document_that_inflates_past_the_limit_is_refused() {
        // 201 MiB of zeros deflate to about 200 KiB.
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("word/document.xml", options).unwrap();
        let block = vec![0u8; 1024 * 1024];
        for _ in 0..201 {
            zip.write_all(&block).unwrap();
        }
        let bomb = zip.finish().unwrap().into_inner();
        assert!(bomb.len() < 2 * 1024 * 1024, "{}", bomb.len());
        let err = extract_blocking(Format::Docx, &bomb, 100).unwrap_err();
        assert!(
            err.to_string().contains("too large when decompressed"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn too_large_input_is_refused_unread() {
        let limits = Limits {
            max_input_bytes: 4,
            ..Limits::default()
        };
        let err = extract(Format::Txt, b"12345".to_vec(), &limits)
            .await
            .unwrap_err();
        assert!(matches!(err, ExtractError::TooLarge { limit: 4 }), "{err}");
    }

    #[tokio::test]
    async fn a_panic_or_a_hang_is_contained_and_the_runner_carries_on() {
        let err = run_guarded(|| panic!("boom"), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ExtractError::Panicked(m) if m == "boom"),
            "{err}"
        );
        let err = run_guarded(
            || {
                std::thread::sleep(Duration::from_millis(500));
                Ok(String::new())
            },
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ExtractError::TimedOut(_)), "{err}");
        let ok = extract(Format::Txt, b"still here".to_vec(), &Limits::default())
            .await
            .unwrap();
        assert_eq!(ok, "still here");
    }
}
