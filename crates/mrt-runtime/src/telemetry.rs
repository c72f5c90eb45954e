//! Logging and OpenTelemetry for the services: a `tracing` subscriber (stderr, `RUST_LOG`-style
//! filter) plus, when an OTLP endpoint is given, spans and metrics exported over OTLP/HTTP
//! (protobuf) to `<endpoint>/v1/traces` and `<endpoint>/v1/metrics`. Off by default.
//!
//! The W3C trace context of a study rides in gRPC metadata and AMQP headers as `traceparent`:
//! [`current_traceparent`] reads it off the current span, [`adopt_traceparent`] makes a span its
//! child, so one study is one trace across every service.
//!
//! The exporters run on their own threads with a blocking HTTP client: call [`init`] before the
//! tokio runtime starts and [`Telemetry::shutdown`] after it has stopped.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Telemetry settings.
#[derive(Debug, Clone, Default)]
pub struct TelemetryConfig {
    /// `service.name` of every span and metric.
    pub service_name: String,
    /// OTLP/HTTP base URL (e.g. `http://127.0.0.1:4318`); `None` = no export.
    pub otlp_endpoint: Option<String>,
    /// How often metrics are exported.
    pub metrics_interval: Duration,
}

/// Telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built.
    #[error("OTLP exporter for {endpoint}: {message}")]
    Exporter {
        /// Endpoint.
        endpoint: String,
        /// Cause.
        message: String,
    },
    /// A global subscriber was already set.
    #[error("tracing subscriber: {0}")]
    Subscriber(String),
}

/// Running telemetry; flush it with [`Telemetry::shutdown`].
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

/// Installs the global subscriber and, with an endpoint, the OTLP exporters.
pub fn init(cfg: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,ort=warn"));
    // Colours only on a terminal: log files and collectors get plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let Some(endpoint) = cfg.otlp_endpoint.as_deref() else {
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .try_init()
            .map_err(|e| TelemetryError::Subscriber(e.to_string()))?;
        return Ok(Telemetry {
            tracer: None,
            meter: None,
        });
    };
    let base = endpoint.trim_end_matches('/');
    let failed = |e: &dyn std::fmt::Display| TelemetryError::Exporter {
        endpoint: base.to_string(),
        message: e.to_string(),
    };
    let resource = Resource::builder()
        .with_service_name(cfg.service_name.clone())
        .build();
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{base}/v1/traces"))
        .build()
        .map_err(|e| failed(&e))?;
    let tracer = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource.clone())
        .build();
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_endpoint(format!("{base}/v1/metrics"))
        .build()
        .map_err(|e| failed(&e))?;
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(metrics)
        .with_interval(cfg.metrics_interval.max(Duration::from_secs(1)))
        .build();
    let meter = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource)
        .build();
    opentelemetry::global::set_meter_provider(meter.clone());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let otel = tracing_opentelemetry::layer().with_tracer(tracer.tracer("mrtdose"));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| TelemetryError::Subscriber(e.to_string()))?;
    Ok(Telemetry {
        tracer: Some(tracer),
        meter: Some(meter),
    })
}

impl Telemetry {
    /// Exports what is buffered and stops the exporters (blocking; outside the runtime).
    pub fn shutdown(self) {
        if let Some(t) = self.tracer {
            if let Err(e) = t.shutdown() {
                eprintln!("telemetry: flushing spans failed: {e}");
            }
        }
        if let Some(m) = self.meter {
            if let Err(e) = m.shutdown() {
                eprintln!("telemetry: flushing metrics failed: {e}");
            }
        }
    }
}

/// The W3C `traceparent` of `span`, when it is traced.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent")
}

/// The W3C `traceparent` of the current span, when it is traced.
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// Makes `span` a child of the remote span `traceparent` (ignored when malformed).
pub fn adopt_traceparent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(cx);
}
