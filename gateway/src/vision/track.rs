//! Faces followed across the frames of one camera. A track collects what each
//! frame saw of the face; once `votes` usable frames agree (or disagree) the
//! track is decided once: the resident waiting at the door gets one decision,
//! not one per frame. The liveness gate looks at the same frames.

use chrono::{DateTime, Utc};
use models::boxes::iou;
use models::face::{align, Face, Point, QualityIssue};
use models::Hit;
use std::sync::Arc;

/// What one frame saw of a tracked face.
#[derive(Clone, Debug)]
pub struct Observation {
    pub at: DateTime<Utc>,
    pub face: Face,
    /// Why the face was not usable in this frame.
    pub issue: Option<QualityIssue>,
    /// The gallery's best persons for this frame's embedding (usable frames only).
    pub hits: Vec<Hit>,
}

/// What a decided track reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The winner of the vote (empty gallery: none) and its averaged similarity.
    Identified {
        person: Option<Arc<str>>,
        similarity: f32,
        /// Index of the observation that shows the winner best (the snapshot).
        best: usize,
    },
    /// The face failed a gate in too many frames, or the liveness gate.
    Unusable { why: &'static str, best: usize },
}

pub struct Track {
    pub id: u64,
    pub last: Face,
    pub last_seen: DateTime<Utc>,
    pub obs: Vec<Observation>,
    pub decided: bool,
}

/// Settings of tracking and voting.
#[derive(Clone, Copy, Debug)]
pub struct TrackRules {
    pub votes: usize,
    /// Frames after which a track with too few usable ones is reported unusable.
    pub patience: usize,
    /// A track unseen this long has ended.
    pub ttl_ms: i64,
    pub liveness: bool,
}

/// Tracks of one camera.
#[derive(Default)]
pub struct Tracker {
    pub tracks: Vec<Track>,
    next: u64,
}

impl Tracker {
    /// Ends tracks unseen for `ttl_ms`.
    pub fn expire(&mut self, now: DateTime<Utc>, ttl_ms: i64) {
        self.tracks
            .retain(|t| (now - t.last_seen).num_milliseconds() <= ttl_ms);
    }

    /// Adds an observation to the track it continues (best overlap), or a new track;
    /// returns the track's index.
    pub fn observe(&mut self, o: Observation, taken: &mut Vec<u64>) -> usize {
        let best = self
            .tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| !taken.contains(&t.id))
            .map(|(i, t)| (i, iou(&t.last.bbox(), &o.face.bbox())))
            .filter(|(_, iou)| *iou > 0.2)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i);
        let i = match best {
            Some(i) => i,
            None => {
                self.next += 1;
                self.tracks.push(Track {
                    id: self.next,
                    last: o.face.clone(),
                    last_seen: o.at,
                    obs: Vec::new(),
                    decided: false,
                });
                self.tracks.len() - 1
            }
        };
        let t = &mut self.tracks[i];
        taken.push(t.id);
        t.last = o.face.clone();
        t.last_seen = o.at;
        if t.obs.len() < 64 {
            t.obs.push(o);
        }
        i
    }
}

impl Track {
    /// The decision, once the track has enough frames; `None` while it waits.
    pub fn decide(&self, rules: &TrackRules) -> Option<Outcome> {
        if self.decided {
            return None;
        }
        let usable: Vec<usize> = (0..self.obs.len())
            .filter(|i| self.obs[*i].issue.is_none())
            .collect();
        let best_frame = |ix: &[usize]| {
            ix.iter()
                .copied()
                .max_by(|a, b| self.obs[*a].face.score.total_cmp(&self.obs[*b].face.score))
                .unwrap_or(0)
        };
        if usable.len() < rules.votes {
            let big = self
                .obs
                .iter()
                .filter(|o| o.issue != Some(QualityIssue::TooSmall))
                .count();
            if big >= rules.patience {
                let all: Vec<usize> = (0..self.obs.len()).collect();
                return Some(Outcome::Unusable {
                    why: "the face stayed blurred or turned away",
                    best: best_frame(&all),
                });
            }
            return None;
        }
        let voters = &usable[usable.len() - rules.votes..];
        // Liveness looks at every usable frame of the track so far, and waits
        // (up to `patience` usable frames) for a face that has not moved yet:
        // a live face shows itself within a second or two, a picture never.
        if rules.liveness && !moves_like_a_face(usable.iter().map(|i| &self.obs[*i].face)) {
            if usable.len() < rules.patience {
                return None;
            }
            return Some(Outcome::Unusable {
                why: "liveness: the face did not move like a live face",
                best: best_frame(voters),
            });
        }
        // Each frame votes for its best person; the winner's similarity is
        // averaged over all voting frames (a frame that did not rank them counts 0).
        let mut tally: Vec<(Arc<str>, usize)> = Vec::new();
        for i in voters {
            if let Some(h) = self.obs[*i].hits.first() {
                match tally.iter_mut().find(|(p, _)| *p == h.person) {
                    Some(t) => t.1 += 1,
                    None => tally.push((h.person.clone(), 1)),
                }
            }
        }
        let score = |p: &Arc<str>| {
            voters
                .iter()
                .map(|i| {
                    self.obs[*i]
                        .hits
                        .iter()
                        .find(|h| h.person == *p)
                        .map_or(0.0, |h| h.similarity)
                })
                .sum::<f32>()
                / voters.len() as f32
        };
        let winner = tally
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(score(&a.0).total_cmp(&score(&b.0))))
            .map(|(p, _)| p.clone());
        let similarity = winner.as_ref().map_or(0.0, score);
        let best = voters
            .iter()
            .copied()
            .max_by(|a, b| {
                let s = |i: usize| {
                    winner.as_ref().map_or(0.0, |w| {
                        self.obs[i]
                            .hits
                            .iter()
                            .find(|h| h.person == *w)
                            .map_or(0.0, |h| h.similarity)
                    })
                };
                s(*a).total_cmp(&s(*b))
            })
            .unwrap_or(0);
        Some(Outcome::Identified {
            person: winner,
            similarity,
            best,
        })
    }
}

/// How far the landmarks of `b` are from the best similarity image of those
/// of `a`, relative to the eye distance: near 0 for a flat picture moved,
/// turned or scaled in front of the camera; larger when a head turns, nods or
/// the face changes expression.
pub fn non_rigid(a: &[Point; 5], b: &[Point; 5]) -> f32 {
    let m = align::similarity(a, b);
    let mut sum = 0f64;
    for (p, q) in a.iter().zip(b) {
        let x = m[0] * p.x as f64 + m[1] * p.y as f64 + m[2];
        let y = m[3] * p.x as f64 + m[4] * p.y as f64 + m[5];
        sum += (x - q.x as f64).powi(2) + (y - q.y as f64).powi(2);
    }
    let eye = ((b[1].x - b[0].x).powi(2) + (b[1].y - b[0].y).powi(2))
        .sqrt()
        .max(1.0);
    ((sum / 5.0).sqrt() as f32) / eye
}

/// Liveness from motion: over the voting frames, some pair of frames must show
/// non-rigid motion of the landmarks above detector jitter.
pub fn moves_like_a_face<'a>(faces: impl Iterator<Item = &'a Face>) -> bool {
    const MIN_NON_RIGID: f32 = 0.03;
    let faces: Vec<&Face> = faces.collect();
    let mut most = 0f32;
    for (i, a) in faces.iter().enumerate() {
        for b in &faces[i + 1..] {
            most = most.max(non_rigid(&a.landmarks, &b.landmarks));
        }
    }
    most >= MIN_NON_RIGID
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::face::align::TEMPLATE;

    fn face_at(x: f32, landmarks: [Point; 5]) -> Face {
        Face {
            x,
            y: 0.0,
            w: 100.0,
            h: 120.0,
            score: 0.9,
            landmarks: landmarks.map(|p| Point { x: p.x + x, y: p.y }),
        }
    }

    fn obs(x: f32, lm: [Point; 5], hit: Option<(&str, f32)>) -> Observation {
        Observation {
            at: Utc::now(),
            face: face_at(x, lm),
            issue: None,
            hits: hit
                .map(|(p, s)| {
                    vec![Hit {
                        person: Arc::from(p),
                        similarity: s,
                    }]
                })
                .unwrap_or_default(),
        }
    }

    fn turned(k: f32) -> [Point; 5] {
        let mut l = TEMPLATE;
        l[2].x += k;
        l
    }

    #[test]
    fn frames_vote_once_enough_agree() {
        let rules = TrackRules {
            votes: 3,
            patience: 6,
            ttl_ms: 1000,
            liveness: false,
        };
        let mut tr = Tracker::default();
        let mut taken = Vec::new();
        tr.observe(obs(0.0, TEMPLATE, Some(("p1", 0.7))), &mut taken);
        taken.clear();
        tr.observe(obs(5.0, TEMPLATE, Some(("p2", 0.5))), &mut taken);
        assert_eq!(tr.tracks.len(), 1, "a small move continues the track");
        assert_eq!(tr.tracks[0].decide(&rules), None);
        taken.clear();
        tr.observe(obs(8.0, TEMPLATE, Some(("p1", 0.8))), &mut taken);
        match tr.tracks[0].decide(&rules) {
            Some(Outcome::Identified {
                person, similarity, ..
            }) => {
                assert_eq!(person.as_deref(), Some("p1"));
                // (0.7 + 0 + 0.8) / 3
                assert!((similarity - 0.5).abs() < 1e-5, "{similarity}");
            }
            other => panic!("{other:?}"),
        }
        taken.clear();
        tr.observe(obs(400.0, TEMPLATE, None), &mut taken);
        assert_eq!(tr.tracks.len(), 2, "far away: another face");
    }

    #[test]
    fn a_flat_picture_does_not_pass_the_motion_gate() {
        // The same landmarks moved, scaled, rotated: a photo waved at the camera.
        let moved: Vec<Face> = (0..4)
            .map(|i| {
                let (c, s, k) = (
                    (i as f32 * 0.1).cos(),
                    (i as f32 * 0.1).sin(),
                    1.0 + i as f32 * 0.1,
                );
                face_at(
                    i as f32 * 20.0,
                    TEMPLATE.map(|p| Point {
                        x: k * (c * p.x - s * p.y),
                        y: k * (s * p.x + c * p.y),
                    }),
                )
            })
            .collect();
        assert!(!moves_like_a_face(moved.iter()));
        // A head turning: the nose moves against the eyes.
        let live: Vec<Face> = (0..4)
            .map(|i| face_at(0.0, turned(i as f32 * 3.0)))
            .collect();
        assert!(moves_like_a_face(live.iter()));
    }
}
