//! Replicas behind a real load balancer: three `serve --transport http` processes and
//! Debian's HAProxy with the shipped `docs/deploy/haproxy.cfg`, all on loopback.
//!
//! - session-less (2026-07-28) calls spread over the replicas;
//! - Streamable HTTP sessions stay on the replica that made them (`Mcp-Session-Id`), and so do
//!   legacy SSE sessions (`/message?sessionId=`);
//! - 20 Python SDK clients per transport make 10 calls each while one replica is killed with
//!   SIGKILL: clients of the survivors never see an error, clients of the killed one get an
//!   error, open a new session and finish, and Tenet never sees a request id twice;
//! - a job left pending through one replica is resumed through another;
//! - SIGTERM drains a replica: its call in flight completes, new sessions go elsewhere.
//!
//! HAProxy is installed by tests/run.sh; a missing `haproxy` fails these tests.

mod common;

use std::{
    collections::{BTreeSet, HashMap},
    process::Stdio,
    time::Duration,
};

use common::{
    http_server::{Server, free_port, within},
    interop::python_script,
    scripted::{Canned, ScriptedTenet},
    stateless,
};
use serde_json::{Value, json};

const REPLICAS: usize = 3;

/// HAProxy running the shipped configuration in front of `replicas`.
struct Balancer {
    child: tokio::process::Child,
    base: String,
}

impl Balancer {
    async fn start(replicas: &[Server]) -> Self {
        assert_eq!(
            replicas.len(),
            REPLICAS,
            "the shipped config names three replicas"
        );
        let port = free_port();
        let config = format!("{}/docs/deploy/haproxy.cfg", env!("CARGO_MANIFEST_DIR"));
        let mut command = tokio::process::Command::new("haproxy");
        command
            .args(["-db", "-f", &config])
            .env("TENET_MCP_LB_BIND", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (index, replica) in replicas.iter().enumerate() {
            let address = replica.base.trim_start_matches("http://").to_owned();
            command.env(format!("TENET_MCP_REPLICA_{}", index + 1), address);
        }
        let child = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start haproxy ({error}): tests/run.sh installs Debian's haproxy package")
        });
        let balancer = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        // Ready when it answers /healthz through a replica.
        let http = reqwest::Client::new();
        within("HAProxy to answer", Duration::from_secs(15), async {
            loop {
                if let Ok(response) = http.get(balancer.url("/healthz")).send().await
                    && response.status().is_success()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        balancer
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Three replicas sharing one Tenet and one API key (hence one job-reference key); each
/// tags its executes with `context.replica` so the test can tell who sent what.
async fn replicas(tenet: &ScriptedTenet, poll_timeout: &str) -> Vec<Server> {
    let mut servers = Vec::new();
    for index in 1..=REPLICAS {
        let tag = format!("replica=replica{index}");
        servers
            .push(Server::start(tenet, &["--context", &tag, "--poll-timeout", poll_timeout]).await);
    }
    servers
}

/// Which replica sent each execute, by the call's `id` argument.
fn replica_by_call(tenet: &ScriptedTenet) -> HashMap<String, Vec<String>> {
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for execute in tenet.executes_of("acme.items.get") {
        let call = execute.body["toolCall"]["arguments"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let replica = execute.body["context"]["replica"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        seen.entry(call).or_default().push(replica);
    }
    seen
}

/// Every execute's `requestId` appears once: no call was executed twice.
fn assert_request_ids_unique(tenet: &ScriptedTenet) {
    let executes = tenet.executes_of("acme.items.get");
    let ids: BTreeSet<&str> = executes
        .iter()
        .map(|execute| execute.body["requestId"].as_str().expect("a requestId"))
        .collect();
    assert_eq!(ids.len(), executes.len(), "a requestId was executed twice");
}

/// A session-less `tools/call` of `acme_items_get` with `id`, through `url`.
async fn stateless_call(http: &reqwest::Client, url: &str, id: &str) -> Value {
    stateless::call(http, url, "acme_items_get", json!({"id": id}), &[], &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_less_calls_spread_over_the_replicas() {
    let tenet = ScriptedTenet::start().await;
    let servers = replicas(&tenet, "10").await;
    let balancer = Balancer::start(&servers).await;
    let http = reqwest::Client::new();
    for call in 0..9 {
        let answer = stateless_call(&http, &balancer.url("/mcp"), &format!("spread-{call}")).await;
        assert_eq!(
            answer["result"]["structuredContent"]["status"], "executed",
            "{answer}"
        );
    }
    let by_call = replica_by_call(&tenet);
    let used: BTreeSet<&str> = by_call.values().flatten().map(String::as_str).collect();
    assert_eq!(
        used,
        BTreeSet::from(["replica1", "replica2", "replica3"]),
        "round robin reaches every replica: {by_call:?}"
    );
}

/// Checks one transport's run of `replica_load.py` (20 clients x 10 calls, `killed` killed
/// mid-run) against what Tenet saw (`by_call`).
fn check_load(
    transport: &str,
    report: &Value,
    by_call: &HashMap<String, Vec<String>>,
    killed: &str,
) {
    let clients = report["clients"].as_array().expect("clients");
    assert_eq!(clients.len(), 20, "{report}");
    let (mut untouched, mut failed_over) = (0, 0);
    for client in clients {
        let index = client["client"].as_u64().unwrap();
        let calls = client["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 10, "{client}");
        let mut errors = 0;
        for call in calls {
            let number = call["call"].as_u64().unwrap();
            let id = format!("{transport}-c{index}-{number}");
            // Every call completed, through a session on one replica, which is the one
            // Tenet saw it from.
            assert_eq!(call["status"], "executed", "{id} did not complete: {call}");
            let served = strings(&call["served"]);
            assert_eq!(
                served.len(),
                1,
                "{id}: a session spread over replicas: {call}"
            );
            let seen = by_call
                .get(&id)
                .unwrap_or_else(|| panic!("Tenet never saw {id}"));
            assert_eq!(seen.last(), served.first(), "{id}: {call}");
            // Errors come only from sessions on the killed replica, and the call then
            // completes on a survivor.
            for error in call["errors"].as_array().unwrap() {
                errors += 1;
                // (A survivor may have answered the session's last request: HAProxy
                // redispatches it there, and that replica answers 404, unknown session.)
                assert!(
                    strings(&error["served"]).iter().any(|r| r == killed),
                    "{id}: an error in a session off the killed replica: {client}"
                );
                assert_ne!(served[0], killed, "{id}: {call}");
            }
        }
        if errors == 0 {
            untouched += 1;
        } else {
            failed_over += 1;
        }
    }
    assert!(untouched > 0, "{transport}: every client failed: {report}");
    assert!(
        failed_over > 0,
        "{transport}: no client was on the killed replica: {report}"
    );
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_killed_replica_and_stay_pinned() {
    let tenet = ScriptedTenet::start().await;
    let mut servers = replicas(&tenet, "10").await;
    let balancer = Balancer::start(&servers).await;
    let mut drivers = Vec::new();
    for (transport, path) in [("http", "/mcp"), ("sse", "/sse")] {
        let args: Vec<String> = [
            "--transport",
            transport,
            "--url",
            &balancer.url(path),
            "--clients",
            "20",
            "--calls",
            "10",
            "--pause",
            "0.05",
        ]
        .map(String::from)
        .to_vec();
        drivers.push(tokio::task::spawn_blocking(move || {
            python_script("replica_load.py", &args, None)
        }));
    }
    // Kill replica 2 once a quarter of the 400 calls went through.
    within("a quarter of the calls", Duration::from_secs(60), async {
        while tenet.executes_of("acme.items.get").len() < 100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    servers[1].process.child.start_kill().unwrap();
    let mut reports = Vec::new();
    for driver in drivers {
        reports.push(driver.await.unwrap());
    }
    let by_call = replica_by_call(&tenet);
    check_load("http", &reports[0], &by_call, "replica2");
    check_load("sse", &reports[1], &by_call, "replica2");
    assert_request_ids_unique(&tenet);
    drop(balancer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_left_pending_on_one_replica_resumes_on_another() {
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute("acme.items.get", vec![Canned::allow("job_slow")]);
    tenet.on_job("job_slow", vec![Canned::job("job_slow", "running")]);
    let servers = replicas(&tenet, "1").await;
    let first = servers[0].client(None).await;
    let pending = first
        .call_tool(
            rmcp::model::CallToolRequestParams::new("acme_items_get")
                .with_arguments(json!({"id": "slow"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let pending = pending.structured_content.expect("structured");
    assert_eq!(pending["status"], "pending", "{pending}");
    let job_ref = pending["job_ref"].as_str().expect("a job_ref").to_owned();

    tenet.on_job(
        "job_slow",
        vec![Canned::completed("job_slow", 200, json!({"id": "slow"}))],
    );
    let second = servers[2].client(None).await;
    let resumed = second
        .call_tool(
            rmcp::model::CallToolRequestParams::new("tenet_job_status")
                .with_arguments(json!({"job_ref": job_ref}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let resumed = resumed.structured_content.expect("structured");
    assert_eq!(resumed["status"], "executed", "{resumed}");
    assert_eq!(resumed["execution"]["body"]["id"], "slow", "{resumed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_replica_behind_the_balancer() {
    let tenet = ScriptedTenet::start().await;
    let mut servers = replicas(&tenet, "10").await;
    let balancer = Balancer::start(&servers).await;
    // A call that takes a while, through the balancer; find which replica took it.
    tenet.on_execute(
        "acme.items.get",
        vec![
            Canned::json(
                202,
                json!({"jobId": "job_d", "status": "pending", "decision": "ALLOW"}),
            )
            .delayed(Duration::from_millis(1500)),
        ],
    );
    let http = reqwest::Client::new();
    let url = balancer.url("/mcp");
    let call = tokio::spawn({
        let http = http.clone();
        let url = url.clone();
        async move { stateless_call(&http, &url, "drain").await }
    });
    within(
        "the slow call to reach Tenet",
        Duration::from_secs(10),
        async {
            while tenet.executes_of("acme.items.get").is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        },
    )
    .await;
    let replica = replica_by_call(&tenet)["drain"][0].clone();
    let index: usize = replica
        .trim_start_matches("replica")
        .parse::<usize>()
        .unwrap()
        - 1;
    let draining = &mut servers[index];
    draining.signal_terminate();
    // The call in flight completes through the draining replica...
    let answer = within("the drained call", Duration::from_secs(20), call)
        .await
        .unwrap();
    assert_eq!(
        answer["result"]["structuredContent"]["status"], "executed",
        "{answer}"
    );
    let code = within(
        "the replica to exit",
        Duration::from_secs(20),
        draining.process.child.wait(),
    )
    .await
    .unwrap();
    assert!(code.success(), "{code:?}");
    // ...and new calls keep working through the others.
    tenet.on_execute("acme.items.get", vec![Canned::allow("job_after")]);
    for call in 0..4 {
        let answer = stateless_call(&http, &url, &format!("after-{call}")).await;
        assert_eq!(
            answer["result"]["structuredContent"]["status"], "executed",
            "{answer}"
        );
    }
    let by_call = replica_by_call(&tenet);
    for call in 0..4 {
        assert_ne!(by_call[&format!("after-{call}")], vec![replica.clone()]);
    }
}
