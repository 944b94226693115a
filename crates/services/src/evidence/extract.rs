//! Text from evidence files (PDF, DOCX, XLSX, CSV, TXT), for search and the assistant.
//!
//! This module owns turning an uploaded file's bytes into plain text, and nothing
//! else: the job that calls it decides what to do with the text or the error.
//!
//! Parsers of untrusted files can panic, loop or balloon, so [`extract`] keeps these
//! invariants:
//! - input over [`Limits::max_input_bytes`] is refused before any parser sees it;
//! - parsing runs on a dedicated OS thread (`ruleiq-extract`), never on an async
//!   runtime thread, so a slow file cannot stall other requests or jobs;
//! - a parser panic is caught and returned as [`ExtractError::Panicked`]; the process
//!   lives on. The global panic hook is left alone, so the panic is still printed;
//! - the caller waits at most [`Limits::timeout`]. The thread cannot be killed, so it
//!   is told to stop at its next checkpoint and left to finish in the background; its
//!   result is dropped;
//! - no compressed part is inflated past a fixed bound (declared sizes are checked
//!   before inflating, actual sizes while reading), so a small file cannot expand into
//!   gigabytes;
//! - the text has its whitespace normalised, holds no control characters other than
//!   tab and newline (a database `text` column refuses NUL), and has at most
//!   [`Limits::max_output_chars`] characters, cut on a character boundary. Parsers
//!   stop reading once that many characters are out.

use std::{
    io::{self, BufReader, Cursor, Read, Seek},
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
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
    /// From a lower-case extension without the dot: `pdf`, `docx`, `xlsx`, `csv`,
    /// `txt` (and `md`, `log` as text). `None` for anything else, whose extraction is
    /// `not_applicable`.
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

/// How much one extraction may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Larger files are refused unread.
    pub max_input_bytes: u64,
    /// The text is cut to this many characters (Unicode scalar values).
    pub max_output_chars: usize,
    /// How long the caller waits for the parser.
    pub timeout: Duration,
}

impl Default for Limits {
    /// 50 MiB in, 1,000,000 characters out, 30 seconds.
    fn default() -> Self {
        Self {
            max_input_bytes: 50 * 1024 * 1024,
            max_output_chars: 1_000_000,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why no text came out. The messages are shown to users as the reason extraction
/// failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The file is over [`Limits::max_input_bytes`]; it was not read.
    #[error("the file is larger than the {limit} bytes text is extracted from")]
    TooLarge { limit: u64 },
    /// The parser did not finish within [`Limits::timeout`].
    #[error("reading the file took longer than {0:?}, so it was given up")]
    TimedOut(Duration),
    /// The parser panicked (the message is the panic's), or its thread could not run.
    #[error("the file could not be read: the parser failed ({0})")]
    Panicked(String),
    /// The parser refused the file; the message says why.
    #[error("the file could not be read: {0}")]
    Malformed(String),
}

/// The most bytes any compressed part (a ZIP entry, a PDF stream or page) may inflate
/// to. Far above real office documents, far below what would strain the worker.
const MAX_INFLATED: u64 = 200 * 1024 * 1024;

/// How many times its stored size a file may inflate to, when that is below
/// [`MAX_INFLATED`].
const INFLATE_RATIO: u64 = 8;

/// The longest panic message kept; the rest is noise to a user.
const MAX_PANIC_MESSAGE: usize = 500;

/// PDF pages read per call into `lopdf`: each call walks the whole page tree, so one
/// page per call would be quadratic in the page count.
const PDF_PAGES_PER_BATCH: usize = 16;

/// The first bytes of an OLE compound file: an encrypted Office file or a `.doc` or
/// `.xls` renamed, neither of which is a ZIP package.
const COMPOUND_FILE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Extraction on the calling thread, without the thread, time and input-size guards
/// of [`extract`] (compressed parts are still bounded). For tests, and for callers
/// that bring their own guards.
///
/// # Errors
/// [`ExtractError::Malformed`] when the parser refuses the file or a part of it is too
/// large when decompressed. A parser panic is not caught here.
pub fn extract_blocking(
    format: Format,
    bytes: &[u8],
    max_output_chars: usize,
) -> Result<String, ExtractError> {
    extract_with(format, bytes, max_output_chars, MAX_INFLATED, None)
}

/// Extraction with every guard: input over `limits.max_input_bytes` is refused without
/// parsing; the parser runs on a dedicated thread; a panic there becomes
/// [`ExtractError::Panicked`]; the wait is at most `limits.timeout`. Compressed parts
/// may inflate to `8 × max_input_bytes` or 200 MiB, whichever is smaller.
///
/// On a timeout the thread is not killed (threads cannot be): it is told to stop at
/// its next checkpoint (between XML events, cells, PDF page batches), finishes in the
/// background, and its result is dropped.
///
/// # Errors
/// [`ExtractError::TooLarge`], [`ExtractError::TimedOut`],
/// [`ExtractError::Panicked`] or [`ExtractError::Malformed`].
pub async fn extract(
    format: Format,
    bytes: Vec<u8>,
    limits: &Limits,
) -> Result<String, ExtractError> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > limits.max_input_bytes {
        return Err(ExtractError::TooLarge {
            limit: limits.max_input_bytes,
        });
    }
    let max_chars = limits.max_output_chars;
    let max_inflated = limits
        .max_input_bytes
        .saturating_mul(INFLATE_RATIO)
        .min(MAX_INFLATED);
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let result = run_guarded(
        move || extract_with(format, &bytes, max_chars, max_inflated, Some(&flag)),
        limits.timeout,
    )
    .await;
    if matches!(result, Err(ExtractError::TimedOut(_))) {
        // Nobody will read the result: let the thread stop early and free its memory.
        cancel.store(true, Ordering::Relaxed);
    }
    result
}

/// Runs `work` on a thread of its own, turning a panic into
/// [`ExtractError::Panicked`] and waiting at most `timeout` for it.
async fn run_guarded<F>(work: F, timeout: Duration) -> Result<String, ExtractError>
where
    F: FnOnce() -> Result<String, ExtractError> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("ruleiq-extract".into())
        .spawn(move || {
            // The closure owns everything it touches and its state is dropped after a
            // panic, so nothing half-updated is observed: asserting unwind safety is sound.
            let outcome = catch_unwind(AssertUnwindSafe(work))
                .unwrap_or_else(|payload| Err(ExtractError::Panicked(panic_message(&*payload))));
            // After a timeout the receiver is gone and the result is dropped here.
            let _ = tx.send(outcome);
        })
        // Not the file's fault, but the job must fail all the same; this is the variant
        // that says the parser did not run to the end.
        .map_err(|e| ExtractError::Panicked(format!("could not start a parser thread: {e}")))?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(outcome)) => outcome,
        // Only when the thread died without sending, e.g. a panic while dropping a
        // panic payload.
        Ok(Err(_)) => Err(ExtractError::Panicked(
            "the parser thread ended without a result".into(),
        )),
        Err(_) => Err(ExtractError::TimedOut(timeout)),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    match message.char_indices().nth(MAX_PANIC_MESSAGE) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message,
    }
}

/// [`extract_blocking`] with the inflation bound and a stop flag chosen by the caller.
fn extract_with(
    format: Format,
    bytes: &[u8],
    max_output_chars: usize,
    max_inflated: u64,
    cancel: Option<&AtomicBool>,
) -> Result<String, ExtractError> {
    let mut sink = Sink::new(max_output_chars, cancel);
    match format {
        Format::Txt | Format::Csv => plain(bytes, &mut sink),
        Format::Pdf => pdf(bytes, &mut sink, max_inflated)?,
        Format::Docx => docx(bytes, &mut sink, max_inflated)?,
        Format::Xlsx => xlsx(bytes, &mut sink, max_inflated)?,
    }
    Ok(sink.finish())
}

fn malformed(message: impl Into<String>) -> ExtractError {
    ExtractError::Malformed(message.into())
}

fn too_large(what: &str, max_inflated: u64) -> ExtractError {
    malformed(format!(
        "{what} is too large when decompressed (over {} MiB)",
        max_inflated / (1024 * 1024)
    ))
}

/// Whitespace owed before the next visible character. A later kind outranks an
/// earlier one: a run holding a tab becomes one tab, a run holding a line break one
/// line break, two or more line breaks one blank line.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    None,
    Space,
    Tab,
    Line,
    Blank,
}

/// Where extracted text goes: it normalises whitespace as it comes, so that it can
/// count the characters of the final text and tell the parser when to stop.
///
/// Whitespace is only written when a visible character follows it, so the text never
/// starts or ends with whitespace, and stopping at the limit cuts it exactly where
/// normalising everything and then truncating would (less any whitespace at the cut).
struct Sink<'a> {
    text: String,
    chars: usize,
    max_chars: usize,
    gap: Gap,
    after_cr: bool,
    full: bool,
    cancel: Option<&'a AtomicBool>,
}

impl<'a> Sink<'a> {
    fn new(max_chars: usize, cancel: Option<&'a AtomicBool>) -> Self {
        Self {
            text: String::new(),
            chars: 0,
            max_chars,
            gap: Gap::None,
            after_cr: false,
            full: false,
            cancel,
        }
    }

    /// Whether the parser should stop: the text is full, or nobody waits for it.
    fn done(&self) -> bool {
        self.full || self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }

    fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            if self.full {
                return;
            }
            self.push_char(c);
        }
    }

    fn push_char(&mut self, c: char) {
        let after_cr = std::mem::replace(&mut self.after_cr, c == '\r');
        match c {
            // The second half of a CRLF.
            '\n' if after_cr => {}
            '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                self.line_break();
            }
            '\t' => self.gap = self.gap.max(Gap::Tab),
            c if c.is_whitespace() => self.gap = self.gap.max(Gap::Space),
            // Control characters carry no text (and NUL cannot be stored in PostgreSQL);
            // a byte-order mark is not text either.
            c if c.is_control() || c == '\u{feff}' => {}
            c => self.visible(c),
        }
    }

    /// Ends a line (a paragraph, a row).
    fn line_break(&mut self) {
        self.gap = match self.gap {
            Gap::Line | Gap::Blank => Gap::Blank,
            _ => Gap::Line,
        };
    }

    fn visible(&mut self, c: char) {
        if self.full {
            return;
        }
        let separator = match self.gap {
            _ if self.text.is_empty() => "",
            Gap::None => "",
            Gap::Space => " ",
            Gap::Tab => "\t",
            Gap::Line => "\n",
            Gap::Blank => "\n\n",
        };
        // The separator is ASCII, so its length is its character count.
        let needed = separator.len() + 1;
        if self.chars.saturating_add(needed) > self.max_chars {
            self.full = true;
            return;
        }
        self.text.push_str(separator);
        self.text.push(c);
        self.chars += needed;
        self.gap = Gap::None;
    }

    fn finish(self) -> String {
        self.text
    }
}

/// TXT and CSV: UTF-8, each invalid sequence read as U+FFFD (as
/// [`String::from_utf8_lossy`] does, without copying the file first).
fn plain(bytes: &[u8], sink: &mut Sink<'_>) {
    for chunk in bytes.utf8_chunks() {
        if sink.done() {
            return;
        }
        sink.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            sink.push_char(char::REPLACEMENT_CHARACTER);
        }
    }
}

/// PDF through `lopdf`, whose own bound on inflated streams (per stream while loading,
/// per page while extracting) is set to `max_inflated`. A page whose text cannot be
/// decoded is skipped; the file fails only when no page gave any text and some failed.
fn pdf(bytes: &[u8], sink: &mut Sink<'_>, max_inflated: u64) -> Result<(), ExtractError> {
    let cap = usize::try_from(max_inflated).unwrap_or(usize::MAX);
    let options = lopdf::LoadOptions {
        max_decompressed_size: Some(cap),
        ..lopdf::LoadOptions::default()
    };
    let doc = lopdf::Document::load_mem_with_options(bytes, options).map_err(|e| {
        if is_bomb(&e) {
            too_large("a part of the PDF", max_inflated)
        } else {
            malformed(format!("not a readable PDF ({e})"))
        }
    })?;
    let pages: Vec<u32> = doc.get_pages().into_keys().collect();
    let mut first_error = None;
    for batch in pages.chunks(PDF_PAGES_PER_BATCH) {
        if sink.done() {
            break;
        }
        for chunk in doc.extract_text_chunks_with_limit(batch, cap) {
            match chunk {
                Ok(text) => sink.push_str(&text),
                Err(e) if is_bomb(&e) => return Err(too_large("a page of the PDF", max_inflated)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        sink.line_break();
    }
    match first_error {
        Some(e) if sink.chars == 0 => Err(malformed(format!("no text could be read ({e})"))),
        _ => Ok(()),
    }
}

fn is_bomb(e: &lopdf::Error) -> bool {
    matches!(
        e,
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })
    )
}

/// Opens an Office Open XML package, after refusing one whose entries declare more
/// than `max_inflated` bytes in all. The ZIP reader refuses to inflate an entry past
/// its declared size, so the declared sizes bound what reading can produce.
fn open_package<'b>(
    bytes: &'b [u8],
    what: &str,
    max_inflated: u64,
) -> Result<zip::ZipArchive<Cursor<&'b [u8]>>, ExtractError> {
    if bytes.starts_with(&COMPOUND_FILE) {
        return Err(malformed(format!(
            "this {what} is password-protected or in the older binary format; \
             save it without a password in the current format and upload it again"
        )));
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| malformed(format!("not a valid {what} ({e})")))?;
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| malformed(format!("not a valid {what} ({e})")))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > max_inflated {
        return Err(too_large(&format!("the {what}"), max_inflated));
    }
    Ok(archive)
}

/// A reader that fails once more than `left` bytes come through: a second bound on
/// inflation that does not rely on the ZIP reader honouring declared sizes.
struct Capped<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Capped<R> {
    fn new(inner: R, cap: u64) -> Self {
        Self {
            inner,
            left: cap,
            exceeded: false,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte past the cap, so that reaching it exactly is not an error.
        let allowed = usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX);
        let len = buf.len().min(allowed);
        let n = self.inner.read(&mut buf[..len])?;
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        if n64 > self.left {
            self.left = 0;
            self.exceeded = true;
            return Err(io::Error::other("too large when decompressed"));
        }
        self.left -= n64;
        Ok(n)
    }
}

/// DOCX: the text of `word/document.xml` (`t` elements, which covers body text, tables,
/// text boxes and equations), a line per paragraph, `tab` as a tab, `br` and `cr` as a
/// line break. Field codes and deleted text are not `t` and are left out. The XML is
/// parsed as it inflates, never held whole.
fn docx(bytes: &[u8], sink: &mut Sink<'_>, max_inflated: u64) -> Result<(), ExtractError> {
    use quick_xml::events::Event;
    const PART: &str = "word/document.xml";
    let mut archive = open_package(bytes, "Word document", max_inflated)?;
    let entry = match archive.by_name(PART) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(malformed(format!("not a Word document (it has no {PART})")));
        }
        Err(e) => return Err(malformed(format!("{PART}: {e}"))),
    };
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(Capped::new(entry, max_inflated)));
    let mut buf = Vec::new();
    // Text between tags is markup indentation unless inside a `t`.
    let mut in_text = false;
    while !sink.done() {
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.local_name().as_ref() == b"t" => in_text = true,
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" => sink.line_break(),
                _ => {}
            },
            Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                b"tab" => sink.push_char('\t'),
                b"br" | b"cr" | b"p" => sink.line_break(),
                _ => {}
            },
            Ok(Event::Text(t)) if in_text => {
                let text = t.decode().map_err(|e| malformed(format!("{PART}: {e}")))?;
                sink.push_str(&text);
            }
            Ok(Event::CData(t)) if in_text => {
                let text = t.decode().map_err(|e| malformed(format!("{PART}: {e}")))?;
                sink.push_str(&text);
            }
            Ok(Event::GeneralRef(r)) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    sink.push_char(c);
                } else if let Some(s) = r
                    .decode()
                    .ok()
                    .and_then(|name| quick_xml::escape::resolve_predefined_entity(&name))
                {
                    sink.push_str(s);
                }
                // Any other entity would need a DTD, which Word never writes: skipped.
            }
            Ok(Event::Eof) => break,
            Err(e) => {
                return Err(if xml.get_ref().get_ref().exceeded {
                    too_large(PART, max_inflated)
                } else {
                    malformed(format!("{PART}: {e}"))
                });
            }
            Ok(_) => {}
        }
        buf.clear();
    }
    Ok(())
}

/// XLSX through `calamine`: each worksheet as a line `# <name>` and then its rows, the
/// cells of a row joined by a tab. Cells are streamed in file order (a sheet's declared
/// dimensions are never used to allocate a grid). A sheet that cannot be read is
/// skipped; the file fails only when no sheet could be read.
fn xlsx(bytes: &[u8], sink: &mut Sink<'_>, max_inflated: u64) -> Result<(), ExtractError> {
    use calamine::Reader;
    // Checks the declared sizes before calamine inflates anything (it reads the shared
    // strings when the workbook opens).
    drop(open_package(bytes, "workbook", max_inflated)?);
    let mut book = calamine::Xlsx::new(Cursor::new(bytes))
        .map_err(|e| malformed(format!("not a valid workbook ({e})")))?;
    let sheets: Vec<String> = book
        .sheets_metadata()
        .iter()
        .filter(|s| s.typ == calamine::SheetType::WorkSheet)
        .map(|s| s.name.clone())
        .collect();
    let mut read_any = sheets.is_empty();
    let mut first_error = None;
    for name in sheets {
        if sink.done() {
            break;
        }
        sink.line_break();
        sink.push_str("# ");
        sink.push_str(&name);
        sink.line_break();
        match sheet(&mut book, &name, sink) {
            Ok(()) => read_any = true,
            Err(e) => {
                first_error.get_or_insert(format!("sheet {name}: {e}"));
            }
        }
    }
    match first_error {
        Some(e) if !read_any => Err(malformed(format!("not a valid workbook ({e})"))),
        _ => Ok(()),
    }
}

fn sheet<RS: Read + Seek>(
    book: &mut calamine::Xlsx<RS>,
    name: &str,
    sink: &mut Sink<'_>,
) -> Result<(), calamine::XlsxError> {
    let mut cells = book.worksheet_cells_reader(name)?;
    let mut row = None;
    while !sink.done() {
        let Some(cell) = cells.next_cell()? else {
            break;
        };
        let value = cell.get_value();
        if matches!(value, calamine::DataRef::Empty) {
            continue;
        }
        let (r, _) = cell.get_position();
        match row {
            Some(previous) if previous == r => sink.push_char('\t'),
            // The first cell follows the sheet's heading line.
            Some(_) => sink.line_break(),
            None => {}
        }
        row = Some(r);
        push_cell(sink, value);
    }
    Ok(())
}

fn push_cell(sink: &mut Sink<'_>, value: &calamine::DataRef<'_>) {
    use calamine::DataRef;
    match value {
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            sink.push_str(s);
        }
        DataRef::SharedString(s) => sink.push_str(s),
        DataRef::Int(n) => sink.push_str(&n.to_string()),
        DataRef::Float(n) => sink.push_str(&n.to_string()),
        DataRef::Bool(b) => sink.push_str(if *b { "TRUE" } else { "FALSE" }),
        // A date cell holds a day count; as a date it can be searched for.
        DataRef::DateTime(d) if d.is_datetime() => {
            let (y, mo, da, h, mi, s, _) = d.to_ymd_hms_milli();
            if (h, mi, s) == (0, 0, 0) {
                sink.push_str(&format!("{y:04}-{mo:02}-{da:02}"));
            } else {
                sink.push_str(&format!("{y:04}-{mo:02}-{da:02} {h:02}:{mi:02}:{s:02}"));
            }
        }
        DataRef::DateTime(d) => sink.push_str(&d.as_f64().to_string()),
        DataRef::Error(e) => sink.push_str(&e.to_string()),
        DataRef::Empty => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;
    use std::time::Instant;

    const MIB: u64 = 1024 * 1024;

    /// A PDF with one page per text, each shown in Helvetica by
    /// `BT /F1 12 Tf 72 712 Td (<text>) Tj ET`, with a cross-reference table whose
    /// offsets are computed as the file is written.
    fn pdf_of(pages: &[&str]) -> Vec<u8> {
        // Objects: 1 catalog, 2 page tree, 3 font, then a page and its content per page.
        let kids: Vec<String> = (0..pages.len())
            .map(|i| format!("{} 0 R", 4 + 2 * i))
            .collect();
        let mut objects = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            format!(
                "<< /Type /Pages /Kids [{}] /Count {} >>",
                kids.join(" "),
                pages.len()
            ),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_owned(),
        ];
        for (i, text) in pages.iter().enumerate() {
            let content = format!("BT /F1 12 Tf 72 712 Td ({text}) Tj ET");
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R \
                 /Resources << /Font << /F1 3 0 R >> >> >>",
                5 + 2 * i
            ));
            objects.push(format!(
                "<< /Length {} >>\nstream\n{content}\nendstream",
                content.len()
            ));
        }
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            write!(out, "{} 0 obj\n{body}\nendobj\n", i + 1).unwrap();
        }
        let xref = out.len();
        // Each entry is exactly 20 bytes, as the format requires.
        write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).unwrap();
        for offset in offsets {
            writeln!(out, "{offset:010} 00000 n ").unwrap();
        }
        write!(
            out,
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .unwrap();
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

    /// A package of one entry of `size` zeros, written in blocks.
    fn zeros_package(name: &str, size: u64) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(size >= u64::from(u32::MAX));
        zip.start_file(name, options).unwrap();
        let block = vec![0u8; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len() as u64);
            zip.write_all(&block[..usize::try_from(n).unwrap()])
                .unwrap();
            left -= n;
        }
        zip.finish().unwrap().into_inner()
    }

    /// Rewrites the uncompressed size a one-entry package declares, in both its local
    /// header and its central directory, as a crafted file would.
    fn declare_size(mut zip: Vec<u8>, size: u32) -> Vec<u8> {
        let find = |sig: &[u8]| zip.windows(4).position(|w| w == sig).unwrap();
        let local = find(b"PK\x03\x04");
        let central = find(b"PK\x01\x02");
        zip[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
        zip[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
        zip
    }

    fn docx_of(body: &str) -> Vec<u8> {
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
        );
        package(&[
            ("[Content_Types].xml", br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#),
            ("word/document.xml", xml.as_bytes()),
        ])
    }

    fn assert_malformed(result: Result<String, ExtractError>, needle: &str) {
        match result {
            Err(ExtractError::Malformed(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected Malformed containing {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn extensions_map_to_formats() {
        for (ext, format) in [
            ("pdf", Format::Pdf),
            ("docx", Format::Docx),
            ("xlsx", Format::Xlsx),
            ("csv", Format::Csv),
            ("txt", Format::Txt),
            ("md", Format::Txt),
            ("log", Format::Txt),
        ] {
            assert_eq!(Format::from_extension(ext), Some(format), "{ext}");
        }
        for ext in ["", "png", "doc", "xls", "zip", ".pdf", "pdf "] {
            assert_eq!(Format::from_extension(ext), None, "{ext}");
        }
    }

    #[test]
    fn default_limits() {
        let limits = Limits::default();
        assert_eq!(limits.max_input_bytes, 50 * MIB);
        assert_eq!(limits.max_output_chars, 1_000_000);
        assert_eq!(limits.timeout, Duration::from_secs(30));
    }

    #[test]
    fn text_comes_out_of_a_pdf() {
        let text =
            extract_blocking(Format::Pdf, &pdf_of(&["Access control policy"]), 1000).unwrap();
        assert_eq!(text, "Access control policy");
        let text = extract_blocking(Format::Pdf, &pdf_of(&["Page one", "Page two"]), 1000).unwrap();
        assert_eq!(text, "Page one\nPage two");
    }

    #[test]
    fn a_word_document_keeps_paragraphs_and_tabs() {
        let docx = docx_of(concat!(
            r"<w:p><w:pPr><w:tabs><w:tab w:val='left' w:pos='720'/></w:tabs></w:pPr>",
            r"<w:r><w:t>Backup</w:t><w:tab/><w:t>policy &amp; scope &#x2013; v2</w:t></w:r></w:p>",
            r#"<w:p><w:r><w:t xml:space="preserve">Second   line </w:t><w:br/><w:t>after a break</w:t></w:r></w:p>"#,
            r"<w:p/><w:p/><w:p/>",
            r"<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Cell</w:t></w:r></w:p></w:tc></w:tr></w:tbl>",
            r#"<w:p><w:r><w:instrText> PAGE </w:instrText></w:r><w:del><w:r><w:delText>gone</w:delText></w:r></w:del><w:r><w:t>kept</w:t></w:r></w:p>"#,
        ));
        let text = extract_blocking(Format::Docx, &docx, 1000).unwrap();
        assert_eq!(
            text,
            "Backup\tpolicy & scope \u{2013} v2\nSecond line\nafter a break\n\nCell\nkept"
        );
    }

    /// Two sheets: shared and inline strings, numbers, a date, a boolean, and a
    /// dimension claiming the whole grid (which must not be allocated).
    fn workbook() -> Vec<u8> {
        const NS: &str = "http://schemas.openxmlformats.org";
        let types = format!(
            r#"<?xml version="1.0"?><Types xmlns="{NS}/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#
        );
        let root = format!(
            r#"<?xml version="1.0"?><Relationships xmlns="{NS}/package/2006/relationships"><Relationship Id="rId1" Type="{NS}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
        );
        let workbook = format!(
            r#"<?xml version="1.0"?><workbook xmlns="{NS}/spreadsheetml/2006/main" xmlns:r="{NS}/officeDocument/2006/relationships"><sheets><sheet name="Assets" sheetId="1" r:id="rId1"/><sheet name="Owners" sheetId="2" r:id="rId2"/></sheets></workbook>"#
        );
        let rels = format!(
            r#"<?xml version="1.0"?><Relationships xmlns="{NS}/package/2006/relationships"><Relationship Id="rId1" Type="{NS}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{NS}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet2.xml"/><Relationship Id="rId3" Type="{NS}/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/><Relationship Id="rId4" Type="{NS}/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#
        );
        let strings = format!(
            r#"<?xml version="1.0"?><sst xmlns="{NS}/spreadsheetml/2006/main" count="3" uniqueCount="3"><si><t>Asset</t></si><si><t>Count</t></si><si><t>Laptop &amp; dock</t></si></sst>"#
        );
        // Style 1 is the built-in date format 14.
        let styles = format!(
            r#"<?xml version="1.0"?><styleSheet xmlns="{NS}/spreadsheetml/2006/main"><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs></styleSheet>"#
        );
        let sheet = |rows: &str| {
            format!(
                r#"<?xml version="1.0"?><worksheet xmlns="{NS}/spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData>{rows}</sheetData></worksheet>"#
            )
        };
        let assets = sheet(concat!(
            r#"<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>"#,
            r#"<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>42</v></c><c r="C2"><v>2.5</v></c></row>"#,
            r#"<row r="3"><c r="A3" t="inlineStr"><is><t>Audited</t></is></c><c r="B3" s="1"><v>45292</v></c><c r="D3" t="b"><v>1</v></c></row>"#,
        ));
        let owners = sheet(
            r#"<row r="5"><c r="B5" t="inlineStr"><is><t>Ann</t></is></c><c r="C5"><v>7</v></c></row>"#,
        );
        package(&[
            ("[Content_Types].xml", types.as_bytes()),
            ("_rels/.rels", root.as_bytes()),
            ("xl/workbook.xml", workbook.as_bytes()),
            ("xl/_rels/workbook.xml.rels", rels.as_bytes()),
            ("xl/sharedStrings.xml", strings.as_bytes()),
            ("xl/styles.xml", styles.as_bytes()),
            ("xl/worksheets/sheet1.xml", assets.as_bytes()),
            ("xl/worksheets/sheet2.xml", owners.as_bytes()),
        ])
    }

    #[test]
    fn a_workbook_gives_each_sheet_with_its_rows() {
        let text = extract_blocking(Format::Xlsx, &workbook(), 1000).unwrap();
        assert_eq!(
            text,
            "# Assets\nAsset\tCount\nLaptop & dock\t42\t2.5\nAudited\t2024-01-01\tTRUE\n# Owners\nAnn\t7"
        );
    }

    #[test]
    fn csv_keeps_its_commas_and_loses_extra_whitespace() {
        let csv = b"\xEF\xBB\xBFcontrol,owner\r\n\r\n\r\n\r\nA.5.1,  Ann \t Lee\r\n";
        let text = extract_blocking(Format::Csv, csv, 100).unwrap();
        assert_eq!(text, "control,owner\n\nA.5.1, Ann\tLee");
    }

    #[test]
    fn text_is_read_leniently() {
        let text =
            extract_blocking(Format::Txt, b"  caf\xff\xfe\n\0nul\x07 bell  \n", 100).unwrap();
        assert_eq!(text, "caf\u{fffd}\u{fffd}\nnul bell");
        assert_eq!(
            String::from_utf8_lossy(b"caf\xff\xfe"),
            "caf\u{fffd}\u{fffd}",
            "the same replacement as from_utf8_lossy"
        );
    }

    #[test]
    fn output_is_cut_on_a_character_boundary() {
        let text = extract_blocking(Format::Txt, "ééééé".as_bytes(), 3).unwrap();
        assert_eq!(text, "ééé");
        let text = extract_blocking(Format::Txt, "a 🦀🦀 b".as_bytes(), 3).unwrap();
        assert_eq!(text, "a 🦀");
        // A cut never leaves whitespace at the end.
        let text = extract_blocking(Format::Txt, "ab\n\ncd".as_bytes(), 3).unwrap();
        assert_eq!(text, "ab");
        assert_eq!(extract_blocking(Format::Txt, b"abc", 0).unwrap(), "");
    }

    #[tokio::test]
    async fn too_large_input_is_refused_unparsed() {
        let limits = Limits {
            max_input_bytes: 4,
            ..Limits::default()
        };
        // Garbage that the parser would call malformed: TooLarge shows it never ran.
        let err = extract(Format::Pdf, b"12345".to_vec(), &limits)
            .await
            .unwrap_err();
        assert!(matches!(err, ExtractError::TooLarge { limit: 4 }), "{err}");
        assert_eq!(
            extract(Format::Txt, b"1234".to_vec(), &limits)
                .await
                .unwrap(),
            "1234"
        );
    }

    #[test]
    fn broken_files_are_malformed_not_panics() {
        for (format, bytes) in [
            (Format::Pdf, b"%PDF-1.4 not really".to_vec()),
            (Format::Pdf, Vec::new()),
            (Format::Pdf, pdf_of(&["cut short"])[..60].to_vec()),
            (Format::Docx, b"PK\x03\x04 broken".to_vec()),
            (Format::Docx, Vec::new()),
            (Format::Docx, package(&[("x.txt", b"no document")])),
            (
                Format::Docx,
                package(&[("word/document.xml", b"<w:p><w:t>x</w:p>")]),
            ),
            (Format::Xlsx, b"not a zip".to_vec()),
            (Format::Xlsx, package(&[("x.txt", b"no workbook")])),
        ] {
            let result = extract_blocking(format, &bytes, 100);
            assert!(
                matches!(result, Err(ExtractError::Malformed(_))),
                "{format:?}: {result:?}"
            );
        }
        let mut encrypted = COMPOUND_FILE.to_vec();
        encrypted.extend_from_slice(&[0; 512]);
        assert_malformed(
            extract_blocking(Format::Docx, &encrypted, 100),
            "password-protected",
        );
        assert_malformed(
            extract_blocking(Format::Xlsx, &encrypted, 100),
            "password-protected",
        );
    }

    #[test]
    fn a_document_that_inflates_past_the_cap_is_refused() {
        // 2 MiB of zeros deflate to about 2 KiB; the cap is lowered to 1 MiB.
        let bomb = zeros_package("word/document.xml", 2 * MIB);
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        assert_malformed(
            extract_with(Format::Docx, &bomb, 100, MIB, None),
            "too large when decompressed",
        );
        let bomb = zeros_package("xl/sharedStrings.xml", 2 * MIB);
        assert_malformed(
            extract_with(Format::Xlsx, &bomb, 100, MIB, None),
            "too large when decompressed",
        );
        // Just under the cap is read (zeros are no text).
        let fine = zeros_package("word/document.xml", MIB);
        assert_eq!(
            extract_with(Format::Docx, &fine, 100, MIB, None).unwrap(),
            ""
        );
    }

    #[test]
    fn a_document_declaring_300_mib_is_refused_before_inflating() {
        let bomb = declare_size(zeros_package("word/document.xml", 1024), 300 * 1024 * 1024);
        let started = Instant::now();
        assert_malformed(
            extract_blocking(Format::Docx, &bomb, 100),
            "too large when decompressed",
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_document_inflating_past_its_declared_size_is_refused() {
        let liar = declare_size(zeros_package("word/document.xml", 2 * MIB), 100);
        let result = extract_blocking(Format::Docx, &liar, 100);
        assert!(
            matches!(result, Err(ExtractError::Malformed(_))),
            "{result:?}"
        );
    }

    #[test]
    fn the_capped_reader_stops_one_byte_past_the_cap() {
        let mut out = Vec::new();
        let mut exact = Capped::new(Cursor::new(vec![1u8; 4096]), 4096);
        exact.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 4096);
        let mut over = Capped::new(Cursor::new(vec![1u8; 4097]), 4096);
        assert!(over.read_to_end(&mut Vec::new()).is_err());
        assert!(over.exceeded);
    }

    #[tokio::test]
    async fn a_panic_is_caught_and_the_runner_carries_on() {
        let err = run_guarded(|| panic!("boom"), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ExtractError::Panicked(m) if m == "boom"),
            "{err}"
        );
        let code = 7;
        let err = run_guarded(move || panic!("code {code}"), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ExtractError::Panicked(m) if m == "code 7"),
            "{err}"
        );
        let long = "x".repeat(2 * MAX_PANIC_MESSAGE);
        let err = run_guarded(move || panic!("{long}"), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ExtractError::Panicked(m) if m.chars().count() == MAX_PANIC_MESSAGE + 1),
            "{err}"
        );
        // The runner, and the full path, still work after the panics.
        let ok = run_guarded(|| Ok("fine".to_owned()), Duration::from_secs(5)).await;
        assert_eq!(ok.unwrap(), "fine");
        let ok = extract(Format::Txt, b"still here".to_vec(), &Limits::default()).await;
        assert_eq!(ok.unwrap(), "still here");
    }

    #[tokio::test]
    async fn a_hang_times_out_without_waiting_for_the_thread() {
        let started = Instant::now();
        let err = run_guarded(
            || {
                std::thread::sleep(Duration::from_secs(2));
                Ok(String::new())
            },
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, ExtractError::TimedOut(d) if d == Duration::from_millis(100)),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            err.to_string(),
            "reading the file took longer than 100ms, so it was given up"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_parser_runs_on_its_own_named_thread() {
        let name = run_guarded(
            || Ok(std::thread::current().name().unwrap_or("").to_owned()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(name, "ruleiq-extract");
        let text = extract(
            Format::Pdf,
            pdf_of(&["Access control policy"]),
            &Limits::default(),
        )
        .await
        .unwrap();
        assert_eq!(text, "Access control policy");
    }

    #[test]
    fn a_stop_flag_ends_the_parse_early() {
        let cancel = AtomicBool::new(true);
        let docx = docx_of("<w:p><w:r><w:t>never read</w:t></w:r></w:p>");
        let text = extract_with(Format::Docx, &docx, 100, MIB, Some(&cancel)).unwrap();
        assert_eq!(text, "");
    }

    fn normalise(s: &str, max: usize) -> String {
        let mut sink = Sink::new(max, None);
        sink.push_str(s);
        sink.finish()
    }

    proptest! {
        #[test]
        fn normalised_text_keeps_its_invariants(
            s in "[a-zé🦀 \t\r\n\u{0}\u{a0}\u{feff}]{0,80}",
            max in 0usize..100,
        ) {
            let full = normalise(&s, usize::MAX);
            let cut = normalise(&s, max);
            prop_assert!(cut.chars().count() <= max);
            prop_assert!(full.starts_with(&cut));
            prop_assert_eq!(cut.trim(), cut.as_str());
            for bad in ["  ", "\t\t", " \t", "\t ", " \n", "\t\n", "\n ", "\n\t", "\n\n\n", "\r", "\0", "\u{feff}", "\u{a0}"] {
                prop_assert!(!full.contains(bad), "{:?} in {:?}", bad, full);
            }
            prop_assert_eq!(normalise(&full, usize::MAX), full.clone());
            let visible = |t: &str| t.chars().filter(|c| !c.is_whitespace() && !c.is_control() && *c != '\u{feff}').collect::<String>();
            prop_assert_eq!(visible(&full), visible(&s));
        }

        #[test]
        fn damaged_files_never_panic_or_hang(
            format in prop::sample::select(vec![Format::Pdf, Format::Docx, Format::Xlsx]),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = match format {
                Format::Pdf => pdf_of(&["Access control policy"]),
                Format::Xlsx => workbook(),
                _ => docx_of("<w:p><w:r><w:t>Access control policy</w:t></w:r></w:p>"),
            };
            for (at, byte) in flips {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let limits = Limits { timeout: Duration::from_secs(10), ..Limits::default() };
            let result = runtime.block_on(extract(format, bytes, &limits));
            prop_assert!(
                matches!(result, Ok(_) | Err(ExtractError::Malformed(_))),
                "{:?}", result
            );
        }
    }
}
