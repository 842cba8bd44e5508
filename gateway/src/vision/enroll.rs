//! Enrollment: each photo must show exactly one usable face; a face that
//! already belongs to another person is refused (one person enrolled twice
//! under two ids would pass as either). Errors name the photo and a code:
//! `not_an_image`, `no_face`, `several_faces`, `too_small`, `too_blurry`,
//! `turned_away`, `duplicate_face`.

use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::Arc;

use super::Vision;
use crate::contract::{CommandError, ErrorCode, PersonId};
use crate::control::{FaceEnroller, PreparedFaces};

pub struct Enroller {
    vision: Arc<Vision>,
}

impl Enroller {
    pub fn new(vision: Arc<Vision>) -> Self {
        Self { vision }
    }
}

/// Checks and embeds photos (blocking: runs the models).
pub fn prepare_blocking(
    vision: &Vision,
    person: &PersonId,
    photos: &[Bytes],
) -> Result<Vec<Vec<f32>>, CommandError> {
    let mut templates = Vec::with_capacity(photos.len());
    for (i, photo) in photos.iter().enumerate() {
        let face = vision.pipeline.photo(photo).map_err(|e| {
            CommandError::new(
                if e.code() == "internal" {
                    ErrorCode::Internal
                } else {
                    ErrorCode::Invalid
                },
                format!("faces[{i}]: {}: {e}", e.code()),
            )
        })?;
        let Some(embedding) = face.analyzed.embedding else {
            return Err(CommandError::new(
                ErrorCode::Internal,
                format!("faces[{i}]: the face was not embedded"),
            ));
        };
        let duplicate = vision
            .identify(&embedding)
            .into_iter()
            .find(|h| &*h.person != person.as_str())
            .filter(|h| h.similarity >= vision.cfg.match_threshold);
        if let Some(h) = duplicate {
            return Err(CommandError::new(
                ErrorCode::Conflict,
                format!(
                    "faces[{i}]: duplicate_face: the face matches enrolled person {} (similarity {:.2})",
                    h.person, h.similarity
                ),
            ));
        }
        templates.push(embedding);
    }
    Ok(templates)
}

impl FaceEnroller for Enroller {
    fn prepare<'a>(
        &'a self,
        person: &'a PersonId,
        photos: Vec<Bytes>,
    ) -> BoxFuture<'a, Result<PreparedFaces, CommandError>> {
        Box::pin(async move {
            let vision = self.vision.clone();
            let who = person.clone();
            let checked = photos.clone();
            let templates =
                tokio::task::spawn_blocking(move || prepare_blocking(&vision, &who, &checked))
                    .await
                    .map_err(|e| CommandError::new(ErrorCode::Internal, e.to_string()))??;
            Ok(PreparedFaces { templates, photos })
        })
    }

    fn commit<'a>(
        &'a self,
        person: &'a PersonId,
        faces: PreparedFaces,
    ) -> BoxFuture<'a, Result<u32, CommandError>> {
        Box::pin(async move {
            let internal = |e: String| CommandError::new(ErrorCode::Internal, e);
            let count = match &self.vision.store {
                Some(s) => s
                    .add(person.as_str(), &faces.templates)
                    .map_err(|e| internal(e.to_string()))?,
                None => 0,
            };
            let mut g = self
                .vision
                .gallery
                .write()
                .map_err(|_| internal("gallery lock poisoned".into()))?;
            for t in &faces.templates {
                g.insert(person.as_str(), t);
            }
            self.vision.stats.set_templates(g.len());
            Ok(if self.vision.store.is_some() {
                count
            } else {
                g.count(person.as_str())
            })
        })
    }

    fn remove<'a>(&'a self, person: &'a PersonId) -> BoxFuture<'a, Result<(), CommandError>> {
        Box::pin(async move {
            let internal = |e: String| CommandError::new(ErrorCode::Internal, e);
            if let Some(s) = &self.vision.store {
                s.remove(person.as_str())
                    .map_err(|e| internal(e.to_string()))?;
            }
            self.vision
                .gallery
                .write()
                .map_err(|_| internal("gallery lock poisoned".into()))
                .map(|mut g| {
                    g.remove(person.as_str());
                    self.vision.stats.set_templates(g.len());
                })?;
            Ok(())
        })
    }

    fn match_threshold(&self) -> BoxFuture<'_, Option<f32>> {
        Box::pin(async move {
            let vision = self.vision.clone();
            tokio::task::spawn_blocking(move || vision.calibrated_threshold())
                .await
                .ok()
                .flatten()
        })
    }
}
