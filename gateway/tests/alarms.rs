//! Alarm rules end to end with simulated devices and a real mosquitto: each alarm
//! appears once on `P/alarms/{type}` with the contract's payload, escalates when
//! nobody acknowledges it, is acknowledged from the platform (recorded and
//! published), clears as its rule says, and stays open across a restart.

mod common;

use common::{config, Msg, Sub};
use gateway::broker::{BrokerOptions, Mosquitto};
use gateway::config::Config;
use gateway::daemon::Gateway;
use gateway::engine::{Query, QueryResult};
use std::path::Path;
use std::time::Duration;

const P: &str = "cm/est1/gw1";

async fn start(dir: &Path, text: &str) -> Gateway {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    Gateway::start(Config::load(&path).unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap()
}

fn alarm(t: &'static str, state: &'static str) -> impl Fn(&Msg) -> bool {
    move |m| m.topic == format!("{P}/alarms/{t}") && m.json["state"] == state
}

fn count(sub: &Sub, t: &str, state: &str) -> usize {
    sub.all()
        .iter()
        .filter(|m| m.topic == format!("{P}/alarms/{t}") && m.json["state"] == state)
        .count()
}

async fn open_alarms(gw: &Gateway) -> Vec<gateway::journal::AlarmRecord> {
    match gw.engine.query(Query::OpenAlarms).await {
        Some(QueryResult::Alarms(a)) => a,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn forced_door_escalates_is_acked_from_the_platform_and_clears() {
    let broker = Mosquitto::start(BrokerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = Sub::start(broker.port, &format!("{P}/#"), "t-alarm-1", false).await;
    let panel = r#"
[[devices]]
id = "panel-1"
driver = "sim"
door = "main"
script = [
  { at_ms = 500, input = "door_contact", active = true },
  { at_ms = 900, input = "door_contact", active = false },
]
"#;
    let extra = "[alarms]\nescalate_critical_s = 2\nescalate_repeat = 2\n";
    let gw = start(
        dir.path(),
        &config(dir.path(), Some(broker.port), panel, extra),
    )
    .await;

    let raised = sub
        .wait_for(
            "door_forced raised",
            Duration::from_secs(10),
            alarm("door_forced", "raised"),
        )
        .await
        .json;
    for field in [
        "id", "seq", "ts", "type", "state", "severity", "device", "door", "zone", "event", "alarm",
        "count", "message",
    ] {
        assert!(!raised[field].is_null(), "`{field}` missing: {raised}");
    }
    assert_eq!(raised["severity"], "critical");
    assert_eq!(raised["device"], "panel-1");
    assert_eq!(raised["door"], "main");
    assert!(raised["message"].as_str().unwrap().contains("Main gate"));
    // The event that raised it was published too, with the id the alarm names.
    let input = sub
        .wait_for("door contact event", Duration::from_secs(5), |m| {
            m.json["id"] == raised["event"]
        })
        .await;
    assert_eq!(input.json["input"]["input"], "door_contact");
    let id = raised["alarm"].as_str().unwrap().to_owned();

    // Not acknowledged: escalated after 2 s, then again, and no more than 2 times.
    sub.wait_for(
        "escalation",
        Duration::from_secs(10),
        alarm("door_forced", "escalated"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(count(&sub, "door_forced", "escalated"), 2);
    assert_eq!(
        count(&sub, "door_forced", "raised"),
        1,
        "raised once, not a flood"
    );

    // Acknowledged from the platform: recorded with who and the note, then cleared (momentary).
    sub.publish(
        &format!("{P}/cmd/alarm.ack"),
        format!(
            r#"{{"request_id":"a1","alarm":"{id}","by":"ops-li","note":"door checked, wind"}}"#
        ),
    )
    .await;
    let reply = sub
        .wait_for("ack reply", Duration::from_secs(10), |m| {
            m.json["request_id"] == "a1" && m.topic.contains("/reply/")
        })
        .await;
    assert_eq!(reply.json["ok"], true, "{}", reply.json);
    let acked = sub
        .wait_for(
            "acked",
            Duration::from_secs(10),
            alarm("door_forced", "acked"),
        )
        .await
        .json;
    assert_eq!(acked["alarm"], id.as_str());
    assert_eq!(acked["ack"]["by"], "platform/ops-li");
    assert_eq!(acked["ack"]["note"], "door checked, wind");
    assert!(acked["ack"]["ts"].is_string());
    let cleared = sub
        .wait_for(
            "cleared",
            Duration::from_secs(10),
            alarm("door_forced", "cleared"),
        )
        .await
        .json;
    assert!(cleared["seq"].as_u64() > acked["seq"].as_u64());
    assert!(open_alarms(&gw).await.is_empty());

    // Bad acks: unknown id, already cleared, malformed id: error replies, nothing changes.
    let before = gw.journal.last_committed();
    for (rid, alarm_id) in [
        ("a2", "0192f1a0-0000-7000-8000-000000000000"),
        ("a3", id.as_str()),
        ("a4", "not-a-uuid"),
    ] {
        sub.publish(
            &format!("{P}/cmd/alarm.ack"),
            format!(r#"{{"request_id":"{rid}","alarm":"{alarm_id}","by":"ops"}}"#),
        )
        .await;
        let r = sub
            .wait_for(rid, Duration::from_secs(10), |m| {
                m.json["request_id"] == rid && m.topic.contains("/reply/")
            })
            .await;
        assert_eq!(r.json["ok"], false, "{}", r.json);
        assert!(r.json["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.journal.last_committed(), before);
    gw.stop().await;
}

#[tokio::test]
async fn open_alarms_survive_a_restart_and_can_be_acked_after_it() {
    let broker = Mosquitto::start(BrokerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = Sub::start(broker.port, &format!("{P}/#"), "t-alarm-2", false).await;
    // A smoke sensor that trips and flaps (one alarm, counted), then stays active.
    let smoke = r#"
[[devices]]
id = "smoke-b1"
name = "Smoke detector B1 stairwell"
driver = "sim"
zone = "estate"
profile = "sensors"
script = [
  { at_ms = 300, sensor = "smoke", active = true },
  { at_ms = 400, sensor = "smoke", active = false },
  { at_ms = 500, sensor = "smoke", active = true },
  { at_ms = 600, sensor = "smoke", active = false },
  { at_ms = 700, sensor = "smoke", active = true },
]
"#;
    let text = config(dir.path(), Some(broker.port), smoke, "");
    let gw = start(dir.path(), &text).await;
    let raised = sub
        .wait_for(
            "smoke raised",
            Duration::from_secs(10),
            alarm("smoke", "raised"),
        )
        .await
        .json;
    assert!(
        raised["message"]
            .as_str()
            .unwrap()
            .contains("Smoke detector B1 stairwell"),
        "{raised}"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let open = open_alarms(&gw).await;
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0].count, 3,
        "a flapping sensor is one alarm with a count"
    );
    assert_eq!(count(&sub, "smoke", "raised"), 1);
    // Smoke needs an acknowledgement: the sensor clearing does not clear it.
    assert_eq!(count(&sub, "smoke", "cleared"), 0);
    gw.stop().await;

    // Restarted; the detector now reports normal. The alarm is still open (smoke
    // needs an acknowledgement), with the same id.
    let normal = r#"
[[devices]]
id = "smoke-b1"
driver = "sim"
zone = "estate"
profile = "sensors"
script = [{ at_ms = 100, sensor = "smoke", active = false }]
"#;
    let gw = start(
        dir.path(),
        &config(dir.path(), Some(broker.port), normal, ""),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let open = open_alarms(&gw).await;
    assert_eq!(open.len(), 1, "open alarms survive a restart");
    // Commands reach a gateway that is online (subscribed) again.
    sub.wait_count("no second online status", Duration::from_secs(10), 2, |m| {
        m.json["state"] == "online"
    })
    .await;
    assert_eq!(open[0].alarm.to_string(), raised["alarm"].as_str().unwrap());
    sub.publish(
        &format!("{P}/cmd/alarm.ack"),
        format!(
            r#"{{"request_id":"s1","alarm":"{}","by":"guard-wu","note":"false alarm, cooking"}}"#,
            open[0].alarm
        ),
    )
    .await;
    let acked = sub
        .wait_for(
            "acked after restart",
            Duration::from_secs(10),
            alarm("smoke", "acked"),
        )
        .await
        .json;
    assert_eq!(acked["alarm"], raised["alarm"]);
    // Acknowledged and the condition gone: cleared.
    sub.wait_for(
        "cleared",
        Duration::from_secs(10),
        alarm("smoke", "cleared"),
    )
    .await;
    assert!(open_alarms(&gw).await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn device_offline_held_open_ebike_and_tailgating() {
    let broker = Mosquitto::start(BrokerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = Sub::start(broker.port, &format!("{P}/#"), "t-alarm-3", false).await;
    let devices = r#"
[[devices]]
id = "panel-1"
driver = "sim"
door = "main"
counts_passages = true
script = [
  { at_ms = 300, read = "card:100" },
  { at_ms = 500, passage = 2 },
  { at_ms = 700, link = "down" },
  { at_ms = 1500, link = "up" },
]

[[devices]]
id = "lift-rfid"
driver = "sim"
door = "lift"
profile = "ebike_reader"
script = [
  { at_ms = 400, tag = "E28011606000020A1B2C3D4E", presence = "arrived" },
  { at_ms = 450, tag = "E28011606000020A1B2C3D4E", presence = "moved" },
  { at_ms = 1200, tag = "E28011606000020A1B2C3D4E", presence = "departed" },
]

[[devices]]
id = "gym-panel"
driver = "sim"
door = "gym"
script = [
  { at_ms = 300, input = "door_contact", active = true },
  { at_ms = 3500, input = "door_contact", active = false },
]

[[doors]]
id = "lift"
zone = "estate"
kind = "elevator"

[[doors]]
id = "gym"
zone = "estate"
held_open_s = 1
"#;
    let gw = start(
        dir.path(),
        &config(dir.path(), Some(broker.port), devices, ""),
    )
    .await;
    let t = Duration::from_secs(10);
    let tg = sub
        .wait_for("tailgating", t, alarm("tailgating", "raised"))
        .await
        .json;
    assert!(
        tg["message"]
            .as_str()
            .unwrap()
            .contains("2 passed on 1 grant"),
        "{tg}"
    );
    let eb = sub
        .wait_for("ebike", t, alarm("ebike_in_elevator", "raised"))
        .await
        .json;
    assert_eq!(eb["door"], "lift");
    sub.wait_for(
        "ebike cleared on departure",
        t,
        alarm("ebike_in_elevator", "cleared"),
    )
    .await;
    sub.wait_for("offline", t, alarm("device_offline", "raised"))
        .await;
    sub.wait_for("back online", t, alarm("device_offline", "cleared"))
        .await;
    sub.wait_for("forced gym door", t, alarm("door_forced", "raised"))
        .await;
    sub.wait_for("held open", t, alarm("door_held_open", "raised"))
        .await;
    sub.wait_for(
        "held open cleared when closed",
        t,
        alarm("door_held_open", "cleared"),
    )
    .await;
    for (ty, n) in [
        ("tailgating", 1),
        ("ebike_in_elevator", 1),
        ("device_offline", 1),
        ("door_held_open", 1),
    ] {
        assert_eq!(count(&sub, ty, "raised"), n, "{ty} raised once");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_long_outage_raises_buffer_high_then_data_loss_never_silently() {
    use gateway::broker::free_port;
    let port = free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // ~6,000 records with the broker away, a 1 MB budget, checks every second.
    let devices = common::scripted_reader("r-a", 3000, 100, 1)
        + &common::scripted_reader("r-b", 3000, 100, 1);
    let extra = "[retention]\nmax_disk_mb = 1\nbuffer_high = 500\ncheck_every_s = 1\n";
    let gw = start(dir.path(), &config(dir.path(), Some(port), &devices, extra)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (buffer, loss) = loop {
        let open = open_alarms(&gw).await;
        let find =
            |t: gateway::journal::AlarmType| open.iter().find(|a| a.alarm_type == t).cloned();
        if let (Some(b), Some(l)) = (
            find(gateway::journal::AlarmType::BufferHigh),
            find(gateway::journal::AlarmType::DataLoss),
        ) {
            break (b, l);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected buffer_high and data_loss, open: {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        buffer.message.contains("wait to be forwarded"),
        "{}",
        buffer.message
    );
    let lost: u64 = loss
        .message
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(lost > 0, "{}", loss.message);
    // The oldest records went; the journal stays near its budget (checked every second).
    assert!(gw.journal.first_seq() > 1);
    assert!(
        gw.journal.stored_bytes() < 2 * 1024 * 1024,
        "budget kept: {}",
        gw.journal.stored_bytes()
    );
    // The broker comes back: the alarms reach the platform, the backlog drains,
    // buffer_high clears by itself; data_loss waits for an acknowledgement.
    let _broker = Mosquitto::start(BrokerOptions {
        port,
        ..Default::default()
    })
    .unwrap();
    let sub = Sub::start(port, &format!("{P}/#"), "t-alarm-4", false).await;
    sub.wait_for("data_loss", Duration::from_secs(15), |m| {
        m.topic == format!("{P}/alarms/data_loss")
            && (m.json["state"] == "raised" || m.json["state"] == "escalated")
    })
    .await;
    sub.wait_for(
        "buffer_high cleared",
        Duration::from_secs(30),
        alarm("buffer_high", "cleared"),
    )
    .await;
    assert!(open_alarms(&gw)
        .await
        .iter()
        .any(|a| a.alarm_type == gateway::journal::AlarmType::DataLoss));
    gw.stop().await;
}
