//! The bridge's own cost, without the emulator's: a minimal Tenet stand-in (every call
//! allowed at once, every job completed at its first poll, no SQLite; served from this
//! process on a thread of its own) behind one release `serve --transport http`.
//!
//! Prints: CPU time per governed call in the bridge process and calls/s of the replica,
//! 64 Streamable HTTP sessions calling at once (client, stand-in and bridge sharing this
//! machine's cores), with the bridge's default threads and with `--threads 1`; and the
//! latency HAProxy with `docs/deploy/haproxy.cfg` adds in front of it (sequential calls,
//! direct and through HAProxy interleaved in rounds). With `PROFILE=1` it also samples
//! the bridge with `perf record` during the last round of each throughput run into
//! `target/bridge_cost.perf.data` (the second run's is kept).
//!
//! Run: `cargo build --release && cargo bench --bench bridge_cost`. Asserts no time.

use std::{
    process::{Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use axum::{Json, Router, extract::Path, http::StatusCode, routing};
use serde_json::json;

mod common;
use common::*;

const SESSIONS: usize = 64;
const CALLS_PER_SESSION: usize = 200;
const THROUGHPUT_ROUNDS: usize = 5;
const LATENCY_ROUNDS: usize = 5;
const LATENCY_CALLS_PER_ROUND: usize = 400;
const WARM_UP: usize = 200;

/// Starts the stand-in on a loopback port, on a thread and runtime of its own.
fn stand_in() -> String {
    static NEXT_JOB: AtomicU64 = AtomicU64::new(0);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = Router::new()
                .route(
                    "/v1/execute",
                    routing::post(|| async {
                        let job = NEXT_JOB.fetch_add(1, Ordering::Relaxed);
                        (
                            StatusCode::ACCEPTED,
                            Json(json!({"jobId": format!("job_{job}"), "status": "pending", "decision": "ALLOW"})),
                        )
                    }),
                )
                .route(
                    "/v1/jobs/{id}",
                    routing::get(|Path(id): Path<String>| async move {
                        Json(json!({"jobId": id, "status": "completed", "execution": {"status": 200, "headers": {"content-type": "application/json"}, "body": {"ok": true}, "durationMs": 1}}))
                    }),
                );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

/// HAProxy with the shipped configuration, every replica line naming `bridge`.
fn haproxy(bridge: &str) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deploy/haproxy.cfg");
    let address = bridge.trim_start_matches("http://");
    let child = Command::new("haproxy")
        .args(["-db", "-f", config])
        .env("TENET_MCP_LB_BIND", format!("127.0.0.1:{port}"))
        .env("TENET_MCP_REPLICA_1", address)
        .env("TENET_MCP_REPLICA_2", address)
        .env("TENET_MCP_REPLICA_3", address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy is not installed (Debian package haproxy)");
    (child, format!("http://127.0.0.1:{port}"))
}

/// `count` sequential calls on one session; their milliseconds, appended to `times`.
async fn sequential(
    http: &reqwest::Client,
    url: &str,
    session: &str,
    count: usize,
    times: &mut Vec<f64>,
) {
    for i in 0..count {
        let started = Instant::now();
        let (_, answer) = post(http, url, Some(session), tools_call(i)).await;
        assert_job_ended(&answer);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 0.5)
}

/// One throughput run against a fresh bridge started with `extra_args`: the rounds'
/// table, then the median calls/s and bridge µs per call.
async fn throughput(env: &[(&str, &str)], extra_args: &[&str], label: &str) {
    let (mut bridge, base) = spawn_http_bridge(env, extra_args);
    let url = format!("{base}/mcp");
    let http = load_client();
    let sessions: Vec<String> =
        futures::future::join_all((0..SESSIONS).map(|_| open_session(&http, &url))).await;
    concurrent_calls(&http, &url, &sessions, 20).await;
    println!(
        "Throughput, bridge {label}: {SESSIONS} Streamable HTTP sessions x {CALLS_PER_SESSION} calls, {THROUGHPUT_ROUNDS} rounds, against the stand-in; CPU is user + system of each process during the round\n"
    );
    println!(
        "| round | calls/s | p50 ms | p99 ms | bridge CPU µs/call | stand-in + client CPU µs/call |"
    );
    println!("|---|---|---|---|---|---|");
    let mut rates = Vec::new();
    let mut bridge_us = Vec::new();
    let profile = std::env::var_os("PROFILE").is_some();
    for number in 1..=THROUGHPUT_ROUNDS {
        let perf = (profile && number == THROUGHPUT_ROUNDS).then(|| {
            Command::new("perf")
                .args([
                    "record",
                    "-F",
                    "999",
                    "-g",
                    "-o",
                    "target/bridge_cost.perf.data",
                    "-p",
                ])
                .arg(bridge.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("perf is not installed (Debian package linux-perf)")
        });
        let pids = [bridge.id(), std::process::id()];
        let measured = round(&http, &url, &sessions, CALLS_PER_SESSION, &pids).await;
        if let Some(perf) = perf {
            let _ = Command::new("kill")
                .args(["-INT", &perf.id().to_string()])
                .status();
            let _ = perf.wait_with_output();
        }
        rates.push(measured.rate);
        bridge_us.push(measured.cpu_us_per_call[0]);
        println!(
            "| {number} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} |",
            measured.rate,
            percentile(&measured.times, 0.5),
            percentile(&measured.times, 0.99),
            measured.cpu_us_per_call[0],
            measured.cpu_us_per_call[1]
        );
    }
    println!(
        "\nBridge {label}: median {:.0} calls/s; {:.0} µs of bridge CPU per call.\n",
        median(rates),
        median(bridge_us)
    );
    let _ = bridge.kill();
}

#[tokio::main]
async fn main() {
    let tenet = stand_in();
    let env = [
        ("TENET_API_KEY", "tnt_bench_key"),
        ("TENET_API_URL", tenet.as_str()),
    ];
    // Throughput and CPU per call: with the default threads (one per core), then with one.
    throughput(&env, &[], "with its default threads").await;
    throughput(&env, &["--threads", "1"], "with --threads 1").await;

    let (mut bridge, base) = spawn_http_bridge(&env, &[]);
    let url = format!("{base}/mcp");
    let http = load_client();

    // What HAProxy adds.
    let (mut balancer, lb) = haproxy(&base);
    let lb_url = format!("{lb}/mcp");
    let mut ready = false;
    for _ in 0..100 {
        if http
            .get(format!("{lb}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "HAProxy did not come up");
    let direct_session = open_session(&http, &url).await;
    let lb_session = open_session(&http, &lb_url).await;
    let mut discard = Vec::new();
    sequential(&http, &url, &direct_session, WARM_UP, &mut discard).await;
    sequential(&http, &lb_url, &lb_session, WARM_UP, &mut discard).await;
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    let (mut direct_p50s, mut through_p50s) = (Vec::new(), Vec::new());
    for _ in 0..LATENCY_ROUNDS {
        let mut round = Vec::new();
        sequential(
            &http,
            &url,
            &direct_session,
            LATENCY_CALLS_PER_ROUND,
            &mut round,
        )
        .await;
        direct_p50s.push(median(round.clone()));
        direct.extend(round);
        let mut round = Vec::new();
        sequential(
            &http,
            &lb_url,
            &lb_session,
            LATENCY_CALLS_PER_ROUND,
            &mut round,
        )
        .await;
        through_p50s.push(median(round.clone()));
        through.extend(round);
    }
    let added: Vec<f64> = through_p50s
        .iter()
        .zip(&direct_p50s)
        .map(|(lb, direct)| lb - direct)
        .collect();
    direct.sort_by(f64::total_cmp);
    through.sort_by(f64::total_cmp);
    println!(
        "HAProxy in front: {LATENCY_ROUNDS} rounds of {LATENCY_CALLS_PER_ROUND} sequential calls per path, interleaved; milliseconds\n"
    );
    println!("| path | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| direct to the replica | {:.3} | {:.3} |",
        percentile(&direct, 0.5),
        percentile(&direct, 0.99)
    );
    println!(
        "| through HAProxy | {:.3} | {:.3} |",
        percentile(&through, 0.5),
        percentile(&through, 0.99)
    );
    let mut sorted_added = added.clone();
    sorted_added.sort_by(f64::total_cmp);
    println!(
        "\nHAProxy adds {:.3} ms p50 (median of the rounds' differences; rounds {:.3} to {:.3}).",
        median(added),
        sorted_added[0],
        sorted_added[sorted_added.len() - 1]
    );
    let _ = balancer.kill();
    let _ = bridge.kill();
}
