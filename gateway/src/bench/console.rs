//! The console: how long a device event takes to reach a browser's live feed
//! (engine, durable journal, Server-Sent Events over HTTP), against the durable
//! append alone measured in the same run; and an event search over a large
//! journal against a plain scan of the same records.

use anyhow::{bail, Context, Result};
use chrono::Utc;
use drivers::{Credential, CredentialKind, CredentialRead, DeviceEvent, DeviceId, EventBody};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Config;
use crate::console::search::{self, EventParams, EventQuery};
use crate::daemon::Gateway;
use crate::journal::{Draft, EventAction, EventKind, EventRecord, Journal, Stored};

const PASSWORD: &str = "bench-password";

fn config(hash: &str) -> String {
    format!(
        r#"
[gateway]
id = "bench"
estate = "bench"
data_dir = "data"
[console]
listen = "127.0.0.1:0"
[[console.users]]
name = "bench"
role = "guard"
password_hash = "{hash}"
[[doors]]
id = "main"
zone = "estate"
[[devices]]
id = "reader"
driver = "sim"
door = "main"
direction = "in"
"#
    )
}

/// One HTTP/1.1 request on a fresh connection; returns the stream after the request.
async fn request(addr: std::net::SocketAddr, head: &str, body: &str) -> Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    let req = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    Ok(s)
}

async fn login(addr: std::net::SocketAddr) -> Result<String> {
    let body = format!(r#"{{"user":"bench","password":"{PASSWORD}"}}"#);
    let mut s = request(
        addr,
        "POST /api/login HTTP/1.1\r\nContent-Type: application/json\r\nConnection: close",
        &body,
    )
    .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    out.lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .with_context(|| format!("login refused: {}", out.lines().next().unwrap_or_default()))
}

fn card_read(value: &str) -> Result<DeviceEvent> {
    Ok(DeviceEvent {
        device: DeviceId::new("reader"),
        at: Utc::now(),
        body: EventBody::Credential(CredentialRead::new(Credential::parse(
            CredentialKind::Card,
            value,
        )?)),
        receipt: Default::default(),
    })
}

/// Device event → engine → durable journal → SSE → the client's socket.
async fn live_latency(reads: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hash = crate::console::auth::hash_password(PASSWORD).map_err(anyhow::Error::msg)?;
    let cfg = Config::parse(&config(&hash), dir.path()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let gw = Gateway::start(cfg).await?;
    let addr = gw.console_addr.context("no console")?;
    let cookie = login(addr).await?;
    let mut live = request(
        addr,
        &format!("GET /api/live HTTP/1.1\r\nCookie: {cookie}\r\nAccept: text/event-stream"),
        "",
    )
    .await?;
    let mut buf = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    // Wait for the feed to start (its `hello`).
    while !String::from_utf8_lossy(&buf).contains("event: hello") {
        let n = tokio::time::timeout(Duration::from_secs(10), live.read(&mut chunk)).await??;
        if n == 0 {
            bail!("the live feed closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut h = hdrhistogram::Histogram::<u64>::new(3)?;
    for i in 0..reads {
        let value = format!("{}", 700_000 + i);
        let needle = format!("\"value\":\"{value}\"");
        buf.clear();
        let t = Instant::now();
        gw.events.send(card_read(&value)?).await?;
        loop {
            let n = tokio::time::timeout(Duration::from_secs(10), live.read(&mut chunk)).await??;
            if n == 0 {
                bail!("the live feed closed");
            }
            buf.extend_from_slice(&chunk[..n]);
            if String::from_utf8_lossy(&buf).contains(&needle) {
                break;
            }
        }
        h.record(t.elapsed().as_micros() as u64)?;
    }
    println!(
        "console: card read to the browser's live feed (engine, fsync, SSE): {}",
        super::percentiles(&h)
    );
    let live_p50 = h.value_at_quantile(0.5) as f64;
    drop(live);
    gw.stop().await;

    // The reference: one durable append alone, on the same disk.
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new().path(dir.path().join("db")).open()?;
    let journal = Journal::open(&db, "bench", "bench")?;
    let mut r = hdrhistogram::Histogram::<u64>::new(3)?;
    for _ in 0..reads {
        let t = Instant::now();
        journal.append(vec![draft(1, None)]).await?;
        r.record(t.elapsed().as_micros() as u64)?;
    }
    let ref_p50 = r.value_at_quantile(0.5) as f64;
    println!(
        "console: reference, one durable append alone: {}; live feed p50 = {:.2} x the append (goal: alarms on screen within 1 s)",
        super::percentiles(&r),
        live_p50 / ref_p50.max(1.0)
    );
    Ok(())
}

fn draft(i: usize, plate: Option<&str>) -> Draft {
    let mut e = EventRecord::new(
        if plate.is_some() {
            EventKind::Vehicle
        } else {
            EventKind::Access
        },
        EventAction::Decision,
        DeviceId::new("reader"),
    );
    e.door = Some(crate::contract::DoorId::new(if i.is_multiple_of(3) {
        "gate"
    } else {
        "lobby"
    }));
    e.credential = Some(match plate {
        Some(p) => Credential {
            kind: CredentialKind::Plate,
            value: p.to_owned(),
        },
        None => Credential {
            kind: CredentialKind::Card,
            value: format!("{}", 100_000 + i % 5000),
        },
    });
    Draft::event(Utc::now(), e)
}

/// A search for one plate through a large journal, against a bare scan.
async fn search_speed(records: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new().path(dir.path().join("db")).open()?;
    let journal = Journal::open(&db, "bench", "bench")?;
    let mut left = records;
    let mut i = 0;
    while left > 0 {
        let n = left.min(1000);
        let batch = (0..n)
            .map(|k| {
                let j = i + k;
                // One in a thousand is the wanted car.
                draft(j, (j % 1000 == 7).then_some("京A12345"))
            })
            .collect();
        journal.append_nowait(batch)?;
        i += n;
        left -= n;
    }
    let mut committed = journal.committed();
    while (*committed.borrow() as usize) < records {
        committed.changed().await?;
    }
    let j = journal.clone();
    let (found, search_s, scan_s, scanned) = tokio::task::spawn_blocking(move || {
        let q = EventQuery::parse(&EventParams {
            plate: Some("京A12345".into()),
            limit: Some("500".into()),
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!(e.message))?;
        // Page after page, as the page's "more" button does, to the oldest record.
        let t = Instant::now();
        let mut found = 0;
        let mut q = q;
        loop {
            let page = search::events(&j, &q);
            found += page.records.len();
            match page.next {
                Some(next) => q.cursor = Some(next),
                None => break,
            }
        }
        let search_s = t.elapsed().as_secs_f64();
        // Reference: walk every stored record and read its header, nothing more.
        let t = Instant::now();
        let scanned = j
            .range(0, u64::MAX, true)
            .filter(|(_, raw)| Stored::decode(raw).is_some_and(|s| !s.alarm))
            .count();
        Ok::<_, anyhow::Error>((found, search_s, t.elapsed().as_secs_f64(), scanned))
    })
    .await??;
    println!(
        "console: plate search through {records} events: {found} found in {:.1} ms; a bare scan of the {scanned} records: {:.1} ms ({:.2} x)",
        search_s * 1000.0,
        scan_s * 1000.0,
        search_s / scan_s.max(1e-9)
    );
    Ok(())
}

pub async fn run(reads: usize, records: usize) -> Result<()> {
    live_latency(reads).await?;
    search_speed(records).await
}
