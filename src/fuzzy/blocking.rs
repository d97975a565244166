//! Blocking: which pairs are compared at all. Each blocking key groups the
//! records of both sides by a value derived from their fields (a date, a
//! name's prefix, a phonetic code); pairs that share a group under any key
//! are candidates. All pairs of a million-person metaverse would be 10^12
//! comparisons; a few keys that each miss different typos keep recall and
//! compare only a few pairs per record.
//!
//! Groups are found by a 64-bit hash of the key: a collision only adds
//! candidates, which scoring then rejects.

use super::prepare::{Prepared, Sides, Value};
use super::spec::{BlockKey, MatchSpec, Transform};
use rayon::prelude::*;
use rphonetic::{DoubleMetaphone, Encoder, Soundex};
use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::Xxh3;

use super::compare::Pair;

/// Parts of a key never contain this.
const SEP: u8 = 0x1f;

struct Encoders {
    soundex: Soundex,
    metaphone: DoubleMetaphone,
}

impl Encoders {
    fn new() -> Encoders {
        Encoders {
            soundex: Soundex::default(),
            metaphone: DoubleMetaphone::default(),
        }
    }

    /// The part of a key a value gives, or None (no key).
    fn part(&self, v: &Value, t: Transform) -> Option<String> {
        let s = match t {
            Transform::Whole => v.norm.to_string(),
            Transform::Prefix(n) => v.norm.chars().take(n as usize).collect(),
            Transform::Soundex => self.soundex.encode(&v.norm),
            Transform::Metaphone => self.metaphone.encode(&v.norm),
            Transform::Year => v.date.map(|d| d[0].to_string())?,
        };
        (!s.is_empty()).then_some(s)
    }
}

/// Each row's key hash under `key` (None when a part is null or empty).
/// The text of a blocking key on one record, field values as written
/// (`(kind, value)` per part, in the key's order), exactly as blocking
/// reads them: the store keeps these so a delta sync finds candidates
/// without loading every identity. None when a part is missing.
pub fn key_text(
    parts: &[(super::spec::FieldKind, Transform)],
    values: &[Option<&str>],
) -> Option<String> {
    let enc = Encoders::new();
    let mut out = String::new();
    for (&(kind, t), v) in parts.iter().zip(values) {
        let v = Value::read(kind, (*v)?)?;
        out.push_str(&enc.part(&v, t)?);
        out.push(SEP as char);
    }
    (parts.len() == values.len() && !parts.is_empty()).then_some(out)
}

fn keys(spec: &MatchSpec, key: &BlockKey, side: &Prepared) -> Vec<Option<u64>> {
    let parts: Vec<(usize, Transform)> = key
        .parts
        .iter()
        .filter_map(|p| Some((spec.field_index(&p.field)?, p.transform)))
        .collect();
    if parts.len() != key.parts.len() || parts.is_empty() {
        return vec![None; side.len()];
    }
    (0..side.len() as u32)
        .into_par_iter()
        .map_init(Encoders::new, |enc, row| {
            let mut h = Xxh3::new();
            for &(f, t) in &parts {
                let part = enc.part(side.value(f, row)?, t)?;
                h.update(part.as_bytes());
                h.update(&[SEP]);
            }
            Some(h.digest())
        })
        .collect()
}

/// Right-side rows by key hash, each list in row order.
fn groups(keys: &[Option<u64>]) -> FxHashMap<u64, Vec<u32>> {
    let mut g: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
    for (row, k) in keys.iter().enumerate() {
        if let Some(k) = k {
            g.entry(*k).or_default().push(row as u32);
        }
    }
    g
}

/// Candidate pairs: the union over keys, each pair once, sorted by left
/// then right row (so the same inputs give the same list on any number of
/// threads).
pub fn candidates(spec: &MatchSpec, sides: &Sides) -> Vec<Pair> {
    let mut packed: Vec<u64> = Vec::new();
    for key in &spec.blocking {
        let right = groups(&keys(spec, key, &sides.right));
        let left = keys(spec, key, &sides.left);
        let found: Vec<u64> = left
            .par_iter()
            .enumerate()
            .flat_map_iter(|(l, k)| {
                let rows = k.and_then(|k| right.get(&k)).map_or(&[][..], Vec::as_slice);
                rows.iter().map(move |&r| ((l as u64) << 32) | r as u64)
            })
            .collect();
        packed.extend(found);
    }
    packed.par_sort_unstable();
    packed.dedup();
    packed
        .into_iter()
        .map(|p| ((p >> 32) as u32, p as u32))
        .collect()
}

/// Comparisons one blocking key produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEstimate {
    pub key: String,
    /// Sum over key values of left count times right count.
    pub pairs: u64,
    /// The largest of those products: one value that dominates (a common
    /// surname with no other part) shows here.
    pub largest_block: u64,
}

/// How many comparisons each blocking key produces, counted from group
/// sizes without forming a pair. Their sum bounds the candidates (pairs
/// found by several keys are compared once).
pub fn estimate(spec: &MatchSpec, sides: &Sides) -> Vec<KeyEstimate> {
    spec.blocking
        .iter()
        .map(|key| {
            let mut counts: FxHashMap<u64, (u64, u64)> = FxHashMap::default();
            for k in keys(spec, key, &sides.left).into_iter().flatten() {
                counts.entry(k).or_default().0 += 1;
            }
            for k in keys(spec, key, &sides.right).into_iter().flatten() {
                counts.entry(k).or_default().1 += 1;
            }
            let products = counts.values().map(|(l, r)| l * r);
            KeyEstimate {
                key: key.name.clone(),
                pairs: products.clone().sum(),
                largest_block: products.max().unwrap_or(0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::prepare::{Table, prepare};
    use super::super::spec::FieldSpec;
    use super::*;

    fn table(rows: &[(&str, &str)]) -> Table {
        let mut t = Table::new(vec!["surname".into(), "dob".into()]);
        for (s, d) in rows {
            t.push(vec![Some((*s).into()), Some((*d).into())]);
        }
        t
    }

    fn spec(blocking: Vec<BlockKey>) -> MatchSpec {
        MatchSpec {
            fields: vec![FieldSpec::name("surname"), FieldSpec::date("dob")],
            blocking,
            thresholds: Default::default(),
        }
    }

    #[test]
    fn union_of_keys_each_pair_once() {
        let left = table(&[
            ("smith", "19800101"),
            ("smyth", "19900505"),
            ("jones", "19800101"),
        ]);
        let right = table(&[("smith", "19800101"), ("brown", "19900505"), ("", "")]);
        let spec = spec(vec![
            BlockKey::new("dob", &[("dob", Transform::Whole)]),
            BlockKey::new("soundex", &[("surname", Transform::Soundex)]),
            BlockKey::new(
                "prefix+year",
                &[("surname", Transform::Prefix(2)), ("dob", Transform::Year)],
            ),
        ]);
        let sides = prepare(&spec, &left, &right).expect("prepare");
        // (0,0) is found by all three keys and listed once; smyth sounds
        // like smith; a null surname and date give no key.
        assert_eq!(
            candidates(&spec, &sides),
            vec![(0, 0), (1, 0), (1, 1), (2, 0)]
        );
        let est = estimate(&spec, &sides);
        let pairs: Vec<(&str, u64, u64)> = est
            .iter()
            .map(|e| (e.key.as_str(), e.pairs, e.largest_block))
            .collect();
        assert_eq!(
            pairs,
            vec![("dob", 3, 2), ("soundex", 2, 2), ("prefix+year", 1, 1)]
        );
    }

    #[test]
    fn key_parts_are_not_concatenated_ambiguously() {
        let left = table(&[("ab", "19800101")]);
        let right = table(&[("a", "19800101")]);
        // "ab"+"1980" must not meet "a"+"b1980": parts are separated.
        let spec = spec(vec![BlockKey::new(
            "k",
            &[("surname", Transform::Whole), ("dob", Transform::Year)],
        )]);
        let sides = prepare(&spec, &left, &right).expect("prepare");
        assert!(candidates(&spec, &sides).is_empty());
        assert_eq!(estimate(&spec, &sides)[0].pairs, 0);
    }

    #[test]
    fn phonetic_keys_meet_spellings_that_sound_alike() {
        let left = table(&[("Phillips", "19800101"), ("Meyer", "19800101")]);
        let right = table(&[("filips", "19700101"), ("Maier", "19700101")]);
        let spec = spec(vec![BlockKey::new(
            "metaphone",
            &[("surname", Transform::Metaphone)],
        )]);
        let sides = prepare(&spec, &left, &right).expect("prepare");
        assert_eq!(candidates(&spec, &sides), vec![(0, 0), (1, 1)]);
    }

    #[test]
    fn stored_key_text_agrees_with_blocking() {
        use super::super::spec::FieldKind::{Date, Name};
        let k = |s: &str, d: &str| {
            key_text(
                &[(Name, Transform::Metaphone), (Date, Transform::Year)],
                &[Some(s), Some(d)],
            )
        };
        assert_eq!(k("Phillips", "1980-01-01"), k("filips", "01.02.1980"));
        assert_ne!(k("Phillips", "1980-01-01"), k("filips", "1981-01-01"));
        assert_eq!(k("Phillips", "nan"), None, "an unreadable date has no key");
        assert_eq!(key_text(&[(Name, Transform::Whole)], &[None]), None);
        assert_eq!(key_text(&[], &[]), None);
    }

    #[test]
    fn no_keys_no_candidates() {
        let t = table(&[("smith", "19800101")]);
        let spec = spec(vec![]);
        let sides = prepare(&spec, &t, &t).expect("prepare");
        assert!(candidates(&spec, &sides).is_empty());
    }
}
