//! A local Tenet: the same HTTP contract (`docs/TENET_CONTRACT.md`), with real policy,
//! approvals, a tamper-evident audit log and downstream execution, for tests, first
//! runs (`serve --emulator`) and rehearsing policies.
//!
//! Routes: `POST /v1/execute`, `GET /v1/jobs/{id}`, `GET /v1/reviews`,
//! `POST /v1/reviews/{id}/approve|deny` (all with `Authorization: Bearer <key>`), the
//! approval page at `/` with its same-origin actions under `/ui/`, and `GET /healthz`.
//!
//! Keys have roles ([`policy::Role`]): agent keys call as their own agent, tenant keys
//! as any agent they name, approver keys decide reviews and cannot call. Jobs and
//! reviews are readable only by the key that created them (approvers see every review).
//! The approval page answers only loopback binds and requests addressed to a loopback
//! name, so a rebound DNS name cannot reach it.

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
    extract::{DefaultBodyLimit, Path, Request, State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use self::{
    audit::{AuditError, AuditLog, Event},
    policy::{Policy, PolicyError, Role},
    store::{Reader, Review, Store, StoreError},
};
use crate::{
    catalog::Catalog,
    error::Rejection,
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
    approver_key: Option<ApiKey>,
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

    /// The key to call with: the generated tenant key, or the policy's first tenant
    /// key, else its first agent key.
    pub fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// The key that approves and denies reviews: the generated approver key, or the
    /// policy's first approver key (none when the policy lists none).
    pub fn approver_key(&self) -> Option<&ApiKey> {
        self.approver_key.as_ref()
    }

    /// Stops accepting, lets requests in flight finish, and returns.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.server.await;
    }
}

/// An accepted key, the id jobs and reviews record it by, its agent and its role.
struct Key {
    key: ApiKey,
    id: String,
    agent: String,
    role: Role,
}

impl Key {
    fn new(key: ApiKey, agent: String, role: Role) -> Self {
        let id = hex::encode(&Sha256::digest(key.expose().as_bytes())[..8]);
        Self {
            key,
            id,
            agent,
            role,
        }
    }

    /// The jobs and reviews this key may read.
    fn reader(&self) -> Reader<'_> {
        Reader::Key {
            id: &self.id,
            tenant: self.role == Role::Tenant,
        }
    }
}

/// A random key with `prefix`.
fn random_key(prefix: &str) -> ApiKey {
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    ApiKey::new(format!("{prefix}{random}")).expect("non-empty")
}

struct Shared {
    catalog: Arc<Catalog>,
    policy: Policy,
    keys: Vec<Key>,
    store: Store,
    audit: Option<AuditLog>,
    http: reqwest::Client,
    faults: Mutex<StdRng>,
    /// Serializes decisions, so a replayed request id never decides twice.
    deciding: tokio::sync::Mutex<()>,
    loopback: bool,
}

type App = Arc<Shared>;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Its catalog is invalid.
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    /// Its policy file is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Its state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Its audit log cannot be continued.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The policy names no key that may call.
    #[error("the policy's [[keys]] lists only approver keys: add an agent or tenant key")]
    NoCallerKey,
    /// The HTTP client for downstream APIs could not be built.
    #[error("{0}")]
    Downstream(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Starts an emulator; it serves in the background until [`Emulator::shutdown`].
pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
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
    let mut keys: Vec<Key> = policy
        .keys
        .iter()
        .filter_map(|entry| {
            ApiKey::new(entry.key.clone())
                .map(|key| Key::new(key, entry.agent_id.clone(), entry.role))
        })
        .collect();
    if keys.is_empty() {
        keys.push(Key::new(
            random_key("tnt_emu_"),
            "default".into(),
            Role::Tenant,
        ));
        keys.push(Key::new(
            random_key("tnt_emu_approver_"),
            "default".into(),
            Role::Approver,
        ));
    }
    let first = |role: Role| keys.iter().find(|k| k.role == role).map(|k| k.key.clone());
    let api_key = first(Role::Tenant)
        .or_else(|| first(Role::Agent))
        .ok_or(EmulatorError::NoCallerKey)?;
    let approver_key = first(Role::Approver);
    if approver_key.is_none() {
        tracing::warn!(
            "the policy lists no approver key: escalated calls can be decided only on the approval page"
        );
    }
    let seed = policy.faults.seed.unwrap_or_else(|| rand::rng().random());
    let http = downstream::client().map_err(EmulatorError::Downstream)?;
    let listen = |source| EmulatorError::Listen { addr: bind, source };
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;
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
    let page = Router::new()
        .route("/", get(page::index))
        .route("/ui/reviews", get(ui_reviews))
        .route("/ui/reviews/{id}/{verdict}", post(ui_decide_review))
        .route_layer(middleware::from_fn_with_state(app.clone(), page_guard));
    let router = Router::new()
        .route("/v1/execute", post(execute))
        .route("/v1/jobs/{id}", get(job))
        .route("/v1/reviews", get(list_reviews))
        .route("/v1/reviews/{id}/{verdict}", post(decide_review))
        .merge(page)
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
        approver_key,
        stop,
        server,
    })
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

fn forbidden(message: impl Into<String>) -> Response {
    Rejection::new(StatusCode::FORBIDDEN, "forbidden", message).into_response()
}

/// The key of the request's bearer token, or a 401 answer.
// Refusals are whole responses, built on the cold path only.
#[allow(clippy::result_large_err)]
fn authenticate<'a>(app: &'a Shared, headers: &HeaderMap) -> Result<&'a Key, Response> {
    let presented = crate::web::bearer(headers).unwrap_or("");
    app.keys
        .iter()
        .find(|entry| {
            use subtle::ConstantTimeEq;
            let (a, b) = (entry.key.expose().as_bytes(), presented.as_bytes());
            a.len() == b.len() && bool::from(a.ct_eq(b))
        })
        .ok_or_else(|| {
            Rejection::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or unknown API key: send Authorization: Bearer <key>",
            )
            .into_response()
        })
}

/// The answer to a body that could not be read: 413 over [`MAX_REQUEST_BODY`], else 400.
fn body_refused(rejection: &BytesRejection) -> Response {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is over {MAX_REQUEST_BODY} bytes (1 MiB): send a smaller one"
            ),
        )
        .into_response()
    } else {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request body could not be read: send it again",
        )
        .into_response()
    }
}

/// A serde message with the Rust type it expected (`expected struct ToolCall`) said
/// the way a caller knows it: a JSON object.
fn without_type_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("expected struct ") {
        out.push_str(&rest[..at]);
        out.push_str("expected a JSON object");
        let name = &rest[at + "expected struct ".len()..];
        rest = name.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
    }
    out.push_str(rest);
    out
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

async fn execute(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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
    let caller = match authenticate(&app, &headers) {
        Ok(found) => found,
        Err(response) => return response,
    };
    if caller.role == Role::Approver {
        return forbidden(
            "this is an approver key: it decides reviews and cannot make calls; call with an agent or tenant key",
        );
    }
    if fail {
        return Rejection::new(
            StatusCode::from_u16(faults.error_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "injected_fault",
            "fault injection",
        )
        .into_response();
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return body_refused(&rejection),
    };
    let request: ExecuteRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return Rejection::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!(
                    "the body is not an execute request ({}): send a JSON object with requestId, service, toolCall {{toolName, arguments}}, agent {{agentId}} and context",
                    without_type_names(&e.to_string())
                ),
            ).into_response();
        }
    };
    if let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok())
        && key != request.request_id
    {
        return Rejection::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the Idempotency-Key header differs from requestId",
        )
        .into_response();
    }
    if caller.role == Role::Agent && request.agent.agent_id != caller.agent {
        return forbidden(format!(
            "this key belongs to agent `{}` and cannot call as another agent: send agentId `{}`, or use a tenant key (role = \"tenant\") to name agents",
            caller.agent, caller.agent
        ));
    }
    let _deciding = app.deciding.lock().await;
    let replay_key = format!("{}:{}", caller.id, request.request_id);
    let fingerprint = hex::encode(Sha256::digest(
        audit::canonical(&serde_json::to_value(&request).unwrap_or_default()).as_bytes(),
    ));
    match app.store.execute_answer(&replay_key) {
        Ok(Some((seen, status, body))) if seen == fingerprint => {
            return json_response(status, &body);
        }
        Ok(Some(_)) => {
            return Rejection::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this requestId was used with a different body",
            )
            .into_response();
        }
        Ok(None) => {}
        Err(e) => {
            return Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                .into_response();
        }
    }
    let (status, answer) = match decide(&app, &request, &caller.id) {
        Ok(answer) => answer,
        Err(response) => return response,
    };
    let body = answer.to_string();
    if let Err(e) = app
        .store
        .save_execute_answer(&replay_key, &fingerprint, status, &body)
    {
        return Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response();
    }
    json_response(status, &body)
}

/// Decides a new execute by the key `owner`; returns the HTTP status and body to store
/// and send.
// Refusals are whole responses, built on the cold path only.
#[allow(clippy::result_large_err)]
fn decide(app: &App, request: &ExecuteRequest, owner: &str) -> Result<(u16, Value), Response> {
    let internal = |e: StoreError| {
        Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()).into_response()
    };
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
    if let Err(problem) = downstream::fill_path(tool, &request.tool_call.arguments) {
        return Ok((
            400,
            json!({"error": "invalid_arguments", "message": problem}),
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
            let job_id = start_job(app, request.clone(), Some(owner)).map_err(internal)?;
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
            app.store.add_review(&review, owner).map_err(internal)?;
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

/// Creates a pending job for an allowed call, owned by the key `owner`, and runs it
/// in the background.
fn start_job(
    app: &App,
    request: ExecuteRequest,
    owner: Option<&str>,
) -> Result<String, StoreError> {
    let job_id = new_id("job");
    app.store.add_job(
        &JobBody {
            job_id: job_id.clone(),
            status: JobStatus::Pending,
            execution: None,
            execution_error: None,
        },
        owner,
    )?;
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
    let caller = match authenticate(&app, &headers) {
        Ok(found) => found,
        Err(response) => return response,
    };
    // Another key's job is answered as missing: its existence is not revealed.
    match app.store.job(&id, caller.reader()) {
        Ok(Some(job)) => (StatusCode::OK, axum::Json(job)).into_response(),
        Ok(None) => Rejection::new(
            StatusCode::NOT_FOUND,
            "job_not_found",
            format!("no job {id}"),
        )
        .into_response(),
        Err(e) => Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}

async fn list_reviews(State(app): State<App>, headers: HeaderMap) -> Response {
    let caller = match authenticate(&app, &headers) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let reader = match caller.role {
        Role::Approver => Reader::Everyone,
        Role::Agent | Role::Tenant => caller.reader(),
    };
    reviews_json(&app, reader)
}

fn reviews_json(app: &Shared, reader: Reader<'_>) -> Response {
    match app.store.reviews(reader) {
        Ok(reviews) => axum::Json(json!({"reviews": reviews})).into_response(),
        Err(e) => Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}

async fn decide_review(
    State(app): State<App>,
    Path((id, verdict)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let approver = match authenticate(&app, &headers) {
        Ok(caller) if caller.role == Role::Approver => caller,
        Ok(_) => {
            return forbidden(
                "only an approver key may approve or deny reviews, and this key makes calls: use the approver key the emulator printed (`tenet-mcp reviews` reads it from TENET_APPROVER_KEY), or the approval page",
            );
        }
        Err(response) => return response,
    };
    settle_review(&app, &id, &verdict, &format!("key:{}", approver.id)).await
}

/// Approves (running the call as a job) or denies a pending review; `decided_by`
/// (`key:<key id>` or `page`) goes into the audit record.
async fn settle_review(app: &App, id: &str, verdict: &str, decided_by: &str) -> Response {
    let approve = match verdict {
        "approve" => true,
        "deny" => false,
        other => {
            return Rejection::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("unknown action `{other}`: use approve or deny"),
            )
            .into_response();
        }
    };
    let _deciding = app.deciding.lock().await;
    let (mut review, owner) = match app.store.review(id) {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Rejection::new(
                StatusCode::NOT_FOUND,
                "review_not_found",
                format!("no review {id}"),
            )
            .into_response();
        }
        Err(e) => {
            return Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                .into_response();
        }
    };
    if review.status != "pending" {
        return Rejection::new(
            StatusCode::CONFLICT,
            "already_decided",
            format!("review {id} is already {}", review.status),
        )
        .into_response();
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
        match start_job(app, request, owner.as_deref()) {
            Ok(job_id) => review.job_id = Some(job_id),
            Err(e) => {
                return Rejection::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    e.to_string(),
                )
                .into_response();
            }
        }
    }
    if let Err(e) = app.store.save_review(&review) {
        return Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response();
    }
    let mut ids = serde_json::Map::new();
    ids.insert("review_id".into(), json!(review.id));
    ids.insert("decided_by".into(), json!(decided_by));
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

/// Guards the approval page and its actions: refuses them unless [`page_refusal`]
/// passes, and forbids framing and caching of whatever it answers.
async fn page_guard(State(app): State<App>, request: Request, next: Next) -> Response {
    let mut response = match page_refusal(&app, request.uri(), request.headers()) {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why the page must not answer this request, if it must not: the emulator is not
/// bound to loopback, the request addressed a name that is not loopback (DNS
/// rebinding), or it came from another site.
fn page_refusal(app: &Shared, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    if !app.loopback {
        return Some(forbidden(
            "the approval page is served only on a loopback bind; use `tenet-mcp reviews` with the approver key",
        ));
    }
    if !crate::web::addresses_loopback(uri, headers) {
        return Some(forbidden(
            "the approval page answers only requests addressed to localhost or a loopback address: open it at http://127.0.0.1:<port>/",
        ));
    }
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let hosts = crate::web::addressed_hosts(uri, headers);
    let same_origin = |origin: &HeaderValue| {
        origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|o| !hosts.is_empty() && hosts.iter().all(|host| *host == o))
    };
    let cross_site = site.is_some_and(|s| s != "same-origin" && s != "none")
        || headers.get(header::ORIGIN).is_some_and(|o| !same_origin(o));
    cross_site.then(|| forbidden("cross-site requests are refused"))
}

async fn ui_reviews(State(app): State<App>) -> Response {
    reviews_json(&app, Reader::Everyone)
}

async fn ui_decide_review(
    State(app): State<App>,
    Path((id, verdict)): Path<(String, String)>,
) -> Response {
    settle_review(&app, &id, &verdict, "page").await
}
