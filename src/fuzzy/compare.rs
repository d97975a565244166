//! Comparing a pair field by field: each field's first level that holds
//! (or "else", or "missing" when a side is null). The result per pair is a
//! row of small level numbers (a comparison vector, γ), which is all that
//! EM and scoring need; the strings are not looked at again.

use super::prepare::{Sides, Value};
use super::spec::{FieldSpec, Level};
use rayon::prelude::*;

/// The level of a field with a null on either side: no evidence either way.
pub const MISSING: u8 = u8::MAX;

/// A candidate pair: row of the left side, row of the right side.
pub type Pair = (u32, u32);

/// The level of one field for one pair.
pub fn level(spec: &FieldSpec, a: Option<&Value>, b: Option<&Value>) -> u8 {
    let (Some(a), Some(b)) = (a, b) else {
        return MISSING;
    };
    spec.levels
        .iter()
        .position(|l| holds(*l, a, b))
        .unwrap_or(spec.levels.len()) as u8
}

fn holds(level: Level, a: &Value, b: &Value) -> bool {
    match level {
        // A date's spelling is not part of it.
        Level::Exact => match (a.date, b.date) {
            (Some(x), Some(y)) => x == y,
            _ => a.raw == b.raw,
        },
        Level::Normalised => a.norm == b.norm,
        Level::JaroWinkler(t) => a.norm == b.norm || strsim::jaro_winkler(&a.norm, &b.norm) >= t,
        Level::Levenshtein(t) => {
            a.norm == b.norm || strsim::normalized_levenshtein(&a.norm, &b.norm) >= t
        }
        Level::Edits(n) => {
            let (la, lb) = (a.norm.chars().count(), b.norm.chars().count());
            la.abs_diff(lb) <= n as usize
                && strsim::damerau_levenshtein(&a.norm, &b.norm) <= n as usize
        }
        Level::Initial => {
            let initial = |short: &str, long: &str| {
                let mut s = short.chars();
                matches!((s.next(), s.next(), long.chars().next()), (Some(c), None, Some(d)) if c == d)
            };
            initial(&a.norm, &b.norm) || initial(&b.norm, &a.norm)
        }
        Level::DateOneOff => match (a.date, b.date) {
            (Some(x), Some(y)) => x.iter().zip(&y).filter(|(p, q)| p != q).count() == 1,
            _ => false,
        },
        Level::DateSwapped => match (a.date, b.date) {
            (Some([y1, m1, d1]), Some([y2, m2, d2])) => {
                y1 == y2 && m1 == d2 && d1 == m2 && m1 != d1
            }
            _ => false,
        },
    }
}

/// Comparison vectors of many pairs, one row of `fields` levels per pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gammas {
    pub fields: usize,
    pub levels: Vec<u8>,
}

impl Gammas {
    pub fn len(&self) -> usize {
        self.levels.len().checked_div(self.fields).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    pub fn row(&self, i: usize) -> &[u8] {
        &self.levels[i * self.fields..(i + 1) * self.fields]
    }
}

/// Compares every pair (in parallel; the rows come out in the pairs'
/// order).
pub fn compare(fields: &[FieldSpec], sides: &Sides, pairs: &[Pair]) -> Gammas {
    let n = fields.len();
    let mut levels = vec![0u8; pairs.len() * n];
    if n > 0 {
        levels
            .par_chunks_mut(n)
            .zip(pairs.par_iter())
            .with_min_len(256)
            .for_each(|(row, &(l, r))| {
                for (f, spec) in fields.iter().enumerate() {
                    row[f] = level(spec, sides.left.value(f, l), sides.right.value(f, r));
                }
            });
    }
    Gammas { fields: n, levels }
}

#[cfg(test)]
mod tests {
    use super::super::spec::FieldKind;
    use super::*;

    fn lv(spec: &FieldSpec, a: &str, b: &str) -> u8 {
        let a = Value::read(spec.kind, a);
        let b = Value::read(spec.kind, b);
        level(spec, a.as_ref(), b.as_ref())
    }

    #[test]
    fn name_levels() {
        let spec = FieldSpec {
            name: "n".into(),
            kind: FieldKind::Name,
            levels: vec![
                Level::Exact,
                Level::Normalised,
                Level::JaroWinkler(0.92),
                Level::Levenshtein(0.7),
                Level::Initial,
            ],
            term_frequency: false,
            review_from: None,
        };
        assert_eq!(lv(&spec, "Müller", " Müller"), 0);
        assert_eq!(lv(&spec, "Müller", "MULLER"), 1);
        assert_eq!(lv(&spec, "O'Neil", "oneil"), 1);
        // One typo near the end of a long name: Jaro-Winkler stays high.
        assert_eq!(lv(&spec, "Katherine", "Katherina"), 2);
        // Different first letters: Jaro-Winkler 0.88, Levenshtein 0.78.
        assert_eq!(lv(&spec, "kristina", "christina"), 3);
        assert_eq!(lv(&spec, "J", "John"), 4);
        assert_eq!(lv(&spec, "john", "j."), 4);
        assert_eq!(lv(&spec, "K", "John"), 5);
        assert_eq!(lv(&spec, "Smith", "Jones"), 5);
        assert_eq!(lv(&spec, "", "Jones"), MISSING);
        assert_eq!(lv(&spec, "Smith", "  "), MISSING);
    }

    #[test]
    fn date_levels() {
        let spec = FieldSpec::date("dob");
        assert_eq!(lv(&spec, "19800304", "1980-03-04"), 0);
        assert_eq!(lv(&spec, "19800304", "19810304"), 1);
        assert_eq!(lv(&spec, "19800304", "19800314"), 1);
        assert_eq!(lv(&spec, "19800304", "19800404"), 1);
        assert_eq!(lv(&spec, "19800304", "19800403"), 2);
        // The same day and month cannot be swapped.
        assert_eq!(lv(&spec, "19800303", "19810303"), 1);
        assert_eq!(lv(&spec, "19800304", "19810403"), 3);
        assert_eq!(lv(&spec, "19800304", "19910512"), 3);
        assert_eq!(lv(&spec, "19800304", "unknown"), MISSING);
    }

    #[test]
    fn date_exact_compares_the_date_not_its_spelling() {
        let spec = FieldSpec {
            levels: vec![Level::Normalised],
            ..FieldSpec::date("dob")
        };
        assert_eq!(lv(&spec, "04.03.1980", "1980-03-04"), 0);
    }

    #[test]
    fn code_levels() {
        let spec = FieldSpec::code("ssn");
        assert_eq!(lv(&spec, "5304218", "5304218"), 0);
        assert_eq!(lv(&spec, "5304218", "5304219"), 1);
        assert_eq!(lv(&spec, "5304218", "5302418"), 1);
        assert_eq!(lv(&spec, "5304218", "530421"), 1);
        assert_eq!(lv(&spec, "5304218", "5314219"), 2);
    }

    #[test]
    fn compare_keeps_pair_order() {
        use super::super::prepare::{Table, prepare};
        use super::super::spec::MatchSpec;
        let mut t = Table::new(vec!["n".into()]);
        for n in ["anna", "bob", ""] {
            t.push(vec![Some(n.into())]);
        }
        let spec = MatchSpec {
            fields: vec![FieldSpec::name("n")],
            blocking: vec![],
            thresholds: Default::default(),
        };
        let sides = prepare(&spec, &t, &t).expect("prepare");
        let g = compare(&spec.fields, &sides, &[(0, 0), (0, 1), (2, 0), (1, 1)]);
        assert_eq!(g.levels, vec![0, 3, MISSING, 0]);
        assert_eq!(g.len(), 4);
        assert_eq!(g.row(2), &[MISSING]);
    }
}
