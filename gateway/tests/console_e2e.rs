//! The console end to end, in headless Chromium driven over WebDriver
//! (chromedriver): a guard logs in, sees alarms raised by simulated devices
//! appear without reloading (most severe first), acknowledges one and sees it
//! published as `acked` on a real mosquitto, opens a door (journaled and
//! published with the guard's name), and the page reconnects by itself after
//! the gateway restarts and shows what was raised meanwhile. Screenshots are
//! saved under `target/tmp/console-e2e/`.

mod common;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

use gateway::broker::{free_port, BrokerOptions, Mosquitto};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver on a free port, killed when dropped.
struct Driver {
    _child: Child,
    port: u16,
}

async fn chromedriver() -> Driver {
    let port = free_port().unwrap();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver {
        _child: child,
        port,
    }
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", "--lang=zh-CN",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

/// Every message on the gateway's topics.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

async fn subscribe(broker: &Mosquitto) -> (Seen, tokio::task::JoinHandle<()>) {
    let mut opts = MqttOptions::new("e2e-watcher", "127.0.0.1", broker.port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(opts, 100);
    client
        .subscribe("cm/estate-1/gw-test/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let seen: Seen = Arc::default();
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let _client = client;
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    out.lock().unwrap().push((p.topic.clone(), v));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    (seen, task)
}

async fn wait_mqtt(seen: &Seen, what: &str, pred: impl Fn(&str, &Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some((_, v)) = seen.lock().unwrap().iter().find(|(t, v)| pred(t, v)) {
            return v.clone();
        }
        assert!(
            Instant::now() < deadline,
            "not published on MQTT within 15 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn find(c: &Client, css: &str, within: Duration) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(within)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let _ = save(c, "failure").await;
            panic!("`{css}` did not appear within {within:?}: {e}");
        }
    }
}

/// Clicks what `css` finds, finding it again if the page redrew it meanwhile.
async fn click(c: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let e = find(c, css, Duration::from_secs(10)).await;
        match e.click().await {
            Ok(()) => return,
            Err(err) if Instant::now() < deadline => {
                eprintln!("click on `{css}` retried: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("cannot click `{css}`: {err}"),
        }
    }
}

async fn save(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.expect("screenshot");
    let path = shots().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("script runs")
}

fn config(console_port: u16, broker: &Mosquitto, extra: &str) -> String {
    config_text(
        "",
        &format!(
            r#"
[mqtt]
url = "{}"

{extra}
"#,
            broker.url()
        ),
    )
    .replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{console_port}\""),
    )
}

/// Run 1: an SOS button's link goes down (a major alarm), then smoke (critical).
const RUN1: &str = r#"
[[persons]]
id = "r-001"
name = "张伟"
group = "resident"
credentials = ["card:10001", "plate:京A12345"]

[[devices]]
id = "sos-1203"
name = "SOS button 12-03"
driver = "sim"
zone = "estate"
profile = "sensors"
sensors = ["sos"]
script = [{ at_ms = 7000, link = "down" }]

[[devices]]
id = "smoke-b1"
driver = "sim"
zone = "estate"
profile = "sensors"
sensors = ["smoke"]
script = [{ at_ms = 8000, sensor = "smoke", active = true }]
"#;

/// Run 2, after the restart: gas.
const RUN2: &str = r#"
[[devices]]
id = "gas-b1"
driver = "sim"
zone = "estate"
profile = "sensors"
sensors = ["gas"]
script = [{ at_ms = 2500, sensor = "gas", active = true }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_watches_acknowledges_and_opens_in_chromium() {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            eprintln!("SKIPPED: {tool} is missing (apt-get install chromium chromium-driver)");
            return;
        }
    }
    let broker = Mosquitto::start(BrokerOptions::default()).expect("mosquitto starts");
    let (seen, watcher) = subscribe(&broker).await;
    let driver = chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;

    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let started = Instant::now();
    let gw = start(&config(port, &broker, RUN1), dir.path()).await;
    let base = format!("http://127.0.0.1:{port}");

    // Log in through the form.
    c.goto(&format!("{base}/")).await.unwrap();
    find(&c, "#login-form", Duration::from_secs(10)).await;
    assert_eq!(c.title().await.unwrap(), "门岗控制台", "Chinese by default");
    save(&c, "0-login").await;
    c.find(Locator::Css("#login-user"))
        .await
        .unwrap()
        .send_keys("guard1")
        .await
        .unwrap();
    c.find(Locator::Css("#login-password"))
        .await
        .unwrap()
        .send_keys(GUARD_PASSWORD)
        .await
        .unwrap();
    click(&c, "#login-submit").await;
    find(&c, "#conn[data-state='live']", Duration::from_secs(10)).await;
    let logged_in = started.elapsed();
    assert!(
        logged_in < Duration::from_secs(6),
        "logging in took {logged_in:?}: the scripted alarms (at 7 s) may come before the page could see them arrive"
    );
    // A mark that a reload would wipe, and a record of script errors.
    js(
        &c,
        "window.__e2e = 42; window.__errors = []; window.addEventListener('error', e => window.__errors.push(String(e.message)));",
    )
    .await;

    // A resident's face is recognised at the gate: the pass shows with its picture.
    gw.events
        .send(face_seen("gate-panel", "r-001"))
        .await
        .unwrap();
    let pass = find(
        &c,
        "#live-feed li.feed-item img.thumb",
        Duration::from_secs(10),
    )
    .await;
    let loaded = async {
        while js(
            &c,
            "return document.querySelector('#live-feed img.thumb').naturalWidth",
        )
        .await
            != json!(320)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), loaded)
        .await
        .expect("the snapshot thumbnail loads");
    drop(pass);
    let item = c
        .find(Locator::Css("#live-feed li.feed-item"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(item.contains("张伟") && item.contains("通过"), "{item}");

    // Both alarms arrive over the live feed, the critical one listed first.
    let smoke = find(&c, "li.alarm[data-type='smoke']", Duration::from_secs(20)).await;
    find(
        &c,
        "li.alarm[data-type='device_offline']",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        smoke.attr("data-via").await.unwrap().as_deref(),
        Some("live")
    );
    assert_eq!(
        js(&c, "return window.__e2e").await,
        json!(42),
        "the page was reloaded"
    );
    let order = js(
        &c,
        "return [...document.querySelectorAll('#alarm-list li.alarm')].map(e => e.dataset.type)",
    )
    .await;
    assert_eq!(
        order,
        json!(["smoke", "device_offline"]),
        "most severe first"
    );
    let text = smoke.text().await.unwrap();
    assert!(text.contains("烟雾报警") && text.contains("紧急"), "{text}");
    assert_eq!(
        c.find(Locator::Css("#alarm-count"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "2"
    );
    let shot = save(&c, "1-alarms").await;
    eprintln!("screenshot: {}", shot.display());

    // Acknowledge the smoke alarm with a note.
    click(&c, "li.alarm[data-type='smoke'] button.ack").await;
    let note = find(&c, "#ack-note", Duration::from_secs(5)).await;
    save(&c, "2-ack-dialog").await;
    note.send_keys("已到现场查看，烤面包烟雾").await.unwrap();
    click(&c, "#modal-ok").await;
    find(
        &c,
        "li.alarm[data-type='smoke'][data-state='acked']",
        Duration::from_secs(10),
    )
    .await;
    let acked = wait_mqtt(&seen, "smoke acked", |t, v| {
        t == "cm/estate-1/gw-test/alarms/smoke" && v["state"] == "acked"
    })
    .await;
    assert_eq!(acked["ack"]["by"], "console/guard1");
    assert_eq!(acked["ack"]["note"], "已到现场查看，烤面包烟雾");
    assert_eq!(acked["severity"], "critical");

    // Open the door, confirming first.
    click(&c, "#tabs button[data-tab='doors']").await;
    click(&c, ".door-card[data-door='gate'] button.open-door").await;
    find(&c, "dialog[open] #modal-ok.danger", Duration::from_secs(5)).await;
    save(&c, "3-door-confirm").await;
    click(&c, "#modal-ok").await;
    let release = wait_mqtt(&seen, "door release", |t, v| {
        t == "cm/estate-1/gw-test/events/access" && v["action"] == "door_release"
    })
    .await;
    assert_eq!(release["door"], "gate");
    assert_eq!(release["by"], "console/guard1");
    find(&c, "#toast:not([hidden])", Duration::from_secs(5)).await;
    save(&c, "4-doors").await;

    // The gateway restarts; the page notices, reconnects by itself and shows
    // the alarm raised after the restart, still without a reload.
    click(&c, "#tabs button[data-tab='alarms']").await;
    gw.stop().await;
    find(&c, "#conn[data-state='lost']", Duration::from_secs(10)).await;
    let gw = start(&config(port, &broker, &format!("{RUN1}{RUN2}")), dir.path()).await;
    find(&c, "li.alarm[data-type='gas']", Duration::from_secs(20)).await;
    find(&c, "#conn[data-state='live']", Duration::from_secs(10)).await;
    assert_eq!(
        js(&c, "return window.__e2e").await,
        json!(42),
        "the page was reloaded"
    );
    // The acknowledged smoke alarm is still there (its sensor is still active).
    find(
        &c,
        "li.alarm[data-type='smoke'][data-state='acked']",
        Duration::from_secs(5),
    )
    .await;
    save(&c, "5-after-restart").await;

    // English, and a phone-sized window.
    click(&c, "#app-view .lang-switch").await;
    assert_eq!(c.title().await.unwrap(), "Guard console");
    c.set_window_size(390, 844).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    save(&c, "6-phone-en").await;
    let overflow = js(
        &c,
        "return document.documentElement.scrollWidth > window.innerWidth + 1",
    )
    .await;
    assert_eq!(overflow, json!(false), "the page is wider than a phone");

    // An admin: the event search, the roster (a face photo refused in words),
    // the users.
    c.set_window_size(1400, 1000).await.unwrap();
    click(&c, "#app-view .lang-switch").await;
    click(&c, "#logout").await;
    find(&c, "#login-form", Duration::from_secs(5)).await;
    c.find(Locator::Css("#login-user"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    c.find(Locator::Css("#login-user"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    c.find(Locator::Css("#login-password"))
        .await
        .unwrap()
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    click(&c, "#login-submit").await;
    find(
        &c,
        "#app-view:not([hidden]) #conn[data-state='live']",
        Duration::from_secs(10),
    )
    .await;
    click(&c, "#tabs button[data-tab='events']").await;
    c.find(Locator::Css("#search-door"))
        .await
        .unwrap()
        .select_by_value("gate")
        .await
        .unwrap();
    c.find(Locator::Css("#search-kind"))
        .await
        .unwrap()
        .select_by_value("access")
        .await
        .unwrap();
    click(&c, "#search-form button[type='submit']").await;
    let found = async {
        loop {
            let rows = js(
                &c,
                "return [...document.querySelectorAll('#event-rows tr')].map(r => r.textContent)",
            )
            .await;
            let rows: Vec<String> = serde_json::from_value(rows).unwrap_or_default();
            // The filtered answer: only access events, the remote open among them.
            if rows.iter().any(|r| r.contains("guard1"))
                && rows.iter().all(|r| r.contains("人员通行"))
            {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let rows = tokio::time::timeout(Duration::from_secs(10), found)
        .await
        .expect("the remote open by guard1 is found");
    assert!(rows.iter().any(|r| r.contains("开门")), "{rows:?}");
    save(&c, "7-events").await;

    click(&c, "#tabs button[data-tab='roster']").await;
    click(&c, "#person-rows tr[data-person='r-001'] button.link").await;
    let photo = dir.path().join("face.jpg");
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.resize(2048, 0x20);
    std::fs::write(&photo, jpeg).unwrap();
    find(
        &c,
        "dialog[open] input[type='file']",
        Duration::from_secs(5),
    )
    .await
    .send_keys(&photo.display().to_string())
    .await
    .unwrap();
    click(&c, "#modal-ok").await;
    let error = find(&c, "#modal-error:not(:empty)", Duration::from_secs(5)).await;
    let text = error.text().await.unwrap();
    assert!(text.contains("未启用人脸识别"), "{text}");
    save(&c, "8-roster-face-refused").await;
    click(&c, "#modal-cancel").await;
    click(&c, "#tabs button[data-tab='users']").await;
    find(
        &c,
        "#user-rows tr[data-user='guard1']",
        Duration::from_secs(5),
    )
    .await;
    save(&c, "9-users").await;
    let errors = js(&c, "return window.__errors || []").await;
    assert_eq!(errors, json!([]), "script errors on the page");

    c.close().await.unwrap();
    gw.stop().await;
    watcher.abort();
}
