//! `idsync explain` and `idsync history`: an identity's reasons and past,
//! gathered from the store and the rules. Why it exists (the projection),
//! why each connector joined (rule and matched values), where each value
//! came from (lineage, and for ranked precedence what the higher sources
//! offer: `precedence.rs`), why each account exists or went (scope and
//! state, and the change records of accounts removed); and its change
//! records, with values as of an earlier run (`crate::history`).
//! `why.rs` gathers the reasons, `accounts.rs` those of target accounts,
//! `past.rs` the history; `text.rs` prints them for people, `--json` the
//! same values.

mod accounts;
mod past;
mod precedence;
pub mod text;
mod why;

pub use accounts::{Account, AccountState};
pub use past::{AsOfView, History, as_of, history};
pub use precedence::{Offer, Ranked};
pub use why::{Attribute, Connector, Event, Explanation, Matched, Source, explain};

use crate::app::{App, AppError, Result};
use crate::history::{self, Entry};
use crate::model::{MvId, RunId};
use crate::rules::AttrType;
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
            name_of(&app.rules, &row).unwrap_or_else(|| format!("{} {id}", row.object_type))
        }
        _ => format!("missing object {id}"),
    }
}

/// An identity's name for people: its display name, or given name and
/// surname; None when it has neither.
pub fn name_of(rules: &crate::rules::RuleSet, row: &crate::store::MvRow) -> Option<String> {
    let t = rules.metaverse.get(&row.object_type);
    let pick = |n: &str| {
        t.and_then(|t| t.schema.get(n))
            .and_then(|a| row.attrs.first(a).map(str::to_string))
    };
    pick("displayName").or_else(|| {
        let g = pick("givenName")?;
        Some(format!("{g} {}", pick("sn").unwrap_or_default()))
    })
}

/// An identity's change records as entries, oldest first.
pub(super) fn entries(app: &App, id: MvId) -> Result<Vec<Entry>> {
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
pub(super) fn reference_labels<'v>(
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

/// When runs started, each read once.
#[derive(Default)]
pub(super) struct RunTimes(BTreeMap<RunId, Option<String>>);

impl RunTimes {
    pub(super) fn get(&mut self, app: &App, run: RunId) -> Result<Option<String>> {
        if let Some(t) = self.0.get(&run) {
            return Ok(t.clone());
        }
        let t = app.store.run_started(run)?;
        self.0.insert(run, t.clone());
        Ok(t)
    }
}
