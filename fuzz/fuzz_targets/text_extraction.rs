//! Text extraction from PDF, Word, Excel, CSV and text: any bytes give text or a
//! refusal, never a panic, and never more text than asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ruleiq_services::evidence::extract::{Format, extract_blocking};

const FORMATS: [Format; 5] = [
    Format::Pdf,
    Format::Docx,
    Format::Xlsx,
    Format::Csv,
    Format::Txt,
];
const MAX_CHARS: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(selector) % FORMATS.len()];
    if let Ok(text) = extract_blocking(format, body, MAX_CHARS) {
        assert!(
            text.chars().count() <= MAX_CHARS,
            "more text than asked for"
        );
    }
});
