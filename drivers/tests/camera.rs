//! The camera driver against a real RTSP server (GStreamer's, via python3-gi):
//! frames arrive, the stream that dies and returns is picked up again, and the
//! driver stops cleanly. Images come from registry packages (models/fetch.py).

use drivers::testing::peers::repo_root;
use drivers::testing::rtsp::{Feed, RtspServer};
use drivers::testing::{assert_driver_compliance, Harness, Limits, Peer};
use drivers::DriverConfig;
use std::path::PathBuf;
use std::time::Duration;

fn testdata(name: &str) -> PathBuf {
    let p = repo_root().join("models/files/testdata").join(name);
    assert!(
        p.exists(),
        "{}: run `bash deploy/dev.sh setup` first",
        p.display()
    );
    p
}

fn camera(url: &str) -> DriverConfig {
    toml::from_str(&format!(
        "driver = \"camera\"\nurl = \"{url}\"\nfps = 5\ntimeout_ms = 6000\n"
    ))
    .expect("camera config")
}

#[tokio::test]
async fn rtsp_camera_passes_conformance() {
    let mut peer = RtspServer::new(Feed::Image(testdata("obama2.jpg")));
    let config = camera(&peer.url());
    let dir = tempfile::tempdir().unwrap();
    assert_driver_compliance(&config, &mut peer, dir.path().into(), Limits::default()).await;
}

#[tokio::test]
async fn frames_arrive_at_the_configured_rate_and_are_dropped_when_unread() {
    let mut peer = RtspServer::new(Feed::Image(testdata("obama2.jpg")));
    peer.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::start("cam", &camera(&peer.url()), dir.path().into()).unwrap();
    let f = tokio::time::timeout(Duration::from_secs(15), h.frames.recv())
        .await
        .expect("a frame within 15 s")
        .expect("frame");
    assert_eq!((f.width, f.height), (640, 480));
    assert_eq!(f.bgr.len(), 640 * 480 * 3);
    // Not reading for a while: the sink (2 deep) drops the rest instead of queueing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut queued = 0;
    while h.frames.try_recv().is_ok() {
        queued += 1;
    }
    assert!(queued <= 2, "{queued} frames queued");
    // About 5 frames a second when read.
    let t0 = std::time::Instant::now();
    for _ in 0..5 {
        h.frames.recv().await.expect("frame");
    }
    let dt = t0.elapsed();
    assert!(
        dt > Duration::from_millis(500),
        "5 frames in {dt:?}: not paced"
    );
    assert!(h.stop(Duration::from_secs(5)).await);
    peer.stop().await;
}

#[tokio::test]
async fn a_video_file_is_read_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let video = testdata("vtest.avi");
    let mut h = Harness::start(
        "file",
        &camera(&video.display().to_string()),
        dir.path().into(),
    )
    .unwrap();
    for _ in 0..3 {
        let f = tokio::time::timeout(Duration::from_secs(10), h.frames.recv())
            .await
            .expect("a frame")
            .expect("frame");
        assert_eq!((f.width, f.height), (768, 576));
    }
    assert!(h.stop(Duration::from_secs(5)).await);
}
