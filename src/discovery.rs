//! Discovery mode (`serve --tool-mode dynamic`): three tools stand for the whole catalog.
//!
//! `tenet_search_tools` ranks the shown tools with BM25 over their name, title,
//! description, path and parameter names (an exact name first); `tenet_describe_tool`
//! returns one tool's input schema and annotations; `tenet_call_tool` calls one, and the
//! bridge governs that call exactly like a direct one. The [`Index`] is built once per
//! catalog; a search scores only the tools sharing a term with the query.

use std::{collections::HashMap, sync::Arc};

use rmcp::model::{CallToolResult, ContentBlock, Tool as McpTool, ToolAnnotations};
use serde_json::{Map, Value, json};

use crate::catalog::Tool;

/// The search tool's MCP name.
pub const SEARCH_TOOL: &str = "tenet_search_tools";
/// The describe tool's MCP name.
pub const DESCRIBE_TOOL: &str = "tenet_describe_tool";
/// The call tool's MCP name.
pub const CALL_TOOL: &str = "tenet_call_tool";

/// Results of a search unless `limit` says otherwise, and the most it may ask for.
pub const DEFAULT_LIMIT: usize = 10;
/// The largest `limit` of a search.
pub const MAX_LIMIT: usize = 50;

/// BM25 parameters.
const K1: f32 = 1.2;
const B: f32 = 0.75;

/// How much a term counts in each field of a tool.
const NAME_WEIGHT: f32 = 3.0;
const TITLE_WEIGHT: f32 = 2.0;
const TEXT_WEIGHT: f32 = 1.0;

/// A search index over a set of tools, each known by a caller-chosen number.
#[derive(Debug, Default)]
pub struct Index {
    /// Each document's caller number and weighted length.
    docs: Vec<(usize, f32)>,
    /// Term → (document, weighted term frequency).
    postings: HashMap<String, Vec<(u32, f32)>>,
    /// Lower-cased catalog and MCP names → document.
    exact: HashMap<String, u32>,
    average_len: f32,
}

impl Index {
    /// Indexes `tools`, each with the number [`Index::search`] returns for it.
    pub fn new<'a>(tools: impl IntoIterator<Item = (usize, &'a Tool)>) -> Self {
        let mut index = Self::default();
        let mut total = 0.0;
        for (number, tool) in tools {
            let Ok(doc) = u32::try_from(index.docs.len()) else {
                break;
            };
            let mut frequencies: HashMap<String, f32> = HashMap::new();
            let mut len = 0.0;
            let mut add = |text: &str, weight: f32| {
                for term in terms(text) {
                    *frequencies.entry(term).or_default() += weight;
                    len += weight;
                }
            };
            add(&tool.name, NAME_WEIGHT);
            if let Some(title) = &tool.title {
                add(title, TITLE_WEIGHT);
            }
            add(&tool.description, TEXT_WEIGHT);
            add(&tool.path, TEXT_WEIGHT);
            for name in tool.argument_names() {
                add(name, TEXT_WEIGHT);
            }
            for (term, frequency) in frequencies {
                index
                    .postings
                    .entry(term)
                    .or_default()
                    .push((doc, frequency));
            }
            index.exact.insert(tool.name.to_lowercase(), doc);
            index.exact.insert(tool.mcp_name.to_lowercase(), doc);
            index.docs.push((number, len));
            total += len;
        }
        index.average_len = if index.docs.is_empty() {
            1.0
        } else {
            total / index.docs.len() as f32
        };
        index
    }

    /// The numbers of the best matches for `query` among those `allowed`, best first:
    /// an exact catalog or MCP name, then by BM25 score (ties by indexing order).
    pub fn search(&self, query: &str, limit: usize, allowed: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut scores = vec![0.0f32; self.docs.len()];
        let n = self.docs.len() as f32;
        let mut query_terms = terms(query);
        query_terms.sort_unstable();
        query_terms.dedup();
        for term in &query_terms {
            let Some(postings) = self.postings.get(term) else {
                continue;
            };
            let df = postings.len() as f32;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(doc, tf) in postings {
                let len = self.docs[doc as usize].1;
                let norm = K1 * (1.0 - B + B * len / self.average_len);
                scores[doc as usize] += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        if let Some(&doc) = self.exact.get(&query.trim().to_lowercase()) {
            scores[doc as usize] = f32::INFINITY;
        }
        let mut hits: Vec<(u32, f32)> = scores
            .into_iter()
            .enumerate()
            .filter(|&(_, score)| score > 0.0)
            .filter_map(|(doc, score)| Some((u32::try_from(doc).ok()?, score)))
            .filter(|&(doc, _)| allowed(self.docs[doc as usize].0))
            .collect();
        hits.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.into_iter()
            .take(limit)
            .map(|(doc, _)| self.docs[doc as usize].0)
            .collect()
    }
}

/// The search terms of `text`: words split at punctuation and camelCase, lower-cased,
/// with a plural `s` (or `ies`) dropped so that `issue` finds `issues`.
fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    let mut flush = |word: &mut String| {
        if !word.is_empty() {
            out.push(stem(&word.to_lowercase()));
            word.clear();
        }
    };
    for c in text.chars() {
        if !c.is_alphanumeric() {
            flush(&mut word);
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            flush(&mut word);
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        word.push(c);
    }
    flush(&mut word);
    out
}

fn stem(word: &str) -> String {
    if let Some(base) = word.strip_suffix("ies")
        && base.len() >= 2
    {
        return format!("{base}y");
    }
    match word.strip_suffix('s') {
        Some(base) if base.len() >= 3 && !base.ends_with('s') => base.to_owned(),
        _ => word.to_owned(),
    }
}

fn object(value: Value) -> Arc<Map<String, Value>> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::default(),
    }
}

/// The three tools of discovery mode; `tenet_call_tool` returns what a direct call does.
pub fn tools(call_output_schema: Arc<Map<String, Value>>) -> Vec<McpTool> {
    let search = McpTool::new(
        SEARCH_TOOL,
        "Find the tools for a task among this server's API operations (GitHub, Stripe, Slack, ...): \
         pass a few keywords or a tool name. Then call tenet_describe_tool for a match's arguments, \
         and tenet_call_tool to run it.",
        object(json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "description": "Keywords or a tool name, e.g. `create issue`."},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
            },
            "required": ["query"],
            "additionalProperties": false
        })),
    )
    .with_title("Search tools")
    .with_raw_output_schema(object(json!({
        "type": "object",
        "properties": {"tools": {"type": "array", "items": {"type": "object"}}},
        "required": ["tools"]
    })))
    .with_annotations(ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false));
    let describe = McpTool::new(
        DESCRIBE_TOOL,
        "The input schema and annotations of one tool found with tenet_search_tools.",
        object(json!({
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1}},
            "required": ["name"],
            "additionalProperties": false
        })),
    )
    .with_title("Describe a tool")
    .with_annotations(
        ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    );
    let call = McpTool::new(
        CALL_TOOL,
        "Call one tool by name with arguments matching its input schema (see tenet_describe_tool). \
         Tenet governs the call; the result is the tool's own.",
        object(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "arguments": {"type": "object"}
            },
            "required": ["name"],
            "additionalProperties": false
        })),
    )
    .with_title("Call a tool")
    .with_raw_output_schema(call_output_schema)
    .with_annotations(ToolAnnotations::new().destructive(true).open_world(true));
    vec![search, describe, call]
}

/// A tool error result with one text block saying what to fix.
pub fn refusal(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// What is wrong with the arguments of a discovery tool, or the tool it names; the
/// text goes back to the model as the call's refusal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// A search without a query.
    #[error(
        "`query` (a non-empty string) is required: pass keywords such as `list issues`, or a tool name"
    )]
    NoQuery,
    /// A search `limit` out of range.
    #[error("`limit` must be an integer from 1 to {MAX_LIMIT}")]
    BadLimit,
    /// No tool name.
    #[error("`name` (a non-empty string) is required: pass a name tenet_search_tools returned")]
    NoName,
    /// `arguments` that are not an object.
    #[error("`arguments` must be an object of the tool's arguments (see tenet_describe_tool)")]
    BadArguments,
    /// A name that is not one of the tools the caller may use (at most 200 characters of it).
    #[error("unknown tool `{0}`: call tenet_search_tools to find the tools this server offers you")]
    UnknownTool(String),
}

/// The refusal's text, for a tool result.
impl From<DiscoveryError> for String {
    fn from(error: DiscoveryError) -> Self {
        error.to_string()
    }
}

/// The `query` and `limit` of a search.
pub fn search_arguments(arguments: &Map<String, Value>) -> Result<(&str, usize), DiscoveryError> {
    let query = match arguments.get("query") {
        Some(Value::String(query)) if !query.trim().is_empty() => query.as_str(),
        _ => return Err(DiscoveryError::NoQuery),
    };
    let limit = match arguments.get("limit") {
        None | Some(Value::Null) => DEFAULT_LIMIT,
        Some(limit) => match limit.as_u64() {
            Some(limit @ 1..) if limit <= MAX_LIMIT as u64 => limit as usize,
            _ => return Err(DiscoveryError::BadLimit),
        },
    };
    Ok((query, limit))
}

/// The search result: `{"tools": [{name, title, method, path, description, destructive}]}`.
pub fn search_result<'a>(matches: impl IntoIterator<Item = &'a Tool>) -> CallToolResult {
    let tools: Vec<Value> = matches
        .into_iter()
        .map(|tool| {
            json!({
                "name": tool.name,
                "title": tool.title.as_deref().unwrap_or_default(),
                "method": tool.method.as_str(),
                "path": tool.path,
                "description": tool.description,
                "destructive": tool.is_irreversible(),
            })
        })
        .collect();
    CallToolResult::structured(json!({ "tools": tools }))
}

/// The `name` argument of `tenet_describe_tool` and `tenet_call_tool`.
pub fn name_argument(arguments: &Map<String, Value>) -> Result<&str, DiscoveryError> {
    match arguments.get("name") {
        Some(Value::String(name)) if !name.is_empty() => Ok(name),
        _ => Err(DiscoveryError::NoName),
    }
}

/// The `arguments` object of `tenet_call_tool` (none: an empty object).
pub fn call_arguments(
    arguments: &mut Map<String, Value>,
) -> Result<Map<String, Value>, DiscoveryError> {
    match arguments.remove("arguments") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(DiscoveryError::BadArguments),
    }
}

/// What `tenet_describe_tool` returns for `tool`, whose MCP definition is `mcp`.
pub fn describe_result(tool: &Tool, mcp: &McpTool) -> CallToolResult {
    CallToolResult::structured(json!({
        "name": tool.name,
        "title": tool.title.as_deref().unwrap_or_default(),
        "description": tool.description,
        "method": tool.method.as_str(),
        "path": tool.path,
        "inputSchema": Value::Object((*tool.input_schema()).clone()),
        "annotations": mcp.annotations,
    }))
}

/// The refusal of a name that is not one of the tools the caller may use.
pub fn unknown_tool(name: &str) -> DiscoveryError {
    DiscoveryError::UnknownTool(name.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Source};

    fn catalog() -> Catalog {
        let tool = |name: &str, title: &str, description: &str, path: &str, params: &[&str]| {
            let properties: Map<String, Value> = params
                .iter()
                .map(|p| ((*p).to_owned(), json!({"type": "string"})))
                .collect();
            let required: Vec<&str> = params
                .iter()
                .copied()
                .filter(|p| path.contains(&format!("{{{p}}}")))
                .collect();
            json!({"name": name, "title": title, "description": description, "method": "GET", "path": path,
                   "input_schema": {"type": "object", "properties": properties, "required": required}})
        };
        let text = json!({"service": "github", "tools": [
            tool("github.repos.get", "Get a repository", "Get one repository.", "/repos/{owner}/{repo}", &["owner", "repo"]),
            tool("github.issues.listForRepo", "List repository issues", "List issues in a repository.", "/repos/{owner}/{repo}/issues", &["owner", "repo", "state"]),
            tool("github.issues.get", "Get an issue", "Get one issue.", "/repos/{owner}/{repo}/issues/{issue_number}", &["owner", "repo", "issue_number"]),
            tool("github.pulls.list", "List pull requests", "List pull requests.", "/repos/{owner}/{repo}/pulls", &["owner", "repo"]),
            tool("github.users.getAuthenticated", "Get the authenticated user", "Get the signed-in user.", "/user", &[]),
        ]});
        Catalog::from_sources(vec![Source {
            origin: "github.json".into(),
            text: text.to_string(),
        }])
        .unwrap()
    }

    fn search(catalog: &Catalog, query: &str, limit: usize) -> Vec<String> {
        let index = Index::new(catalog.tools().iter().enumerate());
        index
            .search(query, limit, |_| true)
            .into_iter()
            .map(|i| catalog.tools()[i].name.clone())
            .collect()
    }

    #[test]
    fn terms_split_camel_case_and_drop_plurals() {
        assert_eq!(
            terms("github.issues.listForRepo"),
            ["github", "issue", "list", "for", "repo"]
        );
        assert_eq!(
            terms("/repos/{owner}/{issue_number}"),
            ["repo", "owner", "issue", "number"]
        );
        assert_eq!(terms("Repositories, ADDRESS"), ["repository", "address"]);
    }

    #[test]
    fn ranks_the_best_match_first_and_exact_names_before_all() {
        let catalog = catalog();
        assert_eq!(
            search(&catalog, "list issues", 1),
            ["github.issues.listForRepo"]
        );
        assert_eq!(search(&catalog, "pull requests", 1), ["github.pulls.list"]);
        assert_eq!(
            search(&catalog, "signed-in user", 1),
            ["github.users.getAuthenticated"]
        );
        assert_eq!(search(&catalog, "issue_number", 1), ["github.issues.get"]);
        // Every tool mentions repos; the exact name still wins, by either name.
        assert_eq!(
            search(&catalog, "github.repos.get", 1),
            ["github.repos.get"]
        );
        assert_eq!(
            search(&catalog, "GITHUB_ISSUES_GET", 1),
            ["github.issues.get"]
        );
        assert!(search(&catalog, "zebra", 10).is_empty());
        assert_eq!(search(&catalog, "repo", 3).len(), 3, "limit is kept");
    }

    #[test]
    fn search_keeps_only_allowed_tools() {
        let catalog = catalog();
        let index = Index::new(catalog.tools().iter().enumerate());
        let hits = index.search("issue", 10, |i| {
            catalog.tools()[i].name != "github.issues.get"
        });
        assert_eq!(hits.len(), 1);
        assert_eq!(catalog.tools()[hits[0]].name, "github.issues.listForRepo");
    }

    #[test]
    fn arguments_are_checked() {
        let args = |value: Value| value.as_object().cloned().unwrap();
        assert_eq!(
            search_arguments(&args(json!({"query": "x"}))).unwrap(),
            ("x", DEFAULT_LIMIT)
        );
        assert_eq!(
            search_arguments(&args(json!({"query": "x", "limit": 3}))).unwrap(),
            ("x", 3)
        );
        for bad in [
            json!({}),
            json!({"query": " "}),
            json!({"query": "x", "limit": 0}),
            json!({"query": "x", "limit": 51}),
            json!({"query": "x", "limit": "3"}),
        ] {
            assert!(search_arguments(&args(bad.clone())).is_err(), "{bad}");
        }
        assert_eq!(
            search_arguments(&args(json!({"query": "x", "limit": 0}))),
            Err(DiscoveryError::BadLimit)
        );
        assert_eq!(
            String::from(name_argument(&args(json!({"name": ""}))).unwrap_err()),
            "`name` (a non-empty string) is required: pass a name tenet_search_tools returned"
        );
        assert_eq!(
            call_arguments(&mut args(json!({"name": "x", "arguments": [1]}))),
            Err(DiscoveryError::BadArguments)
        );
        assert_eq!(
            unknown_tool(&"x".repeat(300)).to_string(),
            format!(
                "unknown tool `{}`: call tenet_search_tools to find the tools this server offers you",
                "x".repeat(200)
            )
        );
        assert_eq!(
            call_arguments(&mut args(json!({"name": "x"}))).unwrap(),
            Map::new()
        );
    }
}
