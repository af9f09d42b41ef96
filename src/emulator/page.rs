//! The approval page at `/`: pending and decided reviews with Approve and Deny buttons.
//!
//! The page is static; its script reads `/ui/reviews` and posts decisions to
//! `/ui/reviews/{id}/approve|deny`. Its [`guard`] serves all three only on a loopback
//! bind, to requests addressed to a loopback name and from the same origin, and forbids
//! framing them.

use axum::{
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, Uri, header},
    middleware::Next,
    response::{Html, Response},
};

use super::{
    reviews,
    server::{App, Shared, forbidden},
    store::Reader,
};

/// `GET /`
pub(super) async fn index() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tenet emulator: approvals</title>
<style>
 body { font: 14px system-ui, sans-serif; margin: 2rem; color: #222; }
 table { border-collapse: collapse; width: 100%; }
 th, td { border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left; vertical-align: top; }
 code { font-size: 12px; white-space: pre-wrap; }
 .pending { color: #a60; } .approved { color: #070; } .denied { color: #a00; }
 button { margin-right: .3rem; }
</style>
</head>
<body>
<h1>Tenet emulator: reviews</h1>
<p>Escalated calls wait here. Approving one runs it as a job; denying it ends it.</p>
<table>
 <thead><tr><th>review</th><th>status</th><th>tool</th><th>agent</th><th>arguments</th><th>reasons</th><th>job</th><th></th></tr></thead>
 <tbody id="reviews"><tr><td colspan="8">loading…</td></tr></tbody>
</table>
<script>
const text = (v) => document.createTextNode(v == null ? "" : String(v));
function cell(row, content, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.appendChild(content);
  row.appendChild(td);
}
async function decide(id, verdict) {
  const r = await fetch(`/ui/reviews/${encodeURIComponent(id)}/${verdict}`, { method: "POST" });
  if (!r.ok) alert((await r.json()).message);
  await load();
}
async function load() {
  const body = document.getElementById("reviews");
  const r = await fetch("/ui/reviews");
  const { reviews } = await r.json();
  body.replaceChildren();
  if (reviews.length === 0) {
    const row = body.insertRow(); cell(row, text("no reviews yet"));
  }
  for (const review of reviews.slice().reverse()) {
    const row = body.insertRow();
    row.id = review.id;
    cell(row, text(review.id));
    cell(row, text(review.status), review.status + " status");
    cell(row, text(review.tool));
    cell(row, text(review.agent));
    const args = document.createElement("code"); args.textContent = JSON.stringify(review.arguments);
    cell(row, args);
    cell(row, text(review.reason_codes.join(", ")));
    cell(row, text(review.job_id), "job");
    const actions = document.createElement("span");
    if (review.status === "pending") {
      for (const [label, verdict] of [["Approve", "approve"], ["Deny", "deny"]]) {
        const b = document.createElement("button");
        b.textContent = label; b.className = verdict;
        b.onclick = () => decide(review.id, verdict);
        actions.appendChild(b);
      }
    }
    cell(row, actions);
  }
}
load();
setInterval(load, 2000);
</script>
</body>
</html>
"#;
/// Guards the approval page and its actions: refuses them unless [`refusal`]
/// passes, and forbids framing and caching of whatever it answers.
pub(super) async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    let mut response = match refusal(&app, request.uri(), request.headers()) {
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
fn refusal(app: &Shared, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
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

/// `GET /ui/reviews`: every review.
pub(super) async fn ui_reviews(State(app): State<App>) -> Response {
    reviews::reviews_json(&app, Reader::Everyone)
}

/// `POST /ui/reviews/{id}/approve|deny`: a decision made on the page.
pub(super) async fn ui_decide_review(
    State(app): State<App>,
    Path((id, verdict)): Path<(String, String)>,
) -> Response {
    reviews::settle_review(&app, &id, &verdict, "page").await
}
