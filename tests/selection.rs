//! Which tools a server shows: `--toolsets`, `--tools`, `--read-only`, `catalog list`,
//! per-token `tools` lists over both HTTP transports, and selection on catalog reload.
//! A refused call never reaches the scripted Tenet.

mod common;

use std::{sync::Arc, time::Duration};

use common::{
    http_server::{KEY, Server, SseClient, TOKEN_A, TOKEN_B, fixture, within},
    scripted::ScriptedTenet,
    stdio_server::{call, start, tool_names},
};
use rmcp::{RoleClient, service::RunningService};
use serde_json::{Value, json};
use tenet_mcp::{
    bridge::{Bridge, ToolMode, ToolOptions},
    catalog::{Catalog, Source},
    governor::Governor,
    selection::Selector,
    tenet::{ApiKey, ClientConfig, TenetClient},
};

const LIMIT: Duration = Duration::from_secs(20);

/// Calls `tool` and expects the server to refuse it as unknown.
async fn refused(client: &RunningService<RoleClient, ()>, tool: &str, arguments: Value) {
    let error = within("a refused call", LIMIT, call(client, tool, arguments))
        .await
        .expect_err("a tool the client may not use is refused");
    assert!(
        error.to_string().contains("Unknown tool"),
        "{tool}: {error}"
    );
}

#[tokio::test]
async fn toolsets_and_globs_choose_what_stdio_shows_and_accepts() {
    let tenet = ScriptedTenet::start().await;
    let client = start(
        &tenet,
        &["--toolsets", "acme.items", "--tools", "!acme.items.delete"],
    )
    .await;
    assert_eq!(
        tool_names(&client).await,
        [
            "tenet_job_status",
            "acme_items_get",
            "acme_items_create",
            "acme_items_replace"
        ]
    );
    refused(&client, "acme_items_delete", json!({"id": "1"})).await;
    refused(
        &client,
        "acme_payments_create",
        json!({"amount": 1, "to": "x"}),
    )
    .await;
    let result = within(
        "a shown tool",
        LIMIT,
        call(&client, "acme_items_get", json!({"id": "1"})),
    )
    .await
    .unwrap();
    assert_eq!(result.structured_content.unwrap()["status"], "executed");
    assert!(tenet.executes_of("acme.items.delete").is_empty());
    assert!(tenet.executes_of("acme.payments.create").is_empty());
    assert_eq!(tenet.executes_of("acme.items.get").len(), 1);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn read_only_and_tools_alone() {
    let tenet = ScriptedTenet::start().await;
    let client = start(&tenet, &["--read-only"]).await;
    assert_eq!(
        tool_names(&client).await,
        ["tenet_job_status", "acme_items_get"]
    );
    client.cancel().await.unwrap();
    let client = start(&tenet, &["--tools", "acme.payments.*"]).await;
    assert_eq!(
        tool_names(&client).await,
        ["tenet_job_status", "acme_payments_create"],
        "--tools that include, without --toolsets, show only what they match"
    );
    client.cancel().await.unwrap();
}

/// Runs the binary to completion (it must not wait for stdin).
fn run(args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
        .args(args)
        .env("TENET_API_KEY", KEY)
        .env("TENET_API_URL", "http://127.0.0.1:9")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn catalog_list_prints_what_serve_would_show() {
    let (code, stdout, stderr) = run(&[
        "catalog",
        "list",
        "--catalog",
        &fixture(),
        "--toolsets",
        "acme.payments,acme.items",
        "--tools",
        "!acme.items.*e",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(names, ["acme.items.get", "acme.payments.create"]);
    assert!(stdout.contains("GET     /items/{id}"), "{stdout}");
    assert!(stderr.contains("2 of 5 tool(s) shown"), "{stderr}");

    let (code, stdout, _) = run(&["catalog", "list"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("github.repos.get") && !stdout.contains("github.gists"),
        "the shipped catalog shows the default toolset"
    );
}

#[test]
fn unknown_toolsets_and_globs_matching_nothing_are_configuration_errors() {
    for args in [
        &[
            "catalog",
            "list",
            "--catalog",
            &fixture(),
            "--tools",
            "acme.itemz.*",
        ][..],
        &["serve", "--catalog", &fixture(), "--tools", "acme.itemz.*"][..],
    ] {
        let (code, _, stderr) = run(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("`acme.itemz.*` matches no tool"),
            "{stderr}"
        );
    }
    let (code, _, stderr) = run(&[
        "serve",
        "--catalog",
        &fixture(),
        "--toolsets",
        "acme.orders",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("`acme.orders` names no service") && stderr.contains("services: acme"),
        "{stderr}"
    );
}

/// A tokens file: agent-a limited to the items tools but delete, agent-b unlimited.
fn limited_tokens(tools_a: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        file.path(),
        format!(
            "[[tokens]]\ntoken = \"{TOKEN_A}\"\nagent_id = \"agent-a\"\ntools = {tools_a}\n\n\
             [[tokens]]\ntoken = \"{TOKEN_B}\"\nagent_id = \"agent-b\"\n"
        ),
    )
    .unwrap();
    file
}

#[tokio::test]
async fn a_tokens_tools_list_limits_what_it_sees_and_calls_on_both_http_transports() {
    let tenet = ScriptedTenet::start().await;
    let tokens = limited_tokens(r#"["acme.items.*", "!acme.items.delete"]"#);
    let server = Server::start(&tenet, &["--auth-tokens", tokens.path().to_str().unwrap()]).await;

    let a = server.client(Some(TOKEN_A)).await;
    assert_eq!(
        tool_names(&a).await,
        [
            "tenet_job_status",
            "acme_items_get",
            "acme_items_create",
            "acme_items_replace"
        ]
    );
    refused(&a, "acme_items_delete", json!({"id": "1"})).await;
    refused(&a, "acme_payments_create", json!({"amount": 1, "to": "x"})).await;
    let b = server.client(Some(TOKEN_B)).await;
    assert_eq!(tool_names(&b).await.len(), 6, "agent-b has no list");

    let sse = SseClient::open(&server, Some(TOKEN_A), None).await.unwrap();
    sse.initialize().await;
    let listed = sse.request("l", "tools/list", json!({})).await;
    assert_eq!(
        listed["result"]["tools"].as_array().unwrap().len(),
        4,
        "{listed}"
    );
    let answer = sse
        .request(
            "d",
            "tools/call",
            json!({"name": "acme_items_delete", "arguments": {"id": "1"}}),
        )
        .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown tool"),
        "{answer}"
    );

    assert!(
        tenet.executes_of("acme.items.delete").is_empty(),
        "Tenet never heard of the refused calls"
    );
    assert!(tenet.executes_of("acme.payments.create").is_empty());
    let (result, is_error) = within(
        "agent-b's call",
        LIMIT,
        call(&b, "acme_items_delete", json!({"id": "1"})),
    )
    .await
    .map(|result| (result.structured_content.unwrap(), result.is_error))
    .unwrap();
    assert_eq!(result["status"], "executed", "{result} {is_error:?}");
    assert_eq!(tenet.executes_of("acme.items.delete").len(), 1);
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test]
async fn a_tokens_glob_matching_nothing_or_a_bad_list_stops_serve() {
    let tenet = ScriptedTenet::start().await;
    for (list, needle) in [
        (r#"["acme.itemz.*"]"#, "agent `agent-a`: `acme.itemz.*`"),
        ("[]", "`tools` is empty"),
        (r#"["acme items"]"#, "is not a tool glob"),
    ] {
        let tokens = limited_tokens(list);
        let (code, _, stderr) = run(&[
            "serve",
            "--catalog",
            &fixture(),
            "--transport",
            "http",
            "--bind",
            "127.0.0.1:0",
            "--auth-tokens",
            tokens.path().to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{list}: {stderr}");
        assert!(stderr.contains(needle), "{list}: {stderr}");
        assert!(!stderr.contains(TOKEN_A), "{stderr}");
    }
    assert!(tenet.requests().is_empty());
}

fn catalog(tools: &[&str]) -> Arc<Catalog> {
    let tools: Vec<Value> = tools
        .iter()
        .map(|name| json!({"name": name, "description": "d", "method": "GET", "path": "/x", "input_schema": {"type": "object"}}))
        .collect();
    let text = json!({"service": "acme", "tools": tools}).to_string();
    Arc::new(
        Catalog::from_sources(vec![Source {
            origin: "acme.json".into(),
            text,
        }])
        .unwrap(),
    )
}

fn names(bridge: &Bridge) -> Vec<String> {
    bridge
        .tools()
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect()
}

#[tokio::test]
async fn selection_is_applied_on_reload_and_a_reload_it_no_longer_fits_is_refused() {
    let client = TenetClient::new(ClientConfig::new(
        "http://127.0.0.1:9",
        ApiKey::new("tnt_test").unwrap(),
    ));
    let governor = Governor::new(client, Default::default(), Duration::from_secs(1));
    let options = ToolOptions {
        selector: Selector::new(
            None,
            &["acme.items.*".into(), "!acme.items.delete".into()],
            false,
            true,
        )
        .unwrap(),
        scopes: None,
        mode: ToolMode::Static,
    };
    let bridge = Bridge::with_options(
        catalog(&["acme.items.get", "acme.items.delete", "acme.other.get"]),
        governor,
        "default".into(),
        options,
    )
    .unwrap();
    assert_eq!(names(&bridge), ["tenet_job_status", "acme_items_get"]);
    let shown = bridge
        .replace_catalog(catalog(&[
            "acme.items.get",
            "acme.items.list",
            "acme.items.delete",
        ]))
        .await
        .unwrap();
    assert_eq!(shown, 2);
    assert_eq!(
        names(&bridge),
        ["tenet_job_status", "acme_items_get", "acme_items_list"]
    );
    let error = bridge
        .replace_catalog(catalog(&["acme.other.get"]))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`acme.items.*`, `!acme.items.delete` match no tool"),
        "{error}"
    );
    assert_eq!(
        names(&bridge),
        ["tenet_job_status", "acme_items_get", "acme_items_list"],
        "the previous catalog stays in force"
    );
}
