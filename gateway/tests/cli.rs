//! The installer's commands: `gatewayd check` names the key and line of every
//! problem and exits non-zero; `hash-password` makes hashes the console accepts.

use std::io::Write;
use std::process::{Command, Stdio};

fn gatewayd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gatewayd"))
}

fn check(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    let out = gatewayd()
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const HEAD: &str = "[gateway]\nid = \"g\"\nestate = \"e\"\ndata_dir = \"d\"\n";

#[test]
fn shipped_configs_are_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for file in ["config/gateway.toml", "config/demo.toml"] {
        let out = gatewayd()
            .args(["check", "-c"])
            .arg(format!("{root}/{file}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
    }
}

#[test]
fn each_problem_is_reported_with_key_and_line() {
    let cases: &[(&str, &str)] = &[
        // (config after [gateway], expected fragment "line: key: ...")
        ("[[doors]]\nid = \"d1\"\nzone = \"z\"\ncolour = \"red\"\n", ":8: doors[0].colour: unknown field `colour`"),
        ("[[doors]]\nid = \"d1\"\nzone = \"z\"\nopen_ms = \"long\"\n", ":8: doors[0].open_ms: invalid type"),
        ("[[doors]]\nid = \"d1\"\nzone = \"z\"\n[[doors]]\nid = \"d1\"\nzone = \"z\"\n", ":9: doors[1].id: duplicate door id `d1`"),
        ("[[devices]]\nid = \"x\"\ndriver = \"sim\"\ndoor = \"west\"\n", ":8: devices[0].door: no door `west`"),
        ("[[devices]]\nid = \"x\"\ndriver = \"telepathy\"\n", ":7: devices[0].driver: unknown driver"),
        ("[[devices]]\nid = \"x\"\ndriver = \"sim\"\nunknown_rate = 2.0\n", ":8: devices[0].unknown_rate: must be between 0 and 1"),
        ("[mqtt]\nurl = \"mqtt://h\"\nca_file = \"missing.pem\"\n", ":7: mqtt.ca_file: cannot read"),
        ("[mqtt]\nurl = \"ws://h\"\n", ":6: mqtt.url: `ws://h` must start with mqtt://"),
        ("[[schedules]]\nid = \"s\"\nwindows = [\"someday 07:00-08:00\"]\n", ":7: schedules[0].windows: `someday 07:00-08:00`"),
        ("[[console.users]]\nname = \"g\"\nrole = \"janitor\"\npassword_hash = \"x\"\n", "console.users[0].role: unknown variant `janitor`"),
        ("[[persons]]\nid = \"p\"\nname = \"P\"\ngroup = \"resident\"\ncredentials = [\"card:12ab\"]\n", ":9: persons[0].credentials[0]: card number `12ab`"),
        ("[gateway2]\n", ":5: gateway2: unknown field `gateway2`"),
    ];
    for (extra, want) in cases {
        let (code, _, err) = check(&format!("{HEAD}{extra}"));
        assert_eq!(code, 1, "{extra:?} should fail; got: {err}");
        assert!(
            err.contains(want),
            "for {extra:?} expected `{want}` in:\n{err}"
        );
    }
    // Broken TOML names the line too.
    let (code, _, err) = check("[gateway\nid = 1\n");
    assert_eq!(code, 1);
    assert!(
        err.contains("gateway.toml:1:") && err.contains("not valid TOML"),
        "{err}"
    );
    // Several problems at once are all reported.
    let (_, _, err) = check(&format!(
        "{HEAD}[[devices]]\nid = \"a\"\ndriver = \"sim\"\ndoor = \"nope\"\n[[devices]]\nid = \"a\"\ndriver = \"sim\"\n"
    ));
    assert_eq!(err.lines().count(), 2, "{err}");
    let (code, _, err) = check(""); // no [gateway]
    assert_eq!(code, 1);
    assert!(err.contains("missing field `gateway`"), "{err}");
    let out = gatewayd()
        .args(["check", "-c", "/nonexistent/gw.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));
}

#[test]
fn hash_password_makes_a_verifiable_argon2_hash() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let mut child = gatewayd()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    let parsed = PasswordHash::new(hash.trim()).unwrap();
    assert!(argon2::Argon2::default()
        .verify_password(b"correct horse battery", &parsed)
        .is_ok());
    assert!(argon2::Argon2::default()
        .verify_password(b"wrong", &parsed)
        .is_err());
    // Too short a password is refused.
    let mut child = gatewayd()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    assert!(!child.wait_with_output().unwrap().status.success());
}

/// `gatewayd face calibrate` reads the estate's own gallery and prints its
/// impostor scores and the threshold a false-accept target gives; with the
/// store held by another process it says to stop the gateway first.
#[test]
fn face_calibrate_prints_the_threshold_for_the_estates_gallery() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, format!("{HEAD}[faces]\nfalse_accept_rate = 1e-3\n")).unwrap();
    let db = sled::open(dir.path().join("d/db")).unwrap();
    let store = gateway::vision::store::FaceStore::open(&db).unwrap();
    // 300 persons with two templates each: random directions, the second a
    // little off the first (genuine pairs score high, impostor pairs near 0).
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let unit = |v: Vec<f32>| {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
    };
    let mut templates = Vec::new();
    for p in 0..300 {
        let a = unit(
            (0..models::face::DIM)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect(),
        );
        let b = unit(a.iter().map(|x| x + rng.gen_range(-0.05..0.05)).collect());
        templates.push((format!("p{p}"), a));
        templates.push((format!("p{p}"), b));
    }
    store
        .add_many(templates.iter().map(|(p, t)| (p.as_str(), t.as_slice())))
        .unwrap();

    let run = |far: &str| {
        gatewayd()
            .args(["face", "calibrate", "--far", far, "-c"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let held = run("1e-3");
    assert!(!held.status.success());
    let err = String::from_utf8_lossy(&held.stderr);
    assert!(err.contains("stop gatewayd first"), "{err}");

    drop(store);
    drop(db);
    let threshold = |far: &str| -> f32 {
        let mut out = run(far);
        // sled lets go of its lock a moment after the last handle.
        for _ in 0..50 {
            if out.status.success() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            out = run(far);
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("300 persons, 600 templates"), "{text}");
        assert!(text.contains("expected true accept rate: 100.0%"), "{text}");
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("match threshold the gateway uses: "))
            .unwrap_or_else(|| panic!("{text}"));
        line.trim().parse().unwrap()
    };
    let loose = threshold("1e-2");
    let strict = threshold("1e-5");
    assert!(strict > loose, "{strict} > {loose}");
    // Random 128-d directions: impostor similarities have sd ~0.09, so a
    // 1e-5 / 300 per-comparison rate needs well above 0.3.
    assert!(strict > 0.3 && strict < 0.9, "{strict}");
}
