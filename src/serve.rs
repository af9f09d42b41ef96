//! `tenet-mcp serve`: resolve the configuration, build the bridge, serve a transport.
//!
//! Configuration errors (no API key, invalid catalog, bad flag values, a port that
//! cannot be bound) are reported before anything is served, with what to set or fix,
//! and exit with code 2.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use clap::{Args, ValueEnum};
use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::{
    bridge::{Bridge, ToolMode, ToolOptions},
    catalog::{Catalog, JOB_STATUS_TOOL},
    discovery::{CALL_TOOL, DESCRIBE_TOOL, SEARCH_TOOL},
    governor::{Governor, JobRefs},
    reload,
    results::DEFAULT_MAX_RESULT_BYTES,
    selection::{AgentScopes, SelectionArgs},
    tenet::{
        ApiKey, ClientConfig, TenetClient,
        client::{DEFAULT_API_URL, check_api_url, normalized_api_url, without_userinfo},
    },
    transport,
};
pub use crate::{config::ConfigError, error::ServeError};

/// Arguments of `tenet-mcp serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A catalog file or folder of them (repeatable); default: the catalog shipped in the binary.
    #[arg(long = "catalog", value_name = "PATH")]
    pub catalogs: Vec<PathBuf>,
    /// Tenet's API URL, without `user:password@` (refused). The API key is read from the
    /// TENET_API_KEY environment variable only.
    #[arg(long, env = "TENET_API_URL", hide_env_values = true, default_value = DEFAULT_API_URL, value_parser = parse_api_url)]
    pub api_url: ApiUrl,
    /// The agent id sent with every call.
    #[arg(long, env = "TENET_AGENT_ID", default_value = "default")]
    pub agent_id: String,
    /// A KEY=VALUE pair sent in every execute's `context` (repeatable), e.g. env=production.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = parse_context)]
    pub context: Vec<(String, String)>,
    /// How long to wait for an allowed call's job before answering `pending`, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0, value_parser = parse_seconds)]
    pub poll_timeout: f64,
    /// The timeout of each HTTP request to Tenet, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = parse_seconds)]
    pub request_timeout: f64,
    /// Export a trace of every governed call to this OpenTelemetry collector (OTLP/HTTP,
    /// e.g. http://localhost:4318); off by default.
    #[arg(long, value_name = "URL", env = "TENET_MCP_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The largest downstream response body put whole in a tool result, in bytes. A larger
    /// one is cut (`execution.truncated`) and offered whole as the MCP resource
    /// tenet://jobs/{job_id}/execution, linked from the result.
    #[arg(long, value_name = "BYTES", env = "TENET_MCP_MAX_RESULT_BYTES", default_value_t = DEFAULT_MAX_RESULT_BYTES, value_parser = parse_bytes)]
    pub max_result_bytes: usize,
    /// Start a local Tenet emulator in-process and use it instead of Tenet.
    #[arg(long)]
    pub emulator: bool,
    /// Answer allowed calls of clients that declare the MCP Tasks extension with a task.
    /// Off by default: some clients declare the extension but do not follow tasks.
    #[arg(long)]
    pub tasks: bool,
    /// Reload the --catalog files when they change (checked every second); SIGHUP always reloads.
    #[arg(long)]
    pub watch: bool,
    /// How clients connect: stdio (one local client on stdin/stdout), http (remote agents:
    /// Streamable HTTP at /mcp and the legacy SSE transport at /sse, on one port) or sse
    /// (the legacy SSE transport only). HTTP also serves GET /healthz and GET /metrics.
    #[arg(long, value_enum, default_value_t = Transport::Stdio)]
    pub transport: Transport,
    /// `static`: `tools/list` lists every shown tool. `dynamic` (discovery mode, for large
    /// selections): it lists tenet_search_tools, tenet_describe_tool and tenet_call_tool
    /// instead, and every call through them is governed like a direct one.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ToolMode::Static)]
    pub tool_mode: ToolMode,
    /// Which tools the server shows.
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// The HTTP transports' options.
    #[command(flatten)]
    pub http: Box<HttpArgs>,
}

/// `--api-url` as given. Its `Debug` leaves out any userinfo, which `serve` refuses.
#[derive(Clone)]
pub struct ApiUrl(String);

impl ApiUrl {
    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiUrl({:?})", without_userinfo(&self.0))
    }
}

/// Takes any text: checking it is `serve`'s job, so that clap never echoes a URL's userinfo.
fn parse_api_url(text: &str) -> Result<ApiUrl, std::convert::Infallible> {
    Ok(ApiUrl(text.to_owned()))
}

/// The options of `--transport http` and `--transport sse`.
#[derive(Debug, Args)]
#[command(next_help_heading = "HTTP transports (--transport http or sse)")]
pub struct HttpArgs {
    /// The address to listen on [default: 127.0.0.1:8765; port 0 picks a free one].
    /// An address other than loopback requires --auth-tokens or --oauth-issuer (or --allow-unauthenticated).
    #[arg(long, value_name = "ADDR", value_parser = parse_bind)]
    pub bind: Option<SocketAddr>,
    /// Clients must send `Authorization: Bearer <token>` with a token from FILE,
    /// each naming the agent id its calls carry to Tenet. TOML: `[[tokens]]` entries with
    /// `token = "..."` and `agent_id = "..."` (or JSON {"tokens": [...]}, or a plain
    /// token = agent id table). Tokens: at least 16 printable characters, unique. An
    /// entry's optional `tools = ["github.issues.*", "!github.repos.delete"]` limits what
    /// that token's agent sees and may call.
    #[arg(long, value_name = "FILE")]
    pub auth_tokens: Option<PathBuf>,
    /// Serve a non-loopback --bind without tokens (e.g. behind a proxy that
    /// authenticates): every client then calls Tenet as --agent-id.
    #[arg(long, conflicts_with = "auth_tokens")]
    pub allow_unauthenticated: bool,
    /// A browser origin allowed to call (repeatable), e.g. `https://app.example.com`
    /// or `http://localhost:*` for any port. Requests with another Origin get 403; requests
    /// without one (non-browser clients) are fine [default: loopback origins only].
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// The largest request body, in bytes; larger ones get 413 [default: 1048576 (1 MiB)].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_body: Option<usize>,
    /// Close sessions without any message for this long, in seconds (never
    /// while a call is in flight) [default: 300].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub session_idle_timeout: Option<f64>,
    /// The most live sessions, both transports together; past it new sessions
    /// get 503 [default: 1000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_sessions: Option<u32>,
    /// The most live sessions of one agent (one token; without tokens, all clients
    /// together), Streamable HTTP requests without a session included while they
    /// run; past it that agent gets 429 and others still connect [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_sessions_per_agent: Option<u32>,
    /// How long a client may take to send a request's headers, in seconds (at most
    /// 30); slower connections are closed [default: 10].
    #[arg(long, value_name = "SECONDS", value_parser = parse_header_read_timeout)]
    pub header_read_timeout: Option<f64>,
    /// The most open connections; past it new connections are closed at once.
    /// Keep it below the open-files limit (`ulimit -n`), which the server raises to
    /// its hard limit at start [default: 4096].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: Option<u32>,
    /// The threads serving HTTP [default: one per CPU core]. Where clients or other
    /// processes share the cores, 1 costs the least CPU per call (no cross-thread
    /// wake-ups; docs/BENCHMARKS.md §9); more spread the calls over more cores.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// On SIGTERM or Ctrl-C, how long calls in flight may take to finish, in
    /// seconds, before the server exits anyway [default: 30].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub shutdown_grace: Option<f64>,
    /// The OAuth resource server's flags.
    #[command(flatten)]
    pub oauth: transport::http::oauth::OAuthArgs,
}

/// The `--transport` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// One local client over stdin/stdout.
    Stdio,
    /// Streamable HTTP at /mcp and legacy SSE at /sse, on one port.
    Http,
    /// Legacy SSE (/sse and /message) only.
    Sse,
}

fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    let problem = || {
        format!("`{text}` is not IP:PORT (for example 127.0.0.1:8765, 0.0.0.0:8765 or [::1]:8765)")
    };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match text.rsplit_once(':') {
        Some((host, port)) if host.eq_ignore_ascii_case("localhost") => {
            let port = port.parse::<u16>().map_err(|_| problem())?;
            Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        }
        _ => Err(problem()),
    }
}

fn parse_header_read_timeout(text: &str) -> Result<f64, String> {
    use transport::http::MAX_HEADER_READ_TIMEOUT_SECS as MAX;
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= MAX => Ok(seconds),
        _ => Err(format!(
            "`{text}` is not a number of seconds above 0 and at most {MAX}"
        )),
    }
}

/// A size in bytes from 1 KiB to 64 MiB (`--max-body`, `--max-result-bytes`).
fn parse_bytes(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(bytes) if (1024..=64 * 1024 * 1024).contains(&bytes) => Ok(bytes),
        _ => Err(format!(
            "`{text}` is not a number of bytes between 1024 and 67108864 (64 MiB)"
        )),
    }
}

impl ServeArgs {
    /// The HTTP options, or `None` for stdio (where no HTTP flag may be given).
    fn http_options(&self) -> Result<Option<transport::http::Options>, ConfigError> {
        use transport::http::{self as server, Mode};
        let http = &self.http;
        let mode = match self.transport {
            Transport::Http => Mode::Http,
            Transport::Sse => Mode::Sse,
            Transport::Stdio => {
                let given: Vec<&str> = [
                    ("--bind", http.bind.is_some()),
                    ("--auth-tokens", http.auth_tokens.is_some()),
                    ("--allow-unauthenticated", http.allow_unauthenticated),
                    ("--allowed-origin", !http.allowed_origins.is_empty()),
                    ("--max-body", http.max_body.is_some()),
                    (
                        "--session-idle-timeout",
                        http.session_idle_timeout.is_some(),
                    ),
                    ("--max-sessions", http.max_sessions.is_some()),
                    (
                        "--max-sessions-per-agent",
                        http.max_sessions_per_agent.is_some(),
                    ),
                    ("--shutdown-grace", http.shutdown_grace.is_some()),
                    ("--header-read-timeout", http.header_read_timeout.is_some()),
                    ("--max-connections", http.max_connections.is_some()),
                    ("--threads", http.threads.is_some()),
                ]
                .into_iter()
                .filter_map(|(flag, given)| given.then_some(flag))
                .chain(http.oauth.given())
                .collect();
                if given.is_empty() {
                    return Ok(None);
                }
                return Err(ConfigError(format!(
                    "{} appl{} to HTTP only: add --transport http (or sse), or drop {}",
                    given.join(", "),
                    if given.len() == 1 { "ies" } else { "y" },
                    if given.len() == 1 { "it" } else { "them" },
                )));
            }
        };
        let defaults = server::Options::default();
        let seconds =
            |given: Option<f64>, default: Duration| given.map_or(default, Duration::from_secs_f64);
        let count = |given: Option<u32>, default: usize| given.map_or(default, |n| n as usize);
        Ok(Some(server::Options {
            mode,
            bind: http.bind.unwrap_or(defaults.bind),
            auth_tokens: http.auth_tokens.clone(),
            oauth: None,
            allow_unauthenticated: http.allow_unauthenticated,
            allowed_origins: http.allowed_origins.clone(),
            max_body: http.max_body.unwrap_or(defaults.max_body),
            idle_timeout: seconds(http.session_idle_timeout, defaults.idle_timeout),
            max_sessions: count(http.max_sessions, defaults.max_sessions),
            max_sessions_per_agent: count(
                http.max_sessions_per_agent,
                defaults.max_sessions_per_agent,
            ),
            shutdown_grace: seconds(http.shutdown_grace, defaults.shutdown_grace),
            header_read_timeout: seconds(http.header_read_timeout, defaults.header_read_timeout),
            max_connections: count(http.max_connections, defaults.max_connections),
        }))
    }
}

fn parse_context(pair: &str) -> Result<(String, String), String> {
    match pair.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "`{pair}` is not KEY=VALUE (for example env=production)"
        )),
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 => Ok(seconds),
        _ => Err(format!(
            "`{text}` is not a number of seconds between 0 and 86400"
        )),
    }
}

/// How a bridge reaches Tenet and what it sends: everything [`Upstream::bridge`] needs
/// to wire catalog, Tenet client, governor and bridge together. `serve` builds one from
/// its flags; tests build one directly to run a bridge in-process.
#[derive(Clone)]
pub struct Upstream {
    /// Tenet's API URL (checked by the caller: see [`check_api_url`]).
    pub api_url: String,
    /// The tenant key sent to Tenet.
    pub api_key: ApiKey,
    /// The agent id of calls that carry no other (`--agent-id`).
    pub agent_id: String,
    /// Sent in every execute's `context` (`--context`).
    pub context: Map<String, Value>,
    /// How long to wait for an allowed call's job (`--poll-timeout`).
    pub poll_timeout: Duration,
    /// The timeout of each HTTP request to Tenet (`--request-timeout`).
    pub request_timeout: Duration,
    /// The keys of job references (see [`job_refs_for`]).
    pub job_refs: JobRefs,
    /// Answer allowed calls of task-aware clients with a task (`--tasks`).
    pub tasks: bool,
    /// Which tools are shown, to whom, and how (`--toolsets`, `--tools`, `--read-only`,
    /// `--tool-mode`, per-token lists).
    pub tools: ToolOptions,
    /// The largest downstream body put whole in a result (`--max-result-bytes`).
    pub max_result_bytes: usize,
}

impl Upstream {
    /// `serve`'s defaults for Tenet at `api_url` with `api_key`: agent `default`, no
    /// context, a 120 s poll timeout, 30 s requests, job references keyed by the key,
    /// bodies cut past [`DEFAULT_MAX_RESULT_BYTES`].
    pub fn new(api_url: impl Into<String>, api_key: ApiKey) -> Self {
        Self {
            api_url: api_url.into(),
            job_refs: JobRefs::derive(api_key.expose()),
            api_key,
            agent_id: "default".to_owned(),
            context: Map::new(),
            poll_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            tasks: false,
            tools: ToolOptions::default(),
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
        }
    }

    /// The bridge serving `catalog` through this Tenet; an error when the tool
    /// selection names what `catalog` lacks.
    pub fn bridge(self, catalog: Arc<Catalog>) -> Result<Bridge, ConfigError> {
        let mut config = ClientConfig::new(&self.api_url, self.api_key);
        config.request_timeout = self.request_timeout;
        let governor = Governor::new(TenetClient::new(config), self.context, self.poll_timeout)
            .with_job_refs(self.job_refs);
        let bridge = Bridge::with_options(catalog, governor, self.agent_id, self.tools)?
            .with_max_result_bytes(self.max_result_bytes);
        Ok(if self.tasks {
            bridge.with_tasks()
        } else {
            bridge
        })
    }
}

/// Runs `serve` until the client disconnects or `shutdown` resolves (`main` passes
/// [`crate::shutdown_signal`]).
pub async fn run(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let mut http = args.http_options()?;
    let job_secret = job_secret_from_env()?;
    if !args.emulator {
        check_api_url(args.api_url.as_str()).map_err(|e| ConfigError(e.to_string()))?;
    }
    let catalog = Arc::new(
        Catalog::load_or_embedded(&args.catalogs).map_err(|e| ConfigError(e.to_string()))?,
    );
    let selector = args.selection.selector(!args.catalogs.is_empty())?;
    selector.select(&catalog)?;
    if let Some(options) = http.as_mut() {
        let bridge_tools = [JOB_STATUS_TOOL, SEARCH_TOOL, DESCRIBE_TOOL];
        options.oauth = args
            .http
            .oauth
            .options(&catalog, &bridge_tools, CALL_TOOL)?;
    }
    let oauth = http.as_ref().is_some_and(|options| options.oauth.is_some());
    let tokens_file = http
        .as_ref()
        .and_then(|options| options.auth_tokens.clone());
    let server = match http {
        Some(options) => Some(transport::http::Server::bind(options).await?),
        None => None,
    };
    // OAuth agents' tools are their scopes', checked by the HTTP guard.
    let scopes = tokens_file
        .map(|path| agent_scopes(&path, &catalog))
        .transpose()?
        .map(|scopes| {
            if oauth {
                scopes.unlisted_unlimited()
            } else {
                scopes
            }
        });
    let (api_url, api_key, emulator) = if args.emulator {
        let (url, key, stop) = start_emulator(catalog.clone()).await?;
        (url, key, Some(stop))
    } else {
        let key = std::env::var("TENET_API_KEY")
            .ok()
            .and_then(ApiKey::new)
            .ok_or_else(|| ConfigError(MISSING_KEY.into()))?;
        (args.api_url.as_str().to_owned(), key, None)
    };
    let mut upstream = Upstream::new(api_url, api_key);
    upstream.job_refs = choose_job_refs(job_secret, Some(&upstream.api_key))?;
    upstream.agent_id = args.agent_id;
    upstream.context = args
        .context
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    upstream.poll_timeout = Duration::from_secs_f64(args.poll_timeout);
    upstream.request_timeout = Duration::from_secs_f64(args.request_timeout);
    upstream.tasks = args.tasks;
    upstream.max_result_bytes = args.max_result_bytes;
    upstream.tools = ToolOptions {
        selector,
        scopes,
        mode: args.tool_mode,
    };
    let api_url = normalized_api_url(&upstream.api_url);
    let bridge = upstream.bridge(catalog.clone())?;
    reload::spawn(bridge.clone(), args.catalogs.clone(), args.watch);
    let served = match server {
        Some(server) => {
            tracing::info!(tools = catalog.tools().len(), api_url = %api_url, addr = %server.local_addr(), "serving MCP over HTTP");
            server.serve_until(bridge, shutdown).await
        }
        None => {
            tracing::info!(tools = catalog.tools().len(), api_url = %api_url, "serving MCP over stdio");
            transport::stdio::serve(bridge, shutdown).await
        }
    };
    if let Some(stop) = emulator {
        stop.await;
    }
    served
}

/// What `serve` says when there is no API key: how to give one, and (in a build with
/// the emulator) how to try without one.
#[cfg(feature = "emulator")]
const MISSING_KEY: &str = "TENET_API_KEY is not set: export it (your Tenet tenant key, tnt_...) \
     or run with --emulator to try a local Tenet";
#[cfg(not(feature = "emulator"))]
const MISSING_KEY: &str = "TENET_API_KEY is not set: export it (your Tenet tenant key, tnt_...)";

/// What `--emulator` says in a build without the emulator, and the `emulator`,
/// `reviews` and `audit` commands too.
pub const NO_EMULATOR: &str = "this build of tenet-mcp has no emulator (it was built without the \
     `emulator` cargo feature): `serve --emulator`, `emulator`, `reviews` and `audit` need a build \
     with it, which the default build is (`cargo install tenet-mcp`)";

/// Starts the in-process emulator of `--emulator` and says where it is; its URL, its
/// key, and what stops it.
#[cfg(feature = "emulator")]
async fn start_emulator(
    catalog: Arc<Catalog>,
) -> Result<(String, ApiKey, BoxFuture<'static, ()>), ServeError> {
    let running = crate::emulator::start(crate::emulator::EmulatorConfig::embedded(catalog))
        .await
        .map_err(ServeError::Emulator)?;
    let approver = running
        .approver_key()
        .map(|key| {
            format!(
                ", or with `TENET_APPROVER_KEY={} tenet-mcp reviews approve REV --emulator-url {}`",
                key.expose(),
                running.url()
            )
        })
        .unwrap_or_default();
    eprintln!(
        "tenet-mcp: using the local Tenet emulator at {url} (API key {key}); approve escalated calls at {url}/{approver}",
        url = running.url(),
        key = running.api_key().expose(),
    );
    Ok((
        running.url(),
        running.api_key().clone(),
        Box::pin(running.shutdown()),
    ))
}

/// `--emulator` in a build without the emulator: a configuration error saying how to get one.
#[cfg(not(feature = "emulator"))]
async fn start_emulator(
    _catalog: Arc<Catalog>,
) -> Result<(String, ApiKey, BoxFuture<'static, ()>), ServeError> {
    Err(ConfigError(NO_EMULATOR.into()).into())
}

/// The per-token `tools` lists of an `--auth-tokens` file, each glob checked against `catalog`.
fn agent_scopes(path: &std::path::Path, catalog: &Catalog) -> Result<AgentScopes, ConfigError> {
    let scopes = transport::http::auth::Tokens::read(path)?.scopes();
    let unmatched = scopes.unmatched(catalog);
    if unmatched.is_empty() {
        Ok(scopes)
    } else {
        Err(ConfigError(format!(
            "{}: these `tools` globs match no tool of the catalog: {}; fix or drop them",
            path.display(),
            unmatched.join(", ")
        )))
    }
}

/// The environment variable holding the secret that keys job references.
pub const JOB_SECRET_ENV: &str = "TENET_MCP_JOB_SECRET";

/// The shortest job secret accepted.
const MIN_JOB_SECRET_LEN: usize = 16;

/// The job references of a server calling Tenet with `api_key`: keyed by
/// `TENET_MCP_JOB_SECRET` when it is set, else by the API key, so every replica and
/// restart sharing either accepts the others' references. `None` for the key is fine
/// only when the secret is set.
pub fn job_refs_for(api_key: Option<&ApiKey>) -> Result<JobRefs, ConfigError> {
    choose_job_refs(job_secret_from_env()?, api_key)
}

/// The job references keyed by `secret` when there is one, else by `api_key`.
fn choose_job_refs(
    secret: Option<String>,
    api_key: Option<&ApiKey>,
) -> Result<JobRefs, ConfigError> {
    match (secret, api_key) {
        (Some(secret), _) => Ok(JobRefs::derive(&secret)),
        (None, Some(key)) => Ok(JobRefs::derive(key.expose())),
        (None, None) => Err(ConfigError(format!(
            "neither {JOB_SECRET_ENV} nor TENET_API_KEY is set: export the one the server uses \
             (with `serve --emulator`, TENET_API_KEY is the emulator key it printed at start)"
        ))),
    }
}

/// `TENET_MCP_JOB_SECRET`, if set; an error if it is set but too short.
fn job_secret_from_env() -> Result<Option<String>, ConfigError> {
    let Some(secret) = std::env::var_os(JOB_SECRET_ENV) else {
        return Ok(None);
    };
    match secret.to_str().map(str::trim) {
        Some(secret) if secret.len() >= MIN_JOB_SECRET_LEN => Ok(Some(secret.to_owned())),
        _ => Err(ConfigError(format!(
            "{JOB_SECRET_ENV} is set but is not at least {MIN_JOB_SECRET_LEN} characters of UTF-8 text: \
             set it to a long random value (e.g. the output of `openssl rand -hex 32`), the same on every replica, \
             or unset it to key job references from TENET_API_KEY"
        ))),
    }
}
