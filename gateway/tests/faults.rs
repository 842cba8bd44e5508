//! The gateway on a disk that fills up, against real peers (a plate camera
//! pushing over HTTP, a pymodbus barrier controller): the barrier still lifts,
//! a push is answered 200 only once its record is durable (503 meanwhile, so
//! the camera sends it again), `/healthz` says `degraded` with the reason, and
//! once space is back every record is written in order without a gap, without
//! a restart. `P/status` says `degraded` to the platform meanwhile.

mod common;
#[path = "../../drivers/tests/support/mod.rs"]
mod support;

use common::Tmpfs;
use gateway::bench::devices::plate_estate;
use gateway::config::Config;
use gateway::daemon::Gateway;
use gateway::journal::{EventAction, RecordBody};
use serde_json::json;
use std::time::Duration;
use support::{free_port, ModbusPeer};

const WAIT: Duration = Duration::from_secs(15);

fn decisions(gw: &Gateway) -> Vec<(u64, String)> {
    gw.journal
        .range(0, u64::MAX, false)
        .filter_map(|(seq, _)| gw.journal.get(seq).ok().flatten())
        .filter_map(|r| match r.body {
            RecordBody::Event(e) if e.action == EventAction::Decision => {
                e.credential.map(|c| (r.seq, c.value))
            }
            _ => None,
        })
        .collect()
}

fn barrier_online(gw: &Gateway) -> bool {
    gw.journal
        .range(0, u64::MAX, false)
        .filter_map(|(seq, _)| gw.journal.get(seq).ok().flatten())
        .any(|r| matches!(r.body, RecordBody::Event(e) if e.action == EventAction::Online && e.device.as_str() == "barrier-io"))
}

/// A push with the camera's photo (its snapshot fills the disk sooner).
async fn push(client: &reqwest::Client, http: u16, plate: &str) -> reqwest::StatusCode {
    use base64::Engine;
    let jpeg = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../drivers/tests/data/vehicle.jpg"),
    )
    .expect("vehicle.jpg");
    // Each photo differs by a byte, so each is stored (snapshots are deduplicated).
    let mut jpeg = jpeg;
    jpeg.extend_from_slice(uuid::Uuid::now_v7().as_bytes());
    let image = base64::engine::general_purpose::STANDARD.encode(&jpeg);
    client
        .post(format!("http://127.0.0.1:{http}/plates/gate-cam"))
        .header("authorization", "Bearer cam-secret-123")
        .header("content-type", "application/json")
        .body(
            json!({"plate": plate, "colour": "blue", "confidence": 0.95, "image": image})
                .to_string(),
        )
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("push")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_degrades_the_gateway_and_nothing_acknowledged_is_lost() {
    let Some(disk) = Tmpfs::mount(24) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut io = ModbusPeer::tcp(dir.path()).unwrap();
    io.up().await;
    let secret = dir.path().join("cam.secret");
    std::fs::write(&secret, "cam-secret-123").unwrap();
    let http = free_port();
    // The journal's folder on the small disk, the rest of data_dir not: the
    // journal recovers in place; a failed main store asks for a restart
    // instead (sled cannot reopen a store others hold), not tested here.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(disk.path().join("journal")).unwrap();
    std::os::unix::fs::symlink(disk.path().join("journal"), data.join("journal")).unwrap();
    let text = plate_estate(&data, http, &secret, io.tcp_port.unwrap(), 200);
    let broker = gateway::broker::Mosquitto::start(Default::default()).expect("mosquitto");
    let platform =
        common::Sub::start(broker.port, "cm/bench/bench/status", "platform", false).await;
    let text = format!(
        "{text}\n[console]\nlisten = \"127.0.0.1:0\"\n[mqtt]\nurl = \"{}\"\n",
        broker.url()
    );
    let cfg = Config::parse(&text, dir.path()).expect("config");
    let gw = Gateway::start(cfg).await.expect("gateway");
    let console = gw.console_addr.expect("console");
    let client = reqwest::Client::new();
    let healthz = || async {
        let r = client
            .get(format!("http://{console}/healthz"))
            .send()
            .await
            .expect("healthz");
        let status = r.status();
        let text = r.text().await.expect("body");
        (
            status,
            serde_json::from_str::<serde_json::Value>(&text).expect("json"),
        )
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while !barrier_online(&gw) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the barrier did not come online"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(push(&client, http, "京A12345").await, 200);
    assert_eq!(healthz().await.0, 200);

    let filler = disk.fill();
    // The disk is full. sled may still fit a few records in pages it had
    // already; once it needs new ones, a push is refused after 5 s (not
    // stored yet, the camera sends it again) ...
    let mut pushes = 1;
    let mut refused = false;
    for _ in 0..200 {
        io.server().collect();
        let status = push(&client, http, "京A12345").await;
        pushes += 1;
        if status == 503 {
            refused = true;
            break;
        }
        assert_eq!(status, 200);
    }
    assert!(
        refused,
        "a push was answered 200 although the disk was full"
    );
    // ... but the barrier lifted (a resident does not wait for a disk) ...
    io.server()
        .wait_for(WAIT, |v| v["coil"] == 0 && v["value"] == true)
        .await
        .expect("the barrier lifted while the disk was full");
    // ... and the gateway says why it is degraded.
    let (status, body) = healthz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["state"], "degraded", "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or("")
            .contains("cannot write"),
        "{body}"
    );

    // Space comes back: the gateway recovers by itself, and the record of the
    // push answered 503 is there too (the camera's resend adds a second).
    std::fs::remove_file(filler).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = healthz().await;
        if status == 200 {
            assert_eq!(body["state"], "ok");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(push(&client, http, "京A12345").await, 200);
    pushes += 1;
    platform
        .wait_count("P/status not online again", WAIT, 2, |m| {
            m.json["state"] == "online"
        })
        .await;
    let seen = decisions(&gw);
    assert_eq!(
        seen.len(),
        pushes,
        "every push decided is journaled: {seen:?}"
    );
    let seqs: Vec<u64> = gw
        .journal
        .range(0, u64::MAX, false)
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        seqs,
        (1..=gw.journal.last_committed()).collect::<Vec<_>>(),
        "gap-free"
    );
    let stop = tokio::time::timeout(Duration::from_secs(20), gw.stop()).await;
    assert!(stop.is_ok(), "the gateway stops within 20 s");
    io.down().await;
}
