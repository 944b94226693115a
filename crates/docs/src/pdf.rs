//! PDF rendering with typst.
//!
//! One [`TypstEngine`] per process holds the parsed fonts, the font book and the standard
//! library; each render only injects its inputs. The engine has no file system or package
//! resolver, so a document cannot read files or reach the network.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use typst::diag::SourceDiagnostic;
use typst::foundations::{Array, Dict, IntoValue, Value};
use typst_as_lib::{TypstAsLibError, TypstEngine};
use typst_layout::PagedDocument;
use typst_pdf::PdfOptions;

use crate::typst_markup::body_to_typst;
use crate::{DocsError, Document, check_size, panic_message};

const TEMPLATE_ID: &str = "/ruleiq-document.typ";
const TEMPLATE: &str = include_str!("template.typ");

/// Parsing the embedded fonts takes a noticeable fraction of a render, so it happens once.
static ENGINE: LazyLock<TypstEngine> = LazyLock::new(|| {
    TypstEngine::builder()
        .fonts(typst_assets::fonts())
        .with_static_source_file_resolver([(TEMPLATE_ID, TEMPLATE)])
        .build()
});

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
    catch_unwind(AssertUnwindSafe(|| compile(inputs))).unwrap_or_else(|payload| {
        Err(DocsError::Panicked {
            renderer: "pdf",
            message: panic_message(payload.as_ref()),
        })
    })
}

fn compile(inputs: Dict) -> Result<Vec<u8>, DocsError> {
    let compiled = ENGINE.compile_with_input::<_, _, PagedDocument>(TEMPLATE_ID, inputs);
    let document = compiled.output.map_err(typst_error)?;
    typst_pdf::pdf(&document, &PdfOptions::default())
        .map_err(|diagnostics| DocsError::Typst(messages(&diagnostics)))
}

/// Header fields go to typst as values, never as source: a string value is always text.
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
    dict
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
