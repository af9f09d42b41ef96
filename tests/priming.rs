//! Streamable HTTP priming events, byte for byte: a session of a revision before
//! 2025-11-25 never gets an event with empty data (clients of those revisions, Gemini CLI's
//! among them, `JSON.parse` every event), one of 2025-11-25 gets one at the start of each
//! POST and GET stream; either way a dropped stream resumes with `Last-Event-ID`. The
//! bridge runs in-process on a loopback port; the client is raw reqwest.

mod common;

use std::{sync::Arc, time::Duration};

use common::{
    harness::{KEY, fixture},
    scripted::{Canned, ScriptedTenet},
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tenet_mcp::{
    bridge::Bridge,
    catalog::Catalog,
    serve::Upstream,
    tenet::ApiKey,
    transport::http::{Options, Server},
};
use tokio::{sync::oneshot, task::JoinHandle};

const OLD: &str = "2025-06-18";
const NEW: &str = "2025-11-25";

/// One server-sent event: its fields as sent (`None`: not sent).
#[derive(Debug, Default)]
struct Event {
    id: Option<String>,
    data: Option<String>,
    retry: Option<String>,
}

impl Event {
    /// The event's data as JSON (a priming event's empty data is not JSON).
    fn json(&self) -> Value {
        let data = self.data.as_deref().unwrap_or_default();
        serde_json::from_str(data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {self:?}"))
    }

    fn is_priming(&self) -> bool {
        self.data.as_deref().is_some_and(str::is_empty)
    }
}

/// Reads the events of an SSE response one at a time (comments, i.e. keep-alives, skipped).
struct Events {
    response: Response,
    buffer: String,
}

impl Events {
    fn new(response: Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "an SSE stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event; `None` when the stream ended.
    async fn next(&mut self) -> Option<Event> {
        loop {
            let text = self.buffer.replace("\r\n", "\n");
            if let Some(end) = text.find("\n\n") {
                self.buffer = text[end + 2..].to_owned();
                let mut event = Event::default();
                for line in text[..end].lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                    match field {
                        "" => {}
                        "id" => event.id = Some(value),
                        "data" => event.data = Some(value),
                        "retry" => event.retry = Some(value),
                        other => panic!("unexpected SSE field {other}: {line}"),
                    }
                }
                if event.id.is_none() && event.data.is_none() && event.retry.is_none() {
                    continue; // a comment (keep-alive)
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(15), self.response.chunk())
                .await
                .expect("an SSE chunk within 15 s")
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                None if self.buffer.trim().is_empty() => return None,
                None => panic!("the stream ended inside an event: {:?}", self.buffer),
            }
        }
    }

    /// Every event until the stream ends.
    async fn all(mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }

    /// Events until the JSON-RPC answer to request `id` (included).
    async fn until_answer(&mut self, id: u64) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let event = self
                .next()
                .await
                .expect("the answer before the stream ends");
            let answered = !event.is_priming() && event.json()["id"] == id;
            events.push(event);
            if answered {
                return events;
            }
        }
    }
}

/// The bridge served over HTTP in-process, with a handle on it to make it notify.
struct Served {
    base: String,
    bridge: Bridge,
    catalog: Arc<Catalog>,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Served {
    async fn start(tenet: &ScriptedTenet) -> Self {
        let catalog = Arc::new(Catalog::load_or_embedded(&[fixture().into()]).unwrap());
        let upstream = Upstream::new(tenet.url(), ApiKey::new(KEY.to_owned()).unwrap());
        let bridge = upstream.bridge(catalog.clone()).unwrap();
        let server = Server::bind(Options {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..Options::default()
        })
        .await
        .unwrap();
        let base = format!("http://{}/mcp", server.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = bridge.clone();
        let task = tokio::spawn(async move {
            server
                .serve_until(serving, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            base,
            bridge,
            catalog,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task,
        }
    }

    fn post(&self, session: Option<(&str, &str)>, body: Value) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.base)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some((id, version)) = session {
            request = request
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", version);
        }
        request
    }

    /// Opens a session of `version`; its id and the events of the `initialize` answer.
    async fn initialize(&self, version: &str) -> (String, Vec<Event>) {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "priming-test", "version": "1"}}});
        let response = self.post(None, body).send().await.unwrap();
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let events = Events::new(response).all().await;
        assert_eq!(
            events
                .last()
                .map(|event| event.json()["result"]["protocolVersion"].clone()),
            Some(json!(version)),
            "{events:?}"
        );
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let answer = self
            .post(Some((&session, version)), initialized)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        (session, events)
    }

    /// POSTs `tools/call` of acme_items_get as request `id`, with a progress token.
    async fn call(&self, session: &str, version: &str, id: u64) -> Events {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "acme_items_get", "arguments": {"id": "1"}, "_meta": {"progressToken": "p"}}});
        Events::new(
            self.post(Some((session, version)), body)
                .send()
                .await
                .unwrap(),
        )
    }

    /// Starts `job` for a call (request `id`) on a new session of `version`, reads the
    /// call stream's first event and drops the stream: the session and that event.
    async fn call_then_drop(
        &self,
        tenet: &ScriptedTenet,
        version: &str,
        id: u64,
        job: &str,
    ) -> (String, Event) {
        tenet.start_job("acme.items.get", job);
        let (session, _) = self.initialize(version).await;
        let mut stream = self.call(&session, version, id).await;
        let seen = stream.next().await.expect("the call stream's first event");
        drop(stream);
        (session, seen)
    }

    /// GET /mcp: the session's standalone stream, or with `last_event_id` a resumed one.
    async fn get(&self, session: &str, version: &str, last_event_id: Option<&str>) -> Events {
        let mut request = self
            .http
            .get(&self.base)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", version);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        Events::new(request.send().await.unwrap())
    }

    /// Makes the server send `notifications/tools/list_changed` to every session.
    async fn notify_all(&self) {
        self.bridge
            .replace_catalog(self.catalog.clone())
            .await
            .unwrap();
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server stops")
            .unwrap();
    }
}

fn assert_no_priming(events: &[Event], what: &str) {
    for event in events {
        assert!(
            event.data.as_deref().is_some_and(|data| !data.is_empty()),
            "{what}: an event without data: {event:?} in {events:?}"
        );
    }
}

#[tokio::test]
async fn a_2025_06_18_session_gets_no_event_without_data() {
    let tenet = ScriptedTenet::start().await;
    let served = Served::start(&tenet).await;
    let (session, initialized) = served.initialize(OLD).await;
    assert_no_priming(&initialized, "the initialize answer");

    let events = served.call(&session, OLD, 1).await.all().await;
    assert_no_priming(&events, "a POST stream");
    let result = events.last().unwrap().json();
    assert_eq!(result["result"]["structuredContent"]["status"], "executed");
    assert!(
        events.iter().all(|event| event.id.is_some()),
        "every message event has an id to resume after: {events:?}"
    );

    let mut standalone = served.get(&session, OLD, None).await;
    served.notify_all().await;
    let first = standalone.next().await.unwrap();
    assert_no_priming(std::slice::from_ref(&first), "the GET stream");
    assert_eq!(first.json()["method"], "notifications/tools/list_changed");
    served.stop().await;
}

#[tokio::test]
async fn a_2025_11_25_session_gets_a_priming_event_first_on_each_stream() {
    let tenet = ScriptedTenet::start().await;
    let served = Served::start(&tenet).await;
    let (session, initialized) = served.initialize(NEW).await;
    // The initialize answer is one event rmcp cannot resume: never primed.
    assert_no_priming(&initialized, "the initialize answer");

    let events = served.call(&session, NEW, 1).await.all().await;
    let (priming, rest) = events.split_first().unwrap();
    assert!(priming.is_priming(), "{events:?}");
    assert_eq!(priming.retry.as_deref(), Some("3000"));
    assert!(
        priming.id.as_deref().is_some_and(|id| id.starts_with("0/")),
        "the priming event's id resumes this stream: {priming:?}"
    );
    assert_no_priming(rest, "after the priming event");
    assert_eq!(
        rest.last().unwrap().json()["result"]["structuredContent"]["status"],
        "executed"
    );

    let mut standalone = served.get(&session, NEW, None).await;
    let priming = standalone.next().await.unwrap();
    assert!(priming.is_priming(), "{priming:?}");
    assert_eq!(
        (priming.id.as_deref(), priming.retry.as_deref()),
        (Some("0"), Some("3000"))
    );
    served.notify_all().await;
    let next = standalone.next().await.unwrap();
    assert_eq!(next.json()["method"], "notifications/tools/list_changed");
    served.stop().await;
}

/// A call's POST stream is dropped while its job runs; a GET with the id of the last
/// event seen resumes it and delivers the result. A 2025-06-18 client resumes after its
/// first message (a progress notification), a 2025-11-25 one after the priming event.
#[tokio::test]
async fn a_dropped_call_stream_resumes_with_last_event_id_on_both_revisions() {
    let tenet = ScriptedTenet::start().await;
    let served = Served::start(&tenet).await;
    for (n, version) in [OLD, NEW].into_iter().enumerate() {
        let job = format!("job_resume_{n}");
        let (session, seen) = served.call_then_drop(&tenet, version, 7, &job).await;
        if version == OLD {
            assert_eq!(seen.json()["method"], "notifications/progress", "{seen:?}");
        } else {
            assert!(seen.is_priming(), "{seen:?}");
        }
        let last_event_id = seen.id.clone().expect("the event has an id");

        let mut resumed = served.get(&session, version, Some(&last_event_id)).await;
        tenet.on_job(
            &job,
            vec![Canned::completed(&job, 200, json!({"resumed": n}))],
        );
        let events = resumed.until_answer(7).await;
        let answer = events.last().unwrap().json();
        assert_eq!(
            answer["result"]["structuredContent"]["execution"]["body"],
            json!({"resumed": n}),
            "{version}: {answer}"
        );
        if version == OLD {
            assert_no_priming(&events, "a resumed 2025-06-18 stream");
        }
    }
    served.stop().await;
}

/// A call whose stream was dropped finishes before the client comes back. rmcp drops a
/// stream at its answer; the bridge kept the rest of it (`transport::http::orphans`),
/// so a GET with the last event id seen still delivers the answer, once, on both
/// revisions, and never to another session.
#[tokio::test]
async fn a_call_answered_while_its_stream_was_gone_is_still_delivered() {
    let tenet = ScriptedTenet::start().await;
    let served = Served::start(&tenet).await;
    for (n, version) in [OLD, NEW].into_iter().enumerate() {
        let job = format!("job_away_{n}");
        let (session, seen) = served.call_then_drop(&tenet, version, 9, &job).await;
        let last_event_id = seen.id.clone().expect("the event has an id");

        // The job ends while nobody listens: the bridge's next poll sees it completed.
        let polled = tenet.polls_of(&job);
        tenet.on_job(&job, vec![Canned::completed(&job, 200, json!({"away": n}))]);
        for _ in 0..100 {
            if tenet.polls_of(&job) > polled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            tenet.polls_of(&job) > polled,
            "the bridge polled the job again"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Another session cannot read it with the same event id.
        let (other, _) = served.initialize(version).await;
        let foreign = served.get(&other, version, Some(&last_event_id)).await;
        assert!(
            foreign.all().await.is_empty(),
            "{version}: another session's answer"
        );

        let resumed = served.get(&session, version, Some(&last_event_id)).await;
        let events = resumed.all().await;
        let answer = events.last().expect("the answer is replayed").json();
        assert_eq!(answer["id"], 9, "{version}: {answer}");
        assert_eq!(
            answer["result"]["structuredContent"]["execution"]["body"],
            json!({"away": n}),
            "{version}: {answer}"
        );
        if version == OLD {
            assert_no_priming(&events, "a replayed 2025-06-18 stream");
        }
        // Delivered once: a second resume finds nothing more.
        let again = served.get(&session, version, Some(&last_event_id)).await;
        assert!(again.all().await.is_empty(), "{version}: replayed twice");
    }
    served.stop().await;
}
