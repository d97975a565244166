//! Gathers the reconciliation report from the store: drift rolled back and
//! drift only reported, orphans, missing accounts, leavers whose accounts
//! are still enabled, ambiguous joins waiting for a decision, failing
//! exports and quarantined targets.
//!
//! Event sections (drift, orphans) cover the runs asked for, plus whatever
//! is still open; state sections (missing accounts, leavers still enabled,
//! ambiguous joins, failing exports, quarantine) are the store as it is now.

use crate::app::{App, Result};
use crate::model::{MvId, RunId};
use crate::report::{Report, Section, TargetSummary};
use crate::store::{DriftRow, RunRange};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

pub const DRIFT_ROLLED_BACK: &str = "drift-rolled-back";
pub const DRIFT_REPORTED: &str = "drift-reported";
pub const ORPHANS: &str = "orphans";
pub const MISSING: &str = "missing";
pub const LEAVERS: &str = "leavers-enabled";
pub const AMBIGUOUS: &str = "ambiguous-joins";
pub const EXPORT_ERRORS: &str = "export-errors";
pub const QUARANTINED: &str = "quarantined";

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn values(json: &str, attr: &str) -> String {
    let v: Vec<String> = serde_json::from_str(json).unwrap_or_default();
    crate::export::shown(attr, &v)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// One section being filled: its rows and each row's target.
struct Building {
    section: Section,
    targets: Vec<Option<String>>,
}

impl Building {
    fn new(key: &str, title: &str, about: &str, columns: &[&str]) -> Building {
        Building {
            section: Section {
                key: key.into(),
                title: title.into(),
                about: about.into(),
                columns: cols(columns),
                rows: Vec::new(),
            },
            targets: Vec::new(),
        }
    }

    fn push(&mut self, target: Option<&str>, row: Vec<String>) {
        self.targets.push(target.map(String::from));
        self.section.rows.push(row);
    }
}

impl App {
    /// The reconciliation report over `runs`; `period` says which in words.
    pub fn reconcile_report(
        &self,
        runs: RunRange,
        period: &str,
        now: DateTime<Utc>,
    ) -> Result<Report> {
        let store = &self.store;
        let drift = store.drift_in(runs)?;
        let orphans = store.orphans_in(runs)?;
        let missing = store.missing_accounts()?;
        let failing = store.failing_exports()?;
        let ambiguous = store.ambiguous()?;
        let leavers = self.leavers_enabled(now)?;

        let mut ids: Vec<MvId> = drift.iter().map(|d| d.mv_id).collect();
        ids.extend(missing.iter().map(|m| m.mv_id));
        ids.extend(failing.iter().map(|f| f.mv_id));
        ids.extend(leavers.iter().map(|l| l.0));
        for a in &ambiguous {
            ids.extend(a.candidates.iter().copied());
        }
        ids.sort_unstable();
        ids.dedup();
        // One read of every identity the rows name, not one per row.
        let schema_of = |t: &str| self.rules.metaverse.get(t).map(|t| &t.schema);
        let labels: HashMap<MvId, String> = store
            .load_mv_ids(&ids, &schema_of)?
            .iter()
            .filter_map(|row| Some((row.id, crate::explain::name_of(&self.rules, row)?)))
            .collect();
        let label = |id: MvId| labels.get(&id).cloned().unwrap_or_default();
        let when = |run: RunId, at: &str| format!("{run} ({at})");

        let drift_cols = [
            "target",
            "identity",
            "display name",
            "account",
            "attribute",
            "expected",
            "found",
            "detected in run",
            "last seen in run",
            "outcome",
            "outcome run",
            "note",
        ];
        let mut rolled = Building::new(
            DRIFT_ROLLED_BACK,
            "Drift rolled back",
            "Values changed in a target outside idsync under an authoritative flow: each is set back by a corrective export. Pending: waits for the next export of the target; rolled-back: the outcome run restored it.",
            &drift_cols,
        );
        let mut reported = Building::new(
            DRIFT_REPORTED,
            "Drift reported only",
            "Values changed in a target outside idsync under a report-only flow: recorded, left as they are. Decide whether the target or the rules are right.",
            &drift_cols,
        );
        for d in &drift {
            let row = drift_row(d, &label(d.mv_id), &when);
            if d.policy == "authoritative" {
                rolled.push(Some(&d.agent), row);
            } else {
                reported.push(Some(&d.agent), row);
            }
        }

        let mut orphan_sec = Building::new(
            ORPHANS,
            "Orphans",
            "Objects in a target that belong to no identity: created by hand, or left behind. The target's policy reports them, or disables or deletes them at the next export (deletes within the deletion guard).",
            &[
                "target",
                "identity",
                "account",
                "target id",
                "policy",
                "state",
                "first seen in run",
                "last seen in run",
                "acted on in run",
                "error",
            ],
        );
        for o in &orphans {
            orphan_sec.push(
                Some(&o.agent),
                vec![
                    o.agent.clone(),
                    String::new(),
                    o.name.clone(),
                    o.remote_id.clone(),
                    o.action.clone(),
                    o.state.clone(),
                    when(o.first_run, &o.first_at),
                    o.last_run.to_string(),
                    opt(o.done_run),
                    opt(o.error.clone()),
                ],
            );
        }

        let mut missing_sec = Building::new(
            MISSING,
            "Missing accounts",
            "Identities in a target's scope with no account there: not created yet, creation failing, or deleted in the target outside idsync.",
            &[
                "target",
                "identity",
                "display name",
                "account",
                "reason",
                "in scope since run",
                "last change in run",
            ],
        );
        for m in &missing {
            let reason = match (&m.error, m.pending) {
                (Some(e), _) => e.clone(),
                (None, true) => "waits for the next export".to_string(),
                (None, false) => "not queued".to_string(),
            };
            missing_sec.push(
                Some(&m.agent),
                vec![
                    m.agent.clone(),
                    m.mv_id.to_string(),
                    label(m.mv_id),
                    m.desired.clone(),
                    reason,
                    m.created_run.to_string(),
                    m.updated_run.to_string(),
                ],
            );
        }

        let mut leaver_sec = Building::new(
            LEAVERS,
            "Leavers still enabled",
            "Identities the rules call leavers whose account in a target is enabled: the target keeps them in scope, skips out-of-scope deletions, or the disabling export has not reached it.",
            &[
                "target",
                "identity",
                "display name",
                "account",
                "account state",
                "why",
                "last change in run",
            ],
        );
        for (id, agent, name, state, why, run) in &leavers {
            leaver_sec.push(
                Some(agent),
                vec![
                    agent.clone(),
                    id.to_string(),
                    label(*id),
                    name.clone(),
                    state.clone(),
                    why.clone(),
                    run.to_string(),
                ],
            );
        }

        let mut ambiguous_sec = Building::new(
            AMBIGUOUS,
            "Ambiguous joins",
            "Source objects whose join rule found several identities, or whose fuzzy join rule scored candidates it may not join on its own (with each candidate's score): not joined, waiting for a person to decide (idsync review show N, then accept or reject).",
            &[
                "review",
                "agent",
                "source object",
                "rule",
                "candidate identities",
                "run",
            ],
        );
        for a in &ambiguous {
            // A fuzzy rule's item carries each candidate's score.
            let scores = crate::engine::fuzzy_join::Scored::list_from_json(a.scores.as_deref());
            let c: Vec<String> = a
                .candidates
                .iter()
                .map(|&id| {
                    let mut about: Vec<String> = labels.get(&id).cloned().into_iter().collect();
                    if let Some(s) = scores.iter().find(|s| s.mv == id) {
                        about.push(format!("score {:.2}", s.score));
                        if let Some(v) = &s.via {
                            about.push(format!("via {v}"));
                        }
                    }
                    if about.is_empty() {
                        id.to_string()
                    } else {
                        format!("{id} ({})", about.join(", "))
                    }
                })
                .collect();
            ambiguous_sec.push(
                None,
                vec![
                    a.cs_id.to_string(),
                    a.agent.clone(),
                    format!("{}:{}", a.agent, a.anchor),
                    a.rule.clone(),
                    c.join(", "),
                    a.run.to_string(),
                ],
            );
        }

        let mut errors_sec = Building::new(
            EXPORT_ERRORS,
            "Export errors",
            "Accounts whose last export failed; each is retried at the next export of its target.",
            &[
                "target",
                "identity",
                "display name",
                "account",
                "account state",
                "error",
                "attempts",
                "run",
            ],
        );
        for f in &failing {
            errors_sec.push(
                Some(&f.agent),
                vec![
                    f.agent.clone(),
                    f.mv_id.to_string(),
                    label(f.mv_id),
                    opt(f.name.clone()),
                    f.state.clone(),
                    f.error.clone(),
                    f.attempts.to_string(),
                    f.updated_run.to_string(),
                ],
            );
        }

        let mut quarantine_sec = Building::new(
            QUARANTINED,
            "Quarantined targets",
            "Targets idsync stopped exporting to after too many failures; idsync quarantine clear <target> resumes them.",
            &["target", "identity", "reason", "since run"],
        );
        let mut targets = Vec::new();
        let mut quarantined: HashMap<String, String> = HashMap::new();
        for t in &self.rules.targets {
            let state = store.target_state(&t.name)?;
            if let Some(q) = &state.quarantined {
                quarantined.insert(t.name.clone(), q.clone());
                quarantine_sec.push(
                    Some(&t.name),
                    vec![
                        t.name.clone(),
                        String::new(),
                        q.clone(),
                        opt(state.quarantined_run),
                    ],
                );
            }
        }

        let built = [
            rolled,
            reported,
            orphan_sec,
            missing_sec,
            leaver_sec,
            ambiguous_sec,
            errors_sec,
            quarantine_sec,
        ];
        for t in &self.rules.targets {
            let counts = store.export_counts(&t.name)?;
            let per: Vec<(String, u64)> = built
                .iter()
                .map(|b| {
                    let n = b
                        .targets
                        .iter()
                        .filter(|x| x.as_deref() == Some(&t.name))
                        .count();
                    (b.section.key.clone(), n as u64)
                })
                .collect();
            targets.push(TargetSummary {
                target: t.name.clone(),
                kind: t.kind().into(),
                accounts: counts.accounts_created,
                counts: per,
                quarantined: quarantined.get(&t.name).cloned(),
            });
        }
        Ok(Report {
            title: "idsync reconciliation report".into(),
            generated_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            period: period.into(),
            store: store.path().display().to_string(),
            targets,
            sections: built.into_iter().map(|b| b.section).collect(),
        })
    }

    /// Accounts of leavers that are enabled: (identity, target, account,
    /// state, why, run). An identity is a leaver when its type's `leaver`
    /// rule says so.
    #[allow(clippy::type_complexity)]
    fn leavers_enabled(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(MvId, String, String, String, String, RunId)>> {
        let types: BTreeMap<&str, usize> = self
            .rules
            .metaverse
            .types
            .iter()
            .enumerate()
            .filter(|(_, t)| t.leaver.is_some())
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let mut out = Vec::new();
        if types.is_empty() {
            return Ok(out);
        }
        let mut first_error = None;
        self.store.enabled_accounts(&mut |a| {
            let Some(&ti) = types.get(a.object_type.as_str()) else {
                return;
            };
            let tgt = self.rules.target(&a.agent);
            if tgt.is_some_and(|t| !t.reconcile.grants_access) {
                return;
            }
            let t = &self.rules.metaverse.types[ti];
            let Some(leaver) = &t.leaver else { return };
            let record = match crate::model::json::record_from_json(&a.mv_attrs, &t.schema) {
                Ok(r) => r,
                Err(e) => {
                    first_error.get_or_insert(format!("identity {}: {e}", a.mv_id));
                    return;
                }
            };
            let key = a.mv_id.to_string();
            let ctx = crate::expr::Context {
                now,
                object_key: &key,
                unique: None,
            };
            let is_leaver = leaver
                .eval(&record, &ctx)
                .map(|v| crate::engine::truthy(&v))
                .unwrap_or(false);
            if !is_leaver {
                return;
            }
            let why = match (a.state.as_str(), a.pending) {
                ("present", _) => match tgt.map(|t| t.deprovision.skip_out_of_scope) {
                    Some(true) => "kept: the target skips out-of-scope deletions".to_string(),
                    _ => "in the target's provisioning scope".to_string(),
                },
                (s, true) => format!("{s} waits for the next export"),
                (s, false) => s.to_string(),
            };
            out.push((
                a.mv_id,
                a.agent.clone(),
                a.name.clone().unwrap_or_default(),
                a.state.clone(),
                why,
                a.updated_run,
            ));
        })?;
        if let Some(e) = first_error {
            tracing::warn!("Leavers check: {e}");
        }
        Ok(out)
    }
}

fn drift_row(d: &DriftRow, label: &str, when: &dyn Fn(RunId, &str) -> String) -> Vec<String> {
    vec![
        d.agent.clone(),
        d.mv_id.to_string(),
        label.to_string(),
        opt(d.account.clone()),
        d.attr.clone(),
        values(&d.expected, &d.attr),
        values(&d.found, &d.attr),
        when(d.detected_run, &d.detected_at),
        d.last_run.to_string(),
        d.outcome.clone(),
        match (&d.outcome_run, &d.outcome_at) {
            (Some(r), Some(at)) => when(*r, at),
            _ => String::new(),
        },
        opt(d.message.clone()),
    ]
}
