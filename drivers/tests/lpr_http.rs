//! The plate endpoint driven by real HTTP clients (reqwest, curl) sending
//! realistic pushes, broken ones included.

mod support;

use drivers::testing::clients::{closed_within, idle_connections, raise_fd_limit};
use drivers::testing::{assert_driver_compliance, Harness, Limits, Peer};
use drivers::{CredentialKind, DriverConfig, EventBody, PlateColour};
use futures::future::BoxFuture;
use std::path::Path;
use std::time::Duration;
use support::free_port;

const SECRET: &str = "gate-cam-7f3a9c";
const WAIT: Duration = Duration::from_secs(10);

fn jpeg() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vehicle.jpg")).unwrap()
}

fn config(dir: &Path, port: u16, extra: &str) -> DriverConfig {
    let secret = dir.join("cam.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    toml::from_str(&format!(
        "driver = \"lpr-http\"\nlisten = \"127.0.0.1:{port}\"\nsecret_file = \"{}\"\n{extra}",
        secret.display()
    ))
    .unwrap()
}

/// A camera that sends a heartbeat every 200 ms while started.
struct HeartbeatCamera {
    url: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Peer for HeartbeatCamera {
    fn start(&mut self) -> BoxFuture<'_, ()> {
        let url = self.url.clone();
        self.task = Some(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let _ = client
                    .post(&url)
                    .bearer_auth(SECRET)
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
        Box::pin(async {})
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        Box::pin(async {})
    }
}

#[tokio::test]
async fn lpr_http_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "heartbeat_timeout_s = 1.0");
    let mut cam = HeartbeatCamera {
        url: format!("http://127.0.0.1:{port}/plates/conformance-lpr-http/heartbeat"),
        task: None,
    };
    assert_driver_compliance(&cfg, &mut cam, dir.path().into(), Limits::default()).await;
}

async fn curl(args: &[&str]) -> (u16, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn credential(b: &EventBody) -> bool {
    matches!(b, EventBody::Credential(_))
}

fn fault_with(h: &Harness, needle: &str) -> bool {
    h.seen
        .iter()
        .any(|e| matches!(&e.body, EventBody::Fault { error } if error.contains(needle)))
}

#[tokio::test]
async fn realistic_and_broken_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut h =
        Harness::start("gate-cam", &config(dir.path(), port, ""), dir.path().into()).unwrap();
    h.wait_for(WAIT, |b| matches!(b, EventBody::Online { .. }))
        .await
        .expect("listening");
    let url = format!("http://127.0.0.1:{port}/plates/gate-cam");
    let client = reqwest::Client::new();

    // Generic JSON.
    let r = client
        .post(&url)
        .bearer_auth(SECRET)
        .header("content-type", "application/json")
        .body(r#"{"plate": "京A·12345", "colour": "blue", "confidence": 0.91, "time": "2026-11-23T08:00:00+08:00"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ev = h.wait_for(WAIT, credential).await.expect("plate event");
    let EventBody::Credential(read) = ev.body else {
        unreachable!()
    };
    assert_eq!(read.credential.kind, CredentialKind::Plate);
    assert_eq!(read.credential.value, "京A12345");
    assert_eq!(read.colour, Some(PlateColour::Blue));
    assert_eq!(read.confidence, Some(0.91));

    // The secret in the URL is refused (proxies log URLs), naming the headers.
    let r = client
        .post(format!("{url}?secret={SECRET}"))
        .body(r#"{"plate": "京A12345"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("not accepted in the URL") && text.contains("X-Camera-Secret"),
        "{text}"
    );

    // Vendor layout with the picture inline (base64).
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg());
    let vendor = format!(
        r#"{{"AlarmInfoPlate": {{"channel": 0, "deviceName": "IVS", "ipaddr": "192.168.1.64", "serialno": "a1b2c3",
          "result": {{"PlateResult": {{"license": "粤BD12345", "colorType": 5, "confidence": 97, "type": 1,
          "imageFile": "{b64}", "imageFileLen": {}, "timeStamp": {{"Timeval": {{"sec": 1763884800, "usec": 0}}}}}}}}}}}}"#,
        jpeg().len()
    );
    let r = client
        .post(&url)
        .header("X-Camera-Secret", SECRET)
        .body(vendor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reply: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(reply["Response_AlarmInfoPlate"]["info"], "ok");
    let ev = h.wait_for(WAIT, credential).await.expect("vendor plate");
    let EventBody::Credential(read) = ev.body else {
        unreachable!()
    };
    assert_eq!(read.credential.value, "粤BD12345");
    assert_eq!(read.colour, Some(PlateColour::Green));
    assert_eq!(read.snapshot.as_deref(), Some(jpeg().as_slice()));

    // Multipart JSON + JPEG, as curl -F sends it.
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"plate": "沪AD12345", "colour": "green", "confidence": 88}"#,
    )
    .unwrap();
    let car = dir.path().join("car.jpg");
    std::fs::write(&car, jpeg()).unwrap();
    let (code, body) = curl(&[
        "-H",
        &format!("X-Camera-Secret: {SECRET}"),
        "-F",
        &format!("event=@{};type=application/json", event.display()),
        "-F",
        &format!("image=@{};type=image/jpeg", car.display()),
        &url,
    ])
    .await;
    assert_eq!(code, 200, "{body}");
    let ev = h.wait_for(WAIT, credential).await.expect("multipart plate");
    let EventBody::Credential(read) = ev.body else {
        unreachable!()
    };
    assert_eq!(read.credential.value, "沪AD12345");
    assert_eq!(read.confidence, Some(0.88));
    assert_eq!(read.snapshot.map(|b| b.len()), Some(jpeg().len()));

    // Broken JSON.
    let r = client
        .post(&url)
        .bearer_auth(SECRET)
        .body(r#"{"plate": "京A12"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("not valid JSON"), "{text}");

    // Truncated multipart (the camera's upload cut short).
    let mut mp = Vec::new();
    mp.extend_from_slice(b"--cam\r\nContent-Disposition: form-data; name=\"event\"\r\nContent-Type: application/json\r\n\r\n{\"plate\": \"\xE4\xBA\xAC\x41\x31\x32\x33\x34\x35\"}\r\n--cam\r\nContent-Disposition: form-data; name=\"image\"\r\nContent-Type: image/jpeg\r\n\r\n");
    mp.extend_from_slice(&jpeg()[..3000]);
    let r = client
        .post(&url)
        .bearer_auth(SECRET)
        .header("content-type", "multipart/form-data; boundary=cam")
        .body(mp)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // A 20 MB body.
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; 20 * 1024 * 1024]).unwrap();
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {SECRET}"),
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &format!("@{}", big.display()),
        &url,
    ])
    .await;
    assert_eq!(code, 413, "{body}");

    // A PNG where a JPEG belongs.
    let png = [
        0x89u8, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D,
    ];
    let form = reqwest::multipart::Form::new()
        .part(
            "event",
            reqwest::multipart::Part::text(r#"{"plate": "苏E10231"}"#)
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "image",
            reqwest::multipart::Part::bytes(png.to_vec())
                .file_name("car.png")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let r = client
        .post(&url)
        .bearer_auth(SECRET)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    // A wrong secret.
    let r = client
        .post(&url)
        .bearer_auth("guess")
        .body(r#"{"plate": "京A12345"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // An upload cut off mid-body (the camera lost power): declared 2000 bytes, sent 100.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let head = format!(
            "POST /plates/gate-cam HTTP/1.1\r\nHost: cam\r\nAuthorization: Bearer {SECRET}\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n"
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(&[b' '; 100]).await.unwrap();
        sock.shutdown().await.unwrap();
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(WAIT, sock.read_to_end(&mut reply)).await;
    }
    // A cut-off upload is a refusal like the others (counted at once; the
    // summary comes at the end of the minute or when the camera stops).
    eventually_refused("gate-cam", "malformed", 3).await;

    // Nothing crashed: a good push still works.
    let r = client
        .post(&url)
        .bearer_auth(SECRET)
        .body(r#"{"plate": "浙A88888"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    h.wait_for(
        WAIT,
        |b| matches!(b, EventBody::Credential(r) if r.credential.value == "浙A88888"),
    )
    .await
    .expect("still serving");
    // The refusals became one device error, summarised by reason, when the
    // camera stopped (within the minute).
    assert!(h.stop(Duration::from_secs(3)).await);
    while let Some(ev) = h.events.recv().await {
        h.seen.push(ev);
    }
    let faults: Vec<_> = h
        .seen
        .iter()
        .filter(|e| matches!(e.body, EventBody::Fault { .. }))
        .collect();
    assert_eq!(faults.len(), 1, "{faults:?}");
    for needle in [
        "7 plate pushes refused",
        "malformed 3",
        "not_jpeg 1",
        "secret 2",
        "too_large 1",
    ] {
        assert!(fault_with(&h, needle), "no `{needle}` in {faults:?}");
    }
}

/// Waits until the camera's refusals of `reason` reach `n` on the metric.
async fn eventually_refused(device: &str, reason: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = refused(device, reason);
        if now >= n {
            assert_eq!(now, n, "{device} {reason}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{device}: {now} refusals `{reason}`, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn refused(device: &str, reason: &str) -> u64 {
    drivers::lpr_http::refused::totals()
        .into_iter()
        .find(|(d, r, _)| d == device && *r == reason)
        .map_or(0, |x| x.2)
}

#[tokio::test]
async fn refused_pushes_are_counted_and_journaled_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut h = Harness::start(
        "flooded-cam",
        &config(dir.path(), port, ""),
        dir.path().into(),
    )
    .unwrap();
    h.wait_for(WAIT, |b| matches!(b, EventBody::Online { .. }))
        .await
        .expect("listening");
    let url = format!("http://127.0.0.1:{port}/plates/flooded-cam");
    let client = reqwest::Client::new();
    for _ in 0..500 {
        let r = client
            .post(&url)
            .bearer_auth("guessing-1234")
            .body(r#"{"plate": "京A12345"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    assert_eq!(refused("flooded-cam", "secret"), 500);
    // Within the minute nothing was journaled for them.
    assert!(
        h.wait_for(Duration::from_millis(300), |b| matches!(
            b,
            EventBody::Fault { .. }
        ))
        .await
        .is_none(),
        "a refusal was reported on its own"
    );
    assert!(h.stop(Duration::from_secs(3)).await);
    while let Some(ev) = h.events.recv().await {
        h.seen.push(ev);
    }
    let faults: Vec<String> = h
        .seen
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Fault { error } => Some(error.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert!(
        faults[0].starts_with("500 plate pushes refused in ") && faults[0].contains("(secret 500)"),
        "{}",
        faults[0]
    );
}

#[tokio::test]
async fn idle_and_slow_clients_do_not_starve_cameras() {
    use tokio::io::AsyncWriteExt;
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut h = Harness::start(
        "busy-cam",
        &config(
            dir.path(),
            port,
            "max_connections = 64
max_connections_per_address = 8
body_timeout_s = 2",
        ),
        dir.path().into(),
    )
    .unwrap();
    h.wait_for(WAIT, |b| matches!(b, EventBody::Online { .. }))
        .await
        .expect("listening");
    // 1,000 idle connections from one stranger: 8 are kept, the rest closed.
    let mut idle = idle_connections("127.0.0.2", ([127, 0, 0, 1], port).into(), 1000).await;
    let url = format!("http://127.0.0.1:{port}/plates/busy-cam");
    let r = reqwest::Client::new()
        .post(&url)
        .bearer_auth(SECRET)
        .timeout(WAIT)
        .body(r#"{"plate": "京A54321"}"#)
        .send()
        .await
        .expect("a real push gets through");
    assert_eq!(r.status(), 200);
    h.wait_for(WAIT, credential).await.expect("plate event");
    let mut open = 0;
    for s in idle.iter_mut() {
        if !closed_within(s, Duration::from_millis(1)).await {
            open += 1;
        }
    }
    assert!(open <= 8, "{open} idle connections kept from one address");

    // A head dripped a byte at a time is cut (header deadline, 10 s).
    let mut drip = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let dripper = tokio::spawn(async move {
        let head = b"POST /plates/busy-cam HTTP/1.1\r\nHost: cam\r\nX-Long: ";
        let _ = drip.write_all(head).await;
        loop {
            if drip.write_all(b"a").await.is_err() {
                return drip;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            if closed_within(&mut drip, Duration::from_millis(1)).await {
                return drip;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), dripper)
        .await
        .expect("a dripped head is cut within 30 s")
        .unwrap();

    // A body dripped a byte at a time is cut at body_timeout_s (2 s here).
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /plates/busy-cam HTTP/1.1\r\nHost: cam\r\nAuthorization: Bearer {SECRET}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let body_dripper = tokio::spawn(async move {
        loop {
            if slow.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            if closed_within(&mut slow, Duration::from_millis(1)).await {
                return;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), body_dripper)
        .await
        .expect("a dripped body is cut within 30 s")
        .unwrap();
    eventually_refused("busy-cam", "timeout", 1).await;
    drop(idle);
    assert!(h.stop(Duration::from_secs(3)).await);
}
