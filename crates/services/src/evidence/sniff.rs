//! Content sniffing for evidence uploads: whether a file's bytes agree with its
//! extension, and what name it may be stored under.
//!
//! Uploads stream straight to storage and are never held whole in memory, so an
//! [`Inspector`] sees each chunk once, in order, and its memory stays bounded however
//! large the file: the first [`PREFIX_LEN`] bytes, one fixed-size buffer for the ZIP
//! header being read, at most three bytes of an unfinished UTF-8 character, and a
//! few booleans and offsets. A file it refuses is never stored: the caller drops the
//! upload and answers 415 with the refusal's message, so every message here is
//! written for the person who uploaded the file.
//!
//! This is a consistency check, not a parser or a virus scanner. It refuses programs
//! and scripts whatever their name, content that contradicts its extension, and
//! macro-enabled Office files renamed to look macro-free; it does not prove that an
//! accepted file opens.

/// How much of the start of a file is kept. PDF readers accept `%PDF-` anywhere in
/// the first 1024 bytes, and every other signature checked is shorter.
const PREFIX_LEN: usize = 1024;

/// Longest stored file name, in bytes; well inside every common filesystem's limit
/// and short enough to show in a list.
const MAX_NAME_BYTES: usize = 200;

/// Longest run after the last dot still treated as an extension; anything longer is
/// part of the name (`notes.from-the-2024-board-meeting`).
const MAX_EXTENSION_LEN: usize = 16;

/// How much of each ZIP entry name is kept. Exact matches are only ever wanted for
/// short part names and the macro check looks at the end, so the last bytes suffice.
const NAME_TAIL: usize = 64;

const PDF_MARKER: &[u8] = b"%PDF-";
const ZIP_LOCAL: &[u8] = b"PK\x03\x04";
const ZIP_EMPTY: &[u8] = b"PK\x05\x06";
const OLE2: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF];
const GIF87: &[u8] = b"GIF87a";
const GIF89: &[u8] = b"GIF89a";

/// What the content turned out to be, for the stored content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The MIME type to store and serve the file with.
    pub content_type: &'static str,
}

/// Why an upload is refused. The message is shown to the uploader as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The extension is not on the configured list.
    #[error("files ending .{0} are not accepted here")]
    Extension(String),
    /// The content contradicts the extension; `reason` says what was expected and
    /// what the content looks like.
    #[error("this file's content does not match its .{extension} extension: {reason}")]
    Mismatch {
        /// The extension the file claimed, lower-case, without the dot.
        extension: String,
        /// Plain English: what was expected, and what the content looks like.
        reason: String,
    },
    /// An Office Open XML file carrying macros (`vbaProject.bin`) under a macro-free
    /// extension.
    #[error(
        "this .{extension} file contains macros (vbaProject.bin); macro-enabled Office \
         files are not accepted, so save it without macros and upload it again"
    )]
    MacroEnabled {
        /// The extension the file claimed.
        extension: String,
    },
}

/// A byte sequence that identifies a format at the very start of a file.
struct Signature {
    magic: &'static [u8],
    looks_like: &'static str,
    /// Programs and scripts are refused under every extension: evidence is read by
    /// people, and nobody should be handed something that runs.
    program: bool,
}

const fn program(magic: &'static [u8], looks_like: &'static str) -> Signature {
    Signature {
        magic,
        looks_like,
        program: true,
    }
}

const fn file_format(magic: &'static [u8], looks_like: &'static str) -> Signature {
    Signature {
        magic,
        looks_like,
        program: false,
    }
}

const SIGNATURES: &[Signature] = &[
    program(b"MZ", "a Windows program"),
    program(b"\x7fELF", "a Linux or Unix program (ELF)"),
    program(&[0xFE, 0xED, 0xFA, 0xCE], "a macOS program (Mach-O)"),
    program(&[0xFE, 0xED, 0xFA, 0xCF], "a macOS program (Mach-O)"),
    program(&[0xCE, 0xFA, 0xED, 0xFE], "a macOS program (Mach-O)"),
    program(&[0xCF, 0xFA, 0xED, 0xFE], "a macOS program (Mach-O)"),
    program(
        &[0xCA, 0xFE, 0xBA, 0xBE],
        "a program (a macOS universal binary or a Java class file)",
    ),
    program(b"#!", "a script (it starts with #!)"),
    file_format(PDF_MARKER, "a PDF document"),
    file_format(PNG, "a PNG image"),
    file_format(JPEG, "a JPEG image"),
    file_format(GIF87, "a GIF image"),
    file_format(GIF89, "a GIF image"),
    file_format(
        ZIP_LOCAL,
        "a ZIP archive (or a ZIP-based file such as .docx or .xlsx)",
    ),
    file_format(ZIP_EMPTY, "an empty ZIP archive"),
    file_format(OLE2, "a Microsoft Office 97-2003 file (.doc, .xls or .ppt)"),
    file_format(&[0x1F, 0x8B], "a gzip archive"),
    file_format(&[0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C], "a 7-Zip archive"),
    file_format(b"Rar!\x1a\x07", "a RAR archive"),
    file_format(&[0xFF, 0xFE], "UTF-16 text"),
    file_format(&[0xFE, 0xFF], "UTF-16 text"),
];

/// The three Office Open XML document kinds, told apart by their main part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Package {
    Word,
    Excel,
    PowerPoint,
}

impl Package {
    const ALL: [Self; 3] = [Self::Word, Self::Excel, Self::PowerPoint];

    fn index(self) -> usize {
        match self {
            Self::Word => 0,
            Self::Excel => 1,
            Self::PowerPoint => 2,
        }
    }

    fn main_part(self) -> &'static str {
        match self {
            Self::Word => "word/document.xml",
            Self::Excel => "xl/workbook.xml",
            Self::PowerPoint => "ppt/presentation.xml",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Word => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Excel => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::PowerPoint => {
                "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            }
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Word => "Word documents (Office Open XML packages, which are ZIP archives)",
            Self::Excel => "Excel workbooks (Office Open XML packages, which are ZIP archives)",
            Self::PowerPoint => {
                "PowerPoint presentations (Office Open XML packages, which are ZIP archives)"
            }
        }
    }

    fn one(self) -> &'static str {
        match self {
            Self::Word => "a Word document (.docx)",
            Self::Excel => "an Excel workbook (.xlsx)",
            Self::PowerPoint => "a PowerPoint presentation (.pptx)",
        }
    }
}

/// What an extension demands of the content, with the state needed to check it.
#[derive(Debug)]
enum Rule {
    Pdf,
    Package(Package, ZipScanner),
    Magic {
        magics: &'static [&'static [u8]],
        content_type: &'static str,
        noun: &'static str,
    },
    Text {
        content_type: &'static str,
        scanner: TextScanner,
    },
    Other,
}

impl Rule {
    fn for_extension(extension: &str) -> Self {
        let magic = |magics, content_type, noun| Self::Magic {
            magics,
            content_type,
            noun,
        };
        let text = |content_type| Self::Text {
            content_type,
            scanner: TextScanner::default(),
        };
        match extension {
            "pdf" => Self::Pdf,
            "docx" => Self::Package(Package::Word, ZipScanner::default()),
            "xlsx" => Self::Package(Package::Excel, ZipScanner::default()),
            "pptx" => Self::Package(Package::PowerPoint, ZipScanner::default()),
            "doc" => magic(
                &[OLE2],
                "application/msword",
                "Word 97-2003 documents (OLE2 compound files)",
            ),
            "xls" => magic(
                &[OLE2],
                "application/vnd.ms-excel",
                "Excel 97-2003 workbooks (OLE2 compound files)",
            ),
            "ppt" => magic(
                &[OLE2],
                "application/vnd.ms-powerpoint",
                "PowerPoint 97-2003 presentations (OLE2 compound files)",
            ),
            "png" => magic(&[PNG], "image/png", "PNG images"),
            "jpg" | "jpeg" => magic(&[JPEG], "image/jpeg", "JPEG images"),
            "gif" => magic(&[GIF87, GIF89], "image/gif", "GIF images"),
            "zip" => magic(&[ZIP_LOCAL, ZIP_EMPTY], "application/zip", "ZIP archives"),
            "txt" | "log" => text("text/plain; charset=utf-8"),
            "csv" => text("text/csv; charset=utf-8"),
            "md" => text("text/markdown; charset=utf-8"),
            "json" => text("application/json"),
            "xml" => text("application/xml"),
            _ => Self::Other,
        }
    }

    /// What every file with this extension must be, as a noun phrase; `None` when
    /// anything goes.
    fn noun(&self) -> Option<&'static str> {
        match self {
            Self::Pdf => Some("PDF documents, which begin with %PDF-"),
            Self::Package(package, _) => Some(package.noun()),
            Self::Magic { noun, .. } => Some(noun),
            Self::Text { .. } => Some("UTF-8 text"),
            Self::Other => None,
        }
    }
}

/// Three-valued answer for a signature test on a prefix that may still grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    NotYet,
}

fn starts(prefix: &[u8], magic: &[u8], complete: bool) -> Match {
    if prefix.len() >= magic.len() {
        if prefix.starts_with(magic) {
            Match::Yes
        } else {
            Match::No
        }
    } else if !complete && magic.starts_with(prefix) {
        Match::NotYet
    } else {
        Match::No
    }
}

fn any_starts<'a>(
    prefix: &[u8],
    magics: impl IntoIterator<Item = &'a [u8]>,
    complete: bool,
) -> Match {
    let mut result = Match::No;
    for magic in magics {
        match starts(prefix, magic, complete) {
            Match::Yes => return Match::Yes,
            Match::NotYet => result = Match::NotYet,
            Match::No => {}
        }
    }
    result
}

/// The outcome of the checks on the start of the file.
#[derive(Debug, Clone)]
enum Start {
    Pending,
    Pass,
    Fail(Refusal),
}

/// Checks the start of the file. `complete` says no more bytes will come, so a short
/// prefix is final rather than still undecided. Called again on the full prefix at
/// the end, so the verdict never depends on how the stream was chunked.
fn check_start(rule: &Rule, extension: &str, prefix: &[u8], complete: bool) -> Start {
    let expected = rule
        .noun()
        .map(|noun| format!(".{extension} files must be {noun}"));
    let mut waiting = false;
    for signature in SIGNATURES.iter().filter(|s| s.program) {
        match starts(prefix, signature.magic, complete) {
            Match::Yes => {
                let looks = format!(
                    "this looks like {}, and programs and scripts are never accepted",
                    signature.looks_like
                );
                let reason = match &expected {
                    Some(expected) => format!("{expected}; {looks}"),
                    None => looks,
                };
                return Start::Fail(mismatch(extension, reason));
            }
            Match::NotYet => waiting = true,
            Match::No => {}
        }
    }
    if waiting {
        return Start::Pending;
    }
    let found = match rule {
        Rule::Pdf => {
            if prefix.windows(PDF_MARKER.len()).any(|w| w == PDF_MARKER) {
                Match::Yes
            } else if complete || prefix.len() >= PREFIX_LEN {
                Match::No
            } else {
                Match::NotYet
            }
        }
        Rule::Package(..) => starts(prefix, ZIP_LOCAL, complete),
        Rule::Magic { magics, .. } => any_starts(prefix, magics.iter().copied(), complete),
        Rule::Text { .. } => {
            // Inverted: for text, a recognised binary format is the failure.
            let mut waiting = false;
            for signature in SIGNATURES.iter().filter(|s| !s.program) {
                match starts(prefix, signature.magic, complete) {
                    Match::Yes => {
                        let reason = format!(
                            ".{extension} files must be UTF-8 text; this looks like {}",
                            signature.looks_like
                        );
                        return Start::Fail(mismatch(extension, reason));
                    }
                    Match::NotYet => waiting = true,
                    Match::No => {}
                }
            }
            if waiting { Match::NotYet } else { Match::Yes }
        }
        Rule::Other => Match::Yes,
    };
    match (found, expected) {
        (Match::Yes, _) | (Match::No, None) => Start::Pass,
        (Match::NotYet, _) => Start::Pending,
        (Match::No, Some(expected)) => Start::Fail(mismatch(
            extension,
            format!("{expected}; {}", looks_like(prefix)),
        )),
    }
}

fn mismatch(extension: &str, reason: String) -> Refusal {
    Refusal::Mismatch {
        extension: extension.to_owned(),
        reason,
    }
}

/// A plain-English clause saying what the start of a file looks like.
fn looks_like(prefix: &[u8]) -> String {
    if prefix.is_empty() {
        return "the file is empty".to_owned();
    }
    if let Some(signature) = SIGNATURES.iter().find(|s| prefix.starts_with(s.magic)) {
        return format!("this looks like {}", signature.looks_like);
    }
    // The prefix may end part-way through a character, which is still text.
    let utf8 = match std::str::from_utf8(prefix) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if utf8 && !prefix.contains(&0) {
        "this looks like plain text".to_owned()
    } else {
        "this is not a format we recognise".to_owned()
    }
}

fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Streaming text check: the first NUL byte and the first invalid UTF-8 sequence,
/// by absolute offset, so the answer is the same however the bytes were chunked.
#[derive(Debug, Default)]
struct TextScanner {
    /// A character split across chunks: its bytes so far and where it started.
    pending: [u8; 4],
    pending_len: usize,
    pending_at: u64,
    first_nul: Option<u64>,
    first_invalid: Option<u64>,
}

/// What is wrong with text, and at which byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextProblem {
    Nul(u64),
    Invalid(u64),
    Truncated(u64),
}

impl TextProblem {
    fn at(self) -> u64 {
        match self {
            Self::Nul(at) | Self::Invalid(at) | Self::Truncated(at) => at,
        }
    }

    fn refusal(self, extension: &str) -> Refusal {
        let expected = format!(".{extension} files must be UTF-8 text");
        let reason = match self {
            Self::Nul(at) => format!(
                "{expected}; this contains a NUL byte (at offset {at}), which text never \
                 does, so it looks like binary data"
            ),
            Self::Invalid(at) => format!(
                "{expected}; the bytes at offset {at} are not valid UTF-8 (if this is \
                 text, save it as UTF-8 and upload it again)"
            ),
            Self::Truncated(at) => format!(
                "{expected}; it ends part-way through a UTF-8 character (started at \
                 offset {at})"
            ),
        };
        mismatch(extension, reason)
    }
}

impl TextScanner {
    /// `base` is the offset of `chunk`'s first byte in the file.
    fn feed(&mut self, chunk: &[u8], base: u64) {
        // Both scans cover every chunk up to the first problem either finds, so
        // nothing after it can change which problem came first.
        if self.first_nul.is_some() || self.first_invalid.is_some() {
            return;
        }
        if let Some(i) = chunk.iter().position(|&b| b == 0) {
            self.first_nul = Some(base + len64(i));
        }
        self.validate(chunk, base);
    }

    fn validate(&mut self, mut chunk: &[u8], mut base: u64) {
        if self.pending_len > 0 {
            let want = match self.pending[0] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let take = (want - self.pending_len).min(chunk.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&chunk[..take]);
            self.pending_len += take;
            chunk = &chunk[take..];
            base += len64(take);
            match std::str::from_utf8(&self.pending[..self.pending_len]) {
                Ok(_) => self.pending_len = 0,
                // Still incomplete, and this chunk is used up.
                Err(e) if e.error_len().is_none() => return,
                Err(_) => {
                    self.first_invalid = Some(self.pending_at);
                    self.pending_len = 0;
                    return;
                }
            }
        }
        if let Err(e) = std::str::from_utf8(chunk) {
            let at = e.valid_up_to();
            if e.error_len().is_some() {
                self.first_invalid = Some(base + len64(at));
            } else {
                // At most three bytes: the start of a character the next chunk ends.
                let rest = &chunk[at..];
                self.pending[..rest.len()].copy_from_slice(rest);
                self.pending_len = rest.len();
                self.pending_at = base + len64(at);
            }
        }
    }

    /// The earliest problem so far; `complete` also counts a character cut off by
    /// the end of the file.
    fn problem(&self, complete: bool) -> Option<TextProblem> {
        let truncated = (complete && self.pending_len > 0).then_some(self.pending_at);
        [
            self.first_nul.map(TextProblem::Nul),
            self.first_invalid.map(TextProblem::Invalid),
            truncated.map(TextProblem::Truncated),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|p| p.at())
    }
}

const LOCAL_HEADER: u32 = u32::from_be_bytes(*b"PK\x03\x04");
const CENTRAL_HEADER: u32 = u32::from_be_bytes(*b"PK\x01\x02");
/// Fixed part of a local file header, and where its name length sits.
const LOCAL_FIXED: usize = 30;
const LOCAL_NAME_LEN_AT: usize = 26;
/// Fixed part of a central directory header, and where its name length sits.
const CENTRAL_FIXED: usize = 46;
const CENTRAL_NAME_LEN_AT: usize = 28;

/// The facts about a package's entry names that the verdict needs; names themselves
/// are not kept, so a package with a million entries costs nothing extra.
#[derive(Debug, Default)]
struct PackageFacts {
    content_types: bool,
    main_parts: [bool; 3],
    macros: bool,
}

#[derive(Debug)]
enum ZipState {
    /// Looking for a header signature; the last four bytes seen, so a signature split
    /// across chunks is still found.
    Seeking { window: u32 },
    Header {
        buf: [u8; CENTRAL_FIXED],
        have: usize,
        fixed: usize,
        name_len_at: usize,
    },
    Name {
        skip: usize,
        tail: [u8; NAME_TAIL],
        have: usize,
        want: usize,
        full_len: usize,
    },
}

/// Finds ZIP entry names in a stream without unpacking anything. Local headers come
/// first and the central directory repeats every name at the end, so an entry hidden
/// from one is usually caught by the other. Entry data is scanned too, because its
/// length is not always known up front (data descriptors); a stray signature in it
/// only adds a junk name, which matches nothing.
#[derive(Debug)]
struct ZipScanner {
    state: ZipState,
    facts: PackageFacts,
}

impl Default for ZipScanner {
    fn default() -> Self {
        Self {
            state: ZipState::Seeking { window: 0 },
            facts: PackageFacts::default(),
        }
    }
}

impl ZipScanner {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let used = self.step(bytes);
            bytes = &bytes[used..];
        }
    }

    /// Consumes some of `bytes` (at least one) and returns how many.
    fn step(&mut self, bytes: &[u8]) -> usize {
        match &mut self.state {
            ZipState::Seeking { window } => {
                let mut w = *window;
                for (i, &b) in bytes.iter().enumerate() {
                    w = (w << 8) | u32::from(b);
                    let (fixed, name_len_at) = match w {
                        LOCAL_HEADER => (LOCAL_FIXED, LOCAL_NAME_LEN_AT),
                        CENTRAL_HEADER => (CENTRAL_FIXED, CENTRAL_NAME_LEN_AT),
                        _ => continue,
                    };
                    let mut buf = [0; CENTRAL_FIXED];
                    buf[..4].copy_from_slice(&w.to_be_bytes());
                    self.state = ZipState::Header {
                        buf,
                        have: 4,
                        fixed,
                        name_len_at,
                    };
                    return i + 1;
                }
                *window = w;
                bytes.len()
            }
            ZipState::Header {
                buf,
                have,
                fixed,
                name_len_at,
            } => {
                let take = (*fixed - *have).min(bytes.len());
                buf[*have..*have + take].copy_from_slice(&bytes[..take]);
                *have += take;
                if *have == *fixed {
                    let full_len = usize::from(u16::from_le_bytes([
                        buf[*name_len_at],
                        buf[*name_len_at + 1],
                    ]));
                    self.state = if full_len == 0 {
                        ZipState::Seeking { window: 0 }
                    } else {
                        ZipState::Name {
                            skip: full_len.saturating_sub(NAME_TAIL),
                            tail: [0; NAME_TAIL],
                            have: 0,
                            want: full_len.min(NAME_TAIL),
                            full_len,
                        }
                    };
                }
                take
            }
            ZipState::Name {
                skip,
                tail,
                have,
                want,
                full_len,
            } => {
                if *skip > 0 {
                    let take = (*skip).min(bytes.len());
                    *skip -= take;
                    return take;
                }
                let take = (*want - *have).min(bytes.len());
                tail[*have..*have + take].copy_from_slice(&bytes[..take]);
                *have += take;
                if *have == *want {
                    let (tail, have, full_len) = (*tail, *have, *full_len);
                    self.record(&tail[..have], full_len <= NAME_TAIL);
                    self.state = ZipState::Seeking { window: 0 };
                }
                take
            }
        }
    }

    /// `whole` says `name` is the entire name, not just its end.
    fn record(&mut self, name: &[u8], whole: bool) {
        // Part names are case-insensitive in OOXML, and some writers add a leading /.
        let macro_suffix = b"vbaproject.bin";
        if name.len() >= macro_suffix.len()
            && name[name.len() - macro_suffix.len()..].eq_ignore_ascii_case(macro_suffix)
        {
            self.facts.macros = true;
        }
        if !whole {
            return;
        }
        let name = name.strip_prefix(b"/").unwrap_or(name);
        if name.eq_ignore_ascii_case(b"[Content_Types].xml") {
            self.facts.content_types = true;
        }
        for package in Package::ALL {
            if name.eq_ignore_ascii_case(package.main_part().as_bytes()) {
                self.facts.main_parts[package.index()] = true;
            }
        }
    }
}

/// Watches an upload as it streams and decides whether its content agrees with its
/// extension. Memory stays bounded whatever the file's size.
#[derive(Debug)]
pub struct Inspector {
    extension: String,
    rule: Rule,
    /// The first [`PREFIX_LEN`] bytes; never grows past that.
    prefix: Vec<u8>,
    seen: u64,
    start: Start,
}

impl Inspector {
    /// Starts inspecting a file with `extension` (lower-case, no dot), which must be
    /// one of `allowed` (the configured list, lower-case, no dots).
    ///
    /// # Errors
    /// [`Refusal::Extension`] when the extension is not in `allowed`.
    pub fn new(extension: &str, allowed: &[String]) -> Result<Self, Refusal> {
        let extension = extension.trim_start_matches('.').to_ascii_lowercase();
        if extension.is_empty() || !allowed.iter().any(|a| a.eq_ignore_ascii_case(&extension)) {
            return Err(Refusal::Extension(extension));
        }
        Ok(Self {
            rule: Rule::for_extension(&extension),
            extension,
            prefix: Vec::with_capacity(PREFIX_LEN),
            seen: 0,
            start: Start::Pending,
        })
    }

    /// Feeds the next chunk. Chunks may be any size, down to one byte; signatures and
    /// characters split across chunks are handled.
    pub fn update(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        let room = PREFIX_LEN - self.prefix.len();
        self.prefix
            .extend_from_slice(&chunk[..room.min(chunk.len())]);
        if matches!(self.start, Start::Pending) {
            self.start = check_start(&self.rule, &self.extension, &self.prefix, false);
        }
        // Once the start has failed the verdict is settled, so there is nothing more
        // worth scanning.
        if !matches!(self.start, Start::Fail(_)) {
            match &mut self.rule {
                Rule::Package(_, zip) if !zip.facts.macros => zip.feed(chunk),
                Rule::Text { scanner, .. } => scanner.feed(chunk, self.seen),
                _ => {}
            }
        }
        self.seen += len64(chunk.len());
    }

    /// `Some` as soon as the file is certain to be refused (a wrong or executable
    /// start, a NUL in text, macros in a package), so the upload can stop early;
    /// `None` while it may still pass. Cheap enough to call after every chunk.
    #[must_use]
    pub fn early_refusal(&self) -> Option<Refusal> {
        match &self.start {
            Start::Fail(refusal) => return Some(refusal.clone()),
            // Report later problems only once the start is settled, so the early
            // answer is the one `finish` would give.
            Start::Pending => return None,
            Start::Pass => {}
        }
        match &self.rule {
            Rule::Package(_, zip) if zip.facts.macros => Some(Refusal::MacroEnabled {
                extension: self.extension.clone(),
            }),
            Rule::Text { scanner, .. } => {
                scanner.problem(false).map(|p| p.refusal(&self.extension))
            }
            _ => None,
        }
    }

    /// The verdict once every byte has been seen.
    ///
    /// # Errors
    /// [`Refusal::Mismatch`] when the content contradicts the extension or is a
    /// program; [`Refusal::MacroEnabled`] for an Office file carrying macros.
    pub fn finish(self) -> Result<Verdict, Refusal> {
        if let Start::Fail(refusal) = check_start(&self.rule, &self.extension, &self.prefix, true) {
            return Err(refusal);
        }
        let content_type = match self.rule {
            Rule::Pdf => "application/pdf",
            Rule::Package(package, zip) => check_package(package, &zip.facts, &self.extension)?,
            Rule::Magic { content_type, .. } => content_type,
            Rule::Text {
                content_type,
                scanner,
            } => match scanner.problem(true) {
                Some(problem) => return Err(problem.refusal(&self.extension)),
                None => content_type,
            },
            Rule::Other => "application/octet-stream",
        };
        Ok(Verdict { content_type })
    }
}

fn check_package(
    package: Package,
    facts: &PackageFacts,
    extension: &str,
) -> Result<&'static str, Refusal> {
    if facts.macros {
        return Err(Refusal::MacroEnabled {
            extension: extension.to_owned(),
        });
    }
    let expected = format!(".{extension} files must be {}", package.noun());
    let part = package.main_part();
    if !facts.main_parts[package.index()] {
        let other = Package::ALL
            .into_iter()
            .find(|p| facts.main_parts[p.index()]);
        let looks = match other {
            Some(other) => format!("this looks like {}", other.one()),
            None if facts.content_types => {
                format!("this is an Office package, but it has no {part}")
            }
            None => format!("this is a ZIP archive, not an Office document (it has no {part})"),
        };
        return Err(mismatch(extension, format!("{expected}; {looks}")));
    }
    if !facts.content_types {
        return Err(mismatch(
            extension,
            format!(
                "{expected}; this ZIP archive has {part} but no [Content_Types].xml, so it \
                 is not a valid Office document"
            ),
        ));
    }
    Ok(package.content_type())
}

/// The last path component, whichever separator the client's system uses.
fn last_component(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Characters never kept in a stored name: controls (NUL included), characters
/// Windows reserves, and bidirectional overrides, which can make `cod.exe` display
/// as `exe.doc`.
fn is_dropped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '<' | '>'
                | ':'
                | '"'
                | '|'
                | '?'
                | '*'
                | '/'
                | '\\'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Drops what Windows would silently drop at the end of a name (dots, spaces), so
/// `report.pdf.` has the extension `pdf`.
fn trim_tail(name: &str) -> &str {
    name.trim_end_matches(|c: char| c == '.' || c.is_whitespace() || is_dropped(c))
}

/// Splits `base` into stem and extension. A name that is only dots before the last
/// one (`.bashrc`, `..pdf`) is a hidden file without an extension.
fn split_extension(base: &str) -> Option<(&str, &str)> {
    let (stem, extension) = base.rsplit_once('.')?;
    let valid = !extension.is_empty()
        && extension.len() <= MAX_EXTENSION_LEN
        && extension.bytes().all(|b| b.is_ascii_alphanumeric());
    (valid && !stem.chars().all(|c| c == '.')).then_some((stem, extension))
}

/// The file extension of a (client-supplied) file name: lower-case, without the
/// dot. `None` when there is none: no dot, a hidden file such as `.env`, or a tail
/// after the last dot that is not 1 to 16 ASCII letters and digits.
#[must_use]
pub fn extension_of(file_name: &str) -> Option<String> {
    split_extension(trim_tail(last_component(file_name))).map(|(_, ext)| ext.to_ascii_lowercase())
}

/// A safe name to store and show: directory parts (`/` and `\`), control
/// characters, NUL, reserved characters `<>:"|?*`, bidirectional overrides and
/// leading dots removed, whitespace collapsed and trimmed, and at most 200 bytes
/// (cut on a character boundary, keeping the extension). `file` (plus the
/// extension) when nothing is left.
#[must_use]
pub fn sanitize_file_name(name: &str) -> String {
    // Dropping a character can make a new extension appear (`a .>a` becomes `a .a`),
    // which a second pass would treat differently; settle on the fixed point, so a
    // stored name is left as it is if it is ever sanitized again.
    let mut clean = sanitize_once(name);
    for _ in 0..4 {
        let again = sanitize_once(&clean);
        if again == clean {
            break;
        }
        clean = again;
    }
    clean
}

fn sanitize_once(name: &str) -> String {
    let base = trim_tail(last_component(name));
    let (stem, extension) = match split_extension(base) {
        Some((stem, extension)) => (stem, Some(extension)),
        None => (base, None),
    };
    let budget = MAX_NAME_BYTES - extension.map_or(0, |e| e.len() + 1);
    let mut clean = String::with_capacity(stem.len().min(budget));
    let mut after_space = false;
    for c in stem.chars() {
        if c.is_whitespace() {
            if !after_space {
                clean.push(' ');
            }
            after_space = true;
        } else if !is_dropped(c) {
            clean.push(c);
            after_space = false;
        }
    }
    let mut clean = clean
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .to_owned();
    clean.truncate(clean.floor_char_boundary(budget));
    // Cutting can leave what `trim_tail` would strip next time, which would make the
    // name change if it were sanitized again.
    let keep = match extension {
        Some(_) => clean.trim_end().len(),
        None => trim_tail(&clean).len(),
    };
    clean.truncate(keep);
    if clean.is_empty() {
        clean.push_str("file");
    }
    if let Some(extension) = extension {
        clean.push('.');
        clean.push_str(extension);
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALLOWED: &[&str] = &[
        "pdf", "docx", "xlsx", "pptx", "doc", "xls", "ppt", "txt", "csv", "md", "json", "xml",
        "log", "png", "jpg", "jpeg", "gif", "zip", "rtf",
    ];

    fn allowed() -> Vec<String> {
        ALLOWED.iter().map(|s| (*s).to_owned()).collect()
    }

    fn run(extension: &str, bytes: &[u8], chunk: usize) -> Result<Verdict, Refusal> {
        let mut inspector = Inspector::new(extension, &allowed()).unwrap();
        for piece in bytes.chunks(chunk) {
            inspector.update(piece);
        }
        inspector.finish()
    }

    /// The verdict, checked to be the same whether the bytes come in one chunk, one
    /// byte at a time, or in odd-sized pieces.
    fn verdict(extension: &str, bytes: &[u8]) -> Result<Verdict, Refusal> {
        let whole = run(extension, bytes, usize::MAX);
        for chunk in [1, 3, 7, 64, 1000] {
            assert_eq!(run(extension, bytes, chunk), whole, "chunk size {chunk}");
        }
        whole
    }

    fn reason(result: Result<Verdict, Refusal>) -> String {
        match result {
            Err(Refusal::Mismatch { reason, .. }) => reason,
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
        !crc
    }

    /// A real ZIP archive with STORED entries, local headers, a central directory and
    /// the end record: enough for any unzip tool to open.
    fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = u32::try_from(out.len()).unwrap();
            let size = u32::try_from(data.len()).unwrap();
            let name_len = u16::try_from(name.len()).unwrap();
            // version needed, flags, method (stored), time, date (1980-01-01)
            let common = [20u16, 0, 0, 0, 0x21].map(u16::to_le_bytes).concat();
            let sizes = [crc32(data), size, size].map(u32::to_le_bytes).concat();
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&common);
            out.extend_from_slice(&sizes);
            out.extend_from_slice(&name_len.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&20u16.to_le_bytes());
            central.extend_from_slice(&common);
            central.extend_from_slice(&sizes);
            // name, extra and comment lengths, disk, internal attributes
            central.extend_from_slice(&[name_len, 0, 0, 0, 0].map(u16::to_le_bytes).concat());
            central.extend_from_slice(&0u32.to_le_bytes());
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let count = u16::try_from(entries.len()).unwrap();
        let central_size = u32::try_from(central.len()).unwrap();
        let central_offset = u32::try_from(out.len()).unwrap();
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0, 0, count, count].map(u16::to_le_bytes).concat());
        out.extend_from_slice(&central_size.to_le_bytes());
        out.extend_from_slice(&central_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    const RELS: &[u8] = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="MAIN"/></Relationships>"#;

    fn content_types(main: &str, main_type: &str, macros: bool) -> Vec<u8> {
        let vba = if macros {
            r#"<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>"#
        } else {
            ""
        };
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>{vba}<Override PartName="/{main}" ContentType="{main_type}"/></Types>"#
        )
        .into_bytes()
    }

    fn docx(macros: bool) -> Vec<u8> {
        let types = content_types(
            "word/document.xml",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            macros,
        );
        let rels = String::from_utf8_lossy(RELS).replace("MAIN", "word/document.xml");
        let document = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Access review, Q3</w:t></w:r></w:p></w:body></w:document>"#;
        let vba: &[u8] = b"\xd0\xcf\x11\xe0 not really a VBA project";
        let mut entries: Vec<(&str, &[u8])> = vec![
            ("[Content_Types].xml", &types),
            ("_rels/.rels", rels.as_bytes()),
            ("word/document.xml", document),
        ];
        if macros {
            entries.push(("word/vbaProject.bin", vba));
        }
        stored_zip(&entries)
    }

    fn xlsx() -> Vec<u8> {
        let types = content_types(
            "xl/workbook.xml",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            false,
        );
        let rels = String::from_utf8_lossy(RELS).replace("MAIN", "xl/workbook.xml");
        let workbook = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Risks" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
        let workbook_rels = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
        let sheet = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Risk</t></is></c></row></sheetData></worksheet>"#;
        stored_zip(&[
            ("[Content_Types].xml", &types),
            ("_rels/.rels", rels.as_bytes()),
            ("xl/workbook.xml", workbook),
            ("xl/_rels/workbook.xml.rels", workbook_rels),
            ("xl/worksheets/sheet1.xml", sheet),
        ])
    }

    fn pptx() -> Vec<u8> {
        let types = content_types(
            "ppt/presentation.xml",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
            false,
        );
        let rels = String::from_utf8_lossy(RELS).replace("MAIN", "ppt/presentation.xml");
        let presentation = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>"#;
        stored_zip(&[
            ("[Content_Types].xml", &types),
            ("_rels/.rels", rels.as_bytes()),
            ("ppt/presentation.xml", presentation),
        ])
    }

    fn pdf() -> Vec<u8> {
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
            .to_vec()
    }

    fn windows_exe() -> Vec<u8> {
        let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".to_vec();
        exe.extend_from_slice(&[0; 48]);
        exe.extend_from_slice(b"This program cannot be run in DOS mode.\r\r\n$");
        exe
    }

    #[test]
    fn a_real_pdf_is_accepted() {
        assert_eq!(
            verdict("pdf", &pdf()).unwrap().content_type,
            "application/pdf"
        );
    }

    #[test]
    fn the_pdf_marker_may_follow_junk_within_the_first_kilobyte_only() {
        let mut late = vec![b' '; 1000];
        late.extend_from_slice(&pdf());
        assert!(verdict("pdf", &late).is_ok());
        let mut too_late = vec![b' '; 1020];
        too_late.extend_from_slice(&pdf());
        let why = reason(verdict("pdf", &too_late));
        assert!(why.contains("%PDF-"), "{why}");
        assert!(why.contains("plain text"), "{why}");
    }

    #[test]
    fn a_pdf_that_is_a_windows_program_is_refused() {
        let why = reason(verdict("pdf", &windows_exe()));
        assert!(why.starts_with(".pdf files must be PDF documents"), "{why}");
        assert!(why.contains("Windows program"), "{why}");
    }

    #[test]
    fn a_pdf_starting_mz_is_refused_after_the_first_chunk() {
        let exe = windows_exe();
        let mut inspector = Inspector::new("pdf", &allowed()).unwrap();
        inspector.update(&exe[..16]);
        let early = inspector.early_refusal().unwrap();
        assert!(matches!(early, Refusal::Mismatch { ref extension, .. } if extension == "pdf"));
        assert!(early.to_string().contains("program"), "{early}");
    }

    #[test]
    fn early_refusal_waits_while_the_start_is_undecided() {
        let mut inspector = Inspector::new("pdf", &allowed()).unwrap();
        inspector.update(b"M");
        assert_eq!(inspector.early_refusal(), None);
        inspector.update(b"Z");
        assert!(inspector.early_refusal().is_some());

        let mut inspector = Inspector::new("pdf", &allowed()).unwrap();
        inspector.update(&pdf());
        assert_eq!(inspector.early_refusal(), None);
    }

    #[test]
    fn programs_are_refused_under_every_extension() {
        let starts: [&[u8]; 7] = [
            b"MZ",
            b"\x7fELF\x02\x01\x01",
            &[0xFE, 0xED, 0xFA, 0xCE],
            &[0xFE, 0xED, 0xFA, 0xCF],
            &[0xCE, 0xFA, 0xED, 0xFE],
            &[0xCF, 0xFA, 0xED, 0xFE],
            &[0xCA, 0xFE, 0xBA, 0xBE],
        ];
        for extension in ALLOWED {
            for start in starts {
                let mut bytes = start.to_vec();
                bytes.extend_from_slice(b" and then some more bytes");
                let why = reason(verdict(extension, &bytes));
                assert!(why.contains("program"), "{extension}: {why}");
            }
            let why = reason(verdict(extension, b"#!/bin/sh\nrm -rf /\n"));
            assert!(
                why.contains("script (it starts with #!)"),
                "{extension}: {why}"
            );
        }
    }

    #[test]
    fn valid_office_packages_are_accepted() {
        assert_eq!(
            verdict("docx", &docx(false)).unwrap().content_type,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(
            verdict("xlsx", &xlsx()).unwrap().content_type,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        assert_eq!(
            verdict("pptx", &pptx()).unwrap().content_type,
            "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        );
    }

    #[test]
    fn a_docx_with_macros_is_refused() {
        assert_eq!(
            verdict("docx", &docx(true)),
            Err(Refusal::MacroEnabled {
                extension: "docx".into()
            })
        );
        let mut inspector = Inspector::new("docx", &allowed()).unwrap();
        let mut refused_early = false;
        for byte in docx(true).chunks(1) {
            inspector.update(byte);
            refused_early |= inspector.early_refusal().is_some();
        }
        assert!(refused_early);
    }

    #[test]
    fn macros_named_only_in_the_central_directory_are_still_found() {
        let mut bytes = docx(true);
        let local = bytes
            .windows(30 + 19)
            .position(|w| w.starts_with(b"PK\x03\x04") && w.ends_with(b"word/vbaProject.bin"))
            .unwrap();
        bytes[local..local + 4].copy_from_slice(b"XX\x03\x04");
        assert!(matches!(
            verdict("docx", &bytes),
            Err(Refusal::MacroEnabled { .. })
        ));
    }

    #[test]
    fn a_docx_that_is_really_a_workbook_is_refused() {
        let why = reason(verdict("docx", &xlsx()));
        assert!(
            why.starts_with(".docx files must be Word documents"),
            "{why}"
        );
        assert!(why.contains("an Excel workbook (.xlsx)"), "{why}");
        let why = reason(verdict("xlsx", &docx(false)));
        assert!(why.contains("a Word document (.docx)"), "{why}");
    }

    #[test]
    fn a_docx_that_is_plain_text_is_refused_from_its_first_bytes() {
        let text = b"Minutes of the risk committee, 3 March.\n";
        let why = reason(verdict("docx", text));
        assert!(why.contains("this looks like plain text"), "{why}");
        let mut inspector = Inspector::new("docx", &allowed()).unwrap();
        inspector.update(&text[..4]);
        assert!(inspector.early_refusal().is_some());
    }

    #[test]
    fn a_docx_that_is_some_other_zip_is_refused() {
        let plain = stored_zip(&[("notes.txt", b"hello")]);
        let why = reason(verdict("docx", &plain));
        assert!(why.contains("ZIP archive, not an Office document"), "{why}");
        let no_types = stored_zip(&[("word/document.xml", b"<w:document/>")]);
        let why = reason(verdict("docx", &no_types));
        assert!(why.contains("[Content_Types].xml"), "{why}");
        assert_eq!(
            verdict("zip", &plain).unwrap().content_type,
            "application/zip"
        );
    }

    #[test]
    fn legacy_office_files_need_the_ole2_magic() {
        let mut ole = OLE2.to_vec();
        ole.extend_from_slice(&[0; 504]);
        assert_eq!(
            verdict("doc", &ole).unwrap().content_type,
            "application/msword"
        );
        assert_eq!(
            verdict("xls", &ole).unwrap().content_type,
            "application/vnd.ms-excel"
        );
        assert_eq!(
            verdict("ppt", &ole).unwrap().content_type,
            "application/vnd.ms-powerpoint"
        );
        let why = reason(verdict("xls", &docx(false)));
        assert!(
            why.contains("Excel 97-2003") && why.contains("ZIP archive"),
            "{why}"
        );
    }

    #[test]
    fn images_and_archives_need_their_magic() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(verdict("png", png).unwrap().content_type, "image/png");
        assert_eq!(
            verdict("jpg", b"\xff\xd8\xff\xe0\0\x10JFIF")
                .unwrap()
                .content_type,
            "image/jpeg"
        );
        assert_eq!(
            verdict("jpeg", b"\xff\xd8\xff\xdb").unwrap().content_type,
            "image/jpeg"
        );
        assert_eq!(
            verdict("gif", b"GIF87a\x01\0\x01\0").unwrap().content_type,
            "image/gif"
        );
        assert_eq!(
            verdict("gif", b"GIF89a\x01\0\x01\0").unwrap().content_type,
            "image/gif"
        );
        let empty_zip = stored_zip(&[]);
        assert!(empty_zip.starts_with(ZIP_EMPTY));
        assert!(verdict("zip", &empty_zip).is_ok());
        let why = reason(verdict("png", b"\xff\xd8\xff\xe0\0\x10JFIF"));
        assert_eq!(
            why,
            ".png files must be PNG images; this looks like a JPEG image"
        );
        let why = reason(verdict("gif", b"GIF90a"));
        assert!(why.contains("plain text"), "{why}");
        let why = reason(verdict("zip", b"\x00\x01\x02"));
        assert!(why.contains("not a format we recognise"), "{why}");
    }

    #[test]
    fn empty_files_fail_formats_with_a_signature_only() {
        assert!(reason(verdict("pdf", b"")).contains("the file is empty"));
        assert!(reason(verdict("png", b"")).contains("the file is empty"));
        assert!(verdict("txt", b"").is_ok());
        assert!(verdict("rtf", b"").is_ok());
    }

    #[test]
    fn text_must_be_utf8_without_nul() {
        let text = "Control owner: Zoë Ångström — approved ✅\n".as_bytes();
        for extension in ["txt", "csv", "md", "json", "xml", "log"] {
            assert!(verdict(extension, text).is_ok(), "{extension}");
        }
        assert_eq!(
            verdict("csv", b"a,b\n").unwrap().content_type,
            "text/csv; charset=utf-8"
        );
        assert_eq!(
            verdict("md", b"# x").unwrap().content_type,
            "text/markdown; charset=utf-8"
        );
        assert_eq!(
            verdict("json", b"{}").unwrap().content_type,
            "application/json"
        );
        assert_eq!(
            verdict("xml", b"<a/>").unwrap().content_type,
            "application/xml"
        );
        assert_eq!(
            verdict("log", b"ok").unwrap().content_type,
            "text/plain; charset=utf-8"
        );

        let why = reason(verdict("txt", b"caf\xe9 au lait"));
        assert!(why.contains("offset 3 are not valid UTF-8"), "{why}");
        let why = reason(verdict("csv", b"a,b\nc,\0d\n"));
        assert!(why.contains("NUL byte (at offset 6)"), "{why}");
        let why = reason(verdict(
            "txt",
            "ends mid-✅".as_bytes().split_last().unwrap().1,
        ));
        assert!(
            why.contains("part-way through a UTF-8 character (started at offset 9)"),
            "{why}"
        );
        // The earlier problem wins, whichever kind it is.
        assert!(reason(verdict("txt", b"a\xffb\0")).contains("offset 1 are not valid"));
        assert!(reason(verdict("txt", b"a\0b\xff")).contains("NUL byte (at offset 1)"));
    }

    #[test]
    fn characters_split_across_chunks_are_accepted() {
        let text = "€✅🙂".as_bytes();
        for split in 1..text.len() {
            let mut inspector = Inspector::new("txt", &allowed()).unwrap();
            inspector.update(&text[..split]);
            assert_eq!(inspector.early_refusal(), None);
            inspector.update(&text[split..]);
            assert!(inspector.finish().is_ok(), "split at {split}");
        }
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(b"id,name\n1,x\n");
        assert!(verdict("csv", &bom).is_ok());
    }

    #[test]
    fn text_that_starts_like_a_binary_format_is_refused() {
        let why = reason(verdict("txt", &pdf()));
        assert_eq!(
            why,
            ".txt files must be UTF-8 text; this looks like a PDF document"
        );
        let why = reason(verdict("csv", b"\xff\xfea\0,\0b\0"));
        assert!(why.contains("UTF-16 text"), "{why}");
        assert!(reason(verdict("json", &docx(false))).contains("ZIP archive"));
    }

    #[test]
    fn a_nul_in_csv_is_refused_early() {
        let mut inspector = Inspector::new("csv", &allowed()).unwrap();
        inspector.update(b"name,score\nalice,");
        assert_eq!(inspector.early_refusal(), None);
        inspector.update(b"\0\0\0\x07");
        assert!(inspector.early_refusal().is_some());
    }

    #[test]
    fn other_allowed_extensions_accept_anything_but_programs() {
        assert_eq!(
            verdict("rtf", b"{\\rtf1 hello}").unwrap().content_type,
            "application/octet-stream"
        );
        let why = reason(verdict("rtf", &windows_exe()));
        assert_eq!(
            why,
            "this looks like a Windows program, and programs and scripts are never accepted"
        );
    }

    #[test]
    fn extensions_outside_the_list_are_refused_by_new() {
        let refused = Inspector::new("exe", &allowed()).err().unwrap();
        assert_eq!(refused, Refusal::Extension("exe".into()));
        assert_eq!(
            refused.to_string(),
            "files ending .exe are not accepted here"
        );
        assert!(Inspector::new("", &allowed()).is_err());
        assert!(Inspector::new("pdf", &[]).is_err());
        assert!(Inspector::new("PDF", &allowed()).is_ok());
    }

    #[test]
    fn messages_read_well() {
        let refusal = run("pdf", &windows_exe(), 1).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "this file's content does not match its .pdf extension: .pdf files must be PDF \
             documents, which begin with %PDF-; this looks like a Windows program, and \
             programs and scripts are never accepted"
        );
        assert!(
            Refusal::MacroEnabled {
                extension: "xlsx".into()
            }
            .to_string()
            .starts_with("this .xlsx file contains macros")
        );
    }

    #[test]
    fn memory_stays_bounded_on_large_input() {
        let block = vec![b'a'; 64 * 1024];
        let mut inspector = Inspector::new("txt", &allowed()).unwrap();
        let mut zip = Inspector::new("docx", &allowed()).unwrap();
        zip.update(&docx(false));
        for _ in 0..160 {
            inspector.update(&block);
            zip.update(&block);
        }
        assert!(inspector.prefix.len() <= PREFIX_LEN && inspector.prefix.capacity() <= PREFIX_LEN);
        assert!(zip.prefix.capacity() <= PREFIX_LEN);
        assert!(std::mem::size_of::<Inspector>() < 512);
        assert!(inspector.finish().is_ok());
        assert!(zip.finish().is_ok());
    }

    #[test]
    fn extension_of_cases() {
        let cases: &[(&str, Option<&str>)] = &[
            ("report.PDF", Some("pdf")),
            ("archive.tar.gz", Some("gz")),
            ("C:\\Users\\me\\Evidence.Docx", Some("docx")),
            ("dir.d/readme", None),
            ("noext", None),
            (".hidden", None),
            ("..pdf", None),
            ("trailing.", None),
            ("evil.pdf. ", Some("pdf")),
            ("name.with space", None),
            ("a.abcdefghijklmnopq", None),
            ("", None),
        ];
        for (name, expected) in cases {
            assert_eq!(extension_of(name).as_deref(), *expected, "{name:?}");
        }
    }

    #[test]
    fn sanitize_file_name_cases() {
        let cases: &[(&str, &str)] = &[
            ("../../etc/passwd", "passwd"),
            ("..\\..\\boot.ini", "boot.ini"),
            ("C:\\Users\\me\\Q3 report.pdf", "Q3 report.pdf"),
            ("/var/tmp/", "file"),
            ("evil\0.pdf", "evil.pdf"),
            ("evil.pdf\0.exe", "evil.pdf.exe"),
            ("a<b>c:d\"e|f?g*h.txt", "abcdefgh.txt"),
            ("  too \t many\n\nspaces  .csv", "too many spaces.csv"),
            ("invoice\u{202E}fdp.exe", "invoicefdp.exe"),
            (".hidden", "hidden"),
            ("..", "file"),
            ("...", "file"),
            (".", "file"),
            ("", "file"),
            ("   ", "file"),
            ("<>.pdf", "file.pdf"),
            (".x.pdf", "x.pdf"),
            ("report.pdf.", "report.pdf"),
            ("Ünïcödé näme.md", "Ünïcödé näme.md"),
        ];
        for (name, expected) in cases {
            assert_eq!(sanitize_file_name(name), *expected, "{name:?}");
        }
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary_keeping_the_extension() {
        let long = format!("{}.xlsx", "é".repeat(300));
        let safe = sanitize_file_name(&long);
        assert!(safe.len() <= MAX_NAME_BYTES, "{}", safe.len());
        assert!(safe.ends_with("é.xlsx"));
        assert_eq!(safe.len(), 199);
        let no_extension = "x".repeat(500);
        assert_eq!(sanitize_file_name(&no_extension), "x".repeat(200));
    }

    fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
        let mut late_pdf = vec![b'%'; 1019];
        late_pdf.extend_from_slice(b"%PDF-1.7");
        vec![
            ("pdf", pdf()),
            ("pdf", windows_exe()),
            ("pdf", late_pdf),
            ("docx", docx(false)),
            ("docx", docx(true)),
            ("docx", xlsx()),
            ("xlsx", xlsx()),
            ("pptx", pptx()),
            ("docx", b"plain words".to_vec()),
            ("txt", "naïve café ✅ 🙂".as_bytes().to_vec()),
            ("txt", b"ok\xe2\x82".to_vec()),
            ("csv", b"a,\0b".to_vec()),
            ("png", b"\x89PNG\r\n\x1a\n".to_vec()),
            ("rtf", b"#!/usr/bin/env python".to_vec()),
        ]
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_verdict(
            which in 0..14usize,
            sizes in proptest::collection::vec(1..40usize, 1..64),
        ) {
            let fixtures = fixtures();
            let (extension, bytes) = &fixtures[which % fixtures.len()];
            let expected = run(extension, bytes, usize::MAX);
            let mut inspector = Inspector::new(extension, &allowed()).unwrap();
            let mut rest = bytes.as_slice();
            let mut early = None;
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at((*size).min(rest.len()));
                inspector.update(piece);
                early = early.or_else(|| inspector.early_refusal());
                rest = tail;
            }
            let got = inspector.finish();
            prop_assert_eq!(&got, &expected);
            // An early refusal is a promise that the file will be refused.
            if early.is_some() {
                prop_assert!(got.is_err());
            }
        }

        #[test]
        fn sanitized_names_are_safe_and_stable(name in "\\PC{0,300}|[./\\\\ a-z\u{0}<>:|?*]{0,40}") {
            let safe = sanitize_file_name(&name);
            prop_assert!(!safe.is_empty() && safe.len() <= MAX_NAME_BYTES);
            prop_assert!(!safe.starts_with('.') && !safe.starts_with(' ') && !safe.ends_with(' '));
            prop_assert!(!safe.chars().any(is_dropped), "{:?}", safe);
            prop_assert!(!safe.contains("  "));
            prop_assert_eq!(sanitize_file_name(&safe), safe.clone());
            if let Some(extension) = extension_of(&name) {
                prop_assert_eq!(extension_of(&safe), Some(extension));
            }
        }
    }
}
