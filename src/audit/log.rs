//! The audit log read and pruned through the store: verification streams
//! every record through a [`Verifier`] in one consistent read; pruning
//! verifies the whole log first, so records altered by hand are never
//! removed (which would hide the alteration), then removes the records
//! older than the retention, keeps the last one's seq and hash as the
//! anchor, and appends an `audit-pruned` record saying so, all in one
//! transaction.

use super::chain::{self, Anchor, AuditRecord, Problem, Verified, Verifier};
use super::{AuditEntry, AuditKind};
use crate::app::stamp;
use crate::store::{AuditQuery, Store, StoreError};
use chrono::{DateTime, TimeDelta, Utc};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the audit log is broken at {0}; nothing was pruned (see `idsync audit verify`)")]
    Broken(Problem),
}

/// A log that did not verify: the first problem, after how many intact records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Broken {
    pub problem: Problem,
    pub checked: u64,
}

/// Recomputes the whole chain from the anchor (or the start).
pub fn verify(store: &Store) -> Result<Result<Verified, Broken>, StoreError> {
    let reader = store.audit_reader()?;
    let anchor = reader.anchor()?;
    check(anchor, &mut |f| reader.each(&AuditQuery::default(), f))
}

type Each<'a> = dyn FnMut(&mut dyn FnMut(AuditRecord) -> bool) -> Result<(), StoreError> + 'a;

fn check(anchor: Option<Anchor>, each: &mut Each) -> Result<Result<Verified, Broken>, StoreError> {
    let mut v = Verifier::new(anchor);
    let mut problem = None;
    each(&mut |r| match v.push(&r) {
        Ok(()) => true,
        Err(p) => {
            problem = Some(p);
            false
        }
    })?;
    let checked = v.checked();
    Ok(match problem {
        Some(problem) => Err(Broken { problem, checked }),
        None => v.finish().map_err(|problem| Broken { problem, checked }),
    })
}

/// What a prune removed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    pub removed: u64,
    /// The last record removed, where verification now starts.
    pub anchor: Anchor,
    /// Records written before this time were eligible.
    pub cutoff: String,
    /// The `audit-pruned` record that says so.
    pub recorded_as: i64,
}

/// Removes the records written more than `retention_days` before `now`
/// (only ever a prefix of the log); None when there are none.
pub fn prune(
    store: &mut Store,
    retention_days: u32,
    now: DateTime<Utc>,
) -> Result<Option<Pruned>, AuditError> {
    // A retention reaching before the calendar begins keeps everything.
    let Some(cutoff) = now.checked_sub_signed(TimeDelta::days(i64::from(retention_days))) else {
        return Ok(None);
    };
    let cutoff = stamp(cutoff);
    let tx = store.begin()?;
    let Some(through) = tx.audit_prune_point(&cutoff)? else {
        return Ok(None);
    };
    let anchor = tx.audit_anchor()?;
    if let Err(broken) = check(anchor, &mut |f| tx.audit_each(&AuditQuery::default(), f))? {
        return Err(AuditError::Broken(broken.problem));
    }
    let (removed, anchor) = tx.audit_remove_through(through)?;
    let detail = chain::pruned_detail(
        removed,
        &anchor,
        serde_json::json!({"retention_days": retention_days, "cutoff": cutoff}),
    );
    let recorded_as = tx.audit(&AuditEntry::now(AuditKind::AuditPruned, None).detail(detail))?;
    tx.commit()?;
    Ok(Some(Pruned {
        removed,
        anchor,
        cutoff,
        recorded_as,
    }))
}
