//! Targets: the accounts idsync manages in each one, their pending exports,
//! the references between them, and each target's state (when its
//! identities were last evaluated, whether it is quarantined).

use super::{IN_LIST, Result, Store, Tx, placeholders};
use crate::model::{MvId, RunId};
use rusqlite::{OptionalExtension, params};

/// One account in a target, as stored. `desired` and `exported` are JSON
/// the engine reads (`engine::outbound`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub agent: String,
    pub mv_id: MvId,
    pub state: String,
    pub remote_id: Option<String>,
    pub name: Option<String>,
    pub desired: String,
    pub exported: Option<String>,
    pub pending: bool,
    pub unconfirmed: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_run: RunId,
    pub updated_run: RunId,
    /// JSON: the values of attributes other targets read back (see
    /// migration 8).
    pub held: Option<String>,
}

impl ExportRow {
    /// A new account of identity `mv_id` in `agent`, not in the target yet:
    /// to be exported as `state` with the `desired` values.
    pub fn new(agent: &str, mv_id: MvId, state: &str, desired: String, run: RunId) -> ExportRow {
        ExportRow {
            agent: agent.to_string(),
            mv_id,
            state: state.to_string(),
            remote_id: None,
            name: None,
            desired,
            exported: None,
            pending: true,
            unconfirmed: None,
            error: None,
            attempts: 0,
            created_run: run,
            updated_run: run,
            held: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetState {
    pub rules_hash: Option<String>,
    pub provisioned_run: RunId,
    pub quarantined: Option<String>,
    pub quarantined_run: Option<RunId>,
}

/// Where an identity's account in a target stands, for writing references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    pub mv_id: MvId,
    pub remote_id: Option<String>,
    pub name: Option<String>,
    pub held: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportCounts {
    pub accounts: u64,
    /// Accounts the target has (created or joined).
    pub accounts_created: u64,
    /// Accounts the target has that wait to be deleted.
    pub deleting: u64,
    pub pending: u64,
    pub failing: u64,
    pub disabled: u64,
    pub awaiting_confirmation: u64,
}

/// The meta key of [`Store::touched_pruned`].
const TOUCHED_PRUNED: &str = "mv_touched_pruned";

const COLUMNS: &str = "agent, mv_id, state, remote_id, name, desired, exported, pending, unconfirmed, error, attempts, created_run, updated_run, held";

fn export_row(r: &rusqlite::Row) -> rusqlite::Result<ExportRow> {
    Ok(ExportRow {
        agent: r.get(0)?,
        mv_id: r.get(1)?,
        state: r.get(2)?,
        remote_id: r.get(3)?,
        name: r.get(4)?,
        desired: r.get(5)?,
        exported: r.get(6)?,
        pending: r.get::<_, i64>(7)? != 0,
        unconfirmed: r.get(8)?,
        error: r.get(9)?,
        attempts: r.get(10)?,
        created_run: r.get(11)?,
        updated_run: r.get(12)?,
        held: r.get(13)?,
    })
}

impl Store {
    /// The identity ids a query gives, in its order.
    pub(super) fn mv_ids(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<MvId>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map(p, |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<MvId>>>()
            .map_err(|e| self.err(e))
    }

    pub fn target_state(&self, agent: &str) -> Result<TargetState> {
        Ok(self
            .conn
            .query_row(
                "SELECT rules_hash, provisioned_run, quarantined, quarantined_run FROM target_state WHERE agent = ?1",
                params![agent],
                |r| {
                    Ok(TargetState {
                        rules_hash: r.get(0)?,
                        provisioned_run: r.get(1)?,
                        quarantined: r.get(2)?,
                        quarantined_run: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))?
            .unwrap_or_default())
    }

    /// Ids of the identities of `object_type` written after run `after`
    /// (every one of them when `after` is `None`), in id order. Asked for
    /// runs the log no longer holds ([`Store::touched_pruned`]), the
    /// answer would be short: such a pass evaluates everything instead.
    pub fn mv_ids_changed(&self, object_type: &str, after: Option<RunId>) -> Result<Vec<MvId>> {
        let (sql, arg) = match after {
            Some(run) => (
                "SELECT DISTINCT mv_id FROM mv_touched WHERE run > ?2 AND object_type = ?1 ORDER BY mv_id",
                run,
            ),
            None => (
                "SELECT id FROM mv_object WHERE object_type = ?1 AND ?2 = ?2 ORDER BY id",
                0,
            ),
        };
        self.mv_ids(sql, params![object_type, arg])
    }

    /// Through which run the log of written identities was cut: a pass
    /// last run before it must look at every identity.
    pub fn touched_pruned(&self) -> Result<RunId> {
        Ok(self
            .meta(TOUCHED_PRUNED)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Identities deleted by syncs of runs after `run`, as their change
    /// records say: what a pass since then must forget, without comparing
    /// its tables with the whole metaverse.
    pub fn mv_deleted_since(&self, run: RunId) -> Result<Vec<MvId>> {
        self.mv_ids(
            // Through the step index: the planner would scan every change.
            "SELECT c.mv_id FROM change c WHERE c.step IN (SELECT id FROM step WHERE run > ?1)
             AND c.kind = 'identity-deleted' AND c.mv_id IS NOT NULL",
            params![run],
        )
    }

    /// Identities of a target's accounts that are no longer in the metaverse.
    pub fn exports_without_identity(&self, agent: &str) -> Result<Vec<MvId>> {
        self.mv_ids(
            "SELECT e.mv_id FROM export_object e WHERE e.agent = ?1
             AND NOT EXISTS (SELECT 1 FROM mv_object m WHERE m.id = e.mv_id) ORDER BY e.mv_id",
            params![agent],
        )
    }

    /// The accounts of these identities in `agent` (those that exist).
    pub fn export_rows(&self, agent: &str, ids: &[MvId]) -> Result<Vec<ExportRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM export_object WHERE agent = ? AND mv_id IN ({{ids}}) ORDER BY mv_id"
        );
        keyed_in(&self.conn, &sql, agent, ids, export_row).map_err(|e| self.err(e))
    }

    /// A target's accounts with a pending export, in identity order.
    pub fn pending_exports(&self, agent: &str) -> Result<Vec<ExportRow>> {
        pending_exports(&self.conn, agent).map_err(|e| self.err(e))
    }

    /// Every account of a target, in identity order.
    pub fn each_export(&self, agent: &str, each: &mut dyn FnMut(ExportRow)) -> Result<()> {
        let sql = format!("SELECT {COLUMNS} FROM export_object WHERE agent = ?1 ORDER BY mv_id");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params![agent]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            each(export_row(r).map_err(|e| self.err(e))?);
        }
        Ok(())
    }

    /// An identity's accounts in every target.
    pub fn accounts_of(&self, mv: MvId) -> Result<Vec<ExportRow>> {
        let sql = format!("SELECT {COLUMNS} FROM export_object WHERE mv_id = ?1 ORDER BY agent");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![mv], export_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Where the accounts of these identities stand in `agent`.
    pub fn account_refs(&self, agent: &str, ids: &[MvId]) -> Result<Vec<AccountRef>> {
        account_refs(&self.conn, agent, ids).map_err(|e| self.err(e))
    }

    pub fn export_counts(&self, agent: &str) -> Result<ExportCounts> {
        export_counts(&self.conn, agent).map_err(|e| self.err(e))
    }
}

fn export_counts(conn: &rusqlite::Connection, agent: &str) -> rusqlite::Result<ExportCounts> {
    conn.query_row(
        "SELECT count(*), coalesce(sum(pending), 0), coalesce(sum(error IS NOT NULL), 0),
                coalesce(sum(state = 'disabled'), 0), coalesce(sum(unconfirmed IS NOT NULL), 0),
                coalesce(sum(remote_id IS NOT NULL), 0),
                coalesce(sum(state = 'delete' AND remote_id IS NOT NULL), 0)
         FROM export_object WHERE agent = ?1",
        params![agent],
        |r| {
            Ok(ExportCounts {
                accounts: r.get::<_, i64>(0)? as u64,
                pending: r.get::<_, i64>(1)? as u64,
                failing: r.get::<_, i64>(2)? as u64,
                disabled: r.get::<_, i64>(3)? as u64,
                awaiting_confirmation: r.get::<_, i64>(4)? as u64,
                accounts_created: r.get::<_, i64>(5)? as u64,
                deleting: r.get::<_, i64>(6)? as u64,
            })
        },
    )
}

/// Rows of `sql` (a statement with `?` for the key and `{ids}` for an id
/// list) for `key` and every id, read in lists of [`IN_LIST`].
fn keyed_in<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    key: &str,
    ids: &[MvId],
    row: impl Fn(&rusqlite::Row) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(IN_LIST) {
        let text = sql.replace("{ids}", &placeholders(chunk.len()));
        let mut stmt = conn.prepare_cached(&text)?;
        let args = std::iter::once(rusqlite::types::Value::Text(key.to_string()))
            .chain(chunk.iter().map(|&i| rusqlite::types::Value::Integer(i)));
        for r in stmt.query_map(rusqlite::params_from_iter(args), &row)? {
            out.push(r?);
        }
    }
    Ok(out)
}

// Reads an export makes inside its own transaction, which sees its writes.
fn pending_exports(conn: &rusqlite::Connection, agent: &str) -> rusqlite::Result<Vec<ExportRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM export_object WHERE agent = ?1 AND pending = 1 ORDER BY mv_id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![agent], export_row)?;
    rows.collect()
}

fn account_refs(
    conn: &rusqlite::Connection,
    agent: &str,
    ids: &[MvId],
) -> rusqlite::Result<Vec<AccountRef>> {
    keyed_in(
        conn,
        "SELECT mv_id, remote_id, name, held FROM export_object WHERE agent = ? AND mv_id IN ({ids})",
        agent,
        ids,
        |r| {
            Ok(AccountRef {
                mv_id: r.get(0)?,
                remote_id: r.get(1)?,
                name: r.get(2)?,
                held: r.get(3)?,
            })
        },
    )
}

impl Tx<'_> {
    pub fn pending_exports(&self, agent: &str) -> Result<Vec<ExportRow>> {
        pending_exports(&self.tx, agent).map_err(|e| self.err(e))
    }

    pub fn account_refs(&self, agent: &str, ids: &[MvId]) -> Result<Vec<AccountRef>> {
        account_refs(&self.tx, agent, ids).map_err(|e| self.err(e))
    }

    pub fn export_counts(&self, agent: &str) -> Result<ExportCounts> {
        export_counts(&self.tx, agent).map_err(|e| self.err(e))
    }

    pub fn put_export(&self, r: &ExportRow) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO export_object({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            ))
            .map_err(|e| self.err(e))?;
        stmt.execute(params![
            r.agent,
            r.mv_id,
            r.state,
            r.remote_id,
            r.name,
            r.desired,
            r.exported,
            r.pending as i64,
            r.unconfirmed,
            r.error,
            r.attempts,
            r.created_run,
            r.updated_run,
            r.held
        ])
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    /// What an export did to an account that is stored: its state in the
    /// target. Updated in place (the wanted values do not change).
    pub fn record_export(&self, r: &ExportRow) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "UPDATE export_object SET state = ?3, remote_id = ?4, name = ?5, exported = ?6,
                 pending = ?7, unconfirmed = ?8, error = ?9, attempts = ?10, updated_run = ?11
                 WHERE agent = ?1 AND mv_id = ?2",
            )
            .map_err(|e| self.err(e))?;
        stmt.execute(params![
            r.agent,
            r.mv_id,
            r.state,
            r.remote_id,
            r.name,
            r.exported,
            r.pending as i64,
            r.unconfirmed,
            r.error,
            r.attempts,
            r.updated_run
        ])
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    /// Forgets an account (deleted in the target, or disconnected).
    pub fn remove_export(&self, agent: &str, mv: MvId) -> Result<()> {
        for sql in [
            "DELETE FROM export_object WHERE agent = ?1 AND mv_id = ?2",
            "DELETE FROM export_ref WHERE agent = ?1 AND mv_id = ?2",
        ] {
            self.tx
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(params![agent, mv]))
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The accounts an account refers to: `(target, identity)` pairs.
    pub fn set_export_refs(&self, agent: &str, mv: MvId, refs: &[(&str, MvId)]) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM export_ref WHERE agent = ?1 AND mv_id = ?2")
            .and_then(|mut s| s.execute(params![agent, mv]))
            .map_err(|e| self.err(e))?;
        self.add_export_refs(agent, mv, refs)
    }

    /// Adds references of an account that had none stored.
    pub fn add_export_refs(&self, agent: &str, mv: MvId, refs: &[(&str, MvId)]) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO export_ref(ref_agent, ref_mv, agent, mv_id) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(|e| self.err(e))?;
        for (ra, rm) in refs {
            stmt.execute(params![ra, rm, agent, mv])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Marks for export every account that refers to `mv`'s account in
    /// `agent` (it was created or renamed); returns how many.
    pub fn touch_referrers(&self, agent: &str, mv: MvId) -> Result<usize> {
        self.tx
            .prepare_cached(
                "UPDATE export_object SET pending = 1 WHERE pending = 0 AND (agent, mv_id) IN
                 (SELECT agent, mv_id FROM export_ref WHERE ref_agent = ?1 AND ref_mv = ?2)",
            )
            .and_then(|mut s| s.execute(params![agent, mv]))
            .map_err(|e| self.err(e))
    }

    pub fn set_target_provisioned(&self, agent: &str, hash: &str, run: RunId) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO target_state(agent, rules_hash, provisioned_run) VALUES (?1, ?2, ?3)
                 ON CONFLICT(agent) DO UPDATE SET rules_hash = excluded.rules_hash, provisioned_run = excluded.provisioned_run",
                params![agent, hash, run],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Cuts the log of written identities through run `through`: every
    /// pass that reads it has read that far.
    pub fn prune_touched(&self, through: RunId) -> Result<()> {
        let last: Option<RunId> = self
            .tx
            .query_row("SELECT max(run) FROM mv_touched", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        // All of it (after a full sync, most of a million rows): SQLite
        // empties a table without visiting its rows.
        let deleted = match last {
            Some(last) if last > through => self
                .tx
                .execute("DELETE FROM mv_touched WHERE run <= ?1", params![through]),
            _ => self.tx.execute("DELETE FROM mv_touched", []),
        };
        deleted.map_err(|e| self.err(e))?;
        self.tx
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                params![TOUCHED_PRUNED, through],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Quarantines a target (`Some(reason)`) or lifts its quarantine.
    pub fn set_quarantine(&self, agent: &str, reason: Option<&str>, run: RunId) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO target_state(agent, quarantined, quarantined_run) VALUES (?1, ?2, ?3)
                 ON CONFLICT(agent) DO UPDATE SET quarantined = excluded.quarantined, quarantined_run = excluded.quarantined_run",
                params![agent, reason, reason.map(|_| run)],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn set_step_finished(&self, step: i64, now: &str) -> Result<()> {
        self.tx
            .execute(
                "UPDATE step SET finished_at = ?2 WHERE id = ?1",
                params![step, now],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Adds to a finished step's counters (provisioning runs after the
    /// sync's own transaction).
    pub fn merge_step_counters(&self, step: i64, more: &serde_json::Value) -> Result<()> {
        self.tx
            .execute(
                "UPDATE step SET counters = json_patch(coalesce(counters, '{}'), ?2) WHERE id = ?1",
                params![step, more.to_string()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn add_step_errors(&self, step: i64, errors: &[super::StepErrorRow]) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("INSERT INTO step_error(step, kind, agent, anchor, source, line, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .map_err(|e| self.err(e))?;
        for e in errors {
            stmt.execute(params![
                step, e.kind, e.agent, e.anchor, e.source, e.line, e.message
            ])
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

impl Store {
    /// The group each of these identities is in under `rule`.
    pub fn group_keys(&self, rule: &str, ids: &[MvId]) -> Result<Vec<(MvId, String)>> {
        keyed_in(
            &self.conn,
            "SELECT mv_id, key FROM group_member WHERE rule = ? AND mv_id IN ({ids})",
            rule,
            ids,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| self.err(e))
    }

    /// Members under `rule` that are no longer in the metaverse.
    pub fn group_members_gone(&self, rule: &str) -> Result<Vec<MvId>> {
        self.mv_ids(
            "SELECT g.mv_id FROM group_member g WHERE g.rule = ?1
             AND NOT EXISTS (SELECT 1 FROM mv_object m WHERE m.id = g.mv_id)",
            params![rule],
        )
    }
}

impl Tx<'_> {
    /// Puts each identity in its group of `rule` (`Some(key)`), or in none.
    pub fn set_group_keys(&self, rule: &str, moves: &[(MvId, Option<String>)]) -> Result<()> {
        self.insert_rows(
            "INSERT INTO group_member(rule, mv_id, key)",
            "ON CONFLICT(rule, mv_id) DO UPDATE SET key = excluded.key",
            moves
                .iter()
                .filter_map(|(id, k)| k.as_ref().map(|k| (rule, id, k))),
            |(rule, id, k)| [rule as &dyn rusqlite::ToSql, id, k],
        )?;
        for (id, _) in moves.iter().filter(|(_, k)| k.is_none()) {
            self.set_group_key(rule, *id, None)?;
        }
        Ok(())
    }

    /// Puts an identity in group `key` of `rule`, or in none.
    pub fn set_group_key(&self, rule: &str, mv: MvId, key: Option<&str>) -> Result<()> {
        match key {
            Some(k) => self
                .tx
                .prepare_cached(
                    "INSERT INTO group_member(rule, mv_id, key) VALUES (?1, ?2, ?3)
                     ON CONFLICT(rule, mv_id) DO UPDATE SET key = excluded.key",
                )
                .and_then(|mut s| s.execute(params![rule, mv, k])),
            None => self
                .tx
                .prepare_cached("DELETE FROM group_member WHERE rule = ?1 AND mv_id = ?2")
                .and_then(|mut s| s.execute(params![rule, mv])),
        }
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    /// The metaverse object of group `key`, its stored attributes, and
    /// whether its members are read from `group_member` (else the stored
    /// attributes hold them, as a group written before migration 10 does).
    pub fn group_object(&self, rule: &str, key: &str) -> Result<Option<(MvId, String, bool)>> {
        self.tx
            .query_row(
                "SELECT g.mv_id, m.attrs, g.member_attr IS NOT NULL
                 FROM group_object g JOIN mv_object m ON m.id = g.mv_id
                 WHERE g.rule = ?1 AND g.key = ?2",
                params![rule, key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Whether group `key` of `rule` has a member.
    pub fn group_has_members(&self, rule: &str, key: &str) -> Result<bool> {
        self.tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM group_member WHERE rule = ?1 AND key = ?2)",
                params![rule, key],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Records (or with `None` forgets) the metaverse object of group `key`;
    /// its `member_attr` values are read from the group's members.
    pub fn set_group_object(&self, rule: &str, key: &str, mv: Option<(MvId, &str)>) -> Result<()> {
        match mv {
            Some((id, member_attr)) => self.tx.execute(
                "INSERT OR REPLACE INTO group_object(rule, key, mv_id, member_attr) VALUES (?1, ?2, ?3, ?4)",
                params![rule, key, id, member_attr],
            ),
            None => self.tx.execute(
                "DELETE FROM group_object WHERE rule = ?1 AND key = ?2",
                params![rule, key],
            ),
        }
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    pub fn next_mv_id(&self) -> Result<MvId> {
        self.tx
            .query_row("SELECT coalesce(max(id), 0) + 1 FROM mv_object", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }
}
