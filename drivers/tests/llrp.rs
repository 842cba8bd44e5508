//! The LLRP driver against llrpkit's reader emulator: ROSpec set-up despite the
//! emulator's deviations, tag reports, and one arrival / move / departure per
//! e-bike instead of hundreds of reads.

mod support;

use drivers::testing::{assert_driver_compliance, Harness, Limits};
use drivers::{DriverConfig, EventBody, Presence};
use serde_json::json;
use std::time::Duration;
use support::LlrpPeer;

const BIKE: &str = "E2801160600002A3C4D5E6F7";
const FAR_BIKE: &str = "E2801160600002A3C4D5E600";
const WAIT: Duration = Duration::from_secs(10);

fn config(port: u16) -> DriverConfig {
    toml::from_str(&format!(
        "driver = \"llrp\"\nhost = \"127.0.0.1:{port}\"\nkeepalive_ms = 500\ndeparture_s = 1.0\nrssi_min = -65.0\nmove_after_s = 0.3\n"
    ))
    .unwrap()
}

#[tokio::test]
async fn llrp_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = LlrpPeer::new().unwrap();
    let cfg = config(peer.port);
    assert_driver_compliance(&cfg, &mut peer, dir.path().into(), Limits::default()).await;
}

fn tags(h: &Harness, presence: Presence) -> Vec<String> {
    h.seen
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Tag {
                epc, presence: p, ..
            } if *p == presence => Some(epc.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn one_ebike_gives_one_arrival_one_move_one_departure() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = LlrpPeer::new().unwrap();
    peer.up().await;
    let mut h = Harness::start("lobby-rfid", &config(peer.port), dir.path().into()).unwrap();
    h.wait_for(WAIT, |b| matches!(b, EventBody::Online { .. }))
        .await
        .expect("online");
    // An e-bike near antenna 1, and one passing outside (too weak to count).
    peer.reader()
        .send(json!({"op": "tags", "tags": [
            {"epc": BIKE, "antennas": [1], "rssi": -48},
            {"epc": FAR_BIKE, "antennas": [1], "rssi": -71},
        ]}))
        .await;
    let arrived = h
        .wait_for(WAIT, |b| {
            matches!(
                b,
                EventBody::Tag {
                    presence: Presence::Arrived,
                    ..
                }
            )
        })
        .await
        .expect("arrival");
    match arrived.body {
        EventBody::Tag {
            epc, antenna, rssi, ..
        } => {
            assert_eq!(epc, BIKE);
            assert_eq!(antenna, Some(1));
            assert!(
                rssi.is_some_and(|r| (-60.0..-35.0).contains(&r)),
                "{rssi:?}"
            );
        }
        _ => unreachable!(),
    }
    // The reader keeps reporting it dozens of times a second: no more arrivals.
    assert!(
        h.wait_for(Duration::from_millis(1500), |b| matches!(
            b,
            EventBody::Tag { .. }
        ))
        .await
        .is_none(),
        "more tag events: {:?}",
        h.seen
    );
    // It rolls to antenna 2.
    peer.reader()
        .send(json!({"op": "tags", "tags": [{"epc": BIKE, "antennas": [2], "rssi": -50}]}))
        .await;
    h.wait_for(WAIT, |b| {
        matches!(
            b,
            EventBody::Tag {
                presence: Presence::Moved,
                antenna: Some(2),
                ..
            }
        )
    })
    .await
    .expect("moved");
    // It leaves.
    peer.reader().send(json!({"op": "tags", "tags": []})).await;
    h.wait_for(WAIT, |b| {
        matches!(
            b,
            EventBody::Tag {
                presence: Presence::Departed,
                ..
            }
        )
    })
    .await
    .expect("departed");
    assert_eq!(tags(&h, Presence::Arrived), vec![BIKE.to_string()]);
    assert_eq!(tags(&h, Presence::Moved), vec![BIKE.to_string()]);
    assert_eq!(tags(&h, Presence::Departed), vec![BIKE.to_string()]);
    assert!(h.stop(Duration::from_secs(3)).await);
    peer.down().await;
}
