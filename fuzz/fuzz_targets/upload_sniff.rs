//! Upload sniffing: any bytes, under any allowed extension, fed in any chunking, give
//! a verdict or a refusal — never a panic — and the same answer however the upload
//! was split into chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ruleiq_services::evidence::sniff::Inspector;

/// The default list of accepted extensions, and two the sniffer has rules for that an
/// operator may add.
const EXTENSIONS: [&str; 8] = ["pdf", "doc", "docx", "txt", "csv", "xlsx", "png", "jpg"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some((&chunk, body)) = rest.split_first() else {
        return;
    };
    let extension = EXTENSIONS[usize::from(selector) % EXTENSIONS.len()];
    let allowed: Vec<String> = EXTENSIONS.iter().map(|e| (*e).to_owned()).collect();
    let whole = {
        let mut inspector = Inspector::new(extension, &allowed).expect("an allowed extension");
        inspector.update(body);
        inspector.finish()
    };
    let chunked = {
        let mut inspector = Inspector::new(extension, &allowed).expect("an allowed extension");
        for piece in body.chunks(usize::from(chunk).max(1)) {
            inspector.update(piece);
        }
        inspector.finish()
    };
    assert_eq!(
        whole, chunked,
        "the verdict depends on how the upload was split"
    );
});
