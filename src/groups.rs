//! Groups from org data: after each sync, the identities it changed are put
//! in their group under each `[[metaverse.groups]]` rule (one group per
//! distinct key: a department, `all-employees`, `contractors`), and the
//! groups whose members changed are written as metaverse objects with their
//! `member` references. Targets then provision them like any other object.

use crate::app::{App, Result};
use crate::engine::truthy;
use crate::export::{load_of_type, to_evaluate};
use crate::expr::Context;
use crate::model::json::{lineage_to_json, record_to_json};
use crate::model::{MvId, Record, RunId};
use crate::rules::GroupRule;
use crate::store::NewChange;
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct GroupCounts {
    pub evaluated: u64,
    pub memberships_changed: u64,
    pub groups_created: u64,
    pub groups_updated: u64,
    pub groups_deleted: u64,
}

/// Group attribute values a member gives (`set`).
type SetValues = Vec<(u32, Vec<String>)>;

/// The group an identity belongs in under `g`, if any.
fn group_key(g: &GroupRule, mv: &Record, ctx: &Context) -> Option<String> {
    if let Some(w) = &g.when
        && !w.eval(mv, ctx).map(|v| truthy(&v)).unwrap_or(false)
    {
        return None;
    }
    g.key
        .eval(mv, ctx)
        .ok()
        .and_then(|v| v.to_strings().into_iter().next())
}

/// The group attributes a member gives (`set`).
fn group_set(g: &GroupRule, mv: &Record, ctx: &Context) -> SetValues {
    g.set
        .iter()
        .map(|(a, e)| {
            (
                *a,
                e.eval(mv, ctx).map(|v| v.to_strings()).unwrap_or_default(),
            )
        })
        .collect()
}

/// The group rules over object type `ty`, in rule order.
fn rules_over(groups: &[GroupRule], ty: usize) -> Vec<usize> {
    (0..groups.len())
        .filter(|&gi| groups[gi].members == ty)
        .collect()
}

/// The group of identity `id` (values `r`) under each of `rules`, in
/// order: its values are visited once for all the rules, its context's
/// key written into `key`.
fn groups_of<'g>(
    rules: impl IntoIterator<Item = &'g GroupRule>,
    id: MvId,
    r: &Record,
    now: DateTime<Utc>,
    key: &mut String,
) -> Vec<Option<String>> {
    in_context(key, id, now, |ctx| {
        rules.into_iter().map(|g| group_key(g, r, ctx)).collect()
    })
}

/// Runs `f` with the expression context of identity `id`, its key
/// written into `key` (one buffer reused across identities).
fn in_context<T>(
    key: &mut String,
    id: MvId,
    now: DateTime<Utc>,
    f: impl FnOnce(&Context) -> T,
) -> T {
    key.clear();
    // Writing into a String cannot fail.
    let _ = std::fmt::Write::write_fmt(key, format_args!("mv/{id}"));
    f(&Context {
        now,
        object_key: key,
        unique: None,
    })
}

/// What one rule's pass found: who joins and leaves which group.
#[derive(Default)]
struct Found {
    /// Groups someone joined, with the lowest-id one to join each: the
    /// group takes its values (`set`).
    joined: BTreeMap<String, MvId>,
    /// The values each joined group takes from that identity.
    sets: BTreeMap<String, SetValues>,
    /// Groups someone left.
    left: BTreeSet<String>,
    moves: Vec<(MvId, Option<String>)>,
    counts: GroupCounts,
}

/// Group memberships read ahead, on another connection while a sync
/// writes (the sync never writes them): for each identity in `ids`, its
/// group under each rule, from `keys[rule index]`.
#[derive(Default)]
pub struct OldKeys {
    ids: rustc_hash::FxHashSet<MvId>,
    keys: Vec<FxHashMap<MvId, String>>,
}

impl OldKeys {
    /// The groups of `ids` under every group rule, as the store holds them.
    pub fn read(
        store: &crate::store::Store,
        rules: &crate::rules::RuleSet,
        ids: &[MvId],
    ) -> crate::store::Result<OldKeys> {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let keys = rules
            .metaverse
            .groups
            .iter()
            .map(|g| Ok(store.group_keys(&g.name, &sorted)?.into_iter().collect()))
            .collect::<crate::store::Result<_>>()?;
        Ok(OldKeys {
            ids: sorted.into_iter().collect(),
            keys,
        })
    }

    /// The groups of `chunk` under rule `gi`: read ahead where they were,
    /// from the store for the rest.
    fn of(
        &self,
        store: &crate::store::Store,
        rule: &GroupRule,
        gi: usize,
        chunk: &[MvId],
    ) -> crate::store::Result<FxHashMap<MvId, String>> {
        let (ahead, unread): (Vec<MvId>, Vec<MvId>) =
            chunk.iter().partition(|id| self.ids.contains(id));
        // No statement runs for an empty list.
        let mut old: FxHashMap<MvId, String> =
            store.group_keys(&rule.name, &unread)?.into_iter().collect();
        if let Some(keys) = self.keys.get(gi) {
            old.extend(
                ahead
                    .iter()
                    .filter_map(|id| keys.get(id).map(|k| (*id, k.clone()))),
            );
        }
        Ok(old)
    }
}

/// The groups of the identities a sync wrote, under every group rule over
/// their type, worked out from the values as written on a thread of its
/// own while the sync writes its links and lookup keys (one core writes
/// then, the other had nothing to do), instead of after the commit.
#[derive(Default)]
pub struct WrittenKeys {
    /// Per group rule, the distinct keys found (an identity's entry points
    /// into these: the few groups are not repeated a million times).
    names: Vec<Vec<String>>,
    /// Per group rule, its place among the rules over its type.
    place: Vec<usize>,
    /// Per identity: its object type and its group under each rule over
    /// that type, in rule order ([`NO_GROUP`] for none).
    of: FxHashMap<MvId, (usize, Box<[u32]>)>,
}

/// An identity in no group under a rule.
const NO_GROUP: u32 = u32::MAX;

impl WrittenKeys {
    /// Evaluates every group rule over each identity of `written`.
    pub fn compute(
        rules: &crate::rules::RuleSet,
        written: crate::app::Kept,
        now: DateTime<Utc>,
    ) -> WrittenKeys {
        let groups = &rules.metaverse.groups;
        let over: Vec<Vec<usize>> = (0..rules.metaverse.types.len())
            .map(|t| rules_over(groups, t))
            .collect();
        let mut place = vec![0; groups.len()];
        for list in &over {
            for (n, &gi) in list.iter().enumerate() {
                place[gi] = n;
            }
        }
        let mut names: Vec<Vec<String>> = groups.iter().map(|_| Vec::new()).collect();
        let mut index: Vec<FxHashMap<String, u32>> =
            groups.iter().map(|_| FxHashMap::default()).collect();
        let mut of = FxHashMap::default();
        of.reserve(written.len());
        let mut key = String::new();
        for (id, ty, record) in written {
            let Some(list) = over.get(ty) else {
                continue;
            };
            let found = groups_of(
                list.iter().map(|&gi| &groups[gi]),
                id,
                &record,
                now,
                &mut key,
            );
            let found: Box<[u32]> = list
                .iter()
                .zip(found)
                .map(|(&gi, k)| match k {
                    None => NO_GROUP,
                    Some(k) => *index[gi].entry(k).or_insert_with_key(|k| {
                        names[gi].push(k.clone());
                        names[gi].len() as u32 - 1
                    }),
                })
                .collect();
            of.insert(id, (ty, found));
        }
        WrittenKeys { names, place, of }
    }

    /// Whether the sync wrote `id` (its groups are known here).
    fn wrote(&self, id: MvId) -> bool {
        self.of.contains_key(&id)
    }

    /// The group of `id` under rule `gi`: None when the sync did not
    /// write `id` (it must be evaluated), Some(None) when it is in no
    /// group, as an identity of another type is in none.
    fn get(&self, rules: &[GroupRule], id: MvId, gi: usize) -> Option<Option<&str>> {
        let (ty, found) = self.of.get(&id)?;
        if *ty != rules[gi].members {
            return Some(None);
        }
        Some(
            found
                .get(self.place[gi])
                .and_then(|&i| self.names[gi].get(i as usize))
                .map(String::as_str),
        )
    }
}

impl App {
    /// Brings every group rule's groups up to date with the identities
    /// changed since its last pass (all of them when the rules changed).
    /// The identities are read once for all the rules over their type;
    /// those the sync just wrote come from `written`, not the store.
    pub fn compute_groups(
        &mut self,
        run: RunId,
        step: i64,
        now: DateTime<Utc>,
        written: WrittenKeys,
        ahead: OldKeys,
    ) -> Result<BTreeMap<String, GroupCounts>> {
        let started = std::time::Instant::now();
        let App { rules, store, .. } = self;
        let groups = &rules.metaverse.groups;
        let mut found: Vec<Found> = groups.iter().map(|_| Found::default()).collect();
        let member_types: BTreeSet<usize> = groups.iter().map(|g| g.members).collect();
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let (mut listed, mut read, mut memberships) = Default::default();
        for ty in member_types {
            let t_list = std::time::Instant::now();
            let type_name = &rules.metaverse.types[ty].name;
            let of_type = rules_over(groups, ty);
            let mut ids = Vec::new();
            // Rules whose last pass was the same run under the same rules
            // look at the same identities: they are listed once.
            let mut passes = BTreeSet::new();
            for &gi in &of_type {
                let g = &groups[gi];
                let st = store.target_state(&state_key(g))?;
                if st.rules_hash.as_deref() == Some(rules.hash.as_str())
                    && !passes.insert(st.provisioned_run)
                {
                    continue;
                }
                let gone = || store.group_members_gone(&g.name);
                ids.extend(to_evaluate(store, &st, &rules.hash, type_name, &gone)?);
            }
            ids.sort_unstable();
            ids.dedup();
            listed += t_list.elapsed();
            let rules_of: Vec<&GroupRule> = of_type.iter().map(|&gi| &groups[gi]).collect();
            for chunk in ids.chunks(20_000) {
                let t = std::time::Instant::now();
                // What the sync wrote was evaluated while it wrote; the
                // rest is read and evaluated here.
                let unread: Vec<MvId> = chunk
                    .iter()
                    .copied()
                    .filter(|&id| !written.wrote(id))
                    .collect();
                let mvs = match unread.is_empty() {
                    true => FxHashMap::default(),
                    false => load_of_type(store, rules, &unread, type_name)?,
                };
                read += t.elapsed();
                let mut evaluated = evaluate(&rules_of, &unread, &mvs, now).into_iter();
                for &gi in &of_type {
                    let t = std::time::Instant::now();
                    let old = ahead.of(store, &groups[gi], gi, chunk)?;
                    memberships += t.elapsed();
                    let mut fresh = evaluated.next().unwrap_or_default().into_iter();
                    let new: Vec<Option<String>> = chunk
                        .iter()
                        .map(|&id| match written.get(groups, id, gi) {
                            Some(k) => k.map(str::to_string),
                            None => fresh.next().flatten(),
                        })
                        .collect();
                    collect(chunk, new, &old, &mut found[gi]);
                }
            }
            // A group takes the values its rule sets from the lowest-id
            // identity that joined it in this pass: a few identities, read
            // once the pass is over.
            let t = std::time::Instant::now();
            let firsts: BTreeSet<MvId> = of_type
                .iter()
                .filter(|&&gi| !groups[gi].set.is_empty())
                .flat_map(|&gi| found[gi].joined.values().copied())
                .collect();
            if !firsts.is_empty() {
                let firsts: Vec<MvId> = firsts.into_iter().collect();
                let mvs = load_of_type(store, rules, &firsts, type_name)?;
                for &gi in &of_type {
                    let g = &groups[gi];
                    let f = &mut found[gi];
                    for (k, id) in &f.joined {
                        let set = mvs
                            .get(id)
                            .map(|r| {
                                in_context(&mut String::new(), *id, now, |ctx| group_set(g, r, ctx))
                            })
                            .unwrap_or_default();
                        f.sets.insert(k.clone(), set);
                    }
                }
            }
            read += t.elapsed();
        }
        tracing::debug!(
            ms = ms(started.elapsed()),
            listed_ms = ms(listed),
            read_ms = ms(read),
            memberships_ms = ms(memberships),
            "Groups: evaluated."
        );
        // Every rule's pass, the step's counters and the cut of the log of
        // written identities the passes have now read: one transaction.
        let passes: Vec<String> = groups.iter().map(state_key).collect();
        let cut = crate::export::touched_cut(store, rules, run, &passes)?;
        let tx = store.begin()?;
        let mut all = BTreeMap::new();
        for (gi, f) in found.into_iter().enumerate() {
            let t = std::time::Instant::now();
            let c = write_groups(&tx, rules, gi, f, (run, step))?;
            tracing::debug!(
                group = groups[gi].name.as_str(),
                ms = t.elapsed().as_millis() as u64,
                "Groups: written."
            );
            all.insert(groups[gi].name.clone(), c);
        }
        if !all.is_empty() {
            tx.merge_step_counters(step, &serde_json::json!({ "groups": all }))?;
        }
        if let Some(through) = cut {
            tx.prune_touched(through)?;
        }
        let t = std::time::Instant::now();
        tx.commit()?;
        tracing::debug!(ms = t.elapsed().as_millis() as u64, "Groups: committed.");
        Ok(all)
    }
}

/// The key of a group rule's pass in the targets' state (`target_state`),
/// beside the targets': what it last evaluated, under which rules.
pub(crate) fn state_key(g: &GroupRule) -> String {
    format!("group:{}", g.name)
}

/// The group of each identity of `chunk` under each of `rules`
/// ([`groups_of`], with a key buffer per thread: a million identities
/// under three rules made three million keys otherwise): one list per
/// rule, in chunk order.
fn evaluate(
    rules: &[&GroupRule],
    chunk: &[MvId],
    mvs: &FxHashMap<MvId, Record>,
    now: DateTime<Utc>,
) -> Vec<Vec<Option<String>>> {
    let per_id: Vec<Vec<Option<String>>> = chunk
        .par_iter()
        .map_init(String::new, |key, &id| match mvs.get(&id) {
            Some(r) => groups_of(rules.iter().copied(), id, r, now, key),
            None => vec![None; rules.len()],
        })
        .collect();
    let mut by_rule: Vec<Vec<Option<String>>> = rules
        .iter()
        .map(|_| Vec::with_capacity(chunk.len()))
        .collect();
    for keys in per_id {
        for (list, k) in by_rule.iter_mut().zip(keys) {
            list.push(k);
        }
    }
    by_rule
}

/// Records what a rule found for a chunk of identities (`new`: their
/// groups now under it; `old`: before).
fn collect(chunk: &[MvId], new: Vec<Option<String>>, old: &FxHashMap<MvId, String>, f: &mut Found) {
    f.counts.evaluated += chunk.len() as u64;
    for (&id, key) in chunk.iter().zip(new) {
        let before = old.get(&id);
        if before == key.as_ref() {
            continue;
        }
        f.counts.memberships_changed += 1;
        if let Some(b) = before
            && !f.left.contains(b)
        {
            f.left.insert(b.clone());
        }
        // Chunks come in id order: the first joiner is the lowest id.
        if let Some(k) = &key
            && !f.joined.contains_key(k)
        {
            f.joined.insert(k.clone(), id);
        }
        f.moves.push((id, key));
    }
}

/// Writes what a rule's pass found: memberships, and the groups whose
/// members changed.
fn write_groups(
    tx: &crate::store::Tx,
    rules: &crate::rules::RuleSet,
    gi: usize,
    f: Found,
    (run, step): (RunId, i64),
) -> Result<GroupCounts> {
    let g = &rules.metaverse.groups[gi];
    let state_key = state_key(g);
    let group_type = &rules.metaverse.types[g.group_type];
    let Found {
        joined,
        sets,
        left,
        moves,
        mut counts,
    } = f;
    tx.set_group_keys(&g.name, &moves)?;
    let lineage = |attrs: &[u32]| {
        let names: Vec<&str> = attrs.iter().map(|&a| group_type.schema.name(a)).collect();
        lineage_to_json(names.into_iter().map(|n| (n, g.name.as_str(), "", run)))
    };
    let mut next = tx.next_mv_id()?;
    // Every group listed here had a member join or leave: its row is
    // written (at least its run), so targets evaluate it again.
    let keys: BTreeSet<&String> = joined.keys().chain(left.iter()).collect();
    let member_name = group_type.schema.name(g.member_attr);
    for key in keys {
        let set = sets.get(key);
        let existing = tx.group_object(&g.name, key)?;
        // The members are the rows of group_member (written above); the
        // group's own row holds its name and the values the rule sets, so
        // a member joining or leaving writes a small row, whatever the
        // group's size.
        if !tx.group_has_members(&g.name, key)? {
            if let Some((id, _, _)) = existing {
                tx.delete_mv(id)?;
                tx.set_group_object(&g.name, key, None)?;
                tx.add_change(step, &NewChange::identity("group-deleted", id, Some(key)))?;
                counts.groups_deleted += 1;
            }
            continue;
        }
        let held = existing.as_ref().and_then(|(_, json, _)| {
            crate::model::json::record_from_json(json, &group_type.schema).ok()
        });
        let mut b = Record::builder();
        b.push(g.name_attr, key);
        // Values set by the rule: from a member that joined in this
        // pass, else what the group holds.
        for (a, _) in &g.set {
            let vals: Vec<String> = match set {
                Some(s) => s
                    .iter()
                    .find(|(x, _)| x == a)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
                None => held
                    .as_ref()
                    .map(|h| h.values(*a).map(str::to_string).collect())
                    .unwrap_or_default(),
            };
            for v in vals {
                b.push_owned(*a, v);
            }
        }
        let rec = b.build();
        let json = record_to_json(&rec, &group_type.schema);
        let mut attrs: Vec<u32> = rec.attrs().collect();
        attrs.push(g.member_attr);
        attrs.sort_unstable();
        match existing {
            Some((id, _, listed)) => {
                tx.update_mv(id, &group_type.name, &json, &lineage(&attrs), run)?;
                if !listed {
                    tx.set_group_object(&g.name, key, Some((id, member_name)))?;
                }
                tx.add_change(step, &NewChange::identity("group-updated", id, Some(key)))?;
                counts.groups_updated += 1;
            }
            None => {
                let id = next;
                next += 1;
                tx.insert_mv(id, &group_type.name, &json, &lineage(&attrs), run)?;
                tx.set_group_object(&g.name, key, Some((id, member_name)))?;
                tx.add_change(step, &NewChange::identity("group-created", id, Some(key)))?;
                counts.groups_created += 1;
            }
        }
    }
    tx.set_target_provisioned(&state_key, &rules.hash, run)?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> crate::rules::RuleSet {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/example");
        crate::rules::load(&dir, &|_| None).expect("the example's rules")
    }

    fn person(rules: &crate::rules::RuleSet, values: &[(&str, &str)]) -> Record {
        let schema = rules.metaverse.synced_schema("person").expect("person");
        let mut b = Record::builder();
        for (name, v) in values {
            b.push(schema.get(name).expect(name), v);
        }
        b.build()
    }

    #[test]
    fn written_identities_are_grouped_under_every_rule_of_their_type() {
        let rules = example();
        let rule = |name: &str| {
            let gi = rules.metaverse.groups.iter().position(|g| g.name == name);
            gi.expect(name)
        };
        let (departments, employees, contractors) = (
            rule("departments"),
            rule("all-employees"),
            rule("contractors"),
        );
        let ty = rules.metaverse.index("person").expect("person");
        let group_ty = rules.metaverse.index("group").expect("group");
        let active = |dept: &str, kind: &str| {
            let mut v = vec![("lifecycle", "active"), ("employeeType", kind)];
            if !dept.is_empty() {
                v.push(("department", dept));
            }
            person(&rules, &v)
        };
        let written: crate::app::Kept = vec![
            (1, ty, active("Finance", "Employee")),
            (2, ty, active("Finance", "Employee")),
            (3, ty, active("", "Contractor")),
            (
                4,
                ty,
                person(&rules, &[("lifecycle", "leaver"), ("department", "IT")]),
            ),
            (5, group_ty, Record::default()),
        ];
        let keys = WrittenKeys::compute(&rules, written, Utc::now());
        let group = |id: MvId, gi: usize| keys.get(&rules.metaverse.groups, id, gi);

        assert_eq!(group(1, departments), Some(Some("dept-finance")));
        assert_eq!(group(2, departments), Some(Some("dept-finance")));
        assert_eq!(group(1, employees), Some(Some("all-employees")));
        assert_eq!(group(1, contractors), Some(None));
        assert_eq!(group(3, departments), Some(None), "no department");
        assert_eq!(group(3, contractors), Some(Some("contractors")));
        assert_eq!(group(4, departments), Some(None), "a leaver is in none");
        assert_eq!(group(4, employees), Some(None));
        assert_eq!(
            group(5, departments),
            Some(None),
            "another type is no member"
        );
        assert_eq!(group(6, departments), None, "not written: evaluated later");
        // Two people in one department share one name.
        assert_eq!(keys.names[departments], vec!["dept-finance".to_string()]);
    }
}
