//! Why an identity is as it is: how it came to exist, why each connector
//! is linked (the join rule and the values that matched), and where each
//! value came from (lineage, and for ranked precedence what every agent of
//! the list offers now, from its connector's staged values).

use super::accounts::{ACCOUNT_REMOVALS, Account, accounts};
use super::precedence::{self, Offer, Ranked};
use super::{RunTimes, entries, label};
use crate::app::{App, Result};
use crate::engine::FlowOut;
use crate::history::Entry;
use crate::model::{MvId, RunId};
use crate::rules::{AttrType, NullPolicy, Precedence};
use crate::store::{CsRow, LinkRow, MvRow};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

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

impl Event {
    fn of(e: &Entry) -> Event {
        Event {
            kind: e.kind.clone(),
            run: e.run,
            at: Some(e.at.clone()),
            agent: e.agent.clone(),
            anchor: e.anchor.clone(),
            text: e.text.clone(),
        }
    }
}

/// What the reasons of one identity are read from.
struct Seen<'a> {
    app: &'a App,
    row: &'a MvRow,
    /// Index of the identity's type in the metaverse rules.
    ti: usize,
    entries: &'a [Entry],
    links: &'a [LinkRow],
    staged: &'a [(String, CsRow)],
}

/// Why identity `id` is as it is; `now` is the clock flows and scopes are
/// evaluated with.
pub fn explain(app: &App, id: MvId, now: DateTime<Utc>) -> Result<Explanation> {
    let entries = entries(app, id)?;
    let mut times = RunTimes::default();
    let accounts_removed: Vec<Event> = entries
        .iter()
        .filter(|e| ACCOUNT_REMOVALS.contains(&e.kind.as_str()))
        .map(Event::of)
        .collect();
    let created = entries
        .iter()
        .find(|e| e.kind == "projected" || e.kind == "group-created")
        .map(Event::of);
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
                .map(Event::of),
            retained_since: None,
            connectors: Vec::new(),
            attributes: Vec::new(),
            accounts: Vec::new(),
            accounts_removed,
        });
    };
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
    let seen = Seen {
        app,
        row: &row,
        ti,
        entries: &entries,
        links: &links,
        staged: &staged,
    };
    Ok(Explanation {
        id,
        object_type: Some(row.object_type.clone()),
        label: Some(label(app, id)),
        created,
        deleted: None,
        retained_since: row.retained_since.clone(),
        connectors: connectors(&seen, &mut times)?,
        attributes: attributes(&seen, now, &mut times)?,
        accounts: accounts(app, &row, ti, now, &mut times)?,
        accounts_removed,
    })
}

fn connectors(s: &Seen, times: &mut RunTimes) -> Result<Vec<Connector>> {
    let mut out = Vec::new();
    for l in s.links {
        // The step's time when its record is found, else the run's.
        let at =
            match s.entries.iter().find(|e| {
                e.kind == l.kind && e.run == l.run && e.agent.as_deref() == Some(&l.agent)
            }) {
                Some(e) => Some(e.at.clone()),
                None => times.get(s.app, l.run)?,
            };
        let (matched, key) = matched(s.app, &l.agent, l.rule.as_deref(), l.detail.as_deref());
        let pending_import = s
            .staged
            .iter()
            .find(|(a, c)| *a == l.agent && c.id == l.cs_id)
            .and_then(|(_, c)| c.pending)
            .map(|d| d.as_str().to_string());
        out.push(Connector {
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
    Ok(out)
}

fn attributes(s: &Seen, now: DateTime<Utc>, times: &mut RunTimes) -> Result<Vec<Attribute>> {
    let rules = &s.app.rules;
    let t = &rules.metaverse.types[s.ti];
    // What each connector's flows give now, for the precedence reasons.
    let outs: BTreeMap<&str, FlowOut> = s
        .staged
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
    let lineage = s.row.lineage();
    let mut out = Vec::new();
    for (ai, attr) in t.attrs.iter().enumerate() {
        let a = ai as u32;
        let values: Vec<String> = s.row.attrs.values(a).map(str::to_string).collect();
        if values.is_empty() {
            continue;
        }
        let shown = if attr.kind == AttrType::Reference {
            values
                .iter()
                .map(|v| match v.parse::<MvId>() {
                    Ok(r) => format!("{r} ({})", label(s.app, r)),
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
                s.entries
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
                at: times.get(s.app, o.run())?,
            });
        }
        let first = origins.first();
        let (precedence, ranking, mut reason) = if rules.metaverse.computed(s.ti) {
            (
                "computed",
                Vec::new(),
                "computed by a group rule".to_string(),
            )
        } else if let Some((_, v)) = t
            .retained
            .iter()
            .find(|(r, _)| *r == a)
            .filter(|_| origins.is_empty() && s.row.retained_since.is_some())
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
        // A retained identity keeps values of agents no longer connected.
        if let Some(o) = first.filter(|o| !s.links.iter().any(|l| l.agent == o.agent()))
            && precedence != "merged"
        {
            reason = format!(
                "{} set it in run {} and is no longer connected: the identity keeps the last value it gave",
                o.agent(),
                o.run()
            );
        }
        out.push(Attribute {
            attribute: attr.name.clone(),
            values,
            shown,
            precedence,
            sources,
            ranking,
            reason,
        });
    }
    Ok(out)
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
