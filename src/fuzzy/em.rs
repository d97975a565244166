//! The Fellegi–Sunter model's parameters and their estimation from the
//! data. For each field and level, m is the chance a true match falls at
//! that level and u the chance a non-match does; λ is the share of
//! candidates that match. A level's weight is log2(m/u).
//!
//! u starts from random pairs (almost all non-matches), m from fixed
//! guesses; then expectation-maximisation over the candidates' comparison
//! vectors, as in fastLink and splink. Vectors are grouped into distinct
//! patterns with counts first, and the iterations run over patterns in
//! sorted order on one thread: the result does not depend on the number of
//! threads, and a few thousand patterns iterate in microseconds.

use super::compare::{Gammas, MISSING, compare};
use super::prepare::Sides;
use super::spec::FieldSpec;
use serde::{Deserialize, Serialize};

/// No probability is let below this, so every weight is finite.
const FLOOR: f64 = 1e-6;
/// λ over all pairs of a million records against a million is 1e-6 or
/// less: it has a floor of its own.
const LAMBDA_FLOOR: f64 = 1e-15;

/// m and u of one field, one entry per level (the last is "else").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldParams {
    pub m: Vec<f64>,
    pub u: Vec<f64>,
}

impl FieldParams {
    /// Weight of level `i`, in bits.
    pub fn weight(&self, i: usize) -> f64 {
        match (self.m.get(i), self.u.get(i)) {
            (Some(m), Some(u)) => (m.max(FLOOR) / u.max(FLOOR)).log2(),
            _ => 0.0,
        }
    }
}

/// A trained (or hand-set) model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// λ: the chance a candidate pair matches.
    pub lambda: f64,
    pub fields: Vec<FieldParams>,
}

impl Params {
    /// The prior, log2(λ / (1 - λ)).
    pub fn prior(&self) -> f64 {
        let l = self.lambda.clamp(LAMBDA_FLOOR, 1.0 - FLOOR);
        (l / (1.0 - l)).log2()
    }
}

/// Where the trained model's u (and so its λ) come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum USource {
    /// From random pairs, held fixed while EM fits m and λ (splink's way).
    /// Weights are relative to any two records, whatever the blocking; λ is
    /// the chance that two random records match.
    Random,
    /// Fitted by EM with m among the candidates (fastLink's way). Scores
    /// are odds among these candidates: they depend on the blocking.
    Candidates,
    /// EM fits m and u among the candidates, as `Candidates`, which models
    /// the non-matching candidates that blocking made alike; the model then
    /// keeps m and takes u and λ over random pairs, as `Random`.
    MFromCandidates,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmOptions {
    pub max_iterations: usize,
    /// Stop when no parameter moves by more than this.
    pub tolerance: f64,
    pub u_source: USource,
    /// Random pairs drawn to start u.
    pub random_pairs: usize,
    pub seed: u64,
}

impl Default for EmOptions {
    fn default() -> Self {
        EmOptions {
            max_iterations: 100,
            tolerance: 1e-6,
            u_source: USource::MFromCandidates,
            random_pairs: 200_000,
            seed: 42,
        }
    }
}

/// A seeded stream of pair indexes, the same on every machine: the
/// generator's SplitMix64, read 32 bits at a time.
struct Rng(crate::r#gen::rng::SplitMix64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(crate::r#gen::rng::SplitMix64::new(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> u32 {
        (((self.next() >> 32) * n as u64) >> 32) as u32
    }
}

/// u of every field and level from random pairs: among n × m pairs almost
/// none match, so their levels are the non-matches' distribution. Each
/// level gets one pseudo-count, so a level never seen is rare, not
/// impossible.
pub fn random_u(fields: &[FieldSpec], sides: &Sides, opts: &EmOptions) -> Vec<Vec<f64>> {
    let (nl, nr) = (sides.left.len(), sides.right.len());
    let mut counts: Vec<Vec<u64>> = fields.iter().map(|f| vec![1; f.level_count()]).collect();
    if nl > 0 && nr > 0 {
        let mut rng = Rng::new(opts.seed);
        let pairs: Vec<(u32, u32)> = (0..opts.random_pairs)
            .map(|_| (rng.below(nl), rng.below(nr)))
            .collect();
        let g = compare(fields, sides, &pairs);
        for i in 0..g.len() {
            for (f, &l) in g.row(i).iter().enumerate() {
                if l != MISSING {
                    counts[f][l as usize] += 1;
                }
            }
        }
    }
    counts.iter().map(|c| normalised(c)).collect()
}

fn normalised(c: &[u64]) -> Vec<f64> {
    let total: u64 = c.iter().sum();
    c.iter().map(|&x| x as f64 / total.max(1) as f64).collect()
}

/// Starting m: most matches agree exactly, fewer at each looser level.
pub fn start_m(fields: &[FieldSpec]) -> Vec<Vec<f64>> {
    fields
        .iter()
        .map(|f| {
            let n = f.level_count();
            let mut m: Vec<f64> = (0..n).map(|i| 0.5f64.powi(i as i32 + 1)).collect();
            m[0] = 0.9;
            let rest: f64 = m[1..].iter().sum();
            for x in &mut m[1..] {
                *x *= 0.1 / rest.max(FLOOR);
            }
            m
        })
        .collect()
}

/// What training gives: the parameters and how it got there.
#[derive(Debug, Clone, PartialEq)]
pub struct Training {
    pub params: Params,
    pub iterations: usize,
    pub converged: bool,
    /// Distinct comparison vectors iterated over.
    pub patterns: usize,
}

/// Distinct rows of `g` with their counts, in row order.
fn patterns(g: &Gammas) -> Vec<(Vec<u8>, u64)> {
    let mut rows: Vec<&[u8]> = (0..g.len()).map(|i| g.row(i)).collect();
    rows.sort_unstable();
    let mut out: Vec<(Vec<u8>, u64)> = Vec::new();
    for r in rows {
        match out.last_mut() {
            Some((p, c)) if p.as_slice() == r => *c += 1,
            _ => out.push((r.to_vec(), 1)),
        }
    }
    out
}

/// EM over the candidates' comparison vectors, from `u` (random pairs),
/// the starting m and λ = 10 %. `all_pairs` is the number of pairs the
/// candidates were drawn from (left rows × right rows), which turns the
/// share of candidates that match into the chance two records do.
pub fn train(
    fields: &[FieldSpec],
    g: &Gammas,
    u: Vec<Vec<f64>>,
    all_pairs: f64,
    opts: &EmOptions,
) -> Training {
    train_with(fields, g, u, all_pairs, opts, &Session::default())
}

/// What one EM run may use and change: fields left out (a blocking key's
/// own fields, on which all its pairs agree by construction), and m given
/// and held (a last run that only fits λ and u to given m).
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Per field: take no part in this run (weight 0, m and u unchanged).
    pub left_out: Vec<bool>,
    /// Starting m instead of the fixed guesses.
    pub m: Option<Vec<Vec<f64>>>,
    /// Keep m as given.
    pub hold_m: bool,
}

/// [`train`] under a [`Session`]'s restrictions.
pub fn train_with(
    fields: &[FieldSpec],
    g: &Gammas,
    u: Vec<Vec<f64>>,
    all_pairs: f64,
    opts: &EmOptions,
    session: &Session,
) -> Training {
    let pats = patterns(g);
    let random_u = u.clone();
    let out = |f: usize| session.left_out.get(f).copied().unwrap_or(false);
    let mut params = Params {
        lambda: 0.1,
        fields: session
            .m
            .clone()
            .unwrap_or_else(|| start_m(fields))
            .into_iter()
            .zip(u)
            .map(|(m, u)| FieldParams { m, u })
            .collect(),
    };
    let total: u64 = pats.iter().map(|(_, c)| c).sum();
    if total == 0 {
        return Training {
            params,
            iterations: 0,
            converged: false,
            patterns: 0,
        };
    }
    let mut iterations = 0;
    let mut converged = false;
    while iterations < opts.max_iterations && !converged {
        iterations += 1;
        let mut m_acc: Vec<Vec<f64>> = fields.iter().map(|f| vec![0.0; f.level_count()]).collect();
        let mut u_acc = m_acc.clone();
        let mut matches = 0.0;
        let prior = params.prior();
        for (p, c) in &pats {
            // Posterior odds in bits, then the match probability.
            let mut bits = prior;
            for (f, &l) in p.iter().enumerate() {
                if l != MISSING && !out(f) {
                    bits += params.fields[f].weight(l as usize);
                }
            }
            let w = 1.0 / (1.0 + (-bits).exp2());
            let c = *c as f64;
            matches += w * c;
            for (f, &l) in p.iter().enumerate() {
                if l != MISSING {
                    m_acc[f][l as usize] += w * c;
                    u_acc[f][l as usize] += (1.0 - w) * c;
                }
            }
        }
        let mut moved: f64 = 0.0;
        let lambda = (matches / total as f64).clamp(FLOOR, 1.0 - FLOOR);
        moved = moved.max((lambda - params.lambda).abs());
        params.lambda = lambda;
        for (f, fp) in params.fields.iter_mut().enumerate() {
            if out(f) {
                continue;
            }
            let mut next = Vec::new();
            if !session.hold_m {
                next.push((&m_acc[f], &mut fp.m));
            }
            if opts.u_source != USource::Random {
                next.push((&u_acc[f], &mut fp.u));
            }
            for (acc, dst) in next {
                let sum: f64 = acc.iter().sum();
                // A field never present in the candidates keeps its start.
                if sum <= 0.0 {
                    continue;
                }
                // One pseudo-count per level: a level no match reached in
                // this data is rare, not impossible, and does not weigh
                // -20 bits on the next data.
                let total = sum + acc.len() as f64;
                for (d, a) in dst.iter_mut().zip(acc) {
                    let v = ((a + 1.0) / total).max(FLOOR);
                    moved = moved.max((v - *d).abs());
                    *d = v;
                }
            }
        }
        converged = moved < opts.tolerance;
    }
    if opts.u_source != USource::Candidates {
        let matches = params.lambda * total as f64;
        params.lambda = (matches / all_pairs.max(total as f64)).clamp(LAMBDA_FLOOR, 1.0 - FLOOR);
        for (fp, u) in params.fields.iter_mut().zip(random_u) {
            fp.u = u;
        }
    }
    Training {
        params,
        iterations,
        converged,
        patterns: pats.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_seeded_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<u32> = (0..1000).map(|_| a.below(10)).collect();
        let ys: Vec<u32> = (0..1000).map(|_| b.below(10)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|&x| x < 10));
        // Every value turns up: the stream is not stuck.
        assert!((0..10).all(|v| xs.contains(&v)));
    }

    #[test]
    fn weights_are_log_ratios() {
        let f = FieldParams {
            m: vec![0.9, 0.1],
            u: vec![0.01, 0.99],
        };
        assert!((f.weight(0) - (90f64).log2()).abs() < 1e-12);
        assert!(f.weight(1) < -3.0);
        assert_eq!(f.weight(5), 0.0);
        let p = Params {
            lambda: 0.2,
            fields: vec![],
        };
        assert!((p.prior() - (0.25f64).log2()).abs() < 1e-12);
    }

    /// Draws comparison vectors from a known model and checks EM finds it.
    #[test]
    fn em_recovers_known_m_and_u() {
        let fields: Vec<FieldSpec> = (0..4).map(|i| FieldSpec::code(&format!("f{i}"))).collect();
        // Three levels each (exact, one edit, else).
        let true_m = [
            [0.95, 0.04, 0.01],
            [0.85, 0.10, 0.05],
            [0.90, 0.02, 0.08],
            [0.80, 0.15, 0.05],
        ];
        let true_u = [
            [0.01, 0.04, 0.95],
            [0.05, 0.05, 0.90],
            [0.002, 0.008, 0.99],
            [0.10, 0.20, 0.70],
        ];
        let lambda = 0.3;
        let mut rng = Rng::new(1);
        let mut unit = || (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let n = 50_000;
        let mut levels = Vec::with_capacity(n * 4);
        for _ in 0..n {
            let is_match = unit() < lambda;
            for f in 0..4 {
                let dist = if is_match { true_m[f] } else { true_u[f] };
                let x = unit();
                // One value in ten is missing, whatever the class.
                let l = if unit() < 0.1 {
                    MISSING
                } else if x < dist[0] {
                    0
                } else if x < dist[0] + dist[1] {
                    1
                } else {
                    2
                };
                levels.push(l);
            }
        }
        let g = Gammas { fields: 4, levels };
        let u0 = vec![vec![1.0 / 3.0; 3]; 4];
        let opts = EmOptions {
            u_source: USource::Candidates,
            ..EmOptions::default()
        };
        let t = train(&fields, &g, u0, n as f64, &opts);
        assert!(t.converged, "{t:?}");
        assert!(
            (t.params.lambda - lambda).abs() < 0.01,
            "{}",
            t.params.lambda
        );
        for f in 0..4 {
            for l in 0..3 {
                let fp = &t.params.fields[f];
                assert!(
                    (fp.m[l] - true_m[f][l]).abs() < 0.02,
                    "m[{f}][{l}] {}",
                    fp.m[l]
                );
                assert!(
                    (fp.u[l] - true_u[f][l]).abs() < 0.02,
                    "u[{f}][{l}] {}",
                    fp.u[l]
                );
            }
        }
    }

    #[test]
    fn fixed_u_stays() {
        let fields = vec![FieldSpec::code("a")];
        let g = Gammas {
            fields: 1,
            levels: vec![0, 0, 2, 2, 2, 1],
        };
        let u = vec![vec![0.01, 0.09, 0.9]];
        for u_source in [USource::Random, USource::MFromCandidates] {
            let opts = EmOptions {
                u_source,
                ..EmOptions::default()
            };
            let t = train(&fields, &g, u.clone(), 600.0, &opts);
            assert_eq!(t.params.fields[0].u, u[0]);
            assert_eq!(t.patterns, 3);
            // Some of the 6 candidates match; λ is over the 600 pairs.
            assert!(t.params.lambda > 0.0 && t.params.lambda < 6.0 / 600.0);
        }
    }

    #[test]
    fn no_candidates_keep_the_start() {
        let fields = vec![FieldSpec::code("a")];
        let g = Gammas {
            fields: 1,
            levels: vec![],
        };
        let t = train(
            &fields,
            &g,
            vec![vec![0.1, 0.2, 0.7]],
            0.0,
            &EmOptions::default(),
        );
        assert_eq!(t.iterations, 0);
        assert!(!t.converged);
    }
}
