//! The OAuth 2.1 resource server (`serve --public-url URL --oauth-issuer URL`): against a
//! real authorization server (oidc-provider, `tests/interop/oidc/`) with the Python MCP
//! SDK's own OAuth client, and against an issuer the test runs itself, whose keys it
//! generates to forge tokens (rotation, expiry, wrong audience or issuer, algorithm
//! confusion). Each bridge runs in-process against a scripted Tenet.

mod common;

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::header;
use rmcp::{
    ServiceExt,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tenet_mcp::{
    catalog::Catalog,
    serve::Upstream,
    tenet::ApiKey,
    transport::http::{
        Options, Server,
        oauth::{OAuthOptions, ScopeMap},
    },
};

use common::{
    harness::{fixture, params},
    http_server::{self, ACCEPT_BOTH, TOKEN_A, free_port, within},
    scripted::ScriptedTenet,
};

/// The public URL of the bridges that need no real one.
const PUBLIC: &str = "https://mcp.example.test/mcp";
const KEY: &str = "tnt_oauth_test_key";
/// A scopes map with a read scope and a write scope that leaves out deletions.
const ACME_SCOPES: &str = "\"tenet:read\" = { read_only = true }\n\"acme:write\" = [\"acme.items.*\", \"!acme.items.delete\"]\n";
/// The scopes map of the tests with oidc-provider.
const SCOPES: &str = "\"tenet:read\" = { read_only = true }\n\"tenet:write\" = [\"acme.*\"]\n";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn oidc_dir() -> PathBuf {
    repo().join("tests/interop/oidc")
}

/// Fails (never skips) when the authorization server is not installed.
fn require_oidc_provider() {
    assert!(
        oidc_dir().join("node_modules/oidc-provider").exists(),
        "oidc-provider is not installed: run tests/interop/oidc/setup.sh (tests/run.sh does it)"
    );
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A key pair generated for the test by `keys.mjs`.
struct TestKey {
    alg: Algorithm,
    kid: String,
    private_pem: String,
    public_pem: String,
    public_jwk: Value,
}

/// Fresh key pairs, one per algorithm named (`RS256`, `ES256`, `EdDSA`).
fn generate_keys(algs: &[&str]) -> Vec<TestKey> {
    require_oidc_provider();
    let output = Command::new("node")
        .arg(oidc_dir().join("keys.mjs"))
        .args(algs)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "keys.mjs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let keys: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    keys.into_iter()
        .map(|key| TestKey {
            alg: key["alg"].as_str().unwrap().parse().unwrap(),
            kid: key["kid"].as_str().unwrap().to_owned(),
            private_pem: key["private_pem"].as_str().unwrap().to_owned(),
            public_pem: key["public_pem"].as_str().unwrap().to_owned(),
            public_jwk: key["public_jwk"].clone(),
        })
        .collect()
}

/// `claims` signed with `key`, its kid in the header.
fn sign(key: &TestKey, claims: &Value) -> String {
    let pem = key.private_pem.as_bytes();
    let encoding = match key.alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        other => panic!("no test key for {other:?}"),
    }
    .unwrap();
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    encode(&header, claims, &encoding).unwrap()
}

/// Base64url without padding, as JWTs use it.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A token of `header` and `claims` with `signature` (for forgeries no library makes).
fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// An authorization server run by the test: OpenID discovery and a JWKS it can change
/// or make fail, counting the JWKS fetches.
struct Issuer {
    url: String,
    jwks: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

#[derive(Clone)]
struct IssuerState {
    url: String,
    jwks: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl Issuer {
    async fn start(published: &[&TestKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = IssuerState {
            url: url.clone(),
            jwks: Arc::new(Mutex::new(
                published.iter().map(|key| key.public_jwk.clone()).collect(),
            )),
            fetches: Arc::default(),
            failing: Arc::default(),
        };
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(|State(state): State<IssuerState>| async move {
                    Json(json!({"issuer": state.url, "jwks_uri": format!("{}/jwks", state.url)}))
                }),
            )
            .route(
                "/jwks",
                get(|State(state): State<IssuerState>| async move {
                    state.fetches.fetch_add(1, Ordering::SeqCst);
                    if state.failing.load(Ordering::SeqCst) {
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    Json(json!({"keys": *state.jwks.lock().unwrap()})).into_response()
                }),
            )
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            jwks: state.jwks,
            fetches: state.fetches,
            failing: state.failing,
        }
    }

    fn publish(&self, key: &TestKey) {
        self.jwks.lock().unwrap().push(key.public_jwk.clone());
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Valid claims for [`PUBLIC`], as agent `sub`, with `extra` merged in.
    fn claims(&self, sub: &str, extra: Value) -> Value {
        let mut claims =
            json!({"iss": self.url, "aud": PUBLIC, "sub": sub, "iat": now(), "exp": now() + 300});
        if let (Value::Object(claims), Value::Object(extra)) = (&mut claims, extra) {
            claims.extend(extra);
        }
        claims
    }
}

/// A bridge served over HTTP in-process; stopped when dropped.
struct Bridge {
    base: String,
    task: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `options` with `oauth`, bound on `bind` (port 0: any).
async fn try_serve(
    tenet: &ScriptedTenet,
    bind: &str,
    oauth: OAuthOptions,
    auth_tokens: Option<PathBuf>,
) -> Result<Bridge, tenet_mcp::config::ConfigError> {
    let catalog = Arc::new(Catalog::load(&[fixture().into()]).unwrap());
    let bridge = Upstream::new(tenet.url(), ApiKey::new(KEY.to_owned()).unwrap())
        .bridge(catalog)
        .unwrap();
    let server = Server::bind(Options {
        bind: bind.parse().unwrap(),
        oauth: Some(oauth),
        auth_tokens,
        ..Options::default()
    })
    .await?;
    let base = format!("http://{}", server.local_addr());
    let task = tokio::spawn(async move {
        let _ = server
            .serve_until(bridge, std::future::pending::<()>())
            .await;
    });
    Ok(Bridge {
        base,
        task,
        http: reqwest::Client::new(),
    })
}

async fn serve(tenet: &ScriptedTenet, oauth: OAuthOptions) -> Bridge {
    try_serve(tenet, "127.0.0.1:0", oauth, None)
        .await
        .expect("the OAuth options are valid")
}

fn oauth(issuer: &str, scopes: Option<ScopeMap>) -> OAuthOptions {
    OAuthOptions {
        public_url: PUBLIC.to_owned(),
        issuer: issuer.to_owned(),
        audience: None,
        agent_claim: "sub".to_owned(),
        scopes,
    }
}

/// The scopes map `text` (TOML) over the test catalog.
fn scope_map(text: &str) -> ScopeMap {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scopes.toml");
    std::fs::write(&path, text).unwrap();
    let catalog = Catalog::load(&[fixture().into()]).unwrap();
    ScopeMap::load(
        &path,
        &catalog,
        &[
            "tenet_job_status",
            "tenet_search_tools",
            "tenet_describe_tool",
        ],
        "tenet_call_tool",
    )
    .unwrap()
}

impl Bridge {
    /// A raw JSON-RPC POST to /mcp with `token`, if any.
    async fn post(&self, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/mcp", self.base))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, ACCEPT_BOTH)
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        within("POST /mcp", Duration::from_secs(10), request.send())
            .await
            .unwrap()
    }

    /// The status, `WWW-Authenticate` and JSON body of an `initialize` with `token`.
    async fn initialize(&self, token: Option<&str>) -> (StatusCode, String, Value) {
        let body: Value = serde_json::from_str(&http_server::initialize_body()).unwrap();
        let response = self.post(token, &body).await;
        let status = response.status();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let retry = response.headers().get(header::RETRY_AFTER).cloned();
        let text = response.text().await.unwrap();
        let mut json: Value = serde_json::from_str(&text).unwrap_or(json!({"raw": text}));
        if let Some(retry) = retry {
            json["retry_after_header"] = json!(retry.to_str().unwrap());
        }
        (status, challenge, json)
    }

    /// A `tools/call` of `tool` with `token`, outside any session.
    async fn call_raw(&self, token: &str, tool: &str, arguments: Value) -> reqwest::Response {
        self.post(
            Some(token),
            &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}),
        )
        .await
    }

    /// rmcp's client, connected over Streamable HTTP with `token`.
    async fn client(&self, token: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
        let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", self.base))
            .auth_header(token);
        let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
        within("initialize", Duration::from_secs(10), ().serve(transport))
            .await
            .expect("the bridge accepts the token")
    }

    /// Connects with `token`; the names of the tools listed.
    async fn tool_names(&self, token: &str) -> Vec<String> {
        let client = self.client(token).await;
        let tools = client.list_all_tools().await.unwrap();
        client.cancel().await.unwrap();
        tools
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect()
    }

    /// Connects with `token` and calls `tool`; the structured result.
    async fn call(&self, token: &str, tool: &str, arguments: Value) -> Value {
        let client = self.client(token).await;
        let result = within(
            "tools/call",
            Duration::from_secs(20),
            client.call_tool(params(tool, arguments)),
        )
        .await
        .unwrap();
        client.cancel().await.unwrap();
        result.structured_content.unwrap_or(Value::Null)
    }
}

/// Every request Tenet received: none carries `token`, and the agents of the executes.
fn agents_seen_by_tenet(tenet: &ScriptedTenet, tokens: &[&str]) -> Vec<String> {
    for request in tenet.requests() {
        for (name, value) in &request.headers {
            for token in tokens {
                assert!(
                    !value.contains(token),
                    "a client's token reached Tenet in `{name}`"
                );
            }
        }
        for token in tokens {
            assert!(!request.body.to_string().contains(token));
        }
    }
    tenet
        .requests()
        .into_iter()
        .filter(|r| r.kind == "execute")
        .map(|r| r.body["agent"]["agentId"].as_str().unwrap_or("").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------
// A real authorization server and the Python SDK's OAuth client
// ---------------------------------------------------------------------------------

/// oidc-provider running `server.mjs`; killed when dropped.
struct OidcProvider {
    child: std::process::Child,
    issuer: String,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OidcProvider {
    fn start(config: &Value) -> Self {
        require_oidc_provider();
        let mut child = Command::new("node")
            .arg(oidc_dir().join("server.mjs"))
            .arg(config.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("oidc-provider did not start: {line:?}"));
        Self {
            child,
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
        }
    }

    /// A token by client credentials for `resource`, as a raw HTTP client gets one.
    async fn token(&self, client: (&str, &str), resource: &str, scope: &str) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client.0, Some(client.1))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&resource={}&scope={}",
                form_encoded(resource),
                form_encoded(scope)
            ))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_owned()
    }
}

fn form_encoded(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Runs `oauth_client.py` against `url`; its JSON report.
fn python_oauth_client(
    url: &str,
    issuer: &str,
    client: (&str, &str),
    scope: &str,
    calls: &Value,
) -> Value {
    let python = repo().join(".interop/venv/bin/python");
    assert!(
        python.exists(),
        "the Python MCP client is not installed: run tests/interop/setup.sh (tests/run.sh does it)"
    );
    let mut child = Command::new(python)
        .arg(oidc_dir().join("oauth_client.py"))
        .args([url, issuer, client.0, client.1, scope])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(calls.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "the Python OAuth client printed no report:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The MCP authorization flow end to end: the bridge's 401 leads the SDK to the
/// protected resource metadata, then to oidc-provider, where it gets a token for this
/// resource (RFC 8707) by client credentials, with the scopes the metadata lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_discovers_oidc_provider_and_calls_with_its_token() {
    let provider = OidcProvider::start(&json!({
        "clients": [{"client_id": "ops-agent", "client_secret": "a-long-client-secret-2", "scope": "tenet:read tenet:write"}],
        "scopes": ["tenet:read", "tenet:write"],
    }));
    let tenet = ScriptedTenet::start().await;
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}/mcp");
    let _bridge = try_serve(
        &tenet,
        &format!("127.0.0.1:{port}"),
        OAuthOptions {
            public_url: public.clone(),
            ..oauth(&provider.issuer, Some(scope_map(SCOPES)))
        },
        None,
    )
    .await
    .expect("the bridge discovers oidc-provider");
    let issuer = provider.issuer.clone();
    let report = tokio::task::spawn_blocking(move || {
        python_oauth_client(
            &public,
            &issuer,
            ("ops-agent", "a-long-client-secret-2"),
            "tenet:read",
            &json!([
                {"name": "acme_items_get", "arguments": {"id": "i1"}},
                {"name": "acme_items_create", "arguments": {"name": "x"}},
            ]),
        )
    })
    .await
    .unwrap();
    assert!(report.get("fatal").is_none(), "{report}");
    assert!(
        report["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("acme_items_get")),
        "{report}"
    );
    assert_eq!(
        report["calls"][0]["structuredContent"]["status"], "executed",
        "{report}"
    );
    assert_eq!(
        report["calls"][1]["structuredContent"]["status"], "executed",
        "{report}"
    );
    // Every JWT starts with the base64 of `{"`: none reached Tenet.
    let agents = agents_seen_by_tenet(&tenet, &["eyJ"]);
    assert_eq!(
        agents,
        ["ops-agent", "ops-agent"],
        "the client's `sub` is its agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_tokens_are_checked_for_audience_and_scope() {
    let provider = OidcProvider::start(&json!({
        "clients": [{"client_id": "ops-agent", "client_secret": "a-long-client-secret-2", "scope": "tenet:read tenet:write"}],
        "scopes": ["tenet:read", "tenet:write"],
        "ttl": 300,
    }));
    let tenet = ScriptedTenet::start().await;
    let bridge = serve(&tenet, oauth(&provider.issuer, Some(scope_map(SCOPES)))).await;
    let client = ("ops-agent", "a-long-client-secret-2");

    let reader = provider.token(client, PUBLIC, "tenet:read").await;
    let refused = bridge
        .call_raw(&reader, "acme_items_create", json!({"name": "x"}))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let challenge = refused.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap();
    assert!(
        challenge.starts_with(r#"Bearer error="insufficient_scope", scope="tenet:write""#),
        "{challenge}"
    );
    let result = bridge
        .call(&reader, "acme_items_get", json!({"id": "1"}))
        .await;
    assert_eq!(result["status"], "executed", "{result}");

    let good = provider.token(client, PUBLIC, "tenet:write").await;
    let result = bridge
        .call(&good, "acme_items_create", json!({"name": "x"}))
        .await;
    assert_eq!(result["status"], "executed", "{result}");

    let other = provider
        .token(client, "https://other.example.test/mcp", "tenet:write")
        .await;
    let (status, challenge, body) = bridge.initialize(Some(&other)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("`aud`"),
        "{body}"
    );

    assert_eq!(
        agents_seen_by_tenet(&tenet, &[&reader, &good, &other]),
        ["ops-agent", "ops-agent"]
    );
}

// ---------------------------------------------------------------------------------
// Forged tokens against an issuer the test runs
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn tokens_signed_with_each_algorithm_are_accepted_and_the_claim_names_the_agent() {
    let keys = generate_keys(&["RS256", "ES256", "EdDSA"]);
    let issuer = Issuer::start(&keys.iter().collect::<Vec<_>>()).await;
    let tenet = ScriptedTenet::start().await;
    let bridge = serve(
        &tenet,
        OAuthOptions {
            agent_claim: "client_id".to_owned(),
            ..oauth(&issuer.url, None)
        },
    )
    .await;
    let mut tokens = Vec::new();
    for key in &keys {
        let agent = format!("agent-{:?}", key.alg);
        let token = sign(
            key,
            &issuer.claims("ignored-sub", json!({"client_id": agent})),
        );
        let result = bridge
            .call(&token, "acme_items_get", json!({"id": "1"}))
            .await;
        assert_eq!(result["status"], "executed", "{:?}: {result}", key.alg);
        tokens.push(token);
    }
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_eq!(
        agents_seen_by_tenet(&tenet, &tokens),
        ["agent-RS256", "agent-ES256", "agent-EdDSA"]
    );
    let no_claim = sign(&keys[0], &issuer.claims("s", json!({})));
    let (status, _, body) = bridge.initialize(Some(&no_claim)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("`client_id` claim"),
        "{body}"
    );
}

/// A bridge trusting an issuer the test runs, which publishes the first of fresh keys
/// of `algs` (the others are for rotation and forgeries); with a scopes map (TOML) if given.
struct Forging {
    keys: Vec<TestKey>,
    issuer: Issuer,
    tenet: ScriptedTenet,
    bridge: Bridge,
}

async fn forging(algs: &[&str], scopes: Option<&str>) -> Forging {
    let keys = generate_keys(algs);
    let issuer = Issuer::start(&[&keys[0]]).await;
    let tenet = ScriptedTenet::start().await;
    let bridge = serve(&tenet, oauth(&issuer.url, scopes.map(scope_map))).await;
    Forging {
        keys,
        issuer,
        tenet,
        bridge,
    }
}

#[tokio::test]
async fn without_a_token_the_challenge_names_the_resource_metadata() {
    let f = forging(&["RS256"], Some("\"tenet:read\" = { read_only = true }\n")).await;
    let metadata_url = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp";
    let (status, challenge, body) = f.bridge.initialize(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge,
        format!(r#"Bearer resource_metadata="{metadata_url}""#)
    );
    assert_eq!(body["error"], "unauthorized");

    let (status, challenge, body) = f.bridge.initialize(Some("not-a-jwt")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.starts_with(&format!(
            r#"Bearer resource_metadata="{metadata_url}", error="invalid_token""#
        )),
        "{challenge}"
    );
    assert_eq!(body["error"], "invalid_token");

    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let response = f
            .bridge
            .http
            .get(format!("{}{path}", f.bridge.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let document: Value = response.json().await.unwrap();
        assert_eq!(
            document,
            json!({
                "resource": PUBLIC,
                "authorization_servers": [f.issuer.url],
                "scopes_supported": ["tenet:read"],
                "bearer_methods_supported": ["header"],
                "resource_name": "tenet-mcp",
            })
        );
    }
    let response = f
        .bridge
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            f.bridge.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains(&f.issuer.url),
        "{body}"
    );
}

#[tokio::test]
async fn expired_early_wrong_audience_and_wrong_issuer_tokens_are_refused() {
    let f = forging(&["RS256"], None).await;
    let key = &f.keys[0];
    let cases = [
        (json!({"exp": now() - 120}), "expired"),
        (json!({"nbf": now() + 600}), "not valid yet"),
        (
            json!({"aud": "https://other.example.test/mcp"}),
            "`aud` does not name https://mcp.example.test/mcp",
        ),
        (json!({"iss": "https://evil.example.test"}), "not issued by"),
    ];
    let mut tokens = Vec::new();
    for (extra, needle) in cases {
        let token = sign(key, &f.issuer.claims("agent-x", extra.clone()));
        let (status, challenge, body) = f.bridge.initialize(Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{extra}");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{extra}: {message}");
        assert!(!message.contains(&token), "the token is never echoed");
        tokens.push(token);
    }
    let within_leeway = sign(key, &f.issuer.claims("agent-x", json!({"exp": now() - 5})));
    assert_eq!(
        f.bridge
            .call(&within_leeway, "acme_items_get", json!({"id": "1"}))
            .await["status"],
        "executed"
    );
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_eq!(agents_seen_by_tenet(&f.tenet, &tokens), ["agent-x"]);
}

#[tokio::test]
async fn algorithm_confusion_and_unsigned_tokens_are_refused() {
    let f = forging(&["RS256", "RS256"], None).await;
    let (published, unpublished) = (&f.keys[0], &f.keys[1]);
    let claims = f.issuer.claims("agent-x", json!({}));

    // HS256 keyed with the f.issuer's public key, which anyone can read.
    let hs256 = encode(
        &Header {
            kid: Some(published.kid.clone()),
            ..Header::new(Algorithm::HS256)
        },
        &claims,
        &EncodingKey::from_secret(published.public_pem.as_bytes()),
    )
    .unwrap();
    let none = raw_token(&json!({"alg": "none", "typ": "JWT"}), &claims, b"");
    let none_with_kid = raw_token(&json!({"alg": "none", "kid": published.kid}), &claims, b"");
    // The published kid on a token signed by another key.
    let mut stolen_kid = Header::new(Algorithm::RS256);
    stolen_kid.kid = Some(published.kid.clone());
    let wrong_key = encode(
        &stolen_kid,
        &claims,
        &EncodingKey::from_rsa_pem(unpublished.private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    for (name, token, needle) in [
        ("HS256 with the public key", &hs256, "HS256 are refused"),
        ("alg none", &none, "never `none`"),
        ("alg none with a kid", &none_with_kid, "never `none`"),
        (
            "another key under the published kid",
            &wrong_key,
            "signature does not verify",
        ),
    ] {
        let (status, challenge, body) = f.bridge.initialize(Some(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert!(challenge.contains(r#"error="invalid_token""#), "{name}");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{name}: {body}"
        );
    }
    assert!(f.tenet.requests().is_empty(), "nothing reached Tenet");
}

#[tokio::test]
async fn a_new_key_is_fetched_once_and_unknown_keys_do_not_refetch_at_will() {
    let f = forging(&["RS256", "ES256", "EdDSA"], None).await;
    assert_eq!(f.issuer.fetches(), 1, "the f.keys are fetched at start");
    let first = sign(&f.keys[0], &f.issuer.claims("agent-x", json!({})));
    assert_eq!(f.bridge.initialize(Some(&first)).await.0, StatusCode::OK);
    assert_eq!(f.issuer.fetches(), 1, "known f.keys are cached");

    // Rotation: the f.issuer publishes a new key and signs with it.
    f.issuer.publish(&f.keys[1]);
    let rotated = sign(&f.keys[1], &f.issuer.claims("agent-x", json!({})));
    let result = f
        .bridge
        .call(&rotated, "acme_items_get", json!({"id": "1"}))
        .await;
    assert_eq!(result["status"], "executed", "{result}");
    assert_eq!(f.issuer.fetches(), 2, "one refetch for the new kid");

    // Keys the f.issuer does not publish: no refetch within the interval, however many.
    for _ in 0..5 {
        let forged = sign(&f.keys[2], &f.issuer.claims("agent-x", json!({})));
        let (status, _, body) = f.bridge.initialize(Some(&forged)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("does not publish"),
            "{body}"
        );
    }
    assert_eq!(f.issuer.fetches(), 2, "refetches are rate-bounded");
}

#[tokio::test]
async fn when_the_keys_cannot_be_fetched_the_answer_is_503_never_a_pass() {
    let f = forging(&["RS256", "RS256"], None).await;
    f.issuer.failing.store(true, Ordering::SeqCst);
    f.issuer.publish(&f.keys[1]);
    let rotated = sign(&f.keys[1], &f.issuer.claims("agent-x", json!({})));
    let (status, _, body) = f.bridge.initialize(Some(&rotated)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "oauth_unavailable");
    assert_eq!(body["retry_after_header"], "30", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(&f.issuer.url),
        "{body}"
    );
    let response = f
        .bridge
        .call_raw(&rotated, "acme_items_get", json!({"id": "1"}))
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(f.tenet.requests().is_empty(), "nothing reached Tenet");
}

#[tokio::test]
async fn calls_outside_the_tokens_scopes_get_403_naming_the_scope_before_tenet() {
    let f = forging(&["ES256"], Some(ACME_SCOPES)).await;
    let reader = sign(
        &f.keys[0],
        &f.issuer
            .claims("reader", json!({"scope": "openid tenet:read"})),
    );
    let entra_style = sign(
        &f.keys[0],
        &f.issuer.claims("writer", json!({"scp": ["acme:write"]})),
    );

    let refused = f
        .bridge
        .call_raw(&reader, "acme_items_create", json!({"name": "x"}))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let challenge = refused.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(
            r#"Bearer error="insufficient_scope", scope="acme:write", resource_metadata=""#
        ),
        "{challenge}"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    // The legacy SSE transport's routes are guarded alike.
    let sse = |path: &str| format!("{}{path}", f.bridge.base);
    let open = f.bridge.http.get(sse("/sse")).send().await.unwrap();
    assert_eq!(open.status(), StatusCode::UNAUTHORIZED);
    assert!(
        open.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("resource_metadata=")
    );
    let message = f
        .bridge
        .http
        .post(sse("/message?sessionId=any"))
        .bearer_auth(&reader)
        .header(header::CONTENT_TYPE, "application/json")
        .body(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "acme_items_create", "arguments": {}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(message.status(), StatusCode::FORBIDDEN);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("needs the scope `acme:write`"),
        "{body}"
    );

    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "acme_items_delete", "arguments": {"id": "1"}}},
    ]);
    let refused = f.bridge.post(Some(&entra_style), &batch).await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "a batch is checked call by call"
    );
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no scope of this server allows"),
        "{body}"
    );

    let payments = f
        .bridge
        .call_raw(
            &entra_style,
            "acme_payments_create",
            json!({"amount": 1, "to": "x"}),
        )
        .await;
    assert_eq!(payments.status(), StatusCode::FORBIDDEN);

    assert_eq!(
        f.bridge
            .call(&reader, "acme_items_get", json!({"id": "1"}))
            .await["status"],
        "executed"
    );
    assert_eq!(
        f.bridge
            .call(&entra_style, "acme_items_create", json!({"name": "y"}))
            .await["status"],
        "executed"
    );
    assert_eq!(
        f.bridge
            .call(
                &reader,
                "tenet_job_status",
                json!({"job_ref": "jr_unknown"})
            )
            .await["status"],
        "error",
        "the f.bridge's own tools need no scope (the f.bridge answers, not the guard)"
    );
    assert_eq!(
        agents_seen_by_tenet(&f.tenet, &[&reader, &entra_style]),
        ["reader", "writer"]
    );
    assert!(f.tenet.executes_of("acme.items.delete").is_empty());
    assert!(f.tenet.executes_of("acme.payments.create").is_empty());
}

#[tokio::test]
async fn static_tokens_keep_working_beside_oauth() {
    let keys = generate_keys(&["RS256"]);
    let issuer = Issuer::start(&[&keys[0]]).await;
    let tenet = ScriptedTenet::start().await;
    let tokens = http_server::tokens_file();
    let bridge = try_serve(
        &tenet,
        "127.0.0.1:0",
        oauth(&issuer.url, None),
        Some(tokens.path().to_owned()),
    )
    .await
    .unwrap();
    let jwt = sign(&keys[0], &issuer.claims("oauth-agent", json!({})));
    assert_eq!(
        bridge
            .call(TOKEN_A, "acme_items_get", json!({"id": "1"}))
            .await["status"],
        "executed"
    );
    assert_eq!(
        bridge
            .call(&jwt, "acme_items_get", json!({"id": "2"}))
            .await["status"],
        "executed"
    );
    let (status, challenge, body) = bridge.initialize(Some("token-for-nobody-0123456789")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    assert!(
        body["message"].as_str().unwrap().contains("--auth-tokens"),
        "{body}"
    );
    assert_eq!(
        agents_seen_by_tenet(&tenet, &[TOKEN_A, &jwt]),
        ["agent-a", "oauth-agent"]
    );
}

#[tokio::test]
async fn an_unreachable_issuer_at_start_is_an_error_naming_it() {
    let tenet = ScriptedTenet::start().await;
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let error = try_serve(&tenet, "127.0.0.1:0", oauth(&unreachable, None), None)
        .await
        .err()
        .expect("the bridge does not start");
    assert!(
        error.0.contains(&format!("--oauth-issuer {unreachable}")),
        "{}",
        error.0
    );

    let keys = generate_keys(&["RS256"]);
    let issuer = Issuer::start(&[&keys[0]]).await;
    let misnamed = format!("{}/", issuer.url);
    let error = try_serve(&tenet, "127.0.0.1:0", oauth(&misnamed, None), None)
        .await
        .err()
        .expect("an issuer named otherwise than its metadata says is refused");
    assert!(error.0.contains("names issuer"), "{}", error.0);

    let error = try_serve(
        &tenet,
        "127.0.0.1:0",
        oauth("http://auth.example.test", None),
        None,
    )
    .await
    .err()
    .unwrap();
    assert!(error.0.contains("must be an https URL"), "{}", error.0);
}

/// `serve` wires the flags: OAuth agents are not limited by the `tools` lists of an
/// `--auth-tokens` file beside it (those name other agents), and the flags are HTTP-only.
#[tokio::test]
async fn serve_takes_the_oauth_flags_beside_a_tokens_file_with_tools_lists() {
    let keys = generate_keys(&["EdDSA"]);
    let issuer = Issuer::start(&[&keys[0]]).await;
    let tenet = ScriptedTenet::start().await;
    let tokens = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        tokens.path(),
        format!("[[tokens]]\ntoken = \"{TOKEN_A}\"\nagent_id = \"agent-a\"\ntools = [\"acme.items.get\"]\n"),
    )
    .unwrap();
    let server = http_server::Server::start(
        &tenet,
        &[
            "--auth-tokens",
            tokens.path().to_str().unwrap(),
            "--public-url",
            PUBLIC,
            "--oauth-issuer",
            &issuer.url,
        ],
    )
    .await;
    let bridge = Bridge {
        base: server.base.clone(),
        task: tokio::spawn(async {}),
        http: reqwest::Client::new(),
    };
    let jwt = sign(&keys[0], &issuer.claims("oauth-agent", json!({})));
    let created = bridge
        .call(&jwt, "acme_items_create", json!({"name": "x"}))
        .await;
    assert_eq!(created["status"], "executed", "{created}");
    assert_eq!(
        bridge.tool_names(TOKEN_A).await,
        ["tenet_job_status", "acme_items_get"],
        "the static token's list still limits its agent"
    );
    assert!(
        bridge
            .tool_names(&jwt)
            .await
            .contains(&"acme_items_delete".to_owned())
    );
    assert!(
        server
            .log()
            .contains(&format!("OAuth access tokens of {}", issuer.url)),
        "{}",
        server.log()
    );
    let expired = sign(
        &keys[0],
        &issuer.claims("oauth-agent", json!({"exp": now() - 600})),
    );
    assert_eq!(
        bridge.initialize(Some(&expired)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let log = server.log();
    assert!(log.contains("refused an unauthenticated request"), "{log}");
    for token in [TOKEN_A, &jwt, &expired] {
        assert!(!log.contains(token), "a token in the log: {log}");
    }
    assert_eq!(
        agents_seen_by_tenet(&tenet, &[TOKEN_A, &jwt]),
        ["oauth-agent"]
    );

    let dir = tempfile::tempdir().unwrap();
    let bad_map = dir.path().join("scopes.toml");
    std::fs::write(&bad_map, "\"tenet:read\" = [\"nothing.*\"]\n").unwrap();
    let bad_map = bad_map.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["--emulator"],
            "--public-url, --oauth-issuer apply to HTTP only",
        ),
        (
            vec![
                "--transport",
                "http",
                "--bind",
                "127.0.0.1:0",
                "--oauth-scopes-map",
                bad_map,
            ],
            "scope `tenet:read`: `nothing.*` match no tool",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
            .args([
                "serve",
                "--catalog",
                &fixture(),
                "--public-url",
                PUBLIC,
                "--oauth-issuer",
                &issuer.url,
            ])
            .args(args)
            .env("TENET_API_KEY", KEY)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{needle}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{stderr}");
    }
}

/// The README's scopes map loads over the repository's catalogs, and means what it says.
#[test]
fn the_readme_scopes_map_loads() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = &readme[readme
        .find("## OAuth 2.1 (hosted agent platforms)")
        .expect("the README has the OAuth section")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let text = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scopes.toml");
    std::fs::write(&path, text).unwrap();
    let catalog = Catalog::embedded().unwrap();
    let scopes = ScopeMap::load(&path, &catalog, &["tenet_job_status"], "tenet_call_tool")
        .unwrap_or_else(|error| panic!("{}", error.0));
    assert_eq!(
        scopes.names(),
        ["tenet:admin", "tenet:issues", "tenet:read"]
    );
}

#[tokio::test]
async fn tools_list_shows_each_token_only_the_tools_its_scopes_allow() {
    let f = forging(&["ES256"], Some(ACME_SCOPES)).await;
    let names = |tools: Vec<rmcp::model::Tool>| -> Vec<String> {
        let mut names: Vec<String> = tools.into_iter().map(|tool| tool.name.into()).collect();
        names.sort();
        names
    };
    let reader = sign(
        &f.keys[0],
        &f.issuer.claims("reader", json!({"scope": "tenet:read"})),
    );
    let client = f.bridge.client(&reader).await;
    assert_eq!(
        names(client.list_all_tools().await.unwrap()),
        ["acme_items_get", "tenet_job_status"]
    );
    client.cancel().await.unwrap();

    let writer = sign(
        &f.keys[0],
        &f.issuer.claims("writer", json!({"scope": "acme:write"})),
    );
    let client = f.bridge.client(&writer).await;
    assert_eq!(
        names(client.list_all_tools().await.unwrap()),
        [
            "acme_items_create",
            "acme_items_get",
            "acme_items_replace",
            "tenet_job_status"
        ]
    );
    client.cancel().await.unwrap();
}
