//! The live sessions of both HTTP transports, and the `tools/call` requests in flight.
//!
//! The [`Registry`] enforces `--max-sessions` (shared by both transports) and
//! `--max-sessions-per-agent` (per authenticated agent, so one agent cannot lock the
//! others out), remembers which agent opened each session (so another agent's token
//! cannot use it), reaps
//! sessions idle for `--session-idle-timeout` (never while a call is in flight), and
//! counts calls in flight for graceful shutdown.
//!
//! [`Metered`] wraps a session's rmcp transport: it sees every `tools/call` request
//! and its answer, so it keeps the in-flight counts and records the call metrics
//! (calls by tool and status, and their durations) whatever the transport;
//! [`Unattached`] does the same for a `tools/call` served without a session.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rmcp::{
    RoleServer, ServerHandler,
    model::{
        ClientJsonRpcMessage, ClientNotification, ClientRequest, RequestId, ServerJsonRpcMessage,
        ServerResult,
    },
    transport::Transport,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{bridge::Bridge, metrics, report::CallStatus};

/// A session's id, as sent to the client.
pub type SessionId = Arc<str>;

/// Which HTTP transport a session belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Streamable HTTP (`/mcp`).
    Streamable,
    /// The legacy HTTP+SSE transport (`/sse` and `/message`).
    Sse,
}

impl Kind {
    /// The metrics label.
    fn label(self) -> &'static str {
        match self {
            Kind::Streamable => "streamable_http",
            Kind::Sse => "sse",
        }
    }
}

/// Why a new session was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-sessions` sessions are live.
    Full,
    /// The agent already has `--max-sessions-per-agent` sessions.
    AgentFull,
    /// The server is shutting down.
    Draining,
}

/// Whether a request may use a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The session is live and belongs to the caller.
    Granted,
    /// No such session (never existed, closed, or reaped).
    Unknown,
    /// The session belongs to another agent.
    Foreign,
}

/// Every live session of both HTTP transports.
#[derive(Debug)]
pub struct Registry {
    state: Mutex<State>,
    max_sessions: usize,
    max_per_agent: usize,
    idle_timeout: Duration,
    draining: AtomicBool,
    calls: watch::Sender<usize>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<SessionId, Entry>,
    /// Slots held by `initialize` requests (and requests without a session) still
    /// being answered.
    reserved: usize,
    /// Live sessions and reservations of each authenticated agent.
    by_agent: HashMap<String, usize>,
    streamable: usize,
    sse: usize,
}

#[derive(Debug)]
struct Entry {
    kind: Kind,
    /// The agent id of the token that opened the session; `None` without authentication.
    owner: Option<String>,
    last_active: Instant,
    in_flight: usize,
    stop: CancellationToken,
}

impl State {
    fn count(&mut self, kind: Kind) -> &mut usize {
        match kind {
            Kind::Streamable => &mut self.streamable,
            Kind::Sse => &mut self.sse,
        }
    }

    /// Counts one more session or reservation for `agent`.
    fn hold(&mut self, agent: Option<&str>) {
        if let Some(agent) = agent {
            *self.by_agent.entry(agent.to_owned()).or_default() += 1;
        }
    }

    /// Counts one session or reservation fewer for `agent`.
    fn release(&mut self, agent: Option<&str>) {
        if let Some(agent) = agent
            && let Some(count) = self.by_agent.get_mut(agent)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.by_agent.remove(agent);
            }
        }
    }
}

impl Registry {
    /// A registry allowing `max_sessions` live sessions, `max_per_agent` of them per
    /// authenticated agent, reaping those idle for `idle_timeout`.
    pub fn new(max_sessions: usize, max_per_agent: usize, idle_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            max_sessions,
            max_per_agent,
            idle_timeout,
            draining: AtomicBool::new(false),
            calls: watch::Sender::new(0),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The session cap.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// The session cap of each agent.
    pub fn max_sessions_per_agent(&self) -> usize {
        self.max_per_agent
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.state().sessions.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn admit(&self, state: &State, agent: Option<&str>) -> Result<(), Refusal> {
        if self.draining.load(Ordering::SeqCst) {
            Err(Refusal::Draining)
        } else if state.sessions.len() + state.reserved >= self.max_sessions {
            Err(Refusal::Full)
        } else if agent.is_some_and(|agent| {
            state.by_agent.get(agent).copied().unwrap_or(0) >= self.max_per_agent
        }) {
            Err(Refusal::AgentFull)
        } else {
            Ok(())
        }
    }

    /// Holds a slot for `agent` (the caller's authenticated agent, if any): for a
    /// session an `initialize` request is about to create (Streamable HTTP creates
    /// the session deep inside rmcp), or for a request without a session while it
    /// runs. Dropping the reservation frees the slot; a session, once registered,
    /// holds its own.
    pub fn reserve(self: &Arc<Self>, agent: Option<&str>) -> Result<Reservation, Refusal> {
        let mut state = self.state();
        self.admit(&state, agent)?;
        state.reserved += 1;
        state.hold(agent);
        Ok(Reservation {
            registry: self.clone(),
            agent: agent.map(str::to_owned),
        })
    }

    /// Opens a session of `kind` for `owner` if the cap allows: its id and the token
    /// that stops it (cancelled when it is closed, reaped, or the server stops).
    pub fn open(
        &self,
        kind: Kind,
        owner: Option<String>,
    ) -> Result<(SessionId, CancellationToken), Refusal> {
        let mut state = self.state();
        self.admit(&state, owner.as_deref())?;
        let id: SessionId = uuid::Uuid::new_v4().simple().to_string().into();
        let stop = self.insert(&mut state, id.clone(), kind, owner);
        Ok((id, stop))
    }

    /// Registers a session rmcp created under a [`Reservation`]; its owner is set
    /// by [`Self::set_owner`] once its `initialize` request is seen.
    pub fn open_reserved(&self, id: SessionId, kind: Kind) -> CancellationToken {
        let mut state = self.state();
        self.insert(&mut state, id, kind, None)
    }

    fn insert(
        &self,
        state: &mut State,
        id: SessionId,
        kind: Kind,
        owner: Option<String>,
    ) -> CancellationToken {
        let stop = CancellationToken::new();
        state.hold(owner.as_deref());
        let entry = Entry {
            kind,
            owner,
            last_active: Instant::now(),
            in_flight: 0,
            stop: stop.clone(),
        };
        if let Some(old) = state.sessions.insert(id, entry) {
            // Session ids are random UUIDs: a collision is not expected, but must not leak.
            old.stop.cancel();
            *state.count(old.kind) -= 1;
            state.release(old.owner.as_deref());
        }
        *state.count(kind) += 1;
        metrics::sessions(kind.label(), *state.count(kind));
        stop
    }

    /// Records the agent a session belongs to.
    pub fn set_owner(&self, id: &str, owner: Option<String>) {
        let mut state = self.state();
        let Some(entry) = state.sessions.get_mut(id) else {
            return;
        };
        let previous = std::mem::replace(&mut entry.owner, owner.clone());
        state.release(previous.as_deref());
        state.hold(owner.as_deref());
    }

    /// Whether `agent` (the caller's authenticated agent id, if any) may use session `id`.
    pub fn access(&self, id: &str, agent: Option<&str>) -> Access {
        match self.state().sessions.get(id) {
            None => Access::Unknown,
            Some(entry) if entry.owner.as_deref() == agent => Access::Granted,
            Some(_) => Access::Foreign,
        }
    }

    /// Notes activity on session `id` (a message in either direction).
    pub fn touch(&self, id: &str) {
        if let Some(entry) = self.state().sessions.get_mut(id) {
            entry.last_active = Instant::now();
        }
    }

    /// Removes session `id` and stops it. Closing an unknown session does nothing.
    pub fn close(&self, id: &str) {
        let mut state = self.state();
        if let Some(entry) = state.sessions.remove(id) {
            entry.stop.cancel();
            state.release(entry.owner.as_deref());
            let count = state.count(entry.kind);
            *count -= 1;
            metrics::sessions(entry.kind.label(), *count);
            tracing::debug!(
                session = id,
                transport = entry.kind.label(),
                "session closed"
            );
        }
    }

    /// Closes every session idle for longer than the idle timeout with no call in flight.
    /// Returns how many were closed.
    pub fn reap_idle(&self) -> usize {
        let idle: Vec<SessionId> = self
            .state()
            .sessions
            .iter()
            .filter(|(_, entry)| {
                entry.in_flight == 0 && entry.last_active.elapsed() >= self.idle_timeout
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &idle {
            tracing::info!(session = %id, idle_timeout_s = self.idle_timeout.as_secs_f64(), "idle session reaped");
            self.close(id);
        }
        idle.len()
    }

    /// Refuses new sessions from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the server is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Closes every session.
    pub fn close_all(&self) {
        let ids: Vec<SessionId> = self.state().sessions.keys().cloned().collect();
        for id in ids {
            self.close(&id);
        }
    }

    /// `tools/call` requests in flight, over all sessions.
    pub fn calls_in_flight(&self) -> usize {
        *self.calls.borrow()
    }

    /// Resolves when no `tools/call` is in flight.
    pub async fn drained(&self) {
        let mut calls = self.calls.subscribe();
        let _ = calls.wait_for(|count| *count == 0).await;
    }

    fn call_started(&self, session: Option<&str>) {
        if let Some(session) = session
            && let Some(entry) = self.state().sessions.get_mut(session)
        {
            entry.in_flight += 1;
            entry.last_active = Instant::now();
        }
        self.calls.send_modify(|count| *count += 1);
        metrics::calls_in_flight(self.calls_in_flight());
    }

    fn call_ended(&self, session: Option<&str>) {
        if let Some(session) = session
            && let Some(entry) = self.state().sessions.get_mut(session)
        {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.last_active = Instant::now();
        }
        self.calls
            .send_modify(|count| *count = count.saturating_sub(1));
        metrics::calls_in_flight(self.calls_in_flight());
    }

    /// Reaps idle sessions every little while until `stop` is cancelled.
    pub fn spawn_reaper(self: &Arc<Self>, stop: CancellationToken) {
        let registry = self.clone();
        let period =
            (self.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => { registry.reap_idle(); }
                    () = stop.cancelled() => break,
                }
            }
        });
    }
}

/// A slot held for a session being created; see [`Registry::reserve`].
#[derive(Debug)]
pub struct Reservation {
    registry: Arc<Registry>,
    agent: Option<String>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut state = self.registry.state();
        state.reserved = state.reserved.saturating_sub(1);
        state.release(self.agent.as_deref());
    }
}

/// A `tools/call` being handled.
#[derive(Debug)]
struct Call {
    tool: String,
    started: Instant,
}

impl Call {
    /// A call of `tool`, starting now; only catalog tools get their own label
    /// (names are client-chosen).
    fn start(bridge: &Bridge, tool: &str) -> Self {
        let tool = if bridge.get_tool(tool).is_some() {
            tool.to_owned()
        } else {
            "unknown".to_owned()
        };
        Self {
            tool,
            started: Instant::now(),
        }
    }
}

/// Ends a call's bookkeeping when dropped: after its answer was handed to the
/// transport, or when the session (or the client) went away without answering.
struct Finished {
    registry: Arc<Registry>,
    /// `None` for a call made without a session.
    session: Option<SessionId>,
    call: Call,
    status: String,
}

impl Drop for Finished {
    fn drop(&mut self) {
        metrics::tool_call(&self.call.tool, &self.status, self.call.started.elapsed());
        self.registry.call_ended(self.session.as_deref());
    }
}

/// A `tools/call` served without a session (Streamable HTTP, MCP 2026-07-28 and
/// later): in flight, metered and held by graceful shutdown like the calls of
/// sessions. Its answer is read off the response with [`Self::observe`]; dropped
/// unanswered (the client went away), it counts as `abandoned`.
pub struct Unattached {
    id: RequestId,
    finished: Option<Finished>,
}

impl Unattached {
    /// Starts the bookkeeping of the call of `tool` with request id `id`.
    pub fn start(registry: &Arc<Registry>, bridge: &Bridge, id: RequestId, tool: &str) -> Self {
        let call = Call::start(bridge, tool);
        registry.call_started(None);
        Self {
            id,
            finished: Some(Finished {
                registry: registry.clone(),
                session: None,
                call,
                status: "abandoned".to_owned(),
            }),
        }
    }

    /// Notes a message sent on the call's response: its answer ends the call.
    pub fn observe(&mut self, message: &ServerJsonRpcMessage) {
        if let Some((id, status)) = answer_status(message)
            && *id == self.id
            && let Some(mut finished) = self.finished.take()
        {
            finished.status = status;
        }
    }
}

/// A session's rmcp transport, watched: calls in flight and call metrics.
pub struct Metered<T> {
    inner: T,
    session: SessionId,
    registry: Arc<Registry>,
    bridge: Bridge,
    calls: Arc<Mutex<HashMap<RequestId, Call>>>,
}

impl<T> Metered<T> {
    /// Watches `inner`, the transport of session `session`.
    pub fn new(inner: T, session: SessionId, registry: Arc<Registry>, bridge: Bridge) -> Self {
        Self {
            inner,
            session,
            registry,
            bridge,
            calls: Arc::default(),
        }
    }

    fn take_call(&self, id: &RequestId) -> Option<Call> {
        self.calls
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(id)
    }

    fn finished(&self, call: Call, status: impl Into<String>) -> Finished {
        Finished {
            registry: self.registry.clone(),
            session: Some(self.session.clone()),
            call,
            status: status.into(),
        }
    }

    /// Notes an incoming message: a `tools/call` starts, a cancellation ends one.
    fn observe_incoming(&self, message: &ClientJsonRpcMessage) {
        match message {
            ClientJsonRpcMessage::Request(request) => {
                if let ClientRequest::CallToolRequest(call) = &request.request {
                    let call = Call::start(&self.bridge, &call.params.name);
                    let previous = self
                        .calls
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .insert(request.id.clone(), call);
                    self.registry.call_started(Some(&self.session));
                    if let Some(previous) = previous {
                        // A client reusing a request id while the first is pending: count the first as abandoned.
                        drop(self.finished(previous, "abandoned"));
                    }
                }
            }
            ClientJsonRpcMessage::Notification(notification) => {
                if let ClientNotification::CancelledNotification(cancelled) =
                    &notification.notification
                    && let Some(id) = &cancelled.params.request_id
                    && let Some(call) = self.take_call(id)
                {
                    // rmcp sends no answer to a cancelled request.
                    drop(self.finished(call, "cancelled"));
                }
            }
            _ => {}
        }
    }
}

/// The status label of an answer to a `tools/call`.
fn answer_status(message: &ServerJsonRpcMessage) -> Option<(&RequestId, String)> {
    match message {
        ServerJsonRpcMessage::Response(response) => {
            let status = match &response.result {
                ServerResult::CallToolResult(result) => {
                    let reported = result
                        .structured_content
                        .as_ref()
                        .and_then(|content| content.get("status"))
                        .and_then(|status| status.as_str());
                    match reported.and_then(CallStatus::from_label) {
                        Some(status) => status.as_str().to_owned(),
                        None if result.is_error == Some(true) => "error".to_owned(),
                        None => "ok".to_owned(),
                    }
                }
                ServerResult::CreateTaskResult(_) => "task".to_owned(),
                _ => "ok".to_owned(),
            };
            Some((&response.id, status))
        }
        ServerJsonRpcMessage::Error(error) => {
            error.id.as_ref().map(|id| (id, "rpc_error".to_owned()))
        }
        _ => None,
    }
}

impl<T: Transport<RoleServer>> Transport<RoleServer> for Metered<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.registry.touch(&self.session);
        let finished = answer_status(&item)
            .and_then(|(id, status)| self.take_call(id).map(|call| (call, status)))
            .map(|(call, status)| self.finished(call, status));
        let send = self.inner.send(item);
        async move {
            let sent = send.await;
            // The call counts as in flight until its answer is queued for the client.
            drop(finished);
            sent
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        let message = self.inner.receive().await?;
        self.registry.touch(&self.session);
        self.observe_incoming(&message);
        Some(message)
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

impl<T> Drop for Metered<T> {
    fn drop(&mut self) {
        let abandoned: Vec<Call> = self
            .calls
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .drain()
            .map(|(_, call)| call)
            .collect();
        for call in abandoned {
            drop(self.finished(call, "abandoned"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_counts_live_sessions_and_reservations() {
        let registry = Registry::new(2, 10, Duration::from_secs(60));
        let (a, _) = registry.open(Kind::Sse, None).unwrap();
        let reservation = registry.reserve(None).unwrap();
        assert_eq!(registry.open(Kind::Sse, None).unwrap_err(), Refusal::Full);
        drop(reservation);
        let (_b, _) = registry.open(Kind::Sse, Some("x".into())).unwrap();
        assert_eq!(registry.reserve(None).unwrap_err(), Refusal::Full);
        registry.close(&a);
        assert!(registry.reserve(None).is_ok());
        registry.start_draining();
        assert_eq!(registry.reserve(None).unwrap_err(), Refusal::Draining);
    }

    #[test]
    fn each_agent_has_its_own_quota_within_the_cap() {
        let registry = Registry::new(10, 2, Duration::from_secs(60));
        let (a1, _) = registry.open(Kind::Sse, Some("a".into())).unwrap();
        let held = registry.reserve(Some("a")).unwrap();
        assert_eq!(
            registry.open(Kind::Sse, Some("a".into())).unwrap_err(),
            Refusal::AgentFull
        );
        assert_eq!(registry.reserve(Some("a")).unwrap_err(), Refusal::AgentFull);
        assert!(registry.open(Kind::Sse, Some("b".into())).is_ok());
        drop(held);
        // A Streamable HTTP session is registered first and owned once initialized.
        let s: SessionId = "s".into();
        let _stop = registry.open_reserved(s.clone(), Kind::Streamable);
        registry.set_owner(&s, Some("a".into()));
        assert_eq!(registry.reserve(Some("a")).unwrap_err(), Refusal::AgentFull);
        registry.close(&a1);
        assert!(registry.reserve(Some("a")).is_ok());
        // Without authentication only the global cap applies.
        for _ in 0..5 {
            registry.open(Kind::Sse, None).unwrap();
        }
    }

    #[test]
    fn sessions_belong_to_their_agent() {
        let registry = Registry::new(10, 10, Duration::from_secs(60));
        let (id, _) = registry.open(Kind::Sse, Some("agent-a".into())).unwrap();
        assert_eq!(registry.access(&id, Some("agent-a")), Access::Granted);
        assert_eq!(registry.access(&id, Some("agent-b")), Access::Foreign);
        assert_eq!(registry.access(&id, None), Access::Foreign);
        assert_eq!(registry.access("nope", Some("agent-a")), Access::Unknown);
        let rmcp_id: SessionId = "s1".into();
        let _stop = registry.open_reserved(rmcp_id.clone(), Kind::Streamable);
        registry.set_owner(&rmcp_id, None);
        assert_eq!(registry.access(&rmcp_id, None), Access::Granted);
    }

    #[test]
    fn idle_sessions_are_reaped_unless_a_call_is_in_flight() {
        let registry = Registry::new(10, 10, Duration::from_millis(20));
        let (busy, busy_stop) = registry.open(Kind::Sse, None).unwrap();
        let (idle, idle_stop) = registry.open(Kind::Streamable, None).unwrap();
        registry.call_started(Some(&busy));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(registry.reap_idle(), 1);
        assert!(idle_stop.is_cancelled() && !busy_stop.is_cancelled());
        assert_eq!(registry.access(&idle, None), Access::Unknown);
        assert_eq!(registry.calls_in_flight(), 1);
        registry.call_ended(Some(&busy));
        assert_eq!(registry.calls_in_flight(), 0);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(registry.reap_idle(), 1);
        assert!(registry.is_empty());
    }
}
