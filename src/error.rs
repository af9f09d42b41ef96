//! Errors shared across layers: why `serve` stops (the command line turns each into an
//! exit code, see [`crate::cli::exit_code`]), and the [`Rejection`] every HTTP refusal is.

use axum::{
    http::{HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::config::ConfigError;
#[cfg(feature = "emulator")]
use crate::emulator::EmulatorError;

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad configuration: nothing was served.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The embedded emulator (`--emulator`) did not start.
    #[cfg(feature = "emulator")]
    #[error("cannot start the embedded emulator: {0}")]
    Emulator(#[source] EmulatorError),
    /// The stdio client's MCP initialization failed.
    #[error("the MCP client's initialization failed: {0}")]
    Initialize(#[source] Box<rmcp::service::ServerInitializeError>),
    /// The Prometheus recorder behind `/metrics` could not be installed.
    #[error("cannot set up the metrics recorder: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// The HTTP server's accept loop failed.
    #[error("the HTTP server task failed: {0}")]
    ServerTask(#[from] tokio::task::JoinError),
}

/// An HTTP refusal, answered `{"error": code, "message": message}` with its status:
/// the one shape every refusal of the HTTP transports and the emulator takes. A
/// refusal of the MCP server is also counted in `tenet_mcp_http_rejections_total`
/// (see [`Rejection::counted`]) when it is turned into a response.
#[derive(Debug)]
pub(crate) struct Rejection {
    status: StatusCode,
    code: &'static str,
    message: String,
    reason: Option<&'static str>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Rejection {
    /// A refusal with `status`, a machine-readable `code` and a `message` saying what
    /// to do; not counted.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            reason: None,
            headers: Vec::new(),
        }
    }

    /// Counted in the rejection metric under its code.
    pub(crate) fn counted(self) -> Self {
        let code = self.code;
        self.counted_as(code)
    }

    /// Counted in the rejection metric under `reason` (when it differs from the code
    /// the client sees, e.g. a foreign session answered as an unknown one).
    pub(crate) fn counted_as(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// With a response header.
    pub(crate) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        if let Some(reason) = self.reason {
            crate::metrics::http_rejection(reason);
        }
        let mut response = (
            self.status,
            axum::Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rejection_is_its_status_json_body_and_headers() {
        let response = Rejection::new(StatusCode::TOO_MANY_REQUESTS, "limit", "wait a moment")
            .counted()
            .with_header(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static("5"),
            )
            .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "5");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "JSON, like every other refusal"
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, json!({"error": "limit", "message": "wait a moment"}));
    }
}
