//! `GET /metrics`: the gateway's figures in the Prometheus text format
//! (journal, uplink, alarms, devices, doors, console), read fresh per scrape.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::AppState;
use crate::contract::Severity;
use crate::engine::DoorStatus;

/// Counters kept by the console itself.
#[derive(Default)]
pub struct Metrics {
    logins_ok: AtomicU64,
    logins_failed: AtomicU64,
    logins_limited: AtomicU64,
    live_clients: Arc<AtomicU64>,
    writes: AtomicU64,
}

/// Counts a live feed while it is open.
pub struct LiveGuard(Arc<AtomicU64>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn login(&self, outcome: &str) {
        let c = match outcome {
            "ok" => &self.logins_ok,
            "limited" => &self.logins_limited,
            _ => &self.logins_failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn live_client(&self) -> LiveGuard {
        self.live_clients.fetch_add(1, Ordering::Relaxed);
        LiveGuard(self.live_clients.clone())
    }

    pub fn live_clients(&self) -> u64 {
        self.live_clients.load(Ordering::Relaxed)
    }
}

/// Writes one metric family.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{v}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Renders every figure.
pub async fn render(st: &AppState) -> String {
    let mut o = Out(String::with_capacity(4096));
    let j = &st.journal;
    o.one(
        "gatewayd_journal_last_seq",
        "counter",
        "Seq of the newest durable journal record.",
        j.last_committed() as f64,
    );
    o.one(
        "gatewayd_journal_queued_records",
        "gauge",
        "Records handed to the journal writer and not yet durable.",
        j.queued() as f64,
    );
    o.one(
        "gatewayd_journal_stored_bytes",
        "gauge",
        "Bytes of records and snapshots in the journal.",
        j.stored_bytes() as f64,
    );
    o.one(
        "gatewayd_journal_disk_bytes",
        "gauge",
        "Bytes the journal's files take on disk (the disk budget's measure).",
        j.disk_bytes() as f64,
    );
    o.one(
        "gatewayd_journal_pending_bytes",
        "gauge",
        "Memory held by records waiting for the disk ([retention] max_pending_mb).",
        j.pending_bytes() as f64,
    );
    o.one(
        "gatewayd_journal_refused_total",
        "counter",
        "Records the journal could not keep (pending memory used up while the disk failed).",
        j.refused_total() as f64,
    );
    o.one(
        "gatewayd_grants_before_durable_total",
        "counter",
        "Doors released after waiting 20 ms, before their pass's record was durable.",
        st.grants
            .before_durable
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    o.one(
        "gatewayd_grants_unrecorded_total",
        "counter",
        "Doors released for passes whose record the journal refused.",
        st.grants
            .unrecorded
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    o.one(
        "gatewayd_journal_healthy",
        "gauge",
        "1 while records are made durable; 0 while the journal is degraded.",
        if j.health().is_ok() { 1.0 } else { 0.0 },
    );
    if let Some(u) = &st.uplink {
        o.one(
            "gatewayd_uplink_connected",
            "gauge",
            "1 while the MQTT link to the platform is up.",
            if u.connected() { 1.0 } else { 0.0 },
        );
        o.one(
            "gatewayd_uplink_published_total",
            "counter",
            "MQTT messages published since start, resends included.",
            u.published() as f64,
        );
        o.one(
            "gatewayd_uplink_unsendable_total",
            "counter",
            "Records skipped since start as too large to send (each reported by a data_loss alarm).",
            u.unsendable() as f64,
        );
        o.one(
            "gatewayd_uplink_backlog_records",
            "gauge",
            "Journal records not yet acknowledged by the broker.",
            u.backlog(j) as f64,
        );
    }
    let engine_up = match st.engine.open_alarms().await {
        Ok(alarms) => {
            o.family(
                "gatewayd_alarms_open",
                "gauge",
                "Open alarms (raised, acknowledged or escalated, not cleared) by severity.",
            );
            for sev in [
                Severity::Critical,
                Severity::Major,
                Severity::Minor,
                Severity::Info,
            ] {
                let n = alarms.iter().filter(|a| a.severity == sev).count();
                let label = serde_json::to_value(sev)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                o.sample("gatewayd_alarms_open", &[("severity", &label)], n as f64);
            }
            true
        }
        Err(_) => false,
    };
    if let Ok(devices) = st.engine.devices().await {
        o.family(
            "gatewayd_device_online",
            "gauge",
            "1 online, 0 offline, -1 not heard from yet, per device.",
        );
        for d in &devices {
            let v = match d.online {
                Some(true) => 1.0,
                Some(false) => 0.0,
                None => -1.0,
            };
            o.sample(
                "gatewayd_device_online",
                &[("device", d.id.as_str()), ("driver", d.driver)],
                v,
            );
        }
    }
    if let Ok(doors) = st.engine.doors().await {
        o.family(
            "gatewayd_doors",
            "gauge",
            "Doors by state (closed, open, held, forced).",
        );
        for (status, label) in [
            (DoorStatus::Closed, "closed"),
            (DoorStatus::Open, "open"),
            (DoorStatus::Held, "held"),
            (DoorStatus::Forced, "forced"),
        ] {
            let n = doors.iter().filter(|d| d.view.status == status).count();
            o.sample("gatewayd_doors", &[("state", label)], n as f64);
        }
    }
    o.one(
        "gatewayd_engine_up",
        "gauge",
        "1 while the engine answers queries.",
        if engine_up { 1.0 } else { 0.0 },
    );
    let m = &st.metrics;
    o.family(
        "gatewayd_console_logins_total",
        "counter",
        "Console login attempts by outcome (ok, failed, limited).",
    );
    for (label, c) in [
        ("ok", &m.logins_ok),
        ("failed", &m.logins_failed),
        ("limited", &m.logins_limited),
    ] {
        o.sample(
            "gatewayd_console_logins_total",
            &[("outcome", label)],
            c.load(Ordering::Relaxed) as f64,
        );
    }
    o.one(
        "gatewayd_console_sessions",
        "gauge",
        "Console sessions not expired.",
        st.sessions.count() as f64,
    );
    o.one(
        "gatewayd_console_live_clients",
        "gauge",
        "Open live feeds (/api/live).",
        m.live_clients() as f64,
    );
    let v = &st.vision;
    o.one(
        "gatewayd_vision_frames_total",
        "counter",
        "Camera frames the face/plate matcher processed.",
        v.frames.load(Ordering::Relaxed) as f64,
    );
    o.one(
        "gatewayd_vision_frames_dropped_total",
        "counter",
        "Camera frames dropped because the matcher was busy (by design: only the newest frames matter).",
        v.dropped.load(Ordering::Relaxed) as f64,
    );
    o.one(
        "gatewayd_face_templates",
        "gauge",
        "Face templates in the gallery.",
        v.templates.load(Ordering::Relaxed) as f64,
    );
    o.family(
        "gatewayd_plate_pushes_refused_total",
        "counter",
        "Plate camera pushes refused, by camera and reason (secret, malformed, invalid, not_jpeg, too_large, timeout).",
    );
    for (device, reason, n) in drivers::lpr_http::refused::totals() {
        o.sample(
            "gatewayd_plate_pushes_refused_total",
            &[("device", &device), ("reason", reason)],
            n as f64,
        );
    }
    let plates = drivers::lpr_http::server::connection_stats();
    for (name, help, console, of_plates) in [
        (
            "gatewayd_http_connections_refused_total",
            "Connections closed at once because the listener or the client address had too many open.",
            &st.http.refused,
            (|p: &(String, u64, u64)| p.1) as fn(&(String, u64, u64)) -> u64,
        ),
        (
            "gatewayd_http_connections_timed_out_total",
            "Connections closed for a slow handshake, head or body, or for no traffic.",
            &st.http.timed_out,
            |p: &(String, u64, u64)| p.2,
        ),
    ] {
        o.family(name, "counter", help);
        o.sample(
            name,
            &[("listener", "console")],
            console.load(Ordering::Relaxed) as f64,
        );
        for p in &plates {
            let l = format!("plates {}", p.0);
            o.sample(name, &[("listener", &l)], of_plates(p) as f64);
        }
    }
    o.one(
        "gatewayd_console_writes_total",
        "counter",
        "Changes made on the console (acknowledgements, door openings, roster, users).",
        m.writes.load(Ordering::Relaxed) as f64,
    );
    o.0
}

/// `GET /metrics`
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&st).await,
    )
}
