//! PDF rendering with typst.
//!
//! One [`TypstEngine`] per process holds the parsed fonts, the font book and the standard
//! library; each render only injects its inputs. The engine has no file system or package
//! resolver, so a document cannot read files or reach the network.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use typst::diag::SourceDiagnostic;
use typst::foundations::{Array, Bytes, Dict, IntoValue, Value};
use typst::text::Font;
use typst_as_lib::{TypstAsLibError, TypstEngine};
use typst_layout::PagedDocument;
use typst_pdf::PdfOptions;

use crate::chart::{BarPlot, LinePlot, Tick, bar_plot, line_plot};
use crate::typst_markup::body_to_typst;
use crate::{Block, Chart, DocsError, Document, OUTLINE_DEPTH, check_size, panic_message};

const TEMPLATE_ID: &str = "/ruleiq-document.typ";
const TEMPLATE: &str = include_str!("template.typ");

/// The families the template sets: Libertinus Serif for text, DejaVu Sans Mono for code.
/// Between them they also hold every symbol our documents print (arrows, ticks, bullets,
/// dashes), so typst's fallback never needs the rest of typst-assets (New Computer Modern
/// and its maths faces, which no document of ours uses since user text is never maths).
const FAMILIES: [&str; 2] = ["Libertinus Serif", "DejaVu Sans Mono"];

/// Parsing the embedded fonts takes a noticeable fraction of a render, so it happens once.
///
/// Each font is handed to typst as the `&'static` bytes compiled into the executable. (The
/// builder's own conversion from a byte slice copies it onto the heap: ten megabytes, for
/// the life of the process, that the audit pack's memory target has no room for.) Only
/// the pages typst reads — the tables it parses, the glyphs it embeds — become resident.
static ENGINE: LazyLock<TypstEngine> = LazyLock::new(|| {
    TypstEngine::builder()
        .fonts(template_fonts())
        .with_static_source_file_resolver([(TEMPLATE_ID, TEMPLATE)])
        .build()
});

/// The faces of [`FAMILIES`] in typst-assets.
///
/// typst learns a face's family only by parsing it whole, character map included, which
/// brings most of every font's pages into memory. The faces we do not use (New Computer
/// Modern and its maths fonts, 6.5 MB of the 9.8) are passed over on their name table
/// alone, so their pages stay on disk: 2.4 MB less resident after the first PDF.
fn template_fonts() -> impl Iterator<Item = Font> {
    typst_assets::fonts()
        .filter(|data| may_be_in_families(data))
        .flat_map(|data| Font::iter(Bytes::new(data)))
        .filter(|font| FAMILIES.contains(&font.info().family.as_str()))
}

/// Whether a font file's first face names, as its family, one of [`FAMILIES`] or a
/// family that begins with one ("Libertinus Serif Semibold" is typst's "Libertinus
/// Serif"). A font that cannot be read here is kept for typst to judge.
fn may_be_in_families(data: &[u8]) -> bool {
    use ttf_parser::name_id::{FAMILY, TYPOGRAPHIC_FAMILY};
    // Only the table directory and the name table: `ttf_parser::Face::parse` would read
    // the glyph and layout tables' headers too, and so most of a CFF font's pages.
    let Some(names) = ttf_parser::RawFace::parse(data, 0)
        .ok()
        .and_then(|face| face.table(ttf_parser::Tag::from_bytes(b"name")))
        .and_then(ttf_parser::name::Table::parse)
    else {
        return true;
    };
    names
        .names
        .into_iter()
        .filter(|name| name.name_id == FAMILY || name.name_id == TYPOGRAPHIC_FAMILY)
        .filter_map(|name| name.to_string())
        .any(|family| FAMILIES.iter().any(|f| family.starts_with(f)))
}

/// Renders `doc` as an A4 PDF with embedded fonts.
///
/// # Errors
///
/// [`DocsError::TooLarge`] for oversized input, [`DocsError::Typst`] when typst reports errors
/// (a bug in this crate's markup generation, since user text is always escaped), and
/// [`DocsError::Panicked`] if typst panics.
pub fn render_pdf(doc: &Document) -> Result<Vec<u8>, DocsError> {
    check_size(doc)?;
    let inputs = inputs(doc);
    // typst is a large dependency we do not control; a panic in it must not take down the
    // worker thread that asked for a policy PDF.
    let pdf = catch_unwind(AssertUnwindSafe(|| compile(inputs))).unwrap_or_else(|payload| {
        Err(DocsError::Panicked {
            renderer: "pdf",
            message: panic_message(payload.as_ref()),
        })
    });
    // PDFs are seconds apart; what typst kept and freed is not worth holding between
    // them (issue 8's audit pack copies its evidence right after its index PDF).
    crate::memory::give_back_freed_pages();
    pdf
}

fn compile(inputs: Dict) -> Result<Vec<u8>, DocsError> {
    let compiled = ENGINE.compile_with_input::<_, _, PagedDocument>(TEMPLATE_ID, inputs);
    let document = compiled.output.map_err(typst_error)?;
    typst_pdf::pdf(&document, &PdfOptions::default())
        .map_err(|diagnostics| DocsError::Typst(messages(&diagnostics)))
}

/// Header fields and chart data go to typst as values, never as source: a string value is
/// always text. Only the body is markup, and [`body_to_typst`] escaped every user character in
/// it.
fn inputs(doc: &Document) -> Dict {
    let optional = |s: &Option<String>| s.as_deref().map_or(Value::None, |s| s.into_value());
    let meta: Array = doc
        .meta
        .iter()
        .map(|(key, value)| {
            let pair: Array = [key.as_str().into_value(), value.as_str().into_value()]
                .into_iter()
                .collect();
            pair.into_value()
        })
        .collect();

    let mut dict = Dict::new();
    dict.insert("title".into(), doc.title.as_str().into_value());
    dict.insert("subtitle".into(), optional(&doc.subtitle));
    dict.insert("footer".into(), optional(&doc.footer));
    dict.insert("meta".into(), meta.into_value());
    dict.insert(
        "body".into(),
        body_to_typst(&doc.body_markdown).into_value(),
    );
    dict.insert("contents".into(), doc.contents.into_value());
    dict.insert("contents_depth".into(), (OUTLINE_DEPTH as i64).into_value());
    let blocks: Array = doc.blocks.iter().map(block).collect();
    dict.insert("blocks".into(), blocks.into_value());
    dict
}

/// A block as a dictionary with a `kind` the template switches on.
fn block(block: &Block) -> Value {
    let mut dict = Dict::new();
    match block {
        Block::Markdown(markdown) => {
            dict.insert("kind".into(), "markup".into_value());
            dict.insert("markup".into(), body_to_typst(markdown).into_value());
        }
        Block::Chart(chart) => {
            dict.insert("kind".into(), "chart".into_value());
            dict.insert("chart".into(), chart_value(chart));
        }
        Block::PageBreak => {
            dict.insert("kind".into(), "pagebreak".into_value());
        }
    }
    dict.into_value()
}

/// A chart laid out by [`crate::chart`], as the dictionary `line-chart` or `bar-chart` in the
/// template draws: positions are fractions of the plot area, labels are strings.
fn chart_value(chart: &Chart) -> Value {
    let mut dict = Dict::new();
    dict.insert("title".into(), chart.title().into_value());
    match chart {
        Chart::Line {
            y_label, series, ..
        } => {
            let LinePlot {
                y_ticks,
                x_ticks,
                series,
                markers,
                empty,
            } = line_plot(series);
            dict.insert("kind".into(), "line".into_value());
            dict.insert("y_label".into(), y_label.as_str().into_value());
            dict.insert("y_ticks".into(), ticks(y_ticks));
            dict.insert("x_ticks".into(), ticks(x_ticks));
            let series: Array = series
                .into_iter()
                .map(|(label, runs)| {
                    let runs: Array = runs
                        .into_iter()
                        .map(|run| {
                            run.into_iter()
                                .map(|(x, y)| pair(x.into_value(), y.into_value()))
                                .collect::<Array>()
                                .into_value()
                        })
                        .collect();
                    let mut s = Dict::new();
                    s.insert("label".into(), label.into_value());
                    s.insert("runs".into(), runs.into_value());
                    s.into_value()
                })
                .collect();
            dict.insert("series".into(), series.into_value());
            dict.insert("markers".into(), markers.into_value());
            dict.insert("empty".into(), empty.into_value());
        }
        Chart::Bar { bars, .. } => {
            let BarPlot {
                ticks: t,
                zero,
                bars,
            } = bar_plot(bars);
            dict.insert("kind".into(), "bar".into_value());
            dict.insert("ticks".into(), ticks(t));
            dict.insert("zero".into(), zero.into_value());
            dict.insert("empty".into(), bars.is_empty().into_value());
            let bars: Array = bars
                .into_iter()
                .map(|bar| {
                    let mut b = Dict::new();
                    b.insert("label".into(), bar.label.into_value());
                    b.insert("start".into(), bar.start.into_value());
                    b.insert("length".into(), bar.length.into_value());
                    b.insert("value".into(), bar.value.into_value());
                    b.into_value()
                })
                .collect();
            dict.insert("bars".into(), bars.into_value());
        }
    }
    dict.into_value()
}

fn ticks(ticks: Vec<Tick>) -> Value {
    ticks
        .into_iter()
        .map(|tick| pair(tick.at.into_value(), tick.label.into_value()))
        .collect::<Array>()
        .into_value()
}

fn pair(a: Value, b: Value) -> Value {
    [a, b].into_iter().collect::<Array>().into_value()
}

fn typst_error(err: TypstAsLibError) -> DocsError {
    match err {
        TypstAsLibError::TypstSource(diagnostics) => DocsError::Typst(messages(&diagnostics)),
        other => DocsError::Typst(vec![other.to_string()]),
    }
}

fn messages(diagnostics: &[SourceDiagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .map(|d| {
            let mut message = d.message.to_string();
            for hint in &d.hints {
                message.push_str(" (hint: ");
                message.push_str(&hint.v);
                message.push(')');
            }
            message
        })
        .collect()
}

#[cfg(test)]
mod font_tests {
    use super::*;

    #[test]
    fn the_two_families_are_loaded_and_cover_what_documents_print() {
        let fonts: Vec<Font> = template_fonts().collect();
        for family in FAMILIES {
            assert!(
                fonts.iter().any(|f| f.info().family == family),
                "{family} is not in typst-assets any more"
            );
        }
        // Reading the name table first keeps exactly the faces a whole parse would…
        let parsed_whole: Vec<Font> = typst_assets::fonts()
            .flat_map(|data| Font::iter(Bytes::new(data)))
            .filter(|font| FAMILIES.contains(&font.info().family.as_str()))
            .collect();
        let faces = |fonts: &[Font]| -> Vec<String> {
            fonts.iter().map(|f| format!("{:?}", f.info())).collect()
        };
        assert_eq!(faces(&fonts), faces(&parsed_whole));
        // …and passes over the others unparsed.
        let skipped = typst_assets::fonts()
            .filter(|data| !may_be_in_families(data))
            .flat_map(|data| Font::iter(Bytes::new(data)))
            .map(|font| font.info().family.clone())
            .collect::<Vec<_>>();
        assert!(
            skipped.iter().any(|f| f == "New Computer Modern"),
            "{skipped:?}"
        );
        // Our templates, policies and reports print these beyond ASCII; users type the
        // rest of Latin-1, Greek and Cyrillic, which Libertinus covers.
        for c in "–—£€→·«»é‘’“”•…×≤≥±°§©®™✓ĀŁŒŠŽΑΩЖЯ".chars()
        {
            assert!(
                fonts.iter().any(|f| f.info().coverage.contains(c as u32)),
                "no loaded face has {c:?}"
            );
        }
    }
}
