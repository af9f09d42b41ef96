//! Downstream bodies too big for a tool result (`serve --max-result-bytes`).
//!
//! `KeptBodies::fit` cuts such a body in the result (`CallReport::cut_body`) and keeps
//! it whole, offered as the resource `tenet://jobs/{job_id}/execution`; the bridge links
//! it from the result and answers `resources/read` of it with `KeptBodies::read`, only
//! to the agent whose call it was (any other agent finds nothing there, as for a URI
//! never offered).
//!
//! What is kept is bounded: at most [`MAX_KEPT_BODIES`] bodies and [`MAX_KEPT_BYTES`] of
//! them in all, each for [`KEPT_BODY_TTL`] after it was last kept or read; past a bound the
//! least recently used go first. Bodies are kept in memory only: after a restart, or on
//! another replica, `tenet_job_status` with the call's `job_ref` fetches the result again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::Instant;

use crate::{
    report::{CallReport, FullBody},
    tenet::client::check_job_id,
};

/// The default `--max-result-bytes`: the largest downstream body put whole in a result.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 100 * 1024;

/// The most bodies kept at once.
pub const MAX_KEPT_BODIES: usize = 100;

/// The most bytes of bodies kept at once; a larger body is cut but not kept.
pub const MAX_KEPT_BYTES: usize = 64 * 1024 * 1024;

/// How long a body is kept after it was last kept or read.
pub const KEPT_BODY_TTL: Duration = Duration::from_secs(3600);

/// What the URI of a kept body starts with; `{job_id}/execution` follows.
const URI_PREFIX: &str = "tenet://jobs/";

/// What the URI of a kept body ends with.
const URI_SUFFIX: &str = "/execution";

/// The URI template of kept bodies, as `resources/templates/list` shows it.
pub(crate) const URI_TEMPLATE: &str = "tenet://jobs/{job_id}/execution";

/// The URI at which the body of job `job_id` is offered.
pub(crate) fn execution_uri(job_id: &str) -> String {
    format!("{URI_PREFIX}{job_id}{URI_SUFFIX}")
}

/// Why `resources/read` found no body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The URI is not one this server offers.
    #[error(
        "`{0}` is not a resource of this server: it offers tenet://jobs/{{job_id}}/execution, linked from \
         tool results whose response body was cut"
    )]
    UnknownUri(String),
    /// Nothing is kept there for this agent (never, no longer, or another agent's).
    #[error(
        "no response body is kept at {0} for you: a body is kept only for the agent whose call it was, \
         for an hour after it was last used, and only the most recently used ones; call tenet_job_status \
         with that call's job_ref to get its result (and a new link) again"
    )]
    NotKept(String),
}

/// The bodies kept for `resources/read`, and the size past which results cut them.
#[derive(Debug)]
pub(crate) struct KeptBodies {
    max_result_bytes: usize,
    limits: Limits,
    kept: Mutex<Kept>,
}

/// The bounds of what is kept.
#[derive(Clone, Copy, Debug)]
struct Limits {
    bodies: usize,
    bytes: usize,
    ttl: Duration,
}

#[derive(Debug, Default)]
struct Kept {
    /// By agent and job id.
    bodies: HashMap<(String, String), Entry>,
    /// The sum of the kept bodies' sizes.
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    body: Arc<FullBody>,
    used: Instant,
}

impl KeptBodies {
    /// Results cut bodies longer than `max_result_bytes`; the bounds are the constants above.
    pub(crate) fn new(max_result_bytes: usize) -> Self {
        Self::with_limits(
            max_result_bytes,
            Limits {
                bodies: MAX_KEPT_BODIES,
                bytes: MAX_KEPT_BYTES,
                ttl: KEPT_BODY_TTL,
            },
        )
    }

    fn with_limits(max_result_bytes: usize, limits: Limits) -> Self {
        Self {
            max_result_bytes,
            limits,
            kept: Mutex::default(),
        }
    }

    /// `report` as a result carries it for `agent`: a body longer than `--max-result-bytes`
    /// is cut, and kept whole (and offered) when its job id can name it and it fits the bounds.
    pub(crate) fn fit(&self, mut report: CallReport, agent: &str) -> CallReport {
        let Some(full) = report.cut_body(self.max_result_bytes) else {
            return report;
        };
        let Some(job_id) = report.job_id.clone().filter(|id| check_job_id(id).is_ok()) else {
            return report;
        };
        if full.text.len() > self.limits.bytes {
            tracing::warn!(
                job_id,
                bytes = full.text.len(),
                "a response body larger than all that is kept was cut and not kept"
            );
            return report;
        }
        report.offer_full_body(execution_uri(&job_id), full.mime_type());
        self.keep(agent, &job_id, full);
        report
    }

    fn keep(&self, agent: &str, job_id: &str, body: FullBody) {
        let now = Instant::now();
        let mut kept = self.lock();
        let size = body.text.len();
        let entry = Entry {
            body: Arc::new(body),
            used: now,
        };
        if let Some(old) = kept
            .bodies
            .insert((agent.to_owned(), job_id.to_owned()), entry)
        {
            kept.bytes -= old.body.text.len();
        }
        kept.bytes += size;
        let limits = self.limits;
        kept.evict(now, limits);
    }

    /// The whole body at `uri`, if `agent`'s call left it there and it is still kept.
    pub(crate) fn read(&self, uri: &str, agent: &str) -> Result<Arc<FullBody>, ReadError> {
        let shown = || uri.chars().take(200).collect::<String>();
        let job_id = uri
            .strip_prefix(URI_PREFIX)
            .and_then(|rest| rest.strip_suffix(URI_SUFFIX))
            .filter(|id| check_job_id(id).is_ok())
            .ok_or_else(|| ReadError::UnknownUri(shown()))?;
        let now = Instant::now();
        let mut kept = self.lock();
        kept.evict(now, self.limits);
        let entry = kept
            .bodies
            .get_mut(&(agent.to_owned(), job_id.to_owned()))
            .ok_or_else(|| ReadError::NotKept(shown()))?;
        entry.used = now;
        Ok(entry.body.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Kept {
    /// Drops expired bodies, then the least recently used until the bounds hold.
    fn evict(&mut self, now: Instant, limits: Limits) {
        let before = self.bodies.len();
        self.bodies
            .retain(|_, entry| now.duration_since(entry.used) < limits.ttl);
        if self.bodies.len() != before {
            self.bytes = self.bodies.values().map(|e| e.body.text.len()).sum();
        }
        while self.bodies.len() > limits.bodies || self.bytes > limits.bytes {
            let Some(oldest) = self
                .bodies
                .iter()
                .min_by_key(|(_, entry)| entry.used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(entry) = self.bodies.remove(&oldest) {
                self.bytes -= entry.body.text.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::report::DownstreamResponse;

    fn executed(job_id: &str, body: Value) -> CallReport {
        let mut report = CallReport::new("acme.items.get", "r1");
        report.job_id = Some(job_id.to_owned());
        report.executed(DownstreamResponse {
            status: 200,
            headers: Map::new(),
            body,
            duration_ms: 1,
        })
    }

    fn big(n: usize) -> Value {
        Value::String("x".repeat(n))
    }

    fn limits(bodies: usize, bytes: usize) -> Limits {
        Limits {
            bodies,
            bytes,
            ttl: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_cut_kept_and_offered_only_to_its_agent() {
        let kept = KeptBodies::new(1024);
        let body = json!({"items": vec!["a\"b"; 1000]});
        let report = kept.fit(executed("job_1", body.clone()), "alice");
        let uri = "tenet://jobs/job_1/execution";
        assert_eq!(report.full_body_uri(), Some(uri));
        assert_eq!(report.cut_size(), Some(body.to_string().len() as u64));
        let full = kept.read(uri, "alice").unwrap();
        assert_eq!(
            (full.text.clone(), full.mime_type()),
            (body.to_string(), "application/json")
        );
        assert_eq!(
            kept.read(uri, "bob"),
            Err(ReadError::NotKept(uri.to_owned()))
        );
        assert_eq!(
            kept.read("tenet://jobs/job_2/execution", "alice"),
            Err(ReadError::NotKept(
                "tenet://jobs/job_2/execution".to_owned()
            ))
        );
        for unknown in [
            "file:///etc/passwd",
            "tenet://jobs/../execution",
            "tenet://jobs/job_1",
        ] {
            assert_eq!(
                kept.read(unknown, "alice"),
                Err(ReadError::UnknownUri(unknown.to_owned()))
            );
        }
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_left_alone() {
        let kept = KeptBodies::new(1024);
        let report = executed("job_1", big(1024));
        assert_eq!(kept.fit(report.clone(), "alice"), report);
        assert_eq!(
            kept.read("tenet://jobs/job_1/execution", "alice"),
            Err(ReadError::NotKept(
                "tenet://jobs/job_1/execution".to_owned()
            ))
        );
    }

    #[tokio::test]
    async fn without_a_usable_job_id_the_body_is_cut_but_not_offered() {
        let kept = KeptBodies::new(1024);
        for job_id in ["", "a/b", ".."] {
            let report = kept.fit(executed(job_id, big(2000)), "alice");
            assert_eq!(report.cut_size(), Some(2000));
            assert_eq!(report.full_body_uri(), None);
            assert!(
                report.summary().contains("cannot be read"),
                "{}",
                report.summary()
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn kept_bodies_are_bounded_by_count_bytes_and_age() {
        let kept = KeptBodies::with_limits(10, limits(2, 100));
        let uri = |n: u32| format!("tenet://jobs/job_{n}/execution");
        for n in 1..=3 {
            kept.fit(executed(&format!("job_{n}"), big(40)), "alice");
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        // Two bodies at most: the least recently used went first.
        assert!(kept.read(&uri(1), "alice").is_err());
        assert!(kept.read(&uri(2), "alice").is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        // 40 + 40 + 60 bytes is past 100: job_3, used least recently, goes.
        kept.fit(executed("job_4", big(60)), "alice");
        assert!(kept.read(&uri(3), "alice").is_err());
        assert!(kept.read(&uri(2), "alice").is_ok());
        assert!(kept.read(&uri(4), "alice").is_ok());
        // Larger than all that is kept: cut, not kept, nothing else evicted.
        let huge = kept.fit(executed("job_5", big(101)), "alice");
        assert_eq!(huge.full_body_uri(), None);
        assert!(kept.read(&uri(2), "alice").is_ok());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(kept.read(&uri(2), "alice").is_err(), "expired");
        assert_eq!(kept.lock().bytes, 0);
    }
}
