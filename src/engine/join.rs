//! Join: finding the metaverse object an unjoined connector-space object
//! belongs to. Each join rule's metaverse side is a key spec (attributes and
//! normalisations); metaverse objects are indexed by spec, and an object's
//! key is looked up. Rules are tried in order; the first rule that finds any
//! candidate decides: one candidate joins, several are an ambiguous join that
//! is recorded and never guessed.
//!
//! Indexes hold 64-bit hashes of keys, not the keys: a million identities
//! under three specs would otherwise hold three million strings. Every
//! candidate a hash finds is checked against its real key before it counts.

use crate::expr::Context;
use crate::model::text::{Norm, normalize_into};
use crate::model::{Fnv, Record};
use crate::rules::{Agent, JoinRule};
use rustc_hash::FxHashMap;

/// Parts of a key never contain this, so joined keys cannot collide.
const SEP: char = '\u{1f}';
/// A multi-valued key part multiplies keys; beyond this, the rest are ignored.
const MAX_KEYS: usize = 64;

pub(super) fn hash_key(key: &str) -> u64 {
    let mut h = Fnv::default();
    h.write(key.as_bytes());
    h.finish()
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct KeySpec {
    pub object_type: usize,
    pub parts: Vec<(u32, Vec<Norm>)>,
}

impl KeySpec {
    pub fn of(agent: &Agent, rule: &JoinRule) -> KeySpec {
        KeySpec {
            object_type: agent.object_type,
            parts: rule
                .parts
                .iter()
                .map(|p| (p.mv, p.normalize.clone()))
                .collect(),
        }
    }

    /// Keys of a metaverse object under this spec (none if a part is null).
    pub fn mv_keys(&self, attrs: &Record) -> Vec<String> {
        // The usual case, every part single-valued, builds one string.
        if self.parts.iter().all(|(a, _)| attrs.count(*a) == 1) {
            let mut key = String::with_capacity(48);
            for (i, (a, norms)) in self.parts.iter().enumerate() {
                if i > 0 {
                    key.push(SEP);
                }
                let start = key.len();
                normalize_into(attrs.first(*a).unwrap_or_default(), norms, &mut key);
                if key.len() == start {
                    return Vec::new();
                }
            }
            return vec![key];
        }
        let parts: Vec<Vec<String>> = self
            .parts
            .iter()
            .map(|(attr, norms)| {
                attrs
                    .values(*attr)
                    .map(|v| {
                        let mut s = String::new();
                        normalize_into(v, norms, &mut s);
                        s
                    })
                    .filter(|v| !v.is_empty())
                    .collect()
            })
            .collect();
        combine(parts)
    }

    /// Does the object have this exact key?
    pub fn mv_has_key(&self, attrs: &Record, key: &str) -> bool {
        self.mv_keys(attrs).iter().any(|k| k == key)
    }
}

/// Every combination of one value per part, joined with [`SEP`].
fn combine(parts: Vec<Vec<String>>) -> Vec<String> {
    if parts.iter().any(Vec::is_empty) {
        return Vec::new();
    }
    let mut keys = vec![String::new()];
    for (i, values) in parts.iter().enumerate() {
        let mut next = Vec::with_capacity(keys.len() * values.len());
        for k in &keys {
            for v in values {
                if next.len() >= MAX_KEYS {
                    break;
                }
                let mut key = k.clone();
                if i > 0 {
                    key.push(SEP);
                }
                key.push_str(v);
                next.push(key);
            }
        }
        keys = next;
    }
    keys
}

/// Keys of a connector-space object under a join rule.
pub(super) fn cs_keys(
    rule: &JoinRule,
    attrs: &Record,
    ctx: &Context,
) -> Result<Vec<String>, String> {
    let mut parts = Vec::with_capacity(rule.parts.len());
    for p in &rule.parts {
        let normalize = |v: &str, norms: &[Norm]| {
            let mut s = String::new();
            normalize_into(v, norms, &mut s);
            s
        };
        let values: Vec<String> = match p.cs.as_attr() {
            Some(a) => attrs
                .values(a)
                .map(|v| normalize(v, &p.normalize))
                .collect(),
            None => {
                p.cs.eval(attrs, ctx)
                    .map_err(|e| format!("join rule {:?}: {}", rule.name, e.message))?
                    .to_strings()
                    .iter()
                    .map(|v| normalize(v, &p.normalize))
                    .collect()
            }
        };
        parts.push(values.into_iter().filter(|v| !v.is_empty()).collect());
    }
    Ok(combine(parts))
}

/// Metaverse objects (by position in the engine's list) under one key
/// spec, by key hash. Most keys name one object; the few that name several
/// live in `many`.
#[derive(Debug, Default)]
pub(super) struct JoinIndex {
    one: FxHashMap<u64, u32>,
    many: FxHashMap<u64, Vec<u32>>,
}

const MANY: u32 = u32::MAX;

impl JoinIndex {
    pub fn with_capacity(n: usize) -> JoinIndex {
        let mut one = FxHashMap::default();
        one.reserve(n);
        JoinIndex {
            one,
            many: FxHashMap::default(),
        }
    }

    pub fn insert(&mut self, key: &str, mv: u32) {
        let h = hash_key(key);
        match self.one.get(&h).copied() {
            None => {
                self.one.insert(h, mv);
            }
            Some(x) if x == mv => {}
            Some(MANY) => {
                let list = self.many.entry(h).or_default();
                if !list.contains(&mv) {
                    list.push(mv);
                }
            }
            Some(x) => {
                self.one.insert(h, MANY);
                self.many.insert(h, vec![x, mv]);
            }
        }
    }

    pub fn remove(&mut self, key: &str, mv: u32) {
        let h = hash_key(key);
        match self.one.get(&h).copied() {
            Some(MANY) => {
                if let Some(list) = self.many.get_mut(&h) {
                    list.retain(|&m| m != mv);
                    match list.len() {
                        0 => {
                            self.many.remove(&h);
                            self.one.remove(&h);
                        }
                        1 => {
                            let last = list[0];
                            self.many.remove(&h);
                            self.one.insert(h, last);
                        }
                        _ => {}
                    }
                }
            }
            Some(x) if x == mv => {
                self.one.remove(&h);
            }
            _ => {}
        }
    }

    /// Objects whose key may be `key` (same hash); callers check the key.
    pub fn get(&self, key: &str) -> &[u32] {
        let h = hash_key(key);
        match self.one.get(&h) {
            None => &[],
            Some(&MANY) => self.many.get(&h).map(Vec::as_slice).unwrap_or(&[]),
            Some(x) => std::slice::from_ref(x),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    Join { mv: u32, rule: usize, key: String },
    Ambiguous { rule: usize, candidates: Vec<u32> },
    NoMatch,
    Error(String),
}

/// Tries the agent's join rules in order. `eligible` says whether a
/// candidate may take a connector from this agent (it has none yet).
pub(super) fn decide<'m>(
    agent: &Agent,
    attrs: &Record,
    indexes: &[(&KeySpec, &JoinIndex)],
    mv_attrs: &dyn Fn(u32) -> &'m Record,
    eligible: &dyn Fn(u32) -> bool,
    ctx: &Context,
) -> Decision {
    for (i, rule) in agent.joins.iter().enumerate() {
        let keys = match cs_keys(rule, attrs, ctx) {
            Ok(k) => k,
            Err(e) => return Decision::Error(e),
        };
        let mut found: Vec<u32> = Vec::new();
        let mut matched_key = String::new();
        let (spec, index) = indexes[i];
        for k in &keys {
            for &mv in index.get(k) {
                if eligible(mv) && !found.contains(&mv) && spec.mv_has_key(mv_attrs(mv), k) {
                    found.push(mv);
                    if matched_key.is_empty() {
                        matched_key = k.clone();
                    }
                }
            }
        }
        match found.len() {
            0 => continue,
            1 => {
                return Decision::Join {
                    mv: found[0],
                    rule: i,
                    key: matched_key.replace(SEP, " + "),
                };
            }
            _ => {
                found.sort_unstable();
                return Decision::Ambiguous {
                    rule: i,
                    candidates: found,
                };
            }
        }
    }
    Decision::NoMatch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_multiplies_multi_values_and_drops_null_keys() {
        let k = combine(vec![vec!["a".into(), "b".into()], vec!["1".into()]]);
        assert_eq!(k, vec![format!("a{SEP}1"), format!("b{SEP}1")]);
        assert!(combine(vec![vec!["a".into()], vec![]]).is_empty());
    }

    #[test]
    fn index_keeps_each_object_once() {
        let mut ix = JoinIndex::default();
        ix.insert("k", 1);
        ix.insert("k", 1);
        assert_eq!(ix.get("k"), &[1]);
        ix.insert("k", 2);
        ix.insert("k", 3);
        assert_eq!(ix.get("k"), &[1, 2, 3]);
        ix.remove("k", 1);
        ix.remove("k", 3);
        assert_eq!(ix.get("k"), &[2]);
        ix.remove("k", 2);
        assert!(ix.get("k").is_empty());
        assert!(ix.get("other").is_empty());
    }
}
