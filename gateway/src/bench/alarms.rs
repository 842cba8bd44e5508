//! Sensor change → alarm on MQTT: latency over 1,000 alarms while a backlog of
//! 10,000 pass events is being forwarded at the same time, against the same
//! measurement with no backlog. Alarms have their own lane, so they should not
//! wait behind the backlog.

use anyhow::{bail, Result};
use chrono::Utc;
use drivers::{Credential, CredentialKind, DeviceEvent, DeviceId, EventBody, SensorKind};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::broker::{BrokerOptions, Mosquitto};
use crate::config::Config;
use crate::daemon::Gateway;
use crate::journal::{Draft, EventAction, EventKind, EventRecord};

const ALARMS: usize = 1000;
const BACKLOG: u64 = 10_000;

fn config(dir: &std::path::Path, port: u16) -> String {
    format!(
        r#"
[gateway]
id = "bench"
estate = "bench"
data_dir = "{}"
[mqtt]
url = "mqtt://127.0.0.1:{port}"
[[doors]]
id = "main"
zone = "estate"
[[devices]]
id = "reader"
driver = "sim"
door = "main"
direction = "in"
[[devices]]
id = "fence"
driver = "sim"
zone = "estate"
profile = "sensors"
[[rules]]
type = "fence_intrusion"
auto_clear = true
[[persons]]
id = "r1"
name = "R"
group = "resident"
credentials = ["card:100"]
"#,
        dir.display()
    )
}

/// Subscribes to the fence alarms; sends `true` for each raised, `false` for each cleared.
async fn subscriber(
    port: u16,
) -> Result<(mpsc::UnboundedReceiver<bool>, tokio::task::JoinHandle<()>)> {
    let mut o = MqttOptions::new("bench-alarm-sub", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(10));
    let (client, mut el) = AsyncClient::new(o, 100);
    client
        .subscribe("cm/bench/bench/alarms/#", QoS::AtLeastOnce)
        .await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let _client = client;
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let raised = serde_json::from_slice::<serde_json::Value>(&p.payload)
                        .map(|v| v["state"] == "raised")
                        .unwrap_or(false);
                    if tx.send(raised).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    Ok((rx, task))
}

fn sensor(active: bool) -> DeviceEvent {
    DeviceEvent {
        device: DeviceId::new("fence"),
        at: Utc::now(),
        body: EventBody::Sensor {
            sensor: SensorKind::FenceIntrusion,
            active,
            value: None,
        },
    }
}

/// A pass event as the engine journals it.
fn pass() -> Draft {
    let mut e = EventRecord::new(
        EventKind::Access,
        EventAction::Decision,
        DeviceId::new("reader"),
    );
    e.credential = Some(Credential {
        kind: CredentialKind::Card,
        value: "100".into(),
    });
    Draft::event(Utc::now(), e)
}

type Histogram = hdrhistogram::Histogram<u64>;

/// 1,000 raise/clear cycles: latencies until the alarm is durable in the
/// journal, and until it arrives on MQTT (µs); the smallest backlog seen.
async fn measure(with_backlog: bool) -> Result<(Histogram, Histogram, u64)> {
    let broker = Mosquitto::start(BrokerOptions::default())?;
    let dir = tempfile::tempdir()?;
    let cfg = Config::parse(&config(dir.path(), broker.port), dir.path())
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let gw = Gateway::start(cfg).await?;
    let (mut rx, sub_task) = subscriber(broker.port).await?;
    // Wait for the link.
    let t = Instant::now();
    while !gw.uplink.as_ref().is_some_and(|u| u.connected()) {
        if t.elapsed() > Duration::from_secs(10) {
            bail!("uplink did not connect");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Keep about BACKLOG pass events waiting to be forwarded, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let mut min_backlog = u64::MAX;
    // The backlog is journaled directly (as an outage leaves it), not pushed
    // through the engine, whose queue is not what is measured here.
    let feeder = if with_backlog {
        let (journal, uplink, stop) = (gw.journal.clone(), gw.uplink.clone(), stop.clone());
        Some(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let forwarded = uplink.as_ref().map(|u| u.forwarded().events).unwrap_or(0);
                let waiting =
                    (journal.last_committed() + journal.queued()).saturating_sub(forwarded);
                // In small appends, as the engine makes them (one per device event).
                let missing = BACKLOG.saturating_sub(waiting) as usize;
                for _ in 0..missing.div_ceil(10) {
                    if journal
                        .append_nowait((0..10).map(|_| pass()).collect())
                        .is_err()
                    {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }))
    } else {
        None
    };
    if with_backlog {
        // Let the backlog build up first.
        while gw
            .uplink
            .as_ref()
            .map(|u| u.backlog(&gw.journal))
            .unwrap_or(0)
            < BACKLOG / 2
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let mut h = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut hj = hdrhistogram::Histogram::<u64>::new(3)?;
    for _ in 0..ALARMS {
        let last_alarm = gw.journal.alarm_seqs(0).last().unwrap_or(0);
        let t0 = Instant::now();
        gw.events.send(sensor(true)).await?;
        loop {
            if gw
                .journal
                .alarm_seqs(last_alarm + 1)
                .next()
                .is_some_and(|s| s <= gw.journal.last_committed())
            {
                break;
            }
            tokio::task::yield_now().await;
        }
        hj.record(t0.elapsed().as_micros() as u64)?;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some(true)) => break,
                Ok(Some(false)) => continue,
                _ => bail!("no alarm on MQTT within 30 s"),
            }
        }
        h.record(t0.elapsed().as_micros() as u64)?;
        if let Some(u) = &gw.uplink {
            min_backlog = min_backlog.min(u.backlog(&gw.journal));
        }
        gw.events.send(sensor(false)).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some(false)) => break,
                Ok(Some(true)) => continue,
                _ => bail!("no cleared alarm on MQTT within 30 s"),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(f) = feeder {
        let _ = f.await;
    }
    sub_task.abort();
    gw.stop().await;
    Ok((hj, h, if with_backlog { min_backlog } else { 0 }))
}

pub async fn run() -> Result<()> {
    let (quiet_j, quiet, _) = measure(false).await?;
    println!(
        "alarms: no backlog: sensor change → alarm durable: {}",
        super::percentiles(&quiet_j)
    );
    println!(
        "alarms: no backlog: sensor change → alarm on MQTT: {}",
        super::percentiles(&quiet)
    );
    let (busy_j, busy, min_backlog) = measure(true).await?;
    println!(
        "alarms: backlog of {BACKLOG} pass events kept waiting to be forwarded (never fewer than {min_backlog} at an alarm)"
    );
    println!(
        "alarms: with backlog: sensor change → alarm durable: {}",
        super::percentiles(&busy_j)
    );
    println!(
        "alarms: with backlog: sensor change → alarm on MQTT: {}",
        super::percentiles(&busy)
    );
    println!(
        "alarms: p99 with backlog / p99 without = {:.2}x",
        busy.value_at_quantile(0.99) as f64 / quiet.value_at_quantile(0.99).max(1) as f64
    );
    Ok(())
}
