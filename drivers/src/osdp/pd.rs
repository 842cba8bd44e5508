//! The Control Panel's state machine for one PD: identify it, read its
//! capabilities, open the secure channel (or refuse it), poll it, turn its
//! replies into events and the engine's actions into commands, and decide when
//! it is offline. It does no I/O: the bus hands it replies and timeouts and
//! sends what it asks for, so every transition is testable without a port.

use rand::RngCore;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::card;
use super::command::{
    capability, Capability, Command, LedColour, Nak, OutputControl, Reply, TEXT_MAX,
};
use super::config::OsdpConfig;
use super::keystore::KeyStore;
use super::phy::{scs, Decoded, Packet, Scb};
use super::sc::{Key, Session, SCBK_D};
use crate::backoff::Backoff;
use crate::credential::{Credential, CredentialKind};
use crate::ct::ct_eq;
use crate::event::{Action, CredentialRead, EventBody};

/// What the bus must do for the PD after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Emit(EventBody),
    Online(String),
    Offline(String),
}

/// Key type byte of the handshake's security block.
const KEY_SCBK: u8 = 1;
const KEY_SCBK_D: u8 = 0;

/// A PIN being typed is forgotten after this long without a key.
const PIN_IDLE: Duration = Duration::from_secs(10);
/// Transmissions of one command before it counts as failed.
const TRIES: u8 = 3;

enum Phase {
    Init,
    Cap,
    Challenge {
        key_type: u8,
    },
    Scrypt {
        key_type: u8,
        session: Box<Session>,
        server: [u8; 16],
    },
    KeySet {
        key: Key,
    },
    Online,
    Offline {
        retry_at: Instant,
    },
}

struct InFlight {
    bytes: Vec<u8>,
    cmd: Command,
    sqn: u8,
    tries: u8,
}

pub struct Pd {
    pub address: u8,
    cfg: Arc<OsdpConfig>,
    config_key: Option<Key>,
    keys: KeyStore,
    phase: Phase,
    /// The sequence number of the last command; None: next is 0 (restart).
    sqn: Option<u8>,
    rnd_a: [u8; 8],
    session: Option<Session>,
    in_flight: Option<InFlight>,
    queue: VecDeque<Command>,
    last_ok: Instant,
    online: bool,
    backoff: Backoff,
    caps: Option<Vec<Capability>>,
    identity: String,
    inputs: Vec<bool>,
    tamper: bool,
    power_fail: bool,
    pin: String,
    pin_at: Instant,
    /// When the link was last good before the current outage (None: not up
    /// since this start).
    outage_from: Option<Instant>,
    /// How long the reader had been out of contact when this driver started:
    /// since its last contact kept in the state folder (zero on a first start).
    gap_at_start: Duration,
    started: Instant,
    /// When the last contact was last written to the state folder.
    contact_kept: Instant,
    /// Reads arriving now may have been buffered through a long outage.
    late: bool,
    refused: bool,
}

impl Drop for Pd {
    /// At shutdown: remember the last contact, so reads buffered while the
    /// gateway was down count as late at the next start.
    fn drop(&mut self) {
        if self.online {
            let now = Instant::now();
            self.keep_contact(now);
        }
    }
}

impl Pd {
    pub fn new(cfg: Arc<OsdpConfig>, config_key: Option<Key>, keys: KeyStore, now: Instant) -> Pd {
        let gap_at_start = keys
            .last_contact()
            .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
            .unwrap_or(Duration::ZERO);
        Pd {
            gap_at_start,
            started: now,
            contact_kept: now,
            address: cfg.address,
            cfg,
            config_key,
            keys,
            phase: Phase::Init,
            sqn: None,
            rnd_a: [0; 8],
            session: None,
            in_flight: None,
            queue: VecDeque::new(),
            last_ok: now,
            online: false,
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(10)),
            caps: None,
            identity: String::new(),
            inputs: Vec::new(),
            tamper: false,
            power_fail: false,
            pin: String::new(),
            pin_at: now,
            outage_from: None,
            late: false,
            refused: false,
        }
    }

    pub fn is_online(&self) -> bool {
        matches!(self.phase, Phase::Online)
    }

    /// When this PD next wants the bus, if it is waiting out a backoff.
    pub fn wakes_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Offline { retry_at } => Some(retry_at),
            _ => None,
        }
    }

    /// Keys to try in a handshake: stored by an earlier KEYSET, then configured.
    fn candidate_keys(&self) -> Vec<Key> {
        let mut keys = self.keys.keys();
        if let Some(k) = self.config_key {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys
    }

    fn next_sqn(&mut self) -> u8 {
        let s = match self.sqn {
            None => 0,
            Some(3) => 1,
            Some(s) => s + 1,
        };
        self.sqn = Some(s);
        s
    }

    /// The bytes to send next, or None while the PD waits out its backoff.
    pub fn next_request(&mut self, now: Instant) -> Option<Vec<u8>> {
        if let Some(f) = &mut self.in_flight {
            f.tries += 1;
            return Some(f.bytes.clone());
        }
        let (cmd, handshake) = match &self.phase {
            Phase::Offline { retry_at } if now < *retry_at => return None,
            Phase::Offline { .. } | Phase::Init => {
                self.phase = Phase::Init;
                self.session = None;
                self.sqn = None;
                (Command::Id, None)
            }
            Phase::Cap => (Command::Cap, None),
            Phase::Challenge { key_type } => {
                let key_type = *key_type;
                rand::thread_rng().fill_bytes(&mut self.rnd_a);
                self.session = None;
                (Command::Challenge(self.rnd_a), Some((scs::CHLNG, key_type)))
            }
            Phase::Scrypt {
                key_type, server, ..
            } => (
                Command::ServerCryptogram(*server),
                Some((scs::SCRYPT, *key_type)),
            ),
            Phase::KeySet { key } => (Command::KeySet(*key), None),
            Phase::Online => (self.queue.pop_front().unwrap_or(Command::Poll), None),
        };
        let sqn = self.next_sqn();
        let bytes = self.encode(&cmd, sqn, handshake);
        self.in_flight = Some(InFlight {
            bytes: bytes.clone(),
            cmd,
            sqn,
            tries: 1,
        });
        Some(bytes)
    }

    fn encode(&mut self, cmd: &Command, sqn: u8, handshake: Option<(u8, u8)>) -> Vec<u8> {
        let mut p = Packet {
            address: self.address,
            reply: false,
            sqn,
            crc: true,
            scb: None,
            code: cmd.code(),
            data: cmd.data(),
            mac: None,
        };
        if let Some((kind, key_type)) = handshake {
            p.scb = Some(Scb {
                kind,
                data: vec![key_type],
            });
            return p.encode();
        }
        match &mut self.session {
            Some(s) => {
                let kind = if p.data.is_empty() {
                    scs::CMD_MAC
                } else {
                    p.data = s.encrypt_command(&p.data);
                    scs::CMD_ENC
                };
                p.scb = Some(Scb { kind, data: vec![] });
                p.encode_with(|b| s.command_mac(b))
            }
            None => p.encode(),
        }
    }

    /// The PD did not answer in time.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Out> {
        let mut out = Vec::new();
        if self.in_flight.as_ref().is_none_or(|f| f.tries >= TRIES) {
            // A lost poll is routine; a lost lock or LED command is worth a record.
            if let Some(f) = self.in_flight.take() {
                if matches!(
                    f.cmd,
                    Command::Output { .. }
                        | Command::Led { .. }
                        | Command::Buzzer { .. }
                        | Command::Text { .. }
                ) {
                    Self::fault(
                        &mut out,
                        format!(
                            "address {}: {} not executed: no reply after {TRIES} tries",
                            self.address,
                            f.cmd.name()
                        ),
                    );
                }
            }
        }
        out.extend(self.check_offline(now, "no reply"));
        out
    }

    fn check_offline(&mut self, now: Instant, why: &str) -> Vec<Out> {
        if matches!(self.phase, Phase::Offline { .. }) {
            return vec![];
        }
        // Before the first contact one failed handshake step is enough to say so.
        let limit = if self.online {
            self.cfg.offline_timeout()
        } else {
            self.cfg.reply_timeout() * u32::from(TRIES)
        };
        if now.duration_since(self.last_ok) >= limit {
            return vec![self.go_offline(
                now,
                format!(
                    "{why} from address {} for {} ms",
                    self.address,
                    now.duration_since(self.last_ok).as_millis()
                ),
            )];
        }
        vec![]
    }

    /// The whole bus is gone (port closed): the PD is offline at once.
    pub fn on_port_lost(&mut self, now: Instant, why: &str) -> Vec<Out> {
        self.in_flight = None;
        if matches!(self.phase, Phase::Offline { .. }) && !self.online {
            return vec![Out::Offline(why.to_owned())];
        }
        vec![self.go_offline(now, why.to_owned())]
    }

    fn go_offline(&mut self, now: Instant, reason: String) -> Out {
        if self.online {
            self.outage_from = Some(self.last_ok);
            self.keep_contact(now);
        }
        self.online = false;
        self.phase = Phase::Offline {
            retry_at: now + self.backoff.next_delay(),
        };
        self.session = None;
        self.in_flight = None;
        if !self.queue.is_empty() {
            tracing::info!(
                address = self.address,
                dropped = self.queue.len(),
                "OSDP commands dropped: the PD went offline"
            );
            self.queue.clear();
        }
        Out::Offline(reason)
    }

    fn go_online(&mut self, now: Instant, out: &mut Vec<Out>) {
        self.phase = Phase::Online;
        self.backoff.reset();
        self.online = true;
        // Reads the PD kept through a long outage (or from before we started) are late.
        let outage = match self.outage_from {
            Some(from) => now.duration_since(from),
            // First contact since this start: the reader may hold reads from
            // while the gateway was down, too.
            None => self.gap_at_start + now.duration_since(self.started),
        };
        self.late = outage > self.cfg.late_after();
        self.keep_contact(now);
        if self.refused {
            self.refused = false;
            out.push(Out::Emit(EventBody::Tamper {
                active: false,
                detail: "secure channel established".into(),
            }));
        }
        let sc = if self.session.is_some() {
            "secure channel"
        } else {
            "no secure channel"
        };
        out.push(Out::Online(format!("{}; {sc}", self.identity)));
    }

    /// Writes when the reader was last heard from, for the next start.
    fn keep_contact(&mut self, now: Instant) {
        let ago = now.saturating_duration_since(self.last_ok);
        let at = std::time::SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(std::time::UNIX_EPOCH);
        self.keys.set_last_contact(at);
        self.contact_kept = now;
    }

    /// The secure channel was refused: the PD holds another key or is an impostor.
    fn refuse(&mut self, now: Instant, why: String, out: &mut Vec<Out>) {
        tracing::warn!(address = self.address, "OSDP secure channel refused: {why}");
        if !self.refused {
            self.refused = true;
            out.push(Out::Emit(EventBody::Tamper {
                active: true,
                detail: format!("secure channel refused: {why}"),
            }));
        }
        out.push(self.go_offline(now, format!("secure channel refused: {why}")));
    }

    fn fault(out: &mut Vec<Out>, error: String) {
        out.push(Out::Emit(EventBody::Fault { error }));
    }

    /// A packet arrived while this PD's command was in flight. Returns None when
    /// it is not the answer (another address, stale sequence): keep waiting.
    pub fn on_packet(&mut self, d: &Decoded, now: Instant) -> Option<Vec<Out>> {
        let p = &d.packet;
        if !p.reply || p.address != self.address {
            return None;
        }
        let f = self.in_flight.take()?;
        if p.code == super::command::reply::BUSY {
            // The PD will answer the same command later.
            self.last_ok = now;
            self.in_flight = Some(f);
            return Some(vec![]);
        }
        if p.sqn != f.sqn {
            self.in_flight = Some(f);
            return None;
        }
        let mut out = Vec::new();
        let data = match self.open_reply(d, &f.cmd) {
            Ok(data) => data,
            Err(why) => {
                Self::fault(&mut out, format!("address {}: {why}", self.address));
                if self.session.take().is_some() {
                    self.phase = Phase::Challenge { key_type: KEY_SCBK };
                }
                return Some(out);
            }
        };
        let reply = match Reply::parse(p.code, &data) {
            Ok(r) => r,
            Err(e) => {
                Self::fault(&mut out, format!("address {}: {e}", self.address));
                return Some(out);
            }
        };
        self.last_ok = now;
        if self.online && now.duration_since(self.contact_kept) > Duration::from_secs(60) {
            self.keep_contact(now);
        }
        self.step(reply, f.cmd, now, &mut out);
        Some(out)
    }

    /// Checks the reply's MAC and decrypts its data when a session is open.
    fn open_reply(&mut self, d: &Decoded, sent: &Command) -> Result<Vec<u8>, String> {
        let p = &d.packet;
        let Some(session) = &mut self.session else {
            return Ok(p.data.clone());
        };
        match &p.scb {
            Some(scb) if scb.kind == scs::REPLY_MAC || scb.kind == scs::REPLY_ENC => {
                let mac = p.mac.ok_or("reply without MAC")?;
                if !session.verify_reply_mac(&d.mac_input, &mac) {
                    return Err("reply MAC does not match: secure channel restarted".into());
                }
                if scb.kind == scs::REPLY_ENC {
                    session
                        .decrypt_reply(&p.data)
                        .map_err(|e| format!("reply data: {e}"))
                } else {
                    Ok(p.data.clone())
                }
            }
            // A PD that dropped its session says so in clear (NAK), and a PD
            // that took a new key may acknowledge KEYSET in clear.
            None if p.code == super::command::reply::NAK
                || (matches!(sent, Command::KeySet(_)) && p.code == super::command::reply::ACK) =>
            {
                Ok(p.data.clone())
            }
            _ => Err("reply outside the secure channel: secure channel restarted".into()),
        }
    }

    fn has_cap(&self, function: u8) -> bool {
        match &self.caps {
            Some(caps) => caps.iter().any(|c| c.function == function && c.items > 0),
            None => true,
        }
    }

    fn step(&mut self, reply: Reply, sent: Command, now: Instant, out: &mut Vec<Out>) {
        let phase = std::mem::replace(&mut self.phase, Phase::Init);
        match (phase, reply) {
            (
                Phase::Init,
                Reply::PdId {
                    vendor,
                    model,
                    version,
                    serial,
                    firmware,
                },
            ) => {
                self.identity = format!(
                    "vendor {:02X}{:02X}{:02X} model {model} v{version} serial {serial:08X} firmware {}.{}.{}",
                    vendor[0], vendor[1], vendor[2], firmware[0], firmware[1], firmware[2]
                );
                self.phase = Phase::Cap;
            }
            (Phase::Cap, Reply::PdCap(caps)) => {
                let secure = caps
                    .iter()
                    .any(|c| c.function == capability::SECURITY && c.compliance > 0);
                self.caps = Some(caps);
                if !self.cfg.secure_channel {
                    self.go_online(now, out);
                } else if !secure {
                    self.refuse(
                        now,
                        "the reader does not offer the secure channel (set secure_channel = false only for readers that cannot)".into(),
                        out,
                    );
                } else {
                    let key_type = if self.candidate_keys().is_empty() {
                        KEY_SCBK_D
                    } else {
                        KEY_SCBK
                    };
                    self.phase = Phase::Challenge { key_type };
                }
            }
            (
                Phase::Challenge { key_type },
                Reply::ClientCryptogram {
                    rnd_b, cryptogram, ..
                },
            ) => {
                let keys = if key_type == KEY_SCBK_D {
                    vec![SCBK_D]
                } else {
                    self.candidate_keys()
                };
                let rnd_a = self.rnd_a;
                let found = keys.iter().find_map(|k| {
                    let s = Session::new(k, &rnd_a);
                    ct_eq(&s.client_cryptogram(&rnd_a, &rnd_b), &cryptogram).then_some(s)
                });
                match found {
                    Some(session) => {
                        let server = session.server_cryptogram(&rnd_a, &rnd_b);
                        self.phase = Phase::Scrypt {
                            key_type,
                            session: Box::new(session),
                            server,
                        };
                    }
                    None if key_type == KEY_SCBK && self.cfg.install_mode => {
                        // Perhaps a new reader with the default key: try SCBK-D.
                        self.phase = Phase::Challenge {
                            key_type: KEY_SCBK_D,
                        };
                    }
                    None => self.refuse(
                        now,
                        if key_type == KEY_SCBK_D {
                            "the reader does not hold the default key either".into()
                        } else {
                            "the reader's cryptogram does not match our key (wrong SCBK, or a substituted reader)".into()
                        },
                        out,
                    ),
                }
            }
            (
                Phase::Scrypt {
                    key_type,
                    mut session,
                    server,
                },
                Reply::InitialRmac(rmac),
            ) => {
                if !ct_eq(&session.initial_rmac(&server), &rmac) {
                    self.refuse(now, "initial R-MAC does not match".into(), out);
                    return;
                }
                session.activate(rmac);
                self.session = Some(*session);
                if key_type == KEY_SCBK_D {
                    let key = self.config_key.unwrap_or_else(|| {
                        let mut k = [0u8; 16];
                        rand::thread_rng().fill_bytes(&mut k);
                        k
                    });
                    if let Err(e) = self.keys.stage(&key) {
                        Self::fault(out, format!("cannot store the new OSDP key: {e}"));
                        self.refuse(now, "the new key could not be stored".into(), out);
                        return;
                    }
                    tracing::info!(
                        address = self.address,
                        "OSDP install mode: setting the reader's key"
                    );
                    self.phase = Phase::KeySet { key };
                } else {
                    self.go_online(now, out);
                }
            }
            (Phase::KeySet { .. }, Reply::Ack) => {
                if let Err(e) = self.keys.commit() {
                    Self::fault(out, format!("cannot store the new OSDP key: {e}"));
                }
                tracing::info!(
                    address = self.address,
                    "OSDP key set; reopening the secure channel with it"
                );
                // The PD drops the session after KEYSET: open one with the new key.
                self.session = None;
                self.phase = Phase::Challenge { key_type: KEY_SCBK };
            }
            (Phase::Online, reply) => {
                self.phase = Phase::Online;
                self.online_reply(reply, sent, now, out);
            }
            (phase, Reply::Nak(n)) => {
                let name = sent.name();
                match phase {
                    Phase::Challenge { key_type: KEY_SCBK } if self.cfg.install_mode => {
                        self.phase = Phase::Challenge {
                            key_type: KEY_SCBK_D,
                        };
                    }
                    Phase::Challenge { .. } | Phase::Scrypt { .. } | Phase::KeySet { .. } => self
                        .refuse(
                            now,
                            format!("the reader refused {name}: {}", n.describe()),
                            out,
                        ),
                    _ => out.push(self.go_offline(
                        now,
                        format!(
                            "address {}: {name} refused: NAK {} ({})",
                            self.address,
                            n.0,
                            n.describe()
                        ),
                    )),
                }
            }
            (phase, other) => {
                Self::fault(
                    out,
                    format!(
                        "address {}: unexpected reply {other:?} to {}",
                        self.address,
                        sent.name()
                    ),
                );
                self.phase = match phase {
                    Phase::Online => Phase::Online,
                    _ => Phase::Init,
                };
            }
        }
    }

    fn online_reply(&mut self, reply: Reply, sent: Command, now: Instant, out: &mut Vec<Out>) {
        match reply {
            Reply::Ack => {
                if sent == Command::Poll {
                    // The PD's backlog is drained: reads from now on are fresh.
                    self.late = false;
                }
            }
            Reply::Nak(n) => match n.0 {
                Nak::SC_CONDITION if self.session.is_some() || self.cfg.secure_channel => {
                    Self::fault(
                        out,
                        format!(
                            "address {}: the reader dropped the secure channel; reopening it",
                            self.address
                        ),
                    );
                    self.session = None;
                    self.phase = Phase::Challenge { key_type: KEY_SCBK };
                }
                Nak::SEQUENCE => {
                    self.phase = Phase::Init;
                    self.session = None;
                }
                code => Self::fault(
                    out,
                    format!(
                        "address {}: the reader refused {}: NAK {code} ({})",
                        self.address,
                        sent.name(),
                        n.describe()
                    ),
                ),
            },
            Reply::Raw { bits, data, .. } => match card::decode(bits, &data) {
                Ok(c) => {
                    let mut read = CredentialRead::new(Credential {
                        kind: CredentialKind::Card,
                        value: c.number.to_string(),
                    });
                    read.format = Some(c.format.into());
                    read.facility = c.facility;
                    read.late = self.late;
                    out.push(Out::Emit(EventBody::Credential(read)));
                }
                Err(e) => Self::fault(out, format!("address {}: {e}", self.address)),
            },
            Reply::Formatted { text, .. } => {
                match Credential::parse(CredentialKind::Card, text.trim()) {
                    Ok(c) => {
                        let mut read = CredentialRead::new(c);
                        read.format = Some("ascii".into());
                        read.late = self.late;
                        out.push(Out::Emit(EventBody::Credential(read)));
                    }
                    Err(e) => Self::fault(out, format!("address {}: card text: {e}", self.address)),
                }
            }
            Reply::Keypad { keys, .. } => self.keypad(&keys, now, out),
            Reply::LocalStatus { tamper, power_fail } => {
                if tamper != self.tamper {
                    self.tamper = tamper;
                    out.push(Out::Emit(EventBody::Tamper {
                        active: tamper,
                        detail: if tamper {
                            "reader enclosure opened".into()
                        } else {
                            "reader enclosure closed".into()
                        },
                    }));
                }
                if power_fail != self.power_fail {
                    self.power_fail = power_fail;
                    out.push(Out::Emit(EventBody::Power {
                        ok: !power_fail,
                        detail: format!("reader at address {}", self.address),
                    }));
                }
            }
            Reply::InputStatus(states) => {
                for (i, use_) in self.cfg.inputs.iter().enumerate() {
                    let (Some(kind), Some(&active)) = (use_.kind(), states.get(i)) else {
                        continue;
                    };
                    if self.inputs.len() <= i {
                        self.inputs.resize(i + 1, false);
                    }
                    if self.inputs[i] != active {
                        self.inputs[i] = active;
                        out.push(Out::Emit(EventBody::Input {
                            input: kind,
                            active,
                        }));
                    }
                }
            }
            Reply::OutputStatus(_) | Reply::Busy | Reply::Other { .. } => {}
            other => Self::fault(
                out,
                format!(
                    "address {}: unexpected reply {other:?} to {}",
                    self.address,
                    sent.name()
                ),
            ),
        }
    }

    fn keypad(&mut self, keys: &[u8], now: Instant, out: &mut Vec<Out>) {
        if now.duration_since(self.pin_at) > PIN_IDLE {
            self.pin.clear();
        }
        self.pin_at = now;
        for &k in keys {
            match k {
                0..=9 => self.pin.push(char::from(b'0' + k)),
                b'0'..=b'9' => self.pin.push(char::from(k)),
                // '#' (or CR) enters the PIN.
                b'#' | 0x0D => {
                    let pin = std::mem::take(&mut self.pin);
                    match Credential::parse(CredentialKind::Pin, &pin) {
                        Ok(c) => {
                            let mut read = CredentialRead::new(c);
                            read.format = Some("keypad".into());
                            out.push(Out::Emit(EventBody::Credential(read)));
                        }
                        Err(e) => Self::fault(out, format!("address {}: {e}", self.address)),
                    }
                }
                // '*' (or DEL) clears it.
                b'*' | 0x7F => self.pin.clear(),
                _ => {}
            }
            if self.pin.len() > 12 {
                self.pin.clear();
            }
        }
    }

    /// An action from the engine. Lock outputs go first: a resident is waiting.
    pub fn on_action(&mut self, action: Action) {
        // While the link is up the queue waits out a secure channel restart;
        // commands for an offline reader are dropped (a late lock release is worse).
        if !self.online {
            tracing::info!(
                address = self.address,
                ?action,
                "OSDP action dropped: the PD is offline"
            );
            return;
        }
        let reader = self.cfg.reader;
        match action {
            Action::Pulse { output, ms } => match self.cfg.outputs.get(&output) {
                Some(&number) => self.queue.push_front(Command::Output {
                    number,
                    control: OutputControl::Pulse,
                    timer: ms.div_ceil(100).clamp(1, u32::from(u16::MAX)) as u16,
                }),
                None => tracing::warn!(?output, "no PD output mapped for this output (outputs)"),
            },
            Action::Hold { output, on } => match self.cfg.outputs.get(&output) {
                Some(&number) => self.queue.push_front(Command::Output {
                    number,
                    control: if on {
                        OutputControl::On
                    } else {
                        OutputControl::Off
                    },
                    timer: 0,
                }),
                None => tracing::warn!(?output, "no PD output mapped for this output (outputs)"),
            },
            Action::Feedback { granted } => {
                if self.has_cap(capability::LED) {
                    self.queue.push_back(Command::Led {
                        reader,
                        led: 0,
                        colour: if granted {
                            LedColour::Green
                        } else {
                            LedColour::Red
                        },
                        timer: 20,
                    });
                }
                if self.has_cap(capability::AUDIBLE) {
                    self.queue.push_back(if granted {
                        Command::Buzzer {
                            reader,
                            on: 2,
                            off: 0,
                            count: 1,
                        }
                    } else {
                        Command::Buzzer {
                            reader,
                            on: 2,
                            off: 2,
                            count: 3,
                        }
                    });
                }
            }
            Action::Display { text } => {
                if self.has_cap(capability::TEXT) {
                    let text: String = text.chars().take(TEXT_MAX).collect();
                    self.queue.push_back(Command::Text { reader, text });
                }
            }
            Action::Voice { .. } => tracing::debug!("OSDP readers have no voice output"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Output;
    use crate::osdp::command::reply;
    use crate::osdp::phy::Packet;

    fn pd(extra: &str, dir: &std::path::Path) -> Pd {
        let cfg: OsdpConfig = toml::from_str(&format!(
            "port = \"/dev/null\"\naddress = 3\nsecure_channel = false\n{extra}"
        ))
        .unwrap();
        Pd::new(Arc::new(cfg), None, KeyStore::new(dir), Instant::now())
    }

    /// Answers the request in flight with `code` + `data`, as a plain-text PD would.
    fn answer(pd: &mut Pd, req: &[u8], code: u8, data: &[u8]) -> Vec<Out> {
        let sent = Packet::decode(req).unwrap().packet;
        let bytes = Packet {
            address: sent.address,
            reply: true,
            sqn: sent.sqn,
            crc: true,
            scb: None,
            code,
            data: data.to_vec(),
            mac: None,
        }
        .encode();
        pd.on_packet(&Packet::decode(&bytes).unwrap(), Instant::now())
            .expect("an answer to the request")
    }

    fn sent_code(req: &[u8]) -> u8 {
        Packet::decode(req).unwrap().packet.code
    }

    /// Brings a plain PD online (ID, CAP with LED and buzzer).
    fn online(pd: &mut Pd) {
        let now = Instant::now();
        let r = pd.next_request(now).unwrap();
        assert_eq!(sent_code(&r), 0x61);
        assert_eq!(
            Packet::decode(&r).unwrap().packet.sqn,
            0,
            "a fresh start uses SQN 0"
        );
        answer(pd, &r, reply::PDID, &[1, 2, 3, 4, 5, 1, 0, 0, 0, 1, 2, 3]);
        let r = pd.next_request(now).unwrap();
        assert_eq!(sent_code(&r), 0x62);
        let out = answer(pd, &r, reply::PDCAP, &[4, 1, 1, 5, 1, 1, 2, 1, 4]);
        assert!(out.iter().any(|o| matches!(o, Out::Online(_))), "{out:?}");
    }

    #[test]
    fn outputs_first_and_naks_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut pd = pd("", dir.path());
        online(&mut pd);
        pd.on_action(Action::Feedback { granted: true });
        pd.on_action(Action::Pulse {
            output: Output::Lock,
            ms: 2500,
        });
        let now = Instant::now();
        let r = pd.next_request(now).unwrap();
        assert_eq!(sent_code(&r), 0x68, "the lock goes before the LED");
        assert_eq!(Packet::decode(&r).unwrap().packet.data, vec![0, 5, 25, 0]);
        answer(&mut pd, &r, reply::ACK, &[]);
        let r = pd.next_request(now).unwrap();
        assert_eq!(sent_code(&r), 0x69);
        let out = answer(&mut pd, &r, reply::NAK, &[3]);
        assert!(
            out.iter().any(|o| matches!(o, Out::Emit(EventBody::Fault { error }) if error.contains("LED") && error.contains("unknown command"))),
            "{out:?}"
        );
        // A sequence NAK restarts the conversation at SQN 0.
        let r = pd.next_request(now).unwrap();
        answer(&mut pd, &r, reply::NAK, &[4]);
        let r = pd.next_request(now).unwrap();
        let p = Packet::decode(&r).unwrap().packet;
        assert_eq!((p.code, p.sqn), (0x61, 0));
    }

    #[test]
    fn a_lost_lock_command_is_reported_and_silence_is_offline() {
        let dir = tempfile::tempdir().unwrap();
        let mut pd = pd(
            "reply_timeout_ms = 10\noffline_timeout_ms = 100",
            dir.path(),
        );
        online(&mut pd);
        pd.on_action(Action::Pulse {
            output: Output::Lock,
            ms: 1000,
        });
        let t0 = Instant::now();
        let first = pd.next_request(t0).unwrap();
        let mut out = Vec::new();
        for _ in 0..TRIES {
            out.extend(pd.on_timeout(t0));
            if let Some(again) = pd.next_request(t0) {
                if again == first {
                    continue;
                }
                assert_eq!(sent_code(&again), 0x60, "after giving up: a poll");
            }
        }
        assert!(
            out.iter().any(|o| matches!(o, Out::Emit(EventBody::Fault { error }) if error.contains("OUT not executed"))),
            "{out:?}"
        );
        // No valid reply for the offline timeout: offline, and actions are dropped.
        let later = t0 + Duration::from_millis(500);
        let out = pd.on_timeout(later);
        assert!(out.iter().any(|o| matches!(o, Out::Offline(_))), "{out:?}");
        pd.on_action(Action::Pulse {
            output: Output::Lock,
            ms: 1000,
        });
        assert!(pd.queue.is_empty());
        assert!(pd.next_request(later).is_none(), "waits out its backoff");
    }

    #[test]
    fn replies_for_other_addresses_or_sequences_are_not_answers() {
        let dir = tempfile::tempdir().unwrap();
        let mut pd = pd("", dir.path());
        let r = pd.next_request(Instant::now()).unwrap();
        let other = Packet {
            address: 4,
            reply: true,
            sqn: 0,
            crc: true,
            scb: None,
            code: reply::ACK,
            data: vec![],
            mac: None,
        }
        .encode();
        assert!(pd
            .on_packet(&Packet::decode(&other).unwrap(), Instant::now())
            .is_none());
        let stale = Packet {
            address: 3,
            reply: true,
            sqn: 2,
            crc: true,
            scb: None,
            code: reply::ACK,
            data: vec![],
            mac: None,
        }
        .encode();
        assert!(pd
            .on_packet(&Packet::decode(&stale).unwrap(), Instant::now())
            .is_none());
        // The real answer still counts.
        answer(&mut pd, &r, reply::PDID, &[0; 12]);
    }
}
