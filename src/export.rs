//! The outbound steps: provisioning (after each sync, which accounts each
//! target must have and what they must hold), export (applying the
//! difference to the target, object by object), and the confirming import
//! (reading the target back to see each exported change arrived).
//!
//! An export commits every few objects: each object succeeds or fails on
//! its own, and a crash repeats at most the objects of one batch. That is
//! safe because every operation is idempotent from the store's point of
//! view: a create whose name exists joins the account found there, an
//! update recomputes its difference, a delete of a missing account is done.
//!
//! A target that pipelines (LDAP) is sent creates ahead of their answers, so
//! its round trips overlap each other and the store's writes. The answers are
//! recorded in the order sent, so what the store holds does not depend on
//! when they arrive; an account whose references name one still in flight
//! waits for that answer, since its reference is written from it.

use crate::app::{App, AppError, Result, stamp};
use crate::audit::{AuditEntry, AuditKind};
use crate::connector::target::{Attrs, ExportError, ExportOp, RefBy, Target};
use crate::engine::outbound::{
    self, Account, Decision, Desired, State, attrs_from_json, attrs_to_json,
};
use crate::expr::Context;
use crate::model::{MvId, Record, RunId};
use crate::rules::{ExportValue, RuleSet, TargetAgent};
use crate::store::{AccountRef, ExportRow, NewChange, StepErrorRow, Store};
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use serde_json::json;
use std::collections::VecDeque;
use tracing::{info, warn};

/// Identities evaluated at a time: bounded memory on a first provisioning.
const PROVISION_CHUNK: usize = 20_000;
/// Objects exported per transaction.
const EXPORT_BATCH: usize = 500;
/// Transient failures in a row that mean the target is down: the rest waits.
const DOWN_AFTER: usize = 3;
/// Export passes per run: later passes write references to accounts the
/// earlier ones created or renamed.
const PASSES: usize = 3;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ProvisionCounts {
    pub evaluated: u64,
    pub provisioned: u64,
    pub updated: u64,
    pub disabled: u64,
    pub enabled: u64,
    pub deprovisioned: u64,
    pub forgotten: u64,
    pub errors: u64,
}

/// One export, as planned or as done.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlannedOp {
    /// create, update, rename, disable, delete, join.
    pub verb: String,
    pub mv_id: MvId,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rename: Option<String>,
    /// For a create, every attribute; for an update, what changes.
    pub changes: Vec<String>,
    /// A reference that cannot be written until its account exists.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub waits_for_reference: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    pub agent: String,
    pub dry_run: bool,
    pub created: u64,
    pub joined: u64,
    pub updated: u64,
    pub renamed: u64,
    pub disabled: u64,
    pub deleted: u64,
    pub failed: u64,
    /// Values changed in the target by hand, set back (accounts).
    pub rolled_back: u64,
    /// Accounts no identity owns, disabled or deleted by the orphan policy.
    pub orphans_disabled: u64,
    pub orphans_deleted: u64,
    /// Not tried this run: the target was down or quarantined.
    pub deferred: u64,
    pub passes: u64,
    pub quarantined: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<PlannedOp>,
}

/// An account being exported, parsed from its row.
struct Work {
    row: ExportRow,
    state: State,
    desired: Desired,
    exported: Attrs,
}

impl Work {
    fn parse(row: ExportRow) -> std::result::Result<Work, String> {
        let state =
            State::parse(&row.state).ok_or_else(|| format!("unknown state {:?}", row.state))?;
        let desired = Desired::from_json(&row.desired)?;
        let exported = match &row.exported {
            Some(t) => attrs_from_json(t)?,
            None => Attrs::new(),
        };
        Ok(Work {
            row,
            state,
            desired,
            exported,
        })
    }
}

/// Values of attributes named like passwords are not printed or recorded.
pub(crate) fn shown(attr: &str, values: &[String]) -> String {
    if attr.to_ascii_lowercase().contains("password") {
        "(hidden)".to_string()
    } else {
        values.join(" | ")
    }
}

impl Work {
    /// The account's export now: the operation (none when the target holds
    /// what is wanted), the wanted values with references written out, and
    /// whether a reference waits for its account.
    fn operation(&self, t: &TargetAgent, refs: &RefMap) -> (Option<ExportOp>, Attrs, bool) {
        let (want, unresolved) =
            outbound::resolve(t, &self.desired, &|tg, m, how| refs.lookup(tg, m, how));
        let op = outbound::operation(
            t,
            self.state,
            self.row.remote_id.as_deref(),
            self.row.name.as_deref(),
            &self.desired,
            &want,
            &self.exported,
        );
        (op, want, unresolved)
    }
}

fn describe(op: &ExportOp) -> Vec<String> {
    use crate::connector::target::Change;
    match op {
        ExportOp::Create { attrs, .. } => attrs
            .iter()
            .map(|(k, v)| format!("{k} = {}", shown(k, v)))
            .collect(),
        ExportOp::Update { changes, .. } => changes
            .iter()
            .map(|c| match c {
                Change::Replace(a, v) if v.is_empty() => format!("{a} cleared"),
                Change::Replace(a, v) => format!("{a} = {}", shown(a, v)),
                Change::Add(a, v) => format!("{a} += {}", shown(a, v)),
                Change::Remove(a, v) => format!("{a} -= {}", shown(a, v)),
            })
            .collect(),
        ExportOp::Delete { .. } => Vec::new(),
    }
}

fn verb(op: &ExportOp, state: State) -> &'static str {
    match (op, state) {
        (ExportOp::Update { .. }, State::Disabled) => "disable",
        _ => op.verb(),
    }
}

/// Reads where accounts stand: from the store, or inside an export's
/// transaction.
type AccountReader<'a> = dyn Fn(&str, &[MvId]) -> crate::store::Result<Vec<AccountRef>> + 'a;

/// An account to write, the accounts it refers to, and the change's name.
type Write = (ExportRow, Vec<(String, MvId)>, &'static str, bool);

/// Looks up how accounts are written in references, per target.
struct RefMap {
    by: FxHashMap<String, RefBy>,
    /// (target, identity) -> (id, name) of the account, when it exists, and
    /// the values other targets read back, once a confirming import read them.
    accounts: FxHashMap<(String, MvId), (String, String, Option<Attrs>)>,
}

impl RefMap {
    fn load(
        rules: &RuleSet,
        read: &AccountReader,
        t: &TargetAgent,
        works: &[Work],
    ) -> Result<RefMap> {
        let mut wanted: FxHashMap<String, Vec<MvId>> = FxHashMap::default();
        for f in &t.flows {
            if let ExportValue::Ref { target, .. } | ExportValue::Account { target, .. } = &f.value
            {
                let ids = wanted.entry(target.clone()).or_default();
                for w in works {
                    if let Some(v) = w.desired.refs.get(&f.attr) {
                        ids.extend(v.iter().copied());
                    }
                }
            }
        }
        let mut map = RefMap {
            by: FxHashMap::default(),
            accounts: FxHashMap::default(),
        };
        for (target, mut ids) in wanted {
            ids.sort_unstable();
            ids.dedup();
            let by = match rules.target(&target).map(|t| &t.connection) {
                Some(crate::rules::TargetConnection::Scim(_)) => RefBy::Id,
                _ => RefBy::Name,
            };
            map.by.insert(target.clone(), by);
            for a in read(&target, &ids)? {
                if let (Some(id), Some(name)) = (a.remote_id, a.name) {
                    let held = a.held.as_deref().and_then(|h| attrs_from_json(h).ok());
                    map.accounts
                        .insert((target.clone(), a.mv_id), (id, name, held));
                }
            }
        }
        Ok(map)
    }

    /// What a flow writes for `mv`'s account in `target`; none while there
    /// is no account yet, or no confirming import has read back its values.
    fn lookup(&self, target: &str, mv: MvId, how: outbound::Written) -> Option<Vec<String>> {
        let (id, name, held) = self.accounts.get(&(target.to_string(), mv))?;
        Some(match (how, self.by.get(target)) {
            (outbound::Written::Id, _) | (outbound::Written::AsReference, Some(RefBy::Id)) => {
                vec![id.clone()]
            }
            (outbound::Written::Attribute(a), _) => {
                held.as_ref()?.get(a).cloned().unwrap_or_default()
            }
            _ => vec![name.clone()],
        })
    }
}

impl App {
    /// Evaluates the identities a sync changed (every identity of the type,
    /// when a target's rules changed) against each target, and stores what
    /// their accounts must become. Runs after the sync committed, in a
    /// transaction of its own; the step's counters gain a `provision` entry.
    /// A crash in between leaves the identities marked changed since the
    /// target's last evaluation, and the next sync evaluates them.
    pub fn provision(
        &mut self,
        run: RunId,
        step: i64,
        now: DateTime<Utc>,
    ) -> Result<std::collections::BTreeMap<String, ProvisionCounts>> {
        let mut all = std::collections::BTreeMap::new();
        for ti in 0..self.rules.targets.len() {
            let counts = self.provision_target(ti, run, step, now)?;
            all.insert(self.rules.targets[ti].name.clone(), counts);
        }
        if !all.is_empty() {
            let tx = self.store.begin()?;
            tx.merge_step_counters(step, &serde_json::json!({ "provision": all }))?;
            // The sync step's time includes its groups and provisioning.
            tx.set_step_finished(step, &stamp(Utc::now()))?;
            tx.commit()?;
        }
        Ok(all)
    }

    fn provision_target(
        &mut self,
        ti: usize,
        run: RunId,
        step: i64,
        now: DateTime<Utc>,
    ) -> Result<ProvisionCounts> {
        let App { rules, store, .. } = self;
        let t = &rules.targets[ti];
        let type_name = rules.metaverse.types[t.object_type].name.clone();
        let started = std::time::Instant::now();
        let gone = || store.exports_without_identity(&t.name);
        let ids = to_evaluate(
            store,
            &store.target_state(&t.name)?,
            &t.hash,
            &type_name,
            &gone,
        )?;
        let mut counts = ProvisionCounts::default();
        for chunk in ids.chunks(PROVISION_CHUNK) {
            let mvs = load_of_type(store, rules, chunk, &type_name)?;
            let mut rows: FxHashMap<MvId, ExportRow> = store
                .export_rows(&t.name, chunk)?
                .into_iter()
                .map(|r| (r.mv_id, r))
                .collect();
            let decided: Vec<(MvId, Decision, Vec<String>)> = chunk
                .par_iter()
                .map(|&id| {
                    let key = format!("mv/{id}");
                    let ctx = Context {
                        now,
                        object_key: &key,
                        unique: None,
                    };
                    let account = match rows.get(&id).map(account_of) {
                        None => None,
                        Some(Ok(a)) => Some(a),
                        Some(Err(e)) => return (id, Decision::Keep, vec![e]),
                    };
                    let (d, errs) = outbound::decide(t, mvs.get(&id), id, account.as_ref(), &ctx);
                    (id, d, errs)
                })
                .collect();
            counts.evaluated += decided.len() as u64;
            let decided = decided
                .into_iter()
                .map(|(id, d, errs)| (id, d, rows.remove(&id), errs))
                .collect();
            // Written per chunk: a first provisioning of a large metaverse
            // holds one chunk's decisions at a time.
            write_provision(store, t, decided, run, step, &mut counts)?;
        }
        let cut = touched_cut(store, rules, run, std::slice::from_ref(&t.name))?;
        let tx = store.begin()?;
        tx.set_target_provisioned(&t.name, &t.hash, run)?;
        if let Some(through) = cut {
            tx.prune_touched(through)?;
        }
        tx.commit()?;
        if counts.evaluated > 0 {
            info!(
                target = %t.name,
                evaluated = counts.evaluated,
                provisioned = counts.provisioned,
                updated = counts.updated,
                disabled = counts.disabled,
                deprovisioned = counts.deprovisioned,
                ms = started.elapsed().as_millis() as u64,
                "Provisioning evaluated."
            );
        }
        Ok(counts)
    }
}

/// The identities of `type_name` a pass whose state is `st` must look at:
/// those written since its last pass and those deleted since (every one,
/// and all it knew that no longer exist, `gone`, when `hash`, the digest of
/// the rules it applies, changed); in id order.
pub(crate) fn to_evaluate(
    store: &Store,
    st: &crate::store::TargetState,
    hash: &str,
    type_name: &str,
    gone: &dyn Fn() -> crate::store::Result<Vec<MvId>>,
) -> Result<Vec<MvId>> {
    // A pass last run before the log's cut cannot learn from it what it missed.
    let everything =
        st.rules_hash.as_deref() != Some(hash) || st.provisioned_run < store.touched_pruned()?;
    let mut ids = store.mv_ids_changed(type_name, (!everything).then_some(st.provisioned_run))?;
    if everything {
        ids.extend(gone()?);
    } else {
        ids.extend(store.mv_deleted_since(st.provisioned_run)?);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// How far the log of written identities can be cut now: through the
/// earliest run every current provisioning and group pass has read to (a
/// pass whose rules changed, or that never ran, looks at everything
/// anyway; with none, through `run`), if that is past the last cut. The
/// passes named in `done` are reading to `run`, in the transaction the cut
/// is to go in.
pub(crate) fn touched_cut(
    store: &Store,
    rules: &RuleSet,
    run: RunId,
    done: &[String],
) -> Result<Option<RunId>> {
    let targets = rules.targets.iter().map(|t| (t.name.clone(), &t.hash));
    let groups = rules
        .metaverse
        .groups
        .iter()
        .map(|g| (crate::groups::state_key(g), &rules.hash));
    let mut through = run;
    for (key, hash) in targets.chain(groups) {
        if done.contains(&key) {
            continue;
        }
        let st = store.target_state(&key)?;
        if st.rules_hash.as_deref() == Some(hash.as_str()) {
            through = through.min(st.provisioned_run);
        }
    }
    Ok((through > store.touched_pruned()?).then_some(through))
}

/// The values of the identities of `type_name` among `ids`.
pub(crate) fn load_of_type(
    store: &Store,
    rules: &RuleSet,
    ids: &[MvId],
    type_name: &str,
) -> Result<FxHashMap<MvId, Record>> {
    let schema_of = |n: &str| rules.metaverse.get(n).map(|t| &t.schema);
    Ok(store
        .load_mv_ids(ids, &schema_of)?
        .into_iter()
        .filter(|m| m.object_type == type_name)
        .map(|m| (m.id, m.attrs))
        .collect())
}

fn account_of(r: &ExportRow) -> std::result::Result<Account, String> {
    let state = State::parse(&r.state).ok_or_else(|| format!("unknown state {:?}", r.state))?;
    Ok(Account {
        state,
        exists: r.remote_id.is_some(),
        desired: Desired::from_json(&r.desired)?,
    })
}

fn write_provision(
    store: &mut Store,
    t: &TargetAgent,
    decided: Vec<(MvId, Decision, Option<ExportRow>, Vec<String>)>,
    run: RunId,
    step: i64,
    counts: &mut ProvisionCounts,
) -> Result<()> {
    let mut errors = Vec::new();
    let mut writes: Vec<Write> = Vec::new();
    let mut forgets: Vec<(MvId, &'static str)> = Vec::new();
    for (id, d, old, errs) in decided {
        for e in errs {
            counts.errors += 1;
            errors.push(StepErrorRow {
                kind: "export-flow".into(),
                agent: Some(t.name.clone()),
                anchor: Some(format!("mv {id}")),
                source: None,
                line: None,
                message: e,
            });
        }
        match d {
            Decision::Keep => {}
            Decision::Forget { kind } => {
                counts.forgotten += 1;
                forgets.push((id, kind));
            }
            Decision::Put {
                state,
                desired,
                kind,
            } => {
                match kind {
                    "account-provisioned" => counts.provisioned += 1,
                    "account-disabled" => counts.disabled += 1,
                    "account-enabled" => counts.enabled += 1,
                    "account-deprovisioned" => counts.deprovisioned += 1,
                    _ => counts.updated += 1,
                }
                let refs: Vec<(String, MvId)> =
                    t.flows
                        .iter()
                        .filter_map(|f| match &f.value {
                            ExportValue::Ref { target, .. }
                            | ExportValue::Account { target, .. } => Some((target, &f.attr)),
                            _ => None,
                        })
                        .flat_map(|(target, attr)| {
                            desired
                                .refs
                                .get(attr)
                                .into_iter()
                                .flatten()
                                .map(move |&m| (target.clone(), m))
                        })
                        .collect();
                let fresh = old.is_none();
                let row = match old {
                    Some(mut r) => {
                        r.state = state.as_str().into();
                        r.desired = desired.to_json();
                        r.pending = true;
                        r.updated_run = run;
                        r
                    }
                    None => ExportRow::new(&t.name, id, state.as_str(), desired.to_json(), run),
                };
                writes.push((row, refs, kind, fresh));
            }
        }
    }
    if writes.is_empty() && forgets.is_empty() && errors.is_empty() {
        return Ok(());
    }
    let tx = store.begin()?;
    for (row, refs, kind, fresh) in &writes {
        tx.put_export(row)?;
        let pairs: Vec<(&str, MvId)> = refs.iter().map(|(a, m)| (a.as_str(), *m)).collect();
        // A new account has no references stored to replace.
        if !*fresh {
            tx.set_export_refs(&row.agent, row.mv_id, &pairs)?;
        } else if !pairs.is_empty() {
            tx.add_export_refs(&row.agent, row.mv_id, &pairs)?;
        }
        tx.add_change(
            step,
            &NewChange::account(kind, &t.name, None, Some(row.mv_id), None),
        )?;
    }
    for (id, kind) in &forgets {
        tx.remove_export(&t.name, *id)?;
        tx.add_change(
            step,
            &NewChange::account(kind, &t.name, None, Some(*id), None),
        )?;
    }
    tx.add_step_errors(step, &errors)?;
    tx.commit()?;
    Ok(())
}

/// The target's accounts by their `match` value (lower case), read in one
/// pass before many creates instead of one search per create.
type Known = FxHashMap<String, crate::connector::target::RemoteObject>;

/// Creates in a pass from which reading the whole target first is cheaper
/// than one search per create.
const PREFETCH_MIN: usize = 64;

/// An account's export on its way to the target.
struct Sent {
    /// The account's place in the pass's list.
    i: usize,
    op: ExportOp,
    /// Its values with references written out.
    want: Attrs,
    /// A reference waits for its account.
    unresolved: bool,
    label: &'static str,
    /// The target's answer, when `send` gave it at once.
    answer: Option<std::result::Result<crate::connector::target::Applied, ExportError>>,
}

/// What one export did.
enum Done {
    Created,
    /// An existing account was found and joined; then updated if it differed.
    Joined,
    Updated,
    Deleted,
    /// The account is gone from the target: it is created again.
    Vanished,
}

/// Applies one account's export; `w` is brought up to date with what the
/// target now holds.
fn apply_one(
    target: &mut dyn Target,
    t: &TargetAgent,
    w: &mut Work,
    op: &ExportOp,
    want: &Attrs,
    known: Option<&mut Known>,
) -> std::result::Result<Done, ExportError> {
    if let ExportOp::Create { name, .. } = op
        && let Some((m, v)) = probe(t, name, want)
    {
        let found = match known {
            Some(k) => k.remove(&v.to_lowercase()),
            None => target.find(&m, &v)?,
        };
        if let Some(found) = found {
            return join(target, t, w, found, want);
        }
    }
    let answer = target.apply(op);
    answered(target, t, w, op, want, answer)
}

/// The attribute and value a create looks for an existing account by
/// (`[provision] match`), when the rules name one and the account has it.
fn probe(t: &TargetAgent, name: &str, want: &Attrs) -> Option<(String, String)> {
    // Matching on a table's or file's key column matches the name.
    t.match_attr.as_ref().and_then(|m| {
        want.get(m)
            .and_then(|v| v.first())
            .map(String::as_str)
            .or((t.key_column() == Some(m.as_str())).then_some(name))
            .map(|v| (m.clone(), v.to_string()))
    })
}

/// Whether `op` can be sent while other answers are awaited: a create that
/// needs no look-up in the target first (no `match`, or the target's
/// accounts were read before the pass and none matches). A create that
/// joins an existing account, and every other change, waits for them.
fn pipelined(t: &TargetAgent, op: &ExportOp, want: &Attrs, known: Option<&Known>) -> bool {
    let ExportOp::Create { name, .. } = op else {
        return false;
    };
    match (probe(t, name, want), known) {
        (None, _) => true,
        (Some((_, v)), Some(k)) => !k.contains_key(&v.to_lowercase()),
        (Some(_), None) => false,
    }
}

/// Whether `w`'s values name an account of this target among `busy`, whose
/// create is in flight: written now, the reference would be left out.
fn waits_for(t: &TargetAgent, w: &Work, busy: &FxHashSet<MvId>) -> bool {
    t.flows
        .iter()
        .filter(|f| {
            matches!(&f.value, ExportValue::Ref { target, .. } | ExportValue::Account { target, .. } if *target == t.name)
        })
        .filter_map(|f| w.desired.refs.get(&f.attr))
        .flatten()
        .any(|m| busy.contains(m))
}

/// What the target's answer to `op` means for the account: `w` is brought
/// up to date; a create whose name is taken joins the account found there.
fn answered(
    target: &mut dyn Target,
    t: &TargetAgent,
    w: &mut Work,
    op: &ExportOp,
    want: &Attrs,
    answer: std::result::Result<crate::connector::target::Applied, ExportError>,
) -> std::result::Result<Done, ExportError> {
    match op {
        ExportOp::Create { name, .. } => match answer {
            Ok(a) => {
                // Create-only values are not kept in step, so not kept.
                let managed = outbound::managed(t);
                w.exported = outbound::after(&w.exported, op)
                    .into_iter()
                    .filter(|(k, _)| managed.iter().any(|(m, _)| m == k))
                    .collect();
                w.row.remote_id = Some(a.id.clone());
                w.row.name = Some(a.name.clone());
                if w.state == State::Create {
                    w.state = State::Present;
                }
                Ok(Done::Created)
            }
            Err(ExportError::Exists(_)) => match probe(t, name, want) {
                Some((m, v)) => match target.find(&m, &v)? {
                    Some(found) => join(target, t, w, found, want),
                    None => Err(ExportError::Rejected(format!(
                        "{name:?} already exists in the target, and no account has {m} = {v:?} to join"
                    ))),
                },
                None => Err(ExportError::Rejected(format!(
                    "{name:?} already exists in the target; set match = \"<attribute>\" in [provision] to join existing accounts"
                ))),
            },
            Err(e) => Err(e),
        },
        ExportOp::Update { .. } => match answer {
            Ok(a) => {
                w.exported = outbound::after(&w.exported, op);
                w.row.remote_id = Some(a.id.clone());
                w.row.name = Some(a.name.clone());
                Ok(Done::Updated)
            }
            Err(ExportError::NotFound(_)) => {
                w.row.remote_id = None;
                w.row.name = None;
                w.exported = Attrs::new();
                Ok(Done::Vanished)
            }
            Err(e) => Err(e),
        },
        ExportOp::Delete { .. } => match answer {
            Ok(_) | Err(ExportError::NotFound(_)) => Ok(Done::Deleted),
            Err(e) => Err(e),
        },
    }
}

/// Joins an account found in the target, then sends what differs.
fn join(
    target: &mut dyn Target,
    t: &TargetAgent,
    w: &mut Work,
    found: crate::connector::target::RemoteObject,
    want: &Attrs,
) -> std::result::Result<Done, ExportError> {
    let managed = outbound::managed(t);
    w.exported = found
        .attrs
        .into_iter()
        .filter(|(k, _)| managed.iter().any(|(m, _)| m == k))
        .collect();
    w.row.remote_id = Some(found.id.clone());
    w.row.name = Some(found.name.clone());
    if w.state == State::Create {
        w.state = State::Present;
    }
    let Some(op) = outbound::operation(
        t,
        w.state,
        Some(&found.id),
        Some(&found.name),
        &w.desired,
        want,
        &w.exported,
    ) else {
        return Ok(Done::Joined);
    };
    let a = target.apply(&op)?;
    w.exported = outbound::after(&w.exported, &op);
    w.row.remote_id = Some(a.id.clone());
    w.row.name = Some(a.name.clone());
    Ok(Done::Joined)
}

/// Adds the attributes an operation wrote to those awaiting confirmation
/// (a JSON list of names; the values expected are the exported ones). Not
/// create-only ones: they are not kept in step, so not checked.
fn unconfirmed(old: Option<&str>, op: &ExportOp, now_holds: &Attrs) -> Option<String> {
    let mut u: std::collections::BTreeSet<String> = old
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    match op {
        ExportOp::Create { .. } => u.extend(now_holds.keys().cloned()),
        ExportOp::Update { changes, .. } => u.extend(changes.iter().map(|c| c.attr().to_string())),
        ExportOp::Delete { .. } => {}
    }
    (!u.is_empty()).then(|| serde_json::to_string(&u).unwrap_or_default())
}

impl App {
    /// Starts step `verb <agent>` of a target; its index and the step.
    pub(crate) fn begin_target_step(
        &mut self,
        verb: &str,
        agent: &str,
        run: RunId,
        ordinal: usize,
        now: DateTime<Utc>,
    ) -> Result<(usize, i64)> {
        let ti = self.target_index(agent)?;
        let step = self.store.begin_step(
            run,
            ordinal,
            &format!("{verb} {agent}"),
            Some(agent),
            &stamp(now),
        )?;
        Ok((ti, step))
    }

    /// Records a target step that failed before writing; the error to return.
    pub(crate) fn fail_target_step(
        &mut self,
        step: i64,
        agent: &str,
        message: String,
    ) -> Result<AppError> {
        self.store.fail_step(step, &message, &stamp(Utc::now()))?;
        Ok(AppError::Export {
            agent: agent.to_string(),
            message,
        })
    }

    pub(crate) fn target_index(&self, agent: &str) -> Result<usize> {
        self.rules
            .targets
            .iter()
            .position(|t| t.name == agent)
            .ok_or_else(|| {
                let names: Vec<&str> = self.rules.targets.iter().map(|t| t.name.as_str()).collect();
                AppError::Usage(if names.is_empty() {
                    format!("no target {agent:?}: the rules define no [target]")
                } else {
                    format!("no target {agent:?}; targets are: {}", names.join(", "))
                })
            })
    }

    /// What an export of `agent` would do now, without connecting to it or
    /// writing anything. A create may turn out to be a join when the target
    /// already has a matching account.
    pub fn plan_export(&self, agent: &str) -> Result<ExportReport> {
        let t = &self.rules.targets[self.target_index(agent)?];
        let mut report = ExportReport {
            agent: agent.to_string(),
            dry_run: true,
            ..ExportReport::default()
        };
        let mut works = Vec::new();
        for row in self.store.pending_exports(agent)? {
            match Work::parse(row) {
                Ok(w) => works.push(w),
                Err(e) => report.errors.push(e),
            }
        }
        let refs = RefMap::load(
            &self.rules,
            &|a, ids| self.store.account_refs(a, ids),
            t,
            &works,
        )?;
        for i in order(t, &works) {
            let w = &works[i];
            let (op, _, unresolved) = w.operation(t, &refs);
            let Some(op) = op else {
                continue;
            };
            match verb(&op, w.state) {
                "create" => report.created += 1,
                "rename" => report.renamed += 1,
                "disable" => report.disabled += 1,
                "delete" => report.deleted += 1,
                _ => report.updated += 1,
            }
            report.plan.push(planned(&op, w, unresolved));
        }
        Ok(report)
    }

    /// Applies a target's pending exports, as one step.
    pub fn export(
        &mut self,
        agent: &str,
        run: RunId,
        ordinal: usize,
        now: DateTime<Utc>,
    ) -> Result<ExportReport> {
        let (ti, step) = self.begin_target_step("export", agent, run, ordinal, now)?;
        let fail = |app: &mut App, message: String| -> Result<ExportReport> {
            Err(app.fail_target_step(step, agent, message)?)
        };
        let t = &self.rules.targets[ti];
        // The deletion guard: a run that would delete many accounts (a
        // scope rule gone wrong, an HR file cut short two steps earlier)
        // stops before touching the target.
        let counts = self.store.export_counts(agent)?;
        let orphan_deletes = self.store.orphan_deletes(agent)?;
        let (deletes, accounts) = (
            counts.deleting + orphan_deletes,
            counts.accounts + orphan_deletes,
        );
        let guard = self.rules.metaverse.guard;
        let what = format!("delete {deletes} of the {accounts} accounts in target {agent:?}");
        if !guard.allows(deletes, accounts, self.allow_deletes) {
            let message = crate::app::guard_message(&what, &guard, deletes);
            self.store.fail_step(step, &message, &stamp(Utc::now()))?;
            return Err(AppError::Guard(message));
        }
        // Recorded with the step's first batch: the deletes it lets through
        // happen in that transaction or later ones of the step.
        let past_guard = (!guard.allows(deletes, accounts, None)).then(|| {
            crate::audit::AuditEntry::now(crate::audit::AuditKind::DeletesAllowed, Some(run))
                .target(agent)
                .detail(crate::app::allowed_detail(
                    "export",
                    &what,
                    deletes,
                    &guard,
                    self.allow_deletes,
                ))
        });
        let mut target = match crate::connector::open_target(&t.connection) {
            Ok(x) => x,
            Err(e) => return fail(self, e.to_string()),
        };
        if let Err(e) = target.connect() {
            return fail(self, format!("cannot connect: {e}"));
        }
        let was_quarantined = self.store.target_state(agent)?.quarantined;
        // Accounts whose export is the rollback of drift: few, so a set.
        let rollbacks: rustc_hash::FxHashSet<MvId> =
            self.store.drift_pending(agent)?.into_iter().collect();
        let App { rules, store, .. } = self;
        let t = &rules.targets[ti];
        let mut report = ExportReport {
            agent: agent.to_string(),
            ..ExportReport::default()
        };
        let mut step_errors: Vec<StepErrorRow> = Vec::new();
        let mut failed: rustc_hash::FxHashSet<MvId> = Default::default();
        let (mut attempts, mut errors) = (0u64, 0u64);
        let mut probing = was_quarantined.is_some();
        let mut down = false;
        let mut consecutive = 0usize;
        let started = std::time::Instant::now();
        let mut in_target = std::time::Duration::ZERO;
        let mut stopped = false;
        // A file is written whole at the end: until then nothing the store
        // records as exported is true, so its export is one transaction.
        let at_finish = target.kind() == "csv";
        let mut tx = store.begin()?;
        if let Some(entry) = &past_guard {
            tx.audit(entry)?;
        }
        for _pass in 0..PASSES {
            let mut works = Vec::new();
            // Reads see the transaction's own writes: the same connection.
            for row in tx.pending_exports(agent)? {
                if failed.contains(&row.mv_id) {
                    continue;
                }
                match Work::parse(row) {
                    Ok(w) => works.push(w),
                    Err(e) => step_errors.push(export_error(t, None, "export-failed", e)),
                }
            }
            if works.is_empty() {
                break;
            }
            report.passes += 1;
            let mut refs = RefMap::load(rules, &|a, ids| tx.account_refs(a, ids), t, &works)?;
            // A first load (many creates, few accounts known) reads the
            // target once for the accounts it may already have; a day's
            // few joiners are looked up one by one.
            let creates = works.iter().filter(|w| w.row.remote_id.is_none()).count();
            let known_accounts = tx.export_counts(agent)?.accounts_created;
            let mut known: Option<Known> = None;
            if let Some(m) = &t.match_attr
                && creates >= PREFETCH_MIN
                && creates as u64 >= known_accounts / 10
            {
                let mut k = Known::default();
                let by_name = t.key_column() == Some(m.as_str());
                let read = target.read_all(&mut |o| {
                    let key = if by_name {
                        Some(o.name.to_lowercase())
                    } else {
                        o.attrs
                            .iter()
                            .find(|(a, _)| a.eq_ignore_ascii_case(m))
                            .and_then(|(_, v)| v.first())
                            .map(|v| v.to_lowercase())
                    };
                    if let Some(key) = key {
                        k.insert(key, o);
                    }
                });
                match read {
                    Ok(()) => known = Some(k),
                    Err(e) => warn!(
                        target = agent,
                        "Reading the target before creating accounts failed ({e}); looking each one up instead."
                    ),
                }
            }
            let mut progress = 0u64;
            let mut since_commit = 0usize;
            let order = order(t, &works);
            let mut at = 0;
            // Creates sent and not yet answered, oldest first, and their
            // identities. Answers are taken in the order sent, so what the
            // store records does not depend on when they arrive.
            let mut flight: VecDeque<Sent> = VecDeque::new();
            let mut busy: FxHashSet<MvId> = FxHashSet::default();
            // The next export, when it must wait until no answer is awaited.
            let mut held: Option<Sent> = None;
            loop {
                // One at a time while quarantined: the first failure ends it.
                let window = if probing { 1 } else { target.window().max(1) };
                while held.is_none() && !stopped && at < order.len() && flight.len() < window {
                    if crate::shutdown::requested() {
                        stopped = true;
                        break;
                    }
                    let i = order[at];
                    if !busy.is_empty() && waits_for(t, &works[i], &busy) {
                        break;
                    }
                    at += 1;
                    let w = &mut works[i];
                    let (op, want, unresolved) = w.operation(t, &refs);
                    let Some(op) = op else {
                        if w.row.pending != unresolved || w.row.error.is_some() {
                            w.row.pending = unresolved;
                            w.row.error = None;
                            tx.put_export(&w.row)?;
                        }
                        continue;
                    };
                    let mut next = Sent {
                        i,
                        label: verb(&op, w.state),
                        op,
                        want,
                        unresolved,
                        answer: None,
                    };
                    if pipelined(t, &next.op, &next.want, known.as_ref()) {
                        let t_op = std::time::Instant::now();
                        next.answer = target.send(&next.op);
                        in_target += t_op.elapsed();
                        busy.insert(w.row.mv_id);
                        flight.push_back(next);
                    } else {
                        held = Some(next);
                    }
                }
                let t_op = std::time::Instant::now();
                let (next, result) = if let Some(mut s) = flight.pop_front() {
                    let w = &mut works[s.i];
                    busy.remove(&w.row.mv_id);
                    let answer = s.answer.take().or_else(|| target.receive());
                    let answer = answer.unwrap_or_else(|| {
                        Err(ExportError::Transient(format!(
                            "the target lost its answer to {} {}",
                            s.label, w.desired.name
                        )))
                    });
                    let result = answered(target.as_mut(), t, w, &s.op, &s.want, answer);
                    (s, result)
                } else if let Some(s) = held.take() {
                    if crate::shutdown::requested() {
                        stopped = true;
                        break;
                    }
                    let w = &mut works[s.i];
                    let result = apply_one(target.as_mut(), t, w, &s.op, &s.want, known.as_mut());
                    (s, result)
                } else {
                    break;
                };
                in_target += t_op.elapsed();
                let Sent {
                    i,
                    op,
                    label,
                    unresolved,
                    ..
                } = next;
                let w = &mut works[i];
                attempts += 1;
                let renamed = matches!(
                    &op,
                    ExportOp::Update {
                        rename: Some(_),
                        ..
                    }
                );
                let old_unconfirmed = w.row.unconfirmed.clone();
                match result {
                    Ok(done) => {
                        // Tests: a crash after the target changed and before
                        // the store recorded it.
                        crate::store::fault_point("export-applied");
                        progress += 1;
                        consecutive = 0;
                        probing = false;
                        let mv = w.row.mv_id;
                        // Referrers written before this account existed
                        // kept their export pending; only a new name or a
                        // deletion changes what written references say.
                        let (kind, touch) = match &done {
                            Done::Created => {
                                report.created += 1;
                                ("exported-create", false)
                            }
                            Done::Joined => {
                                report.joined += 1;
                                ("exported-join", false)
                            }
                            Done::Updated if renamed => {
                                report.renamed += 1;
                                ("exported-rename", true)
                            }
                            Done::Updated if label == "disable" => {
                                report.disabled += 1;
                                ("exported-disable", false)
                            }
                            Done::Updated => {
                                report.updated += 1;
                                ("exported-update", false)
                            }
                            Done::Deleted => {
                                report.deleted += 1;
                                ("exported-delete", true)
                            }
                            Done::Vanished => ("account-missing", false),
                        };
                        let account = w.row.name.clone().unwrap_or_else(|| w.desired.name.clone());
                        let audit_kind = match (&done, kind) {
                            (Done::Created | Done::Joined, _) => AuditKind::AccountCreated,
                            (Done::Deleted, _) => AuditKind::AccountDeleted,
                            (Done::Vanished, _) => AuditKind::AccountMissing,
                            (_, "exported-rename") => AuditKind::AccountRenamed,
                            (_, "exported-disable") => AuditKind::AccountDisabled,
                            _ => AuditKind::AccountUpdated,
                        };
                        tx.audit(
                            &AuditEntry::now(audit_kind, Some(run))
                                .target(agent)
                                .subject(account.clone())
                                .detail(json!({
                                    "identity": mv,
                                    "joined": matches!(done, Done::Joined),
                                    "rename": match &op {
                                        ExportOp::Update { rename, .. } => rename.clone(),
                                        _ => None,
                                    },
                                    "changes": describe(&op),
                                })),
                        )?;
                        if rollbacks.contains(&mv) && !matches!(done, Done::Vanished) {
                            report.rolled_back += 1;
                            let settled =
                                tx.drift_exported(agent, mv, run, &stamp(Utc::now()), None)?;
                            tx.audit(
                                &AuditEntry::now(AuditKind::DriftRolledBack, Some(run))
                                    .target(agent)
                                    .subject(account)
                                    .detail(json!({"identity": mv, "attributes": settled})),
                            )?;
                        }
                        if let Done::Deleted = done {
                            tx.remove_export(agent, mv)?;
                            refs.accounts.remove(&(agent.to_string(), mv));
                        } else {
                            w.row.state = w.state.as_str().into();
                            w.row.exported = Some(attrs_to_json(&w.exported));
                            w.row.unconfirmed =
                                unconfirmed(old_unconfirmed.as_deref(), &op, &w.exported);
                            let vanished = matches!(done, Done::Vanished);
                            // Deleted by hand: created again unless the
                            // target's policy only reports it.
                            w.row.pending = unresolved || vanished && t.reconcile.recreate_missing;
                            w.row.error = (vanished && !t.reconcile.recreate_missing).then(|| {
                                format!("deleted in the target outside idsync (found in run {run}); missing = \"report\" keeps it so")
                            });
                            w.row.attempts = 0;
                            w.row.updated_run = run;
                            tx.record_export(&w.row)?;
                            if let (Some(id), Some(name)) = (&w.row.remote_id, &w.row.name) {
                                let held =
                                    w.row.held.as_deref().and_then(|h| attrs_from_json(h).ok());
                                refs.accounts.insert(
                                    (agent.to_string(), mv),
                                    (id.clone(), name.clone(), held),
                                );
                            }
                        }
                        if touch {
                            tx.touch_referrers(agent, mv)?;
                        }
                        // A create lists the attributes it wrote (their
                        // values are the account's); other changes say what
                        // they changed.
                        let detail = match &op {
                            ExportOp::Create { attrs, .. } => attrs
                                .keys()
                                .map(String::as_str)
                                .collect::<Vec<_>>()
                                .join(","),
                            _ => describe(&op).join("; "),
                        };
                        tx.add_change(
                            step,
                            &NewChange::account(
                                kind,
                                agent,
                                w.row.name.as_deref().or(Some(&w.desired.name)),
                                Some(mv),
                                (!detail.is_empty()).then_some(detail.as_str()),
                            ),
                        )?;
                    }
                    Err(e) => {
                        errors += 1;
                        failed.insert(w.row.mv_id);
                        w.row.error = Some(e.to_string());
                        w.row.attempts += 1;
                        tx.record_export(&w.row)?;
                        if rollbacks.contains(&w.row.mv_id) {
                            let now = stamp(Utc::now());
                            tx.drift_exported(agent, w.row.mv_id, run, &now, Some(&e.to_string()))?;
                        }
                        let kind = if e.is_transient() {
                            "export-unreachable"
                        } else {
                            "export-failed"
                        };
                        step_errors.push(export_error(t, Some(w), kind, format!("{label}: {e}")));
                        if report.errors.len() < 20 {
                            report
                                .errors
                                .push(format!("{}: {label}: {e}", w.desired.name));
                        }
                        report.failed += 1;
                        if probing {
                            break;
                        }
                        consecutive = if e.is_transient() { consecutive + 1 } else { 0 };
                        if consecutive >= DOWN_AFTER {
                            down = true;
                            break;
                        }
                    }
                }
                since_commit += 1;
                if !at_finish && since_commit >= EXPORT_BATCH {
                    tx.commit()?;
                    tx = store.begin()?;
                    since_commit = 0;
                }
            }
            if !flight.is_empty() {
                // The target stopped answering: what was sent and not
                // answered waits for the next run with the rest.
                target.abandon();
            }
            if down || stopped || probing || progress == 0 {
                break;
            }
        }
        if !down && !stopped && !probing {
            orphans(
                target.as_mut(),
                t,
                &tx,
                run,
                step,
                &mut report,
                &mut step_errors,
                now,
            )?;
        }
        if let Err(e) = target.finish() {
            drop(tx);
            return fail(self, format!("writing the target: {e}"));
        }
        report.deferred = tx
            .pending_exports(agent)?
            .iter()
            .filter(|r| !failed.contains(&r.mv_id))
            .count() as u64;
        let reason = if probing && was_quarantined.is_some() {
            was_quarantined.clone()
        } else if t.quarantine.trips(errors, attempts) {
            Some(format!(
                "{errors} of {attempts} exports failed in run {run}"
            ))
        } else {
            None
        };
        if reason != was_quarantined {
            tx.set_quarantine(agent, reason.as_deref(), run)?;
            match &reason {
                Some(r) => warn!(target = agent, "Quarantined: {r}."),
                None => info!(target = agent, "Quarantine lifted: an export succeeded."),
            }
        }
        report.quarantined = reason;
        info!(
            target = agent,
            attempts,
            errors,
            total_ms = started.elapsed().as_millis() as u64,
            in_target_ms = in_target.as_millis() as u64,
            "Export finished."
        );
        let status = if stopped {
            "stopped"
        } else if down || report.quarantined.is_some() {
            "failed"
        } else {
            "success"
        };
        let message = if down {
            Some(format!(
                "the target stopped answering; {} exports wait for the next run",
                report.deferred
            ))
        } else {
            report
                .quarantined
                .as_ref()
                .map(|q| format!("quarantined: {q}"))
        };
        let counters = serde_json::to_value(&report).unwrap_or_default();
        tx.finish_step(
            step,
            status,
            &counters,
            message.as_deref(),
            &step_errors,
            &stamp(Utc::now()),
        )?;
        tx.commit()?;
        if stopped {
            return Err(AppError::Stopped);
        }
        if let Some(m) = message {
            return Err(AppError::Export {
                agent: agent.to_string(),
                message: m,
            });
        }
        Ok(report)
    }
}

/// Applies the orphan policy to the orphans the last confirming import
/// queued: disables them (the `[deprovision]` disable values, evaluated
/// with no identity) or deletes them. Each succeeds or fails on its own.
#[allow(clippy::too_many_arguments)]
fn orphans(
    target: &mut dyn Target,
    t: &TargetAgent,
    tx: &crate::store::Tx,
    run: RunId,
    step: i64,
    report: &mut ExportReport,
    step_errors: &mut Vec<StepErrorRow>,
    now: DateTime<Utc>,
) -> Result<()> {
    use crate::connector::target::Change;
    use crate::rules::DeprovisionAction;
    let pending = tx.pending_orphans(&t.name)?;
    if pending.is_empty() {
        return Ok(());
    }
    let empty = Record::default();
    let ctx = Context {
        now,
        object_key: "",
        unique: None,
    };
    let set: Vec<Change> = match &t.deprovision.action {
        DeprovisionAction::Disable { set, .. } => set
            .iter()
            .filter_map(|(attr, e)| {
                let v = e.eval(&empty, &ctx).ok()?.to_strings();
                Some(Change::Replace(attr.clone(), v))
            })
            .collect(),
        _ => Vec::new(),
    };
    for o in pending {
        let (op, done, kind) = match o.action.as_str() {
            "delete" => (
                ExportOp::Delete {
                    id: o.remote_id.clone(),
                    name: o.name.clone(),
                },
                "deleted",
                "orphan-deleted",
            ),
            "disable" if !set.is_empty() => (
                ExportOp::Update {
                    id: o.remote_id.clone(),
                    name: o.name.clone(),
                    rename: None,
                    changes: set.clone(),
                },
                "disabled",
                "orphan-disabled",
            ),
            _ => continue,
        };
        match target.apply(&op) {
            Ok(_) | Err(ExportError::NotFound(_)) => {
                tx.set_orphan_state(&t.name, &o.remote_id, done, run, None)?;
                let audit_kind = if done == "deleted" {
                    AuditKind::OrphanDeleted
                } else {
                    AuditKind::OrphanDisabled
                };
                tx.audit(
                    &AuditEntry::now(audit_kind, Some(run))
                        .target(&t.name)
                        .subject(o.name.clone())
                        .detail(json!({"id": o.remote_id, "changes": describe(&op)})),
                )?;
                if done == "deleted" {
                    report.orphans_deleted += 1;
                } else {
                    report.orphans_disabled += 1;
                }
                tx.add_change(
                    step,
                    &NewChange::account(
                        kind,
                        &t.name,
                        Some(&o.name),
                        None,
                        Some(&describe(&op).join("; ")),
                    ),
                )?;
            }
            Err(e) => {
                report.failed += 1;
                tx.set_orphan_state(&t.name, &o.remote_id, "failed", run, Some(&e.to_string()))?;
                step_errors.push(StepErrorRow {
                    kind: "export-failed".into(),
                    agent: Some(t.name.clone()),
                    anchor: Some(o.name.clone()),
                    source: None,
                    line: None,
                    message: format!("orphan {}: {e}", o.action),
                });
            }
        }
    }
    Ok(())
}

fn export_error(t: &TargetAgent, w: Option<&Work>, kind: &str, message: String) -> StepErrorRow {
    StepErrorRow {
        kind: kind.into(),
        agent: Some(t.name.clone()),
        anchor: w.map(|w| w.row.name.clone().unwrap_or_else(|| w.desired.name.clone())),
        source: None,
        line: w.map(|w| w.row.mv_id),
        message,
    }
}

/// Accounts in export order: by references within the target, deletes last.
fn order(t: &TargetAgent, works: &[Work]) -> Vec<usize> {
    let items: Vec<(MvId, Vec<MvId>)> = works
        .iter()
        .map(|w| {
            let refs = t
                .flows
                .iter()
                .filter_map(|f| match &f.value {
                    ExportValue::Ref { target, .. } if *target == t.name => {
                        w.desired.refs.get(&f.attr)
                    }
                    _ => None,
                })
                .flatten()
                .copied()
                .collect();
            (w.row.mv_id, refs)
        })
        .collect();
    let mut order = outbound::export_order(&items);
    order.sort_by_key(|&i| works[i].state == State::Delete);
    order
}

fn planned(op: &ExportOp, w: &Work, unresolved: bool) -> PlannedOp {
    let (name, rename) = match op {
        ExportOp::Create { name, .. } | ExportOp::Delete { name, .. } => (name.clone(), None),
        ExportOp::Update { name, rename, .. } => (name.clone(), rename.clone()),
    };
    PlannedOp {
        verb: verb(op, w.state).to_string(),
        mv_id: w.row.mv_id,
        name,
        rename,
        changes: describe(op),
        waits_for_reference: unresolved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::target::{LdapConfig, attrs_of};
    use crate::rules::{
        Deprovision, DeprovisionAction, DriftPolicy, ExportFlow, Quarantine, Reconcile,
        TargetConnection,
    };

    #[test]
    fn the_log_of_written_identities_answers_since_a_run_until_it_is_cut()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut store = Store::open(&dir.path().join("s.db"))?;
        let tx = store.begin()?;
        tx.insert_mv(1, "person", "{}", "{}", 1)?;
        tx.insert_mv(2, "person", "{}", "{}", 1)?;
        // Many at once are logged as one at a time, each with its type.
        tx.insert_mvs(&[(3, "person", "{}", "{}"), (4, "group", "{}", "{}")], 2)?;
        // Identity 1 written again by run 3: listed once.
        tx.update_mv(1, "person", "{}", "{}", 3)?;
        tx.update_mv(1, "person", "{}", "{}", 3)?;
        tx.commit()?;
        assert_eq!(store.mv_ids_changed("person", Some(1))?, vec![1, 3]);
        assert_eq!(store.mv_ids_changed("person", Some(0))?, vec![1, 2, 3]);
        assert_eq!(store.mv_ids_changed("group", Some(1))?, vec![4]);

        let state = |run| crate::store::TargetState {
            rules_hash: Some("h".into()),
            provisioned_run: run,
            ..Default::default()
        };
        let none = || Ok(Vec::new());
        assert_eq!(
            to_evaluate(&store, &state(2), "h", "person", &none)?,
            vec![1]
        );
        let tx = store.begin()?;
        tx.prune_touched(2)?;
        // A cut never moves back.
        tx.prune_touched(1)?;
        tx.commit()?;
        assert_eq!(store.touched_pruned()?, 2);
        assert_eq!(store.mv_ids_changed("person", Some(0))?, vec![1]);
        // A pass at the cut still learns what came after it; one before
        // the cut (a target whose rules were away meanwhile) looks at every
        // identity instead of the few the log still holds.
        assert_eq!(
            to_evaluate(&store, &state(2), "h", "person", &none)?,
            vec![1]
        );
        assert_eq!(
            to_evaluate(&store, &state(1), "h", "person", &none)?,
            vec![1, 2, 3]
        );

        // A sync that writes every identity anew logs none of them: it cuts
        // the log at its run, and every pass from before looks at all.
        let tx = store.begin()?;
        tx.writes_all_anew(5)?;
        tx.insert_mvs(&[(5, "person", "{}", "{}")], 5)?;
        tx.commit()?;
        assert_eq!(store.touched_pruned()?, 5);
        assert_eq!(store.mv_ids_changed("person", Some(0))?, Vec::<MvId>::new());
        assert_eq!(
            to_evaluate(&store, &state(3), "h", "person", &none)?,
            vec![1, 2, 3, 5]
        );
        // The next transaction logs again.
        let tx = store.begin()?;
        tx.update_mv(2, "person", "{}", "{}", 6)?;
        tx.commit()?;
        assert_eq!(
            to_evaluate(&store, &state(5), "h", "person", &none)?,
            vec![2]
        );
        Ok(())
    }

    struct NoNames;

    impl crate::expr::Scope for NoNames {
        fn resolve(&self, _: &str) -> Option<u32> {
            None
        }

        fn names(&self) -> Vec<String> {
            Vec::new()
        }
    }

    fn flow(attr: &str, target: &str) -> ExportFlow {
        ExportFlow {
            attr: attr.into(),
            value: ExportValue::Ref {
                attr: 0,
                target: target.into(),
            },
            create_only: false,
            multi: false,
            drift: DriftPolicy::Authoritative,
        }
    }

    /// A directory target matching on `uid` when `match_attr` says so; its
    /// `manager` names accounts of its own, `owner` those of another target.
    fn directory(match_attr: Option<&str>) -> TargetAgent {
        TargetAgent {
            name: "directory".into(),
            file: "directory.toml".into(),
            hash: String::new(),
            connection: TargetConnection::Ldap(LdapConfig {
                url: "ldap://127.0.0.1:1".into(),
                bind_dn: "cn=admin".into(),
                password_env: "UNUSED".into(),
                base: "dc=x".into(),
                filter: "(objectClass=inetOrgPerson)".into(),
                object_classes: vec!["inetOrgPerson".into()],
                id_attr: "entryUUID".into(),
                attributes: vec!["uid".into()],
                timeout_secs: 5,
            }),
            object_type: 0,
            scope: None,
            name_expr: crate::expr::Expr::compile("\"x\"", &NoNames).expect("expression"),
            match_attr: match_attr.map(str::to_string),
            flows: vec![flow("manager", "directory"), flow("owner", "badges")],
            deprovision: Deprovision {
                action: DeprovisionAction::Delete,
                skip_out_of_scope: false,
            },
            quarantine: Quarantine::default(),
            reconcile: Reconcile::default(),
            read_back: Vec::new(),
        }
    }

    fn work(refs: &[(&str, &[MvId])]) -> Work {
        let desired = Desired {
            name: "uid=a,dc=x".into(),
            refs: refs
                .iter()
                .map(|(a, m)| (a.to_string(), m.to_vec()))
                .collect(),
            ..Desired::default()
        };
        Work {
            row: ExportRow::new("directory", 1, "create", desired.to_json(), 1),
            state: State::Create,
            desired,
            exported: Attrs::new(),
        }
    }

    #[test]
    fn a_create_goes_ahead_of_answers_unless_a_look_up_or_a_join_comes_first() {
        let want = attrs_of(&[("uid", &["JDoe"])]);
        let create = ExportOp::Create {
            name: "uid=JDoe,dc=x".into(),
            attrs: want.clone(),
        };
        let matching = directory(Some("uid"));
        // Without the target's accounts read first, each create searches.
        assert!(!pipelined(&matching, &create, &want, None));
        let mut known = Known::default();
        assert!(pipelined(&matching, &create, &want, Some(&known)));
        let found = crate::connector::target::RemoteObject {
            id: "1".into(),
            name: "uid=jdoe,dc=x".into(),
            attrs: Attrs::new(),
        };
        known.insert("jdoe".into(), found);
        assert!(!pipelined(&matching, &create, &want, Some(&known)), "joins");
        assert!(pipelined(&directory(None), &create, &want, None));
        let update = ExportOp::Update {
            id: "1".into(),
            name: "uid=JDoe,dc=x".into(),
            rename: None,
            changes: vec![],
        };
        assert!(!pipelined(&directory(None), &update, &want, None));
        let delete = ExportOp::Delete {
            id: "1".into(),
            name: "uid=JDoe,dc=x".into(),
        };
        assert!(!pipelined(&directory(None), &delete, &want, None));
    }

    #[test]
    fn an_account_naming_one_whose_create_is_in_flight_waits_for_it() {
        let t = directory(None);
        let busy: FxHashSet<MvId> = [5, 9].into_iter().collect();
        assert!(waits_for(&t, &work(&[("manager", &[3, 9])]), &busy));
        assert!(!waits_for(&t, &work(&[("manager", &[3])]), &busy));
        // Another target's accounts do not change during this export.
        assert!(!waits_for(&t, &work(&[("owner", &[5])]), &busy));
        assert!(!waits_for(&t, &work(&[]), &busy));
    }
}
