//! Decisions people made about connector-space objects: explicit
//! connectors, projections and disconnectors (the review queue's accept and
//! reject, `idsync join`, `idsync disconnect`).

use super::{Result, Store, Tx};
use crate::model::{CsId, MvId, RunId};
use rusqlite::{OptionalExtension, params};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DecisionRow {
    pub cs_id: CsId,
    pub agent: String,
    pub anchor: String,
    /// join, project or disconnect.
    pub kind: String,
    pub mv_id: Option<MvId>,
    pub actor: String,
    pub at: String,
    pub note: Option<String>,
    pub applied_run: Option<RunId>,
}

fn decision_row(r: &rusqlite::Row) -> rusqlite::Result<DecisionRow> {
    Ok(DecisionRow {
        cs_id: r.get(0)?,
        agent: r.get(1)?,
        anchor: r.get(2)?,
        kind: r.get(3)?,
        mv_id: r.get(4)?,
        actor: r.get(5)?,
        at: r.get(6)?,
        note: r.get(7)?,
        applied_run: r.get(8)?,
    })
}

const COLUMNS: &str = "cs_id, agent, anchor, kind, mv_id, actor, at, note, applied_run";

impl Store {
    /// Every decision, by agent and anchor.
    pub fn decisions(&self) -> Result<Vec<DecisionRow>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM decision ORDER BY agent, anchor"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], decision_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// A connector-space object's id and identity, by agent and anchor.
    pub fn cs_object(&self, agent: &str, anchor: &str) -> Result<Option<(CsId, Option<MvId>)>> {
        self.conn
            .query_row(
                "SELECT c.id, l.mv_id FROM cs_object c LEFT JOIN link l ON l.cs_id = c.id
                 WHERE c.agent = ?1 AND c.anchor = ?2",
                params![agent, anchor],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

impl Tx<'_> {
    /// Records a decision (replacing an earlier one about the object) and
    /// puts the object in front of the next sync, delta or full.
    pub fn put_decision(&self, d: &DecisionRow) -> Result<()> {
        self.tx
            .execute(
                &format!(
                    "INSERT OR REPLACE INTO decision({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)"
                ),
                params![d.cs_id, d.agent, d.anchor, d.kind, d.mv_id, d.actor, d.at, d.note],
            )
            .map_err(|e| self.err(e))?;
        // Pending is `seq > synced_seq`: the object gets the agent's next
        // sequence number, as an import that changed it would give it.
        self.tx
            .execute(
                "UPDATE agent_state SET import_seq = import_seq + 1 WHERE agent = ?1",
                params![d.agent],
            )
            .map_err(|e| self.err(e))?;
        self.tx
            .execute(
                "UPDATE cs_object SET seq = (SELECT import_seq FROM agent_state WHERE agent = ?1)
                 WHERE id = ?2",
                params![d.agent, d.cs_id],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Marks the decisions a sync applied for the first time.
    pub fn decisions_applied(&self, ids: &[CsId], run: RunId) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "UPDATE decision SET applied_run = ?2 WHERE cs_id = ?1 AND applied_run IS NULL",
            )
            .map_err(|e| self.err(e))?;
        for id in ids {
            stmt.execute(params![id, run]).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Forgets the decisions about objects a source no longer has.
    pub fn drop_decisions(&self, ids: &[CsId]) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM decision WHERE cs_id = ?1")
            .map_err(|e| self.err(e))?;
        for id in ids {
            stmt.execute(params![id]).map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}
