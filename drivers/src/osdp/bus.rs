//! One RS-485 bus: the task that owns a serial port and talks to every PD on
//! it in turn, and the registry that lets several `[[devices]]` with the same
//! `port` share that task. The first device on a port starts its bus; the bus
//! stops (and closes the port) when its last device leaves.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_serial::SerialStream;

use super::pd::{Out, Pd};
use super::phy::FrameReader;
use crate::backoff::Backoff;
use crate::driver::EventSink;
use crate::event::{Action, EventBody};
use crate::serial::{self, SerialSettings};

/// What a device task tells its bus.
pub enum BusMsg {
    Join {
        pd: Box<Pd>,
        events: EventSink,
        reply_timeout: Duration,
        poll_interval: Duration,
    },
    Leave {
        address: u8,
        done: oneshot::Sender<()>,
    },
    Action {
        address: u8,
        action: Action,
    },
}

type Registry = Mutex<HashMap<String, mpsc::UnboundedSender<BusMsg>>>;

fn registry() -> &'static Registry {
    static BUSES: OnceLock<Registry> = OnceLock::new();
    BUSES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, mpsc::UnboundedSender<BusMsg>>> {
    match registry().lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Joins the bus of `settings.port`, starting it if needed; returns its mailbox.
pub fn attach(settings: SerialSettings, join: BusMsg) -> mpsc::UnboundedSender<BusMsg> {
    let mut buses = lock();
    let mut join = join;
    if let Some(tx) = buses.get(&settings.port) {
        match tx.send(join) {
            Ok(()) => return tx.clone(),
            // That bus has just stopped: start a new one.
            Err(mpsc::error::SendError(msg)) => join = msg,
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(join);
    buses.insert(settings.port.clone(), tx.clone());
    tokio::spawn(Bus::new(settings, rx, tx.clone()).run());
    tx
}

struct Member {
    pd: Box<Pd>,
    events: EventSink,
}

struct Bus {
    settings: SerialSettings,
    rx: mpsc::UnboundedReceiver<BusMsg>,
    /// Our own mailbox, to recognise our registry entry.
    me: mpsc::UnboundedSender<BusMsg>,
    members: BTreeMap<u8, Member>,
    reply_timeout: Duration,
    poll_interval: Duration,
}

async fn deliver(events: &EventSink, outs: Vec<Out>) {
    for o in outs {
        match o {
            Out::Emit(body) => events.emit(body).await,
            Out::Online(detail) => events.set_online(Some(detail)).await,
            Out::Offline(reason) => events.set_offline(reason).await,
        }
    }
}

impl Bus {
    fn new(
        settings: SerialSettings,
        rx: mpsc::UnboundedReceiver<BusMsg>,
        me: mpsc::UnboundedSender<BusMsg>,
    ) -> Bus {
        Bus {
            settings,
            rx,
            me,
            members: BTreeMap::new(),
            reply_timeout: Duration::from_millis(200),
            poll_interval: Duration::from_millis(20),
        }
    }

    async fn handle(&mut self, msg: BusMsg) {
        match msg {
            BusMsg::Join {
                pd,
                events,
                reply_timeout,
                poll_interval,
            } => {
                let address = pd.address;
                if self.members.contains_key(&address) {
                    events
                        .emit(EventBody::Fault {
                            error: format!(
                                "address {address} on {} is already used by another device",
                                self.settings.port
                            ),
                        })
                        .await;
                    return;
                }
                // The bus waits as long as its most patient PD asks.
                if self.members.is_empty() {
                    self.reply_timeout = reply_timeout;
                    self.poll_interval = poll_interval;
                } else {
                    self.reply_timeout = self.reply_timeout.max(reply_timeout);
                    self.poll_interval = self.poll_interval.min(poll_interval);
                }
                self.members.insert(address, Member { pd, events });
            }
            BusMsg::Leave { address, done } => {
                self.members.remove(&address);
                let _ = done.send(());
            }
            BusMsg::Action { address, action } => {
                if let Some(m) = self.members.get_mut(&address) {
                    m.pd.on_action(action);
                }
            }
        }
    }

    async fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.handle(m).await;
        }
    }

    /// Stops when no device is left, unless one is joining right now.
    fn try_retire(&mut self) -> bool {
        let mut buses = lock();
        if !self.rx.is_empty() {
            return false;
        }
        // A newer bus may have taken the port's entry: remove only our own.
        if buses
            .get(&self.settings.port)
            .is_some_and(|tx| tx.same_channel(&self.me))
        {
            buses.remove(&self.settings.port);
        }
        true
    }

    async fn port_lost(&mut self, why: &str) {
        let now = Instant::now();
        for m in self.members.values_mut() {
            let outs = m.pd.on_port_lost(now, why);
            deliver(&m.events, outs).await;
        }
    }

    async fn run(mut self) {
        let mut port: Option<SerialStream> = None;
        let mut reader = FrameReader::default();
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut next_open = Instant::now();
        loop {
            self.drain().await;
            if self.members.is_empty() {
                if self.try_retire() {
                    tracing::debug!(port = %self.settings.port, "OSDP bus stopped: no device left");
                    return;
                }
                continue;
            }
            if port.is_none() {
                if Instant::now() >= next_open {
                    match serial::open(&self.settings) {
                        Ok(p) => {
                            tracing::info!(port = %self.settings.port, baud = self.settings.baud, "OSDP bus open");
                            port = Some(p);
                            reader.clear();
                            backoff.reset();
                        }
                        Err(e) => {
                            self.port_lost(&format!("port {}: {e}", self.settings.port))
                                .await;
                            next_open = Instant::now() + backoff.next_delay();
                        }
                    }
                }
                if port.is_none() {
                    tokio::select! {
                        m = self.rx.recv() => if let Some(m) = m { self.handle(m).await },
                        _ = tokio::time::sleep_until(next_open) => {}
                    }
                    continue;
                }
            }
            let Some(p) = port.as_mut() else { continue };
            let round = Instant::now();
            let mut lost = None;
            let addresses: Vec<u8> = self.members.keys().copied().collect();
            for address in addresses {
                // Between exchanges: commands from the engine reach their queues at once.
                self.drain().await;
                let timeout = self.reply_timeout;
                let Some(m) = self.members.get_mut(&address) else {
                    continue;
                };
                let Some(bytes) = m.pd.next_request(Instant::now()) else {
                    continue;
                };
                match exchange(p, &mut reader, &bytes, &mut m.pd, timeout).await {
                    Ok(outs) => deliver(&m.events, outs).await,
                    Err(e) => {
                        lost = Some(format!("port {}: {e}", self.settings.port));
                        break;
                    }
                }
            }
            if let Some(why) = lost {
                tracing::warn!("OSDP bus lost: {why}");
                port = None;
                self.port_lost(&why).await;
                next_open = Instant::now() + backoff.next_delay();
                continue;
            }
            // Nothing urgent: wait out the poll interval, or less when a command comes.
            let mut until = round + self.poll_interval;
            if self.members.values().all(|m| m.pd.wakes_at().is_some()) {
                if let Some(w) = self.members.values().filter_map(|m| m.pd.wakes_at()).min() {
                    until = until.max(w);
                }
            }
            if Instant::now() < until {
                tokio::select! {
                    m = self.rx.recv() => if let Some(m) = m { self.handle(m).await },
                    _ = tokio::time::sleep_until(until) => {}
                }
            }
        }
    }
}

/// Sends one command and waits for its reply (or the timeout).
async fn exchange(
    port: &mut SerialStream,
    reader: &mut FrameReader,
    bytes: &[u8],
    pd: &mut Pd,
    timeout: Duration,
) -> std::io::Result<Vec<Out>> {
    AsyncWriteExt::write_all(port, bytes).await?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 512];
    loop {
        while let Some(r) = reader.next_packet() {
            match r {
                Ok(d) => {
                    if let Some(outs) = pd.on_packet(&d, Instant::now()) {
                        return Ok(outs);
                    }
                }
                Err(e) => tracing::debug!(address = pd.address, "OSDP line noise: {e}"),
            }
        }
        match tokio::time::timeout_at(deadline, AsyncReadExt::read(port, &mut buf)).await {
            Err(_) => return Ok(pd.on_timeout(Instant::now())),
            Ok(Ok(0)) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the port was closed",
                ))
            }
            Ok(Ok(n)) => reader.push(&buf[..n]),
            Ok(Err(e)) => return Err(e),
        }
    }
}
