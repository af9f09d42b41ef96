//! The audit log's end and digests, end to end: the head kept in the state and a
//! restart on a cut log refused, `audit verify` with and without `--expect-head`,
//! canonical lines only, and argument digests keyed per state.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::{
    downstream::{Downstream, KEY, catalog, policy},
    http_server::Logged,
};
use serde_json::{Value, json};
use tenet_mcp::emulator::{Emulator, EmulatorConfig, start};

/// A downstream API and the folder holding the catalog, the policy, the log and the state.
struct Setup {
    dir: tempfile::TempDir,
    _down: Downstream,
    down_url: String,
}

impl Setup {
    async fn new() -> Self {
        let (down, down_url) = Downstream::start().await;
        Self {
            dir: tempfile::tempdir().unwrap(),
            _down: down,
            down_url,
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    /// Starts an emulator writing [`Setup::log`], its state in `dir/state` when
    /// `persistent`; an error as the command line prints it.
    async fn start(&self, persistent: bool) -> Result<Emulator, String> {
        let dir = self.dir.path();
        start(EmulatorConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            catalog: catalog(dir, &self.down_url),
            policy: policy(dir, ""),
            state_dir: persistent.then(|| dir.join("state")),
            audit_log: Some(self.log()),
        })
        .await
        .map_err(|error| error.to_string())
    }
}

/// Makes an escalated call: one audit record, written before the answer.
async fn escalate(emulator: &Emulator, id: &str) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = json!({"requestId": request_id, "service": "d", "toolCall": {"toolName": "d.items.delete", "arguments": {"id": id}}, "agent": {"agentId": "default"}, "context": {}});
    let response = reqwest::Client::new()
        .post(format!("{}/v1/execute", emulator.url()))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn verify(path: &Path, expect_head: Option<&str>) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenet-mcp"));
    command.args(["audit", "verify"]).arg(path);
    if let Some(head) = expect_head {
        command.args(["--expect-head", head]);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.code(), text)
}

/// The head `audit verify` prints.
fn printed_head(output: &str) -> String {
    output
        .split_once("head ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no head in: {output}"))
        .to_owned()
}

#[tokio::test]
async fn a_restart_on_a_cut_log_is_refused_and_says_what_to_do() {
    let setup = Setup::new().await;
    let emulator = setup.start(true).await.unwrap();
    for id in ["1", "2", "3"] {
        escalate(&emulator, id).await;
    }
    emulator.shutdown().await;
    let path = setup.log();
    let original = lines(&path);
    let last: Value = serde_json::from_str(&original[2]).unwrap();
    let head = format!("{}:{}", last["seq"], last["hash"].as_str().unwrap());

    write(&path, &original[..2]);
    let refused = setup.start(true).await.err().expect("a cut log is refused");
    for part in [
        path.display().to_string(),
        format!("head {head}"),
        "holds 2 records".into(),
        "Restore the log".into(),
        "move the log and the state folder aside".into(),
    ] {
        assert!(refused.contains(&part), "{part} not in: {refused}");
    }
    std::fs::write(&path, "").unwrap();
    let refused = setup
        .start(true)
        .await
        .err()
        .expect("an emptied log is refused");
    assert!(refused.contains("holds 0 records"), "{refused}");

    write(&path, &original);
    let emulator = setup.start(true).await.unwrap();
    escalate(&emulator, "4").await;
    emulator.shutdown().await;
    let (code, output) = verify(&path, None);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("ok: 4 records"), "{output}");
}

#[tokio::test]
async fn verify_prints_the_head_and_checks_the_end_only_against_an_expected_head() {
    let setup = Setup::new().await;
    let emulator = setup.start(false).await.unwrap();
    for id in ["1", "2", "3"] {
        escalate(&emulator, id).await;
    }
    let path = setup.log();
    let original = lines(&path);
    let (code, output) = verify(&path, None);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("ok: 3 records, chain intact"), "{output}");
    assert!(
        output.contains("the end of the log is not checked"),
        "{output}"
    );
    let head = printed_head(&output);
    assert!(head.starts_with("3:"), "{head}");

    let (code, output) = verify(&path, Some(&head));
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("matches --expect-head"), "{output}");

    // Cut records still chain; only the anchor shows what is missing.
    write(&path, &original[..2]);
    assert_eq!(verify(&path, None).0, Some(0));
    let (code, output) = verify(&path, Some(&head));
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("head differs") && output.contains("record 3 is missing"),
        "{output}"
    );
    std::fs::write(&path, "").unwrap();
    let (code, output) = verify(&path, Some(&head));
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("records 1 to 3 are missing"), "{output}");

    write(&path, &original);
    escalate(&emulator, "4").await;
    let (code, output) = verify(&path, Some(&head));
    assert_eq!(code, Some(0), "a log grown past its anchor: {output}");
    assert!(
        output.contains("holds the anchored record 3 and 1 records after it"),
        "{output}"
    );
    // Grown, then cut back past the anchor: the anchored record is gone.
    let grown = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = grown.lines().map(str::to_owned).collect();
    write(&path, &lines[..2]);
    let (code, output) = verify(&path, Some(&head));
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("record 3 is missing"), "{output}");
    write(&path, &lines);
    emulator.shutdown().await;

    let (code, output) = verify(&setup.dir.path().join("missing.jsonl"), None);
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.starts_with("cannot read") && !output.contains("record 0"),
        "{output}"
    );

    let (code, output) = verify(&path, Some("3:not-a-hash"));
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("SEQ:HASH"), "{output}");
}

#[tokio::test]
async fn a_line_with_a_duplicate_key_is_refused_even_when_its_hash_matches() {
    let setup = Setup::new().await;
    let emulator = setup.start(false).await.unwrap();
    escalate(&emulator, "1").await;
    escalate(&emulator, "2").await;
    emulator.shutdown().await;
    let path = setup.log();
    let mut edited = lines(&path);
    // Parsers that keep the first of two keys read ALLOW; the hash covers the last.
    edited[1] = edited[1].replacen(
        r#""outcome":"ESCALATE""#,
        r#""outcome":"ALLOW","outcome":"ESCALATE""#,
        1,
    );
    assert_ne!(edited[1], lines(&path)[1]);
    write(&path, &edited);
    let (code, output) = verify(&path, None);
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("broken at record 2")
            && output.contains(r#"the key "outcome" appears twice"#),
        "{output}"
    );
}

#[tokio::test]
async fn argument_digests_are_keyed_with_a_secret_kept_per_state() {
    let setup = Setup::new().await;
    let digests = |path: &Path| -> Vec<Value> {
        lines(path)
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|record| {
                assert!(record.get("arguments_sha256").is_none(), "{record}");
                record["arguments_hmac_sha256"].clone()
            })
            .collect()
    };
    let emulator = setup.start(true).await.unwrap();
    escalate(&emulator, "1").await;
    emulator.shutdown().await;
    let emulator = setup.start(true).await.unwrap();
    escalate(&emulator, "1").await;
    emulator.shutdown().await;
    let kept = digests(&setup.log());
    assert!(kept[0].is_string(), "{kept:?}");
    assert_eq!(kept[0], kept[1], "the secret survives a restart");
    let guessed = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(br#"{"id":"1"}"#));
    assert_ne!(kept[0], guessed, "the digest is not a plain SHA-256");

    let other = Setup::new().await;
    let emulator = other.start(false).await.unwrap();
    escalate(&emulator, "1").await;
    emulator.shutdown().await;
    assert_ne!(
        digests(&other.log())[0],
        kept[0],
        "another state, another secret"
    );
}

/// The lines the `emulator` command writes to stderr up to where it is listening.
async fn emulator_start_lines(extra: &[&str], dir: &Path) -> String {
    let (emulator, listening) = Logged::spawn(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
            .args(["--log-level", "info", "emulator", "--bind", "127.0.0.1:0"])
            .arg("--audit-log")
            .arg(dir.join("audit.jsonl"))
            .args(extra),
        "listening on",
    )
    .await;
    assert!(
        listening.is_some(),
        "the emulator did not start:\n{}",
        emulator.log()
    );
    emulator.log()
}

#[tokio::test]
async fn the_emulator_prints_the_head_at_start_and_says_when_it_is_not_anchored() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = format!("head 0:{}", "0".repeat(64));
    let alone = emulator_start_lines(&[], dir.path()).await;
    assert!(alone.contains("listening on"), "{alone}");
    assert!(alone.contains(&genesis), "{alone}");
    assert!(alone.contains("is not anchored"), "{alone}");

    let state = dir.path().join("state");
    let anchored = emulator_start_lines(&["--state", state.to_str().unwrap()], dir.path()).await;
    assert!(anchored.contains(&genesis), "{anchored}");
    assert!(!anchored.contains("is not anchored"), "{anchored}");
}
