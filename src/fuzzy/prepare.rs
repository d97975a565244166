//! Records as the matcher reads them, and the work done once per record
//! rather than once per pair: trimming, normalising, parsing dates, and the
//! frequency of each value for term-frequency adjustment. A pair's
//! comparison then only reads what is prepared here.

use super::spec::{FieldKind, MatchSpec, SpecError};
use crate::model::text::{Norm, normalize};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// Rows of optional text values under named columns; the matcher's input.
#[derive(Debug, Clone, Default)]
pub struct Table {
    columns: Vec<String>,
    values: Vec<Option<String>>,
}

impl Table {
    pub fn new(columns: Vec<String>) -> Table {
        Table {
            columns,
            values: Vec::new(),
        }
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Appends a row, cut or padded with nulls to the number of columns.
    pub fn push(&mut self, mut row: Vec<Option<String>>) {
        row.resize(self.columns.len(), None);
        self.values.extend(row);
    }

    pub fn len(&self) -> usize {
        self.values
            .len()
            .checked_div(self.columns.len())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, row: usize, column: usize) -> Option<&str> {
        if column >= self.columns.len() {
            return None;
        }
        self.values
            .get(row.checked_mul(self.columns.len())? + column)?
            .as_deref()
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// A non-null value of a compared field, read once.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// Trimmed, otherwise as read.
    pub raw: Box<str>,
    /// Normalised for the field's kind.
    pub norm: Box<str>,
    /// Year, month, day for dates that read as one.
    pub date: Option<[u16; 3]>,
}

const NAME_NORMS: [Norm; 4] = [
    Norm::FoldDiacritics,
    Norm::FoldCase,
    Norm::RemovePunctuation,
    Norm::CollapseSpaces,
];

impl Value {
    /// None when the text is empty, or for a date, does not read as one.
    pub fn read(kind: FieldKind, text: &str) -> Option<Value> {
        let raw = text.trim();
        if raw.is_empty() {
            return None;
        }
        let (norm, date) = match kind {
            FieldKind::Name => (normalize(raw, &NAME_NORMS), None),
            FieldKind::Exact => (
                raw.chars()
                    .filter(|c| !c.is_whitespace() && !c.is_ascii_punctuation())
                    .flat_map(char::to_lowercase)
                    .collect(),
                None,
            ),
            FieldKind::Date => {
                let d = parse_date(raw)?;
                (format!("{:04}{:02}{:02}", d[0], d[1], d[2]), Some(d))
            }
        };
        if norm.is_empty() {
            return None;
        }
        Some(Value {
            raw: raw.into(),
            norm: norm.into(),
            date,
        })
    }
}

/// `YYYYMMDD`, `YYYY-MM-DD`, `DD.MM.YYYY`, `DD/MM/YYYY`. Parts are kept as
/// written, even out of range: a typo'd month 13 still compares with 12.
fn parse_date(s: &str) -> Option<[u16; 3]> {
    let num = |t: &str| -> Option<u16> {
        (!t.is_empty() && t.len() <= 4 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Some([num(&s[..4])?, num(&s[4..6])?, num(&s[6..])?]);
    }
    let parts: Vec<&str> = s.split(['-', '.', '/']).collect();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 => Some([num(y)?, num(m)?, num(d)?]),
        [d, m, y] if y.len() == 4 => Some([num(y)?, num(m)?, num(d)?]),
        _ => None,
    }
}

/// The smallest frequency a value is given, so that a value seen once does
/// not weigh without bound.
pub const TF_FLOOR: f64 = 1e-4;

/// One side's records, prepared for the spec's fields (in spec order).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Per field, per row.
    pub(crate) values: Vec<Vec<Option<Value>>>,
    /// Per field with term-frequency adjustment, per row: the value's
    /// frequency over both sides (0 for null). Empty for other fields.
    pub(crate) freq: Vec<Vec<f32>>,
    rows: usize,
}

impl Prepared {
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn value(&self, field: usize, row: u32) -> Option<&Value> {
        self.values.get(field)?.get(row as usize)?.as_ref()
    }
}

/// Both sides prepared, with what term-frequency adjustment needs.
#[derive(Debug, Clone)]
pub struct Sides {
    pub left: Prepared,
    pub right: Prepared,
    /// Per field: the chance that a random pair (both non-null) agrees
    /// exactly, the mean a value's frequency is compared with.
    pub(crate) tf_mean: Vec<Option<f64>>,
}

/// Term frequencies as one match counted them, kept so that a later match
/// of a few records (a delta sync's) weighs values as that one did rather
/// than by the few records it reads. Per field of the spec; only values
/// above [`TF_FLOOR`] are kept, since any other weighs as the floor: at most
/// 1 / `TF_FLOOR` values per field.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Frequencies {
    pub fields: Vec<Option<FieldFrequencies>>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldFrequencies {
    /// The chance that a random pair agrees exactly.
    pub mean: f64,
    /// How many values were counted (both sides): a value not kept is
    /// counted where it is seen, out of as many.
    #[serde(default)]
    pub total: f64,
    /// Normalised value -> frequency, sorted so the stored text is stable.
    pub values: std::collections::BTreeMap<String, f32>,
}

impl Sides {
    /// The frequencies this match weighed values by.
    pub fn frequencies(&self) -> Frequencies {
        let fields = self
            .tf_mean
            .iter()
            .enumerate()
            .map(|(f, mean)| {
                let mean = (*mean)?;
                let total = [&self.left, &self.right]
                    .iter()
                    .filter_map(|s| s.values.get(f))
                    .map(|v| v.iter().flatten().count())
                    .sum::<usize>() as f64;
                let mut values = std::collections::BTreeMap::new();
                for side in [&self.left, &self.right] {
                    let (Some(vals), Some(freq)) = (side.values.get(f), side.freq.get(f)) else {
                        continue;
                    };
                    for (v, &q) in vals.iter().zip(freq) {
                        if let Some(v) = v
                            && f64::from(q) > TF_FLOOR
                        {
                            values.insert(v.norm.to_string(), q);
                        }
                    }
                }
                Some(FieldFrequencies {
                    mean,
                    total,
                    values,
                })
            })
            .collect();
        Frequencies { fields }
    }
}

/// Prepares both sides of a match. Errors: every problem in the spec.
pub fn prepare(spec: &MatchSpec, left: &Table, right: &Table) -> Result<Sides, Vec<SpecError>> {
    prepare_with(spec, left, right, None)
}

/// [`prepare`], weighing values by `known` frequencies (those of an
/// earlier match) for the fields it has, instead of counting these sides.
pub fn prepare_with(
    spec: &MatchSpec,
    left: &Table,
    right: &Table,
    known: Option<&Frequencies>,
) -> Result<Sides, Vec<SpecError>> {
    let mut errors = Vec::new();
    for t in [left, right] {
        let cols: Vec<&str> = t.columns().iter().map(String::as_str).collect();
        for e in spec.check(&cols) {
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let read = |t: &Table| -> Vec<Vec<Option<Value>>> {
        spec.fields
            .iter()
            .map(|f| {
                let c = t.column(&f.name).unwrap_or(usize::MAX);
                (0..t.len())
                    .into_par_iter()
                    .map(|r| t.get(r, c).and_then(|s| Value::read(f.kind, s)))
                    .collect()
            })
            .collect()
    };
    let (lv, rv) = (read(left), read(right));
    let mut tf_mean = Vec::with_capacity(spec.fields.len());
    let (mut lf, mut rf) = (Vec::new(), Vec::new());
    for (i, f) in spec.fields.iter().enumerate() {
        if !f.term_frequency {
            tf_mean.push(None);
            lf.push(Vec::new());
            rf.push(Vec::new());
            continue;
        }
        let (mean, l, r) = match known.and_then(|k| k.fields.get(i)?.as_ref()) {
            Some(k) => {
                // A value the counts do not keep (new, or rare) counts as
                // often as these sides hold it, out of the counted total:
                // what a full count would find for a value only they hold.
                let mut here: FxHashMap<&str, u32> = FxHashMap::default();
                for v in lv[i].iter().chain(&rv[i]).flatten() {
                    *here.entry(&v.norm).or_default() += 1;
                }
                let total = k.total.max(1.0);
                let look = |side: &[Option<Value>]| -> Vec<f32> {
                    side.iter()
                        .map(|v| match v {
                            Some(v) => k.values.get(&*v.norm).copied().unwrap_or_else(|| {
                                (f64::from(here.get(&*v.norm).copied().unwrap_or(0)) / total) as f32
                            }),
                            None => 0.0,
                        })
                        .collect()
                };
                (k.mean, look(&lv[i]), look(&rv[i]))
            }
            None => frequencies(&lv[i], &rv[i]),
        };
        tf_mean.push(Some(mean));
        lf.push(l);
        rf.push(r);
    }
    Ok(Sides {
        left: Prepared {
            values: lv,
            freq: lf,
            rows: left.len(),
        },
        right: Prepared {
            values: rv,
            freq: rf,
            rows: right.len(),
        },
        tf_mean,
    })
}

/// Each value's frequency over both sides, and the chance that a random
/// pair agrees (sum over values of its frequency on each side).
fn frequencies(left: &[Option<Value>], right: &[Option<Value>]) -> (f64, Vec<f32>, Vec<f32>) {
    let mut counts: FxHashMap<&str, (u32, u32)> = FxHashMap::default();
    for v in left.iter().flatten() {
        counts.entry(&v.norm).or_default().0 += 1;
    }
    for v in right.iter().flatten() {
        counts.entry(&v.norm).or_default().1 += 1;
    }
    let nl = left.iter().flatten().count().max(1) as f64;
    let nr = right.iter().flatten().count().max(1) as f64;
    // Summed in value order: the same data gives the same bits.
    let mut per_value: Vec<(&str, (u32, u32))> = counts.iter().map(|(k, v)| (*k, *v)).collect();
    per_value.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mean: f64 = per_value
        .iter()
        .map(|(_, (l, r))| (*l as f64 / nl) * (*r as f64 / nr))
        .sum();
    let freq = |side: &[Option<Value>]| -> Vec<f32> {
        side.iter()
            .map(|v| match v {
                Some(v) => counts
                    .get(&*v.norm)
                    .map_or(0.0, |(l, r)| ((l + r) as f64 / (nl + nr)) as f32),
                None => 0.0,
            })
            .collect()
    };
    (mean, freq(left), freq(right))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_by_kind() {
        let v = Value::read(FieldKind::Name, "  O'Brien-Müller ").expect("value");
        assert_eq!(&*v.raw, "O'Brien-Müller");
        assert_eq!(&*v.norm, "obrienmuller");
        assert_eq!(
            Value::read(FieldKind::Exact, " 530-42 18 ").map(|v| v.norm),
            Some("5304218".into())
        );
        assert_eq!(Value::read(FieldKind::Name, "  "), None);
        assert_eq!(Value::read(FieldKind::Name, "--"), None);
        for s in ["19151111", "1915-11-11", "11.11.1915", "11/11/1915"] {
            assert_eq!(
                Value::read(FieldKind::Date, s).and_then(|v| v.date),
                Some([1915, 11, 11]),
                "{s}"
            );
        }
        assert_eq!(
            Value::read(FieldKind::Date, "19151311").and_then(|v| v.date),
            Some([1915, 13, 11])
        );
        for s in ["1915111", "nan", "1915-11", "11.11.15", "1915-1x-11"] {
            assert_eq!(Value::read(FieldKind::Date, s), None, "{s}");
        }
    }

    #[test]
    fn frequencies_count_both_sides() {
        let side = |v: &[&str]| -> Vec<Option<Value>> {
            v.iter().map(|s| Value::read(FieldKind::Name, s)).collect()
        };
        let l = side(&["smith", "smith", "zed"]);
        let r = side(&["Smith", "jones"]);
        let (mean, fl, fr) = frequencies(&l, &r);
        assert_eq!(fl, vec![0.6, 0.6, 0.2]);
        assert_eq!(fr, vec![0.6, 0.2]);
        // smith: 2/3 on the left, 1/2 on the right.
        assert!((mean - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn table_pads_rows_and_prepare_reports_unknown_columns() {
        let mut t = Table::new(vec!["a".into(), "b".into()]);
        t.push(vec![Some("x".into())]);
        t.push(vec![Some("1".into()), Some("2".into()), Some("3".into())]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(0, 1), None);
        assert_eq!(t.get(1, 1), Some("2"));
        assert_eq!(
            t.get(0, 2),
            None,
            "past the last column is not the next row"
        );
        assert_eq!(t.get(usize::MAX, 0), None);
        let spec = MatchSpec {
            fields: vec![super::super::spec::FieldSpec::name("c")],
            blocking: vec![],
            thresholds: Default::default(),
        };
        let errors = prepare(&spec, &t, &t).err().unwrap_or_default();
        assert_eq!(errors, vec![SpecError::UnknownField("c".into())]);
    }

    #[test]
    fn known_frequencies_weigh_a_few_records_as_the_whole_match_did() {
        let table = |v: &[&str]| {
            let mut t = Table::new(vec!["sn".into()]);
            for s in v {
                t.push(vec![Some(s.to_string())]);
            }
            t
        };
        let spec = MatchSpec {
            fields: vec![super::super::spec::FieldSpec::name("sn")],
            blocking: vec![],
            thresholds: Default::default(),
        };
        let whole = prepare(
            &spec,
            &table(&["smith", "zed"]),
            &table(&["Smith", "jones", "smith", "brown"]),
        )
        .expect("prepare");
        let kept = whole.frequencies();
        let f = kept.fields[0].as_ref().expect("tf field");
        assert_eq!(f.values.get("smith"), Some(&0.5));
        assert_eq!(f.mean, whole.tf_mean[0].unwrap_or_default());
        // A few records alone, with and without the kept frequencies.
        let few = (table(&["smith", "newname"]), table(&["smith"]));
        let own = prepare(&spec, &few.0, &few.1).expect("prepare");
        assert_ne!(own.left.freq[0][0], 0.5);
        let known = prepare_with(&spec, &few.0, &few.1, Some(&kept)).expect("prepare");
        // "newname" is not kept: once here, out of the six counted.
        assert_eq!(known.left.freq[0], vec![0.5, 1.0 / 6.0]);
        assert_eq!(known.right.freq[0], vec![0.5]);
        assert_eq!(known.tf_mean, whole.tf_mean);
        // Stored and read back, the same.
        let text = serde_json::to_string(&kept).expect("json");
        assert_eq!(serde_json::from_str::<Frequencies>(&text).ok(), Some(kept));
    }
}
