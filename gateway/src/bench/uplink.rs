//! The uplink's throughput: QoS 1 messages per second from the journal to a
//! local mosquitto, against a paho-mqtt Python publisher sending the same
//! payloads to the same broker in the same run; and the time to drain a
//! backlog left by an outage.

use anyhow::{bail, Context, Result};
use chrono::Utc;
use drivers::DeviceId;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::broker::{BrokerOptions, Mosquitto};
use crate::config::Config;
use crate::control::Controller;
use crate::engine::{EngineHandle, Input};
use crate::journal::{Draft, EventAction, EventKind, EventRecord, Journal};

/// The window used by both sides.
const INFLIGHT: u16 = 500;

const PAHO: &str = r#"
import sys, time, threading
import paho.mqtt.client as mqtt
port, n, window = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
payload = open(sys.argv[4], "rb").read()
done = threading.Event()
acked = [0]
def on_publish(client, userdata, mid, reason_code, properties):
    acked[0] += 1
    if acked[0] == n:
        done.set()
connected = threading.Event()
def on_connect(client, userdata, flags, reason_code, properties):
    connected.set()
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-bench")
c.max_inflight_messages_set(window)
c.max_queued_messages_set(0)
c.on_publish = on_publish
c.on_connect = on_connect
c.connect("127.0.0.1", port)
c.loop_start()
connected.wait(10)
t0 = time.perf_counter()
for i in range(n):
    c.publish("bench/paho/events/access", payload, qos=1)
if not done.wait(600):
    print("timeout", acked[0])
    sys.exit(1)
print(n, time.perf_counter() - t0)
c.disconnect()
"#;

fn sample_event() -> Draft {
    let mut e = EventRecord::new(
        EventKind::Access,
        EventAction::Decision,
        DeviceId::new("north-gate-in"),
    );
    e.door = Some(crate::contract::DoorId::new("north-gate"));
    e.direction = Some(drivers::Direction::In);
    e.credential = Some(drivers::Credential {
        kind: drivers::CredentialKind::Card,
        value: "10001".into(),
    });
    e.person = Some(crate::journal::PersonRef {
        id: crate::contract::PersonId::new("r-001"),
        group: crate::contract::Group::Resident,
        name: None,
    });
    e.decision = Some(crate::journal::DecisionRef {
        granted: true,
        reason: crate::contract::Reason::Granted,
    });
    e.offline = Some(true);
    Draft::event(Utc::now(), e)
}

/// A journal with `n` pass events waiting to be forwarded.
async fn backlog(dir: &std::path::Path, n: usize) -> Result<(sled::Db, Journal)> {
    let db = sled::Config::new().path(dir.join("db")).open()?;
    let journal = Journal::open(&db, "bench-estate", "bench-gw")?;
    for _ in 0..n / 1000 {
        journal.append_nowait((0..1000).map(|_| sample_event()).collect())?;
    }
    journal
        .append((0..n % 1000).map(|_| sample_event()).collect())
        .await?;
    Ok((db, journal))
}

/// Runs the uplink from cursor 0 until the broker acknowledged everything.
async fn forward_all(journal: &Journal, port: u16) -> Result<Duration> {
    let target = journal.last_committed();
    let cfg = Config::parse(
        &format!(
            "[gateway]\nid = \"bench-gw\"\nestate = \"bench-estate\"\ndata_dir = \".\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\ninflight = {INFLIGHT}\n"
        ),
        std::path::Path::new("."),
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let Some(m) = cfg.mqtt.clone() else {
        bail!("bench config has no [mqtt]");
    };
    // No engine here: its inputs are read and dropped.
    let (tx, mut rx) = mpsc::channel::<Input>(16);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let (link, _link_rx) = tokio::sync::watch::channel(false);
    let stop = CancellationToken::new();
    let t = Instant::now();
    let (state, task) = crate::uplink::start(
        &m,
        &cfg.identity(),
        journal.clone(),
        Controller::new(EngineHandle::new(tx), None),
        link,
        stop.clone(),
    )?;
    let task = tokio::spawn(task);
    let deadline = Instant::now() + Duration::from_secs(600);
    while state.forwarded().events < target {
        if Instant::now() > deadline {
            bail!("uplink stuck at {} of {target}", state.forwarded().events);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = t.elapsed();
    stop.cancel();
    let _ = task.await;
    Ok(elapsed)
}

pub(crate) fn python(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| {
        let venv = PathBuf::from(".venv/bin/python");
        if venv.exists() {
            venv
        } else {
            PathBuf::from("python3")
        }
    })
}

pub async fn compare_with_paho(n: usize, py: Option<PathBuf>) -> Result<()> {
    let broker = Mosquitto::start(BrokerOptions::default())?;
    let dir = tempfile::tempdir()?;
    let (_db, journal) = backlog(dir.path(), n).await?;
    let payload = match journal.get_raw(1)? {
        Some(raw) => crate::journal::Stored::decode(&raw)
            .map(|s| s.json.to_vec())
            .unwrap_or_default(),
        None => bail!("bench journal is empty"),
    };
    let ours = forward_all(&journal, broker.port).await?;
    let ours_rate = n as f64 / ours.as_secs_f64();
    println!(
        "uplink: {n} records ({} bytes each) forwarded at QoS 1, window {INFLIGHT}: {:.2} s, {:.0} msg/s",
        payload.len(),
        ours.as_secs_f64(),
        ours_rate
    );

    let script = dir.path().join("paho_bench.py");
    std::fs::write(&script, PAHO)?;
    let payload_file = dir.path().join("payload.json");
    std::fs::write(&payload_file, &payload)?;
    let py = python(py);
    let out = tokio::process::Command::new(&py)
        .arg(&script)
        .arg(broker.port.to_string())
        .arg(n.to_string())
        .arg(INFLIGHT.to_string())
        .arg(&payload_file)
        .output()
        .await
        .with_context(|| format!("cannot run {}", py.display()))?;
    if !out.status.success() {
        println!(
            "uplink: paho-mqtt reference skipped ({} failed: {})",
            py.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let secs: f64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("unexpected output from the paho script")?;
    let paho_rate = n as f64 / secs;
    println!(
        "uplink: paho-mqtt {} publisher, same broker, payload and window: {secs:.2} s, {paho_rate:.0} msg/s",
        py.display()
    );
    println!(
        "uplink: ratio gatewayd / paho-mqtt = {:.1}x (goal ≥ 3x)",
        ours_rate / paho_rate
    );
    Ok(())
}

pub async fn drain(n: usize) -> Result<()> {
    let broker = Mosquitto::start(BrokerOptions::default())?;
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    let (_db, journal) = backlog(dir.path(), n).await?;
    let fill = t.elapsed();
    let d = forward_all(&journal, broker.port).await?;
    println!(
        "drain: backlog of {n} records (journaled in {:.1} s) forwarded after the outage in {:.1} s ({:.0} msg/s; goal ≤ 30 s)",
        fill.as_secs_f64(),
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    );
    Ok(())
}
