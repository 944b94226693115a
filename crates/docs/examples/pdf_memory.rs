//! Resident memory of PDF rendering, split into the heap (anonymous pages) and the
//! executable's pages (file-backed, typst's code and the fonts compiled in), at each
//! step: before any render, after a one-page document, after an audit-pack-like index
//! of ROWS table rows (default 300), and after that again. Linux only. Run in release:
//! `cargo run --release -p ruleiq-docs --example pdf_memory [ROWS]`

use std::fmt::Write as _;

use ruleiq_docs::{DocsError, Document, render_pdf};

fn main() -> Result<(), DocsError> {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    report("before any render");
    let small = Document {
        title: "A short note".into(),
        body_markdown: "One paragraph of *text* and a `code` span.".into(),
        ..Default::default()
    };
    render_pdf(&small)?;
    report("after a one-page document");
    let index = index(rows);
    let bytes = render_pdf(&index)?.len();
    report(&format!("after a {rows}-row index ({bytes} bytes)"));
    render_pdf(&index)?;
    report("after the index again");
    Ok(())
}

fn index(rows: usize) -> Document {
    let mut body = String::from(
        "## Controls\n\n| Framework | Control | Answers | Evidence |\n|---|---|---|---|\n",
    );
    for i in 0..rows {
        let _ = writeln!(
            body,
            "| ISO/IEC 27001:2022 | A.{}.{} Control number {i} about access | yes, partly | \
             Firewall rule export {i}; Access review minutes {i}; and 2 more (see index.html) |",
            5 + i % 4,
            i % 37
        );
    }
    Document {
        title: "Audit pack".into(),
        subtitle: Some("Example Ltd".into()),
        meta: vec![("Generated".into(), "2026-11-27 10:00 UTC".into())],
        body_markdown: body,
        footer: Some("Audit pack — Example Ltd".into()),
        ..Default::default()
    }
}

fn report(step: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    println!(
        "{step:40} RSS {:6.1} MB  heap {:6.1} MB  executable {:6.1} MB",
        field("VmRSS:"),
        field("RssAnon:"),
        field("RssFile:")
    );
}
