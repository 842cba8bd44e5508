//! The gateway's own condition, as records: records lost to the disk budget
//! (`data_loss`), an upload backlog (`buffer_high`), its own store failing, its
//! start and stop.

use chrono::{DateTime, Utc};

use super::alarms::AlarmSpec;
use super::{Effects, Engine, EngineError};
use crate::contract::{AlarmType, Draft, EventAction, EventKind, EventRecord};

/// Why records were lost (the `data_loss` alarm says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossCause {
    /// Evicted by the disk budget before the platform acknowledged them.
    Evicted,
    /// Refused by the journal: the disk failed or was full for longer than the
    /// pending memory lasts, or the gateway stopped before the disk took them.
    Refused,
    /// Larger than the broker takes: never publishable.
    TooLarge,
}

impl std::fmt::Display for LossCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LossCause::Evicted => "evicted by the disk budget (retention.max_disk_mb)",
            LossCause::Refused => "refused while the disk did not take writes",
            LossCause::TooLarge => {
                "too large to send (over mqtt.max_packet_kib or the broker's limit)"
            }
        })
    }
}

impl Engine {
    /// Records were lost before the platform had them: say how many, and why.
    pub fn on_data_loss(&mut self, count: u64, cause: LossCause, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        let mut spec = AlarmSpec::new(
            AlarmType::DataLoss,
            format!("{}", now.timestamp_millis()),
            AlarmType::DataLoss.message(&[("count", &count), ("cause", &cause)]),
        );
        spec.device = Some(self.gateway.clone());
        self.raise(&mut fx, spec, now);
        fx
    }

    /// The unforwarded backlog changed: raise or end `buffer_high`.
    pub fn on_backlog(&mut self, unforwarded: u64, threshold: u64, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        let open = self.alarms.find(AlarmType::BufferHigh, "uplink").is_some();
        if unforwarded > threshold && !open {
            let mut spec = AlarmSpec::new(
                AlarmType::BufferHigh,
                "uplink",
                AlarmType::BufferHigh.message(&[("count", &unforwarded)]),
            );
            spec.device = Some(self.gateway.clone());
            spec.lasting = true;
            self.raise(&mut fx, spec, now);
        } else if unforwarded <= threshold / 2 && open {
            self.end(&mut fx, AlarmType::BufferHigh, "uplink", now);
        }
        fx
    }

    /// A gateway record, e.g. at start and stop.
    pub fn gateway_event(&self, action: EventAction, detail: &str, now: DateTime<Utc>) -> Draft {
        let mut e = EventRecord::new(EventKind::System, action, self.gateway.clone());
        e.detail = Some(detail.to_owned());
        Draft::event(now, e)
    }

    /// The engine's own store failed: said in the log and journaled for the platform.
    pub(super) fn storage_failed(
        &self,
        fx: &mut Effects,
        what: &str,
        e: &EngineError,
        now: DateTime<Utc>,
    ) {
        tracing::error!("engine: {what}: {e}");
        let mut ev = EventRecord::new(
            EventKind::System,
            EventAction::DeviceError,
            self.gateway.clone(),
        );
        ev.detail = Some(format!("{what}: {e}"));
        fx.event(now, ev);
    }
}
