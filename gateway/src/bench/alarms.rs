//! Sensor change → alarm on MQTT, 1,000 alarms raised while a backlog of
//! 10,000 pass events is being forwarded, against the same alarms with no
//! backlog. Alarms have their own lanes (journal writer and uplink), so they
//! should not wait behind the backlog.
//!
//! Ten rounds: each journals a burst of 10,000 pass events (what an outage
//! leaves behind) and, while the uplink forwards it, raises 100 alarms from 100
//! sensors, one every half millisecond; each latency runs from the sensor event
//! to the alarm's arrival at a subscriber.

use anyhow::{bail, Result};
use chrono::Utc;
use drivers::{Credential, CredentialKind, DeviceEvent, DeviceId, EventBody, SensorKind};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::broker::{BrokerOptions, Mosquitto};
use crate::config::Config;
use crate::daemon::Gateway;
use crate::journal::{Draft, EventAction, EventKind, EventRecord};

const ROUNDS: usize = 10;
const SENSORS: usize = 100;
const BACKLOG: usize = 10_000;

type Histogram = hdrhistogram::Histogram<u64>;

fn config(dir: &std::path::Path, port: u16) -> String {
    let mut text = format!(
        r#"
[gateway]
id = "bench"
estate = "bench"
data_dir = "{}"
[mqtt]
url = "mqtt://127.0.0.1:{port}"
[[rules]]
type = "fence_intrusion"
auto_clear = true
"#,
        dir.display()
    );
    for i in 0..SENSORS {
        text.push_str(&format!(
            "[[devices]]\nid = \"fence-{i}\"\ndriver = \"sim\"\nzone = \"estate\"\nprofile = \"sensors\"\n"
        ));
    }
    text
}

/// An alarm as it arrived: device, raised (else cleared), when.
type Arrival = (String, bool, Instant);

/// Subscribes to the alarms; reports each as it arrives.
async fn subscriber(
    port: u16,
) -> Result<(
    mpsc::UnboundedReceiver<Arrival>,
    tokio::task::JoinHandle<()>,
)> {
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
                    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) else {
                        continue;
                    };
                    let device = v["device"].as_str().unwrap_or_default().to_owned();
                    if tx
                        .send((device, v["state"] == "raised", Instant::now()))
                        .is_err()
                    {
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

fn sensor(i: usize, active: bool) -> DeviceEvent {
    DeviceEvent {
        device: DeviceId::new(format!("fence-{i}")),
        at: Utc::now(),
        body: EventBody::Sensor {
            sensor: SensorKind::FenceIntrusion,
            active,
            value: None,
        },
        receipt: Default::default(),
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

/// Waits until every sensor's alarm reached `raised` (or cleared), noting when.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<Arrival>,
    want_raised: bool,
) -> Result<HashMap<String, Instant>> {
    let mut seen = HashMap::new();
    while seen.len() < SENSORS {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some((device, raised, at))) if raised == want_raised => {
                seen.entry(device).or_insert(at);
            }
            Ok(Some(_)) => {}
            _ => bail!(
                "only {} of {SENSORS} alarms arrived within 30 s",
                seen.len()
            ),
        }
    }
    Ok(seen)
}

/// Latencies (µs) of all alarms; with or without the backlog bursts. Also
/// returns the backlog left when each round's last alarm was raised.
async fn measure(with_backlog: bool) -> Result<(Histogram, Vec<u64>)> {
    let broker = Mosquitto::start(BrokerOptions::default())?;
    let dir = tempfile::tempdir()?;
    let cfg = Config::parse(&config(dir.path(), broker.port), dir.path())
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let gw = Gateway::start(cfg).await?;
    let (mut rx, sub_task) = subscriber(broker.port).await?;
    let t = Instant::now();
    while !gw.uplink.as_ref().is_some_and(|u| u.connected()) {
        if t.elapsed() > Duration::from_secs(10) {
            bail!("uplink did not connect");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut h = Histogram::new(3)?;
    let mut left = Vec::new();
    for _ in 0..ROUNDS {
        if with_backlog {
            // The burst, in small appends as the engine makes them.
            for _ in 0..BACKLOG / 10 {
                gw.journal
                    .append_nowait((0..10).map(|_| pass()).collect())?;
            }
        }
        let mut sent = HashMap::new();
        for i in 0..SENSORS {
            sent.insert(format!("fence-{i}"), Instant::now());
            gw.events.send(sensor(i, true)).await?;
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        if let Some(u) = &gw.uplink {
            left.push(u.backlog(&gw.journal) + gw.journal.queued());
        }
        for (device, at) in collect(&mut rx, true).await? {
            if let Some(t0) = sent.get(&device) {
                h.record(at.duration_since(*t0).as_micros() as u64)?;
            }
        }
        for i in 0..SENSORS {
            gw.events.send(sensor(i, false)).await?;
        }
        collect(&mut rx, false).await?;
        // Let the rest of the burst drain before the next round.
        while gw
            .uplink
            .as_ref()
            .is_some_and(|u| u.backlog(&gw.journal) > 0)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    sub_task.abort();
    gw.stop().await;
    Ok((h, left))
}

pub async fn run() -> Result<()> {
    let (quiet, _) = measure(false).await?;
    println!(
        "alarms: sensor change → alarm on MQTT, no backlog: {}",
        super::percentiles(&quiet)
    );
    let (busy, left) = measure(true).await?;
    println!(
        "alarms: same while bursts of {BACKLOG} pass events are forwarded (still waiting after each round's last alarm: {left:?}): {}",
        super::percentiles(&busy)
    );
    println!(
        "alarms: p99 with backlog / p99 without = {:.2}x",
        busy.value_at_quantile(0.99) as f64 / quiet.value_at_quantile(0.99).max(1) as f64
    );
    Ok(())
}
