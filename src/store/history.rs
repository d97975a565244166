//! An identity's recorded past, read back for `idsync history` and
//! `idsync explain`: its change records with the run and step that made
//! each one, and the identities change records still name after the
//! identity itself was deleted.

use super::{Result, Store};
use crate::model::{MvId, RunId};
use rusqlite::{OptionalExtension, params};

/// One change record of an identity, with its step's run, name and times.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryRow {
    /// The record's id: records are numbered in the order they were written.
    pub id: i64,
    pub run: RunId,
    pub step: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub kind: String,
    pub agent: Option<String>,
    pub anchor: Option<String>,
    pub detail: Option<String>,
    /// Values before and after, for identity updates and deletions.
    pub data: Option<String>,
}

impl Store {
    /// Every change record of identity `mv`, oldest first.
    pub fn identity_history(&self, mv: MvId) -> Result<Vec<HistoryRow>> {
        let mut stmt = self
            .conn
            .prepare(
                // `change_mv` is partial (mv_id IS NOT NULL): `mv_id = ?` implies it.
                "SELECT ch.id, s.run, s.name, s.started_at, s.finished_at, ch.kind,
                        coalesce(ch.agent, c.agent), coalesce(ch.anchor, c.anchor), ch.detail, ch.data
                 FROM change ch JOIN step s ON s.id = ch.step
                 LEFT JOIN cs_object c ON c.id = ch.cs_id
                 WHERE ch.mv_id = ?1 ORDER BY ch.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![mv], |r| {
                Ok(HistoryRow {
                    id: r.get(0)?,
                    run: r.get(1)?,
                    step: r.get(2)?,
                    started_at: r.get(3)?,
                    finished_at: r.get(4)?,
                    kind: r.get(5)?,
                    agent: r.get(6)?,
                    anchor: r.get(7)?,
                    detail: r.get(8)?,
                    data: r.get(9)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Whether any change record names identity `mv`: a deleted identity
    /// is still known by them.
    pub fn has_history(&self, mv: MvId) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM change WHERE mv_id = ?1 LIMIT 1",
                params![mv],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }

    /// The identity an agent's object was last disconnected from, as its
    /// change records say: how `agent:anchor` still finds an identity once
    /// the object is gone. Reads every change record (no index holds
    /// anchors), so it is only asked when nothing current matched.
    pub fn former_mv_of(&self, agent: &str, anchor: &str) -> Result<Option<MvId>> {
        self.conn
            .query_row(
                "SELECT mv_id FROM change WHERE kind = 'disconnected' AND agent = ?1 AND anchor = ?2
                 AND mv_id IS NOT NULL ORDER BY id DESC LIMIT 1",
                params![agent, anchor],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// When a run started, for events known only by their run (a link's,
    /// a lineage entry's).
    pub fn run_started(&self, run: RunId) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT started_at FROM run WHERE id = ?1",
                params![run],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_history_reads_through_the_identity_index()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("s.db"))?;
        let plan: Vec<String> = store
            .conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT ch.id FROM change ch JOIN step s ON s.id = ch.step
                 LEFT JOIN cs_object c ON c.id = ch.cs_id WHERE ch.mv_id = ?1 ORDER BY ch.id",
            )?
            .query_map(params![1], |r| r.get::<_, String>(3))?
            .collect::<rusqlite::Result<_>>()?;
        assert!(plan.iter().any(|p| p.contains("change_mv")), "{plan:?}");
        Ok(())
    }
}
