//! The bridge end to end against the emulator over stdio: real policy, approvals through
//! the CLI and through the web page (headless Chromium), and retries under injected
//! faults that never run a job twice.

mod common;

use std::{path::Path, process::Command, time::Duration};

use common::downstream::{APPROVER_KEY, Downstream, KEY, start_emulator};
use rmcp::{
    RoleClient, ServiceExt, model::CallToolRequestParams, service::RunningService,
    transport::TokioChildProcess,
};
use serde_json::{Value, json};
use tenet_mcp::emulator::Emulator;

struct World {
    dir: tempfile::TempDir,
    down: Downstream,
    emulator: Emulator,
}

impl World {
    async fn new(extra_policy: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (down, down_url) = Downstream::start().await;
        let emulator = start_emulator(dir.path(), &down_url, extra_policy, false).await;
        Self {
            dir,
            down,
            emulator,
        }
    }

    async fn bridge(&self, extra: &[&str]) -> RunningService<RoleClient, ()> {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"));
        cmd.arg("serve")
            .arg("--catalog")
            .arg(self.dir.path())
            .args(["--poll-timeout", "10", "--request-timeout", "2"])
            .args(extra)
            .env("TENET_API_KEY", KEY)
            .env("TENET_API_URL", self.emulator.url());
        ().serve(TokioChildProcess::new(cmd).unwrap())
            .await
            .unwrap()
    }

    fn reviews(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
            .arg("reviews")
            .args(args)
            .args(["--emulator-url", &self.emulator.url()])
            .env("TENET_APPROVER_KEY", APPROVER_KEY)
            .output()
            .unwrap()
    }
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, arguments: Value) -> Value {
    let Value::Object(arguments) = arguments else {
        unreachable!()
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap();
    result.structured_content.expect("structuredContent")
}

/// Approves `review` and follows its job with `tenet_job_status`.
/// Follows an approved call's job as an agent would: with the job_ref `tenet-mcp
/// job-ref` mints for it (a bare job id is refused).
async fn finish_approved(client: &RunningService<RoleClient, ()>, job_id: &str) -> Value {
    let bare = call(client, "tenet_job_status", json!({"job_ref": job_id})).await;
    assert_eq!(bare["status"], "error", "{bare}");
    let minted = Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
        .args(["job-ref", "--agent-id", "default", job_id])
        .env("TENET_API_KEY", KEY)
        .env_remove("TENET_MCP_JOB_SECRET")
        .output()
        .unwrap();
    assert!(minted.status.success(), "{minted:?}");
    let job_ref = String::from_utf8(minted.stdout).unwrap();
    call(
        client,
        "tenet_job_status",
        json!({"job_ref": job_ref.trim()}),
    )
    .await
}

fn job_of(output: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.split("running as job ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("a job id")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_outcome_through_the_emulator() {
    let world = World::new("").await;
    let client = world.bridge(&[]).await;

    let executed = call(&client, "d_items_get", json!({"id": "42"})).await;
    assert_eq!(executed["status"], "executed", "{executed}");
    assert_eq!(executed["execution"]["body"]["path"], "/items/42");
    assert!(
        executed["decision_id"]
            .as_str()
            .unwrap()
            .starts_with("dec_")
    );

    let failed = call(&client, "nocred_ping", json!({})).await;
    assert_eq!(
        (failed["status"].clone(), failed["execution_error"].clone()),
        (json!("failed"), json!("credential_not_found"))
    );

    let escalated = call(&client, "d_items_delete", json!({"id": "42"})).await;
    assert_eq!(escalated["status"], "escalated");
    let review = escalated["review_id"].as_str().unwrap().to_owned();
    assert_eq!(world.down.seen().len(), 1, "the delete waits for approval");
    let approved = tokio::task::block_in_place(|| world.reviews(&["approve", &review]));
    let job = job_of(&approved);
    let finished = finish_approved(&client, &job).await;
    assert_eq!(finished["status"], "executed", "{finished}");
    assert_eq!(world.down.seen()[1]["method"], "DELETE");
    client.cancel().await.unwrap();

    let production = world.bridge(&["--context", "env=production"]).await;
    let blocked = call(&production, "d_items_delete", json!({"id": "1"})).await;
    assert_eq!(
        (blocked["status"].clone(), blocked["reason_codes"].clone()),
        (json!("blocked"), json!(["RULE_block-irreversible-on-prod"]))
    );
    production.cancel().await.unwrap();

    let wrong_key = {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"));
        cmd.args(["serve", "--catalog"])
            .arg(world.dir.path())
            .env("TENET_API_KEY", "tnt_not_a_key")
            .env("TENET_API_URL", world.emulator.url());
        ().serve(TokioChildProcess::new(cmd).unwrap())
            .await
            .unwrap()
    };
    let rejected = call(&wrong_key, "d_items_get", json!({"id": "1"})).await;
    assert_eq!(
        (rejected["status"].clone(), rejected["http_status"].clone()),
        (json!("error"), json!(401))
    );
    assert!(!rejected.to_string().contains("tnt_not_a_key"));
    wrong_key.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_under_faults_never_run_a_job_twice() {
    let world = World::new("[faults]\nerror_rate = 0.4\ndrop_rate = 0.2\nseed = 7\n").await;
    let client = world.bridge(&[]).await;
    let mut executed = 0;
    for i in 0..12 {
        let report = call(
            &client,
            "d_items_create",
            json!({"name": format!("item-{i}")}),
        )
        .await;
        if report["status"] == "executed" {
            executed += 1;
        } else {
            assert_eq!(report["status"], "error", "{report}");
        }
    }
    assert!(
        executed >= 8,
        "retries should carry most calls through: {executed}/12"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut names: Vec<_> = world
        .down
        .seen()
        .iter()
        .map(|r| r["body"]["name"].as_str().unwrap().to_owned())
        .collect();
    let total = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), total, "a job ran twice");
    assert_eq!(
        total, executed,
        "every executed call ran exactly once downstream"
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn approving_on_the_web_page_runs_the_call() {
    let world = World::new("").await;
    let client = world.bridge(&[]).await;
    let escalated = call(&client, "d_items_delete", json!({"id": "page"})).await;
    let review = escalated["review_id"].as_str().unwrap().to_owned();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/approve_page.mjs");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/interop/node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: run tests/interop/setup.sh (the test command in README does it)"
    );
    let screenshot = world.dir.path().join("approvals.png");
    let url = world.emulator.url();
    let output = tokio::task::block_in_place(|| {
        Command::new("node")
            .arg(&script)
            .args([&url, &review])
            .arg(&screenshot)
            .output()
            .unwrap()
    });
    assert!(
        output.status.success(),
        "the page test failed (is Debian's chromium installed?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["status"], "approved");
    let job = seen["job"].as_str().unwrap().to_owned();
    assert!(screenshot.exists());
    let finished = finish_approved(&client, &job).await;
    assert_eq!(finished["status"], "executed", "{finished}");
    assert_eq!(world.down.seen().last().unwrap()["path"], "/items/page");
    client.cancel().await.unwrap();

    // Cross-site posts to the page's actions are refused.
    let refused = reqwest::Client::new()
        .post(format!("{url}/ui/reviews/{review}/deny"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
}
