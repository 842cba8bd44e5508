//! The 1:N gallery: every enrolled face template in memory (half precision:
//! 256 bytes a template, similarities within ~1e-3 of f32), searched for the
//! best-matching persons. Up to `exact_max` templates every one is compared
//! (SIMD dot products); above it a binary sketch index (see [`sketch`]) picks
//! a few thousand candidates by popcount and only those are compared exactly.
//! Persistence is the caller's (the gateway keeps templates in sled).

mod names;
pub mod simd;
pub mod sketch;

use half::f16;
use std::sync::Arc;

/// A person found by a search and the best similarity of their templates.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub person: Arc<str>,
    pub similarity: f32,
}

/// When the gallery switches to the approximate index, and how wide it looks.
#[derive(Clone, Copy, Debug)]
pub struct GalleryOptions {
    /// Up to this many templates the scan is exact.
    pub exact_max: usize,
    /// Candidates ranked exactly per query: at least this many...
    pub min_candidates: usize,
    /// ...or this share of the gallery, whichever is more.
    pub candidate_share: f32,
}

impl Default for GalleryOptions {
    fn default() -> Self {
        Self {
            exact_max: 50_000,
            min_candidates: 4_000,
            candidate_share: 0.005,
        }
    }
}

pub struct Gallery {
    dim: usize,
    options: GalleryOptions,
    names: names::Names,
    /// Templates of each person, by name number; `persons` of them nonzero.
    counts: Vec<u32>,
    persons: usize,
    /// Templates, row-major, half precision, and their owners.
    data: Vec<f16>,
    owner: Vec<u32>,
    /// Sketches of the templates; empty while the scan is exact.
    codes: Vec<sketch::Sketch>,
    planes: Vec<f32>,
}

impl Gallery {
    pub fn new(dim: usize, options: GalleryOptions) -> Self {
        Self {
            dim,
            options,
            names: names::Names::default(),
            counts: Vec::new(),
            persons: 0,
            data: Vec::new(),
            owner: Vec::new(),
            codes: Vec::new(),
            planes: Vec::new(),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.owner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    /// Number of persons with at least one template.
    pub fn persons(&self) -> usize {
        self.persons
    }

    /// Whether the approximate index is in use.
    pub fn is_indexed(&self) -> bool {
        !self.planes.is_empty()
    }

    /// Templates of a person.
    pub fn count(&self, person: &str) -> u32 {
        self.names
            .get(person)
            .map_or(0, |i| self.counts[i as usize])
    }

    fn person_id(&mut self, person: &str) -> u32 {
        let i = self.names.intern(person);
        if i as usize == self.counts.len() {
            self.counts.push(0);
        }
        i
    }

    /// Adds a template (unit length, `dim` long) of a person.
    pub fn insert(&mut self, person: &str, embedding: &[f32]) {
        debug_assert_eq!(embedding.len(), self.dim);
        let id = self.person_id(person);
        self.data
            .extend(embedding[..self.dim].iter().map(|x| f16::from_f32(*x)));
        self.owner.push(id);
        let c = &mut self.counts[id as usize];
        if *c == 0 {
            self.persons += 1;
        }
        *c += 1;
        if self.is_indexed() {
            // The sketch of the stored (rounded) row, as `reindex` computes it.
            let start = self.data.len() - self.dim;
            let row: Vec<f32> = self.data[start..].iter().map(|x| x.to_f32()).collect();
            let mut scratch = Vec::new();
            let code = sketch::sketch(&self.planes, self.dim, &row, &mut scratch);
            self.codes.push(code);
        }
        self.maybe_reindex();
    }

    /// Adds many templates, indexing once at the end (loading from disk).
    pub fn extend<'a>(&mut self, items: impl IntoIterator<Item = (&'a str, &'a [f32])>) {
        let items = items.into_iter();
        self.reserve(items.size_hint().0);
        self.bulk(|g| {
            for (p, e) in items {
                g.insert(p, e);
            }
        });
    }

    /// Runs `f`, which may insert many templates, and indexes once at the end
    /// rather than at each crossing of `exact_max`; the buffers are trimmed to
    /// size afterwards (a gallery is loaded once and then lives for long).
    pub fn bulk<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let saved = self.options.exact_max;
        self.options.exact_max = usize::MAX;
        let r = f(self);
        self.options.exact_max = saved;
        self.maybe_reindex();
        self.data.shrink_to_fit();
        self.owner.shrink_to_fit();
        self.names.shrink_to_fit();
        self.counts.shrink_to_fit();
        self.codes.shrink_to_fit();
        r
    }

    /// Makes room for `n` more templates.
    fn reserve(&mut self, n: usize) {
        self.data.reserve_exact(n * self.dim);
        self.owner.reserve_exact(n);
    }

    /// Forgets every template of a person; returns how many there were.
    pub fn remove(&mut self, person: &str) -> u32 {
        let Some(id) = self.names.get(person) else {
            return 0;
        };
        // The name keeps its number (a person enrolled again reuses it).
        let n = std::mem::take(&mut self.counts[id as usize]);
        if n == 0 {
            return 0;
        }
        self.persons -= 1;
        let dim = self.dim;
        let mut keep = 0;
        for i in 0..self.owner.len() {
            if self.owner[i] != id {
                self.owner[keep] = self.owner[i];
                self.data.copy_within(i * dim..(i + 1) * dim, keep * dim);
                if !self.codes.is_empty() {
                    self.codes[keep] = self.codes[i];
                }
                keep += 1;
            }
        }
        self.owner.truncate(keep);
        self.data.truncate(keep * dim);
        if !self.codes.is_empty() {
            self.codes.truncate(keep);
        }
        self.maybe_reindex();
        n
    }

    fn maybe_reindex(&mut self) {
        let want = self.len() > self.options.exact_max;
        if want && !self.is_indexed() {
            self.reindex();
        } else if !want && self.is_indexed() && self.len() * 2 < self.options.exact_max {
            self.planes.clear();
            self.codes.clear();
        }
    }

    /// (Re)computes every sketch.
    pub fn reindex(&mut self) {
        self.planes = sketch::projections(self.dim);
        let (mut scratch, mut row32) = (Vec::new(), vec![0f32; self.dim]);
        self.codes = self
            .data
            .chunks_exact(self.dim)
            .map(|row| {
                for (d, s) in row32.iter_mut().zip(row) {
                    *d = s.to_f32();
                }
                sketch::sketch(&self.planes, self.dim, &row32, &mut scratch)
            })
            .collect();
    }

    /// The `k` best-matching persons, best first (exact, or through the index).
    pub fn search(&self, query: &[f32], k: usize) -> Vec<Hit> {
        if !self.is_indexed() {
            return self.search_exact(query, k);
        }
        let mut scratch = Vec::new();
        let q = sketch::sketch(&self.planes, self.dim, query, &mut scratch);
        let r = self
            .options
            .min_candidates
            .max((self.len() as f32 * self.options.candidate_share) as usize);
        let mut dist = Vec::new();
        let cands = sketch::candidates(&self.codes, &q, r, &mut dist);
        let k = k.max(1);
        let mut top: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
        for i in cands {
            let s = simd::dot_f16(query, &self.data[i * self.dim..(i + 1) * self.dim]);
            if top.len() < k || s > top[top.len() - 1].0 {
                push_top(&mut top, k, s, self.owner[i]);
            }
        }
        self.hits(top)
    }

    /// The exact answer whatever the size (small galleries, and measuring the index).
    pub fn search_exact(&self, query: &[f32], k: usize) -> Vec<Hit> {
        const BLOCK: usize = 1024;
        let k = k.max(1);
        let mut top: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
        let mut scores = Vec::with_capacity(BLOCK);
        for (b, block) in self.data.chunks(BLOCK * self.dim).enumerate() {
            simd::dots_f16(query, block, self.dim, &mut scores);
            for (i, &s) in scores.iter().enumerate() {
                if top.len() == k && s <= top[k - 1].0 {
                    continue;
                }
                push_top(&mut top, k, s, self.owner[b * BLOCK + i]);
            }
        }
        self.hits(top)
    }

    fn hits(&self, top: Vec<(f32, u32)>) -> Vec<Hit> {
        top.into_iter()
            .map(|(s, o)| Hit {
                person: Arc::from(self.names.name(o)),
                similarity: s,
            })
            .collect()
    }
}

/// Similarities between enrolled templates: pairs of two persons (impostor
/// pairs, what a stranger's face scores against this estate) and pairs of one
/// person (genuine pairs, when persons have several templates).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PairScores {
    pub impostor: Vec<f32>,
    pub genuine: Vec<f32>,
}

impl Gallery {
    /// Every pair when there are at most `max_pairs`, else `max_pairs` impostor
    /// pairs drawn at random (the same in every run for the same gallery).
    /// Genuine pairs are all taken, up to `max_pairs`.
    pub fn pair_scores(&self, max_pairs: usize) -> PairScores {
        let n = self.len();
        let row = |i: usize| &self.data[i * self.dim..(i + 1) * self.dim];
        let score = |i: usize, j: usize| {
            let a: Vec<f32> = row(i).iter().map(|x| x.to_f32()).collect();
            simd::dot_f16(&a, row(j))
        };
        let mut out = PairScores::default();
        let all_pairs = n.saturating_mul(n.saturating_sub(1)) / 2;
        if all_pairs <= max_pairs {
            for i in 0..n {
                let a: Vec<f32> = row(i).iter().map(|x| x.to_f32()).collect();
                for j in i + 1..n {
                    let s = simd::dot_f16(&a, row(j));
                    if self.owner[i] == self.owner[j] {
                        out.genuine.push(s);
                    } else {
                        out.impostor.push(s);
                    }
                }
            }
            return out;
        }
        let mut rng = sketch::SplitMix(0x5EED_CA11_B8A7_E000 ^ n as u64);
        let mut tries = 0usize;
        while out.impostor.len() < max_pairs && tries < max_pairs.saturating_mul(4) {
            tries += 1;
            let i = (rng.next_u64() % n as u64) as usize;
            let j = (rng.next_u64() % n as u64) as usize;
            if self.owner[i] != self.owner[j] {
                out.impostor.push(score(i, j));
            }
        }
        // Templates by owner, for the genuine pairs.
        let mut by_owner: Vec<Vec<usize>> = vec![Vec::new(); self.counts.len()];
        for (i, &o) in self.owner.iter().enumerate() {
            by_owner[o as usize].push(i);
        }
        'owners: for rows in by_owner.iter().filter(|r| r.len() > 1) {
            for (x, &i) in rows.iter().enumerate() {
                for &j in &rows[x + 1..] {
                    if out.genuine.len() >= max_pairs {
                        break 'owners;
                    }
                    out.genuine.push(score(i, j));
                }
            }
        }
        out
    }
}

/// Keeps the `k` best distinct owners, best first.
fn push_top(top: &mut Vec<(f32, u32)>, k: usize, s: f32, owner: u32) {
    if let Some(pos) = top.iter().position(|(_, o)| *o == owner) {
        if top[pos].0 >= s {
            return;
        }
        top.remove(pos);
    } else if top.len() == k && top[k - 1].0 >= s {
        return;
    }
    let at = top.iter().position(|(t, _)| *t < s).unwrap_or(top.len());
    top.insert(at, (s, owner));
    top.truncate(k);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_scores_split_impostor_and_genuine_pairs() {
        let mut g = Gallery::new(8, GalleryOptions::default());
        g.insert("a", &unit(1, 8));
        g.insert("a", &unit(2, 8));
        g.insert("b", &unit(3, 8));
        let all = g.pair_scores(100);
        assert_eq!((all.impostor.len(), all.genuine.len()), (2, 1));
        let expect = simd::dot(&unit(1, 8), &unit(2, 8));
        assert!((all.genuine[0] - expect).abs() < 2e-3, "{all:?}");
        // Sampled: as many impostor pairs as asked, none of one person, the same twice.
        for i in 0..200 {
            g.insert(&format!("p{i}"), &unit(10 + i, 8));
        }
        let some = g.pair_scores(1000);
        assert_eq!(some.impostor.len(), 1000);
        assert_eq!(some.genuine.len(), 1);
        assert_eq!(some, g.pair_scores(1000));
    }

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
        let mut v = sketch::gaussian(seed, dim);
        crate::face::normalize(&mut v);
        v
    }

    #[test]
    fn finds_the_person_and_forgets_them() {
        let mut g = Gallery::new(16, GalleryOptions::default());
        for p in 0..50 {
            g.insert(&format!("p{p}"), &unit(p, 16));
        }
        g.insert("p7", &unit(1000, 16));
        assert_eq!(g.count("p7"), 2);
        let hits = g.search(&unit(7, 16), 3);
        assert_eq!(&*hits[0].person, "p7");
        assert!((hits[0].similarity - 1.0).abs() < 2e-3);
        assert_eq!(hits.len(), 3);
        assert_ne!(hits[1].person, hits[0].person);
        assert_eq!(g.remove("p7"), 2);
        assert_eq!(g.len(), 49);
        assert_ne!(&*g.search(&unit(7, 16), 1)[0].person, "p7");
    }

    #[test]
    fn switches_to_the_index_and_back() {
        let opts = GalleryOptions {
            exact_max: 200,
            min_candidates: 20,
            candidate_share: 0.01,
        };
        let mut g = Gallery::new(32, opts);
        for p in 0..400u64 {
            g.insert(&format!("p{p}"), &unit(p, 32));
        }
        assert!(g.is_indexed());
        for p in (0..400u64).step_by(37) {
            assert_eq!(&*g.search(&unit(p, 32), 1)[0].person, format!("p{p}"));
        }
        for p in 0..350u64 {
            g.remove(&format!("p{p}"));
        }
        g.insert("late", &unit(9999, 32));
        assert!(!g.is_indexed());
        assert_eq!(&*g.search(&unit(9999, 32), 1)[0].person, "late");
    }
}
