//! The simulated estate (`driver = "sim"`): devices that behave like the real ones
//! (a door opens after a grant and closes again, a barrier lifts, a tag arrives and
//! departs, a sensor trips and clears, a link drops) so that the demo and the tests
//! exercise the real engine, journal and uplink.
//!
//! - `config`: the keys of a sim device.
//! - `timeline`: the device's future events, in time order.
//! - `link`: a switch per simulated device that cuts or restores its "link".

mod config;
mod link;
mod timeline;

pub use config::{LinkStep, Profile, ScriptStep, SimConfig};
pub use link::SimLink;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use tokio::time::Instant;

use crate::credential::{Credential, CredentialKind};
use crate::driver::{BuildError, DriverContext, DriverTask};
use crate::event::{Action, CredentialRead, EventBody, InputKind, Output, Presence};
use timeline::{Step, Timeline};

impl SimConfig {
    pub fn build(&self, ctx: DriverContext) -> Result<DriverTask, BuildError> {
        let mut credentials = Vec::with_capacity(self.credentials.len());
        for c in &self.credentials {
            let cred = Credential::parse_shorthand(c).map_err(|e| BuildError::Config {
                device: ctx.id.clone(),
                message: format!("credentials: {e}"),
            })?;
            credentials.push(cred);
        }
        let sim = SimDevice {
            rng: match self.seed {
                Some(seed) => StdRng::seed_from_u64(seed),
                None => StdRng::from_entropy(),
            },
            link: SimLink::for_device(&ctx.id),
            config: self.clone(),
            credentials,
            timeline: Timeline::default(),
            door_open: false,
        };
        Ok(Box::pin(sim.run(ctx)))
    }
}

struct SimDevice {
    config: SimConfig,
    credentials: Vec<Credential>,
    rng: StdRng,
    link: SimLink,
    timeline: Timeline,
    door_open: bool,
}

/// Seconds as a Duration, tolerant of odd config values (validated elsewhere).
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::ZERO)
}

impl SimDevice {
    async fn run(mut self, mut ctx: DriverContext) {
        let start = Instant::now();
        for step in self.config.script.clone() {
            self.timeline.push(
                start + Duration::from_millis(step.at_ms),
                Step::Script(step),
            );
        }
        self.schedule_random(start);
        if self.link.is_up() {
            ctx.events.set_online(Some("simulated".into())).await;
        } else {
            ctx.events.set_offline("simulated link down").await;
        }
        let mut link_rx = self.link.watch();
        loop {
            let next = self.timeline.next_at();
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                changed = link_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let up = *link_rx.borrow_and_update();
                    if up {
                        ctx.events.set_online(Some("simulated link restored".into())).await;
                    } else {
                        ctx.events.set_offline("simulated link down").await;
                    }
                }
                cmd = ctx.commands.recv() => match cmd {
                    Some(action) => self.on_command(action),
                    None => return,
                },
                _ = sleep_until_opt(next) => {
                    let now = Instant::now();
                    while let Some(step) = self.timeline.pop_due(now) {
                        self.fire(step, &ctx).await;
                    }
                }
            }
        }
    }

    /// Plans the first random presentation, sensor trip and outage.
    fn schedule_random(&mut self, now: Instant) {
        if self.config.mean_interval_s > 0.0 {
            let d = self.exp(self.config.mean_interval_s);
            self.timeline.push(now + d, Step::Present);
        }
        if self.config.sensor_trip_every_h > 0.0 {
            for i in 0..self.config.sensors.len() {
                let d = self.exp(self.config.sensor_trip_every_h * 3600.0);
                self.timeline.push(now + d, Step::SensorTrip(i));
            }
        }
        if self.config.outage_every_min > 0.0 {
            let d = self.exp(self.config.outage_every_min * 60.0);
            self.timeline.push(now + d, Step::Outage);
        }
    }

    /// An exponentially distributed delay with the given mean in seconds.
    fn exp(&mut self, mean_s: f64) -> Duration {
        let u: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        secs(-u.ln() * mean_s)
    }

    fn on_command(&mut self, action: Action) {
        if !self.link.is_up() {
            tracing::debug!(?action, "sim: command lost, link down");
            return;
        }
        let now = Instant::now();
        match action {
            Action::Pulse {
                output: Output::Lock,
                ..
            } => match self.config.profile {
                Profile::VehicleGate => {
                    self.timeline.push(
                        now + secs(0.3),
                        Step::Emit(input(InputKind::GateOpen, true)),
                    );
                    self.timeline.push(
                        now + secs(self.config.pass_s),
                        Step::Emit(input(InputKind::VehicleLoop, false)),
                    );
                    self.timeline.push(
                        now + secs(self.config.pass_s + 1.0),
                        Step::Emit(input(InputKind::GateOpen, false)),
                    );
                }
                _ => {
                    if self.door_open {
                        return;
                    }
                    self.door_open = true;
                    let held = self.rng.gen_bool(self.config.held_rate);
                    let open_for = if held {
                        self.config.held_s
                    } else {
                        self.config.pass_s
                    };
                    self.timeline.push(
                        now + secs(0.3),
                        Step::Emit(input(InputKind::DoorContact, true)),
                    );
                    if self.config.counts_passages {
                        let count = if self.rng.gen_bool(self.config.tailgate_rate) {
                            2
                        } else {
                            1
                        };
                        self.timeline.push(
                            now + secs(0.8),
                            Step::Emit(EventBody::Passage {
                                count,
                                direction: None,
                            }),
                        );
                    }
                    self.timeline
                        .push(now + secs(0.3 + open_for), Step::DoorClose);
                }
            },
            other => tracing::trace!(?other, "sim: command executed"),
        }
    }

    async fn fire(&mut self, step: Step, ctx: &DriverContext) {
        let now = Instant::now();
        match step {
            Step::Emit(body) => self.emit(ctx, body).await,
            Step::DoorClose => {
                self.door_open = false;
                self.emit(ctx, input(InputKind::DoorContact, false)).await;
            }
            Step::Present => {
                let d = self.exp(self.config.mean_interval_s);
                self.timeline.push(now + d, Step::Present);
                self.present(ctx, now).await;
            }
            Step::SensorTrip(i) => {
                let d = self.exp(self.config.sensor_trip_every_h * 3600.0);
                self.timeline.push(now + d, Step::SensorTrip(i));
                if let Some(&sensor) = self.config.sensors.get(i) {
                    self.emit(
                        ctx,
                        EventBody::Sensor {
                            sensor,
                            active: true,
                            value: None,
                        },
                    )
                    .await;
                    self.timeline.push(
                        now + secs(self.config.sensor_active_s),
                        Step::Emit(EventBody::Sensor {
                            sensor,
                            active: false,
                            value: None,
                        }),
                    );
                }
            }
            Step::Outage => {
                self.link.set(false);
                self.timeline
                    .push(now + secs(self.config.outage_s), Step::LinkUp);
                let d = self.exp(self.config.outage_every_min * 60.0);
                self.timeline
                    .push(now + secs(self.config.outage_s) + d, Step::Outage);
            }
            Step::LinkUp => self.link.set(true),
            Step::Script(s) => self.fire_script(ctx, s).await,
        }
    }

    /// A random presentation according to the profile.
    async fn present(&mut self, ctx: &DriverContext, now: Instant) {
        match self.config.profile {
            Profile::Door => {
                if !self.door_open && self.rng.gen_bool(self.config.forced_rate) {
                    self.door_open = true;
                    self.emit(ctx, input(InputKind::DoorContact, true)).await;
                    self.timeline.push(now + secs(5.0), Step::DoorClose);
                    return;
                }
                let cred = self.pick_credential(&[
                    CredentialKind::Card,
                    CredentialKind::Pin,
                    CredentialKind::Qr,
                    CredentialKind::Face,
                ]);
                self.emit(ctx, EventBody::Credential(read(cred))).await;
            }
            Profile::VehicleGate => {
                let cred = self.pick_credential(&[CredentialKind::Plate]);
                self.emit(ctx, input(InputKind::VehicleLoop, true)).await;
                let mut r = read(cred);
                r.format = Some("lpr".into());
                r.colour = Some(if r.credential.value.chars().count() == 8 {
                    crate::event::PlateColour::Green
                } else {
                    crate::event::PlateColour::Blue
                });
                r.confidence = Some(self.rng.gen_range(0.86..0.99));
                self.emit(ctx, EventBody::Credential(r)).await;
            }
            Profile::EbikeReader => {
                let cred = self.pick_credential(&[CredentialKind::Tag]);
                let rssi = self.rng.gen_range(-68.0..-40.0);
                self.emit(
                    ctx,
                    EventBody::Tag {
                        epc: cred.value.clone(),
                        presence: Presence::Arrived,
                        antenna: Some(1),
                        rssi: Some(rssi),
                    },
                )
                .await;
                self.timeline.push(
                    now + secs(self.config.tag_dwell_s),
                    Step::Emit(EventBody::Tag {
                        epc: cred.value,
                        presence: Presence::Departed,
                        antenna: Some(1),
                        rssi: None,
                    }),
                );
            }
            Profile::Sensors => {}
        }
    }

    /// One of the configured credentials of the given kinds, or (at `unknown_rate`,
    /// or when none is configured) one that nobody holds.
    fn pick_credential(&mut self, kinds: &[CredentialKind]) -> Credential {
        let known: Vec<&Credential> = self
            .credentials
            .iter()
            .filter(|c| kinds.contains(&c.kind))
            .collect();
        if known.is_empty() || self.rng.gen_bool(self.config.unknown_rate) {
            return self.unknown_credential(kinds[0]);
        }
        known[self.rng.gen_range(0..known.len())].clone()
    }

    fn unknown_credential(&mut self, kind: CredentialKind) -> Credential {
        let value = match kind {
            CredentialKind::Plate => {
                const PROV: [&str; 6] = ["京", "沪", "粤", "浙", "苏", "川"];
                let p = PROV[self.rng.gen_range(0..PROV.len())];
                let city = (b'A' + self.rng.gen_range(0..8u8)) as char;
                format!("{p}{city}{:05}", self.rng.gen_range(0..100_000))
            }
            CredentialKind::Tag => format!("E2801160{:016X}", self.rng.gen::<u64>()),
            _ => format!("{}", self.rng.gen_range(900_000..1_000_000u32)),
        };
        Credential { kind, value }
    }

    async fn fire_script(&mut self, ctx: &DriverContext, s: ScriptStep) {
        let body = if let Some(r) = &s.read {
            match Credential::parse_shorthand(r) {
                Ok(cred) => {
                    let mut read = read(cred);
                    read.late = s.late;
                    EventBody::Credential(read)
                }
                Err(e) => EventBody::Fault {
                    error: format!("script read `{r}`: {e}"),
                },
            }
        } else if let Some(kind) = s.input {
            let active = s.active.unwrap_or(true);
            if kind == InputKind::DoorContact {
                self.door_open = active;
            }
            input(kind, active)
        } else if let Some(sensor) = s.sensor {
            EventBody::Sensor {
                sensor,
                active: s.active.unwrap_or(true),
                value: None,
            }
        } else if let Some(epc) = s.tag {
            EventBody::Tag {
                epc,
                presence: s.presence.unwrap_or(Presence::Arrived),
                antenna: Some(1),
                rssi: Some(-50.0),
            }
        } else if let Some(count) = s.passage {
            EventBody::Passage {
                count,
                direction: None,
            }
        } else if let Some(active) = s.tamper {
            EventBody::Tamper {
                active,
                detail: "simulated enclosure switch".into(),
            }
        } else if let Some(error) = s.fault {
            EventBody::Fault { error }
        } else if let Some(link) = s.link {
            self.link.set(link == LinkStep::Up);
            return;
        } else {
            return;
        };
        self.emit(ctx, body).await;
    }

    /// Emits unless the simulated link is down (a real reader would be unreachable).
    async fn emit(&self, ctx: &DriverContext, body: EventBody) {
        if self.link.is_up() {
            ctx.events.emit(body).await;
        }
    }
}

fn input(input: InputKind, active: bool) -> EventBody {
    EventBody::Input { input, active }
}

fn read(credential: Credential) -> CredentialRead {
    let format = match credential.kind {
        CredentialKind::Card => "wiegand26",
        CredentialKind::Pin => "keypad",
        _ => "sim",
    };
    CredentialRead {
        format: Some(format.into()),
        ..CredentialRead::new(credential)
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
