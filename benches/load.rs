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
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

mod common;
use common::*;

/// Per-call figures come from ROUNDS rounds; each round times CALLS_PER_ROUND calls on
/// every path in turn, so drift of a shared machine touches all paths alike.
const ROUNDS: usize = 5;
const CALLS_PER_ROUND: usize = 400;
const WARM_UP: usize = 100;
const THROUGHPUT_ROUNDS: usize = 3;
const SESSIONS: usize = 64;
const CALLS_PER_SESSION: usize = 200;
const IDLE_SESSIONS: usize = 1000;

/// Milliseconds of each of `count` sequential runs of `call`, appended to `times`.
async fn timed<F: Future<Output = ()>>(
    count: usize,
    times: &mut Vec<f64>,
    mut call: impl FnMut() -> F,
) {
    for _ in 0..count {
        let t = Instant::now();
        call().await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
}

/// The median, 99th percentile and spread (lowest and highest round median) of rounds of times.
fn spread(rounds: &[Vec<f64>]) -> (f64, f64, f64, f64) {
    let mut all: Vec<f64> = rounds.concat();
    all.sort_by(f64::total_cmp);
    let mut medians: Vec<f64> = rounds
        .iter()
        .map(|round| {
            let mut round = round.clone();
            round.sort_by(f64::total_cmp);
            percentile(&round, 0.5)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    (
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        medians[0],
        medians[medians.len() - 1],
    )
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
    writeln!(stdin, "{}", tools_call(id))
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

/// Per-call figures: direct, through the stdio bridge, through the Streamable HTTP bridge.
async fn per_call(http: &reqwest::Client, api: &str, key: &str, mcp_url: &str) {
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
    writeln!(stdin, "{}", initialize_request()).unwrap();
    stdout.read_line(&mut line).unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .unwrap();
    let session = open_session(http, mcp_url).await;

    let mut next_id = 0;
    let mut over_stdio = || {
        next_id += 1;
        assert_job_ended(&stdio_call(&mut stdin, &mut stdout, next_id, &mut line));
        std::future::ready(())
    };
    let over_streamable = || {
        let session = &session;
        async move {
            let (_, answer) = post(http, mcp_url, Some(session), tools_call(1)).await;
            assert_job_ended(&answer);
        }
    };
    let mut discard = Vec::new();
    timed(WARM_UP, &mut discard, || direct_call(http, api, key)).await;
    timed(WARM_UP, &mut discard, &mut over_stdio).await;
    timed(WARM_UP, &mut discard, over_streamable).await;
    let (mut direct, mut stdio, mut streamable) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let mut round = Vec::with_capacity(CALLS_PER_ROUND);
        timed(CALLS_PER_ROUND, &mut round, || direct_call(http, api, key)).await;
        direct.push(std::mem::take(&mut round));
        timed(CALLS_PER_ROUND, &mut round, &mut over_stdio).await;
        stdio.push(std::mem::take(&mut round));
        timed(CALLS_PER_ROUND, &mut round, over_streamable).await;
        streamable.push(round);
    }
    let _ = child.kill();
    let _ = child.wait();

    println!(
        "Per-call time: {ROUNDS} rounds of {CALLS_PER_ROUND} sequential calls per path, paths interleaved, after {WARM_UP} warm-up; instant jobs, one Rust client; milliseconds\n"
    );
    println!("| path | p50 | p99 | round p50s (min-max) | added p50 | added p99 |");
    println!("|---|---|---|---|---|---|");
    let (d50, d99, dlow, dhigh) = spread(&direct);
    println!(
        "| direct execute + poll (reqwest, keep-alive) | {d50:.3} | {d99:.3} | {dlow:.3}-{dhigh:.3} | | |"
    );
    for (path, rounds) in [
        ("tools/call through tenet-mcp, stdio", &stdio),
        ("tools/call through tenet-mcp, Streamable HTTP", &streamable),
    ] {
        let (p50, p99, low, high) = spread(rounds);
        println!(
            "| {path} | {p50:.3} | {p99:.3} | {low:.3}-{high:.3} | {:.3} | {:.3} |",
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
    let (mut bridge, base) = spawn_http_bridge(&env, &[]);
    let url = format!("{base}/mcp");
    let http = load_client();

    per_call(&http, &emulator_url, &key, &url).await;

    // Throughput: SESSIONS sessions, each calling one after another.
    let sessions: Vec<String> =
        futures::future::join_all((0..SESSIONS).map(|_| open_session(&http, &url))).await;
    for session in &sessions {
        post(&http, &url, Some(session), tools_call(0)).await;
    }
    println!(
        "Throughput: {SESSIONS} Streamable HTTP sessions x {CALLS_PER_SESSION} calls each, {THROUGHPUT_ROUNDS} rounds (instant jobs, emulator on the same machine); CPU time per call is user + system of each process during the round\n"
    );
    println!(
        "| round | calls | seconds | calls/s | p50 ms | p99 ms | bridge CPU µs/call | emulator CPU µs/call | load generator CPU µs/call |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut rates = Vec::new();
    for number in 1..=THROUGHPUT_ROUNDS {
        let pids = [bridge.id(), emulator.id(), std::process::id()];
        let measured = round(&http, &url, &sessions, CALLS_PER_SESSION, &pids).await;
        rates.push(measured.rate);
        println!(
            "| {number} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} |",
            measured.times.len(),
            measured.seconds,
            measured.rate,
            percentile(&measured.times, 0.5),
            percentile(&measured.times, 0.99),
            measured.cpu_us_per_call[0],
            measured.cpu_us_per_call[1],
            measured.cpu_us_per_call[2]
        );
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "\nMedian {:.0} calls/s (rounds {:.0}-{:.0}).",
        percentile(&rates, 0.5),
        rates[0],
        rates[rates.len() - 1]
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
