//! One governed call: arguments → Tenet execute → job → [`CallReport`].
//!
//! This is the bridge's core, free of MCP: it validates the arguments against the
//! tool's schema (Tenet is not called when they are invalid), sends the execute
//! with a fresh request id, follows an allowed call's job to its end or the poll
//! deadline, and reads every outcome into a report.
//!
//! A job is followed later only through its `job_ref`, which [`JobRefs`] binds to the
//! agent that made the call, so no agent can read another's job.
//!
//! Names: the bridge *submits* a call and *reports* Tenet's decision; only Tenet
//! decides. The emulator's `decide` and `Policy` (src/emulator/) are Tenet's concepts,
//! played by another program, and keep Tenet's names; the Tenet client's schedules are
//! [`RetrySchedule`](crate::tenet::client::RetrySchedule) and
//! [`PollSchedule`](crate::tenet::client::PollSchedule).

use std::{fmt, pin::pin, time::Duration};

use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{
    catalog::{JOB_STATUS_TOOL, Tool},
    report::{CallReport, ExecutionError},
    tenet::{
        TenetClient,
        client::{JobPoll, JobWait, check_job_id},
        decision::{Decision, Outcome, Reply},
        wire::{Agent, ExecuteRequest, JobBody, JobStatus, ToolCall},
    },
};

/// Sends governed calls to Tenet on behalf of one bridge.
#[derive(Clone, Debug)]
pub struct Governor {
    client: TenetClient,
    context: Map<String, Value>,
    poll_timeout: Duration,
    job_refs: JobRefs,
}

impl Governor {
    /// A governor sending `context` with every call and polling jobs for at most `poll_timeout`.
    /// Its job references are keyed from the client's API key (see [`JobRefs::derive`]).
    pub fn new(client: TenetClient, context: Map<String, Value>, poll_timeout: Duration) -> Self {
        let job_refs = JobRefs::derive(client.api_key().expose());
        Self {
            client,
            context,
            poll_timeout,
            job_refs,
        }
    }

    /// The same governor with job references keyed by `job_refs` instead.
    pub fn with_job_refs(mut self, job_refs: JobRefs) -> Self {
        self.job_refs = job_refs;
        self
    }

    /// How long a call waits for its job before answering `pending`.
    pub fn poll_timeout(&self) -> Duration {
        self.poll_timeout
    }

    /// Sends the call to Tenet and reads the decision; an allowed call whose job
    /// still runs comes back as [`Decided::Job`], to follow with [`Self::follow_job`].
    pub async fn submit(
        &self,
        tool: &Tool,
        arguments: Map<String, Value>,
        agent_id: &str,
        cancel: &CancellationToken,
    ) -> Decided {
        let request_id = uuid::Uuid::new_v4().to_string();
        let arguments = Value::Object(arguments);
        let validated = tracing::info_span!(target: crate::telemetry::TARGET, "validate")
            .in_scope(|| tool.validate_arguments(&arguments));
        if let Err(problems) = validated {
            let message = format!(
                "the arguments do not match the tool's input schema ({} problem(s)): {}. Fix them and call again.",
                problems.len(),
                problems.join("; ")
            );
            return Decided::Done(CallReport::error(&tool.name, &request_id, message));
        }
        let Value::Object(arguments) = arguments else {
            unreachable!("built from a map above")
        };
        let request = ExecuteRequest {
            request_id: request_id.clone(),
            service: tool.service.to_string(),
            tool_call: ToolCall {
                tool_name: tool.name.clone(),
                arguments,
            },
            agent: Agent {
                agent_id: agent_id.to_owned(),
            },
            context: self.context.clone(),
        };
        let started = Instant::now();
        let mut report = CallReport::new(&tool.name, &request_id);
        let answer = match self.client.execute(&request, cancel).await {
            Ok(answer) => answer,
            Err(error) => return Decided::Done(report.into_error(error.to_string())),
        };
        report.http_status = Some(answer.http_status);
        let decision = match answer.reply {
            Reply::Decision(decision) => decision,
            Reply::Unauthorized => {
                return Decided::Done(report.into_error(format!(
                    "Tenet rejected the API key (HTTP 401): check that TENET_API_KEY holds a current key for {} and has not been revoked",
                    self.client.api_url()
                )));
            }
            Reply::Rejected {
                http_status,
                code,
                message,
            } => {
                report.reason_codes.extend(code.clone());
                let detail = [code, message]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                let hint = if http_status == 429 {
                    "; Tenet is rate limiting, try again later"
                } else {
                    ""
                };
                return Decided::Done(report.into_error(format!(
                    "Tenet refused the request (HTTP {http_status}): {detail}{hint}"
                )));
            }
            Reply::ServerError {
                http_status,
                message,
            } => {
                return Decided::Done(report.into_error(format!(
                    "Tenet failed with HTTP {http_status} after {} tries{}; try again later",
                    answer.tries,
                    message.map(|m| format!(" ({m})")).unwrap_or_default()
                )));
            }
        };
        report.job_ref = decision
            .job_id
            .as_deref()
            .and_then(|job_id| self.job_refs.mint(agent_id, job_id));
        report_decision(decision, report, started)
    }

    /// Follows an allowed call's job until it finishes or `deadline` passes; `watcher` hears
    /// of every answered poll before polling goes on.
    pub async fn follow_job(
        &self,
        job: PendingJob,
        deadline: Instant,
        cancel: &CancellationToken,
        watcher: &mut impl JobWatcher,
    ) -> CallReport {
        self.finish_job(job.report, &job.job_id, deadline, cancel, watcher)
            .await
    }

    /// Follows a job started earlier (e.g. one that outlived a call's poll deadline)
    /// until it finishes or the poll deadline passes, and reports it like a call.
    /// `job_ref` must be one this server issued to `agent_id`; any other gets an error
    /// report and Tenet is not asked. `watcher` is as for [`Self::follow_job`].
    pub async fn job_status(
        &self,
        job_ref: &str,
        agent_id: &str,
        cancel: &CancellationToken,
        watcher: &mut impl JobWatcher,
    ) -> CallReport {
        let job_id = match self.job_refs.verify(agent_id, job_ref) {
            Ok(job_id) => job_id,
            Err(problem) => return CallReport::error(JOB_STATUS_TOOL, "", problem),
        };
        let mut report = CallReport::new(JOB_STATUS_TOOL, "");
        report.job_id = Some(job_id.to_owned());
        report.job_ref = Some(job_ref.to_owned());
        // A job exists only for an allowed call.
        report.outcome = Some(Outcome::Allow);
        self.finish_job(
            report,
            job_id,
            Instant::now() + self.poll_timeout,
            cancel,
            watcher,
        )
        .await
    }

    /// Polls `job_id`, telling `watcher` each status, and reports where it ended.
    async fn finish_job(
        &self,
        report: CallReport,
        job_id: &str,
        deadline: Instant,
        cancel: &CancellationToken,
        watcher: &mut impl JobWatcher,
    ) -> CallReport {
        let mut polls = pin!(self.client.poll_job(job_id, deadline, cancel));
        let mut last_status = None;
        let ended = loop {
            match polls.next().await {
                Some(JobPoll::Status(status)) => {
                    last_status = Some(status);
                    watcher.polled(job_id, status).await;
                }
                Some(JobPoll::Ended(ended)) => break ended,
                // The stream always ends with `Ended`; were it cut short, the bridge
                // stopped waiting.
                None => break JobWait::TimedOut { last_status },
            }
        };
        match ended {
            JobWait::Finished(job) => report_job(report, job),
            JobWait::TimedOut { .. } => report.pending(ExecutionError::PollTimeout),
            JobWait::Cancelled => report.pending(ExecutionError::Cancelled),
            JobWait::Unauthorized => report.into_error(format!(
                "Tenet rejected the API key while the bridge polled job {job_id} (HTTP 401): check TENET_API_KEY"
            )),
            JobWait::NotFound => report.into_error(format!(
                "Tenet does not know job {job_id} (HTTP 404): it may have expired; check the job_ref"
            )),
            JobWait::NoClient(problem) => report.into_error(format!(
                "the bridge could not poll job {job_id}, which may still run in Tenet: {problem}"
            )),
            JobWait::InvalidJobId => report.failed_because(
                ExecutionError::InvalidJobId,
                "Tenet allowed the call but named a job id that cannot be polled safely (not 1 to 128 characters \
                 from A-Z a-z 0-9 - . _ ~), so the bridge did not follow it: the call may still run in Tenet, \
                 do not retry it blindly",
            ),
        }
    }
}

/// A finished job's report: executed only when it completed with a downstream response
/// and no error; failed otherwise.
fn report_job(report: CallReport, job: JobBody) -> CallReport {
    match (job.status, job.execution, job.execution_error) {
        (JobStatus::Completed, Some(execution), None) => report.executed(execution.into()),
        (_, execution, error) => report.failed(
            error.map_or(ExecutionError::DownstreamFailed, ExecutionError::from),
            execution.map(Into::into),
        ),
    }
}

/// Hears of a followed job's polls, in the task that polls: polling waits for it.
pub trait JobWatcher: Send {
    /// A poll of `job_id` was answered with `status` (the final one included).
    fn polled(&mut self, job_id: &str, status: JobStatus) -> impl Future<Output = ()> + Send;
}

/// No one listens.
impl JobWatcher for () {
    async fn polled(&mut self, _job_id: &str, _status: JobStatus) {}
}

/// A decision, or an allowed call whose job still runs.
#[derive(Debug)]
pub enum Decided {
    /// The call's report is final (or Tenet gave no job to follow).
    Done(CallReport),
    /// Allowed; the job must be followed to know the result.
    Job(PendingJob),
}

/// An allowed call's job, still to be followed.
#[derive(Debug)]
pub struct PendingJob {
    report: CallReport,
    job_id: String,
    started: Instant,
}

impl PendingJob {
    /// Tenet's job id.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// When the call was sent to Tenet.
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// Reads a decision into a report: final unless an allowed call's job must be followed.
fn report_decision(decision: Decision, mut report: CallReport, started: Instant) -> Decided {
    let Decision {
        outcome,
        decision_id,
        review_id,
        reason_codes,
        job_id,
        execution,
        execution_error,
        ..
    } = decision;
    report.outcome = Some(outcome);
    report.decision_id = decision_id;
    report.review_id = review_id;
    report.reason_codes = reason_codes;
    report.job_id = job_id;
    if !outcome.is_allowed() {
        return Decided::Done(report.refused(outcome));
    }
    if let Some(error) = execution_error {
        return Decided::Done(report.failed(error.into(), None));
    }
    if let Some(execution) = execution {
        return Decided::Done(report.executed(execution.into()));
    }
    let Some(job_id) = report.job_id.clone() else {
        return Decided::Done(report.failed_because(
            ExecutionError::NoJob,
            "Tenet allowed the call but named no job to follow",
        ));
    };
    Decided::Job(PendingJob {
        report,
        job_id,
        started,
    })
}

/// The label that derives the job-reference key from its secret.
const JOB_REF_LABEL: &[u8] = b"tenet-mcp job-ref v1";

/// The bytes of a job reference's tag (128 bits, written as 32 hex digits).
const JOB_REF_TAG_BYTES: usize = 16;

/// Binds job ids to the agent whose call started them.
///
/// A job reference is `<job_id>.<tag>`, the tag being the first 128 bits of
/// HMAC-SHA256(key, len(agent_id) ‖ agent_id ‖ job_id) in hex, where the key is
/// HMAC-SHA256(secret, "tenet-mcp job-ref v1"). The secret is `TENET_MCP_JOB_SECRET`, or
/// else the Tenet API key, so restarts and replicas that share it accept each other's
/// references with no state. Tags are compared in constant time. `Debug` hides the key.
#[derive(Clone)]
pub struct JobRefs {
    key: [u8; 32],
}

impl fmt::Debug for JobRefs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobRefs(<redacted>)")
    }
}

impl JobRefs {
    /// Job references keyed from `secret` (the job secret, or the API key).
    pub fn derive(secret: &str) -> Self {
        let mut mac = hmac_sha256(secret.as_bytes());
        mac.update(JOB_REF_LABEL);
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, agent_id: &str, job_id: &str) -> Hmac<Sha256> {
        let mut mac = hmac_sha256(&self.key);
        mac.update(&(agent_id.len() as u64).to_be_bytes());
        mac.update(agent_id.as_bytes());
        mac.update(job_id.as_bytes());
        mac
    }

    /// The reference to `job_id` for `agent_id`; `None` when the job id is not a safe one
    /// (see [`check_job_id`]), which the bridge never polls.
    pub fn mint(&self, agent_id: &str, job_id: &str) -> Option<String> {
        check_job_id(job_id).ok()?;
        let tag = self.mac(agent_id, job_id).finalize().into_bytes();
        Some(format!(
            "{job_id}.{}",
            hex::encode(&tag[..JOB_REF_TAG_BYTES])
        ))
    }

    /// The job id of `job_ref` if this server issued it to `agent_id`; otherwise what to do.
    pub fn verify<'a>(&self, agent_id: &str, job_ref: &'a str) -> Result<&'a str, String> {
        let unknown = || {
            "`job_ref` is not a job reference issued to you by this server (it was altered, belongs \
             to another agent, or predates a change of the server's job secret): pass the job_ref of \
             one of your own results unchanged"
                .to_owned()
        };
        let (job_id, tag) = job_ref.rsplit_once('.').ok_or_else(unknown)?;
        check_job_id(job_id).map_err(|_| unknown())?;
        let mut bytes = [0u8; JOB_REF_TAG_BYTES];
        hex::decode_to_slice(tag, &mut bytes).map_err(|_| unknown())?;
        self.mac(agent_id, job_id)
            .verify_truncated_left(&bytes)
            .map_err(|_| unknown())?;
        Ok(job_id)
    }
}

/// HMAC-SHA256 under `key`.
fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    // HMAC hashes or pads a key of any length: this cannot fail.
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenet::{client::read_poll, decision::parse_execute_reply};
    use proptest::prelude::*;

    #[test]
    fn job_refs_bind_agent_and_job() {
        let refs = JobRefs::derive("tnt_key");
        let job_ref = refs.mint("alice", "job_1").unwrap();
        let (job_id, tag) = job_ref.rsplit_once('.').unwrap();
        assert_eq!((job_id, tag.len()), ("job_1", 2 * JOB_REF_TAG_BYTES));
        assert_eq!(refs.verify("alice", &job_ref), Ok("job_1"));
        // Deterministic: a restart or a replica with the same secret agrees.
        assert_eq!(
            JobRefs::derive("tnt_key").mint("alice", "job_1"),
            Some(job_ref.clone())
        );
        // Another agent, another secret, another job, an altered or cut tag: refused.
        assert!(refs.verify("bob", &job_ref).is_err());
        assert!(
            JobRefs::derive("tnt_other")
                .verify("alice", &job_ref)
                .is_err()
        );
        let other_job = format!("job_2.{tag}");
        assert!(refs.verify("alice", &other_job).is_err());
        let mut altered = job_ref.clone();
        altered.replace_range(
            job_ref.len() - 1..,
            if job_ref.ends_with('0') { "1" } else { "0" },
        );
        assert!(refs.verify("alice", &altered).is_err());
        assert!(refs.verify("alice", &job_ref[..job_ref.len() - 2]).is_err());
        for bad in ["job_1", "", ".", "job_1.", ".job_1", "job_1.zz"] {
            assert!(refs.verify("alice", bad).is_err(), "{bad}");
        }
        // The agent id is length-prefixed: moving bytes between agent and job changes the tag.
        let tag = |agent: &str, job: &str| {
            let job_ref = refs.mint(agent, job).unwrap();
            job_ref.rsplit_once('.').unwrap().1.to_owned()
        };
        assert_ne!(tag("ab", "c"), tag("a", "bc"));
        // Unsafe job ids get no reference at all.
        assert_eq!(refs.mint("alice", ".."), None);
        assert_eq!(refs.mint("alice", "a/b"), None);
        let problem = refs.verify("bob", &job_ref).unwrap_err();
        assert!(
            problem.contains("not a job reference issued to you"),
            "{problem}"
        );
        assert!(!format!("{refs:?}").contains(&hex::encode(refs.key)));
    }

    /// A client that cannot be built ends a followed job with an error report, not a
    /// `pending` one that tells the agent to poll again.
    #[tokio::test]
    async fn an_unbuildable_client_reports_an_error() {
        let config = crate::tenet::client::ClientConfig::new(
            "http://127.0.0.1:9",
            crate::tenet::ApiKey::new("tnt_k").unwrap(),
        );
        let client = TenetClient::unbuildable(config, "no TLS backend");
        let governor = Governor::new(client, Map::new(), Duration::from_secs(60));
        let mut report = CallReport::new("t.x", "r");
        report.outcome = Some(Outcome::Allow);
        report.job_id = Some("job_1".into());
        let job = PendingJob {
            report,
            job_id: "job_1".into(),
            started: Instant::now(),
        };
        let report = governor
            .follow_job(
                job,
                Instant::now() + Duration::from_secs(60),
                &CancellationToken::new(),
                &mut (),
            )
            .await;
        assert_eq!(report.status(), crate::report::CallStatus::Error);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["execution_error"], Value::Null);
        let error = json["error"].as_str().unwrap();
        assert!(
            error.contains("could not poll job job_1") && error.contains("no TLS backend"),
            "{error}"
        );
    }

    proptest! {
        /// Whatever Tenet answers to an execute, a report says `executed` only for an
        /// allowed call with a downstream response, and a job is followed only when allowed.
        #[test]
        fn executed_only_when_allowed(status in 100u16..600, body in crate::tenet::arbitrary::body()) {
            let report = CallReport::new("t.x", "r");
            if let Reply::Decision(decision) = parse_execute_reply(status, &body) {
                let allowed = decision.outcome.is_allowed();
                match report_decision(decision, report, Instant::now()) {
                    Decided::Done(report) => {
                        prop_assert!(!report.is_executed() || (allowed && report.execution().is_some()));
                    }
                    Decided::Job(_) => prop_assert!(allowed),
                }
            }
        }

        /// Whatever a poll answers, a job's report says `executed` only when the job
        /// completed with a downstream response and no error.
        #[test]
        fn a_job_executes_only_when_completed(status in 200u16..300, body in crate::tenet::arbitrary::body()) {
            let status = reqwest::StatusCode::from_u16(status).expect("a status in range");
            if let crate::tenet::client::Poll::Job(job) = read_poll(status, &body) {
                let completed = job.status == JobStatus::Completed && job.execution.is_some() && job.execution_error.is_none();
                let report = report_job(CallReport::new("t.x", "r"), job);
                prop_assert_eq!(report.is_executed(), completed);
            }
        }
    }
}
