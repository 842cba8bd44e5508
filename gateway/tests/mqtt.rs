//! The gateway against a real mosquitto started by each test on a free port:
//! events with the contract's fields, platform commands and replies, broker
//! outages and gateway crashes under traffic (nothing journaled is lost),
//! hostile commands (retained, oversized, duplicated) over MQTT 5 and 3.1.1.

mod common;

use common::{config, scripted_reader, Daemon, Delivery, Sub};
use gateway::broker::{BrokerOptions, Mosquitto};
use gateway::config::Config;
use gateway::daemon::Gateway;
use serde_json::{json, Value};
use std::time::Duration;

const P: &str = "cm/est1/gw1";

async fn start(text: &str, dir: &std::path::Path) -> Gateway {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    Gateway::start(cfg).await.expect("gateway start")
}

fn reply_to(id: &'static str) -> impl Fn(&common::Msg) -> bool {
    move |m| m.topic.starts_with(&format!("{P}/reply/")) && m.json["request_id"] == id
}

#[tokio::test]
async fn access_event_has_the_contract_fields_and_door_open_is_executed() {
    let broker = Mosquitto::start(BrokerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = Sub::start(broker.port, &format!("{P}/#"), "t-sub", false).await;
    let gw = start(
        &config(
            dir.path(),
            Some(broker.port),
            &scripted_reader("reader-1", 1, 1500, 1),
            "",
        ),
        dir.path(),
    )
    .await;

    let status = sub
        .wait_for("online status", Duration::from_secs(10), |m| {
            m.topic == format!("{P}/status")
        })
        .await;
    assert_eq!(status.json["state"], "online");
    assert!(status.json["version"].is_string());

    let ev = sub
        .wait_for("the scripted card read", Duration::from_secs(10), |m| {
            m.topic == format!("{P}/events/access") && m.json["action"] == "decision"
        })
        .await
        .json;
    for field in [
        "id",
        "seq",
        "ts",
        "estate",
        "gateway",
        "kind",
        "device",
        "door",
        "direction",
        "credential",
        "person",
        "decision",
        "offline",
    ] {
        assert!(!ev[field].is_null(), "field `{field}` missing in {ev}");
    }
    assert_eq!(ev["estate"], "est1");
    assert_eq!(ev["gateway"], "gw1");
    assert_eq!(ev["kind"], "access");
    assert_eq!(ev["device"], "reader-1");
    assert_eq!(ev["door"], "main");
    assert_eq!(ev["direction"], "in");
    assert_eq!(ev["credential"], json!({"type": "card", "value": "100"}));
    assert_eq!(ev["person"]["id"], "r1");
    assert_eq!(ev["person"]["group"], "resident");
    assert_eq!(
        ev["decision"],
        json!({"granted": true, "reason": "granted"})
    );
    assert_eq!(ev["offline"], false);
    let ts = ev["ts"].as_str().unwrap();
    assert!(
        ts.ends_with('Z') && ts.len() == 24,
        "RFC 3339 UTC with ms: {ts}"
    );
    assert!(uuid::Uuid::parse_str(ev["id"].as_str().unwrap()).is_ok());

    // Remote open from the platform: answered, journaled with who, and executed by the device.
    sub.publish(
        &format!("{P}/cmd/door.open"),
        r#"{"request_id":"r1","door":"main","by":"ops-center"}"#,
    )
    .await;
    let reply = sub
        .wait_for("door.open reply", Duration::from_secs(10), reply_to("r1"))
        .await;
    assert_eq!(reply.topic, format!("{P}/reply/door.open"));
    assert_eq!(reply.json["ok"], true, "{}", reply.json);
    assert!(reply.json["error"].is_null());
    let release = sub
        .wait_for("the remote release event", Duration::from_secs(10), |m| {
            m.json["action"] == "door_release"
        })
        .await
        .json;
    assert_eq!(release["by"], "platform/ops-center");
    assert_eq!(release["credential"]["type"], "remote");
    // The simulated door panel got the pulse and reports its door opening.
    sub.wait_for(
        "the door opening after the remote open",
        Duration::from_secs(10),
        |m| {
            m.json["input"]["input"] == "door_contact"
                && m.json["input"]["active"] == true
                && m.json["seq"].as_u64() > release["seq"].as_u64()
        },
    )
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn bad_commands_get_error_replies_and_change_nothing() {
    let broker = Mosquitto::start(BrokerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = Sub::start(broker.port, &format!("{P}/#"), "t-sub-bad", false).await;
    // A retained command waiting at the broker: refused when the gateway subscribes
    // (it would otherwise run again at every reconnect).
    sub.publish_retained(
        &format!("{P}/cmd/door.open"),
        r#"{"request_id":"b9","door":"main"}"#,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let extra = "";
    // MQTT 3.1.1: the retained command reaches the gateway (5 keeps it away,
    // see `retained_and_oversized_commands_never_run_nor_cut_the_link`).
    let text = config(dir.path(), Some(broker.port), &scripted_reader("reader-1", 0, 0, 1), extra)
        .replace("keep_alive_s = 5\n", "keep_alive_s = 5\nprotocol = \"3.1.1\"\nmax_command_kib = 4\ncommands = [\"person.upsert\", \"door.open\", \"alarm.ack\"]\n");
    let gw = start(&text, dir.path()).await;
    sub.wait_for("online", Duration::from_secs(10), |m| {
        m.json["state"] == "online"
    })
    .await;
    let m = sub
        .wait_for("retained refusal", Duration::from_secs(10), reply_to("b9"))
        .await;
    assert_eq!(m.json["ok"], false, "{}", m.json);
    assert!(m.json["error"].as_str().unwrap().contains("retained"));
    sub.publish_retained(&format!("{P}/cmd/door.open"), Vec::<u8>::new())
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = gw.journal.last_committed();

    let cases: [(&str, String, &str, &str); 8] = [
        ("door.open", "{not json".into(), "b1", "invalid"),
        ("door.open", r#"{"request_id":"b2","door":42}"#.into(), "b2", "invalid"),
        ("door.open", r#"{"request_id":"b3","door":"nope"}"#.into(), "b3", "not_found"),
        ("alarm.ack", r#"{"request_id":"b4","alarm":"0192f1a0-0000-7000-8000-000000000000","by":"x"}"#.into(), "b4", "not_found"),
        ("self.destruct", r#"{"request_id":"b5"}"#.into(), "b5", "unknown_command"),
        ("person.delete", r#"{"request_id":"b6","id":"r1"}"#.into(), "b6", "unauthorized"),
        (
            "person.upsert",
            format!(r#"{{"request_id":"b7","person":{{"id":"x","name":"{}","group":"resident"}}}}"#, "n".repeat(8000)),
            "b7",
            "too_large",
        ),
        (
            "person.upsert",
            r#"{"request_id":"b8","person":{"id":"x","name":"X","group":"resident","credentials":[{"type":"card","value":"100"}]}}"#.into(),
            "b8",
            "conflict",
        ),
    ];
    for (name, payload, _, _) in &cases {
        sub.publish(&format!("{P}/cmd/{name}"), payload.clone())
            .await;
    }
    for (name, _, id, code) in &cases {
        if *id == "b1" {
            // Broken JSON has no readable request_id: the reply says so with a null id.
            let m = sub
                .wait_for("reply to broken JSON", Duration::from_secs(10), |m| {
                    m.topic == format!("{P}/reply/{name}") && m.json["request_id"].is_null()
                })
                .await;
            assert_eq!(m.json["ok"], false);
            assert_eq!(m.json["code"], *code);
            assert!(m.json["error"].as_str().unwrap().len() > 5);
            continue;
        }
        let m = sub
            .wait_for(&format!("reply {id}"), Duration::from_secs(10), |m| {
                m.topic == format!("{P}/reply/{name}") && m.json["request_id"] == *id
            })
            .await;
        assert_eq!(m.json["ok"], false, "{id}: {}", m.json);
        assert_eq!(m.json["code"], *code, "{id}: {}", m.json);
    }
    let b2 = sub
        .wait_for("b2", Duration::from_secs(1), reply_to("b2"))
        .await;
    assert!(
        b2.json["error"].as_str().unwrap().starts_with("door:"),
        "{}",
        b2.json
    );

    // Nothing was journaled by the refused commands, and the gateway still works.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        gw.journal.last_committed(),
        before,
        "refused commands must not change anything"
    );
    sub.publish(
        &format!("{P}/cmd/door.open"),
        r#"{"request_id":"ok1","door":"main"}"#,
    )
    .await;
    let m = sub
        .wait_for(
            "good command after bad ones",
            Duration::from_secs(10),
            reply_to("ok1"),
        )
        .await;
    assert_eq!(m.json["ok"], true);
    // A redelivered request id is answered again, not run twice.
    sub.publish(
        &format!("{P}/cmd/door.open"),
        r#"{"request_id":"ok1","door":"main"}"#,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replies = sub
        .all()
        .iter()
        .filter(|m| m.topic.starts_with(&format!("{P}/reply/")) && m.json["request_id"] == "ok1")
        .count();
    let releases = sub
        .all()
        .iter()
        .filter(|m| m.json["action"] == "door_release")
        .count();
    assert_eq!((replies, releases), (2, 1));
    gw.stop().await;
}

#[tokio::test]
async fn broker_outage_under_traffic_loses_nothing_and_keeps_order() {
    let mut broker = Mosquitto::start(BrokerOptions {
        persistent: true,
        ..Default::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A subscriber whose session the broker keeps (and queues for) across the restart.
    let sub = Sub::start(broker.port, &format!("{P}/#"), "t-sub-outage", true).await;
    // 3 readers × 300 reads over 6 s, plus the doors they open: ~2,000 records.
    let devices = [
        scripted_reader("r-a", 300, 200, 20),
        scripted_reader("r-b", 300, 210, 20),
        scripted_reader("r-c", 300, 220, 20),
    ]
    .join("\n");
    let gw = start(
        &config(dir.path(), Some(broker.port), &devices, ""),
        dir.path(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    broker.terminate();
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.restart().unwrap();
    // Let the script finish and the backlog drain.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let target = loop {
        let committed = gw.journal.last_committed();
        let up = gw.uplink.as_ref().unwrap().forwarded();
        let quiet = gw.journal.queued() == 0;
        // All 900 reads decided (plus starts, doors), and everything acknowledged.
        if quiet && up.events.min(up.alarms) >= committed && committed >= 900 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if gw.journal.last_committed() == committed {
                break committed;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "backlog not drained: committed {committed}, forwarded {up:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = Delivery::of(&sub.all(), P);
        if (1..=target).all(|s| d.counts.contains_key(&s)) || tokio::time::Instant::now() > deadline
        {
            d.assert_complete(target);
            println!(
                "outage: {target} records delivered, {} duplicates",
                d.duplicates()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Decisions taken during the outage say so.
    let offline = sub
        .all()
        .iter()
        .filter(|m| m.json["offline"] == true)
        .count();
    assert!(
        offline > 0,
        "decisions during the outage must carry offline = true"
    );
    gw.stop().await;
}

#[tokio::test]
async fn sigkill_under_traffic_loses_nothing_journaled() {
    let broker = Mosquitto::start(BrokerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = Sub::start(broker.port, &format!("{P}/#"), "t-sub-kill", false).await;
    // Each run replays the script: 400 reads over 4 s from two readers.
    let devices = [
        scripted_reader("r-a", 200, 100, 20),
        scripted_reader("r-b", 200, 110, 20),
    ]
    .join("\n");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(dir.path(), Some(broker.port), &devices, "")).unwrap();

    let kills = 4;
    for i in 0..kills {
        let mut d = Daemon::spawn(&path);
        tokio::time::sleep(Duration::from_millis(1200 + 450 * i)).await;
        d.kill9().await;
    }
    // A last run that finishes its script, then a clean stop.
    let mut d = Daemon::spawn(&path);
    tokio::time::sleep(Duration::from_secs(7)).await;
    let status = d.terminate().await;
    assert!(status.success(), "gatewayd exited with {status}");

    let (_db, journal) = common::read_journal(dir.path());
    let last = journal.last_committed();
    let acked = journal
        .cursor("uplink.events")
        .unwrap()
        .min(journal.cursor("uplink.alarms").unwrap());
    // The only records not yet forwarded are the ones written after the uplink stopped.
    let tail: Vec<Value> = (acked + 1..=last)
        .filter_map(|s| journal.get(s).unwrap())
        .map(|r| serde_json::from_slice(&r.to_json().unwrap()).unwrap())
        .collect();
    let odd: Vec<String> = tail
        .iter()
        .filter(|r| !(r["kind"] == "system" || r["kind"] == "input"))
        .map(|r| format!("{} {} {}", r["seq"], r["kind"], r["action"]))
        .collect();
    assert!(
        odd.is_empty() && tail.len() < 20,
        "the unforwarded tail ({} records) should only hold shutdown records: {odd:?}",
        tail.len()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivery = Delivery::of(&sub.all(), P);
    delivery.assert_complete(acked);
    let started = sub
        .all()
        .iter()
        .filter(|m| m.json["action"] == "gateway_started")
        .count();
    assert_eq!(
        started,
        kills as usize + 1,
        "every run's start record arrived"
    );
    println!(
        "sigkill: {kills} kills, {last} records journaled, {acked} forwarded and all received, {} duplicates after crashes",
        delivery.duplicates()
    );
    journal.close(std::time::Duration::from_secs(10)).await;
}

#[tokio::test]
async fn status_is_retained_with_last_will_and_stop() {
    let broker = Mosquitto::start(BrokerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(dir.path(), Some(broker.port), "", "")).unwrap();
    let topic = format!("{P}/status");

    let mut d = Daemon::spawn(&path);
    let sub = Sub::start(broker.port, &topic, "t-status-1", false).await;
    sub.wait_for("online", Duration::from_secs(10), |m| {
        m.json["state"] == "online"
    })
    .await;
    d.kill9().await;
    sub.wait_for("last will", Duration::from_secs(15), |m| {
        m.json["state"] == "offline"
    })
    .await;

    let mut d = Daemon::spawn(&path);
    sub.wait_count(
        "second run never said online",
        Duration::from_secs(10),
        2,
        |m| m.json["state"] == "online",
    )
    .await;
    assert!(d.terminate().await.success());
    sub.wait_for("stopped", Duration::from_secs(10), |m| {
        m.json["state"] == "stopped"
    })
    .await;
    // A newcomer sees the retained state.
    let late = Sub::start(broker.port, &topic, "t-status-2", false).await;
    let m = late
        .wait_for("retained stopped", Duration::from_secs(5), |m| {
            m.json["state"] == "stopped"
        })
        .await;
    assert!(m.retain);
}

/// The `online` status messages seen: one per connection of the gateway.
fn connections(sub: &Sub) -> usize {
    sub.all()
        .iter()
        .filter(|m| m.topic == format!("{P}/status") && m.json["state"] == "online")
        .count()
}

fn count(sub: &Sub, pred: impl Fn(&common::Msg) -> bool) -> usize {
    sub.all().iter().filter(|m| pred(m)).count()
}

#[tokio::test]
async fn retained_and_oversized_commands_never_run_nor_cut_the_link() {
    let broker = Mosquitto::start(BrokerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = Sub::start(broker.port, &format!("{P}/#"), "t-sub-hostile", false).await;
    // Waiting at the broker before the gateway connects: a retained 2 MiB
    // door.open (larger than the gateway takes: max_command_kib = 64) and a
    // retained small door.release_hold.
    let big = format!(
        r#"{{"request_id":"big","door":"main","by":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    sub.publish_retained(&format!("{P}/cmd/door.open"), big.clone())
        .await;
    sub.publish_retained(
        &format!("{P}/cmd/door.release_hold"),
        r#"{"request_id":"ret0","door":"main"}"#,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = config(dir.path(), Some(broker.port), "", "").replace(
        "keep_alive_s = 5\n",
        "keep_alive_s = 5\nprotocol = \"5\"\nmax_command_kib = 64\n",
    );
    let gw = start(&text, dir.path()).await;
    sub.wait_for("online", Duration::from_secs(10), |m| {
        m.json["state"] == "online"
    })
    .await;
    // While connected: the same 2 MiB command again (the broker drops it for
    // the gateway), and a small retained one (arrives flagged: refused).
    sub.publish(&format!("{P}/cmd/door.open"), big).await;
    sub.publish_retained(
        &format!("{P}/cmd/door.open"),
        r#"{"request_id":"ret1","door":"main"}"#,
    )
    .await;
    let m = sub
        .wait_for(
            "retained refusal",
            Duration::from_secs(10),
            reply_to("ret1"),
        )
        .await;
    assert_eq!(m.json["ok"], false, "{}", m.json);
    assert_eq!(m.json["code"], "invalid");
    assert!(m.json["error"].as_str().unwrap().contains("retained"));
    sub.publish(
        &format!("{P}/cmd/door.open"),
        r#"{"request_id":"ok1","door":"main"}"#,
    )
    .await;
    let m = sub
        .wait_for("a normal command", Duration::from_secs(10), reply_to("ok1"))
        .await;
    assert_eq!(m.json["ok"], true, "{}", m.json);
    // Let a reconnect loop show itself, if there were one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(connections(&sub), 1, "the gateway connected more than once");
    assert!(gw.uplink.as_ref().unwrap().connected());
    assert_eq!(
        count(&sub, |m| m.json["action"] == "door_release"),
        1,
        "only ok1 opened the door"
    );
    for id in ["big", "ret0"] {
        assert_eq!(count(&sub, reply_to(id)), 0, "{id} reached the gateway");
    }
    gw.stop().await;
}

#[tokio::test]
async fn duplicates_run_once_and_strangers_inputs_are_bounded() {
    let broker = Mosquitto::start(BrokerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = Sub::start(broker.port, &format!("{P}/#"), "t-sub-dup", false).await;
    let gw = start(&config(dir.path(), Some(broker.port), "", ""), dir.path()).await;
    sub.wait_for("online", Duration::from_secs(10), |m| {
        m.json["state"] == "online"
    })
    .await;

    // A burst of 5 identical commands: one run, five answers.
    let burst = r#"{"request_id":"burst","door":"main","by":"ops"}"#;
    for _ in 0..5 {
        sub.publish(&format!("{P}/cmd/door.open"), burst).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&sub, reply_to("burst")) < 5 {
        assert!(tokio::time::Instant::now() < deadline, "5 replies expected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The same id with another payload: refused, not answered with the old reply.
    sub.publish(
        &format!("{P}/cmd/door.open"),
        r#"{"request_id":"burst","door":"main","by":"someone-else"}"#,
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let conflict = loop {
        if let Some(m) = sub
            .all()
            .into_iter()
            .find(|m| reply_to("burst")(m) && m.json["ok"] == false)
        {
            break m;
        }
        assert!(tokio::time::Instant::now() < deadline, "no conflict reply");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(conflict.json["code"], "conflict", "{}", conflict.json);
    assert!(conflict.json["error"]
        .as_str()
        .unwrap()
        .contains("another door.open payload"));

    // Oversized strings: refused naming the field and the limit; a long
    // request_id is never echoed.
    let long_id = "i".repeat(1100 * 1024);
    sub.publish(
        &format!("{P}/cmd/door.open"),
        format!(r#"{{"request_id":"{long_id}","door":"main"}}"#),
    )
    .await;
    let m = sub
        .wait_for("long request_id refused", Duration::from_secs(10), |m| {
            m.topic == format!("{P}/reply/door.open") && m.json["request_id"].is_null()
        })
        .await;
    assert_eq!(m.json["code"], "invalid");
    assert!(m.json["error"]
        .as_str()
        .unwrap()
        .contains("request_id: longer than 128"));
    let cases = [
        (
            "door.open",
            format!(r#"{{"request_id":"b1","door":"main","by":"{}"}}"#, "b".repeat(1100 * 1024)),
            "b1",
            "by: longer than 64",
        ),
        (
            "alarm.ack",
            format!(
                r#"{{"request_id":"b2","alarm":"0192f1a0-0000-7000-8000-000000000000","note":"{}"}}"#,
                "n".repeat(600)
            ),
            "b2",
            "note: longer than 500",
        ),
        (
            "person.upsert",
            r#"{"request_id":"b3","person":{"id":"r\u200b1","name":"Look Alike","group":"resident"}}"#.to_owned(),
            "b3",
            "person.id: must be 1-64 characters of ASCII letters, digits",
        ),
        (
            "person.upsert",
            format!(
                r#"{{"request_id":"b4","person":{{"id":"p4","name":"Many Cards","group":"resident","credentials":[{}]}}}}"#,
                (0..21).map(|i| format!(r#"{{"type":"card","value":"{}"}}"#, 5000 + i)).collect::<Vec<_>>().join(",")
            ),
            "b4",
            "credentials: at most 20 per person",
        ),
    ];
    for (name, payload, _, _) in &cases {
        sub.publish(&format!("{P}/cmd/{name}"), payload.clone())
            .await;
    }
    for (name, _, id, error) in &cases {
        let m = sub
            .wait_for(id, Duration::from_secs(10), |m| {
                m.topic == format!("{P}/reply/{name}") && m.json["request_id"] == *id
            })
            .await;
        assert_eq!(m.json["code"], "invalid", "{id}: {}", m.json);
        assert!(
            m.json["error"].as_str().unwrap().contains(error),
            "{id}: {}",
            m.json
        );
    }
    // A display name is NFC and loses its control characters.
    sub.publish(
        &format!("{P}/cmd/person.upsert"),
        r#"{"request_id":"n1","person":{"id":"p5","name":"Ame\u0301lie\u001b[31m","group":"resident"}}"#,
    )
    .await;
    let m = sub
        .wait_for("n1", Duration::from_secs(10), reply_to("n1"))
        .await;
    assert_eq!(m.json["result"]["name"], "Amélie[31m", "{}", m.json);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count(&sub, |m| m.json["action"] == "door_release"),
        1,
        "the burst opened the door once"
    );
    let released = (1..=gw.journal.last_committed())
        .filter_map(|seq| gw.journal.get(seq).unwrap())
        .filter(|r| String::from_utf8_lossy(&r.to_json().unwrap()).contains("\"door_release\""))
        .count();
    assert_eq!(released, 1, "one door_release journaled");
    assert_eq!(connections(&sub), 1);
    gw.stop().await;
}

#[tokio::test]
async fn a_record_too_large_to_send_is_skipped_counted_and_alarmed() {
    let broker = Mosquitto::start(BrokerOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = Sub::start(broker.port, &format!("{P}/#"), "t-sub-large", false).await;
    // A packet limit of 1 KiB, and a person whose pass record exceeds it.
    let text = config(
        dir.path(),
        Some(broker.port),
        &scripted_reader("reader-1", 0, 0, 1),
        &format!(
            "[[persons]]\nid = \"r2\"\nname = \"{}\"\ngroup = \"resident\"\ncredentials = [\"card:200\"]\n",
            "𝕏".repeat(200)
        ),
    )
    .replace("keep_alive_s = 5\n", "keep_alive_s = 5\nmax_packet_kib = 1\n");
    let text = text.replace(
        "script = [\n\n]",
        "script = [{ at_ms = 1500, read = \"card:200\" }, { at_ms = 2500, read = \"card:100\" }]",
    );
    assert!(text.contains("card:200\" }"), "{text}");
    let gw = start(&text, dir.path()).await;
    let alarm = sub
        .wait_for("the data_loss alarm", Duration::from_secs(15), |m| {
            m.topic == format!("{P}/alarms/data_loss")
        })
        .await;
    assert!(
        alarm.json["message"]
            .as_str()
            .unwrap()
            .contains("too large to send"),
        "{}",
        alarm.json
    );
    // The lane moved on: the next pass arrives, the large one never.
    sub.wait_for("the next pass", Duration::from_secs(10), |m| {
        m.json["person"]["id"] == "r1" && m.json["action"] == "decision"
    })
    .await;
    assert_eq!(count(&sub, |m| m.json["person"]["id"] == "r2"), 0);
    let up = gw.uplink.as_ref().unwrap();
    assert_eq!(up.unsendable(), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while up.backlog(&gw.journal) > 0 {
        assert!(tokio::time::Instant::now() < deadline, "backlog stays");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(connections(&sub), 1);
    gw.stop().await;
}

/// MQTT 3.1.1 cannot tell the broker the gateway's limit: the broker bounds
/// packets itself (as `deploy/mosquitto/` does), and then an oversized
/// retained command never reaches the gateway either.
#[tokio::test]
async fn over_3_1_1_a_bounded_broker_keeps_oversized_commands_away() {
    // The gateway's limit with max_command_kib = 64: 2 × 64 KiB + 64 KiB.
    let broker = Mosquitto::start(BrokerOptions {
        extra: vec!["max_packet_size 196608".into()],
        ..Default::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = Sub::start(broker.port, &format!("{P}/#"), "t-sub-311", false).await;
    {
        // The broker drops this publisher for its 2 MiB packet; nothing is stored.
        let publisher = Sub::start(broker.port, "t/none", "t-pub-311", false).await;
        let big = format!(
            r#"{{"request_id":"big","door":"main","by":"{}"}}"#,
            "x".repeat(2 * 1024 * 1024)
        );
        publisher
            .publish_retained(&format!("{P}/cmd/door.open"), big)
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let text = config(dir.path(), Some(broker.port), "", "").replace(
        "keep_alive_s = 5\n",
        "keep_alive_s = 5\nprotocol = \"3.1.1\"\nmax_command_kib = 64\n",
    );
    let gw = start(&text, dir.path()).await;
    sub.wait_for("online", Duration::from_secs(10), |m| {
        m.json["state"] == "online"
    })
    .await;
    sub.publish(
        &format!("{P}/cmd/door.open"),
        r#"{"request_id":"ok1","door":"main"}"#,
    )
    .await;
    let m = sub
        .wait_for("a normal command", Duration::from_secs(10), reply_to("ok1"))
        .await;
    assert_eq!(m.json["ok"], true, "{}", m.json);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(connections(&sub), 1, "the gateway connected more than once");
    assert!(gw.uplink.as_ref().unwrap().connected());
    assert_eq!(count(&sub, reply_to("big")), 0);
    gw.stop().await;
}
