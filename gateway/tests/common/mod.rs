//! Test support: an MQTT subscriber that records everything, config files for
//! small estates, and the gatewayd binary as a child process; `console`: a
//! gateway with a console and an HTTP client that keeps its session; `disk`:
//! a tmpfs that fills up.
#![allow(dead_code)]

mod console;
mod disk;
#[allow(unused_imports)]
pub use console::*;
#[allow(unused_imports)]
pub use disk::Tmpfs;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// One received message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub json: Value,
    pub retain: bool,
}

/// A subscriber (QoS 1) that keeps every message, reconnecting by itself.
pub struct Sub {
    pub client: AsyncClient,
    msgs: Arc<Mutex<Vec<Msg>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sub {
    /// `persistent`: a session the broker keeps (and queues for) while we are away.
    pub async fn start(port: u16, filter: &str, id: &str, persistent: bool) -> Sub {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_clean_session(!persistent);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
        let (client, mut el) = AsyncClient::new(o, 1024);
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let (m, c, f) = (msgs.clone(), client.clone(), filter.to_owned());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready = Some(ready_tx);
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        if !ack.session_present {
                            let _ = c.subscribe(f.clone(), QoS::AtLeastOnce).await;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let json = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        m.lock().unwrap().push(Msg {
                            topic: p.topic.clone(),
                            json,
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("subscriber did not get its SUBACK")
            .ok();
        Sub { client, msgs, task }
    }

    pub fn all(&self) -> Vec<Msg> {
        self.msgs.lock().unwrap().clone()
    }

    /// Waits for a message matching `pred`, panicking with what came instead.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Msg) -> bool,
    ) -> Msg {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.all().into_iter().find(|m| pred(m)) {
                return m;
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = self
                    .all()
                    .iter()
                    .rev()
                    .take(20)
                    .map(|m| format!("{} {}", m.topic, m.json))
                    .collect();
                panic!(
                    "timed out waiting for {what}; last messages:\n{}",
                    seen.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` messages match `pred` (e.g. a second `online`).
    pub async fn wait_count(
        &self,
        what: &str,
        timeout: Duration,
        n: usize,
        pred: impl Fn(&Msg) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while self.all().iter().filter(|m| pred(m)).count() < n {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish");
    }

    pub async fn publish_retained(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
            .expect("publish");
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a subscriber saw of the journal's records: the seqs in arrival order.
#[derive(Debug, Default)]
pub struct Delivery {
    /// seq → how many times it arrived.
    pub counts: BTreeMap<u64, u32>,
    /// The events lane and the alarms lane, first arrivals in order.
    pub events_order: Vec<u64>,
    pub alarms_order: Vec<u64>,
}

impl Delivery {
    pub fn of(msgs: &[Msg], prefix: &str) -> Delivery {
        let mut d = Delivery::default();
        for m in msgs {
            let Some(rest) = m.topic.strip_prefix(prefix) else {
                continue;
            };
            let Some(seq) = m.json["seq"].as_u64() else {
                continue;
            };
            let n = d.counts.entry(seq).or_insert(0);
            *n += 1;
            if *n == 1 {
                if rest.starts_with("/alarms/") {
                    d.alarms_order.push(seq);
                } else if rest.starts_with("/events/") {
                    d.events_order.push(seq);
                }
            }
        }
        d
    }

    pub fn duplicates(&self) -> u32 {
        self.counts.values().map(|n| n - 1).sum()
    }

    /// Panics unless every seq in 1..=upto arrived, each lane in increasing order.
    pub fn assert_complete(&self, upto: u64) {
        let missing: Vec<u64> = (1..=upto)
            .filter(|s| !self.counts.contains_key(s))
            .collect();
        assert!(
            missing.is_empty(),
            "{} of {upto} records never arrived: {:?}",
            missing.len(),
            &missing[..missing.len().min(20)]
        );
        for (name, order) in [
            ("events", &self.events_order),
            ("alarms", &self.alarms_order),
        ] {
            let out_of_order: Vec<_> = order.windows(2).filter(|w| w[0] >= w[1]).collect();
            assert!(
                out_of_order.is_empty(),
                "{name} lane out of order: {:?}",
                &out_of_order[..out_of_order.len().min(10)]
            );
        }
    }
}

/// A config for a small estate: one door, `devices` (TOML of [[devices]] tables).
pub fn config(data_dir: &Path, port: Option<u16>, devices: &str, extra: &str) -> String {
    let mqtt = match port {
        Some(p) => format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{p}\"\nkeep_alive_s = 5\n"),
        None => String::new(),
    };
    format!(
        r#"
[gateway]
id = "gw1"
estate = "est1"
data_dir = "{}"

{mqtt}

[[doors]]
id = "main"
name = "Main gate"
zone = "estate"
open_ms = 1000
held_open_s = 30

[[persons]]
id = "r1"
name = "Resident One"
group = "resident"
credentials = ["card:100", "card:101", "card:102"]

{devices}
{extra}
"#,
        data_dir.display()
    )
}

/// A sim reader at the main door playing `reads` card reads, `every_ms` apart, from `start_ms`.
pub fn scripted_reader(id: &str, reads: usize, start_ms: u64, every_ms: u64) -> String {
    let steps: Vec<String> = (0..reads)
        .map(|i| {
            format!(
                "{{ at_ms = {}, read = \"card:{}\" }}",
                start_ms + i as u64 * every_ms,
                100 + i % 3
            )
        })
        .collect();
    format!(
        "[[devices]]\nid = \"{id}\"\ndriver = \"sim\"\ndoor = \"main\"\ndirection = \"in\"\npass_s = 0.2\nscript = [\n{}\n]\n",
        steps.join(",\n")
    )
}

/// The gatewayd binary as a child process.
pub struct Daemon {
    pub child: tokio::process::Child,
    pub config: PathBuf,
}

impl Daemon {
    pub fn spawn(config: &Path) -> Daemon {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatewayd"))
            .arg("run")
            .arg("-c")
            .arg(config)
            .env("GATEWAYD_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("spawn gatewayd");
        Daemon {
            child,
            config: config.to_owned(),
        }
    }

    pub async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("gatewayd did not stop within 20 s of SIGTERM")
            .expect("wait")
    }
}

/// Opens a stopped gateway's journal to read what it holds.
pub fn read_journal(data_dir: &Path) -> (sled::Db, gateway::journal::Journal) {
    let db = sled::Config::new()
        .path(data_dir.join("journal"))
        .open()
        .expect("open journal");
    let j = gateway::journal::Journal::open(&db, "est1", "gw1").expect("journal");
    (db, j)
}
