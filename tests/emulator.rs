//! The Tenet emulator over HTTP: policy, approvals, idempotency, state, audit, faults,
//! and downstream execution against a local recording server.

mod common;

use std::{path::Path, time::Duration};

use common::downstream::{APPROVER_KEY, Downstream, KEY, TENANT_KEY, start_emulator};
use serde_json::{Value, json};
use tenet_mcp::emulator::Emulator;

/// Asserts an answer is a refusal with HTTP `status`, error `code`, and a message
/// containing `says` (`""`: any message).
#[track_caller]
fn assert_refused(got: u16, answer: &Value, status: u16, code: &str, says: &str) {
    assert_eq!(
        (got, answer["error"].as_str()),
        (status, Some(code)),
        "{answer}"
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains(says),
        "{answer}"
    );
}

struct Setup {
    dir: tempfile::TempDir,
    down: Downstream,
    down_url: String,
    url: String,
    emulator: Option<Emulator>,
    http: reqwest::Client,
}

impl Setup {
    async fn new(extra_policy: &str, persistent: bool) -> Self {
        let (down, down_url) = Downstream::start().await;
        Self::serving(down, down_url.clone(), &down_url, extra_policy, persistent).await
    }

    /// An emulator whose catalog's `base_url` is `base_url`, with `down` recording.
    async fn serving(
        down: Downstream,
        down_url: String,
        base_url: &str,
        extra_policy: &str,
        persistent: bool,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let emulator = start_emulator(dir.path(), base_url, extra_policy, persistent).await;
        let url = emulator.url();
        Self {
            dir,
            down,
            down_url,
            url,
            emulator: Some(emulator),
            http: reqwest::Client::new(),
        }
    }

    /// Stops the emulator and starts a new one on the same state.
    async fn restart(&mut self) {
        self.emulator.take().unwrap().shutdown().await;
        let emulator = start_emulator(self.dir.path(), &self.down_url, "", true).await;
        self.url = emulator.url();
        self.emulator = Some(emulator);
    }

    /// `POST /v1/execute` of `tool` by `agent` with `key`, under `request_id`.
    #[allow(clippy::too_many_arguments)]
    async fn execute_for(
        &self,
        agent: &str,
        key: &str,
        request_id: &str,
        service: &str,
        tool: &str,
        arguments: Value,
        context: Value,
    ) -> (u16, Value) {
        let body = json!({"requestId": request_id, "service": service, "toolCall": {"toolName": tool, "arguments": arguments}, "agent": {"agentId": agent}, "context": context});
        let response = self
            .http
            .post(format!("{}/v1/execute", self.url))
            .bearer_auth(key)
            .header("Idempotency-Key", request_id)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn execute(&self, tool: &str, arguments: Value, context: Value) -> (u16, Value) {
        let id = uuid::Uuid::new_v4().to_string();
        self.execute_for(
            "default",
            KEY,
            &id,
            tool.split('.').next().unwrap(),
            tool,
            arguments,
            context,
        )
        .await
    }

    /// Executes `tool` with `key` as agent `agent`, under a fresh request id.
    async fn execute_with(
        &self,
        key: &str,
        agent: &str,
        tool: &str,
        arguments: Value,
    ) -> (u16, Value) {
        let id = uuid::Uuid::new_v4().to_string();
        self.execute_for(agent, key, &id, "d", tool, arguments, json!({}))
            .await
    }

    async fn send(&self, method: reqwest::Method, key: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// `GET path` with the agent key.
    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, KEY, path).await
    }

    /// `POST path` with the approver key.
    async fn post(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::POST, APPROVER_KEY, path).await
    }

    /// Polls a job until it is final.
    async fn finished_job(&self, job_id: &str) -> Value {
        for _ in 0..200 {
            let (status, job) = self.get(&format!("/v1/jobs/{job_id}")).await;
            assert_eq!(status, 200, "{job}");
            if job["status"] == "completed" || job["status"] == "failed" {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("job {job_id} never finished");
    }

    fn audit_path(&self) -> std::path::PathBuf {
        self.dir.path().join("audit.jsonl")
    }
}

#[tokio::test]
async fn allowed_calls_run_downstream_with_the_injected_credential() {
    let setup = Setup::new("", false).await;
    let (status, answer) = setup
        .execute(
            "d.items.get",
            json!({"id": "a b/c", "expand": "owner", "limit": 5}),
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["decision"], "ALLOW");
    assert_eq!(answer["status"], "pending");
    assert!(answer["decisionId"].as_str().unwrap().starts_with("dec_"));
    let job = setup.finished_job(answer["jobId"].as_str().unwrap()).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["execution"]["status"], 200);
    assert_eq!(job["execution"]["body"]["ok"], true);
    assert!(job["execution"]["durationMs"].is_u64());

    let (status, answer) = setup
        .execute("d.items.create", json!({"name": "widget"}), json!({}))
        .await;
    assert_eq!(status, 202);
    setup.finished_job(answer["jobId"].as_str().unwrap()).await;

    let seen = setup.down.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["method"], "GET");
    assert_eq!(seen[0]["path"], "/items/a%20b%2Fc");
    let query = seen[0]["query"].as_str().unwrap();
    assert!(
        query.contains("expand=owner") && query.contains("limit=5"),
        "{query}"
    );
    assert_eq!(seen[0]["headers"]["x-api-key"], "downstream-secret");
    assert!(
        seen[0]["headers"].get("authorization").is_none(),
        "the agent's key is never forwarded"
    );
    assert_eq!(seen[1]["method"], "POST");
    assert_eq!(seen[1]["body"], json!({"name": "widget"}));
}

#[tokio::test]
async fn escalated_calls_wait_for_approval_or_denial() {
    let setup = Setup::new("", false).await;
    let (status, answer) = setup
        .execute("d.items.delete", json!({"id": "1"}), json!({}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(answer["decision"], "ESCALATE");
    assert_eq!(answer["reasonCodes"], json!(["RULE_irreversible-escalate"]));
    let review = answer["reviewId"].as_str().unwrap().to_owned();
    assert!(setup.down.seen().is_empty(), "nothing runs before approval");

    let (_, listed) = setup.get("/v1/reviews").await;
    assert_eq!(listed["reviews"][0]["status"], "pending");
    assert_eq!(listed["reviews"][0]["arguments"], json!({"id": "1"}));
    let (status, approved) = setup.post(&format!("/v1/reviews/{review}/approve")).await;
    assert_eq!(status, 200, "{approved}");
    let job = setup
        .finished_job(approved["review"]["job_id"].as_str().unwrap())
        .await;
    assert_eq!(job["status"], "completed");
    assert_eq!(setup.down.seen()[0]["method"], "DELETE");
    let (status, _) = setup.post(&format!("/v1/reviews/{review}/approve")).await;
    assert_eq!(status, 409, "a review is decided once");

    let (_, answer) = setup
        .execute("d.items.delete", json!({"id": "2"}), json!({}))
        .await;
    let review = answer["reviewId"].as_str().unwrap();
    let (status, denied) = setup.post(&format!("/v1/reviews/{review}/deny")).await;
    assert_eq!(
        (status, denied["review"]["status"].clone()),
        (200, json!("denied"))
    );
    assert_eq!(setup.down.seen().len(), 1, "a denied call never runs");
}

#[tokio::test]
async fn policy_blocks_on_production_by_rule_and_by_budget() {
    let setup = Setup::new("[[rules]]\ntool = \"d.items.g*\"\naction = \"block\"\n\n[budget]\ndaily_usd_per_agent = 5.0\n", false).await;
    let (status, answer) = setup
        .execute(
            "d.items.delete",
            json!({"id": "1"}),
            json!({"env": "production"}),
        )
        .await;
    assert_eq!(
        (
            status,
            answer["decision"].clone(),
            answer["reasonCodes"].clone()
        ),
        (
            403,
            json!("BLOCK"),
            json!(["RULE_block-irreversible-on-prod"])
        )
    );
    let (status, answer) = setup
        .execute("d.items.get", json!({"id": "1"}), json!({}))
        .await;
    assert_eq!(
        (status, answer["reasonCodes"].clone()),
        (403, json!(["RULE_block:d.items.g*"]))
    );
    let (status, _) = setup
        .execute("d.items.create", json!({"name": "a"}), json!({}))
        .await;
    assert_eq!(status, 202, "4 of 5 USD");
    let (status, answer) = setup
        .execute("d.items.create", json!({"name": "b"}), json!({}))
        .await;
    assert_eq!(
        (status, answer["reasonCodes"].clone()),
        (403, json!(["RULE_cost-cap-exceeded"]))
    );
}

#[tokio::test]
async fn keys_tools_and_bodies_are_checked() {
    let setup = Setup::new("", false).await;
    let (status, answer) = setup
        .execute_for(
            "default",
            "tnt_wrong_key",
            "r1",
            "d",
            "d.items.get",
            json!({"id": "1"}),
            json!({}),
        )
        .await;
    assert_refused(status, &answer, 401, "unauthorized", "");
    let (status, answer) = setup.execute("d.items.nope", json!({}), json!({})).await;
    assert_refused(status, &answer, 400, "unknown_tool", "");
    let (status, answer) = setup
        .execute("d.items.get", json!({"id": 5}), json!({}))
        .await;
    assert_refused(status, &answer, 400, "invalid_arguments", "");
    let response = setup
        .http
        .post(format!("{}/v1/execute", setup.url))
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let response = setup
        .http
        .post(format!("{}/v1/execute", setup.url))
        .bearer_auth(KEY)
        .json(&json!({"requestId": "r", "service": "d", "toolCall": [], "agent": {"agentId": "default"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let message = response.json::<Value>().await.unwrap()["message"].to_string();
    assert!(
        message.contains("expected a JSON object") && !message.contains("struct"),
        "no Rust type names: {message}"
    );
    let (status, _) = setup.get("/v1/jobs/job_missing").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn replayed_request_ids_never_decide_twice() {
    let setup = Setup::new("", false).await;
    let send = |id: &'static str, tool: &'static str, arguments: Value| {
        let setup = &setup;
        async move {
            setup
                .execute_for("default", KEY, id, "d", tool, arguments, json!({}))
                .await
        }
    };
    let first = send("req-1", "d.items.create", json!({"name": "x"})).await;
    let again = send("req-1", "d.items.create", json!({"name": "x"})).await;
    assert_eq!(first, again, "the same decision, job and ids");
    setup.finished_job(first.1["jobId"].as_str().unwrap()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(setup.down.seen().len(), 1, "one downstream call");
    let (status, answer) = send("req-1", "d.items.create", json!({"name": "other"})).await;
    assert_refused(status, &answer, 409, "idempotency_conflict", "");

    let first = send("req-2", "d.items.delete", json!({"id": "9"})).await;
    let again = send("req-2", "d.items.delete", json!({"id": "9"})).await;
    assert_eq!(first, again);
    let (_, listed) = setup.get("/v1/reviews").await;
    assert_eq!(listed["reviews"].as_array().unwrap().len(), 1, "one review");
}

#[tokio::test]
async fn services_without_a_credential_fail_the_job() {
    let setup = Setup::new("", false).await;
    let (status, answer) = setup.execute("nocred.ping", json!({}), json!({})).await;
    assert_eq!((status, answer["decision"].clone()), (202, json!("ALLOW")));
    let job = setup.finished_job(answer["jobId"].as_str().unwrap()).await;
    assert_eq!(
        (job["status"].clone(), job["executionError"].clone()),
        (json!("failed"), json!("credential_not_found"))
    );
}

#[tokio::test]
async fn pending_reviews_survive_a_restart() {
    let mut setup = Setup::new("", true).await;
    let (_, answer) = setup
        .execute("d.items.delete", json!({"id": "7"}), json!({}))
        .await;
    let review = answer["reviewId"].as_str().unwrap().to_owned();
    setup.restart().await;
    let (status, approved) = setup.post(&format!("/v1/reviews/{review}/approve")).await;
    assert_eq!(status, 200, "{approved}");
    let job = setup
        .finished_job(approved["review"]["job_id"].as_str().unwrap())
        .await;
    assert_eq!(job["status"], "completed");
}

#[tokio::test]
async fn the_audit_log_records_everything_and_verify_catches_tampering() {
    let setup = Setup::new("", false).await;
    let (_, allowed) = setup
        .execute("d.items.get", json!({"id": "1"}), json!({}))
        .await;
    setup.finished_job(allowed["jobId"].as_str().unwrap()).await;
    let (_, escalated) = setup
        .execute("d.items.delete", json!({"id": "secret-id-42"}), json!({}))
        .await;
    setup
        .post(&format!(
            "/v1/reviews/{}/deny",
            escalated["reviewId"].as_str().unwrap()
        ))
        .await;
    let path = setup.audit_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let events: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(events, ["decision", "job", "decision", "denial"]);
    assert!(
        !text.contains("secret-id-42"),
        "arguments are only digested"
    );

    let verify = |path: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
            .args(["audit", "verify"])
            .arg(path)
            .output()
            .unwrap()
    };
    let ok = verify(&path);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok: 4 records"));
    std::fs::write(&path, text.replacen("\"denial\"", "\"approval\"", 1)).unwrap();
    let broken = verify(&path);
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&broken.stdout).contains("broken at record 4"),
        "{}",
        String::from_utf8_lossy(&broken.stdout)
    );
}

#[tokio::test]
async fn fault_injection_answers_5xx_or_drops_the_connection() {
    let setup = Setup::new("[faults]\nerror_rate = 1.0\nerror_status = 502\n", false).await;
    let (status, _) = setup
        .execute("d.items.get", json!({"id": "1"}), json!({}))
        .await;
    assert_eq!(status, 502);
    let setup = Setup::new("[faults]\ndrop_rate = 1.0\n", false).await;
    let sent = setup
        .http
        .post(format!("{}/v1/execute", setup.url))
        .bearer_auth(KEY)
        .json(&json!({}))
        .send()
        .await;
    let failed = match sent {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(failed, "the connection must break");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reviews_command_lists_and_approves() {
    let setup = Setup::new("", false).await;
    let (_, answer) = setup
        .execute("d.items.delete", json!({"id": "3"}), json!({}))
        .await;
    let review = answer["reviewId"].as_str().unwrap().to_owned();
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
            .arg("reviews")
            .args(args)
            .args(["--emulator-url", &setup.url])
            .env("TENET_APPROVER_KEY", APPROVER_KEY)
            .output()
            .unwrap()
    };
    let caller_key = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
            .args(["reviews", "approve", &review, "--emulator-url", &setup.url])
            .args(["--key-env", "AGENT_KEY"])
            .env("AGENT_KEY", KEY)
            .output()
            .unwrap()
    });
    assert_eq!(caller_key.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&caller_key.stderr).contains("only an approver key"),
        "{}",
        String::from_utf8_lossy(&caller_key.stderr)
    );
    let no_key = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
            .args(["reviews", "list", "--emulator-url", &setup.url])
            .env_remove("TENET_APPROVER_KEY")
            .env("TENET_API_KEY", KEY)
            .output()
            .unwrap()
    });
    assert!(
        String::from_utf8_lossy(&no_key.stderr).contains("TENET_APPROVER_KEY is not set"),
        "{}",
        String::from_utf8_lossy(&no_key.stderr)
    );
    let listed = tokio::task::block_in_place(|| cli(&["list"]));
    assert!(listed.status.success());
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains(&review)
            && listing.contains("pending")
            && listing.contains("d.items.delete"),
        "{listing}"
    );
    let approved = tokio::task::block_in_place(|| cli(&["approve", &review]));
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    assert!(String::from_utf8_lossy(&approved.stdout).contains("approved: running as job job_"));
    let again = tokio::task::block_in_place(|| cli(&["approve", &review]));
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already approved"));
    let unreachable = std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
        .args(["reviews", "list", "--emulator-url", "http://127.0.0.1:9"])
        .env("TENET_APPROVER_KEY", APPROVER_KEY)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the emulator"));
}

#[tokio::test]
async fn path_parameters_that_would_leave_the_template_are_refused() {
    let setup = Setup::new("", false).await;
    for (tool, id) in [
        ("d.items.get", ".."),
        ("d.items.get", "."),
        ("d.items.get", ""),
        ("d.items.delete", ".."),
    ] {
        let (status, answer) = setup.execute(tool, json!({"id": id}), json!({})).await;
        assert_refused(
            status,
            &answer,
            400,
            "invalid_arguments",
            "path parameter `id` must not be empty, `.` or `..`",
        );
        assert!(answer.get("jobId").is_none() && answer.get("reviewId").is_none());
    }
    let (_, listed) = setup
        .send(reqwest::Method::GET, APPROVER_KEY, "/v1/reviews")
        .await;
    assert_eq!(listed["reviews"], json!([]), "no review was created");
    // `..` inside a value is only text, encoded into its own segment.
    let (status, answer) = setup
        .execute("d.items.get", json!({"id": "../x"}), json!({}))
        .await;
    assert_eq!(status, 202, "{answer}");
    setup.finished_job(answer["jobId"].as_str().unwrap()).await;
    let seen = setup.down.seen();
    assert_eq!(
        seen.len(),
        1,
        "nothing else reached the downstream: {seen:?}"
    );
    assert_eq!(seen[0]["path"], "/items/..%2Fx");
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let (down, down_url) = Downstream::start().await;
    let target = format!("{down_url}/stolen");
    let redirector = common::downstream::serve(axum::Router::new().fallback(move || {
        let target = target.clone();
        async move { (axum::http::StatusCode::FOUND, [("location", target)]) }
    }))
    .await;
    let setup = Setup::serving(down, down_url.clone(), &redirector, "", false).await;
    let (status, answer) = setup
        .execute("d.items.get", json!({"id": "1"}), json!({}))
        .await;
    assert_eq!(status, 202, "{answer}");
    let job = setup.finished_job(answer["jobId"].as_str().unwrap()).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["execution"]["status"], 302);
    assert_eq!(
        job["execution"]["headers"]["location"],
        format!("{down_url}/stolen")
    );
    assert!(
        setup.down.seen().is_empty(),
        "the credential went to the redirect's host"
    );
}

#[tokio::test]
async fn repeated_downstream_headers_are_all_kept() {
    let (down, down_url) = Downstream::start().await;
    let cookies = common::downstream::serve(axum::Router::new().fallback(|| async {
        let mut headers = axum::http::HeaderMap::new();
        headers.append("set-cookie", "a=1".parse().unwrap());
        headers.append("set-cookie", "b=2".parse().unwrap());
        (headers, "{}")
    }))
    .await;
    let setup = Setup::serving(down, down_url, &cookies, "", false).await;
    let (_, answer) = setup
        .execute("d.items.get", json!({"id": "1"}), json!({}))
        .await;
    let job = setup.finished_job(answer["jobId"].as_str().unwrap()).await;
    assert_eq!(
        job["execution"]["headers"]["set-cookie"],
        json!(["a=1", "b=2"]),
        "{job}"
    );
    assert!(job["execution"]["headers"]["content-length"].is_string());
}

#[tokio::test]
async fn oversized_bodies_get_the_json_error_shape() {
    let setup = Setup::new("", false).await;
    let response = setup
        .http
        .post(format!("{}/v1/execute", setup.url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(vec![b' '; tenet_mcp::emulator::MAX_REQUEST_BODY + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large", "{body}");
    assert!(body["message"].as_str().unwrap().contains("1 MiB"));
}

#[tokio::test]
async fn the_approval_page_answers_loopback_names_only() {
    let setup = Setup::new("", false).await;
    let (_, escalated) = setup
        .execute("d.items.delete", json!({"id": "1"}), json!({}))
        .await;
    let review = escalated["reviewId"].as_str().unwrap().to_owned();
    let addr = setup.emulator.as_ref().unwrap().addr();
    let evil = format!("http://evil.example:{}", addr.port());
    let rebound = reqwest::Client::builder()
        .resolve("evil.example", addr)
        .build()
        .unwrap();
    let h2 = reqwest::Client::builder()
        .resolve("evil.example", addr)
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (client, version) in [(&rebound, "HTTP/1.1"), (&h2, "HTTP/2")] {
        for (method, path) in [
            (reqwest::Method::GET, "/".to_owned()),
            (reqwest::Method::GET, "/ui/reviews".to_owned()),
            (
                reqwest::Method::POST,
                format!("/ui/reviews/{review}/approve"),
            ),
        ] {
            let response = client
                .request(method.clone(), format!("{evil}{path}"))
                .header("Origin", &evil)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.version() == reqwest::Version::HTTP_2,
                version == "HTTP/2"
            );
            assert_eq!(response.status().as_u16(), 403, "{version} {method} {path}");
            let body = response.text().await.unwrap();
            assert!(!body.contains("d.items.delete"), "{body}");
        }
    }
    assert!(setup.down.seen().is_empty(), "the DELETE ran");
    let (_, listed) = setup
        .send(reqwest::Method::GET, APPROVER_KEY, "/v1/reviews")
        .await;
    assert_eq!(listed["reviews"][0]["status"], "pending");

    // The page itself, addressed by a loopback name, works and cannot be framed.
    let page = setup
        .http
        .get(format!("{}/", setup.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(
        page.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    let approved = setup
        .http
        .post(format!("{}/ui/reviews/{review}/approve", setup.url))
        .header("Origin", &setup.url)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status().as_u16(), 200);
    assert_eq!(approved.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn only_approver_keys_decide_reviews_and_they_cannot_call() {
    let setup = Setup::new("", false).await;
    let (_, escalated) = setup
        .execute("d.items.delete", json!({"id": "1"}), json!({}))
        .await;
    let review = escalated["reviewId"].as_str().unwrap().to_owned();
    for key in [KEY, TENANT_KEY] {
        let (status, answer) = setup
            .send(
                reqwest::Method::POST,
                key,
                &format!("/v1/reviews/{review}/approve"),
            )
            .await;
        assert_refused(status, &answer, 403, "forbidden", "approver key");
    }
    assert!(
        setup.down.seen().is_empty(),
        "a caller approved its own call"
    );
    let (status, approved) = setup.post(&format!("/v1/reviews/{review}/approve")).await;
    assert_eq!(status, 200, "{approved}");
    setup
        .finished_job(approved["review"]["job_id"].as_str().unwrap())
        .await;
    let approval: Value = std::fs::read_to_string(setup.audit_path())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|record| record["event"] == "approval")
        .unwrap();
    let caller_id = |key: &str| format!("key:{}", &sha256_hex(key)[..16]);
    assert_eq!(
        approval["ids"]["decided_by"],
        caller_id(APPROVER_KEY),
        "the audit names the approving key: {approval}"
    );

    let (status, answer) = setup
        .execute_with(APPROVER_KEY, "default", "d.items.get", json!({"id": "1"}))
        .await;
    assert_refused(status, &answer, 403, "forbidden", "");
}

#[tokio::test]
async fn keys_act_as_their_own_agent_and_read_only_their_own_work() {
    let setup = Setup::new("", false).await;
    let (status, answer) = setup
        .execute_with(KEY, "other", "d.items.get", json!({"id": "1"}))
        .await;
    assert_refused(status, &answer, 403, "forbidden", "agent `default`");
    assert!(setup.down.seen().is_empty());

    let (status, tenant_job) = setup
        .execute_with(TENANT_KEY, "other", "d.items.get", json!({"id": "1"}))
        .await;
    assert_eq!(status, 202, "a tenant key names agents: {tenant_job}");
    let tenant_job = tenant_job["jobId"].as_str().unwrap().to_owned();
    let (status, answer) = setup.get(&format!("/v1/jobs/{tenant_job}")).await;
    assert_refused(status, &answer, 404, "job_not_found", "");
    let (status, _) = setup
        .send(
            reqwest::Method::GET,
            TENANT_KEY,
            &format!("/v1/jobs/{tenant_job}"),
        )
        .await;
    assert_eq!(status, 200);

    let (_, mine) = setup
        .execute("d.items.delete", json!({"id": "mine"}), json!({}))
        .await;
    let (_, theirs) = setup
        .execute_with(
            TENANT_KEY,
            "other",
            "d.items.delete",
            json!({"id": "theirs"}),
        )
        .await;
    let ids = |listed: &Value| -> Vec<String> {
        listed["reviews"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, listed) = setup.get("/v1/reviews").await;
    assert_eq!(ids(&listed), [mine["reviewId"].as_str().unwrap()]);
    let (_, listed) = setup
        .send(reqwest::Method::GET, TENANT_KEY, "/v1/reviews")
        .await;
    assert_eq!(ids(&listed), [theirs["reviewId"].as_str().unwrap()]);
    let (_, listed) = setup
        .send(reqwest::Method::GET, APPROVER_KEY, "/v1/reviews")
        .await;
    assert_eq!(listed["reviews"].as_array().unwrap().len(), 2);

    // The job of an approved review belongs to the key that made the call.
    let (_, approved) = setup
        .post(&format!(
            "/v1/reviews/{}/approve",
            theirs["reviewId"].as_str().unwrap()
        ))
        .await;
    let job = approved["review"]["job_id"].as_str().unwrap();
    let (status, _) = setup.get(&format!("/v1/jobs/{job}")).await;
    assert_eq!(status, 404);
    let (status, _) = setup
        .send(reqwest::Method::GET, TENANT_KEY, &format!("/v1/jobs/{job}"))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn without_keys_it_makes_a_tenant_key_and_a_separate_approver_key() {
    let dir = tempfile::tempdir().unwrap();
    let (down, down_url) = Downstream::start().await;
    let emulator = tenet_mcp::emulator::start(tenet_mcp::emulator::EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        catalog: common::downstream::catalog(dir.path(), &down_url),
        policy: tenet_mcp::emulator::policy::Policy::builtin(),
        state_dir: None,
        audit_log: None,
    })
    .await
    .unwrap();
    let tenant = emulator.api_key().expose().to_owned();
    let approver = emulator.approver_key().unwrap().expose().to_owned();
    assert_ne!(tenant, approver);
    let setup = Setup {
        dir,
        down,
        down_url,
        url: emulator.url(),
        emulator: Some(emulator),
        http: reqwest::Client::new(),
    };
    let (status, escalated) = setup
        .execute_with(&tenant, "any-agent", "d.items.delete", json!({"id": "1"}))
        .await;
    assert_eq!(status, 202, "{escalated}");
    let path = format!(
        "/v1/reviews/{}/approve",
        escalated["reviewId"].as_str().unwrap()
    );
    let (status, _) = setup.send(reqwest::Method::POST, &tenant, &path).await;
    assert_eq!(status, 403);
    let (status, approved) = setup.send(reqwest::Method::POST, &approver, &path).await;
    assert_eq!(status, 200, "{approved}");
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}
