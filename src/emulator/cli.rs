//! The emulator's commands: `emulator` (serve it), `reviews` (decide escalated calls)
//! and `audit verify` (check the audit log's chain).

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{EmulatorConfig, EmulatorError, audit, policy::Policy, start};
use crate::catalog::Catalog;

/// Arguments of `tenet-mcp emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub bind: SocketAddr,
    /// A catalog file or folder of them (repeatable); default: the shipped catalog.
    #[arg(long = "catalog", value_name = "PATH")]
    pub catalogs: Vec<PathBuf>,
    /// A policy file (TOML, or JSON by extension); default: the built-in policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Keep jobs, reviews and spend in DIR (SQLite), surviving restarts; default: in memory.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// The audit log; default: DIR/audit.jsonl with --state, none without.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

/// Runs the emulator until Ctrl-C or SIGTERM.
pub async fn run_emulator(args: EmulatorArgs) -> Result<(), EmulatorError> {
    let catalog = Arc::new(Catalog::load_or_embedded(&args.catalogs)?);
    let policy = match &args.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::builtin(),
    };
    let config = EmulatorConfig {
        bind: args.bind,
        catalog,
        policy,
        state_dir: args.state,
        audit_log: args.audit_log,
    };
    let emulator = start(config).await?;
    let approver = match emulator.approver_key() {
        Some(key) => format!(
            "approver key {} (for `tenet-mcp reviews`: export TENET_APPROVER_KEY)",
            key.expose()
        ),
        None => "no approver key in the policy".into(),
    };
    eprintln!(
        "tenet-mcp emulator: listening on {url} (API key {key}); {approver}; approval page at {url}/",
        url = emulator.url(),
        key = emulator.api_key().expose()
    );
    crate::shutdown_signal().await;
    emulator.shutdown().await;
    Ok(())
}

/// Arguments of `tenet-mcp reviews`.
#[derive(Debug, Args)]
pub struct ReviewsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ReviewAction,
    /// The emulator's URL.
    #[arg(
        long,
        global = true,
        env = "TENET_EMULATOR_URL",
        default_value = "http://127.0.0.1:8787"
    )]
    pub emulator_url: String,
    /// The environment variable holding the approver key (caller keys cannot decide reviews).
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        default_value = "TENET_APPROVER_KEY"
    )]
    pub key_env: String,
}

/// `reviews list|approve|deny`
#[derive(Debug, Subcommand)]
pub enum ReviewAction {
    /// List pending and decided reviews.
    List,
    /// Approve a pending review: the call runs as a job.
    Approve {
        /// The review id (rev_...).
        id: String,
    },
    /// Deny a pending review.
    Deny {
        /// The review id (rev_...).
        id: String,
    },
}

/// Why `reviews` failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewsError {
    /// The approver key's variable is not set.
    #[error(
        "{0} is not set: export the approver key the emulator printed when it started (reviews need an approver key; the key agents call with cannot decide them)"
    )]
    NoKey(String),
    /// The emulator did not answer.
    #[error(
        "cannot reach the emulator at {base}: start it with `tenet-mcp emulator` or pass --emulator-url ({source})"
    )]
    Unreachable {
        /// The emulator's URL.
        base: String,
        /// What failed.
        source: reqwest::Error,
    },
    /// The emulator answered with an error.
    #[error("the emulator refused: {0}")]
    Refused(String),
}

/// Runs `reviews`; the approver key comes from TENET_APPROVER_KEY (or `--key-env`).
pub async fn run_reviews(args: ReviewsArgs) -> Result<(), ReviewsError> {
    let key = std::env::var(&args.key_env)
        .ok()
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| ReviewsError::NoKey(args.key_env.clone()))?;
    let base = args.emulator_url.trim_end_matches('/');
    let http = reqwest::Client::new();
    let unreachable = |source: reqwest::Error| ReviewsError::Unreachable {
        base: base.to_owned(),
        source,
    };
    let request = match &args.action {
        ReviewAction::List => http.get(format!("{base}/v1/reviews")),
        ReviewAction::Approve { id } => http.post(format!("{base}/v1/reviews/{id}/approve")),
        ReviewAction::Deny { id } => http.post(format!("{base}/v1/reviews/{id}/deny")),
    };
    let response = request
        .bearer_auth(key.trim())
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let body: Value = response.json().await.map_err(unreachable)?;
    if !status.is_success() {
        return Err(ReviewsError::Refused(
            body["message"]
                .as_str()
                .unwrap_or("unknown error")
                .to_owned(),
        ));
    }
    match args.action {
        ReviewAction::List => {
            let reviews = body["reviews"].as_array().cloned().unwrap_or_default();
            if reviews.is_empty() {
                println!("no reviews");
            }
            for review in reviews {
                println!(
                    "{}  {:<9} {:<32} agent={} job={} args={}",
                    review["id"].as_str().unwrap_or(""),
                    review["status"].as_str().unwrap_or(""),
                    review["tool"].as_str().unwrap_or(""),
                    review["agent"].as_str().unwrap_or(""),
                    review["job_id"].as_str().unwrap_or("-"),
                    review["arguments"]
                );
            }
        }
        _ => {
            let review = &body["review"];
            println!(
                "{} {}{}",
                review["id"].as_str().unwrap_or(""),
                review["status"].as_str().unwrap_or(""),
                review["job_id"]
                    .as_str()
                    .map(|j| format!(
                        ": running as job {j}; the agent follows it with tenet_job_status and the job_ref `tenet-mcp job-ref --agent-id {} {j}` prints",
                        review["agent"].as_str().unwrap_or("default")
                    ))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Arguments of `tenet-mcp audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: AuditAction,
}

/// `audit verify FILE [--expect-head SEQ:HASH]`
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check the audit log's hash chain and print its head (SEQ:HASH).
    ///
    /// Exit status: 0 when the chain is intact (and holds the --expect-head record, if
    /// given); 1 when a record is broken or the anchored record is missing or different;
    /// 2 on bad usage.
    /// Without --expect-head the end of the log cannot be checked: deleting its last
    /// records, or all of them, leaves an intact chain.
    Verify {
        /// The audit log (JSONL).
        file: PathBuf,
        /// A head kept elsewhere (as printed by `audit verify` or at emulator start): the
        /// log must hold that record with that hash (it may have grown since).
        #[arg(long, value_name = "SEQ:HASH")]
        expect_head: Option<audit::Head>,
    },
}

/// Runs `audit verify`: exit 0 when the chain is intact (and holds the anchored head),
/// 1 when it is broken or the anchored record is missing or different.
pub fn run_audit(args: &AuditArgs) -> ExitCode {
    let AuditAction::Verify { file, expect_head } = &args.action;
    let (head, plain_digests) = match audit::verify(file) {
        audit::Verified::Intact {
            head,
            plain_digests,
            ..
        } => (head, plain_digests),
        audit::Verified::Broken {
            line: 0, reason, ..
        } => {
            println!("{reason}");
            return ExitCode::from(1);
        }
        audit::Verified::Broken { line, reason, .. } => {
            println!("broken at record {line} (line {line}): {reason}");
            return ExitCode::from(1);
        }
    };
    println!("ok: {} records, chain intact; head {head}", head.seq);
    if plain_digests > 0 {
        println!(
            "note: {plain_digests} records, written by an older emulator, carry plain SHA-256 digests of their arguments (arguments_sha256), from which guessable arguments can be recovered; newer records are keyed (arguments_hmac_sha256)"
        );
    }
    let Some(expected) = expect_head else {
        println!(
            "the end of the log is not checked: deleting its last records, or all of them, leaves an intact chain; keep the head elsewhere and check it with --expect-head {head}"
        );
        return ExitCode::SUCCESS;
    };
    if *expected == head {
        println!("the head matches --expect-head: no record is missing from the end");
        return ExitCode::SUCCESS;
    }
    if head.seq > expected.seq
        && audit::hash_at(file, expected.seq).as_deref() == Some(expected.hash.as_str())
    {
        println!(
            "the log holds the anchored record {} and {} records after it: nothing up to the anchor is missing; the {} newer records are checked by the chain only (anchor the new head {head} to cover them)",
            expected.seq,
            head.seq - expected.seq,
            head.seq - expected.seq
        );
        return ExitCode::SUCCESS;
    }
    let why = if head.seq < expected.seq {
        let missing = match expected.seq - head.seq {
            1 => format!("record {} is", expected.seq),
            _ => format!("records {} to {} are", head.seq + 1, expected.seq),
        };
        format!("{missing} missing: deleted from the end, or the log was replaced")
    } else {
        format!(
            "record {} is not the anchored one: the log is not the one that head was taken from",
            expected.seq
        )
    };
    println!(
        "head differs: the log ends at {head}, and does not hold the anchored {expected}: {why}"
    );
    ExitCode::from(1)
}
