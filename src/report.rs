//! The result of one governed call, for a model and a program alike.
//!
//! A [`CallReport`] is the tool result's `structuredContent` (its JSON Schema is the
//! tool's `outputSchema`); [`CallReport::summary`] is the text block written for a
//! model: what happened and what to do next.
//!
//! A report cannot disagree with itself: its [`CallStatus`] is set only by the
//! constructor of that status ([`CallReport::error`], [`CallReport::executed`], ...),
//! which takes what the status needs (the downstream response of an executed call, the
//! [`ExecutionError`] of a failed or pending one, the message of an error), and
//! `executed` is derived from the status when the report is serialised.
//!
//! A downstream body too big for a result is cut (`CallReport::cut_body`): `execution.body`
//! becomes a string holding the start of the body's text, with `execution.truncated` and
//! `execution.size_bytes`, and the summary says where the whole body can be read.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::tenet::{decision::Outcome, wire};

/// Where a governed call ended, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallStatus {
    /// Allowed and run; `execution` holds the downstream response.
    Executed,
    /// Allowed, but the downstream call did not run or failed (`execution_error`).
    Failed,
    /// Allowed and still running when the bridge stopped waiting; `job_ref` follows it.
    Pending,
    /// Held for human approval (`review_id`); Tenet runs it if approved.
    Escalated,
    /// Refused by policy (`reason_codes`).
    Blocked,
    /// No decision: bad arguments, or Tenet rejected or could not take the call.
    Error,
}

impl CallStatus {
    /// Every status, in the order of the enum.
    pub const ALL: [Self; 6] = [
        Self::Executed,
        Self::Failed,
        Self::Pending,
        Self::Escalated,
        Self::Blocked,
        Self::Error,
    ];

    /// The status as it is serialised (`executed`, `blocked`, ...), also its metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Executed => "executed",
            Self::Failed => "failed",
            Self::Pending => "pending",
            Self::Escalated => "escalated",
            Self::Blocked => "blocked",
            Self::Error => "error",
        }
    }

    /// The status serialised as `label`, if it is one (e.g. a result's `structuredContent.status`).
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == label)
    }
}

/// Why an allowed call did not execute: the `execution_error` of a failed or pending report.
///
/// Serialised as the strings it always was; an error Tenet names that the bridge does not
/// know is kept as Tenet wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutionError {
    /// No credential for the service is connected in Tenet for this agent.
    CredentialNotFound,
    /// The job failed and Tenet named no error.
    DownstreamFailed,
    /// The job still ran when the poll deadline passed.
    PollTimeout,
    /// The client cancelled the call while its job ran.
    Cancelled,
    /// Tenet named a job id the bridge will not poll (see `check_job_id`).
    InvalidJobId,
    /// Tenet allowed the call but named no job.
    NoJob,
    /// Another error, as Tenet named it.
    Other(String),
}

impl ExecutionError {
    /// The error as it is serialised.
    pub fn as_str(&self) -> &str {
        match self {
            Self::CredentialNotFound => "credential_not_found",
            Self::DownstreamFailed => "downstream_failed",
            Self::PollTimeout => "poll_timeout",
            Self::Cancelled => "cancelled",
            Self::InvalidJobId => "invalid_job_id",
            Self::NoJob => "no_job",
            Self::Other(other) => other,
        }
    }
}

impl From<String> for ExecutionError {
    /// Tenet's error name, read into the variant that serialises to it.
    fn from(name: String) -> Self {
        match name.as_str() {
            "credential_not_found" => Self::CredentialNotFound,
            "downstream_failed" => Self::DownstreamFailed,
            "poll_timeout" => Self::PollTimeout,
            "cancelled" => Self::Cancelled,
            "invalid_job_id" => Self::InvalidJobId,
            "no_job" => Self::NoJob,
            _ => Self::Other(name),
        }
    }
}

/// The downstream response of an executed call, as a report carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DownstreamResponse {
    /// The downstream HTTP status.
    pub status: u16,
    /// The downstream response headers.
    pub headers: Map<String, Value>,
    /// The downstream body: JSON when it parsed, else a string.
    pub body: Value,
    /// How long the downstream call took, in milliseconds.
    pub duration_ms: u64,
}

impl From<wire::Execution> for DownstreamResponse {
    fn from(e: wire::Execution) -> Self {
        Self {
            status: e.status,
            headers: e.headers,
            body: e.body,
            duration_ms: e.duration_ms,
        }
    }
}

/// A downstream body as it was before [`CallReport::cut_body`] cut it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FullBody {
    /// The body's text: its JSON text, or the string the downstream API answered.
    pub(crate) text: String,
    /// Whether the body was JSON (else text).
    pub(crate) json: bool,
}

impl FullBody {
    /// The media type of [`FullBody::text`].
    pub(crate) fn mime_type(&self) -> &'static str {
        if self.json {
            "application/json"
        } else {
            "text/plain"
        }
    }
}

/// The structured result of a governed tool call.
///
/// The status and what goes with it (`execution`, `execution_error`, `error`) are set
/// only by the constructors of each status; the decision's details are plain fields.
#[derive(Clone, Debug, PartialEq)]
pub struct CallReport {
    status: CallStatus,
    /// Tenet's decision, or null when Tenet gave none.
    pub outcome: Option<Outcome>,
    /// Tenet's decision id.
    pub decision_id: Option<String>,
    /// The review holding an escalated call.
    pub review_id: Option<String>,
    /// The policy rules or errors behind the decision.
    pub reason_codes: Vec<String>,
    /// The job running an allowed call.
    pub job_id: Option<String>,
    /// The job's reference for `tenet_job_status`: valid only for the agent that made the call.
    pub job_ref: Option<String>,
    execution: Option<DownstreamResponse>,
    /// The size of the whole body's text when `execution.body` holds only its start.
    cut: Option<u64>,
    execution_error: Option<ExecutionError>,
    /// The HTTP status of Tenet's answer to the execute, when there was one.
    pub http_status: Option<u16>,
    error: Option<String>,
    /// The Tenet tool name.
    pub tool: String,
    /// The request id sent to Tenet (also the Idempotency-Key).
    pub request_id: String,
    /// Where the whole body of a cut `execution.body` can be read (a resource URI), and
    /// its media type.
    full_body: Option<(String, &'static str)>,
}

/// The JSON form of a [`CallReport`]: its field names and order are the wire contract
/// (and its schema the `outputSchema`).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "CallReport")]
struct ReportJson<'a> {
    /// Where the call ended.
    status: CallStatus,
    /// What happened and what to do next, in words for the model: the text block's
    /// words, here too because some clients hand models only `structuredContent`.
    summary: String,
    /// Tenet's decision, or null when Tenet gave none.
    outcome: Option<Outcome>,
    /// True only when the call was allowed and its job completed with a downstream response.
    executed: bool,
    /// Tenet's decision id.
    decision_id: Option<&'a str>,
    /// The review holding an escalated call.
    review_id: Option<&'a str>,
    /// The policy rules or errors behind the decision.
    reason_codes: &'a Vec<String>,
    /// The job running an allowed call.
    job_id: Option<&'a str>,
    /// The job's reference for `tenet_job_status`: valid only for the agent that made the call.
    job_ref: Option<&'a str>,
    /// The downstream response, when executed.
    execution: Option<ExecutionJson<'a>>,
    /// Why an allowed call did not execute (`credential_not_found`, `poll_timeout`, ...).
    execution_error: Option<&'a str>,
    /// The HTTP status of Tenet's answer to the execute, when there was one.
    http_status: Option<u16>,
    /// What went wrong, for status `error`.
    error: Option<&'a str>,
    /// The Tenet tool name.
    tool: &'a str,
    /// The request id sent to Tenet (also the Idempotency-Key).
    request_id: &'a str,
}

impl<'a> From<&'a CallReport> for ReportJson<'a> {
    fn from(report: &'a CallReport) -> Self {
        Self {
            status: report.status,
            summary: report.summary(),
            outcome: report.outcome,
            executed: report.is_executed(),
            decision_id: report.decision_id.as_deref(),
            review_id: report.review_id.as_deref(),
            reason_codes: &report.reason_codes,
            job_id: report.job_id.as_deref(),
            job_ref: report.job_ref.as_deref(),
            execution: report.execution.as_ref().map(|response| ExecutionJson {
                response,
                truncated: report.cut.is_some(),
                size_bytes: report.cut,
            }),
            execution_error: report.execution_error.as_ref().map(ExecutionError::as_str),
            http_status: report.http_status,
            error: report.error.as_deref(),
            tool: &report.tool,
            request_id: &report.request_id,
        }
    }
}

/// `execution` as a report serialises it: the downstream response, and whether its body was cut.
#[derive(Serialize, JsonSchema)]
struct ExecutionJson<'a> {
    #[serde(flatten)]
    response: &'a DownstreamResponse,
    /// True when `body` is a string holding only the start of the downstream body's text
    /// (see [`CallReport::cut_body`]); absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    /// The size of the whole body's text in bytes, when `truncated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    size_bytes: Option<u64>,
}

impl Serialize for CallReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ReportJson::from(self).serialize(serializer)
    }
}

impl JsonSchema for CallReport {
    fn schema_name() -> Cow<'static, str> {
        ReportJson::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        ReportJson::json_schema(generator)
    }
}

/// The longest downstream body quoted in the text block; the full body is in `execution`.
pub const MAX_SUMMARY_BODY_CHARS: usize = 4000;

impl CallReport {
    /// A report of a call to `tool` sent as `request_id` that has no decision yet: status
    /// `error` (Tenet gave no decision) until one of the constructors below sets another.
    pub fn new(tool: &str, request_id: &str) -> Self {
        Self {
            status: CallStatus::Error,
            outcome: None,
            decision_id: None,
            review_id: None,
            reason_codes: Vec::new(),
            job_id: None,
            job_ref: None,
            execution: None,
            cut: None,
            execution_error: None,
            http_status: None,
            error: None,
            tool: tool.to_owned(),
            request_id: request_id.to_owned(),
            full_body: None,
        }
    }

    /// An error report: no decision, with what went wrong.
    pub fn error(tool: &str, request_id: &str, message: impl Into<String>) -> Self {
        Self::new(tool, request_id).into_error(message)
    }

    /// Status `error`: no decision (any outcome is dropped), with what went wrong.
    pub fn into_error(self, message: impl Into<String>) -> Self {
        Self {
            status: CallStatus::Error,
            outcome: None,
            execution: None,
            cut: None,
            execution_error: None,
            error: Some(message.into()),
            ..self
        }
    }

    /// Status `executed`: the call ran and the downstream API answered `response`.
    pub fn executed(self, response: DownstreamResponse) -> Self {
        Self {
            status: CallStatus::Executed,
            execution: Some(response),
            cut: None,
            execution_error: None,
            error: None,
            ..self
        }
    }

    /// Status `failed`: allowed, but not executed because of `error`; with the downstream
    /// response when there was one.
    pub fn failed(self, error: ExecutionError, response: Option<DownstreamResponse>) -> Self {
        Self {
            status: CallStatus::Failed,
            execution: response,
            cut: None,
            execution_error: Some(error),
            ..self
        }
    }

    /// Status `failed` with an explanation in `error` as well.
    pub fn failed_because(self, error: ExecutionError, message: impl Into<String>) -> Self {
        Self {
            error: Some(message.into()),
            ..self.failed(error, None)
        }
    }

    /// Status `pending`: allowed and still running when the bridge stopped waiting (`why`).
    pub fn pending(self, why: ExecutionError) -> Self {
        Self {
            status: CallStatus::Pending,
            execution: None,
            cut: None,
            execution_error: Some(why),
            ..self
        }
    }

    /// Status `escalated` (for an `ESCALATE` outcome) or `blocked` (any other refusal).
    pub fn refused(self, outcome: Outcome) -> Self {
        let status = if outcome == Outcome::Escalate {
            CallStatus::Escalated
        } else {
            CallStatus::Blocked
        };
        Self {
            status,
            outcome: Some(outcome),
            execution: None,
            cut: None,
            execution_error: None,
            ..self
        }
    }

    /// Where the call ended.
    pub fn status(&self) -> CallStatus {
        self.status
    }

    /// True only when the call was allowed and ran with a downstream response.
    pub fn is_executed(&self) -> bool {
        self.status == CallStatus::Executed
    }

    /// The downstream response, when there was one.
    pub fn execution(&self) -> Option<&DownstreamResponse> {
        self.execution.as_ref()
    }

    /// Why an allowed call did not execute.
    pub fn execution_error(&self) -> Option<&ExecutionError> {
        self.execution_error.as_ref()
    }

    /// Cuts the downstream body when its text (its JSON text, or the string the API
    /// answered) is longer than `max_bytes`: `execution.body` becomes a string holding the
    /// longest start of that text, cut between characters, whose JSON encoding takes at
    /// most `max_bytes`, and `execution.truncated` and `execution.size_bytes` (the whole
    /// text's size) say so. Returns the whole body when it was cut; `None` (and the
    /// report unchanged) when there is no body to cut.
    pub(crate) fn cut_body(&mut self, max_bytes: usize) -> Option<FullBody> {
        if self.cut.is_some() {
            return None;
        }
        let execution = self.execution.as_mut()?;
        let size = match &execution.body {
            Value::String(text) => text.len(),
            other => json_len(other),
        };
        if size <= max_bytes {
            return None;
        }
        let full = match std::mem::take(&mut execution.body) {
            Value::String(text) => FullBody { text, json: false },
            other => FullBody {
                text: other.to_string(),
                json: true,
            },
        };
        execution.body = Value::String(json_prefix(&full.text, max_bytes).to_owned());
        self.cut = Some(size as u64);
        Some(full)
    }

    /// Says that the whole body of a cut `execution.body` can be read at `uri` (a
    /// resource URI); `mime_type` is the body's (see [`FullBody::mime_type`]).
    pub(crate) fn offer_full_body(&mut self, uri: String, mime_type: &'static str) {
        self.full_body = Some((uri, mime_type));
    }

    /// Where the whole body of a cut `execution.body` can be read, when it can.
    pub fn full_body_uri(&self) -> Option<&str> {
        self.offered().map(|(uri, _)| uri.as_str())
    }

    /// The media type of the body at [`CallReport::full_body_uri`].
    pub fn full_body_mime_type(&self) -> Option<&'static str> {
        self.offered().map(|(_, mime_type)| *mime_type)
    }

    fn offered(&self) -> Option<&(String, &'static str)> {
        self.full_body.as_ref().filter(|_| self.cut.is_some())
    }

    /// The size of the whole body's text in bytes, when `execution.body` holds only its
    /// start (`--max-result-bytes`).
    pub fn cut_size(&self) -> Option<u64> {
        self.cut.filter(|_| self.execution.is_some())
    }

    /// For a report whose body was cut: a sentence on how much is left out and where to read it.
    fn cut_note(&self) -> Option<String> {
        let size = self.cut_size()?;
        let kept = self
            .execution
            .as_ref()
            .and_then(|execution| execution.body.as_str())
            .map_or(0, str::len);
        let read = match self.full_body_uri() {
            Some(uri) => format!("read the whole body with resources/read of {uri}"),
            None => "the rest cannot be read through this server".to_owned(),
        };
        Some(format!(
            "The response body is {size} bytes, more than this server puts in a result \
             (--max-result-bytes): execution.body holds only its first {kept} bytes, as a string \
             (execution.truncated is true); {read}."
        ))
    }

    /// Whether the MCP result is an error: blocked, failed, or no decision.
    pub fn is_error(&self) -> bool {
        matches!(
            self.status,
            CallStatus::Blocked | CallStatus::Failed | CallStatus::Error
        )
    }

    /// The text block for a model: what happened and what to do next.
    pub fn summary(&self) -> String {
        let tool = &self.tool;
        let reasons = if self.reason_codes.is_empty() {
            "none given".to_owned()
        } else {
            self.reason_codes.join(", ")
        };
        match self.status {
            CallStatus::Executed => {
                let execution = self.execution.as_ref();
                let status = execution.map_or(0, |e| e.status);
                let body = execution.map(|e| match &e.body {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                });
                let body = body.unwrap_or_default();
                let note = self.cut_note();
                let body = if body.chars().count() > MAX_SUMMARY_BODY_CHARS {
                    let cut: String = body.chars().take(MAX_SUMMARY_BODY_CHARS).collect();
                    let rest = if note.is_some() {
                        "cut"
                    } else {
                        "cut; the full body is in structuredContent.execution.body"
                    };
                    format!("{cut}… ({rest})")
                } else {
                    body
                };
                let verdict = if status >= 400 {
                    "; the downstream API reported an error, read its body below"
                } else {
                    ""
                };
                let note = note.map(|note| format!(" {note}")).unwrap_or_default();
                format!(
                    "{tool} was executed through Tenet: the downstream API answered HTTP {status}{verdict}.{note}\n{body}"
                )
            }
            CallStatus::Failed => {
                let error = self
                    .execution_error
                    .as_ref()
                    .unwrap_or(&ExecutionError::DownstreamFailed);
                let hint = match error {
                    ExecutionError::CredentialNotFound => {
                        " No credential for this service is connected in Tenet for this agent: connect one in Tenet, then try again."
                    }
                    _ => {
                        " Tenet allowed the call but it did not complete; check the error before retrying."
                    }
                };
                let note = self
                    .cut_note()
                    .map(|note| format!(" {note}"))
                    .unwrap_or_default();
                format!(
                    "{tool} was allowed by Tenet but not executed: {}.{hint}{note}",
                    error.as_str()
                )
            }
            CallStatus::Pending => format!(
                "{tool} was allowed by Tenet and is still running as job {}. The bridge stopped waiting; \
                 do not call the tool again: call tenet_job_status with {{\"job_ref\": \"{}\"}} later for its result.",
                self.job_id.as_deref().unwrap_or("(unknown)"),
                self.job_ref.as_deref().unwrap_or("(unknown)")
            ),
            CallStatus::Escalated => format!(
                "{tool} is held for human approval as review {}. Tenet runs it if approved; do not retry. Reasons: {reasons}.",
                self.review_id.as_deref().unwrap_or("(unknown)")
            ),
            CallStatus::Blocked => format!(
                "{tool} was blocked by Tenet policy. Reasons: {reasons}. Do not retry this call."
            ),
            CallStatus::Error => format!(
                "{tool} was not run: {}",
                self.error.as_deref().unwrap_or("Tenet gave no decision")
            ),
        }
    }
}

/// The length of `value`'s JSON text, without writing it out.
fn json_len(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// The longest start of `text`, cut between characters, whose JSON string encoding
/// (without its quotes) takes at most `max_bytes`.
fn json_prefix(text: &str, max_bytes: usize) -> &str {
    let mut used = 0;
    for (at, c) in text.char_indices() {
        let encoded = match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if u32::from(c) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if used + encoded > max_bytes {
            return &text[..at];
        }
        used += encoded;
    }
    text
}

/// The fields of a [`CallReport`] its `outputSchema` types: what an agent acts on.
pub const SCHEMA_FIELDS: &[&str] = &[
    "status",
    "summary",
    "outcome",
    "executed",
    "execution",
    "job_ref",
    "review_id",
    "reason_codes",
    "error",
];

/// The JSON Schema of [`CallReport`], the `outputSchema` of every catalog tool.
///
/// Every tool carries its own copy in `tools/list` (MCP cannot share one), so the schema is
/// kept short: it names every field but types only those an agent acts on ([`SCHEMA_FIELDS`];
/// the others are documented in the README), without descriptions, integer
/// formats and ranges, the nested shape of `execution`, or keywords that restate a default
/// (`$schema`: 2020-12 is MCP's default dialect); constants become an `enum` (with `null`
/// for an optional one). That takes it from ~3.4 KB to ~0.6 KB per tool, and the SDKs that
/// validate each result against it keep doing so.
pub fn output_schema() -> Map<String, Value> {
    let schema = schemars::SchemaGenerator::new(
        schemars::generate::SchemaSettings::draft2020_12().with(|s| {
            s.inline_subschemas = true;
        }),
    )
    .into_root_schema_for::<CallReport>();
    let mut schema = serde_json::to_value(schema).unwrap_or_default();
    compact(&mut schema);
    match schema {
        Value::Object(mut map) => {
            map.remove("$schema");
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                for (name, schema) in properties.iter_mut() {
                    if !SCHEMA_FIELDS.contains(&name.as_str()) {
                        *schema = Value::Object(Map::new());
                    }
                }
                if let Some(Value::Object(execution)) = properties.get_mut("execution") {
                    execution.retain(|keyword, _| keyword == "type");
                }
            }
            map
        }
        _ => unreachable!("a derived schema is a JSON object"),
    }
}

/// Drops what a validator does not need from a derived schema (see [`output_schema`]).
fn compact(schema: &mut Value) {
    let Value::Object(map) = schema else {
        if let Value::Array(schemas) = schema {
            schemas.iter_mut().for_each(compact);
        }
        return;
    };
    for keyword in ["title", "description", "format", "minimum", "maximum"] {
        map.remove(keyword);
    }
    if map.get("additionalProperties") == Some(&Value::Bool(true)) {
        map.remove("additionalProperties");
    }
    let constants = map
        .get("oneOf")
        .and_then(Value::as_array)
        .and_then(|alternatives| {
            alternatives
                .iter()
                .map(|alternative| alternative.get("const").cloned())
                .collect::<Option<Vec<_>>>()
        });
    if let Some(constants) = constants {
        map.remove("oneOf");
        map.insert("enum".into(), Value::Array(constants));
    }
    for (keyword, value) in map.iter_mut() {
        match (keyword.as_str(), value) {
            // Property names are not keywords: compact each property's schema, keep every name.
            ("properties", Value::Object(properties)) => properties.values_mut().for_each(compact),
            ("enum" | "const" | "required", _) => {}
            (_, value) => compact(value),
        }
    }
    // `anyOf: [{enum: [...]}, {type: null}]` (an optional enum) is `enum: [..., null]`.
    let nullable_enum = match map
        .get("anyOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([Value::Object(first), Value::Object(second)])
            if first.len() == 1
                && second.len() == 1
                && second.get("type") == Some(&Value::from("null")) =>
        {
            first.get("enum").and_then(Value::as_array).cloned()
        }
        _ => None,
    };
    if let Some(mut constants) = nullable_enum {
        constants.push(Value::Null);
        map.remove("anyOf");
        map.insert("enum".into(), Value::Array(constants));
    }
}

impl CallReport {
    /// Records the outcome on the call's span (`crate::telemetry`'s `tools/call`).
    pub(crate) fn record_on(&self, span: &tracing::Span) {
        span.record("tool", self.tool.as_str());
        span.record("status", self.status().as_str());
        if let Some(outcome) = &self.outcome {
            span.record("outcome", outcome.as_str());
        }
        span.record("request_id", self.request_id.as_str());
        for (field, value) in [
            ("decision_id", &self.decision_id),
            ("review_id", &self.review_id),
            ("job_id", &self.job_id),
        ] {
            if let Some(value) = value {
                span.record(field, value.as_str());
            }
        }
        if let Some(status) = self.http_status {
            span.record("http_status", status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn output_schema_validates_reports() {
        let schema = Value::Object(output_schema());
        assert_eq!(schema["type"], "object");
        let validator = jsonschema::validator_for(&schema).unwrap();
        let mut report = CallReport::new("github.repos.get", "r1");
        report.outcome = Some(Outcome::AllowWithConditions);
        let report = report.executed(DownstreamResponse {
            status: 200,
            headers: Map::new(),
            body: json!({"a": 1}),
            duration_ms: 3,
        });
        let value = serde_json::to_value(&report).unwrap();
        assert!(validator.is_valid(&value), "{value}");
        assert_eq!(value["outcome"], "ALLOW_WITH_CONDITIONS");
        assert_eq!(value["status"], "executed");
        assert!(!validator.is_valid(&json!({"status": "weird"})));
        let mut wrong_outcome = value.clone();
        wrong_outcome["outcome"] = json!("MAYBE");
        assert!(!validator.is_valid(&wrong_outcome));
        assert!(
            validator.is_valid(&serde_json::to_value(CallReport::new("t", "r")).unwrap()),
            "no outcome"
        );
        assert!(
            schema.to_string().len() < 650,
            "{}: {schema}",
            schema.to_string().len()
        );
        let derived = schemars::schema_for!(CallReport).to_value();
        let properties = schema["properties"].as_object().unwrap();
        assert_eq!(
            properties.keys().collect::<Vec<_>>(),
            derived["properties"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            "compacting names every field"
        );
        for field in SCHEMA_FIELDS {
            assert_ne!(properties[*field], json!({}), "{field} is typed");
        }
        assert_eq!(properties["decision_id"], json!({}));
    }

    #[test]
    fn summaries_say_what_to_do() {
        let mut r = CallReport::new("t", "r");
        r.review_id = Some("rev_1".into());
        let r = r.refused(Outcome::Escalate);
        assert!(
            r.summary()
                .contains("held for human approval as review rev_1")
                && r.summary().contains("do not retry")
        );
        assert!(!r.is_error());
        let mut r = r.refused(Outcome::Block);
        r.reason_codes = vec!["RULE_x".into()];
        assert!(r.summary().contains("RULE_x") && r.summary().contains("Do not retry"));
        assert!(r.is_error());
        let mut r = r.pending(ExecutionError::PollTimeout);
        r.job_id = Some("job_9".into());
        r.job_ref = Some("job_9.00ff".into());
        assert!(
            r.summary().contains("job_9")
                && r.summary()
                    .contains(r#"call tenet_job_status with {"job_ref": "job_9.00ff"}"#),
            "{}",
            r.summary()
        );
        let long = CallReport::new("t", "r").executed(DownstreamResponse {
            status: 200,
            headers: Map::new(),
            body: Value::String("x".repeat(10_000)),
            duration_ms: 0,
        });
        assert!(long.summary().len() < 4200 && long.summary().contains("cut"));
    }

    /// The JSON of reports and the output schema are the wire contract, byte for byte
    /// (clients validate results against the schema); `summary` carries the text block's words.
    #[test]
    fn report_json_and_schema_are_the_wire_contract() {
        assert_eq!(
            Value::Object(output_schema()).to_string(),
            r#"{"properties":{"decision_id":{},"error":{"type":["string","null"]},"executed":{"type":"boolean"},"execution":{"type":["object","null"]},"execution_error":{},"http_status":{},"job_id":{},"job_ref":{"type":["string","null"]},"outcome":{"enum":["ALLOW","ALLOW_WITH_CONDITIONS","ESCALATE","BLOCK",null]},"reason_codes":{"items":{"type":"string"},"type":"array"},"request_id":{},"review_id":{"type":["string","null"]},"status":{"enum":["executed","failed","pending","escalated","blocked","error"]},"summary":{"type":"string"},"tool":{}},"required":["status","summary","executed","reason_codes","tool","request_id"],"type":"object"}"#
        );
        let mut report = CallReport::new("t.x", "r1");
        report.outcome = Some(Outcome::Allow);
        report.decision_id = Some("d1".into());
        report.job_id = Some("job_1".into());
        report.job_ref = Some("job_1.ab".into());
        report.reason_codes = vec!["RULE_a".into()];
        report.http_status = Some(200);
        let report = report.failed(
            ExecutionError::CredentialNotFound,
            Some(DownstreamResponse {
                status: 502,
                headers: Map::new(),
                body: Value::String("bad".into()),
                duration_ms: 7,
            }),
        );
        let with_summary = |report: &CallReport, rest: &str| {
            format!(
                r#"{{"status":"{}","summary":{},{rest}"#,
                report.status().as_str(),
                Value::String(report.summary())
            )
        };
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            with_summary(
                &report,
                r#""outcome":"ALLOW","executed":false,"decision_id":"d1","review_id":null,"reason_codes":["RULE_a"],"job_id":"job_1","job_ref":"job_1.ab","execution":{"status":502,"headers":{},"body":"bad","duration_ms":7},"execution_error":"credential_not_found","http_status":200,"error":null,"tool":"t.x","request_id":"r1"}"#
            )
        );
        let error = CallReport::error("t", "", "boom");
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            with_summary(
                &error,
                r#""outcome":null,"executed":false,"decision_id":null,"review_id":null,"reason_codes":[],"job_id":null,"job_ref":null,"execution":null,"execution_error":null,"http_status":null,"error":"boom","tool":"t","request_id":""}"#
            )
        );
        assert!(error.summary().contains("boom"), "{}", error.summary());
    }

    fn executed_with(body: Value) -> CallReport {
        let mut report = CallReport::new("t.x", "r1");
        report.job_id = Some("job_1".into());
        report.executed(DownstreamResponse {
            status: 200,
            headers: Map::new(),
            body,
            duration_ms: 1,
        })
    }

    /// A cut keeps the longest start whose JSON encoding fits, between characters.
    #[test]
    fn json_prefix_fits_the_encoded_size_on_a_char_boundary() {
        for (text, max, prefix) in [
            ("abcdef", 4, "abcd"),
            ("ab\"cd", 4, "ab\""),
            ("ab\"cd", 3, "ab"),
            ("é€x", 4, "é"),
            ("é€x", 5, "é€"),
            ("a\u{1}b", 6, "a"),
            ("a\u{1}b", 7, "a\u{1}"),
            ("short", 100, "short"),
        ] {
            assert_eq!(json_prefix(text, max), prefix, "{text:?} in {max}");
        }
    }

    #[test]
    fn cutting_a_body_makes_it_a_string_prefix_with_its_size() {
        let body = json!({"a": "x".repeat(100)});
        let mut report = executed_with(body.clone());
        let unchanged = report.clone();
        assert_eq!(report.cut_body(200), None, "a body that fits is not cut");
        assert_eq!(report, unchanged);
        let full = report.cut_body(50).unwrap();
        assert_eq!(
            full,
            FullBody {
                text: body.to_string(),
                json: true
            }
        );
        let value = serde_json::to_value(&report).unwrap();
        let execution = &value["execution"];
        assert_eq!(execution["truncated"], true);
        assert_eq!(execution["size_bytes"], body.to_string().len());
        // `{"a":"` takes 9 bytes encoded (each quote is escaped), then 41 `x` fit.
        let kept = execution["body"].as_str().unwrap();
        assert_eq!(kept, &body.to_string()[..47]);
        assert_eq!(report.cut_body(10), None, "a cut body is not cut again");
        assert!(
            jsonschema::validator_for(&Value::Object(output_schema()))
                .unwrap()
                .is_valid(&value)
        );
        assert!(
            report
                .summary()
                .contains("execution.body holds only its first 47 bytes")
                && report
                    .summary()
                    .contains("cannot be read through this server"),
            "{}",
            report.summary()
        );
        report.offer_full_body("tenet://jobs/job_1/execution".into(), full.mime_type());
        assert!(
            report.summary().contains(
                "read the whole body with resources/read of tenet://jobs/job_1/execution"
            ),
            "{}",
            report.summary()
        );
        let text = executed_with(Value::String("é".repeat(40)))
            .cut_body(9)
            .unwrap();
        assert_eq!((text.json, text.mime_type()), (false, "text/plain"));
    }

    /// `executed` is true exactly for status `executed`, whatever built the report; an
    /// error drops the decision; execution errors keep the names Tenet and clients use.
    #[test]
    fn executed_follows_the_status() {
        let response = DownstreamResponse {
            status: 200,
            headers: Map::new(),
            body: Value::Null,
            duration_ms: 0,
        };
        let base = || {
            let mut report = CallReport::new("t", "r");
            report.outcome = Some(Outcome::Allow);
            report
        };
        let reports = [
            base().executed(response.clone()),
            base().failed(ExecutionError::DownstreamFailed, Some(response.clone())),
            base().failed_because(ExecutionError::NoJob, "no job"),
            base().pending(ExecutionError::Cancelled),
            base().refused(Outcome::Escalate),
            base().refused(Outcome::Block),
            base()
                .executed(response)
                .into_error("Tenet rejected the key"),
        ];
        let mut statuses: Vec<_> = reports.iter().map(CallReport::status).collect();
        statuses.dedup();
        assert_eq!(statuses, CallStatus::ALL);
        for report in &reports {
            let json = serde_json::to_value(report).unwrap();
            let executed = report.status() == CallStatus::Executed;
            assert_eq!(json["executed"], executed, "{json}");
            assert_eq!(json["execution"].is_null(), report.execution().is_none());
            assert_eq!(
                CallStatus::from_label(json["status"].as_str().unwrap()),
                Some(report.status())
            );
        }
        let error = &reports[6];
        assert_eq!((error.outcome, error.execution()), (None, None));
        for name in [
            "credential_not_found",
            "downstream_failed",
            "poll_timeout",
            "cancelled",
            "invalid_job_id",
            "no_job",
            "rate_limited",
        ] {
            assert_eq!(ExecutionError::from(name.to_owned()).as_str(), name);
        }
        assert_eq!(
            ExecutionError::from("credential_not_found".to_owned()),
            ExecutionError::CredentialNotFound
        );
        assert_eq!(CallStatus::from_label("ok"), None);
    }
}
