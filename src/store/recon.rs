//! Reconciliation: drift found in targets, accounts no identity owns
//! (orphans), and the reads the reconciliation report is made of.

use super::{Result, Store, Tx};
use crate::model::{MvId, RunId};
use rusqlite::params;

/// One drift record: a value a target held that differed from what idsync
/// had exported there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DriftRow {
    pub id: i64,
    pub agent: String,
    pub mv_id: MvId,
    pub account: Option<String>,
    pub attr: String,
    /// JSON lists of values.
    pub expected: String,
    pub found: String,
    pub policy: String,
    pub detected_run: RunId,
    pub detected_at: String,
    pub last_run: RunId,
    /// pending (rollback queued), rolled-back, reported, resolved.
    pub outcome: String,
    pub outcome_run: Option<RunId>,
    pub outcome_at: Option<String>,
    pub message: Option<String>,
}

const DRIFT_COLUMNS: &str = "id, agent, mv_id, account, attr, expected, found, policy, detected_run, detected_at, last_run, outcome, outcome_run, outcome_at, message";

fn drift_row(r: &rusqlite::Row) -> rusqlite::Result<DriftRow> {
    Ok(DriftRow {
        id: r.get(0)?,
        agent: r.get(1)?,
        mv_id: r.get(2)?,
        account: r.get(3)?,
        attr: r.get(4)?,
        expected: r.get(5)?,
        found: r.get(6)?,
        policy: r.get(7)?,
        detected_run: r.get(8)?,
        detected_at: r.get(9)?,
        last_run: r.get(10)?,
        outcome: r.get(11)?,
        outcome_run: r.get(12)?,
        outcome_at: r.get(13)?,
        message: r.get(14)?,
    })
}

/// A drift found by a confirming import, before it is stored.
#[derive(Debug, Clone)]
pub struct NewDrift<'a> {
    pub agent: &'a str,
    pub mv_id: MvId,
    pub account: &'a str,
    pub attr: &'a str,
    pub expected: &'a str,
    pub found: &'a str,
    pub policy: &'a str,
    pub outcome: &'a str,
}

/// An account in a target that no identity owns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrphanRow {
    pub agent: String,
    pub remote_id: String,
    pub name: String,
    pub attrs: Option<String>,
    pub action: String,
    /// open (reported), pending (to disable or delete), disabled, deleted,
    /// failed, gone.
    pub state: String,
    pub first_run: RunId,
    pub first_at: String,
    pub last_run: RunId,
    pub done_run: Option<RunId>,
    pub error: Option<String>,
}

const ORPHAN_COLUMNS: &str =
    "agent, remote_id, name, attrs, action, state, first_run, first_at, last_run, done_run, error";

fn orphan_row(r: &rusqlite::Row) -> rusqlite::Result<OrphanRow> {
    Ok(OrphanRow {
        agent: r.get(0)?,
        remote_id: r.get(1)?,
        name: r.get(2)?,
        attrs: r.get(3)?,
        action: r.get(4)?,
        state: r.get(5)?,
        first_run: r.get(6)?,
        first_at: r.get(7)?,
        last_run: r.get(8)?,
        done_run: r.get(9)?,
        error: r.get(10)?,
    })
}

/// The runs an event section of the report covers (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunRange {
    pub from: RunId,
    pub to: RunId,
}

impl RunRange {
    pub const ALL: RunRange = RunRange {
        from: 0,
        to: RunId::MAX,
    };
}

/// An export that failed and still waits, for the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailingExport {
    pub agent: String,
    pub mv_id: MvId,
    /// The account's name in the target, or the name it is to have.
    pub name: Option<String>,
    pub state: String,
    pub error: String,
    pub attempts: i64,
    pub updated_run: RunId,
}

/// An identity's account with no object in the target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MissingAccount {
    pub agent: String,
    pub mv_id: MvId,
    /// The name it will have (from the desired state).
    pub desired: String,
    pub pending: bool,
    pub error: Option<String>,
    pub created_run: RunId,
    pub updated_run: RunId,
}

/// An enabled account, with its identity's stored values, for the leavers
/// check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnabledAccount {
    pub agent: String,
    pub mv_id: MvId,
    pub object_type: String,
    pub name: Option<String>,
    pub state: String,
    pub pending: bool,
    pub updated_run: RunId,
    pub mv_attrs: String,
}

/// Every row of a query, each made by `f`.
fn collect<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: fn(&rusqlite::Row) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, f)?;
    rows.collect()
}

impl Store {
    fn collect<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: fn(&rusqlite::Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        collect(&self.conn, sql, p, f).map_err(|e| self.err(e))
    }

    /// Drift open at some time during `runs`: detected before their end,
    /// and settled after their start or not yet.
    pub fn drift_in(&self, runs: RunRange) -> Result<Vec<DriftRow>> {
        self.collect(
            &format!(
                "SELECT {DRIFT_COLUMNS} FROM drift
                 WHERE detected_run <= ?2 AND coalesce(outcome_run, ?3) >= ?1
                 ORDER BY agent, detected_run, mv_id, attr"
            ),
            params![runs.from, runs.to, RunId::MAX],
            drift_row,
        )
    }

    /// An account's drift records, newest first.
    pub fn drift_of(&self, agent: &str, mv: MvId) -> Result<Vec<DriftRow>> {
        self.collect(
            &format!(
                "SELECT {DRIFT_COLUMNS} FROM drift WHERE agent = ?1 AND mv_id = ?2 ORDER BY id DESC"
            ),
            params![agent, mv],
            drift_row,
        )
    }

    /// Orphans present at some time during `runs` (found before their end,
    /// gone or acted on after their start, or not yet).
    pub fn orphans_in(&self, runs: RunRange) -> Result<Vec<OrphanRow>> {
        self.collect(
            &format!(
                "SELECT {ORPHAN_COLUMNS} FROM orphan
                 WHERE first_run <= ?2 AND coalesce(done_run, ?3) >= ?1
                 ORDER BY agent, name"
            ),
            params![runs.from, runs.to, RunId::MAX],
            orphan_row,
        )
    }

    pub fn orphans(&self, agent: &str) -> Result<Vec<OrphanRow>> {
        self.collect(
            &format!("SELECT {ORPHAN_COLUMNS} FROM orphan WHERE agent = ?1 ORDER BY name"),
            params![agent],
            orphan_row,
        )
    }

    /// Accounts whose last export failed.
    pub fn failing_exports(&self) -> Result<Vec<FailingExport>> {
        self.collect(
            "SELECT agent, mv_id, coalesce(name, json_extract(desired, '$.name')), state, error, attempts, updated_run
             FROM export_object WHERE error IS NOT NULL ORDER BY agent, mv_id",
            [],
            |r| {
                Ok(FailingExport {
                    agent: r.get(0)?,
                    mv_id: r.get(1)?,
                    name: r.get(2)?,
                    state: r.get(3)?,
                    error: r.get(4)?,
                    attempts: r.get(5)?,
                    updated_run: r.get(6)?,
                })
            },
        )
    }

    /// Accounts idsync means to have that the target does not have.
    pub fn missing_accounts(&self) -> Result<Vec<MissingAccount>> {
        self.collect(
            "SELECT agent, mv_id, json_extract(desired, '$.name'), pending, error, created_run, updated_run
             FROM export_object WHERE remote_id IS NULL AND state <> 'delete'
             ORDER BY agent, mv_id",
            [],
            |r| {
                Ok(MissingAccount {
                    agent: r.get(0)?,
                    mv_id: r.get(1)?,
                    desired: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    pending: r.get::<_, i64>(3)? != 0,
                    error: r.get(4)?,
                    created_run: r.get(5)?,
                    updated_run: r.get(6)?,
                })
            },
        )
    }

    /// Accounts a target has that are not disabled (or whose disabling has
    /// not reached the target yet), with their identity's values.
    pub fn enabled_accounts(&self, each: &mut dyn FnMut(EnabledAccount)) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.agent, e.mv_id, m.object_type, e.name, e.state, e.pending, e.updated_run, m.attrs
                 FROM export_object e JOIN mv_object m ON m.id = e.mv_id
                 WHERE e.remote_id IS NOT NULL
                   AND (e.state = 'present' OR (e.state IN ('disabled', 'delete') AND e.pending = 1))
                 ORDER BY e.agent, e.mv_id",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let row = (|| -> rusqlite::Result<EnabledAccount> {
                Ok(EnabledAccount {
                    agent: r.get(0)?,
                    mv_id: r.get(1)?,
                    object_type: r.get(2)?,
                    name: r.get(3)?,
                    state: r.get(4)?,
                    pending: r.get::<_, i64>(5)? != 0,
                    updated_run: r.get(6)?,
                    mv_attrs: r.get(7)?,
                })
            })()
            .map_err(|e| self.err(e))?;
            each(row);
        }
        Ok(())
    }

    /// The first run that started at or after `at` (RFC 3339 text compare).
    pub fn first_run_since(&self, at: &str) -> Result<Option<RunId>> {
        self.conn
            .query_row(
                "SELECT min(id) FROM run WHERE started_at >= ?1",
                params![at],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Ids of identities with an open drift waiting for a corrective
    /// export in `agent`.
    ///
    /// Here and in [`Tx::drift_exported`], the `IN` term repeats what
    /// `outcome = 'pending'` says because SQLite uses the partial index
    /// `drift_open` only for a query that names its condition: without it,
    /// every call reads every drift record ever kept.
    pub fn drift_pending(&self, agent: &str) -> Result<Vec<MvId>> {
        self.mv_ids(
            "SELECT DISTINCT mv_id FROM drift WHERE agent = ?1 AND outcome = 'pending' AND outcome IN ('pending', 'reported')",
            params![agent],
        )
    }

    /// A target's open drift (values) and orphans not yet dealt with.
    pub fn open_findings(&self, agent: &str) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM drift WHERE agent = ?1 AND outcome IN ('pending', 'reported')),
                        (SELECT count(*) FROM orphan WHERE agent = ?1 AND state IN ('open', 'pending', 'failed'))",
                params![agent],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(|e| self.err(e))
    }

    /// Orphans waiting to be deleted: counted by the deletion guard.
    pub fn orphan_deletes(&self, agent: &str) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM orphan WHERE agent = ?1 AND action = 'delete' AND state IN ('pending', 'failed')",
                params![agent],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }
}

impl Tx<'_> {
    fn collect<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: fn(&rusqlite::Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        collect(&self.tx, sql, p, f).map_err(|e| self.err(e))
    }

    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> Result<usize> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        stmt.execute(p).map_err(|e| self.err(e))
    }

    /// The open drift records of a target, by identity.
    pub fn open_drift(&self, agent: &str) -> Result<Vec<DriftRow>> {
        self.collect(
            &format!("SELECT {DRIFT_COLUMNS} FROM drift WHERE agent = ?1 AND outcome IN ('pending', 'reported') ORDER BY id"),
            params![agent],
            drift_row,
        )
    }

    pub fn add_drift(&self, d: &NewDrift, run: RunId, at: &str) -> Result<()> {
        self.exec(
            "INSERT INTO drift(agent, mv_id, account, attr, expected, found, policy, detected_run, detected_at, last_run, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?8, ?10)",
            params![d.agent, d.mv_id, d.account, d.attr, d.expected, d.found, d.policy, run, at, d.outcome],
        )
        .map(|_| ())
    }

    /// An open drift seen again: what the target holds now, and when.
    pub fn drift_seen(&self, id: i64, expected: &str, found: &str, run: RunId) -> Result<()> {
        self.exec(
            "UPDATE drift SET expected = ?2, found = ?3, last_run = ?4 WHERE id = ?1",
            params![id, expected, found, run],
        )
        .map(|_| ())
    }

    /// Closes an open drift record.
    pub fn settle_drift(
        &self,
        id: i64,
        outcome: &str,
        run: RunId,
        at: &str,
        message: Option<&str>,
    ) -> Result<()> {
        self.exec(
            "UPDATE drift SET outcome = ?2, outcome_run = ?3, outcome_at = ?4, message = coalesce(?5, message) WHERE id = ?1",
            params![id, outcome, run, at, message],
        )
        .map(|_| ())
    }

    /// The corrective export of an account went out (`error` None) or
    /// failed: its pending drift is rolled back, or notes why not yet.
    pub fn drift_exported(
        &self,
        agent: &str,
        mv: MvId,
        run: RunId,
        at: &str,
        error: Option<&str>,
    ) -> Result<usize> {
        match error {
            None => self.exec(
                "UPDATE drift SET outcome = 'rolled-back', outcome_run = ?3, outcome_at = ?4, message = NULL
                 WHERE agent = ?1 AND mv_id = ?2 AND outcome = 'pending' AND outcome IN ('pending', 'reported')",
                params![agent, mv, run, at],
            ),
            Some(e) => self.exec(
                "UPDATE drift SET message = ?3 WHERE agent = ?1 AND mv_id = ?2 AND outcome = 'pending' AND outcome IN ('pending', 'reported')",
                params![agent, mv, format!("rollback failed in run {run}: {e}")],
            ),
        }
    }

    /// An orphan seen by a confirming import: recorded when new, its last
    /// sighting moved on when known. `state` applies to new records and to
    /// records that were gone; one already acted on keeps its state.
    #[allow(clippy::too_many_arguments)]
    pub fn see_orphan(
        &self,
        agent: &str,
        remote_id: &str,
        name: &str,
        attrs: &str,
        action: &str,
        state: &str,
        run: RunId,
        at: &str,
    ) -> Result<bool> {
        let new = self.exec(
            "INSERT INTO orphan(agent, remote_id, name, attrs, action, state, first_run, first_at, last_run)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7)
             ON CONFLICT(agent, remote_id) DO NOTHING",
            params![agent, remote_id, name, attrs, action, state, run, at],
        )? == 1;
        if !new {
            // A policy changed since: an orphan only reported so far is
            // acted on now; one acted on is not acted on twice, unless the
            // target has it back as it was (re-enabled by hand).
            self.exec(
                "UPDATE orphan SET name = ?3, attrs = ?4, last_run = ?7,
                    action = ?5,
                    state = CASE WHEN state IN ('open', 'gone', 'deleted') OR action <> ?5 THEN ?6 ELSE state END,
                    error = CASE WHEN state IN ('open', 'gone', 'deleted') THEN NULL ELSE error END
                 WHERE agent = ?1 AND remote_id = ?2",
                params![agent, remote_id, name, attrs, action, state, run],
            )?;
        }
        Ok(new)
    }

    /// Orphans of `agent` the confirming import of `run` did not see: gone
    /// from the target, or joined to an identity since.
    pub fn orphans_gone(&self, agent: &str, run: RunId) -> Result<usize> {
        self.exec(
            "UPDATE orphan SET state = 'gone', done_run = ?2
             WHERE agent = ?1 AND last_run < ?2 AND state NOT IN ('gone', 'deleted')",
            params![agent, run],
        )
    }

    /// Orphans waiting for their action at the next export.
    pub fn pending_orphans(&self, agent: &str) -> Result<Vec<OrphanRow>> {
        self.collect(
            &format!("SELECT {ORPHAN_COLUMNS} FROM orphan WHERE agent = ?1 AND state IN ('pending', 'failed') ORDER BY name"),
            params![agent],
            orphan_row,
        )
    }

    pub fn set_orphan_state(
        &self,
        agent: &str,
        remote_id: &str,
        state: &str,
        run: RunId,
        error: Option<&str>,
    ) -> Result<()> {
        self.exec(
            "UPDATE orphan SET state = ?3, done_run = ?4, error = ?5 WHERE agent = ?1 AND remote_id = ?2",
            params![agent, remote_id, state, run, error],
        )
        .map(|_| ())
    }
}
