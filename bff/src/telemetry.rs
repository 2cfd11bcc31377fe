//! Logging and tracing. Logs: human-readable or JSON lines on stderr,
//! filtered by RUST_LOG ([`init`], process-wide). Traces (OPS-18): spans
//! exported over OTLP/HTTP protobuf when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//! ([`Tracing`]).
//!
//! The tracing subscriber a `tracing` span goes to is process-wide by
//! default, but one test process runs many servers, each with its own
//! exporter. So a [`Tracing`] owns its tracer provider and a
//! [`Dispatch`] of its own (the OpenTelemetry layer, plus the log layer when
//! [`init`] installed logging); a server runs its requests under it (see
//! [`Tracing::layer`]) and the worker runs its jobs under it
//! ([`Tracing::traced`]). Nothing is installed globally, so two servers
//! never export each other's spans.
//!
//! Trace context crosses into the database as the W3C `traceparent` in the
//! transaction setting `request.traceparent` (see [`crate::db::begin_as`]); a
//! job enqueued in that transaction stores it, and the worker links its job
//! span to it with [`link_to_traceparent`].

use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState, TracerProvider};
use opentelemetry::{SpanId, TraceId};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::instrument::{Instrument, WithSubscriber};
use tracing::Dispatch;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// BIZOS_LOG_FORMAT.
pub fn log_format(v: &str) -> Result<LogFormat, String> {
    match v {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not one of pretty, json")),
    }
}

/// Trace export (the standard OpenTelemetry variables).
#[derive(Debug, Clone)]
pub struct OtelSettings {
    /// Base URL of an OTLP/HTTP receiver; traces are exported when set.
    pub endpoint: Option<String>,
    /// `service.name` of the exported traces.
    pub service_name: String,
    /// How often buffered spans are sent.
    pub schedule_delay: Duration,
}

/// The log format and filter [`init`] installed, for the log layer of a
/// [`Tracing`] dispatch (none when logging was never initialised, as in
/// tests without TEST_LOG).
static LOGGING: OnceLock<(LogFormat, String)> = OnceLock::new();

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::util::SubscriberInitExt;
    // RUST_LOG when it is a valid filter, else the default.
    let filter_text = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| EnvFilter::try_new(v).is_ok())
        .unwrap_or_else(|| default_filter.to_owned());
    let installed = log_layer(format, &filter_text)
        .map(|layer| tracing_subscriber::registry().with(layer).try_init());
    if let Some(Ok(())) = installed {
        let _ = LOGGING.set((format, filter_text));
    }
}

/// The stderr log layer with its filter (None when the filter is invalid).
fn log_layer<S>(format: LogFormat, filter: &str) -> Option<Box<dyn Layer<S> + Send + Sync>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let filter = EnvFilter::try_new(filter)
        .or_else(|_| EnvFilter::try_new("info"))
        .ok()?;
    let layer = fmt::layer().with_writer(std::io::stderr);
    Some(match format {
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => layer.with_filter(filter).boxed(),
    })
}

/// A second registered dispatcher that never records anything, kept for the
/// life of the process once a [`Tracing`] exists. tracing-core caches each
/// callsite's interest; while exactly one dispatcher is registered it asks
/// only the *current thread's* default, so a span first hit outside a
/// [`Tracing`] scope (another server, a background task) would be cached as
/// "never" and stay off inside the scope too. With two registered it asks
/// all of them (and this one's "never" combined with the exporter's
/// "always" is "sometimes": decided per call by the current dispatcher).
static ANCHOR: OnceLock<Dispatch> = OnceLock::new();

/// A tracer provider exporting over OTLP, and the subscriber that feeds it.
#[derive(Clone)]
pub struct Tracing {
    provider: SdkTracerProvider,
    dispatch: Dispatch,
}

impl Tracing {
    /// Exports spans to `endpoint` (the base URL of an OTLP/HTTP receiver,
    /// as in `OTEL_EXPORTER_OTLP_ENDPOINT`: spans go to `<endpoint>/v1/traces`)
    /// as the service `service_name`, buffered spans every `schedule_delay`.
    /// Spans below INFO are not exported.
    pub fn new(
        endpoint: &str,
        service_name: &str,
        schedule_delay: Duration,
    ) -> anyhow::Result<Tracing> {
        let traces = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces)
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT is invalid: {e}"))?;
        let batch = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(schedule_delay)
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batch)
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_owned())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("bizos");
        let otel = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(LevelFilter::INFO);
        let logs = LOGGING
            .get()
            .and_then(|(format, filter)| log_layer(*format, filter));
        ANCHOR.get_or_init(|| Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(otel).with(logs));
        Ok(Tracing { provider, dispatch })
    }

    /// [`Tracing::new`] when an endpoint is configured.
    pub fn from_settings(otel: &OtelSettings) -> anyhow::Result<Option<Tracing>> {
        otel.endpoint
            .as_deref()
            .map(|e| Tracing::new(e, &otel.service_name, otel.schedule_delay))
            .transpose()
    }

    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// Runs `future` (and the spans it opens) under this exporter.
    pub fn traced<F: std::future::Future>(
        &self,
        future: F,
    ) -> impl std::future::Future<Output = F::Output> {
        future.with_subscriber(self.dispatch.clone())
    }

    /// A tower layer running every request under this exporter; outermost
    /// layer of the router, so the request span is created under it.
    pub fn layer(&self) -> DispatchLayer {
        DispatchLayer(self.dispatch.clone())
    }

    /// Exports what is still buffered and stops the exporter (on shutdown;
    /// blocks up to a few seconds, so call it off the async threads).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(error = %e, "flushing the trace exporter failed");
        }
    }
}

/// See [`Tracing::layer`].
#[derive(Clone)]
pub struct DispatchLayer(Dispatch);

impl<S> tower::Layer<S> for DispatchLayer {
    type Service = WithDispatch<S>;
    fn layer(&self, inner: S) -> WithDispatch<S> {
        WithDispatch {
            inner,
            dispatch: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct WithDispatch<S> {
    inner: S,
    dispatch: Dispatch,
}

impl<S, R> tower::Service<R> for WithDispatch<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::WithDispatch<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        // Spans made by inner layers in `call` (the request span) already
        // go to this dispatch; so do those of the future.
        let future = tracing::dispatcher::with_default(&self.dispatch, || self.inner.call(req));
        future.with_subscriber(self.dispatch.clone())
    }
}

/// The W3C `traceparent` of `span` (`00-<trace id>-<span id>-<flags>`), or
/// None when it is not traced (no exporter configured).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// The span context a stored W3C `traceparent` names (None when it is not
/// a valid version-00 traceparent).
pub fn parse_traceparent(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00"
        || parts.next().is_some()
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    let sc = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// Links `span` (e.g. the worker's job span) to the span that enqueued the
/// job, from the traceparent the job stored. With `as_parent`, the job span
/// joins the enqueuing trace as its child instead (one trace from request
/// to job); a link keeps the job its own trace. Returns whether
/// `traceparent` was usable. Call it before the span is first entered.
pub fn link_to_traceparent(span: &tracing::Span, traceparent: &str, as_parent: bool) -> bool {
    let Some(sc) = parse_traceparent(traceparent) else {
        return false;
    };
    if as_parent {
        span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc))
            .is_ok()
    } else {
        span.add_link(sc);
        true
    }
}

/// A span for one database call (an RPC, a transaction's start, a list
/// query): `db.system=postgresql` and the statement's function or relation
/// name as its operation, never its parameters. Instrument the call's
/// future with it.
pub fn db_span(operation: &str) -> tracing::Span {
    tracing::info_span!(
        "db",
        otel.name = operation,
        otel.kind = "client",
        db.system = "postgresql",
        db.operation.name = operation,
    )
}

/// Runs a database call in its [`db_span`].
pub async fn db_call<F: std::future::Future>(operation: &str, call: F) -> F::Output {
    call.instrument(db_span(operation)).await
}

/// The function a statement such as `select lead_update($1, $2)` calls (its
/// first identifier followed by `(`), for the name of its span.
pub fn statement_function(sql: &str) -> &str {
    let bytes = sql.as_bytes();
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        let ident = b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
        match (start, ident) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                let word = &sql[s..i];
                if sql[i..].trim_start().starts_with('(') && !word.eq_ignore_ascii_case("select") {
                    return word;
                }
                start = None;
            }
            _ => {}
        }
    }
    "sql"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_round_trip() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let sc = parse_traceparent(tp).unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(sc.span_id().to_string(), "b7ad6b7169203331");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in [
            "",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333x-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn statement_functions() {
        assert_eq!(
            statement_function("select lead_update($1, $2)"),
            "lead_update"
        );
        assert_eq!(
            statement_function("select crm_create_lead_bundle ($1)"),
            "crm_create_lead_bundle"
        );
        assert_eq!(
            statement_function("select * from bizos.audit_verify()"),
            "bizos.audit_verify"
        );
        assert_eq!(statement_function("select 1"), "sql");
    }
}
