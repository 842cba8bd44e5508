//! The guards' console: a web page served by the gateway, where security staff
//! watch live alarms and passes, see snapshots, acknowledge alarms, open doors
//! and (admins) keep the roster and the console's users.
//!
//! - `config`: the `[console]` section and its checks.
//! - `auth`: passwords, sessions (cookie), login rate limiting, roles, CSRF.
//! - `users`: console users from the config and those added by admins.
//! - `api`: the JSON API: reads from the engine and the journal, writes
//!   through the controller (journaled with the user).
//! - `search`: event and alarm searches over the journal, paginated.
//! - `live`: the journal as Server-Sent Events, resumable by `seq`.
//! - `metrics`: `/metrics` in the Prometheus text format.
//! - `assets`: the page (HTML/CSS/JS built into the binary).
//! - `labels`: zh/en words for every code (`/assets/labels.json`).
//! - `tls`: HTTPS from the configured certificate and key.
//! - `host`: the `Host` check (DNS rebinding).
//! - `error`: API errors as JSON.

pub mod api;
pub mod assets;
pub mod auth;
pub mod config;
pub mod error;
pub mod host;
pub mod labels;
pub mod live;
pub mod metrics;
pub mod search;
pub mod tls;
pub mod users;

use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use chrono::Utc;
use drivers::DeviceId;
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::contract::{Draft, EventAction, EventKind, EventRecord};
use crate::control::Controller;
use crate::engine::EngineHandle;
use crate::journal::Journal;
use crate::uplink::UplinkState;
use auth::{LoginLimiter, Session, Sessions};
pub use config::{ConsoleSection, ConsoleUser, Role};
use error::ApiError;
use metrics::Metrics;
use users::Users;

/// Largest JSON body of the API apart from uploads (login, acknowledgements).
pub const JSON_LIMIT: usize = 64 * 1024;

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console.listen: `{0}` is not an address like 127.0.0.1:8080")]
    Address(String),
    #[error("console.listen: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("console.{key}: {source}", key = .source.key())]
    Tls {
        #[from]
        source: tls::TlsError,
    },
    #[error("console storage: {0}")]
    Storage(#[from] sled::Error),
}

/// What the console needs of the gateway.
pub struct Deps {
    pub section: ConsoleSection,
    pub journal: Journal,
    pub engine: EngineHandle,
    pub controller: Controller,
    pub uplink: Option<UplinkState>,
    pub db: sled::Db,
    /// Figures of the face matcher (zero without cameras).
    pub vision: Arc<crate::vision::Stats>,
    /// How door releases met the journal.
    pub grants: Arc<crate::engine::run::GrantStats>,
}

/// Everything handlers share.
pub struct Shared {
    pub section: ConsoleSection,
    pub journal: Journal,
    pub engine: EngineHandle,
    pub controller: Controller,
    pub uplink: Option<UplinkState>,
    pub vision: Arc<crate::vision::Stats>,
    pub grants: Arc<crate::engine::run::GrantStats>,
    pub users: Users,
    pub sessions: Sessions,
    pub limiter: LoginLimiter,
    pub metrics: Metrics,
    /// Connections refused at a cap or closed for a timeout.
    pub http: Arc<drivers::httpserve::Stats>,
    /// Ends live feeds when the gateway stops.
    pub shutdown: CancellationToken,
    /// Served over TLS: cookies get `Secure`.
    pub secure: bool,
}

/// The handlers' state.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(deps: Deps, shutdown: CancellationToken) -> Result<AppState, ConsoleError> {
        let section = deps.section;
        let secure = section.tls_cert_file.is_some();
        Ok(AppState(Arc::new(Shared {
            users: Users::open(&section, &deps.db)?,
            sessions: Sessions::open(&deps.db, section.session_hours)?,
            limiter: LoginLimiter::new(
                section.login_max_failures,
                Duration::from_secs(section.login_forget_s),
                Duration::from_secs(section.login_max_delay_s),
            ),
            metrics: Metrics::default(),
            http: Arc::default(),
            section,
            journal: deps.journal,
            engine: deps.engine,
            controller: deps.controller,
            uplink: deps.uplink,
            vision: deps.vision,
            grants: deps.grants,
            shutdown,
            secure,
        })))
    }

    pub fn upload_limit(&self) -> usize {
        self.section.max_upload_kib * 1024
    }

    /// Journals something a user did on the console that the engine does not
    /// see (logins, user changes), as a `system` event with `by`.
    pub async fn journal_action(&self, s: &Session, detail: String) {
        let mut e = EventRecord::new(
            EventKind::System,
            EventAction::ConsoleAction,
            DeviceId::new("gateway"),
        );
        e.by = Some(s.actor());
        e.detail = Some(detail);
        if let Err(err) = self.journal.append(vec![Draft::event(Utc::now(), e)]).await {
            tracing::error!("console: action not journaled: {err}");
        }
    }
}

/// Headers every answer carries; API answers are never cached.
async fn common_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such page or API endpoint")
}

/// Every route of the console. Deny by default: every route needs a live
/// session (`auth::require_session`) except the explicit public list here.
pub fn router(st: AppState) -> Router {
    let public = assets::router()
        .route("/assets/labels.json", get(labels::serve))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/login", post(auth::login));
    let protected = Router::new()
        .route("/api/logout", post(auth::logout))
        .route("/api/me", get(auth::me))
        .route("/api/events", get(api::events))
        .route("/api/alarms", get(api::alarms))
        .route("/api/alarms/{id}/ack", post(api::ack))
        .route("/api/live", get(live::live))
        .route("/api/doors", get(api::doors))
        .route("/api/doors/{id}/open", post(api::open_door))
        .route("/api/doors/{id}/release-hold", post(api::release_hold))
        .route("/api/devices", get(api::devices))
        .route("/api/persons", get(api::persons))
        .route(
            "/api/persons/{id}",
            get(api::person)
                .put(api::put_person)
                .delete(api::delete_person),
        )
        .route("/api/persons/{id}/faces", post(api::add_face))
        .route("/api/snapshots/{sha256}", get(api::snapshot))
        .route("/api/users", get(users::list))
        .route("/api/users/{name}", put(users::put).delete(users::delete))
        // Only matched routes: an unknown path stays a 404 for everyone.
        .route_layer(axum::middleware::from_fn_with_state(
            st.clone(),
            auth::require_session,
        ));
    public
        .merge(protected)
        .fallback(not_found)
        // Outside the routes, so that no answer (not even /healthz or a 404)
        // goes to a page on another host name.
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            host::check,
        ))
        .layer(axum::middleware::map_response(common_headers))
        .with_state(st)
}

/// The console's socket, bound (and its TLS loaded) before anything else of
/// the gateway starts, so that a taken port or a bad certificate stops the
/// start early.
pub struct Listener {
    tcp: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// The bound address (the real port when `listen` asked for port 0).
    pub addr: SocketAddr,
}

impl Listener {
    /// Binds `[console] listen`, with TLS when configured.
    pub async fn bind(
        section: &ConsoleSection,
        base_dir: &std::path::Path,
    ) -> Result<Listener, ConsoleError> {
        let addr: SocketAddr = section
            .listen
            .parse()
            .map_err(|_| ConsoleError::Address(section.listen.clone()))?;
        let tls = match section.tls_files(base_dir) {
            Some((cert, key)) => Some(tls::server_config(&cert, &key)?),
            None => None,
        };
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let local = tcp
            .local_addr()
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        if !local.ip().is_loopback() && tls.is_none() {
            tracing::warn!(
                "console on {local} without TLS: passwords and session cookies cross the network in clear (set console.tls_cert_file and tls_key_file)"
            );
        }
        Ok(Listener {
            tcp,
            tls,
            addr: local,
        })
    }

    /// The server: runs until `shutdown`, then lets open requests finish
    /// (a few seconds at most).
    pub fn serve(
        self,
        deps: Deps,
        shutdown: CancellationToken,
    ) -> Result<BoxFuture<'static, ()>, ConsoleError> {
        use drivers::httpserve::{serve, Plain};
        let state = AppState::new(deps, shutdown.clone())?;
        let (limits, stats) = (state.section.limits(), state.http.clone());
        let app = router(state);
        let addr = self.addr;
        Ok(match self.tls {
            Some(config) => {
                tracing::info!("console on https://{addr}/");
                let tls = tls::TlsHandshake(tokio_rustls::TlsAcceptor::from(config));
                Box::pin(serve(self.tcp, tls, app, limits, stats, shutdown))
            }
            None => {
                tracing::info!("console on http://{addr}/");
                Box::pin(serve(self.tcp, Plain, app, limits, stats, shutdown))
            }
        })
    }
}
