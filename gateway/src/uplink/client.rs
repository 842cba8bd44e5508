//! One MQTT client over rumqttc's two implementations, MQTT 5 (`v5`) and
//! 3.1.1 (`v4`), so that the uplink's loop is written once: it sees the few
//! events it acts on ([`Event`]) and publishes through [`Client`].
//!
//! What only MQTT 5 gives, and why the uplink wants it:
//! - CONNECT announces our maximum packet size: the broker drops a message too
//!   large for us instead of sending it (3.1.1 has no way to say it; rumqttc
//!   then drops the connection, at every reconnect for a retained message);
//! - the command subscription asks for retain handling "do not send retained"
//!   (a retained command waiting at the broker never reaches us) and
//!   retain-as-published (a retained command published while we are connected
//!   arrives flagged, so it is refused rather than run);
//! - CONNACK tells the broker's own maximum packet size, which bounds what we send.

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{
    Filter, LastWill as LastWill5, Packet as Packet5, PubAckReason, RetainForwardRule,
};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::{Outgoing, Packet, QoS};

/// Options for one protocol version, built by `connect`.
pub enum Options {
    V4(Box<rumqttc::MqttOptions>),
    V5(Box<rumqttc::v5::MqttOptions>),
}

/// What both versions set, in one place.
pub struct Common {
    pub client_id: String,
    pub host: String,
    pub port: u16,
    pub keep_alive: std::time::Duration,
    pub inflight: u16,
    /// Largest packet we accept (announced to the broker with MQTT 5).
    pub max_incoming: u32,
    /// Largest packet we send (3.1.1; with 5 the broker's CONNACK says it).
    pub max_outgoing: u32,
    pub will_topic: String,
    pub will_payload: Vec<u8>,
    pub credentials: Option<(String, String)>,
    pub transport: rumqttc::Transport,
}

impl Options {
    pub fn new(c: Common, v5: bool) -> Options {
        if v5 {
            let mut o = rumqttc::v5::MqttOptions::new(c.client_id, c.host, c.port);
            o.set_keep_alive(c.keep_alive);
            // A clean session: after a reconnect the outbox resends from its cursor.
            o.set_clean_start(true);
            o.set_outgoing_inflight_upper_limit(c.inflight);
            o.set_max_packet_size(Some(c.max_incoming));
            o.set_last_will(LastWill5::new(
                c.will_topic,
                c.will_payload,
                QoS5::AtLeastOnce,
                true,
                None,
            ));
            if let Some((u, p)) = c.credentials {
                o.set_credentials(u, p);
            }
            o.set_transport(c.transport);
            Options::V5(Box::new(o))
        } else {
            let mut o = rumqttc::MqttOptions::new(c.client_id, c.host, c.port);
            o.set_keep_alive(c.keep_alive);
            o.set_clean_session(true);
            o.set_inflight(c.inflight);
            o.set_max_packet_size(c.max_incoming as usize, c.max_outgoing as usize);
            o.set_last_will(rumqttc::LastWill::new(
                c.will_topic,
                c.will_payload,
                QoS::AtLeastOnce,
                true,
            ));
            if let Some((u, p)) = c.credentials {
                o.set_credentials(u, p);
            }
            o.set_transport(c.transport);
            Options::V4(Box::new(o))
        }
    }
}

/// What the uplink acts on; everything else is `Other`.
#[derive(Debug)]
pub enum Event {
    /// Connected. `max_packet`: the broker's limit on what we send, if it said one.
    Connected {
        max_packet: Option<u32>,
    },
    /// The broker refused the connection (3.1.1; MQTT 5 reports it as an error).
    Refused(String),
    /// `refused`: MQTT 5's reason when the broker did not take the message
    /// (not authorised, quota): acknowledged all the same, so it is logged.
    PubAck {
        pkid: u16,
        refused: Option<String>,
    },
    /// A publish with this packet id went out on the wire.
    Written(u16),
    Message {
        topic: String,
        payload: Bytes,
        retain: bool,
    },
    Other,
}

/// The handle that queues packets.
#[derive(Clone)]
pub enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// The connection: polled by one task only.
pub enum EventLoop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

pub fn new(options: Options, cap: usize) -> (Client, EventLoop) {
    match options {
        Options::V4(o) => {
            let (c, el) = rumqttc::AsyncClient::new(*o, cap);
            (Client::V4(c), EventLoop::V4(Box::new(el)))
        }
        Options::V5(o) => {
            let (c, el) = rumqttc::v5::AsyncClient::new(*o, cap);
            (Client::V5(c), EventLoop::V5(Box::new(el)))
        }
    }
}

impl Client {
    /// Queues a QoS 1 publish; false when the queue is full.
    pub fn try_publish(&self, topic: String, retain: bool, payload: Vec<u8>) -> bool {
        match self {
            Client::V4(c) => c
                .try_publish(topic, QoS::AtLeastOnce, retain, payload)
                .is_ok(),
            Client::V5(c) => c
                .try_publish(topic, QoS5::AtLeastOnce, retain, payload)
                .is_ok(),
        }
    }

    /// Subscribes to the command topics, retained messages kept away where the
    /// protocol can say so (see the module's comment).
    pub fn try_subscribe_commands(&self, filter: String) -> Result<(), String> {
        match self {
            Client::V4(c) => c
                .try_subscribe(filter, QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
            Client::V5(c) => {
                let mut f = Filter::new(filter, QoS5::AtLeastOnce);
                f.preserve_retain = true;
                f.retain_forward_rule = RetainForwardRule::Never;
                c.try_subscribe_many(std::iter::once(f))
                    .map_err(|e| e.to_string())
            }
        }
    }

    pub fn try_disconnect(&self) {
        let _ = match self {
            Client::V4(c) => c.try_disconnect().map_err(|e| e.to_string()),
            Client::V5(c) => c.try_disconnect().map_err(|e| e.to_string()),
        };
    }
}

impl EventLoop {
    /// The next event; an error means the link dropped (the next poll reconnects).
    pub async fn poll(&mut self) -> Result<Event, String> {
        match self {
            EventLoop::V4(el) => match el.poll().await.map_err(|e| e.to_string())? {
                rumqttc::Event::Incoming(Packet::ConnAck(ack)) => {
                    Ok(if ack.code == rumqttc::ConnectReturnCode::Success {
                        Event::Connected { max_packet: None }
                    } else {
                        Event::Refused(format!("{:?}", ack.code))
                    })
                }
                rumqttc::Event::Incoming(Packet::PubAck(p)) => Ok(Event::PubAck {
                    pkid: p.pkid,
                    refused: None,
                }),
                rumqttc::Event::Incoming(Packet::Publish(p)) => Ok(Event::Message {
                    topic: p.topic,
                    payload: p.payload,
                    retain: p.retain,
                }),
                rumqttc::Event::Outgoing(Outgoing::Publish(pkid)) => Ok(Event::Written(pkid)),
                _ => Ok(Event::Other),
            },
            EventLoop::V5(el) => match el.poll().await.map_err(|e| e.to_string())? {
                rumqttc::v5::Event::Incoming(Packet5::ConnAck(ack)) => Ok(Event::Connected {
                    max_packet: ack.properties.and_then(|p| p.max_packet_size),
                }),
                rumqttc::v5::Event::Incoming(Packet5::PubAck(p)) => Ok(Event::PubAck {
                    pkid: p.pkid,
                    refused: match p.reason {
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => None,
                        other => Some(format!("{other:?}")),
                    },
                }),
                rumqttc::v5::Event::Incoming(Packet5::Publish(p)) => Ok(Event::Message {
                    // Topics are UTF-8 by the protocol; a broken one matches no command.
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload,
                    retain: p.retain,
                }),
                rumqttc::v5::Event::Outgoing(Outgoing::Publish(pkid)) => Ok(Event::Written(pkid)),
                _ => Ok(Event::Other),
            },
        }
    }

    /// After a drop: forgets what was queued or in flight (the outbox resends
    /// from its cursor; stale packets would confuse the packet-id bookkeeping).
    pub fn clean(&mut self) {
        match self {
            EventLoop::V4(el) => {
                el.clean();
                el.pending.clear();
            }
            EventLoop::V5(el) => {
                el.clean();
                el.pending.clear();
            }
        }
    }
}

/// The size of a QoS 1 PUBLISH on the wire, rounded up: fixed header (≤ 5),
/// topic length (2), packet id (2), MQTT 5's empty properties (1).
pub fn publish_size(topic: &str, payload: usize) -> usize {
    5 + 2 + topic.len() + 2 + 1 + payload
}
