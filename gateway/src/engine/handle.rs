//! How the rest of the gateway talks to the engine task: commands, typed reads
//! of its state, and the gateway's own figures. Every call goes through one
//! queue, so the engine sees them in order with the device events.

use tokio::sync::{mpsc, oneshot};

use super::query::{Query, QueryResult};
use super::roster::Person;
use super::site::{DeviceInfoView, DoorInfo};
use super::{Command, CommandOk, Engine};
use crate::contract::{AlarmRecord, CommandError, ErrorCode, PersonId};

/// A read run on the engine's task, with the engine borrowed.
pub type Read = Box<dyn FnOnce(&Engine) + Send>;

/// Inputs other than device events.
pub enum Input {
    Command {
        cmd: Command,
        reply: oneshot::Sender<Result<CommandOk, CommandError>>,
    },
    /// A read of the state; the closure sends its own answer.
    Read(Read),
    /// Retention evicted records the platform never got.
    DataLoss(u64, super::health::LossCause),
    /// Records waiting to be forwarded.
    Backlog(u64),
    /// The face match threshold, recomputed for the gallery's size.
    FaceMatchThreshold(f32),
}

/// The engine task has stopped (the gateway is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the gateway is stopping")]
pub struct Stopped;

/// How the rest of the gateway talks to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Input>,
}

impl EngineHandle {
    pub fn new(tx: mpsc::Sender<Input>) -> Self {
        Self { tx }
    }

    pub async fn command(&self, cmd: Command) -> Result<CommandOk, CommandError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || CommandError::new(ErrorCode::Internal, Stopped.to_string());
        self.tx
            .send(Input::Command { cmd, reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs `f` on the engine's task and returns what it gives.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        let (reply, rx) = oneshot::channel();
        let read: Read = Box::new(move |e| {
            let _ = reply.send(f(e));
        });
        self.tx.send(Input::Read(read)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Doors with their state and their devices' link state.
    pub async fn doors(&self) -> Result<Vec<DoorInfo>, Stopped> {
        self.read(|e| e.site.door_infos(&e.doors)).await
    }

    /// Every device with its link state.
    pub async fn devices(&self) -> Result<Vec<DeviceInfoView>, Stopped> {
        self.read(|e| e.site.device_views()).await
    }

    /// Open alarms, most severe first, then oldest first.
    pub async fn open_alarms(&self) -> Result<Vec<AlarmRecord>, Stopped> {
        self.read(|e| e.open_alarms()).await
    }

    pub async fn person(&self, id: PersonId) -> Result<Option<Person>, Stopped> {
        self.read(move |e| e.roster.get(&id).cloned()).await
    }

    /// Persons sorted by id, from `after` (exclusive), at most `limit`.
    pub async fn persons(
        &self,
        after: Option<PersonId>,
        limit: usize,
    ) -> Result<Vec<Person>, Stopped> {
        self.read(move |e| e.persons(after.as_ref(), limit)).await
    }

    /// Whether `person.upsert` would take the person; changes nothing.
    pub async fn check_upsert(&self, person: Person) -> Result<(), CommandError> {
        self.read(move |e| e.check_upsert(&person))
            .await
            .map_err(|s| CommandError::internal(s.to_string()))?
    }

    /// Any read as a [`Query`]; `None` once the engine has stopped.
    pub async fn query(&self, q: Query) -> Option<QueryResult> {
        self.read(move |e| e.query(q)).await.ok()
    }

    /// Retention evicted `n` records the platform never got.
    pub async fn data_lost(&self, n: u64, cause: super::health::LossCause) {
        let _ = self.tx.send(Input::DataLoss(n, cause)).await;
    }

    /// The similarity a face needs to open, from now on.
    pub async fn set_face_match_threshold(&self, t: f32) {
        let _ = self.tx.send(Input::FaceMatchThreshold(t)).await;
    }

    /// `n` records wait to be forwarded.
    pub async fn backlog(&self, n: u64) {
        let _ = self.tx.send(Input::Backlog(n)).await;
    }
}
