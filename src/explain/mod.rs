//! `idsync explain` and `idsync history`: an identity's reasons and past,
//! gathered from the store and the rules. Why it exists (the projection),
//! why each connector joined (rule and matched values), where each value
//! came from (lineage, and for ranked precedence what the higher sources
//! offer: `precedence.rs`), why each account exists or went (scope and
//! state, and the change records of accounts removed); and its change
//! records, with values as of an earlier run (`crate::history`).
//! `text.rs` prints both for people; `--json` prints the same values.

mod precedence;
pub mod text;

pub use precedence::{Offer, Ranked};

use crate::app::{App, AppError, Result};
use crate::engine::FlowOut;
use crate::history::{self, AsOf, Cutoff, Entry, State};
use crate::model::{MvId, RunId};
use crate::rules::{AttrType, DeprovisionAction, NullPolicy, Precedence};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// The identities `[type] key` names: a metaverse id, `agent:anchor`, any
/// agent's anchor, or an attribute value (`App::find_identity`). With
/// `gone`, identities deleted since are found too, by id or by the
/// `agent:anchor` of a connector they had, from their change records.
pub fn resolve(app: &App, args: &[String], gone: bool) -> Result<Vec<MvId>> {
    let (ty, key) = match args {
        [t, k] => (Some(t.as_str()), k.as_str()),
        [k] => (None, k.as_str()),
        _ => return Err(AppError::Usage("expected [type] key".into())),
    };
    if let Some(t) = ty
        && app.rules.metaverse.get(t).is_none()
    {
        return Err(AppError::Usage(format!(
            "no object type {t:?} in the metaverse"
        )));
    }
    let ids = app.find_identity(ty, key)?;
    if !ids.is_empty() || !gone {
        return Ok(ids);
    }
    let schema_of = |t: &str| app.rules.metaverse.get(t).map(|t| &t.schema);
    if let Ok(id) = key.parse::<MvId>()
        && app.store.has_history(id)?
        && app.store.get_mv(id, &schema_of)?.is_none()
    {
        return Ok(vec![id]);
    }
    if let Some((agent, anchor)) = key.split_once(':')
        && app.rules.agent(agent).is_some()
        && let Some(id) = app.store.former_mv_of(agent, anchor)?
    {
        return Ok(vec![id]);
    }
    Ok(Vec::new())
}

/// A short label for an identity: its display name, or given name and
/// surname, or its type and id.
pub fn label(app: &App, id: MvId) -> String {
    let schema_of = |t: &str| app.rules.metaverse.get(t).map(|t| &t.schema);
    match app.store.get_mv(id, &schema_of) {
        Ok(Some(row)) => {
            let t = app.rules.metaverse.get(&row.object_type);
            let pick = |n: &str| {
                t.and_then(|t| t.schema.get(n))
                    .and_then(|a| row.attrs.first(a).map(str::to_string))
            };
            pick("displayName")
                .or_else(|| {
                    let g = pick("givenName")?;
                    Some(format!("{g} {}", pick("sn").unwrap_or_default()))
                })
                .unwrap_or_else(|| format!("{} {id}", row.object_type))
        }
        _ => format!("missing object {id}"),
    }
}

/// An identity's change records as entries, oldest first.
fn entries(app: &App, id: MvId) -> Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = app
        .store
        .identity_history(id)?
        .into_iter()
        .map(Entry::from_row)
        .collect();
    history::fill_anchors(&mut entries);
    Ok(entries)
}

/// Labels of the identities reference attributes of type `ty` name among
/// `values` (attribute, values), keyed by the value as stored.
fn reference_labels<'v>(
    app: &App,
    ty: Option<&str>,
    values: impl Iterator<Item = (&'v str, &'v [String])>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(t) = ty.and_then(|t| app.rules.metaverse.get(t)) else {
        return out;
    };
    for (attr, vals) in values {
        let is_ref = t
            .attrs
            .iter()
            .any(|a| a.name == attr && a.kind == AttrType::Reference);
        if !is_ref {
            continue;
        }
        for v in vals {
            if let Ok(id) = v.parse::<MvId>()
                && !out.contains_key(v)
            {
                out.insert(v.clone(), label(app, id));
            }
        }
    }
    out
}

/// An identity's change records, oldest first (the last `limit` of them).
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub id: MvId,
    /// None once the identity is deleted.
    pub object_type: Option<String>,
    pub label: Option<String>,
    /// How many changes are recorded; `entries` holds the latest `limit`.
    pub total: usize,
    pub entries: Vec<Entry>,
    /// Identities that reference values name: value -> label.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

pub fn history(app: &App, id: MvId, limit: usize) -> Result<History> {
    let mut entries = entries(app, id)?;
    let total = entries.len();
    entries.drain(..total.saturating_sub(limit));
    let current = current(app, id)?;
    let ty = current.as_ref().map(|(t, _, _)| t.as_str());
    let labels = reference_labels(
        app,
        ty,
        entries.iter().flat_map(|e| {
            e.values
                .iter()
                .flat_map(|(a, (b, n))| [(a.as_str(), b.as_slice()), (a.as_str(), n.as_slice())])
        }),
    );
    Ok(History {
        id,
        label: current.as_ref().map(|_| label(app, id)),
        object_type: current.map(|(t, _, _)| t),
        total,
        entries,
        labels,
    })
}

/// An identity's values at a cutoff (`history --as-of`).
#[derive(Debug, Clone, Serialize)]
pub struct AsOfView {
    pub id: MvId,
    pub object_type: Option<String>,
    pub as_of: Cutoff,
    /// When the run named by the cutoff finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_finished: Option<String>,
    #[serde(flatten)]
    pub result: AsOf,
    /// Identities that reference values name: value -> label.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

pub fn as_of(app: &App, id: MvId, cutoff: Cutoff) -> Result<AsOfView> {
    let mut run_finished = None;
    if let Cutoff::Run(n) = cutoff {
        let Some(r) = app.store.run(n)? else {
            return Err(AppError::Usage(format!(
                "no run {n} (idsync runs lists them)"
            )));
        };
        run_finished = r.finished_at.or(Some(r.started_at));
    }
    let entries = entries(app, id)?;
    let current = current(app, id)?;
    let created = current.as_ref().map(|(_, run, _)| *run);
    // The record of the projection has the time; an identity created
    // before change records were kept has only its run.
    let created_at;
    let created = match (history::created(&entries), created) {
        (Some(c), _) => Some(c),
        (None, Some(run)) => {
            created_at = app.store.run_started(run)?.unwrap_or_default();
            Some((run, created_at.as_str()))
        }
        (None, None) => None,
    };
    let result = history::as_of(
        current.as_ref().map(|(_, _, s)| s),
        created,
        &entries,
        &cutoff,
    );
    let labels = match &result {
        AsOf::Existed { values, .. } => reference_labels(
            app,
            current.as_ref().map(|(t, _, _)| t.as_str()),
            values.iter().map(|(a, v)| (a.as_str(), v.as_slice())),
        ),
        _ => BTreeMap::new(),
    };
    Ok(AsOfView {
        id,
        object_type: current.map(|(t, _, _)| t),
        as_of: cutoff,
        run_finished,
        result,
        labels,
    })
}

/// An identity's type, creation run and values, if it exists.
fn current(app: &App, id: MvId) -> Result<Option<(String, RunId, State)>> {
    let schema_of = |t: &str| app.rules.metaverse.get(t).map(|t| &t.schema);
    let Some(row) = app.store.get_mv(id, &schema_of)? else {
        return Ok(None);
    };
    let Some(t) = app.rules.metaverse.get(&row.object_type) else {
        return Ok(None);
    };
    let mut values = State::new();
    for a in row.attrs.attrs() {
        values.insert(
            t.schema.name(a).to_string(),
            row.attrs.values(a).map(str::to_string).collect(),
        );
    }
    Ok(Some((row.object_type, row.created_run, values)))
}

/// Everything `explain` says about one identity.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub id: MvId,
    pub object_type: Option<String>,
    pub label: Option<String>,
    /// How it came to exist.
    pub created: Option<Event>,
    /// Set when the identity is gone: the run that deleted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Event>,
    /// Kept without connectors since this day (a leaver a rehire can claim).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained_since: Option<String>,
    pub connectors: Vec<Connector>,
    pub attributes: Vec<Attribute>,
    pub accounts: Vec<Account>,
    /// Accounts disabled or removed earlier, from the change records.
    pub accounts_removed: Vec<Event>,
}

/// Something recorded about the identity, with its run and time.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub kind: String,
    pub run: RunId,
    pub at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    pub text: String,
}

/// A connector and why it is linked.
#[derive(Debug, Clone, Serialize)]
pub struct Connector {
    pub agent: String,
    pub anchor: String,
    /// `projected`, `joined`, or another kind a person set.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The join rule's parts and the (normalised) values that matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<Matched>,
    /// The matched key as recorded, when it cannot be split into parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub run: RunId,
    pub at: Option<String>,
    /// A change staged by an import and not synced yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_import: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Matched {
    /// The connector-space side (an expression over the agent's attributes).
    pub source: String,
    /// The metaverse attribute.
    pub attribute: String,
    pub value: String,
}

/// One attribute's values and where they came from.
#[derive(Debug, Clone, Serialize)]
pub struct Attribute {
    pub attribute: String,
    pub values: Vec<String>,
    /// References as `id (label)`.
    pub shown: Vec<String>,
    /// `ranked`, `equal`, `merged` (multi-valued), or `computed`.
    pub precedence: &'static str,
    pub sources: Vec<Source>,
    /// Ranked precedence: every agent of the list, highest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ranking: Vec<Ranked>,
    pub reason: String,
}

/// A lineage entry: the agent, connector, flow and run that set a value.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub agent: String,
    pub anchor: String,
    /// The import flow's expression.
    pub flow: Option<String>,
    pub run: RunId,
    pub at: Option<String>,
}

/// An identity's standing in one target.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub target: String,
    pub kind: &'static str,
    /// The provisioning scope (source text); none: every object of the type.
    pub scope: Option<String>,
    /// Whether the identity is in scope now; None when the scope failed.
    pub in_scope: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_error: Option<String>,
    /// What leaving scope does: delete, disable, or disconnect.
    pub deprovision: &'static str,
    /// The account idsync manages, if any.
    pub account: Option<AccountState>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountState {
    /// create (not in the target yet), present, disabled, delete (to delete).
    pub state: String,
    pub name: Option<String>,
    pub remote_id: Option<String>,
    pub created_run: RunId,
    pub created_at: Option<String>,
    pub updated_run: RunId,
    pub updated_at: Option<String>,
    pub pending_export: bool,
    pub awaiting_confirmation: bool,
    pub error: Option<String>,
}

/// Kinds of change records that disabled or removed an account.
const ACCOUNT_REMOVALS: &[&str] = &[
    "account-disabled",
    "account-deprovisioned",
    "account-disconnected",
    "account-unprovisioned",
    "exported-disable",
    "exported-delete",
];

/// Why identity `id` is as it is; `now` is the clock scopes are evaluated
/// with.
pub fn explain(app: &App, id: MvId, now: DateTime<Utc>) -> Result<Explanation> {
    let entries = entries(app, id)?;
    let mut times = RunTimes::default();
    let event = |e: &Entry| Event {
        kind: e.kind.clone(),
        run: e.run,
        at: Some(e.at.clone()),
        agent: e.agent.clone(),
        anchor: e.anchor.clone(),
        text: e.text.clone(),
    };
    let accounts_removed: Vec<Event> = entries
        .iter()
        .filter(|e| ACCOUNT_REMOVALS.contains(&e.kind.as_str()))
        .map(event)
        .collect();
    let created = entries
        .iter()
        .find(|e| e.kind == "projected" || e.kind == "group-created")
        .map(event);
    let rules = &app.rules;
    let schema_of = |t: &str| rules.metaverse.get(t).map(|t| &t.schema);
    let row = app.store.get_mv(id, &schema_of)?;
    let Some((row, ti)) = row.and_then(|r| rules.metaverse.index(&r.object_type).map(|i| (r, i)))
    else {
        return Ok(Explanation {
            id,
            object_type: None,
            label: None,
            created,
            deleted: entries
                .iter()
                .find(|e| e.kind == "identity-deleted")
                .map(event),
            retained_since: None,
            connectors: Vec::new(),
            attributes: Vec::new(),
            accounts: Vec::new(),
            accounts_removed,
        });
    };
    let t = &rules.metaverse.types[ti];
    let created = match created {
        Some(c) => Some(c),
        // Created before change records were kept: only the run is known.
        None => Some(Event {
            kind: "created".into(),
            run: row.created_run,
            at: times.get(app, row.created_run)?,
            agent: None,
            anchor: None,
            text: format!("created in run {}", row.created_run),
        }),
    };

    let links = app.store.links_of(id)?;
    let cs_schema = |a: &str| rules.agent(a).map(|a| &a.schema);
    let staged = app.store.load_cs_linked(&[id], &cs_schema)?;
    let mut connectors = Vec::new();
    for l in &links {
        let at = match entries
            .iter()
            .find(|e| e.kind == l.kind && e.run == l.run && e.agent.as_deref() == Some(&l.agent))
        {
            Some(e) => Some(e.at.clone()),
            None => times.get(app, l.run)?,
        };
        let (matched, key) = matched(app, &l.agent, l.rule.as_deref(), l.detail.as_deref());
        let pending_import = staged
            .iter()
            .find(|(a, c)| *a == l.agent && c.id == l.cs_id)
            .and_then(|(_, c)| c.pending)
            .map(|d| d.as_str().to_string());
        connectors.push(Connector {
            agent: l.agent.clone(),
            anchor: l.anchor.clone(),
            kind: l.kind.clone(),
            rule: l.rule.clone(),
            matched,
            key,
            run: l.run,
            at,
            pending_import,
        });
    }

    // What each connector's flows give now, for the precedence reasons.
    let outs: BTreeMap<&str, FlowOut> = staged
        .iter()
        .filter_map(|(agent, c)| {
            let a = rules.agent(agent)?;
            let key = format!("{agent}/{}", c.anchor);
            let ctx = crate::expr::Context {
                now,
                object_key: &key,
                unique: None,
            };
            Some((
                a.name.as_str(),
                crate::engine::eval_flows(a, &c.attrs, &ctx),
            ))
        })
        .collect();
    let lineage = row.lineage();
    let mut attributes = Vec::new();
    for (ai, attr) in t.attrs.iter().enumerate() {
        let a = ai as u32;
        let values: Vec<String> = row.attrs.values(a).map(str::to_string).collect();
        if values.is_empty() {
            continue;
        }
        let shown = if attr.kind == AttrType::Reference {
            values
                .iter()
                .map(|v| match v.parse::<MvId>() {
                    Ok(r) => format!("{r} ({})", label(app, r)),
                    Err(_) => v.clone(),
                })
                .collect()
        } else {
            values.clone()
        };
        let origins = lineage.get(&attr.name).cloned().unwrap_or_default();
        let mut sources = Vec::new();
        for o in &origins {
            // A retained identity's lineage keeps the agent, not the anchor
            // of the object that is gone: its records name it.
            let anchor = if o.anchor().is_empty() {
                entries
                    .iter()
                    .rev()
                    .find(|e| e.agent.as_deref() == Some(o.agent()) && e.anchor.is_some())
                    .and_then(|e| e.anchor.clone())
                    .unwrap_or_default()
            } else {
                o.anchor().to_string()
            };
            let flow = rules.agent(o.agent()).and_then(|ag| {
                ag.flows
                    .iter()
                    .find(|f| f.target == a)
                    .map(|f| f.expr.source().to_string())
            });
            sources.push(Source {
                agent: o.agent().to_string(),
                anchor,
                flow,
                run: o.run(),
                at: times.get(app, o.run())?,
            });
        }
        let first = origins.first();
        let gone = first.filter(|o| !links.iter().any(|l| l.agent == o.agent()));
        let (precedence, ranking, mut reason) = if rules.metaverse.computed(ti) {
            (
                "computed",
                Vec::new(),
                "computed by a group rule".to_string(),
            )
        } else if let Some((_, v)) = t
            .retained
            .iter()
            .find(|(r, _)| *r == a)
            .filter(|_| origins.is_empty() && row.retained_since.is_some())
        {
            (
                "computed",
                Vec::new(),
                format!(
                    "set by the metaverse rules while the identity is retained (retained: {} = {v:?})",
                    attr.name
                ),
            )
        } else if attr.multi {
            let agents: Vec<&str> = origins.iter().map(|o| o.agent()).collect();
            ("merged", Vec::new(), precedence::merged(&agents))
        } else {
            match &attr.precedence {
                Precedence::Ranked(rank) => {
                    let offers: Vec<(String, Offer)> = rank
                        .iter()
                        .filter_map(|&i| rules.agents.get(i))
                        .map(|ag| {
                            let offer = if !ag.flows.iter().any(|f| f.target == a) {
                                Offer::NoFlow
                            } else {
                                match outs.get(ag.name.as_str()) {
                                    None => Offer::NotConnected,
                                    Some(out) => offer(out, a),
                                }
                            };
                            (ag.name.clone(), offer)
                        })
                        .collect();
                    let (list, reason) = precedence::ranked(
                        &offers,
                        first.map(|o| o.agent()),
                        attr.null == NullPolicy::Clear,
                    );
                    ("ranked", list, reason)
                }
                Precedence::Equal => (
                    "equal",
                    Vec::new(),
                    precedence::equal(first.map(|o| (o.agent(), o.run()))),
                ),
            }
        };
        if let Some(o) = gone
            && precedence != "merged"
        {
            reason = format!(
                "{} set it in run {} and is no longer connected: the identity keeps the last value it gave",
                o.agent(),
                o.run()
            );
        }
        attributes.push(Attribute {
            attribute: attr.name.clone(),
            values,
            shown,
            precedence,
            sources,
            ranking,
            reason,
        });
    }

    let mut accounts = Vec::new();
    let rows = app.store.accounts_of(id)?;
    let key = format!("mv/{id}");
    let ctx = crate::expr::Context {
        now,
        object_key: &key,
        unique: None,
    };
    for target in rules.targets.iter().filter(|x| x.object_type == ti) {
        let (in_scope, scope_error) = match &target.scope {
            None => (Some(true), None),
            Some(s) => match s.eval(&row.attrs, &ctx) {
                Ok(v) => (Some(crate::engine::truthy(&v)), None),
                Err(e) => (None, Some(e.message)),
            },
        };
        let account = match rows.iter().find(|r| r.agent == target.name) {
            None => None,
            Some(r) => Some(AccountState {
                state: r.state.clone(),
                name: r.name.clone(),
                remote_id: r.remote_id.clone(),
                created_run: r.created_run,
                created_at: times.get(app, r.created_run)?,
                updated_run: r.updated_run,
                updated_at: times.get(app, r.updated_run)?,
                pending_export: r.pending,
                awaiting_confirmation: r.unconfirmed.is_some(),
                error: r.error.clone(),
            }),
        };
        let deprovision = match target.deprovision.action {
            DeprovisionAction::Delete => "delete",
            DeprovisionAction::Disable { .. } => "disable",
            DeprovisionAction::Disconnect => "disconnect",
        };
        let reason = account_reason(
            in_scope,
            account.as_ref().map(|a| a.state.as_str()),
            deprovision,
            target.deprovision.skip_out_of_scope,
        );
        accounts.push(Account {
            target: target.name.clone(),
            kind: target.kind(),
            scope: target.scope.as_ref().map(|s| s.source().to_string()),
            in_scope,
            scope_error,
            deprovision,
            account,
            reason,
        });
    }

    Ok(Explanation {
        id,
        object_type: Some(row.object_type.clone()),
        label: Some(label(app, id)),
        created,
        deleted: None,
        retained_since: row.retained_since.clone(),
        connectors,
        attributes,
        accounts,
        accounts_removed,
    })
}

fn offer(out: &FlowOut, a: u32) -> Offer {
    if let Some((_, m)) = out.errors.iter().find(|(x, _)| *x == a) {
        return Offer::FlowError(m.clone());
    }
    let v: Vec<String> = out.values.values(a).map(str::to_string).collect();
    if v.is_empty() {
        Offer::NoValue
    } else {
        Offer::Values(v)
    }
}

/// A join's rule parts beside the values the recorded key holds (parts
/// are joined with ` + `); the key whole when it does not split evenly.
fn matched(
    app: &App,
    agent: &str,
    rule: Option<&str>,
    key: Option<&str>,
) -> (Vec<Matched>, Option<String>) {
    let (Some(rule), Some(key)) = (rule, key) else {
        return (Vec::new(), None);
    };
    let found = app.rules.agent(agent).and_then(|a| {
        let j = a.joins.iter().find(|j| j.name == rule)?;
        Some((a, j))
    });
    let Some((a, j)) = found else {
        return (Vec::new(), Some(key.to_string()));
    };
    let values: Vec<&str> = key.split(" + ").collect();
    if values.len() != j.parts.len() {
        return (Vec::new(), Some(key.to_string()));
    }
    let t = &app.rules.metaverse.types[a.object_type];
    let parts = j
        .parts
        .iter()
        .zip(values)
        .map(|(p, v)| Matched {
            source: p.cs.source().to_string(),
            attribute: t.schema.name(p.mv).to_string(),
            value: v.to_string(),
        })
        .collect();
    (parts, None)
}

/// Why an identity has (or lacks) an account in a target.
fn account_reason(
    in_scope: Option<bool>,
    state: Option<&str>,
    deprovision: &str,
    keep_out_of_scope: bool,
) -> String {
    match (in_scope, state) {
        (None, _) => {
            "the scope could not be evaluated: provisioning leaves the account as it is".into()
        }
        (Some(true), None) => "in scope, no account yet: the next sync provisions one".into(),
        (Some(true), Some("create")) => {
            "in scope: the account is created at the next export".into()
        }
        (Some(true), Some("present")) => "in scope: the account exists".into(),
        (Some(true), Some(s)) => {
            format!("in scope again ({s}): the next sync brings the account back")
        }
        (Some(false), None) => "not in scope: no account".into(),
        (Some(false), Some(_)) if keep_out_of_scope => {
            "out of scope; the target's rules keep accounts that leave scope".into()
        }
        (Some(false), Some("disabled")) => "out of scope: the account is disabled".into(),
        (Some(false), Some("delete")) => {
            "out of scope: the account is deleted at the next export".into()
        }
        (Some(false), Some(_)) => {
            format!("out of scope now: the next sync deprovisions the account ({deprovision})")
        }
    }
}

/// When runs started, each read once.
#[derive(Default)]
struct RunTimes(BTreeMap<RunId, Option<String>>);

impl RunTimes {
    fn get(&mut self, app: &App, run: RunId) -> Result<Option<String>> {
        if let Some(t) = self.0.get(&run) {
            return Ok(t.clone());
        }
        let t = app.store.run_started(run)?;
        self.0.insert(run, t.clone());
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_reasons_follow_scope_and_state() {
        assert_eq!(
            account_reason(Some(true), Some("present"), "delete", false),
            "in scope: the account exists"
        );
        assert_eq!(
            account_reason(Some(false), Some("delete"), "delete", false),
            "out of scope: the account is deleted at the next export"
        );
        assert_eq!(
            account_reason(Some(false), Some("present"), "disable", false),
            "out of scope now: the next sync deprovisions the account (disable)"
        );
        assert_eq!(
            account_reason(Some(false), Some("present"), "disable", true),
            "out of scope; the target's rules keep accounts that leave scope"
        );
        assert_eq!(
            account_reason(Some(false), None, "delete", false),
            "not in scope: no account"
        );
    }
}
