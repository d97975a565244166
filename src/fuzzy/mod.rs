//! Probabilistic record matching (Fellegi–Sunter) for records that share
//! no key: names, dates and addresses, misspelt, swapped or missing. Pure
//! functions over in-memory tables; parallel with rayon, and the same
//! inputs give the same pairs, weights, scores and decisions on any number
//! of threads.
//!
//! The steps, each usable on its own (join rules, `idsync check` and the
//! review queue each need a different subset):
//! - [`prepare`]: read both sides' values once (normalise, parse dates,
//!   count value frequencies);
//! - [`blocking::candidates`] (and [`blocking::estimate`], the count
//!   without the pairs): the pairs worth comparing;
//! - [`compare::compare`]: each pair's level per field;
//! - [`em::random_u`] and [`em::train`]: m, u and λ from the data;
//! - [`score::score`]: prior plus weights, every field's share kept;
//! - [`decide::decide`]: join, review or no match.
//!
//! [`train`] and [`link`] run them in order.

pub mod blocking;
pub mod compare;
pub mod decide;
pub mod em;
pub mod prepare;
pub mod score;
pub mod spec;

pub use compare::{Gammas, MISSING, Pair};
pub use decide::{Decision, Why, decide};
pub use em::{EmOptions, FieldParams, Params, Training, USource};
pub use prepare::{FieldFrequencies, Frequencies, Sides, Table, prepare, prepare_with};
pub use score::{Contribution, ScoredPair, Weights};
pub use spec::{BlockKey, FieldKind, FieldSpec, KeyPart, Level, MatchSpec, Thresholds, Transform};

/// Blocks, compares and trains the model's parameters by EM.
///
/// With several blocking keys, as splink does: one EM run per key over
/// that key's pairs alone, leaving out the fields the key reads (its pairs
/// agree on them by construction, so they would tell EM nothing about
/// matches, and pairs from different keys differ on them by
/// construction, which EM would otherwise take for the difference between
/// matches and non-matches). A field's m is the mean over the runs it took
/// part in. A last run over all the candidates holds those m and fits λ
/// (and the candidates' u, as the options say).
pub fn train(spec: &MatchSpec, sides: &Sides, opts: &EmOptions) -> Training {
    let u = em::random_u(&spec.fields, sides, opts);
    let all_pairs = sides.left.len() as f64 * sides.right.len() as f64;
    let pairs = blocking::candidates(spec, sides);
    let g = compare::compare(&spec.fields, sides, &pairs);
    if spec.blocking.len() < 2 {
        return em::train(&spec.fields, &g, u, all_pairs, opts);
    }
    let n = spec.fields.len();
    let mut m_sum: Vec<Vec<f64>> = em::start_m(&spec.fields)
        .iter()
        .map(|m| vec![0.0; m.len()])
        .collect();
    let mut runs = vec![0usize; n];
    let mut iterations = 0;
    // The matches each key's run expects among its pairs: every key finds
    // most of them, so the candidates hold at least the most any finds.
    let mut found: f64 = 0.0;
    for key in &spec.blocking {
        let left_out: Vec<bool> = spec
            .fields
            .iter()
            .map(|f| key.parts.iter().any(|p| p.field == f.name))
            .collect();
        if left_out.iter().all(|&x| x) {
            continue;
        }
        let one = MatchSpec {
            blocking: vec![key.clone()],
            ..spec.clone()
        };
        let pairs = blocking::candidates(&one, sides);
        if pairs.is_empty() {
            continue;
        }
        let g = compare::compare(&spec.fields, sides, &pairs);
        let session = em::Session {
            left_out: left_out.clone(),
            ..em::Session::default()
        };
        let t = em::train_with(&spec.fields, &g, u.clone(), all_pairs, opts, &session);
        iterations += t.iterations;
        found = found.max(t.params.lambda * all_pairs);
        for f in (0..n).filter(|&f| !left_out[f]) {
            runs[f] += 1;
            for (s, m) in m_sum[f].iter_mut().zip(&t.params.fields[f].m) {
                *s += m;
            }
        }
    }
    let m: Vec<Vec<f64>> = em::start_m(&spec.fields)
        .into_iter()
        .enumerate()
        .map(|(f, start)| match runs[f] {
            0 => start,
            r => m_sum[f].iter().map(|s| s / r as f64).collect(),
        })
        .collect();
    let session = em::Session {
        m: Some(m),
        hold_m: true,
        ..em::Session::default()
    };
    let mut t = em::train_with(&spec.fields, &g, u, all_pairs, opts, &session);
    t.iterations += iterations;
    if found > 0.0 && opts.u_source != USource::Candidates {
        t.params.lambda = t.params.lambda.max(found / all_pairs.max(1.0));
    }
    t
}

/// Everything a match produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Linkage {
    /// The candidate pairs that could count in a decision (scored at least
    /// `review - margin`: a lower score is neither a candidate for review
    /// nor close enough to rival one), sorted by left then right row. The
    /// pairs a decision names carry each field's share of the score.
    pub scored: Vec<ScoredPair>,
    /// One per left row, in row order.
    pub decisions: Vec<Decision>,
}

/// Blocks, compares, scores and decides with given parameters: each right
/// row is an entity of its own.
pub fn link(spec: &MatchSpec, params: &Params, sides: &Sides) -> Linkage {
    let rows: Vec<u32> = (0..sides.right.len() as u32).collect();
    link_grouped(spec, params, sides, &rows).0
}

/// The lowest score that can count in a decision: a best candidate below
/// `review` is no match, and a rival more than `margin` below a best one at
/// or above `review` (and below `join`) rivals nothing.
fn floor(spec: &MatchSpec) -> f64 {
    let t = &spec.thresholds;
    (t.review - t.margin.max(0.0)).min(t.join)
}

/// Fills in each field's share for the pairs the decisions name (joins and
/// review candidates): the only ones a person reads.
fn explain_decided(
    scored: &mut [ScoredPair],
    index: &[usize],
    decisions: &[Decision],
    shares: impl Fn(usize) -> Vec<Contribution>,
) {
    let mut named: rustc_hash::FxHashSet<(u32, u32)> = Default::default();
    for d in decisions {
        match d {
            Decision::Join { left, right, .. } => {
                named.insert((*left, *right));
            }
            Decision::Review {
                left, candidates, ..
            } => named.extend(candidates.iter().map(|(r, _)| (*left, *r))),
            Decision::NoMatch { .. } => {}
        }
    }
    for (p, &i) in scored.iter_mut().zip(index) {
        if named.contains(&(p.left, p.right)) {
            p.contributions = shares(i);
        }
    }
}

/// [`link`] where several right rows are records of one entity (an
/// identity and each record its connectors bring): `entity[row]` names the
/// entity of each right row. A left record is scored against every record
/// of an entity and keeps the best, so it joins the entity whichever of its
/// records it resembles (A~B and B~C put C with A). Decisions are taken
/// between entities: two records of one identity are never rivals.
/// In the result, `right` is the entity of a scored pair; `rows[i]` is the
/// right row the pair `scored[i]` was read from.
pub fn link_grouped(
    spec: &MatchSpec,
    params: &Params,
    sides: &Sides,
    entity: &[u32],
) -> (Linkage, Vec<u32>) {
    let pairs = blocking::candidates(spec, sides);
    let g = compare::compare(&spec.fields, sides, &pairs);
    let weights = Weights::new(&spec.fields, params, sides);
    let kept = score::score_kept(&weights, sides, &pairs, &g, floor(spec));
    let (mut scored, rows, index) = best_per_entity(kept, entity);
    let decisions = decide(&scored, sides.left.len(), &spec.thresholds);
    explain_decided(&mut scored, &index, &decisions, |i| {
        weights.score(sides, pairs[i], g.row(i)).contributions
    });
    (Linkage { scored, decisions }, rows)
}

/// Keeps, per left record and entity, the best pair (the lower row on a
/// tie, so the choice does not depend on thread count), relabelled with
/// the entity; sorted by left then entity, as [`link`]'s pairs are. Each
/// pair comes with its index in the compared pairs; out come the pairs,
/// the right row each was read from, and that index.
fn best_per_entity(
    scored: Vec<(usize, ScoredPair)>,
    entity: &[u32],
) -> (Vec<ScoredPair>, Vec<u32>, Vec<usize>) {
    let mut keyed: Vec<(u32, u32, usize, ScoredPair)> = scored
        .into_iter()
        .filter_map(|(i, p)| Some((*entity.get(p.right as usize)?, p.right, i, p)))
        .collect();
    keyed.sort_by(|(ea, ra, _, a), (eb, rb, _, b)| {
        a.left
            .cmp(&b.left)
            .then(ea.cmp(eb))
            .then(b.score.total_cmp(&a.score))
            .then(ra.cmp(rb))
    });
    keyed.dedup_by(|(e2, _, _, b), (e1, _, _, a)| a.left == b.left && e1 == e2);
    let mut out = (
        Vec::with_capacity(keyed.len()),
        Vec::with_capacity(keyed.len()),
        Vec::with_capacity(keyed.len()),
    );
    for (e, row, i, mut p) in keyed {
        p.right = e;
        out.0.push(p);
        out.1.push(row);
        out.2.push(i);
    }
    out
}

/// A pair's score field by field, for people: field name, level, bits.
pub fn explain(spec: &MatchSpec, pair: &ScoredPair) -> Vec<(String, String, f64)> {
    pair.contributions
        .iter()
        .filter_map(|c| {
            let f = spec.fields.get(c.field as usize)?;
            let level = if c.level == MISSING {
                "missing".into()
            } else {
                f.level_label(c.level as usize)
            };
            Some((f.name.clone(), level, c.weight))
        })
        .collect()
}

#[cfg(test)]
mod tests;
