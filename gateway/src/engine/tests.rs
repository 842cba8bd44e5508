//! Engine behaviour, fed inputs with explicit times (no I/O, no clock).

use super::*;
use crate::config::Config;
use crate::contract::{AlarmState, DoorId, RecordBody};
use chrono::Duration;
use drivers::{CredentialKind, CredentialRead, Direction, InputKind, Output, Presence, SensorKind};

const CONFIG: &str = r#"
[gateway]
id = "g1"
estate = "e1"
data_dir = "."

[[doors]]
id = "lobby"
name = "Lobby door"
zone = "b1"
held_open_s = 30
anti_passback = true

[[doors]]
id = "lift"
zone = "b1"
kind = "elevator"

[[doors]]
id = "shed"
zone = "shed"
kind = "gate"

[[devices]]
id = "reader-in"
driver = "sim"
door = "lobby"
direction = "in"

[[devices]]
id = "reader-out"
driver = "sim"
door = "lobby"
direction = "out"

[[devices]]
id = "lift-rfid"
driver = "sim"
door = "lift"

[[devices]]
id = "shed-rfid"
driver = "sim"
door = "shed"

[[devices]]
id = "smoke-1"
driver = "sim"
zone = "b1"

[[persons]]
id = "r1"
name = "Resident One"
group = "resident"
credentials = ["card:100", "tag:E200AA"]

[[persons]]
id = "w1"
name = "Banned"
group = "watchlist"
credentials = ["card:666"]

[[persons]]
id = "v1"
name = "Visitor"
group = "visitor"
credentials = ["qr:VIS-1"]
valid_until = "2026-11-23T09:00:00Z"
"#;

fn engine() -> Engine {
    engine_with("")
}

/// An engine with more config (rules) appended.
fn engine_with(extra: &str) -> Engine {
    let db = sled::Config::new().temporary(true).open().unwrap();
    engine_on(&db, extra)
}

fn engine_on(db: &sled::Db, extra: &str) -> Engine {
    let cfg = Config::parse(&format!("{CONFIG}\n{extra}"), std::path::Path::new(".")).unwrap();
    Engine::new(&cfg.engine(), db).unwrap()
}

fn face(person: &str) -> EventBody {
    EventBody::Credential(CredentialRead {
        similarity: Some(0.2),
        ..CredentialRead::new(Credential {
            kind: CredentialKind::Face,
            value: person.into(),
        })
    })
}

fn t(s: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::seconds(s)
}

fn ev(device: &str, at: DateTime<Utc>, body: EventBody) -> DeviceEvent {
    DeviceEvent {
        device: DeviceId::new(device),
        at,
        body,
        receipt: Default::default(),
    }
}

fn card(n: &str) -> EventBody {
    EventBody::Credential(CredentialRead::new(Credential {
        kind: CredentialKind::Card,
        value: n.into(),
    }))
}

fn contact(open: bool) -> EventBody {
    EventBody::Input {
        input: InputKind::DoorContact,
        active: open,
    }
}

fn decisions(fx: &Effects) -> Vec<(bool, Reason)> {
    fx.records
        .iter()
        .filter_map(|d| match &d.body {
            RecordBody::Event(e) => e.decision.map(|d| (d.granted, d.reason)),
            _ => None,
        })
        .collect()
}

fn alarms(fx: &Effects) -> Vec<(AlarmType, AlarmState)> {
    fx.records
        .iter()
        .filter_map(|d| match &d.body {
            RecordBody::Alarm(a) => Some((a.alarm_type, a.state)),
            _ => None,
        })
        .collect()
}

#[test]
fn grant_pulses_the_lock_and_greets_the_reader() {
    let mut e = engine();
    let fx = e.on_device_event(ev("reader-in", t(0), card("0100")), t(0));
    assert_eq!(decisions(&fx), vec![(true, Reason::Granted)]);
    let actions: Vec<_> = fx
        .commands
        .iter()
        .map(|c| (c.device.as_str(), c.action.clone()))
        .collect();
    assert!(actions.contains(&("reader-in", Action::Feedback { granted: true })));
    // No `lock` key: every device of the door gets the pulse.
    assert!(actions.contains(&(
        "reader-in",
        Action::Pulse {
            output: Output::Lock,
            ms: 3000
        }
    )));
    assert!(actions.contains(&(
        "reader-out",
        Action::Pulse {
            output: Output::Lock,
            ms: 3000
        }
    )));
    match &fx.records[0].body {
        RecordBody::Event(r) => {
            assert_eq!(r.kind, crate::contract::EventKind::Access);
            assert_eq!(r.person.as_ref().unwrap().id.as_str(), "r1");
            assert_eq!(r.direction, Some(Direction::In));
            assert_eq!(r.offline, Some(true), "no platform link yet");
        }
        other => panic!("{other:?}"),
    }
    e.set_link(true);
    let fx = e.on_device_event(ev("reader-out", t(5), card("100")), t(5));
    match &fx.records[0].body {
        RecordBody::Event(r) => assert_eq!(r.offline, Some(false)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn refusals_have_reasons_and_no_lock_command() {
    let mut e = engine();
    let fx = e.on_device_event(ev("reader-in", t(0), card("999")), t(0));
    assert_eq!(decisions(&fx), vec![(false, Reason::UnknownCredential)]);
    assert!(fx
        .commands
        .iter()
        .all(|c| !matches!(c.action, Action::Pulse { .. })));
    assert!(fx
        .commands
        .iter()
        .any(|c| c.action == Action::Feedback { granted: false }));
    let fx = e.on_device_event(ev("reader-in", t(1), card("666")), t(1));
    assert_eq!(decisions(&fx), vec![(false, Reason::Watchlist)]);
    let qr = EventBody::Credential(CredentialRead::new(Credential {
        kind: CredentialKind::Qr,
        value: "VIS-1".into(),
    }));
    let fx = e.on_device_event(ev("reader-in", t(3600), qr), t(3600));
    assert_eq!(decisions(&fx), vec![(false, Reason::Expired)]);
    let mut late = CredentialRead::new(Credential {
        kind: CredentialKind::Card,
        value: "100".into(),
    });
    late.late = true;
    let fx = e.on_device_event(ev("reader-in", t(4), EventBody::Credential(late)), t(4));
    assert_eq!(decisions(&fx), vec![(false, Reason::StaleRead)]);
}

#[test]
fn anti_passback_refuses_second_entry_until_exit() {
    let mut e = engine();
    assert_eq!(
        decisions(&e.on_device_event(ev("reader-in", t(0), card("100")), t(0))),
        vec![(true, Reason::Granted)]
    );
    assert_eq!(
        decisions(&e.on_device_event(ev("reader-in", t(10), card("100")), t(10))),
        vec![(false, Reason::AntiPassback)]
    );
    assert_eq!(
        decisions(&e.on_device_event(ev("reader-out", t(20), card("100")), t(20))),
        vec![(true, Reason::Granted)]
    );
    assert_eq!(
        decisions(&e.on_device_event(ev("reader-in", t(30), card("100")), t(30))),
        vec![(true, Reason::Granted)]
    );
}

#[test]
fn forced_and_held_open_doors_raise_alarms_once() {
    let mut e = engine();
    let fx = e.on_device_event(ev("reader-in", t(0), contact(true)), t(0));
    assert_eq!(
        alarms(&fx),
        vec![(AlarmType::DoorForced, AlarmState::Raised)]
    );
    // Held open: raised once on the tick past held_open_s, cleared when the door closes.
    assert!(alarms(&e.on_tick(t(20))).is_empty());
    assert_eq!(
        alarms(&e.on_tick(t(31))),
        vec![(AlarmType::DoorHeldOpen, AlarmState::Raised)]
    );
    assert!(alarms(&e.on_tick(t(32))).is_empty());
    let fx = e.on_device_event(ev("reader-in", t(40), contact(false)), t(40));
    assert_eq!(
        alarms(&fx),
        vec![(AlarmType::DoorHeldOpen, AlarmState::Cleared)]
    );
    // A granted opening is not forced.
    e.on_device_event(ev("reader-in", t(50), card("100")), t(50));
    let fx = e.on_device_event(ev("reader-in", t(51), contact(true)), t(51));
    assert!(alarms(&fx).is_empty());
    // The forced alarm is still open (it needs an acknowledgement).
    assert_eq!(e.open_alarms().len(), 1);
}

#[test]
fn remote_open_and_alarm_ack_via_commands() {
    let mut e = engine();
    let (fx, r) = e.on_command(
        Command::DoorOpen {
            door: DoorId::new("lobby"),
            by: Actor::platform("ops"),
        },
        t(0),
    );
    assert_eq!(r, Ok(CommandOk::Done));
    assert!(fx
        .commands
        .iter()
        .any(|c| matches!(c.action, Action::Pulse { .. })));
    match &fx.records[0].body {
        RecordBody::Event(r) => assert_eq!(r.by.as_deref(), Some("platform/ops")),
        other => panic!("{other:?}"),
    }
    let (_, r) = e.on_command(
        Command::DoorOpen {
            door: DoorId::new("nope"),
            by: Actor::platform("ops"),
        },
        t(0),
    );
    assert_eq!(r.unwrap_err().code, ErrorCode::NotFound);

    e.on_device_event(ev("reader-in", t(100), contact(true)), t(100));
    let id = e.open_alarms()[0].alarm;
    let (fx, r) = e.on_command(
        Command::AlarmAck {
            alarm: id,
            by: Actor::console("guard1"),
            note: "checked".into(),
        },
        t(110),
    );
    assert_eq!(r, Ok(CommandOk::Done));
    // Momentary alarm: acked then cleared.
    assert_eq!(
        alarms(&fx),
        vec![
            (AlarmType::DoorForced, AlarmState::Acked),
            (AlarmType::DoorForced, AlarmState::Cleared)
        ]
    );
    let (fx, r) = e.on_command(
        Command::AlarmAck {
            alarm: id,
            by: Actor::console("guard1"),
            note: String::new(),
        },
        t(111),
    );
    assert_eq!(r.unwrap_err().code, ErrorCode::NotFound);
    assert!(fx.records.is_empty(), "a refused ack changes nothing");
}

#[test]
fn roster_commands_and_query() {
    let mut e = engine();
    let p = Person {
        id: PersonId::new("r2"),
        name: "Two".into(),
        group: Group::Resident,
        tags: vec!["elderly_alone".into()],
        valid_from: None,
        valid_until: None,
        credentials: vec![Credential::parse(CredentialKind::Card, "200").unwrap()],
        faces: 0,
    };
    let (fx, r) = e.on_command(
        Command::PersonUpsert {
            person: p.clone(),
            by: Actor::platform("p"),
        },
        t(0),
    );
    assert!(r.is_ok());
    assert_eq!(fx.records.len(), 1);
    assert_eq!(
        decisions(&e.on_device_event(ev("reader-in", t(1), card("200")), t(1))),
        vec![(true, Reason::Granted)]
    );
    // Someone else's card is refused and nothing changes.
    let mut thief = p.clone();
    thief.id = PersonId::new("r3");
    let (fx, r) = e.on_command(
        Command::PersonUpsert {
            person: thief,
            by: Actor::platform("p"),
        },
        t(2),
    );
    assert_eq!(r.unwrap_err().code, ErrorCode::Conflict);
    assert!(fx.records.is_empty());
    match e.query(Query::Person(PersonId::new("r2"))) {
        QueryResult::Person(Some(found)) => assert_eq!(found.tags, vec!["elderly_alone"]),
        other => panic!("{other:?}"),
    }
    let (_, r) = e.on_command(
        Command::PersonDelete {
            id: PersonId::new("r2"),
            by: Actor::platform("p"),
        },
        t(3),
    );
    assert!(r.is_ok());
    assert_eq!(
        decisions(&e.on_device_event(ev("reader-in", t(4), card("200")), t(4))),
        vec![(false, Reason::UnknownCredential)]
    );
}

#[test]
fn ebike_in_elevator_holds_the_car_until_it_leaves() {
    let mut e = engine();
    let tag = |presence| EventBody::Tag {
        epc: "e200aa".into(),
        presence,
        antenna: Some(1),
        rssi: Some(-50.0),
    };
    let fx = e.on_device_event(ev("lift-rfid", t(0), tag(Presence::Arrived)), t(0));
    assert_eq!(
        alarms(&fx),
        vec![(AlarmType::EbikeInElevator, AlarmState::Raised)]
    );
    assert!(fx.commands.iter().any(|c| c.action
        == Action::Hold {
            output: Output::ElevatorHold,
            on: true
        }));
    let fx = e.on_device_event(ev("lift-rfid", t(20), tag(Presence::Departed)), t(20));
    assert_eq!(
        alarms(&fx),
        vec![(AlarmType::EbikeInElevator, AlarmState::Cleared)]
    );
    assert!(fx.commands.iter().any(|c| c.action
        == Action::Hold {
            output: Output::ElevatorHold,
            on: false
        }));
    // At a gate, a tag is a credential: the owner's e-bike is let in.
    let fx = e.on_device_event(ev("shed-rfid", t(30), tag(Presence::Arrived)), t(30));
    assert_eq!(decisions(&fx), vec![(true, Reason::Granted)]);
}

#[test]
fn sensors_and_device_links_raise_and_clear() {
    let mut e = engine();
    let smoke = |active| EventBody::Sensor {
        sensor: SensorKind::Smoke,
        active,
        value: None,
    };
    assert_eq!(
        alarms(&e.on_device_event(ev("smoke-1", t(0), smoke(true)), t(0))),
        vec![(AlarmType::Smoke, AlarmState::Raised)]
    );
    // Flapping: one alarm with a count.
    e.on_device_event(ev("smoke-1", t(1), smoke(false)), t(1));
    assert!(alarms(&e.on_device_event(ev("smoke-1", t(2), smoke(true)), t(2))).is_empty());
    assert_eq!(e.open_alarms()[0].count, 2);
    // Offline → device_offline; online → cleared automatically.
    let fx = e.on_device_event(
        ev(
            "reader-in",
            t(5),
            EventBody::Offline {
                reason: "no reply".into(),
            },
        ),
        t(5),
    );
    assert_eq!(
        alarms(&fx),
        vec![(AlarmType::DeviceOffline, AlarmState::Raised)]
    );
    let fx = e.on_device_event(
        ev("reader-in", t(9), EventBody::Online { detail: None }),
        t(9),
    );
    assert_eq!(
        alarms(&fx),
        vec![(AlarmType::DeviceOffline, AlarmState::Cleared)]
    );
    // Events from unknown devices are ignored, not fatal.
    assert!(e
        .on_device_event(ev("ghost", t(10), smoke(true)), t(10))
        .records
        .is_empty());
}

#[test]
fn welfare_alarm_after_silence_names_the_person_and_last_place() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let mut e = engine_on(
        &db,
        "[[rules]]\ntype = \"welfare_no_activity\"\nhours = 12\n",
    );
    let elder = Person {
        id: PersonId::new("e1"),
        name: "Wang Fang".into(),
        group: Group::Resident,
        tags: vec!["elderly_alone".into()],
        valid_from: None,
        valid_until: None,
        credentials: vec![Credential::parse(CredentialKind::Card, "300").unwrap()],
        faces: 0,
    };
    e.on_command(
        Command::PersonUpsert {
            person: elder,
            by: Actor::platform("p"),
        },
        t(0),
    )
    .1
    .unwrap();
    e.on_device_event(ev("reader-in", t(60), card("300")), t(60));
    // 11 h later: nothing; 12 h after the last pass: one alarm, once.
    assert!(alarms(&e.on_tick(t(60 + 11 * 3600))).is_empty());
    let fx = e.on_tick(t(60 + 12 * 3600 + 1));
    assert_eq!(
        alarms(&fx),
        vec![(AlarmType::WelfareNoActivity, AlarmState::Raised)]
    );
    match &fx.records[0].body {
        RecordBody::Alarm(a) => {
            assert_eq!(a.person.as_ref().unwrap().id.as_str(), "e1");
            assert_eq!(a.severity, crate::contract::Severity::Major);
            assert!(
                a.message.contains("Wang Fang") && a.message.contains("Lobby door"),
                "{}",
                a.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !alarms(&e.on_tick(t(60 + 13 * 3600)))
            .contains(&(AlarmType::WelfareNoActivity, AlarmState::Raised)),
        "raised once, not at every check"
    );
    // The last activity survives a restart.
    drop(e);
    let mut e = engine_on(
        &db,
        "[[rules]]\ntype = \"welfare_no_activity\"\nhours = 12\n",
    );
    assert_eq!(
        e.last_seen(&PersonId::new("e1")).unwrap().unwrap().ts,
        t(60)
    );
    assert_eq!(e.open_alarms().len(), 1, "open alarms survive a restart");
    // Seen again: the alarm clears by itself.
    let fx = e.on_device_event(ev("reader-out", t(14 * 3600), card("300")), t(14 * 3600));
    assert!(alarms(&fx).contains(&(AlarmType::WelfareNoActivity, AlarmState::Cleared)));
    // Residents without the tag (r1) are never watched.
    assert!(e.last_seen(&PersonId::new("r1")).unwrap().is_none());
}

#[test]
fn welfare_for_a_person_never_seen_counts_from_when_watched() {
    let mut e = engine();
    let elder = Person {
        id: PersonId::new("e2"),
        name: "Li Lao".into(),
        group: Group::Resident,
        tags: vec!["elderly_alone".into()],
        valid_from: None,
        valid_until: None,
        credentials: vec![],
        faces: 0,
    };
    e.on_command(
        Command::PersonUpsert {
            person: elder,
            by: Actor::platform("p"),
        },
        t(0),
    )
    .1
    .unwrap();
    // Default: 24 h. The engine watches from the upsert, at wall-clock time, so use a later check.
    let watched_from = e.last_seen(&PersonId::new("e2")).unwrap().unwrap().ts;
    assert!(alarms(&e.on_tick(watched_from + Duration::hours(23))).is_empty());
    let fx = e.on_tick(watched_from + Duration::hours(25));
    let found = fx.records.iter().find_map(|d| match &d.body {
        RecordBody::Alarm(a) if a.alarm_type == AlarmType::WelfareNoActivity => {
            Some(a.message.clone())
        }
        _ => None,
    });
    assert!(found.unwrap().contains("never seen"));
    // Removing the tag stops the watch and the alarm stays until dealt with.
    let (_, r) = e.on_command(
        Command::PersonDelete {
            id: PersonId::new("e2"),
            by: Actor::platform("p"),
        },
        watched_from + Duration::hours(26),
    );
    assert!(r.is_ok());
    assert!(e
        .open_alarms()
        .iter()
        .all(|a| a.alarm_type != AlarmType::WelfareNoActivity));
}

#[test]
fn unknown_faces_raise_after_the_configured_count() {
    let mut e = engine_with("[[devices]]\nid = \"cam-1\"\ndriver = \"sim\"\ndoor = \"lobby\"\n[[rules]]\ntype = \"unknown_face\"\ncount = 3\nwindow_s = 30\n");
    assert!(alarms(&e.on_device_event(ev("cam-1", t(0), face("")), t(0))).is_empty());
    assert!(
        alarms(&e.on_device_event(ev("cam-1", t(40), face("")), t(40))).is_empty(),
        "first fell out of the window"
    );
    assert!(alarms(&e.on_device_event(ev("cam-1", t(50), face("")), t(50))).is_empty());
    let fx = e.on_device_event(ev("cam-1", t(60), face("")), t(60));
    assert_eq!(
        alarms(&fx),
        vec![(AlarmType::UnknownFace, AlarmState::Raised)]
    );
    assert_eq!(decisions(&fx), vec![(false, Reason::UnknownCredential)]);
    // A known face is a pass, not an unknown one.
    let fx = e.on_device_event(ev("cam-1", t(70), face("r1")), t(70));
    assert_eq!(decisions(&fx), vec![(true, Reason::Granted)]);
}

#[test]
fn watchlist_face_raises_with_the_person() {
    let mut e = engine_with("[[devices]]\nid = \"cam-1\"\ndriver = \"sim\"\ndoor = \"lobby\"\n");
    let fx = e.on_device_event(ev("cam-1", t(0), face("w1")), t(0));
    assert_eq!(decisions(&fx), vec![(false, Reason::Watchlist)]);
    let a = fx.records.iter().find_map(|d| match &d.body {
        RecordBody::Alarm(a) => Some(a.clone()),
        _ => None,
    });
    let a = a.expect("watchlist_face");
    assert_eq!(a.alarm_type, AlarmType::WatchlistFace);
    assert_eq!(a.person.unwrap().id.as_str(), "w1");
    assert_eq!(a.event, Some(fx.records[0].id));
}

#[test]
fn rules_override_severity_clearing_escalation_and_can_disable() {
    let mut e = engine_with(
        "[alarms]\nescalate_major_s = 5\nescalate_repeat = 2\n\
         [[rules]]\ntype = \"smoke\"\nseverity = \"major\"\nauto_clear = true\n\
         [[rules]]\ntype = \"tailgating\"\nenabled = false\n\
         [[rules]]\ntype = \"ebike_in_elevator\"\nhold = false\n",
    );
    let smoke = |active| EventBody::Sensor {
        sensor: SensorKind::Smoke,
        active,
        value: None,
    };
    e.on_device_event(ev("smoke-1", t(0), smoke(true)), t(0));
    assert_eq!(
        e.open_alarms()[0].severity,
        crate::contract::Severity::Major
    );
    // Major escalates after 5 s here, twice at most.
    assert_eq!(
        alarms(&e.on_tick(t(6))),
        vec![(AlarmType::Smoke, AlarmState::Escalated)]
    );
    assert_eq!(
        alarms(&e.on_tick(t(12))),
        vec![(AlarmType::Smoke, AlarmState::Escalated)]
    );
    assert!(alarms(&e.on_tick(t(30))).is_empty());
    // auto_clear: the sensor returning to normal clears it.
    let fx = e.on_device_event(ev("smoke-1", t(31), smoke(false)), t(31));
    assert_eq!(alarms(&fx), vec![(AlarmType::Smoke, AlarmState::Cleared)]);
    // Disabled: no tailgating alarm.
    e.on_device_event(ev("reader-in", t(40), card("100")), t(40));
    let fx = e.on_device_event(
        ev(
            "reader-in",
            t(41),
            EventBody::Passage {
                count: 3,
                direction: None,
            },
        ),
        t(41),
    );
    assert!(alarms(&fx).is_empty());
    // No hold on the elevator, but the alarm all the same.
    let fx = e.on_device_event(
        ev(
            "lift-rfid",
            t(50),
            EventBody::Tag {
                epc: "E200AA".into(),
                presence: Presence::Arrived,
                antenna: None,
                rssi: None,
            },
        ),
        t(50),
    );
    assert_eq!(
        alarms(&fx),
        vec![(AlarmType::EbikeInElevator, AlarmState::Raised)]
    );
    assert!(fx.commands.is_empty());
}

#[test]
fn held_open_alarm_clears_when_the_door_closes_after_a_restart() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let mut e = engine_on(&db, "");
    e.on_device_event(ev("reader-in", t(0), card("100")), t(0));
    e.on_device_event(ev("reader-in", t(1), contact(true)), t(1));
    e.on_tick(t(40));
    assert_eq!(e.open_alarms().len(), 1);
    drop(e);
    let mut e = engine_on(&db, "");
    assert_eq!(e.open_alarms().len(), 1);
    let fx = e.on_device_event(ev("reader-in", t(60), contact(false)), t(60));
    assert_eq!(
        alarms(&fx),
        vec![(AlarmType::DoorHeldOpen, AlarmState::Cleared)]
    );
}
