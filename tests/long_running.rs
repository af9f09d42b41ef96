//! Long-running calls through an in-process bridge with rmcp's client: progress notifications,
//! cancellation, `tenet_job_status`, catalog reload with `list_changed`, pagination.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{
    harness::{Harness, KEY, Setup, finished_task, fixture, params},
    scripted::{Canned, ScriptedTenet},
};
use rmcp::{
    ClientHandler, RoleClient,
    model::{CallToolRequest, ClientRequest, PaginatedRequestParams, ProgressNotificationParam},
    service::{MaybeSendFuture, NotificationContext, PeerRequestOptions, RunningService},
};
use serde_json::{Value, json};
use tenet_mcp::governor::JobRefs;
use tokio::sync::Notify;

/// A client that records progress notifications and `list_changed`.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    list_changed: Arc<Notify>,
}

impl ClientHandler for Recorder {
    fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.progress.lock().unwrap().push(params);
        std::future::ready(())
    }

    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.list_changed.notify_one();
        std::future::ready(())
    }
}

/// Starts an in-process bridge as `setup` says, with a [`Recorder`] client.
async fn start(setup: Setup) -> (Harness<Recorder>, Recorder) {
    let recorder = Recorder::default();
    (setup.start_with(recorder.clone()).await, recorder)
}

async fn call(
    client: &RunningService<RoleClient, Recorder>,
    tool: &str,
    arguments: Value,
) -> Value {
    let result = client.call_tool(params(tool, arguments)).await.unwrap();
    result.structured_content.unwrap()
}

#[tokio::test(start_paused = true)]
async fn progress_is_reported_while_the_job_runs() {
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute("acme.items.create", vec![Canned::allow("job_p")]);
    let mut answers = vec![Canned::job("job_p", "pending")];
    answers.extend(std::iter::repeat_n(Canned::job("job_p", "running"), 12));
    answers.push(Canned::completed("job_p", 200, json!({})));
    tenet.on_job("job_p", answers);
    let (client, recorder) = start(Setup::new(&tenet)).await;
    let report = call(&client, "acme_items_create", json!({"name": "x"})).await;
    assert_eq!(report["status"], "executed");
    let progress = recorder.progress.lock().unwrap().clone();
    let messages: Vec<_> = progress.iter().filter_map(|p| p.message.clone()).collect();
    assert!(
        messages.iter().any(|m| m.contains("job_p is pending")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("job_p is running")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("job_p is completed")),
        "{messages:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[1].progress > w[0].progress),
        "progress increases"
    );
    // Bounded rate: status changes plus at most one per 500 ms, not one per poll.
    let polls = tenet.polls_of("job_p");
    assert!(
        progress.len() < polls,
        "{} notifications for {polls} polls",
        progress.len()
    );
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn running_jobs_answered_with_202_still_report_progress() {
    // Tenet may answer a running job's poll with 202; its body still says where the job is.
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute("acme.items.create", vec![Canned::allow("job_202")]);
    tenet.on_job(
        "job_202",
        vec![
            Canned::json(202, json!({"status": "running"})),
            Canned::json(202, json!({"jobId": "job_202", "status": "running"})),
            Canned::completed("job_202", 200, json!({"ok": 1})),
        ],
    );
    let (client, recorder) = start(Setup::new(&tenet)).await;
    let report = call(&client, "acme_items_create", json!({"name": "x"})).await;
    assert_eq!(report["status"], "executed", "{report}");
    let messages: Vec<_> = recorder
        .progress
        .lock()
        .unwrap()
        .iter()
        .filter_map(|p| p.message.clone())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("job_202 is running")),
        "{messages:?}"
    );
    assert_eq!(tenet.polls_of("job_202"), 3);
    client.stop().await;
}

/// A job is polled as a stream: the status of every answered poll, the final one
/// included, then where polling ended, then nothing.
#[tokio::test(start_paused = true)]
async fn a_job_is_polled_as_a_stream_of_statuses() {
    use futures::StreamExt;
    use tenet_mcp::tenet::{
        ApiKey, ClientConfig, TenetClient,
        client::{JobPoll, JobWait},
        wire::JobStatus,
    };
    let tenet = ScriptedTenet::start().await;
    tenet.on_job(
        "job_s",
        vec![
            Canned::job("job_s", "pending"),
            Canned::text(503, "busy"),
            Canned::job("job_s", "running"),
            Canned::completed("job_s", 200, json!({"ok": 1})),
        ],
    );
    let client = TenetClient::new(ClientConfig::new(&tenet.url(), ApiKey::new(KEY).unwrap()));
    let cancel = tokio_util::sync::CancellationToken::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let polls: Vec<_> = client.poll_job("job_s", deadline, &cancel).collect().await;
    let statuses: Vec<_> = polls
        .iter()
        .filter_map(|poll| match poll {
            JobPoll::Status(status) => Some(*status),
            JobPoll::Ended(_) => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [JobStatus::Pending, JobStatus::Running, JobStatus::Completed]
    );
    assert!(
        matches!(polls.last(), Some(JobPoll::Ended(JobWait::Finished(job))) if job.status == JobStatus::Completed),
        "{polls:?}"
    );
    assert_eq!(tenet.polls_of("job_s"), 4);

    // Cancelled: the stream ends at once, saying so.
    cancel.cancel();
    tenet.start_job("acme.items.create", "job_x");
    let polls: Vec<_> = client.poll_job("job_x", deadline, &cancel).collect().await;
    assert_eq!(polls, [JobPoll::Ended(JobWait::Cancelled)]);
    assert_eq!(tenet.polls_of("job_x"), 0);
}

/// A bridge whose call of `acme_items_create` is polling job `job` (still running),
/// with the handle of that call.
async fn call_being_polled(
    tenet: &ScriptedTenet,
    job: &str,
) -> (
    Harness<Recorder>,
    Recorder,
    rmcp::service::RequestHandle<RoleClient>,
) {
    tenet.start_job("acme.items.create", job);
    let (client, recorder) = start(Setup::new(tenet).poll_timeout(30.0)).await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params(
        "acme_items_create",
        json!({"name": "x"}),
    )));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    for _ in 0..100 {
        if tenet.polls_of(job) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(tenet.polls_of(job) >= 3, "the job was never polled");
    (client, recorder, handle)
}

/// Asserts that `job` is no longer polled once things settle.
async fn assert_polling_stopped(tenet: &ScriptedTenet, job: &str, why: &str) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let polls = tenet.polls_of(job);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(tenet.polls_of(job), polls, "polling went on after {why}");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_disconnects_stops_the_polling() {
    let tenet = ScriptedTenet::start().await;
    let (client, _, _pending) = call_being_polled(&tenet, "job_d").await;
    client.disconnect().await;
    assert_polling_stopped(&tenet, "job_d", "the client went away").await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_stops_polling() {
    let tenet = ScriptedTenet::start().await;
    let (client, recorder, handle) = call_being_polled(&tenet, "job_c").await;
    handle
        .cancel(Some("user pressed stop".into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let notes_at_cancel = recorder.progress.lock().unwrap().len();
    assert_polling_stopped(&tenet, "job_c", "the cancel").await;
    assert_eq!(
        recorder.progress.lock().unwrap().len(),
        notes_at_cancel,
        "progress was sent after the cancel"
    );
    // The server still serves.
    let report = call(&client, "acme_items_get", json!({"id": "1"})).await;
    assert_eq!(report["status"], "executed");
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn job_status_finishes_a_call_that_timed_out() {
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute("acme.items.create", vec![Canned::allow("job_late")]);
    tenet.on_job("job_late", vec![Canned::job("job_late", "running")]);
    let (client, _) = start(Setup::new(&tenet).poll_timeout(0.5)).await;
    let tools = client.list_all_tools().await.unwrap();
    let status_tool = tools
        .iter()
        .find(|t| t.name == "tenet_job_status")
        .expect("tenet_job_status is listed");
    assert_eq!(
        status_tool.annotations.as_ref().unwrap().read_only_hint,
        Some(true)
    );

    assert_eq!(
        status_tool.input_schema.get("required"),
        Some(&json!(["job_ref"]))
    );

    let report = call(&client, "acme_items_create", json!({"name": "x"})).await;
    assert_eq!(
        (report["status"].clone(), report["job_id"].clone()),
        (json!("pending"), json!("job_late"))
    );
    let job_ref = report["job_ref"].as_str().expect("a job_ref").to_owned();
    assert!(job_ref.starts_with("job_late."), "{job_ref}");

    tenet.on_job(
        "job_late",
        vec![Canned::completed("job_late", 201, json!({"id": 9}))],
    );
    let result = client
        .call_tool(params("tenet_job_status", json!({"job_ref": job_ref})))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false));
    let report = result.structured_content.unwrap();
    assert_eq!(report["status"], "executed");
    assert_eq!(report["executed"], true);
    assert_eq!(report["execution"]["body"], json!({"id": 9}));
    assert_eq!(
        tenet.executes_of("acme.items.create").len(),
        1,
        "following a job never re-executes"
    );

    tenet.on_job(
        "job_nope",
        vec![Canned::json(404, json!({"error": "job_not_found"}))],
    );
    // A reference the server issued (minted here as an operator would, from the same key)
    // to a job Tenet does not know.
    let nope = JobRefs::derive(KEY).mint("default", "job_nope").unwrap();
    let unknown = call(&client, "tenet_job_status", json!({"job_ref": nope})).await;
    assert_eq!(unknown["status"], "error");
    assert_eq!(tenet.polls_of("job_nope"), 1);
    let missing = client
        .call_tool(params("tenet_job_status", json!({})))
        .await
        .unwrap();
    assert_eq!(missing.is_error, Some(true));
    client.stop().await;
}

// Real time: the catalog watcher reacts to file-system events, which paused time cannot see.
#[tokio::test]
async fn watched_catalog_reloads_and_broken_reloads_keep_the_old_tools() {
    let tenet = ScriptedTenet::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(), dir.path().join("acme.json")).unwrap();
    let (client, recorder) = start(Setup {
        watch: true,
        ..Setup::new(&tenet).catalog(dir.path())
    })
    .await;
    assert_eq!(client.list_all_tools().await.unwrap().len(), 6);

    let extra = json!({"service": "extra", "tools": [{"name": "extra.ping", "description": "Ping.", "method": "GET", "path": "/ping", "input_schema": {"type": "object"}}]});
    std::fs::write(dir.path().join("extra.json"), extra.to_string()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), recorder.list_changed.notified())
        .await
        .expect("list_changed after adding a file");
    let names = client.tool_names().await;
    assert!(names.contains(&"extra_ping".to_owned()), "{names:?}");
    assert_eq!(
        call(&client, "extra_ping", json!({})).await["status"],
        "executed"
    );

    std::fs::write(dir.path().join("extra.json"), "{ not json").unwrap();
    let changed = tokio::time::timeout(
        Duration::from_millis(2500),
        recorder.list_changed.notified(),
    )
    .await;
    assert!(changed.is_err(), "a broken catalog must not be announced");
    let names = client.tool_names().await;
    assert!(
        names.contains(&"extra_ping".to_owned()) && names.contains(&"acme_items_get".to_owned()),
        "{names:?}"
    );
    assert_eq!(
        call(&client, "acme_items_get", json!({"id": "1"})).await["status"],
        "executed"
    );
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn tools_list_pages_large_catalogs() {
    let tenet = ScriptedTenet::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tools: Vec<Value> = (0..1200)
        .map(|i| json!({"name": format!("big.tool_{i:04}"), "description": "A generated tool.", "method": "GET", "path": "/t", "input_schema": {"type": "object"}}))
        .collect();
    std::fs::write(
        dir.path().join("big.json"),
        json!({"service": "big", "tools": tools}).to_string(),
    )
    .unwrap();
    let (client, _) = start(Setup::new(&tenet).catalog(dir.path())).await;

    let first = client.list_tools(None).await.unwrap();
    assert_eq!(first.tools.len(), 500);
    let cursor = first.next_cursor.clone().expect("a next cursor");
    let all = client.list_all_tools().await.unwrap();
    assert_eq!(all.len(), 1201);
    let mut names: Vec<_> = all.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 1201, "pages do not overlap");

    let second = client
        .list_tools(Some(
            PaginatedRequestParams::default().with_cursor(Some(cursor)),
        ))
        .await
        .unwrap();
    assert_eq!(second.tools[0].name, all[500].name);
    let bad = client
        .list_tools(Some(
            PaginatedRequestParams::default().with_cursor(Some("zzz".into())),
        ))
        .await;
    assert!(bad.is_err(), "an invalid cursor is an error");
    client.stop().await;
}

/// A client that declares the MCP Tasks extension gets an allowed call's job as a task.
#[tokio::test(start_paused = true)]
async fn allowed_jobs_become_tasks_for_clients_that_ask() {
    use rmcp::model::{CallToolResponse, TaskPayload};
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute("acme.items.create", vec![Canned::allow("job_task")]);
    tenet.on_job(
        "job_task",
        vec![
            Canned::job("job_task", "running"),
            Canned::job("job_task", "running"),
            Canned::completed("job_task", 201, json!({"made": true})),
        ],
    );
    tenet.on_execute(
        "acme.items.delete",
        vec![Canned::json(
            202,
            json!({"decision": "ESCALATE", "reviewId": "rev_t"}),
        )],
    );
    let client = Setup::new(&tenet).start_with_tasks().await;

    let response = client
        .call_tool_once(params("acme_items_create", json!({"name": "x"})))
        .await
        .unwrap();
    let CallToolResponse::Task(created) = response else {
        panic!("expected a task, got {response:?}")
    };
    let task_id = created.task.task_id.clone();
    let done = finished_task(&client, &task_id).await;
    let TaskPayload::Completed { result } = done.payload else {
        panic!("expected a completed task: {:?}", done.payload)
    };
    assert_eq!(result["structuredContent"]["status"], "executed");
    assert_eq!(
        result["structuredContent"]["execution"]["body"],
        json!({"made": true})
    );
    // The task's result carries the job's reference, bound to the calling agent.
    let job_ref = result["structuredContent"]["job_ref"]
        .as_str()
        .expect("a job_ref");
    let refs = JobRefs::derive(KEY);
    assert_eq!(refs.verify("default", job_ref), Ok("job_task"));
    assert!(refs.verify("another-agent", job_ref).is_err());
    assert_eq!(tenet.executes_of("acme.items.create").len(), 1);

    // Decisions that need no job are answered at once, not as tasks.
    let response = client
        .call_tool_once(params("acme_items_delete", json!({"id": "1"})))
        .await
        .unwrap();
    let CallToolResponse::Complete(result) = response else {
        panic!("expected a complete result, got {response:?}")
    };
    assert_eq!(result.structured_content.unwrap()["status"], "escalated");
    client.stop().await;
}
