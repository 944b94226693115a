//! Times rendering of the sample policy. Run in release:
//! `cargo run --release --example timing [OUTPUT_DIR]`
//! With OUTPUT_DIR, also writes policy.pdf, policy.docx and policy.md there for a look.

use std::time::Instant;

use ruleiq_docs::{DocsError, Document, render_docx, render_pdf};

fn main() -> Result<(), DocsError> {
    let doc = Document {
        title: "Information Security Policy".to_owned(),
        subtitle: Some("Acme Ltd — version 3".to_owned()),
        meta: vec![
            ("Status".to_owned(), "Approved".to_owned()),
            ("Approved by".to_owned(), "Jane Doe, CEO".to_owned()),
            ("Next review".to_owned(), "2027-03-01".to_owned()),
        ],
        body_markdown: include_str!("../tests/fixtures/information_security_policy.md").to_owned(),
        footer: Some("Acme Ltd — Confidential".to_owned()),
    };
    const RUNS: u32 = 20;

    let cold = Instant::now();
    let pdf = render_pdf(&doc)?;
    println!(
        "pdf  first render (fonts loaded here): {:?}, {} bytes",
        cold.elapsed(),
        pdf.len()
    );

    let warm = Instant::now();
    for _ in 0..RUNS {
        render_pdf(&doc)?;
    }
    println!("pdf  warm mean over {RUNS}: {:?}", warm.elapsed() / RUNS);

    let docx = render_docx(&doc)?;
    let warm = Instant::now();
    for _ in 0..RUNS {
        render_docx(&doc)?;
    }
    println!(
        "docx warm mean over {RUNS}: {:?}, {} bytes",
        warm.elapsed() / RUNS,
        docx.len()
    );

    if let Some(dir) = std::env::args_os().nth(1) {
        let dir = std::path::PathBuf::from(dir);
        let write = |name: &str, bytes: &[u8]| {
            if let Err(err) = std::fs::write(dir.join(name), bytes) {
                eprintln!("could not write {name}: {err}");
            }
        };
        write("policy.pdf", &pdf);
        write("policy.docx", &docx);
        write("policy.md", ruleiq_docs::render_markdown(&doc).as_bytes());
    }
    Ok(())
}
