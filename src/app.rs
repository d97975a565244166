//! Orchestration: rules -> store -> connectors -> engine -> store. Each
//! public method is one step or one query the CLI offers; the clock is a
//! parameter so runs are reproducible in tests.

use crate::audit::{self, AuditEntry, AuditKind};
use crate::connector;
use crate::engine::{KeyKinds, Sync, SyncCounters, SyncPlan};
use crate::groups::{OldKeys, WrittenKeys};
use crate::model::{CsId, MvId, RunId};
use crate::rules::{self, RuleErrors, RuleSet, StepAction};
use crate::store::{CsRow, MvRow, NewChange, Tx};
use crate::store::{ImportCounts, StepErrorRow, Store, StoreError, fault_point};
use chrono::{DateTime, SecondsFormat, Utc};
use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Rules(#[from] RuleErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("agent {agent:?}: {message}")]
    Import { agent: String, message: String },
    #[error("target {agent:?}: {message}")]
    Export { agent: String, message: String },
    #[error("{0}")]
    Usage(String),
    /// The deletion guard stopped a step: nothing it would write was committed.
    #[error("{0}")]
    Guard(String),
    /// SIGINT or SIGTERM arrived (see `shutdown`); the step's transaction
    /// was dropped whole.
    #[error("stopped by a signal before the step finished; its work was rolled back")]
    Stopped,
}

pub type Result<T> = std::result::Result<T, AppError>;

pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What one import step did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    pub agent: String,
    pub run: RunId,
    pub mode: ImportMode,
    pub how: ImportHow,
    /// Why the import read more than its mode asked for, when it did.
    pub note: Option<String>,
    pub counts: ImportCounts,
    pub rejected: Vec<StepErrorRow>,
}

/// How an import read its source; decided before it starts from what the
/// connector can do and what the last import left in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportHow {
    /// Every row read, converted and compared by content.
    Full,
    /// The file's digest is the last import's: nothing read, nothing changed.
    Unchanged,
    /// Every row read and compared by the fingerprint of its bytes; only
    /// rows that differ converted.
    RowCompare,
    /// Only rows at or above the stored watermark read.
    Watermark,
}

impl ImportHow {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportHow::Full => "full",
            ImportHow::Unchanged => "unchanged",
            ImportHow::RowCompare => "row-compare",
            ImportHow::Watermark => "watermark",
        }
    }
}

/// What one sync step did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncReport {
    pub run: RunId,
    /// What ran: a delta sync runs as a full one when it must.
    pub mode: SyncMode,
    pub counters: SyncCounters,
    pub errors: Vec<StepErrorRow>,
    /// Per group rule: memberships and groups changed.
    pub groups: std::collections::BTreeMap<String, crate::groups::GroupCounts>,
    /// Per target: what the identities' accounts must become.
    pub provision: std::collections::BTreeMap<String, crate::export::ProvisionCounts>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepOutcome {
    pub step: String,
    pub status: String,
    pub message: Option<String>,
    /// From the step's start to its end: its commit included, and for a
    /// sync the groups and provisioning that follow it.
    pub ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<crate::export::ExportReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm: Option<crate::reconcile::ConfirmReport>,
}

impl StepOutcome {
    fn success(step: &str) -> StepOutcome {
        StepOutcome {
            step: step.to_string(),
            status: "success".into(),
            message: None,
            ms: 0,
            import: None,
            sync: None,
            export: None,
            confirm: None,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProfileReport {
    pub profile: String,
    pub run: RunId,
    /// `success`, `failed`, or `stopped` (by SIGINT/SIGTERM).
    pub status: String,
    /// Why a run ended early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The whole run, from its record's start to its end.
    pub ms: u64,
    pub steps: Vec<StepOutcome>,
}

/// A full import reads the whole source and stages deletes for what it no
/// longer has; a delta import stages only what changed since the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportMode {
    Full,
    Delta,
}

/// A full sync re-evaluates every object; a delta sync only pending imports
/// and the identities they reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    Full,
    Delta,
}

pub struct App {
    pub rules: RuleSet,
    pub store: Store,
    /// `--allow-deletes N`: a step may delete up to N objects whatever the
    /// deletion guard's limits say.
    pub allow_deletes: Option<u64>,
}

impl App {
    /// Opens the store, then loads the rules (using schemas the store
    /// remembers for sources that cannot be read right now).
    pub fn open(rules_dir: &Path, store_path: &Path) -> Result<App> {
        let store = Store::open(store_path)?;
        let rules = rules::load(rules_dir, &|agent| store.agent_schema(agent).ok().flatten())?;
        Ok(App {
            rules,
            store,
            allow_deletes: None,
        })
    }

    pub fn begin_run(
        &mut self,
        profile: Option<&str>,
        command: &str,
        now: DateTime<Utc>,
    ) -> Result<RunId> {
        let threads = rayon::current_num_threads();
        let seen_files = self.store.meta(audit::RULE_FILES_META)?;
        let rules = &self.rules;
        let tx = self.store.begin()?;
        let run = tx.begin_run(profile, command, &stamp(now), &rules.hash, threads)?;
        tx.audit(
            &AuditEntry::now(AuditKind::RunStarted, Some(run)).detail(serde_json::json!({
                "command": command,
                "profile": profile,
                "rules_hash": rules.hash,
                "threads": threads,
                "clock": stamp(now),
            })),
        )?;
        if let Some(detail) = audit::rules_changed(seen_files.as_deref(), &rules.files, &rules.hash)
        {
            tx.audit(&AuditEntry::now(AuditKind::RulesChanged, Some(run)).detail(detail))?;
            let files = serde_json::to_string(&rules.files).unwrap_or_default();
            tx.set_meta(audit::RULE_FILES_META, &files)?;
        }
        tx.commit()?;
        Ok(run)
    }

    /// A command that is one step: a run of its own, finished with the
    /// step's outcome whatever it is.
    pub fn one_step_run<T>(
        &mut self,
        command: &str,
        step: impl FnOnce(&mut App, RunId) -> Result<T>,
    ) -> Result<T> {
        let run = self.begin_run(None, command, Utc::now())?;
        let r = step(self, run);
        self.finish_run(run, r.is_ok(), Utc::now())?;
        r
    }

    pub fn finish_run(&mut self, run: RunId, ok: bool, now: DateTime<Utc>) -> Result<()> {
        self.finish_run_as(run, if ok { "success" } else { "failed" }, now)
    }

    /// Finishes a run with any status: `success`, `failed`, `stopped`.
    pub fn finish_run_as(&mut self, run: RunId, status: &str, now: DateTime<Utc>) -> Result<()> {
        let row = self.store.run(run)?;
        let tx = self.store.begin()?;
        tx.finish_run(run, status, &stamp(now))?;
        tx.audit(
            &AuditEntry::now(AuditKind::RunFinished, Some(run)).detail(serde_json::json!({
                "command": row.as_ref().map(|r| &r.command),
                "profile": row.as_ref().and_then(|r| r.profile.as_ref()),
                "status": status,
                "rules_hash": row.as_ref().and_then(|r| r.rules_hash.as_ref()),
            })),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Computes a sync without writing anything.
    pub fn plan_sync(&self, mode: SyncMode, run: RunId, now: DateTime<Utc>) -> Result<SyncPlan> {
        match mode {
            SyncMode::Full => Ok(self.prepare_sync(run, now)?.plan()),
            SyncMode::Delta => match self.plan_delta(run, now, self.keys_current()?)? {
                Some((plan, _)) => Ok(plan),
                None => Ok(self.prepare_sync(run, now)?.plan()),
            },
        }
    }

    /// Loads everything a full sync reads; `.plan()` on the result is pure.
    pub fn prepare_sync(&self, run: RunId, now: DateTime<Utc>) -> Result<Sync<'_>> {
        let rules = &self.rules;
        // Computed groups are not the sync's: it neither loads nor touches them.
        let schema_of = |t: &str| rules.metaverse.synced_schema(t);
        let mut sync = Sync::new(rules, run, now, self.store.next_mv_id()?);
        sync.set_manual(self.manual_decisions()?);
        self.store
            .load_mv(&schema_of, &mut |row| sync.add_mv(row))?;
        for a in &rules.agents {
            sync.add_cs(a.index, self.store.load_cs(&a.name, &a.schema)?);
        }
        Ok(sync)
    }

    /// The decisions people made (review queue, `join`, `disconnect`), as
    /// the sync honours them.
    fn manual_decisions(&self) -> Result<FxHashMap<CsId, crate::engine::Manual>> {
        use crate::engine::Manual;
        Ok(self
            .store
            .decisions()?
            .into_iter()
            .filter_map(|d| {
                let m = match (d.kind.as_str(), d.mv_id) {
                    ("join", Some(mv)) => Manual::Join(mv),
                    ("project", _) => Manual::Project,
                    ("disconnect", _) => Manual::Disconnect,
                    _ => return None,
                };
                Some((d.cs_id, m))
            })
            .collect())
    }

    /// Whether the store's lookup keys were built for these rules; a delta
    /// sync needs them, and a full sync rebuilds them when they were not.
    fn keys_current(&self) -> Result<bool> {
        let kinds = KeyKinds::of(&self.rules);
        Ok(self.store.meta("key_kinds")?.as_deref() == Some(kinds.signature()))
    }

    /// Plans a delta sync: the pending imports, the identities they are
    /// joined to, identities with a date due, and, round by round, every
    /// identity a lookup of the plan could reach (a join candidate, the
    /// holder of a unique value, a reference's target or referrer), until a
    /// round finds no one new. None when the store's lookup keys are not
    /// for these rules, or the change reaches so far that a full sync is
    /// the cheaper way.
    fn plan_delta(
        &self,
        run: RunId,
        now: DateTime<Utc>,
        keys_current: bool,
    ) -> Result<Option<(SyncPlan, Vec<CsId>)>> {
        // New rules must reach every identity, not only the changed ones.
        let rules_synced = self.store.meta("last_full_sync_rules_hash")?.as_deref()
            == Some(self.rules.hash.as_str());
        if !rules_synced || !keys_current {
            return Ok(None);
        }
        // A term-frequency weight counts a value over every identity; a
        // delta sync, which loads only the candidates, weighs values by the
        // counts of the last full sync (made under these rules, as checked
        // above), or runs as a full one when there are none.
        let mut frequencies = FxHashMap::default();
        for a in &self.rules.agents {
            if !a
                .fuzzy
                .as_ref()
                .is_some_and(|f| f.spec.fields.iter().any(|x| x.term_frequency))
            {
                continue;
            }
            let known = self
                .store
                .meta(&frequencies_key(&a.name))?
                .and_then(|text| serde_json::from_str::<crate::fuzzy::Frequencies>(&text).ok());
            match known {
                Some(f) => {
                    frequencies.insert(a.index, f);
                }
                None => return Ok(None),
            }
        }
        let rules = &self.rules;
        let mv_schema = |t: &str| rules.metaverse.synced_schema(t);
        let cs_schema = |a: &str| rules.agent(a).map(|a| &a.schema);
        let today = now.format("%Y-%m-%d").to_string();
        let mut cs: Vec<FxHashMap<CsId, CsRow>> = vec![FxHashMap::default(); rules.agents.len()];
        let manual = self.manual_decisions()?;
        let mut pending_ids = Vec::new();
        let mut wanted: Vec<MvId> = self.store.due_mvs(&today)?;
        let kinds = KeyKinds::of(rules);
        let mut probes = Vec::new();
        let t0 = std::time::Instant::now();
        // Loads run on two connections at once: each is mostly SQLite
        // finding scattered rows, one core's work.
        let mut twin = self.store.reader()?;
        let pending = std::thread::scope(|s| {
            let (agents, twin) = (&rules.agents, &mut twin);
            let even = s.spawn(move || -> crate::store::Result<Vec<_>> {
                agents
                    .iter()
                    .step_by(2)
                    .map(|a| twin.load_pending_cs(&a.name, &a.schema))
                    .collect()
            });
            let odd: crate::store::Result<Vec<_>> = agents
                .iter()
                .skip(1)
                .step_by(2)
                .map(|a| self.store.load_pending_cs(&a.name, &a.schema))
                .collect();
            joined(even).and_then(|e| odd.map(|o| interleave(e, o)))
        });
        for (a, rows) in rules.agents.iter().zip(pending?) {
            for row in rows {
                // Only an unjoined object can be waiting in the ambiguous
                // queue, and may join an identity this sync must load.
                if let (Some(mv), Some(crate::model::Delta::Delete)) = (row.mv, row.pending) {
                    probes.extend(kinds.referrer_probes(rules, a.object_type, mv));
                }
                // The identity a person joined the object to takes part.
                if let Some(crate::engine::Manual::Join(mv)) = manual.get(&row.id) {
                    wanted.push(*mv);
                }
                if row.mv.is_none() {
                    pending_ids.push(row.id);
                    if row.pending != Some(crate::model::Delta::Delete) {
                        probes.extend(kinds.join_probes(
                            rules,
                            a.index,
                            &row.anchor,
                            &row.attrs,
                            now,
                        ));
                    }
                }
                wanted.extend(row.mv);
                cs[a.index].insert(row.id, row);
            }
        }
        probes.sort_unstable();
        probes.dedup();
        let lookup = StoreLookup {
            reader: self.store.key_reader()?,
            error: std::sync::Mutex::new(None),
            known: std::sync::Mutex::new(FxHashMap::default()),
        };
        wanted.extend(lookup.reader.holders_of(&probes)?);
        let next_id = self.store.next_mv_id()?;
        // Ids are never reused, so the next one bounds the metaverse's size
        // without counting it.
        let total = next_id as u64;
        let mut mvs: FxHashMap<MvId, MvRow> = FxHashMap::default();
        let mut round = 0;
        loop {
            round += 1;
            wanted.retain(|id| !mvs.contains_key(id));
            wanted.sort_unstable();
            wanted.dedup();
            let t_pending = t0.elapsed();
            let (loaded, linked) = std::thread::scope(|s| {
                let (wanted, cs_schema, twin) = (&wanted, &cs_schema, &mut twin);
                let linked = s.spawn(move || twin.load_cs_linked(wanted, cs_schema));
                let loaded = self.store.load_mv_ids(wanted, &mv_schema);
                (loaded, joined(linked))
            });
            for row in loaded? {
                mvs.insert(row.id, row);
            }
            let t_mv = t0.elapsed();
            for (agent, row) in linked? {
                if let Some(a) = rules.agent(&agent) {
                    cs[a.index].entry(row.id).or_insert(row);
                }
            }
            let t_linked = t0.elapsed();
            // A change that reaches a large part of the metaverse costs less
            // as one full pass than as many rounds of lookups.
            if mvs.len() as u64 > total / 4 + 10_000 || round > 32 {
                info!(
                    identities = mvs.len(),
                    round, "Delta sync reaches too far; doing a full sync."
                );
                return Ok(None);
            }
            let mut sync = Sync::new(rules, run, now, next_id);
            sync.set_partial(&lookup);
            sync.set_manual(manual.clone());
            sync.set_frequencies(frequencies.clone());
            // Copies: a further round needs the rows again. Made, and the
            // identities' lineage read, on every core.
            use rayon::prelude::*;
            let mut ids: Vec<&MvId> = mvs.keys().collect();
            ids.sort_unstable();
            sync.add_mvs(ids.par_iter().map(|id| mvs[*id].clone()).collect());
            for a in &rules.agents {
                let rows: Vec<&CsRow> = cs[a.index].values().collect();
                let mut rows: Vec<CsRow> = rows.par_iter().map(|r| (*r).clone()).collect();
                rows.par_sort_unstable_by(|x, y| x.anchor.cmp(&y.anchor));
                sync.add_cs(a.index, rows);
            }
            let t_load = t0.elapsed();
            tracing::debug!(
                pending_ms = t_pending.as_millis() as u64,
                mv_ms = (t_mv - t_pending).as_millis() as u64,
                connectors_ms = (t_linked - t_mv).as_millis() as u64,
                handed_ms = (t_load - t_linked).as_millis() as u64,
                "Delta sync: loaded."
            );
            let plan = sync.plan();
            if let Some(e) = lookup.error.lock().ok().and_then(|mut e| e.take()) {
                return Err(e.into());
            }
            tracing::debug!(
                round,
                identities = mvs.len(),
                load_ms = t_load.as_millis() as u64,
                plan_ms = (t0.elapsed() - t_load).as_millis() as u64,
                "Delta sync: round planned."
            );
            wanted = lookup
                .reader
                .holders_of(&plan.probes)?
                .into_iter()
                .filter(|id| !mvs.contains_key(id))
                .collect();
            if wanted.is_empty() {
                tracing::debug!(
                    round,
                    identities = mvs.len(),
                    "Delta sync: closure complete."
                );
                return Ok(Some((plan, pending_ids)));
            }
        }
    }

    /// A sync as one step: join, project, flow, and write it all in one
    /// transaction. A delta sync falls back to a full one when the rules
    /// changed since the last full sync (the report says so).
    pub fn sync(
        &mut self,
        mode: SyncMode,
        run: RunId,
        ordinal: usize,
        now: DateTime<Utc>,
    ) -> Result<SyncReport> {
        let name = match mode {
            SyncMode::Full => "sync",
            SyncMode::Delta => "delta-sync",
        };
        let step = self
            .store
            .begin_step(run, ordinal, name, None, &stamp(now))?;
        let t0 = std::time::Instant::now();
        self.store.map_reads(mode == SyncMode::Delta)?;
        let rebuild = !self.keys_current()?;
        let (mut plan, delta_pending, ran) = match mode {
            SyncMode::Delta => match self.plan_delta(run, now, !rebuild)? {
                Some((plan, pending)) => (plan, Some(pending), SyncMode::Delta),
                None => {
                    info!(
                        "Delta sync: running a full sync (first sync, changed rules, or a change that reaches too far)."
                    );
                    self.store.map_reads(false)?;
                    let mut sync = self.prepare_sync(run, now)?;
                    sync.set_rebuild_keys(rebuild);
                    (sync.plan(), None, SyncMode::Full)
                }
            },
            SyncMode::Full => {
                let mut sync = self.prepare_sync(run, now)?;
                sync.set_rebuild_keys(rebuild);
                (sync.plan(), None, SyncMode::Full)
            }
        };
        let t_plan = t0.elapsed();
        tracing::debug!(rss_mib = crate::engine::rss_mib(), "Sync: planned.");
        if crate::shutdown::requested() {
            let message = "stopped by a signal before writing; nothing changed";
            self.store.fail_step(step, message, &stamp(Utc::now()))?;
            return Err(AppError::Stopped);
        }
        // The deletion guard weighs what the sync removes against counts
        // that scan an index each (the metaverse, a connector space). They
        // are taken on a second connection while this one writes; a sync
        // the guard stops is rolled back before it commits.
        let removals = Removals::of(&plan);
        // The same connection reads ahead the group memberships of the
        // identities the sync writes, which the groups' pass after the
        // commit compares with (the sync does not write them). Not for a
        // sync that writes most of the metaverse: that pass reads them in
        // chunks, and holding them all would only add to the peak.
        let written = plan.inserts.len() + plan.updates.len() + plan.deletes.len();
        let ahead_ids: Vec<MvId> = if self.rules.metaverse.groups.is_empty() || written > READ_AHEAD
        {
            Vec::new()
        } else {
            plan.inserts
                .iter()
                .chain(&plan.updates)
                .map(|w| w.id)
                .chain(plan.deletes.iter().copied())
                .collect()
        };
        let sidecar = if removals.any() || !ahead_ids.is_empty() {
            Some(self.store.reader()?)
        } else {
            None
        };
        let errors: Vec<StepErrorRow> = plan
            .errors
            .iter()
            .map(|e| StepErrorRow {
                kind: e.kind.to_string(),
                agent: e.agent.clone(),
                anchor: e.anchor.clone(),
                source: None,
                line: None,
                message: e.message.clone(),
            })
            .collect();
        let tx = self.store.begin()?;
        if ran == SyncMode::Full
            && plan.updates.is_empty()
            && plan.counters.mv_unchanged == 0
            && !plan.inserts.is_empty()
        {
            tx.writes_all_anew(run)?;
        }
        let rules = &self.rules;
        // Everything the step writes, in its transaction; on an error (or a
        // stop) the transaction is dropped and the step is marked failed.
        // A first sync writes every identity: their keys are gathered as
        // they are written, instead of read back afterwards.
        let kinds = KeyKinds::of(rules);
        let today = now.format("%Y-%m-%d").to_string();
        let gather_keys = ran == SyncMode::Full
            && rebuild
            && plan.updates.is_empty()
            && plan.counters.mv_unchanged == 0;
        // The values of the identities the group rules read, as written:
        // the groups are computed from these instead of reading them back.
        let mv = &rules.metaverse;
        let group_reads: Vec<bool> = (0..mv.types.len())
            .map(|t| !mv.computed(t) && mv.groups.iter().any(|g| g.members == t))
            .collect();
        let allow = self.allow_deletes;
        let written = std::thread::scope(|scope| {
            let reads = sidecar.map(|store| {
                let (removals, ahead_ids) = (&removals, &ahead_ids);
                scope.spawn(move || -> Result<(Option<GuardSizes>, OldKeys)> {
                    let sizes = match removals.any() {
                        true => Some(removals.sizes(&store, rules)?),
                        false => None,
                    };
                    let ahead = match ahead_ids.is_empty() {
                        true => OldKeys::default(),
                        false => OldKeys::read(&store, rules, ahead_ids)?,
                    };
                    Ok((sizes, ahead))
                })
            });
            (|| -> Result<(OldKeys, WrittenKeys)> {
                // The groups of what was written are worked out on a
                // thread of its own while this one writes the rest. One
                // core, not the pool: the writer keeps the other.
                let mut group_keys = None;
                let gathered = write_plan(
                    &tx,
                    rules,
                    &mut plan,
                    (run, step),
                    gather_keys.then_some((&kinds, today.as_str())),
                    (&group_reads, &mut |kept| {
                        if !kept.is_empty() {
                            group_keys =
                                Some(scope.spawn(move || WrittenKeys::compute(rules, kept, now)));
                        }
                    }),
                )?;
                if let Some((mut keys, due)) = gathered {
                    let t = std::time::Instant::now();
                    {
                        use rayon::slice::ParallelSliceMut;
                        keys.par_sort_unstable();
                    }
                    tx.replace_keys(&keys, &due, kinds.signature())?;
                    tracing::debug!(
                        keys = keys.len(),
                        ms = t.elapsed().as_millis() as u64,
                        "Sync: lookup keys written."
                    );
                }
                match &delta_pending {
                    // A full sync re-decides every unjoined object, so the queue is rebuilt.
                    None => tx.clear_all_ambiguous()?,
                    Some(pending) => {
                        for cs in pending {
                            tx.clear_ambiguous(*cs)?;
                        }
                    }
                }
                for a in &plan.ambiguous {
                    tx.set_ambiguous(&crate::store::AmbiguousRow {
                        cs_id: a.cs,
                        agent: a.agent.clone(),
                        anchor: a.anchor.clone(),
                        rule: a.rule.clone(),
                        candidates: a.candidates.clone(),
                        run,
                        scores: (!a.scores.is_empty())
                            .then(|| serde_json::to_string(&a.scores).ok())
                            .flatten(),
                    })?;
                }
                for cs in &plan.manual_applied {
                    tx.clear_ambiguous(*cs)?;
                }
                tx.decisions_applied(&plan.manual_applied, run)?;
                tx.drop_decisions(&plan.removed_cs)?;
                for a in &rules.agents {
                    tx.mark_synced(&a.name)?;
                }
                tx.clear_due_until(&today)?;
                if ran == SyncMode::Full {
                    tx.set_meta("last_full_sync_rules_hash", &rules.hash)?;
                }
                for (a, f) in &plan.frequencies {
                    let text = serde_json::to_string(f).unwrap_or_default();
                    tx.set_meta(&frequencies_key(&rules.agents[*a].name), &text)?;
                }
                let (sizes, ahead) = match reads {
                    Some(h) => joined(h)?,
                    None => (None, OldKeys::default()),
                };
                let allowed_deletes = removals
                    .judge(rules, allow, sizes.as_ref())
                    .map_err(AppError::Guard)?;
                for detail in &allowed_deletes {
                    tx.audit(
                        &AuditEntry::now(AuditKind::DeletesAllowed, Some(run))
                            .detail(detail.clone()),
                    )?;
                }
                let mut counters = serde_json::to_value(plan.counters).unwrap_or_default();
                if let Some(c) = counters.as_object_mut() {
                    c.insert("mode".into(), serde_json::to_value(ran).unwrap_or_default());
                }
                tx.finish_step(
                    step,
                    "success",
                    &counters,
                    None,
                    &errors,
                    &stamp(Utc::now()),
                )?;
                let group_keys = group_keys.map(joined).unwrap_or_default();
                Ok((ahead, group_keys))
            })()
        });
        let (ahead, group_keys) = match written {
            Ok(written) => written,
            Err(e) => {
                drop(tx);
                self.store
                    .fail_step(step, &e.to_string(), &stamp(Utc::now()))?;
                return Err(e);
            }
        };
        fault_point("sync-before-commit");
        tracing::debug!(rss_mib = crate::engine::rss_mib(), "Sync: written.");
        let t_write = t0.elapsed() - t_plan;
        tx.commit()?;
        let t_commit = t0.elapsed() - t_plan - t_write;
        let c = plan.counters;
        // The plan's memory goes back before the keys are rebuilt.
        drop(plan);
        if ran == SyncMode::Full && rebuild && !gather_keys {
            self.rebuild_keys(now)?;
        }
        let groups = self.compute_groups(run, step, now, group_keys, ahead)?;
        let provision = self.provision(run, step, now)?;
        info!(
            mode = ?ran,
            plan_ms = t_plan.as_millis() as u64,
            write_ms = t_write.as_millis() as u64,
            commit_ms = t_commit.as_millis() as u64,
            joins = c.joins,
            projections = c.projections,
            ambiguous = c.ambiguous,
            mv_adds = c.mv_adds,
            mv_updates = c.mv_updates,
            mv_deletes = c.mv_deletes,
            "Sync finished."
        );
        Ok(SyncReport {
            run,
            mode: ran,
            counters: c,
            errors,
            groups,
            provision,
        })
    }

    /// Writes every identity's lookup keys and due dates anew, after a full
    /// sync under rules the stored keys were not built for. Its own
    /// transaction: until it commits, the store says the keys are stale and
    /// a delta sync runs as a full one.
    fn rebuild_keys(&mut self, now: DateTime<Utc>) -> Result<()> {
        let t0 = std::time::Instant::now();
        let kinds = KeyKinds::of(&self.rules);
        let today = now.format("%Y-%m-%d").to_string();
        let rules = &self.rules;
        let schema_of = |t: &str| rules.metaverse.synced_schema(t);
        let mut keys: Vec<(u64, MvId)> = Vec::new();
        let mut due: Vec<(MvId, Vec<Box<str>>)> = Vec::new();
        self.store.load_mv(&schema_of, &mut |row| {
            let Some(ty) = rules.metaverse.index(&row.object_type) else {
                return;
            };
            for k in kinds.keys(ty, &row.attrs) {
                keys.push((k, row.id));
            }
            let d = crate::engine::due_days(
                &rules.metaverse.types[ty],
                &row.attrs,
                row.retained_since.as_deref(),
                &today,
            );
            if !d.is_empty() {
                due.push((row.id, d));
            }
        })?;
        let t_load = t0.elapsed();
        {
            use rayon::slice::ParallelSliceMut;
            keys.par_sort_unstable();
        }
        let t_sort = t0.elapsed() - t_load;
        let tx = self.store.begin()?;
        tx.replace_keys(&keys, &due, kinds.signature())?;
        tx.commit()?;
        info!(
            keys = keys.len(),
            load_ms = t_load.as_millis() as u64,
            sort_ms = t_sort.as_millis() as u64,
            ms = t0.elapsed().as_millis() as u64,
            "Lookup keys rebuilt."
        );
        Ok(())
    }

    /// Runs a profile's steps in order; stops at the first failed step
    /// unless that step says `continue_on_error`, and before the next step
    /// once a stop was requested (`shutdown`): the run ends `stopped`.
    pub fn run_profile(
        &mut self,
        name: &str,
        now: &dyn Fn() -> DateTime<Utc>,
    ) -> Result<ProfileReport> {
        let Some(profile) = self.rules.profiles.get(name).cloned() else {
            let names: Vec<&str> = self.rules.profiles.keys().map(String::as_str).collect();
            return Err(AppError::Usage(format!(
                "no profile {name:?}; profiles are: {}",
                names.join(", ")
            )));
        };
        let started = std::time::Instant::now();
        let run = self.begin_run(Some(name), &format!("run {name}"), now())?;
        let mut steps = Vec::new();
        let mut ok = true;
        let mut stopped = None;
        for (i, step) in profile.steps.iter().enumerate() {
            let label = step.action.to_string();
            if crate::shutdown::requested() {
                stopped = Some(format!(
                    "stopped by a signal before step {} ({label})",
                    i + 1
                ));
                break;
            }
            let t = std::time::Instant::now();
            let outcome = match &step.action {
                StepAction::Import { agent } if self.rules.target(agent).is_some() => {
                    self.confirm(agent, run, i + 1, now()).map(|r| StepOutcome {
                        confirm: Some(r),
                        ..StepOutcome::success(&label)
                    })
                }
                StepAction::Import { agent } | StepAction::DeltaImport { agent } => {
                    let mode = if matches!(step.action, StepAction::DeltaImport { .. }) {
                        ImportMode::Delta
                    } else {
                        ImportMode::Full
                    };
                    self.import(agent, mode, run, i + 1, now())
                        .map(|r| StepOutcome {
                            import: Some(r),
                            ..StepOutcome::success(&label)
                        })
                }
                StepAction::Sync | StepAction::DeltaSync => {
                    let mode = if step.action == StepAction::DeltaSync {
                        SyncMode::Delta
                    } else {
                        SyncMode::Full
                    };
                    self.sync(mode, run, i + 1, now()).map(|r| StepOutcome {
                        sync: Some(r),
                        ..StepOutcome::success(&label)
                    })
                }
                StepAction::Export { agent } => {
                    self.export(agent, run, i + 1, now()).map(|r| StepOutcome {
                        export: Some(r),
                        ..StepOutcome::success(&label)
                    })
                }
            };
            let ms = t.elapsed().as_millis() as u64;
            match outcome {
                Ok(o) => steps.push(StepOutcome { ms, ..o }),
                Err(e) => {
                    // However a step reports being stopped, the flag says why.
                    let stop = matches!(e, AppError::Stopped) || crate::shutdown::requested();
                    steps.push(StepOutcome {
                        status: if stop { "stopped" } else { "failed" }.into(),
                        message: Some(e.to_string()),
                        ms,
                        ..StepOutcome::success(&label)
                    });
                    if stop {
                        stopped = Some(format!("stopped by a signal in step {} ({label})", i + 1));
                        break;
                    }
                    if !step.continue_on_error {
                        ok = false;
                        break;
                    }
                }
            }
        }
        let status = match (&stopped, ok) {
            (Some(_), _) => "stopped",
            (None, true) => "success",
            (None, false) => "failed",
        };
        if let Some(why) = &stopped {
            tracing::warn!(profile = name, run, "Run {why}.");
        }
        self.finish_run_as(run, status, now())?;
        Ok(ProfileReport {
            profile: name.to_string(),
            run,
            status: status.into(),
            message: stopped,
            ms: started.elapsed().as_millis() as u64,
            steps,
        })
    }

    /// Finds an identity by metaverse id, `agent:anchor`, any agent's
    /// anchor, or an exact attribute value.
    pub fn find_identity(&self, object_type: Option<&str>, key: &str) -> Result<Vec<MvId>> {
        if let Some((agent, anchor)) = key.split_once(':')
            && self.rules.agent(agent).is_some()
        {
            return Ok(self.store.mv_of(agent, anchor)?.into_iter().collect());
        }
        let types: Vec<&str> = match object_type {
            Some(t) => vec![t],
            None => self
                .rules
                .metaverse
                .types
                .iter()
                .map(|t| t.name.as_str())
                .collect(),
        };
        let mut found = Vec::new();
        for a in &self.rules.agents {
            if types.contains(&self.rules.metaverse.types[a.object_type].name.as_str())
                && let Some(mv) = self.store.mv_of(&a.name, key)?
                && !found.contains(&mv)
            {
                found.push(mv);
            }
        }
        if !found.is_empty() {
            return Ok(found);
        }
        if let Ok(id) = key.parse::<MvId>() {
            let schema_of = |t: &str| self.rules.metaverse.get(t).map(|t| &t.schema);
            if let Some(row) = self.store.get_mv(id, &schema_of)?
                && types.contains(&row.object_type.as_str())
            {
                return Ok(vec![id]);
            }
        }
        for t in &self.rules.metaverse.types {
            if !types.contains(&t.name.as_str()) {
                continue;
            }
            for name in t.schema.names() {
                for id in self.store.find_mv_by(&t.name, name, key)? {
                    if !found.contains(&id) {
                        found.push(id);
                    }
                }
            }
        }
        Ok(found)
    }

    pub fn rules_dir(&self) -> PathBuf {
        self.rules.dir.clone()
    }
}

pub(crate) fn source_name(rules: &RuleSet, agent: &str) -> String {
    match rules.agent(agent).map(|a| &a.source) {
        Some(connector::Source::Csv(c)) => c.display.clone(),
        Some(connector::Source::Sql(c)) => c.display.clone(),
        None => agent.to_string(),
    }
}

/// The message of a step the deletion guard stopped.
pub(crate) fn guard_message(what: &str, guard: &crate::rules::DeletionGuard, most: u64) -> String {
    format!(
        "deletion guard: this step would {what}; the limit is {} objects or {}% \
         (deletion_guard in the metaverse rules). Nothing was written. If this is \
         intended, run it again with --allow-deletes {most}",
        guard.max_deletes, guard.max_delete_percent
    )
}

/// The detail of a `deletes-allowed` audit record: a step that went past
/// the deletion guard's limits because `--allow-deletes` let it.
pub(crate) fn allowed_detail(
    step: &str,
    what: &str,
    deletes: u64,
    guard: &crate::rules::DeletionGuard,
    allowed: Option<u64>,
) -> serde_json::Value {
    serde_json::json!({
        "step": step,
        "what": what,
        "deletes": deletes,
        "allowed": allowed,
        "max_deletes": guard.max_deletes,
        "max_delete_percent": guard.max_delete_percent,
    })
}

/// Keys and due dates of every identity a first sync writes, gathered as
/// the identities are written (see [`write_plan`]).
type Gathered = (Vec<(u64, MvId)>, Vec<(MvId, Vec<Box<str>>)>);

/// Identities a sync wrote, in the order written: id, object type and values.
pub(crate) type Kept = Vec<(MvId, usize, crate::model::Record)>;

/// Where the store keeps an agent's term frequencies of the last full sync.
fn frequencies_key(agent: &str) -> String {
    format!("fuzzy_frequencies:{agent}")
}

/// Writes a sync plan's identities, links, lookup keys, due dates and
/// change records through the step's transaction. The identities are taken
/// out of the plan a slice at a time and freed once written, but for the
/// values of the object types `keep` marks, which go to `on_kept` for the
/// group rules once every identity is written (the links and keys are
/// written after). With `gather`, every written identity's lookup keys and
/// due dates are also returned: a first sync writes them all, so its key
/// index needs no second read.
fn write_plan(
    tx: &Tx,
    rules: &RuleSet,
    plan: &mut SyncPlan,
    (run, step): (RunId, i64),
    gather: Option<(&KeyKinds, &str)>,
    (keep, on_kept): (&[bool], &mut dyn FnMut(Kept)),
) -> Result<Option<Gathered>> {
    let t0 = std::time::Instant::now();
    let mut gathered: Option<Gathered> = gather.map(|_| (Vec::new(), Vec::new()));
    // Room for what is kept and gathered, once: a map or a vector of
    // millions grown by doubling copies itself into fresh memory each time.
    let total = plan.inserts.len() + plan.updates.len();
    let kept_type = |t: usize| keep.get(t).copied().unwrap_or(false);
    let mut kept = Kept::with_capacity(
        plan.inserts
            .iter()
            .chain(&plan.updates)
            .filter(|w| kept_type(w.object_type))
            .count(),
    );
    let mut first = true;
    let writes = std::mem::take(&mut plan.inserts)
        .into_iter()
        .map(|w| (w, true))
        .chain(
            std::mem::take(&mut plan.updates)
                .into_iter()
                .map(|w| (w, false)),
        );
    // A slice is encoded (JSON, keys) on another thread while the one
    // before it is written: SQLite writes on one core, the encoding keeps
    // the other busy.
    let (send, encoded) = std::sync::mpsc::sync_channel::<Encoded>(1);
    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(move || {
            let mut writes = writes.peekable();
            while writes.peek().is_some() {
                let batch: Vec<(crate::engine::MvWrite, bool)> =
                    writes.by_ref().take(1 << 14).collect();
                let texts = encode_identities(rules, &batch, gather);
                // The writer stopped (an error, a stop): so does this.
                if send.send((batch, texts)).is_err() {
                    break;
                }
            }
        });
        for (batch, texts) in encoded {
            // A stop asked for mid-write drops the transaction: nothing is written.
            if crate::shutdown::requested() {
                return Err(AppError::Stopped);
            }
            write_identities(tx, rules, &batch, texts, (run, step), gathered.as_mut())?;
            // The first slice tells how many keys an identity has here.
            if std::mem::take(&mut first)
                && let Some((keys, _)) = gathered.as_mut()
            {
                let per = keys.len() as f64 / batch.len().max(1) as f64;
                let expected = (per * total as f64 * 1.05) as usize;
                keys.reserve(expected.saturating_sub(keys.len()));
            }
            for (w, _) in batch {
                if kept_type(w.object_type) {
                    kept.push((w.id, w.object_type, w.attrs));
                }
            }
        }
        Ok(())
    })?;
    on_kept(kept);
    let t_mv = t0.elapsed();
    for id in &plan.deletes {
        // The deletion record keeps the last values, for the history.
        let last = tx.delete_mv(*id)?;
        let data = last.as_deref().and_then(crate::history::deleted_data);
        tx.add_change_with(
            step,
            &NewChange::identity("identity-deleted", *id, None),
            data.as_deref(),
        )?;
    }
    for cs in &plan.unlinks {
        tx.unlink(*cs)?;
    }
    for (agent, _cs, anchor, mv) in &plan.disconnected {
        tx.add_change(
            step,
            &NewChange {
                kind: "disconnected",
                agent: Some(&rules.agents[*agent as usize].name),
                cs_id: None,
                anchor: Some(anchor),
                mv_id: Some(*mv),
                detail: None,
            },
        )?;
    }
    tx.links(
        plan.links
            .iter()
            .map(|l| (l.cs, l.mv, l.kind, l.rule_name(rules), l.detail.as_deref())),
        run,
    )?;
    // The links this run wrote are its joins and projections, each as last
    // written, in object order. (Read back by their run, they cost a scan
    // of every link: 80 ms of each delta sync at a million people.)
    tx.add_changes(
        step,
        last_per_object(&plan.links).into_iter().map(|l| NewChange {
            kind: l.kind,
            agent: Some(&rules.agents[l.agent as usize].name),
            cs_id: Some(l.cs),
            anchor: None,
            mv_id: Some(l.mv),
            detail: l.rule_name(rules),
        }),
    )?;
    for cs in &plan.removed_cs {
        tx.remove_cs(*cs)?;
    }
    let t_links = t0.elapsed();
    tx.remove_keys(&plan.key_removes)?;
    tx.add_keys(&plan.key_adds)?;
    for (id, days) in &plan.due {
        tx.set_due(*id, days)?;
    }
    tracing::debug!(
        identities_ms = t_mv.as_millis() as u64,
        links_ms = (t_links - t_mv).as_millis() as u64,
        keys_ms = (t0.elapsed() - t_links).as_millis() as u64,
        key_adds = plan.key_adds.len(),
        key_removes = plan.key_removes.len(),
        due = plan.due.len(),
        "Sync: written."
    );
    Ok(gathered)
}

/// Of each object's links, the last written, in object order.
fn last_per_object(links: &[crate::engine::LinkWrite]) -> Vec<&crate::engine::LinkWrite> {
    let mut all: Vec<&crate::engine::LinkWrite> = links.iter().collect();
    // Stable: an object's links stay in the order they were written.
    all.sort_by_key(|l| l.cs);
    let mut last: Vec<&crate::engine::LinkWrite> = Vec::with_capacity(all.len());
    for l in all {
        match last.last_mut() {
            Some(prev) if prev.cs == l.cs => *prev = l,
            _ => last.push(l),
        }
    }
    last
}

/// What a sync removes, as the deletion guard weighs it: identities
/// deleted (or retained) and connectors removed, per agent.
struct Removals {
    identities: u64,
    disconnects: Vec<u64>,
}

impl Removals {
    fn of(plan: &SyncPlan) -> Removals {
        Removals {
            identities: plan.deletes.len() as u64 + plan.counters.mv_retained,
            disconnects: plan.disconnects_by_agent.clone(),
        }
    }

    /// Most syncs remove nothing, and then nothing needs counting.
    fn any(&self) -> bool {
        self.identities > 0 || self.disconnects.iter().any(|&n| n > 0)
    }

    /// What the removals are weighed against: the metaverse's size when
    /// identities go, and the space of each agent that loses connectors,
    /// as it stands before the sync (its staged deletes still in it: a
    /// space whose every object is a staged delete is not an empty one).
    fn sizes(&self, store: &Store, rules: &RuleSet) -> Result<GuardSizes> {
        let identities = match self.identities {
            0 => 0,
            _ => store.mv_count()?,
        };
        let mut agents = vec![0; self.disconnects.len()];
        for (a, &n) in self.disconnects.iter().enumerate() {
            if let (true, Some(agent)) = (n > 0, rules.agents.get(a)) {
                agents[a] = u64::try_from(store.space_objects(&agent.name)?).unwrap_or(0);
            }
        }
        Ok(GuardSizes { identities, agents })
    }

    /// The guard's verdict against the rules' limits and what the admin
    /// allowed. Passing, it says what passed only thanks to
    /// `--allow-deletes` (each an audit record's detail).
    fn judge(
        &self,
        rules: &RuleSet,
        allow: Option<u64>,
        sizes: Option<&GuardSizes>,
    ) -> std::result::Result<Vec<serde_json::Value>, String> {
        let Some(sizes) = sizes else {
            return Ok(Vec::new());
        };
        let guard = rules.metaverse.guard;
        let mut over = Vec::new();
        let mut allowed = Vec::new();
        let mut weigh = |n: u64, of: u64, what: String| {
            if !guard.allows(n, of, allow) {
                over.push((n, what));
            } else if !guard.allows(n, of, None) {
                allowed.push(allowed_detail("sync", &what, n, &guard, allow));
            }
        };
        if self.identities > 0 {
            let (n, total) = (self.identities, sizes.identities);
            weigh(n, total, format!("delete {n} of {total} identities"));
        }
        for (a, &n) in self.disconnects.iter().enumerate() {
            let (Some(agent), Some(&size)) = (rules.agents.get(a), sizes.agents.get(a)) else {
                continue;
            };
            if n > 0 {
                let agent = &agent.name;
                weigh(n, size, format!("disconnect {n} of {size} {agent} objects"));
            }
        }
        if over.is_empty() {
            return Ok(allowed);
        }
        let most = over.iter().map(|(n, _)| *n).max().unwrap_or(0);
        Err(guard_message(
            &over
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
                .join(" and "),
            &guard,
            most,
        ))
    }
}

/// The most identities whose group memberships a sync reads ahead.
const READ_AHEAD: usize = 100_000;

struct GuardSizes {
    identities: u64,
    agents: Vec<u64>,
}

/// A scoped thread's result; its panic goes on here, as if it had run on
/// this thread.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// `even` and `odd` back in one list: even[0], odd[0], even[1], ...
fn interleave<T>(even: Vec<T>, odd: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(even.len() + odd.len());
    let mut odd = odd.into_iter();
    for e in even {
        out.push(e);
        out.extend(odd.next());
    }
    out.extend(odd);
    out
}

/// The store's answers to a delta sync's key lookups; the first error is
/// kept for the caller, as the engine's lookups cannot fail.
struct StoreLookup {
    reader: crate::store::KeyReader,
    error: std::sync::Mutex<Option<StoreError>>,
    /// Answers read ahead ([`KeyLookup::prefetch`]); the store does not
    /// change while a sync plans.
    known: std::sync::Mutex<FxHashMap<crate::engine::Key, Vec<MvId>>>,
}

impl StoreLookup {
    fn failed(&self, e: StoreError) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(e);
        }
    }
}

impl crate::engine::KeyLookup for StoreLookup {
    fn holders(&self, key: crate::engine::Key) -> Vec<MvId> {
        if let Some(ids) = self.known.lock().ok().and_then(|k| k.get(&key).cloned()) {
            return ids;
        }
        match self.reader.holders(key) {
            Ok(ids) => ids,
            Err(e) => {
                self.failed(e);
                Vec::new()
            }
        }
    }

    fn prefetch(&self, keys: &[crate::engine::Key]) {
        match self.reader.holders_many(keys) {
            Ok(answers) => {
                if let Ok(mut known) = self.known.lock() {
                    known.extend(answers);
                }
            }
            Err(e) => self.failed(e),
        }
    }
}

/// One slice of a plan's identities: the stored text (and, when gathering,
/// the keys and due dates) built on every core; SQLite takes the rows in
/// order on this thread.
/// An identity's row as text, with its keys and due dates when gathered,
/// and its change record's values.
type Texts = (String, String, Vec<u64>, Vec<Box<str>>, Option<String>);

/// A slice of identities to write, and their texts.
type Encoded = (Vec<(crate::engine::MvWrite, bool)>, Vec<Texts>);

fn encode_identities(
    rules: &RuleSet,
    batch: &[(crate::engine::MvWrite, bool)],
    gather: Option<(&KeyKinds, &str)>,
) -> Vec<Texts> {
    use rayon::prelude::*;
    batch
        .par_iter()
        .map(|(w, insert)| {
            let t = &rules.metaverse.types[w.object_type];
            let (keys, due) = match gather {
                Some((kinds, today)) => (
                    kinds.keys(w.object_type, &w.attrs),
                    crate::engine::due_days(t, &w.attrs, w.retained_since.as_deref(), today),
                ),
                None => (Vec::new(), Vec::new()),
            };
            // Before and after of what changed: nothing for the rest.
            let data = (!insert && !w.changes.is_empty())
                .then(|| crate::history::update_data(&t.schema, &w.changes, &w.previous, &w.attrs));
            (
                crate::model::json::record_to_json(&w.attrs, &t.schema),
                crate::engine::lineage_json(rules, w),
                keys,
                due,
                data,
            )
        })
        .collect()
}

fn write_identities(
    tx: &Tx,
    rules: &RuleSet,
    batch: &[(crate::engine::MvWrite, bool)],
    texts: Vec<Texts>,
    (run, step): (RunId, i64),
    gathered: Option<&mut Gathered>,
) -> Result<()> {
    let mut gathered = gathered;
    // New identities go in many to a statement, before anything else is
    // written of them.
    let inserts: Vec<(MvId, &str, &str, &str)> = batch
        .iter()
        .zip(&texts)
        .filter(|((_, insert), _)| *insert)
        .map(|((w, _), (attrs, lineage, ..))| {
            let t = &rules.metaverse.types[w.object_type];
            (w.id, t.name.as_str(), attrs.as_str(), lineage.as_str())
        })
        .collect();
    tx.insert_mvs(&inserts, run)?;
    for ((w, insert), (attrs, lineage, keys, due, data)) in batch.iter().zip(texts) {
        let t = &rules.metaverse.types[w.object_type];
        if !*insert {
            tx.update_mv(w.id, &t.name, &attrs, &lineage, run)?;
            if !w.changes.is_empty() {
                let names: Vec<&str> = w.changes.iter().map(|&a| t.schema.name(a)).collect();
                tx.add_change_with(
                    step,
                    &NewChange::identity("identity-updated", w.id, Some(&names.join(","))),
                    data.as_deref(),
                )?;
            }
        }
        if w.retained_changed {
            tx.set_retained(w.id, w.retained_since.as_deref())?;
        }
        if w.retained_changed && w.retained_since.is_some() {
            tx.add_change(
                step,
                &NewChange::identity("identity-retained", w.id, w.retained_since.as_deref()),
            )?;
        }
        if let Some((k, d)) = gathered.as_deref_mut() {
            k.extend(keys.into_iter().map(|key| (key, w.id)));
            if !due.is_empty() {
                d.push((w.id, due));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::interleave;

    #[test]
    fn interleave_alternates_and_keeps_the_longer_tail() {
        assert_eq!(interleave(vec![0, 2, 4], vec![1, 3]), vec![0, 1, 2, 3, 4]);
        assert_eq!(interleave(vec![0], vec![1, 3, 5]), vec![0, 1, 3, 5]);
        assert_eq!(interleave(Vec::<u8>::new(), vec![1]), vec![1]);
        assert_eq!(interleave(vec![0, 2], Vec::new()), vec![0, 2]);
    }

    #[test]
    fn of_each_objects_links_the_last_written_is_kept_in_object_order() {
        let link = |cs, mv, kind| crate::engine::LinkWrite {
            cs,
            agent: 0,
            mv,
            kind,
            rule: None,
            detail: None,
        };
        let links = vec![
            link(7, 1, "projected"),
            link(3, 2, "joined"),
            link(7, 5, "joined"),
            link(5, 3, "projected"),
            link(3, 4, "projected"),
            link(7, 6, "projected"),
        ];
        let kept: Vec<(i64, i64, &str)> = super::last_per_object(&links)
            .into_iter()
            .map(|l| (l.cs, l.mv, l.kind))
            .collect();
        assert_eq!(
            kept,
            vec![
                (3, 4, "projected"),
                (5, 3, "projected"),
                (7, 6, "projected")
            ]
        );
        assert!(super::last_per_object(&[]).is_empty());
    }
}
