//! An identity's past for `idsync history`: its change records, and its
//! values as of a run or an instant (`crate::history::as_of`).

use super::{entries, label, reference_labels};
use crate::app::{App, AppError, Result};
use crate::history::{self, AsOf, Cutoff, Entry, State};
use crate::model::{MvId, RunId};
use serde::Serialize;
use std::collections::BTreeMap;

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
