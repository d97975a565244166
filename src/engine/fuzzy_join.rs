//! The fuzzy join: what an agent's `[fuzzy_join]` decides for the objects
//! no exact join rule found. Pure: the objects' values and the candidate
//! identities' attributes in, one decision per object out, in the objects'
//! order. The matcher (`crate::fuzzy`) blocks, compares, scores and
//! decides; this module only reads both sides into its tables and turns
//! its rows back into metaverse positions.

use crate::expr::Context;
use crate::fuzzy::{self, Decision as Fz, Table};
use crate::model::Record;
use crate::rules::FuzzyJoin;

/// A candidate's score and each field's part of it, for the review queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scored {
    /// The identity: its position in the engine until the sync names it
    /// by id.
    pub mv: crate::model::MvId,
    /// Bits: log2 of the odds that the two are one person.
    pub score: f64,
    pub fields: Vec<FieldShare>,
}

impl Scored {
    /// The score and each field's level and bits, as a link's detail.
    pub fn detail(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|f| format!("{} {} {:+.2}", f.field, f.level, f.weight))
            .collect();
        format!("score {:.2} ({})", self.score, fields.join(", "))
    }
}

fn shares(rule: &FuzzyJoin, pair: &fuzzy::ScoredPair) -> Vec<FieldShare> {
    fuzzy::explain(&rule.spec, pair)
        .into_iter()
        .map(|(field, level, weight)| FieldShare {
            field,
            level,
            weight,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldShare {
    pub field: String,
    pub level: String,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FuzzyDecision {
    /// The identity at `mv` (a position), scored.
    Join {
        mv: u32,
        scored: Scored,
    },
    /// Candidates best first.
    Review(Vec<Scored>),
    NoMatch,
    Error(String),
}

/// A field's value for the matcher: the first non-empty one. Several
/// values (two surnames on file) would make the pair's level depend on
/// which is read; the first is what flows and exact keys read too.
fn first(values: Vec<String>) -> Option<String> {
    values.into_iter().find(|v| !v.trim().is_empty())
}

/// Both sides read for the matcher: the objects' field expressions (left)
/// and the identities' attributes (right), row for row, with the error of
/// each object whose expression failed (its fields read as missing).
pub fn sides<'m>(
    rule: &FuzzyJoin,
    objects: &[(&Record, String)],
    mvs: impl Iterator<Item = &'m Record>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(fuzzy::Sides, Vec<Option<String>>), String> {
    let columns: Vec<String> = rule.spec.fields.iter().map(|f| f.name.clone()).collect();
    let mut left = Table::new(columns.clone());
    let mut errors: Vec<Option<String>> = vec![None; objects.len()];
    for (i, (attrs, key)) in objects.iter().enumerate() {
        let ctx = Context {
            now,
            object_key: key,
            unique: None,
        };
        let mut row = Vec::with_capacity(rule.cs.len());
        for e in &rule.cs {
            match e.eval(*attrs, &ctx) {
                Ok(v) => row.push(first(v.to_strings())),
                Err(err) => {
                    errors[i] = Some(format!("fuzzy join rule {:?}: {}", rule.name, err.message));
                    row.push(None);
                }
            }
        }
        left.push(row);
    }
    let mut right = Table::new(columns);
    for attrs in mvs {
        right.push(
            rule.mv
                .iter()
                .map(|&a| {
                    attrs
                        .values(a)
                        .find(|v| !v.trim().is_empty())
                        .map(String::from)
                })
                .collect(),
        );
    }
    // The compiler checked the spec against these very columns.
    let sides = fuzzy::prepare(&rule.spec, &left, &right)
        .map_err(|e| format!("fuzzy join rule {:?}: {e:?}", rule.name))?;
    Ok((sides, errors))
}

/// A blocking key of a fuzzy rule as the store keeps it: per part, the
/// metaverse attribute (and so the field), how it reads and its transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BlockSpec {
    pub object_type: usize,
    pub parts: Vec<(u32, fuzzy::FieldKind, fuzzy::Transform)>,
    /// The rule's field of each part, for the connector-space side.
    fields: Vec<usize>,
}

impl BlockSpec {
    pub fn of(object_type: usize, rule: &FuzzyJoin) -> Vec<BlockSpec> {
        rule.spec
            .blocking
            .iter()
            .filter_map(|k| {
                let mut parts = Vec::new();
                let mut fields = Vec::new();
                for p in &k.parts {
                    let f = rule.spec.field_index(&p.field)?;
                    parts.push((*rule.mv.get(f)?, rule.spec.fields[f].kind, p.transform));
                    fields.push(f);
                }
                Some(BlockSpec {
                    object_type,
                    parts,
                    fields,
                })
            })
            .collect()
    }

    fn kinds(&self) -> Vec<(fuzzy::FieldKind, fuzzy::Transform)> {
        self.parts.iter().map(|&(_, k, t)| (k, t)).collect()
    }

    /// The key of a metaverse object, as the matcher's right side reads it.
    pub fn mv_key(&self, attrs: &Record) -> Option<String> {
        let values: Vec<Option<&str>> = self
            .parts
            .iter()
            .map(|&(a, _, _)| attrs.values(a).find(|v| !v.trim().is_empty()))
            .collect();
        fuzzy::blocking::key_text(&self.kinds(), &values)
    }

    /// The key of a connector-space object, from the rule's field values
    /// as [`sides`] reads them.
    pub fn cs_key(&self, values: &[Option<String>]) -> Option<String> {
        let v: Vec<Option<&str>> = self
            .fields
            .iter()
            .map(|&f| values.get(f).and_then(|v| v.as_deref()))
            .collect();
        fuzzy::blocking::key_text(&self.kinds(), &v)
    }
}

/// The blocking keys of a set of objects under a fuzzy rule: which
/// identities the rule could compare any of them with.
pub(super) struct ObjectKeys {
    blocks: Vec<BlockSpec>,
    keys: rustc_hash::FxHashSet<(usize, String)>,
}

impl ObjectKeys {
    pub fn shares_key(&self, attrs: &Record) -> bool {
        self.blocks
            .iter()
            .enumerate()
            .any(|(i, b)| b.mv_key(attrs).is_some_and(|k| self.keys.contains(&(i, k))))
    }
}

pub(super) fn object_keys(
    rule: &FuzzyJoin,
    object_type: usize,
    objects: &[(&Record, String)],
    now: chrono::DateTime<chrono::Utc>,
) -> ObjectKeys {
    use rayon::prelude::*;
    let blocks = BlockSpec::of(object_type, rule);
    let keys = objects
        .par_iter()
        .flat_map_iter(|(attrs, key)| {
            let ctx = Context {
                now,
                object_key: key,
                unique: None,
            };
            let values = cs_values(rule, attrs, &ctx);
            blocks
                .iter()
                .enumerate()
                .filter_map(|(i, b)| Some((i, b.cs_key(&values)?)))
                .collect::<Vec<_>>()
        })
        .collect();
    ObjectKeys { blocks, keys }
}

/// A connector-space object's field values under a fuzzy rule (none for a
/// field whose expression fails).
pub(super) fn cs_values(rule: &FuzzyJoin, attrs: &Record, ctx: &Context) -> Vec<Option<String>> {
    rule.cs
        .iter()
        .map(|e| e.eval(attrs, ctx).ok().and_then(|v| first(v.to_strings())))
        .collect()
}

/// Decides each object of `objects` (connector-space attributes and their
/// expression context keys) against the identities `mvs` (metaverse
/// positions and attributes), which must be in a fixed order.
pub(super) fn decide(
    rule: &FuzzyJoin,
    objects: &[(&Record, String)],
    mvs: &[(u32, &Record)],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<FuzzyDecision> {
    let Some(params) = &rule.params else {
        let msg = format!(
            "fuzzy join rule {:?} has no weights; run idsync train-join",
            rule.name
        );
        return vec![FuzzyDecision::Error(msg); objects.len()];
    };
    let (sides, errors) = match sides(rule, objects, mvs.iter().map(|(_, r)| *r), now) {
        Ok(s) => s,
        Err(msg) => return vec![FuzzyDecision::Error(msg); objects.len()],
    };
    let linkage = fuzzy::link(&rule.spec, params, &sides);
    let mut by_left: Vec<Vec<&fuzzy::ScoredPair>> = vec![Vec::new(); objects.len()];
    for p in &linkage.scored {
        if let Some(v) = by_left.get_mut(p.left as usize) {
            v.push(p);
        }
    }
    let pos = |row: u32| mvs.get(row as usize).map(|(p, _)| *p);
    linkage
        .decisions
        .iter()
        .zip(errors)
        .map(|(d, err)| {
            if let Some(e) = err {
                return FuzzyDecision::Error(e);
            }
            match d {
                Fz::Join {
                    left, right, score, ..
                } => match pos(*right) {
                    Some(mv) => {
                        let pairs = by_left.get(*left as usize).map_or(&[][..], Vec::as_slice);
                        let fields = pairs
                            .iter()
                            .find(|p| p.right == *right)
                            .map(|p| shares(rule, p))
                            .unwrap_or_default();
                        FuzzyDecision::Join {
                            mv,
                            scored: Scored {
                                mv: i64::from(mv),
                                score: *score,
                                fields,
                            },
                        }
                    }
                    None => FuzzyDecision::NoMatch,
                },
                Fz::Review {
                    left, candidates, ..
                } => {
                    let pairs = by_left.get(*left as usize).map_or(&[][..], Vec::as_slice);
                    let scored = candidates
                        .iter()
                        .filter_map(|(right, score)| {
                            let pair = pairs.iter().find(|p| p.right == *right)?;
                            Some(Scored {
                                mv: i64::from(pos(*right)?),
                                score: *score,
                                fields: shares(rule, pair),
                            })
                        })
                        .collect();
                    FuzzyDecision::Review(scored)
                }
                Fz::NoMatch { .. } => FuzzyDecision::NoMatch,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzy::{
        BlockKey, FieldParams, FieldSpec, MatchSpec, Params, Thresholds, Transform,
    };

    /// Source and metaverse attributes share indexes here: 0 surname,
    /// 1 given name, 2 birth date.
    struct Names;
    impl crate::expr::Scope for Names {
        fn resolve(&self, name: &str) -> Option<u32> {
            ["last", "first", "dob"]
                .iter()
                .position(|n| *n == name)
                .map(|i| i as u32)
        }
        fn names(&self) -> Vec<String> {
            vec!["last".into(), "first".into(), "dob".into()]
        }
    }

    fn rule() -> FuzzyJoin {
        let mut sn = FieldSpec::name("sn");
        sn.term_frequency = false;
        let mut given = FieldSpec::name("givenName");
        given.term_frequency = false;
        let spec = MatchSpec {
            fields: vec![sn, given, FieldSpec::date("birthDate")],
            blocking: vec![
                BlockKey::new("dob", &[("birthDate", Transform::Whole)]),
                BlockKey::new(
                    "sound+year",
                    &[("sn", Transform::Soundex), ("birthDate", Transform::Year)],
                ),
            ],
            thresholds: Thresholds {
                join: 10.0,
                review: 4.0,
                margin: 5.0,
            },
        };
        let name = |m: [f64; 4], u: [f64; 4]| FieldParams {
            m: m.to_vec(),
            u: u.to_vec(),
        };
        let params = Params {
            lambda: 0.0001,
            fields: vec![
                name([0.85, 0.1, 0.03, 0.02], [0.003, 0.01, 0.05, 0.937]),
                name([0.85, 0.08, 0.065, 0.005], [0.005, 0.01, 0.02, 0.965]),
                name([0.95, 0.02, 0.01, 0.02], [0.00005, 0.002, 0.0001, 0.99785]),
            ],
        };
        let cs = ["last", "first", "dob"]
            .iter()
            .map(|s| crate::expr::Expr::compile(s, &Names).expect("expr"))
            .collect();
        FuzzyJoin {
            name: "by-person".into(),
            spec,
            cs,
            mv: vec![0, 1, 2],
            params: Some(params),
        }
    }

    fn rec(v: [&str; 3]) -> Record {
        let mut b = Record::builder();
        for (i, s) in v.iter().enumerate() {
            if !s.is_empty() {
                b.push(i as u32, s);
            }
        }
        b.build()
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn joins_a_typo_reviews_a_swap_and_leaves_a_twin_alone() {
        let r = rule();
        let mvs = [
            rec(["Schneider", "Anna", "1980-03-04"]),
            rec(["Fischer", "Lena", "1990-05-02"]),
            rec(["Weber", "Paul", "1975-07-12"]),
        ];
        let objs = [
            rec(["Schnieder", "Anna", "1980-03-04"]),
            rec(["Fischer", "Lena", "1990-02-05"]),
            rec(["Weber", "Maria", "1975-07-12"]),
            rec(["", "", ""]),
        ];
        let objects: Vec<(&Record, String)> =
            objs.iter().map(|o| (o, "sub/x".to_string())).collect();
        // Positions in the engine need not be the row numbers.
        let right: Vec<(u32, &Record)> = mvs.iter().zip([7, 3, 9]).map(|(m, p)| (p, m)).collect();
        let d = decide(&r, &objects, &right, now());
        assert!(
            matches!(&d[0], FuzzyDecision::Join { mv: 7, scored } if scored.detail().starts_with("score ")),
            "{d:?}"
        );
        match &d[1] {
            FuzzyDecision::Review(c) => {
                assert_eq!(c.len(), 1);
                assert_eq!(c[0].mv, 3);
                assert_eq!(c[0].fields[2].level, "day and month swapped");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d[2], FuzzyDecision::NoMatch);
        assert_eq!(d[3], FuzzyDecision::NoMatch);

        // Reading only the identities sharing a key decides the same.
        let keys = object_keys(&r, 0, &objects, now());
        let shared: Vec<(u32, &Record)> = right
            .iter()
            .copied()
            .filter(|(_, m)| keys.shares_key(m))
            .collect();
        assert_eq!(shared.len(), 3);
        let far = rec(["Zimmermann", "Otto", "1950-01-01"]);
        assert!(!keys.shares_key(&far));
        let mut with_far = right.clone();
        with_far.push((1, &far));
        assert_eq!(decide(&r, &objects, &with_far, now()), d);
    }

    #[test]
    fn stored_keys_of_both_sides_agree() {
        let r = rule();
        let blocks = BlockSpec::of(0, &r);
        assert_eq!(blocks.len(), 2);
        let o = rec(["Schnieder", "Anna", "04.03.1980"]);
        let ctx = Context {
            now: now(),
            object_key: "sub/x",
            unique: None,
        };
        let values = cs_values(&r, &o, &ctx);
        let m = rec(["Schneider", "Anna", "1980-03-04"]);
        for b in &blocks {
            assert_eq!(b.cs_key(&values), b.mv_key(&m));
            assert!(b.mv_key(&m).is_some());
        }
        assert_eq!(blocks[0].mv_key(&rec(["Schneider", "Anna", ""])), None);
    }

    #[test]
    fn a_rule_without_weights_decides_nothing() {
        let mut r = rule();
        r.params = None;
        let o = rec(["Weber", "Paul", "1975-07-12"]);
        let d = decide(&r, &[(&o, "sub/x".into())], &[(0, &o)], now());
        assert!(matches!(&d[0], FuzzyDecision::Error(m) if m.contains("train-join")));
    }
}
