//! `POST /v1/execute` and `GET /v1/jobs/{id}`: an execute is authenticated, checked,
//! answered once per request id (a replay gets the stored answer), decided by the
//! policy, and an allowed call runs as a background job that calls the API downstream.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::{
    body::{Body, Bytes},
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    audit::{self, Event},
    downstream::{self, JobError},
    policy::Role,
    server::{App, authenticate, body_refused, forbidden, internal},
    store::{Review, StoreError},
};
use crate::{
    error::Rejection,
    tenet::{
        decision::Outcome,
        wire::{ExecuteRequest, JobBody, JobStatus},
    },
};

/// A stored execute answer, sent as it was first sent.
fn json_response(status: u16, body: &str) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        body.to_owned(),
    )
        .into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
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

/// Today, as the key spend is summed under.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400;
    format!("day-{days}")
}

/// A fresh id: `prefix`, `_`, a random UUID.
fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// `POST /v1/execute`.
pub(super) async fn execute(
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
            return internal(e);
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
        return internal(e);
    }
    json_response(status, &body)
}

/// Decides a new execute by the key `owner`; returns the HTTP status and body to store
/// and send.
// Refusals are whole responses, built on the cold path only.
#[allow(clippy::result_large_err)]
fn decide(app: &App, request: &ExecuteRequest, owner: &str) -> Result<(u16, Value), Response> {
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
            json!({"error": "invalid_arguments", "message": problem.to_string()}),
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
    app.audit(event);
    Ok(answer)
}

/// Creates a pending job for an allowed call, owned by the key `owner`, and runs it
/// in the background.
pub(super) fn start_job(
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

/// Runs an allowed call's job to its end, saving each status and auditing the end.
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
        (None, _) => Err(JobError::UnknownTool),
        (Some(_), None) => Err(JobError::NoCredential),
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
            job.execution_error = Some(error.to_string());
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
    app.audit(Event {
        kind: "job",
        agent: request.agent.agent_id.clone(),
        service: request.service.clone(),
        tool: request.tool_call.tool_name.clone(),
        arguments: Value::Object(request.tool_call.arguments.clone()),
        outcome,
        reason_codes: Vec::new(),
        ids,
    });
}

/// `GET /v1/jobs/{id}`.
pub(super) async fn job(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
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
        Err(e) => internal(e),
    }
}
