//! The bodies of Tenet's HTTP API, exactly as `docs/TENET_CONTRACT.md` spells them.
//!
//! Requests are typed strictly (we write them); responses are read leniently by
//! [`super::decision`], because Tenet's decision bodies come in several shapes.
//! The emulator serializes the same types, so both sides share one definition.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of `POST /v1/execute`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteRequest {
    /// Caller-chosen UUID, also sent as the `Idempotency-Key` header.
    pub request_id: String,
    /// The service the tool belongs to, e.g. `github`.
    pub service: String,
    /// The logical call.
    pub tool_call: ToolCall,
    /// Who is calling.
    pub agent: Agent,
    /// Free-form facts policy can use, e.g. `{"env": "production"}`.
    #[serde(default)]
    pub context: Map<String, Value>,
}

/// The logical tool call inside an [`ExecuteRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCall {
    /// The Tenet tool name, e.g. `github.repos.delete`.
    pub tool_name: String,
    /// The arguments, a JSON object.
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// The calling agent's identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    /// The agent id; Tenet's auto-provisioned agent is `default`.
    pub agent_id: String,
}

/// A job's state, as `GET /v1/jobs/{id}` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Queued, not started.
    Pending,
    /// The downstream call is under way.
    Running,
    /// Finished with a downstream response in `execution`.
    Completed,
    /// Finished without one; `executionError` says why.
    Failed,
}

impl JobStatus {
    /// Completed or failed: polling can stop.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }

    /// The status word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// The downstream response a completed job carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// The downstream HTTP status.
    pub status: u16,
    /// The downstream response headers.
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// The downstream body: JSON when it parsed, else a string.
    #[serde(default)]
    pub body: Value,
    /// How long the downstream call took.
    #[serde(default)]
    pub duration_ms: u64,
}

/// The body of `GET /v1/jobs/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobBody {
    /// The job id (a poll's answer may leave it out).
    #[serde(default)]
    pub job_id: String,
    /// Where the job is.
    pub status: JobStatus,
    /// The downstream response, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
    /// Why the job failed; absent on a failed job means `downstream_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_error: Option<String>,
}
