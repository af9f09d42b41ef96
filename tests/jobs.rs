//! Following jobs safely: job references bound to the agent that made the call (across
//! restarts and replicas), job ids checked before they reach a URL, and Tenet's URL
//! never carrying or echoing credentials.

mod common;

use std::process::Stdio;

use common::{
    harness::{Harness, KEY, Setup, finished_task},
    http_server::{self, TOKEN_A, TOKEN_B},
    scripted::{Canned, ScriptedTenet},
};
use rmcp::{RoleClient, ServiceExt, model::CallToolRequestParams, service::RunningService};
use serde_json::{Value, json};
use tenet_mcp::transport::http::Options;

/// An in-process bridge for `agent`, with `serve`'s environment variables
/// `TENET_MCP_JOB_SECRET` and `TENET_API_KEY` set as given.
async fn bridge(tenet: &ScriptedTenet, agent: &str, env: &[(&str, &str)]) -> Harness {
    let mut setup = Setup::new(tenet).agent(agent).poll_timeout(0.3);
    for (name, value) in env {
        match *name {
            "TENET_MCP_JOB_SECRET" => setup.job_secret = Some((*value).to_owned()),
            "TENET_API_KEY" => setup.api_key = (*value).to_owned(),
            other => panic!("no setting for {other}"),
        }
    }
    setup.start().await
}

/// Calls `tool`; returns the structured result and `isError`.
async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> (Value, bool) {
    let (report, _, is_error) = common::harness::ok(client, tool, arguments).await;
    (report, is_error)
}

/// Scripts `acme.items.create` to start `job`, still running.
fn running_job(tenet: &ScriptedTenet, job: &str) {
    tenet.start_job("acme.items.create", job);
}

fn complete(tenet: &ScriptedTenet, job: &str) {
    tenet.on_job(job, vec![Canned::completed(job, 201, json!({"id": 7}))]);
}

#[tokio::test(start_paused = true)]
async fn a_job_ref_works_only_for_its_agent_and_survives_restarts() {
    let tenet = ScriptedTenet::start().await;
    running_job(&tenet, "job_a");
    let alice = bridge(&tenet, "alice", &[]).await;
    let (pending, _) = call(&alice, "acme_items_create", json!({"name": "x"})).await;
    assert_eq!(pending["status"], "pending", "{pending}");
    let job_ref = pending["job_ref"].as_str().expect("a job_ref").to_owned();
    let (job_id, tag) = job_ref.rsplit_once('.').unwrap();
    assert_eq!((job_id, tag.len()), ("job_a", 32), "{job_ref}");
    alice.stop().await;
    complete(&tenet, "job_a");
    let polls = tenet.polls_of("job_a");

    // Another agent with the reference, or with a forged one, learns nothing.
    let bob = bridge(&tenet, "bob", &[]).await;
    let mut forged = job_ref.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for attempt in [job_ref.clone(), forged] {
        let (refused, is_error) = call(&bob, "tenet_job_status", json!({"job_ref": attempt})).await;
        assert!(is_error, "{refused}");
        assert_eq!(refused["status"], "error");
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .contains("not a job reference issued to you"),
            "{refused}"
        );
        assert_eq!(refused["execution"], Value::Null);
    }
    bob.stop().await;
    // A server keyed by another secret does not accept it either.
    let elsewhere = bridge(
        &tenet,
        "alice",
        &[("TENET_MCP_JOB_SECRET", "another-secret-0123456789")],
    )
    .await;
    let (refused, is_error) =
        call(&elsewhere, "tenet_job_status", json!({"job_ref": job_ref})).await;
    assert!(is_error && refused["status"] == "error", "{refused}");
    elsewhere.stop().await;
    assert_eq!(
        tenet.polls_of("job_a"),
        polls,
        "refused references reach no Tenet"
    );

    // The same agent, on a restarted (or another) server sharing the key, follows it.
    let again = bridge(&tenet, "alice", &[]).await;
    let (done, is_error) = call(&again, "tenet_job_status", json!({"job_ref": job_ref})).await;
    assert!(!is_error, "{done}");
    assert_eq!(done["status"], "executed");
    assert_eq!(done["execution"]["body"], json!({"id": 7}));
    assert_eq!(
        (done["job_id"].clone(), done["job_ref"].clone()),
        (json!("job_a"), json!(job_ref))
    );
    again.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_shared_job_secret_binds_refs_across_replicas_with_different_keys() {
    let tenet = ScriptedTenet::start().await;
    running_job(&tenet, "job_s");
    let secret = [("TENET_MCP_JOB_SECRET", "shared-secret-0123456789abcdef")];
    let first = bridge(&tenet, "alice", &secret).await;
    let (pending, _) = call(&first, "acme_items_create", json!({"name": "x"})).await;
    let job_ref = pending["job_ref"].as_str().expect("a job_ref").to_owned();
    first.stop().await;
    complete(&tenet, "job_s");
    let other_key = [secret[0], ("TENET_API_KEY", "tnt_other_replica_key")];
    let second = bridge(&tenet, "alice", &other_key).await;
    let (done, _) = call(&second, "tenet_job_status", json!({"job_ref": job_ref})).await;
    assert_eq!(done["status"], "executed", "{done}");
    second.stop().await;
}

#[tokio::test]
async fn bare_or_unsafe_job_ids_are_refused_without_asking_tenet() {
    let tenet = ScriptedTenet::start().await;
    let client = bridge(&tenet, "default", &[]).await;
    let (refused, is_error) = call(&client, "tenet_job_status", json!({"job_id": "job_1"})).await;
    assert!(is_error);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("takes `job_ref`, not `job_id`"),
        "{refused}"
    );
    let tag = "0".repeat(32);
    for arguments in [
        json!({}),
        json!({"job_ref": ""}),
        json!({"job_ref": 7}),
        json!({"job_ref": ".."}),
        json!({"job_ref": "."}),
        json!({"job_ref": format!("..{tag}")}),
        json!({"job_ref": format!("...{tag}")}),
        json!({"job_ref": format!("a/b.{tag}")}),
        json!({"job_ref": format!("job%2F1.{tag}")}),
        json!({"job_ref": format!("{}.{tag}", "j".repeat(129))}),
    ] {
        let (refused, is_error) = call(&client, "tenet_job_status", arguments.clone()).await;
        assert!(
            is_error && refused["status"] == "error",
            "{arguments}: {refused}"
        );
    }
    assert!(tenet.requests().is_empty(), "{:?}", tenet.requests());

    // A job id from Tenet that would leave the jobs path is never polled.
    for job in ["..", ".", "", "a/b", "job 1", "j?x=1"] {
        tenet.on_execute("acme.items.create", vec![Canned::allow(job)]);
        let (failed, is_error) = call(&client, "acme_items_create", json!({"name": "x"})).await;
        assert!(is_error, "{job}: {failed}");
        assert_eq!(
            (
                failed["status"].clone(),
                failed["execution_error"].clone(),
                failed["job_ref"].clone()
            ),
            (json!("failed"), json!("invalid_job_id"), Value::Null),
            "{job}: {failed}"
        );
    }
    let kinds: Vec<_> = tenet.requests().iter().map(|r| r.kind).collect();
    assert!(
        kinds.iter().all(|kind| *kind == "execute"),
        "{:?}",
        tenet.requests()
    );
    client.stop().await;
}

#[tokio::test]
async fn job_ids_keep_their_unreserved_characters_in_the_url() {
    let tenet = ScriptedTenet::start().await;
    let job = "job_1-a.b~c";
    tenet.on_execute("acme.items.create", vec![Canned::allow(job)]);
    complete(&tenet, job);
    let client = bridge(&tenet, "default", &[]).await;
    let (done, _) = call(&client, "acme_items_create", json!({"name": "x"})).await;
    assert_eq!(done["status"], "executed", "{done}");
    assert_eq!(tenet.job_paths(), ["/v1/jobs/job_1-a.b~c"]);
    client.stop().await;
}

/// Runs `serve` with `args` and `env` and stdin closed; returns its exit code and stderr.
async fn serve_output(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
        .arg("serve")
        .args(args)
        .env("TENET_API_KEY", KEY)
        .env_remove("TENET_API_URL")
        .env_remove("TENET_MCP_JOB_SECRET")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn credentials_in_the_api_url_are_refused_and_never_echoed() {
    let url = "http://agent:s3cret-pass@127.0.0.1:9/";
    for (args, env) in [
        (vec![], vec![("TENET_API_URL", url)]),
        (vec!["--api-url", url], vec![]),
    ] {
        let (code, stderr) = serve_output(&args, &env).await;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("carries a user name or password"),
            "{stderr}"
        );
        assert!(stderr.contains("http://127.0.0.1:9/"), "{stderr}");
        assert!(
            !stderr.contains("s3cret") && !stderr.contains("agent:"),
            "{stderr}"
        );
    }
}

#[test]
fn parsed_arguments_never_show_the_api_urls_userinfo() {
    use clap::Parser;
    let cli = tenet_mcp::cli::Cli::try_parse_from([
        "tenet-mcp",
        "serve",
        "--api-url",
        "http://agent:s3cret-pass@127.0.0.1:9/",
    ])
    .expect("parsing never echoes or refuses the URL");
    let debug = format!("{cli:?}");
    assert!(
        debug.contains("http://127.0.0.1:9/") && !debug.contains("s3cret"),
        "{debug}"
    );
    // `--help` does not show the variable's value either.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
        .args(["serve", "--help"])
        .env("TENET_API_URL", "http://agent:s3cret-pass@127.0.0.1:9/")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("TENET_API_URL") && !help.contains("s3cret"),
        "{help}"
    );
}

#[tokio::test]
async fn a_short_job_secret_is_a_configuration_error() {
    let (code, stderr) = serve_output(&[], &[("TENET_MCP_JOB_SECRET", "short")]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("TENET_MCP_JOB_SECRET") && !stderr.contains("short"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_approved_escalation_is_followed_with_a_ref_its_operator_mints() {
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute(
        "acme.items.delete",
        vec![Canned::json(
            202,
            json!({"decision": "ESCALATE", "reviewId": "rev_1", "status": "pending"}),
        )],
    );
    let client = bridge(&tenet, "alice", &[]).await;
    let (escalated, _) = call(&client, "acme_items_delete", json!({"id": "1"})).await;
    assert_eq!(
        (
            escalated["status"].clone(),
            escalated["job_id"].clone(),
            escalated["job_ref"].clone()
        ),
        (json!("escalated"), Value::Null, Value::Null)
    );
    // Approved, Tenet runs the call as a job the bridge never saw; the approver learns its id.
    complete(&tenet, "job_approved");
    let (refused, _) = call(
        &client,
        "tenet_job_status",
        json!({"job_id": "job_approved"}),
    )
    .await;
    assert_eq!(
        refused["status"], "error",
        "a bare id is refused: {refused}"
    );
    let operator_refs =
        tenet_mcp::serve::job_refs_for(Some(&tenet_mcp::tenet::ApiKey::new(KEY).unwrap())).unwrap();
    let bobs = operator_refs.mint("bob", "job_approved").unwrap();
    let (refused, _) = call(&client, "tenet_job_status", json!({"job_ref": bobs})).await;
    assert_eq!(
        refused["status"], "error",
        "another agent's ref is refused: {refused}"
    );
    assert_eq!(tenet.polls_of("job_approved"), 0);
    let alices = operator_refs.mint("alice", "job_approved").unwrap();
    let (done, _) = call(&client, "tenet_job_status", json!({"job_ref": alices})).await;
    assert_eq!(done["status"], "executed", "{done}");
    client.stop().await;
}

/// An in-process HTTP server giving TOKEN_A to agent-a and TOKEN_B to agent-b.
async fn http_server(setup: Setup) -> (common::harness::HttpHarness, tempfile::NamedTempFile) {
    let tokens = http_server::tokens_file();
    let options = Options {
        auth_tokens: Some(tokens.path().to_owned()),
        ..Options::default()
    };
    (setup.poll_timeout(0.3).serve_http(options).await, tokens)
}

/// The per-request agent of HTTP bearer tokens is the one a job reference binds.
// Real time: under paused time the loopback HTTP server refused the client in 2 runs
// of 20 (its timers fire as the paused clock jumps ahead while sockets are busy).
#[tokio::test]
async fn over_http_each_token_follows_only_its_own_jobs() {
    let tenet = ScriptedTenet::start().await;
    running_job(&tenet, "job_h");
    let (server, _tokens) = http_server(Setup::new(&tenet)).await;
    let a = server.client(Some(TOKEN_A)).await;
    let b = server.client(Some(TOKEN_B)).await;
    let (pending, _) = call(&a, "acme_items_create", json!({"name": "x"})).await;
    let job_ref = pending["job_ref"].as_str().expect("a job_ref").to_owned();
    complete(&tenet, "job_h");
    let polls = tenet.polls_of("job_h");
    let (refused, _) = call(&b, "tenet_job_status", json!({"job_ref": job_ref})).await;
    assert_eq!(refused["status"], "error", "{refused}");
    assert_eq!(tenet.polls_of("job_h"), polls);
    let (done, _) = call(&a, "tenet_job_status", json!({"job_ref": job_ref})).await;
    assert_eq!(done["status"], "executed", "{done}");
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
    server.shut_down().await.unwrap();
}

/// MCP tasks, which carry a job's result, are visible to and cancellable by their agent only.
// Real time: under paused time the loopback HTTP server refused the client in 2 runs
// of 20 (its timers fire as the paused clock jumps ahead while sockets are busy).
#[tokio::test]
async fn over_http_each_token_sees_only_its_own_tasks() {
    use rmcp::model::{
        CallToolResponse, CancelTaskParams, ClientCapabilities, ClientConfig, GetTaskParams,
        Implementation, TaskPayload,
    };
    let tenet = ScriptedTenet::start().await;
    running_job(&tenet, "job_t");
    let (server, _tokens) = http_server(Setup {
        tasks: true,
        ..Setup::new(&tenet)
    })
    .await;
    let tasks_client = |token: &str| {
        ClientConfig::new(
            ClientCapabilities::builder().enable_tasks().build(),
            Implementation::new("task-client", "1"),
        )
        .serve(server.transport(Some(token)))
    };
    let a = tasks_client(TOKEN_A).await.unwrap();
    let b = tasks_client(TOKEN_B).await.unwrap();
    let response = a
        .call_tool_once(
            CallToolRequestParams::new("acme_items_create")
                .with_arguments(json!({"name": "x"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let CallToolResponse::Task(created) = response else {
        panic!("expected a task, got {response:?}")
    };
    let task_id = created.task.task_id.clone();
    let foreign = b
        .peer()
        .get_task(GetTaskParams::new(task_id.clone()))
        .await
        .expect_err("another agent's task is unknown to b");
    let unknown = b
        .peer()
        .get_task(GetTaskParams::new("no-such-task".to_owned()))
        .await
        .expect_err("no such task");
    assert_eq!(
        foreign.to_string().replace(&task_id, "ID"),
        unknown.to_string().replace("no-such-task", "ID"),
        "a foreign task looks like one that does not exist"
    );
    b.peer()
        .cancel_task(CancelTaskParams::new(task_id.clone()))
        .await
        .expect_err("b cannot cancel a's task");
    complete(&tenet, "job_t");
    let done = finished_task(&a, &task_id).await;
    let TaskPayload::Completed { result } = done.payload else {
        panic!(
            "a's task completes (b's cancel did nothing): {:?}",
            done.payload
        )
    };
    assert_eq!(result["structuredContent"]["status"], "executed");
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
    server.shut_down().await.unwrap();
}
