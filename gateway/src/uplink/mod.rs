//! The uplink: MQTT store-and-forward from the journal to the community
//! platform, and the platform's commands back.
//!
//! - `config`: the `[mqtt]` section and its checks.
//! - `topics`: the topic names of the contract.
//! - `connect`: client options (URL, TLS, credentials, last will).
//! - `client`: MQTT 5 and 3.1.1 behind one client and one event type.
//! - `lanes`: the outbox's cursors and PUBACK bookkeeping (pure logic).
//! - `replies`: request-id de-duplication with bounded memory (pure logic).
//! - this file: the task that publishes, tracks acknowledgements and runs commands.
//!
//! Every record is sent at least once, in `seq` order per lane, from the cursor
//! the broker last acknowledged (stored in the journal), so neither a broker
//! outage nor a crash of the gateway loses anything. Alarms have their own lane
//! and go first: they never wait behind a backlog of pass events.

mod client;
pub mod config;
mod connect;
pub mod lanes;
pub mod replies;
pub mod topics;

pub use config::{Identity, MqttSection, Protocol};
pub use connect::parse_url;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::contract::{CommandError, CommandName, ErrorCode};
use crate::control::{self, CommandOk, Controller};
use crate::engine::LossCause;
use crate::journal::{retention::Forwarded, Journal, Stored};
use client::{Client, Event, EventLoop};
use lanes::{Acked, Lane, Tag, Tracker};
use replies::{Replies, Seen};

/// Alarms in flight at most; rumqttc's own window is the events' window plus
/// this, so an alarm always finds a free slot, even behind a full event window.
const ALARM_WINDOW: usize = 64;
/// Records handed to rumqttc and not yet written: kept short, so that an alarm
/// queued behind them goes out within a few packets.
const MAX_UNWRITTEN: usize = 64;
use topics::Topics;

/// Why the uplink could not start.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("{0}")]
    Config(String),
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
}

/// What others may read of the uplink: how far the platform has got.
#[derive(Clone)]
pub struct UplinkState {
    alarms: Arc<AtomicU64>,
    events: Arc<AtomicU64>,
    /// The platform link: up or down (the engine flags decisions made while it is down).
    link: Arc<watch::Sender<bool>>,
    published: Arc<AtomicU64>,
    unsendable: Arc<AtomicU64>,
}

impl UplinkState {
    /// The cursors acknowledged by the broker.
    pub fn forwarded(&self) -> Forwarded {
        Forwarded {
            events: self.events.load(Ordering::Relaxed),
            alarms: self.alarms.load(Ordering::Relaxed),
        }
    }

    /// Records not yet acknowledged by the broker (an upper bound: the alarm
    /// lane is usually further on).
    pub fn backlog(&self, journal: &Journal) -> u64 {
        journal.last_committed().saturating_sub(
            self.events
                .load(Ordering::Relaxed)
                .min(self.alarms.load(Ordering::Relaxed)),
        )
    }

    pub fn connected(&self) -> bool {
        *self.link.borrow()
    }

    /// Records published since start (resends included).
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Records skipped since start because they exceed the largest packet
    /// that can be sent (each also reported by a `data_loss` alarm).
    pub fn unsendable(&self) -> u64 {
        self.unsendable.load(Ordering::Relaxed)
    }
}

/// The `P/status` payload.
pub fn status_payload(state: &str) -> Vec<u8> {
    status_with_reason(state, None)
}

/// `P/status` with why the gateway is `degraded`.
fn status_with_reason(state: &str, reason: Option<&str>) -> Vec<u8> {
    let mut v = serde_json::json!({
        "state": state,
        "ts": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(r) = reason {
        v["reason"] = r.into();
    }
    v.to_string().into_bytes()
}

/// `P/status` while connected: `online`, or `degraded` with the reason while
/// the journal cannot make records durable (the platform sees it at once).
fn live_status(journal: &Journal) -> Vec<u8> {
    match journal.health() {
        crate::journal::Health::Ok => status_payload("online"),
        crate::journal::Health::Degraded(reason) => status_with_reason("degraded", Some(&reason)),
    }
}

/// The `P/reply/{name}` payload.
#[derive(Serialize)]
struct Reply<'a> {
    request_id: Option<&'a str>,
    ok: bool,
    error: Option<&'a str>,
    code: Option<ErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a CommandOk>,
}

/// Characters of an error message echoed in a reply at most: serde's messages
/// quote the offending value, which a stranger chooses.
const MAX_ERROR_CHARS: usize = 500;

fn bounded(message: &str) -> std::borrow::Cow<'_, str> {
    match message.char_indices().nth(MAX_ERROR_CHARS) {
        Some((at, _)) => format!("{}…", &message[..at]).into(),
        None => message.into(),
    }
}

/// The reply to a command: `full`, and `short` without `result` (what is kept
/// for redeliveries when the full reply is large).
fn reply_payload(request_id: Option<&str>, result: &Result<CommandOk, CommandError>) -> Vec<u8> {
    let error = match result {
        Err(e) => Some(bounded(&e.message)),
        Ok(_) => None,
    };
    let r = match result {
        Ok(ok) => Reply {
            request_id,
            ok: true,
            error: None,
            code: None,
            result: match ok {
                CommandOk::Done => None,
                other => Some(other),
            },
        },
        Err(e) => Reply {
            request_id,
            ok: false,
            error: error.as_deref(),
            code: Some(e.code),
            result: None,
        },
    };
    serde_json::to_vec(&r).unwrap_or_else(|e| {
        // Never an empty payload: a reply the platform can still match and read.
        tracing::error!("reply not encodable: {e}");
        serde_json::json!({
            "request_id": request_id, "ok": false,
            "error": "the reply could not be encoded", "code": ErrorCode::Internal,
        })
        .to_string()
        .into_bytes()
    })
}

/// Builds the uplink; the returned task runs until shutdown.
/// `link` is set while the platform link is up.
pub fn start(
    m: &MqttSection,
    id: &Identity,
    journal: Journal,
    controller: Controller,
    link: watch::Sender<bool>,
    shutdown: CancellationToken,
) -> Result<(UplinkState, BoxFuture<'static, ()>), UplinkError> {
    let topics = Topics::new(&m.topic_prefix, &id.estate, &id.gateway);
    let options = connect::options(m, id, &topics)?;
    let tracker = Tracker::new(
        journal.cursor(Lane::Alarms.cursor_name())?,
        journal.cursor(Lane::Events.cursor_name())?,
    );
    let state = UplinkState {
        alarms: Arc::new(AtomicU64::new(tracker.alarms.acked)),
        events: Arc::new(AtomicU64::new(tracker.events.acked)),
        link: Arc::new(link),
        published: Arc::new(AtomicU64::new(0)),
        unsendable: Arc::new(AtomicU64::new(0)),
    };
    let uplink = Uplink {
        topics,
        journal,
        controller,
        tracker,
        state: state.clone(),
        window: m.inflight.max(1) as usize,
        allowed: m.commands.clone(),
        max_command: m.max_command_kib * 1024,
        max_packet: connect::max_outgoing(m) as usize,
        max_send: connect::max_outgoing(m) as usize,
        replies: Replies::default(),
        unsendable: BTreeSet::new(),
        lost: 0,
        refusal_logged: false,
    };
    Ok((state, Box::pin(uplink.run(options, shutdown))))
}

/// What the connection task reports.
enum Conn {
    Event(Event),
    /// The link dropped; reply once nothing more will be published until the next ConnAck.
    Down(String, oneshot::Sender<()>),
}

/// Owns rumqttc's event loop, so that polling is never cancelled mid-packet.
/// After a drop it waits until the uplink has stopped publishing, then discards
/// whatever was queued meanwhile: with a clean session, the outbox resends from
/// its cursor, and stale queued publishes would confuse the packet-id bookkeeping.
async fn connection(mut el: EventLoop, tx: mpsc::Sender<Conn>, stop: CancellationToken) {
    let mut backoff =
        drivers::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = el.poll() => ev,
        };
        match ev {
            Ok(ev) => {
                if matches!(ev, Event::Connected { .. }) {
                    backoff.reset();
                }
                if tx.send(Conn::Event(ev)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let (ack, acked) = oneshot::channel();
                if tx.send(Conn::Down(e, ack)).await.is_err() {
                    return;
                }
                let _ = acked.await;
                el.clean();
                if !drivers::backoff::sleep_or_shutdown(&stop, backoff.next_delay()).await {
                    return;
                }
            }
        }
    }
}

struct Uplink {
    topics: Topics,
    journal: Journal,
    controller: Controller,
    tracker: Tracker,
    state: UplinkState,
    window: usize,
    allowed: Vec<String>,
    max_command: usize,
    /// The largest packet we send (`max_packet_kib`) ...
    max_packet: usize,
    /// ... and the limit now: lower when the broker says so (MQTT 5 CONNACK).
    max_send: usize,
    replies: Replies,
    /// Records found too large to send, so that each is counted once although
    /// a reconnect passes over it again; forgotten once the cursors pass them.
    unsendable: BTreeSet<u64>,
    /// Unsendable records not yet reported to the engine.
    lost: u64,
    /// A refusal by the broker was logged on this connection.
    refusal_logged: bool,
}

/// Why a publish was not queued.
enum NotQueued {
    /// The client's queue is full: try again later.
    Full,
    /// Larger than the largest packet that can be sent.
    TooLarge(usize),
}

/// A command waiting for the worker.
struct CommandJob {
    name: String,
    request_id: Option<String>,
    payload: Bytes,
}

/// The worker's answer: the reply, and its short form for the reply cache.
struct Answer {
    name: String,
    request_id: Option<String>,
    full: Vec<u8>,
    short: Vec<u8>,
}

impl Uplink {
    async fn run(mut self, options: client::Options, shutdown: CancellationToken) {
        let (client, el) = client::new(options, 2 * MAX_UNWRITTEN + ALARM_WINDOW + 64);
        let (conn_tx, mut conn_rx) = mpsc::channel(1024);
        let conn_stop = CancellationToken::new();
        let conn_task = tokio::spawn(connection(el, conn_tx, conn_stop.clone()));

        // Commands run one at a time, in arrival order, off the publishing loop.
        let (job_tx, mut job_rx) = mpsc::channel::<CommandJob>(64);
        let (reply_tx, mut reply_rx) = mpsc::channel::<Answer>(64);
        let controller = self.controller.clone();
        let worker = tokio::spawn(async move {
            while let Some(job) = job_rx.recv().await {
                let result = match control::parse_platform(&job.name, &job.payload) {
                    Ok(req) => controller.execute(req).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = &result {
                    tracing::info!(command = %job.name, request_id = ?job.request_id, "command refused: {}", bounded(&e.message));
                }
                let full = reply_payload(job.request_id.as_deref(), &result);
                let short = match &result {
                    Ok(CommandOk::Done) | Err(_) => Vec::new(),
                    Ok(_) => reply_payload(job.request_id.as_deref(), &Ok(CommandOk::Done)),
                };
                let answer = Answer {
                    name: job.name,
                    request_id: job.request_id,
                    full,
                    short,
                };
                if reply_tx.send(answer).await.is_err() {
                    return;
                }
            }
        });

        let mut committed = self.journal.committed();
        let mut health = self.journal.health_changes();
        let mut persist = tokio::time::interval(Duration::from_millis(200));
        let mut connected = false;
        let mut saved = (self.tracker.alarms.acked, self.tracker.events.acked);
        // The last connection error, so that a new kind of failure is logged loudly once.
        let mut last_error = String::new();
        loop {
            if connected {
                self.fill(&client);
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                msg = conn_rx.recv() => match msg {
                    Some(Conn::Event(ev)) => {
                        if let Some(up) = self.on_event(ev, &client, &job_tx) {
                            connected = up;
                        }
                    }
                    Some(Conn::Down(why, ack)) => {
                        if connected {
                            tracing::warn!("platform link down: {why}; records are kept and sent after reconnecting");
                        } else if why != last_error {
                            tracing::warn!("cannot connect to the platform broker: {why} (retrying)");
                        } else {
                            tracing::debug!("broker still not reachable: {why}");
                        }
                        last_error = why;
                        connected = false;
                        self.state.link.send_replace(false);
                        self.tracker.reset();
                        let _ = ack.send(());
                    }
                    None => break,
                },
                Ok(()) = health.changed() => {
                    if connected {
                        let status = live_status(&self.journal);
                        let _ = self.publish(&client, self.topics.status(), status, Tag::Other);
                    }
                }
                Some(a) = reply_rx.recv(), if connected => {
                    // The first run's reply, and one for each duplicate that waited for it.
                    let copies = match &a.request_id {
                        Some(id) => {
                            let short = if a.short.is_empty() { &a.full } else { &a.short };
                            1 + self.replies.finish(&a.name, id, &a.full, short.clone())
                        }
                        None => 1,
                    };
                    // A reply too large to send goes without its `result`.
                    let topic = self.topics.reply(&a.name);
                    let payload = if client::publish_size(&topic, a.full.len()) > self.max_send && !a.short.is_empty() {
                        a.short
                    } else {
                        a.full
                    };
                    for _ in 0..copies {
                        self.reply(&client, &a.name, a.request_id.as_deref(), payload.clone());
                    }
                }
                _ = committed.changed() => {}
                _ = persist.tick() => {
                    self.report_lost();
                    let now = (self.tracker.alarms.acked, self.tracker.events.acked);
                    if now != saved {
                        self.persist_cursors();
                        saved = now;
                    }
                }
            }
        }

        // Shutdown: say "stopped" (retained), wait briefly for it to be acknowledged.
        if connected {
            let _ = self.publish(
                &client,
                self.topics.status(),
                status_payload("stopped"),
                Tag::Other,
            );
            let deadline = tokio::time::sleep(Duration::from_secs(2));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    msg = conn_rx.recv() => match msg {
                        Some(Conn::Event(Event::PubAck { pkid, .. })) => {
                            // Cursors are saved below whatever was acknowledged.
                            if self.tracker.acked(pkid) == Acked::Other {
                                break;
                            }
                        }
                        Some(Conn::Event(Event::Written(pkid))) => self.tracker.written(pkid),
                        Some(Conn::Event(_)) => {}
                        Some(Conn::Down(_, ack)) => { let _ = ack.send(()); break; }
                        None => break,
                    }
                }
            }
            client.try_disconnect();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.report_lost();
        self.persist_cursors();
        conn_stop.cancel();
        worker.abort();
        let _ = tokio::time::timeout(Duration::from_secs(2), conn_task).await;
    }

    /// Handles one event from the connection; returns the new link state on a change.
    fn on_event(
        &mut self,
        ev: Event,
        client: &Client,
        jobs: &mpsc::Sender<CommandJob>,
    ) -> Option<bool> {
        match ev {
            Event::Refused(code) => {
                tracing::error!("broker refused the connection: {code}");
                None
            }
            Event::Connected { max_packet } => {
                tracing::info!("platform link up");
                self.max_send = match max_packet {
                    Some(broker) => self.max_packet.min(broker as usize),
                    None => self.max_packet,
                };
                self.tracker.reset();
                self.refusal_logged = false;
                self.state.link.send_replace(true);
                if let Err(e) = client.try_subscribe_commands(self.topics.commands()) {
                    tracing::error!("cannot subscribe to commands: {e}");
                }
                let _ = self.publish(
                    client,
                    self.topics.status(),
                    live_status(&self.journal),
                    Tag::Other,
                );
                Some(true)
            }
            Event::PubAck { pkid, refused } => {
                if let Some(why) = refused {
                    // The broker's decision (an ACL, a quota): resending would
                    // meet the same answer. Logged loudly once a connection,
                    // so that it is not silent and does not flood the log.
                    if std::mem::replace(&mut self.refusal_logged, true) {
                        tracing::debug!(pkid, "the broker refused a message: {why}");
                    } else {
                        tracing::error!(pkid, "the broker refused a message: {why} (check its ACL and limits; further refusals on this connection are logged at debug level)");
                    }
                }
                if let Acked::Moved(_) = self.tracker.acked(pkid) {
                    self.publish_cursors();
                }
                None
            }
            Event::Written(pkid) => {
                self.tracker.written(pkid);
                None
            }
            Event::Message {
                topic,
                payload,
                retain,
            } => {
                self.on_command(&topic, payload, retain, client, jobs);
                None
            }
            Event::Other => None,
        }
    }

    /// A message on `P/cmd/{name}`: checked here, run by the worker.
    fn on_command(
        &mut self,
        topic: &str,
        payload: Bytes,
        retain: bool,
        client: &Client,
        jobs: &mpsc::Sender<CommandJob>,
    ) {
        let Some(name) = self.topics.command_name(topic).map(str::to_owned) else {
            return;
        };
        if payload.is_empty() {
            // How a retained message is cleared; not a command.
            return;
        }
        let refuse = |code: ErrorCode, msg: String| Err(CommandError::new(code, msg));
        // Only a bounded request_id is echoed (or remembered).
        let mut request_id = control::request_id(&payload);
        let long_id = request_id
            .as_ref()
            .is_some_and(|id| id.chars().count() > control::MAX_REQUEST_ID);
        if long_id {
            request_id = None;
        }
        let check: Result<(), CommandError> = if retain {
            refuse(
                ErrorCode::Invalid,
                "retained commands are refused (they would run again at every reconnect)".into(),
            )
        } else if long_id {
            refuse(
                ErrorCode::Invalid,
                format!(
                    "request_id: longer than {} characters (not echoed)",
                    control::MAX_REQUEST_ID
                ),
            )
        } else if CommandName::parse(&name).is_none() {
            refuse(
                ErrorCode::UnknownCommand,
                format!("unknown command `{}`", bounded(&name)),
            )
        } else if !self.allowed.iter().any(|a| a == &name) {
            refuse(
                ErrorCode::Unauthorized,
                format!("`{name}` is not allowed on this gateway (mqtt.commands)"),
            )
        } else if payload.len() > self.max_command {
            refuse(
                ErrorCode::TooLarge,
                format!(
                    "payload of {} bytes exceeds mqtt.max_command_kib ({} KiB)",
                    payload.len(),
                    self.max_command / 1024
                ),
            )
        } else {
            Ok(())
        };
        if let Err(e) = check {
            tracing::info!(command = %bounded(&name), "command refused: {e}");
            let reply = reply_payload(request_id.as_deref(), &Err(e));
            self.reply(client, &name, request_id.as_deref(), reply);
            return;
        }
        if let Some(id) = &request_id {
            match self.replies.seen(&name, id, replies::digest(&payload)) {
                Seen::New => {}
                // Answered when the first run is done.
                Seen::Running => return,
                Seen::Again(reply) => {
                    // A redelivery: answer again, do not run again.
                    self.reply(client, &name, Some(id), reply);
                    return;
                }
                Seen::Conflict => {
                    let e = CommandError::new(
                        ErrorCode::Conflict,
                        format!("request_id `{id}` was already used for another {name} payload; use a new request_id"),
                    );
                    tracing::info!(command = %name, request_id = %id, "command refused: {e}");
                    let reply = reply_payload(Some(id), &Err(e));
                    self.reply(client, &name, Some(id), reply);
                    return;
                }
            }
        }
        let job = CommandJob {
            name: name.clone(),
            request_id: request_id.clone(),
            payload,
        };
        if jobs.try_send(job).is_err() {
            if let Some(id) = &request_id {
                self.replies.forget(&name, id);
            }
            let e = CommandError::new(ErrorCode::Internal, "too many commands queued; retry later");
            let reply = reply_payload(request_id.as_deref(), &Err(e));
            self.reply(client, &name, request_id.as_deref(), reply);
        }
    }

    /// Publishes a reply; one too large to send is replaced by a short error
    /// that says so (inputs are bounded, so this should not happen).
    fn reply(&mut self, client: &Client, name: &str, request_id: Option<&str>, payload: Vec<u8>) {
        let topic = self.topics.reply(name);
        if let Err(NotQueued::TooLarge(size)) =
            self.publish(client, topic.clone(), payload, Tag::Other)
        {
            tracing::error!(command = %name, "reply of {size} bytes exceeds the largest packet that can be sent; replaced by an error");
            let e = CommandError::new(
                ErrorCode::Internal,
                format!(
                    "the reply ({size} bytes) exceeds the largest packet the gateway can send ({} bytes)",
                    self.max_send
                ),
            );
            let _ = self.publish(
                client,
                topic,
                reply_payload(request_id, &Err(e)),
                Tag::Other,
            );
        }
    }

    /// Queues a publish, if it fits in a packet and in the client's queue.
    fn publish(
        &mut self,
        client: &Client,
        topic: String,
        payload: Vec<u8>,
        tag: Tag,
    ) -> Result<(), NotQueued> {
        let size = client::publish_size(&topic, payload.len());
        if size > self.max_send {
            return Err(NotQueued::TooLarge(size));
        }
        let retain = topic == self.topics.status();
        if !client.try_publish(topic, retain, payload) {
            return Err(NotQueued::Full);
        }
        self.tracker.queued(tag);
        if matches!(tag, Tag::Record(..)) {
            self.state.published.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Publishes a journal record; false when the client's queue is full. A
    /// record too large to send is skipped, so the lane moves on, and counted.
    fn publish_record(&mut self, client: &Client, lane: Lane, seq: u64, stored: &Stored) -> bool {
        let topic = self.topics.record(stored.topic_suffix);
        match self.publish(client, topic, stored.json.to_vec(), Tag::Record(lane, seq)) {
            Ok(()) => true,
            Err(NotQueued::Full) => false,
            Err(NotQueued::TooLarge(size)) => {
                if self.unsendable.insert(seq) {
                    tracing::error!(
                        seq,
                        size,
                        max = self.max_send,
                        "journal record too large to send (mqtt.max_packet_kib or the broker's limit); skipped and reported as data loss"
                    );
                    self.state.unsendable.fetch_add(1, Ordering::Relaxed);
                    self.lost += 1;
                }
                self.tracker.skipped(lane, seq);
                true
            }
        }
    }

    /// Tells the engine about records skipped as unsendable: a `data_loss` alarm.
    fn report_lost(&mut self) {
        let floor = self.tracker.alarms.acked.min(self.tracker.events.acked);
        self.unsendable = self.unsendable.split_off(&(floor + 1));
        if self.lost == 0 {
            return;
        }
        let (n, engine) = (
            std::mem::take(&mut self.lost),
            self.controller.engine.clone(),
        );
        tokio::spawn(async move { engine.data_lost(n, LossCause::TooLarge).await });
    }

    /// Publishes what the windows allow: alarms first, then events, each in seq order.
    /// Cheap when there is nothing to do: it runs after every packet.
    fn fill(&mut self, client: &Client) {
        let committed = self.journal.last_committed();
        if self.tracker.alarms.sent < committed {
            self.fill_alarms(client, committed);
        }
        // Top up the events in batches rather than one per packet.
        if self.tracker.unwritten() <= MAX_UNWRITTEN / 2 && self.tracker.events.sent < committed {
            self.fill_events(client, committed);
        }
        self.publish_cursors();
    }

    fn fill_alarms(&mut self, client: &Client, committed: u64) {
        while self.tracker.alarms.in_flight() < ALARM_WINDOW {
            let from = self.tracker.alarms.sent + 1;
            match self
                .journal
                .alarm_seqs(from)
                .next()
                .filter(|s| *s <= committed)
            {
                Some(seq) => {
                    if !self.send_record(client, Lane::Alarms, seq) {
                        break;
                    }
                }
                None => {
                    // No alarm up to `committed`: the lane has nothing to wait for there.
                    self.tracker.skipped(Lane::Alarms, committed);
                    break;
                }
            }
        }
    }

    fn fill_events(&mut self, client: &Client, committed: u64) {
        let from = self.tracker.events.sent + 1;
        {
            for (seq, raw) in self.journal.range(from, committed, false) {
                if self.tracker.events.in_flight() >= self.window
                    || self.tracker.unwritten() >= MAX_UNWRITTEN
                {
                    break;
                }
                let Some(stored) = Stored::decode(&raw) else {
                    tracing::error!(seq, "journal record unreadable; skipped by the uplink");
                    self.tracker.skipped(Lane::Events, seq);
                    continue;
                };
                if stored.alarm {
                    self.tracker.skipped(Lane::Events, seq);
                    continue;
                }
                if !self.publish_record(client, Lane::Events, seq, &stored) {
                    break;
                }
            }
        }
        self.publish_cursors();
    }

    /// Makes the lanes' acknowledged cursors visible to retention and backlog checks.
    fn publish_cursors(&self) {
        self.state
            .alarms
            .store(self.tracker.alarms.acked, Ordering::Relaxed);
        self.state
            .events
            .store(self.tracker.events.acked, Ordering::Relaxed);
    }

    fn send_record(&mut self, client: &Client, lane: Lane, seq: u64) -> bool {
        match self.journal.get_raw(seq) {
            Ok(Some(raw)) => match Stored::decode(&raw) {
                Some(stored) => self.publish_record(client, lane, seq, &stored),
                None => {
                    tracing::error!(seq, "journal record unreadable; skipped by the uplink");
                    self.tracker.skipped(lane, seq);
                    true
                }
            },
            // Evicted meanwhile (retention counted it as lost).
            Ok(None) => {
                self.tracker.skipped(lane, seq);
                true
            }
            Err(e) => {
                tracing::error!(seq, "journal read failed: {e}");
                false
            }
        }
    }

    fn persist_cursors(&self) {
        for lane in [Lane::Alarms, Lane::Events] {
            let seq = match lane {
                Lane::Alarms => self.tracker.alarms.acked,
                Lane::Events => self.tracker.events.acked,
            };
            if let Err(e) = self.journal.set_cursor(lane.cursor_name(), seq) {
                tracing::error!("uplink cursor not saved: {e}");
            }
        }
    }
}
