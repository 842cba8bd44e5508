//! Device latency with the real peers, through the whole gateway:
//!
//! - `osdp`: a card read on a libosdp PD → access decision → the lock output
//!   command seen by the PD, at 115200 baud on a pty (goal: p99 ≤ 100 ms,
//!   poll cycle included). Reference, same PD and bus: libosdp's own Control
//!   Panel commanding the output on the card read.
//! - `plate`: a plate pushed over HTTP → vehicle decision → the barrier coil
//!   written on a pymodbus server. Reference: the HTTP push's own round trip.

use anyhow::{anyhow, Context, Result};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

use drivers::osdp::card::encode_wiegand;
use drivers::testing::peers::{free_port, JsonPeer, ModbusPeer, OsdpBus};

use crate::config::Config;
use crate::daemon::Gateway;
use crate::journal::{EventAction, RecordBody};

const KEY: &str = "00112233445566778899aabbccddeeff";
const WAIT: Duration = Duration::from_secs(10);

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A small estate: the gateway section, `body` (doors and devices), residents
/// allowed everywhere, and one resident holding `credential`.
fn estate(data: &Path, body: &str, credential: &str) -> String {
    format!(
        r#"
[gateway]
id = "bench"
estate = "bench"
data_dir = "{data}"
{body}
[[access]]
group = "resident"
zones = ["*"]
[[persons]]
id = "p1"
name = "Resident"
group = "resident"
credentials = ["{credential}"]
"#,
        data = data.display(),
    )
}

/// The estate of the OSDP benchmark (and of the end-to-end test): a lobby door
/// with one OSDP reader at address 1, and a resident holding card 10001.
pub fn osdp_estate(data: &Path, port: &Path, key: &Path) -> String {
    let body = format!(
        r#"
[[doors]]
id = "lobby"
zone = "block-a"
open_ms = 2000
[[devices]]
id = "lobby-reader"
driver = "osdp"
door = "lobby"
direction = "in"
port = "{port}"
baud = 115200
address = 1
scbk_file = "{key}"
"#,
        port = port.display(),
        key = key.display(),
    );
    estate(data, &body, "card:10001")
}

/// The estate of the plate benchmark (and of the end-to-end test): a car-park
/// barrier opened through a Modbus controller, a camera pushing plates, and a
/// resident's car 京A12345.
pub fn plate_estate(data: &Path, http: u16, secret: &Path, modbus: u16, open_ms: u32) -> String {
    let body = format!(
        r#"
[[doors]]
id = "car-gate"
zone = "car-park"
kind = "barrier"
lock = "barrier-io"
open_ms = {open_ms}
[[devices]]
id = "gate-cam"
driver = "lpr-http"
door = "car-gate"
direction = "in"
listen = "127.0.0.1:{http}"
secret_file = "{secret}"
[[devices]]
id = "barrier-io"
driver = "modbus"
transport = "tcp"
host = "127.0.0.1:{modbus}"
outputs = {{ lock = 0 }}
poll_interval_ms = 100
"#,
        secret = secret.display(),
    );
    estate(data, &body, "plate:京A12345")
}

/// Prints a latency line and its reference line with the p99 ratio.
fn report(
    what: &str,
    h: &hdrhistogram::Histogram<u64>,
    reference: &str,
    r: &hdrhistogram::Histogram<u64>,
) {
    println!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(h, 0.5),
        ms(h, 0.99),
        h.max() as f64 / 1000.0
    );
    println!(
        "{reference}: p50 {:.1} ms, p99 {:.1} ms; ratio p99 {:.2}",
        ms(r, 0.5),
        ms(r, 0.99),
        ms(h, 0.99) / ms(r, 0.99).max(0.001)
    );
}

fn ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn wait_online(gw: &Gateway, device: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seq = 1;
    while tokio::time::Instant::now() < deadline {
        while seq <= gw.journal.last_committed() {
            if let Ok(Some(r)) = gw.journal.get(seq) {
                if matches!(&r.body, RecordBody::Event(e) if e.action == EventAction::Online && e.device.as_str() == device)
                {
                    return Ok(());
                }
            }
            seq += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(anyhow!("{device} did not come online"))
}

/// Card reads on the PD → output command seen by the PD, in µs on the PD's clock.
async fn card_to_output(pds: &mut JsonPeer, reads: usize) -> Result<hdrhistogram::Histogram<u64>> {
    let mut h = hdrhistogram::Histogram::<u64>::new(3)?;
    let card = hex(&encode_wiegand(26, 12, 10001));
    for i in 0..reads {
        pds.send(json!({"op": "card", "addr": 1, "bits": 26, "data": card}))
            .await;
        let sub = pds
            .wait_for(WAIT, |v| v["submitted"] == "card")
            .await
            .ok_or_else(|| anyhow!("read {i}: the PD did not take the card"))?;
        let out = pds
            .wait_for(WAIT, |v| v["command"]["name"] == "output")
            .await
            .ok_or_else(|| anyhow!("read {i}: no output command"))?;
        let dt = out["t"].as_f64().unwrap_or(0.0) - sub["t"].as_f64().unwrap_or(0.0);
        h.record((dt.max(0.0) * 1e6) as u64)?;
        // Let the LED and buzzer commands pass before the next card.
        tokio::time::sleep(Duration::from_millis(60)).await;
        pds.collect();
    }
    Ok(h)
}

pub async fn osdp(reads: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("reader.scbk");
    std::fs::write(&key, KEY)?;

    // Reference first: libosdp's Control Panel on the same kind of bus.
    let reference = {
        let mut bus = OsdpBus::new(dir.path(), &[&format!("1:{KEY}")]);
        bus.try_up().await.context("OSDP peer")?;
        let port = bus.port().display().to_string();
        let mut cp = JsonPeer::start("osdp_cp_ref.py", &[port, "1".into(), KEY.into()])
            .await
            .context("libosdp reference CP")?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let h = card_to_output(bus.pds(), reads).await;
        cp.stop().await;
        bus.down().await;
        h?
    };

    let mut bus = OsdpBus::new(dir.path(), &[&format!("1:{KEY}")]);
    bus.try_up().await.context("OSDP peer")?;
    let text = osdp_estate(&dir.path().join("data"), &bus.port(), &key);
    let cfg = Config::parse(&text, dir.path()).map_err(|e| anyhow!("{e:?}"))?;
    let gw = Gateway::start(cfg).await?;
    wait_online(&gw, "lobby-reader").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ours = card_to_output(bus.pds(), reads).await;
    gw.stop().await;
    bus.down().await;
    let ours = ours?;
    report(
        &format!("osdp: card read → decision → output command at the PD, 115200 baud, secure channel, {reads} reads (goal p99 ≤ 100 ms)"),
        &ours,
        "osdp: reference, libosdp's own CP on the same PD",
        &reference,
    );
    Ok(())
}

pub async fn plate(pushes: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut io = ModbusPeer::tcp(dir.path())?;
    io.try_up().await.context("Modbus peer")?;
    let secret = dir.path().join("cam.secret");
    std::fs::write(&secret, "bench-secret-1")?;
    let http = free_port()?;
    let text = plate_estate(
        &dir.path().join("data"),
        http,
        &secret,
        io.tcp_port.unwrap_or(0),
        100,
    );
    let cfg = Config::parse(&text, dir.path()).map_err(|e| anyhow!("{e:?}"))?;
    let gw = Gateway::start(cfg).await?;
    let result = async {
        wait_online(&gw, "barrier-io").await?;
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{http}/plates/gate-cam");
        let mut to_coil = hdrhistogram::Histogram::<u64>::new(3)?;
        let mut to_reply = hdrhistogram::Histogram::<u64>::new(3)?;
        let body = json!({"plate": "京A12345", "colour": "blue", "confidence": 0.95}).to_string();
        // Reference: the same HTTP stack and secret check, nothing to store
        // (the camera's heartbeat): what answering only once stored costs.
        let mut heartbeat = hdrhistogram::Histogram::<u64>::new(3)?;
        for i in 0..pushes {
            let t0 = Instant::now();
            let r = client
                .post(format!("{url}/heartbeat"))
                .header("authorization", "Bearer bench-secret-1")
                .send()
                .await?;
            heartbeat.record(t0.elapsed().as_micros() as u64)?;
            if !r.status().is_success() {
                return Err(anyhow!("heartbeat {i}: HTTP {}", r.status()));
            }
        }
        for i in 0..pushes {
            let server = io.server();
            server.collect();
            let t0 = Instant::now();
            let r = client
                .post(&url)
                .header("authorization", "Bearer bench-secret-1")
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await?;
            to_reply.record(t0.elapsed().as_micros() as u64)?;
            if !r.status().is_success() {
                return Err(anyhow!("push {i}: HTTP {}", r.status()));
            }
            server
                .wait_for(WAIT, |v| v["coil"] == 0 && v["value"] == true)
                .await
                .ok_or_else(|| anyhow!("push {i}: the coil was not written"))?;
            to_coil.record(t0.elapsed().as_micros() as u64)?;
            // The pulse ends (coil off) before the next car.
            server
                .wait_for(WAIT, |v| v["coil"] == 0 && v["value"] == false)
                .await
                .ok_or_else(|| anyhow!("push {i}: the pulse did not end"))?;
        }
        report(
            &format!("plate: push → vehicle decision → barrier coil written (Modbus TCP; the release waits up to 20 ms for the pass's record), {pushes} pushes"),
            &to_coil,
            "plate: reference, the push's HTTP round trip (answered once its record is durable)",
            &to_reply,
        );
        report(
            "plate: push answered once its record is durable (fsync)",
            &to_reply,
            "plate: reference, a heartbeat's round trip (same HTTP and secret check, nothing stored)",
            &heartbeat,
        );
        Ok(())
    }
    .await;
    gw.stop().await;
    io.down().await;
    result
}
