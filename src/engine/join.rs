//! Join: finding the metaverse object an unjoined connector-space object
//! belongs to. Each join rule's metaverse side is a key spec (attributes and
//! normalisations); metaverse objects are indexed by spec, and an object's
//! key is looked up. Rules are tried in order; the first rule that finds any
//! candidate decides: one candidate joins, several are an ambiguous join that
//! is recorded and never guessed.

use crate::expr::Context;
use crate::model::Record;
use crate::model::text::{Norm, normalize};
use crate::rules::{Agent, JoinRule};
use rustc_hash::FxHashMap;

/// Parts of a key never contain this, so joined keys cannot collide.
const SEP: char = '\u{1f}';
/// A multi-valued key part multiplies keys; beyond this, the rest are ignored.
const MAX_KEYS: usize = 64;

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
        let parts: Vec<Vec<String>> = self
            .parts
            .iter()
            .map(|(attr, norms)| {
                attrs
                    .values(*attr)
                    .map(|v| normalize(v, norms))
                    .filter(|v| !v.is_empty())
                    .collect()
            })
            .collect();
        combine(parts)
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

/// Metaverse objects (by position in the engine's list) under one key spec.
#[derive(Debug, Default)]
pub(super) struct JoinIndex {
    map: FxHashMap<Box<str>, Vec<u32>>,
}

impl JoinIndex {
    pub fn insert(&mut self, key: &str, mv: u32) {
        let list = self.map.entry(key.into()).or_default();
        if !list.contains(&mv) {
            list.push(mv);
        }
    }

    pub fn remove(&mut self, key: &str, mv: u32) {
        if let Some(list) = self.map.get_mut(key) {
            list.retain(|&m| m != mv);
            if list.is_empty() {
                self.map.remove(key);
            }
        }
    }

    pub fn get(&self, key: &str) -> &[u32] {
        self.map.get(key).map(Vec::as_slice).unwrap_or(&[])
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
pub(super) fn decide(
    agent: &Agent,
    attrs: &Record,
    indexes: &[&JoinIndex],
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
        for k in &keys {
            for &mv in indexes[i].get(k) {
                if eligible(mv) && !found.contains(&mv) {
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
        ix.insert("k", 2);
        assert_eq!(ix.get("k"), &[1, 2]);
        ix.remove("k", 1);
        ix.remove("k", 2);
        assert!(ix.get("k").is_empty());
    }
}
