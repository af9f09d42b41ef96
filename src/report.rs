//! The result of one governed call, for a model and a program alike.
//!
//! A [`CallReport`] is the tool result's `structuredContent` (its JSON Schema is the
//! tool's `outputSchema`); [`CallReport::summary`] is the text block written for a
//! model: what happened and what to do next.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::tenet::{decision::Outcome, wire};

/// Where a governed call ended, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
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

/// The downstream response of an executed call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Execution {
    /// The downstream HTTP status.
    pub status: u16,
    /// The downstream response headers.
    pub headers: Map<String, Value>,
    /// The downstream body: JSON when it parsed, else a string.
    pub body: Value,
    /// How long the downstream call took, in milliseconds.
    pub duration_ms: u64,
}

impl From<wire::Execution> for Execution {
    fn from(e: wire::Execution) -> Self {
        Self {
            status: e.status,
            headers: e.headers,
            body: e.body,
            duration_ms: e.duration_ms,
        }
    }
}

/// The structured result of a governed tool call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CallReport {
    /// Where the call ended.
    pub status: Status,
    /// Tenet's decision, or null when Tenet gave none.
    pub outcome: Option<Outcome>,
    /// True only when the call was allowed and its job completed with a downstream response.
    pub executed: bool,
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
    /// The downstream response, when executed.
    pub execution: Option<Execution>,
    /// Why an allowed call did not execute (`credential_not_found`, `poll_timeout`, ...).
    pub execution_error: Option<String>,
    /// The HTTP status of Tenet's answer to the execute, when there was one.
    pub http_status: Option<u16>,
    /// What went wrong, for status `error`.
    pub error: Option<String>,
    /// The Tenet tool name.
    pub tool: String,
    /// The request id sent to Tenet (also the Idempotency-Key).
    pub request_id: String,
}

/// The longest downstream body quoted in the text block; the full body is in `execution`.
pub const MAX_SUMMARY_BODY_CHARS: usize = 4000;

impl CallReport {
    /// A report with no decision yet, for `tool` and `request_id`.
    pub fn new(tool: &str, request_id: &str) -> Self {
        Self {
            status: Status::Error,
            outcome: None,
            executed: false,
            decision_id: None,
            review_id: None,
            reason_codes: Vec::new(),
            job_id: None,
            job_ref: None,
            execution: None,
            execution_error: None,
            http_status: None,
            error: None,
            tool: tool.to_owned(),
            request_id: request_id.to_owned(),
        }
    }

    /// An error report: no decision, with what went wrong.
    pub fn error(tool: &str, request_id: &str, message: impl Into<String>) -> Self {
        Self {
            error: Some(message.into()),
            ..Self::new(tool, request_id)
        }
    }

    /// Whether the MCP result is an error: blocked, failed, or no decision.
    pub fn is_error(&self) -> bool {
        matches!(
            self.status,
            Status::Blocked | Status::Failed | Status::Error
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
            Status::Executed => {
                let execution = self.execution.as_ref();
                let status = execution.map_or(0, |e| e.status);
                let body = execution.map(|e| match &e.body {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                });
                let body = body.unwrap_or_default();
                let body = if body.chars().count() > MAX_SUMMARY_BODY_CHARS {
                    let cut: String = body.chars().take(MAX_SUMMARY_BODY_CHARS).collect();
                    format!("{cut}… (cut; the full body is in structuredContent.execution.body)")
                } else {
                    body
                };
                let verdict = if status >= 400 {
                    "; the downstream API reported an error, read its body below"
                } else {
                    ""
                };
                format!(
                    "{tool} was executed through Tenet: the downstream API answered HTTP {status}{verdict}.\n{body}"
                )
            }
            Status::Failed => {
                let error = self
                    .execution_error
                    .as_deref()
                    .unwrap_or("downstream_failed");
                let hint = match error {
                    "credential_not_found" => {
                        " No credential for this service is connected in Tenet for this agent: connect one in Tenet, then try again."
                    }
                    _ => {
                        " Tenet allowed the call but it did not complete; check the error before retrying."
                    }
                };
                format!("{tool} was allowed by Tenet but not executed: {error}.{hint}")
            }
            Status::Pending => format!(
                "{tool} was allowed by Tenet and is still running as job {}. The bridge stopped waiting; \
                 do not call the tool again: call tenet_job_status with {{\"job_ref\": \"{}\"}} later for its result.",
                self.job_id.as_deref().unwrap_or("(unknown)"),
                self.job_ref.as_deref().unwrap_or("(unknown)")
            ),
            Status::Escalated => format!(
                "{tool} is held for human approval as review {}. Tenet runs it if approved; do not retry. Reasons: {reasons}.",
                self.review_id.as_deref().unwrap_or("(unknown)")
            ),
            Status::Blocked => format!(
                "{tool} was blocked by Tenet policy. Reasons: {reasons}. Do not retry this call."
            ),
            Status::Error => format!(
                "{tool} was not run: {}",
                self.error.as_deref().unwrap_or("Tenet gave no decision")
            ),
        }
    }
}

/// The fields of a [`CallReport`] its `outputSchema` types: what an agent acts on.
pub const SCHEMA_FIELDS: &[&str] = &[
    "status",
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
        report.status = Status::Executed;
        report.outcome = Some(Outcome::AllowWithConditions);
        report.executed = true;
        report.execution = Some(Execution {
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
        r.status = Status::Escalated;
        r.review_id = Some("rev_1".into());
        assert!(
            r.summary()
                .contains("held for human approval as review rev_1")
                && r.summary().contains("do not retry")
        );
        assert!(!r.is_error());
        r.status = Status::Blocked;
        r.reason_codes = vec!["RULE_x".into()];
        assert!(r.summary().contains("RULE_x") && r.summary().contains("Do not retry"));
        assert!(r.is_error());
        r.status = Status::Pending;
        r.job_id = Some("job_9".into());
        r.job_ref = Some("job_9.00ff".into());
        assert!(
            r.summary().contains("job_9")
                && r.summary()
                    .contains(r#"call tenet_job_status with {"job_ref": "job_9.00ff"}"#),
            "{}",
            r.summary()
        );
        let long = CallReport {
            status: Status::Executed,
            execution: Some(Execution {
                status: 200,
                headers: Map::new(),
                body: Value::String("x".repeat(10_000)),
                duration_ms: 0,
            }),
            ..CallReport::new("t", "r")
        };
        assert!(long.summary().len() < 4200 && long.summary().contains("cut"));
    }
}
