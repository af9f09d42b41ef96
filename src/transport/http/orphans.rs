//! Answers that came after their client left. rmcp removes a call's Streamable HTTP
//! stream as it sends the call's answer, so a client whose connection dropped while the
//! call ran, and that resumes (`GET /mcp` with `Last-Event-ID`) only after the call
//! finished, would get an empty stream and never see the answer.
//!
//! [`Orphans::watch`] wraps every call stream [`super::streamable::Sessions`] hands out.
//! When the client drops one before its answer, the rest of it is drained in a task and,
//! once the answer is in it, kept for [`KEPT_FOR`]; [`Orphans::replay`] serves a resume
//! from it when rmcp no longer can. Limits: the last [`EVENTS_PER_STREAM`] events of a
//! stream (the answer always among them), [`MAX_STREAMS`] streams in all (the oldest go
//! first), and a session's streams go when the session closes.

use std::{
    collections::{HashMap, VecDeque},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::{Stream, StreamExt};
use rmcp::{
    model::ServerJsonRpcMessage,
    transport::streamable_http_server::{SessionId, session::ServerSseMessage},
};
use tokio::sync::Notify;

/// How long the rest of a dropped stream stays replayable after its answer came.
pub(super) const KEPT_FOR: Duration = Duration::from_secs(60);
/// The most dropped streams kept at once, all sessions together.
pub(super) const MAX_STREAMS: usize = 256;
/// The most events kept of one dropped stream (its last ones).
pub(super) const EVENTS_PER_STREAM: usize = 16;
/// How long a resume waits for a stream being drained to reach its answer, when rmcp
/// has already sent it.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// A stream of SSE events as [`super::streamable::Sessions`] hands them to rmcp.
pub(super) type Events = Pin<Box<dyn Stream<Item = ServerSseMessage> + Send + Sync>>;

/// The rest of a dropped stream, once its answer came.
struct Kept {
    events: VecDeque<ServerSseMessage>,
    answered_at: Instant,
    /// The order streams were kept in (the oldest goes first past [`MAX_STREAMS`]).
    order: u64,
}

/// The streams clients dropped before their answer, shared by all sessions.
#[derive(Default)]
pub(super) struct Orphans {
    /// By the stream's request number (the part after `/` of its event ids).
    kept: Mutex<HashMap<(SessionId, u64), Kept>>,
    /// Streams being drained, per session.
    draining: Mutex<HashMap<SessionId, usize>>,
    /// Woken whenever a drain ends.
    drained: Notify,
    /// How many streams were kept so far.
    kept_so_far: AtomicU64,
}

impl Orphans {
    /// `stream`, for `session`: if the client drops it before its answer, the rest is
    /// drained and kept.
    pub(super) fn watch(self: &Arc<Self>, session: &SessionId, stream: Events) -> Watched {
        Watched {
            stream: Some(stream),
            answered: false,
            session: session.clone(),
            orphans: self.clone(),
        }
    }

    /// The kept events of the stream `last_event_id` belongs to, after that event; `None`
    /// when none are kept (never dropped, expired, or not a call stream's event id).
    pub(super) async fn replay(
        &self,
        session: &SessionId,
        last_event_id: &str,
    ) -> Option<Vec<ServerSseMessage>> {
        let (index, stream) = parse_event_id(last_event_id)?;
        let key = (session.clone(), stream);
        let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
        loop {
            let drained = self.drained.notified();
            if let Some(kept) = self.take(&key) {
                return Some(
                    kept.events
                        .into_iter()
                        .filter(|event| {
                            event
                                .event_id
                                .as_deref()
                                .and_then(parse_event_id)
                                .is_some_and(|(i, _)| i > index)
                        })
                        .collect(),
                );
            }
            if !self.is_draining(session)
                || tokio::time::timeout_at(deadline, drained).await.is_err()
            {
                return None;
            }
        }
    }

    /// Forgets every stream of `session` (it closed).
    pub(super) fn forget(&self, session: &SessionId) {
        self.lock_kept().retain(|(owner, _), _| owner != session);
    }

    fn take(&self, key: &(SessionId, u64)) -> Option<Kept> {
        self.lock_kept().remove(key)
    }

    fn is_draining(&self, session: &SessionId) -> bool {
        self.lock_draining().get(session).is_some_and(|n| *n > 0)
    }

    /// The kept streams, locked, past [`KEPT_FOR`] ones dropped.
    fn lock_kept(&self) -> std::sync::MutexGuard<'_, HashMap<(SessionId, u64), Kept>> {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        kept.retain(|_, stream| stream.answered_at.elapsed() < KEPT_FOR);
        kept
    }

    fn lock_draining(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, usize>> {
        self.draining
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Reads the rest of `stream` (dropped by its client) until its answer, and keeps it.
    async fn drain(self: Arc<Self>, session: SessionId, mut stream: Events) {
        let mut events = VecDeque::new();
        let mut answered = false;
        while let Some(event) = stream.next().await {
            answered = is_answer(&event);
            if events.len() == EVENTS_PER_STREAM {
                events.pop_front();
            }
            events.push_back(event);
            if answered {
                break;
            }
        }
        let number = events
            .iter()
            .find_map(|event| event.event_id.as_deref().and_then(parse_event_id))
            .map(|(_, stream)| stream);
        if answered && let Some(number) = number {
            let mut kept = self.lock_kept();
            while kept.len() >= MAX_STREAMS {
                let Some(oldest) = kept
                    .iter()
                    .min_by_key(|(_, stream)| stream.order)
                    .map(|(key, _)| key.clone())
                else {
                    break;
                };
                kept.remove(&oldest);
            }
            kept.insert(
                (session.clone(), number),
                Kept {
                    events,
                    answered_at: Instant::now(),
                    order: self.kept_so_far.fetch_add(1, Ordering::Relaxed),
                },
            );
        }
        let mut draining = self.lock_draining();
        if let Some(n) = draining.get_mut(&session) {
            *n -= 1;
            if *n == 0 {
                draining.remove(&session);
            }
        }
        drop(draining);
        self.drained.notify_waiters();
    }
}

/// Whether `event` carries an answer (the last message of a call's stream).
fn is_answer(event: &ServerSseMessage) -> bool {
    matches!(
        event.message.as_deref(),
        Some(ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_))
    )
}

/// rmcp's id of an event of a call's stream: `index/stream`.
fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (index, stream) = id.split_once('/')?;
    Some((index.parse().ok()?, stream.parse().ok()?))
}

/// A call's stream as handed out: see [`Orphans::watch`].
pub(super) struct Watched {
    stream: Option<Events>,
    answered: bool,
    session: SessionId,
    orphans: Arc<Orphans>,
}

impl Stream for Watched {
    type Item = ServerSseMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        let next = stream.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(event)) if is_answer(event) => self.answered = true,
            Poll::Ready(None) => self.answered = true,
            _ => {}
        }
        next
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let (Some(stream), Ok(runtime)) =
            (self.stream.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        *self
            .orphans
            .lock_draining()
            .entry(self.session.clone())
            .or_default() += 1;
        runtime.spawn(self.orphans.clone().drain(self.session.clone(), stream));
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{NumberOrString, ServerResult};

    use super::*;

    /// Event `index` of call stream `stream`; the answer when `answer`.
    fn event(index: u64, stream: u64, answer: bool) -> ServerSseMessage {
        let mut event = if answer {
            ServerSseMessage::from_message(ServerJsonRpcMessage::response(
                ServerResult::empty(()),
                NumberOrString::Number(stream as i64),
            ))
        } else {
            ServerSseMessage::priming("", Duration::from_secs(3))
        };
        event.event_id = Some(format!("{index}/{stream}"));
        event
    }

    /// Drops, unread, a watched stream of `session` that then yields `events`.
    async fn dropped(orphans: &Arc<Orphans>, session: &SessionId, events: Vec<ServerSseMessage>) {
        drop(orphans.watch(session, Box::pin(futures::stream::iter(events))));
        for _ in 0..100 {
            if !orphans.is_draining(session) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the drain did not end");
    }

    #[tokio::test]
    async fn a_dropped_stream_is_replayed_once_after_the_last_event_seen() {
        let orphans = Arc::new(Orphans::default());
        let (a, b): (SessionId, SessionId) = ("a".into(), "b".into());
        dropped(
            &orphans,
            &a,
            vec![event(0, 4, false), event(1, 4, false), event(2, 4, true)],
        )
        .await;
        assert!(
            orphans.replay(&b, "0/4").await.is_none(),
            "another session's stream"
        );
        let replayed = orphans.replay(&a, "0/4").await.unwrap();
        let ids: Vec<_> = replayed
            .iter()
            .map(|e| e.event_id.clone().unwrap())
            .collect();
        assert_eq!(ids, ["1/4", "2/4"]);
        assert!(orphans.replay(&a, "0/4").await.is_none(), "replayed once");
    }

    #[tokio::test]
    async fn streams_without_an_answer_are_not_kept_and_the_oldest_go_past_the_cap() {
        let orphans = Arc::new(Orphans::default());
        let session: SessionId = "s".into();
        dropped(&orphans, &session, vec![event(0, 1, false)]).await;
        assert!(orphans.replay(&session, "0/1").await.is_none());
        for stream in 0..=MAX_STREAMS as u64 {
            dropped(
                &orphans,
                &session,
                vec![event(0, stream, false), event(1, stream, true)],
            )
            .await;
        }
        assert_eq!(orphans.lock_kept().len(), MAX_STREAMS);
        assert!(
            orphans.replay(&session, "0/0").await.is_none(),
            "the oldest went"
        );
        let last = MAX_STREAMS as u64;
        assert!(
            orphans
                .replay(&session, &format!("0/{last}"))
                .await
                .is_some()
        );
        orphans.forget(&session);
        assert!(orphans.lock_kept().is_empty());
    }

    #[test]
    fn event_ids_of_call_streams_parse() {
        assert_eq!(parse_event_id("3/7"), Some((3, 7)));
        assert_eq!(parse_event_id("3"), None);
        assert_eq!(parse_event_id("x/7"), None);
        assert_eq!(parse_event_id("3/"), None);
    }
}
