//! The metaverse, links between connector-space and metaverse objects, and
//! ambiguous joins waiting for a person: reading them for sync and `show`,
//! and writing a sync's decisions.

use super::{Result, Store, StoreError, Tx};
use crate::model::json::{lineage_entries, record_from_json};
use crate::model::{CsId, Lineage, MvId, Origin, Record, RunId, Schema};
use rusqlite::{OptionalExtension, params};

/// Where a computed group's members are: (rule, key, member attribute).
type MemberList = (String, String, String);

#[derive(Debug, Clone)]
pub struct MvRow {
    pub id: MvId,
    pub object_type: String,
    pub attrs: Record,
    /// Stored lineage text (see `model::json`); [`MvRow::lineage`] reads it.
    pub lineage_json: String,
    pub created_run: RunId,
    pub updated_run: RunId,
    /// Set while the identity is kept without connectors (the day its
    /// last connector left).
    pub retained_since: Option<String>,
}

impl MvRow {
    pub fn lineage(&self) -> Lineage {
        let mut out = Lineage::new();
        let _ = lineage_entries(&self.lineage_json, |attr, agent, anchor, run| {
            out.entry(attr.to_string()).or_default().push(Origin(
                agent.to_string(),
                anchor.to_string(),
                run,
            ));
        });
        out
    }
}

/// The schema of each metaverse object type, by type name.
pub type SchemaOf<'s> = dyn Fn(&str) -> Option<&'s Schema> + 's;

/// A connector-space object whose join found several candidates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AmbiguousRow {
    pub cs_id: CsId,
    pub agent: String,
    pub anchor: String,
    pub rule: String,
    pub candidates: Vec<MvId>,
    pub run: RunId,
    /// A fuzzy rule's scores, as JSON (see migration 7).
    pub scores: Option<String>,
}

/// A link to write: object, identity, kind, rule, detail.
pub type NewLink<'a> = (CsId, MvId, &'a str, Option<&'a str>, Option<&'a str>);

/// A connector of a metaverse object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkRow {
    pub cs_id: CsId,
    pub agent: String,
    pub anchor: String,
    pub kind: String,
    pub rule: Option<String>,
    pub run: RunId,
    pub detail: Option<String>,
}

impl Store {
    fn mv_row(&self, r: &rusqlite::Row, schema_of: &SchemaOf) -> Result<Option<MvRow>> {
        let get = |e| self.err(e);
        let id: i64 = r.get(0).map_err(get)?;
        let object_type: String = r.get(1).map_err(get)?;
        let Some(schema) = schema_of(&object_type) else {
            return Ok(None);
        };
        let attrs: String = r.get(2).map_err(get)?;
        let attrs = record_from_json(&attrs, schema).map_err(|e| StoreError::Corrupt {
            path: self.path.display().to_string(),
            message: format!("metaverse object {id}: {e}"),
        })?;
        Ok(Some(MvRow {
            id,
            attrs,
            lineage_json: r.get(3).map_err(get)?,
            object_type,
            created_run: r.get(4).map_err(get)?,
            updated_run: r.get(5).map_err(get)?,
            retained_since: r.get(6).map_err(get)?,
        }))
    }

    /// Computed groups whose members are read from `group_member`, by the
    /// id of their metaverse object: (rule, key, member attribute).
    fn member_lists(&self) -> Result<rustc_hash::FxHashMap<MvId, MemberList>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT mv_id, rule, key, member_attr FROM group_object WHERE member_attr IS NOT NULL",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Puts a computed group's members (in id order) into its member
    /// attribute, in place of anything its row held there.
    fn fill_members(
        &self,
        row: &mut MvRow,
        schema: &Schema,
        lists: &rustc_hash::FxHashMap<MvId, MemberList>,
    ) -> Result<()> {
        let Some((rule, key, attr)) = lists.get(&row.id) else {
            return Ok(());
        };
        let Some(a) = schema.get(attr) else {
            return Ok(());
        };
        let members = self.mv_ids(
            "SELECT mv_id FROM group_member WHERE rule = ?1 AND key = ?2 ORDER BY mv_id",
            params![rule, key],
        )?;
        let mut b = Record::builder();
        for (x, v) in row.attrs.iter() {
            if x != a {
                b.push(x, v);
            }
        }
        let mut text = String::new();
        for m in members {
            use std::fmt::Write;
            text.clear();
            let _ = write!(text, "{m}");
            b.push(a, &text);
        }
        row.attrs = b.build();
        Ok(())
    }

    /// Every metaverse object whose type `schema_of` knows, in id order.
    pub fn load_mv(&self, schema_of: &SchemaOf, each: &mut dyn FnMut(MvRow)) -> Result<()> {
        let lists = self.member_lists()?;
        let mut stmt = self
            .conn
            .prepare("SELECT id, object_type, attrs, lineage, created_run, updated_run, retained_since FROM mv_object ORDER BY id")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            if let Some(mut row) = self.mv_row(r, schema_of)? {
                if let Some(schema) = schema_of(&row.object_type) {
                    self.fill_members(&mut row, schema, &lists)?;
                }
                each(row);
            }
        }
        Ok(())
    }

    pub fn get_mv(&self, id: MvId, schema_of: &SchemaOf) -> Result<Option<MvRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, object_type, attrs, lineage, created_run, updated_run, retained_since FROM mv_object WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params![id]).map_err(|e| self.err(e))?;
        let Some(r) = rows.next().map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let Some(mut row) = self.mv_row(r, schema_of)? else {
            return Ok(None);
        };
        if let Some(schema) = schema_of(&row.object_type) {
            self.fill_members(&mut row, schema, &self.member_lists()?)?;
        }
        Ok(Some(row))
    }

    /// The metaverse objects with these ids (those that exist), in id order.
    pub fn load_mv_ids(&self, ids: &[MvId], schema_of: &SchemaOf) -> Result<Vec<MvRow>> {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut out = Vec::with_capacity(sorted.len());
        for chunk in sorted.chunks(super::IN_LIST) {
            let sql = format!(
                "SELECT id, object_type, attrs, lineage, created_run, updated_run, retained_since FROM mv_object WHERE id IN ({}) ORDER BY id",
                super::placeholders(chunk.len())
            );
            let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(chunk))
                .map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let get = |e| self.err(e);
                let object_type: String = r.get(1).map_err(get)?;
                let Some(schema) = schema_of(&object_type) else {
                    continue;
                };
                let text: String = r.get(2).map_err(get)?;
                let row = MvRow {
                    id: r.get(0).map_err(get)?,
                    attrs: Record::default(),
                    lineage_json: r.get(3).map_err(get)?,
                    object_type,
                    created_run: r.get(4).map_err(get)?,
                    updated_run: r.get(5).map_err(get)?,
                    retained_since: r.get(6).map_err(get)?,
                };
                out.push((row, schema, text));
            }
        }
        // Parsed on every core: a delta sync reads thousands at a time.
        use rayon::prelude::*;
        let path = self.path.display().to_string();
        let lists = self.member_lists()?;
        let groups: Vec<(usize, &Schema)> = out
            .iter()
            .enumerate()
            .filter(|(_, (row, _, _))| lists.contains_key(&row.id))
            .map(|(i, (_, schema, _))| (i, *schema))
            .collect();
        let mut rows: Vec<MvRow> = out
            .into_par_iter()
            .map(|(mut row, schema, text)| {
                row.attrs = record_from_json(&text, schema).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    message: format!("metaverse object {}: {e}", row.id),
                })?;
                Ok(row)
            })
            .collect::<Result<_>>()?;
        for (i, schema) in groups {
            if let Some(row) = rows.get_mut(i) {
                self.fill_members(row, schema, &lists)?;
            }
        }
        Ok(rows)
    }

    /// Identities with a due date on or before `day` (`YYYY-MM-DD`).
    pub fn due_mvs(&self, day: &str) -> Result<Vec<MvId>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT mv_id FROM mv_due WHERE due <= ?1 ORDER BY mv_id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![day], |r| r.get::<_, i64>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    pub fn mv_count(&self) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM mv_object INDEXED BY mv_type",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Ids of metaverse objects of a type whose attribute has exactly this value.
    pub fn find_mv_by(&self, object_type: &str, attr: &str, value: &str) -> Result<Vec<MvId>> {
        let path = format!("$.\"{}\"", attr.replace('"', ""));
        // A computed group's members are rows of group_member.
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id FROM mv_object WHERE object_type = ?1 AND (
                    json_extract(attrs, ?2) = ?3
                    OR EXISTS (SELECT 1 FROM json_each(attrs, ?2) WHERE value = ?3))
                 UNION
                 SELECT o.mv_id FROM group_member g
                    JOIN group_object o ON o.rule = g.rule AND o.key = g.key
                    JOIN mv_object m ON m.id = o.mv_id
                 WHERE o.member_attr = ?4 AND m.object_type = ?1 AND g.mv_id = ?3
                 ORDER BY 1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![object_type, path, value, attr], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// The metaverse object an agent's anchor is joined to.
    pub fn mv_of(&self, agent: &str, anchor: &str) -> Result<Option<MvId>> {
        self.conn
            .query_row(
                "SELECT l.mv_id FROM cs_object c JOIN link l ON l.cs_id = c.id WHERE c.agent = ?1 AND c.anchor = ?2",
                params![agent, anchor],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn links_of(&self, mv: MvId) -> Result<Vec<LinkRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT l.cs_id, c.agent, c.anchor, l.kind, l.rule, l.run, l.detail
                 FROM link l JOIN cs_object c ON c.id = l.cs_id WHERE l.mv_id = ?1 ORDER BY c.agent, c.anchor",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![mv], |r| {
                Ok(LinkRow {
                    cs_id: r.get(0)?,
                    agent: r.get(1)?,
                    anchor: r.get(2)?,
                    kind: r.get(3)?,
                    rule: r.get(4)?,
                    run: r.get(5)?,
                    detail: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    pub fn next_mv_id(&self) -> Result<MvId> {
        self.conn
            .query_row("SELECT coalesce(max(id), 0) + 1 FROM mv_object", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    /// Counts of metaverse objects per type.
    pub fn mv_summary(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT object_type, count(*) FROM mv_object GROUP BY object_type ORDER BY object_type")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Ambiguous joins waiting for a decision.
    pub fn ambiguous(&self) -> Result<Vec<AmbiguousRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT agent, anchor, rule, candidates, run, cs_id, scores FROM ambiguous_join ORDER BY agent, anchor")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let c: String = r.get(3)?;
                Ok(AmbiguousRow {
                    cs_id: r.get(5)?,
                    agent: r.get(0)?,
                    anchor: r.get(1)?,
                    rule: r.get(2)?,
                    candidates: serde_json::from_str(&c).unwrap_or_default(),
                    run: r.get(4)?,
                    scores: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}

impl Tx<'_> {
    fn run_sql(&self, sql: &str, p: impl rusqlite::Params) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        stmt.execute(p).map(|_| ()).map_err(|e| self.err(e))
    }

    pub fn insert_mv(
        &self,
        id: MvId,
        object_type: &str,
        attrs: &str,
        lineage: &str,
        run: RunId,
    ) -> Result<()> {
        self.insert_mvs(&[(id, object_type, attrs, lineage)], run)
    }

    /// Many new identities at once, as [`Tx::insert_mv`] each, in order:
    /// `(id, object type, attrs, lineage)`.
    pub fn insert_mvs(&self, rows: &[(MvId, &str, &str, &str)], run: RunId) -> Result<()> {
        self.insert_rows(
            "INSERT INTO mv_object(id, object_type, attrs, lineage, created_run, updated_run)",
            "",
            rows.iter().map(|r| (r, run)),
            |((id, ty, attrs, lineage), run)| {
                [id as &dyn rusqlite::ToSql, ty, attrs, lineage, run, run]
            },
        )?;
        for &(id, ty, ..) in rows {
            self.touched(id, ty, run)?;
        }
        Ok(())
    }

    pub fn update_mv(
        &self,
        id: MvId,
        object_type: &str,
        attrs: &str,
        lineage: &str,
        run: RunId,
    ) -> Result<()> {
        self.run_sql(
            "UPDATE mv_object SET attrs = ?2, lineage = ?3, updated_run = ?4 WHERE id = ?1",
            params![id, attrs, lineage, run],
        )?;
        self.touched(id, object_type, run)
    }

    /// Logs an identity written by `run` (see `mv_touched`), unless this
    /// transaction writes every identity anew ([`Tx::writes_all_anew`]).
    fn touched(&self, id: MvId, object_type: &str, run: RunId) -> Result<()> {
        if !self.log_writes.get() {
            return Ok(());
        }
        self.run_sql(
            "INSERT OR IGNORE INTO mv_touched(run, object_type, mv_id) VALUES (?1, ?2, ?3)",
            params![run, object_type, id],
        )
    }

    /// This transaction writes every identity anew (a first sync): instead
    /// of a log entry each, which every pass would read to the last and
    /// then cut, the log is cut at `run`, and every pass from before it
    /// looks at every identity.
    pub fn writes_all_anew(&self, run: RunId) -> Result<()> {
        self.log_writes.set(false);
        self.prune_touched(run)
    }

    pub fn set_retained(&self, id: MvId, since: Option<&str>) -> Result<()> {
        self.run_sql(
            "UPDATE mv_object SET retained_since = ?2 WHERE id = ?1",
            params![id, since],
        )
    }

    /// Deletes an identity and returns the values it held (stored text):
    /// its deletion record keeps them.
    pub fn delete_mv(&self, id: MvId) -> Result<Option<String>> {
        let attrs = {
            let mut stmt = self
                .tx
                .prepare_cached("DELETE FROM mv_object WHERE id = ?1 RETURNING attrs")
                .map_err(|e| self.err(e))?;
            stmt.query_row(params![id], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?
        };
        self.run_sql("DELETE FROM mv_due WHERE mv_id = ?1", params![id])?;
        Ok(attrs)
    }

    /// Lookup keys, best sorted so the B-tree is appended to. Rows go in
    /// statements of many rows each: a million identities have millions of keys.
    pub fn add_keys(&self, keys: &[(u64, MvId)]) -> Result<()> {
        const ROWS: usize = 128;
        let many = format!(
            "INSERT OR IGNORE INTO mv_key(key, mv_id) VALUES {}",
            vec!["(?, ?)"; ROWS].join(", ")
        );
        let mut stmt = self.tx.prepare_cached(&many).map_err(|e| self.err(e))?;
        let mut chunks = keys.chunks_exact(ROWS);
        for chunk in &mut chunks {
            let values: Vec<i64> = chunk.iter().flat_map(|&(k, mv)| [k as i64, mv]).collect();
            stmt.execute(rusqlite::params_from_iter(values))
                .map_err(|e| self.err(e))?;
        }
        let mut one = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO mv_key(key, mv_id) VALUES (?1, ?2)")
            .map_err(|e| self.err(e))?;
        for &(k, mv) in chunks.remainder() {
            one.execute(params![k as i64, mv])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    pub fn remove_keys(&self, keys: &[(u64, MvId)]) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM mv_key WHERE key = ?1 AND mv_id = ?2")
            .map_err(|e| self.err(e))?;
        for &(k, mv) in keys {
            stmt.execute(params![k as i64, mv])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Replaces every lookup key and due date with these, built under the
    /// rules whose key signature is `signature` (`keys` best sorted).
    pub fn replace_keys(
        &self,
        keys: &[(u64, MvId)],
        due: &[(MvId, Vec<Box<str>>)],
        signature: &str,
    ) -> Result<()> {
        self.run_sql("DELETE FROM mv_key", [])?;
        self.run_sql("DELETE FROM mv_due", [])?;
        self.add_keys(keys)?;
        for (id, days) in due {
            self.set_due(*id, days)?;
        }
        self.set_meta("key_kinds", signature)
    }

    /// Replaces an identity's due dates.
    pub fn set_due(&self, mv: MvId, days: &[Box<str>]) -> Result<()> {
        self.run_sql("DELETE FROM mv_due WHERE mv_id = ?1", params![mv])?;
        for d in days {
            self.run_sql(
                "INSERT OR IGNORE INTO mv_due(mv_id, due) VALUES (?1, ?2)",
                params![mv, &**d],
            )?;
        }
        Ok(())
    }

    /// Due dates on or before `day` have been acted on.
    pub fn clear_due_until(&self, day: &str) -> Result<()> {
        self.run_sql("DELETE FROM mv_due WHERE due <= ?1", params![day])
    }

    /// Takes a connector-space object off the queue of ambiguous joins.
    pub fn clear_ambiguous(&self, cs: CsId) -> Result<()> {
        self.run_sql("DELETE FROM ambiguous_join WHERE cs_id = ?1", params![cs])
    }

    pub fn link(
        &self,
        cs: CsId,
        mv: MvId,
        kind: &str,
        rule: Option<&str>,
        run: RunId,
        detail: Option<&str>,
    ) -> Result<()> {
        self.run_sql(
            "INSERT INTO link(cs_id, mv_id, kind, rule, run, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(cs_id) DO UPDATE SET mv_id = excluded.mv_id, kind = excluded.kind, rule = excluded.rule,
                run = excluded.run, detail = excluded.detail",
            params![cs, mv, kind, rule, run, detail],
        )
    }

    /// Many links at once, as [`Tx::link`] each, in order.
    pub fn links<'l>(
        &self,
        links: impl IntoIterator<Item = NewLink<'l>>,
        run: RunId,
    ) -> Result<()> {
        self.insert_rows(
            "INSERT INTO link(cs_id, mv_id, kind, rule, run, detail)",
            "ON CONFLICT(cs_id) DO UPDATE SET mv_id = excluded.mv_id, kind = excluded.kind,
                rule = excluded.rule, run = excluded.run, detail = excluded.detail",
            links.into_iter().map(|l| (l, run)),
            |((cs, mv, kind, rule, detail), run)| {
                [cs as &dyn rusqlite::ToSql, mv, kind, rule, run, detail]
            },
        )
    }

    pub fn unlink(&self, cs: CsId) -> Result<()> {
        self.run_sql("DELETE FROM link WHERE cs_id = ?1", params![cs])
    }

    /// Forgets a connector-space object whose staged delete has been synced.
    pub fn remove_cs(&self, cs: CsId) -> Result<()> {
        self.run_sql("DELETE FROM link WHERE cs_id = ?1", params![cs])?;
        self.run_sql("DELETE FROM ambiguous_join WHERE cs_id = ?1", params![cs])?;
        self.run_sql("DELETE FROM cs_prev WHERE id = ?1", params![cs])?;
        self.run_sql("DELETE FROM cs_object WHERE id = ?1", params![cs])
    }

    pub fn set_ambiguous(&self, a: &AmbiguousRow) -> Result<()> {
        let c = serde_json::to_string(&a.candidates).unwrap_or_else(|_| "[]".into());
        self.run_sql(
            "INSERT INTO ambiguous_join(cs_id, agent, anchor, rule, candidates, run, scores) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(cs_id) DO UPDATE SET rule = excluded.rule, candidates = excluded.candidates, run = excluded.run,
                scores = excluded.scores",
            params![a.cs_id, a.agent, a.anchor, a.rule, c, a.run, a.scores],
        )
    }

    pub fn clear_all_ambiguous(&self) -> Result<()> {
        self.run_sql("DELETE FROM ambiguous_join", [])
    }

    /// Marks every pending import of the agent as seen by sync.
    pub fn mark_synced(&self, agent: &str) -> Result<()> {
        // From the saved values to their objects, not from the objects
        // imported since the last sync to their saved values: only updates
        // save values, and a first sync's million new objects have none
        // (0.1 s an agent at a million people).
        self.run_sql(
            "DELETE FROM cs_prev WHERE id IN (
                SELECT p.id FROM cs_prev p CROSS JOIN cs_object c ON c.id = p.id
                CROSS JOIN agent_state s ON s.agent = c.agent
                WHERE c.agent = ?1 AND c.seq > s.synced_seq)",
            params![agent],
        )?;
        self.run_sql(
            "UPDATE agent_state SET synced_seq = import_seq WHERE agent = ?1",
            params![agent],
        )
    }
}

/// Lookups of stored keys from any thread, on a connection of its own: a
/// delta sync asks who holds a value while it plans in parallel.
pub struct KeyReader {
    conn: std::sync::Mutex<rusqlite::Connection>,
    path: String,
}

impl KeyReader {
    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, rusqlite::Connection>> {
        self.conn.lock().map_err(|_| StoreError::Corrupt {
            path: self.path.clone(),
            message: "a key lookup failed on another thread".into(),
        })
    }

    /// Identities holding `key`.
    pub fn holders(&self, key: u64) -> Result<Vec<MvId>> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached("SELECT mv_id FROM mv_key WHERE key = ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![key as i64], |r| r.get::<_, i64>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// The holders of each of these keys (an empty list for a key no one
    /// holds), many keys to a statement.
    pub fn holders_many(&self, keys: &[u64]) -> Result<Vec<(u64, Vec<MvId>)>> {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let conn = self.conn()?;
        let mut found: rustc_hash::FxHashMap<u64, Vec<MvId>> = Default::default();
        for chunk in sorted.chunks(super::IN_LIST) {
            let sql = format!(
                "SELECT key, mv_id FROM mv_key WHERE key IN ({})",
                super::placeholders(chunk.len())
            );
            let read = (|| -> rusqlite::Result<()> {
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(chunk.iter().map(|&k| k as i64)))?;
                while let Some(r) = rows.next()? {
                    // Stored as the same 64 bits, signed.
                    let key = r.get::<_, i64>(0)? as u64;
                    found.entry(key).or_default().push(r.get(1)?);
                }
                Ok(())
            })();
            read.map_err(|e| self.err(e))?;
        }
        Ok(sorted
            .into_iter()
            .map(|k| (k, found.remove(&k).unwrap_or_default()))
            .collect())
    }

    /// Identities holding any of these keys, sorted, each once.
    pub fn holders_of(&self, keys: &[u64]) -> Result<Vec<MvId>> {
        let mut out: Vec<MvId> = self
            .holders_many(keys)?
            .into_iter()
            .flat_map(|(_, holders)| holders)
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

impl Store {
    pub fn key_reader(&self) -> Result<KeyReader> {
        let conn = self.read_only_connection()?;
        // One read transaction for the reader's life: a delta sync asks tens
        // of thousands of keys, and each statement in autocommit mode is a
        // transaction of its own (two lock calls on the WAL index, a fresh
        // look at the log). The reader lives while a sync plans, which
        // writes nothing meanwhile, so one snapshot is also the consistent
        // view.
        conn.execute_batch("BEGIN;").map_err(|e| self.err(e))?;
        Ok(KeyReader {
            conn: std::sync::Mutex::new(conn),
            path: self.path.display().to_string(),
        })
    }
}
