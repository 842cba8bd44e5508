//! End to end through the engine with real devices: a card at a libosdp reader
//! opens its door (LED and output seen back on the PD), a plate pushed by a
//! camera lifts the barrier (the Modbus coil pulsed on a pymodbus server).

#[path = "../../drivers/tests/support/mod.rs"]
mod support;

use drivers::osdp::card::encode_wiegand;
use gateway::bench::devices::{osdp_estate, plate_estate};
use gateway::config::Config;
use gateway::daemon::Gateway;
use gateway::journal::{EventAction, RecordBody};
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use support::{free_port, ModbusPeer, OsdpBus};

const KEY: &str = "00112233445566778899aabbccddeeff";
const WAIT: Duration = Duration::from_secs(15);

/// Waits for a journal record matching `pred`.
async fn journaled(gw: &Gateway, pred: impl Fn(&RecordBody) -> bool) -> Option<RecordBody> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seq = 1;
    while tokio::time::Instant::now() < deadline {
        while seq <= gw.journal.last_committed() {
            if let Ok(Some(r)) = gw.journal.get(seq) {
                if pred(&r.body) {
                    return Some(r.body);
                }
            }
            seq += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn decision(b: &RecordBody, value: &str) -> Option<bool> {
    match b {
        RecordBody::Event(e) if e.action == EventAction::Decision => e
            .credential
            .as_ref()
            .filter(|c| c.value == value)
            .and_then(|_| e.decision.as_ref().map(|d| d.granted)),
        _ => None,
    }
}

fn online(b: &RecordBody, device: &str) -> bool {
    matches!(b, RecordBody::Event(e) if e.action == EventAction::Online && e.device.as_str() == device)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_at_an_osdp_reader_opens_the_door() {
    let dir = tempfile::tempdir().unwrap();
    let mut bus = OsdpBus::new(dir.path(), &[&format!("1:{KEY}")]);
    bus.up().await;
    let key = dir.path().join("lobby.scbk");
    std::fs::write(&key, KEY).unwrap();
    // The Python PD can stall on a loaded machine: give it time to answer.
    let text = osdp_estate(&dir.path().join("data"), &bus.port(), &key)
        .replace("baud = 115200", "baud = 115200\nreply_timeout_ms = 500");
    let cfg = Config::parse(&text, dir.path()).expect("config");
    let gw = Gateway::start(cfg).await.expect("gateway");
    journaled(&gw, |b| online(b, "lobby-reader"))
        .await
        .expect("the reader came online");

    let pds = bus.pds();
    pds.send(json!({"op": "card", "addr": 1, "bits": 26,
                    "data": hex(&encode_wiegand(26, 12, 10001))}))
        .await;
    let out = pds
        .wait_for(WAIT, |v| v["command"]["name"] == "output")
        .await
        .expect("the lock output on the PD");
    assert_eq!(out["command"]["control_code"], 5);
    assert_eq!(
        out["command"]["timer_count"], 20,
        "open_ms 2000 = 20 × 100 ms"
    );
    let led = pds
        .wait_for(WAIT, |v| v["command"]["name"] == "led")
        .await
        .expect("LED on the PD");
    assert_eq!(led["command"]["on_color"], 2, "green");
    let granted = journaled(&gw, |b| decision(b, "10001").is_some())
        .await
        .expect("decision journaled");
    assert_eq!(decision(&granted, "10001"), Some(true));

    // A card nobody holds: red, and no output.
    pds.send(json!({"op": "card", "addr": 1, "bits": 26,
                    "data": hex(&encode_wiegand(26, 12, 4242))}))
        .await;
    let led = pds
        .wait_for(WAIT, |v| v["command"]["name"] == "led")
        .await
        .expect("LED on refusal");
    assert_eq!(led["command"]["on_color"], 1, "red");
    let refused = journaled(&gw, |b| decision(b, "4242").is_some())
        .await
        .expect("refusal journaled");
    assert_eq!(decision(&refused, "4242"), Some(false));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let outputs = pds
        .collect()
        .iter()
        .filter(|v| v["command"]["name"] == "output")
        .count();
    assert_eq!(outputs, 1, "the refused card must not open: {:?}", pds.seen);
    gw.stop().await;
    bus.down().await;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plate_push_lifts_the_barrier_through_modbus() {
    let dir = tempfile::tempdir().unwrap();
    let mut io = ModbusPeer::tcp(dir.path()).unwrap();
    io.up().await;
    let secret = dir.path().join("cam.secret");
    std::fs::write(&secret, "cam-secret-123").unwrap();
    let http = free_port();
    let text = plate_estate(
        &dir.path().join("data"),
        http,
        &secret,
        io.tcp_port.unwrap(),
        800,
    );
    let cfg = Config::parse(&text, dir.path()).expect("config");
    let gw = Gateway::start(cfg).await.expect("gateway");
    journaled(&gw, |b| online(b, "barrier-io"))
        .await
        .expect("the barrier controller came online");
    let jpeg = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../drivers/tests/data/vehicle.jpg"),
    )
    .unwrap();
    use base64::Engine;
    let body = json!({"plate": "京A·12345", "colour": "blue", "confidence": 0.95,
                      "image": base64::engine::general_purpose::STANDARD.encode(&jpeg)});
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http}/plates/gate-cam"))
        .header("authorization", "Bearer cam-secret-123")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let on = io
        .server()
        .wait_for(WAIT, |v| v["coil"] == 0 && v["value"] == true)
        .await
        .expect("barrier coil on");
    let off = io
        .server()
        .wait_for(WAIT, |v| v["coil"] == 0 && v["value"] == false)
        .await
        .expect("barrier coil off after open_ms");
    let held = off["t"].as_f64().unwrap() - on["t"].as_f64().unwrap();
    assert!((0.7..2.0).contains(&held), "pulse {held} s");
    let rec = journaled(&gw, |b| decision(b, "京A12345").is_some())
        .await
        .expect("vehicle decision journaled");
    assert_eq!(decision(&rec, "京A12345"), Some(true));
    match rec {
        RecordBody::Event(e) => assert!(e.snapshot.is_some(), "the camera's JPEG is the snapshot"),
        _ => unreachable!(),
    }
    gw.stop().await;
    io.down().await;
}
