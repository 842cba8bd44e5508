//! UHF RFID readers over LLRP (`driver = "llrp"`): the gateway installs and
//! starts a ROSpec, receives tag reports and turns them into one arrival,
//! moves and one departure per tag (an e-bike's chip), as `EventBody::Tag`.
//!
//! - `message`: LLRP messages and parameters (encode, decode; fuzzed).
//! - `presence`: the per-tag presence state machine.
//! - `config`: the reader's keys.
//!
//! Readers differ from the spec: llrpkit's emulator answers
//! ENABLE_EVENTS_AND_REPORTS (the spec has no response), refuses
//! DELETE_ROSPEC 0 (the spec: delete all) and ignores the Immediate start
//! trigger. So the client installs its ROSpec with a Null start trigger and
//! starts it with START_ROSPEC, treats a refused "delete all" as harmless, and
//! ignores anything it gets for ENABLE_EVENTS_AND_REPORTS.

pub mod config;
pub mod message;
pub mod presence;

pub use config::LlrpConfig;

use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::backoff::{sleep_or_shutdown, Backoff};
use crate::driver::{BuildError, DriverContext, DriverTask};
use crate::event::EventBody;
use message::{kind, LlrpError, Message};
use presence::{Change, Tracker};

impl LlrpConfig {
    pub fn build(&self, ctx: DriverContext) -> Result<DriverTask, BuildError> {
        if let Some(p) = self.validate().first() {
            return Err(BuildError::Config {
                device: ctx.id.clone(),
                message: format!("{}: {}", p.key, p.message),
            });
        }
        Ok(Box::pin(run(self.clone(), ctx)))
    }
}

#[derive(Debug, Error)]
enum SessionError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(#[from] LlrpError),
    #[error("no answer to {0} within {1:?}")]
    Timeout(&'static str, Duration),
    #[error("the reader refused {what}: status {code} ({desc})")]
    Refused {
        what: &'static str,
        code: u16,
        desc: String,
    },
    #[error("the reader refused the connection (status {0}: another client is connected?)")]
    ConnectionRefused(u16),
}

struct Session {
    stream: TcpStream,
    next_id: u32,
}

impl Session {
    async fn read(
        &mut self,
        timeout: Duration,
        what: &'static str,
    ) -> Result<Message, SessionError> {
        let mut header = [0u8; message::HEADER];
        tokio::time::timeout(timeout, self.stream.read_exact(&mut header))
            .await
            .map_err(|_| SessionError::Timeout(what, timeout))??;
        let len = Message::length_of(&header)?;
        let mut buf = header.to_vec();
        buf.resize(len, 0);
        tokio::time::timeout(timeout, self.stream.read_exact(&mut buf[message::HEADER..]))
            .await
            .map_err(|_| SessionError::Timeout(what, timeout))??;
        Ok(Message::decode(&buf)?)
    }

    async fn send(&mut self, m: &Message) -> Result<(), SessionError> {
        self.stream.write_all(&m.encode()).await?;
        Ok(())
    }

    fn id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// Sends a request and waits for its response; keepalives are answered meanwhile.
    async fn call(
        &mut self,
        what: &'static str,
        build: impl FnOnce(u32) -> Message,
        response: u16,
        timeout: Duration,
    ) -> Result<Result<(), (u16, String)>, SessionError> {
        let id = self.id();
        self.send(&build(id)).await?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self.read(left, what).await?;
            match m.kind {
                k if k == response && m.id == id => return Ok(message::status(&m.body)?),
                kind::ERROR_MESSAGE if m.id == id => {
                    return Ok(Err(message::status(&m.body)?
                        .err()
                        .unwrap_or((0, String::new()))))
                }
                kind::KEEPALIVE => {
                    self.send(&Message::new(kind::KEEPALIVE_ACK, m.id, vec![]))
                        .await?
                }
                _ => {}
            }
        }
    }

    async fn must(
        &mut self,
        what: &'static str,
        build: impl FnOnce(u32) -> Message,
        response: u16,
        timeout: Duration,
    ) -> Result<(), SessionError> {
        self.call(what, build, response, timeout)
            .await?
            .map_err(|(code, desc)| SessionError::Refused { what, code, desc })
    }
}

/// Connects, waits for the reader's welcome, installs and starts the ROSpec.
async fn open(cfg: &LlrpConfig) -> Result<Session, SessionError> {
    let t = cfg.timeout();
    let stream = tokio::time::timeout(t, TcpStream::connect(cfg.address()))
        .await
        .map_err(|_| SessionError::Timeout("connect", t))??;
    stream.set_nodelay(true)?;
    let mut s = Session { stream, next_id: 0 };
    // The reader says first whether it accepts us (one client at a time).
    let deadline = Instant::now() + t;
    loop {
        let m = s
            .read(
                deadline.saturating_duration_since(Instant::now()),
                "the connection event",
            )
            .await?;
        if m.kind == kind::READER_EVENT_NOTIFICATION {
            match message::connection_attempt(&m.body)? {
                Some(0) => break,
                Some(code) => return Err(SessionError::ConnectionRefused(code)),
                None => {}
            }
        }
    }
    let ka = cfg.keepalive_ms;
    s.must(
        "SET_READER_CONFIG",
        |id| message::set_reader_config(id, ka),
        kind::SET_READER_CONFIG_RESPONSE,
        t,
    )
    .await?;
    // Delete all ROSpecs (left by us or another client); some readers refuse id 0.
    if let Err((code, desc)) = s
        .call(
            "DELETE_ROSPEC 0",
            |id| message::rospec_op(kind::DELETE_ROSPEC, id, 0),
            kind::DELETE_ROSPEC_RESPONSE,
            t,
        )
        .await?
    {
        tracing::debug!(code, %desc, "reader refused DELETE_ROSPEC 0; deleting ours by id");
        let _ = s
            .call(
                "DELETE_ROSPEC",
                |id| message::rospec_op(kind::DELETE_ROSPEC, id, cfg.rospec_id),
                kind::DELETE_ROSPEC_RESPONSE,
                t,
            )
            .await?;
    }
    let (rospec, antennas) = (cfg.rospec_id, cfg.antennas.clone());
    s.must(
        "ADD_ROSPEC",
        |id| message::add_rospec(id, rospec, &antennas),
        kind::ADD_ROSPEC_RESPONSE,
        t,
    )
    .await?;
    s.must(
        "ENABLE_ROSPEC",
        |id| message::rospec_op(kind::ENABLE_ROSPEC, id, rospec),
        kind::ENABLE_ROSPEC_RESPONSE,
        t,
    )
    .await?;
    s.must(
        "START_ROSPEC",
        |id| message::rospec_op(kind::START_ROSPEC, id, rospec),
        kind::START_ROSPEC_RESPONSE,
        t,
    )
    .await?;
    // No response per the spec; a reader that answers anyway is ignored in the loop.
    let id = s.id();
    s.send(&Message::new(kind::ENABLE_EVENTS_AND_REPORTS, id, vec![]))
        .await?;
    Ok(s)
}

async fn emit_change(ctx: &DriverContext, c: Change) {
    ctx.events
        .emit(EventBody::Tag {
            epc: c.epc,
            presence: c.presence,
            antenna: c.antenna,
            rssi: c.rssi,
        })
        .await;
}

async fn run(cfg: LlrpConfig, mut ctx: DriverContext) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    let mut tracker = Tracker::new(cfg.tuning());
    let addr = cfg.address();
    loop {
        if ctx.shutdown.is_cancelled() {
            return;
        }
        let mut s = match tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            r = open(&cfg) => r,
        } {
            Ok(s) => s,
            Err(e) => {
                ctx.events.set_offline(format!("{addr}: {e}")).await;
                if !sleep_or_shutdown(&ctx.shutdown, backoff.next_delay()).await {
                    return;
                }
                continue;
            }
        };
        backoff.reset();
        ctx.events
            .set_online(Some(format!("{addr}: ROSpec {} running", cfg.rospec_id)))
            .await;
        let why = serve(&cfg, &mut s, &mut ctx, &mut tracker).await;
        match why {
            None => {
                // Leave the reader clean for the next client.
                let t = Duration::from_millis(500);
                let rospec = cfg.rospec_id;
                let _ = s
                    .call(
                        "DELETE_ROSPEC",
                        |id| message::rospec_op(kind::DELETE_ROSPEC, id, rospec),
                        kind::DELETE_ROSPEC_RESPONSE,
                        t,
                    )
                    .await;
                let _ = s
                    .call(
                        "CLOSE_CONNECTION",
                        |id| Message::new(kind::CLOSE_CONNECTION, id, vec![]),
                        kind::CLOSE_CONNECTION_RESPONSE,
                        t,
                    )
                    .await;
                return;
            }
            Some(e) => {
                ctx.events.set_offline(format!("{addr}: {e}")).await;
                if !sleep_or_shutdown(&ctx.shutdown, backoff.next_delay()).await {
                    return;
                }
            }
        }
    }
}

/// Receives reports until the link fails (Some) or shutdown (None).
async fn serve(
    cfg: &LlrpConfig,
    s: &mut Session,
    ctx: &mut DriverContext,
    tracker: &mut Tracker,
) -> Option<SessionError> {
    // Three missed keepalives: the reader or the network is gone.
    let silence = Duration::from_millis(u64::from(cfg.keepalive_ms) * 3);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return None,
            a = ctx.commands.recv() => {
                if let Some(a) = a {
                    tracing::debug!(?a, "an RFID reader takes no commands");
                }
            }
            _ = tick.tick() => {
                for c in tracker.tick(Instant::now()) {
                    emit_change(ctx, c).await;
                }
            }
            m = s.read(silence, "keepalive") => {
                let m = match m {
                    Ok(m) => m,
                    Err(e) => return Some(e),
                };
                match m.kind {
                    kind::RO_ACCESS_REPORT => match message::tag_reads(&m.body) {
                        Ok(reads) => {
                            let now = Instant::now();
                            for r in reads {
                                if let Some(c) = tracker.read(&r.epc, r.antenna, r.rssi, now) {
                                    emit_change(ctx, c).await;
                                }
                            }
                        }
                        Err(e) => ctx.events.emit(EventBody::Fault { error: format!("tag report: {e}") }).await,
                    },
                    kind::KEEPALIVE => {
                        if let Err(e) = s.send(&Message::new(kind::KEEPALIVE_ACK, m.id, vec![])).await {
                            return Some(e);
                        }
                    }
                    kind::ERROR_MESSAGE => {
                        let detail = match message::status(&m.body) {
                            Ok(Err((code, desc))) => format!("status {code}: {desc}"),
                            _ => "no status".into(),
                        };
                        tracing::debug!(id = m.id, %detail, "reader error message (ignored)");
                    }
                    other => tracing::trace!(kind = other, "LLRP message ignored"),
                }
            }
        }
    }
}
