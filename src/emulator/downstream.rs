//! The real HTTP request of an allowed call, built from the catalog and run with the
//! service's credential injected (agents never see it).
//!
//! Path parameters are filled from the arguments, percent-encoded; the remaining
//! arguments become the query string (GET/HEAD/DELETE) or the JSON body (others).

use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
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

/// The URL of a call: base URL + path with parameters filled, and the arguments left over.
pub fn resolve(
    tool: &Tool,
    arguments: &Map<String, Value>,
) -> Result<(String, Map<String, Value>), String> {
    let base = tool
        .base_url
        .as_deref()
        .ok_or_else(|| format!("the catalog gives service {} no base_url", tool.service))?;
    let mut rest = arguments.clone();
    let mut path = tool.path.clone();
    for param in tool.path_params() {
        let value = rest
            .remove(param)
            .ok_or_else(|| format!("missing path parameter `{param}`"))?;
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        path = path.replace(
            &format!("{{{param}}}"),
            &utf8_percent_encode(&text, SEGMENT).to_string(),
        );
    }
    Ok((format!("{base}{path}"), rest))
}

/// Runs the call; `Ok` with the downstream response, or the job's execution error.
pub async fn run(
    http: &reqwest::Client,
    tool: &Tool,
    arguments: &Map<String, Value>,
    credential: &Credential,
    timeout: Duration,
) -> Result<Execution, String> {
    let (url, rest) = resolve(tool, arguments)?;
    let method =
        reqwest::Method::from_bytes(tool.method.as_str().as_bytes()).map_err(|e| e.to_string())?;
    let mut url =
        reqwest::Url::parse(&url).map_err(|e| format!("bad downstream URL {url}: {e}"))?;
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
    let headers: Map<String, Value> = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            )
        })
        .collect();
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
