//! Local vision beside the engine: camera frames → faces → gallery matches,
//! fed to the engine as face credentials; and enrollment of face photos.
//!
//! The face pipeline itself (issue 4) is not built yet: what stands here is the
//! interface the platform commands and the console use to enroll photos.

use bytes::Bytes;
use drivers::PersonId;
use futures::future::BoxFuture;

use crate::engine::CommandError;

/// Where the face enroller is plugged in once the face pipeline has started.
pub type FaceSlot = std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<dyn FaceEnroller>>>>;

/// Face templates computed from checked photos, not stored yet.
pub struct PreparedFaces {
    pub templates: Vec<Vec<f32>>,
    pub photos: Vec<Bytes>,
}

/// Turns enrollment photos into gallery templates. Photos are checked and
/// embedded first (`prepare`), stored only when the whole command is valid
/// (`commit`), so that a bad photo changes nothing.
pub trait FaceEnroller: Send + Sync {
    /// Checks every photo (exactly one usable face each) and embeds it.
    fn prepare<'a>(
        &'a self,
        person: &'a PersonId,
        photos: Vec<Bytes>,
    ) -> BoxFuture<'a, Result<PreparedFaces, CommandError>>;
    /// Adds the templates to the person's; returns how many the person has now.
    fn commit<'a>(
        &'a self,
        person: &'a PersonId,
        faces: PreparedFaces,
    ) -> BoxFuture<'a, Result<u32, CommandError>>;
    /// Forgets every template of a person.
    fn remove<'a>(&'a self, person: &'a PersonId) -> BoxFuture<'a, Result<(), CommandError>>;
}
