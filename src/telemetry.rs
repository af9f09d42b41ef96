//! Traces of governed calls: OpenTelemetry spans exported over OTLP/HTTP
//! (`serve --otlp-endpoint`, off by default), and the W3C `traceparent` carried from
//! the client through the bridge to Tenet.
//!
//! This module is a leaf: the bridge, the governor and the Tenet client make the spans
//! with its [`TARGET`], and the report records its outcome on them.
//!
//! Every `tools/call` is a `tools/call` span (attributes: tool, agent, status, outcome,
//! request, decision, review and job ids) with children `validate`, `tenet.execute` (one
//! per try) and `tenet.poll` (one per poll). Arguments, keys and tokens are never put
//! on a span.
//!
//! A client's trace is continued: its `traceparent` (the `_meta.traceparent` of the
//! call, else the HTTP request's `traceparent` header) becomes the parent of the call's
//! span, and every request to Tenet carries a `traceparent` naming the span that sent
//! it. Without an exporter no spans are made, and the client's `traceparent` is passed
//! on to Tenet unchanged.

use std::{collections::HashMap, time::Duration};

use axum::body::Bytes;
use opentelemetry::{
    Context,
    propagation::TextMapPropagator,
    trace::{SpanContext, TraceContextExt, TracerProvider as _},
};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use reqwest::header::HeaderMap;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{Layer, filter::Targets};

/// The `tracing` target of the governed-call spans; only these are exported.
pub(crate) const TARGET: &str = "tenet_mcp::calls";

/// The OTLP/HTTP path of traces, added to an `--otlp-endpoint` that lacks it.
const TRACES_PATH: &str = "/v1/traces";

/// How long one export may take before it is dropped (the exporter's timeout).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// `filter` with the governed-call spans left to the exporter: without one they are not
/// made at all, and log lines do not carry their fields.
pub fn without_call_spans(filter: tracing_subscriber::EnvFilter) -> tracing_subscriber::EnvFilter {
    match format!("{TARGET}=off").parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// Why traces cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `--otlp-endpoint` is not an http(s) URL.
    #[error(
        "--otlp-endpoint is not an http:// or https:// URL: give the collector's OTLP/HTTP address, e.g. http://localhost:4318"
    )]
    BadEndpoint,
    /// The exporter could not be built.
    #[error("cannot start the OTLP exporter: {0}")]
    Exporter(String),
}

/// The running span exporter; [`Exporter::shutdown`] sends what is still buffered.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Starts exporting to the collector at `endpoint` (its base URL, or the full
    /// `/v1/traces` URL); returns the exporter and the `tracing` layer that feeds it.
    pub fn start<S>(endpoint: &str) -> Result<(Self, impl Layer<S> + use<S>), TelemetryError>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let endpoint = traces_url(endpoint)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(ExportClient::new()?)
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|error| TelemetryError::Exporter(error.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(env!("CARGO_PKG_NAME"))
                    .build(),
            )
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
            .with_threads(false)
            .with_filter(Targets::new().with_target(TARGET, tracing::Level::TRACE));
        Ok((Self { provider }, layer))
    }

    /// Sends the spans still buffered and stops. Call it outside any async runtime.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "the last traces could not be exported");
        }
    }
}

/// `endpoint` with `/v1/traces`, checked to be an http(s) URL.
fn traces_url(endpoint: &str) -> Result<String, TelemetryError> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let valid = reqwest::Url::parse(trimmed)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
    if !valid {
        return Err(TelemetryError::BadEndpoint);
    }
    Ok(if trimmed.ends_with(TRACES_PATH) {
        trimmed.to_owned()
    } else {
        format!("{trimmed}{TRACES_PATH}")
    })
}

/// Sends OTLP exports with reqwest on a runtime of its own: the SDK's batch processor
/// exports from its own thread, outside any tokio runtime.
#[derive(Debug)]
struct ExportClient {
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl ExportClient {
    fn new() -> Result<Self, TelemetryError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .map_err(|error| TelemetryError::Exporter(error.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|error| TelemetryError::Exporter(error.to_string()))?;
        Ok(Self { http, runtime })
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: axum::http::Request<Bytes>,
    ) -> Result<axum::http::Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let response = http.execute(request).await?;
            let mut answer = axum::http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(answer.body(body)?)
        });
        sent.await?
    }
}

/// The trace context a client sent with a call: `_meta.traceparent`, else the HTTP
/// `traceparent` header. Malformed values are ignored, as W3C Trace Context says.
pub(crate) fn incoming(
    meta_traceparent: Option<&str>,
    headers: Option<&axum::http::HeaderMap>,
) -> Option<SpanContext> {
    let header = || {
        headers
            .and_then(|headers| headers.get("traceparent"))
            .and_then(|value| value.to_str().ok())
    };
    [meta_traceparent, header()]
        .into_iter()
        .flatten()
        .map(parse)
        .find(SpanContext::is_valid)
}

/// A `traceparent` value as a remote span context (invalid if malformed).
fn parse(traceparent: &str) -> SpanContext {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    TraceContextPropagator::new()
        .extract(&carrier)
        .span()
        .span_context()
        .clone()
}

tokio::task_local! {
    /// The client's trace context for the call this task serves.
    static CLIENT_TRACE: Option<SpanContext>;
}

/// The span of one `tools/call` of `mcp_tool`, continuing the client's trace when it
/// sent one. The catalog tool it governed is recorded with the outcome.
pub(crate) fn call_span(mcp_tool: &str, agent: &str, client: Option<&SpanContext>) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "tools/call",
        otel.kind = "server",
        mcp_tool,
        agent,
        tool = tracing::field::Empty,
        status = tracing::field::Empty,
        outcome = tracing::field::Empty,
        request_id = tracing::field::Empty,
        decision_id = tracing::field::Empty,
        review_id = tracing::field::Empty,
        job_id = tracing::field::Empty,
        http_status = tracing::field::Empty,
    );
    if let Some(parent) = client {
        let _ = span.set_parent(Context::new().with_remote_span_context(parent.clone()));
    }
    span
}

/// Runs `call` with the client's trace context in reach of the Tenet client. A plain
/// function, not an `async fn`: the future is `call`'s own size, not twice it.
pub(crate) fn with_client_trace<F: Future>(
    client: Option<SpanContext>,
    call: F,
) -> impl Future<Output = F::Output> {
    CLIENT_TRACE.scope(client, call)
}

/// The `traceparent` header for a request to Tenet sent inside `span`: the span itself
/// when spans are exported, else the client's trace context unchanged, else none.
pub(crate) fn tenet_headers(span: &Span) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let own = span.context();
    let context = if own.span().span_context().is_valid() {
        own
    } else {
        match CLIENT_TRACE.try_with(Clone::clone).ok().flatten() {
            Some(client) => Context::new().with_remote_span_context(client),
            None => return headers,
        }
    };
    TraceContextPropagator::new().inject_context(
        &context,
        &mut opentelemetry_http::HeaderInjector(&mut headers),
    );
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_is_read_from_meta_then_header() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-01"
                .parse()
                .unwrap(),
        );
        let from_meta = incoming(Some(PARENT), Some(&headers)).unwrap();
        assert_eq!(
            from_meta.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let from_header = incoming(Some("garbage"), Some(&headers)).unwrap();
        assert_eq!(from_header.span_id().to_string(), "2222222222222222");
        assert!(incoming(None, None).is_none());
    }

    #[test]
    fn malformed_or_zero_traceparents_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01x",
        ] {
            assert!(incoming(Some(bad), None).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn without_spans_the_client_trace_passes_to_tenet_unchanged() {
        let client = incoming(Some(PARENT), None);
        let headers = with_client_trace(client, async { tenet_headers(&Span::none()) }).await;
        assert_eq!(headers["traceparent"], PARENT);
        assert!(tenet_headers(&Span::none()).is_empty());
    }

    #[test]
    fn endpoints_get_the_traces_path() {
        assert_eq!(
            traces_url("http://collector:4318/").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://c.example/v1/traces").unwrap(),
            "https://c.example/v1/traces"
        );
        let refused = traces_url("collector:4318").unwrap_err().to_string();
        assert!(refused.contains("http://localhost:4318"), "{refused}");
        let secret = traces_url("ftp://user:hunter2@c").unwrap_err().to_string();
        assert!(!secret.contains("hunter2"), "{secret}");
    }
}
