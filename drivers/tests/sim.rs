//! The sim driver passes the shared conformance test, with its simulated link as the peer.

use drivers::sim::SimLink;
use drivers::testing::{assert_driver_compliance, Harness, Limits, Peer};
use drivers::{Action, DeviceId, DriverConfig, EventBody, InputKind, Output};
use futures::future::BoxFuture;
use std::time::Duration;

struct SimPeer(SimLink);

impl Peer for SimPeer {
    fn start(&mut self) -> BoxFuture<'_, ()> {
        self.0.set(true);
        Box::pin(async {})
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        self.0.set(false);
        Box::pin(async {})
    }
}

fn sim(toml_text: &str) -> DriverConfig {
    toml::from_str(toml_text).expect("sim config")
}

#[tokio::test]
async fn sim_passes_conformance() {
    let config = sim("driver = \"sim\"\nmean_interval_s = 0.05\ncredentials = [\"card:1\"]\n");
    let mut peer = SimPeer(SimLink::for_device(&DeviceId::new("conformance-sim")));
    let dir = tempfile::tempdir().unwrap();
    assert_driver_compliance(&config, &mut peer, dir.path().into(), Limits::default()).await;
}

#[tokio::test]
async fn door_opens_after_pulse_and_closes() {
    let config = sim("driver = \"sim\"\npass_s = 0.2\n");
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::start("sim-door", &config, dir.path().into()).unwrap();
    h.commands
        .send(Action::Pulse {
            output: Output::Lock,
            ms: 500,
        })
        .await
        .unwrap();
    let opened = |b: &EventBody| {
        matches!(
            b,
            EventBody::Input {
                input: InputKind::DoorContact,
                active: true
            }
        )
    };
    let closed = |b: &EventBody| {
        matches!(
            b,
            EventBody::Input {
                input: InputKind::DoorContact,
                active: false
            }
        )
    };
    assert!(h.wait_for(Duration::from_secs(3), opened).await.is_some());
    assert!(h.wait_for(Duration::from_secs(3), closed).await.is_some());
    assert!(h.stop(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn script_runs_in_order() {
    let config = sim(r#"
driver = "sim"
script = [
  { at_ms = 10, read = "card:0042" },
  { at_ms = 20, sensor = "smoke", active = true },
  { at_ms = 30, tag = "e200aa", presence = "arrived" },
]
"#);
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::start("sim-script", &config, dir.path().into()).unwrap();
    let read = h
        .wait_for(Duration::from_secs(2), |b| {
            matches!(b, EventBody::Credential(_))
        })
        .await
        .expect("scripted read");
    match read.body {
        EventBody::Credential(r) => assert_eq!(r.credential.value, "42"),
        other => panic!("{other:?}"),
    }
    assert!(h
        .wait_for(Duration::from_secs(2), |b| matches!(
            b,
            EventBody::Sensor { active: true, .. }
        ))
        .await
        .is_some());
    let tag = h
        .wait_for(Duration::from_secs(2), |b| {
            matches!(b, EventBody::Tag { .. })
        })
        .await
        .expect("tag");
    assert!(matches!(tag.body, EventBody::Tag { ref epc, .. } if epc == "e200aa"));
}
