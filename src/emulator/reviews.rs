//! Escalated calls: `GET /v1/reviews` and `POST /v1/reviews/{id}/approve|deny` for
//! approver keys, and the one way a review is settled, shared with the approval page.

use std::time::SystemTime;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    audit::Event,
    execute::start_job,
    policy::Role,
    server::{App, Shared, authenticate, forbidden, internal},
    store::Reader,
};
use crate::{error::Rejection, tenet::wire::ExecuteRequest};

/// `GET /v1/reviews`: every review for an approver key, a caller key's own otherwise.
pub(super) async fn list(State(app): State<App>, headers: HeaderMap) -> Response {
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

/// The reviews `reader` may read, as `{"reviews": [...]}`.
pub(super) fn reviews_json(app: &Shared, reader: Reader<'_>) -> Response {
    match app.store.reviews(reader) {
        Ok(reviews) => axum::Json(json!({"reviews": reviews})).into_response(),
        Err(e) => internal(e),
    }
}

/// `POST /v1/reviews/{id}/approve|deny`, for approver keys.
pub(super) async fn decide(
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
pub(super) async fn settle_review(
    app: &App,
    id: &str,
    verdict: &str,
    decided_by: &str,
) -> Response {
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
            return internal(e);
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
                return internal(e);
            }
        }
    }
    if let Err(e) = app.store.save_review(&review) {
        return internal(e);
    }
    let mut ids = serde_json::Map::new();
    ids.insert("review_id".into(), json!(review.id));
    ids.insert("decided_by".into(), json!(decided_by));
    if let Some(job_id) = &review.job_id {
        ids.insert("job_id".into(), json!(job_id));
    }
    app.audit(Event {
        kind: if approve { "approval" } else { "denial" },
        agent: review.agent.clone(),
        service: review.service.clone(),
        tool: review.tool.clone(),
        arguments: Value::Object(review.arguments.clone()),
        outcome: review.status.clone(),
        reason_codes: review.reason_codes.clone(),
        ids,
    });
    axum::Json(json!({"review": review})).into_response()
}
