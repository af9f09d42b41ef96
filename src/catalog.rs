//! The catalog: the services and tools an agent may call through Tenet.
//!
//! A catalog is one JSON file per service (see `catalog/` and the README). Loading
//! validates every file completely and reports every problem at once, naming the
//! file and tool, so that a server never starts on a catalog it would serve wrongly.
//! A loaded [`Catalog`] is immutable; the bridge and the emulator share it by `Arc`.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use serde::Deserialize;
use serde_json::{Map, Value};

/// The shipped catalog, one file per service: (file name, contents). A test checks
/// that this list names every file in the repository's `catalog/` folder.
static EMBEDDED_CATALOG: &[(&str, &str)] = &[
    ("github.json", include_str!("../catalog/github.json")),
    ("slack.json", include_str!("../catalog/slack.json")),
    ("stripe.json", include_str!("../catalog/stripe.json")),
];

/// The longest tool name MCP clients reliably accept.
pub const MAX_MCP_NAME_LEN: usize = 64;

/// The MCP name of the bridge's built-in job status tool, reserved in every catalog.
pub const JOB_STATUS_TOOL: &str = "tenet_job_status";

/// The largest catalog file read, so a wrong path cannot exhaust memory.
pub const MAX_CATALOG_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// An HTTP method a catalog tool resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// `GET`: reads.
    Get,
    /// `HEAD`: reads headers only.
    Head,
    /// `POST`: creates or acts.
    Post,
    /// `PUT`: replaces.
    Put,
    /// `PATCH`: updates.
    Patch,
    /// `DELETE`: irreversible; Tenet gates it.
    Delete,
}

impl HttpMethod {
    /// Parses an upper-case method name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            _ => return None,
        })
    }

    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    /// GET and HEAD change nothing.
    pub fn is_read_only(self) -> bool {
        matches!(self, Self::Get | Self::Head)
    }

    /// Repeating the call has no further effect (RFC 9110 §9.2.2).
    pub fn is_idempotent(self) -> bool {
        matches!(self, Self::Get | Self::Head | Self::Put | Self::Delete)
    }

    /// Whether non-path arguments travel in the query string rather than a JSON body.
    pub fn sends_query(self) -> bool {
        matches!(self, Self::Get | Self::Head | Self::Delete)
    }
}

/// Where an argument travels in the real request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// A `{param}` of the path template.
    Path,
    /// The query string.
    Query,
    /// A request header.
    Header,
    /// A field of the request body.
    Body,
}

impl Location {
    /// The location's name in catalog files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Query => "query",
            Self::Header => "header",
            Self::Body => "body",
        }
    }
}

/// How the request body is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    /// `application/json`.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`, objects and arrays in bracket notation
    /// (`metadata[plan]=pro`, `expand[]=x`), as Stripe takes it.
    Form,
}

/// Where one argument goes: its location, and its name on the wire when that differs
/// from the argument's name (two locations using one name).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The location.
    #[serde(rename = "in")]
    pub location: Location,
    /// The name on the wire; the argument's own name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `deepObject` for a query array sent as `name[]=a&name[]=b` (the default repeats
    /// `name=a&name=b`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<QueryStyle>,
}

/// How a query argument holding an array is spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum QueryStyle {
    /// Brackets: `name[]=a&name[]=b`, `name[key]=v`.
    #[serde(rename = "deepObject")]
    DeepObject,
}

/// Header names an argument may not set: the request's framing, its target and its
/// credential belong to the emulator.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "cookie",
    "host",
    "proxy-authorization",
    "te",
    "transfer-encoding",
    "upgrade",
];

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One tool of the catalog, validated.
#[derive(Clone)]
pub struct Tool {
    /// The service the tool belongs to (the catalog file's `service`).
    pub service: Arc<str>,
    /// The Tenet tool name, e.g. `github.repos.delete`.
    pub name: String,
    /// The MCP tool name, e.g. `github_repos_delete`.
    pub mcp_name: String,
    /// A short human-readable title.
    pub title: Option<String>,
    /// What the tool does, written for a model.
    pub description: String,
    /// The HTTP method of the real request.
    pub method: HttpMethod,
    /// The path template of the real request, e.g. `/repos/{owner}/{repo}`.
    pub path: String,
    /// The service's base URL, when the catalog names one.
    pub base_url: Option<Arc<str>>,
    /// Flagged irreversible although its method alone would not say so.
    pub destructive: bool,
    /// What one call costs, counted against cost caps.
    pub cost_usd: f64,
    /// The JSON Schema of the arguments (an object schema).
    pub input_schema: Arc<Map<String, Value>>,
    /// Where each argument goes, when the catalog says (imported catalogs do); an
    /// argument not listed goes where [`Tool::placement`] says by default.
    pub arguments: Arc<BTreeMap<String, Placement>>,
    /// The encoding of the request body.
    pub body: BodyEncoding,
    /// Compiled at the tool's first call (the schema was checked at load).
    validator: Arc<OnceLock<Result<jsonschema::Validator, String>>>,
}

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Tool {
    /// Irreversible: every DELETE, and any tool flagged `destructive`.
    pub fn is_irreversible(&self) -> bool {
        self.method == HttpMethod::Delete || self.destructive
    }

    /// Where an argument goes and its name on the wire: as the catalog's `arguments`
    /// say, else a path placeholder in the path, the rest in the query for
    /// GET/HEAD/DELETE and in the body otherwise.
    pub fn placement<'a>(&'a self, argument: &'a str) -> (Location, &'a str) {
        if let Some(placement) = self.arguments.get(argument) {
            return (
                placement.location,
                placement.name.as_deref().unwrap_or(argument),
            );
        }
        let location = if self.path_params().contains(&argument) {
            Location::Path
        } else if self.method.sends_query() {
            Location::Query
        } else {
            Location::Body
        };
        (location, argument)
    }

    /// Whether the catalog places arguments itself (the `arguments` field).
    pub fn declares_arguments(&self) -> bool {
        !self.arguments.is_empty()
    }

    /// Names of the `{param}` placeholders of the path, in order.
    pub fn path_params(&self) -> Vec<&str> {
        path_params(&self.path).unwrap_or_default()
    }

    /// Checks arguments against the input schema; on failure lists every violation,
    /// each as `<location>: <what is wrong>`.
    pub fn validate_arguments(&self, arguments: &Value) -> Result<(), Vec<String>> {
        let validator = self
            .validator
            .get_or_init(|| compile(&Value::Object((*self.input_schema).clone())));
        let validator = match validator {
            Ok(validator) => validator,
            Err(error) => {
                return Err(vec![format!(
                    "arguments: the tool's input_schema does not compile ({error}); fix it in the catalog"
                )]);
            }
        };
        let problems: Vec<String> = validator
            .iter_errors(arguments)
            .map(|error| {
                let at = error.instance_path().to_string();
                let at = if at.is_empty() {
                    "arguments".to_owned()
                } else {
                    format!("arguments{at}")
                };
                format!("{at}: {error}")
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// A validated set of services and their tools.
#[derive(Debug, Default)]
pub struct Catalog {
    tools: Vec<Tool>,
    by_mcp_name: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
    services: Vec<String>,
}

/// One problem found in a catalog: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The catalog file (path, or `embedded:<name>` for the shipped catalog).
    pub file: String,
    /// The tool concerned, if the problem is about one tool.
    pub tool: Option<String>,
    /// What is wrong, and where useful, what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tool {
            Some(tool) => write!(f, "{}: tool {tool}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every problem that kept a catalog from loading.
#[derive(Clone, Debug, thiserror::Error)]
pub struct CatalogError {
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the catalog is invalid ({} problem(s)):",
            self.problems.len()
        )?;
        for problem in &self.problems {
            writeln!(f, "  {problem}")?;
        }
        write!(
            f,
            "fix the files named above, then run `tenet-mcp catalog check` to confirm"
        )
    }
}

/// One catalog file's text and where it came from.
#[derive(Clone, Debug)]
pub struct Source {
    /// A path, or `embedded:<name>`.
    pub origin: String,
    /// The file's contents.
    pub text: String,
}

/// How [`Catalog::build`] checks input schemas.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SchemaCheck {
    /// Against the meta-schema, with every `pattern` and `$ref` compiled ([`check`]).
    Full,
    /// Not against the meta-schema: the shipped catalog, checked by the test suite.
    /// The shape checks (an object schema, path parameters required) still run.
    Shipped,
}

/// The embedded catalog files, named `embedded:<file>`.
fn embedded_sources() -> Vec<(String, &'static str)> {
    EMBEDDED_CATALOG
        .iter()
        .map(|(name, text)| (format!("embedded:{name}"), *text))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    service: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    tools: Vec<ToolEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolEntry {
    name: String,
    #[serde(default)]
    mcp_name: Option<String>,
    #[serde(default)]
    title: Option<String>,
    description: String,
    method: String,
    path: String,
    #[serde(default)]
    destructive: bool,
    #[serde(default)]
    cost_usd: f64,
    input_schema: Value,
    #[serde(default)]
    arguments: BTreeMap<String, Placement>,
    #[serde(default)]
    body: BodyEncoding,
}

impl Catalog {
    /// The catalog shipped in the binary (the repository's `catalog/` at build time).
    ///
    /// Its schemas are not meta-checked again here: they are the very bytes the test
    /// suite checks (`embedded_catalog_is_valid_and_large_enough`), and checking 1,800
    /// schemas is most of a cold start. Every other check runs, and each validator is
    /// compiled at its tool's first call as for any catalog.
    pub fn embedded() -> Result<Self, CatalogError> {
        Self::build(embedded_sources(), SchemaCheck::Shipped)
    }

    /// The embedded catalog with every input schema checked fully, as any other file is:
    /// what `catalog check` reports on (`serve` skips this meta-check of bytes the test
    /// suite has checked).
    pub fn embedded_fully_checked() -> Result<Self, CatalogError> {
        Self::build(embedded_sources(), SchemaCheck::Full)
    }

    /// Loads catalog files; each path is a `.json` file or a folder of them.
    pub fn load(paths: &[PathBuf]) -> Result<Self, CatalogError> {
        let mut sources = Vec::new();
        let mut problems = Vec::new();
        for path in paths {
            read_sources(path, &mut sources, &mut problems);
        }
        if !problems.is_empty() {
            return Err(CatalogError { problems });
        }
        Self::from_sources(sources)
    }

    /// Loads from the given paths, or the embedded catalog when there are none.
    pub fn load_or_embedded(paths: &[PathBuf]) -> Result<Self, CatalogError> {
        if paths.is_empty() {
            Self::embedded()
        } else {
            Self::load(paths)
        }
    }

    /// Parses and validates catalog texts, every input schema fully.
    pub fn from_sources(sources: Vec<Source>) -> Result<Self, CatalogError> {
        Self::build(
            sources
                .iter()
                .map(|source| (source.origin.clone(), source.text.as_str()))
                .collect(),
            SchemaCheck::Full,
        )
    }

    /// Parses and validates (origin, text) pairs; `schemas` says how input schemas are checked.
    fn build(sources: Vec<(String, &str)>, schemas: SchemaCheck) -> Result<Self, CatalogError> {
        let mut catalog = Catalog::default();
        let mut problems = Vec::new();
        let mut service_origin: HashMap<String, String> = HashMap::new();
        if sources.is_empty() {
            problems.push(Problem {
                file: "(catalog)".into(),
                tool: None,
                message: "no catalog files were found: pass --catalog with a .json file or a folder of them".into(),
            });
        }
        let files = parse_all(sources);
        let mut checked = match schemas {
            SchemaCheck::Full => {
                let schemas: Vec<&Value> = files
                    .iter()
                    .filter_map(|(_, file)| file.as_ref().ok())
                    .flat_map(|file| file.tools.iter().map(|entry| &entry.input_schema))
                    .collect();
                check_all(&schemas)
            }
            SchemaCheck::Shipped => Vec::new(),
        }
        .into_iter();
        for (origin, file) in files {
            let file: ServiceFile = match file {
                Ok(file) => file,
                Err(error) => {
                    problems.push(Problem {
                        file: origin.clone(),
                        tool: None,
                        message: format!("not a valid catalog file: {error}"),
                    });
                    continue;
                }
            };
            let problem = |tool: Option<&str>, message: String| Problem {
                file: origin.clone(),
                tool: tool.map(str::to_owned),
                message,
            };
            if file.service.trim().is_empty() {
                problems.push(problem(None, "`service` is empty".into()));
            }
            if let Some(first) = service_origin.insert(file.service.clone(), origin.clone()) {
                problems.push(problem(
                    None,
                    format!("service `{}` is also defined in {first}", file.service),
                ));
            }
            let base_url = match file.base_url.as_deref() {
                Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                    problems.push(problem(
                        None,
                        format!("base_url `{url}` must start with http:// or https://"),
                    ));
                    None
                }
                other => other.map(|url| Arc::<str>::from(url.trim_end_matches('/'))),
            };
            let service: Arc<str> = Arc::from(file.service.as_str());
            catalog.services.push(file.service.clone());
            for entry in file.tools {
                let before = problems.len();
                let mut report =
                    |message: String| problems.push(problem(Some(&entry.name), message));
                let method = HttpMethod::parse(&entry.method);
                if method.is_none() {
                    report(format!(
                        "method `{}` is not one of GET, HEAD, POST, PUT, PATCH, DELETE",
                        entry.method
                    ));
                }
                if entry.name.trim().is_empty() {
                    report("`name` is empty".into());
                }
                if entry.description.trim().is_empty() {
                    report("`description` is empty: write one for the model".into());
                }
                if !(entry.cost_usd.is_finite() && entry.cost_usd >= 0.0) {
                    report(format!("cost_usd {} must be a number >= 0", entry.cost_usd));
                }
                let mcp_name = match entry.mcp_name.as_deref() {
                    Some(given) if given.is_empty() || given != self::mcp_name(given) => {
                        report(format!(
                            "mcp_name `{given}` must be a non-empty name of letters, digits, `_` or `-`"
                        ));
                        given.to_owned()
                    }
                    Some(given) => given.to_owned(),
                    None => self::mcp_name(&entry.name),
                };
                if mcp_name.len() > MAX_MCP_NAME_LEN {
                    report(format!(
                        "its MCP name `{mcp_name}` is longer than {MAX_MCP_NAME_LEN} characters"
                    ));
                }
                let params = match path_params(&entry.path) {
                    Ok(params) if entry.path.starts_with('/') => params,
                    Ok(_) => {
                        report(format!("path `{}` must start with /", entry.path));
                        Vec::new()
                    }
                    Err(message) => {
                        report(format!("path `{}`: {message}", entry.path));
                        Vec::new()
                    }
                };
                let checked = match schemas {
                    SchemaCheck::Full => {
                        checked.next().unwrap_or_else(|| Err("not checked".into()))
                    }
                    SchemaCheck::Shipped => Ok(()),
                };
                let sound = check_input_schema(&entry.input_schema, checked, &params, &mut report);
                check_arguments(&entry.input_schema, &entry.arguments, &params, &mut report);
                if mcp_name == JOB_STATUS_TOOL {
                    report(format!(
                        "the MCP name `{JOB_STATUS_TOOL}` is reserved for the built-in job status tool"
                    ));
                }
                if let Some(&other) = catalog.by_name.get(&entry.name) {
                    report(format!(
                        "the name is also used by a tool of service {}",
                        catalog.tools[other].service
                    ));
                } else if let Some(&other) = catalog.by_mcp_name.get(&mcp_name) {
                    report(format!(
                        "its MCP name `{mcp_name}` collides with tool {}",
                        catalog.tools[other].name
                    ));
                }
                let (Some(method), true, true) = (method, sound, problems.len() == before) else {
                    continue;
                };
                let Value::Object(schema) = entry.input_schema else {
                    continue;
                };
                let index = catalog.tools.len();
                catalog.by_name.insert(entry.name.clone(), index);
                catalog.by_mcp_name.insert(mcp_name.clone(), index);
                catalog.tools.push(Tool {
                    service: service.clone(),
                    name: entry.name,
                    mcp_name,
                    title: entry.title,
                    description: entry.description,
                    method,
                    path: entry.path,
                    base_url: base_url.clone(),
                    destructive: entry.destructive,
                    cost_usd: entry.cost_usd,
                    input_schema: Arc::new(schema),
                    arguments: Arc::new(entry.arguments),
                    body: entry.body,
                    validator: Arc::new(OnceLock::new()),
                });
            }
        }
        if problems.is_empty() {
            Ok(catalog)
        } else {
            Err(CatalogError { problems })
        }
    }

    /// Every tool, in catalog order.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// The service names, in catalog order.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// Looks a tool up by its MCP name.
    pub fn by_mcp_name(&self, name: &str) -> Option<&Tool> {
        self.by_mcp_name.get(name).map(|&i| &self.tools[i])
    }

    /// Looks a tool up by its Tenet name.
    pub fn by_name(&self, name: &str) -> Option<&Tool> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }
}

/// The MCP name of a catalog name: every character outside `[A-Za-z0-9_-]` becomes `_`.
pub fn mcp_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The `{param}` names of a path template, or what is wrong with it.
fn path_params(path: &str) -> Result<Vec<&str>, String> {
    let mut params = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err("has a `}` with no `{` before it".into());
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("has a `{` that is never closed")?;
        let name = &after[..close];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "placeholder `{{{name}}}` must be a non-empty name of letters, digits, `_` or `-`"
            ));
        }
        if params.contains(&name) {
            return Err(format!("placeholder `{{{name}}}` appears twice"));
        }
        params.push(name);
        rest = &after[close + 1..];
    }
    Ok(params)
}

/// Checks an input schema's shape, given its check by [`check_all`]; whether it is sound.
fn check_input_schema(
    schema: &Value,
    checked: Result<(), String>,
    params: &[&str],
    report: &mut impl FnMut(String),
) -> bool {
    let Some(object) = schema.as_object() else {
        report("input_schema must be a JSON object".into());
        return false;
    };
    if object.get("type") != Some(&Value::String("object".into())) {
        report(
            "input_schema must have \"type\": \"object\" (MCP tool arguments are an object)".into(),
        );
    }
    let properties = object.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for param in params {
        if !properties.is_some_and(|p| p.contains_key(*param)) || !required.contains(param) {
            report(format!(
                "path parameter `{param}` must be a required property of input_schema"
            ));
        }
    }
    match checked {
        Ok(()) => true,
        Err(error) => {
            report(format!("input_schema is not a valid JSON Schema: {error}"));
            false
        }
    }
}

/// Checks a tool's `arguments`: each names a property of the input schema; path
/// arguments are placeholders of the path under their own name and every placeholder
/// is placed in the path; header names are valid and not reserved.
fn check_arguments(
    schema: &Value,
    arguments: &BTreeMap<String, Placement>,
    params: &[&str],
    report: &mut impl FnMut(String),
) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let mut wires: HashMap<(Location, String), &str> = HashMap::new();
    for (argument, placement) in arguments {
        let wire = placement.name.as_deref().unwrap_or(argument);
        let key = match placement.location {
            Location::Header => wire.to_ascii_lowercase(),
            _ => wire.to_owned(),
        };
        if let Some(other) = wires.insert((placement.location, key), argument) {
            report(format!(
                "arguments: `{other}` and `{argument}` both go to the {} as `{wire}`; give one another `name`",
                placement.location.as_str()
            ));
        }
        if !properties.is_some_and(|p| p.contains_key(argument)) {
            report(format!(
                "arguments: `{argument}` is not a property of input_schema"
            ));
        }
        if wire.is_empty() {
            report(format!("arguments: `{argument}` has an empty `name`"));
        }
        match placement.location {
            Location::Path if wire != argument || !params.contains(&argument.as_str()) => {
                report(format!(
                    "arguments: `{argument}` is placed in the path but the path has no `{{{argument}}}` of that name"
                ));
            }
            Location::Header => {
                let lower = wire.to_ascii_lowercase();
                if reqwest::header::HeaderName::from_bytes(wire.as_bytes()).is_err() {
                    report(format!(
                        "arguments: `{argument}`: `{wire}` is not a valid header name"
                    ));
                } else if RESERVED_HEADERS.contains(&lower.as_str()) {
                    report(format!(
                        "arguments: `{argument}`: the header `{wire}` is set by the emulator, not by an argument"
                    ));
                }
            }
            _ => {}
        }
        if placement.style.is_some() && placement.location != Location::Query {
            report(format!(
                "arguments: `{argument}`: `style` applies to query arguments only"
            ));
        }
    }
    for param in params {
        if let Some(placement) = arguments.get(*param)
            && placement.location != Location::Path
        {
            report(format!(
                "arguments: `{param}` is a placeholder of the path; place it `in: path`"
            ));
        }
    }
}

/// Below this many bytes in all, parsing on one thread beats starting others.
const PARALLEL_PARSE_MIN: usize = 1024 * 1024;

/// Parses catalog files, each on its own thread when they are large (the shipped
/// catalog is megabytes of JSON); in order.
fn parse_all(sources: Vec<(String, &str)>) -> Vec<(String, Result<ServiceFile, String>)> {
    let parse = |(origin, text): (String, &str)| {
        let parsed = serde_json::from_str(text).map_err(|error| error.to_string());
        (origin, parsed)
    };
    let total: usize = sources.iter().map(|(_, text)| text.len()).sum();
    if sources.len() < 2 || total < PARALLEL_PARSE_MIN {
        return sources.into_iter().map(parse).collect();
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = sources
            .into_iter()
            .map(|source| {
                let origin = source.0.clone();
                (origin, scope.spawn(move || parse(source)))
            })
            .collect();
        workers
            .into_iter()
            .map(|(origin, worker)| {
                worker
                    .join()
                    .unwrap_or_else(|_| (origin, Err("the parser failed".into())))
            })
            .collect()
    })
}

/// Below this many schemas, checking on one thread beats starting others.
const PARALLEL_CHECK_MIN: usize = 64;

/// Compiles an input schema into its validator.
fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|error| error.to_string())
}

/// Checks one schema fully without keeping a validator: against its meta-schema, then
/// what the meta-schema cannot see (each `pattern` is a regex the validator reads,
/// each `$ref` resolves), so that compiling it at first call cannot fail.
fn check(schema: &Value) -> Result<(), String> {
    jsonschema::meta::validate(schema).map_err(|error| error.to_string())?;
    let mut refs_or_patterns = false;
    visit_keywords(schema, &mut |key, _| {
        refs_or_patterns |= matches!(
            key,
            "$ref" | "pattern" | "patternProperties" | "$dynamicRef"
        )
    });
    if refs_or_patterns {
        compile(schema)?;
    }
    Ok(())
}

/// Calls `f` with every (keyword, value) of a schema document, at any depth.
fn visit_keywords(value: &Value, f: &mut impl FnMut(&str, &Value)) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                f(key, inner);
                visit_keywords(inner, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| visit_keywords(item, f)),
        _ => {}
    }
}

/// Checks every schema (see [`check`]), in order, spread over the machine's cores:
/// checking is most of a large catalog's load time. Validators are compiled at each
/// tool's first call, which keeps start-up fast with thousands of tools.
fn check_all(schemas: &[&Value]) -> Vec<Result<(), String>> {
    let check = |schema: &&Value| check(schema);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(8);
    if threads == 1 || schemas.len() < PARALLEL_CHECK_MIN {
        return schemas.iter().map(check).collect();
    }
    let chunk = schemas.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = schemas
            .chunks(chunk)
            .map(|part| {
                let worker = scope.spawn(move || part.iter().map(check).collect::<Vec<_>>());
                (part.len(), worker)
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|(len, worker)| {
                worker.join().unwrap_or_else(|_| {
                    (0..len)
                        .map(|_| Err("the schema checker failed".into()))
                        .collect()
                })
            })
            .collect()
    })
}

/// Reads one catalog path (file or folder) into sources.
fn read_sources(path: &Path, sources: &mut Vec<Source>, problems: &mut Vec<Problem>) {
    let origin = path.display().to_string();
    let fail = |message: String| Problem {
        file: origin.clone(),
        tool: None,
        message,
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) => return problems.push(fail(format!("cannot read it: {error}"))),
    };
    if metadata.is_dir() {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
                .collect(),
            Err(error) => return problems.push(fail(format!("cannot list the folder: {error}"))),
        };
        files.sort();
        if files.is_empty() {
            problems.push(fail("the folder holds no .json catalog files".into()));
        }
        for file in files {
            read_sources(&file, sources, problems);
        }
        return;
    }
    if metadata.len() > MAX_CATALOG_FILE_BYTES {
        return problems.push(fail(format!(
            "the file is larger than {MAX_CATALOG_FILE_BYTES} bytes"
        )));
    }
    match std::fs::read_to_string(path) {
        Ok(text) => sources.push(Source { origin, text }),
        Err(error) => problems.push(fail(format!("cannot read it: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn load(files: &[Value]) -> Result<Catalog, CatalogError> {
        Catalog::from_sources(
            files
                .iter()
                .enumerate()
                .map(|(i, v)| Source {
                    origin: format!("f{i}.json"),
                    text: v.to_string(),
                })
                .collect(),
        )
    }

    fn tool(name: &str, method: &str, path: &str, schema: Value) -> Value {
        json!({"name": name, "description": "d", "method": method, "path": path, "input_schema": schema})
    }

    fn problems(result: Result<Catalog, CatalogError>) -> Vec<String> {
        result
            .expect_err("catalog should be rejected")
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn large_catalogs_compile_in_parallel_and_keep_each_schema_with_its_tool() {
        let object = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
        let broken =
            json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": "one"}}});
        let tools = |service: &str, count: usize, broken_at: Option<usize>| {
            let tools: Vec<Value> = (0..count)
                .map(|i| {
                    let schema = if Some(i) == broken_at {
                        broken.clone()
                    } else {
                        object.clone()
                    };
                    tool(&format!("{service}.t{i}"), "GET", "/t", schema)
                })
                .collect();
            json!({"service": service, "tools": tools})
        };
        let count = PARALLEL_CHECK_MIN * 3;
        let catalog = load(&[tools("a", count, None), tools("b", 5, None)]).unwrap();
        assert_eq!(catalog.tools().len(), count + 5);
        let t = catalog.by_name("a.t100").unwrap();
        assert!(t.validate_arguments(&json!({"n": 1})).is_ok());
        assert!(t.validate_arguments(&json!({"n": "x"})).is_err());
        let found = problems(load(&[
            tools("a", count, Some(150)),
            tools("b", 3, Some(2)),
        ]));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("f0.json")
                && found[0].contains("a.t150")
                && found[0].contains("not a valid JSON Schema"),
            "{found:?}"
        );
        assert!(
            found[1].contains("f1.json") && found[1].contains("b.t2"),
            "{found:?}"
        );
    }

    #[test]
    fn large_files_parse_in_parallel_and_keep_their_order_and_origin() {
        let padding = "x".repeat(PARALLEL_PARSE_MIN / 2);
        let file = |service: &str| json!({"service": service, "description": padding, "tools": [tool(&format!("{service}.t"), "GET", "/t", json!({"type": "object"}))]});
        let catalog = load(&[file("a"), file("b"), file("c")]).unwrap();
        assert_eq!(catalog.services(), ["a", "b", "c"]);
        let mut broken = file("b").to_string();
        broken.truncate(broken.len() / 2);
        let found = problems(Catalog::from_sources(vec![
            Source {
                origin: "f0.json".into(),
                text: file("a").to_string(),
            },
            Source {
                origin: "f1.json".into(),
                text: broken,
            },
        ]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("f1.json: not a valid catalog file"),
            "{found:?}"
        );
    }

    #[test]
    fn embedded_catalog_is_valid_and_large_enough() {
        let catalog = Catalog::embedded().unwrap_or_else(|e| panic!("{e}"));
        let checked = Catalog::embedded_fully_checked().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            checked.tools().len(),
            catalog.tools().len(),
            "`catalog check` (every schema meta-checked) and `serve` load the same tools"
        );
        assert!(
            catalog.tools().len() >= 30,
            "only {} tools",
            catalog.tools().len()
        );
        for service in ["github", "stripe", "slack"] {
            assert!(
                catalog.services().iter().any(|s| s == service),
                "missing {service}"
            );
        }
        // The shipped schemas are not meta-checked at load (SchemaCheck::Shipped): this is
        // where they are, fully, from the very bytes the binary embeds.
        let schemas: Vec<Value> = catalog
            .tools()
            .iter()
            .map(|tool| Value::Object((*tool.input_schema).clone()))
            .collect();
        let checked = check_all(&schemas.iter().collect::<Vec<_>>());
        for (tool, checked) in catalog.tools().iter().zip(checked) {
            assert_eq!(checked, Ok(()), "{}", tool.name);
        }
        for tool in catalog.tools() {
            if let Err(problems) = tool.validate_arguments(&json!({})) {
                assert!(
                    !problems.iter().any(|p| p.contains("does not compile")),
                    "{}: {problems:?}",
                    tool.name
                );
            }
        }
        let delete = catalog
            .by_mcp_name("github_repos_delete")
            .expect("github.repos.delete shipped");
        assert_eq!(delete.name, "github.repos.delete");
        assert_eq!(delete.method, HttpMethod::Delete);
    }

    #[test]
    fn shipped_catalogs_skip_only_the_meta_check() {
        let broken =
            json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": "one"}}});
        let text = |schema: &Value| {
            json!({"service": "s", "tools": [tool("s.items.get", "GET", "/items/{id}", schema.clone())]})
                .to_string()
        };
        let shipped = |text: &str| {
            Catalog::build(vec![("embedded:s.json".into(), text)], SchemaCheck::Shipped)
        };
        // A file given with --catalog is checked fully...
        let found = problems(load(&[serde_json::from_str(&text(&broken)).unwrap()]));
        assert!(
            found.iter().any(|p| p.contains("not a valid JSON Schema")),
            "{found:?}"
        );
        // ...the shipped one is not meta-checked at load (the test suite checks it); its
        // shape still is, and a broken schema still fails at its first call.
        let with_id = json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer", "minimum": "one"}}, "required": ["id"]});
        let catalog = shipped(&text(&with_id)).unwrap();
        let errors = catalog
            .by_name("s.items.get")
            .unwrap()
            .validate_arguments(&json!({"id": "1"}))
            .unwrap_err();
        assert!(errors[0].contains("does not compile"), "{errors:?}");
        let found = problems(shipped(&text(&broken)));
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("embedded:s.json: tool s.items.get: path parameter `id`")),
            "{found:?}"
        );
        let found = problems(shipped(&text(&json!({"type": "string"}))));
        assert!(
            found.iter().any(|p| p.contains("\"type\": \"object\"")),
            "{found:?}"
        );
    }

    #[test]
    fn every_catalog_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/catalog");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".json"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = EMBEDDED_CATALOG.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            on_disk, embedded,
            "add new catalog files to EMBEDDED_CATALOG in src/catalog.rs"
        );
    }

    #[test]
    fn mcp_names_replace_every_other_character() {
        assert_eq!(mcp_name("github.repos.delete"), "github_repos_delete");
        assert_eq!(mcp_name("slack.chat.postMessage"), "slack_chat_postMessage");
        assert_eq!(mcp_name("a b/c-d_e:f"), "a_b_c-d_e_f");
    }

    #[test]
    fn valid_tool_loads_with_params_and_flags() {
        let schema = json!({"type": "object", "properties": {"owner": {"type": "string"}, "repo": {"type": "string"}}, "required": ["owner", "repo"]});
        let catalog = load(&[json!({"service": "gh", "base_url": "https://x.test/", "tools": [tool("gh.repos.delete", "DELETE", "/repos/{owner}/{repo}", schema)]})]).unwrap();
        let t = catalog.by_name("gh.repos.delete").unwrap();
        assert_eq!(t.path_params(), ["owner", "repo"]);
        assert!(t.is_irreversible());
        assert_eq!(t.base_url.as_deref(), Some("https://x.test"));
        assert!(
            t.validate_arguments(&json!({"owner": "a", "repo": "b"}))
                .is_ok()
        );
        let errors = t.validate_arguments(&json!({"owner": 5})).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn every_problem_is_reported_with_file_and_tool() {
        let object = json!({"type": "object"});
        let found = problems(load(&[
            json!({"service": "a", "tools": [
                tool("a.bad_method", "FETCH", "/x", object.clone()),
                tool("a.missing_param", "GET", "/x/{id}", object.clone()),
                tool("a.not_object", "GET", "/x", json!({"type": "string"})),
                tool("a.bad_schema", "GET", "/x", json!({"type": "object", "properties": 3})),
                tool("a.bad_regex", "GET", "/x", json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "(unclosed"}}})),
                tool("a.bad_ref", "GET", "/x", json!({"type": "object", "properties": {"s": {"$ref": "#/$defs/missing"}}})),
                tool("a.unclosed", "GET", "/x/{id", object.clone()),
                tool("a.dup", "GET", "/x", object.clone()),
                tool("a.dup", "GET", "/y", object.clone()),
                tool("a_dup", "GET", "/y", object.clone()),
                tool(&"a.".repeat(40), "GET", "/y", object.clone()),
                tool("tenet.job.status", "GET", "/y", object.clone()),
            ]}),
            json!({"service": "a", "tools": []}),
            json!({"service": "b", "tools": [{"name": "b.x"}]}),
        ]));
        let expect = [
            "f0.json: tool a.bad_method: method `FETCH`",
            "f0.json: tool a.missing_param: path parameter `id` must be a required property",
            "f0.json: tool a.not_object: input_schema must have \"type\": \"object\"",
            "f0.json: tool a.bad_schema: input_schema is not a valid JSON Schema",
            "f0.json: tool a.bad_regex: input_schema is not a valid JSON Schema",
            "f0.json: tool a.bad_ref: input_schema is not a valid JSON Schema",
            "f0.json: tool a.unclosed: path `/x/{id`: has a `{` that is never closed",
            "f0.json: tool a.dup: the name is also used",
            "f0.json: tool a_dup: its MCP name `a_dup` collides with tool a.dup",
            "longer than 64 characters",
            "tool tenet.job.status: the MCP name `tenet_job_status` is reserved",
            "f1.json: service `a` is also defined in f0.json",
            "f2.json: not a valid catalog file",
        ];
        for needle in expect {
            assert!(
                found.iter().any(|p| p.contains(needle)),
                "no problem containing {needle:?} in {found:#?}"
            );
        }
    }

    #[test]
    fn argument_placements_are_checked_and_default_as_before() {
        let schema = json!({"type": "object", "properties": {"id": {"type": "string"}, "q": {"type": "string"}, "v": {"type": "string"}, "b": {"type": "string"}}, "required": ["id"]});
        let placed = |arguments: Value| {
            let mut entry = tool("s.items.update", "PATCH", "/items/{id}", schema.clone());
            entry["arguments"] = arguments;
            entry["body"] = json!("form");
            json!({"service": "s", "tools": [entry]})
        };
        let catalog = load(&[placed(json!({
            "id": {"in": "path"}, "q": {"in": "query", "style": "deepObject"},
            "v": {"in": "header", "name": "X-Version"}, "b": {"in": "body", "name": "v"}
        }))])
        .unwrap();
        let t = catalog.by_name("s.items.update").unwrap();
        assert_eq!(t.body, BodyEncoding::Form);
        assert_eq!(t.placement("v"), (Location::Header, "X-Version"));
        assert_eq!(t.placement("b"), (Location::Body, "v"));
        assert_eq!(t.placement("other"), (Location::Body, "other"));

        let legacy = load(&[json!({"service": "s", "tools": [
            tool("s.items.get", "GET", "/items/{id}", schema.clone()),
            tool("s.items.put", "PUT", "/items/{id}", schema.clone())
        ]})])
        .unwrap();
        let get = legacy.by_name("s.items.get").unwrap();
        assert!(!get.declares_arguments());
        assert_eq!(get.body, BodyEncoding::Json);
        assert_eq!(get.placement("id"), (Location::Path, "id"));
        assert_eq!(get.placement("q"), (Location::Query, "q"));
        assert_eq!(
            legacy.by_name("s.items.put").unwrap().placement("q"),
            (Location::Body, "q")
        );

        let found = problems(load(&[placed(json!({
            "id": {"in": "query"}, "q": {"in": "path"}, "v": {"in": "header", "name": "Authorization"},
            "b": {"in": "header", "name": "bad name"}, "nope": {"in": "body"}
        }))]));
        for needle in [
            "`id` is a placeholder of the path; place it `in: path`",
            "`q` is placed in the path but the path has no `{q}`",
            "the header `Authorization` is set by the emulator",
            "`bad name` is not a valid header name",
            "`nope` is not a property of input_schema",
        ] {
            assert!(
                found.iter().any(|p| p.contains(needle)),
                "no {needle:?} in {found:#?}"
            );
        }
        let found = problems(load(&[placed(
            json!({"q": {"in": "body", "name": "v", "style": "deepObject"}, "b": {"in": "body", "name": "v"}}),
        )]));
        assert!(
            found
                .iter()
                .any(|p| p.contains("`b` and `q` both go to the body as `v`")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("`style` applies to query arguments only")),
            "{found:#?}"
        );
        let found = problems(load(&[
            json!({"service": "s", "tools": [{"name": "s.x", "description": "d", "method": "GET", "path": "/", "input_schema": {"type": "object"}, "body": "xml"}]}),
        ]));
        assert!(found[0].contains("not a valid catalog file"), "{found:#?}");
    }

    #[test]
    fn an_explicit_mcp_name_replaces_the_derived_one_and_is_checked() {
        let mut named = tool("s.a.very.long.name", "GET", "/", json!({"type": "object"}));
        named["mcp_name"] = json!("s_short_1234");
        let catalog = load(&[json!({"service": "s", "tools": [named]})]).unwrap();
        assert_eq!(
            catalog.by_mcp_name("s_short_1234").unwrap().name,
            "s.a.very.long.name"
        );
        let mut bad = tool("s.b", "GET", "/", json!({"type": "object"}));
        bad["mcp_name"] = json!("s.b");
        let found = problems(load(&[json!({"service": "s", "tools": [bad]})]));
        assert!(
            found[0].contains("mcp_name `s.b` must be a non-empty name"),
            "{found:#?}"
        );
    }

    #[test]
    fn load_reads_folders_and_names_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let file = json!({"service": "s", "tools": [tool("s.get", "GET", "/", json!({"type": "object"}))]});
        std::fs::write(dir.path().join("s.json"), file.to_string()).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let catalog = Catalog::load(&[dir.path().to_owned()]).unwrap();
        assert_eq!(catalog.tools().len(), 1);
        let missing = dir.path().join("nope.json");
        let found = problems(Catalog::load(std::slice::from_ref(&missing)));
        assert!(
            found[0].starts_with(&missing.display().to_string())
                && found[0].contains("cannot read it"),
            "{found:?}"
        );
    }

    proptest! {
        /// Any document, JSON or not, loads or fails with problems in words; it never panics.
        #[test]
        fn any_catalog_document_loads_or_names_its_problems(
            text in prop_oneof![
                3 => crate::tenet::arbitrary::json_value().prop_map(|value| value.to_string()),
                3 => catalog_like().prop_map(|value| value.to_string()),
                1 => ".{0,64}",
            ]
        ) {
            let loaded = Catalog::from_sources(vec![Source { origin: "fuzz.json".into(), text }]);
            if let Err(error) = loaded {
                prop_assert!(!error.problems.is_empty());
                for problem in &error.problems {
                    prop_assert!(!problem.message.trim().is_empty(), "{:?}", problem);
                }
            }
        }
    }

    /// A service file with arbitrary tools: close enough to valid to reach the checks.
    fn catalog_like() -> impl Strategy<Value = Value> {
        let value = crate::tenet::arbitrary::json_value;
        let tool = (
            prop_oneof![Just(json!("s.items.get")), Just(json!("tenet_job_status")), value()],
            prop_oneof![Just(json!("GET")), Just(json!("DELETE")), value()],
            prop_oneof![Just(json!("/items/{id}")), Just(json!("/{a}/{a}")), Just(json!("/x/{")), value()],
            prop_oneof![
                Just(json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]})),
                value().prop_map(|schema| json!({"type": "object", "properties": {"id": schema}, "required": ["id"]})),
                value(),
            ],
        )
            .prop_map(|(name, method, path, input_schema)| {
                json!({"name": name, "description": "d", "method": method, "path": path, "input_schema": input_schema})
            });
        proptest::collection::vec(tool, 0..4).prop_map(
            |tools| json!({"service": "s", "base_url": "http://127.0.0.1:9", "tools": tools}),
        )
    }
}
