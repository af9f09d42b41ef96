//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `tests/interop/package.json`, run on the pinned Node 22) against `tenet-mcp serve
//! --transport http --emulator` on `/mcp`. Every server scenario of the suite (`--suite
//! all`) must pass except the ones [`NOT_APPLICABLE`] names with their reason, which
//! `docs/CONFORMANCE.md` lists too. A missing suite fails the test.

mod common;

use std::{collections::BTreeMap, path::Path, process::Command, time::Duration};

use common::emulated::{EmulatedServer, client_path, interop_bin};
use serde_json::{Value, json};

/// Why a scenario does not apply to tenet-mcp.
enum Why {
    /// It calls tools, resources or prompts the suite's own reference server defines.
    Fixture(&'static str),
    /// It uses a capability tenet-mcp does not declare (the JSON pointer into the
    /// `initialize` result's `capabilities`). Once the server declares it, the scenario
    /// must pass.
    NotDeclared(&'static str),
}

/// The scenarios that do not apply, each with its reason.
#[rustfmt::skip]
const NOT_APPLICABLE: &[(&str, Why)] = &[
    ("completion-complete", Why::Fixture("completes an argument of the suite's prompt `test_prompt_with_arguments`")),
    ("tools-call-simple-text", Why::Fixture("calls the suite's tool `test_simple_text`")),
    ("tools-call-image", Why::Fixture("calls the suite's tool `test_image_content`")),
    ("tools-call-audio", Why::Fixture("calls the suite's tool `test_audio_content`")),
    ("tools-call-embedded-resource", Why::Fixture("calls the suite's tool `test_embedded_resource`")),
    ("tools-call-mixed-content", Why::Fixture("calls the suite's tool `test_multiple_content_types`")),
    ("tools-call-with-logging", Why::Fixture("calls the suite's tool `test_tool_with_logging`")),
    ("tools-call-error", Why::Fixture("calls the suite's tool `test_error_handling`")),
    ("tools-call-with-progress", Why::Fixture("calls the suite's tool `test_tool_with_progress`")),
    ("tools-call-sampling", Why::Fixture("calls the suite's tool `test_sampling`")),
    ("tools-call-elicitation", Why::Fixture("calls the suite's tool `test_elicitation`")),
    ("json-schema-2020-12", Why::Fixture("looks for the suite's tool `json_schema_2020_12_tool`")),
    ("elicitation-sep1034-defaults", Why::Fixture("calls the suite's tool `test_elicitation_sep1034_defaults`")),
    ("elicitation-sep1330-enums", Why::Fixture("calls the suite's tool `test_elicitation_sep1330_enums`")),
    ("resources-read-text", Why::Fixture("reads the suite's resource `test://static-text`")),
    ("resources-read-binary", Why::Fixture("reads the suite's resource `test://static-binary`")),
    ("resources-templates-read", Why::Fixture("reads the suite's template `test://template/{id}/data`")),
    ("resources-subscribe", Why::NotDeclared("/resources/subscribe")),
    ("resources-unsubscribe", Why::NotDeclared("/resources/subscribe")),
    ("prompts-get-simple", Why::Fixture("gets the suite's prompt `test_simple_prompt`")),
    ("prompts-get-with-args", Why::Fixture("gets the suite's prompt `test_prompt_with_arguments`")),
    ("prompts-get-embedded-resource", Why::Fixture("gets the suite's prompt `test_prompt_with_embedded_resource`")),
    ("prompts-get-with-image", Why::Fixture("gets the suite's prompt `test_prompt_with_image`")),
];

/// The longest the whole suite may take (it takes about 2 s).
const SUITE_TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread")]
async fn the_conformance_suite_passes_every_scenario_that_applies() {
    let suite = interop_bin("conformance");
    let server = EmulatedServer::start(false);
    let capabilities = capabilities(&server).await;

    let scenarios = server_scenarios(&suite);
    for (name, _) in NOT_APPLICABLE {
        assert!(
            scenarios.iter().any(|s| s == name),
            "{name} is listed as not applicable but the suite has no such server scenario: {scenarios:?}"
        );
    }

    let out = tempfile::tempdir().unwrap();
    let run = run_suite(&suite, &server.url("/mcp"), out.path()).await;
    let results = results_by_scenario(out.path());

    let mut unexpected = Vec::new();
    for scenario in &scenarios {
        let exempt = NOT_APPLICABLE
            .iter()
            .find(|(name, _)| name == scenario)
            .is_some_and(|(_, why)| match why {
                Why::Fixture(_) => true,
                Why::NotDeclared(pointer) => !declared(&capabilities, pointer),
            });
        if exempt {
            continue;
        }
        match results.get(scenario.as_str()) {
            None => unexpected.push(format!("{scenario}: the suite wrote no results")),
            Some(checks) => {
                for check in checks.iter().filter(|c| c["status"] == "FAILURE") {
                    unexpected.push(format!(
                        "{scenario}: {} failed: {}",
                        check["id"],
                        check["errorMessage"].as_str().unwrap_or("(no message)")
                    ));
                }
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "conformance scenarios that apply to tenet-mcp failed:\n{}\n\nthe suite's output:\n{run}\n\nserver log:\n{}",
        unexpected.join("\n"),
        server.log()
    );
    // The scenarios that must pass did run: a suite that ran nothing cannot pass this test.
    for must in [
        "server-initialize",
        "tools-list",
        "ping",
        "dns-rebinding-protection",
        "logging-set-level",
        "resources-list",
        "prompts-list",
    ] {
        assert!(results.contains_key(must), "{must} did not run:\n{run}");
    }
}

#[test]
fn docs_conformance_lists_exactly_the_scenarios_that_do_not_apply() {
    let page = std::fs::read_to_string(common::emulated::repo().join("docs/CONFORMANCE.md"))
        .expect("docs/CONFORMANCE.md");
    let listed: Vec<&str> = page
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
        .collect();
    let expected: Vec<&str> = NOT_APPLICABLE.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        listed, expected,
        "docs/CONFORMANCE.md's table must name the scenarios of NOT_APPLICABLE in tests/conformance.rs, in order"
    );
    for (name, why) in NOT_APPLICABLE {
        let row = page
            .lines()
            .find(|line| line.starts_with(&format!("| `{name}`")))
            .unwrap();
        let reason = match why {
            Why::Fixture(reason) => reason.to_string(),
            Why::NotDeclared(pointer) => format!("`{}`", &pointer[1..].replace('/', ".")),
        };
        assert!(
            row.contains(&reason),
            "docs/CONFORMANCE.md's row for {name} must give its reason ({reason}): {row}"
        );
    }
}

#[test]
fn a_capability_is_declared_unless_absent_null_or_false() {
    let capabilities =
        json!({"tools": {"listChanged": true}, "resources": {"subscribe": false}, "logging": null});
    assert!(declared(&capabilities, "/tools"));
    assert!(declared(&capabilities, "/resources"));
    assert!(!declared(&capabilities, "/resources/subscribe"));
    assert!(!declared(&capabilities, "/logging"));
    assert!(!declared(&capabilities, "/prompts"));
}

/// Whether `capabilities` declares the capability at `pointer` (`subscribe: false` does not).
fn declared(capabilities: &Value, pointer: &str) -> bool {
    capabilities
        .pointer(pointer)
        .is_some_and(|value| !value.is_null() && *value != Value::Bool(false))
}

/// The `capabilities` of the server's `initialize` result.
async fn capabilities(server: &EmulatedServer) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "conformance-test", "version": "0"}}});
    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .expect("POST initialize");
    let text = response.text().await.unwrap();
    // A JSON body, or an event stream whose `data:` line carries the answer.
    let answer: Value = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .chain(std::iter::once(text.as_str()))
        .find_map(|data| serde_json::from_str(data.trim()).ok())
        .unwrap_or_else(|| panic!("no JSON-RPC answer to initialize: {text}"));
    answer["result"]["capabilities"].clone()
}

/// The server scenario names `conformance list --server` prints (`  - name [versions]`).
fn server_scenarios(suite: &Path) -> Vec<String> {
    let output = Command::new(suite)
        .args(["list", "--server"])
        .env("PATH", client_path())
        .output()
        .expect("run conformance list");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "conformance list: {output:?}");
    let names: Vec<String> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(
        names.iter().any(|n| n == "server-initialize"),
        "no server scenarios listed:\n{text}"
    );
    names
}

/// Runs every server scenario against `url`, results under `out`; returns its output.
async fn run_suite(suite: &Path, url: &str, out: &Path) -> String {
    let child = tokio::process::Command::new(suite)
        .args(["server", "--suite", "all", "--url", url, "--output-dir"])
        .arg(out)
        .env("PATH", client_path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SUITE_TIMEOUT, child)
        .await
        .unwrap_or_else(|_| panic!("the conformance suite took longer than {SUITE_TIMEOUT:?}"))
        .expect("run the conformance suite");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The shape of the timestamp ending each results folder's name.
const TIMESTAMP: &str = "2026-11-26T08-22-16-044Z";

/// Each scenario's checks, from `out/server-<scenario>-<timestamp>/checks.json`.
fn results_by_scenario(out: &Path) -> BTreeMap<String, Vec<Value>> {
    let mut results = BTreeMap::new();
    for entry in std::fs::read_dir(out).expect("the suite's output folder") {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        // `server-` + scenario + `-` + a timestamp like `2026-11-26T08-22-16-044Z`.
        let Some(rest) = name.strip_prefix("server-") else {
            continue;
        };
        let Some(at) = rest.len().checked_sub(TIMESTAMP.len() + 1) else {
            continue;
        };
        let text = std::fs::read_to_string(dir.join("checks.json")).unwrap_or_default();
        let checks: Vec<Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: checks.json does not parse: {e}", dir.display()));
        results.insert(rest[..at].to_owned(), checks);
    }
    results
}
