//! The console's HTTP API against a real gateway (engine, journal, simulated
//! devices) served on a loopback port: sessions, roles, CSRF, bad input,
//! uploads, rate limiting, the live feed and its resumption.

mod common;

use axum::http::{header, Method, StatusCode};
use bytes::Bytes;
use common::*;
use drivers::testing::clients::{closed_within, idle_connections, raise_fd_limit};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway::contract::PersonId;
use gateway::control::{FaceEnroller, PreparedFaces};
use gateway::engine::{CommandError, ErrorCode};

const UUID: &str = "0192f1a0-0000-7000-8000-000000000000";

fn sha() -> String {
    "ab".repeat(32)
}

/// Every endpoint that needs a login, with a method and a body that would be
/// valid once logged in.
fn protected() -> Vec<(Method, String)> {
    vec![
        (Method::GET, "/api/me".into()),
        (Method::POST, "/api/logout".into()),
        (Method::GET, "/api/events".into()),
        (Method::GET, "/api/events?kind=access".into()),
        (Method::GET, "/api/alarms".into()),
        (Method::GET, "/api/alarms?state=all".into()),
        (Method::POST, format!("/api/alarms/{UUID}/ack")),
        (Method::GET, "/api/live".into()),
        (Method::GET, "/api/doors".into()),
        (Method::POST, "/api/doors/gate/open".into()),
        (Method::POST, "/api/doors/gate/release-hold".into()),
        (Method::GET, "/api/devices".into()),
        (Method::GET, "/api/persons".into()),
        (Method::GET, "/api/persons/p1".into()),
        (Method::PUT, "/api/persons/p1".into()),
        (Method::DELETE, "/api/persons/p1".into()),
        (Method::POST, "/api/persons/p1/faces".into()),
        (Method::GET, format!("/api/snapshots/{}", sha())),
        (Method::GET, "/api/users".into()),
        (Method::PUT, "/api/users/someone".into()),
        (Method::DELETE, "/api/users/someone".into()),
    ]
}

/// Endpoints only admins may use.
fn admin_only() -> Vec<(Method, String)> {
    vec![
        (Method::GET, "/api/persons".into()),
        (Method::GET, "/api/persons/r-001".into()),
        (Method::PUT, "/api/persons/r-001".into()),
        (Method::DELETE, "/api/persons/r-001".into()),
        (Method::POST, "/api/persons/r-001/faces".into()),
        (Method::GET, "/api/users".into()),
        (Method::PUT, "/api/users/someone".into()),
        (Method::DELETE, "/api/users/someone".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_endpoint_needs_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&config_text("", ""), dir.path()).await;
    let mut http = Http::new(gw.console_addr.unwrap());
    for (method, path) in protected() {
        let r = http.call(method.clone(), &path, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(r.code(), "unauthenticated", "{method} {path}");
    }
    // A made-up or stale cookie is no better.
    http.cookie = Some("gw_session=0123456789abcdef".into());
    for (method, path) in protected() {
        let r = http.call(method.clone(), &path, None).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} (bad cookie)"
        );
    }
    // The page, its assets, health and metrics are open.
    let anon = Http::new(gw.console_addr.unwrap());
    for path in [
        "/",
        "/assets/app.js",
        "/assets/app.css",
        "/healthz",
        "/metrics",
    ] {
        assert_eq!(anon.get(path).await.status, StatusCode::OK, "{path}");
    }
    let page = anon.get("/").await;
    assert!(page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert_eq!(anon.get("/api/nothing").await.status, StatusCode::NOT_FOUND);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_are_refused_admin_endpoints_and_writes_need_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let seed = r#"
[[persons]]
id = "r-001"
name = "Zhang Wei"
group = "resident"
credentials = ["card:10001"]
"#;
    let gw = start(&config_text("", seed), dir.path()).await;
    let mut guard = Http::new(gw.console_addr.unwrap());
    assert_eq!(
        guard.login("guard1", GUARD_PASSWORD).await.status,
        StatusCode::OK
    );
    let me = guard.get("/api/me").await.json();
    assert_eq!(me["user"], "guard1");
    assert_eq!(me["role"], "guard");
    let person = serde_json::json!({"name": "Zhang Wei", "group": "resident"});
    for (method, path) in admin_only() {
        let body = (method == Method::PUT).then(|| {
            if path.starts_with("/api/users") {
                serde_json::json!({"role": "guard", "password": "long enough"})
            } else {
                person.clone()
            }
        });
        let r = guard.call(method.clone(), &path, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(r.code(), "forbidden", "{method} {path}");
    }
    // What guards may do.
    assert_eq!(guard.get("/api/doors").await.status, StatusCode::OK);
    assert_eq!(guard.get("/api/devices").await.status, StatusCode::OK);
    assert_eq!(guard.get("/api/events").await.status, StatusCode::OK);
    assert_eq!(guard.get("/api/alarms").await.status, StatusCode::OK);

    // Writes without the CSRF token, or from another origin, are refused.
    let mut no_token = guard.clone();
    no_token.csrf = None;
    let r = no_token
        .call(Method::POST, "/api/doors/gate/open", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.message().contains("X-CSRF-Token"), "{}", r.message());
    let mut wrong = guard.clone();
    wrong.csrf = Some("0".repeat(64));
    assert_eq!(
        wrong
            .call(Method::POST, "/api/doors/gate/open", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let cross = guard
        .send(
            guard
                .request(Method::POST, "/api/doors/gate/open")
                .header(header::ORIGIN, "http://evil.example")
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let cross_login = guard
        .send(
            guard
                .request(Method::POST, "/api/login")
                .header(header::CONTENT_TYPE, "application/json")
                .header("sec-fetch-site", "cross-site")
                .body(http_body_util::Full::new(Bytes::from_static(
                    br#"{"user":"guard1","password":"guard-pass-1"}"#,
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(cross_login.status, StatusCode::FORBIDDEN);
    // With the token the door opens; a door that does not exist is 404.
    assert_eq!(
        guard
            .call(Method::POST, "/api/doors/gate/open", None)
            .await
            .status,
        StatusCode::OK
    );
    let r = guard
        .call(Method::POST, "/api/doors/nowhere/open", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message().contains("nowhere"));

    // The cookie is HttpOnly and SameSite=Strict.
    let mut admin = Http::new(gw.console_addr.unwrap());
    let r = admin.login("admin", ADMIN_PASSWORD).await;
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert_eq!(
        admin.get("/api/persons/r-001").await.json()["name"],
        "Zhang Wei"
    );

    // Logging out ends the session.
    assert_eq!(
        guard.call(Method::POST, "/api/logout", None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        guard.get("/api/doors").await.status,
        StatusCode::UNAUTHORIZED
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_json_and_bad_parameters_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&config_text("", ""), dir.path()).await;
    let mut admin = Http::new(gw.console_addr.unwrap());
    let r = admin
        .raw(
            Method::POST,
            "/api/login",
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().starts_with("bad JSON"), "{}", r.message());
    let r = admin
        .raw(
            Method::POST,
            "/api/login",
            "application/json",
            br#"{"user":"admin"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("password"), "{}", r.message());
    let r = admin
        .raw(
            Method::POST,
            "/api/login",
            "application/x-www-form-urlencoded",
            b"user=admin&password=x".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        admin.login("admin", ADMIN_PASSWORD).await.status,
        StatusCode::OK
    );

    let put = |body: serde_json::Value| {
        let admin = admin.clone();
        async move { admin.call(Method::PUT, "/api/persons/p1", Some(body)).await }
    };
    let r = put(serde_json::json!({"name": "A", "group": "resident", "shoe_size": 42})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("shoe_size"), "{}", r.message());
    let r = put(serde_json::json!({"name": "A", "group": "alien"})).await;
    assert!(r.message().contains("group"), "{}", r.message());
    let r = put(serde_json::json!({"name": "A", "group": "resident",
        "credentials": [{"type": "card", "value": "x1"}]}))
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("credentials[0]"), "{}", r.message());
    let r = put(serde_json::json!({"id": "p2", "name": "A", "group": "resident"})).await;
    assert!(r.message().starts_with("id:"), "{}", r.message());
    let r = put(serde_json::json!({"name": " ", "group": "resident"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("name"), "{}", r.message());
    let r = put(serde_json::json!(["not", "an", "object"])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = admin
        .raw(Method::PUT, "/api/persons/p1", "text/plain", b"{}".to_vec())
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = admin
        .call(Method::POST, "/api/alarms/not-a-uuid/ack", None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = admin
        .call(
            Method::POST,
            &format!("/api/alarms/{UUID}/ack"),
            Some(serde_json::json!({"note": 5})),
        )
        .await;
    assert!(r.message().contains("note"), "{}", r.message());
    let r = admin
        .call(
            Method::POST,
            &format!("/api/alarms/{UUID}/ack"),
            Some(serde_json::json!({"note": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.message());

    for (path, word) in [
        ("/api/events?kind=party", "kind"),
        ("/api/events?from=yesterday", "from"),
        ("/api/events?limit=0", "limit"),
        ("/api/events?since=1&before=5", "not both"),
        ("/api/events?colour=red", "colour"),
        ("/api/alarms?state=burning", "state"),
        ("/api/alarms?state=all&type=meteor", "type"),
        ("/api/live?since=yesterday", "since"),
        ("/api/snapshots/xyz", "sha256"),
    ] {
        let r = admin.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(r.message().contains(word), "{path}: {}", r.message());
    }
    let r = admin.get(&format!("/api/snapshots/{}", sha())).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    gw.stop().await;
}

/// A face enroller for the upload path: a "photo" with the bytes `NOFACE`
/// in it has no face, as the real one would say.
#[derive(Default)]
struct TestEnroller {
    faces: Mutex<HashMap<PersonId, u32>>,
}

impl FaceEnroller for TestEnroller {
    fn prepare<'a>(
        &'a self,
        _person: &'a PersonId,
        photos: Vec<Bytes>,
    ) -> BoxFuture<'a, Result<PreparedFaces, CommandError>> {
        Box::pin(async move {
            for (i, p) in photos.iter().enumerate() {
                if p.windows(6).any(|w| w == b"NOFACE") {
                    return Err(CommandError::new(
                        ErrorCode::Invalid,
                        format!("photo {}: no face found in the photo", i + 1),
                    ));
                }
            }
            Ok(PreparedFaces {
                templates: photos.iter().map(|_| vec![0.0; 128]).collect(),
                photos,
            })
        })
    }

    fn commit<'a>(
        &'a self,
        person: &'a PersonId,
        faces: PreparedFaces,
    ) -> BoxFuture<'a, Result<u32, CommandError>> {
        Box::pin(async move {
            let mut m = self.faces.lock().unwrap();
            let n = m.entry(person.clone()).or_default();
            *n += faces.templates.len() as u32;
            Ok(*n)
        })
    }

    fn remove<'a>(&'a self, person: &'a PersonId) -> BoxFuture<'a, Result<(), CommandError>> {
        Box::pin(async move {
            self.faces.lock().unwrap().remove(person);
            Ok(())
        })
    }
}

fn jpeg(len: usize, marker: &[u8]) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.extend_from_slice(marker);
    v.resize(len, 0x11);
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_faces_and_oversized_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&config_text("max_upload_kib = 64", ""), dir.path()).await;
    let mut admin = Http::new(gw.console_addr.unwrap());
    assert_eq!(
        admin.login("admin", ADMIN_PASSWORD).await.status,
        StatusCode::OK
    );

    let person = serde_json::json!({
        "name": "Visitor of 12-03", "group": "visitor", "tags": ["flat-1203"],
        "valid_until": "2030-01-01T00:00:00Z",
        "credentials": [{"type": "qr", "value": "VIS-1"}, {"type": "plate", "value": "京A·12345"}]
    });
    let r = admin
        .call(Method::PUT, "/api/persons/v-1", Some(person))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let p = admin.get("/api/persons/v-1").await.json();
    assert_eq!(p["credentials"][1]["value"], "京A12345");
    assert_eq!(p["valid_until"], "2030-01-01T00:00:00Z");
    let list = admin.get("/api/persons?q=12345").await.json();
    assert_eq!(list["persons"].as_array().unwrap().len(), 1);
    assert!(admin.get("/api/persons?q=nobody").await.json()["persons"]
        .as_array()
        .unwrap()
        .is_empty());

    // No face matching on this gateway: the upload says so.
    let r = admin
        .raw(
            Method::POST,
            "/api/persons/v-1/faces",
            "image/jpeg",
            jpeg(2000, b""),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert!(
        r.message().contains("face matching is not enabled"),
        "{}",
        r.message()
    );
    // Oversized bodies are refused before they are read.
    admin
        .assert_too_large(
            Method::POST,
            "/api/persons/v-1/faces",
            "image/jpeg",
            jpeg(65 * 1024, b""),
        )
        .await;
    let big = serde_json::json!({"name": "x".repeat(70 * 1024), "group": "resident"});
    admin
        .assert_too_large(
            Method::PUT,
            "/api/persons/p-big",
            "application/json",
            serde_json::to_vec(&big).unwrap(),
        )
        .await;
    admin
        .assert_too_large(
            Method::POST,
            "/api/login",
            "application/json",
            vec![b' '; 70 * 1024],
        )
        .await;
    // Nothing of them was stored.
    assert_eq!(
        admin.get("/api/persons/p-big").await.status,
        StatusCode::NOT_FOUND
    );
    // Not a JPEG, or not declared as one.
    let r = admin
        .raw(
            Method::POST,
            "/api/persons/v-1/faces",
            "image/jpeg",
            b"GIF89a....".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("not a JPEG"));
    let r = admin
        .raw(
            Method::POST,
            "/api/persons/v-1/faces",
            "image/png",
            jpeg(100, b""),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // With an enroller plugged in, photos are enrolled, and refusals come in words.
    let enroller = Arc::new(TestEnroller::default());
    *gw.controller.faces.write().unwrap() = Some(enroller.clone());
    let r = admin
        .raw(
            Method::POST,
            "/api/persons/v-1/faces",
            "image/jpeg",
            jpeg(3000, b""),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["faces"], 1);
    let r = admin
        .raw(
            Method::POST,
            "/api/persons/v-1/faces",
            "image/jpeg",
            jpeg(3000, b"NOFACE"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.message(), "photo 1: no face found in the photo");
    assert_eq!(admin.get("/api/persons/v-1").await.json()["faces"], 1);
    let r = admin
        .raw(
            Method::POST,
            "/api/persons/nobody/faces",
            "image/jpeg",
            jpeg(3000, b""),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Every change is journaled with the user.
    let saves = |r: &[serde_json::Value]| {
        r.iter()
            .filter(|e| e["action"] == "person_upserted")
            .cloned()
            .collect::<Vec<_>>()
    };
    let records = admin
        .records_until("/api/events?kind=system", "two person saves", |r| {
            saves(r).len() == 2
        })
        .await;
    assert!(
        saves(&records).iter().all(|e| e["by"] == "console/admin"),
        "{records:?}"
    );

    assert_eq!(
        admin
            .call(Method::DELETE, "/api/persons/v-1", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin.get("/api/persons/v-1").await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        enroller.faces.lock().unwrap().is_empty(),
        "faces removed with the person"
    );
    assert_eq!(
        admin
            .call(Method::DELETE, "/api/persons/v-1", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_slow_their_address_down_but_never_lock_the_guard_out() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&config_text("", ""), dir.path()).await;
    let addr = gw.console_addr.unwrap();
    let stranger = Some("127.0.0.2".parse().unwrap());
    let mut attacker = Http::from_address(addr, stranger);
    // The first five failures (login_max_failures) are answered as such.
    for _ in 0..5 {
        let r = attacker.login("guard1", "wrong password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.code(), "bad_credentials");
    }
    // The real guard, at another address, logs in at once.
    let mut guard = Http::new(addr);
    assert_eq!(
        guard.login("guard1", GUARD_PASSWORD).await.status,
        StatusCode::OK
    );
    // The stranger is slowed down: each failure doubles the wait (1 s, 2 s,
    // ...), so a 429 with Retry-After comes within a few tries.
    let mut limited = None;
    for _ in 0..8 {
        let r = attacker.login("guard1", "wrong again").await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = limited.expect("slowed down");
    assert_eq!(r.code(), "rate_limited");
    let retry: u64 = r.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // ... and still cannot keep the guard out.
    assert_eq!(
        Http::new(addr).login("guard1", GUARD_PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(guard.get("/api/me").await.status, StatusCode::OK);
    // An unknown user fails the same way as a wrong password (no user enumeration).
    let r = Http::new(addr).login("nobody", "whatever1").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.message(), "wrong user name or password");
    let metrics = String::from_utf8_lossy(&Http::new(addr).get("/metrics").await.body).into_owned();
    assert!(
        metrics.contains("gatewayd_console_logins_total{outcome=\"ok\"} 2"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("gatewayd_console_logins_total{outcome=\"limited\"} 0"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_ip_literals_localhost_and_listed_host_names_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(
        &config_text(
            "allowed_hosts = [\"console.estate.lan\", \"*.gw.example\"]",
            "",
        ),
        dir.path(),
    )
    .await;
    let addr = gw.console_addr.unwrap();
    let http = Http::new(addr);
    let with_host = |method: Method, path: &str, host: &str| {
        http.request(method, path)
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(Bytes::from_static(
                br#"{"user": "guard1", "password": "guard-pass-1"}"#,
            )))
            .unwrap()
    };
    let port = addr.port();
    // A DNS-rebinding page's name: refused everywhere, public routes included.
    for (method, path) in [
        (Method::GET, "/healthz"),
        (Method::GET, "/metrics"),
        (Method::GET, "/"),
        (Method::GET, "/api/me"),
        (Method::GET, "/no/such/page"),
        (Method::POST, "/api/login"),
    ] {
        for host in [format!("evil.example:{port}"), "gw.example".into()] {
            let r = http.send(with_host(method.clone(), path, &host)).await;
            assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{path} {host}");
            assert_eq!(r.code(), "bad_host");
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "console.estate.lan".into(),
        format!("Console.Estate.LAN:{port}"),
        "b1.gw.example".into(),
    ] {
        let r = http.send(with_host(Method::GET, "/healthz", &host)).await;
        assert_eq!(r.status, StatusCode::OK, "{host}");
    }
    let r = http
        .send(with_host(Method::POST, "/api/login", "console.estate.lan"))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    gw.stop().await;
}

/// A plate camera on the same gateway as the console.
fn plate_camera(dir: &std::path::Path, port: u16) -> String {
    std::fs::write(dir.join("cam.secret"), "cam-secret-123\n").unwrap();
    format!(
        r#"
[[doors]]
id = "car-gate"
zone = "estate"
kind = "barrier"

[[devices]]
id = "car-cam"
driver = "lpr-http"
door = "car-gate"
direction = "in"
listen = "127.0.0.1:{port}"
secret_file = "cam.secret"
"#
    )
}

/// Sends a plate push; the status, or an error when no answer came.
async fn push(port: u16, secret: &str, plate: &str) -> Result<StatusCode, String> {
    let http = Http::new(([127, 0, 0, 1], port).into());
    let req = http
        .request(Method::POST, "/plates/car-cam")
        .header("x-camera-secret", secret)
        .header(header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::from(format!(
            r#"{{"plate": "{plate}"}}"#
        ))))
        .unwrap();
    http.try_send(req).await.map(|r| r.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_slow_clients_starve_neither_console_nor_cameras() {
    use tokio::io::AsyncWriteExt;
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let plates = drivers::testing::peers::free_port().unwrap();
    let gw = start(
        &config_text(
            "max_connections_per_address = 16\nbody_timeout_s = 2",
            &plate_camera(dir.path(), plates),
        ),
        dir.path(),
    )
    .await;
    let addr = gw.console_addr.unwrap();
    let plate_addr: std::net::SocketAddr = ([127, 0, 0, 1], plates).into();
    // The camera's listener is up once the camera reports online.
    let mut guard = Http::new(addr);
    let mut ok = false;
    for _ in 0..200 {
        if push(plates, "cam-secret-123", "京A00001").await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the plate endpoint listens");
    // 1,000 idle connections to each listener from one stranger.
    let mut idle = idle_connections("127.0.0.2", addr, 1000).await;
    idle.extend(idle_connections("127.0.0.2", plate_addr, 1000).await);
    assert_eq!(guard.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(
        guard.login("guard1", GUARD_PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        push(plates, "cam-secret-123", "京A12345").await,
        Ok(StatusCode::OK)
    );
    guard
        .records_until(
            "/api/events?plate=%E4%BA%ACA12345",
            "the pushed plate",
            |r| !r.is_empty(),
        )
        .await;
    let mut kept = 0;
    for s in idle.iter_mut() {
        if !closed_within(s, Duration::from_millis(1)).await {
            kept += 1;
        }
    }
    assert!(
        kept <= 16 + 8,
        "{kept} idle connections kept from one address"
    );
    drop(idle);

    // A head dripped a byte at a time is cut at header_timeout_s (10 s).
    let mut drip = tokio::net::TcpStream::connect(addr).await.unwrap();
    let dripper = tokio::spawn(async move {
        let _ = drip.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").await;
        loop {
            if drip.write_all(b"a").await.is_err()
                || closed_within(&mut drip, Duration::from_millis(500)).await
            {
                return;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), dripper)
        .await
        .expect("a dripped head is cut")
        .unwrap();
    // A login body dripped a byte at a time is cut at body_timeout_s.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        format!("POST /api/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{")
            .as_bytes(),
    )
    .await
    .unwrap();
    let body_dripper = tokio::spawn(async move {
        loop {
            if slow.write_all(b" ").await.is_err()
                || closed_within(&mut slow, Duration::from_millis(300)).await
            {
                return;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), body_dripper)
        .await
        .expect("a dripped body is cut")
        .unwrap();
    let metrics = String::from_utf8_lossy(&guard.get("/metrics").await.body).into_owned();
    assert!(
        metrics.contains("gatewayd_http_connections_timed_out_total{listener=\"console\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("gatewayd_http_connections_refused_total{listener=\"console\"} 0"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_plate_pushes_are_counted_and_journaled_as_one_summary() {
    let dir = tempfile::tempdir().unwrap();
    let plates = drivers::testing::peers::free_port().unwrap();
    let text = config_text("", &plate_camera(dir.path(), plates))
        .replace("car-cam", "flood-cam")
        .replace("secret_file =", "refusal_summary_s = 15\nsecret_file =");
    let gw = start(&text, dir.path()).await;
    let addr = gw.console_addr.unwrap();
    let push = |secret: &'static str| async move {
        let http = Http::new(([127, 0, 0, 1], plates).into());
        let req = http
            .request(Method::POST, "/plates/flood-cam")
            .header("x-camera-secret", secret)
            .body(http_body_util::Full::new(Bytes::from_static(
                r#"{"plate": "京A12345"}"#.as_bytes(),
            )))
            .unwrap();
        http.try_send(req).await.map(|r| r.status)
    };
    let mut up = false;
    for _ in 0..200 {
        if push("cam-secret-123").await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the plate endpoint listens");
    for _ in 0..500 {
        assert_eq!(push("a-wrong-secret").await, Ok(StatusCode::UNAUTHORIZED));
    }
    let mut guard = Http::new(addr);
    guard.login("guard1", GUARD_PASSWORD).await;
    let metrics = String::from_utf8_lossy(&guard.get("/metrics").await.body).into_owned();
    assert!(
        metrics.contains(
            "gatewayd_plate_pushes_refused_total{device=\"flood-cam\",reason=\"secret\"} 500"
        ),
        "{metrics}"
    );
    // One summary, refusal_summary_s (15 s here) after the first refusal.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let summaries = loop {
        let mut found = Vec::new();
        for seq in 1..=gw.journal.last_committed() {
            if let Ok(Some(r)) = gw.journal.get(seq) {
                if let gateway::journal::RecordBody::Event(e) = &r.body {
                    if e.action == gateway::journal::EventAction::DeviceError {
                        found.push(e.detail.clone().unwrap_or_default());
                    }
                }
            }
        }
        if !found.is_empty() || tokio::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    gw.stop().await;
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert!(
        summaries[0].contains("500 plate pushes refused") && summaries[0].contains("secret 500"),
        "{summaries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_console_users() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&config_text("", ""), dir.path()).await;
    let addr = gw.console_addr.unwrap();
    let mut admin = Http::new(addr);
    admin.login("admin", ADMIN_PASSWORD).await;
    let r = admin
        .call(
            Method::PUT,
            "/api/users/night-guard",
            Some(serde_json::json!({"role": "guard", "password": "night-shift-1"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = admin
        .call(
            Method::PUT,
            "/api/users/weak",
            Some(serde_json::json!({"role": "guard", "password": "short"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("8 characters"));
    let r = admin
        .call(
            Method::PUT,
            "/api/users/guard1",
            Some(serde_json::json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.message().contains("config file"));
    let r = admin
        .call(
            Method::PUT,
            "/api/users/bad%20name",
            Some(serde_json::json!({"role": "guard", "password": "long enough"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A look-alike of guard1 with a Cyrillic а (U+0430) is no user name.
    let r = admin
        .call(
            Method::PUT,
            "/api/users/gu%D0%B0rd1",
            Some(serde_json::json!({"role": "admin", "password": "long enough"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.message().contains("ASCII letters, digits"),
        "{}",
        r.message()
    );
    let users = admin.get("/api/users").await.json();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["admin", "guard1", "night-guard"]);
    assert!(!String::from_utf8_lossy(&admin.get("/api/users").await.body).contains("argon2"));

    let mut night = Http::new(addr);
    assert_eq!(
        night.login("night-guard", "night-shift-1").await.status,
        StatusCode::OK
    );
    assert_eq!(night.get("/api/doors").await.status, StatusCode::OK);
    assert_eq!(night.get("/api/users").await.status, StatusCode::FORBIDDEN);
    // Promoted: the same session gets the new role at once.
    admin
        .call(
            Method::PUT,
            "/api/users/night-guard",
            Some(serde_json::json!({"role": "admin"})),
        )
        .await;
    assert_eq!(night.get("/api/users").await.status, StatusCode::OK);
    // Removed: the session ends.
    assert_eq!(
        admin
            .call(Method::DELETE, "/api/users/night-guard", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        night.get("/api/doors").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin
            .call(Method::DELETE, "/api/users/admin", None)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let actions = admin
        .records_until("/api/events?kind=system", "the removal", |r| {
            r.iter().any(|e| {
                e["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("removed"))
            })
        })
        .await;
    let details: Vec<String> = actions
        .iter()
        .filter(|e| e["action"] == "console_action" && e["by"] == "console/admin")
        .map(|e| e["detail"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("removed console user `night-guard`")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.starts_with("logged in")),
        "{details:?}"
    );
    gw.stop().await;
}

const SMOKE_DEVICE: &str = r#"
[[devices]]
id = "smoke-1"
driver = "sim"
zone = "estate"
profile = "sensors"
sensors = ["smoke"]
script = [{ at_ms = 300, sensor = "smoke", active = true }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_are_acknowledged_and_doors_opened_in_the_users_name() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&config_text("", SMOKE_DEVICE), dir.path()).await;
    let mut guard = Http::new(gw.console_addr.unwrap());
    guard.login("guard1", GUARD_PASSWORD).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let alarm = loop {
        let a = guard.get("/api/alarms").await.json();
        if let Some(a) = a["alarms"]
            .as_array()
            .and_then(|v| v.iter().find(|a| a["type"] == "smoke"))
        {
            break a.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no smoke alarm within 10 s: {a}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(alarm["severity"], "critical");
    assert_eq!(alarm["state"], "raised");
    let id = alarm["alarm"].as_str().unwrap().to_owned();
    let r = guard
        .call(
            Method::POST,
            &format!("/api/alarms/{id}/ack"),
            Some(serde_json::json!({"note": "checked: burnt toast"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = guard
        .call(
            Method::POST,
            &format!("/api/alarms/{id}/ack"),
            Some(serde_json::json!({"note": "again"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let history = guard
        .records_until("/api/alarms?state=acked", "the acknowledgement", |r| {
            !r.is_empty()
        })
        .await;
    let acked = &history[0];
    assert_eq!(acked["alarm"], id.as_str());
    assert_eq!(acked["ack"]["by"], "console/guard1");
    assert_eq!(acked["ack"]["note"], "checked: burnt toast");

    assert_eq!(
        guard
            .call(Method::POST, "/api/doors/gate/open", None)
            .await
            .status,
        StatusCode::OK
    );
    let events = guard
        .records_until(
            "/api/events?kind=access&door=gate",
            "the door release",
            |r| !r.is_empty(),
        )
        .await;
    let release = &events[0];
    assert_eq!(release["action"], "door_release");
    assert_eq!(release["by"], "console/guard1");
    assert_eq!(release["credential"]["type"], "remote");
    let doors = guard.get("/api/doors").await.json();
    assert_eq!(doors["doors"][0]["id"], "gate");
    assert_eq!(doors["doors"][0]["status"], "closed");

    // A face pass with its picture: the snapshot is served to logged-in users only.
    gw.events
        .send(face_seen("gate-panel", "r-009"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let face = loop {
        let e = guard.get("/api/events?kind=face").await.json();
        if let Some(f) = e["records"].as_array().and_then(|r| r.first()) {
            break f.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no face event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(face["decision"]["reason"], "unknown_credential");
    let sha = face["snapshot"]["sha256"].as_str().unwrap().to_owned();
    assert_eq!(face["snapshot"]["bytes"], SNAPSHOT.len());
    let r = guard.get(&format!("/api/snapshots/{sha}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(&r.body[..], SNAPSHOT);
    let anon = Http::new(gw.console_addr.unwrap());
    assert_eq!(
        anon.get(&format!("/api/snapshots/{sha}")).await.status,
        StatusCode::UNAUTHORIZED
    );

    let health = guard.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["engine"], true);
    let metrics = String::from_utf8_lossy(&guard.get("/metrics").await.body).into_owned();
    for needle in [
        "# TYPE gatewayd_journal_last_seq counter",
        "gatewayd_alarms_open{severity=\"critical\"} 1",
        "gatewayd_device_online{device=\"smoke-1\",driver=\"sim\"} 1",
        "gatewayd_doors{state=\"closed\"} 1",
        "gatewayd_engine_up 1",
        "gatewayd_console_sessions 1",
        "gatewayd_console_writes_total 3",
        "gatewayd_vision_frames_total 0",
        "gatewayd_face_templates 0",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_feed_resumes_from_the_last_seq_also_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text("", SMOKE_DEVICE);
    let gw = start(&text, dir.path()).await;
    let addr = gw.console_addr.unwrap();
    let mut guard = Http::new(addr);
    guard.login("guard1", GUARD_PASSWORD).await;
    // From the start of the journal: the gateway's start, devices online, the alarm.
    let events = guard
        .live("/api/live?since=0", None, Duration::from_secs(10), |ev| {
            ev.iter()
                .any(|(name, _, data)| name == "alarm" && data.contains("\"smoke\""))
        })
        .await;
    assert_eq!(events[0].0, "hello");
    let ids: Vec<u64> = events[1..].iter().map(|e| e.1.parse().unwrap()).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "gap-free, in order"
    );
    let first: serde_json::Value = serde_json::from_str(&events[1].2).unwrap();
    assert_eq!(first["action"], "gateway_started");
    assert_eq!(first["seq"], 1);
    let seen = *ids.last().unwrap();

    // A write while nobody watches, then the gateway restarts.
    guard.call(Method::POST, "/api/doors/gate/open", None).await;
    gw.stop().await;
    let gw = start(&text, dir.path()).await;
    // The console may listen on another port now; the session is still valid.
    guard.base = format!("http://{}", gw.console_addr.unwrap());
    let events = guard
        .live("/api/live", Some(seen), Duration::from_secs(10), |ev| {
            ev.iter().any(|(_, _, d)| d.contains("gateway_started"))
        })
        .await;
    assert_eq!(events[0].0, "hello");
    assert_eq!(events[0].1, seen.to_string());
    let after: Vec<serde_json::Value> = events[1..]
        .iter()
        .map(|e| serde_json::from_str(&e.2).unwrap())
        .collect();
    assert_eq!(
        after[0]["seq"],
        seen + 1,
        "resumes right after the last seen"
    );
    let actions: Vec<&str> = after
        .iter()
        .map(|r| r["action"].as_str().unwrap_or("alarm"))
        .collect();
    let release = actions
        .iter()
        .position(|a| *a == "door_release")
        .expect("the door release");
    let stopped = actions
        .iter()
        .position(|a| *a == "gateway_stopped")
        .expect("the stop");
    let started = actions
        .iter()
        .position(|a| *a == "gateway_started")
        .expect("the restart");
    assert!(release < stopped && stopped < started, "{actions:?}");

    // A page far behind is told to reload instead of replaying everything.
    let events = guard
        .live(
            "/api/live?since=99999999",
            None,
            Duration::from_secs(2),
            |ev| !ev.is_empty(),
        )
        .await;
    assert_eq!(
        events[0].0, "hello",
        "a seq from the future starts at the newest"
    );
    // Logging out ends an open feed.
    let watcher = guard.clone();
    let feed = tokio::spawn(async move {
        watcher
            .live("/api/live", None, Duration::from_secs(60), |_| false)
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    guard.call(Method::POST, "/api/logout", None).await;
    // A quiet feed notices within its 30 s check, a busy one at once: make it busy.
    guard.login("admin", ADMIN_PASSWORD).await;
    let ended = tokio::time::timeout(Duration::from_secs(35), feed).await;
    assert!(ended.is_ok(), "the live feed did not end after logout");
    gw.stop().await;
}

async fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(cmd)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_configured_certificate() {
    for tool in ["/usr/bin/openssl", "/usr/bin/curl"] {
        if !std::path::Path::new(tool).exists() {
            eprintln!("SKIPPED: {tool} is missing (apt-get install openssl curl)");
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            &dir.path().join("key.pem").display().to_string(),
            "-out",
            &dir.path().join("cert.pem").display().to_string(),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gw = start(
        &config_text(
            "tls_cert_file = \"cert.pem\"\ntls_key_file = \"key.pem\"",
            "",
        ),
        dir.path(),
    )
    .await;
    let port = gw.console_addr.unwrap().port();
    let cacert = dir.path().join("cert.pem").display().to_string();
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    // A client speaking plain HTTP to the TLS port gets nowhere, and harms nothing.
    let plain = run(
        "curl",
        &[
            "-sS",
            "-m",
            "5",
            &format!("http://127.0.0.1:{port}/healthz"),
        ],
    )
    .await;
    assert!(!plain.status.success());
    let out = run(
        "curl",
        &["-sS", "-m", "10", "--cacert", &cacert, &url("/healthz")],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let health: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(health["ok"], true);
    let body = format!(r#"{{"user":"guard1","password":"{GUARD_PASSWORD}"}}"#);
    let out = run(
        "curl",
        &[
            "-sS",
            "-m",
            "10",
            "-i",
            "--cacert",
            &cacert,
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
            &url("/api/login"),
        ],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    let cookie = text
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .expect("a session cookie")
        .to_owned();
    assert!(
        cookie.contains("; secure") && cookie.contains("httponly"),
        "{cookie}"
    );
    // Without trusting the certificate, curl refuses (it is not a public one).
    let out = run("curl", &["-sS", "-m", "10", &url("/healthz")]).await;
    assert!(!out.status.success());
    gw.stop().await;
}
