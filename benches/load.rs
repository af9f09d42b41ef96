//! Whole-process HTTP figures: throughput of 64 concurrent Streamable HTTP sessions
//! calling an instant-job tool, and resident memory per idle session.
//!
//! Run through `benches/run.sh` (or `cargo bench --bench load`): it starts the release
//! binary as an emulator and as an HTTP bridge on loopback, drives them for a bounded
//! number of calls, and prints Markdown tables. Nothing here asserts a time.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const SESSIONS: usize = 64;
const CALLS_PER_SESSION: usize = 200;
const IDLE_SESSIONS: usize = 1000;

fn binary() -> String {
    let release = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/tenet-mcp");
    std::env::var("TENET_MCP_BIN").unwrap_or_else(|_| release.to_owned())
}

/// Spawns `tenet-mcp ARGS` and waits for the stderr line containing `marker`; returns the line.
fn spawn(args: &[&str], env: &[(&str, &str)], marker: &str) -> (Child, String) {
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

fn url_in(line: &str) -> String {
    let start = line.find("http://").unwrap();
    line[start..]
        .split([' ', ';', ')'])
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned()
}

/// The JSON-RPC message in a Streamable HTTP answer (JSON or an SSE stream).
fn message(body: &str) -> Value {
    if let Ok(value) = serde_json::from_str(body) {
        return value;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or(Value::Null)
}

async fn post(
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

async fn open_session(http: &reqwest::Client, url: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "load", "version": "0"}}});
    let (session, answer) = post(http, url, None, init).await;
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

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

#[tokio::main]
async fn main() {
    let (mut emulator, line) = spawn(&["emulator", "--bind", "127.0.0.1:0"], &[], "listening on");
    let emulator_url = url_in(&line);
    let key = line
        .split("API key ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_owned();
    let env = [
        ("TENET_API_KEY", key.as_str()),
        ("TENET_API_URL", emulator_url.as_str()),
    ];
    let (mut bridge, line) = spawn(
        &[
            "serve",
            "--transport",
            "http",
            "--bind",
            "127.0.0.1:0",
            "--max-sessions",
            "2000",
        ],
        &env,
        "listening on",
    );
    let url = format!("{}/mcp", url_in(&line));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();

    // Throughput: SESSIONS sessions, each calling one after another.
    let sessions: Vec<String> =
        futures::future::join_all((0..SESSIONS).map(|_| open_session(&http, &url))).await;
    let call = |i: usize| json!({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call", "params": {"name": "github_repos_get", "arguments": {"owner": "a", "repo": "b"}}});
    for session in &sessions {
        post(&http, &url, Some(session), call(0)).await;
    }
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(
        SESSIONS * CALLS_PER_SESSION,
    )));
    let started = Instant::now();
    let workers = sessions.iter().cloned().map(|session| {
        let (http, url, latencies) = (http.clone(), url.clone(), latencies.clone());
        tokio::spawn(async move {
            for i in 0..CALLS_PER_SESSION {
                let t = Instant::now();
                let (_, answer) = post(&http, &url, Some(&session), call(i)).await;
                assert!(
                    answer["result"]["structuredContent"]["status"].is_string(),
                    "{answer}"
                );
                latencies
                    .lock()
                    .unwrap()
                    .push(t.elapsed().as_secs_f64() * 1000.0);
            }
        })
    });
    futures::future::join_all(workers).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut sorted = latencies.lock().unwrap().clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "Throughput: {SESSIONS} Streamable HTTP sessions x {CALLS_PER_SESSION} calls (instant jobs, emulator on the same machine)\n"
    );
    println!("| calls | seconds | calls/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {elapsed:.2} | {:.0} | {:.2} | {:.2} |",
        sorted.len(),
        sorted.len() as f64 / elapsed,
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99)
    );

    // Memory: RSS before and after IDLE_SESSIONS more sessions that then stay idle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(bridge.id());
    let mut idle = Vec::with_capacity(IDLE_SESSIONS);
    for _ in 0..IDLE_SESSIONS / 50 {
        let opened = futures::future::join_all((0..50).map(|_| open_session(&http, &url))).await;
        idle.extend(opened);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(bridge.id());
    println!(
        "\nMemory: bridge RSS before and after {IDLE_SESSIONS} more idle Streamable HTTP sessions\n"
    );
    println!("| RSS before (KiB) | RSS after (KiB) | per session (KiB) |");
    println!("|---|---|---|");
    println!(
        "| {before} | {after} | {:.1} |",
        (after.saturating_sub(before)) as f64 / IDLE_SESSIONS as f64
    );

    let _ = bridge.kill();
    let _ = emulator.kill();
}
