//! Reading Tenet's answer to `POST /v1/execute` into a [`Reply`].
//!
//! Tenet's decision bodies come in two shapes (nested and flat) with synonyms for
//! several keys; when no outcome can be read it is inferred from the HTTP status,
//! failing closed. Every shape the contract lists is covered by the tests below.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::wire::Execution;

/// What Tenet decided about a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Allowed; the call runs as a job.
    Allow,
    /// Allowed with conditions Tenet enforces; counts as allowed.
    AllowWithConditions,
    /// Held for human approval; Tenet runs it itself if approved.
    Escalate,
    /// Refused by policy.
    Block,
}

impl Outcome {
    /// Parses an outcome word, case-insensitively.
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_uppercase().as_str() {
            "ALLOW" => Self::Allow,
            "ALLOW_WITH_CONDITIONS" => Self::AllowWithConditions,
            "ESCALATE" => Self::Escalate,
            "BLOCK" => Self::Block,
            _ => return None,
        })
    }

    /// ALLOW or ALLOW_WITH_CONDITIONS.
    pub fn is_allowed(self) -> bool {
        matches!(self, Self::Allow | Self::AllowWithConditions)
    }

    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "ALLOW",
            Self::AllowWithConditions => "ALLOW_WITH_CONDITIONS",
            Self::Escalate => "ESCALATE",
            Self::Block => "BLOCK",
        }
    }
}

/// A decision read off an execute response.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The outcome, read from the body or inferred from the HTTP status.
    pub outcome: Outcome,
    /// True when the body named no outcome and it was inferred from the HTTP status.
    pub inferred: bool,
    /// Tenet's decision id.
    pub decision_id: Option<String>,
    /// The review holding an escalated call.
    pub review_id: Option<String>,
    /// The policy rules or errors behind the decision.
    pub reason_codes: Vec<String>,
    /// The job running an allowed call.
    pub job_id: Option<String>,
    /// The body's `status` word (`pending`, `completed`, ...), if any.
    pub status: Option<String>,
    /// A downstream result already in the execute response.
    pub execution: Option<Execution>,
    /// Why an allowed call did not execute (e.g. `credential_not_found`).
    pub execution_error: Option<String>,
}

/// Tenet's answer to an execute, classified.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// A policy decision.
    Decision(Decision),
    /// 401: the API key was rejected.
    Unauthorized,
    /// Another 4xx without a decision, e.g. 400 `unknown_tool`.
    Rejected {
        /// The HTTP status.
        http_status: u16,
        /// The body's `error` code, if any (becomes a reason code).
        code: Option<String>,
        /// A human-readable message from the body, if any.
        message: Option<String>,
    },
    /// 5xx (or another status Tenet should not send).
    ServerError {
        /// The HTTP status.
        http_status: u16,
        /// The start of the body, for the operator.
        message: Option<String>,
    },
}

/// The longest piece of an unexpected body quoted back in an error.
const MAX_QUOTED_BODY: usize = 300;

/// Classifies an execute response from its HTTP status and raw body.
pub fn parse_execute_reply(http_status: u16, body: &[u8]) -> Reply {
    let json: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
    if http_status == 401 {
        return Reply::Unauthorized;
    }
    if http_status >= 500 {
        return Reply::ServerError {
            http_status,
            message: quote(body),
        };
    }
    let empty = Map::new();
    let (read, mut decision) = parse_decision(json.as_ref().unwrap_or(&empty));
    match read {
        Some(outcome) => decision.outcome = outcome,
        None => {
            decision.inferred = true;
            decision.outcome = match http_status {
                200 => Outcome::Allow,
                202 => Outcome::Escalate,
                403 => Outcome::Block,
                400..=499 => {
                    let field = |key: &str| {
                        json.as_ref()
                            .and_then(|j| j.get(key))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    };
                    return Reply::Rejected {
                        http_status,
                        code: field("error").or_else(|| field("code")),
                        message: field("message")
                            .or_else(|| quote(body).filter(|_| json.is_none())),
                    };
                }
                // Fail closed: an answer we cannot read never lets a call through.
                _ => Outcome::Block,
            };
        }
    }
    Reply::Decision(decision)
}

/// Reads the outcome, if the body names one, and the other decision fields from
/// either shape of decision body. The returned decision's outcome is BLOCK until set.
fn parse_decision(body: &Map<String, Value>) -> (Option<Outcome>, Decision) {
    let nested = body.get("decision").and_then(Value::as_object);
    // Keys are looked up in the nested object first, then at top level.
    let lookup = |keys: &[&str]| -> Option<&Value> {
        keys.iter()
            .find_map(|key| nested.and_then(|n| n.get(*key)).or_else(|| body.get(*key)))
    };
    let string = |keys: &[&str]| lookup(keys).and_then(value_to_string);
    let outcome = match body.get("decision") {
        Some(Value::String(word)) => Outcome::parse(word),
        Some(Value::Object(inner)) => ["outcome", "decision"].iter().find_map(|k| {
            inner
                .get(*k)
                .and_then(Value::as_str)
                .and_then(Outcome::parse)
        }),
        _ => None,
    }
    .or_else(|| {
        body.get("outcome")
            .and_then(Value::as_str)
            .and_then(Outcome::parse)
    });
    let reason_codes = lookup(&["reasonCodes", "reason_codes"])
        .and_then(Value::as_array)
        .map(|codes| codes.iter().filter_map(value_to_string).collect())
        .unwrap_or_default();
    let decision = Decision {
        outcome: Outcome::Block,
        inferred: false,
        decision_id: string(&["decisionId", "decision_id", "id"]),
        review_id: string(&["reviewId", "review_id"]),
        reason_codes,
        job_id: string(&["jobId", "job_id"]),
        status: body
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned),
        execution: body
            .get("execution")
            .and_then(|e| serde_json::from_value(e.clone()).ok()),
        execution_error: string(&["executionError", "execution_error"]),
    };
    (outcome, decision)
}

fn value_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The start of a body, as text, for error messages.
pub(crate) fn quote(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut end = text.len().min(MAX_QUOTED_BODY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(if end < text.len() {
        format!("{}…", &text[..end])
    } else {
        text.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn decision(status: u16, body: Value) -> Decision {
        match parse_execute_reply(status, body.to_string().as_bytes()) {
            Reply::Decision(d) => d,
            other => panic!("expected a decision, got {other:?}"),
        }
    }

    #[test]
    fn allow_with_job() {
        let d = decision(
            202,
            json!({"jobId": "job_1", "status": "pending", "decision": "ALLOW"}),
        );
        assert_eq!(d.outcome, Outcome::Allow);
        assert!(!d.inferred);
        assert_eq!(d.job_id.as_deref(), Some("job_1"));
        assert_eq!(d.status.as_deref(), Some("pending"));
    }

    #[test]
    fn flat_escalate_and_block() {
        let d = decision(
            202,
            json!({"decision": "ESCALATE", "reviewId": "rev_1", "status": "pending"}),
        );
        assert_eq!(
            (d.outcome, d.review_id.as_deref()),
            (Outcome::Escalate, Some("rev_1"))
        );
        let d = decision(
            403,
            json!({"decision": "BLOCK", "decisionId": "d1", "reasonCodes": ["RULE_block-irreversible-on-prod"]}),
        );
        assert_eq!(d.outcome, Outcome::Block);
        assert_eq!(d.decision_id.as_deref(), Some("d1"));
        assert_eq!(d.reason_codes, ["RULE_block-irreversible-on-prod"]);
    }

    #[test]
    fn flat_outcome_key_at_top_level() {
        let d = decision(
            200,
            json!({"outcome": "allow_with_conditions", "jobId": "j"}),
        );
        assert_eq!(d.outcome, Outcome::AllowWithConditions);
        assert!(d.outcome.is_allowed());
    }

    #[test]
    fn nested_with_id_and_snake_reason_codes() {
        let d = decision(
            202,
            json!({"decision": {"outcome": "ESCALATE", "id": "d9", "reviewId": "rev_2", "reason_codes": ["RULE_irreversible-escalate"]}}),
        );
        assert_eq!(d.outcome, Outcome::Escalate);
        assert_eq!(d.decision_id.as_deref(), Some("d9"));
        assert_eq!(d.review_id.as_deref(), Some("rev_2"));
        assert_eq!(d.reason_codes, ["RULE_irreversible-escalate"]);
    }

    #[test]
    fn nested_with_decision_key_and_decision_id() {
        let d = decision(
            403,
            json!({"decision": {"decision": "BLOCK", "decisionId": "d2", "reasonCodes": ["a", "b"]}, "executionError": "x"}),
        );
        assert_eq!(d.outcome, Outcome::Block);
        assert_eq!(d.decision_id.as_deref(), Some("d2"));
        assert_eq!(d.reason_codes, ["a", "b"]);
        assert_eq!(d.execution_error.as_deref(), Some("x"));
    }

    #[test]
    fn top_level_execution_error_on_allow() {
        let d = decision(
            200,
            json!({"decision": "ALLOW", "executionError": "credential_not_found"}),
        );
        assert_eq!(d.outcome, Outcome::Allow);
        assert_eq!(d.execution_error.as_deref(), Some("credential_not_found"));
    }

    #[test]
    fn execution_inline() {
        let d = decision(
            200,
            json!({"decision": "ALLOW", "status": "completed", "execution": {"status": 201, "headers": {"a": "b"}, "body": {"ok": true}, "durationMs": 12}}),
        );
        let e = d.execution.unwrap();
        assert_eq!(
            (e.status, e.duration_ms, e.body),
            (201, 12, json!({"ok": true}))
        );
    }

    #[test]
    fn status_fallback_fails_closed() {
        for (status, outcome) in [
            (200, Outcome::Allow),
            (202, Outcome::Escalate),
            (403, Outcome::Block),
            (302, Outcome::Block),
            (204, Outcome::Block),
        ] {
            let d = decision(status, json!({"status": "pending"}));
            assert_eq!(d.outcome, outcome, "HTTP {status}");
            assert!(d.inferred);
        }
        let unknown_word = decision(200, json!({"decision": "MAYBE"}));
        assert_eq!(
            (unknown_word.outcome, unknown_word.inferred),
            (Outcome::Allow, true)
        );
    }

    #[test]
    fn non_json_bodies() {
        let Reply::Decision(d) = parse_execute_reply(403, b"<html>forbidden</html>") else {
            panic!()
        };
        assert_eq!((d.outcome, d.inferred), (Outcome::Block, true));
        let Reply::Decision(d) = parse_execute_reply(200, b"") else {
            panic!()
        };
        assert_eq!(d.outcome, Outcome::Allow);
        assert_eq!(
            parse_execute_reply(429, b"error code: 1010"),
            Reply::Rejected {
                http_status: 429,
                code: None,
                message: Some("error code: 1010".into())
            }
        );
        assert_eq!(
            parse_execute_reply(502, b"bad gateway"),
            Reply::ServerError {
                http_status: 502,
                message: Some("bad gateway".into())
            }
        );
    }

    #[test]
    fn unauthorized_and_resolver_errors() {
        assert_eq!(
            parse_execute_reply(401, br#"{"decision":"ALLOW"}"#),
            Reply::Unauthorized
        );
        assert_eq!(
            parse_execute_reply(400, br#"{"error":"unknown_tool","message":"no such tool"}"#),
            Reply::Rejected {
                http_status: 400,
                code: Some("unknown_tool".into()),
                message: Some("no such tool".into())
            }
        );
        // A 4xx that does carry a decision is a decision.
        let d = decision(409, json!({"decision": "BLOCK", "reasonCodes": ["r"]}));
        assert_eq!(d.outcome, Outcome::Block);
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(400);
        let Reply::ServerError {
            message: Some(m), ..
        } = parse_execute_reply(500, body.as_bytes())
        else {
            panic!()
        };
        assert!(
            m.ends_with('…') && m.chars().count() <= MAX_QUOTED_BODY / 2 + 1,
            "{m}"
        );
    }

    proptest! {
        /// Any status and body give a definite reply without panicking, and a call is
        /// allowed only on an allow signal: an allow word in the body, or (the contract's
        /// inference) HTTP 200 with no outcome at all.
        #[test]
        fn any_answer_fails_closed(status in 100u16..600, body in crate::tenet::arbitrary::body()) {
            match parse_execute_reply(status, &body) {
                Reply::Unauthorized => prop_assert_eq!(status, 401),
                Reply::ServerError { http_status, .. } => {
                    prop_assert!(http_status >= 500 && http_status == status)
                }
                Reply::Rejected { http_status, .. } => {
                    prop_assert!((400..500).contains(&http_status) && http_status != 401)
                }
                Reply::Decision(d) if d.outcome.is_allowed() => {
                    let said_allow = String::from_utf8_lossy(&body).to_ascii_uppercase().contains("ALLOW");
                    prop_assert!(
                        if d.inferred { status == 200 } else { said_allow },
                        "allowed without an allow signal: {} {}", status, String::from_utf8_lossy(&body)
                    );
                }
                Reply::Decision(_) => {}
            }
        }
    }
}
