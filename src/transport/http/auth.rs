//! Who may call over HTTP: bearer tokens, the `Origin` and `Host` checks, and the body limit.
//!
//! [`Tokens`] is the `--auth-tokens` file: each token names the agent id its calls
//! carry to Tenet, and may limit the tools that agent sees and calls (a `tools` list). Only SHA-256 digests of the tokens are kept, compared in constant
//! time; tokens never reach logs, `Debug` output, or Tenet.
//!
//! [`guard`] is the middleware in front of every MCP route (both transports) and
//! `/metrics`. In order: `Host` (only when serving unauthenticated on loopback,
//! against DNS rebinding), `Origin` (browsers: must be allowed), `Authorization`
//! (when tokens are configured; the token's agent becomes the request's
//! [`AgentIdentity`]), then the body, buffered up to `--max-body` into a [`Body`].

use std::{fmt, path::Path, sync::Arc};

use axum::{
    body::{Body as AxumBody, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::{
    bridge::AgentIdentity,
    config::ConfigError,
    error::Rejection,
    selection::{AgentScopes, Rules},
    web::{addresses_loopback, bearer},
};

/// The shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// The bearer tokens of `--auth-tokens`: token → agent id, and each agent's tool list.
#[derive(Clone)]
pub struct Tokens {
    /// SHA-256 of each token and its agent id.
    entries: Vec<([u8; 32], String)>,
    /// The `tools` lists, by agent id.
    scopes: AgentScopes,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .field("agents", &self.agents())
            .finish()
    }
}

/// One entry of the `tokens` list.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    token: String,
    #[serde(alias = "agentId")]
    agent_id: String,
    /// Globs limiting the tools the agent sees and calls; none: every shown tool.
    #[serde(default)]
    tools: Option<Vec<String>>,
}

impl Tokens {
    /// Reads a tokens file, TOML or JSON (by extension, else by content), in either shape:
    ///
    /// ```toml
    /// [[tokens]]
    /// token = "a long random secret"
    /// agent_id = "langgraph-prod"
    /// tools = ["github.issues.*", "!github.repos.delete"]   # optional
    /// ```
    ///
    /// or a plain mapping of token to agent id (`"a long random secret" = "langgraph-prod"`,
    /// or `{"a long random secret": "langgraph-prod"}`). Warns when the file is readable
    /// by group or others.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let tokens = Self::read(path)?;
        warn_if_readable_by_others(path);
        Ok(tokens)
    }

    /// Reads a tokens file like [`Tokens::load`], without the permissions warning.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError(format!(
                "cannot read the --auth-tokens file {shown}: {error}"
            ))
        })?;
        let json = match path.extension().and_then(|ext| ext.to_str()) {
            Some("json") => true,
            Some("toml") => false,
            _ => text.trim_start().starts_with('{'),
        };
        let document: Value = if json {
            serde_json::from_str(&text).map_err(|error| {
                ConfigError(format!(
                    "{shown}: not valid JSON ({error}); see `tenet-mcp serve --help` for the format"
                ))
            })?
        } else {
            let parsed: toml::Value = toml::from_str(&text).map_err(|error| {
                ConfigError(format!(
                    "{shown}: not valid TOML ({error}); see `tenet-mcp serve --help` for the format"
                ))
            })?;
            serde_json::to_value(parsed)
                .map_err(|error| ConfigError(format!("{shown}: {error}")))?
        };
        Self::from_document(&document).map_err(|problem| ConfigError(format!("{shown}: {problem}")))
    }

    /// Reads the parsed file (either shape) and checks every entry.
    fn from_document(document: &Value) -> Result<Self, String> {
        let Value::Object(top) = document else {
            return Err("expected a `tokens` list or a table of token = agent id".into());
        };
        let entries: Vec<Entry> = match top.get("tokens") {
            Some(list @ Value::Array(_)) => serde_json::from_value(list.clone()).map_err(|error| {
                format!("each [[tokens]] entry needs `token` and `agent_id` (strings), may have `tools` (a list of globs), and nothing else: {error}")
            })?,
            _ => top
                .iter()
                .enumerate()
                .map(|(i, (token, agent))| match agent {
                    Value::String(agent) => Ok(Entry {
                        token: token.clone(),
                        agent_id: agent.clone(),
                        tools: None,
                    }),
                    _ => Err(format!(
                        "entry {}: the agent id must be a string (a mapping is token = \"agent id\"), or use a `tokens` list",
                        i + 1
                    )),
                })
                .collect::<Result<_, _>>()?,
        };
        if entries.is_empty() {
            return Err("no tokens: add at least one token = agent id".into());
        }
        let mut digests: Vec<([u8; 32], String)> = Vec::with_capacity(entries.len());
        let mut lists = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let n = i + 1;
            let token = entry.token.as_str();
            if token.is_empty() {
                return Err(format!("entry {n} has an empty token"));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "entry {n}: a token may hold only printable ASCII without spaces (it travels in an HTTP header)"
                ));
            }
            if token.len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "entry {n}: the token is {} characters; use at least {MIN_TOKEN_LEN} random ones (e.g. `openssl rand -hex 32`)",
                    token.len()
                ));
            }
            let agent = entry.agent_id.trim();
            if agent.is_empty() {
                return Err(format!("entry {n} has an empty agent_id"));
            }
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if let Some(first) = digests.iter().position(|(seen, _)| *seen == digest) {
                return Err(format!(
                    "entries {} and {n} have the same token; every token must be unique",
                    first + 1
                ));
            }
            let rules = entry
                .tools
                .as_deref()
                .map(|globs| match Rules::parse(globs) {
                    Ok(rules) if rules.is_empty() => Err(format!(
                        "entry {n}: `tools` is empty, which would show nothing: list globs such as \"github.issues.*\", or drop `tools` to show every tool"
                    )),
                    Ok(rules) => Ok(rules),
                    Err(problem) => Err(format!("entry {n}: tools: {problem}")),
                })
                .transpose()?;
            digests.push((digest, agent.to_owned()));
            lists.push((agent.to_owned(), rules));
        }
        Ok(Self {
            entries: digests,
            scopes: AgentScopes::new(lists)?,
        })
    }

    /// What each agent may see and call.
    pub fn scopes(&self) -> AgentScopes {
        self.scopes.clone()
    }

    /// The agent of `token`, compared against every entry in constant time.
    pub fn agent_for(&self, token: &str) -> Option<&str> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = u64::MAX;
        for (i, (digest, _)) in self.entries.iter().enumerate() {
            let i = i as u64;
            found = u64::conditional_select(&found, &i, digest.ct_eq(&presented));
        }
        usize::try_from(found)
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, agent)| agent.as_str())
    }

    /// The distinct agent ids, sorted.
    pub fn agents(&self) -> Vec<&str> {
        let mut agents: Vec<&str> = self
            .entries
            .iter()
            .map(|(_, agent)| agent.as_str())
            .collect();
        agents.sort_unstable();
        agents.dedup();
        agents
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none (never true for a loaded file).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "tenet-mcp: warning: the --auth-tokens file {} is readable by group or others (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// An allowed browser origin: scheme, host and port (`None`: any port).
#[derive(Clone, Debug, PartialEq, Eq)]
enum OriginRule {
    /// The literal `null` origin (sandboxed frames, `file:` pages).
    Null,
    /// A scheme, host and port.
    Site {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
}

/// The `Origin`s browsers may send (`--allowed-origin`; default: loopback origins).
#[derive(Clone, Debug)]
pub struct Origins(Vec<OriginRule>);

impl Origins {
    /// Loopback origins over http and https, any port.
    pub fn loopback() -> Self {
        let mut rules = Vec::new();
        for scheme in ["http", "https"] {
            for host in ["localhost", "127.0.0.1", "[::1]"] {
                rules.push(OriginRule::Site {
                    scheme: scheme.into(),
                    host: host.into(),
                    port: None,
                });
            }
        }
        Self(rules)
    }

    /// Parses `--allowed-origin` values: `https://app.example.com`, `http://localhost:6274`,
    /// `http://localhost:*` (any port) or `null`.
    pub fn parse(values: &[String]) -> Result<Self, ConfigError> {
        values
            .iter()
            .map(|value| {
                parse_origin_rule(value).ok_or_else(|| {
                    ConfigError(format!(
                        "--allowed-origin `{value}` is not an origin: write scheme://host[:port], e.g. https://app.example.com or http://localhost:* for any port"
                    ))
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether a request's `Origin` header value is allowed.
    fn allows(&self, origin: &str) -> bool {
        let Some(origin) = parse_origin(origin) else {
            return false;
        };
        self.0.iter().any(|rule| match (rule, &origin) {
            (OriginRule::Null, OriginRule::Null) => true,
            (
                OriginRule::Site { scheme, host, port },
                OriginRule::Site {
                    scheme: s,
                    host: h,
                    port: p,
                },
            ) => scheme == s && host == h && (port.is_none() || port == p),
            _ => false,
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// A browser's `Origin` value: `null`, or scheme://host[:port] (port filled in from the scheme).
fn parse_origin(value: &str) -> Option<OriginRule> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("null") {
        return Some(OriginRule::Null);
    }
    let uri: Uri = value.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    if uri.path() != "/" && !uri.path().is_empty()
        || uri.query().is_some()
        || authority.as_str().contains('@')
    {
        return None;
    }
    let port = authority.port_u16().or_else(|| default_port(&scheme))?;
    Some(OriginRule::Site {
        host: authority.host().to_ascii_lowercase(),
        scheme,
        port: Some(port),
    })
}

/// An `--allowed-origin` value: like [`parse_origin`], and `:*` for any port.
fn parse_origin_rule(value: &str) -> Option<OriginRule> {
    let value = value.trim().trim_end_matches('/');
    match value.strip_suffix(":*") {
        Some(base) => match parse_origin(base)? {
            OriginRule::Site { scheme, host, .. } => Some(OriginRule::Site {
                scheme,
                host,
                port: None,
            }),
            OriginRule::Null => None,
        },
        None => parse_origin(value),
    }
}

/// A request body buffered by [`guard`] (empty for GET).
#[derive(Clone, Debug, Default)]
pub struct Body(pub Bytes);

/// What [`guard`] enforces.
#[derive(Debug)]
pub struct Policy {
    /// The tokens; `None` serves without authentication.
    pub tokens: Option<Tokens>,
    /// Allowed browser origins.
    pub origins: Origins,
    /// Only loopback `Host` names (serving unauthenticated on a loopback bind).
    pub loopback_hosts_only: bool,
    /// The largest request body, in bytes.
    pub max_body: usize,
}

/// A JSON-RPC error response with HTTP `status`.
pub fn jsonrpc_error(
    status: StatusCode,
    id: Value,
    code: i32,
    message: impl Into<String>,
) -> Response {
    (
        status,
        axum::Json(
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}}),
        ),
    )
        .into_response()
}

/// The middleware in front of every MCP route and `/metrics`.
pub async fn guard(State(policy): State<Arc<Policy>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    if policy.loopback_hosts_only && !addresses_loopback(&parts.uri, &parts.headers) {
        let hosts = crate::web::addressed_hosts(&parts.uri, &parts.headers).join(", ");
        tracing::warn!(host = %hosts.chars().take(200).collect::<String>(), "refused a request for a non-loopback Host (possible DNS rebinding)");
        return Rejection::new(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            "this server is bound to loopback and serves only Host localhost, 127.0.0.1 or [::1]; to serve other names, use --auth-tokens",
        )
        .counted()
        .into_response();
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN)
        && !origin
            .to_str()
            .is_ok_and(|origin| policy.origins.allows(origin))
    {
        let shown = origin
            .to_str()
            .unwrap_or("(not text)")
            .chars()
            .take(200)
            .collect::<String>();
        tracing::warn!(origin = %shown, "refused a request from a browser origin that is not allowed");
        return Rejection::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            format!(
                "Origin {shown} is not allowed; the server's operator can allow it with --allowed-origin"
            ),
        )
        .counted()
        .into_response();
    }
    if let Some(tokens) = &policy.tokens {
        match bearer(&parts.headers).map(|token| tokens.agent_for(token)) {
            Some(Some(agent)) => {
                parts.extensions.insert(AgentIdentity(agent.to_owned()));
            }
            presented => {
                let challenge = if presented.is_some() {
                    r#"Bearer realm="tenet-mcp", error="invalid_token""#
                } else {
                    r#"Bearer realm="tenet-mcp""#
                };
                tracing::info!(token_presented = presented.is_some(), path = %parts.uri.path(), "refused an unauthenticated request");
                return Rejection::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send `Authorization: Bearer <token>` with a token from this server's --auth-tokens file",
                )
                .counted()
                .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge))
                .into_response();
            }
        }
    }
    let buffered = if parts.method == Method::GET
        || parts.method == Method::HEAD
        || parts.method == Method::DELETE
    {
        Bytes::new()
    } else {
        match read_body(&parts.headers, body, policy.max_body).await {
            Ok(bytes) => bytes,
            Err(response) => return response,
        }
    };
    parts.extensions.insert(Body(buffered.clone()));
    next.run(Request::from_parts(parts, AxumBody::from(buffered)))
        .await
}

fn too_large(max: usize) -> Response {
    Rejection::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body exceeds this server's limit of {max} bytes (--max-body)"),
    )
    .counted()
    .into_response()
}

/// Reads a body of at most `max` bytes.
async fn read_body(headers: &HeaderMap, body: AxumBody, max: usize) -> Result<Bytes, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return Err(too_large(max));
    }
    let mut collected = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            Rejection::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("the request body could not be read: {error}"),
            )
            .into_response()
        })?;
        if collected.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_both_shapes_and_formats() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("tokens.toml");
        std::fs::write(
            &toml_path,
            "[[tokens]]\ntoken = \"0123456789abcdef-one\"\nagent_id = \"agent-one\"\n\n[[tokens]]\ntoken = \"0123456789abcdef-two\"\nagentId = \"agent-two\"\n",
        )
        .unwrap();
        let tokens = Tokens::load(&toml_path).unwrap();
        assert_eq!(tokens.agent_for("0123456789abcdef-one"), Some("agent-one"));
        assert_eq!(tokens.agent_for("0123456789abcdef-two"), Some("agent-two"));
        assert_eq!(tokens.agent_for("0123456789abcdef-thr"), None);
        assert_eq!(tokens.agent_for(""), None);
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");

        let json_path = dir.path().join("tokens");
        std::fs::write(&json_path, r#"{"0123456789abcdef-map": "mapped"}"#).unwrap();
        assert_eq!(
            Tokens::load(&json_path)
                .unwrap()
                .agent_for("0123456789abcdef-map"),
            Some("mapped")
        );
    }

    #[test]
    fn bad_token_files_name_the_file_and_never_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let cases = [
            ("", "no tokens"),
            (
                "[[tokens]]\ntoken = \"\"\nagent_id = \"a\"\n",
                "entry 1 has an empty token",
            ),
            (
                "[[tokens]]\ntoken = \"short-secret\"\nagent_id = \"a\"\n",
                "at least 16",
            ),
            (
                "[[tokens]]\ntoken = \"0123456789abcdef-dup\"\nagent_id = \"a\"\n[[tokens]]\ntoken = \"0123456789abcdef-dup\"\nagent_id = \"b\"\n",
                "entries 1 and 2 have the same token",
            ),
            (
                "[[tokens]]\ntoken = \"0123456789abcdef-x\"\nagent_id = \" \"\n",
                "empty agent_id",
            ),
            (
                "[[tokens]]\ntoken = \"0123456789abcdef x\"\nagent_id = \"a\"\n",
                "without spaces",
            ),
            (
                "[[tokens]]\ntoken = \"0123456789abcdef-y\"\nagent = \"a\"\n",
                "nothing else",
            ),
            ("tokens = [", "not valid TOML"),
        ];
        for (text, needle) in cases {
            std::fs::write(&path, text).unwrap();
            let error = Tokens::load(&path).unwrap_err().0;
            assert!(
                error.contains("t.toml") && error.contains(needle),
                "{text:?}: {error}"
            );
            assert!(!error.contains("0123456789abcdef"), "{error}");
        }
        let missing = Tokens::load(&dir.path().join("missing.toml"))
            .unwrap_err()
            .0;
        assert!(
            missing.contains("cannot read the --auth-tokens file"),
            "{missing}"
        );
    }

    #[test]
    fn tools_lists_limit_their_agent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            "[[tokens]]\ntoken = \"0123456789abcdef-one\"\nagent_id = \"one\"\ntools = [\"github.issues.*\", \"!github.issues.delete\"]\n\n\
             [[tokens]]\ntoken = \"0123456789abcdef-two\"\nagent_id = \"two\"\n",
        )
        .unwrap();
        let scopes = Tokens::load(&path).unwrap().scopes();
        assert!(scopes.allows("one", "github.issues.get"));
        assert!(!scopes.allows("one", "github.issues.delete"));
        assert!(!scopes.allows("one", "github.repos.get"));
        assert!(scopes.allows("two", "github.repos.get"));

        std::fs::write(
            &path,
            "[[tokens]]\ntoken = \"0123456789abcdef-one\"\nagent_id = \"same\"\ntools = [\"a.*\"]\n\n\
             [[tokens]]\ntoken = \"0123456789abcdef-two\"\nagent_id = \"same\"\n",
        )
        .unwrap();
        let error = Tokens::load(&path).unwrap_err().0;
        assert!(
            error.contains("the tokens of agent `same` have different `tools` lists"),
            "{error}"
        );
        assert!(!error.contains("0123456789abcdef"), "{error}");
    }

    #[test]
    fn origins() {
        let loopback = Origins::loopback();
        assert!(loopback.allows("http://localhost:6274"));
        assert!(loopback.allows("https://127.0.0.1"));
        assert!(loopback.allows("http://[::1]:3000"));
        assert!(!loopback.allows("https://evil.example"));
        assert!(!loopback.allows("http://localhost.evil.example"));
        assert!(!loopback.allows("null"));
        assert!(!loopback.allows("not an origin"));

        let configured = Origins::parse(&[
            "https://App.Example.com/".into(),
            "http://localhost:*".into(),
            "null".into(),
        ])
        .unwrap();
        assert!(configured.allows("https://app.example.com"));
        assert!(configured.allows("https://app.example.com:443"));
        assert!(!configured.allows("https://app.example.com:8443"));
        assert!(!configured.allows("http://app.example.com"));
        assert!(configured.allows("http://localhost:1234"));
        assert!(configured.allows("null"));
        assert!(!configured.allows("http://127.0.0.1:1234"));
        for bad in [
            "app.example.com",
            "https://",
            "https://a.example/path",
            "null:*",
        ] {
            assert!(Origins::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
