//! One sync, start to finish: disconnect what was deleted or left scope,
//! then per agent in sync order join and project the unjoined objects
//! (decisions in parallel, applied in anchor order), recompute the touched
//! metaverse objects so the next agent can join on their values, and at the
//! end recompute everything, resolve references and diff against the store.

use super::flow::{FlowOut, eval_flows};
use super::fuzzy_join::FuzzyDecision;
use super::index::{Key, KeyKinds, KeyLookup, diff};
use super::join::{Decision, JoinIndex, KeySpec, decide};
use super::precedence::{Contribution, LinEntry, compute};
use super::refs::find_cycles;
use super::{Ambiguous, LinkWrite, MvWrite, SyncError, SyncPlan};
use crate::expr::Context;
use crate::model::{MvId, Record, RecordBuilder, RunId};
use crate::rules::{AttrType, Deletion, RuleSet};
use crate::store::{CsRow, MvRow};
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

struct MvState {
    id: MvId,
    ty: usize,
    attrs: Record,
    lin: Vec<LinEntry>,
    /// As loaded from the store; None for objects projected in this sync.
    orig: Option<Box<(Record, Vec<LinEntry>)>>,
    /// (agent, position in that agent's list).
    /// (agent, position in that agent's list), 32 bits each: a million
    /// identities hold these.
    connectors: Vec<(u32, u32)>,
    deleted: bool,
    /// Recomputed since its connectors last changed.
    fresh: bool,
    /// Kept without connectors since this day (`YYYY-MM-DD`).
    retained: Option<Box<str>>,
    /// `retained` as loaded.
    orig_retained: Option<Box<str>>,
}

impl MvState {
    /// Most identities have one or two connectors; a Vec would reserve four.
    fn attach(&mut self, a: usize, i: usize) {
        self.connectors.reserve_exact(1);
        self.connectors.push((a as u32, i as u32));
    }

    fn conns(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.connectors
            .iter()
            .map(|&(a, i)| (a as usize, i as usize))
    }
}

/// A join decision reported only if the last pass makes it again.
enum Deferred {
    Conflict(SyncError),
    Ambiguous(SyncError, Ambiguous),
}

struct CsState {
    row: CsRow,
    mv: Option<usize>,
    changed: bool,
    in_scope: bool,
    /// Ambiguous or failed in this sync: not retried in a later pass.
    settled: bool,
    out: Option<FlowOut>,
    /// Flows over the attributes the last sync saw (pending updates only).
    prev_out: Option<Box<FlowOut>>,
}

/// A sync being prepared: feed it the metaverse and every connector space,
/// then ask for the [`SyncPlan`].
pub struct Sync<'r> {
    rules: &'r RuleSet,
    run: RunId,
    now: DateTime<Utc>,
    next_id: MvId,
    mvs: Vec<MvState>,
    pos: FxHashMap<MvId, usize>,
    cs: Vec<Vec<CsState>>,
    /// Per object type: `[agent][attr]` has a flow.
    flows_into: Vec<Vec<Vec<bool>>>,
    /// Per object type: has an attribute with equal precedence.
    has_equal: Vec<bool>,
    /// Per agent: the attributes its `SelectUniqueValue` flows read, sorted.
    unique_reads: Vec<Vec<u32>>,
    kinds: KeyKinds,
    /// Ambiguous joins and conflicts of the current pass, retried in the next.
    deferred: FxHashMap<(usize, usize), Deferred>,
    /// Write every identity's keys and due dates, not only changes.
    rebuild_keys: bool,
    /// Set when only some identities are loaded (a delta sync): who holds a
    /// key among the others. What it cannot answer without loading them (a
    /// join candidate, a referrer) is recorded as a probe.
    lookup: Option<&'r dyn KeyLookup>,
    /// The run's day, `YYYY-MM-DD`: due dates and retention count in days.
    today: String,
    /// Decisions people made, by connector-space object.
    manual: FxHashMap<crate::model::CsId, super::Manual>,
    /// Term frequencies a delta sync weighs values by (those of the last
    /// full sync), per agent.
    tf_known: FxHashMap<usize, crate::fuzzy::Frequencies>,
    /// Objects of agents with a fuzzy rule do not project yet (see `plan`).
    hold: bool,
    /// Objects that waited in the current pass.
    held: usize,
    /// The identities (positions) joined or projected so far, in order.
    touched_log: Vec<u32>,
    /// Per agent: how long `touched_log` was when its fuzzy rule last
    /// decided, and what it decided for each object. A decision stands
    /// while no identity changed since shares a blocking key with the
    /// object or is among its candidates.
    fuzzy_memo: FxHashMap<usize, (usize, FxHashMap<usize, FuzzyDecision>)>,
    plan: SyncPlan,
}

/// Resident memory in MiB (Linux), for the debug log of each phase.
pub(crate) fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

#[path = "sync_fuzzy.rs"]
mod fuzzy;

/// Objects per slice of parallel work whose results are held until applied.
const CHUNK: usize = 1 << 16;

use super::truthy;

fn key_of(agent: &str, anchor: &str) -> String {
    format!("{agent}/{anchor}")
}

impl<'r> Sync<'r> {
    pub fn new(rules: &'r RuleSet, run: RunId, now: DateTime<Utc>, next_mv_id: MvId) -> Sync<'r> {
        let flows_into = rules
            .metaverse
            .types
            .iter()
            .enumerate()
            .map(|(ti, t)| {
                rules
                    .agents
                    .iter()
                    .map(|a| {
                        let mut v = vec![false; t.attrs.len()];
                        if a.object_type == ti {
                            for f in &a.flows {
                                v[f.target as usize] = true;
                            }
                        }
                        v
                    })
                    .collect()
            })
            .collect();
        Sync {
            rules,
            run,
            now,
            next_id: next_mv_id,
            mvs: Vec::new(),
            pos: FxHashMap::default(),
            cs: rules.agents.iter().map(|_| Vec::new()).collect(),
            flows_into,
            has_equal: rules
                .metaverse
                .types
                .iter()
                .map(|t| {
                    t.attrs
                        .iter()
                        .any(|a| a.precedence == crate::rules::Precedence::Equal)
                })
                .collect(),
            unique_reads: rules
                .agents
                .iter()
                .map(|a| {
                    let mut v: Vec<u32> = a
                        .flows
                        .iter()
                        .filter(|f| f.expr.needs_unique())
                        .flat_map(|f| f.expr.attrs())
                        .collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                })
                .collect(),
            kinds: KeyKinds::of(rules),
            deferred: FxHashMap::default(),
            rebuild_keys: false,
            lookup: None,
            today: now.format("%Y-%m-%d").to_string(),
            manual: FxHashMap::default(),
            tf_known: FxHashMap::default(),
            hold: false,
            held: 0,
            touched_log: Vec::new(),
            fuzzy_memo: FxHashMap::default(),
            plan: SyncPlan {
                disconnects_by_agent: vec![0; rules.agents.len()],
                ..SyncPlan::default()
            },
        }
    }

    /// The decisions people made about connector-space objects: they come
    /// before the join rules.
    pub fn set_manual(&mut self, manual: FxHashMap<crate::model::CsId, super::Manual>) {
        self.manual = manual;
    }

    /// Marks this sync as covering only the identities fed to it, with
    /// `lookup` to ask about the others (a unique value's holder, a
    /// reference's target); see [`SyncPlan::probes`] for the rest.
    /// The term frequencies of the last full sync, per agent: a delta sync
    /// weighs values by them, as that sync did, instead of counting the
    /// few identities it loads.
    pub fn set_frequencies(&mut self, known: FxHashMap<usize, crate::fuzzy::Frequencies>) {
        self.tf_known = known;
    }

    pub fn set_partial(&mut self, lookup: &'r dyn KeyLookup) {
        self.lookup = Some(lookup);
    }

    fn partial(&self) -> bool {
        self.lookup.is_some()
    }

    /// Holders of `key` among the identities this sync was not given.
    fn outside_holders(&self, key: Key) -> Vec<MvId> {
        match self.lookup {
            Some(l) => l
                .holders(key)
                .into_iter()
                .filter(|id| !self.pos.contains_key(id))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Makes the plan carry every identity's lookup keys and due dates, for
    /// a store whose index was built for other rules.
    pub fn set_rebuild_keys(&mut self, rebuild: bool) {
        self.rebuild_keys = rebuild;
    }

    pub fn key_kinds(&self) -> &KeyKinds {
        &self.kinds
    }

    /// Adds a stored metaverse object. Objects of types the rules no longer
    /// define are left alone.
    pub fn add_mv(&mut self, row: MvRow) {
        if let Some((ty, lin)) = self.lineage_of(&row) {
            self.push_mv(row, ty, lin);
        }
    }

    /// Adds many identities, their lineage read on every core.
    pub fn add_mvs(&mut self, rows: Vec<MvRow>) {
        let read: Vec<_> = rows
            .into_par_iter()
            .filter_map(|row| self.lineage_of(&row).map(|(ty, lin)| (row, ty, lin)))
            .collect();
        for (row, ty, lin) in read {
            self.push_mv(row, ty, lin);
        }
    }

    /// The identity's type and its stored lineage, sorted; `None` for a
    /// type the rules no longer have.
    fn lineage_of(&self, row: &MvRow) -> Option<(usize, Vec<LinEntry>)> {
        let ty = self.rules.metaverse.index(&row.object_type)?;
        let t = &self.rules.metaverse.types[ty];
        let mut lin = Vec::new();
        let rules = self.rules;
        // Unreadable lineage only loses origins; the next sync writes them anew.
        let _ =
            crate::model::json::lineage_entries(&row.lineage_json, |attr, agent, _anchor, run| {
                if let (Some(a), Some(agent)) = (t.schema.get(attr), rules.agent(agent)) {
                    lin.push(LinEntry {
                        attr: a as u16,
                        agent: agent.index as u16,
                        run: run as u32,
                    });
                }
            });
        lin.sort();
        Some((ty, lin))
    }

    fn push_mv(&mut self, row: MvRow, ty: usize, lin: Vec<LinEntry>) {
        self.pos.insert(row.id, self.mvs.len());
        self.next_id = self.next_id.max(row.id + 1);
        self.mvs.push(MvState {
            id: row.id,
            ty,
            attrs: row.attrs.clone(),
            lin: lin.clone(),
            orig: Some(Box::new((row.attrs, lin))),
            connectors: Vec::new(),
            deleted: false,
            fresh: false,
            retained: row.retained_since.as_deref().map(Box::from),
            orig_retained: row.retained_since.map(String::into_boxed_str),
        });
    }

    /// Adds an agent's whole connector space (index as in `rules.agents`).
    pub fn add_cs(&mut self, agent: usize, rows: Vec<CsRow>) {
        if let Some(list) = self.cs.get_mut(agent) {
            list.extend(rows.into_iter().map(|row| CsState {
                changed: row.pending.is_some(),
                row,
                mv: None,
                in_scope: true,
                settled: false,
                out: None,
                prev_out: None,
            }));
        }
    }

    fn ctx<'k>(&self, key: &'k str) -> Context<'k> {
        Context {
            now: self.now,
            object_key: key,
            unique: None,
        }
    }

    pub fn plan(mut self) -> SyncPlan {
        let t = std::time::Instant::now();
        self.wire();
        self.disconnect_gone();
        self.expire_retained();
        // Room for every identity and link this sync can create, once: growing
        // vectors of a million entries copies them and touches fresh memory
        // at every step.
        let unlinked: usize = self
            .cs
            .iter()
            .map(|l| l.iter().filter(|c| c.mv.is_none()).count())
            .sum();
        self.mvs.reserve_exact(unlinked);
        self.pos.reserve(unlinked);
        self.plan.links.reserve_exact(unlinked);
        tracing::debug!(
            ms = t.elapsed().as_millis() as u64,
            "Sync: wired links and scope."
        );
        let mut indexes: FxHashMap<KeySpec, JoinIndex> = FxHashMap::default();
        // An ambiguous join or a conflict may resolve once other objects
        // have joined (a candidate taken is no longer one), so they are tried
        // again in the next pass and only reported after the last: a second
        // full sync then has nothing left to decide differently.
        //
        // An object a fuzzy rule found nothing for waits to project until
        // no agent joins anything more: the record that links it to an
        // identity (B, in A~B~C) may come from an agent later in the sync
        // order. The identity is then the cluster of linked records
        // whatever the order, not a duplicate made before B joined.
        let fuzzy = self.rules.agents.iter().any(|a| a.fuzzy.is_some());
        let passes = if fuzzy { 5 } else { 3 };
        self.hold = fuzzy;
        for pass in 0..passes {
            for (a, i) in std::mem::take(&mut self.deferred).into_keys() {
                self.cs[a][i].settled = false;
            }
            // The last two passes project what waited and join what that allows.
            if pass + 2 >= passes {
                self.hold = false;
            }
            self.held = 0;
            let mut progress = false;
            for a in 0..self.rules.agents.len() {
                let t = std::time::Instant::now();
                let before = (self.plan.counters.joins, self.plan.counters.projections);
                progress |= self.agent_phase(a, &mut indexes);
                // Progress for operators: one line per agent phase that did anything.
                let (joins, projections) = (
                    self.plan.counters.joins - before.0,
                    self.plan.counters.projections - before.1,
                );
                if joins + projections > 0 {
                    tracing::info!(agent = %self.rules.agents[a].name, pass, joins, projections, ms = t.elapsed().as_millis() as u64, "Sync phase finished.");
                }
            }
            if !progress {
                if self.hold && self.held > 0 {
                    self.hold = false;
                    continue;
                }
                break;
            }
        }
        // Joins are over; the indexes (a key per identity and join rule,
        // over 100 MiB at a million people) would otherwise live through
        // SelectUniqueValue and the references, where a full sync peaks.
        drop(indexes);
        if !self.partial() {
            self.count_frequencies();
        }
        let mut deferred: Vec<((usize, usize), Deferred)> =
            std::mem::take(&mut self.deferred).into_iter().collect();
        deferred.sort_by_key(|(k, _)| *k);
        for (_, d) in deferred {
            match d {
                Deferred::Conflict(e) => self.plan.errors.push(e),
                Deferred::Ambiguous(e, amb) => {
                    self.plan.counters.ambiguous += 1;
                    self.plan.errors.push(e);
                    self.plan.ambiguous.push(amb);
                }
            }
        }
        self.finish()
    }

    /// Connects the stored links and evaluates inbound scope.
    fn wire(&mut self) {
        let rules = self.rules;
        let now = self.now;
        for (a, list) in self.cs.iter_mut().enumerate() {
            let agent = &rules.agents[a];
            let scope: Vec<bool> = list
                .par_iter()
                .map(|c| {
                    if agent.inbound.is_empty() {
                        return true;
                    }
                    let key = key_of(&agent.name, &c.row.anchor);
                    let ctx = Context {
                        now,
                        object_key: &key,
                        unique: None,
                    };
                    agent.inbound.eval(&c.row.attrs, &ctx)
                })
                .collect();
            for (i, c) in list.iter_mut().enumerate() {
                c.in_scope = scope[i];
                self.plan.counters.processed += 1;
                if !c.in_scope {
                    self.plan.counters.out_of_scope += 1;
                }
                if let Some(id) = c.row.mv {
                    match self.pos.get(&id) {
                        Some(&p) if self.mvs[p].ty == agent.object_type => {
                            c.mv = Some(p);
                            self.mvs[p].attach(a, i);
                        }
                        _ => {
                            self.plan.unlinks.push(c.row.id);
                            c.changed = true;
                        }
                    }
                }
            }
        }
    }

    fn disconnect_gone(&mut self) {
        for a in 0..self.cs.len() {
            for i in 0..self.cs[a].len() {
                let c = &self.cs[a][i];
                let deleted = c.row.pending == Some(crate::model::Delta::Delete);
                if deleted {
                    self.plan.removed_cs.push(c.row.id);
                }
                // A person disconnected the object, or joined it elsewhere.
                // (A projection decided by a person is kept once made.)
                let undone = match self.manual.get(&c.row.id).copied() {
                    Some(super::Manual::Disconnect) => true,
                    Some(super::Manual::Join(m)) => c.mv.is_some_and(|p| self.mvs[p].id != m),
                    _ => false,
                };
                if undone && c.mv.is_some() {
                    self.plan.manual_applied.push(c.row.id);
                }
                if let Some(p) = c.mv
                    && (deleted || !c.in_scope || undone)
                {
                    self.plan.counters.disconnects += 1;
                    self.plan.disconnects_by_agent[a] += 1;
                    self.plan.disconnected.push((
                        a as u16,
                        c.row.id,
                        c.row.anchor.as_str().into(),
                        self.mvs[p].id,
                    ));
                    self.disconnect(a, i, !deleted);
                }
            }
        }
    }

    /// Removes a connector and applies the type's deletion rule.
    fn disconnect(&mut self, a: usize, i: usize, keep_cs: bool) {
        let Some(p) = self.cs[a][i].mv.take() else {
            return;
        };
        self.cs[a][i].changed = true;
        if keep_cs {
            self.plan.unlinks.push(self.cs[a][i].row.id);
        }
        self.mvs[p]
            .connectors
            .retain(|&(x, j)| (x as usize, j as usize) != (a, i));
        self.mvs[p].fresh = false;
        let ty = self.mvs[p].ty;
        let delete = match &self.rules.metaverse.types[ty].deletion {
            Deletion::LastConnector => self.mvs[p].connectors.is_empty(),
            Deletion::AnyOf(list) => list.contains(&a) || self.mvs[p].connectors.is_empty(),
            Deletion::Never => false,
        };
        if delete {
            if self.rules.metaverse.types[ty].retain_days.is_some() {
                self.retain_mv(p);
            } else {
                self.delete_mv(p);
            }
        }
    }

    /// Keeps an identity whose deletion rule fired, without connectors, with
    /// the values it had and those the rules set on retained identities.
    fn retain_mv(&mut self, p: usize) {
        self.detach_all(p);
        let t = &self.rules.metaverse.types[self.mvs[p].ty];
        let m = &mut self.mvs[p];
        if !t.retained.is_empty() {
            let mut b = RecordBuilder::from(&m.attrs);
            for (a, v) in &t.retained {
                b.set(*a, [v.clone()]);
            }
            m.attrs = b.build();
            m.lin
                .retain(|l| !t.retained.iter().any(|(a, _)| u32::from(l.attr) == *a));
        }
        if m.retained.is_none() {
            m.retained = Some(self.today.clone().into_boxed_str());
        }
        m.fresh = true;
        self.plan.counters.mv_retained += 1;
    }

    /// Deletes retained identities whose time is up.
    fn expire_retained(&mut self) {
        for p in 0..self.mvs.len() {
            let m = &self.mvs[p];
            if m.deleted || !m.connectors.is_empty() {
                continue;
            }
            let Some(since) = m.retained.as_deref() else {
                continue;
            };
            let t = &self.rules.metaverse.types[m.ty];
            match super::index::retention_end(since, t.retain_days) {
                Some(end) if end.as_str() > self.today.as_str() => {}
                _ => self.delete_mv(p),
            }
        }
    }

    fn delete_mv(&mut self, p: usize) {
        self.mvs[p].deleted = true;
        if self.mvs[p].orig.is_some() {
            self.plan.deletes.push(self.mvs[p].id);
        }
        self.detach_all(p);
    }

    /// Takes every connector off an identity that goes or is retained: they
    /// become disconnectors, free to join or project.
    fn detach_all(&mut self, p: usize) {
        for (a, i) in std::mem::take(&mut self.mvs[p].connectors)
            .into_iter()
            .map(|(a, i)| (a as usize, i as usize))
        {
            let c = &mut self.cs[a][i];
            c.mv = None;
            c.changed = true;
            if c.row.pending != Some(crate::model::Delta::Delete) {
                self.plan.unlinks.push(c.row.id);
            }
        }
    }

    fn ensure_index(&self, spec: &KeySpec, indexes: &mut FxHashMap<KeySpec, JoinIndex>) {
        if indexes.contains_key(spec) {
            return;
        }
        let mut ix = JoinIndex::with_capacity(self.mvs.len());
        for (c, chunk) in self.mvs.chunks(CHUNK).enumerate() {
            let keys: Vec<(u32, Vec<String>)> = chunk
                .par_iter()
                .enumerate()
                .filter(|(_, m)| !m.deleted && m.ty == spec.object_type)
                .map(|(p, m)| ((c * CHUNK + p) as u32, spec.mv_keys(&m.attrs)))
                .collect();
            for (p, ks) in keys {
                for k in ks {
                    ix.insert(&k, p);
                }
            }
        }
        indexes.insert(spec.clone(), ix);
    }

    /// Joins and projects one agent's unjoined objects. True if anything joined or projected.
    fn agent_phase(&mut self, a: usize, indexes: &mut FxHashMap<KeySpec, JoinIndex>) -> bool {
        let rules = self.rules;
        let agent = &rules.agents[a];
        let candidates: Vec<usize> = (0..self.cs[a].len())
            .filter(|&i| {
                let c = &self.cs[a][i];
                c.mv.is_none()
                    && c.in_scope
                    && !c.settled
                    && c.row.pending != Some(crate::model::Delta::Delete)
                    && self.manual.get(&c.row.id) != Some(&super::Manual::Disconnect)
            })
            .collect();
        if candidates.is_empty() {
            return false;
        }
        let t = std::time::Instant::now();
        let specs: Vec<KeySpec> = agent.joins.iter().map(|r| KeySpec::of(agent, r)).collect();
        for s in &specs {
            self.ensure_index(s, indexes);
        }
        tracing::debug!(ms = t.elapsed().as_millis() as u64, "Sync: indexes.");
        let ixs: Vec<(&KeySpec, &JoinIndex)> = specs
            .iter()
            .filter_map(|s| indexes.get(s).map(|i| (s, i)))
            .collect();
        if self.partial() {
            // Identities outside this sync that share a key with an object
            // about to join or project: the caller loads them and plans again.
            let kinds: Vec<Option<i64>> = specs.iter().map(|s| self.kinds.kind(s)).collect();
            let probes: Vec<Key> = {
                let this = &*self;
                candidates
                    .par_iter()
                    .flat_map_iter(|&i| {
                        let c = &this.cs[a][i];
                        let key = key_of(&agent.name, &c.row.anchor);
                        let ctx = this.ctx(&key);
                        let mut out = Vec::new();
                        for (rule, kind) in agent.joins.iter().zip(&kinds) {
                            if let (Some(kind), Ok(keys)) =
                                (kind, super::join::cs_keys(rule, &c.row.attrs, &ctx))
                            {
                                out.extend(keys.iter().map(|k| super::index::key(*kind, k)));
                            }
                        }
                        out.extend(this.kinds.fuzzy_probes(agent, &c.row.attrs, &ctx));
                        out
                    })
                    .collect()
            };
            self.plan.probes.extend(probes);
        }
        let decisions: Vec<Decision> = {
            let this = &*self;
            let mv_attrs = |p: u32| &this.mvs[p as usize].attrs;
            let eligible = |p: u32| {
                let m = &this.mvs[p as usize];
                !m.deleted && !m.conns().any(|(x, _)| x == a)
            };
            candidates
                .par_iter()
                .map(|&i| {
                    let c = &this.cs[a][i];
                    let key = key_of(&agent.name, &c.row.anchor);
                    decide(
                        agent,
                        &c.row.attrs,
                        &ixs,
                        &mv_attrs,
                        &eligible,
                        &this.ctx(&key),
                    )
                })
                .collect()
        };

        let mut fuzzy = self.fuzzy_decisions(a, &candidates, &decisions);
        tracing::debug!(
            ms = t.elapsed().as_millis() as u64,
            candidates = candidates.len(),
            "Sync: decisions."
        );
        let mut touched = Vec::new();
        for (&i, d) in candidates.iter().zip(decisions) {
            let cs_id = self.cs[a][i].row.id;
            let mut forced = false;
            let d = match self.manual.get(&cs_id).copied() {
                Some(super::Manual::Join(m)) => {
                    let ok = self.pos.get(&m).copied().filter(|&p| {
                        !self.mvs[p].deleted && !self.mvs[p].conns().any(|(x, _)| x == a)
                    });
                    match ok {
                        Some(p) => {
                            self.connect(a, i, p);
                            self.plan.counters.joins += 1;
                            self.plan.manual_applied.push(cs_id);
                            self.plan.links.push(LinkWrite {
                                cs: cs_id,
                                agent: a as u16,
                                mv: m,
                                kind: "joined-by-hand",
                                rule: None,
                                detail: Some("a person's decision".into()),
                            });
                            touched.push(p);
                        }
                        None => {
                            self.plan.errors.push(SyncError {
                                kind: "join-decision",
                                agent: Some(agent.name.clone()),
                                anchor: Some(self.cs[a][i].row.anchor.clone()),
                                message: format!(
                                    "a person joined this object to identity {m}, which is gone or already has a connector from {}",
                                    agent.name
                                ),
                            });
                            self.cs[a][i].settled = true;
                        }
                    }
                    continue;
                }
                Some(super::Manual::Project) => {
                    forced = true;
                    self.plan.manual_applied.push(cs_id);
                    super::join::Decision::NoMatch
                }
                _ => d,
            };
            // What no exact rule found, the fuzzy rule may (a person's
            // projection stands whatever it finds).
            let d = match (&d, forced, fuzzy.remove(&i)) {
                (Decision::NoMatch, false, Some(f)) => match f {
                    FuzzyDecision::Join { mv, scored } => Decision::Join {
                        mv,
                        rule: agent.joins.len(),
                        key: scored.detail(),
                    },
                    FuzzyDecision::Review(scored, why) => {
                        self.defer_review(a, i, scored, why);
                        continue;
                    }
                    FuzzyDecision::Error(message) => Decision::Error(message),
                    FuzzyDecision::NoMatch => d,
                },
                _ => d,
            };
            match d {
                Decision::Join { mv, rule, key } => {
                    let p = mv as usize;
                    if let Some((_, other)) = self.mvs[p].conns().find(|&(x, _)| x == a) {
                        // Two objects of one agent found the same identity in one pass.
                        let first = self.cs[a][other].row.anchor.clone();
                        let error = SyncError {
                            kind: "join-conflict",
                            agent: Some(agent.name.clone()),
                            anchor: Some(self.cs[a][i].row.anchor.clone()),
                            message: format!(
                                "join rule {:?} matched metaverse object {} which {first:?} of the same agent joined first",
                                agent.join_rule_name(rule),
                                self.mvs[p].id
                            ),
                        };
                        self.deferred.insert((a, i), Deferred::Conflict(error));
                        self.cs[a][i].settled = true;
                        continue;
                    }
                    self.connect(a, i, p);
                    self.plan.counters.joins += 1;
                    self.plan.links.push(LinkWrite {
                        cs: cs_id,
                        agent: a as u16,
                        mv: self.mvs[p].id,
                        kind: "joined",
                        rule: Some(rule as u16),
                        detail: Some(key.into_boxed_str()),
                    });
                    touched.push(p);
                }
                Decision::Ambiguous { rule, candidates } => {
                    let ids: Vec<MvId> = candidates
                        .iter()
                        .map(|&p| self.mvs[p as usize].id)
                        .collect();
                    let error = SyncError {
                        kind: "ambiguous-join",
                        agent: Some(agent.name.clone()),
                        anchor: Some(self.cs[a][i].row.anchor.clone()),
                        message: format!(
                            "join rule {:?} found {} candidates ({}); left unjoined for a decision",
                            agent.joins[rule].name,
                            ids.len(),
                            candidates
                                .iter()
                                .map(|&q| {
                                    // Name each candidate by its connectors, so a person can tell them apart.
                                    let m = &self.mvs[q as usize];
                                    let known: Vec<String> = m
                                        .conns()
                                        .map(|(x, j)| {
                                            format!(
                                                "{} {}",
                                                self.rules.agents[x].name, self.cs[x][j].row.anchor
                                            )
                                        })
                                        .collect();
                                    if known.is_empty() {
                                        m.id.to_string()
                                    } else {
                                        format!("{} = {}", m.id, known.join(" + "))
                                    }
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    let amb = Ambiguous {
                        cs: cs_id,
                        agent: agent.name.clone(),
                        anchor: self.cs[a][i].row.anchor.clone(),
                        rule: agent.joins[rule].name.clone(),
                        candidates: ids,
                        scores: Vec::new(),
                    };
                    self.deferred
                        .insert((a, i), Deferred::Ambiguous(error, amb));
                    self.cs[a][i].settled = true;
                }
                Decision::Error(message) => {
                    self.plan.counters.flow_errors += 1;
                    self.plan.errors.push(SyncError {
                        kind: "flow-error",
                        agent: Some(agent.name.clone()),
                        anchor: Some(self.cs[a][i].row.anchor.clone()),
                        message,
                    });
                    self.cs[a][i].settled = true;
                }
                Decision::NoMatch => {
                    if !forced && !self.may_project(a, i) {
                        continue;
                    }
                    if !forced && self.hold && agent.fuzzy.is_some() {
                        self.held += 1;
                        continue;
                    }
                    let p = self.mvs.len();
                    let id = self.next_id;
                    self.next_id += 1;
                    self.mvs.push(MvState {
                        id,
                        ty: agent.object_type,
                        attrs: Record::default(),
                        lin: Vec::new(),
                        orig: None,
                        connectors: Vec::new(),
                        deleted: false,
                        fresh: false,
                        retained: None,
                        orig_retained: None,
                    });
                    self.pos.insert(id, p);
                    self.connect(a, i, p);
                    self.plan.counters.projections += 1;
                    self.plan.links.push(LinkWrite {
                        cs: cs_id,
                        agent: a as u16,
                        mv: id,
                        kind: "projected",
                        rule: None,
                        detail: None,
                    });
                    touched.push(p);
                }
            }
        }
        tracing::debug!(ms = t.elapsed().as_millis() as u64, "Sync: applied.");
        let progress = !touched.is_empty();
        self.recompute(&touched, indexes);
        progress
    }

    fn may_project(&self, a: usize, i: usize) -> bool {
        let agent = &self.rules.agents[a];
        if !agent.projection.enabled {
            return false;
        }
        match &agent.projection.when {
            None => true,
            Some(e) => {
                let c = &self.cs[a][i];
                let key = key_of(&agent.name, &c.row.anchor);
                e.eval(&c.row.attrs, &self.ctx(&key))
                    .map(|v| truthy(&v))
                    .unwrap_or(false)
            }
        }
    }

    fn connect(&mut self, a: usize, i: usize, p: usize) {
        self.touched_log.push(p as u32);
        let c = &mut self.cs[a][i];
        c.mv = Some(p);
        c.changed = true;
        self.mvs[p].attach(a, i);
        self.mvs[p].fresh = false;
        if self.mvs[p].retained.take().is_some() {
            self.plan.counters.mv_revived += 1;
        }
    }

    /// Evaluates import flows of every connector of `objects` not yet evaluated.
    fn ensure_flows(&mut self, objects: &[usize]) {
        let mut todo: Vec<(usize, usize)> = objects
            .iter()
            .flat_map(|&p| self.mvs[p].conns())
            .filter(|&(a, i)| self.cs[a][i].out.is_none())
            .collect();
        todo.sort_unstable();
        todo.dedup();
        let rules = self.rules;
        let now = self.now;
        let equal = &self.has_equal;
        let outs: Vec<(FlowOut, Option<FlowOut>)> = {
            let cs = &self.cs;
            todo.par_iter()
                .map(|&(a, i)| {
                    let agent = &rules.agents[a];
                    let c = &cs[a][i];
                    let key = key_of(&agent.name, &c.row.anchor);
                    let ctx = Context {
                        now,
                        object_key: &key,
                        unique: None,
                    };
                    let prev = match &c.row.prev {
                        Some(p) if equal[agent.object_type] => Some(eval_flows(agent, p, &ctx)),
                        _ => None,
                    };
                    (eval_flows(agent, &c.row.attrs, &ctx), prev)
                })
                .collect()
        };
        for (&(a, i), (out, prev)) in todo.iter().zip(outs) {
            self.cs[a][i].prev_out = prev.map(Box::new);
            // A joined object's attributes are not read again in this sync
            // (joins and projection are done with it): free them, a full
            // sync holds every connector space at once.
            if self.cs[a][i].mv.is_some() {
                // Only what SelectUniqueValue flows read stays, for their
                // evaluation at the end.
                let keep = &self.unique_reads[a];
                let attrs = &self.cs[a][i].row.attrs;
                self.cs[a][i].row.attrs = if keep.is_empty() {
                    Record::default()
                } else {
                    attrs.remap(|x| keep.binary_search(&x).is_ok().then_some(x))
                };
                self.cs[a][i].row.prev = None;
            }
            let agent = &rules.agents[a];
            let t = &rules.metaverse.types[agent.object_type];
            for (attr, msg) in &out.errors {
                self.plan.counters.flow_errors += 1;
                self.plan.errors.push(SyncError {
                    kind: "flow-error",
                    agent: Some(agent.name.clone()),
                    anchor: Some(self.cs[a][i].row.anchor.clone()),
                    message: format!("import flow {:?}: {msg}", t.schema.name(*attr)),
                });
            }
            self.cs[a][i].out = Some(out);
        }
    }

    /// Recomputes the attributes of `objects` and keeps join indexes current.
    fn recompute(&mut self, objects: &[usize], indexes: &mut FxHashMap<KeySpec, JoinIndex>) {
        // In slices, so the new values of a million identities never exist
        // beside the old ones all at once.
        for chunk in objects.chunks(CHUNK) {
            self.recompute_chunk(chunk, indexes);
        }
    }

    fn recompute_chunk(&mut self, objects: &[usize], indexes: &mut FxHashMap<KeySpec, JoinIndex>) {
        self.ensure_flows(objects);
        let rules = self.rules;
        let run = self.run;
        let results: Vec<(Record, Vec<LinEntry>)> = {
            let this = &*self;
            let empty = FlowOut::default();
            objects
                .par_iter()
                .map(|&p| {
                    let m = &this.mvs[p];
                    if m.connectors.is_empty() && m.retained.is_some() {
                        return (m.attrs.clone(), m.lin.clone());
                    }
                    let mut contribs: Vec<Contribution> = m
                        .conns()
                        .map(|(a, i)| {
                            let c = &this.cs[a][i];
                            Contribution {
                                agent: a,
                                out: c.out.as_ref().unwrap_or(&empty),
                                changed: c.changed,
                                prev: c.prev_out.as_deref(),
                            }
                        })
                        .collect();
                    contribs.sort_by_key(|c| c.agent);
                    let t = &rules.metaverse.types[m.ty];
                    compute(t, &this.flows_into[m.ty], &contribs, &m.attrs, &m.lin, run)
                })
                .collect()
        };
        for (&p, (attrs, lin)) in objects.iter().zip(results) {
            if attrs != self.mvs[p].attrs {
                for (spec, ix) in indexes.iter_mut() {
                    let old = &self.mvs[p].attrs;
                    if spec.object_type != self.mvs[p].ty
                        || spec
                            .parts
                            .iter()
                            .all(|(a, _)| old.values(*a).eq(attrs.values(*a)))
                    {
                        continue;
                    }
                    for k in spec.mv_keys(old) {
                        ix.remove(&k, p as u32);
                    }
                    for k in spec.mv_keys(&attrs) {
                        ix.insert(&k, p as u32);
                    }
                }
            }
            self.mvs[p].attrs = attrs;
            self.mvs[p].lin = lin;
            self.mvs[p].fresh = true;
        }
    }

    fn finish(mut self) -> SyncPlan {
        // A full sync re-evaluates every identity, not only the touched ones.
        let live: Vec<usize> = (0..self.mvs.len())
            .filter(|&p| !self.mvs[p].deleted)
            .collect();
        let mut no_index = FxHashMap::default();
        let t = std::time::Instant::now();
        // A full sync re-evaluates every identity; those recomputed in their
        // agent's phase since their last change are already current.
        let stale: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&p| !self.mvs[p].fresh)
            .collect();
        self.recompute(&stale, &mut no_index);
        tracing::debug!(
            ms = t.elapsed().as_millis() as u64,
            identities = stale.len(),
            "Sync: final recompute."
        );
        // Every identity is current: flow outputs are not read again.
        for list in &mut self.cs {
            for c in list.iter_mut() {
                c.out = None;
                c.prev_out = None;
            }
        }
        let t = std::time::Instant::now();
        self.select_unique_values(&live);
        tracing::debug!(
            ms = t.elapsed().as_millis() as u64,
            rss_mib = rss_mib(),
            "Sync: unique values."
        );
        let t = std::time::Instant::now();
        self.resolve_references(&live);
        tracing::debug!(
            ms = t.elapsed().as_millis() as u64,
            rss_mib = rss_mib(),
            "Sync: references."
        );

        for a in 0..self.cs.len() {
            for c in &self.cs[a] {
                if c.mv.is_none()
                    && c.in_scope
                    && c.row.pending != Some(crate::model::Delta::Delete)
                    && !c.settled
                {
                    self.plan.counters.unjoined += 1;
                }
            }
        }

        // A value that ends up as it was keeps the run that first set it
        // (references only become comparable once resolved, so this is
        // settled here rather than in precedence).
        for &p in &live {
            let m = &mut self.mvs[p];
            let Some(orig) = &m.orig else {
                continue;
            };
            let (orig_attrs, orig_lin) = &**orig;
            for l in m.lin.iter_mut() {
                if orig_attrs
                    .values(u32::from(l.attr))
                    .eq(m.attrs.values(u32::from(l.attr)))
                    && let Some(o) = orig_lin
                        .iter()
                        .find(|o| o.attr == l.attr && o.agent == l.agent)
                {
                    l.run = o.run;
                }
            }
        }

        self.probe_referrers();
        if !self.rebuild_keys {
            for p in 0..self.mvs.len() {
                let m = &self.mvs[p];
                if m.deleted
                    && let Some(orig) = &m.orig
                {
                    for k in self.kinds.keys(m.ty, &orig.0) {
                        self.plan.key_removes.push((k, m.id));
                    }
                }
            }
        }
        // Room for every new identity's write once: a vector of a million
        // writes grown by doubling copies itself into fresh memory at each
        // step. (How many identities changed is not known yet.)
        let new = live.iter().filter(|&&p| self.mvs[p].orig.is_none()).count();
        self.plan.inserts.reserve_exact(new);
        for &p in &live {
            let m = &self.mvs[p];
            let changed = match &m.orig {
                None => true,
                Some(orig) => orig.0 != m.attrs || orig.1 != m.lin,
            } || m.retained != m.orig_retained;
            if !changed {
                self.plan.counters.mv_unchanged += 1;
                continue;
            }
            let t = &self.rules.metaverse.types[m.ty];
            // A new identity's values are all new; only updates list theirs.
            let changes: Box<[u32]> = match &m.orig {
                None => Box::default(),
                Some(o) => (0..t.attrs.len() as u32)
                    .filter(|&a| !o.0.values(a).eq(m.attrs.values(a)))
                    .collect(),
            };
            let previous = match &m.orig {
                Some(o) if !changes.is_empty() => {
                    o.0.remap(|a| changes.binary_search(&a).is_ok().then_some(a))
                }
                _ => Record::default(),
            };
            if !self.rebuild_keys {
                let new = self.kinds.keys(m.ty, &m.attrs);
                let old = m
                    .orig
                    .as_ref()
                    .map(|o| self.kinds.keys(m.ty, &o.0))
                    .unwrap_or_default();
                let (adds, removes) = diff(&old, &new);
                self.plan
                    .key_adds
                    .extend(adds.into_iter().map(|k| (k, m.id)));
                self.plan
                    .key_removes
                    .extend(removes.into_iter().map(|k| (k, m.id)));
                let due = super::index::due_days(t, &m.attrs, m.retained.as_deref(), &self.today);
                let before = m.orig.as_ref().map(|o| {
                    super::index::due_days(t, &o.0, m.orig_retained.as_deref(), &self.today)
                });
                if before.as_ref() != Some(&due) {
                    self.plan.due.push((m.id, due));
                }
            }
            let anchors: Box<[(u16, Box<str>)]> = m
                .conns()
                .map(|(a, i)| (a as u16, Box::from(self.cs[a][i].row.anchor.as_str())))
                .collect();
            let is_new = m.orig.is_none();
            // The sync is consumed here: move values out instead of copying them.
            let m = &mut self.mvs[p];
            let write = MvWrite {
                id: m.id,
                object_type: m.ty,
                attrs: std::mem::take(&mut m.attrs),
                lineage: std::mem::take(&mut m.lin).into_boxed_slice(),
                anchors,
                changes,
                previous,
                retained_changed: m.retained != m.orig_retained,
                retained_since: m.retained.clone(),
            };
            m.orig = None;
            if is_new {
                self.plan.counters.mv_adds += 1;
                self.plan.inserts.push(write);
            } else {
                self.plan.counters.mv_updates += 1;
                self.plan.updates.push(write);
            }
        }
        self.plan.counters.mv_deletes = self.plan.deletes.len() as u64;
        self.plan.key_adds.sort_unstable();
        self.plan.key_removes.sort_unstable();
        self.plan.probes.sort_unstable();
        self.plan.probes.dedup();
        self.plan.unlinks.sort_unstable();
        self.plan.unlinks.dedup();
        self.plan.removed_cs.sort_unstable();
        self.plan
    }

    /// `SelectUniqueValue` flows. Each identity's choice is first computed in
    /// parallel against the values held when the pass starts; then, in id
    /// order, a choice is kept if no identity earlier in that order took the
    /// value meanwhile, and evaluated again against the current holders if
    /// one did. So `john.doe` stays with the identity that had it, the next
    /// John Doe gets `john.doe2`, and the outcome is the same on any number
    /// of threads.
    fn select_unique_values(&mut self, live: &[usize]) {
        // An owner that is an identity outside a partial sync.
        const EXTERNAL: usize = usize::MAX;
        struct Taken<'o> {
            owner: &'o FxHashMap<String, usize>,
            me: usize,
        }
        impl crate::expr::UniqueCheck for Taken<'_> {
            fn is_taken(&self, value: &str) -> bool {
                !free_for(self.owner, value, self.me)
            }
        }
        /// Whether identity `p` may have `value`: no one holds it, or `p` does.
        fn free_for(owner: &FxHashMap<String, usize>, value: &str, p: usize) -> bool {
            owner.get(value).is_none_or(|&o| o == p)
        }
        /// Lets go of what identity `p` holds of `values`.
        fn release<'v>(
            owner: &mut FxHashMap<String, usize>,
            values: impl Iterator<Item = &'v str>,
            p: usize,
        ) {
            for v in values {
                if owner.get(v) == Some(&p) {
                    owner.remove(v);
                }
            }
        }
        let rules = self.rules;
        for (ty, t) in rules.metaverse.types.iter().enumerate() {
            for a in 0..t.attrs.len() as u32 {
                let unique_agents: Vec<usize> = rules
                    .agents
                    .iter()
                    .filter(|ag| {
                        ag.object_type == ty
                            && ag
                                .flows
                                .iter()
                                .any(|f| f.target == a && f.expr.needs_unique())
                    })
                    .map(|ag| ag.index)
                    .collect();
                if unique_agents.is_empty() {
                    continue;
                }
                let mut owner: FxHashMap<String, usize> = FxHashMap::default();
                for &p in live {
                    if self.mvs[p].ty == ty {
                        for v in self.mvs[p].attrs.values(a) {
                            owner.entry(v.to_string()).or_insert(p);
                        }
                    }
                }
                // (identity, agent, connector position) of each unique flow to run.
                let mut todo: Vec<(usize, usize, usize)> = live
                    .iter()
                    .copied()
                    .filter(|&p| self.mvs[p].ty == ty)
                    .filter_map(|p| {
                        let winner = self.mvs[p]
                            .lin
                            .iter()
                            .find(|l| u32::from(l.attr) == a)
                            .map(|l| l.agent as usize)?;
                        if !unique_agents.contains(&winner) {
                            return None;
                        }
                        let (ag, i) = self.mvs[p].conns().find(|&(x, _)| x == winner)?;
                        Some((p, ag, i))
                    })
                    .collect();
                todo.sort_by_key(|&(p, _, _)| self.mvs[p].id);
                tracing::debug!(
                    holders = owner.len(),
                    jobs = todo.len(),
                    "Sync: unique values: holders mapped."
                );
                let eval = |this: &Self,
                            owner: &FxHashMap<String, usize>,
                            (p, ag, i): (usize, usize, usize)| {
                    let flow = rules.agents[ag].flows.iter().find(|f| f.target == a);
                    let key = key_of(&rules.agents[ag].name, &this.cs[ag][i].row.anchor);
                    let taken = Taken { owner, me: p };
                    let ctx = Context {
                        now: this.now,
                        object_key: &key,
                        unique: Some(&taken),
                    };
                    flow.map(|f| {
                        f.expr
                            .eval(&this.cs[ag][i].row.attrs, &ctx)
                            .map(|v| v.to_strings())
                    })
                };
                // A flow that is one SelectUniqueValue call hands over its
                // candidates, and the ordered pass only looks them up; any
                // other shape is evaluated against the holders at the start
                // and again if its choice was taken meanwhile.
                enum First {
                    Candidates(crate::expr::Candidates),
                    Chosen(Option<Result<Vec<String>, crate::expr::EvalError>>),
                }
                // Records are rebuilt after the ordered pass, on every core.
                let mut changes: Vec<(usize, Vec<String>)> = Vec::new();
                let probe_kind = if self.partial() {
                    self.kinds.plain_kind(ty, a)
                } else {
                    None
                };
                let mut unique_probes: Vec<Key> = Vec::new();
                // A slice at a time, so a million candidate lists never exist at once.
                for jobs in todo.chunks(CHUNK) {
                    let speculative: Vec<First> = {
                        let this = &*self;
                        let owner = &owner;
                        jobs.par_iter()
                            .map(|&(p, ag, i)| {
                                let flow = rules.agents[ag].flows.iter().find(|f| f.target == a);
                                let key =
                                    key_of(&rules.agents[ag].name, &this.cs[ag][i].row.anchor);
                                let ctx = Context {
                                    now: this.now,
                                    object_key: &key,
                                    unique: None,
                                };
                                // Candidates past the first that looks free are
                                // needed only if an identity earlier in the
                                // order takes it: the ordered pass evaluates
                                // again then. Not for an identity that holds a
                                // value (it keeps one that is a later candidate
                                // too), nor in a delta sync, which asks the
                                // store about every candidate up to a free one.
                                let lazy = !this.partial()
                                    && this.mvs[p]
                                        .orig
                                        .as_ref()
                                        .is_none_or(|o| o.0.values(a).next().is_none());
                                let looks_free = |v: &str| free_for(owner, v, p);
                                let enough: Option<&dyn Fn(&str) -> bool> =
                                    if lazy { Some(&looks_free) } else { None };
                                match flow.and_then(|f| {
                                    f.expr.unique_candidates(
                                        &this.cs[ag][i].row.attrs,
                                        &ctx,
                                        enough,
                                    )
                                }) {
                                    Some(c) => First::Candidates(c),
                                    None => First::Chosen(eval(this, owner, (p, ag, i))),
                                }
                            })
                            .collect()
                    };
                    if let Some(kind) = probe_kind {
                        // Most identities stop at their first candidate:
                        // those are asked about together.
                        if let Some(lookup) = self.lookup {
                            let firsts: Vec<Key> = speculative
                                .iter()
                                .filter_map(|first| match first {
                                    First::Candidates(c) => c.values.first(),
                                    First::Chosen(_) => None,
                                })
                                .map(|v| super::index::key(kind, v))
                                .collect();
                            lookup.prefetch(&firsts);
                        }
                        // Values held by identities not loaded: taken, as a
                        // full sync would find them. Only the values an
                        // identity could take are asked about, in order.
                        for (&(p, _, _), first) in jobs.iter().zip(&speculative) {
                            let First::Candidates(c) = first else {
                                continue;
                            };
                            let c = &c.values;
                            let held = self.mvs[p]
                                .orig
                                .as_ref()
                                .and_then(|o| o.0.values(a).find(|v| c.iter().any(|x| x == v)));
                            for v in c {
                                // Held here by this identity proves nothing: that
                                // may be its recomputed first candidate.
                                if !free_for(&owner, v, p) {
                                    continue;
                                }
                                if held == Some(v.as_str()) {
                                    break;
                                }
                                if self.outside_holders(super::index::key(kind, v)).is_empty() {
                                    break;
                                }
                                owner.insert(v.clone(), EXTERNAL);
                            }
                        }
                    }
                    for (&(p, ag, i), first) in jobs.iter().zip(speculative) {
                        if let Some(kind) = probe_kind {
                            // Candidate lists were asked of the lookup above; a
                            // value chosen by a more complex expression is
                            // probed, its holders loaded for the next round.
                            // Even one this identity seems to hold: what it
                            // holds here may be a recomputed first candidate,
                            // not what the store says it had.
                            if let First::Chosen(Some(Ok(v))) = &first {
                                unique_probes.extend(v.iter().map(|v| super::index::key(kind, v)));
                            }
                        }
                        let result = match first {
                            First::Candidates(crate::expr::Candidates {
                                values: candidates,
                                error,
                                more,
                            }) => {
                                // A value the identity already has stays while it
                                // is still one of its candidates and no one else
                                // holds it: a login does not change because a
                                // better one came free.
                                let kept = self.mvs[p].orig.as_ref().and_then(|o| {
                                    o.0.values(a).find(|v| {
                                        candidates.iter().any(|c| c == v) && free_for(&owner, v, p)
                                    })
                                });
                                match kept
                                    .map(str::to_string)
                                    .as_ref()
                                    .or_else(|| candidates.iter().find(|c| free_for(&owner, c, p)))
                                {
                                    Some(c) => Some(Ok(vec![c.clone()])),
                                    // Taken meanwhile: the call goes on to the
                                    // candidates not evaluated yet.
                                    None if more => eval(self, &owner, (p, ag, i)),
                                    // Every value before it is taken: the call
                                    // reaches the candidate that failed.
                                    None if error.is_some() => error.map(Err),
                                    None if candidates.is_empty() => Some(Ok(Vec::new())),
                                    None => Some(Err(crate::expr::EvalError {
                                        message: format!(
                                            "SelectUniqueValue: every candidate is already taken: {}",
                                            candidates
                                                .iter()
                                                .map(|c| format!("{c:?}"))
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        ),
                                    })),
                                }
                            }
                            First::Chosen(Some(Ok(values)))
                                if values.iter().all(|v| free_for(&owner, v, p)) =>
                            {
                                Some(Ok(values))
                            }
                            First::Chosen(_) => eval(self, &owner, (p, ag, i)),
                        };
                        match result {
                            Some(Ok(values)) => {
                                if !self.mvs[p]
                                    .attrs
                                    .values(a)
                                    .eq(values.iter().map(String::as_str))
                                {
                                    release(&mut owner, self.mvs[p].attrs.values(a), p);
                                    for v in &values {
                                        owner.insert(v.clone(), p);
                                    }
                                    changes.push((p, values));
                                } else {
                                    for v in values {
                                        owner.insert(v, p);
                                    }
                                }
                            }
                            Some(Err(e)) => {
                                // What the flow computed without asking (its
                                // first candidate) may be someone else's: the
                                // flow gives no value rather than a duplicate.
                                if self.mvs[p].attrs.values(a).next().is_some() {
                                    release(&mut owner, self.mvs[p].attrs.values(a), p);
                                    changes.push((p, Vec::new()));
                                }
                                self.plan.counters.flow_errors += 1;
                                self.plan.errors.push(SyncError {
                                    kind: "flow-error",
                                    agent: Some(rules.agents[ag].name.clone()),
                                    anchor: Some(self.cs[ag][i].row.anchor.clone()),
                                    message: format!(
                                        "import flow {:?}: {}",
                                        t.schema.name(a),
                                        e.message
                                    ),
                                });
                            }
                            None => {}
                        }
                    }
                }
                for chunk in changes.chunks(CHUNK) {
                    let rebuilt: Vec<Record> = {
                        let mvs = &self.mvs;
                        chunk
                            .par_iter()
                            .map(|(p, values)| mvs[*p].attrs.with_values(a, values))
                            .collect()
                    };
                    for ((p, _), r) in chunk.iter().zip(rebuilt) {
                        self.mvs[*p].attrs = r;
                    }
                }
                self.plan.probes.extend(unique_probes);
            }
        }
    }

    /// In a delta sync, identities that point at one that went away or whose
    /// lookup values changed must be looked at again: probe who refers to it.
    fn probe_referrers(&mut self) {
        if !self.partial() {
            return;
        }
        let rules = self.rules;
        // Per object type: the attributes references are looked up by.
        let lookups: Vec<Vec<u32>> = (0..rules.metaverse.types.len())
            .map(|ty| {
                rules
                    .agents
                    .iter()
                    .filter(|ag| ag.object_type == ty)
                    .flat_map(|ag| ag.flows.iter().filter_map(|f| f.reference))
                    .collect()
            })
            .collect();
        let mut probes = Vec::new();
        for m in &self.mvs {
            let Some(orig) = &m.orig else {
                continue;
            };
            // A retained identity keeps its values, so what points at it
            // still resolves; only a deletion or a changed key moves it.
            let moved = m.deleted
                || lookups[m.ty]
                    .iter()
                    .any(|&l| !orig.0.values(l).eq(m.attrs.values(l)));
            if moved {
                probes.extend(self.kinds.referrer_probes(rules, m.ty, m.id));
            }
        }
        self.plan.probes.extend(probes);
    }

    /// In a delta sync, whether a reference stays as stored: the connector
    /// that supplies it did not change and supplied it before, and the
    /// identities it names were not loaded, so nothing this sync does can
    /// move it.
    fn keeps_reference(&self, m: &MvState, a: u32, winner: usize) -> bool {
        let Some(orig) = &m.orig else {
            return false;
        };
        let unchanged = m
            .conns()
            .find(|&(x, _)| x == winner)
            .is_some_and(|(x, i)| !self.cs[x][i].changed);
        // The same agent supplied it before: precedence did not move.
        let same_source = orig
            .1
            .iter()
            .any(|l| u32::from(l.attr) == a && l.agent as usize == winner);
        unchanged
            && same_source
            && orig.0.count(a) > 0
            && orig.0.values(a).all(|id| {
                id.parse::<MvId>()
                    .is_ok_and(|id| !self.pos.contains_key(&id))
            })
    }

    /// Each reference attribute of `m` that holds values, with the agent
    /// whose flow won it and the attribute its values are looked up by.
    fn references_of<'a>(&'a self, m: &'a MvState) -> impl Iterator<Item = (u32, usize, u32)> + 'a {
        let t = &self.rules.metaverse.types[m.ty];
        t.attrs.iter().enumerate().filter_map(move |(ai, attr)| {
            let a = ai as u32;
            if attr.kind != AttrType::Reference || m.attrs.count(a) == 0 {
                return None;
            }
            let winner = m
                .lin
                .iter()
                .find(|l| u32::from(l.attr) == a)
                .map(|l| l.agent as usize)?;
            let lookup = self.rules.agents[winner]
                .flows
                .iter()
                .find(|f| f.target == a)
                .and_then(|f| f.reference)?;
            Some((a, winner, lookup))
        })
    }

    /// A partial sync asks the store who outside it holds each reference
    /// value it resolves: those questions are asked together up front,
    /// not one per value (at a million people, a 1 % delta sync resolves
    /// some thousands of managers).
    fn prefetch_references(&self, live: &[usize]) {
        let Some(lookup) = self.lookup else {
            return;
        };
        let mut keys = Vec::new();
        for &p in live {
            let m = &self.mvs[p];
            for (a, winner, by) in self.references_of(m) {
                if self.keeps_reference(m, a, winner) {
                    continue;
                }
                if let Some(kind) = self.kinds.plain_kind(m.ty, by) {
                    keys.extend(m.attrs.values(a).map(|k| super::index::key(kind, k)));
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        lookup.prefetch(&keys);
    }

    /// Replaces reference keys with the ids of the objects they name.
    fn resolve_references(&mut self, live: &[usize]) {
        let rules = self.rules;
        // (object type, lookup attribute) pairs some flow uses.
        let mut lookups: Vec<(usize, u32)> = rules
            .agents
            .iter()
            .flat_map(|a| {
                a.flows
                    .iter()
                    .filter_map(move |f| f.reference.map(|r| (a.object_type, r)))
            })
            .collect();
        lookups.sort_unstable();
        lookups.dedup();
        if lookups.is_empty() {
            return;
        }
        // The index holds key hashes, not borrowed keys, so identities can be
        // resolved and written back a slice at a time.
        const MANY: u32 = u32::MAX;
        // A target among the identities a partial sync was not given.
        const OUTSIDE: u32 = u32::MAX - 1;
        let mut index: FxHashMap<(usize, u32), FxHashMap<u64, u32>> = FxHashMap::default();
        for &(ty, attr) in &lookups {
            let map = index.entry((ty, attr)).or_default();
            for &p in live {
                if self.mvs[p].ty == ty {
                    for v in self.mvs[p].attrs.values(attr) {
                        let e = map.entry(super::join::hash_key(v)).or_insert(p as u32);
                        if *e != p as u32 {
                            *e = MANY;
                        }
                    }
                }
            }
        }
        self.prefetch_references(live);
        type Resolved = (usize, Option<Record>, Vec<SyncError>, Vec<(usize, usize)>);
        let mut edges = Vec::new();
        for chunk in live.chunks(CHUNK) {
            let results: Vec<Resolved> = {
                let this = &*self;
                let index = &index;
                chunk
                    .par_iter()
                    .map(|&p| {
                        let m = &this.mvs[p];
                        let t = &rules.metaverse.types[m.ty];
                        let mut errors = Vec::new();
                        let mut edges = Vec::new();
                        // The record with the references resolved so far.
                        let mut r: Option<Record> = None;
                        for (a, winner, lookup) in this.references_of(m) {
                            let attr = &t.attrs[a as usize];
                            if this.partial() && this.keeps_reference(m, a, winner) {
                                let kept: Vec<String> = m
                                    .orig
                                    .as_ref()
                                    .map(|o| o.0.values(a).map(str::to_string).collect())
                                    .unwrap_or_default();
                                r = Some(r.as_ref().unwrap_or(&m.attrs).with_values(a, &kept));
                                continue;
                            }
                            let mut ids = Vec::new();
                            let lookup_kind = if this.partial() {
                                this.kinds.plain_kind(m.ty, lookup)
                            } else {
                                None
                            };
                            for k in m.attrs.values(a) {
                                // Identities not loaded that hold the key.
                                let outside: Vec<MvId> = lookup_kind
                                    .map(|kind| this.outside_holders(super::index::key(kind, k)))
                                    .unwrap_or_default();
                                let anchor = || {
                                    m.conns()
                                        .find(|&(x, _)| x == winner)
                                        .map(|(x, i)| this.cs[x][i].row.anchor.clone())
                                };
                                let hit = index
                                    .get(&(m.ty, lookup))
                                    .and_then(|ix| ix.get(&super::join::hash_key(k)))
                                    .copied()
                                    .filter(|&q| {
                                        q == MANY
                                            || this.mvs[q as usize]
                                                .attrs
                                                .values(lookup)
                                                .any(|v| v == k)
                                    });
                                let hit = match (hit, outside.as_slice()) {
                                    (h, []) => h,
                                    (None, [_]) => Some(OUTSIDE),
                                    _ => Some(MANY),
                                };
                                match hit {
                                    Some(OUTSIDE) => ids.push(outside[0].to_string()),
                                    Some(MANY) => errors.push(SyncError {
                                        kind: "ambiguous-reference",
                                        agent: Some(rules.agents[winner].name.clone()),
                                        anchor: anchor(),
                                        message: format!(
                                            "{} {k:?} matches several objects by {}",
                                            attr.name,
                                            t.schema.name(lookup)
                                        ),
                                    }),
                                    Some(q) => {
                                        ids.push(this.mvs[q as usize].id.to_string());
                                        edges.push((p, q as usize));
                                    }
                                    None => errors.push(SyncError {
                                        kind: "dangling-reference",
                                        agent: Some(rules.agents[winner].name.clone()),
                                        anchor: anchor(),
                                        message: format!(
                                            "{} {k:?}: no {} has {} = {k:?}",
                                            attr.name,
                                            t.name,
                                            t.schema.name(lookup)
                                        ),
                                    }),
                                }
                            }
                            r = Some(r.as_ref().unwrap_or(&m.attrs).with_values(a, &ids));
                        }
                        (p, r, errors, edges)
                    })
                    .collect()
            };
            for (p, attrs, errors, e) in results {
                self.plan.counters.reference_errors += errors.len() as u64;
                self.plan.errors.extend(errors);
                edges.extend(e);
                if let Some(attrs) = attrs {
                    let m = &mut self.mvs[p];
                    m.attrs = attrs;
                    // A reference that did not resolve has no value and so no origin.
                    let attrs = &m.attrs;
                    m.lin.retain(|l| attrs.count(u32::from(l.attr)) > 0);
                }
            }
        }
        tracing::debug!(edges = edges.len(), "Sync: references written.");
        for cycle in find_cycles(&edges) {
            let ids: Vec<String> = cycle.iter().map(|&p| self.mvs[p].id.to_string()).collect();
            self.plan.counters.reference_errors += 1;
            self.plan.errors.push(SyncError {
                kind: "reference-cycle",
                agent: None,
                anchor: None,
                message: format!(
                    "references form a cycle: {} -> {}",
                    ids.join(" -> "),
                    ids[0]
                ),
            });
        }
    }
}
