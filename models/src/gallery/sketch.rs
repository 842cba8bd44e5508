//! The approximate index of large galleries: a 256-bit sketch of each
//! template (the signs of 256 fixed random projections: the fraction of
//! differing bits estimates the angle between two templates). A query scans
//! the sketches (32 bytes a template instead of 512, compared by popcount),
//! keeps the closest few thousand, and ranks those exactly.

use super::simd;

/// Bits of a sketch.
pub const BITS: usize = 256;
pub type Sketch = [u64; BITS / 64];

/// A small deterministic generator (splitmix64): the projections are the same
/// in every run, so a gallery loaded twice answers the same.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.unit().max(1e-7);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
}

/// A vector of standard normal values (tests and benchmarks).
pub fn gaussian(seed: u64, dim: usize) -> Vec<f32> {
    let mut r = SplitMix(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xA5A5);
    (0..dim).map(|_| r.normal()).collect()
}

/// The random projections, `BITS` rows of `dim`.
pub fn projections(dim: usize) -> Vec<f32> {
    let mut r = SplitMix(0x6761_7465_7761_7964); // fixed: sketches must stay comparable
    (0..BITS * dim).map(|_| r.normal()).collect()
}

pub fn sketch(planes: &[f32], dim: usize, v: &[f32], scratch: &mut Vec<f32>) -> Sketch {
    simd::dots(v, planes, dim, scratch);
    let mut s = [0u64; BITS / 64];
    for (i, x) in scratch.iter().enumerate() {
        if *x >= 0.0 {
            s[i / 64] |= 1 << (i % 64);
        }
    }
    s
}

/// Hamming distances of every code to `q`, and their histogram. With the
/// POPCNT instruction where the CPU has it (the baseline x86-64 target
/// counts bits the slow way).
fn distances(codes: &[Sketch], q: &Sketch, dist: &mut [u16], hist: &mut [usize; BITS + 1]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has POPCNT (checked just above).
            unsafe { distances_popcnt(codes, q, dist, hist) };
            return;
        }
    }
    distances_portable(codes, q, dist, hist)
}

#[inline(always)]
fn distances_portable(
    codes: &[Sketch],
    q: &Sketch,
    dist: &mut [u16],
    hist: &mut [usize; BITS + 1],
) {
    for i in 0..codes.len().min(dist.len()) {
        let c = &codes[i];
        let d = (c[0] ^ q[0]).count_ones()
            + (c[1] ^ q[1]).count_ones()
            + (c[2] ^ q[2]).count_ones()
            + (c[3] ^ q[3]).count_ones();
        dist[i] = d as u16;
        hist[d as usize] += 1;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn distances_popcnt(
    codes: &[Sketch],
    q: &Sketch,
    dist: &mut [u16],
    hist: &mut [usize; BITS + 1],
) {
    distances_portable(codes, q, dist, hist)
}

#[inline]
pub fn hamming(a: &Sketch, b: &Sketch) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Indices of (about) the `r` sketches closest to `q`: all with a distance
/// up to the cut-off that `r` of them fall under (a counting pass, no sort).
pub fn candidates(codes: &[Sketch], q: &Sketch, r: usize, dist: &mut Vec<u16>) -> Vec<usize> {
    dist.clear();
    dist.resize(codes.len(), 0);
    let mut hist = [0usize; BITS + 1];
    distances(codes, q, dist, &mut hist);
    let mut cut = 0;
    let mut seen = 0;
    for (d, n) in hist.iter().enumerate() {
        seen += n;
        cut = d;
        if seen >= r {
            break;
        }
    }
    dist.iter()
        .enumerate()
        .filter(|(_, d)| **d as usize <= cut)
        .map(|(i, _)| i)
        .collect()
}
