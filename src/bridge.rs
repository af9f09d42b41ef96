//! The MCP face of tenet-mcp: catalog tools advertised, calls governed.
//!
//! [`Bridge`] is an rmcp [`ServerHandler`]: `tools/list` serves the catalog as MCP
//! tools (computed once at start), `tools/call` finds the tool by its MCP name and
//! hands the call to the [`Governor`]; the [`CallReport`] becomes a tool result with
//! `structuredContent` and one text block. Transports serve a `Bridge` unchanged.

use std::sync::Arc;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool as McpTool, ToolAnnotations,
    },
    service::RequestContext,
};

use crate::{
    catalog::{Catalog, Tool},
    governor::Governor,
    report::{CallReport, output_schema},
};

/// What the server says about itself at `initialize`.
const INSTRUCTIONS: &str = "Every tool here is a call to an external API governed by Tenet. \
Each result's structuredContent.status says what happened: executed (read execution.body), \
failed, pending (the job is still running), escalated (held for human approval: do not retry), \
blocked (refused by policy: do not retry) or error.";

/// The identity a transport authenticated for a request (e.g. an HTTP bearer token's
/// agent). Put it in the request's extensions, or in the extensions of the
/// `http::request::Parts` rmcp attaches; calls without one use the bridge's agent id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentIdentity(pub String);

/// The agent id a request carries, if a transport attached one.
fn agent_identity(context: &RequestContext<RoleServer>) -> Option<&str> {
    context
        .extensions
        .get::<AgentIdentity>()
        .or_else(|| context.extensions.get::<axum::http::request::Parts>().and_then(|parts| parts.extensions.get::<AgentIdentity>()))
        .map(|identity| identity.0.as_str())
}

/// The MCP server handler. Cheap to clone; every clone serves the same catalog.
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Arc<Catalog>,
    tools: Vec<McpTool>,
    governor: Governor,
    agent_id: String,
}

impl Bridge {
    /// A bridge serving `catalog`, calling Tenet through `governor` as `agent_id`.
    pub fn new(catalog: Arc<Catalog>, governor: Governor, agent_id: String) -> Self {
        let output_schema = Arc::new(output_schema());
        let tools = catalog.tools().iter().map(|tool| mcp_tool(tool, output_schema.clone())).collect();
        Self { inner: Arc::new(Inner { catalog, tools, governor, agent_id }) }
    }

    /// The tools as MCP advertises them.
    pub fn tools(&self) -> &[McpTool] {
        &self.inner.tools
    }
}

/// The MCP definition of a catalog tool.
pub fn mcp_tool(tool: &Tool, output_schema: Arc<serde_json::Map<String, serde_json::Value>>) -> McpTool {
    let annotations = ToolAnnotations::new()
        .read_only(tool.method.is_read_only())
        .destructive(tool.is_irreversible())
        .idempotent(tool.method.is_idempotent())
        .open_world(true);
    let mut mcp = McpTool::new(tool.mcp_name.clone(), tool.description.clone(), tool.input_schema.clone())
        .with_raw_output_schema(output_schema)
        .with_annotations(annotations);
    if let Some(title) = &tool.title {
        mcp = mcp.with_title(title.clone());
    }
    mcp
}

/// The tool result of a report.
pub fn tool_result(report: &CallReport) -> CallToolResult {
    let structured = serde_json::to_value(report).unwrap_or_default();
    let mut result = if report.is_error() {
        CallToolResult::structured_error(structured)
    } else {
        CallToolResult::structured(structured)
    };
    result.content = vec![ContentBlock::text(report.summary())];
    result
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tenet-mcp", env!("CARGO_PKG_VERSION")).with_title("Tenet"))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult { tools: self.inner.tools.clone(), ..Default::default() })
    }

    fn get_tool(&self, name: &str) -> Option<McpTool> {
        self.inner.tools.iter().find(|tool| tool.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let inner = &self.inner;
        let Some(tool) = inner.catalog.by_mcp_name(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {}. Call tools/list for the tools this server offers.", request.name),
                None,
            ));
        };
        let arguments = request.arguments.unwrap_or_default();
        let agent_id = agent_identity(&context).unwrap_or(&inner.agent_id);
        let report = inner.governor.call(tool, arguments, agent_id, &context.ct, |_| {}).await;
        tracing::info!(
            tool = %report.tool,
            status = ?report.status,
            request_id = %report.request_id,
            job_id = report.job_id.as_deref().unwrap_or(""),
            "tool call governed"
        );
        Ok(tool_result(&report).into())
    }
}
