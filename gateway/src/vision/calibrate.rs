//! The 1:N match threshold from a target false-accept rate (`[faces]
//! false_accept_rate`, per identification). A stranger's face is compared with
//! every enrolled person, so one comparison's rate multiplies by about N
//! (GB/T 37078: effective FAR = FAR × n): the threshold is the similarity that
//! a share FAR / N of this estate's own impostor scores (pairs of templates of
//! two different enrolled persons) reach. Estates differ (East-Asian impostor
//! pairs score higher than LFW's), so the scores are this gallery's, and the
//! threshold is recomputed whenever the gallery changes.
//!
//! The rates wanted lie far in the tail (1e-4 / 1,000 persons = 1e-7), beyond
//! what a few hundred thousand pairs show directly; past the observed range the
//! tail is extrapolated with an exponential fitted to the top 1 % of scores
//! (peaks over a threshold), the usual model of score tails.

use models::gallery::PairScores;
use models::Gallery;

/// Impostor pairs sampled at most (a few milliseconds of dot products).
pub const MAX_PAIRS: usize = 200_000;
/// Fewer impostor pairs than this give no threshold (too few persons).
pub const MIN_PAIRS: usize = 1_000;
/// Share of the highest scores the tail is fitted on.
const TAIL_SHARE: f64 = 0.01;

/// How the threshold was found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Read off the sorted scores (enough of them reach that far).
    Empirical,
    /// Extrapolated with the exponential tail fit.
    TailFit,
}

/// The answer for one gallery and target.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub persons: usize,
    pub templates: usize,
    /// The target per identification (`false_accept_rate`).
    pub far_per_identification: f64,
    /// The target per comparison: `far_per_identification / persons`.
    pub far_per_comparison: f64,
    pub impostor_pairs: usize,
    /// The similarity a face needs to open; `None` with too few pairs.
    pub threshold: Option<(f32, Method)>,
    /// Genuine pairs (persons with several templates) at or above the
    /// threshold; `None` without any.
    pub expected_tar: Option<f32>,
    pub genuine_pairs: usize,
    /// Impostor score percentiles: 50, 90, 99, 99.9, max.
    pub percentiles: [(f64, f32); 5],
}

/// The score that a share `far` of `sorted` (ascending) is above.
pub fn threshold(sorted: &[f32], far: f64) -> Option<(f32, Method)> {
    let n = sorted.len();
    if n < MIN_PAIRS || !(far > 0.0 && far < 1.0) {
        return None;
    }
    let above = far * n as f64;
    // Ten scores above it: read it off the data.
    if above >= 10.0 {
        let k = n - above.floor() as usize;
        return Some((sorted[k.min(n - 1)], Method::Empirical));
    }
    // Peaks over the 99th percentile: P(s > u + x) = TAIL_SHARE * exp(-x / beta).
    let k = n - (n as f64 * TAIL_SHARE).ceil() as usize;
    let u = sorted[k] as f64;
    let excess = &sorted[k..];
    let beta = excess.iter().map(|&s| s as f64 - u).sum::<f64>() / excess.len() as f64;
    if beta <= 0.0 {
        return Some((sorted[n - 1], Method::TailFit));
    }
    let t = u + beta * (TAIL_SHARE / far).ln();
    Some((t.min(1.0) as f32, Method::TailFit))
}

/// Percentile `p` (0-100) of ascending scores.
fn percentile(sorted: &[f32], p: f64) -> f32 {
    if sorted.is_empty() {
        return f32::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Calibrates from pair scores of a gallery of `persons` persons.
pub fn from_scores(
    mut scores: PairScores,
    persons: usize,
    templates: usize,
    far_per_identification: f64,
) -> Calibration {
    scores.impostor.sort_by(f32::total_cmp);
    let far_per_comparison = far_per_identification / persons.max(1) as f64;
    let threshold = threshold(&scores.impostor, far_per_comparison);
    let expected_tar = match (threshold, scores.genuine.is_empty()) {
        (Some((t, _)), false) => Some(
            scores.genuine.iter().filter(|&&s| s >= t).count() as f32 / scores.genuine.len() as f32,
        ),
        _ => None,
    };
    let p = |q: f64| (q, percentile(&scores.impostor, q));
    Calibration {
        persons,
        templates,
        far_per_identification,
        far_per_comparison,
        impostor_pairs: scores.impostor.len(),
        threshold,
        expected_tar,
        genuine_pairs: scores.genuine.len(),
        percentiles: [p(50.0), p(90.0), p(99.0), p(99.9), p(100.0)],
    }
}

/// Calibrates a gallery.
pub fn calibrate(gallery: &Gallery, far_per_identification: f64) -> Calibration {
    from_scores(
        gallery.pair_scores(MAX_PAIRS),
        gallery.persons(),
        gallery.len(),
        far_per_identification,
    )
}

/// The match threshold to use: the calibrated one, never below `floor` (the
/// `unknown_threshold`); `fallback` (the `match_threshold`) when the gallery is
/// too small to calibrate.
pub fn match_threshold(c: &Calibration, floor: f32, fallback: f32) -> f32 {
    match c.threshold {
        Some((t, _)) => t.max(floor),
        None => fallback,
    }
}

impl std::fmt::Display for Calibration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "gallery: {} persons, {} templates; {} impostor pairs, {} genuine pairs",
            self.persons, self.templates, self.impostor_pairs, self.genuine_pairs
        )?;
        let ps: Vec<String> = self
            .percentiles
            .iter()
            .map(|(q, s)| format!("p{q}={s:.3}"))
            .collect();
        writeln!(f, "impostor similarity: {}", ps.join(" "))?;
        writeln!(
            f,
            "target: false accept rate {:e} per identification = {:e} per comparison",
            self.far_per_identification, self.far_per_comparison
        )?;
        match self.threshold {
            Some((t, m)) => writeln!(
                f,
                "threshold: {t:.3} ({})",
                match m {
                    Method::Empirical => "read off the impostor scores",
                    Method::TailFit => "extrapolated from the top 1% of impostor scores",
                }
            )?,
            None => writeln!(
                f,
                "threshold: not calibrated (fewer than {MIN_PAIRS} impostor pairs); match_threshold applies"
            )?,
        }
        match self.expected_tar {
            Some(t) => write!(
                f,
                "expected true accept rate: {:.1}% of genuine pairs",
                t * 100.0
            ),
            None => write!(
                f,
                "expected true accept rate: unknown (no person has two templates)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::gallery::sketch::SplitMix;

    /// Normal impostor scores (mean 0.05, sd 0.08), as SFace's roughly are.
    fn normal_scores(n: usize, seed: u64) -> Vec<f32> {
        let mut r = SplitMix(seed);
        let mut v: Vec<f32> = (0..n).map(|_| 0.05 + 0.08 * r.normal()).collect();
        v.sort_by(f32::total_cmp);
        v
    }

    #[test]
    fn empirical_quantile_when_enough_scores_reach_it() {
        let s = normal_scores(200_000, 1);
        let (t, m) = threshold(&s, 1e-2).unwrap();
        assert_eq!(m, Method::Empirical);
        // The 99th percentile of N(0.05, 0.08) is 0.05 + 2.326 * 0.08 = 0.236.
        assert!((t - 0.236).abs() < 0.005, "{t}");
    }

    #[test]
    fn the_tail_is_extrapolated_and_errs_high() {
        let s = normal_scores(200_000, 2);
        // 1e-7 of N(0.05, 0.08) lies at 0.05 + 5.199 * 0.08 = 0.466; an
        // exponential tail is heavier than a normal one, so it lands at or above.
        let (t, m) = threshold(&s, 1e-7).unwrap();
        assert_eq!(m, Method::TailFit);
        assert!((0.46..0.62).contains(&t), "{t}");
        // Checked against the data it can see: the fit at 1e-4 is close to the
        // empirical 1e-4 point (20 scores above it).
        let (fit, _) = {
            let k = s.len() - (s.len() as f64 * TAIL_SHARE).ceil() as usize;
            let u = s[k] as f64;
            let beta = s[k..].iter().map(|&x| x as f64 - u).sum::<f64>() / (s.len() - k) as f64;
            ((u + beta * (TAIL_SHARE / 1e-4).ln()) as f32, ())
        };
        let (emp, _) = threshold(&s, 1e-4).unwrap();
        assert!((fit - emp).abs() < 0.03, "fit {fit} empirical {emp}");
    }

    #[test]
    fn more_persons_need_a_higher_threshold() {
        let scores = || PairScores {
            impostor: normal_scores(100_000, 3),
            genuine: vec![0.3, 0.5, 0.6, 0.7],
        };
        let small = from_scores(scores(), 100, 200, 1e-4);
        let large = from_scores(scores(), 10_000, 20_000, 1e-4);
        let (ts, _) = small.threshold.unwrap();
        let (tl, _) = large.threshold.unwrap();
        assert!(tl > ts, "{tl} > {ts}");
        assert_eq!(small.far_per_comparison, 1e-6);
        assert!(large.expected_tar.unwrap() <= small.expected_tar.unwrap());
        assert!(small.to_string().contains("threshold: "));
    }

    #[test]
    fn too_few_pairs_fall_back_to_match_threshold() {
        let c = from_scores(
            PairScores {
                impostor: normal_scores(500, 4),
                genuine: vec![],
            },
            30,
            30,
            1e-4,
        );
        assert_eq!(c.threshold, None);
        assert_eq!(match_threshold(&c, 0.2, 0.5), 0.5);
        assert!(c.to_string().contains("not calibrated"));
        assert_eq!(threshold(&normal_scores(5000, 5), 0.0), None);
    }
}
