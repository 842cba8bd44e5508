//! Modbus (`driver = "modbus"`, TCP or RTU): barrier gates, turnstiles and
//! sensor panels. Coils are driven for the logical outputs (a pulse lifts a
//! barrier, a hold keeps an elevator), mapped inputs and sensors are polled and
//! reported when they change.
//!
//! - `pdu`: requests and response decoding (exceptions included).
//! - `frame`: TCP (MBAP) and RTU (CRC-16) framing.
//! - `link`: one request/response over TCP or the shared serial transport.
//! - `config`: the device's keys and point mapping.

pub mod config;
pub mod frame;
pub mod link;
pub mod pdu;

pub use config::{ModbusConfig, Point, PointValue, Transport};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use crate::backoff::{sleep_or_shutdown, Backoff};
use crate::driver::{BuildError, DriverContext, DriverTask};
use crate::event::{Action, EventBody, Output};
use link::{CallError, Link};
use pdu::{Request, Response, Table};

impl ModbusConfig {
    pub fn build(&self, ctx: DriverContext) -> Result<DriverTask, BuildError> {
        if let Some(p) = self.validate().first() {
            return Err(BuildError::Config {
                device: ctx.id.clone(),
                message: format!("{}: {}", p.key, p.message),
            });
        }
        Ok(Box::pin(Device::new(Arc::new(self.clone())).run(ctx)))
    }
}

async fn connect(cfg: &ModbusConfig) -> std::io::Result<Link> {
    match cfg.transport {
        Transport::Tcp => {
            let addr = cfg.tcp_address();
            let stream = tokio::time::timeout(cfg.timeout(), tokio::net::TcpStream::connect(&addr))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                })??;
            stream.set_nodelay(true)?;
            Ok(Link::Tcp {
                stream,
                transaction: 0,
            })
        }
        Transport::Rtu => Ok(Link::Rtu(crate::serial::open(&cfg.serial())?)),
    }
}

/// One read covering some points of one table.
struct ReadPlan {
    request: Request,
    /// (point index, offset in the response)
    points: Vec<(usize, usize)>,
}

fn plan(points: &[Point]) -> Vec<ReadPlan> {
    let mut by_table: BTreeMap<Table, Vec<usize>> = BTreeMap::new();
    for (i, p) in points.iter().enumerate() {
        by_table.entry(p.table).or_default().push(i);
    }
    let mut out = Vec::new();
    for (table, idx) in by_table {
        let lo = idx.iter().map(|&i| points[i].address).min().unwrap_or(0);
        let hi = idx.iter().map(|&i| points[i].address).max().unwrap_or(0);
        if hi - lo < table.max_count() {
            out.push(ReadPlan {
                request: Request::Read {
                    table,
                    address: lo,
                    count: hi - lo + 1,
                },
                points: idx
                    .iter()
                    .map(|&i| (i, usize::from(points[i].address - lo)))
                    .collect(),
            });
        } else {
            // Too far apart for one read: one read per point.
            for i in idx {
                out.push(ReadPlan {
                    request: Request::Read {
                        table,
                        address: points[i].address,
                        count: 1,
                    },
                    points: vec![(i, 0)],
                });
            }
        }
    }
    out
}

struct Device {
    cfg: Arc<ModbusConfig>,
    plans: Vec<ReadPlan>,
    state: Vec<Option<bool>>,
    /// Coils to switch off when their pulse ends.
    pulses: BTreeMap<u16, Instant>,
    last_fault: Option<String>,
}

enum Step {
    Ok,
    /// The link is gone or the device stopped answering: the reason.
    Failed(String),
}

impl Device {
    fn new(cfg: Arc<ModbusConfig>) -> Device {
        Device {
            plans: plan(&cfg.points),
            state: vec![None; cfg.points.len()],
            pulses: BTreeMap::new(),
            last_fault: None,
            cfg,
        }
    }

    async fn run(mut self, mut ctx: DriverContext) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let target = match self.cfg.transport {
            Transport::Tcp => self.cfg.tcp_address(),
            Transport::Rtu => self.cfg.serial().port,
        };
        loop {
            if ctx.shutdown.is_cancelled() {
                return;
            }
            let mut link = match connect(&self.cfg).await {
                Ok(l) => l,
                Err(e) => {
                    ctx.events.set_offline(format!("{target}: {e}")).await;
                    if !sleep_or_shutdown(&ctx.shutdown, backoff.next_delay()).await {
                        return;
                    }
                    continue;
                }
            };
            let reason = self.serve(&mut link, &mut ctx, &mut backoff).await;
            match reason {
                None => {
                    self.end_pulses(&mut link).await;
                    return;
                }
                Some(why) => {
                    ctx.events.set_offline(format!("{target}: {why}")).await;
                    // Pulses cannot be ended on a dead link; the device's own timer must.
                    self.pulses.clear();
                    if !sleep_or_shutdown(&ctx.shutdown, backoff.next_delay()).await {
                        return;
                    }
                }
            }
        }
    }

    /// Polls and executes commands until the link fails (Some(reason)) or shutdown (None).
    async fn serve(
        &mut self,
        link: &mut Link,
        ctx: &mut DriverContext,
        backoff: &mut Backoff,
    ) -> Option<String> {
        let mut failures = 0u32;
        let mut tick = tokio::time::interval(self.cfg.poll_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_off = self.pulses.values().min().copied();
            let step = tokio::select! {
                _ = ctx.shutdown.cancelled() => return None,
                action = ctx.commands.recv() => match action {
                    Some(a) => self.execute(link, a, ctx).await,
                    None => return None,
                },
                _ = sleep_until_opt(next_off) => self.end_due_pulses(link, ctx).await,
                _ = tick.tick() => self.poll(link, ctx).await,
            };
            match step {
                Step::Ok => {
                    failures = 0;
                }
                Step::Failed(why) => {
                    failures += 1;
                    if failures >= self.cfg.offline_after {
                        return Some(format!("{failures} failed polls, last: {why}"));
                    }
                }
            }
            if failures == 0 && !ctx.events.is_online() {
                backoff.reset();
                let detail = format!("unit {}", self.cfg.unit);
                ctx.events.set_online(Some(detail)).await;
            }
        }
    }

    async fn call(&mut self, link: &mut Link, req: &Request) -> Result<Response, CallError> {
        link.call(self.cfg.unit, req, self.cfg.timeout()).await
    }

    async fn fault_once(&mut self, ctx: &DriverContext, error: String) {
        if self.last_fault.as_deref() != Some(error.as_str()) {
            self.last_fault = Some(error.clone());
            ctx.events.emit(EventBody::Fault { error }).await;
        }
    }

    /// A failed call: an exception is a device error (the link is up); the rest count as failures.
    async fn failed(&mut self, ctx: &DriverContext, req: &Request, e: CallError) -> Step {
        let msg = format!("{}: {e}", req.describe());
        if e.device_answered() {
            self.fault_once(ctx, msg).await;
            return Step::Ok;
        }
        if let CallError::Io(io) = &e {
            // The connection itself is gone: no point in waiting for more failures.
            if io.kind() != std::io::ErrorKind::InvalidData {
                return Step::Failed(format!("{msg} (connection lost)"));
            }
        }
        Step::Failed(msg)
    }

    async fn poll(&mut self, link: &mut Link, ctx: &DriverContext) -> Step {
        for i in 0..self.plans.len() {
            let req = self.plans[i].request;
            let values: Vec<PointValue> = match self.call(link, &req).await {
                Ok(Response::Bits(b)) => b.into_iter().map(PointValue::Bit).collect(),
                Ok(Response::Registers(r)) => r.into_iter().map(PointValue::Register).collect(),
                Ok(Response::CoilWritten) => continue,
                Err(e) => {
                    let step = self.failed(ctx, &req, e).await;
                    if matches!(step, Step::Failed(_)) {
                        return step;
                    }
                    continue;
                }
            };
            for &(p, off) in &self.plans[i].points {
                let Some(&raw) = values.get(off) else {
                    continue;
                };
                let point = &self.cfg.points[p];
                let active = point.active(raw);
                let before = self.state[p].replace(active);
                // At first sight only an active point is news.
                if before == Some(active) || (before.is_none() && !active) {
                    continue;
                }
                let body = match (point.input, point.sensor) {
                    (Some(input), _) => EventBody::Input { input, active },
                    (None, Some(sensor)) => EventBody::Sensor {
                        sensor,
                        active,
                        value: match raw {
                            PointValue::Register(r) => Some(f64::from(r) * point.scale),
                            PointValue::Bit(_) => None,
                        },
                    },
                    (None, None) => continue,
                };
                ctx.events.emit(body).await;
            }
        }
        Step::Ok
    }

    fn coil(&self, output: Output) -> Option<u16> {
        let c = self.cfg.outputs.get(&output).copied();
        if c.is_none() {
            tracing::warn!(?output, "no coil mapped for this output (outputs)");
        }
        c
    }

    async fn write(
        &mut self,
        link: &mut Link,
        ctx: &DriverContext,
        address: u16,
        on: bool,
    ) -> Step {
        let req = Request::WriteCoil { address, on };
        match self.call(link, &req).await {
            Ok(_) => Step::Ok,
            Err(e) => {
                ctx.events
                    .emit(EventBody::Fault {
                        error: format!("command not executed: {}: {e}", req.describe()),
                    })
                    .await;
                self.failed(ctx, &req, e).await
            }
        }
    }

    async fn execute(&mut self, link: &mut Link, action: Action, ctx: &DriverContext) -> Step {
        match action {
            Action::Pulse { output, ms } => {
                let Some(coil) = self.coil(output) else {
                    return Step::Ok;
                };
                let step = self.write(link, ctx, coil, true).await;
                if matches!(step, Step::Ok) {
                    self.pulses
                        .insert(coil, Instant::now() + Duration::from_millis(u64::from(ms)));
                }
                step
            }
            Action::Hold { output, on } => {
                let Some(coil) = self.coil(output) else {
                    return Step::Ok;
                };
                self.pulses.remove(&coil);
                self.write(link, ctx, coil, on).await
            }
            other => {
                tracing::debug!(?other, "a Modbus device has no reader feedback or display");
                Step::Ok
            }
        }
    }

    async fn end_due_pulses(&mut self, link: &mut Link, ctx: &DriverContext) -> Step {
        let now = Instant::now();
        let due: Vec<u16> = self
            .pulses
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(c, _)| *c)
            .collect();
        let mut step = Step::Ok;
        for coil in due {
            self.pulses.remove(&coil);
            if let Step::Failed(why) = self.write(link, ctx, coil, false).await {
                step = Step::Failed(why);
            }
        }
        step
    }

    /// At shutdown: release what we pulsed, best effort.
    async fn end_pulses(&mut self, link: &mut Link) {
        let coils: Vec<u16> = self.pulses.keys().copied().collect();
        for coil in coils {
            let _ = link
                .call(
                    self.cfg.unit,
                    &Request::WriteCoil {
                        address: coil,
                        on: false,
                    },
                    Duration::from_millis(300),
                )
                .await;
        }
        self.pulses.clear();
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
