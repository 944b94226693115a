//! Times rendering of the sample policy, a report of about thirty pages with charts and tables,
//! and a 5,000-row workbook. Run in release:
//! `cargo run --release -p ruleiq-docs --example timing [OUTPUT_DIR]`
//! With OUTPUT_DIR, also writes policy.pdf, policy.docx, policy.md, report.pdf, report.docx,
//! report.md, register.xlsx and register.csv there for a look.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use ruleiq_docs::xlsx::{Cell, Column, Sheet, Workbook};
use ruleiq_docs::{
    Block, Chart, DocsError, Document, Series, render_csv, render_docx, render_markdown,
    render_pdf, render_xlsx,
};

fn main() -> Result<(), DocsError> {
    let policy = policy();
    let report = report();
    let workbook = register(5_000);

    let cold = Instant::now();
    let policy_pdf = render_pdf(&policy)?;
    println!(
        "policy pdf   first render (fonts loaded here): {:?}, {} bytes",
        cold.elapsed(),
        policy_pdf.len()
    );
    let (mean, _) = time(20, || render_pdf(&policy))?;
    println!("policy pdf   warm mean over 20: {mean:?}");
    let (mean, policy_docx) = time(20, || render_docx(&policy))?;
    println!(
        "policy docx  warm mean over 20: {mean:?}, {} bytes",
        policy_docx.len()
    );

    let (mean, report_pdf) = time(5, || render_pdf(&report))?;
    println!(
        "report pdf   (31 pages: contents, 2 charts, 28 tables) mean over 5: {mean:?}, {} bytes",
        report_pdf.len()
    );
    let (mean, report_docx) = time(5, || render_docx(&report))?;
    println!(
        "report docx  mean over 5: {mean:?}, {} bytes",
        report_docx.len()
    );

    let (mean, xlsx) = time(5, || render_xlsx(&workbook))?;
    println!(
        "xlsx         5,000 rows x 8 columns, mean over 5: {mean:?}, {} bytes",
        xlsx.len()
    );
    let (mean, csv) = time(5, || render_csv(&workbook.sheets[0]))?;
    println!(
        "csv          5,000 rows x 8 columns, mean over 5: {mean:?}, {} bytes",
        csv.len()
    );

    if let Some(dir) = std::env::args_os().nth(1) {
        let dir = std::path::PathBuf::from(dir);
        let write = |name: &str, bytes: &[u8]| {
            if let Err(err) = std::fs::write(dir.join(name), bytes) {
                eprintln!("could not write {name}: {err}");
            }
        };
        write("policy.pdf", &policy_pdf);
        write("policy.docx", &policy_docx);
        write("policy.md", render_markdown(&policy).as_bytes());
        write("report.pdf", &report_pdf);
        write("report.docx", &report_docx);
        write("report.md", render_markdown(&report).as_bytes());
        write("register.xlsx", &xlsx);
        write("register.csv", &csv);
    }
    Ok(())
}

/// Runs `render` `runs` times; the mean duration and the last output.
fn time(
    runs: u32,
    mut render: impl FnMut() -> Result<Vec<u8>, DocsError>,
) -> Result<(Duration, Vec<u8>), DocsError> {
    let start = Instant::now();
    let mut out = Vec::new();
    for _ in 0..runs {
        out = render()?;
    }
    Ok((start.elapsed() / runs, out))
}

fn policy() -> Document {
    Document {
        title: "Information Security Policy".to_owned(),
        subtitle: Some("Acme Ltd — version 3".to_owned()),
        meta: vec![
            ("Status".to_owned(), "Approved".to_owned()),
            ("Approved by".to_owned(), "Jane Doe, CEO".to_owned()),
            ("Next review".to_owned(), "2027-03-01".to_owned()),
        ],
        body_markdown: include_str!("../tests/fixtures/information_security_policy.md").to_owned(),
        footer: Some("Acme Ltd — Confidential".to_owned()),
        contents: false,
        blocks: Vec::new(),
    }
}

fn date(offset_days: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default() + chrono::Duration::days(offset_days)
}

/// A gap-analysis report: contents page, executive summary with a readiness line chart (three
/// frameworks, a year of weekly points) and a status bar chart, then fourteen sections of text
/// and two tables each, a page break between sections: 31 pages.
fn report() -> Document {
    let series = ["ISO/IEC 27001", "SOC 2", "GDPR"]
        .iter()
        .enumerate()
        .map(|(i, label)| Series {
            label: (*label).to_owned(),
            points: (0..52)
                .map(|week| {
                    let value = (20.0 + 10.0 * i as f64 + week as f64 * 1.2).min(100.0);
                    (date(week * 7), value)
                })
                .collect(),
        })
        .collect();
    let mut blocks = vec![
        Block::Markdown(
            "# Executive summary\n\nReadiness rose steadily across all three frameworks."
                .to_owned(),
        ),
        Block::Chart(Chart::Line {
            title: "Readiness by framework".to_owned(),
            y_label: "Readiness (%)".to_owned(),
            series,
        }),
        Block::Chart(Chart::Bar {
            title: "Controls by status".to_owned(),
            bars: vec![
                ("Implemented".to_owned(), 61.0),
                ("Partially implemented".to_owned(), 23.0),
                ("Not started".to_owned(), 9.0),
                ("Not applicable".to_owned(), 4.0),
            ],
        }),
    ];
    for section in 1..=14 {
        blocks.push(Block::PageBreak);
        let mut markdown = format!(
            "# {section}. Control area {section}\n\n\
             This section assesses the controls in area {section} against the selected \
             frameworks and lists the gaps found, their owners and the evidence reviewed.\n\n\
             ## {section}.1 Gaps\n\n| Control | Gap | Owner | Due |\n|---|---|---|---|\n"
        );
        for row in 1..=18 {
            markdown.push_str(&format!(
                "| A.{section}.{row} | Procedure not documented; evidence older than twelve \
                 months | Team {row} | 2025-{:02}-15 |\n",
                row % 12 + 1
            ));
        }
        markdown.push_str(&format!(
            "\n## {section}.2 Evidence reviewed\n\n| Evidence | Status |\n|---|---|\n"
        ));
        for row in 1..=12 {
            markdown.push_str(&format!("| Access review export {row} | Accepted |\n"));
        }
        blocks.push(Block::Markdown(markdown));
    }
    Document {
        title: "Gap analysis".to_owned(),
        subtitle: Some("Acme Ltd — ISO/IEC 27001, SOC 2, GDPR".to_owned()),
        meta: vec![("Generated by".to_owned(), "ruleIQ".to_owned())],
        body_markdown: String::new(),
        footer: Some("Acme Ltd — Confidential".to_owned()),
        contents: true,
        blocks,
    }
}

/// An evidence register of `rows` rows and eight columns of every kind.
fn register(rows: usize) -> Workbook {
    let columns = [
        "Reference",
        "Title",
        "Control",
        "Owner",
        "Collected",
        "Last reviewed",
        "Score",
        "Approved",
    ]
    .map(Column::new)
    .to_vec();
    let moment = DateTime::<Utc>::from_timestamp(1_740_000_000, 0).unwrap_or_default();
    let rows = (0..rows)
        .map(|i| {
            vec![
                Cell::Integer(i as i64 + 1),
                Cell::Text(format!("Access review export {i}")),
                Cell::Text(format!("A.{}.{}", i % 18 + 5, i % 7 + 1)),
                Cell::Link {
                    url: format!("mailto:owner{}@example.com", i % 40),
                    text: format!("Owner {}", i % 40),
                },
                Cell::Date(date(i as i64 % 365)),
                Cell::DateTime(moment + chrono::Duration::minutes(i as i64 * 17)),
                Cell::Number((i % 100) as f64 + 0.5),
                Cell::Bool(i % 3 != 0),
            ]
        })
        .collect();
    Workbook {
        title: "Evidence register".to_owned(),
        sheets: vec![Sheet {
            name: "Evidence register".to_owned(),
            columns,
            rows,
        }],
    }
}
