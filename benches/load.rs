//! Whole-process call figures, all from one Rust client so every path pays the same
//! client cost: time added per call by the bridge (stdio and Streamable HTTP) over a
//! direct execute + poll, throughput of 64 concurrent Streamable HTTP sessions calling
//! an instant-job tool, and resident memory per idle session.
//!
//! Run through `benches/run.sh` (or `cargo bench --bench load`): it starts the release
//! binary as an emulator and as bridges on loopback, drives them for a bounded number
//! of calls, and prints Markdown tables. Nothing here asserts a time.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const SEQUENTIAL_CALLS: usize = 2000;
const WARM_UP: usize = 100;
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

/// CPU time (user + system) a process has used so far, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Milliseconds of each of `SEQUENTIAL_CALLS` runs of `call`, after `WARM_UP` untimed ones; sorted.
async fn timed<F: Future<Output = ()>>(mut call: impl FnMut(usize) -> F) -> Vec<f64> {
    let mut times = Vec::with_capacity(SEQUENTIAL_CALLS);
    for i in 0..WARM_UP + SEQUENTIAL_CALLS {
        let t = Instant::now();
        call(i).await;
        if i >= WARM_UP {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    times
}

/// A call straight to Tenet: `POST /v1/execute`, then `GET /v1/jobs/{id}` until it ends.
async fn direct_call(http: &reqwest::Client, api: &str, key: &str) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = json!({"requestId": request_id, "service": "github", "toolCall": {"toolName": "github.repos.get", "arguments": {"owner": "a", "repo": "b"}}, "agent": {"agentId": "default"}, "context": {}});
    let answer: Value = http
        .post(format!("{api}/v1/execute"))
        .bearer_auth(key)
        .header("idempotency-key", &request_id)
        .json(&body)
        .send()
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("a JSON decision");
    let job = answer["jobId"].as_str().expect("an ALLOW with a job");
    loop {
        let state: Value = http
            .get(format!("{api}/v1/jobs/{job}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("the emulator answers")
            .json()
            .await
            .expect("a JSON job");
        if matches!(state["status"].as_str(), Some("completed" | "failed")) {
            return;
        }
    }
}

/// A `tools/call` over stdio: one line out, read lines until the answer with `id`.
fn stdio_call(
    stdin: &mut impl Write,
    stdout: &mut impl BufRead,
    id: usize,
    line: &mut String,
) -> Value {
    let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "github_repos_get", "arguments": {"owner": "a", "repo": "b"}}});
    writeln!(stdin, "{call}")
        .and_then(|()| stdin.flush())
        .expect("the bridge reads stdin");
    loop {
        line.clear();
        assert!(
            stdout.read_line(line).expect("the bridge writes stdout") > 0,
            "the bridge closed stdout"
        );
        let message: Value = serde_json::from_str(line).expect("stdout carries JSON-RPC only");
        if message["id"] == id {
            return message;
        }
    }
}

/// Checks that a `tools/call` answer reports a job that ran to its end (instant jobs
/// without a connected credential end `failed`, which is still a whole execute + poll).
fn assert_job_ended(answer: &Value) {
    let report = &answer["result"]["structuredContent"];
    assert!(
        matches!(report["status"].as_str(), Some("executed" | "failed"))
            && report["job_id"].is_string(),
        "{answer}"
    );
}

/// Per-call figures: direct, through the stdio bridge, through the Streamable HTTP bridge.
async fn per_call(http: &reqwest::Client, api: &str, key: &str, mcp_url: &str) {
    let direct = timed(|_| direct_call(http, api, key)).await;

    let mut child = Command::new(binary())
        .arg("serve")
        .env("TENET_API_KEY", key)
        .env("TENET_API_URL", api)
        .env("TENET_MCP_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("build the release binary first: cargo build --release");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "load", "version": "0"}}});
    writeln!(stdin, "{init}").unwrap();
    stdout.read_line(&mut line).unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .unwrap();
    let stdio = timed(|i| {
        let answer = stdio_call(&mut stdin, &mut stdout, i + 1, &mut line);
        assert_job_ended(&answer);
        std::future::ready(())
    })
    .await;
    let _ = child.kill();

    let session = open_session(http, mcp_url).await;
    let streamable = timed(|i| {
        let call = json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": {"name": "github_repos_get", "arguments": {"owner": "a", "repo": "b"}}});
        let session = &session;
        async move {
            let (_, answer) = post(http, mcp_url, Some(session), call).await;
            assert_job_ended(&answer);
        }
    })
    .await;

    println!(
        "Per-call time: {SEQUENTIAL_CALLS} sequential calls after {WARM_UP} warm-up, instant jobs, one Rust client; milliseconds\n"
    );
    println!("| path | p50 | p99 | added p50 | added p99 |");
    println!("|---|---|---|---|---|");
    let (d50, d99) = (percentile(&direct, 0.5), percentile(&direct, 0.99));
    println!("| direct execute + poll (reqwest, keep-alive) | {d50:.3} | {d99:.3} | | |");
    for (path, times) in [
        ("tools/call through tenet-mcp, stdio", &stdio),
        ("tools/call through tenet-mcp, Streamable HTTP", &streamable),
    ] {
        let (p50, p99) = (percentile(times, 0.5), percentile(times, 0.99));
        println!(
            "| {path} | {p50:.3} | {p99:.3} | {:.3} | {:.3} |",
            p50 - d50,
            p99 - d99
        );
    }
    println!();
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

    per_call(&http, &emulator_url, &key, &url).await;

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
    let cpu_before = (
        cpu_ms(bridge.id()),
        cpu_ms(emulator.id()),
        cpu_ms(std::process::id()),
    );
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
    let cpu_after = (
        cpu_ms(bridge.id()),
        cpu_ms(emulator.id()),
        cpu_ms(std::process::id()),
    );
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
    let per_call_us = |before: f64, after: f64| (after - before) * 1000.0 / sorted.len() as f64;
    println!("\nCPU time per call during that run (user + system, microseconds)\n");
    println!("| bridge | emulator | load generator |");
    println!("|---|---|---|");
    println!(
        "| {:.0} | {:.0} | {:.0} |",
        per_call_us(cpu_before.0, cpu_after.0),
        per_call_us(cpu_before.1, cpu_after.1),
        per_call_us(cpu_before.2, cpu_after.2)
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
