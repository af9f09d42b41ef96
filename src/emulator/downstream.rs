//! The real HTTP request of an allowed call, built from the catalog and run with the
//! service's credential injected (agents never see it).
//!
//! Path parameters are filled from the arguments, percent-encoded. The others go where
//! the catalog's `arguments` place them (query, header or body, JSON or form-encoded);
//! without that field, to the query string (GET/HEAD/DELETE) or the JSON body (others).
//! A parameter never moves the request off its template: values that would leave a
//! segment empty, `.` or `..` are refused, and the built URL is checked against the
//! template after parsing. Redirects are not followed (a 3xx is the execution), so the
//! credential only ever goes to the catalog's `base_url`.

use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Url, header::HeaderMap};
use serde_json::{Map, Value};

use super::policy::Credential;
use crate::{
    catalog::{BodyEncoding, Location, QueryStyle, Tool},
    tenet::wire::Execution,
};

/// Why the request of a call cannot be built from its arguments and the catalog.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// The arguments lack a path parameter.
    #[error("missing path parameter `{0}`")]
    MissingPathParameter(String),
    /// Path parameters would leave a segment empty, `.` or `..`.
    #[error(
        "path parameter {params} must not be empty, `.` or `..`: it would take the request outside the path {path}"
    )]
    PathEscape {
        /// The parameters of the segment, quoted and joined by `and`.
        params: String,
        /// The tool's path template.
        path: String,
    },
    /// The catalog gives the service no base URL.
    #[error("the catalog gives service {0} no base_url")]
    NoBaseUrl(String),
    /// The built URL is not the base URL followed by the filled template.
    #[error(
        "the downstream URL of {tool} does not keep to base_url + {path}: check the catalog's base_url and path"
    )]
    OffTemplate {
        /// The tool.
        tool: String,
        /// Its path template.
        path: String,
    },
    /// A header argument would replace the credential.
    #[error(
        "argument `{argument}` would set the credential header {header}: the catalog must not place an argument there"
    )]
    CredentialHeader {
        /// The argument.
        argument: String,
        /// The header the catalog places it in.
        header: String,
    },
    /// The catalog places an argument in a header whose name is not one.
    #[error("argument `{argument}`: `{header}` is not a header name")]
    HeaderName {
        /// The argument.
        argument: String,
        /// The name the catalog gives.
        header: String,
    },
    /// A header argument holds characters a header cannot carry.
    #[error(
        "argument `{0}` holds characters a header cannot carry (control characters or line breaks)"
    )]
    HeaderValue(String),
    /// The JSON body could not be written.
    #[error(transparent)]
    Body(#[from] serde_json::Error),
    /// The catalog's method is not an HTTP method.
    #[error(transparent)]
    Method(#[from] axum::http::method::InvalidMethod),
}

/// Why an allowed call's job failed: its `executionError`, one of the contract's codes
/// or why its request could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    /// The catalog no longer has the tool.
    #[error("unknown_tool")]
    UnknownTool,
    /// The policy has no credential for the service.
    #[error("credential_not_found")]
    NoCredential,
    /// The request could not be built.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The API did not answer in time.
    #[error("downstream_timeout")]
    Timeout,
    /// The API could not be reached.
    #[error("downstream_unreachable")]
    Unreachable,
    /// The response broke off.
    #[error("downstream_failed")]
    Failed,
    /// The response body is over [`MAX_DOWNSTREAM_BODY`].
    #[error("downstream_body_too_large")]
    BodyTooLarge,
}

/// The largest downstream response body kept in a job.
pub(super) const MAX_DOWNSTREAM_BODY: usize = 4 * 1024 * 1024;

/// Characters left as they are in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Characters left as they are in `application/x-www-form-urlencoded` (the URL
/// Standard's form serializer; a space becomes `+`).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b' ');

/// Characters left as they are in a form key: the brackets of `metadata[plan]` stay
/// literal, as Stripe's documentation and libraries send them.
const FORM_KEY: &AsciiSet = &FORM.remove(b'[').remove(b']');

/// Pairs as an `application/x-www-form-urlencoded` body.
fn form_encode(pairs: &[(String, String)]) -> String {
    let encode = |text: &str, set| utf8_percent_encode(text, set).to_string().replace(' ', "+");
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", encode(key, FORM_KEY), encode(value, FORM)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The HTTP client of downstream calls: a product user agent, and no redirects, so a
/// credential is never carried to a host the catalog did not name.
pub(crate) fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("tenet-emulator/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// The text a path parameter's value stands for: a string as it is, anything else as JSON.
fn parameter_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The tool's path with each `{param}` replaced by its argument, percent-encoded, and
/// the arguments left over. Refuses a missing parameter, and a value that would leave a
/// segment empty, `.` or `..`: URL parsing drops or merges such segments, which would
/// send the call (and its credential) to another path.
pub(crate) fn fill_path(
    tool: &Tool,
    arguments: &Map<String, Value>,
) -> Result<(String, Map<String, Value>), RequestError> {
    let mut rest = arguments.clone();
    let mut values = Vec::new();
    for param in tool.path_params() {
        let value = rest
            .remove(param)
            .ok_or_else(|| RequestError::MissingPathParameter(param.to_owned()))?;
        let encoded = utf8_percent_encode(&parameter_text(value), SEGMENT).to_string();
        values.push((param, encoded));
    }
    let mut segments = Vec::new();
    for segment in tool.path.split('/') {
        let mut filled = segment.to_owned();
        let mut named = Vec::new();
        for (param, encoded) in &values {
            let placeholder = format!("{{{param}}}");
            if filled.contains(&placeholder) {
                // Encoded values hold no braces, so one never forms another's placeholder.
                filled = filled.replace(&placeholder, encoded);
                named.push(format!("`{param}`"));
            }
        }
        if !named.is_empty() && matches!(filled.as_str(), "" | "." | "..") {
            return Err(RequestError::PathEscape {
                params: named.join(" and "),
                path: tool.path.clone(),
            });
        }
        segments.push(filled);
    }
    Ok((segments.join("/"), rest))
}

/// The URL of a call, checked to be the catalog's `base_url` followed by exactly the
/// filled template, and the arguments left over.
pub(crate) fn resolve(
    tool: &Tool,
    arguments: &Map<String, Value>,
) -> Result<(Url, Map<String, Value>), RequestError> {
    let base = tool
        .base_url
        .as_deref()
        .ok_or_else(|| RequestError::NoBaseUrl(tool.service.to_string()))?;
    let (path, rest) = fill_path(tool, arguments)?;
    let outside = || RequestError::OffTemplate {
        tool: tool.name.clone(),
        path: tool.path.clone(),
    };
    let base_url = Url::parse(base).map_err(|_| outside())?;
    let url = Url::parse(&format!("{base}{path}")).map_err(|_| outside())?;
    let expected_path = format!("{}{path}", base_url.path().trim_end_matches('/'));
    let same_origin = url.scheme() == base_url.scheme()
        && url.host() == base_url.host()
        && url.port_or_known_default() == base_url.port_or_known_default()
        && url.username() == base_url.username()
        && url.password() == base_url.password();
    if !same_origin
        || url.path() != expected_path
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(outside());
    }
    Ok((url, rest))
}

/// The response headers as JSON: each name once, its value a string, or an array of
/// strings when the header was repeated (two `Set-Cookie`, say).
fn headers_json(headers: &HeaderMap) -> Map<String, Value> {
    headers
        .keys()
        .map(|name| {
            let mut values: Vec<Value> = headers
                .get_all(name)
                .iter()
                .map(|value| Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect();
            let value = if values.len() == 1 {
                values.pop().unwrap_or_default()
            } else {
                Value::Array(values)
            };
            (name.as_str().to_owned(), value)
        })
        .collect()
}

/// The text of a scalar argument on the wire: a string as it is, `null` as empty,
/// anything else as JSON.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Appends `value` under `key` in bracket notation, as Stripe reads forms and
/// `deepObject` queries: `key[sub]=v` for objects, `key[]=v` for arrays of scalars,
/// `key[0][sub]=v` for arrays of objects or arrays.
fn push_brackets(pairs: &mut Vec<(String, String)>, key: &str, value: &Value) {
    match value {
        Value::Object(fields) => {
            for (sub, inner) in fields {
                push_brackets(pairs, &format!("{key}[{sub}]"), inner);
            }
        }
        Value::Array(items) => {
            let nested = items
                .iter()
                .any(|item| matches!(item, Value::Object(_) | Value::Array(_)));
            for (index, item) in items.iter().enumerate() {
                let key = if nested {
                    format!("{key}[{index}]")
                } else {
                    format!("{key}[]")
                };
                push_brackets(pairs, &key, item);
            }
        }
        scalar => pairs.push((key.to_owned(), scalar_text(scalar))),
    }
}

/// The parts of a downstream request besides its method.
#[derive(Debug)]
pub(crate) struct Request {
    /// The full URL, query included.
    pub url: Url,
    /// Headers from arguments (the credential is added when sending).
    pub headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    /// The body and its content type, when one is sent.
    pub body: Option<(&'static str, Vec<u8>)>,
}

/// Builds the request of a call: each argument where the catalog places it, the body
/// in the declared encoding. Refuses a header argument that would replace the
/// credential's header or that a header cannot carry.
pub(crate) fn build(
    tool: &Tool,
    arguments: &Map<String, Value>,
    credential_header: &str,
) -> Result<Request, RequestError> {
    let (mut url, rest) = resolve(tool, arguments)?;
    let mut query = Vec::new();
    let mut headers = Vec::new();
    let mut body = Map::new();
    for (argument, value) in rest {
        let (location, wire) = tool.placement(&argument);
        match location {
            // Only an argument the template has no placeholder for reaches here.
            Location::Path | Location::Query if !tool.declares_arguments() => {
                query.push((wire.to_owned(), parameter_text(value)));
            }
            Location::Path | Location::Query => {
                let deep = tool
                    .arguments
                    .get(&argument)
                    .is_some_and(|p| p.style == Some(QueryStyle::DeepObject));
                match &value {
                    Value::Array(items) if !deep => {
                        for item in items {
                            query.push((wire.to_owned(), scalar_text(item)));
                        }
                    }
                    Value::Array(_) | Value::Object(_) => push_brackets(&mut query, wire, &value),
                    scalar => query.push((wire.to_owned(), scalar_text(scalar))),
                }
            }
            Location::Header => {
                if wire.eq_ignore_ascii_case(credential_header) {
                    return Err(RequestError::CredentialHeader {
                        argument: argument.clone(),
                        header: wire.to_owned(),
                    });
                }
                let name =
                    reqwest::header::HeaderName::from_bytes(wire.as_bytes()).map_err(|_| {
                        RequestError::HeaderName {
                            argument: argument.clone(),
                            header: wire.to_owned(),
                        }
                    })?;
                let value = reqwest::header::HeaderValue::from_str(&scalar_text(&value))
                    .map_err(|_| RequestError::HeaderValue(argument.clone()))?;
                headers.push((name, value));
            }
            Location::Body => {
                body.insert(wire.to_owned(), value);
            }
        }
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(&query);
    }
    let send_body = !body.is_empty() || (!tool.declares_arguments() && !tool.method.sends_query());
    let body = match (send_body, tool.body) {
        (false, _) => None,
        (true, BodyEncoding::Json) => Some((
            "application/json",
            serde_json::to_vec(&Value::Object(body))?,
        )),
        (true, BodyEncoding::Form) => {
            let mut pairs = Vec::new();
            for (key, value) in &body {
                push_brackets(&mut pairs, key, value);
            }
            Some((
                "application/x-www-form-urlencoded",
                form_encode(&pairs).into_bytes(),
            ))
        }
    };
    Ok(Request { url, headers, body })
}

/// Runs the call; `Ok` with the downstream response, or the job's execution error.
pub(super) async fn run(
    http: &reqwest::Client,
    tool: &Tool,
    arguments: &Map<String, Value>,
    credential: &Credential,
    timeout: Duration,
) -> Result<Execution, JobError> {
    let prepared = build(tool, arguments, &credential.header)?;
    let method = reqwest::Method::from_bytes(tool.method.as_str().as_bytes())
        .map_err(|e| JobError::Request(e.into()))?;
    let mut request = http.request(method, prepared.url).timeout(timeout);
    for (name, value) in prepared.headers {
        request = request.header(name, value);
    }
    request = request.header(credential.header.as_str(), credential.value.as_str());
    if let Some((content_type, bytes)) = prepared.body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
    }
    let started = Instant::now();
    let mut response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            JobError::Timeout
        } else {
            JobError::Unreachable
        }
    })?;
    let status = response.status().as_u16();
    let headers = headers_json(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| JobError::Failed)? {
        if body.len() + chunk.len() > MAX_DOWNSTREAM_BODY {
            return Err(JobError::BodyTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    Ok(Execution {
        status,
        headers,
        body,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::catalog::{Catalog, Source};

    const BASE: &str = "http://127.0.0.1:8080/api/v3";

    fn catalog() -> Catalog {
        let schema = |names: &[&str]| {
            let properties: Map<String, Value> = names
                .iter()
                .map(|n| (n.to_string(), json!({"type": "string"})))
                .collect();
            json!({"type": "object", "properties": properties, "required": names})
        };
        let tools = json!([
            {"name": "gh.issues.get", "description": "d", "method": "GET", "path": "/repos/{owner}/{repo}/issues/{number}", "input_schema": schema(&["owner", "repo", "number"])},
            {"name": "gh.files.get", "description": "d", "method": "GET", "path": "/files/{name}.json", "input_schema": schema(&["name"])},
            {"name": "gh.pairs.get", "description": "d", "method": "GET", "path": "/pairs/{a}{b}", "input_schema": schema(&["a", "b"])}
        ]);
        Catalog::from_sources(vec![Source {
            origin: "t".into(),
            text: json!({"service": "gh", "base_url": BASE, "tools": tools}).to_string(),
        }])
        .unwrap()
    }

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn dot_and_empty_parameters_are_refused() {
        let catalog = catalog();
        let issues = catalog.by_name("gh.issues.get").unwrap();
        for (owner, repo) in [("..", ".."), (".", "r"), ("o", ""), ("o", "..")] {
            let arguments = args(json!({"owner": owner, "repo": repo, "number": "1"}));
            let refused = resolve(issues, &arguments).unwrap_err().to_string();
            assert!(
                refused.contains("must not be empty, `.` or `..`")
                    && refused.contains("/repos/{owner}/{repo}/issues/{number}"),
                "{owner:?}/{repo:?}: {refused}"
            );
            assert!(fill_path(issues, &arguments).is_err());
        }
        let pairs = catalog.by_name("gh.pairs.get").unwrap();
        let refused = fill_path(pairs, &args(json!({"a": ".", "b": "."})))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("`a` and `b`"), "{refused}");
        let files = catalog.by_name("gh.files.get").unwrap();
        let (url, _) = resolve(files, &args(json!({"name": ".."}))).unwrap();
        assert_eq!(
            url.path(),
            "/api/v3/files/...json",
            "a dot inside a segment is harmless"
        );
    }

    #[test]
    fn parameters_are_encoded_into_their_own_segment() {
        let catalog = catalog();
        let issues = catalog.by_name("gh.issues.get").unwrap();
        let arguments =
            args(json!({"owner": "a/b?c#d", "repo": "%2e%2e", "number": "1", "state": "open"}));
        let (url, rest) = resolve(issues, &arguments).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/api/v3/repos/a%2Fb%3Fc%23d/%252e%252e/issues/1"
        );
        assert_eq!(rest, args(json!({"state": "open"})));
    }

    fn placed() -> Catalog {
        let tools = json!([
            {"name": "p.forms.create", "description": "d", "method": "POST", "path": "/forms/{id}", "body": "form",
             "arguments": {"id": {"in": "path"}, "items": {"in": "body"}, "meta": {"in": "body"}, "flag": {"in": "body"}, "note": {"in": "body"}, "created": {"in": "query", "style": "deepObject"}, "expand": {"in": "query", "style": "deepObject"}, "tags": {"in": "query"}, "key": {"in": "header", "name": "X-Key"}},
             "input_schema": {"type": "object", "properties": {"id": {}, "items": {}, "meta": {}, "flag": {}, "note": {}, "created": {}, "expand": {}, "tags": {}, "key": {}}, "required": ["id"]}},
            {"name": "p.auth.set", "description": "d", "method": "GET", "path": "/a",
             "arguments": {"token": {"in": "header", "name": "X-Api-Key"}},
             "input_schema": {"type": "object", "properties": {"token": {}}}}
        ]);
        Catalog::from_sources(vec![Source {
            origin: "p".into(),
            text: json!({"service": "p", "base_url": BASE, "tools": tools}).to_string(),
        }])
        .unwrap()
    }

    #[test]
    fn form_bodies_nest_with_brackets_and_queries_follow_their_style() {
        let catalog = placed();
        let t = catalog.by_name("p.forms.create").unwrap();
        let built = build(
            t,
            &args(json!({
                "id": "f 1", "items": [{"price": "p_1", "quantity": 2}], "meta": {"plan": "pro", "a&b": "c=d"},
                "flag": true, "note": null, "created": {"gt": 5}, "expand": ["customer"], "tags": ["a", "b c"], "key": "k-1"
            })),
            "Authorization",
        )
        .unwrap();
        assert_eq!(
            built.url.as_str(),
            "http://127.0.0.1:8080/api/v3/forms/f%201?created%5Bgt%5D=5&expand%5B%5D=customer&tags=a&tags=b+c"
        );
        assert_eq!(built.headers.len(), 1);
        assert_eq!(
            (
                built.headers[0].0.as_str(),
                built.headers[0].1.to_str().unwrap()
            ),
            ("x-key", "k-1")
        );
        let (content_type, body) = built.body.unwrap();
        assert_eq!(content_type, "application/x-www-form-urlencoded");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "flag=true&items[0][price]=p_1&items[0][quantity]=2&meta[a%26b]=c%3Dd&meta[plan]=pro&note="
        );
    }

    #[test]
    fn catalogs_without_placements_build_requests_as_before() {
        let catalog = catalog();
        let get = catalog.by_name("gh.files.get").unwrap();
        let built = build(
            get,
            &args(json!({"name": "n", "limit": 5, "none": null})),
            "X-Key",
        )
        .unwrap();
        assert_eq!(built.url.query(), Some("limit=5&none=null"));
        assert!(built.headers.is_empty() && built.body.is_none());
        let post = Catalog::from_sources(vec![Source {
            origin: "t".into(),
            text: json!({"service": "gh", "base_url": BASE, "tools": [{"name": "gh.x.create", "description": "d", "method": "POST", "path": "/x", "input_schema": {"type": "object"}}]}).to_string(),
        }])
        .unwrap();
        let built = build(post.by_name("gh.x.create").unwrap(), &Map::new(), "X-Key").unwrap();
        assert_eq!(built.body, Some(("application/json", b"{}".to_vec())));
        assert_eq!(built.url.query(), None);
    }

    #[test]
    fn header_arguments_never_replace_the_credential_or_break_the_request() {
        let catalog = placed();
        let t = catalog.by_name("p.auth.set").unwrap();
        let refused = build(t, &args(json!({"token": "x"})), "x-api-key")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("credential header X-Api-Key"), "{refused}");
        let refused = build(
            t,
            &args(json!({"token": "a\r\nInjected: 1"})),
            "Authorization",
        )
        .unwrap_err()
        .to_string();
        assert!(
            refused.contains("characters a header cannot carry"),
            "{refused}"
        );
    }

    #[test]
    fn repeated_headers_are_kept_as_an_array() {
        let mut headers = HeaderMap::new();
        headers.append("set-cookie", "a=1".parse().unwrap());
        headers.append("set-cookie", "b=2".parse().unwrap());
        headers.append("content-type", "text/plain".parse().unwrap());
        assert_eq!(
            Value::Object(headers_json(&headers)),
            json!({"set-cookie": ["a=1", "b=2"], "content-type": "text/plain"})
        );
    }

    fn parameter() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("%2e%2e".to_owned()),
            Just("%2E.".to_owned()),
            proptest::collection::vec(
                prop_oneof![
                    Just(".".to_owned()),
                    Just("/".to_owned()),
                    Just("?".to_owned()),
                    Just("#".to_owned()),
                    Just("\\".to_owned()),
                    Just("%".to_owned()),
                    Just("{owner}".to_owned()),
                    Just("@".to_owned()),
                    Just(":".to_owned()),
                    Just("é".to_owned()),
                    Just("\u{2025}".to_owned()),
                    "[a-z0-9]{1,3}",
                    any::<char>().prop_map(String::from),
                ],
                0..6
            )
            .prop_map(|parts| parts.concat()),
        ]
    }

    proptest! {
        // 256 cases by default; PROPTEST_CASES=100000 for a long run.
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
        ))]

        /// Any argument values, wherever the catalog places them, build a request on the
        /// tool's own path, or are refused in words; building never panics.
        #[test]
        fn placed_arguments_of_any_value_build_or_are_refused(
            values in proptest::collection::vec(crate::tenet::arbitrary::json_value(), 8)
        ) {
            let catalog = placed();
            let tool = catalog.by_name("p.forms.create").unwrap();
            let names = ["id", "items", "meta", "flag", "note", "created", "tags", "key"];
            let arguments: Map<String, Value> =
                names.iter().map(|n| n.to_string()).zip(values).collect();
            match build(tool, &arguments, "Authorization") {
                Ok(built) => {
                    prop_assert!(built.url.path().starts_with("/api/v3/forms/"));
                    prop_assert!(built.url.fragment().is_none());
                    if let Some((_, body)) = built.body {
                        prop_assert!(body.iter().all(|b| b.is_ascii_graphic()));
                    }
                }
                Err(refused) => prop_assert!(!refused.to_string().trim().is_empty()),
            }
        }

        #[test]
        fn no_parameter_leaves_the_template(
            owner in parameter(),
            repo in parameter(),
            number in parameter(),
        ) {
            let catalog = catalog();
            let tool = catalog.by_name("gh.issues.get").unwrap();
            let arguments = args(json!({"owner": owner, "repo": repo, "number": number}));
            if let Ok((url, rest)) = resolve(tool, &arguments) {
                let base = Url::parse(BASE).unwrap();
                prop_assert_eq!(url.scheme(), base.scheme());
                prop_assert_eq!(url.host(), base.host());
                prop_assert_eq!(url.port(), base.port());
                prop_assert!(url.query().is_none() && url.fragment().is_none());
                prop_assert!(rest.is_empty());
                let segments: Vec<String> = url
                    .path_segments()
                    .unwrap()
                    .map(|s| percent_encoding::percent_decode_str(s).decode_utf8().unwrap().into_owned())
                    .collect();
                prop_assert_eq!(
                    segments,
                    ["api", "v3", "repos", &owner, &repo, "issues", &number]
                );
            } else {
                prop_assert!(
                    [&owner, &repo, &number].iter().any(|v| matches!(v.as_str(), "" | "." | "..")),
                    "refused {:?}/{:?}/{:?}", owner, repo, number
                );
            }
        }
    }
}
