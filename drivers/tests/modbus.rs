//! The Modbus driver against pymodbus servers (TCP, and RTU on a socat pty),
//! cross-checked with Debian's mbpoll.

mod support;

use drivers::testing::{assert_driver_compliance, Harness, Limits};
use drivers::{Action, DriverConfig, EventBody, InputKind, Output, SensorKind};
use serde_json::json;
use std::time::Duration;
use support::ModbusPeer;

const WAIT: Duration = Duration::from_secs(10);

const POINTS: &str = r#"
outputs = { lock = 0, elevator_hold = 1 }
points = [
  { input = "vehicle_loop", table = "discrete", address = 0 },
  { input = "gate_open", table = "discrete", address = 1 },
  { sensor = "gas", table = "input", address = 5, scale = 0.1, alarm_above = 50.0 },
  { sensor = "sos", table = "discrete", address = 3, invert = true },
]
"#;

fn tcp_config(port: u16, extra: &str) -> DriverConfig {
    toml::from_str(&format!(
        "driver = \"modbus\"\ntransport = \"tcp\"\nhost = \"127.0.0.1:{port}\"\npoll_interval_ms = 50\ntimeout_ms = 300\n{extra}"
    ))
    .expect("modbus config")
}

fn rtu_config(port: &std::path::Path, extra: &str) -> DriverConfig {
    toml::from_str(&format!(
        "driver = \"modbus\"\ntransport = \"rtu\"\nport = \"{}\"\nbaud = 19200\npoll_interval_ms = 50\ntimeout_ms = 300\n{extra}",
        port.display()
    ))
    .expect("modbus config")
}

fn online(b: &EventBody) -> bool {
    matches!(b, EventBody::Online { .. })
}

#[tokio::test]
async fn modbus_tcp_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = ModbusPeer::tcp(dir.path()).unwrap();
    let cfg = tcp_config(peer.tcp_port.unwrap(), POINTS);
    assert_driver_compliance(&cfg, &mut peer, dir.path().into(), Limits::default()).await;
}

#[tokio::test]
async fn modbus_rtu_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = ModbusPeer::rtu(dir.path());
    let cfg = rtu_config(&peer.port(), POINTS);
    assert_driver_compliance(&cfg, &mut peer, dir.path().into(), Limits::default()).await;
}

#[tokio::test]
async fn barrier_and_sensors_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = ModbusPeer::tcp(dir.path()).unwrap();
    peer.up().await;
    let port = peer.tcp_port.unwrap();
    // The SOS contact is normally closed: closed (1) is quiet.
    peer.server()
        .send(json!({"op": "set", "table": "discrete", "address": 3, "value": 1}))
        .await;
    let mut h = Harness::start("barrier", &tcp_config(port, POINTS), dir.path().into()).unwrap();
    h.wait_for(WAIT, online).await.expect("online");

    // Pulse: coil 0 on, then off after about the pulse length.
    h.commands
        .send(Action::Pulse {
            output: Output::Lock,
            ms: 400,
        })
        .await
        .unwrap();
    let on = peer
        .server()
        .wait_for(WAIT, |v| v["coil"] == 0 && v["value"] == true)
        .await
        .expect("coil 0 on");
    let off = peer
        .server()
        .wait_for(WAIT, |v| v["coil"] == 0 && v["value"] == false)
        .await
        .expect("coil 0 off");
    let held = off["t"].as_f64().unwrap() - on["t"].as_f64().unwrap();
    assert!((0.35..1.5).contains(&held), "pulse lasted {held} s");

    // Hold: coil 1 stays on; mbpoll (a second client) reads it back.
    h.commands
        .send(Action::Hold {
            output: Output::ElevatorHold,
            on: true,
        })
        .await
        .unwrap();
    peer.server()
        .wait_for(WAIT, |v| v["coil"] == 1 && v["value"] == true)
        .await
        .expect("coil 1 on");
    let out = tokio::process::Command::new("mbpoll")
        .args([
            "-m",
            "tcp",
            "-p",
            &port.to_string(),
            "-a",
            "1",
            "-t",
            "0",
            "-r",
            "2",
            "-c",
            "1",
            "-1",
            "127.0.0.1",
        ])
        .output()
        .await
        .expect("mbpoll (Debian package mbpoll)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[2]: \t1"), "mbpoll read: {text}");

    // Inputs and sensors.
    peer.server()
        .send(json!({"op": "set", "table": "discrete", "address": 0, "value": 1}))
        .await;
    h.wait_for(WAIT, |b| {
        matches!(
            b,
            EventBody::Input {
                input: InputKind::VehicleLoop,
                active: true
            }
        )
    })
    .await
    .expect("loop detector");
    peer.server()
        .send(json!({"op": "set", "table": "input", "address": 5, "value": 620}))
        .await;
    let gas = h
        .wait_for(WAIT, |b| {
            matches!(
                b,
                EventBody::Sensor {
                    sensor: SensorKind::Gas,
                    active: true,
                    ..
                }
            )
        })
        .await
        .expect("gas alarm");
    assert!(
        matches!(gas.body, EventBody::Sensor { value: Some(v), .. } if (v - 62.0).abs() < 1e-9)
    );
    peer.server()
        .send(json!({"op": "set", "table": "input", "address": 5, "value": 100}))
        .await;
    h.wait_for(WAIT, |b| {
        matches!(
            b,
            EventBody::Sensor {
                sensor: SensorKind::Gas,
                active: false,
                ..
            }
        )
    })
    .await
    .expect("gas clear");
    peer.server()
        .send(json!({"op": "set", "table": "discrete", "address": 3, "value": 0}))
        .await;
    h.wait_for(WAIT, |b| {
        matches!(
            b,
            EventBody::Sensor {
                sensor: SensorKind::Sos,
                active: true,
                ..
            }
        )
    })
    .await
    .expect("SOS (normally closed contact opened)");
    assert!(
        !h.seen.iter().any(|e| matches!(
            e.body,
            EventBody::Input {
                input: InputKind::GateOpen,
                ..
            }
        )),
        "a quiet input must not be reported"
    );
    assert!(h.stop(Duration::from_secs(3)).await);
    peer.down().await;
}

#[tokio::test]
async fn exceptions_are_device_errors_and_silence_is_offline() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = ModbusPeer::rtu(dir.path());
    peer.up().await;
    let cfg = rtu_config(
        &peer.port(),
        "offline_after = 3\noutputs = { lock = 4 }\npoints = [\n  { input = \"door_contact\", table = \"coil\", address = 2 },\n  { sensor = \"smoke\", table = \"holding\", address = 300, alarm_above = 1.0 },\n]",
    );
    let mut h = Harness::start("panel", &cfg, dir.path().join("s")).unwrap();
    let fault = h
        .wait_for(
            WAIT,
            |b| matches!(b, EventBody::Fault { error } if error.contains("illegal data address")),
        )
        .await
        .unwrap_or_else(|| panic!("exception 2 reported; saw {:?}", h.seen));
    assert!(
        matches!(&fault.body, EventBody::Fault { error } if error.contains("holding registers 300")),
        "{fault:?}"
    );
    peer.server()
        .send(json!({"op": "set", "table": "coil", "address": 2, "value": 1}))
        .await;
    h.wait_for(WAIT, |b| {
        matches!(
            b,
            EventBody::Input {
                input: InputKind::DoorContact,
                active: true
            }
        )
    })
    .await
    .expect("door contact over RTU");
    h.commands
        .send(Action::Pulse {
            output: Output::Lock,
            ms: 200,
        })
        .await
        .unwrap();
    peer.server()
        .wait_for(WAIT, |v| v["coil"] == 4 && v["value"] == true)
        .await
        .expect("coil 4 pulsed over RTU");
    // The device goes silent on a live line: offline after 3 failed polls.
    peer.silence().await;
    let off = h
        .wait_for(WAIT, |b| matches!(b, EventBody::Offline { .. }))
        .await
        .expect("offline");
    assert!(
        matches!(&off.body, EventBody::Offline { reason } if reason.contains("3 failed polls")),
        "{off:?}"
    );
    peer.up().await;
    h.wait_for(Duration::from_secs(15), online)
        .await
        .expect("back online");
    assert!(h.stop(Duration::from_secs(3)).await);
    peer.down().await;
}
