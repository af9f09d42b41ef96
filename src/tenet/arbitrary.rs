//! Test-only proptest strategies for the documents the bridge reads: JSON shaped like
//! Tenet's answers and catalog files (their keys and words, mixed with noise), and raw bytes.
//!
//! The property tests run 256 cases each by default; set `PROPTEST_CASES` for a longer run.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys Tenet's answers and catalog files use, and a few that nothing reads.
const KEYS: &[&str] = &[
    "decision",
    "outcome",
    "id",
    "decisionId",
    "decision_id",
    "reviewId",
    "review_id",
    "reasonCodes",
    "reason_codes",
    "jobId",
    "job_id",
    "status",
    "execution",
    "executionError",
    "execution_error",
    "error",
    "code",
    "message",
    "headers",
    "body",
    "durationMs",
    "service",
    "description",
    "base_url",
    "tools",
    "name",
    "title",
    "method",
    "path",
    "destructive",
    "cost_usd",
    "input_schema",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "pattern",
    "$ref",
    "items",
    "enum",
    "x",
];

/// Words those keys take, and a few they should not.
const WORDS: &[&str] = &[
    "ALLOW",
    "allow",
    "ALLOW_WITH_CONDITIONS",
    "ESCALATE",
    "BLOCK",
    "block",
    "MAYBE",
    "",
    "pending",
    "running",
    "completed",
    "failed",
    "queued",
    "job_1",
    "..",
    ".",
    "a/b",
    "credential_not_found",
    "GET",
    "POST",
    "DELETE",
    "get",
    "TRACE",
    "/items/{id}",
    "/items/{",
    "{id}",
    "object",
    "string",
    "integer",
    "array",
    "#/definitions/x",
    "(",
    "[",
    "github.repos.get",
    "tenet_job_status",
    "é",
];

/// A JSON value shaped like Tenet's answers or catalog files, up to a few levels deep.
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (100u16..600).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(WORDS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object key: mostly one the readers look for.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-zA-Z_]{0,8}",
    ]
}

/// A body as bytes: JSON from [`json_value`], or anything at all.
pub(crate) fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json_value().prop_map(|value| value.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
}
