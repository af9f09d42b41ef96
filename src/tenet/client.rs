//! The HTTP client for Tenet: execute with safe retries, then poll the job.
//!
//! Retries reuse the request's `requestId` and `Idempotency-Key`, so Tenet can never
//! run an irreversible action twice; only failures that are safe and useful to retry
//! (no connection, timeout, 429, 5xx) are retried. Polling starts fast and backs off
//! to about a second. The API key lives in an [`ApiKey`] that never prints itself.

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::Duration,
};

use futures::Stream;
use rand::Rng;
use reqwest::{StatusCode, header};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::telemetry;

use super::{
    decision::{Reply, parse_execute_reply, quote},
    wire::{ExecuteRequest, JobBody, JobStatus},
};

/// Tenet's hosted API, used when `TENET_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.trytenet.com";

/// The product User-Agent Tenet's bot filter requires.
pub const USER_AGENT: &str = concat!("tenet-mcp/", env!("CARGO_PKG_VERSION"));

/// A Tenet API key. Its `Debug` and `Display` never show the key.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; `None` when it is empty or blank.
    pub fn new(key: impl Into<String>) -> Option<Self> {
        let key = key.into();
        let key = key.trim();
        (!key.is_empty()).then(|| Self(key.to_owned()))
    }

    /// The key itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How often to retry an execute and how long to wait between tries.
#[derive(Clone, Debug)]
pub struct RetrySchedule {
    /// Tries in all, the first included.
    pub max_tries: u32,
    /// The wait before the second try; doubled for each later one, with jitter.
    pub base_delay: Duration,
    /// The longest computed wait.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a longer one ends the retries.
    pub max_retry_after: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            max_tries: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// The adaptive polling schedule.
#[derive(Clone, Debug)]
pub struct PollSchedule {
    /// The first wait after the execute answered.
    pub first_delay: Duration,
    /// Each wait is the previous one times this.
    pub growth: f64,
    /// The longest wait between polls.
    pub max_delay: Duration,
}

impl Default for PollSchedule {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(10),
            growth: 1.5,
            max_delay: Duration::from_secs(1),
        }
    }
}

/// Everything the client needs to talk to Tenet.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The API's base URL, without a trailing `/` or userinfo.
    pub api_url: String,
    /// The tenant key.
    pub api_key: ApiKey,
    /// The timeout of each HTTP request.
    pub request_timeout: Duration,
    /// Retries of the execute.
    pub retry: RetrySchedule,
    /// The polling schedule.
    pub poll: PollSchedule,
}

impl ClientConfig {
    /// A config with default timeouts and schedules. Userinfo in `api_url` is dropped
    /// (Tenet authenticates with the key alone), so it can never be sent, logged or echoed;
    /// `serve` refuses such a URL earlier with [`check_api_url`].
    pub fn new(api_url: &str, api_key: ApiKey) -> Self {
        Self {
            api_url: normalized_api_url(api_url),
            api_key,
            request_timeout: Duration::from_secs(30),
            retry: RetrySchedule::default(),
            poll: PollSchedule::default(),
        }
    }
}

/// Checks Tenet's API URL: an `http` or `https` URL with a host and no userinfo
/// (`user:password@`), which would otherwise be sent and could leak into logs.
/// The error never repeats the URL's userinfo.
pub fn check_api_url(api_url: &str) -> Result<(), ApiUrlError> {
    let shown = || without_userinfo(api_url);
    let url = reqwest::Url::parse(api_url).map_err(|error| ApiUrlError::NotAUrl {
        url: shown(),
        reason: error.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiUrlError::NotHttp { url: shown() });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiUrlError::Userinfo { url: shown() });
    }
    Ok(())
}

/// Why [`check_api_url`] refuses an API URL; the URL is shown without its userinfo.
#[derive(Debug, thiserror::Error)]
pub enum ApiUrlError {
    /// It does not parse.
    #[error(
        "TENET_API_URL (--api-url) `{url}` is not a URL ({reason}): use e.g. {DEFAULT_API_URL}"
    )]
    NotAUrl {
        /// The URL, without userinfo.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// It is not `http` or `https`, or has no host.
    #[error(
        "TENET_API_URL (--api-url) `{url}` is not an http(s) URL with a host: use e.g. {DEFAULT_API_URL}"
    )]
    NotHttp {
        /// The URL, without userinfo.
        url: String,
    },
    /// It carries `user:password@`.
    #[error(
        "TENET_API_URL (--api-url) `{url}` carries a user name or password (`user:password@`): remove it; \
         Tenet authenticates with TENET_API_KEY alone"
    )]
    Userinfo {
        /// The URL, without userinfo.
        url: String,
    },
}

/// A URL with its userinfo (`user:password@`) removed, for use and display alike.
/// Works on any text, URL or not: whatever precedes the last `@` of the authority
/// (which ends at `/`, `\`, `?` or `#`, as URL parsers read http URLs) goes.
/// `api_url` as the client uses it: without userinfo or a trailing `/`.
pub fn normalized_api_url(api_url: &str) -> String {
    without_userinfo(api_url).trim_end_matches('/').to_owned()
}

/// `url` with any `user:password@` removed.
pub fn without_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Why Tenet gave no answer to an execute.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TransportError {
    /// No HTTP answer at all after every try.
    #[error(
        "cannot reach Tenet at {url} after {tries} tries: {detail}; check TENET_API_URL and the network"
    )]
    Unreachable {
        /// The base URL.
        url: String,
        /// Tries made.
        tries: u32,
        /// The last failure.
        detail: String,
    },
    /// Tenet asked for a wait longer than the client will make.
    #[error(
        "Tenet is rate limiting this key and asked to retry after {seconds} s; try again later"
    )]
    RetryAfterTooLong {
        /// The requested wait.
        seconds: u64,
    },
    /// The call was cancelled by the client.
    #[error("the call was cancelled")]
    Cancelled,
    /// The HTTP client could not be built, so nothing was sent.
    #[error(transparent)]
    NoClient(NoHttpClient),
}

/// The bridge's HTTP client could not be built (no TLS set-up, say), so nothing can
/// be sent to Tenet.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "the bridge cannot build its HTTP client, so it cannot call Tenet ({cause}): \
     check the system's TLS set-up and root certificates, then restart tenet-mcp"
)]
pub struct NoHttpClient {
    /// What the HTTP library said.
    cause: String,
}

/// An execute's answer and how many tries it took.
#[derive(Clone, Debug)]
pub struct ExecuteAnswer {
    /// The HTTP status of the final answer.
    pub http_status: u16,
    /// The classified answer.
    pub reply: Reply,
    /// Tries made, the first included.
    pub tries: u32,
}

/// Where a polled job ended up.
#[derive(Clone, Debug, PartialEq)]
pub enum JobWait {
    /// Completed or failed.
    Finished(JobBody),
    /// Still pending or running at the deadline.
    TimedOut {
        /// The last status seen.
        last_status: Option<JobStatus>,
    },
    /// Tenet rejected the API key while polling.
    Unauthorized,
    /// Tenet does not know the job (404).
    NotFound,
    /// The job id is not safe to put in a URL (see [`check_job_id`]); nothing was sent.
    InvalidJobId,
    /// The call was cancelled by the client.
    Cancelled,
    /// The HTTP client could not be built (why), so nothing was sent.
    NoClient(NoHttpClient),
}

/// A Tenet API client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TenetClient {
    /// Built at the first request: TLS set-up stays off the server's start-up path.
    http: Arc<OnceLock<Result<reqwest::Client, NoHttpClient>>>,
    config: ClientConfig,
}

impl TenetClient {
    /// A client for `config`; the HTTP client itself is built at the first request.
    pub fn new(config: ClientConfig) -> Self {
        Self {
            http: Arc::default(),
            config,
        }
    }

    /// The HTTP client, built once.
    fn http(&self) -> Result<&reqwest::Client, NoHttpClient> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .user_agent(USER_AGENT)
                    .timeout(self.config.request_timeout)
                    .connect_timeout(self.config.request_timeout.min(Duration::from_secs(10)))
                    .build()
                    .map_err(|error| NoHttpClient {
                        cause: error.to_string(),
                    })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The API's base URL (without userinfo).
    pub fn api_url(&self) -> &str {
        &self.config.api_url
    }

    /// The API key.
    pub(crate) fn api_key(&self) -> &ApiKey {
        &self.config.api_key
    }

    /// `POST /v1/execute`, retried on transient failures with the same request id.
    pub async fn execute(
        &self,
        request: &ExecuteRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecuteAnswer, TransportError> {
        let url = format!("{}/v1/execute", self.config.api_url);
        let retry = &self.config.retry;
        let mut tries = 0;
        loop {
            tries += 1;
            let http = self.http().map_err(TransportError::NoClient)?;
            let span =
                tracing::info_span!(target: telemetry::TARGET, "tenet.execute", try_ = tries);
            let sent = http
                .post(&url)
                .bearer_auth(self.config.api_key.expose())
                .header("Idempotency-Key", &request.request_id)
                .headers(telemetry::tenet_headers(&span))
                .json(request)
                .send();
            let sent_at = Instant::now();
            let outcome = tokio::select! {
                outcome = read_response(sent).instrument(span) => outcome,
                () = cancel.cancelled() => return Err(TransportError::Cancelled),
            };
            crate::metrics::tenet_request("execute", &outcome_label(&outcome), sent_at.elapsed());
            let wait = match outcome {
                Ok((status, retry_after, body)) => {
                    let transient =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !transient || tries >= retry.max_tries {
                        let http_status = status.as_u16();
                        return Ok(ExecuteAnswer {
                            http_status,
                            reply: parse_execute_reply(http_status, &body),
                            tries,
                        });
                    }
                    crate::metrics::tenet_retry("execute", status.as_str());
                    tracing::warn!(
                        status = status.as_u16(),
                        try_ = tries,
                        body = quote(&body).as_deref().unwrap_or(""),
                        "Tenet answered with a transient error; retrying"
                    );
                    match retry_after {
                        Some(after) if after > retry.max_retry_after => {
                            return Err(TransportError::RetryAfterTooLong {
                                seconds: after.as_secs(),
                            });
                        }
                        Some(after) => after,
                        None => backoff(retry, tries),
                    }
                }
                Err(detail) => {
                    if tries >= retry.max_tries {
                        return Err(TransportError::Unreachable {
                            url: self.config.api_url.clone(),
                            tries,
                            detail: detail.to_string(),
                        });
                    }
                    crate::metrics::tenet_retry("execute", "unreachable");
                    tracing::warn!(try_ = tries, error = %detail, "Tenet could not be reached; retrying");
                    backoff(retry, tries)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return Err(TransportError::Cancelled),
            }
        }
    }

    /// Polls `GET /v1/jobs/{id}` until the job finishes or `deadline` passes, as a stream:
    /// the status of every answered poll (the final one included), then one
    /// [`JobPoll::Ended`] saying where polling ended, then nothing.
    ///
    /// Transient failures (no connection, 429, 5xx, unreadable bodies) are logged and
    /// polling goes on until the deadline. Cancelling `cancel` ends it at once.
    pub fn poll_job<'a>(
        &'a self,
        job_id: &'a str,
        deadline: Instant,
        cancel: &'a CancellationToken,
    ) -> impl Stream<Item = JobPoll> + Send + 'a {
        let start = match job_url(&self.config.api_url, job_id) {
            Ok(url) => PollState::Polling(JobPoller {
                client: self,
                job_id,
                url,
                deadline,
                cancel,
                delay: Duration::ZERO,
                last_status: None,
            }),
            Err(problem) => {
                tracing::warn!(%problem, "refused to poll a job id that is not safe in a URL");
                PollState::Ending(JobWait::InvalidJobId)
            }
        };
        futures::stream::unfold(start, |state| async move {
            match state {
                PollState::Polling(mut poller) => match poller.next_job().await {
                    Ok(job) if job.status.is_final() => Some((
                        JobPoll::Status(job.status),
                        PollState::Ending(JobWait::Finished(job)),
                    )),
                    Ok(job) => Some((JobPoll::Status(job.status), PollState::Polling(poller))),
                    Err(ended) => Some((JobPoll::Ended(ended), PollState::Ended)),
                },
                PollState::Ending(ended) => Some((JobPoll::Ended(ended), PollState::Ended)),
                PollState::Ended => None,
            }
        })
    }
}

/// One item of [`TenetClient::poll_job`]'s stream.
#[derive(Clone, Debug, PartialEq)]
pub enum JobPoll {
    /// A poll was answered: the job's status.
    Status(JobStatus),
    /// Polling ended: the stream's last item.
    Ended(JobWait),
}

/// Where [`TenetClient::poll_job`]'s stream is.
enum PollState<'a> {
    /// Still polling.
    Polling(JobPoller<'a>),
    /// Polling ended; that is still to be told.
    Ending(JobWait),
    /// Told: the stream is over.
    Ended,
}

/// Polls one job on an adaptive schedule.
struct JobPoller<'a> {
    client: &'a TenetClient,
    job_id: &'a str,
    url: String,
    deadline: Instant,
    cancel: &'a CancellationToken,
    /// The wait before the next poll; zero before the first.
    delay: Duration,
    last_status: Option<JobStatus>,
}

impl JobPoller<'_> {
    /// Waits for the next poll and sends it until one is answered with the job's status;
    /// or says why polling ended.
    async fn next_job(&mut self) -> Result<JobBody, JobWait> {
        let poll = &self.client.config.poll;
        let job_id = self.job_id;
        loop {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(JobWait::TimedOut {
                    last_status: self.last_status,
                });
            }
            self.delay = if self.delay.is_zero() {
                // Poll once at once (instant jobs are done by the time the execute answered):
                // a zero sleep would still wait for the timer's next 1 ms tick.
                if self.cancel.is_cancelled() {
                    return Err(JobWait::Cancelled);
                }
                poll.first_delay
            } else {
                tokio::select! {
                    () = tokio::time::sleep(self.delay.min(remaining)) => {}
                    () = self.cancel.cancelled() => return Err(JobWait::Cancelled),
                }
                self.delay.mul_f64(poll.growth).min(poll.max_delay)
            };
            let http = self.client.http().map_err(JobWait::NoClient)?;
            let span = tracing::info_span!(
                target: telemetry::TARGET,
                "tenet.poll",
                job_status = tracing::field::Empty
            );
            let sent = http
                .get(&self.url)
                .bearer_auth(self.client.config.api_key.expose())
                .headers(telemetry::tenet_headers(&span))
                .send();
            let sent_at = Instant::now();
            let outcome = tokio::select! {
                outcome = read_response(sent).instrument(span.clone()) => outcome,
                () = self.cancel.cancelled() => return Err(JobWait::Cancelled),
            };
            crate::metrics::tenet_request("job", &outcome_label(&outcome), sent_at.elapsed());
            match outcome {
                Ok((status, _, body)) => match read_poll(status, &body) {
                    Poll::Job(job) => {
                        span.record("job_status", job.status.as_str());
                        self.last_status = Some(job.status);
                        return Ok(job);
                    }
                    Poll::Unauthorized => return Err(JobWait::Unauthorized),
                    Poll::NotFound => return Err(JobWait::NotFound),
                    Poll::Unreadable(problem) => {
                        tracing::warn!(
                            job_id,
                            status = status.as_u16(),
                            %problem,
                            body = quote(&body).as_deref().unwrap_or(""),
                            "job poll failed; polling on"
                        )
                    }
                },
                Err(error) => {
                    tracing::warn!(job_id, %error, "job poll could not reach Tenet; polling on")
                }
            }
        }
    }
}

/// What one answer to a job poll says.
#[derive(Debug, PartialEq)]
pub(crate) enum Poll {
    /// A 2xx answer with a job body: the job's status (Tenet may answer a running job with 202).
    Job(JobBody),
    /// 401: the key was rejected.
    Unauthorized,
    /// 404: Tenet does not know the job.
    NotFound,
    /// Anything else (a transient error, a body that does not parse): why, for the log.
    Unreadable(String),
}

/// Reads one answer to `GET /v1/jobs/{id}`, as the seed SDK does: the status from any 2xx body.
pub(crate) fn read_poll(status: StatusCode, body: &[u8]) -> Poll {
    match status {
        StatusCode::UNAUTHORIZED => Poll::Unauthorized,
        StatusCode::NOT_FOUND => Poll::NotFound,
        status if status.is_success() => match serde_json::from_slice::<JobBody>(body) {
            Ok(job) => Poll::Job(job),
            Err(error) => Poll::Unreadable(format!("the job body does not parse ({error})")),
        },
        _ => Poll::Unreadable("Tenet answered with an error".to_owned()),
    }
}

/// The longest job id the bridge accepts.
pub const MAX_JOB_ID_LEN: usize = 128;

/// Checks that a job id is safe as one URL path segment: 1 to [`MAX_JOB_ID_LEN`]
/// characters from RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`), and not `.` or
/// `..` (which URL normalisation would turn into another path).
pub fn check_job_id(job_id: &str) -> Result<(), JobIdError> {
    if job_id.is_empty() {
        return Err(JobIdError::Empty);
    }
    if job_id == "." || job_id == ".." {
        return Err(JobIdError::Dots(job_id.to_owned()));
    }
    if job_id.len() > MAX_JOB_ID_LEN {
        return Err(JobIdError::TooLong(job_id.len()));
    }
    if !job_id.bytes().all(is_unreserved) {
        return Err(JobIdError::Unsafe);
    }
    Ok(())
}

/// Why [`check_job_id`] refuses a job id.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum JobIdError {
    /// It is empty.
    #[error("the job id is empty: {JOB_ID_RULE}")]
    Empty,
    /// It is `.` or `..`.
    #[error("the job id `{0}` would leave the jobs path: {JOB_ID_RULE}")]
    Dots(String),
    /// It is longer than [`MAX_JOB_ID_LEN`] (its length).
    #[error("the job id is {0} characters long: {JOB_ID_RULE}")]
    TooLong(usize),
    /// It has characters outside the unreserved set.
    #[error("the job id has characters outside the safe set: {JOB_ID_RULE}")]
    Unsafe,
}

/// What a job id must be, as [`JobIdError`] says it.
const JOB_ID_RULE: &str =
    "a job id is 1 to 128 characters from A-Z a-z 0-9 - . _ ~, and not `.` or `..`";

/// RFC 3986 unreserved: `A-Z a-z 0-9 - . _ ~`.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// What a path segment must encode: everything but the unreserved characters (RFC 3986
/// says producers should not encode those).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A job id as one URL path segment.
fn job_path_segment(job_id: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(job_id, PATH_SEGMENT)
}

/// The URL that polls `job_id`, or why the job id cannot be put in one.
fn job_url(api_url: &str, job_id: &str) -> Result<String, JobIdError> {
    check_job_id(job_id)?;
    Ok(format!("{api_url}/v1/jobs/{}", job_path_segment(job_id)))
}

/// Sends a request and reads status, `Retry-After` and body, or says why it could not.
async fn read_response(
    sent: impl Future<Output = reqwest::Result<reqwest::Response>>,
) -> Result<(StatusCode, Option<Duration>, Vec<u8>), Unanswered> {
    let response = sent.await.map_err(describe)?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.bytes().await.map_err(describe)?;
    Ok((status, retry_after, body.to_vec()))
}

/// The metrics label of a request's outcome: its HTTP status, or `unreachable`.
fn outcome_label<T>(outcome: &Result<(StatusCode, T, Vec<u8>), Unanswered>) -> String {
    match outcome {
        Ok((status, _, _)) => status.as_str().to_owned(),
        Err(_) => "unreachable".to_owned(),
    }
}

/// Why a request to Tenet got no answer, in words: what failed and the innermost
/// cause, without the URL or type names.
#[derive(Debug, thiserror::Error)]
#[error("{kind}{}", cause.as_deref().map(|cause| format!(" ({cause})")).unwrap_or_default())]
struct Unanswered {
    /// Timed out, connection failed, cut off or failed.
    kind: &'static str,
    /// The innermost cause, when there is one.
    cause: Option<String>,
}

/// A reqwest error in words, without the URL's query (which we never fill) or type names.
fn describe(error: reqwest::Error) -> Unanswered {
    use std::error::Error as _;
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the response was cut off"
    } else {
        "request failed"
    };
    let mut cause = None;
    let mut source = error.source();
    while let Some(inner) = source {
        cause = Some(inner.to_string()).filter(|text| !text.is_empty());
        source = inner.source();
    }
    Unanswered { kind, cause }
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Exponential backoff with jitter: a random wait in [d/2, d], d = base × 2^(try-1).
fn backoff(retry: &RetrySchedule, tries: u32) -> Duration {
    let full = retry
        .base_delay
        .saturating_mul(1 << (tries - 1).min(16))
        .min(retry.max_delay);
    let half = full / 2;
    half + full
        .saturating_sub(half)
        .mul_f64(rand::rng().random::<f64>())
}

#[cfg(test)]
impl TenetClient {
    /// A client whose HTTP client failed to build with `problem`, for tests.
    pub(crate) fn unbuildable(config: ClientConfig, problem: &str) -> Self {
        let client = Self::new(config);
        let _ = client.http.set(Err(NoHttpClient {
            cause: problem.to_owned(),
        }));
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use proptest::prelude::*;

    /// A client that cannot be built says so, on execute and on poll alike; it is not
    /// an unreachable Tenet and not a job still running.
    #[tokio::test]
    async fn a_client_that_cannot_be_built_is_an_error() {
        let config = ClientConfig::new("http://127.0.0.1:9", ApiKey::new("tnt_k").unwrap());
        let client = TenetClient::unbuildable(config, "no TLS backend");
        let cancel = CancellationToken::new();
        let request: ExecuteRequest = serde_json::from_value(serde_json::json!({
            "requestId": "r1",
            "service": "s",
            "toolCall": {"toolName": "s.t", "arguments": {}},
            "agent": {"agentId": "a"},
            "context": {}
        }))
        .unwrap();
        let error = client.execute(&request, &cancel).await.unwrap_err();
        assert!(
            matches!(&error, TransportError::NoClient(problem) if problem.cause == "no TLS backend"),
            "{error:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let polls: Vec<_> = client.poll_job("job_1", deadline, &cancel).collect().await;
        assert_eq!(
            polls,
            [JobPoll::Ended(JobWait::NoClient(NoHttpClient {
                cause: "no TLS backend".into()
            }))]
        );
    }

    #[test]
    fn api_key_never_prints() {
        let key = ApiKey::new(" tnt_secret ").unwrap();
        assert_eq!(key.expose(), "tnt_secret");
        assert!(!format!("{key:?}").contains("secret"));
        let config = ClientConfig::new("http://x/", key);
        assert!(!format!("{config:?}").contains("tnt_secret"));
        assert_eq!(config.api_url, "http://x");
        assert!(ApiKey::new("  ").is_none());
    }

    #[test]
    fn api_url_userinfo_is_refused_and_never_kept() {
        let url = "http://agent:s3cret@tenet.example:8443/base/";
        assert_eq!(without_userinfo(url), "http://tenet.example:8443/base/");
        assert_eq!(without_userinfo("https://u@h"), "https://h");
        assert_eq!(
            without_userinfo("http://h/p@q"),
            "http://h/p@q",
            "an @ in the path is not userinfo"
        );
        assert_eq!(without_userinfo("not a url"), "not a url");
        assert_eq!(without_userinfo("http://u:p@h\\a@b"), "http://h\\a@b");
        assert_eq!(without_userinfo("http://a@b@h"), "http://h");
        let problem = check_api_url(url).unwrap_err().to_string();
        assert!(
            problem.contains("user name or password")
                && problem.contains("http://tenet.example:8443/base/"),
            "{problem}"
        );
        assert!(
            !problem.contains("s3cret") && !problem.contains("agent"),
            "{problem}"
        );
        let problem = check_api_url("http://agent:s3cret@[::1")
            .unwrap_err()
            .to_string();
        assert!(
            problem.contains("is not a URL") && !problem.contains("s3cret"),
            "{problem}"
        );
        assert!(check_api_url("ftp://tenet.example").is_err());
        assert!(check_api_url("https://api.trytenet.com").is_ok());
        assert!(check_api_url("http://127.0.0.1:8080/").is_ok());

        let config = ClientConfig::new(url, ApiKey::new("tnt_k").unwrap());
        assert_eq!(config.api_url, "http://tenet.example:8443/base");
        assert!(!format!("{config:?}").contains("s3cret"));
        let unreachable = TransportError::Unreachable {
            url: TenetClient::new(config).api_url().to_owned(),
            tries: 1,
            detail: "connection failed".into(),
        };
        assert!(!unreachable.to_string().contains("s3cret"));
    }

    #[test]
    fn job_ids_are_checked_and_sent_unencoded() {
        for good in [
            "job_1",
            "j",
            "a-b.c_d~e",
            "..x",
            "x..",
            &"j".repeat(MAX_JOB_ID_LEN),
        ] {
            assert_eq!(check_job_id(good), Ok(()), "{good}");
            assert_eq!(job_path_segment(good).to_string(), good);
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a%2Fb",
            "a b",
            "a?b",
            "a#b",
            "é",
            "a\\b",
            &"j".repeat(MAX_JOB_ID_LEN + 1),
        ] {
            assert!(check_job_id(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_job_id("..")
                .unwrap_err()
                .to_string()
                .contains("would leave the jobs path")
        );
        assert_eq!(job_path_segment("a/b c").to_string(), "a%2Fb%20c");
    }

    #[test]
    fn job_status_is_read_from_any_2xx_answer() {
        let running = br#"{"status": "running"}"#;
        for status in [
            StatusCode::OK,
            StatusCode::ACCEPTED,
            StatusCode::NON_AUTHORITATIVE_INFORMATION,
        ] {
            let Poll::Job(job) = read_poll(status, running) else {
                panic!("{status}: no job read")
            };
            assert_eq!((job.status, job.job_id.as_str()), (JobStatus::Running, ""));
        }
        assert_eq!(
            read_poll(StatusCode::UNAUTHORIZED, running),
            Poll::Unauthorized
        );
        assert_eq!(read_poll(StatusCode::NOT_FOUND, running), Poll::NotFound);
        for status in [
            StatusCode::FOUND,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::BAD_GATEWAY,
        ] {
            assert!(
                matches!(read_poll(status, running), Poll::Unreadable(_)),
                "{status}"
            );
        }
        assert!(matches!(
            read_poll(StatusCode::OK, b"<html>"),
            Poll::Unreadable(_)
        ));
        assert!(matches!(
            read_poll(StatusCode::OK, br#"{"status": "queued"}"#),
            Poll::Unreadable(_)
        ));
    }

    proptest! {
        /// No job id builds a URL outside `/v1/jobs/{id}`: an accepted id is exactly one
        /// path segment, sent as it is, which URL parsing leaves alone.
        #[test]
        fn job_urls_stay_in_their_template(job_id in prop_oneof![
            "[A-Za-z0-9._~-]{0,6}",
            "[./%a-z?#\\\\ @:;=+]{0,6}",
            ".{0,8}",
        ]) {
            let base = "http://tenet.example:8443/api";
            match job_url(base, &job_id) {
                Ok(url) => {
                    let parsed = reqwest::Url::parse(&url).expect("a job URL parses");
                    prop_assert_eq!(parsed.path(), format!("/api/v1/jobs/{job_id}"));
                    prop_assert_eq!(parsed.host_str(), Some("tenet.example"));
                    prop_assert!(parsed.query().is_none() && parsed.fragment().is_none());
                }
                Err(problem) => prop_assert!(check_job_id(&job_id).is_err() && !problem.to_string().is_empty()),
            }
        }

        /// Any status and body give a definite poll outcome without panicking; a job is read
        /// only from a 2xx answer that names one of the four statuses.
        #[test]
        fn any_poll_answer_is_read_safely(status in 100u16..600, body in crate::tenet::arbitrary::body()) {
            let status = StatusCode::from_u16(status).expect("a status in range");
            match read_poll(status, &body) {
                Poll::Job(job) => {
                    let sent: serde_json::Value = serde_json::from_slice(&body).expect("a job is JSON");
                    prop_assert!(status.is_success());
                    prop_assert_eq!(sent["status"].as_str(), Some(job.status.as_str()));
                }
                Poll::Unauthorized => prop_assert_eq!(status, StatusCode::UNAUTHORIZED),
                Poll::NotFound => prop_assert_eq!(status, StatusCode::NOT_FOUND),
                Poll::Unreadable(problem) => prop_assert!(!problem.is_empty()),
            }
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let soon = std::time::SystemTime::now() + Duration::from_secs(60);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(soon)).unwrap();
        assert!(
            parsed > Duration::from_secs(55) && parsed <= Duration::from_secs(60),
            "{parsed:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let retry = RetrySchedule::default();
        for tries in 1..=6 {
            let full = (retry.base_delay * (1 << (tries - 1))).min(retry.max_delay);
            let wait = backoff(&retry, tries);
            assert!(wait >= full / 2 && wait <= full, "try {tries}: {wait:?}");
        }
    }
}
