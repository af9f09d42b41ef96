//! The catalog: the services and tools an agent may call through Tenet.
//!
//! A catalog is one JSON file per service (see `catalog/` and the README). Loading
//! validates every file and reports every problem at once, naming the file and tool,
//! so that a server never starts on a catalog it would serve wrongly. A loaded
//! [`Catalog`] is immutable; the bridge and the emulator share it by `Arc`.
//!
//! Loading runs in steps (`Catalog::build`): parse the files, each tool's input
//! schema kept as its JSON text (`parse_all`); read every schema (`read_schemas`);
//! then check each service and tool and index them (`Builder`). What is checked when:
//!
//! - at load, every file: the file format, names, methods, paths, costs, argument
//!   placements, and each input schema's shape (a JSON object with `"type": "object"`,
//!   each path parameter a required property, each placed argument a property);
//! - at load, every file but the shipped one: each input schema against its
//!   meta-schema, with its `pattern`s and `$ref`s compiled. The shipped schemas are the
//!   bytes the test suite checks so (`embedded_catalog_is_valid_and_large_enough`);
//! - at a tool's first use: its input schema becomes a `serde_json` value when it is
//!   first listed, described or called, and its validator is compiled at its first call.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use serde::{
    Deserialize,
    de::{self, IgnoredAny},
};
use serde_json::{Map, Value, value::RawValue};

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
    /// Where each argument goes, when the catalog says (imported catalogs do); an
    /// argument not listed goes where [`Tool::placement`] says by default.
    pub arguments: Arc<BTreeMap<String, Placement>>,
    /// The encoding of the request body.
    pub body: BodyEncoding,
    /// The input schema, with how it was checked and its validator: a tool is made
    /// only with one.
    schema: Arc<InputSchema>,
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

    /// The JSON Schema of the arguments (an object schema). The shipped catalog keeps
    /// it as text until the tool is first listed, described or called.
    pub fn input_schema(&self) -> Arc<Map<String, Value>> {
        self.schema.value()
    }

    /// The names of the input schema's properties, in catalog order (read at load).
    pub fn argument_names(&self) -> &[String] {
        &self.schema.properties
    }

    /// Checks arguments against the input schema; on failure lists every violation,
    /// each as `<location>: <what is wrong>`.
    pub fn validate_arguments(&self, arguments: &Value) -> Result<(), Vec<String>> {
        let validator = match self.schema.validator() {
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// One catalog file as written; each input schema is kept as its text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile<'a> {
    service: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(borrow)]
    tools: Vec<ToolEntry<'a>>,
}

/// One tool of a catalog file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolEntry<'a> {
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
    #[serde(borrow)]
    input_schema: &'a RawValue,
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
    /// schemas is most of a cold start. Every other check runs; each schema stays text
    /// (borrowed from the binary) until its tool is first used.
    pub fn embedded() -> Result<Self, CatalogError> {
        Self::build(
            embedded_sources(),
            SchemaCheck::Shipped,
            SchemaText::Shipped,
        )
    }

    /// The embedded catalog with every input schema checked fully, as any other file is:
    /// what `catalog check` reports on (`serve` skips this meta-check of bytes the test
    /// suite has checked).
    pub fn embedded_fully_checked() -> Result<Self, CatalogError> {
        Self::build(embedded_sources(), SchemaCheck::Full, SchemaText::Shipped)
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
            |text| SchemaText::Owned(text.to_owned()),
        )
    }

    /// Parses and validates (origin, text) pairs: `schemas` says how input schemas are
    /// checked, `keep` how a tool keeps its schema's text.
    fn build<'a>(
        sources: Vec<(String, &'a str)>,
        schemas: SchemaCheck,
        keep: fn(&'a RawValue) -> SchemaText,
    ) -> Result<Self, CatalogError> {
        let mut builder = Builder::default();
        if sources.is_empty() {
            builder.problems.push(Problem {
                file: "(catalog)".into(),
                tool: None,
                message: "no catalog files were found: pass --catalog with a .json file or a folder of them".into(),
            });
        }
        for file in read_schemas(parse_all(sources), schemas, keep) {
            builder.add_file(file);
        }
        builder.finish()
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

/// The last step of a load: checks each parsed file's service and tools, and indexes
/// the sound tools into the catalog.
#[derive(Default)]
struct Builder {
    catalog: Catalog,
    problems: Vec<Problem>,
    /// Each service name and the file that defines it.
    service_origin: HashMap<String, String>,
}

/// The service a file's tools belong to, once its fields are checked.
struct ServiceOf {
    name: Arc<str>,
    base_url: Option<Arc<str>>,
}

impl Builder {
    /// Checks one file: its service, then each of its tools in order.
    fn add_file(&mut self, file: ReadFile<'_>) {
        let origin = file.origin;
        let (header, tools) = match file.contents {
            Ok(contents) => contents,
            Err(error) => {
                self.problems.push(Problem {
                    file: origin,
                    tool: None,
                    message: format!("not a valid catalog file: {error}"),
                });
                return;
            }
        };
        let service = self.check_service(&origin, header);
        for (entry, schema) in tools {
            let name = entry.name.clone();
            let mut problems = Vec::new();
            let tool = self.check_tool(&service, entry, schema, &mut |message| {
                problems.push(message)
            });
            match tool {
                Some(tool) if problems.is_empty() => self.add_tool(tool),
                // Every reason for no tool is reported above; never drop one in silence.
                None if problems.is_empty() => self.report(
                    &origin,
                    Some(name),
                    vec!["the tool could not be loaded".to_owned()],
                ),
                _ => self.report(&origin, Some(name), problems),
            }
        }
    }

    /// Checks a file's `service` and `base_url`.
    fn check_service(&mut self, origin: &str, header: FileHeader) -> ServiceOf {
        let mut problems = Vec::new();
        if header.service.trim().is_empty() {
            problems.push("`service` is empty".to_owned());
        }
        if let Some(first) = self
            .service_origin
            .insert(header.service.clone(), origin.to_owned())
        {
            problems.push(format!(
                "service `{}` is also defined in {first}",
                header.service
            ));
        }
        let base_url = match header.base_url.as_deref() {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                problems.push(format!(
                    "base_url `{url}` must start with http:// or https://"
                ));
                None
            }
            other => other.map(|url| Arc::<str>::from(url.trim_end_matches('/'))),
        };
        self.report(origin, None, problems);
        let name = Arc::from(header.service.as_str());
        self.catalog.services.push(header.service);
        ServiceOf { name, base_url }
    }

    /// Checks one tool of `service`, reporting every problem; the tool, when it could
    /// be made (it joins the catalog only if nothing was reported).
    fn check_tool(
        &self,
        service: &ServiceOf,
        entry: ToolEntry<'_>,
        schema: SchemaReading,
        report: &mut impl FnMut(String),
    ) -> Option<Tool> {
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
        let mcp_name = entry_mcp_name(&entry, report);
        let params = match path_params(&entry.path) {
            Ok(params) if entry.path.starts_with('/') => params,
            Ok(_) => {
                report(format!("path `{}` must start with /", entry.path));
                Vec::new()
            }
            Err(error) => {
                report(format!("path `{}`: {error}", entry.path));
                Vec::new()
            }
        };
        check_input_schema(&schema, &params, report);
        let properties = schema
            .shape
            .as_ref()
            .and_then(|shape| shape.properties.as_deref());
        check_arguments(properties, &entry.arguments, &params, report);
        self.check_names(&entry.name, &mcp_name, report);
        Some(Tool {
            service: service.name.clone(),
            name: entry.name,
            mcp_name,
            title: entry.title,
            description: entry.description,
            method: method?,
            path: entry.path,
            base_url: service.base_url.clone(),
            destructive: entry.destructive,
            cost_usd: entry.cost_usd,
            arguments: Arc::new(entry.arguments),
            body: entry.body,
            schema: Arc::new(schema.into_schema()?),
        })
    }

    /// Checks that a tool's names are free: not reserved, not used by an earlier tool.
    fn check_names(&self, name: &str, mcp_name: &str, report: &mut impl FnMut(String)) {
        if mcp_name == JOB_STATUS_TOOL {
            report(format!(
                "the MCP name `{JOB_STATUS_TOOL}` is reserved for the built-in job status tool"
            ));
        }
        let tools = &self.catalog.tools;
        if let Some(&other) = self.catalog.by_name.get(name) {
            report(format!(
                "the name is also used by a tool of service {}",
                tools[other].service
            ));
        } else if let Some(&other) = self.catalog.by_mcp_name.get(mcp_name) {
            report(format!(
                "its MCP name `{mcp_name}` collides with tool {}",
                tools[other].name
            ));
        }
    }

    /// Indexes a sound tool.
    fn add_tool(&mut self, tool: Tool) {
        let index = self.catalog.tools.len();
        self.catalog.by_name.insert(tool.name.clone(), index);
        self.catalog
            .by_mcp_name
            .insert(tool.mcp_name.clone(), index);
        self.catalog.tools.push(tool);
    }

    /// Records problems of one file (and tool).
    fn report(&mut self, file: &str, tool: Option<String>, messages: Vec<String>) {
        self.problems
            .extend(messages.into_iter().map(|message| Problem {
                file: file.to_owned(),
                tool: tool.clone(),
                message,
            }));
    }

    /// The catalog, or every problem found.
    fn finish(self) -> Result<Catalog, CatalogError> {
        if self.problems.is_empty() {
            Ok(self.catalog)
        } else {
            Err(CatalogError {
                problems: self.problems,
            })
        }
    }
}

/// A tool's MCP name: its `mcp_name`, checked, or the one derived from its name.
fn entry_mcp_name(entry: &ToolEntry<'_>, report: &mut impl FnMut(String)) -> String {
    let name = match entry.mcp_name.as_deref() {
        Some(given) if given.is_empty() || given != mcp_name(given) => {
            report(format!(
                "mcp_name `{given}` must be a non-empty name of letters, digits, `_` or `-`"
            ));
            given.to_owned()
        }
        Some(given) => given.to_owned(),
        None => mcp_name(&entry.name),
    };
    if name.len() > MAX_MCP_NAME_LEN {
        report(format!(
            "its MCP name `{name}` is longer than {MAX_MCP_NAME_LEN} characters"
        ));
    }
    name
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

/// What is wrong with a path template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum PathError {
    #[error("has a `}}` with no `{{` before it")]
    UnopenedBrace,
    #[error("has a `{{` that is never closed")]
    UnclosedBrace,
    #[error("placeholder `{{{0}}}` must be a non-empty name of letters, digits, `_` or `-`")]
    BadPlaceholder(String),
    #[error("placeholder `{{{0}}}` appears twice")]
    RepeatedPlaceholder(String),
}

/// The `{param}` names of a path template, or what is wrong with it.
fn path_params(path: &str) -> Result<Vec<&str>, PathError> {
    let mut params = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(PathError::UnopenedBrace);
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or(PathError::UnclosedBrace)?;
        let name = &after[..close];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(PathError::BadPlaceholder(name.to_owned()));
        }
        if params.contains(&name) {
            return Err(PathError::RepeatedPlaceholder(name.to_owned()));
        }
        params.push(name);
        rest = &after[close + 1..];
    }
    Ok(params)
}

/// Checks what was read of an input schema: its shape, and its check by [`read_schema`].
fn check_input_schema(schema: &SchemaReading, params: &[&str], report: &mut impl FnMut(String)) {
    let Some(shape) = &schema.shape else {
        report("input_schema must be a JSON object".into());
        return;
    };
    if !shape.object_type {
        report(
            "input_schema must have \"type\": \"object\" (MCP tool arguments are an object)".into(),
        );
    }
    for param in params {
        let property = shape
            .properties
            .as_ref()
            .is_some_and(|names| names.iter().any(|name| name == param));
        if !property || !shape.required.iter().any(|name| name == param) {
            report(format!(
                "path parameter `{param}` must be a required property of input_schema"
            ));
        }
    }
    if let Err(error) = &schema.verdict {
        report(format!("input_schema is not a valid JSON Schema: {error}"));
    }
}

/// Checks a tool's `arguments` against the input schema's `properties`: each names a
/// property; path arguments are placeholders of the path under their own name and
/// every placeholder is placed in the path; header names are valid and not reserved.
fn check_arguments(
    properties: Option<&[String]>,
    arguments: &BTreeMap<String, Placement>,
    params: &[&str],
    report: &mut impl FnMut(String),
) {
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
        if !properties.is_some_and(|names| names.contains(argument)) {
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

/// Why an input schema cannot be used.
#[derive(Debug, thiserror::Error)]
enum SchemaError {
    /// The text does not make a `serde_json` value (e.g. a number out of range).
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// It breaks its meta-schema, or a `pattern` or `$ref` does not compile.
    #[error("{0}")]
    Invalid(String),
    /// It is not a JSON object.
    #[error("the schema is not a JSON object")]
    NotAnObject,
    /// The checking thread failed.
    #[error("the schema checker failed")]
    CheckerFailed,
}

/// An input schema's text, as the catalog file has it.
enum SchemaText {
    /// Borrowed from the binary's embedded catalog.
    Shipped(&'static RawValue),
    /// Copied from a file.
    Owned(Box<RawValue>),
}

impl SchemaText {
    fn get(&self) -> &str {
        match self {
            Self::Shipped(text) => text.get(),
            Self::Owned(text) => text.get(),
        }
    }
}

/// The top-level keywords of an input schema that loading checks.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shape {
    /// `"type": "object"`.
    object_type: bool,
    /// The names of `properties`, when it is an object.
    properties: Option<Vec<String>>,
    /// The strings of `required`.
    required: Vec<String>,
}

impl Shape {
    /// Reads the shape of a schema's text without building its value; `None` when the
    /// schema is not a JSON object. The last of repeated keys counts, as in a `Value`.
    fn read(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;
        impl<'de> de::Visitor<'de> for ShapeVisitor {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                let mut shape = Shape::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "type" => shape.object_type = map.next_value::<Value>()? == "object",
                        "properties" => shape.properties = map.next_value::<Keys>()?.0,
                        "required" => shape.required = map.next_value::<Strings>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(shape)
            }
        }
        deserializer.deserialize_map(ShapeVisitor)
    }
}

/// The keys of a JSON object, or `None` for any other value.
struct Keys(Option<Vec<String>>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut keys = Vec::new();
        let is_object = deserializer.deserialize_any(Collect(|item| match item {
            Item::Key(key) => keys.push(key),
            Item::Element(_) => {}
        }))?;
        Ok(Self(is_object.then_some(keys)))
    }
}

/// The strings of a JSON array (other elements skipped), empty for any other value.
struct Strings(Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut strings = Vec::new();
        deserializer.deserialize_any(Collect(|item| match item {
            Item::Element(Value::String(string)) => strings.push(string),
            Item::Element(_) | Item::Key(_) => {}
        }))?;
        Ok(Self(strings))
    }
}

/// What [`Collect`] hands on: an object's key, or an array's element.
enum Item {
    Key(String),
    Element(Value),
}

/// Visits any JSON value, handing on an object's keys (values skipped) or an array's
/// elements; yields whether the value was an object.
struct Collect<F>(F);

impl<'de, F: FnMut(Item)> de::Visitor<'de> for Collect<F> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: de::MapAccess<'de>>(mut self, mut map: A) -> Result<bool, A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            (self.0)(Item::Key(key));
        }
        Ok(true)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(element) = seq.next_element::<Value>()? {
            (self.0)(Item::Element(element));
        }
        Ok(false)
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// How an input schema was checked at load.
enum Verdict {
    /// Fully ([`SchemaCheck::Full`]); its value, already built.
    Checked(Map<String, Value>),
    /// Not against its meta-schema ([`SchemaCheck::Shipped`]): the test suite checks it.
    Shipped,
}

/// What loading read of one tool's input schema.
struct SchemaReading {
    text: SchemaText,
    /// `None` when the schema is not a JSON object.
    shape: Option<Shape>,
    /// The schema's check, or why it failed.
    verdict: Result<Verdict, SchemaError>,
}

/// Reads one input schema: its shape always, and with [`SchemaCheck::Full`] the schema
/// itself ([`check`]).
fn read_schema(text: SchemaText, schemas: SchemaCheck) -> SchemaReading {
    let shape = Shape::read(text.get());
    let verdict = match schemas {
        SchemaCheck::Shipped => Ok(Verdict::Shipped),
        SchemaCheck::Full => serde_json::from_str::<Value>(text.get())
            .map_err(SchemaError::from)
            .and_then(|schema| {
                check(&schema)?;
                match schema {
                    Value::Object(schema) => Ok(Verdict::Checked(schema)),
                    _ => Err(SchemaError::NotAnObject),
                }
            }),
    };
    SchemaReading {
        text,
        shape,
        verdict,
    }
}

impl SchemaReading {
    /// The tool's schema, if it is sound.
    fn into_schema(self) -> Option<InputSchema> {
        let properties = self.shape?.properties.unwrap_or_default();
        let value = match self.verdict.ok()? {
            Verdict::Checked(schema) => OnceLock::from(Ok(Arc::new(schema))),
            Verdict::Shipped => OnceLock::new(),
        };
        Some(InputSchema {
            text: self.text,
            properties,
            value,
            validator: OnceLock::new(),
        })
    }
}

/// A tool's input schema: its text, its property names, its value (built at first
/// use unless the load built it) and its validator (compiled at the first call).
struct InputSchema {
    text: SchemaText,
    properties: Vec<String>,
    value: OnceLock<Result<Arc<Map<String, Value>>, SchemaError>>,
    validator: OnceLock<Result<jsonschema::Validator, SchemaError>>,
}

impl InputSchema {
    /// The schema's value, built from its text at the first use.
    fn parsed(&self) -> &Result<Arc<Map<String, Value>>, SchemaError> {
        self.value.get_or_init(|| {
            serde_json::from_str(self.text.get())
                .map(Arc::new)
                .map_err(SchemaError::from)
        })
    }

    /// The schema's value. A shipped schema whose text makes no value (which the test
    /// suite rules out) shows as a bare object schema; its calls are refused.
    fn value(&self) -> Arc<Map<String, Value>> {
        match self.parsed() {
            Ok(schema) => schema.clone(),
            Err(error) => {
                tracing::error!(%error, "a shipped input schema cannot be read; calls to its tool are refused");
                static BARE: OnceLock<Arc<Map<String, Value>>> = OnceLock::new();
                BARE.get_or_init(|| {
                    Arc::new(Map::from_iter([("type".to_owned(), Value::from("object"))]))
                })
                .clone()
            }
        }
    }

    /// The validator, compiled at the first call.
    fn validator(&self) -> Result<&jsonschema::Validator, &SchemaError> {
        self.validator
            .get_or_init(|| match self.parsed() {
                Ok(schema) => compile(&Value::Object((**schema).clone())),
                Err(error) => Err(SchemaError::Invalid(error.to_string())),
            })
            .as_ref()
    }
}

/// Compiles an input schema into its validator.
fn compile(schema: &Value) -> Result<jsonschema::Validator, SchemaError> {
    jsonschema::validator_for(schema).map_err(|error| SchemaError::Invalid(error.to_string()))
}

/// Checks one schema fully without keeping a validator: against its meta-schema, then
/// what the meta-schema cannot see (each `pattern` is a regex the validator reads,
/// each `$ref` resolves), so that compiling it at first call cannot fail.
fn check(schema: &Value) -> Result<(), SchemaError> {
    jsonschema::meta::validate(schema).map_err(|error| SchemaError::Invalid(error.to_string()))?;
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

/// One catalog file, parsed: its service fields and its tool entries, or why not.
struct ParsedFile<'a> {
    origin: String,
    contents: Result<ServiceFile<'a>, ParseError>,
}

/// A parsed file's fields other than its tools.
struct FileHeader {
    service: String,
    base_url: Option<String>,
}

/// One catalog file with each tool's input schema read.
struct ReadFile<'a> {
    origin: String,
    contents: Result<(FileHeader, Vec<(ToolEntry<'a>, SchemaReading)>), ParseError>,
}

/// Why a catalog file could not be parsed.
#[derive(Debug, thiserror::Error)]
enum ParseError {
    /// Not JSON, or not the catalog format.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// The parsing thread failed.
    #[error("the parser failed")]
    ParserFailed,
}

/// Below this many bytes in all, parsing on one thread beats starting others.
const PARALLEL_PARSE_MIN: usize = 1024 * 1024;

/// Below this many schemas, checking on one thread beats starting others.
const PARALLEL_CHECK_MIN: usize = 64;

/// Parses catalog files, each on its own thread when they are large (the shipped
/// catalog is megabytes of JSON); in order.
fn parse_all<'a>(sources: Vec<(String, &'a str)>) -> Vec<ParsedFile<'a>> {
    let total: usize = sources.iter().map(|(_, text)| text.len()).sum();
    let threads = if total < PARALLEL_PARSE_MIN {
        1
    } else {
        sources.len()
    };
    let parsed = parallel_map(
        &sources,
        threads,
        |(_, text)| serde_json::from_str(text).map_err(ParseError::from),
        || Err(ParseError::ParserFailed),
    );
    sources
        .into_iter()
        .zip(parsed)
        .map(|((origin, _), contents)| ParsedFile { origin, contents })
        .collect()
}

/// Reads every tool's input schema ([`read_schema`]), spread over the machine's cores
/// when there are many: a full check is most of a large catalog's load time.
fn read_schemas<'a>(
    files: Vec<ParsedFile<'a>>,
    schemas: SchemaCheck,
    keep: fn(&'a RawValue) -> SchemaText,
) -> Vec<ReadFile<'a>> {
    let entries: Vec<&ToolEntry<'a>> = files
        .iter()
        .filter_map(|file| file.contents.as_ref().ok())
        .flat_map(|file| &file.tools)
        .collect();
    let threads = if entries.len() < PARALLEL_CHECK_MIN {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(8)
    };
    let readings = parallel_map(
        &entries,
        threads,
        |entry| read_schema(keep(entry.input_schema), schemas),
        || SchemaReading {
            text: SchemaText::Owned(RawValue::NULL.to_owned()),
            shape: None,
            verdict: Err(SchemaError::CheckerFailed),
        },
    );
    let mut readings = readings.into_iter();
    files
        .into_iter()
        .map(|file| ReadFile {
            origin: file.origin,
            contents: file.contents.map(|file| {
                let header = FileHeader {
                    service: file.service,
                    base_url: file.base_url,
                };
                // One reading per entry, in the order `entries` listed them.
                let tools = file.tools.into_iter().zip(readings.by_ref()).collect();
                (header, tools)
            }),
        })
        .collect()
}

/// Maps `items` in order on up to `threads` scoped threads; the items of a thread that
/// failed map to `failed()`.
fn parallel_map<T: Sync, U: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> U + Sync,
    failed: impl Fn() -> U,
) -> Vec<U> {
    if threads <= 1 || items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let worker = scope.spawn(move || part.iter().map(f).collect::<Vec<_>>());
                (part.len(), worker)
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|(len, worker)| {
                worker
                    .join()
                    .unwrap_or_else(|_| (0..len).map(|_| failed()).collect())
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
        // where they are, fully (`embedded_fully_checked` loaded), from the very bytes the
        // binary embeds; and each one's text, read at first use, makes the same schema.
        for (tool, checked) in catalog.tools().iter().zip(checked.tools()) {
            assert_eq!(tool.name, checked.name);
            assert!(tool.schema.parsed().is_ok(), "{}", tool.name);
            assert_eq!(tool.input_schema(), checked.input_schema(), "{}", tool.name);
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
    fn a_shipped_schema_stays_text_until_its_tool_is_first_used() {
        let catalog = Catalog::embedded().unwrap();
        let delete = catalog.by_name("github.repos.delete").unwrap();
        assert!(delete.schema.value.get().is_none(), "parsed at load");
        assert!(delete.argument_names().iter().any(|name| name == "owner"));
        let schema = delete.input_schema();
        assert_eq!(schema["required"], json!(["owner", "repo"]));
        assert!(delete.schema.value.get().is_some());
        // A file given with --catalog is parsed fully at load, to be checked.
        let loaded = load(&[json!({"service": "s", "tools": [tool("s.get", "GET", "/", json!({"type": "object"}))]})]).unwrap();
        assert!(loaded.tools()[0].schema.value.get().is_some());
    }

    #[test]
    fn the_shape_of_a_schema_is_read_from_its_text() {
        let shape = |text: &str| Shape::read(text);
        assert_eq!(shape("[]"), None);
        assert_eq!(shape("\"object\""), None);
        assert_eq!(
            shape(
                r#"{"type": "object", "properties": {"a": {"type": "string", "properties": {"x": 1}}, "b\u0021": true}, "required": ["a", 3, "c"], "x": [1, {"y": 2}]}"#
            ),
            Some(Shape {
                object_type: true,
                properties: Some(vec!["a".into(), "b!".into()]),
                required: vec!["a".into(), "c".into()],
            })
        );
        // Wrong types are not errors here (the full check names them): they make no
        // properties, no required names, no object type. The last repeated key counts.
        assert_eq!(
            shape(r#"{"type": ["object"], "properties": [{"a": 1}], "required": "a"}"#),
            Some(Shape::default())
        );
        assert_eq!(
            shape(
                r#"{"type": "string", "type": "object", "properties": 3, "properties": {"b": {}}}"#
            ),
            Some(Shape {
                object_type: true,
                properties: Some(vec!["b".into()]),
                required: Vec::new(),
            })
        );
    }

    #[test]
    fn a_schema_text_that_makes_no_value_is_refused_at_load_or_first_call() {
        let schema =
            r#"{"type": "object", "properties": {"n": {"type": "number", "maximum": 1e400}}}"#;
        let text = format!(
            r#"{{"service": "s", "tools": [{{"name": "s.get", "description": "d", "method": "GET", "path": "/", "input_schema": {schema}}}]}}"#
        );
        let found = problems(Catalog::from_sources(vec![Source {
            origin: "f.json".into(),
            text: text.clone(),
        }]));
        assert!(
            found[0].starts_with(
                "f.json: tool s.get: input_schema is not a valid JSON Schema: number out of range"
            ),
            "{found:?}"
        );
        let shipped = Catalog::build(
            vec![("embedded:s.json".into(), text.as_str())],
            SchemaCheck::Shipped,
            |text| SchemaText::Owned(text.to_owned()),
        )
        .unwrap();
        let get = shipped.by_name("s.get").unwrap();
        assert_eq!(
            Value::Object((*get.input_schema()).clone()),
            json!({"type": "object"})
        );
        let refused = get.validate_arguments(&json!({})).unwrap_err();
        assert!(
            refused[0].contains("does not compile (number out of range"),
            "{refused:?}"
        );
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
            Catalog::build(
                vec![("embedded:s.json".into(), text)],
                SchemaCheck::Shipped,
                |text| SchemaText::Owned(text.to_owned()),
            )
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
