//! Runs the third-party MCP clients installed by `tests/interop/setup.sh`: the Python
//! `mcp` SDK (through `tests/interop/mcp_driver.py`) and the MCP Inspector CLI.
//!
//! A missing client is a test failure, never a skip: CI must prove interop every run.

use std::{
    io::{Read, Write},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// The longest a client run may take before it is killed and the test fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the Python driver with `transport_args` (e.g. `--transport http --url ...`),
/// feeding it `steps`; returns its JSON report.
pub fn python_driver(transport_args: &[String], steps: &Value) -> Value {
    python_script("mcp_driver.py", transport_args, Some(steps.to_string()))
}

/// Runs `tests/interop/SCRIPT` with the interop venv's Python (which has the `mcp` SDK)
/// and `args`, feeding it `input`; returns the JSON document it prints. Blocking.
pub fn python_script(script: &str, args: &[String], input: Option<String>) -> Value {
    let python = repo().join(".interop/venv/bin/python");
    assert!(
        python.exists(),
        "the Python MCP client is not installed: run tests/interop/setup.sh (the test command in README does it)"
    );
    let mut command = Command::new(python);
    command
        .arg(repo().join("tests/interop").join(script))
        .args(args);
    let (status, stdout, stderr) = run(command, input);
    parse("the Python MCP client", status, &stdout, &stderr)
}

/// Runs the Inspector CLI (`mcp-inspector --cli ARGS`); returns its JSON output.
/// Tool results with `isError: true` are still printed on stdout, so they parse too.
pub fn inspector_cli(args: &[String]) -> Value {
    let bin = repo().join("tests/interop/node_modules/.bin/mcp-inspector");
    assert!(
        bin.exists(),
        "the MCP Inspector CLI is not installed: run tests/interop/setup.sh (the test command in README does it)"
    );
    let home = std::env::temp_dir().join(format!("tenet-mcp-inspector-{}", std::process::id()));
    let mut command = Command::new(bin);
    // The Inspector keeps a catalog under $HOME; keep it out of the user's home.
    command.arg("--cli").args(args).env("HOME", home);
    let (status, stdout, stderr) = run(command, None);
    parse("the MCP Inspector CLI", status, &stdout, &stderr)
}

/// Runs `command` with `input` on stdin, bounded by [`CLIENT_TIMEOUT`].
fn run(mut command: Command, input: Option<String>) -> (Option<i32>, String, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        if let Some(input) = input {
            let _ = stdin.write_all(input.as_bytes());
        }
    });
    let mut stdout_pipe = child.stdout.take().unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout_pipe.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CLIENT_TIMEOUT {
            let _ = child.kill();
            let stderr = err.join().unwrap_or_default();
            panic!("{command:?} did not finish within {CLIENT_TIMEOUT:?}; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    (status.code(), out.join().unwrap(), err.join().unwrap())
}

fn parse(client: &str, status: Option<i32>, stdout: &str, stderr: &str) -> Value {
    let value: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{client} printed no JSON ({e}; exit {status:?}):\nstdout: {stdout}\nstderr: {stderr}"
        )
    });
    assert!(
        value.get("fatal").is_none(),
        "{client} failed: {value}\nstderr: {stderr}"
    );
    value
}

/// With the Inspector CLI, checks that a server lists the fixture's tools and answers an
/// executed and an escalated call (as the test scripted them). `args(method)` gives the
/// Inspector's arguments reaching the server for those method flags. Blocking.
pub fn check_inspector_outcomes(label: &str, args: impl Fn(&[&str]) -> Vec<String>) {
    let listed = inspector_cli(&args(&["--method", "tools/list"]));
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("a tools array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"acme_items_get") && names.contains(&"tenet_job_status"),
        "{label}: {names:?}"
    );
    // `id=7` would be sent as a number: the Inspector parses tool arguments as JSON when it can.
    for (tool, status) in [
        ("acme_items_get", "executed"),
        ("acme_items_delete", "escalated"),
    ] {
        let called = inspector_cli(&args(&[
            "--method",
            "tools/call",
            "--tool-name",
            tool,
            "--tool-arg",
            "id=item-7",
        ]));
        assert_eq!(
            called["structuredContent"]["status"], status,
            "{label} {tool}: {called}"
        );
    }
}
