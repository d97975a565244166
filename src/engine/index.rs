//! Lookup keys of metaverse objects, as the store keeps them: every join
//! rule's metaverse side, every attribute a `SelectUniqueValue` flow fills,
//! every attribute a reference is looked up by, and every reference
//! attribute itself (to find who points at an identity). A delta sync loads
//! only the identities a change can reach; these keys tell it which ones.
//!
//! A key is stored as (kind, hash): the kind names the key spec (type,
//! attributes, normalisations) by a hash of its text, so the same rules
//! give the same kinds on every run, and a rule change gives new kinds,
//! which the store notices and a full sync rebuilds.

use super::fuzzy_join::BlockSpec;
use super::join::{KeySpec, hash_key};
use crate::model::{Fnv, Record};
use crate::rules::{AttrType, MvType, RuleSet};

/// A lookup key as stored: its kind and the hash of its text mixed into one
/// 64-bit value. Keys of two kinds may collide; that only loads an identity
/// that was not needed, since every candidate is checked against its values.
pub type Key = u64;

pub(super) fn key(kind: i64, text: &str) -> Key {
    (kind as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ hash_key(text)
}

/// Who holds a key in the store: what a partial (delta) sync asks about
/// identities it did not load. Answers may include identities it did load;
/// the sync ignores those, since its own view of them is newer.
pub trait KeyLookup: Sync {
    fn holders(&self, key: Key) -> Vec<crate::model::MvId>;

    /// Says which keys are about to be asked, so a lookup can answer them
    /// in one pass instead of one question each.
    fn prefetch(&self, _keys: &[Key]) {}
}

#[derive(Debug, Clone)]
pub struct KeyKinds {
    specs: Vec<(KeySpec, i64)>,
    /// Fuzzy join rules' blocking keys.
    blocks: Vec<(BlockSpec, i64)>,
    /// The spec text of each kind, sorted: what a store's index was built for.
    signature: String,
}

impl KeyKinds {
    pub fn of(rules: &RuleSet) -> KeyKinds {
        let mut specs: Vec<KeySpec> = Vec::new();
        let plain = |ty: usize, attr: u32| KeySpec {
            object_type: ty,
            parts: vec![(attr, Vec::new())],
        };
        for a in &rules.agents {
            for j in &a.joins {
                specs.push(KeySpec::of(a, j));
            }
            for f in &a.flows {
                if f.expr.needs_unique() {
                    specs.push(plain(a.object_type, f.target));
                }
                if let Some(r) = f.reference {
                    specs.push(plain(a.object_type, r));
                }
            }
        }
        for (ty, t) in rules.metaverse.types.iter().enumerate() {
            for (ai, attr) in t.attrs.iter().enumerate() {
                if attr.kind == AttrType::Reference {
                    specs.push(plain(ty, ai as u32));
                }
            }
        }
        let mut named: Vec<(String, KeySpec)> = specs
            .into_iter()
            .map(|s| (spec_text(rules, &s), s))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named.dedup_by(|a, b| a.0 == b.0);
        let mut blocks: Vec<(String, BlockSpec)> = rules
            .agents
            .iter()
            .filter_map(|a| Some((a.object_type, a.fuzzy.as_ref()?)))
            .flat_map(|(ty, f)| BlockSpec::of(ty, f))
            .map(|b| (block_text(rules, &b), b))
            .collect();
        blocks.sort_by(|a, b| a.0.cmp(&b.0));
        blocks.dedup_by(|a, b| a.0 == b.0);
        let mut wake = Vec::new();
        for t in &rules.metaverse.types {
            for &a in &t.wake_on {
                wake.push(format!("wake:{}.{}", t.name, t.schema.name(a)));
            }
            if let Some(d) = t.retain_days {
                wake.push(format!("retain:{}:{d}", t.name));
            }
        }
        let signature = named
            .iter()
            .map(|(t, _)| t.as_str())
            .chain(blocks.iter().map(|(t, _)| t.as_str()))
            .chain(wake.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("\n");
        KeyKinds {
            specs: named
                .into_iter()
                .map(|(text, s)| (s, kind_id(&text)))
                .collect(),
            blocks: blocks
                .into_iter()
                .map(|(text, b)| (b, kind_id(&text)))
                .collect(),
            signature,
        }
    }

    /// What an index built for these rules covers; a store whose index was
    /// built for another signature needs a full sync.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    pub(super) fn kind(&self, spec: &KeySpec) -> Option<i64> {
        self.specs.iter().find(|(s, _)| s == spec).map(|(_, k)| *k)
    }

    /// The kind of the plain (un-normalised) key on one attribute.
    pub(super) fn plain_kind(&self, ty: usize, attr: u32) -> Option<i64> {
        self.specs
            .iter()
            .find(|(s, _)| {
                s.object_type == ty && s.parts.len() == 1 && s.parts[0] == (attr, Vec::new())
            })
            .map(|(_, k)| *k)
    }

    /// The keys an unjoined connector-space object of `agent` would look
    /// for under each of the agent's join rules: a delta sync loads the
    /// identities holding them before it plans.
    pub fn join_probes(
        &self,
        rules: &RuleSet,
        agent: usize,
        anchor: &str,
        attrs: &Record,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Key> {
        let Some(a) = rules.agents.get(agent) else {
            return Vec::new();
        };
        let object_key = format!("{}/{anchor}", a.name);
        let ctx = crate::expr::Context {
            now,
            object_key: &object_key,
            unique: None,
        };
        let mut out = Vec::new();
        for rule in &a.joins {
            let Some(kind) = self.kind(&KeySpec::of(a, rule)) else {
                continue;
            };
            // A rule that fails on this object fails again in the plan, which says so.
            if let Ok(keys) = super::join::cs_keys(rule, attrs, &ctx) {
                out.extend(keys.iter().map(|k| key(kind, k)));
            }
        }
        out.extend(self.fuzzy_probes(a, attrs, &ctx));
        out
    }

    /// The blocking keys an unjoined object of `agent` shares with the
    /// identities its fuzzy rule would compare it with.
    pub(super) fn fuzzy_probes(
        &self,
        agent: &crate::rules::Agent,
        attrs: &Record,
        ctx: &crate::expr::Context,
    ) -> Vec<Key> {
        let Some(rule) = &agent.fuzzy else {
            return Vec::new();
        };
        let values = super::fuzzy_join::cs_values(rule, attrs, ctx);
        BlockSpec::of(agent.object_type, rule)
            .iter()
            .filter_map(|b| {
                let kind = self.blocks.iter().find(|(s, _)| s == b)?.1;
                Some(key(kind, &b.cs_key(&values)?))
            })
            .collect()
    }

    /// The keys under which identities pointing at identity `id` (of type
    /// `ty`) are found: a delta sync loads them ahead when it expects `id`
    /// to lose a connector, and so perhaps a value they are looked up by.
    pub fn referrer_probes(&self, rules: &RuleSet, ty: usize, id: crate::model::MvId) -> Vec<Key> {
        let Some(t) = rules.metaverse.types.get(ty) else {
            return Vec::new();
        };
        let text = id.to_string();
        t.attrs
            .iter()
            .enumerate()
            .filter(|(_, a)| a.kind == AttrType::Reference)
            .filter_map(|(ai, _)| self.plain_kind(ty, ai as u32))
            .map(|kind| key(kind, &text))
            .collect()
    }

    /// Every key of an object of type `ty`, sorted.
    pub fn keys(&self, ty: usize, attrs: &Record) -> Vec<Key> {
        let mut out = Vec::new();
        for (spec, kind) in &self.specs {
            if spec.object_type == ty {
                for k in spec.mv_keys(attrs) {
                    out.push(key(*kind, &k));
                }
            }
        }
        for (b, kind) in &self.blocks {
            if b.object_type == ty
                && let Some(k) = b.mv_key(attrs)
            {
                out.push(key(*kind, &k));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn spec_text(rules: &RuleSet, spec: &KeySpec) -> String {
    let t = &rules.metaverse.types[spec.object_type];
    let parts: Vec<String> = spec
        .parts
        .iter()
        .map(|(a, norms)| format!("{}{norms:?}", t.schema.name(*a)))
        .collect();
    format!("key:{}:{}", t.name, parts.join("+"))
}

fn block_text(rules: &RuleSet, b: &BlockSpec) -> String {
    let t = &rules.metaverse.types[b.object_type];
    let parts: Vec<String> = b
        .parts
        .iter()
        .map(|(a, kind, tr)| format!("{}/{kind:?}/{tr:?}", t.schema.name(*a)))
        .collect();
    format!("block:{}:{}", t.name, parts.join("+"))
}

/// Kinds are stored as SQLite integers: 63 bits, never negative.
fn kind_id(text: &str) -> i64 {
    let mut h = Fnv::default();
    h.write(text.as_bytes());
    (h.finish() >> 1) as i64
}

/// The day a retention that began on `since` ends (`YYYY-MM-DD`); none
/// when the type keeps nothing or the day cannot be read.
pub fn retention_end(since: &str, days: Option<u32>) -> Option<String> {
    let start = chrono::NaiveDate::parse_from_str(since.get(..10)?, "%Y-%m-%d").ok()?;
    let end = start.checked_add_days(chrono::Days::new(u64::from(days?)))?;
    Some(end.format("%Y-%m-%d").to_string())
}

/// The days after `today` on which an identity must be looked at again:
/// its `wake_on` dates, and the end of its retention.
pub fn due_days(
    t: &MvType,
    attrs: &Record,
    retained_since: Option<&str>,
    today: &str,
) -> Vec<Box<str>> {
    let mut out: Vec<Box<str>> = Vec::new();
    for &a in &t.wake_on {
        for v in attrs.values(a) {
            if let Some(day) = v.get(..10)
                && day > today
            {
                out.push(day.into());
            }
        }
    }
    if let Some(end) = retained_since.and_then(|s| retention_end(s, t.retain_days)) {
        out.push(end.into_boxed_str());
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The keys to add and remove when an object's attributes go from `old` to
/// `new` (either may be absent), both sorted.
pub fn diff(old: &[Key], new: &[Key]) -> (Vec<Key>, Vec<Key>) {
    let adds = new
        .iter()
        .filter(|k| old.binary_search(k).is_err())
        .copied()
        .collect();
    let removes = old
        .iter()
        .filter(|k| new.binary_search(k).is_err())
        .copied()
        .collect();
    (adds, removes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_keeps_what_both_have() {
        let (adds, removes) = diff(&[1, 2, 5], &[2, 6]);
        assert_eq!(adds, vec![6]);
        assert_eq!(removes, vec![1, 5]);
    }

    #[test]
    fn retention_ends_days_later() {
        assert_eq!(
            retention_end("2026-01-30", Some(30)).as_deref(),
            Some("2026-03-01")
        );
        assert_eq!(retention_end("2026-01-30", None), None);
        assert_eq!(retention_end("garbage", Some(3)), None);
    }

    #[test]
    fn kind_ids_are_stable_and_positive() {
        assert_eq!(
            kind_id("key:person:employeeId[]"),
            kind_id("key:person:employeeId[]")
        );
        assert_ne!(
            kind_id("key:person:employeeId[]"),
            kind_id("key:person:mail[]")
        );
        assert!(kind_id("x") >= 0);
    }
}
