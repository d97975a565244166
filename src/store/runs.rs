//! Run history: every run and step with times, counters and errors. A run
//! row is written when it starts, so a run killed mid-way stays visible as
//! `running` (shown as interrupted); a step's outcome is written inside the
//! step's own transaction, so it is recorded exactly when its work is, and
//! so is its audit record.

use super::{Result, Store, Tx};
use crate::audit::{AuditEntry, AuditKind};
use crate::model::RunId;
use rusqlite::{OptionalExtension, params};
use serde_json::json;

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub id: RunId,
    pub profile: Option<String>,
    pub command: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub rules_hash: Option<String>,
    pub threads: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRow {
    pub id: i64,
    pub run: RunId,
    pub ordinal: i64,
    pub name: String,
    pub agent: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub counters: serde_json::Value,
    pub message: Option<String>,
    pub errors: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepErrorRow {
    /// `rejected-row`, `ambiguous-join`, `flow-error`, `dangling-reference`, ...
    pub kind: String,
    pub agent: Option<String>,
    pub anchor: Option<String>,
    /// The file or database, for rejected rows.
    pub source: Option<String>,
    pub line: Option<i64>,
    pub message: String,
}

impl Store {
    pub fn begin_step(
        &mut self,
        run: RunId,
        ordinal: usize,
        name: &str,
        agent: Option<&str>,
        now: &str,
    ) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO step(run, ordinal, name, agent, started_at, status) VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
                params![run, ordinal as i64, name, agent, now],
            )
            .map_err(|e| self.err(e))?;
        // A commit like any other for the log: left uncopied, its frames
        // keep the step's own transaction from writing the log from its
        // start, and the log grows by a whole step.
        self.committed();
        Ok(self.conn.last_insert_rowid())
    }

    /// Records a step that failed before it could write anything.
    pub fn fail_step(&mut self, step: i64, message: &str, now: &str) -> Result<()> {
        let tx = self.begin()?;
        tx.finish_step(
            step,
            "failed",
            &serde_json::json!({}),
            Some(message),
            &[],
            now,
        )?;
        tx.commit()
    }

    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, profile, command, started_at, finished_at, status, rules_hash, threads
                 FROM run ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![limit as i64], run_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// When the latest run of `profile` started, whatever its outcome.
    pub fn last_run_start(&self, profile: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT started_at FROM run WHERE profile = ?1 ORDER BY id DESC LIMIT 1",
                params![profile],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn run(&self, id: RunId) -> Result<Option<RunRow>> {
        self.conn
            .query_row(
                "SELECT id, profile, command, started_at, finished_at, status, rules_hash, threads FROM run WHERE id = ?1",
                params![id],
                run_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn steps(&self, run: RunId) -> Result<Vec<StepRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.id, s.run, s.ordinal, s.name, s.agent, s.started_at, s.finished_at, s.status, s.counters, s.message,
                        (SELECT count(*) FROM step_error e WHERE e.step = s.id)
                 FROM step s WHERE s.run = ?1 ORDER BY s.ordinal",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run], |r| {
                let counters: Option<String> = r.get(8)?;
                Ok(StepRow {
                    id: r.get(0)?,
                    run: r.get(1)?,
                    ordinal: r.get(2)?,
                    name: r.get(3)?,
                    agent: r.get(4)?,
                    started_at: r.get(5)?,
                    finished_at: r.get(6)?,
                    status: r.get(7)?,
                    counters: counters
                        .and_then(|c| serde_json::from_str(&c).ok())
                        .unwrap_or_default(),
                    message: r.get(9)?,
                    errors: r.get(10)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    pub fn step_errors(&self, step: i64, limit: usize) -> Result<Vec<StepErrorRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, agent, anchor, source, line, message FROM step_error WHERE step = ?1 ORDER BY id LIMIT ?2")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![step, limit as i64], |r| {
                Ok(StepErrorRow {
                    kind: r.get(0)?,
                    agent: r.get(1)?,
                    anchor: r.get(2)?,
                    source: r.get(3)?,
                    line: r.get(4)?,
                    message: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}

fn run_row(r: &rusqlite::Row) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        profile: r.get(1)?,
        command: r.get(2)?,
        started_at: r.get(3)?,
        finished_at: r.get(4)?,
        status: r.get(5)?,
        rules_hash: r.get(6)?,
        threads: r.get(7)?,
    })
}

impl Tx<'_> {
    /// Records a run as started; its audit record goes in the same transaction.
    pub fn begin_run(
        &self,
        profile: Option<&str>,
        command: &str,
        now: &str,
        rules_hash: &str,
        threads: usize,
    ) -> Result<RunId> {
        self.tx
            .execute(
                "INSERT INTO run(profile, command, started_at, status, rules_hash, threads) VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
                params![profile, command, now, rules_hash, threads as i64],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.tx.last_insert_rowid())
    }

    pub fn finish_run(&self, run: RunId, status: &str, now: &str) -> Result<()> {
        self.tx
            .execute(
                "UPDATE run SET status = ?2, finished_at = ?3 WHERE id = ?1",
                params![run, status, now],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Writes a step's outcome and errors, and its audit record; commits
    /// with the step's work.
    pub fn finish_step(
        &self,
        step: i64,
        status: &str,
        counters: &serde_json::Value,
        message: Option<&str>,
        errors: &[StepErrorRow],
        now: &str,
    ) -> Result<()> {
        self.tx
            .execute(
                "UPDATE step SET status = ?2, counters = ?3, message = ?4, finished_at = ?5 WHERE id = ?1",
                params![step, status, counters.to_string(), message, now],
            )
            .map_err(|e| self.err(e))?;
        self.add_step_errors(step, errors)?;
        let (run, ordinal, name, agent): (RunId, i64, String, Option<String>) = self
            .tx
            .query_row(
                "SELECT run, ordinal, name, agent FROM step WHERE id = ?1",
                params![step],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(|e| self.err(e))?;
        let mut entry = AuditEntry::now(AuditKind::StepFinished, Some(run)).detail(json!({
            "step": name,
            "ordinal": ordinal,
            "status": status,
            "counters": counters,
            "message": message,
            "errors": errors.len(),
        }));
        entry.target = agent;
        self.audit(&entry)?;
        Ok(())
    }
}

/// One object a step changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangeRow {
    /// Import: `add`, `update`, `delete`. Sync: `projected`, `joined`,
    /// `disconnected`, `identity-updated`, `identity-deleted`,
    /// `identity-retained`.
    pub kind: String,
    pub agent: Option<String>,
    pub anchor: Option<String>,
    pub mv_id: Option<i64>,
    /// For updates, the attributes that changed.
    pub detail: Option<String>,
}

/// A change as a step records it: the anchor may be read from the
/// connector-space object instead of being stored again.
pub struct NewChange<'a> {
    pub kind: &'a str,
    pub agent: Option<&'a str>,
    pub cs_id: Option<i64>,
    pub anchor: Option<&'a str>,
    pub mv_id: Option<i64>,
    pub detail: Option<&'a str>,
}

impl<'a> NewChange<'a> {
    /// A change of an identity itself (updated, retained, deleted).
    pub fn identity(kind: &'a str, mv: i64, detail: Option<&'a str>) -> NewChange<'a> {
        NewChange {
            kind,
            agent: None,
            cs_id: None,
            anchor: None,
            mv_id: Some(mv),
            detail,
        }
    }

    /// A change of an account or object in a target (`agent`), named by
    /// `name` and owned by identity `mv` when there is one.
    pub fn account(
        kind: &'a str,
        agent: &'a str,
        name: Option<&'a str>,
        mv: Option<i64>,
        detail: Option<&'a str>,
    ) -> NewChange<'a> {
        NewChange {
            kind,
            agent: Some(agent),
            cs_id: None,
            anchor: name,
            mv_id: mv,
            detail,
        }
    }
}

impl Tx<'_> {
    pub fn add_change(&self, step: i64, c: &NewChange) -> Result<()> {
        self.add_change_with(step, c, None)
    }

    /// Many changes at once, as [`Tx::add_change`] each, in order.
    pub fn add_changes<'c>(
        &self,
        step: i64,
        changes: impl IntoIterator<Item = NewChange<'c>>,
    ) -> Result<()> {
        self.insert_rows(
            "INSERT INTO change(step, kind, agent, cs_id, anchor, mv_id, detail)",
            "",
            changes.into_iter().map(|c| (step, c)),
            |(step, c)| {
                [
                    step as &dyn rusqlite::ToSql,
                    &c.kind,
                    &c.agent,
                    &c.cs_id,
                    &c.anchor,
                    &c.mv_id,
                    &c.detail,
                ]
            },
        )
    }

    /// A change with the values it changed (`history::Values` as JSON).
    pub fn add_change_with(&self, step: i64, c: &NewChange, data: Option<&str>) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO change(step, kind, agent, cs_id, anchor, mv_id, detail, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(|e| self.err(e))?;
        stmt.execute(params![
            step, c.kind, c.agent, c.cs_id, c.anchor, c.mv_id, c.detail, data
        ])
        .map(|_| ())
        .map_err(|e| self.err(e))
    }
}

impl Tx<'_> {
    /// Records what an import staged (its adds, updates and deletes are the
    /// objects stamped with the agent's current import sequence), in one
    /// statement; anchors are read from the objects when listed.
    pub fn record_import_changes(&self, step: i64, agent: &str, most: bool) -> Result<()> {
        // A deleted object's row goes at the next sync: its anchor is kept here.
        // The objects this import staged are found by their sequence mark
        // (`cs_pending`) and sorted by anchor. Left to itself, SQLite walks
        // the agent's whole space in anchor order instead, to skip the
        // sort, and tests each row's mark: a delta import of a few thousand
        // rows read all of them. When the import staged `most` of the
        // space (a first import), that walk is what costs least: for
        // Workday at 1 M, the sort took 0.51-0.64 s and the walk 0.36 s.
        let index = if most { "cs_compare" } else { "cs_pending" };
        self.tx
            .execute(
                &format!(
                    "INSERT INTO change(step, kind, agent, cs_id, anchor)
                     SELECT ?1, op, agent, id, CASE WHEN op = 'delete' THEN anchor END
                     FROM cs_object INDEXED BY {index}
                     WHERE agent = ?2 AND seq = (SELECT import_seq FROM agent_state WHERE agent = ?2)
                     ORDER BY anchor"
                ),
                params![step, agent],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

impl Store {
    /// What a step changed, object by object, in the order it was recorded.
    pub fn step_changes(&self, step: i64, limit: usize) -> Result<Vec<ChangeRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT ch.kind, coalesce(ch.agent, c.agent), coalesce(ch.anchor, c.anchor), ch.mv_id, ch.detail
                 FROM change ch LEFT JOIN cs_object c ON c.id = ch.cs_id
                 WHERE ch.step = ?1 ORDER BY ch.id LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![step, limit as i64], |r| {
                Ok(ChangeRow {
                    kind: r.get(0)?,
                    agent: r.get(1)?,
                    anchor: r.get(2)?,
                    mv_id: r.get(3)?,
                    detail: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}
