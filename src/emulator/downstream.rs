//! The real HTTP request of an allowed call, built from the catalog and run with the
//! service's credential injected (agents never see it).
//!
//! Path parameters are filled from the arguments, percent-encoded; the remaining
//! arguments become the query string (GET/HEAD/DELETE) or the JSON body (others).
//! A parameter never moves the request off its template: values that would leave a
//! segment empty, `.` or `..` are refused, and the built URL is checked against the
//! template after parsing. Redirects are not followed (a 3xx is the execution), so the
//! credential only ever goes to the catalog's `base_url`.

use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Url, header::HeaderMap};
use serde_json::{Map, Value};

use super::policy::Credential;
use crate::{catalog::Tool, tenet::wire::Execution};

/// The largest downstream response body kept in a job.
pub const MAX_DOWNSTREAM_BODY: usize = 4 * 1024 * 1024;

/// Characters left as they are in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The HTTP client of downstream calls: a product user agent, and no redirects, so a
/// credential is never carried to a host the catalog did not name.
pub(crate) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("tenet-emulator/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the downstream HTTP client: {e}"))
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
) -> Result<(String, Map<String, Value>), String> {
    let mut rest = arguments.clone();
    let mut values = Vec::new();
    for param in tool.path_params() {
        let value = rest
            .remove(param)
            .ok_or_else(|| format!("missing path parameter `{param}`"))?;
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
            return Err(format!(
                "path parameter {} must not be empty, `.` or `..`: it would take the request outside the path {}",
                named.join(" and "),
                tool.path
            ));
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
) -> Result<(Url, Map<String, Value>), String> {
    let base = tool
        .base_url
        .as_deref()
        .ok_or_else(|| format!("the catalog gives service {} no base_url", tool.service))?;
    let (path, rest) = fill_path(tool, arguments)?;
    let outside = || {
        format!(
            "the downstream URL of {} does not keep to base_url + {}: check the catalog's base_url and path",
            tool.name, tool.path
        )
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

/// Runs the call; `Ok` with the downstream response, or the job's execution error.
pub async fn run(
    http: &reqwest::Client,
    tool: &Tool,
    arguments: &Map<String, Value>,
    credential: &Credential,
    timeout: Duration,
) -> Result<Execution, String> {
    let (mut url, rest) = resolve(tool, arguments)?;
    let method =
        reqwest::Method::from_bytes(tool.method.as_str().as_bytes()).map_err(|e| e.to_string())?;
    let json_body = if tool.method.sends_query() {
        if !rest.is_empty() {
            let mut query = url.query_pairs_mut();
            for (key, value) in &rest {
                match value {
                    Value::String(s) => query.append_pair(key, s),
                    other => query.append_pair(key, &other.to_string()),
                };
            }
        }
        None
    } else {
        Some(Value::Object(rest))
    };
    let mut request = http
        .request(method, url)
        .timeout(timeout)
        .header(credential.header.as_str(), credential.value.as_str());
    if let Some(body) = json_body {
        request = request.json(&body);
    }
    let started = Instant::now();
    let mut response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            "downstream_timeout".to_owned()
        } else {
            "downstream_unreachable".to_owned()
        }
    })?;
    let status = response.status().as_u16();
    let headers = headers_json(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| "downstream_failed".to_owned())?
    {
        if body.len() + chunk.len() > MAX_DOWNSTREAM_BODY {
            return Err("downstream_body_too_large".into());
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
            let refused = resolve(issues, &arguments).unwrap_err();
            assert!(
                refused.contains("must not be empty, `.` or `..`")
                    && refused.contains("/repos/{owner}/{repo}/issues/{number}"),
                "{owner:?}/{repo:?}: {refused}"
            );
            assert!(fill_path(issues, &arguments).is_err());
        }
        let pairs = catalog.by_name("gh.pairs.get").unwrap();
        let refused = fill_path(pairs, &args(json!({"a": ".", "b": "."}))).unwrap_err();
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
