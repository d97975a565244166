//! Reconciliation: the confirming import of a target and what it finds.
//!
//! The confirming import reads every account back and, for each one idsync
//! manages, confirms the changes it exported, and compares the rest with
//! what the export flows dictate ([`crate::engine::drift`]). Drift is
//! recorded per attribute, and under an `authoritative` flow the account is
//! queued for a corrective export; under `report` only recorded. Accounts
//! that are gone are missing (created again, or only reported); objects no
//! identity owns are orphans (reported, or disabled or deleted at the next
//! export). The import never writes to the target itself: every change goes
//! through an export, its guard and its record.
//!
//! [`report`] gathers the auditors' reconciliation report from the store.

pub mod report;

use crate::app::{App, Result, stamp};
use crate::audit::{AuditEntry, AuditKind};
use crate::connector::target::{Attrs, RemoteObject};
use crate::engine::drift::{self, same_values};
use crate::engine::outbound::{Desired, State, attrs_from_json, attrs_to_json};
use crate::model::{MvId, RunId};
use crate::rules::{DriftPolicy, OrphanAction};
use crate::store::{DriftRow, NewChange, NewDrift, StepErrorRow};
use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::json;

/// The attribute name drift records use for an account renamed in the target.
pub const NAME_ATTR: &str = "(name)";

#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfirmReport {
    pub agent: String,
    pub read: u64,
    pub confirmed: u64,
    pub not_reimported: u64,
    /// Attribute values changed in the target that were not drifting before.
    pub drift_found: u64,
    /// Accounts queued for a corrective export (authoritative drift).
    pub rollbacks_queued: u64,
    /// Attribute values drifting now, new or not (reported and pending).
    pub drift_open: u64,
    /// Drift that ended without a rollback (set right in the target).
    pub drift_resolved: u64,
    /// Accounts idsync created that the target no longer has.
    pub missing: u64,
    /// Objects in the target that are no identity's account.
    pub orphans: u64,
    pub orphans_new: u64,
    /// Accounts whose values other targets read back changed (their
    /// accounts there are exported again).
    pub read_back_changed: u64,
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl App {
    /// A confirming import of a target: reads every account back, confirms
    /// each exported change that arrived, flags each that did not
    /// (`exported-change-not-reimported`), records drift, missing accounts
    /// and orphans, and queues what the policies say to correct.
    pub fn confirm(
        &mut self,
        agent: &str,
        run: RunId,
        ordinal: usize,
        now: DateTime<Utc>,
    ) -> Result<ConfirmReport> {
        let (ti, step) = self.begin_target_step("import", agent, run, ordinal, now)?;
        let t = &self.rules.targets[ti];
        let read = crate::connector::open_target(&t.connection).and_then(|mut target| {
            target.connect()?;
            let mut remote: FxHashMap<String, RemoteObject> = FxHashMap::default();
            target.read_all(&mut |o| {
                remote.insert(o.id.clone(), o);
            })?;
            Ok(remote)
        });
        let mut remote = match read {
            Ok(r) => r,
            Err(e) => {
                let message = format!("cannot read the target: {e}");
                return Err(self.fail_target_step(step, agent, message)?);
            }
        };
        let at = stamp(now);
        let mut report = ConfirmReport {
            agent: agent.to_string(),
            read: remote.len() as u64,
            ..ConfirmReport::default()
        };
        let mut rows = Vec::new();
        self.store.each_export(agent, &mut |r| rows.push(r))?;
        let App { rules, store, .. } = self;
        let t = &rules.targets[ti];
        let recreate = t.reconcile.recreate_missing;
        let mut errors = Vec::new();
        let tx = store.begin()?;
        let mut open: FxHashMap<MvId, Vec<DriftRow>> = FxHashMap::default();
        for d in tx.open_drift(agent)? {
            open.entry(d.mv_id).or_default().push(d);
        }
        for mut row in rows {
            let Some(id) = row.remote_id.clone() else {
                // Not in the target yet. An account only reported missing
                // so far is created once the policy says so.
                if recreate && !row.pending && row.state != State::Delete.as_str() {
                    row.pending = true;
                    row.error = None;
                    tx.put_export(&row)?;
                }
                continue;
            };
            let Some(obj) = remote.remove(&id) else {
                if row.state == State::Delete.as_str() {
                    tx.remove_export(agent, row.mv_id)?;
                    continue;
                }
                report.missing += 1;
                let what = if recreate {
                    "the target no longer has this account; it is created again at the next export"
                } else {
                    "the target no longer has this account; it is not created again (missing = \"report\")"
                };
                errors.push(StepErrorRow {
                    kind: "account-missing".into(),
                    agent: Some(agent.to_string()),
                    anchor: row.name.clone(),
                    source: None,
                    line: Some(row.mv_id),
                    message: what.into(),
                });
                tx.audit(
                    &AuditEntry::now(AuditKind::AccountMissing, Some(run))
                        .target(agent)
                        .subject(row.name.clone().unwrap_or_default())
                        .detail(json!({"identity": row.mv_id, "recreate": recreate})),
                )?;
                tx.add_change(
                    step,
                    &NewChange::account(
                        "account-missing",
                        agent,
                        row.name.as_deref(),
                        Some(row.mv_id),
                        Some(what),
                    ),
                )?;
                row.remote_id = None;
                row.name = None;
                row.exported = None;
                row.unconfirmed = None;
                row.held = None;
                row.pending = recreate;
                row.error = (!recreate).then(|| {
                    format!("deleted in the target outside idsync (found in run {run}); missing = \"report\" keeps it so")
                });
                tx.put_export(&row)?;
                continue;
            };
            let mut changed = false;
            // Values the target assigned that other targets' account flows
            // read: when they change, those accounts are exported again.
            if !t.read_back.is_empty() {
                let held: crate::connector::target::Attrs = t
                    .read_back
                    .iter()
                    .filter_map(|a| {
                        let v = drift::found_values(&obj.attrs, a);
                        (!v.is_empty()).then(|| (a.clone(), v.to_vec()))
                    })
                    .collect();
                let text = attrs_to_json(&held);
                if row.held.as_deref() != Some(text.as_str()) {
                    row.held = Some(text);
                    changed = true;
                    report.read_back_changed += 1;
                    tx.touch_referrers(agent, row.mv_id)?;
                }
            }
            let mut drifts: Vec<drift::AttrDrift> = Vec::new();
            if row.name.as_deref() != Some(obj.name.as_str()) {
                // Renamed outside idsync: the next export renames it back.
                drifts.push(drift::AttrDrift {
                    attr: NAME_ATTR.into(),
                    expected: row.name.iter().cloned().collect(),
                    found: vec![obj.name.clone()],
                    policy: DriftPolicy::Authoritative,
                });
                row.name = Some(obj.name.clone());
                row.pending = true;
                changed = true;
            }
            let mut exported: Attrs = row
                .exported
                .as_deref()
                .and_then(|e| attrs_from_json(e).ok())
                .unwrap_or_default();
            let waiting: Vec<String> = row
                .unconfirmed
                .as_deref()
                .and_then(|u| serde_json::from_str(u).ok())
                .unwrap_or_default();
            let mut left = Vec::new();
            for attr in &waiting {
                let want = exported.get(attr).cloned().unwrap_or_default();
                let found = drift::found_values(&obj.attrs, attr);
                if same_values(&want, found) {
                    report.confirmed += 1;
                } else {
                    report.not_reimported += 1;
                    errors.push(StepErrorRow {
                        kind: "exported-change-not-reimported".into(),
                        agent: Some(agent.to_string()),
                        anchor: Some(obj.name.clone()),
                        source: None,
                        line: Some(row.mv_id),
                        message: format!("{attr}: exported {want:?}, the target holds {found:?}"),
                    });
                    left.push(attr.clone());
                }
            }
            if !waiting.is_empty() {
                row.unconfirmed =
                    (!left.is_empty()).then(|| serde_json::to_string(&left).unwrap_or_default());
                changed = true;
            }
            // An account on its way out is not held to its values.
            let compare = matches!(
                State::parse(&row.state),
                Some(State::Present | State::Disabled)
            );
            if compare {
                let desired = Desired::from_json(&row.desired).unwrap_or_default();
                let check = drift::check_account(t, &desired.attrs, &exported, &obj.attrs, &left);
                for attr in &check.in_step {
                    let v = drift::found_values(&obj.attrs, attr).to_vec();
                    exported.insert(attr.clone(), v);
                    changed = true;
                }
                drifts.extend(check.drift);
                let mut account_open = open.remove(&row.mv_id).unwrap_or_default();
                // Open drift on an attribute now compared clean ends here,
                // unless its rollback is still queued: the target then holds
                // what `exported` was set to, the drifted value.
                for d in account_open.iter().filter(|d| {
                    check.compared.iter().any(|a| a == &d.attr)
                        && (d.outcome == "reported" || check.in_step.contains(&d.attr))
                }) {
                    tx.settle_drift(
                        d.id,
                        "resolved",
                        run,
                        &at,
                        Some("the target holds the expected value again"),
                    )?;
                    report.drift_resolved += 1;
                }
                account_open.retain(|d| {
                    !check.compared.iter().any(|a| a == &d.attr)
                        || d.outcome == "pending" && !check.in_step.contains(&d.attr)
                });
                let mut queued = false;
                for d in &drifts {
                    let (expected, found) = (json_list(&d.expected), json_list(&d.found));
                    report.drift_open += 1;
                    match account_open.iter().find(|o| o.attr == d.attr) {
                        Some(o) => tx.drift_seen(o.id, &expected, &found, run)?,
                        None => {
                            report.drift_found += 1;
                            let outcome = match d.policy {
                                DriftPolicy::Authoritative => "pending",
                                _ => "reported",
                            };
                            tx.add_drift(
                                &NewDrift {
                                    agent,
                                    mv_id: row.mv_id,
                                    account: &obj.name,
                                    attr: &d.attr,
                                    expected: &expected,
                                    found: &found,
                                    policy: d.policy.as_str(),
                                    outcome,
                                },
                                run,
                                &at,
                            )?;
                            tx.audit(
                                &AuditEntry::now(AuditKind::DriftDetected, Some(run))
                                    .target(agent)
                                    .subject(obj.name.clone())
                                    .detail(json!({
                                        "identity": row.mv_id,
                                        "attribute": d.attr,
                                        "expected": crate::export::shown(&d.attr, &d.expected),
                                        "found": crate::export::shown(&d.attr, &d.found),
                                        "policy": d.policy.as_str(),
                                    })),
                            )?;
                            let detail = format!(
                                "{}: expected {}, found {} ({})",
                                d.attr,
                                crate::export::shown(&d.attr, &d.expected),
                                crate::export::shown(&d.attr, &d.found),
                                d.policy.as_str()
                            );
                            tx.add_change(
                                step,
                                &NewChange::account(
                                    "drift-detected",
                                    agent,
                                    Some(&obj.name),
                                    Some(row.mv_id),
                                    Some(&detail),
                                ),
                            )?;
                        }
                    }
                    if d.policy == DriftPolicy::Authoritative && d.attr != NAME_ATTR {
                        // The target's value is what the next export
                        // differs from: a replace, or the removal of
                        // values added by hand.
                        if d.found.is_empty() {
                            exported.remove(&d.attr);
                        } else {
                            exported.insert(d.attr.clone(), d.found.clone());
                        }
                        row.pending = true;
                        changed = true;
                        queued = true;
                    }
                }
                if queued || drifts.iter().any(|d| d.attr == NAME_ATTR) {
                    report.rollbacks_queued += 1;
                }
                if changed {
                    row.exported = Some(attrs_to_json(&exported));
                }
            }
            if changed {
                tx.put_export(&row)?;
            }
        }
        // Whatever is left in the target is no identity's account.
        let action = t.reconcile.orphans;
        let state = match action {
            OrphanAction::Report => "open",
            OrphanAction::Disable | OrphanAction::Delete => "pending",
        };
        let mut orphans: Vec<&RemoteObject> = remote.values().collect();
        orphans.sort_by(|a, b| a.name.cmp(&b.name));
        for o in orphans {
            let attrs = attrs_to_json(&o.attrs);
            if tx.see_orphan(
                agent,
                &o.id,
                &o.name,
                &attrs,
                action.as_str(),
                state,
                run,
                &at,
            )? {
                report.orphans_new += 1;
                tx.audit(
                    &AuditEntry::now(AuditKind::OrphanFound, Some(run))
                        .target(agent)
                        .subject(o.name.clone())
                        .detail(json!({"id": o.id, "policy": action.as_str()})),
                )?;
                tx.add_change(
                    step,
                    &NewChange::account(
                        "orphan-found",
                        agent,
                        Some(&o.name),
                        None,
                        Some(action.as_str()),
                    ),
                )?;
            }
        }
        tx.orphans_gone(agent, run)?;
        report.orphans = remote.len() as u64;
        let counters = serde_json::to_value(&report).unwrap_or_default();
        tx.finish_step(
            step,
            "success",
            &counters,
            None,
            &errors,
            &stamp(Utc::now()),
        )?;
        tx.commit()?;
        Ok(report)
    }
}
