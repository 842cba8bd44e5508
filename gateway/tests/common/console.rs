//! Helpers shared by the console's integration tests: a gateway with a console
//! on a free port, and a small HTTP client that keeps the session cookie.

use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use gateway::config::Config;
use gateway::daemon::Gateway;

pub const GUARD_PASSWORD: &str = "guard-pass-1";
pub const ADMIN_PASSWORD: &str = "admin-pass-1";

/// argon2 hashes of the test passwords, computed once per test binary.
pub fn hashes() -> &'static (String, String) {
    static H: OnceLock<(String, String)> = OnceLock::new();
    H.get_or_init(|| {
        (
            gateway::console::auth::hash_password(GUARD_PASSWORD).unwrap(),
            gateway::console::auth::hash_password(ADMIN_PASSWORD).unwrap(),
        )
    })
}

/// A gateway config with a console (on a free port), users guard1 and admin,
/// a door `gate` with a simulated panel, and `extra` appended.
pub fn config_text(console_extra: &str, extra: &str) -> String {
    let (guard, admin) = hashes();
    format!(
        r#"
[gateway]
id = "gw-test"
estate = "estate-1"
data_dir = "data"

[console]
listen = "127.0.0.1:0"
{console_extra}

[[console.users]]
name = "guard1"
role = "guard"
password_hash = "{guard}"

[[console.users]]
name = "admin"
role = "admin"
password_hash = "{admin}"

[[doors]]
id = "gate"
name = "Main gate"
zone = "estate"

[[devices]]
id = "gate-panel"
driver = "sim"
door = "gate"
direction = "in"

{extra}
"#
    )
}

pub async fn start(text: &str, dir: &Path) -> Gateway {
    let cfg = Config::parse(text, dir).unwrap_or_else(|e| panic!("test config: {e:?}"));
    Gateway::start(cfg).await.expect("gateway starts")
}

/// An answer, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `error.code` of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A browser-like client: keeps the session cookie and sends the CSRF token.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    pub base: String,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

impl Http {
    pub fn new(addr: std::net::SocketAddr) -> Http {
        Http::from_address(addr, None)
    }

    /// A client whose connections come from `local` (another loopback
    /// address, to be another client in the console's eyes).
    pub fn from_address(addr: std::net::SocketAddr, local: Option<std::net::IpAddr>) -> Http {
        let mut connector = HttpConnector::new();
        connector.set_local_address(local);
        Http {
            // A fresh connection per request: a connection the server closed
            // under an oversized upload must not be reused from a pool.
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build(connector),
            base: format!("http://{addr}"),
            cookie: None,
            csrf: None,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> axum::http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            b = b.header(header::COOKIE, c);
        }
        if let Some(t) = &self.csrf {
            b = b.header("x-csrf-token", t);
        }
        b
    }

    pub async fn send(&self, req: Request<Full<Bytes>>) -> Resp {
        self.try_send(req).await.expect("HTTP request")
    }

    /// Sends; an error when the connection failed before an answer came.
    pub async fn try_send(&self, req: Request<Full<Bytes>>) -> Result<Resp, String> {
        let r = tokio::time::timeout(Duration::from_secs(20), self.client.request(req))
            .await
            .expect("answer within 20 s")
            .map_err(|e| format!("{e:?}"))?;
        let status = r.status();
        let headers = r.headers().clone();
        let body = r
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{e:?}"))?
            .to_bytes();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    /// Sends an oversized body: refused with 413, or (the server answering
    /// before the client finished sending) the connection closed under it.
    pub async fn assert_too_large(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) {
        let req = self
            .request(method, path)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        match self.try_send(req).await {
            Ok(r) => {
                assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
                assert_eq!(r.code(), "too_large");
            }
            Err(e) => assert!(
                e.contains("BrokenPipe") || e.contains("ConnectionReset"),
                "{path}: {e}"
            ),
        }
    }

    /// Journal records from `path` once `pred` holds (writes become visible
    /// when durable, a moment after they are answered).
    pub async fn records_until(
        &self,
        path: &str,
        what: &str,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.get(path).await.json();
            let records = r["records"].as_array().cloned().unwrap_or_default();
            if pred(&records) {
                return records;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not in {path} within 10 s: {r}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(
            self.request(Method::GET, path)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
    }

    pub async fn call(&self, method: Method, path: &str, json: Option<serde_json::Value>) -> Resp {
        let b = self.request(method, path);
        let req = match json {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(serde_json::to_vec(&v).unwrap()))),
            None => b.body(Full::new(Bytes::new())),
        };
        self.send(req.unwrap()).await
    }

    pub async fn raw(&self, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        self.send(
            self.request(method, path)
                .header(header::CONTENT_TYPE, content_type)
                .body(Full::new(Bytes::from(body)))
                .unwrap(),
        )
        .await
    }

    /// Logs in; on success keeps the cookie and CSRF token.
    pub async fn login(&mut self, user: &str, password: &str) -> Resp {
        let r = self
            .call(
                Method::POST,
                "/api/login",
                Some(serde_json::json!({"user": user, "password": password})),
            )
            .await;
        if r.status == StatusCode::OK {
            let set = r
                .headers
                .get(header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .expect("a session cookie");
            self.cookie = set.split(';').next().map(str::to_owned);
            self.csrf = r.json()["csrf"].as_str().map(str::to_owned);
        }
        r
    }

    /// Reads `/api/live` until `done` says enough, or `timeout`. Returns the
    /// events as (event name, id, data).
    pub async fn live(
        &self,
        path: &str,
        last_event_id: Option<u64>,
        timeout: Duration,
        done: impl Fn(&[(String, String, String)]) -> bool,
    ) -> Vec<(String, String, String)> {
        let mut b = self.request(Method::GET, path);
        if let Some(id) = last_event_id {
            b = b.header("last-event-id", id.to_string());
        }
        let r = self
            .client
            .request(b.body(Full::new(Bytes::new())).unwrap())
            .await
            .expect("live request");
        assert_eq!(r.status(), StatusCode::OK, "live feed refused");
        assert_eq!(
            r.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        let mut body = r.into_body();
        let mut buf = String::new();
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(&events) {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(f))) => f,
                _ => break,
            };
            if let Ok(data) = frame.into_data() {
                buf.push_str(&String::from_utf8_lossy(&data));
            }
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let (mut name, mut id, mut data) =
                    (String::from("message"), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if !block.trim_start().starts_with(':') {
                    events.push((name, id, data));
                }
            }
        }
        events
    }
}

/// Waits until `check` holds, polling; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A JPEG test picture (a GStreamer test pattern, 320x240).
pub const SNAPSHOT: &[u8] = include_bytes!("../fixtures/snapshot.jpg");

/// A face recognised at a device, as the face pipeline reports it, with its picture.
pub fn face_seen(device: &str, person: &str) -> drivers::DeviceEvent {
    let mut read = drivers::CredentialRead::new(drivers::Credential {
        kind: drivers::CredentialKind::Face,
        value: person.to_owned(),
    });
    read.similarity = Some(0.82);
    read.format = Some("face".into());
    read.snapshot = Some(Bytes::from_static(SNAPSHOT));
    drivers::DeviceEvent {
        device: drivers::DeviceId::new(device),
        at: chrono::Utc::now(),
        body: drivers::EventBody::Credential(read),
        receipt: Default::default(),
    }
}
