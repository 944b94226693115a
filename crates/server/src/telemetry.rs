//! Logging: JSON lines in production (for log shippers), readable text elsewhere.
//! Both go to standard error, so a command's output on standard output stays clean.
//! `LOG_LEVEL` sets the level; `RUST_LOG`, when set, overrides it with full directives.
//!
//! Builds with the `otel` feature also export spans (each request's, with its method,
//! route and request id) over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; `OTEL_SERVICE_NAME` names the service
//! (default `ruleiq`), and the exporter reads the rest of the standard `OTEL_*`
//! variables itself.

use ruleiq_config::Settings;
use std::io::IsTerminal;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, layer::Layered, prelude::*};

/// The subscriber every output layer sits on: the registry behind the level filter.
type Filtered = Layered<EnvFilter, Registry>;
/// One output of the subscriber.
type Output = Box<dyn Layer<Filtered> + Send + Sync>;

/// What must outlive the program's work: the span exporter, flushed on drop.
#[must_use = "dropping the guard flushes and stops span export"]
pub struct Guard {
    #[cfg(feature = "otel")]
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(tracer) = self.tracer.take()
            && let Err(e) = tracer.shutdown()
        {
            eprintln!("ruleiq: could not flush the last spans to the OTLP endpoint: {e}");
        }
    }
}

/// Whether the environment asks for span export.
fn export_asked() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// Installs the global subscriber. Call once, from `main`, and keep the guard until
/// the program ends.
pub fn init(settings: &Settings) -> Guard {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        // Our crates at the chosen level; chatty dependencies one notch quieter.
        let level = &settings.log_level;
        EnvFilter::new(format!(
            "{level},sqlx=warn,sea_orm=warn,sea_orm_migration=warn,apalis=warn,apalis_core=warn,apalis_sqlite=warn,apalis_postgres=warn,apalis_redis=warn,hyper=warn,h2=warn,opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn,reqwest=warn"
        ))
    });
    let output: Output = if settings.environment.is_production() {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        fmt::layer()
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .boxed()
    };
    let (spans, guard) = span_export();
    let mut outputs = vec![output];
    outputs.extend(spans);
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(outputs)
        .try_init();
    // A second init (tests calling into the CLI) keeps the first subscriber.
    let _ = result;
    if export_asked() && !cfg!(feature = "otel") {
        tracing::warn!(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set, but this build has no OpenTelemetry export; build with `--features otel` to send spans"
        );
    }
    guard
}

#[cfg(feature = "otel")]
fn span_export() -> (Option<Output>, Guard) {
    use opentelemetry::trace::TracerProvider as _;
    if !export_asked() {
        return (None, Guard { tracer: None });
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("ruleiq: OpenTelemetry export is off: {e}");
            return (None, Guard { tracer: None });
        }
    };
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "ruleiq".to_owned());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("ruleiq"))
        .boxed();
    (
        Some(layer),
        Guard {
            tracer: Some(provider),
        },
    )
}

#[cfg(not(feature = "otel"))]
fn span_export() -> (Option<Output>, Guard) {
    (None, Guard {})
}
