//! A local downstream API that records what it receives, and the catalog and policy
//! files that point the emulator at it.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::any};
use serde_json::{Value, json};
use tenet_mcp::{
    catalog::Catalog,
    emulator::{Emulator, EmulatorConfig, policy::Policy, start},
};

/// A downstream API that records what it receives.
#[derive(Clone, Default)]
pub struct Downstream {
    seen: Arc<Mutex<Vec<Value>>>,
}

async fn record(
    State(down): State<Downstream>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
        .collect();
    let raw = String::from_utf8_lossy(&body).into_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    down.seen.lock().unwrap().push(json!({"method": method.as_str(), "path": uri.path(), "query": uri.query(), "headers": headers, "body": body, "raw": raw}));
    axum::Json(json!({"ok": true, "path": uri.path()}))
}

/// Serves `app` on a free loopback port in the background; returns its URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

impl Downstream {
    /// Starts it on a free loopback port; returns it and its URL.
    pub async fn start() -> (Self, String) {
        let down = Self::default();
        let url = serve(Router::new().fallback(any(record)).with_state(down.clone())).await;
        (down, url)
    }
    /// Every request so far: method, path, query, headers, body (JSON, else null) and
    /// raw (the body as text).
    pub fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }
}

/// The agent key the test policies accept, bound to agent `default`.
pub const KEY: &str = "tnt_emulator_test_key";
/// The tenant key the test policies accept: it may name any agent.
pub const TENANT_KEY: &str = "tnt_emulator_tenant_key";
/// The approver key the test policies accept.
pub const APPROVER_KEY: &str = "tnt_emulator_approver_key";

/// Writes the test catalog (services `d`, with a credential, and `nocred`) into `dir`.
pub fn catalog(dir: &Path, base_url: &str) -> Arc<Catalog> {
    let tools = json!([
        {"name": "d.items.get", "description": "d", "method": "GET", "path": "/items/{id}", "input_schema": {"type": "object", "properties": {"id": {"type": "string"}, "expand": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["id"]}},
        {"name": "d.items.create", "description": "d", "method": "POST", "path": "/items", "cost_usd": 4.0, "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
        {"name": "d.items.delete", "description": "d", "method": "DELETE", "path": "/items/{id}", "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}
    ]);
    let other = json!([{"name": "nocred.ping", "description": "d", "method": "GET", "path": "/ping", "input_schema": {"type": "object"}}]);
    std::fs::write(
        dir.join("d.json"),
        json!({"service": "d", "base_url": base_url, "tools": tools}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("nocred.json"),
        json!({"service": "nocred", "base_url": base_url, "tools": other}).to_string(),
    )
    .unwrap();
    Arc::new(Catalog::load(&[dir.to_owned()]).unwrap())
}

/// Writes a policy accepting [`KEY`] (a key without a role, as older policies have),
/// [`TENANT_KEY`] and [`APPROVER_KEY`], with a credential for `d`, plus `extra` TOML.
pub fn policy(dir: &Path, extra: &str) -> Policy {
    let path = dir.join("policy.toml");
    std::fs::write(&path, format!("[[keys]]\nkey = \"{KEY}\"\nagent_id = \"default\"\n\n[[keys]]\nkey = \"{TENANT_KEY}\"\nrole = \"tenant\"\n\n[[keys]]\nkey = \"{APPROVER_KEY}\"\nrole = \"approver\"\n\n[credentials.d]\nheader = \"X-Api-Key\"\nvalue = \"downstream-secret\"\n\n{extra}")).unwrap();
    Policy::load(&path).unwrap()
}

/// Starts an emulator on a free loopback port for the test catalog and policy written
/// into `dir`, its audit log at `dir/audit.jsonl`, and its state in `dir/state` when
/// `persistent` (in memory otherwise).
pub async fn start_emulator(
    dir: &Path,
    down_url: &str,
    extra_policy: &str,
    persistent: bool,
) -> Emulator {
    let config = EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        catalog: catalog(dir, down_url),
        policy: policy(dir, extra_policy),
        state_dir: persistent.then(|| dir.join("state")),
        audit_log: Some(dir.join("audit.jsonl")),
    };
    start(config).await.unwrap()
}

/// Starts an emulator on a free loopback port for `catalog`, with the test policy
/// written into `dir` plus `extra_policy` TOML (credentials for the catalog's services,
/// say), in memory.
pub async fn start_emulator_for(dir: &Path, catalog: Arc<Catalog>, extra_policy: &str) -> Emulator {
    let config = EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        catalog,
        policy: policy(dir, extra_policy),
        state_dir: None,
        audit_log: None,
    };
    start(config).await.unwrap()
}
