//! The commented `[[devices]]` examples of config/gateway.toml stay true to the
//! code: each one, uncommented, passes `Config::parse` (what `gatewayd check` runs).

use gateway::config::Config;
use std::path::Path;

fn examples() -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/gateway.toml"),
    )
    .expect("config/gateway.toml");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line == "# [[devices]]" {
            current = Some("[[devices]]\n".into());
            continue;
        }
        if let Some(block) = current.as_mut() {
            match line.strip_prefix("# ") {
                Some(rest) => {
                    block.push_str(rest);
                    block.push('\n');
                }
                None => {
                    out.push(current.take().unwrap_or_default());
                }
            }
        }
    }
    out.extend(current);
    out
}

#[test]
fn every_device_example_parses() {
    let blocks = examples();
    let drivers: Vec<&str> = ["osdp", "modbus", "lpr-http", "llrp"].to_vec();
    for d in &drivers {
        assert!(
            blocks
                .iter()
                .any(|b| b.contains(&format!("driver = \"{d}\""))),
            "no example for driver {d}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    std::fs::write(
        dir.path().join("keys/lobby-reader.scbk"),
        "00112233445566778899aabbccddeeff\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("keys/car-gate-cam.secret"),
        "a-long-secret\n",
    )
    .unwrap();
    for block in blocks {
        let text = format!(
            r#"
[gateway]
id = "gw"
estate = "e"
data_dir = "data"
[[doors]]
id = "lobby"
zone = "a"
[[doors]]
id = "car-gate"
zone = "b"
[[doors]]
id = "lift-a"
zone = "a"
kind = "elevator"
{block}"#
        );
        if let Err(e) = Config::parse(&text, dir.path()) {
            panic!("example does not parse: {e:?}\n{block}");
        }
    }
}
