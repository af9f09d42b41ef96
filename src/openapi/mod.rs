//! `tenet-mcp catalog import`: an OpenAPI 3.0/3.1 description → one catalog file, one
//! tool per operation.
//!
//! [`spec`] loads the description and follows `$ref`s, [`naming`] derives tool names,
//! [`schema`] turns parameters and request bodies into one argument schema. Every
//! operation that cannot be imported is returned with the reason; nothing is dropped
//! silently. The result is checked like any catalog before it is written.

mod naming;
mod schema;
mod spec;

use std::collections::{BTreeMap, HashMap, HashSet};

use globset::{Glob, GlobMatcher};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::Digest;

use crate::catalog::{
    BodyEncoding, Catalog, CatalogError, Location, MAX_MCP_NAME_LEN, Placement, QueryStyle, Source,
    mcp_name,
};
pub use naming::Naming;
use spec::RefError;
pub use spec::{MAX_SPEC_BYTES, SpecError};

/// The HTTP methods of an OpenAPI path item, in the order operations are imported.
const METHODS: &[&str] = &["get", "head", "post", "put", "patch", "delete"];

/// What to import and how.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The service name: the catalog's `service` and every tool name's first part.
    pub service: String,
    /// The base URL; the description's first `servers` entry when absent.
    pub base_url: Option<String>,
    /// How tool names are derived.
    pub naming: Naming,
    /// Only tools whose name matches one of these globs (all when empty).
    pub include: Vec<String>,
    /// Leaves out tools whose name matches one of these globs.
    pub exclude: Vec<String>,
    /// Flags tools whose name matches one of these globs `destructive` (every DELETE is).
    pub destructive: Vec<String>,
    /// Parameters left out of every tool because the credential supplies them (Slack's
    /// `token`), by name, case-insensitively.
    pub omit_params: Vec<String>,
}

/// The outcome of an import.
#[derive(Debug)]
pub struct Imported {
    /// The catalog file, checked, as pretty JSON with a final newline.
    pub text: String,
    /// How many tools it holds.
    pub tools: usize,
    /// Operations not imported: (`METHOD path`, why).
    pub skipped: Vec<(String, String)>,
    /// Renamed collisions, cut cycles and other changes worth a look.
    pub notes: Vec<String>,
}

/// Why nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A `--service` that is no name.
    #[error("--service `{0}` must be a non-empty name of letters, digits, `_` or `-`")]
    Service(String),
    /// The description cannot be read.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// No `--base-url` and no server in the description.
    #[error("the description names no server: pass --base-url")]
    NoServer,
    /// A base URL that is not an absolute http(s) URL.
    #[error("the base URL `{0}` is not an absolute http(s) URL without variables: pass --base-url")]
    BaseUrl(String),
    /// A flag's glob that does not parse.
    #[error("{flag} `{pattern}` is not a glob: {error}")]
    Glob {
        /// `--include`, `--exclude` or `--destructive`.
        flag: &'static str,
        /// The glob as given.
        pattern: String,
        /// What is wrong with it.
        error: globset::Error,
    },
    /// A flag's glob that matches no operation.
    #[error(
        "{flag} `{pattern}` matches no operation's name: check it against the names `catalog import` derives (without flags it imports every operation)"
    )]
    Unmatched {
        /// `--include`, `--exclude` or `--destructive`.
        flag: &'static str,
        /// The glob as given.
        pattern: String,
    },
    /// The catalog file could not be written out.
    #[error("the catalog could not be written as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The imported catalog fails its own check.
    #[error(
        "the imported catalog does not pass its check (a bug in the importer or an unusual description): {0}"
    )]
    Check(#[from] CatalogError),
}

/// Why one operation was not imported.
#[derive(Debug, thiserror::Error)]
enum SkipReason {
    #[error("no name: {0}")]
    Name(#[from] naming::NameError),
    #[error(transparent)]
    Ref(#[from] RefError),
    #[error("a parameter without `name` or `in`")]
    Unnamed,
    #[error("its required cookie parameter `{0}` cannot be sent")]
    RequiredCookie(String),
    #[error("parameter `{name}` is in `{location}`, not path, query, header or cookie")]
    Location { name: String, location: String },
    #[error("its request body is {0}, and tools send JSON or form bodies only")]
    BodyMedia(String),
    #[error("its request body is {0}, not an object of fields")]
    BodyShape(String),
}

/// Imports a description; `Err` when nothing sensible can be written (a broken
/// description, a bad flag, a glob that matches nothing, a catalog that fails its check).
pub fn import(text: &str, options: &ImportOptions) -> Result<Imported, ImportError> {
    let service = options.service.trim();
    if service.is_empty() || service != mcp_name(service) {
        return Err(ImportError::Service(service.to_owned()));
    }
    let spec = spec::Spec::parse(text)?;
    let base_url = base_url(&spec, options.base_url.as_deref())?;
    let globs = |flag: &'static str, patterns: &[String]| {
        patterns
            .iter()
            .map(|pattern| {
                Glob::new(pattern)
                    .map(|glob| (pattern.clone(), glob.compile_matcher()))
                    .map_err(|error| ImportError::Glob {
                        flag,
                        pattern: pattern.clone(),
                        error,
                    })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let include = globs("--include", &options.include)?;
    let exclude = globs("--exclude", &options.exclude)?;
    let destructive = globs("--destructive", &options.destructive)?;

    let no_paths = Map::new();
    let paths = spec
        .root
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&no_paths);
    // (path, method, path item, operation), in path order.
    let operations: Vec<(&str, &str, &Value, &Value)> = paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS.iter().filter_map(move |m| {
                item.get(*m)
                    .filter(|operation| operation.is_object())
                    .map(|operation| (path.as_str(), *m, item, operation))
            })
        })
        .collect();
    let index =
        naming::PathIndex::new(operations.iter().map(|(path, method, ..)| (*path, *method)));
    let mut skipped: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            ["options", "trace"]
                .into_iter()
                .filter(move |m| item.get(*m).is_some())
                .map(move |m| {
                    (
                        format!("{} {path}", m.to_ascii_uppercase()),
                        "a catalog tool is GET, HEAD, POST, PUT, PATCH or DELETE".to_owned(),
                    )
                })
        })
        .collect();
    let mut notes = Vec::new();
    let mut tools: Vec<ToolOut> = Vec::new();
    let mut taken: HashMap<String, String> = HashMap::new();
    let mut matched: HashSet<String> = HashSet::new();
    for &(path, method, item, operation) in &operations {
        let label = format!("{} {path}", method.to_ascii_uppercase());
        let operation_id = operation.get("operationId").and_then(Value::as_str);
        let local = match naming::name(options.naming, method, path, operation_id, &index) {
            Ok(local) => local,
            Err(why) => {
                skipped.push((label, SkipReason::from(why).to_string()));
                continue;
            }
        };
        let mut name = format!("{service}.{local}");
        let mut wanted = |patterns: &[(String, GlobMatcher)], name: &str| {
            let hit = patterns
                .iter()
                .filter(|(_, g)| g.is_match(name))
                .map(|(p, _)| p.clone())
                .collect::<Vec<_>>();
            let any = !hit.is_empty();
            matched.extend(hit);
            any
        };
        if (!include.is_empty() && !wanted(&include, &name)) || wanted(&exclude, &name) {
            continue;
        }
        let is_destructive = method == "delete" || wanted(&destructive, &name);
        let built = match build_tool(&spec, item, operation, options, &mut notes) {
            Ok(built) => built,
            Err(why) => {
                skipped.push((label, why.to_string()));
                continue;
            }
        };
        if let Some(first) = taken.get(&tool_mcp_name(&name)) {
            let mut n = 2;
            while taken.contains_key(&tool_mcp_name(&format!("{name}{n}"))) {
                n += 1;
            }
            let renamed = format!("{name}{n}");
            notes.push(format!(
                "{label}: the name {name} is already {first}'s; named {renamed}"
            ));
            name = renamed;
        }
        let short = tool_mcp_name(&name);
        taken.insert(short.clone(), label.clone());
        let explicit_mcp_name = (short != mcp_name(&name)).then_some(short);
        let summary = operation
            .get("summary")
            .and_then(Value::as_str)
            .map(schema::sentence)
            .filter(|s| !s.is_empty());
        let detail = operation
            .get("description")
            .and_then(Value::as_str)
            .map(schema::sentence)
            .filter(|s| !s.is_empty());
        // The summary says what the tool does; the description's first sentence adds to it.
        let description = match (&summary, detail) {
            (Some(summary), Some(detail)) if !detail.starts_with(summary.trim_end_matches('.')) => {
                schema::cut(&format!("{}. {detail}", summary.trim_end_matches('.')))
            }
            (Some(summary), _) => summary.clone(),
            (None, Some(detail)) => detail,
            (None, None) => format!("{label}."),
        };
        tools.push(ToolOut {
            name,
            mcp_name: explicit_mcp_name,
            title: summary,
            description,
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            destructive: is_destructive,
            body: built.body,
            arguments: built.arguments,
            input_schema: built.schema,
        });
    }
    for (flag, patterns) in [
        ("--include", &include),
        ("--exclude", &exclude),
        ("--destructive", &destructive),
    ] {
        for (pattern, _) in patterns {
            if !matched.contains(pattern) {
                return Err(ImportError::Unmatched {
                    flag,
                    pattern: pattern.clone(),
                });
            }
        }
    }
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    let description = spec
        .root
        .pointer("/info/title")
        .and_then(Value::as_str)
        .map(schema::sentence);
    let file = ServiceOut {
        service: service.to_owned(),
        description,
        base_url,
        tools,
    };
    let count = file.tools.len();
    let mut text = serde_json::to_string_pretty(&file)?;
    text.push('\n');
    Catalog::from_sources(vec![Source {
        origin: format!("import of {service}"),
        text: text.clone(),
    }])?;
    notes.sort();
    notes.dedup();
    Ok(Imported {
        text,
        tools: count,
        skipped,
        notes,
    })
}

/// The catalog file written.
#[derive(Serialize)]
struct ServiceOut {
    service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    base_url: String,
    tools: Vec<ToolOut>,
}

/// One tool of the catalog file written.
#[derive(Serialize)]
struct ToolOut {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mcp_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    description: String,
    method: String,
    path: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    destructive: bool,
    #[serde(skip_serializing_if = "is_json")]
    body: BodyEncoding,
    arguments: BTreeMap<String, Placement>,
    input_schema: Value,
}

fn is_json(body: &BodyEncoding) -> bool {
    *body == BodyEncoding::Json
}

/// A tool's arguments: where each goes, the body encoding and the schema.
struct Built {
    arguments: BTreeMap<String, Placement>,
    body: BodyEncoding,
    schema: Value,
}

/// One argument before names are settled.
struct Candidate {
    location: Location,
    wire: String,
    schema: Value,
    required: bool,
    style: Option<QueryStyle>,
}

/// The MCP name of a tool: derived from its name, or when that is longer than MCP
/// clients accept, its first characters and a hash of the whole name (stable, unique).
fn tool_mcp_name(name: &str) -> String {
    let full = mcp_name(name);
    if full.len() <= MAX_MCP_NAME_LEN {
        return full;
    }
    let hash = hex::encode(&sha2::Sha256::digest(name.as_bytes())[..4]);
    format!("{}_{hash}", &full[..MAX_MCP_NAME_LEN - hash.len() - 1])
}

/// The base URL: the flag, else the description's first server.
fn base_url(spec: &spec::Spec, flag: Option<&str>) -> Result<String, ImportError> {
    let url = match flag {
        Some(url) => url.to_owned(),
        None => spec
            .root
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .ok_or(ImportError::NoServer)?
            .to_owned(),
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains('{') {
        return Err(ImportError::BaseUrl(url));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Builds one operation's arguments, or says why it cannot be imported.
fn build_tool(
    spec: &spec::Spec,
    item: &Value,
    operation: &Value,
    options: &ImportOptions,
    notes: &mut Vec<String>,
) -> Result<Built, SkipReason> {
    let mut converter = schema::Converter::new(spec);
    // Operation parameters override the path item's of the same name and location.
    let mut parameters: Vec<(String, String, &Value)> = Vec::new();
    for list in [item.get("parameters"), operation.get("parameters")] {
        for parameter in list.and_then(Value::as_array).into_iter().flatten() {
            let parameter = spec.resolve(parameter)?;
            let (Some(name), Some(location)) = (
                parameter.get("name").and_then(Value::as_str),
                parameter.get("in").and_then(Value::as_str),
            ) else {
                return Err(SkipReason::Unnamed);
            };
            parameters.retain(|(n, l, _)| !(n == name && l == location));
            parameters.push((name.to_owned(), location.to_owned(), parameter));
        }
    }
    let mut candidates = Vec::new();
    for (name, location, parameter) in parameters {
        if options
            .omit_params
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&name))
        {
            continue;
        }
        let required = parameter.get("required") == Some(&Value::Bool(true)) || location == "path";
        let location = match location.as_str() {
            "path" => Location::Path,
            "query" => Location::Query,
            "header" => Location::Header,
            "cookie" if required => return Err(SkipReason::RequiredCookie(name)),
            "cookie" => {
                notes.push(format!(
                    "the optional cookie parameter `{name}` is left out"
                ));
                continue;
            }
            other => {
                return Err(SkipReason::Location {
                    location: other.to_owned(),
                    name,
                });
            }
        };
        let mut argument = match parameter.get("schema") {
            Some(schema) => converter.convert(schema)?,
            None => json!({}),
        };
        if let (Some(text), Some(object)) = (
            parameter.get("description").and_then(Value::as_str),
            argument.as_object_mut(),
        ) {
            let text = schema::sentence(text);
            if !text.is_empty() {
                object.insert("description".into(), Value::String(text));
            }
        }
        let style = (location == Location::Query
            && parameter.get("style").and_then(Value::as_str) == Some("deepObject"))
        .then_some(QueryStyle::DeepObject);
        candidates.push(Candidate {
            location,
            wire: name,
            schema: argument,
            required,
            style,
        });
    }
    let mut body = BodyEncoding::Json;
    let mut extra: Option<Value> = None;
    if let Some(request_body) = operation.get("requestBody") {
        let request_body = spec.resolve(request_body)?;
        let content = request_body
            .get("content")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let json_type = content.keys().find(|t| {
            let t = t.split(';').next().unwrap_or_default().trim();
            t == "application/json" || t.ends_with("+json")
        });
        let form_type = content
            .keys()
            .find(|t| t.starts_with("application/x-www-form-urlencoded"));
        let (media, encoding) = match (json_type, form_type) {
            (Some(t), _) => (t, BodyEncoding::Json),
            (None, Some(t)) => (t, BodyEncoding::Form),
            (None, None) => {
                let types: Vec<&str> = content.keys().map(String::as_str).collect();
                return Err(SkipReason::BodyMedia(if types.is_empty() {
                    "of no media type".to_owned()
                } else {
                    types.join(", ")
                }));
            }
        };
        body = encoding;
        let body_required = request_body.get("required") == Some(&Value::Bool(true));
        let converted = match content.get(media).and_then(|m| m.get("schema")) {
            Some(schema) => converter.convert(schema)?,
            None => json!({"type": "object"}),
        };
        let Fields {
            properties,
            required,
            additional,
        } = object_fields(&converted).ok_or_else(|| {
            SkipReason::BodyShape(
                converted
                    .get("type")
                    .map_or_else(|| "not an object".to_owned(), |t| format!("of type {t}")),
            )
        })?;
        extra = additional;
        for (name, schema) in properties {
            let required = body_required && required.contains(&name);
            candidates.push(Candidate {
                location: Location::Body,
                wire: name,
                schema,
                required,
                style: None,
            });
        }
    }
    notes.append(&mut converter.notes);
    // Path arguments keep their names (the template names them); a later location's
    // argument of a name already taken becomes `<location>_<name>`.
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut arguments = BTreeMap::new();
    for candidate in candidates {
        let mut name = candidate.wire.clone();
        if properties.contains_key(&name) {
            name = format!("{}_{}", candidate.location.as_str(), candidate.wire);
            let mut n = 2;
            while properties.contains_key(&name) {
                name = format!("{}_{}{n}", candidate.location.as_str(), candidate.wire);
                n += 1;
            }
        }
        if candidate.required {
            required.push(Value::String(name.clone()));
        }
        arguments.insert(
            name.clone(),
            Placement {
                location: candidate.location,
                name: (name != candidate.wire).then_some(candidate.wire),
                style: candidate.style,
            },
        );
        properties.insert(name, candidate.schema);
    }
    let mut schema = json!({"type": "object", "properties": properties, "required": required});
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "additionalProperties".into(),
            extra.unwrap_or(Value::Bool(false)),
        );
    }
    Ok(Built {
        arguments,
        body,
        schema,
    })
}

/// The fields of an object schema.
struct Fields {
    properties: Map<String, Value>,
    required: Vec<String>,
    /// Its `additionalProperties` when it allows more.
    additional: Option<Value>,
}

/// The fields of an object schema: properties, required names, and its
/// `additionalProperties` when it allows more. `anyOf`/`allOf` of objects merge their
/// properties (a field is required only when every `anyOf` variant requires it).
fn object_fields(schema: &Value) -> Option<Fields> {
    fields_of(schema, false)
}

/// [`object_fields`]; a `variant` (of `anyOf`/`allOf`) without a `type` counts as an
/// object: it only adds constraints (`required`) to the object around it.
fn fields_of(schema: &Value, variant: bool) -> Option<Fields> {
    let object = schema.as_object()?;
    let required_of = |s: &Value| -> Vec<String> {
        s.get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let is_object = match object.get("type") {
        Some(Value::String(kind)) => kind == "object",
        Some(Value::Array(kinds)) => kinds.contains(&json!("object")),
        Some(_) => false,
        None => variant || object.contains_key("properties"),
    };
    let mut properties = object
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut required = required_of(schema);
    let additional = object
        .get("additionalProperties")
        .filter(|a| **a != Value::Bool(false))
        .cloned();
    let mut merged_any = false;
    if let Some(Value::Array(variants)) = object.get("allOf") {
        for variant in variants {
            let Fields {
                properties: p,
                required: r,
                ..
            } = fields_of(variant, true)?;
            properties.extend(p);
            required.extend(r);
            merged_any = true;
        }
    }
    if let Some(Value::Array(variants)) = object.get("anyOf") {
        let mut common: Option<Vec<String>> = None;
        for variant in variants {
            let Fields {
                properties: p,
                required: r,
                ..
            } = fields_of(variant, true)?;
            for (name, schema) in p {
                properties.entry(name).or_insert(schema);
            }
            common = Some(match common {
                None => r,
                Some(c) => c.into_iter().filter(|n| r.contains(n)).collect(),
            });
            merged_any = true;
        }
        required.extend(common.unwrap_or_default());
    }
    if !(is_object || merged_any) {
        return None;
    }
    required.dedup();
    Some(Fields {
        properties,
        required,
        additional,
    })
}
