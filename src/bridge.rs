//! The MCP face of tenet-mcp: catalog tools advertised, calls governed.
//!
//! [`Bridge`] is an rmcp [`ServerHandler`]: `tools/list` serves the catalog as MCP
//! tools (computed once per catalog, in pages), `tools/call` finds the tool by its
//! MCP name and hands the call to the [`Governor`]; the [`CallReport`] becomes a tool
//! result with `structuredContent` and one text block. While a job is polled, clients
//! that sent a `progressToken` get `notifications/progress`. Jobs and MCP tasks are bound
//! to the agent whose call started them: only it can follow or steer them. Every clone of a bridge
//! (one per HTTP session) shares the catalog, so [`Bridge::replace_catalog`] reaches
//! every connected client with `notifications/tools/list_changed`.
//!
//! A downstream body past `--max-result-bytes` is cut in the result, which links the whole
//! body as a resource; `resources/read` serves it to the agent whose call it was
//! ([`crate::results`]).
//!
//! [`ToolOptions`] say which tools are shown (a [`Selector`], applied to every catalog
//! served), what each token's agent may see and call ([`AgentScopes`]; a call outside
//! them is refused before Tenet hears of it), and whether `tools/list` carries the tools
//! themselves or the three tools of [discovery mode](crate::discovery).

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex, OnceLock, RwLock},
    time::Duration,
};

use rmcp::{
    ErrorData, Peer, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
        CreateTaskResult, GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult,
        Implementation, ListResourceTemplatesResult, ListToolsResult, PaginatedRequestParams,
        ProgressNotificationParam, ReadResourceRequestParams, ReadResourceResponse,
        ReadResourceResult, Resource, ResourceContents, ResourceTemplate, ServerCapabilities,
        ServerConfig, Tool as McpTool, ToolAnnotations, UpdateTaskParams,
    },
    service::{NotificationContext, RequestContext},
    task_manager::{TaskExit, TaskManager, TaskOptions},
};
// MCP logging (logging/setLevel, notifications/message): deprecated by SEP-2577 for a
// later revision, still part of 2025-11-25, which this server serves.
#[allow(deprecated)]
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam, SetLevelRequestParams};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    catalog::{Catalog, JOB_STATUS_TOOL, Tool},
    config::ConfigError,
    discovery::{self, CALL_TOOL, DESCRIBE_TOOL, Index, SEARCH_TOOL},
    governor::{Decided, Governor, JobWatcher, PendingJob},
    report::{CallReport, CallStatus, output_schema},
    results::{DEFAULT_MAX_RESULT_BYTES, KeptBodies, URI_TEMPLATE},
    selection::{AgentScopes, Selection, Selector},
    telemetry,
    tenet::wire::JobStatus,
};

/// What the server says about itself at `initialize`.
const INSTRUCTIONS: &str = "Every tool here is a call to an external API governed by Tenet. \
Each result's structuredContent.status says what happened: executed (read execution.body; when \
execution.truncated is true it holds only the start, and resources/read of the linked URI gives the whole body), \
failed, pending (the job is still running: call tenet_job_status with its job_ref later), \
escalated (held for human approval: do not retry), blocked (refused by policy: do not retry) or error.";

/// Tools per `tools/list` page.
pub const TOOLS_PAGE_SIZE: usize = 500;

/// The shortest interval between two progress notifications of one call, unless the job's status changed.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// How long a task follows its job, and how long its result is kept.
pub const TASK_TTL: Duration = Duration::from_secs(600);

/// The `tasks/get` polling interval suggested to clients.
const TASK_POLL_INTERVAL_MS: u64 = 500;

/// The identity a transport authenticated for a request (e.g. an HTTP bearer token's
/// agent). Put it in the request's extensions, or in the extensions of the
/// `http::request::Parts` rmcp attaches; calls without one use the bridge's agent id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentIdentity(pub String);

/// The catalog tools a request's credential may use (an OAuth token's scopes), set by a
/// transport like [`AgentIdentity`]: `tools/list`, search and describe show only these
/// (and the bridge's own tools). Without one, every shown tool the agent may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolGrant(pub Arc<BTreeSet<String>>);

/// How `tools/list` presents the shown tools (`serve --tool-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ToolMode {
    /// Every shown tool is listed and called by its own name.
    #[default]
    Static,
    /// Three tools stand for them: tenet_search_tools, tenet_describe_tool, tenet_call_tool.
    Dynamic,
}

/// Which tools a bridge shows, to whom, and how.
#[derive(Clone, Debug)]
pub struct ToolOptions {
    /// Picks the shown tools from each catalog served.
    pub selector: Selector,
    /// Per-agent limits (`--auth-tokens` `tools` lists); `None`: every agent sees every shown tool.
    pub scopes: Option<AgentScopes>,
    /// Static or discovery mode.
    pub mode: ToolMode,
}

impl Default for ToolOptions {
    fn default() -> Self {
        Self {
            selector: Selector::all(),
            scopes: None,
            mode: ToolMode::Static,
        }
    }
}

/// The MCP server handler. Cheap to clone; every clone serves the same catalog. A
/// transport gives each session its own [`Bridge::for_session`].
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
    session: Arc<SessionState>,
}

/// What one MCP session asked for: the level of the log notifications it wants
/// (`logging/setLevel`); none until it asks.
#[derive(Default)]
struct SessionState {
    #[allow(deprecated)] // MCP logging, deprecated by SEP-2577 but still in 2025-11-25
    log_level: Mutex<Option<LoggingLevel>>,
}

struct Inner {
    view: RwLock<Arc<View>>,
    output_schema: Arc<Map<String, Value>>,
    options: ToolOptions,
    governor: Governor,
    agent_id: String,
    peers: Mutex<Vec<Peer<RoleServer>>>,
    /// Present when MCP Tasks are on (`serve --tasks`).
    tasks: Option<TaskManager>,
    /// The agent each task was created for, and when: only that agent can see or steer it.
    task_owners: Mutex<HashMap<String, (String, Instant)>>,
    /// Bodies cut from results, kept for `resources/read`.
    bodies: Arc<KeptBodies>,
}

/// A catalog, the tools shown of it, and what `tools/list` says (the built-in job status tool first).
struct View {
    catalog: Arc<Catalog>,
    /// The catalog names of the shown tools.
    shown: HashSet<String>,
    /// The catalog names of the shown tools, in `tools/list` order.
    order: Vec<String>,
    /// The schema every tool's result follows.
    output_schema: Arc<Map<String, Value>>,
    /// The shown tools' MCP definitions, by MCP name: made at the first request that
    /// needs one, so a large selection costs nothing before `initialize` is answered.
    definitions: OnceLock<HashMap<String, McpTool>>,
    /// `tools/list` for agents without a limit (made with `definitions` in static mode).
    tools: OnceLock<Arc<[McpTool]>>,
    /// Static (the catalog's tools) or dynamic (the discovery tools).
    mode: ToolMode,
    /// `tools/list` of each limited agent (static mode), made at its first request.
    scoped: Mutex<HashMap<String, Arc<[McpTool]>>>,
    /// Discovery mode's search index over the shown tools, by catalog index.
    index: Option<Index>,
}

impl Bridge {
    /// A bridge serving all of `catalog`, calling Tenet through `governor` as `agent_id`.
    pub fn new(catalog: Arc<Catalog>, governor: Governor, agent_id: String) -> Self {
        let selection = Selection::everything(&catalog);
        Self::build(
            catalog,
            selection,
            governor,
            agent_id,
            ToolOptions::default(),
        )
    }

    /// A bridge serving the tools of `catalog` that `options` select, in their mode.
    /// A selection naming what the catalog lacks is an error (see [`Selector::select`]).
    pub fn with_options(
        catalog: Arc<Catalog>,
        governor: Governor,
        agent_id: String,
        options: ToolOptions,
    ) -> Result<Self, ConfigError> {
        let selection = options.selector.select(&catalog)?;
        Ok(Self::build(catalog, selection, governor, agent_id, options))
    }

    fn build(
        catalog: Arc<Catalog>,
        selection: Selection,
        governor: Governor,
        agent_id: String,
        options: ToolOptions,
    ) -> Self {
        let output_schema = Arc::new(output_schema());
        let view = View::new(catalog, &selection, &output_schema, options.mode);
        Self {
            session: Arc::default(),
            inner: Arc::new(Inner {
                view: RwLock::new(Arc::new(view)),
                output_schema,
                options,
                governor,
                agent_id,
                peers: Mutex::new(Vec::new()),
                tasks: None,
                task_owners: Mutex::default(),
                bodies: Arc::new(KeptBodies::new(DEFAULT_MAX_RESULT_BYTES)),
            }),
        }
    }

    /// A handler for one more session: the same catalog, governor and kept bodies, with
    /// the session's own settings (its log level).
    pub fn for_session(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            session: Arc::default(),
        }
    }

    /// Cuts downstream bodies longer than `bytes` in results (`serve --max-result-bytes`;
    /// [`DEFAULT_MAX_RESULT_BYTES`] otherwise). Call it before the bridge is cloned.
    pub fn with_max_result_bytes(mut self, bytes: usize) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.bodies = Arc::new(KeptBodies::new(bytes));
        }
        self
    }

    /// Turns MCP Tasks on: clients that declare the Tasks extension get an allowed
    /// call's job as a task. Call it before the bridge is cloned.
    pub fn with_tasks(mut self) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.tasks = Some(TaskManager::new());
        }
        self
    }

    fn task_manager(&self) -> Result<&TaskManager, ErrorData> {
        self.inner.tasks.as_ref().ok_or_else(|| {
            ErrorData::invalid_request(
                "MCP Tasks are off on this server: start it with `serve --tasks`",
                None,
            )
        })
    }

    /// The tools as MCP advertises them to an agent without a limit.
    pub fn tools(&self) -> Vec<McpTool> {
        self.view().tools().to_vec()
    }

    /// Serves the selected tools of `catalog` from now on and tells every connected client
    /// its tools changed; returns how many are shown. When the selection no longer fits the
    /// catalog (a toolset or `--tools` glob names nothing in it), nothing changes.
    pub async fn replace_catalog(&self, catalog: Arc<Catalog>) -> Result<usize, ConfigError> {
        let selection = self.inner.options.selector.select(&catalog)?;
        if let Some(scopes) = &self.inner.options.scopes {
            for unmatched in scopes.unmatched(&catalog) {
                tracing::warn!(
                    "an --auth-tokens `tools` glob matches no tool of the new catalog: {unmatched}"
                );
            }
        }
        let shown = selection.len();
        let view = View::new(
            catalog,
            &selection,
            &self.inner.output_schema,
            self.inner.options.mode,
        );
        *self
            .inner
            .view
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(view);
        let peers = self.live_peers().clone();
        for peer in peers {
            if let Err(error) = peer.notify_tool_list_changed().await {
                tracing::debug!(%error, "could not tell a client its tools changed");
            }
        }
        Ok(shown)
    }

    /// Follows an allowed call's job as an MCP task (SEP-2663) owned by `agent_id`: the
    /// client polls `tasks/get` for the job's progress and gets the tool result when it ends.
    fn spawn_task(&self, tasks: &TaskManager, job: PendingJob, agent_id: &str) -> CreateTaskResult {
        let governor = self.inner.governor.clone();
        let bodies = self.inner.bodies.clone();
        let agent = agent_id.to_owned();
        let job_id = job.job_id().to_owned();
        let task = tasks.spawn(
            TaskOptions::new().with_ttl_ms(TASK_TTL.as_millis() as u64).with_poll_interval_ms(TASK_POLL_INTERVAL_MS),
            move |task| {
                Box::pin(async move {
                    let cancel = CancellationToken::new();
                    let deadline = Instant::now() + TASK_TTL;
                    let mut no_progress = ();
                    let follow = governor.follow_job(job, deadline, &cancel, &mut no_progress);
                    tokio::select! {
                        report = follow => Ok(tool_result(&bodies.fit(report, &agent))),
                        () = task.cancelled() => {
                            cancel.cancel();
                            tracing::info!(job_id, "task cancelled: stopped following the job (Tenet cannot recall a started job)");
                            Err(TaskExit::Cancelled)
                        }
                    }
                })
            },
        );
        let now = Instant::now();
        let mut owners = self
            .inner
            .task_owners
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        // rmcp forgets a task at most two TTLs after its creation; keep a margin.
        owners.retain(|_, (_, created)| now.duration_since(*created) < 3 * TASK_TTL);
        owners.insert(task.task_id.clone(), (agent_id.to_owned(), now));
        drop(owners);
        CreateTaskResult::new(task)
    }

    /// The task manager, if `task_id` is a task of the request's agent; another agent's
    /// task gets the same error as one that does not exist.
    fn owned_task(
        &self,
        task_id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<&TaskManager, ErrorData> {
        let tasks = self.task_manager()?;
        let owned = self
            .inner
            .task_owners
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(task_id)
            .is_some_and(|(owner, _)| owner == self.agent_id(context));
        if owned {
            Ok(tasks)
        } else {
            Err(ErrorData::invalid_params(
                format!("unknown task: {task_id}"),
                None,
            ))
        }
    }

    /// The connected clients, with those that went away dropped.
    fn live_peers(&self) -> std::sync::MutexGuard<'_, Vec<Peer<RoleServer>>> {
        let mut peers = self
            .inner
            .peers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        peers.retain(|peer| !peer.is_transport_closed());
        peers
    }

    fn view(&self) -> Arc<View> {
        self.inner
            .view
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// The tools a request's credential is limited to, if a transport said so.
    fn tool_grant<'a>(&self, context: &'a RequestContext<RoleServer>) -> Option<&'a ToolGrant> {
        transport_extension(context)
    }

    /// The agent id a request is made for: the transport's identity, else the bridge's.
    fn agent_id<'a>(&'a self, context: &'a RequestContext<RoleServer>) -> &'a str {
        transport_extension::<AgentIdentity>(context)
            .map_or(self.inner.agent_id.as_str(), |identity| identity.0.as_str())
    }
}

impl View {
    fn new(
        catalog: Arc<Catalog>,
        selection: &Selection,
        output_schema: &Arc<Map<String, Value>>,
        mode: ToolMode,
    ) -> Self {
        let index = (mode == ToolMode::Dynamic).then(|| Index::new(selection.indexed(&catalog)));
        let order: Vec<String> = selection
            .tools(&catalog)
            .map(|tool| tool.name.clone())
            .collect();
        Self {
            shown: order.iter().cloned().collect(),
            order,
            catalog,
            output_schema: output_schema.clone(),
            definitions: OnceLock::new(),
            tools: OnceLock::new(),
            mode,
            scoped: Mutex::default(),
            index,
        }
    }

    /// The shown tools' MCP definitions, by MCP name.
    fn definitions(&self) -> &HashMap<String, McpTool> {
        self.definitions.get_or_init(|| {
            self.order
                .iter()
                .filter_map(|name| self.catalog.by_name(name))
                .map(|tool| {
                    (
                        tool.mcp_name.clone(),
                        mcp_tool(tool, self.output_schema.clone()),
                    )
                })
                .collect()
        })
    }

    /// `tools/list` for agents without a limit.
    fn tools(&self) -> &Arc<[McpTool]> {
        self.tools.get_or_init(|| {
            let job_status = job_status_tool(self.output_schema.clone());
            match self.mode {
                ToolMode::Static => {
                    let definitions = self.definitions();
                    std::iter::once(job_status)
                        .chain(
                            self.order
                                .iter()
                                .filter_map(|name| self.catalog.by_name(name))
                                .filter_map(|tool| definitions.get(&tool.mcp_name).cloned()),
                        )
                        .collect()
                }
                ToolMode::Dynamic => std::iter::once(job_status)
                    .chain(discovery::tools(self.output_schema.clone()))
                    .collect(),
            }
        })
    }

    /// The shown tool called `name` (its MCP name, or with `catalog_names` its catalog
    /// name too) if `agent` may use it.
    fn find(
        &self,
        name: &str,
        agent: &str,
        scopes: Option<&AgentScopes>,
        catalog_names: bool,
    ) -> Option<&Tool> {
        self.catalog
            .by_mcp_name(name)
            .or_else(|| catalog_names.then(|| self.catalog.by_name(name)).flatten())
            .filter(|tool| self.shown.contains(&tool.name))
            .filter(|tool| scopes.is_none_or(|scopes| scopes.allows(agent, &tool.name)))
    }

    /// `tools/list` for `agent`: in static mode, only the tools its scope allows.
    fn tools_for(&self, agent: &str, scopes: Option<&AgentScopes>) -> Arc<[McpTool]> {
        let Some(scopes) = scopes.filter(|scopes| self.index.is_none() && scopes.limits(agent))
        else {
            return self.tools().clone();
        };
        let mut scoped = self
            .scoped
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        scoped
            .entry(agent.to_owned())
            .or_insert_with(|| {
                self.tools()
                    .iter()
                    .filter(|tool| {
                        tool.name == JOB_STATUS_TOOL
                            || self
                                .catalog
                                .by_mcp_name(&tool.name)
                                .is_some_and(|tool| scopes.allows(agent, &tool.name))
                    })
                    .cloned()
                    .collect()
            })
            .clone()
    }
}

/// The MCP definition of a catalog tool.
pub fn mcp_tool(tool: &Tool, output_schema: Arc<Map<String, Value>>) -> McpTool {
    let annotations = ToolAnnotations::new()
        .read_only(tool.method.is_read_only())
        .destructive(tool.is_irreversible())
        .idempotent(tool.method.is_idempotent())
        .open_world(true);
    let mut mcp = McpTool::new(
        tool.mcp_name.clone(),
        tool.description.clone(),
        tool.input_schema(),
    )
    .with_raw_output_schema(output_schema)
    .with_annotations(annotations);
    if let Some(title) = &tool.title {
        mcp = mcp.with_title(title.clone());
    }
    mcp
}

/// The built-in tool that follows a job which outlived a call's poll deadline.
fn job_status_tool(output_schema: Arc<Map<String, Value>>) -> McpTool {
    let Value::Object(input) = json!({
        "type": "object",
        "properties": {"job_ref": {"type": "string", "minLength": 1, "description": "The job_ref of one of your pending results, unchanged."}},
        "required": ["job_ref"],
        "additionalProperties": false
    }) else {
        unreachable!("an object literal")
    };
    McpTool::new(
        JOB_STATUS_TOOL,
        "Follow a Tenet job that was still running when its call returned `pending`, until it finishes or the \
         poll deadline passes: pass that result's `job_ref` (a job reference works only for the agent whose call \
         started the job). Returns the same structured result as the original call would have.",
        Arc::new(input),
    )
    .with_title("Tenet job status")
    .with_raw_output_schema(output_schema)
    .with_annotations(ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(true))
}

/// The `job_ref` argument of `tenet_job_status`, or what to pass instead.
fn job_ref_argument(arguments: &Map<String, Value>) -> Result<&str, String> {
    match arguments.get("job_ref") {
        Some(Value::String(job_ref)) if !job_ref.is_empty() => Ok(job_ref),
        None if arguments.contains_key("job_id") => Err(
            "tenet_job_status takes `job_ref`, not `job_id`: pass the job_ref of your pending result \
             unchanged (a bare job id is refused so that only the agent whose call started a job can follow it)"
                .to_owned(),
        ),
        _ => Err(
            "`job_ref` (a non-empty string) is required: pass the job_ref of your pending result".to_owned(),
        ),
    }
}

/// The tool result of a report: its text block, and a `resource_link` to the whole body
/// when the report's body was cut and kept.
pub fn tool_result(report: &CallReport) -> CallToolResult {
    // Not `CallToolResult::structured`: that also writes the whole report as text,
    // which the summary replaces.
    let content = vec![ContentBlock::text(report.summary())];
    let mut result = if report.is_error() {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    result.structured_content = Some(serde_json::to_value(report).unwrap_or_default());
    if let Some(uri) = report.full_body_uri() {
        let mut link = Resource::new(uri, "execution")
            .with_title(format!("Whole response body of {}", report.tool))
            .with_description(
                "The downstream response body this tool result holds only the start of (execution.body)",
            );
        if let Some(size) = report.cut_size() {
            link = link.with_size(size);
        }
        if let Some(mime_type) = report.full_body_mime_type() {
            link = link.with_mime_type(mime_type);
        }
        result.content.push(ContentBlock::resource_link(link));
    }
    result
}

/// Sends `notifications/progress` for one call while its job is polled: on every
/// status change, and otherwise at most once per [`PROGRESS_INTERVAL`]. Each is sent
/// inline, between two polls, so none can follow the call's result or its cancellation.
struct ProgressReporter {
    peer: Peer<RoleServer>,
    /// The request's progress token; `None` when the client sent none, or stopped listening.
    token: Option<rmcp::model::ProgressToken>,
    cancel: CancellationToken,
    started: Instant,
    last_sent: Option<(Instant, JobStatus)>,
    count: u32,
}

impl ProgressReporter {
    /// A reporter for the request in `context`; silent when the client sent no progress token.
    fn new(context: &RequestContext<RoleServer>) -> Self {
        Self {
            peer: context.peer.clone(),
            token: context.meta.get_progress_token(),
            cancel: context.ct.clone(),
            started: Instant::now(),
            last_sent: None,
            count: 0,
        }
    }
}

impl JobWatcher for ProgressReporter {
    /// Tells the client that `job` is `status`, if that is due; nothing once the call is
    /// cancelled.
    async fn polled(&mut self, job: &str, status: JobStatus) {
        let Some(token) = &self.token else {
            return;
        };
        let now = Instant::now();
        let due = match self.last_sent {
            None => true,
            Some((at, last)) => last != status || now.duration_since(at) >= PROGRESS_INTERVAL,
        };
        if !due || self.cancel.is_cancelled() {
            return;
        }
        self.last_sent = Some((now, status));
        self.count += 1;
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let mut note = ProgressNotificationParam::new(token.clone(), f64::from(self.count));
        note.message = Some(format!(
            "Tenet job {job} is {} ({elapsed:.1} s elapsed)",
            status.as_str()
        ));
        let sent = tokio::select! {
            sent = self.peer.notify_progress(note) => sent,
            () = self.cancel.cancelled() => return,
        };
        if let Err(error) = sent {
            tracing::debug!(%error, "could not send a progress notification; sending no more for this call");
            self.token = None;
        }
    }
}

impl ServerHandler for Bridge {
    #[allow(deprecated)] // enable_logging: see the import of LoggingLevel
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .enable_tool_list_changed();
        let capabilities = if self.inner.tasks.is_some() {
            capabilities.enable_tasks().build()
        } else {
            capabilities.build()
        };
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("tenet-mcp", env!("CARGO_PKG_VERSION")).with_title("Tenet"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.live_peers().push(context.peer);
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let view = self.view();
        let mut tools = view.tools_for(self.agent_id(&context), self.inner.options.scopes.as_ref());
        if let Some(ToolGrant(granted)) = self.tool_grant(&context) {
            tools = tools
                .iter()
                .filter(|tool| {
                    view.catalog
                        .by_mcp_name(&tool.name)
                        .is_none_or(|tool| granted.contains(&tool.name))
                })
                .cloned()
                .collect();
        }
        let start = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(cursor) => match cursor.parse::<usize>() {
                Ok(start) if start < tools.len() => start,
                _ => {
                    return Err(ErrorData::invalid_params(
                        format!(
                            "invalid cursor `{cursor}`: pass a nextCursor from a previous tools/list, or none"
                        ),
                        None,
                    ));
                }
            },
        };
        let end = (start + TOOLS_PAGE_SIZE).min(tools.len());
        Ok(ListToolsResult {
            tools: tools.get(start..end).unwrap_or_default().to_vec(),
            next_cursor: (end < tools.len()).then(|| end.to_string()),
            ..Default::default()
        })
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        Ok(GetTaskResult::new(
            self.owned_task(&request.task_id, &context)?
                .get_task(&request.task_id)?,
        ))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.owned_task(&request.task_id, &context)?
            .update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.owned_task(&request.task_id, &context)?
            .cancel_task(&request.task_id)
    }

    /// The one template: kept bodies (`resources/list` stays empty: each body is linked
    /// from the result it was cut from, and exists only for the agent of that call).
    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let mut template = ResourceTemplate::new(URI_TEMPLATE, "execution");
        template.title = Some("Whole response body of a job".to_owned());
        template.description = Some(
            "The downstream response body of a call whose tool result holds only its start \
             (execution.truncated); readable only by the agent whose call it was, for a while"
                .to_owned(),
        );
        Ok(ListResourceTemplatesResult::with_all_items(vec![template]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let body = self
            .inner
            .bodies
            .read(&request.uri, self.agent_id(&context))
            .map_err(|error| ErrorData::resource_not_found(error.to_string(), None))?;
        let contents =
            ResourceContents::text(body.text.clone(), request.uri).with_mime_type(body.mime_type());
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    fn get_tool(&self, name: &str) -> Option<McpTool> {
        let view = self.view();
        view.definitions()
            .get(name)
            .or_else(|| view.tools().iter().find(|tool| tool.name == name))
            .cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let headers = context
            .extensions
            .get::<axum::http::request::Parts>()
            .map(|parts| &parts.headers);
        let client_trace = telemetry::incoming(context.meta.get_traceparent(), headers);
        let span = telemetry::call_span(
            &request.name,
            self.agent_id(&context),
            client_trace.as_ref(),
        );
        let peer = context.peer.clone();
        // Boxed: the governed call's future is several KB, and rmcp moves the request
        // handler's future (spawning it, among others) before it first polls it.
        let response = Box::pin(
            telemetry::with_client_trace(client_trace, self.governed_call(request, context))
                .instrument(span),
        )
        .await;
        if let Ok(CallToolResponse::Complete(result)) = &response {
            self.log_outcome(&peer, result).await;
        }
        response
    }

    #[allow(deprecated)] // MCP logging, deprecated by SEP-2577 but still in 2025-11-25
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self
            .session
            .log_level
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(request.level);
        Ok(())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Err(ErrorData::invalid_params(
            format!(
                "unknown prompt: {}; this server offers no prompts (prompts/list is empty)",
                request.name.chars().take(200).collect::<String>()
            ),
            None,
        ))
    }
}

impl Bridge {
    /// Tells a session that asked for log notifications (`logging/setLevel`) how a
    /// governed call ended: `info` when executed, `notice` when pending, `warning` when
    /// escalated or blocked, `error` when it failed; the data is the result's tool,
    /// status and summary, never its arguments or body.
    #[allow(deprecated)] // MCP logging, deprecated by SEP-2577 but still in 2025-11-25
    async fn log_outcome(&self, peer: &Peer<RoleServer>, result: &CallToolResult) {
        let Some(wanted) = *self
            .session
            .log_level
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
        else {
            return;
        };
        let Some(report) = &result.structured_content else {
            return;
        };
        // Discovery's search and describe results carry no status: nothing was governed.
        let Ok(status) = CallStatus::deserialize(&report["status"]) else {
            return;
        };
        let level = match status {
            CallStatus::Executed => LoggingLevel::Info,
            CallStatus::Pending => LoggingLevel::Notice,
            CallStatus::Escalated | CallStatus::Blocked => LoggingLevel::Warning,
            CallStatus::Failed | CallStatus::Error => LoggingLevel::Error,
        };
        if severity(level) < severity(wanted) {
            return;
        }
        let data = json!({
            "tool": report["tool"],
            "status": report["status"],
            "summary": report["summary"],
        });
        let message = LoggingMessageNotificationParam::new(level, data).with_logger("tenet");
        if let Err(error) = peer.notify_logging_message(message).await {
            tracing::debug!(%error, "a log notification could not be sent");
        }
    }

    /// Serves one `tools/call`: finds the tool, has the governor take it through Tenet,
    /// and makes the result.
    async fn governed_call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let view = self.view();
        let governor = &self.inner.governor;
        let agent_id = self.agent_id(&context);
        let scopes = self.inner.options.scopes.as_ref();
        let mut arguments = request.arguments.unwrap_or_default();
        let mut progress = ProgressReporter::new(&context);
        let (tool, arguments) = match &*request.name {
            JOB_STATUS_TOOL => {
                let job_ref = match job_ref_argument(&arguments) {
                    Ok(job_ref) => job_ref,
                    Err(problem) => {
                        return Ok(
                            tool_result(&CallReport::error(JOB_STATUS_TOOL, "", problem)).into(),
                        );
                    }
                };
                let report = governor
                    .job_status(job_ref, agent_id, &context.ct, &mut progress)
                    .await;
                return Ok(self.finish(report, agent_id).into());
            }
            SEARCH_TOOL if let Some(index) = &view.index => {
                return Ok(match discovery::search_arguments(&arguments) {
                    Ok((query, limit)) => {
                        let grant = self.tool_grant(&context);
                        let allowed = |i: usize| {
                            view.catalog.tools().get(i).is_some_and(|tool| {
                                scopes.is_none_or(|scopes| scopes.allows(agent_id, &tool.name))
                                    && grant.is_none_or(|ToolGrant(granted)| {
                                        granted.contains(&tool.name)
                                    })
                            })
                        };
                        let hits = index.search(query, limit, allowed);
                        discovery::search_result(
                            hits.into_iter().filter_map(|i| view.catalog.tools().get(i)),
                        )
                    }
                    Err(problem) => discovery::refusal(problem),
                }
                .into());
            }
            DESCRIBE_TOOL if view.index.is_some() => {
                let described = discovery::name_argument(&arguments).and_then(|name| {
                    let grant = self.tool_grant(&context);
                    let tool = view
                        .find(name, agent_id, scopes, true)
                        .filter(|tool| {
                            grant.is_none_or(|ToolGrant(granted)| granted.contains(&tool.name))
                        })
                        .ok_or_else(|| discovery::unknown_tool(name))?;
                    let mcp = view
                        .definitions()
                        .get(&tool.mcp_name)
                        .ok_or_else(|| discovery::unknown_tool(name))?;
                    Ok(discovery::describe_result(tool, mcp))
                });
                return Ok(described.unwrap_or_else(discovery::refusal).into());
            }
            CALL_TOOL if view.index.is_some() => {
                let name = match discovery::name_argument(&arguments) {
                    Ok(name) => name.to_owned(),
                    Err(problem) => {
                        return Ok(tool_result(&CallReport::error(CALL_TOOL, "", problem)).into());
                    }
                };
                let Some(tool) = view.find(&name, agent_id, scopes, true) else {
                    self.log_refusal(&view, &name, agent_id);
                    let shown: String = name.chars().take(200).collect();
                    let report = CallReport::error(&shown, "", discovery::unknown_tool(&name));
                    return Ok(tool_result(&report).into());
                };
                match discovery::call_arguments(&mut arguments) {
                    Ok(arguments) => (tool, arguments),
                    Err(problem) => {
                        return Ok(tool_result(&CallReport::error(&tool.name, "", problem)).into());
                    }
                }
            }
            name => {
                let Some(tool) = view.find(name, agent_id, scopes, false) else {
                    self.log_refusal(&view, name, agent_id);
                    let finder = if view.index.is_some() {
                        SEARCH_TOOL
                    } else {
                        "tools/list"
                    };
                    return Err(ErrorData::invalid_params(
                        format!(
                            "Unknown tool: {}. Call {finder} for the tools this server offers.",
                            name.chars().take(200).collect::<String>()
                        ),
                        None,
                    ));
                };
                (tool, arguments)
            }
        };
        let tasks = self.inner.tasks.as_ref().filter(|_| {
            context
                .client_capabilities()
                .is_some_and(|caps| caps.supports_tasks())
        });
        let report = match governor
            .submit(tool, arguments, agent_id, &context.ct)
            .await
        {
            Decided::Done(report) => report,
            Decided::Job(job) if let Some(tasks) = tasks => {
                return Ok(self.spawn_task(tasks, job, agent_id).into());
            }
            Decided::Job(job) => {
                let deadline = job.started() + governor.poll_timeout();
                governor
                    .follow_job(job, deadline, &context.ct, &mut progress)
                    .await
            }
        };
        Ok(self.finish(report, agent_id).into())
    }

    /// Logs a governed call's outcome and makes its tool result for `agent` (cutting a
    /// body past `--max-result-bytes`).
    fn finish(&self, report: CallReport, agent: &str) -> CallToolResult {
        report.record_on(&tracing::Span::current());
        let report = self.inner.bodies.fit(report, agent);
        tracing::info!(
            tool = %report.tool,
            status = ?report.status(),
            request_id = %report.request_id,
            job_id = report.job_id.as_deref().unwrap_or(""),
            "tool call governed"
        );
        tool_result(&report)
    }

    /// Logs a call refused because the tool is not shown to `agent` although the catalog has it.
    fn log_refusal(&self, view: &View, name: &str, agent: &str) {
        let known = view
            .catalog
            .by_mcp_name(name)
            .or_else(|| view.catalog.by_name(name));
        if let Some(tool) = known {
            tracing::info!(
                tool = %tool.name,
                agent,
                "refused a call to a tool this server or the agent's --auth-tokens `tools` list does not show; Tenet was not called"
            );
        }
    }
}

/// What a transport put in a request's extensions, or in those of the
/// `http::request::Parts` rmcp attaches (Streamable HTTP).
fn transport_extension<T: Send + Sync + 'static>(
    context: &RequestContext<RoleServer>,
) -> Option<&T> {
    context.extensions.get::<T>().or_else(|| {
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<T>())
    })
}

/// The rank of an MCP log level, least severe first.
#[allow(deprecated)] // MCP logging, deprecated by SEP-2577 but still in 2025-11-25
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}
