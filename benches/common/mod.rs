//! What the whole-process benches share: starting the release binary, Streamable HTTP
//! sessions and calls driven with reqwest, and reading a process's CPU time and memory.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Instant,
};

use serde_json::{Value, json};

pub fn binary() -> String {
    let release = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/tenet-mcp");
    std::env::var("TENET_MCP_BIN").unwrap_or_else(|_| release.to_owned())
}

/// Spawns `tenet-mcp ARGS` and waits for the stderr line containing `marker`; returns the line.
pub fn spawn(args: &[&str], env: &[(&str, &str)], marker: &str) -> (Child, String) {
    let mut child = Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
        .env("TENET_MCP_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("build the release binary first: cargo build --release");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains(marker))
        .expect("the process did not start");
    std::thread::spawn(move || for _ in lines {});
    (child, line)
}

pub fn url_in(line: &str) -> String {
    let start = line.find("http://").unwrap();
    line[start..]
        .split([' ', ';', ')'])
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned()
}

/// The JSON-RPC message in a Streamable HTTP answer (JSON or an SSE stream).
pub fn message(body: &str) -> Value {
    if let Ok(value) = serde_json::from_str(body) {
        return value;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or(Value::Null)
}

pub async fn post(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: Value,
) -> (Option<String>, Value) {
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.expect("the bridge answers");
    let id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    (id, message(&text))
}

pub async fn open_session(http: &reqwest::Client, url: &str) -> String {
    let (session, answer) = post(http, url, None, initialize_request()).await;
    assert!(
        answer.get("result").is_some(),
        "initialize failed: {answer}"
    );
    let session = session.expect("a session id");
    post(
        http,
        url,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    session
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used so far, in milliseconds.
pub fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks * 10.0 // USER_HZ is 100 on Linux
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// The JSON-RPC `initialize` request of every session the bench opens (id 1).
pub fn initialize_request() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "load", "version": "0"}}})
}

/// The JSON-RPC `tools/call` of the instant-job tool, with request id `id`.
pub fn tools_call(id: usize) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "github_repos_get", "arguments": {"owner": "a", "repo": "b"}}})
}

/// Checks that a `tools/call` answer reports a job that ran to its end (instant jobs
/// without a connected credential end `failed`, which is still a whole execute + poll).
pub fn assert_job_ended(answer: &Value) {
    let report = &answer["result"]["structuredContent"];
    assert!(
        matches!(report["status"].as_str(), Some("executed" | "failed"))
            && report["job_id"].is_string(),
        "{answer}"
    );
}

/// `calls` sequential calls on each of `sessions` at once; every call's milliseconds.
pub async fn concurrent_calls(
    http: &reqwest::Client,
    url: &str,
    sessions: &[String],
    calls: usize,
) -> Vec<f64> {
    let workers = sessions.iter().cloned().map(|session| {
        let (http, url) = (http.clone(), url.to_owned());
        tokio::spawn(async move {
            let mut times = Vec::with_capacity(calls);
            for i in 0..calls {
                let t = Instant::now();
                let (_, answer) = post(&http, &url, Some(&session), tools_call(i)).await;
                assert_job_ended(&answer);
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            times
        })
    });
    futures::future::join_all(workers)
        .await
        .into_iter()
        .flat_map(|worker| worker.expect("a session worker"))
        .collect()
}

/// One throughput round: `calls` sequential calls on each of `sessions` at once.
pub struct Round {
    /// Every call's milliseconds, sorted.
    pub times: Vec<f64>,
    /// Calls per second over the round.
    pub rate: f64,
    /// Wall-clock seconds of the round.
    pub seconds: f64,
    /// CPU (user + system) per call of each of the `pids` given, in µs.
    pub cpu_us_per_call: Vec<f64>,
}

/// Runs a [`Round`], measuring the CPU the processes `pids` spend on it.
pub async fn round(
    http: &reqwest::Client,
    url: &str,
    sessions: &[String],
    calls: usize,
    pids: &[u32],
) -> Round {
    let before: Vec<f64> = pids.iter().map(|pid| cpu_ms(*pid)).collect();
    let started = std::time::Instant::now();
    let mut times = concurrent_calls(http, url, sessions, calls).await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_us_per_call = pids
        .iter()
        .zip(before)
        .map(|(pid, before)| (cpu_ms(*pid) - before) * 1000.0 / times.len() as f64)
        .collect();
    times.sort_by(f64::total_cmp);
    Round {
        rate: times.len() as f64 / seconds,
        seconds,
        times,
        cpu_us_per_call,
    }
}

/// Starts the release binary as `serve --transport http` on a loopback port with `env`
/// and `extra_args` (room for 2,000 sessions); the process and its `/mcp` URL's base.
pub fn spawn_http_bridge(env: &[(&str, &str)], extra_args: &[&str]) -> (Child, String) {
    let mut args = vec![
        "serve",
        "--transport",
        "http",
        "--bind",
        "127.0.0.1:0",
        "--max-sessions",
        "2000",
    ];
    args.extend_from_slice(extra_args);
    let (bridge, line) = spawn(&args, env, "listening on");
    (bridge, url_in(&line))
}

/// The HTTP client that drives the sessions of a load: keeps a connection per session.
pub fn load_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap()
}
