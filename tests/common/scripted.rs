//! A scripted Tenet: an HTTP server on 127.0.0.1 that answers `POST /v1/execute` and
//! `GET /v1/jobs/{id}` from per-tool and per-job scripts, and records every request
//! (any other path too, answered 404).
//!
//! A script is a queue of canned answers; its last answer repeats. Tools and jobs
//! without a script get an ALLOW with a job that completes at once.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use tokio::sync::watch;

/// One canned HTTP answer.
#[derive(Clone, Debug)]
pub struct Canned {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Canned {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }
    /// A plain-text answer.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }
    /// An execute's answer: allowed, running as `job`.
    pub fn allow(job: &str) -> Self {
        Self::json(202, json!({"jobId": job, "decision": "ALLOW"}))
    }
    /// A poll's answer: `job` is in `status` (`pending`, `running`, ...).
    pub fn job(job: &str, status: &str) -> Self {
        Self::json(200, json!({"jobId": job, "status": status}))
    }
    /// A poll's answer: `job` completed, its downstream call answering `status` with `body`.
    pub fn completed(job: &str, status: u16, body: Value) -> Self {
        Self::json(
            200,
            json!({"jobId": job, "status": "completed", "execution": {"status": status, "headers": {}, "body": body, "durationMs": 3}}),
        )
    }
    /// The same answer with a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    /// The same answer after a delay.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the scripted Tenet received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `execute`, `job`, or `other` (any other path).
    pub kind: &'static str,
    /// The path, as sent (not percent-decoded).
    pub path: String,
    /// Request headers (lower-case names).
    pub headers: HashMap<String, String>,
    /// The body, parsed when JSON.
    pub body: Value,
}

impl Recorded {
    /// Whether this is an execute of `tool` (a Tenet tool name).
    pub fn is_execute_of(&self, tool: &str) -> bool {
        self.kind == "execute" && self.body["toolCall"]["toolName"] == tool
    }
}

struct Scripts {
    execute: HashMap<String, VecDeque<Canned>>,
    jobs: HashMap<String, VecDeque<Canned>>,
    requests: Vec<Recorded>,
    /// Told of every request recorded.
    received: watch::Sender<()>,
}

impl Scripts {
    /// Records a request and tells those waiting for one.
    fn push(&mut self, recorded: Recorded) {
        self.requests.push(recorded);
        self.received.send_replace(());
    }
}

/// The running scripted Tenet.
#[derive(Clone)]
pub struct ScriptedTenet {
    /// Where it listens.
    pub addr: SocketAddr,
    scripts: Arc<Mutex<Scripts>>,
}

fn next(queue: &mut VecDeque<Canned>) -> Option<Canned> {
    if queue.len() > 1 {
        queue.pop_front()
    } else {
        queue.front().cloned()
    }
}

fn respond(canned: Canned) -> Response {
    let mut response = (StatusCode::from_u16(canned.status).unwrap(), canned.body).into_response();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    for (name, value) in canned.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

fn record(headers: &HeaderMap, kind: &'static str, path: String, body: &[u8]) -> Recorded {
    Recorded {
        kind,
        path,
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    }
}

async fn execute(
    State(scripts): State<Arc<Mutex<Scripts>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = record(&headers, "execute", "/v1/execute".into(), &body);
    let tool = recorded.body["toolCall"]["toolName"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let canned = {
        let mut scripts = scripts.lock().unwrap();
        let n = scripts
            .requests
            .iter()
            .filter(|r| r.kind == "execute")
            .count();
        scripts.push(recorded);
        scripts.execute.get_mut(&tool).and_then(next).unwrap_or_else(|| {
            Canned::json(202, json!({"jobId": format!("job_auto_{n}"), "status": "pending", "decision": "ALLOW"}))
        })
    };
    tokio::time::sleep(canned.delay).await;
    respond(canned)
}

async fn job(
    State(scripts): State<Arc<Mutex<Scripts>>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let canned = {
        let mut scripts = scripts.lock().unwrap();
        scripts.push(record(&headers, "job", uri.path().to_owned(), b""));
        scripts.jobs.get_mut(&id).and_then(next).unwrap_or_else(|| {
            Canned::json(200, json!({"jobId": id, "status": "completed", "execution": {"status": 200, "headers": {"content-type": "application/json"}, "body": {"ok": true, "job": id}, "durationMs": 7}}))
        })
    };
    tokio::time::sleep(canned.delay).await;
    respond(canned)
}

/// Any other request: recorded (kind `other`) and answered 404.
async fn other(
    State(scripts): State<Arc<Mutex<Scripts>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut scripts = scripts.lock().unwrap();
    scripts.push(record(&headers, "other", uri.path().to_owned(), b""));
    respond(Canned::json(404, json!({"error": "not_found"})))
}

impl ScriptedTenet {
    /// Starts a scripted Tenet on a free loopback port.
    pub async fn start() -> Self {
        let scripts = Arc::new(Mutex::new(Scripts {
            execute: HashMap::new(),
            jobs: HashMap::new(),
            requests: Vec::new(),
            received: watch::Sender::new(()),
        }));
        let app = Router::new()
            .route("/v1/execute", post(execute))
            .route("/v1/jobs/{id}", get(job))
            .fallback(other)
            .with_state(scripts.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, scripts }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Scripts the answers to executes of `tool` (a Tenet tool name).
    pub fn on_execute(&self, tool: &str, answers: Vec<Canned>) {
        self.scripts
            .lock()
            .unwrap()
            .execute
            .insert(tool.to_owned(), answers.into());
    }

    /// Scripts executes of `tool` to start `job`, and polls of `job` to find it running.
    pub fn start_job(&self, tool: &str, job: &str) {
        self.on_execute(tool, vec![Canned::allow(job)]);
        self.on_job(job, vec![Canned::job(job, "running")]);
    }

    /// Scripts the answers to polls of `job_id`.
    pub fn on_job(&self, job_id: &str, answers: Vec<Canned>) {
        self.scripts
            .lock()
            .unwrap()
            .jobs
            .insert(job_id.to_owned(), answers.into());
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.scripts.lock().unwrap().requests.clone()
    }

    /// Waits until the requests received so far satisfy `done`, woken by each new
    /// one; panics after 10 s, saying `what` it waited for.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Recorded]) -> bool) {
        let mut received = self.scripts.lock().unwrap().received.subscribe();
        let reached = async {
            while !done(&self.scripts.lock().unwrap().requests) {
                received.changed().await.expect("the scripted Tenet lives");
            }
        };
        tokio::time::timeout(Duration::from_secs(10), reached)
            .await
            .unwrap_or_else(|_| panic!("{what}: not within 10 s"));
    }

    /// Waits until `n` executes of `tool` have arrived.
    pub async fn wait_for_executes(&self, tool: &str, n: usize) {
        self.wait_for(&format!("{n} executes of {tool}"), |requests| {
            requests.iter().filter(|r| r.is_execute_of(tool)).count() >= n
        })
        .await;
    }

    /// The execute requests received for `tool`.
    pub fn executes_of(&self, tool: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_execute_of(tool))
            .collect()
    }

    /// The polls received for `job_id` (its path exactly as given, unencoded).
    pub fn polls_of(&self, job_id: &str) -> usize {
        let path = format!("/v1/jobs/{job_id}");
        self.requests().iter().filter(|r| r.path == path).count()
    }

    /// The paths of every job poll received, as sent.
    pub fn job_paths(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.kind == "job")
            .map(|r| r.path)
            .collect()
    }
}
