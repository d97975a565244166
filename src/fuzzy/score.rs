//! Scoring: a pair's score is the prior log-odds plus each field's weight
//! at the pair's level, in bits. Every addend is kept, so a reviewer sees
//! which fields carried the decision and by how much.
//!
//! Term-frequency adjustment: an exact agreement on a value weighs
//! log2(m / u) + log2(mean / f(v)), where f(v) is the value's frequency
//! (floored) and mean the chance that a random pair agrees at all. A
//! common surname weighs less than the field's average agreement, a rare
//! one more, and all of them together as much.

use super::compare::{Gammas, MISSING, Pair};
use super::em::Params;
use super::prepare::{Sides, TF_FLOOR};
use super::spec::{FieldSpec, Level};
use rayon::prelude::*;

/// One field's share of a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contribution {
    pub field: u16,
    /// Index into the field's levels (its count is "else"), or
    /// [`MISSING`].
    pub level: u8,
    /// Bits, term-frequency adjustment included.
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPair {
    pub left: u32,
    pub right: u32,
    /// log2 odds of a match.
    pub score: f64,
    pub contributions: Vec<Contribution>,
    /// The first field at a level that never joins on its own (its
    /// `review_from`): the pair goes to review at best.
    pub review_only: Option<u16>,
}

impl ScoredPair {
    /// The chance of a match the score stands for.
    pub fn probability(&self) -> f64 {
        probability(self.score)
    }
}

pub fn probability(bits: f64) -> f64 {
    1.0 / (1.0 + (-bits).exp2())
}

/// Weights per field and level, read off the parameters once.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub prior: f64,
    pub levels: Vec<Vec<f64>>,
    /// Per field: the level the term-frequency adjustment applies to and
    /// the field's mean agreement.
    tf: Vec<Option<(u8, f64)>>,
    review_from: Vec<Option<usize>>,
}

impl Weights {
    pub fn new(fields: &[FieldSpec], params: &Params, sides: &Sides) -> Weights {
        let levels = fields
            .iter()
            .enumerate()
            .map(|(f, spec)| {
                (0..spec.level_count())
                    .map(|l| params.fields.get(f).map_or(0.0, |p| p.weight(l)))
                    .collect()
            })
            .collect();
        let tf = fields
            .iter()
            .enumerate()
            .map(|(f, spec)| {
                let mean = (*sides.tf_mean.get(f)?)?;
                let exact = spec
                    .levels
                    .iter()
                    .position(|l| matches!(l, Level::Exact | Level::Normalised))?;
                Some((exact as u8, mean.max(TF_FLOOR)))
            })
            .collect();
        Weights {
            prior: params.prior(),
            levels,
            tf,
            review_from: fields.iter().map(|f| f.review_from).collect(),
        }
    }

    fn weight(&self, sides: &Sides, f: usize, level: u8, pair: Pair) -> f64 {
        if level == MISSING {
            return 0.0;
        }
        // Weights made for another spec than the comparisons: no weight
        // rather than a panic.
        let base = self
            .levels
            .get(f)
            .and_then(|l| l.get(level as usize))
            .copied()
            .unwrap_or(0.0);
        match self.tf.get(f).copied().flatten() {
            Some((exact, mean)) if exact == level => {
                let freq = |side: &[Vec<f32>], row: u32| {
                    side.get(f)
                        .and_then(|v| v.get(row as usize))
                        .copied()
                        .unwrap_or(0.0)
                };
                let v = freq(&sides.left.freq, pair.0).max(freq(&sides.right.freq, pair.1));
                base + (mean / (v as f64).max(TF_FLOOR)).log2()
            }
            _ => base,
        }
    }

    /// The score of one compared pair, and its first review-only field,
    /// without keeping each field's share: what deciding needs.
    pub fn total(&self, sides: &Sides, pair: Pair, levels: &[u8]) -> (f64, Option<u16>) {
        let score = self.prior
            + levels
                .iter()
                .enumerate()
                .map(|(f, &level)| self.weight(sides, f, level, pair))
                .sum::<f64>();
        (score, self.review_only(levels))
    }

    fn review_only(&self, levels: &[u8]) -> Option<u16> {
        levels
            .iter()
            .zip(&self.review_from)
            .position(|(&l, from)| l != MISSING && from.is_some_and(|f| l as usize >= f))
            .map(|f| f as u16)
    }

    /// The score of one compared pair and its contributions.
    pub fn score(&self, sides: &Sides, pair: Pair, levels: &[u8]) -> ScoredPair {
        let contributions: Vec<Contribution> = levels
            .iter()
            .enumerate()
            .map(|(f, &level)| Contribution {
                field: f as u16,
                level,
                weight: self.weight(sides, f, level, pair),
            })
            .collect();
        let score = self.prior + contributions.iter().map(|c| c.weight).sum::<f64>();
        let review_only = self.review_only(levels);
        ScoredPair {
            left: pair.0,
            right: pair.1,
            score,
            contributions,
            review_only,
        }
    }
}

/// Scores every compared pair, in the pairs' order.
pub fn score(weights: &Weights, sides: &Sides, pairs: &[Pair], g: &Gammas) -> Vec<ScoredPair> {
    pairs
        .par_iter()
        .enumerate()
        .with_min_len(256)
        .map(|(i, &p)| weights.score(sides, p, g.row(i)))
        .collect()
}

/// Scores every compared pair and keeps those at or above `floor`, each
/// with its index in `pairs`, without the fields' shares (no allocation
/// per pair: a million-identity match compares tens of millions of pairs,
/// most of them strangers born the same day). [`Weights::score`] gives a
/// kept pair's shares when a person needs them.
pub fn score_kept(
    weights: &Weights,
    sides: &Sides,
    pairs: &[Pair],
    g: &Gammas,
    floor: f64,
) -> Vec<(usize, ScoredPair)> {
    pairs
        .par_iter()
        .enumerate()
        .with_min_len(256)
        .filter_map(|(i, &p)| {
            let (score, review_only) = weights.total(sides, p, g.row(i));
            (score >= floor).then(|| {
                (
                    i,
                    ScoredPair {
                        left: p.0,
                        right: p.1,
                        score,
                        contributions: Vec::new(),
                        review_only,
                    },
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::compare::compare;
    use super::super::em::FieldParams;
    use super::super::prepare::{Table, prepare};
    use super::super::spec::MatchSpec;
    use super::*;

    #[test]
    fn rare_values_weigh_more_than_common_ones() {
        let mut t = Table::new(vec!["surname".into(), "city".into()]);
        for (s, c) in [
            ("smith", "x"),
            ("smith", "y"),
            ("smith", "z"),
            ("smith", ""),
            ("zabrowski", "x"),
            ("jones", "y"),
        ] {
            t.push(vec![Some(s.into()), Some(c.into())]);
        }
        let mut city = FieldSpec::code("city");
        city.term_frequency = false;
        let spec = MatchSpec {
            fields: vec![FieldSpec::name("surname"), city],
            blocking: vec![],
            thresholds: Default::default(),
        };
        let sides = prepare(&spec, &t, &t).expect("prepare");
        let params = Params {
            lambda: 0.5,
            fields: vec![
                FieldParams {
                    m: vec![0.8, 0.1, 0.05, 0.05],
                    u: vec![0.1, 0.1, 0.1, 0.7],
                },
                FieldParams {
                    m: vec![0.9, 0.05, 0.05],
                    u: vec![0.3, 0.1, 0.6],
                },
            ],
        };
        let w = Weights::new(&spec.fields, &params, &sides);
        let pairs = [(0, 1), (4, 4), (3, 3), (0, 5)];
        let g = compare(&spec.fields, &sides, &pairs);
        let s = score(&w, &sides, &pairs, &g);
        let smith = s[0].contributions[0].weight;
        let zabrowski = s[1].contributions[0].weight;
        assert!(zabrowski > smith + 1.9, "{zabrowski} {smith}");
        // mean = (4/6)^2 + 2 (1/6)^2 = 1/2; smith is 4/6, zabrowski 1/6.
        assert!((smith - (3.0 + (0.5f64 / (4.0 / 6.0)).log2())).abs() < 1e-6);
        assert!((zabrowski - (3.0 + (0.5f64 / (1.0 / 6.0)).log2())).abs() < 1e-6);
        // A field without adjustment: its plain weight; a null: nothing.
        assert!((s[1].contributions[1].weight - 3.0f64.log2()).abs() < 1e-12);
        assert_eq!(s[2].contributions[1].level, MISSING);
        assert_eq!(s[2].contributions[1].weight, 0.0);
        // Disagreement is not adjusted.
        assert!((s[3].contributions[0].weight - (0.05f64 / 0.7).log2()).abs() < 1e-12);
        assert!(s.iter().all(|p| p.review_only.is_none()));
        for p in &s {
            let sum: f64 = p.contributions.iter().map(|c| c.weight).sum();
            assert!((p.score - sum).abs() < 1e-12, "prior of λ = 0.5 is 0");
        }
        assert!((probability(0.0) - 0.5).abs() < 1e-12);
    }
}
