//! The future of one simulated device: steps ordered by time, ties kept in the
//! order they were planned.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tokio::time::Instant;

use super::config::ScriptStep;
use crate::event::EventBody;

pub(super) enum Step {
    /// Emit this event.
    Emit(EventBody),
    /// The door swings shut (clears the "door open" state, then reports it).
    DoorClose,
    /// Present a random credential, and plan the next presentation.
    Present,
    /// Trip sensor number i, plan its clearing and its next trip.
    SensorTrip(usize),
    /// Cut the simulated link, and plan its return.
    Outage,
    LinkUp,
    Script(ScriptStep),
}

#[derive(Default)]
pub(super) struct Timeline {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    steps: std::collections::HashMap<u64, Step>,
    counter: u64,
}

impl Timeline {
    pub fn push(&mut self, at: Instant, step: Step) {
        self.counter += 1;
        self.heap.push(Reverse((at, self.counter)));
        self.steps.insert(self.counter, step);
    }

    pub fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The earliest step due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Step> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => {
                let Reverse((_, id)) = self.heap.pop()?;
                self.steps.remove(&id)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_time_then_plan_order() {
        let mut t = Timeline::default();
        let now = Instant::now();
        t.push(now + Duration::from_millis(5), Step::LinkUp);
        t.push(now, Step::Present);
        t.push(now, Step::Outage);
        assert!(matches!(t.pop_due(now), Some(Step::Present)));
        assert!(matches!(t.pop_due(now), Some(Step::Outage)));
        assert!(t.pop_due(now).is_none());
        assert!(matches!(
            t.pop_due(now + Duration::from_millis(5)),
            Some(Step::LinkUp)
        ));
    }
}
