//! The emulator's server: what it starts with, its keys and shared state, its routes,
//! and the authentication and refusals every handler shares.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::{DefaultBodyLimit, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::{
    audit::{AuditError, AuditLog, Event},
    downstream, execute, page,
    policy::{Policy, PolicyError, Role},
    reviews,
    store::{Reader, Store, StoreError},
};
use crate::{catalog::Catalog, error::Rejection, tenet::ApiKey};

/// The largest request body the emulator reads.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// What the emulator needs to start.
pub struct EmulatorConfig {
    /// Where to listen (port 0 picks a free one).
    pub bind: SocketAddr,
    /// The catalog resolving tool calls.
    pub catalog: Arc<Catalog>,
    /// The policy.
    pub policy: Policy,
    /// Where state lives; in memory when `None`.
    pub state_dir: Option<PathBuf>,
    /// The audit log; default `<state_dir>/audit.jsonl`, none without a state folder.
    pub audit_log: Option<PathBuf>,
}

impl EmulatorConfig {
    /// The in-process emulator of `serve --emulator`: loopback, free port, built-in policy, in memory.
    pub fn embedded(catalog: Arc<Catalog>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            catalog,
            policy: Policy::builtin(),
            state_dir: None,
            audit_log: None,
        }
    }
}

/// A running emulator.
pub struct Emulator {
    addr: SocketAddr,
    api_key: ApiKey,
    approver_key: Option<ApiKey>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl Emulator {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The key to call with: the generated tenant key, or the policy's first tenant
    /// key, else its first agent key.
    pub fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// The key that approves and denies reviews: the generated approver key, or the
    /// policy's first approver key (none when the policy lists none).
    pub fn approver_key(&self) -> Option<&ApiKey> {
        self.approver_key.as_ref()
    }

    /// Stops accepting, lets requests in flight finish, and returns.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.server.await;
    }
}

/// An accepted key, the id jobs and reviews record it by, its agent and its role.
pub(super) struct Key {
    key: ApiKey,
    /// The id jobs and reviews record it by: the first 8 bytes of its SHA-256, in hex.
    pub(super) id: String,
    /// The agent an agent key calls as.
    pub(super) agent: String,
    /// What it may do.
    pub(super) role: Role,
}

impl Key {
    fn new(key: ApiKey, agent: String, role: Role) -> Self {
        let id = hex::encode(&Sha256::digest(key.expose().as_bytes())[..8]);
        Self {
            key,
            id,
            agent,
            role,
        }
    }

    /// The jobs and reviews this key may read.
    pub(super) fn reader(&self) -> Reader<'_> {
        Reader::Key {
            id: &self.id,
            tenant: self.role == Role::Tenant,
        }
    }
}

/// A random key with `prefix`.
fn random_key(prefix: &str) -> ApiKey {
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    ApiKey::new(format!("{prefix}{random}")).expect("non-empty")
}

/// What every handler shares.
pub(super) struct Shared {
    /// The catalog resolving tool calls.
    pub(super) catalog: Arc<Catalog>,
    /// The policy.
    pub(super) policy: Policy,
    /// The accepted keys.
    keys: Vec<Key>,
    /// Jobs, reviews, spend and execute answers.
    pub(super) store: Store,
    /// The audit log, when there is one.
    audit: Option<AuditLog>,
    /// The client of downstream calls.
    pub(super) http: reqwest::Client,
    /// Draws the injected faults.
    pub(super) faults: Mutex<StdRng>,
    /// Serializes decisions, so a replayed request id never decides twice.
    pub(super) deciding: tokio::sync::Mutex<()>,
    /// Whether it listens on loopback (the approval page answers only then).
    pub(super) loopback: bool,
}

/// The handlers' state.
pub(super) type App = Arc<Shared>;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Its catalog is invalid.
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    /// Its policy file is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Its state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Its audit log cannot be continued.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The policy names no key that may call.
    #[error("the policy's [[keys]] lists only approver keys: add an agent or tenant key")]
    NoCallerKey,
    /// The HTTP client for downstream APIs could not be built.
    #[error("cannot build the downstream HTTP client: {0}")]
    Downstream(#[source] reqwest::Error),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Starts an emulator; it serves in the background until [`Emulator::shutdown`].
pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
    let EmulatorConfig {
        bind,
        catalog,
        policy,
        state_dir,
        audit_log,
    } = config;
    let store = Store::open(state_dir.as_deref())?;
    let failed = store.fail_unfinished_jobs("emulator_restarted")?;
    if failed > 0 {
        tracing::warn!(
            failed,
            "jobs left running by a previous emulator were marked failed (emulator_restarted)"
        );
    }
    let audit_path = audit_log.or_else(|| state_dir.as_ref().map(|dir| dir.join("audit.jsonl")));
    let audit = audit_path
        .as_deref()
        .map(|path| AuditLog::open(path, &store, state_dir.as_deref()))
        .transpose()?;
    let mut keys: Vec<Key> = policy
        .keys
        .iter()
        .filter_map(|entry| {
            ApiKey::new(entry.key.clone())
                .map(|key| Key::new(key, entry.agent_id.clone(), entry.role))
        })
        .collect();
    if keys.is_empty() {
        keys.push(Key::new(
            random_key("tnt_emu_"),
            "default".into(),
            Role::Tenant,
        ));
        keys.push(Key::new(
            random_key("tnt_emu_approver_"),
            "default".into(),
            Role::Approver,
        ));
    }
    let first = |role: Role| keys.iter().find(|k| k.role == role).map(|k| k.key.clone());
    let api_key = first(Role::Tenant)
        .or_else(|| first(Role::Agent))
        .ok_or(EmulatorError::NoCallerKey)?;
    let approver_key = first(Role::Approver);
    if approver_key.is_none() {
        tracing::warn!(
            "the policy lists no approver key: escalated calls can be decided only on the approval page"
        );
    }
    let seed = policy.faults.seed.unwrap_or_else(|| rand::rng().random());
    let http = downstream::client().map_err(EmulatorError::Downstream)?;
    let listen = |source| EmulatorError::Listen { addr: bind, source };
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;
    let app: App = Arc::new(Shared {
        catalog,
        policy,
        keys,
        store,
        audit,
        http,
        faults: Mutex::new(StdRng::seed_from_u64(seed)),
        deciding: tokio::sync::Mutex::new(()),
        loopback: addr.ip().is_loopback(),
    });
    let page = Router::new()
        .route("/", get(page::index))
        .route("/ui/reviews", get(page::ui_reviews))
        .route("/ui/reviews/{id}/{verdict}", post(page::ui_decide_review))
        .route_layer(middleware::from_fn_with_state(app.clone(), page::guard));
    let router = Router::new()
        .route("/v1/execute", post(execute::execute))
        .route("/v1/jobs/{id}", get(execute::job))
        .route("/v1/reviews", get(reviews::list))
        .route("/v1/reviews/{id}/{verdict}", post(reviews::decide))
        .merge(page)
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .with_state(app);
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stopped.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the emulator stopped serving");
        }
    });
    Ok(Emulator {
        addr,
        api_key,
        approver_key,
        stop,
        server,
    })
}

/// A 403 saying `message`.
pub(super) fn forbidden(message: impl Into<String>) -> Response {
    Rejection::new(StatusCode::FORBIDDEN, "forbidden", message).into_response()
}

/// The key of the request's bearer token, or a 401 answer.
// Refusals are whole responses, built on the cold path only.
#[allow(clippy::result_large_err)]
pub(super) fn authenticate<'a>(app: &'a Shared, headers: &HeaderMap) -> Result<&'a Key, Response> {
    let presented = crate::web::bearer(headers).unwrap_or("");
    app.keys
        .iter()
        .find(|entry| {
            use subtle::ConstantTimeEq;
            let (a, b) = (entry.key.expose().as_bytes(), presented.as_bytes());
            a.len() == b.len() && bool::from(a.ct_eq(b))
        })
        .ok_or_else(|| {
            Rejection::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or unknown API key: send Authorization: Bearer <key>",
            )
            .into_response()
        })
}

/// The answer to a body that could not be read: 413 over [`MAX_REQUEST_BODY`], else 400.
pub(super) fn body_refused(rejection: &BytesRejection) -> Response {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is over {MAX_REQUEST_BODY} bytes (1 MiB): send a smaller one"
            ),
        )
        .into_response()
    } else {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request body could not be read: send it again",
        )
        .into_response()
    }
}

impl Shared {
    /// Appends `event` to the audit log, if there is one; a failure is logged.
    pub(super) fn audit(&self, event: Event) {
        if let Some(log) = &self.audit
            && let Err(error) = log.append(event, &self.store)
        {
            tracing::error!(%error, "cannot append to the audit log");
        }
    }
}

/// The answer to a state database failure: 500 with what failed.
pub(super) fn internal(error: StoreError) -> Response {
    Rejection::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        error.to_string(),
    )
    .into_response()
}
