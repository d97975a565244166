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
    /// The connector whose record scored best (`agent anchor`), when not
    /// the identity's own values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// That connector in the engine (agent, position), until the sync
    /// names it in `via`.
    #[serde(skip)]
    pub at: Option<(usize, usize)>,
}

impl Scored {
    /// A review item's stored scores (`ambiguous_join.scores`); none when
    /// there are none or they cannot be read (written by a later version).
    pub fn list_from_json(text: Option<&str>) -> Vec<Scored> {
        text.and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }

    /// The score and each field's level and bits, as a link's detail.
    pub fn detail(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|f| format!("{} {} {:+.2}", f.field, f.level, f.weight))
            .collect();
        let via = self
            .via
            .as_ref()
            .map(|v| format!(" via {v}"))
            .unwrap_or_default();
        format!("score {:.2}{via} ({})", self.score, fields.join(", "))
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
    /// Candidates best first, and why a person must decide when it is not
    /// the scores alone.
    Review(Vec<Scored>, Option<String>),
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
    known: Option<&fuzzy::Frequencies>,
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
    let sides = fuzzy::prepare_with(&rule.spec, &left, &right, known)
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

/// One record the matcher compares an object with: an identity's own
/// values, or those a connector of it brings (its import flows' output,
/// keyed by metaverse attribute). Rows of one identity are consecutive.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row<'a> {
    /// The identity's position in the engine.
    pub pos: u32,
    pub attrs: &'a Record,
    /// The connector the record comes from (agent, position), none for the
    /// identity's own values.
    pub via: Option<(usize, usize)>,
}

impl<'a> Row<'a> {
    pub fn own(pos: u32, attrs: &'a Record) -> Row<'a> {
        Row {
            pos,
            attrs,
            via: None,
        }
    }
}

/// Decides each object of `objects` (connector-space attributes and their
/// expression context keys) against the identities whose records are
/// `rows`, which must be in a fixed order. An object is scored against
/// every record of an identity and the best counts: the identity is the
/// cluster of its records, so an object resembling any of them joins it.
/// Term frequencies are `known` ones (a delta sync's), or counted over
/// these rows.
pub(super) fn decide(
    rule: &FuzzyJoin,
    objects: &[(&Record, String)],
    rows: &[Row],
    now: chrono::DateTime<chrono::Utc>,
    known: Option<&fuzzy::Frequencies>,
) -> Vec<FuzzyDecision> {
    let Some(params) = &rule.params else {
        let msg = format!(
            "fuzzy join rule {:?} has no weights; run idsync train-join",
            rule.name
        );
        return vec![FuzzyDecision::Error(msg); objects.len()];
    };
    let (sides, errors) = match sides(rule, objects, rows.iter().map(|r| r.attrs), now, known) {
        Ok(s) => s,
        Err(msg) => return vec![FuzzyDecision::Error(msg); objects.len()],
    };
    // Entities are the identities, numbered in row order.
    let mut entity = Vec::with_capacity(rows.len());
    let mut positions: Vec<u32> = Vec::new();
    for r in rows {
        if positions.last() != Some(&r.pos) {
            positions.push(r.pos);
        }
        entity.push(positions.len() as u32 - 1);
    }
    let (linkage, from) = fuzzy::link_grouped(&rule.spec, params, &sides, &entity);
    let mut by_left: Vec<Vec<(&fuzzy::ScoredPair, u32)>> = vec![Vec::new(); objects.len()];
    for (p, &row) in linkage.scored.iter().zip(&from) {
        if let Some(v) = by_left.get_mut(p.left as usize) {
            v.push((p, row));
        }
    }
    let pos = |e: u32| positions.get(e as usize).copied();
    let scored = |left: u32, e: u32, score: f64| -> Option<Scored> {
        let pairs = by_left.get(left as usize).map_or(&[][..], Vec::as_slice);
        let (pair, row) = pairs.iter().find(|(p, _)| p.right == e)?;
        Some(Scored {
            mv: i64::from(pos(e)?),
            score,
            fields: shares(rule, pair),
            at: rows.get(*row as usize).and_then(|r| r.via),
            via: None,
        })
    };
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
                } => match (pos(*right), scored(*left, *right, *score)) {
                    (Some(mv), Some(s)) => FuzzyDecision::Join { mv, scored: s },
                    _ => FuzzyDecision::NoMatch,
                },
                Fz::Review {
                    left, candidates, ..
                } => FuzzyDecision::Review(
                    candidates
                        .iter()
                        .filter_map(|(e, score)| scored(*left, *e, *score))
                        .collect(),
                    None,
                ),
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
        let right: Vec<Row> = mvs
            .iter()
            .zip([7, 3, 9])
            .map(|(m, p)| Row::own(p, m))
            .collect();
        let d = decide(&r, &objects, &right, now(), None);
        assert!(
            matches!(&d[0], FuzzyDecision::Join { mv: 7, scored } if scored.detail().starts_with("score ")),
            "{d:?}"
        );
        match &d[1] {
            FuzzyDecision::Review(c, _) => {
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
        let shared: Vec<Row> = right
            .iter()
            .copied()
            .filter(|r| keys.shares_key(r.attrs))
            .collect();
        assert_eq!(shared.len(), 3);
        let far = rec(["Zimmermann", "Otto", "1950-01-01"]);
        assert!(!keys.shares_key(&far));
        let mut with_far = right.clone();
        with_far.push(Row::own(1, &far));
        assert_eq!(decide(&r, &objects, &with_far, now(), None), d);
    }

    #[test]
    fn an_object_joins_the_identity_whose_other_record_it_resembles() {
        let r = rule();
        // Identity 4's own values come from its first source; its second
        // source spells the person as the new object does. Identity 5 is
        // someone else born the same day.
        let own = rec(["Mueller", "Katharina", "1980-03-04"]);
        let other = rec(["Mueller-Schmidt", "Katrin", "1980-03-04"]);
        let stranger = rec(["Weber", "Paul", "1980-03-04"]);
        let o = rec(["Mueller-Schmidt", "Katrin", "1980-03-04"]);
        let objects = [(&o, "sub/x".to_string())];
        let alone = decide(
            &r,
            &objects,
            &[Row::own(4, &own), Row::own(5, &stranger)],
            now(),
            None,
        );
        assert!(!matches!(alone[0], FuzzyDecision::Join { .. }), "{alone:?}");
        let rows = [
            Row::own(4, &own),
            Row {
                pos: 4,
                attrs: &other,
                via: Some((1, 17)),
            },
            Row::own(5, &stranger),
        ];
        match &decide(&r, &objects, &rows, now(), None)[0] {
            FuzzyDecision::Join { mv: 4, scored } => assert_eq!(scored.at, Some((1, 17))),
            other => panic!("{other:?}"),
        }
        // The same record twice is still one identity, not two rivals.
        let twice = [Row::own(4, &other), rows[1], Row::own(5, &stranger)];
        assert!(matches!(
            &decide(&r, &objects, &twice, now(), None)[0],
            FuzzyDecision::Join { mv: 4, .. }
        ));
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
        let d = decide(&r, &[(&o, "sub/x".into())], &[Row::own(0, &o)], now(), None);
        assert!(matches!(&d[0], FuzzyDecision::Error(m) if m.contains("train-join")));
    }
}
