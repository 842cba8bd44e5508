//! Face matching end to end, on real photos (face_recognition's and
//! opencv-doc's test images, fetched by models/fetch.py) and a real RTSP
//! server: enrollment through the controller (as `person.upsert` does it), a
//! camera stream that opens the door through its lock and journals a
//! snapshot, and a still photo that the liveness gate refuses.

use base64::Engine as _;
use drivers::testing::rtsp::{Feed, RtspServer};
use gateway::config::Config;
use gateway::control::{parse_platform, Controller};
use gateway::daemon::Gateway;
use gateway::engine::{CommandOk, ErrorCode, Query, QueryResult};
use gateway::journal::{Journal, Record, RecordBody};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn testdata(name: &str) -> PathBuf {
    let p = models::runtime::default_models_dir()
        .join("testdata")
        .join(name);
    assert!(
        p.exists(),
        "{}: run `bash deploy/dev.sh setup` first",
        p.display()
    );
    p
}

fn photo_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn config(dir: &Path, extra_faces: &str, devices: &str) -> Config {
    let text = format!(
        r#"
[gateway]
id = "gw-vision"
estate = "test-estate"
data_dir = "{data}"

[faces]
votes = 3
{extra_faces}

[[doors]]
id = "gate"
zone = "estate"
lock = "gate-lock"

[[devices]]
id = "gate-lock"
driver = "sim"
door = "gate"
{devices}
"#,
        data = dir.join("data").display()
    );
    Config::parse(&text, dir).unwrap_or_else(|e| panic!("config: {e:?}"))
}

async fn upsert(
    c: &Controller,
    id: &str,
    photos: &[Vec<u8>],
) -> Result<CommandOk, gateway::engine::CommandError> {
    let faces: Vec<String> = photos.iter().map(|p| photo_b64(p)).collect();
    let msg = serde_json::json!({
        "request_id": "r1",
        "person": {"id": id, "name": id, "group": "resident", "faces": faces}
    });
    let req = parse_platform("person.upsert", msg.to_string().as_bytes())?;
    c.execute(req).await
}

fn records(j: &Journal) -> Vec<Record> {
    (1..=j.last_committed())
        .filter_map(|s| j.get(s).ok().flatten())
        .collect()
}

/// Waits for a journal record that `pred` accepts.
async fn wait_record(j: &Journal, secs: u64, pred: impl Fn(&Record) -> bool) -> Option<Record> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if let Some(r) = records(j).into_iter().find(|r| pred(r)) {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

fn face_decision(r: &Record) -> Option<&gateway::journal::EventRecord> {
    match &r.body {
        RecordBody::Event(e) if e.decision.is_some() && e.kind.to_string() == "face" => Some(e),
        _ => None,
    }
}

/// Starts again on the same store; sled releases its file lock a moment after the last handle goes.
async fn restart(cfg: Config) -> Gateway {
    for _ in 0..50 {
        match Gateway::start(cfg.clone()).await {
            Ok(gw) => return gw,
            Err(gateway::daemon::StartError::Store { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the store stayed locked after stop");
}

#[tokio::test]
async fn enroll_from_one_photo_match_another_refuse_a_stranger() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(config(dir.path(), "", "")).await.unwrap();
    let obama = std::fs::read(testdata("obama.jpg")).unwrap();
    match upsert(&gw.controller, "obama", std::slice::from_ref(&obama)).await {
        Ok(CommandOk::Person(p)) => assert_eq!(p.faces, 1),
        other => panic!("{other:?}"),
    }
    let vision = gw.vision.clone().expect("[faces] starts the vision");
    // The gallery's size is on /metrics (gatewayd_face_templates).
    assert_eq!(
        gw.vision_stats
            .templates
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let embed = |name: &str| {
        let bytes = std::fs::read(testdata(name)).unwrap();
        vision
            .pipeline
            .photo(&bytes)
            .unwrap()
            .analyzed
            .embedding
            .unwrap()
    };
    let same = vision.identify(&embed("obama2.jpg"));
    assert_eq!(&*same[0].person, "obama");
    assert!(same[0].similarity >= vision.cfg.match_threshold, "{same:?}");
    let stranger = vision.identify(&embed("biden.jpg"));
    assert!(
        stranger[0].similarity < vision.cfg.unknown_threshold,
        "{stranger:?}"
    );

    // The same man under another id: refused as a duplicate, naming the first.
    let obama3 = std::fs::read(testdata("obama3.jpg")).unwrap();
    let e = upsert(&gw.controller, "someone", &[obama3])
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Conflict);
    assert!(
        e.message.contains("duplicate_face") && e.message.contains("obama"),
        "{}",
        e.message
    );

    // Broken photos: clear errors, and nothing is stored.
    let e = upsert(&gw.controller, "x", &[b"%PDF-1.4 not a photo".to_vec()])
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Invalid);
    assert!(
        e.message.starts_with("faces[0]: not_an_image"),
        "{}",
        e.message
    );
    let e = upsert(&gw.controller, "x", &[obama[..obama.len() / 2].to_vec()])
        .await
        .unwrap_err();
    assert!(
        e.message.contains("not_an_image") && e.message.contains("truncated"),
        "{}",
        e.message
    );
    let messi = std::fs::read(testdata("messi5.jpg")).unwrap();
    let e = upsert(&gw.controller, "x", &[messi]).await.unwrap_err();
    assert!(
        e.message.starts_with("faces[0]: too_small"),
        "{}",
        e.message
    );
    match gw.engine.query(Query::Person("x".into())).await {
        Some(QueryResult::Person(None)) => {}
        other => panic!("x must not exist: {other:?}"),
    }

    // Templates survive a restart.
    drop(vision);
    gw.stop().await;
    let gw = restart(config(dir.path(), "", "")).await;
    let vision = gw.vision.clone().unwrap();
    assert_eq!(vision.gallery.read().unwrap().count("obama"), 1);
    // Deleting the person forgets the face.
    let del = parse_platform("person.delete", br#"{"request_id":"d","id":"obama"}"#).unwrap();
    gw.controller.execute(del).await.unwrap();
    assert_eq!(vision.gallery.read().unwrap().count("obama"), 0);
    gw.stop().await;
}

async fn stream_scenario(
    liveness: &str,
) -> (Vec<Record>, Journal, Gateway, RtspServer, tempfile::TempDir) {
    let mut cam = RtspServer::new(Feed::Image(testdata("obama2.jpg")));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let devices = format!(
        "\n[[devices]]\nid = \"gate-cam\"\ndriver = \"camera\"\ndoor = \"gate\"\nurl = \"{}\"\nfps = 5\ntimeout_ms = 6000\n",
        cam.url()
    );
    let gw = Gateway::start(config(
        &dir,
        &format!("liveness = \"{liveness}\""),
        &devices,
    ))
    .await
    .unwrap();
    let obama = std::fs::read(testdata("obama.jpg")).unwrap();
    upsert(&gw.controller, "obama", &[obama]).await.unwrap();
    // The camera comes up after the enrollment (the driver keeps retrying until then).
    cam.spawn().await;
    let j = gw.journal.clone();
    let found = wait_record(&j, 40, |r| face_decision(r).is_some()).await;
    assert!(
        found.is_some(),
        "no face decision; journal: {:?}",
        records(&j)
    );
    (records(&j), j, gw, cam, tmp)
}

#[tokio::test]
async fn an_rtsp_camera_with_the_enrolled_face_opens_the_door_and_journals_a_snapshot() {
    let (recs, j, gw, mut cam, _dir) = stream_scenario("off").await;
    let e = recs.iter().find_map(face_decision).unwrap();
    let d = e.decision.as_ref().unwrap();
    assert!(d.granted, "{e:?}");
    assert_eq!(e.person.as_ref().map(|p| p.id.as_str()), Some("obama"));
    assert_eq!(e.device.as_str(), "gate-cam");
    assert!(e.similarity.unwrap_or(0.0) >= 0.45, "{e:?}");
    let snap = e.snapshot.as_ref().expect("a snapshot");
    let jpeg = j.snapshot(&snap.sha256).unwrap().expect("snapshot stored");
    assert!(jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.len() as u64 == snap.bytes);
    // The lock was pulsed: the door panel reports its door opening.
    let opened = wait_record(&j, 10, |r| {
        matches!(&r.body, RecordBody::Event(e) if e.device.as_str() == "gate-lock"
            && serde_json::to_string(&e).unwrap_or_default().contains("door_contact"))
    })
    .await;
    assert!(opened.is_some(), "door did not open: {:?}", records(&j));
    // One decision per pass: the face stays in view, no second decision.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let decisions = records(&j)
        .iter()
        .filter(|r| face_decision(r).is_some())
        .count();
    assert_eq!(decisions, 1);
    gw.stop().await;
    cam.kill().await;
}

#[tokio::test]
async fn a_still_photo_held_to_the_camera_fails_the_liveness_gate() {
    let (recs, _j, gw, mut cam, _dir) = stream_scenario("motion").await;
    let e = recs.iter().find_map(face_decision).unwrap();
    let d = e.decision.as_ref().unwrap();
    assert!(!d.granted);
    assert_eq!(d.reason.to_string(), "no_usable_face", "{e:?}");
    assert!(e.person.is_none());
    gw.stop().await;
    cam.kill().await;
}

#[tokio::test]
async fn a_gate_camera_without_plate_reading_gets_its_plates_read_from_video() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/plates/ccpd/images");
    let photo = data.join(
        "00723180076628-90_91-349&464_520&519-518&521_346&524_344&470_516&467-0_0_22_31_30_30_3-112-14.jpg",
    );
    if !photo.exists() {
        eprintln!("skipped: {} absent (shared test data)", photo.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The car photo as the camera's stream (a one-frame file, replayed).
    let devices = format!(
        "\n[[devices]]\nid = \"car-cam\"\ndriver = \"camera\"\ndoor = \"gate\"\nurl = \"{}\"\nfps = 2\n\n[plates]\ncameras = [\"car-cam\"]\n\n[[persons]]\nid = \"r-car\"\nname = \"car owner\"\ngroup = \"resident\"\ncredentials = [\"plate:皖AY766D\"]\n",
        photo.display()
    );
    let cfg = config(dir.path(), "", &devices);
    let gw = Gateway::start(cfg).await.unwrap();
    let j = gw.journal.clone();
    let read = wait_record(&j, 40, |r| {
        matches!(&r.body, RecordBody::Event(e) if e.kind.to_string() == "vehicle" && e.decision.is_some())
    })
    .await;
    let Some(Record {
        body: RecordBody::Event(e),
        ..
    }) = read
    else {
        panic!("no vehicle decision: {:?}", records(&j));
    };
    assert_eq!(
        e.credential.as_ref().map(|c| c.value.as_str()),
        Some("皖AY766D")
    );
    assert!(e.decision.as_ref().unwrap().granted, "{e:?}");
    assert!(e.snapshot.is_some());
    // One read per pass, although the frame keeps coming.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = records(&j)
        .iter()
        .filter(|r| matches!(&r.body, RecordBody::Event(e) if e.kind.to_string() == "vehicle"))
        .count();
    assert_eq!(n, 1);
    gw.stop().await;
}

/// Live faces turning and walking (Intel's sample clips in ../shared/data)
/// pass the motion liveness gate: their tracks get decided, not refused.
#[tokio::test]
async fn live_faces_pass_the_motion_gate() {
    use drivers::camera::decode::VideoInput;
    use gateway::vision::matcher::Matcher;
    let clip = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/video/head-pose-face-detection-female-and-male.preview.gif");
    if !clip.exists() {
        eprintln!("skipped: {} absent (shared test data)", clip.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The preview clips are 480x270: their faces are small.
    let faces = "liveness = \"motion\"\nmin_face_px = 30\nmin_sharpness = 20";
    let gw = Gateway::start(config(dir.path(), faces, "")).await.unwrap();
    let vision = gw.vision.clone().unwrap();
    let v = vision.clone();
    let (live, refused) = tokio::task::spawn_blocking(move || {
        let source = drivers::camera::Source::File(clip);
        let mut video = VideoInput::open(
            &source,
            std::time::Duration::from_secs(10),
            tokio_util::sync::CancellationToken::new(),
        )
        .unwrap();
        let mut m = Matcher::new(&v);
        let (mut live, mut refused) = (0, 0);
        let mut t = chrono::Utc::now();
        while video.advance().unwrap() {
            t += chrono::Duration::milliseconds(100);
            let img = video.picture(1280).unwrap();
            let f = drivers::Frame {
                device: drivers::DeviceId::new("cam"),
                captured_at: t,
                width: img.width,
                height: img.height,
                bgr: img.data.into(),
            };
            for ev in m.process(&v, &f) {
                if let drivers::EventBody::Credential(r) = ev.body {
                    if r.similarity.is_some() {
                        live += 1;
                    } else {
                        refused += 1;
                    }
                }
            }
        }
        (live, refused)
    })
    .await
    .unwrap();
    eprintln!("tracks decided: {live}, refused as not usable: {refused}");
    assert!(live > 0 && refused == 0, "live {live}, refused {refused}");
    drop(vision);
    gw.stop().await;
}
