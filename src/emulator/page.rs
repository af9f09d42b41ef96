//! The approval page at `/`: pending and decided reviews with Approve and Deny buttons.
//!
//! The page is static; its script reads `/ui/reviews` and posts decisions to
//! `/ui/reviews/{id}/approve|deny`. The emulator's page guard serves all three only on
//! a loopback bind, to requests addressed to a loopback name and from the same origin,
//! and forbids framing them.

use axum::response::Html;

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
