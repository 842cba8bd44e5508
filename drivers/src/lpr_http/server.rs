//! The plate endpoint: one HTTP listener per `listen` address, shared by every
//! camera configured with it. `POST /plates/{device}` takes a push,
//! `POST /plates/{device}/heartbeat` a sign of life. Every refused push gets a
//! 4xx naming what was wrong and is reported as the camera's device error.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::push::{self, Layout, PushError};
use crate::ct::ct_eq;
use crate::driver::EventSink;
use crate::event::EventBody;

/// A camera known to a listener.
#[derive(Clone)]
pub struct Camera {
    pub secret: String,
    pub events: EventSink,
    pub max_body: usize,
    /// When the camera was last heard from.
    pub last_seen: Arc<Mutex<Option<Instant>>>,
}

type Cameras = Arc<RwLock<HashMap<String, Camera>>>;

struct Listener {
    cameras: Cameras,
    stop: CancellationToken,
}

fn registry() -> &'static Mutex<HashMap<String, Listener>> {
    static L: OnceLock<Mutex<HashMap<String, Listener>>> = OnceLock::new();
    L.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Registers a camera on the listener of `listen`, binding it first if needed.
pub async fn attach(listen: &str, id: &str, camera: Camera) -> std::io::Result<()> {
    {
        let reg = lock(registry());
        if let Some(l) = reg.get(listen) {
            write_cameras(&l.cameras).insert(id.to_owned(), camera);
            return Ok(());
        }
    }
    let socket = tokio::net::TcpListener::bind(listen).await?;
    let cameras: Cameras = Arc::new(RwLock::new(HashMap::new()));
    write_cameras(&cameras).insert(id.to_owned(), camera);
    let stop = CancellationToken::new();
    let app = Router::new()
        .route("/plates/{device}", post(handle_push))
        .route("/plates/{device}/heartbeat", post(handle_heartbeat))
        .with_state(cameras.clone());
    let token = stop.clone();
    tokio::spawn(async move {
        let serve = axum::serve(socket, app).with_graceful_shutdown(token.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::error!("plate endpoint: {e}");
        }
    });
    let mut reg = lock(registry());
    // Two cameras may have bound the same address concurrently: the loser's
    // bind failed above, so the entry is ours.
    reg.insert(listen.to_owned(), Listener { cameras, stop });
    Ok(())
}

/// Removes a camera; the listener closes with its last camera.
pub fn detach(listen: &str, id: &str) {
    let mut reg = lock(registry());
    let empty = match reg.get(listen) {
        Some(l) => {
            let mut cams = write_cameras(&l.cameras);
            cams.remove(id);
            cams.is_empty()
        }
        None => false,
    };
    if empty {
        if let Some(l) = reg.remove(listen) {
            l.stop.cancel();
        }
    }
}

fn write_cameras(c: &Cameras) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Camera>> {
    match c.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn camera(c: &Cameras, id: &str) -> Option<Camera> {
    match c.read() {
        Ok(g) => g.get(id).cloned(),
        Err(p) => p.into_inner().get(id).cloned(),
    }
}

fn error_response(e: &PushError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        Json(serde_json::json!({"ok": false, "error": e.message})),
    )
        .into_response()
}

/// Answers a refused push and journals it as the camera's device error.
async fn refuse(cam: &Camera, e: PushError) -> Response {
    tracing::warn!(device = %cam.events.device(), "plate push refused: {}", e.message);
    cam.events
        .emit(EventBody::Fault {
            error: format!("plate push refused ({}): {}", e.status, e.message),
        })
        .await;
    error_response(&e)
}

fn authorised(cam: &Camera, headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-camera-secret").and_then(|v| v.to_str().ok()))
        .or_else(|| query.get("secret").map(String::as_str));
    given.is_some_and(|g| ct_eq(g.trim().as_bytes(), cam.secret.as_bytes()))
}

async fn seen(cam: &Camera) {
    *lock(&cam.last_seen) = Some(Instant::now());
    cam.events.set_online(Some("camera pushing".into())).await;
}

async fn handle_heartbeat(
    State(cams): State<Cameras>,
    Path(device): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(cam) = camera(&cams, &device) else {
        return error_response(&PushError::new(404, format!("no camera `{device}`")));
    };
    if !authorised(&cam, &headers, &query) {
        return refuse(&cam, PushError::new(401, "wrong or missing camera secret")).await;
    }
    seen(&cam).await;
    Json(serde_json::json!({"ok": true})).into_response()
}

async fn handle_push(
    State(cams): State<Cameras>,
    Path(device): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(cam) = camera(&cams, &device) else {
        return error_response(&PushError::new(404, format!("no camera `{device}`")));
    };
    if !authorised(&cam, &headers, &query) {
        return refuse(&cam, PushError::new(401, "wrong or missing camera secret")).await;
    }
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cam.max_body) {
        return refuse(&cam, too_large(cam.max_body)).await;
    }
    let bytes = match axum::body::to_bytes(body, cam.max_body).await {
        Ok(b) => b,
        Err(e) => {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"));
            let err = if over || e.to_string().contains("length limit") {
                too_large(cam.max_body)
            } else {
                PushError::new(400, format!("body incomplete: {e}"))
            };
            return refuse(&cam, err).await;
        }
    };
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let parsed = if ctype.to_ascii_lowercase().starts_with("multipart/") {
        match push::multipart_boundary(&ctype) {
            Ok(b) => push::parse_multipart(&b, bytes).await,
            Err(e) => Err(e),
        }
    } else {
        push::parse_json(&bytes)
    };
    match parsed {
        Ok(p) => {
            seen(&cam).await;
            let plate = p.read.credential.value.clone();
            // "ok" means stored: a camera answered 200 never sends again.
            if let Err(e) = cam
                .events
                .emit_durable(EventBody::Credential(p.read), DURABLE_WAIT)
                .await
            {
                tracing::warn!(device = %cam.events.device(), "plate push not stored: {e}");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", "5")],
                    Json(serde_json::json!({"ok": false, "error": format!("not stored, send again: {e}")})),
                )
                    .into_response();
            }
            match p.layout {
                Layout::Generic => {
                    Json(serde_json::json!({"ok": true, "plate": plate})).into_response()
                }
                // What cameras of that family expect back.
                Layout::AlarmInfoPlate => Json(serde_json::json!({
                    "Response_AlarmInfoPlate": {"info": "ok", "plate": plate}
                }))
                .into_response(),
            }
        }
        Err(e) => refuse(&cam, e).await,
    }
}

/// How long a push waits for its record to be durable before it is answered
/// 503 (the camera sends it again later).
const DURABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn too_large(max: usize) -> PushError {
    PushError::new(413, format!("body larger than {} MiB", max / (1024 * 1024)))
}
