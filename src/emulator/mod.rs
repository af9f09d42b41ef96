//! A local Tenet: the same HTTP contract (`shared/TENET_CONTRACT.md`), with real policy,
//! approvals, a tamper-evident audit log and downstream execution, for tests, first
//! runs (`serve --emulator`) and rehearsing policies.
//!
//! Routes: `POST /v1/execute`, `GET /v1/jobs/{id}`, `GET /v1/reviews`,
//! `POST /v1/reviews/{id}/approve|deny` (all with `Authorization: Bearer <key>`), the
//! approval page at `/` with its same-origin actions under `/ui/`, and `GET /healthz`.

pub mod audit;
pub mod cli;
mod downstream;
mod page;
pub mod policy;
mod store;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use self::{
    audit::{AuditLog, Event},
    policy::Policy,
    store::{Review, Store},
};
use crate::{
    catalog::Catalog,
    tenet::{
        ApiKey,
        decision::Outcome,
        wire::{ExecuteRequest, JobBody, JobStatus},
    },
};

/// The largest request body the emulator reads.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// What the emulator needs to start.
pub struct EmulatorConfig {
    /// Where to listen (port 0 picks a free one).
    pub bind: SocketAddr,
    /// The catalog resolving tool calls.
    pub catalog: Arc<Catalog>,
    /// The policy.
    pub policy: Policy,
    /// Where state lives; in memory when `None`.
    pub state_dir: Option<PathBuf>,
    /// The audit log; default `<state_dir>/audit.jsonl`, none without a state folder.
    pub audit_log: Option<PathBuf>,
}

impl EmulatorConfig {
    /// The in-process emulator of `serve --emulator`: loopback, free port, built-in policy, in memory.
    pub fn embedded(catalog: Arc<Catalog>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            catalog,
            policy: Policy::builtin(),
            state_dir: None,
            audit_log: None,
        }
    }
}

/// A running emulator.
pub struct Emulator {
    addr: SocketAddr,
    api_key: ApiKey,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl Emulator {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A key it accepts.
    pub fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// Stops accepting, lets requests in flight finish, and returns.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.server.await;
    }
}

struct Shared {
    catalog: Arc<Catalog>,
    policy: Policy,
    keys: Vec<(ApiKey, String)>,
    store: Store,
    audit: Option<AuditLog>,
    http: reqwest::Client,
    faults: Mutex<StdRng>,
    /// Serializes decisions, so a replayed request id never decides twice.
    deciding: tokio::sync::Mutex<()>,
    loopback: bool,
}

type App = Arc<Shared>;

/// Starts an emulator; it serves in the background until [`Emulator::shutdown`].
pub async fn start(config: EmulatorConfig) -> Result<Emulator, String> {
    let EmulatorConfig {
        bind,
        catalog,
        policy,
        state_dir,
        audit_log,
    } = config;
    let store = Store::open(state_dir.as_deref())?;
    let failed = store.fail_unfinished_jobs("emulator_restarted")?;
    if failed > 0 {
        tracing::warn!(
            failed,
            "jobs left running by a previous emulator were marked failed (emulator_restarted)"
        );
    }
    let audit_path = audit_log.or_else(|| state_dir.as_ref().map(|dir| dir.join("audit.jsonl")));
    let audit = audit_path
        .as_deref()
        .map(|path| AuditLog::open(path, &store, state_dir.as_deref()))
        .transpose()?;
    let mut keys: Vec<(ApiKey, String)> = policy
        .keys
        .iter()
        .filter_map(|entry| ApiKey::new(entry.key.clone()).map(|key| (key, entry.agent_id.clone())))
        .collect();
    if keys.is_empty() {
        let random: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        keys.push((
            ApiKey::new(format!("tnt_emu_{random}")).expect("non-empty"),
            "default".into(),
        ));
    }
    let api_key = keys[0].0.clone();
    let seed = policy.faults.seed.unwrap_or_else(|| rand::rng().random());
    let http = reqwest::Client::builder()
        .user_agent(concat!("tenet-emulator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the downstream HTTP client: {e}"))?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app: App = Arc::new(Shared {
        catalog,
        policy,
        keys,
        store,
        audit,
        http,
        faults: Mutex::new(StdRng::seed_from_u64(seed)),
        deciding: tokio::sync::Mutex::new(()),
        loopback: addr.ip().is_loopback(),
    });
    let router = Router::new()
        .route("/v1/execute", post(execute))
        .route("/v1/jobs/{id}", get(job))
        .route("/v1/reviews", get(list_reviews))
        .route("/v1/reviews/{id}/{verdict}", post(decide_review))
        .route("/", get(page::index))
        .route("/ui/reviews", get(ui_reviews))
        .route("/ui/reviews/{id}/{verdict}", post(ui_decide_review))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .with_state(app);
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stopped.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the emulator stopped serving");
        }
    });
    Ok(Emulator {
        addr,
        api_key,
        stop,
        server,
    })
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

fn json_response(status: u16, body: &str) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        body.to_owned(),
    )
        .into_response();
    response.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("a valid header"),
    );
    response
}

/// The agent bound to the request's bearer key, or a 401 answer.
// Refusals are whole responses, built on the cold path only.
#[allow(clippy::result_large_err)]
fn authenticate(app: &Shared, headers: &HeaderMap) -> Result<(String, String), Response> {
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let found = app.keys.iter().find(|(key, _)| {
        use subtle::ConstantTimeEq;
        let (a, b) = (key.expose().as_bytes(), presented.as_bytes());
        a.len() == b.len() && bool::from(a.ct_eq(b))
    });
    match found {
        Some((key, agent)) => Ok((
            hex::encode(&Sha256::digest(key.expose().as_bytes())[..8]),
            agent.clone(),
        )),
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or unknown API key: send Authorization: Bearer <key>",
        )),
    }
}

fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400;
    format!("day-{days}")
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn audit(app: &Shared, event: Event) {
    if let Some(log) = &app.audit
        && let Err(error) = log.append(event, &app.store)
    {
        tracing::error!(%error, "cannot append to the audit log");
    }
}

async fn execute(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let faults = app.policy.faults.clone();
    if faults.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
    }
    let (drop, fail) = {
        let mut rng = app.faults.lock().unwrap_or_else(|p| p.into_inner());
        (
            rng.random::<f64>() < faults.drop_rate,
            rng.random::<f64>() < faults.error_rate,
        )
    };
    if drop {
        // Read the request, then break the connection: the body stream fails at once.
        let broken = futures::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other("dropped by fault injection"))
        });
        return Response::new(Body::from_stream(broken));
    }
    let (key_id, _key_agent) = match authenticate(&app, &headers) {
        Ok(found) => found,
        Err(response) => return response,
    };
    if fail {
        return error(
            StatusCode::from_u16(faults.error_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "injected_fault",
            "fault injection",
        );
    }
    let request: ExecuteRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the body is not an execute request: {e}"),
            );
        }
    };
    if let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok())
        && key != request.request_id
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the Idempotency-Key header differs from requestId",
        );
    }
    let _deciding = app.deciding.lock().await;
    let replay_key = format!("{key_id}:{}", request.request_id);
    let fingerprint = hex::encode(Sha256::digest(
        audit::canonical(&serde_json::to_value(&request).unwrap_or_default()).as_bytes(),
    ));
    match app.store.execute_answer(&replay_key) {
        Ok(Some((seen, status, body))) if seen == fingerprint => {
            return json_response(status, &body);
        }
        Ok(Some(_)) => {
            return error(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this requestId was used with a different body",
            );
        }
        Ok(None) => {}
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    }
    let (status, answer) = match decide(&app, &request) {
        Ok(answer) => answer,
        Err(response) => return response,
    };
    let body = answer.to_string();
    if let Err(e) = app
        .store
        .save_execute_answer(&replay_key, &fingerprint, status, &body)
    {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e);
    }
    json_response(status, &body)
}

/// Decides a new execute; returns the HTTP status and body to store and send.
// Refusals are whole responses, built on the cold path only.
#[allow(clippy::result_large_err)]
fn decide(app: &App, request: &ExecuteRequest) -> Result<(u16, Value), Response> {
    let internal = |e: String| error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e);
    let name = &request.tool_call.tool_name;
    let Some(tool) = app
        .catalog
        .by_name(name)
        .filter(|t| *t.service == request.service)
    else {
        return Ok((
            400,
            json!({"error": "unknown_tool", "message": format!("no such tool: {name} in service {}", request.service)}),
        ));
    };
    let arguments = Value::Object(request.tool_call.arguments.clone());
    if let Err(problems) = tool.validate_arguments(&arguments) {
        return Ok((
            400,
            json!({"error": "invalid_arguments", "message": problems.join("; ")}),
        ));
    }
    let agent = &request.agent.agent_id;
    let day = today();
    let spent = app.store.spent(agent, &day).map_err(internal)?;
    let (outcome, reason_codes) = app.policy.decide(tool, &request.context, spent);
    let decision_id = new_id("dec");
    let mut ids = serde_json::Map::new();
    ids.insert("decision_id".into(), json!(decision_id));
    ids.insert("request_id".into(), json!(request.request_id));
    let mut event = Event {
        kind: "decision",
        agent: agent.clone(),
        service: request.service.clone(),
        tool: name.clone(),
        arguments: arguments.clone(),
        outcome: outcome.as_str().into(),
        reason_codes: reason_codes.clone(),
        ids,
    };
    let answer = match outcome {
        Outcome::Allow | Outcome::AllowWithConditions => {
            app.store
                .add_spend(agent, &day, tool.cost_usd)
                .map_err(internal)?;
            let job_id = start_job(app, request.clone()).map_err(internal)?;
            event.ids.insert("job_id".into(), json!(job_id));
            (
                202,
                json!({"decision": outcome.as_str(), "decisionId": decision_id, "jobId": job_id, "status": "pending", "reasonCodes": reason_codes}),
            )
        }
        Outcome::Escalate => {
            let review = Review {
                id: new_id("rev"),
                status: "pending".into(),
                tool: name.clone(),
                service: request.service.clone(),
                agent: agent.clone(),
                arguments: request.tool_call.arguments.clone(),
                context: request.context.clone(),
                reason_codes: reason_codes.clone(),
                decision_id: decision_id.clone(),
                request_id: request.request_id.clone(),
                job_id: None,
                created: httpdate::fmt_http_date(SystemTime::now()),
                decided: None,
            };
            app.store.save_review(&review).map_err(internal)?;
            event.ids.insert("review_id".into(), json!(review.id));
            (
                202,
                json!({"decision": "ESCALATE", "decisionId": decision_id, "reviewId": review.id, "status": "pending", "reasonCodes": reason_codes}),
            )
        }
        Outcome::Block => (
            403,
            json!({"decision": "BLOCK", "decisionId": decision_id, "reasonCodes": reason_codes}),
        ),
    };
    audit(app, event);
    Ok(answer)
}

/// Creates a pending job for an allowed call and runs it in the background.
fn start_job(app: &App, request: ExecuteRequest) -> Result<String, String> {
    let job_id = new_id("job");
    app.store.save_job(&JobBody {
        job_id: job_id.clone(),
        status: JobStatus::Pending,
        execution: None,
        execution_error: None,
    })?;
    let app = app.clone();
    let id = job_id.clone();
    tokio::spawn(async move { run_job(app, id, request).await });
    Ok(job_id)
}

async fn run_job(app: App, job_id: String, request: ExecuteRequest) {
    let mut job = JobBody {
        job_id: job_id.clone(),
        status: JobStatus::Running,
        execution: None,
        execution_error: None,
    };
    let save = |job: &JobBody| {
        if let Err(error) = app.store.save_job(job) {
            tracing::error!(%error, "cannot save a job");
        }
    };
    save(&job);
    let delay = app.policy.faults.job_delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let result = match (
        app.catalog.by_name(&request.tool_call.tool_name),
        app.policy.credential(&request.service),
    ) {
        (None, _) => Err("unknown_tool".to_owned()),
        (Some(_), None) => Err("credential_not_found".to_owned()),
        (Some(tool), Some(credential)) => {
            let timeout = Duration::from_secs(app.policy.downstream_timeout_secs);
            downstream::run(
                &app.http,
                tool,
                &request.tool_call.arguments,
                &credential,
                timeout,
            )
            .await
        }
    };
    match result {
        Ok(execution) => {
            job.status = JobStatus::Completed;
            job.execution = Some(execution);
        }
        Err(error) => {
            job.status = JobStatus::Failed;
            job.execution_error = Some(error);
        }
    }
    save(&job);
    let mut ids = serde_json::Map::new();
    ids.insert("job_id".into(), json!(job_id));
    ids.insert("request_id".into(), json!(request.request_id));
    let outcome = match &job.execution {
        Some(execution) => format!("completed:{}", execution.status),
        None => format!(
            "failed:{}",
            job.execution_error
                .as_deref()
                .unwrap_or("downstream_failed")
        ),
    };
    audit(
        &app,
        Event {
            kind: "job",
            agent: request.agent.agent_id.clone(),
            service: request.service.clone(),
            tool: request.tool_call.tool_name.clone(),
            arguments: Value::Object(request.tool_call.arguments.clone()),
            outcome,
            reason_codes: Vec::new(),
            ids,
        },
    );
}

async fn job(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(response) = authenticate(&app, &headers) {
        return response;
    }
    match app.store.job(&id) {
        Ok(Some(job)) => (StatusCode::OK, axum::Json(job)).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "job_not_found",
            format!("no job {id}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    }
}

async fn list_reviews(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(response) = authenticate(&app, &headers) {
        return response;
    }
    reviews_json(&app)
}

fn reviews_json(app: &Shared) -> Response {
    match app.store.reviews() {
        Ok(reviews) => axum::Json(json!({"reviews": reviews})).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    }
}

async fn decide_review(
    State(app): State<App>,
    Path((id, verdict)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authenticate(&app, &headers) {
        return response;
    }
    settle_review(&app, &id, &verdict).await
}

/// Approves (running the call as a job) or denies a pending review.
async fn settle_review(app: &App, id: &str, verdict: &str) -> Response {
    let approve = match verdict {
        "approve" => true,
        "deny" => false,
        other => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("unknown action `{other}`: use approve or deny"),
            );
        }
    };
    let _deciding = app.deciding.lock().await;
    let mut review = match app.store.review(id) {
        Ok(Some(review)) => review,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "review_not_found",
                format!("no review {id}"),
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    };
    if review.status != "pending" {
        return error(
            StatusCode::CONFLICT,
            "already_decided",
            format!("review {id} is already {}", review.status),
        );
    }
    review.status = if approve { "approved" } else { "denied" }.into();
    review.decided = Some(httpdate::fmt_http_date(SystemTime::now()));
    if approve {
        let request = ExecuteRequest {
            request_id: review.request_id.clone(),
            service: review.service.clone(),
            tool_call: crate::tenet::wire::ToolCall {
                tool_name: review.tool.clone(),
                arguments: review.arguments.clone(),
            },
            agent: crate::tenet::wire::Agent {
                agent_id: review.agent.clone(),
            },
            context: review.context.clone(),
        };
        match start_job(app, request) {
            Ok(job_id) => review.job_id = Some(job_id),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
        }
    }
    if let Err(e) = app.store.save_review(&review) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e);
    }
    let mut ids = serde_json::Map::new();
    ids.insert("review_id".into(), json!(review.id));
    if let Some(job_id) = &review.job_id {
        ids.insert("job_id".into(), json!(job_id));
    }
    audit(
        app,
        Event {
            kind: if approve { "approval" } else { "denial" },
            agent: review.agent.clone(),
            service: review.service.clone(),
            tool: review.tool.clone(),
            arguments: Value::Object(review.arguments.clone()),
            outcome: review.status.clone(),
            reason_codes: review.reason_codes.clone(),
            ids,
        },
    );
    axum::Json(json!({"review": review})).into_response()
}

/// The page's actions are same-origin only, and only on a loopback emulator.
// Refusals are whole responses, built on the cold path only.
#[allow(clippy::result_large_err)]
fn ui_allowed(app: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    if !app.loopback {
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the approval page is served only on a loopback bind; use `tenet-mcp reviews`",
        ));
    }
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get("origin").and_then(|v| v.to_str().ok());
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let cross_site = site.is_some_and(|s| s != "same-origin" && s != "none")
        || origin.is_some_and(|o| o.strip_prefix("http://").unwrap_or(o) != host);
    if cross_site {
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "cross-site requests are refused",
        ));
    }
    Ok(())
}

async fn ui_reviews(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(response) = ui_allowed(&app, &headers) {
        return response;
    }
    reviews_json(&app)
}

async fn ui_decide_review(
    State(app): State<App>,
    Path((id, verdict)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = ui_allowed(&app, &headers) {
        return response;
    }
    settle_review(&app, &id, &verdict).await
}
