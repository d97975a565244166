//! Orchestration: rules -> store -> connectors -> engine -> store. Each
//! public method is one step or one query the CLI offers; the clock is a
//! parameter so runs are reproducible in tests.

use crate::connector;
use crate::engine::{Sync, SyncCounters, SyncPlan};
use crate::model::{MvId, RunId};
use crate::rules::{self, RuleErrors, RuleSet, StepAction};
use crate::store::{ImportCounts, StepErrorRow, Store, StoreError, fault_point};
use chrono::{DateTime, SecondsFormat, Utc};
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
    #[error("{0}")]
    Usage(String),
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
    pub counters: SyncCounters,
    pub errors: Vec<StepErrorRow>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepOutcome {
    pub step: String,
    pub status: String,
    pub message: Option<String>,
    pub import: Option<ImportReport>,
    pub sync: Option<SyncReport>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProfileReport {
    pub profile: String,
    pub run: RunId,
    pub status: String,
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
}

impl App {
    /// Opens the store, then loads the rules (using schemas the store
    /// remembers for sources that cannot be read right now).
    pub fn open(rules_dir: &Path, store_path: &Path) -> Result<App> {
        let store = Store::open(store_path)?;
        let rules = rules::load(rules_dir, &|agent| store.agent_schema(agent).ok().flatten())?;
        Ok(App { rules, store })
    }

    pub fn begin_run(
        &mut self,
        profile: Option<&str>,
        command: &str,
        now: DateTime<Utc>,
    ) -> Result<RunId> {
        let threads = rayon::current_num_threads();
        Ok(self
            .store
            .begin_run(profile, command, &stamp(now), &self.rules.hash, threads)?)
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
        Ok(self
            .store
            .finish_run(run, if ok { "success" } else { "failed" }, &stamp(now))?)
    }

    /// Computes a full sync without writing anything.
    pub fn plan_sync(&self, run: RunId, now: DateTime<Utc>) -> Result<SyncPlan> {
        Ok(self.prepare_sync(run, now)?.plan())
    }

    /// Loads everything a full sync reads; `.plan()` on the result is pure.
    pub fn prepare_sync(&self, run: RunId, now: DateTime<Utc>) -> Result<Sync<'_>> {
        let rules = &self.rules;
        let schema_of = |t: &str| rules.metaverse.get(t).map(|t| &t.schema);
        let mut sync = Sync::new(rules, run, now, self.store.next_mv_id()?);
        self.store
            .load_mv(&schema_of, &mut |row| sync.add_mv(row))?;
        for a in &rules.agents {
            sync.add_cs(a.index, self.store.load_cs(&a.name, &a.schema)?);
        }
        Ok(sync)
    }

    /// A full sync as one step: join, project, flow, and write it all in one transaction.
    pub fn sync(
        &mut self,
        _mode: SyncMode,
        run: RunId,
        ordinal: usize,
        now: DateTime<Utc>,
    ) -> Result<SyncReport> {
        let step = self
            .store
            .begin_step(run, ordinal, "sync", None, &stamp(now))?;
        let t0 = std::time::Instant::now();
        let sync = self.prepare_sync(run, now)?;
        let t_load = t0.elapsed();
        let plan = sync.plan();
        let t_plan = t0.elapsed() - t_load;
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
        // The stored text is built on every core, a slice at a time; SQLite
        // takes the rows in order on this thread.
        let rules = &self.rules;
        let writes: Vec<(&crate::engine::MvWrite, bool)> = plan
            .inserts
            .iter()
            .map(|w| (w, true))
            .chain(plan.updates.iter().map(|w| (w, false)))
            .collect();
        for chunk in writes.chunks(1 << 14) {
            let texts: Vec<(String, String)> = {
                use rayon::prelude::*;
                chunk
                    .par_iter()
                    .map(|(w, _)| {
                        let t = &rules.metaverse.types[w.object_type];
                        (
                            crate::model::json::record_to_json(&w.attrs, &t.schema),
                            crate::engine::lineage_json(rules, w),
                        )
                    })
                    .collect()
            };
            for ((w, insert), (attrs, lineage)) in chunk.iter().zip(texts) {
                let t = &rules.metaverse.types[w.object_type];
                if *insert {
                    tx.insert_mv(w.id, &t.name, &attrs, &lineage, run)?;
                } else {
                    tx.update_mv(w.id, &attrs, &lineage, run)?;
                }
            }
        }
        for id in &plan.deletes {
            tx.delete_mv(*id)?;
        }
        for cs in &plan.unlinks {
            tx.unlink(*cs)?;
        }
        for l in &plan.links {
            tx.link(
                l.cs,
                l.mv,
                l.kind,
                l.rule_name(&self.rules),
                run,
                l.detail.as_deref(),
            )?;
        }
        for cs in &plan.removed_cs {
            tx.remove_cs(*cs)?;
        }
        // A full sync re-decides every unjoined object, so the queue is rebuilt.
        tx.clear_all_ambiguous()?;
        for a in &plan.ambiguous {
            tx.set_ambiguous(a.cs, &a.agent, &a.anchor, &a.rule, &a.candidates, run)?;
        }
        for a in &self.rules.agents {
            tx.mark_synced(&a.name)?;
        }
        tx.set_meta("last_full_sync_rules_hash", &self.rules.hash)?;
        let counters = serde_json::to_value(plan.counters).unwrap_or_default();
        tx.finish_step(
            step,
            "success",
            &counters,
            None,
            &errors,
            &stamp(Utc::now()),
        )?;
        fault_point("sync-before-commit");
        let t_write = t0.elapsed() - t_load - t_plan;
        tx.commit()?;
        let t_commit = t0.elapsed() - t_load - t_plan - t_write;
        let c = plan.counters;
        info!(
            load_ms = t_load.as_millis() as u64,
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
            counters: plan.counters,
            errors,
        })
    }

    /// Runs a profile's steps in order; stops at the first failed step
    /// unless that step says `continue_on_error`.
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
        let run = self.begin_run(Some(name), &format!("run {name}"), now())?;
        let mut steps = Vec::new();
        let mut ok = true;
        for (i, step) in profile.steps.iter().enumerate() {
            let label = step.action.to_string();
            let outcome = match &step.action {
                StepAction::Import { agent } | StepAction::DeltaImport { agent } => {
                    let mode = if matches!(step.action, StepAction::DeltaImport { .. }) {
                        ImportMode::Delta
                    } else {
                        ImportMode::Full
                    };
                    self.import(agent, mode, run, i + 1, now())
                        .map(|r| StepOutcome {
                            step: label.clone(),
                            status: "success".into(),
                            message: None,
                            import: Some(r),
                            sync: None,
                        })
                }
                StepAction::Sync | StepAction::DeltaSync => {
                    let mode = if step.action == StepAction::DeltaSync {
                        SyncMode::Delta
                    } else {
                        SyncMode::Full
                    };
                    self.sync(mode, run, i + 1, now()).map(|r| StepOutcome {
                        step: label.clone(),
                        status: "success".into(),
                        message: None,
                        import: None,
                        sync: Some(r),
                    })
                }
            };
            match outcome {
                Ok(o) => steps.push(o),
                Err(e) => {
                    steps.push(StepOutcome {
                        step: label,
                        status: "failed".into(),
                        message: Some(e.to_string()),
                        import: None,
                        sync: None,
                    });
                    if !step.continue_on_error {
                        ok = false;
                        break;
                    }
                }
            }
        }
        self.finish_run(run, ok, now())?;
        Ok(ProfileReport {
            profile: name.to_string(),
            run,
            status: if ok { "success" } else { "failed" }.into(),
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
