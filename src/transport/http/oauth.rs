//! OAuth 2.1 resource server, as the MCP authorization specification (2025-11-25)
//! describes it: `serve --transport http --public-url URL --oauth-issuer URL`.
//!
//! - `/.well-known/oauth-protected-resource` (RFC 9728, also with a path suffix such as
//!   `/mcp`) names this server's resource, its authorization server and scopes.
//! - A request without a valid token gets 401 with
//!   `WWW-Authenticate: Bearer resource_metadata="…"` (and `error="invalid_token"` when a
//!   token was presented); an unreachable key set gets 503 with `Retry-After`.
//! - Access tokens are JWTs checked against the issuer's keys (`oauth_keys.rs`); the agent id is
//!   a claim (default `sub`).
//! - With `--oauth-scopes-map`, a token's scopes choose the tools it may call ([`ScopeMap`]):
//!   a `tools/call` outside them gets 403 `insufficient_scope` naming the scopes that
//!   would allow it, before the bridge (or Tenet) sees it.
//!
//! Static `--auth-tokens` keep working alongside. Tokens are never passed on to Tenet.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use clap::Args;
use reqwest::Url;
use serde_json::{Value, json};

use super::oauth_keys::Verifier;
pub use super::oauth_keys::{Claims, TokenError};
use super::{auth::read_config_file, oauth_keys::checked_url};
use crate::{catalog::Catalog, config::ConfigError, error::Rejection, selection::Rules};

/// The default `--oauth-agent-claim`.
pub const DEFAULT_AGENT_CLAIM: &str = "sub";
/// Seconds a client is told to wait when the issuer's keys cannot be fetched.
pub const RETRY_AFTER_SECS: u64 = 30;
/// The RFC 9728 metadata path.
const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The OAuth flags of `serve`.
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "OAuth 2.1 (--transport http or sse)")]
pub struct OAuthArgs {
    /// The URL clients use to reach this server (e.g. `https://mcp.example.com/mcp`): the
    /// resource its OAuth metadata names and, unless --oauth-audience says otherwise,
    /// the audience its tokens must carry.
    #[arg(long, value_name = "URL", requires = "oauth_issuer")]
    pub public_url: Option<String>,
    /// Accept access tokens (JWTs) of this OAuth authorization server, exactly as its
    /// tokens' `iss` claim names it (e.g. `https://auth.example.com/realms/main`). Its
    /// keys are found through its metadata at start.
    #[arg(
        long,
        value_name = "URL",
        requires = "public_url",
        conflicts_with = "allow_unauthenticated"
    )]
    pub oauth_issuer: Option<String>,
    /// The audience (`aud`) tokens must name [default: --public-url].
    #[arg(long, value_name = "AUD", requires = "oauth_issuer")]
    pub oauth_audience: Option<String>,
    /// The token claim whose value is the agent id sent to Tenet [default: sub].
    #[arg(long, value_name = "CLAIM", requires = "oauth_issuer")]
    pub oauth_agent_claim: Option<String>,
    /// A TOML or JSON file mapping each scope to the tools it allows, as tool globs
    /// (`"tenet:read" = { tools = ["*"], read_only = true }`, `"tenet:issues" =
    /// ["github.issues.*"]`). Without it, a valid token may call every shown tool.
    #[arg(long, value_name = "FILE", requires = "oauth_issuer")]
    pub oauth_scopes_map: Option<PathBuf>,
}

impl OAuthArgs {
    /// The flags given, by name (they apply to HTTP only).
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("--public-url", self.public_url.is_some()),
            ("--oauth-issuer", self.oauth_issuer.is_some()),
            ("--oauth-audience", self.oauth_audience.is_some()),
            ("--oauth-agent-claim", self.oauth_agent_claim.is_some()),
            ("--oauth-scopes-map", self.oauth_scopes_map.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }

    /// The OAuth options, with the scopes map checked against `catalog`; `None` without
    /// `--oauth-issuer`. `bridge_tools` are the bridge's own tools every token may call;
    /// `call_tool` is the one that calls the catalog tool its `name` argument names.
    pub fn options(
        &self,
        catalog: &Catalog,
        bridge_tools: &[&str],
        call_tool: &str,
    ) -> Result<Option<OAuthOptions>, ConfigError> {
        let (Some(public_url), Some(issuer)) = (&self.public_url, &self.oauth_issuer) else {
            return Ok(None);
        };
        let scopes = self
            .oauth_scopes_map
            .as_deref()
            .map(|path| ScopeMap::load(path, catalog, bridge_tools, call_tool))
            .transpose()?;
        Ok(Some(OAuthOptions {
            public_url: public_url.clone(),
            issuer: issuer.clone(),
            audience: self.oauth_audience.clone(),
            agent_claim: self
                .oauth_agent_claim
                .clone()
                .unwrap_or_else(|| DEFAULT_AGENT_CLAIM.to_owned()),
            scopes,
        }))
    }
}

/// What the OAuth flags ask for, the scopes map already read.
#[derive(Clone, Debug)]
pub struct OAuthOptions {
    /// `--public-url`: this server's resource identifier.
    pub public_url: String,
    /// `--oauth-issuer`.
    pub issuer: String,
    /// `--oauth-audience`; `None`: the public URL.
    pub audience: Option<String>,
    /// `--oauth-agent-claim`.
    pub agent_claim: String,
    /// `--oauth-scopes-map`; `None`: any valid token may call every shown tool.
    pub scopes: Option<ScopeMap>,
}

/// An OAuth resource server: the checked options and the issuer's keys.
#[derive(Debug)]
pub struct OAuth {
    resource: String,
    metadata_url: String,
    verifier: Verifier,
    scopes: Option<ScopeMap>,
}

impl OAuth {
    /// Checks the options and fetches the issuer's metadata and keys; an unreachable
    /// issuer is an error naming it.
    pub async fn start(options: OAuthOptions) -> Result<Self, ConfigError> {
        let public = checked_url(&options.public_url, "--public-url")?;
        if public.query().is_some() || public.fragment().is_some() {
            return Err(ConfigError(format!(
                "--public-url `{}` must not have a query or fragment: give the URL clients connect to, e.g. https://mcp.example.com/mcp",
                options.public_url
            )));
        }
        let claim = options.agent_claim.trim();
        if claim.is_empty() {
            return Err(ConfigError(
                "--oauth-agent-claim is empty: name a claim such as sub, client_id or azp".into(),
            ));
        }
        let audience = options
            .audience
            .clone()
            .unwrap_or_else(|| options.public_url.clone());
        let verifier = Verifier::discover(&options.issuer, &audience, claim).await?;
        Ok(Self {
            metadata_url: metadata_url(&public),
            resource: options.public_url,
            verifier,
            scopes: options.scopes,
        })
    }

    /// The issuer whose tokens are accepted.
    pub fn issuer(&self) -> &str {
        self.verifier.issuer()
    }

    /// The audience tokens must name.
    pub fn audience(&self) -> &str {
        self.verifier.audience()
    }

    /// Checks a bearer token.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verifier.verify(token).await
    }

    /// The RFC 9728 metadata document.
    fn metadata(&self) -> Value {
        let mut document = json!({
            "resource": self.resource,
            "authorization_servers": [self.verifier.issuer()],
            "bearer_methods_supported": ["header"],
            "resource_name": "tenet-mcp",
        });
        if let Some(scopes) = &self.scopes {
            document["scopes_supported"] = json!(scopes.names());
        }
        document
    }

    /// The `WWW-Authenticate` value of a 401; `problem` when a token was presented.
    pub(crate) fn challenge(&self, problem: Option<&str>) -> HeaderValue {
        let mut value = format!(
            r#"Bearer resource_metadata="{}""#,
            quoted(&self.metadata_url)
        );
        if let Some(problem) = problem {
            value.push_str(&format!(
                r#", error="invalid_token", error_description="{}""#,
                quoted(problem)
            ));
        }
        header_value(value)
    }

    /// The refusal of a request without a valid token, or whose token cannot be checked now.
    pub(crate) fn refusal(&self, error: Option<&TokenError>, static_tokens: bool) -> Rejection {
        let how = format!(
            "send `Authorization: Bearer <token>` with an access token of {} for {}{}",
            self.issuer(),
            self.audience(),
            if static_tokens {
                " (or a token from this server's --auth-tokens file)"
            } else {
                ""
            }
        );
        match error {
            None => Rejection::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!("{how}; see {}", self.metadata_url),
            )
            .counted()
            .with_header(header::WWW_AUTHENTICATE, self.challenge(None)),
            Some(TokenError::Invalid(problem)) => Rejection::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                format!("{problem}; {how}"),
            )
            .counted()
            .with_header(header::WWW_AUTHENTICATE, self.challenge(Some(problem))),
            Some(TokenError::Unavailable(problem)) => Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "oauth_unavailable",
                problem.clone(),
            )
            .counted()
            .with_header(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS)),
        }
    }

    /// The tools `claims` may call: `None` when every shown tool is allowed (no scopes map).
    pub fn grant(&self, claims: &Claims) -> Option<Grant> {
        let scopes = self.scopes.as_ref()?;
        Some(Grant {
            scopes: claims.scopes.clone(),
            tools: scopes.tools_of(&claims.scopes),
        })
    }

    /// The refusal of the first `tools/call` in a JSON-RPC `body` (a message or a batch)
    /// that `grant` does not allow, if any.
    pub(crate) fn check_calls(&self, grant: &Grant, body: &[u8]) -> Option<Rejection> {
        let scopes = self.scopes.as_ref()?;
        let (name, target) = scopes.first_refused(grant, body)?;
        Some(self.insufficient(scopes, grant, &name, target))
    }

    /// The 403 for a call of `name` (catalog tool `target`) that `grant` does not allow.
    fn insufficient(
        &self,
        scopes: &ScopeMap,
        grant: &Grant,
        name: &str,
        target: Option<&str>,
    ) -> Rejection {
        let shown: String = name.chars().take(200).collect();
        let needed = target.map(|tool| scopes.granting(tool)).unwrap_or_default();
        let held = if grant.scopes.is_empty() {
            "none".to_owned()
        } else {
            grant.scopes.join(" ")
        };
        let message = if needed.is_empty() {
            format!(
                "no scope of this server allows the tool `{shown}` (this token's scopes: {held})"
            )
        } else {
            format!(
                "the tool `{shown}` needs the scope {} (this token's scopes: {held}): get a token with it",
                needed
                    .iter()
                    .map(|scope| format!("`{scope}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        };
        tracing::info!(tool = %shown, needed = %needed.join(" "), "refused a call outside the token's scopes");
        let mut challenge = String::from(r#"Bearer error="insufficient_scope""#);
        if !needed.is_empty() {
            challenge.push_str(&format!(r#", scope="{}""#, quoted(&needed.join(" "))));
        }
        challenge.push_str(&format!(
            r#", resource_metadata="{}", error_description="{}""#,
            quoted(&self.metadata_url),
            quoted(&message)
        ));
        Rejection::new(StatusCode::FORBIDDEN, "insufficient_scope", message)
            .counted()
            .with_header(header::WWW_AUTHENTICATE, header_value(challenge))
    }

    /// The metadata routes: the RFC 9728 path, alone and with any suffix (clients try
    /// `/.well-known/oauth-protected-resource/mcp` for `/mcp`). Readable cross-origin.
    pub(crate) fn routes(self: &Arc<Self>) -> Router {
        let document = self.metadata();
        let serve = move || {
            let document = document.clone();
            async move {
                (
                    [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
                    axum::Json(document),
                )
                    .into_response()
            }
        };
        Router::new()
            .route(METADATA_PATH, get(serve.clone()))
            .route(&format!("{METADATA_PATH}/{{*suffix}}"), get(serve))
    }

    /// The 404 of OAuth discovery paths this server does not serve: its clients
    /// register and get tokens at the authorization server.
    pub(crate) fn not_here(&self) -> Response {
        Rejection::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "this MCP server is an OAuth resource server: get tokens from its authorization server {} \
                 (metadata at {})",
                self.issuer(),
                self.metadata_url
            ),
        )
        .into_response()
    }
}

/// The tools one token may call, and its scopes (to say what it lacks).
#[derive(Clone, Debug)]
pub struct Grant {
    scopes: Vec<String>,
    tools: BTreeSet<String>,
}

impl Grant {
    /// What the bridge shows this token: the tools it may call.
    pub(crate) fn tool_grant(&self) -> crate::bridge::ToolGrant {
        crate::bridge::ToolGrant(std::sync::Arc::new(self.tools.clone()))
    }
}

/// `--oauth-scopes-map`: each scope's tools, resolved against the catalog served at
/// start. Tools a later catalog reload adds are in no scope until a restart.
#[derive(Clone, Debug)]
pub struct ScopeMap {
    /// Scope → the catalog names it allows.
    by_scope: BTreeMap<String, BTreeSet<String>>,
    /// MCP name → catalog name.
    by_mcp_name: HashMap<String, String>,
    /// Catalog names.
    names: BTreeSet<String>,
    /// The bridge's own tools, allowed to every token.
    bridge_tools: BTreeSet<String>,
    /// The bridge tool that calls the catalog tool named by its `name` argument.
    call_tool: String,
}

/// One scope's entry: a list of globs, or a table.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Entry {
    Globs(Vec<String>),
    Table(Table),
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[serde(default)]
    tools: Option<Vec<String>>,
    #[serde(default)]
    read_only: bool,
}

impl ScopeMap {
    /// Reads a scopes map (TOML or JSON): each scope names a list of tool globs, or a
    /// table with `tools` (globs; default all) and `read_only` (only GET and HEAD tools).
    /// Every glob must match a tool of `catalog`.
    pub fn load(
        path: &Path,
        catalog: &Catalog,
        bridge_tools: &[&str],
        call_tool: &str,
    ) -> Result<Self, ConfigError> {
        let shown = path.display();
        let document = read_config_file(path, "--oauth-scopes-map")?;
        let problem = |text: String| ConfigError(format!("{shown}: {text}"));
        let Value::Object(entries) = document else {
            return Err(problem("expected a table of scope = [tool globs]".into()));
        };
        if entries.is_empty() {
            return Err(problem(
                "no scopes: map at least one scope to tool globs".into(),
            ));
        }
        let mut by_scope = BTreeMap::new();
        for (scope, entry) in entries {
            if scope.is_empty()
                || !scope
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            {
                return Err(problem(format!(
                    "`{scope}` is not a scope: a scope is printable ASCII without spaces, quotes or backslashes"
                )));
            }
            let entry: Entry = serde_json::from_value(entry).map_err(|_| {
                problem(format!(
                    "scope `{scope}`: give a list of tool globs, or a table with `tools` (globs) and `read_only` (true or false)"
                ))
            })?;
            let (globs, read_only) = match entry {
                Entry::Globs(globs) => (Some(globs), false),
                Entry::Table(table) => (table.tools, table.read_only),
            };
            let rules = match globs {
                Some(globs) if globs.is_empty() => {
                    return Err(problem(format!(
                        "scope `{scope}`: the tool list is empty, which would allow nothing; list globs such as \"github.issues.*\""
                    )));
                }
                Some(globs) => Rules::parse(&globs)
                    .map_err(|text| problem(format!("scope `{scope}`: {text}")))?,
                None => Rules::default(),
            };
            let unmatched = rules.unmatched(catalog);
            if !unmatched.is_empty() {
                return Err(problem(format!(
                    "scope `{scope}`: {} match no tool of the catalog; fix or drop them (`tenet-mcp catalog list --toolsets all` lists every name)",
                    unmatched
                        .iter()
                        .map(|glob| format!("`{glob}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let tools = catalog
                .tools()
                .iter()
                .filter(|tool| rules.allows(&tool.name))
                .filter(|tool| !read_only || tool.method.is_read_only())
                .map(|tool| tool.name.clone())
                .collect();
            by_scope.insert(scope, tools);
        }
        Ok(Self {
            by_scope,
            by_mcp_name: catalog
                .tools()
                .iter()
                .map(|tool| (tool.mcp_name.clone(), tool.name.clone()))
                .collect(),
            names: catalog
                .tools()
                .iter()
                .map(|tool| tool.name.clone())
                .collect(),
            bridge_tools: bridge_tools.iter().map(|name| (*name).to_owned()).collect(),
            call_tool: call_tool.to_owned(),
        })
    }

    /// The first `tools/call` in a JSON-RPC `body` (a message or a batch) that `grant`
    /// does not allow: the name it calls, and the catalog tool that stands for, if any.
    /// A body that is not JSON, and calls without a name, are left to the bridge.
    fn first_refused(&self, grant: &Grant, body: &[u8]) -> Option<(String, Option<&str>)> {
        let messages = match serde_json::from_slice::<Value>(body).ok()? {
            Value::Array(batch) => batch,
            message => vec![message],
        };
        messages.iter().find_map(|message| {
            if message.get("method").and_then(Value::as_str) != Some("tools/call") {
                return None;
            }
            let params = message.get("params")?;
            let name = params.get("name").and_then(Value::as_str)?;
            let target = if name == self.call_tool {
                let named = params.get("arguments")?.get("name")?.as_str()?;
                self.resolve(named, true)
            } else if self.bridge_tools.contains(name) {
                return None;
            } else {
                self.resolve(name, false)
            };
            match target {
                Some(tool) if grant.tools.contains(tool) => None,
                _ => Some((name.to_owned(), target)),
            }
        })
    }

    /// The scopes, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.by_scope.keys().map(String::as_str).collect()
    }

    /// The catalog names the tools of `scopes` allow together.
    fn tools_of(&self, scopes: &[String]) -> BTreeSet<String> {
        scopes
            .iter()
            .filter_map(|scope| self.by_scope.get(scope))
            .flatten()
            .cloned()
            .collect()
    }

    /// The scopes that allow the tool named `tool` (a catalog name).
    fn granting(&self, tool: &str) -> Vec<&str> {
        self.by_scope
            .iter()
            .filter(|(_, tools)| tools.contains(tool))
            .map(|(scope, _)| scope.as_str())
            .collect()
    }

    /// The catalog name of the tool called `name` (its MCP name; with `catalog_names`,
    /// its catalog name too), if the catalog has it.
    fn resolve(&self, name: &str, catalog_names: bool) -> Option<&str> {
        match self.by_mcp_name.get(name) {
            Some(catalog_name) => Some(catalog_name),
            None if catalog_names => self.names.get(name).map(String::as_str),
            None => None,
        }
    }
}

/// The RFC 9728 metadata URL of resource `public`: the well-known path inserted
/// between its origin and its path.
fn metadata_url(public: &Url) -> String {
    let mut url = public.clone();
    let path = public.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{METADATA_PATH}{path}"));
    url.to_string()
}

/// `text` made safe inside a quoted-string of an HTTP header.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

/// A header value of text that [`quoted`] made printable ASCII.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::load(&[PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/acme.json"
        ))])
        .unwrap()
    }

    fn map(text: &str) -> Result<ScopeMap, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scopes.toml");
        std::fs::write(&path, text).unwrap();
        ScopeMap::load(&path, &catalog(), &["tenet_job_status"], "tenet_call_tool")
    }

    #[test]
    fn scopes_map_globs_and_read_only() {
        let scopes = map(
            "\"tenet:read\" = { read_only = true }\n\"acme:write\" = [\"acme.items.*\", \"!acme.items.delete\"]\n",
        )
        .unwrap();
        assert_eq!(scopes.names(), ["acme:write", "tenet:read"]);
        let read = scopes.tools_of(&["tenet:read".into()]);
        assert_eq!(read.into_iter().collect::<Vec<_>>(), ["acme.items.get"]);
        let both = scopes.tools_of(&["tenet:read".into(), "acme:write".into(), "other".into()]);
        assert!(both.contains("acme.items.create") && !both.contains("acme.items.delete"));
        assert_eq!(
            scopes.granting("acme.items.get"),
            ["acme:write", "tenet:read"]
        );
        assert_eq!(
            scopes.resolve("acme_items_get", false),
            Some("acme.items.get")
        );
        assert_eq!(scopes.resolve("acme.items.get", false), None);
        assert_eq!(
            scopes.resolve("acme.items.get", true),
            Some("acme.items.get")
        );
    }

    #[test]
    fn calls_are_checked_in_batches_and_through_the_call_tool() {
        let scopes =
            map("\"read\" = { read_only = true }\n\"write\" = [\"acme.items.create\"]\n").unwrap();
        let grant = Grant {
            scopes: vec!["read".into()],
            tools: scopes.tools_of(&["read".into()]),
        };
        let refused = |body: Value| {
            scopes
                .first_refused(&grant, body.to_string().as_bytes())
                .map(|(name, target)| (name, target.map(str::to_owned)))
        };
        let call = |name: &str, arguments: Value| json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
        assert_eq!(refused(call("acme_items_get", json!({}))), None);
        assert_eq!(refused(call("tenet_job_status", json!({}))), None);
        assert_eq!(
            refused(
                json!([{"jsonrpc": "2.0", "id": 0, "method": "tools/list"}, call("acme_items_get", json!({})), call("acme_items_create", json!({}))])
            ),
            Some(("acme_items_create".into(), Some("acme.items.create".into())))
        );
        assert_eq!(
            refused(call("tenet_call_tool", json!({"name": "acme.items.get"}))),
            None
        );
        assert_eq!(
            refused(call(
                "tenet_call_tool",
                json!({"name": "acme_items_create"})
            )),
            Some(("tenet_call_tool".into(), Some("acme.items.create".into())))
        );
        assert_eq!(
            refused(call("no_such_tool", json!({}))),
            Some(("no_such_tool".into(), None)),
            "a name no scope knows is refused, not passed on"
        );
        assert_eq!(
            refused(call("tenet_call_tool", json!({}))),
            None,
            "left to the bridge"
        );
        assert!(scopes.first_refused(&grant, b"not json").is_none());
    }

    #[test]
    fn bad_scopes_maps_say_what_is_wrong() {
        for (text, needle) in [
            ("", "no scopes"),
            ("\"a\" = []", "the tool list is empty"),
            ("\"a\" = [\"nothing.*\"]", "`nothing.*` match no tool"),
            ("\"a\" = 5", "give a list of tool globs"),
            (
                "\"a\" = { tools = [\"acme.*\"], other = 1 }",
                "give a list of tool globs",
            ),
            ("\"a b\" = [\"acme.*\"]", "is not a scope"),
            ("\"a\" = [\"acme .x\"]", "is not a tool glob"),
            ("a = [", "not valid TOML"),
        ] {
            let error = map(text).unwrap_err().0;
            assert!(
                error.contains("scopes.toml") && error.contains(needle),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn the_metadata_url_inserts_the_well_known_path() {
        let url = |text: &str| metadata_url(&Url::parse(text).unwrap());
        assert_eq!(
            url("https://mcp.example.com"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            url("https://mcp.example.com/mcp/"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
    }

    #[test]
    fn header_text_is_always_a_valid_quoted_string() {
        assert_eq!(quoted("say \"hi\"\n\\ é"), "say 'hi'?' ?");
    }
}
