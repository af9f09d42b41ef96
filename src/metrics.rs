//! Prometheus metrics: what `GET /metrics` shows when serving over HTTP.
//!
//! The functions here record through the `metrics` facade, so they cost nothing and
//! show nothing until [`install`] sets up the Prometheus recorder (the HTTP
//! transports do; stdio does not). Metric names:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `tenet_mcp_tool_calls_total` | counter | `tool`, `status` (a report status, `rpc_error` or `cancelled`) |
//! | `tenet_mcp_tool_call_duration_seconds` | histogram | `tool`, `status` |
//! | `tenet_mcp_tool_calls_in_flight` | gauge | |
//! | `tenet_mcp_tenet_request_duration_seconds` | histogram | `endpoint` (`execute`, `job`), `outcome` (HTTP status or `unreachable`) |
//! | `tenet_mcp_tenet_retries_total` | counter | `endpoint`, `reason` |
//! | `tenet_mcp_sessions` | gauge | `transport` (`streamable_http`, `sse`) |
//! | `tenet_mcp_http_rejections_total` | counter | `reason` |
//! | `tenet_mcp_http_connections` | gauge | |

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for durations, in seconds: 5 ms to 2 min.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// How often the recorder's housekeeping runs (histogram buckets roll over).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The Prometheus recorder, once installed: renders the text exposition format.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// The current metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// The process-wide recorder, once installed. A mutex, not a `OnceLock`, so that two servers starting
/// at once in one process install it once: the second waits and shares it.
static INSTALLED: std::sync::Mutex<Option<PrometheusHandle>> = std::sync::Mutex::new(None);

/// Installs the process-wide Prometheus recorder (once: later calls, such as a second
/// server in the same process, share it) and starts an upkeep task on the current
/// Tokio runtime, which it needs. Fails if another recorder is already installed.
pub fn install() -> Result<Metrics, metrics_exporter_prometheus::BuildError> {
    let handle = {
        let mut installed = INSTALLED
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match &*installed {
            Some(handle) => handle.clone(),
            None => {
                let handle = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
                    .and_then(|builder| builder.install_recorder())?;
                describe();
                // Gauges and counters that exist from the start, so dashboards see zeros, not gaps.
                gauge!("tenet_mcp_tool_calls_in_flight").set(0.0);
                gauge!("tenet_mcp_http_connections").set(0.0);
                for transport in ["streamable_http", "sse"] {
                    gauge!("tenet_mcp_sessions", "transport" => transport).set(0.0);
                }
                *installed = Some(handle.clone());
                handle
            }
        }
    };
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(Metrics { handle })
}

fn describe() {
    describe_counter!(
        "tenet_mcp_tool_calls_total",
        "MCP tools/call requests answered, by tool and result status."
    );
    describe_histogram!(
        "tenet_mcp_tool_call_duration_seconds",
        Unit::Seconds,
        "Time from a tools/call request to its answer, by tool and result status."
    );
    describe_gauge!(
        "tenet_mcp_tool_calls_in_flight",
        "tools/call requests received and not yet answered."
    );
    describe_histogram!(
        "tenet_mcp_tenet_request_duration_seconds",
        Unit::Seconds,
        "Latency of each HTTP request to Tenet, by endpoint and outcome."
    );
    describe_counter!(
        "tenet_mcp_tenet_retries_total",
        "Requests to Tenet that were retried, by endpoint and reason."
    );
    describe_gauge!("tenet_mcp_sessions", "Live MCP sessions, by transport.");
    describe_counter!(
        "tenet_mcp_http_rejections_total",
        "HTTP requests refused before reaching MCP, by reason."
    );
    describe_gauge!(
        "tenet_mcp_http_connections",
        "Open HTTP connections (at most --max-connections)."
    );
}

/// A tools/call was answered: `status` is the report's status (`executed`, `blocked`, ...),
/// `rpc_error` for a JSON-RPC error, or `cancelled` when the client cancelled it.
pub fn tool_call(tool: &str, status: &str, elapsed: Duration) {
    let labels = [("tool", tool.to_owned()), ("status", status.to_owned())];
    counter!("tenet_mcp_tool_calls_total", &labels).increment(1);
    histogram!("tenet_mcp_tool_call_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

/// The number of tools/call requests being handled changed to `count`.
pub fn calls_in_flight(count: usize) {
    gauge!("tenet_mcp_tool_calls_in_flight").set(count as f64);
}

/// One HTTP request to Tenet ended: `endpoint` is `execute` or `job`, `outcome` the
/// HTTP status (e.g. `202`) or why there was none (`unreachable`, `timeout`).
pub fn tenet_request(endpoint: &'static str, outcome: &str, elapsed: Duration) {
    histogram!(
        "tenet_mcp_tenet_request_duration_seconds",
        "endpoint" => endpoint,
        "outcome" => outcome.to_owned()
    )
    .record(elapsed.as_secs_f64());
}

/// A request to Tenet is retried: `reason` is the HTTP status that caused it
/// (`429`, `503`, ...) or `unreachable`.
pub fn tenet_retry(endpoint: &'static str, reason: &str) {
    counter!(
        "tenet_mcp_tenet_retries_total",
        "endpoint" => endpoint,
        "reason" => reason.to_owned()
    )
    .increment(1);
}

/// The number of live sessions of `transport` changed to `count`.
pub fn sessions(transport: &'static str, count: usize) {
    gauge!("tenet_mcp_sessions", "transport" => transport).set(count as f64);
}

/// An HTTP connection was accepted and is being served.
pub fn http_connection_opened() {
    gauge!("tenet_mcp_http_connections").increment(1.0);
}

/// An HTTP connection was closed.
pub fn http_connection_closed() {
    gauge!("tenet_mcp_http_connections").decrement(1.0);
}

/// An HTTP request or connection was refused before reaching MCP (`unauthorized`,
/// `forbidden_origin`, `forbidden_host`, `body_too_large`, `session_limit`,
/// `agent_session_limit`, `connection_limit`, `header_timeout`, ...).
pub fn http_rejection(reason: &'static str) {
    counter!("tenet_mcp_http_rejections_total", "reason" => reason).increment(1);
}

#[cfg(test)]
mod tests {
    /// Servers that start at once in one process share one recorder; none fails.
    #[test]
    fn concurrent_installs_share_one_recorder() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let installs: Vec<_> = (0..8)
            .map(|_| runtime.spawn_blocking(|| super::install().is_ok()))
            .collect();
        for install in installs {
            assert!(
                runtime.block_on(install).unwrap(),
                "a concurrent install failed"
            );
        }
    }
}
