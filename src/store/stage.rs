//! Staging one import of one agent: each object the source reports is
//! compared with what its connector space holds, and only differences are
//! written (new anchors as pending adds, changed content as pending updates,
//! and after a full read, anchors the source no longer has as pending
//! deletes).
//!
//! A full import holds the whole space in memory for the comparison
//! ([`Space`]), read from the `cs_compare` index alone. A delta import that
//! reads a few changed rows looks each anchor up instead.
//!
//! Rows of a file can be compared before they are converted: the import
//! reports an anchor and the fingerprint of the row's raw bytes
//! ([`Stager::print`]); only rows whose fingerprint differs from the stored
//! one are converted and staged ([`Stager::fetched`]).

use super::space::{DELETED, Sighting, Space};
use super::{MANY_ROWS, Result, Store, StoreError, Tx};
use crate::model::{CsId, Record, Schema};
use rusqlite::types::ValueRef;
use rusqlite::{CachedStatement, OptionalExtension, params};

/// What an import staged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    pub read: u64,
    pub adds: u64,
    pub updates: u64,
    pub deletes: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

/// Why [`Stager::object`] refused an object.
#[derive(Debug)]
pub enum StageRefusal {
    Duplicate { first_line: u64 },
}

/// What [`Stager::print`] decided about a row known by its fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printed {
    /// Same bytes as last time: nothing to do.
    Unchanged,
    /// New or different: convert the row and hand it to [`Stager::fetched`].
    Wanted,
    /// The anchor was already met in this import; the first row stands.
    Duplicate { first_line: u64 },
}

/// An id for an anchor met in this import but not written yet.
const NOT_WRITTEN: CsId = i64::MIN;

/// New objects waiting to be written together ([`Tx::insert_rows`], a
/// statement per [`MANY_ROWS`]): a full import adds every row, and a
/// statement per row cost more than the rows' own writing. The stager
/// gives each its id (the next after the largest, as SQLite would) so
/// that the space knows it before the row is written. Their anchors and
/// stored texts sit in one buffer, each row's ends into it.
#[derive(Default)]
struct PendingAdds {
    text: String,
    rows: Vec<PendingAdd>,
}

struct PendingAdd {
    id: CsId,
    anchor_end: usize,
    json_end: usize,
    hash: u64,
    raw: Option<u64>,
    line: u64,
}

/// Stages one import of one agent inside a step's transaction.
pub struct Stager<'t, 'c> {
    tx: &'t Tx<'c>,
    agent: String,
    seq: i64,
    synced: i64,
    space: Space,
    /// Whether `space` holds the whole connector space; otherwise an anchor
    /// not in it yet is looked up in the store.
    complete: bool,
    /// New objects not written yet, and the id the next one gets.
    adds: PendingAdds,
    next_id: CsId,
    keep_prev: CachedStatement<'t>,
    update: CachedStatement<'t>,
    rehash: CachedStatement<'t>,
    delete: CachedStatement<'t>,
    pub counts: ImportCounts,
}

/// A connector space read for a full import's comparison
/// ([`Store::space`]), handed to [`Tx::stager`].
pub struct LoadedSpace(Space);

impl Store {
    /// Reads an agent's connector space for a full import's comparison,
    /// from the `cs_compare` index alone. Meant for a [`Store::reader`]:
    /// its small cache is recycled as the index streams by, where the
    /// step's connection would take a fresh page of memory for each page
    /// of the index. The step's transaction begins after it, by when the
    /// last step's log has mostly been copied back: a transaction that
    /// begins after the copy writes the log from its start again.
    pub fn space(&self, agent: &str) -> Result<LoadedSpace> {
        let n = usize::try_from(self.space_objects(agent)?).unwrap_or(0);
        let mut space = Space::with_capacity(n);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, anchor, hash, raw_hash, op FROM cs_object INDEXED BY cs_compare
                 WHERE agent = ?1",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params![agent]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let read = (|| -> rusqlite::Result<()> {
                let anchor = match r.get_ref(1)? {
                    ValueRef::Text(t) => t,
                    _ => &[],
                };
                let deleted = matches!(r.get_ref(4)?, ValueRef::Text(b"delete"));
                space.load(
                    anchor,
                    r.get(0)?,
                    r.get::<_, i64>(2)? as u64,
                    r.get::<_, Option<i64>>(3)?.map(|h| h as u64),
                    if deleted { DELETED } else { 0 },
                );
                Ok(())
            })();
            read.map_err(|e| self.err(e))?;
        }
        Ok(LoadedSpace(space))
    }
}

impl<'c> Tx<'c> {
    /// A stager for a full import over the agent's space as
    /// [`Store::space`] read it (nothing may have written the space since);
    /// [`Stager::finish_full`] stages deletes for what the source lacked.
    pub fn stager(
        &self,
        agent: &str,
        schema: &Schema,
        space: LoadedSpace,
    ) -> Result<Stager<'_, 'c>> {
        let mut s = self.new_stager(agent, schema, true)?;
        s.space = space.0;
        Ok(s)
    }

    /// A stager for a delta import: each anchor is looked up when it comes.
    pub fn delta_stager(&self, agent: &str, schema: &Schema) -> Result<Stager<'_, 'c>> {
        self.new_stager(agent, schema, false)
    }

    fn new_stager(&self, agent: &str, schema: &Schema, complete: bool) -> Result<Stager<'_, 'c>> {
        let names = serde_json::to_string(schema.names()).unwrap_or_else(|_| "[]".into());
        let (seq, synced): (i64, i64) = self
            .tx
            .query_row(
                "INSERT INTO agent_state(agent, import_seq, schema) VALUES (?1, 1, ?2)
                 ON CONFLICT(agent) DO UPDATE SET import_seq = import_seq + 1, schema = excluded.schema
                 RETURNING import_seq, synced_seq",
                params![agent, names],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let prepare = |sql: &str| self.tx.prepare_cached(sql).map_err(|e| self.err(e));
        let next_id: CsId = self
            .tx
            .query_row("SELECT coalesce(max(id), 0) + 1 FROM cs_object", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        Ok(Stager {
            tx: self,
            agent: agent.to_string(),
            seq,
            synced,
            space: Space::default(),
            complete,
            adds: PendingAdds::default(),
            next_id,
            // A staged delete that comes back is an update of what the
            // metaverse last saw, never a second object; an add not synced
            // yet stays an add.
            // What the last sync saw: kept at an object's first change
            // since then (a staged delete keeps the attributes, so an
            // object that comes back keeps them too).
            keep_prev: prepare(
                "INSERT OR IGNORE INTO cs_prev(id, attrs)
                 SELECT id, attrs FROM cs_object WHERE id = ?1 AND (seq <= ?2 OR op = 'delete')",
            )?,
            update: prepare(
                "UPDATE cs_object SET attrs = ?2, hash = ?3, raw_hash = ?4,
                    op = CASE WHEN seq > ?7 AND op = 'add' THEN 'add' ELSE 'update' END,
                    seq = ?5, line = ?6
                 WHERE id = ?1",
            )?,
            rehash: prepare("UPDATE cs_object SET raw_hash = ?2 WHERE id = ?1")?,
            delete: prepare("UPDATE cs_object SET op = 'delete', seq = ?2 WHERE id = ?1")?,
            counts: ImportCounts::default(),
        })
    }
}

impl Stager<'_, '_> {
    fn err(&self, source: rusqlite::Error) -> StoreError {
        self.tx.err(source)
    }

    /// Writes the new objects waiting, before any other statement of the
    /// import runs: it sees the space as one row at a time would leave it.
    fn flush(&mut self) -> Result<()> {
        if self.adds.rows.is_empty() {
            return Ok(());
        }
        let PendingAdds { text, rows } = &self.adds;
        let (agent, seq) = (self.agent.as_str(), self.seq);
        let mut start = 0;
        self.tx.insert_rows(
            "INSERT INTO cs_object(id, agent, anchor, attrs, hash, raw_hash, op, seq, line)",
            "",
            rows.iter().map(|r| {
                let anchor = &text[start..r.anchor_end];
                let json = &text[r.anchor_end..r.json_end];
                start = r.json_end;
                let (hash, raw) = (r.hash as i64, r.raw.map(|h| h as i64));
                (r.id, agent, anchor, json, hash, raw, seq, r.line as i64)
            }),
            |(id, agent, anchor, json, hash, raw, seq, line)| {
                [
                    id as &dyn rusqlite::ToSql,
                    agent,
                    anchor,
                    json,
                    hash,
                    raw,
                    &"add",
                    seq,
                    line,
                ]
            },
        )?;
        self.adds.text.clear();
        self.adds.rows.clear();
        Ok(())
    }

    /// The entry of `anchor`: from memory, else (delta) from the store.
    fn entry(&mut self, anchor: &str) -> Result<Option<usize>> {
        if let Some(i) = self.space.find(anchor) {
            return Ok(Some(i));
        }
        if self.complete {
            return Ok(None);
        }
        self.flush()?;
        let mut stmt = self
            .tx
            .tx
            .prepare_cached(
                "SELECT id, hash, raw_hash, op FROM cs_object WHERE agent = ?1 AND anchor = ?2",
            )
            .map_err(|e| self.err(e))?;
        let row = stmt
            .query_row(params![self.agent, anchor], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, Option<i64>>(2)?.map(|h| h as u64),
                    r.get::<_, String>(3)? == "delete",
                ))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        drop(stmt);
        Ok(row.map(|(id, hash, raw, deleted)| {
            let flags = if deleted { DELETED } else { 0 };
            self.space.push(anchor.as_bytes(), id, hash, raw, flags)
        }))
    }

    /// Stages one object. A second object with an anchor already seen in
    /// this import is refused (the first one stands).
    pub fn object(
        &mut self,
        anchor: &str,
        attrs: &Record,
        schema: &Schema,
        line: u64,
    ) -> Result<std::result::Result<(), StageRefusal>> {
        let json = crate::model::json::record_to_json(attrs, schema);
        self.object_encoded(anchor, &json, attrs.content_hash(schema), None, line)
    }

    /// Stages an object already in its stored form (`model::json`) with its
    /// content hash and, for sources that have one, the fingerprint of the
    /// raw row, so all of them can be computed on another thread.
    pub fn object_encoded(
        &mut self,
        anchor: &str,
        json: &str,
        hash: u64,
        raw: Option<u64>,
        line: u64,
    ) -> Result<std::result::Result<(), StageRefusal>> {
        self.counts.read += 1;
        let found = self.entry(anchor)?;
        if let Some(i) = found
            && let Some(e) = self.space.entries.get(i)
            && e.sighting != Sighting::Unseen
        {
            return Ok(Err(StageRefusal::Duplicate { first_line: e.line }));
        }
        self.apply(found, anchor, json, hash, raw, line)?;
        Ok(Ok(()))
    }

    /// Compares a row by the fingerprint of its raw bytes, before it is
    /// converted. Only [`Printed::Wanted`] rows need their object, through
    /// [`Stager::fetched`]; a wanted row that never comes (it turned out
    /// not to convert) counts as missing from the source.
    pub fn print(&mut self, anchor: &str, raw: u64, line: u64) -> Result<Printed> {
        self.counts.read += 1;
        let i = match self.entry(anchor)? {
            Some(i) => i,
            None => {
                let i = self.space.push(anchor.as_bytes(), NOT_WRITTEN, 0, None, 0);
                if let Some(e) = self.space.entries.get_mut(i) {
                    e.sighting = Sighting::Claimed;
                    e.line = line;
                }
                return Ok(Printed::Wanted);
            }
        };
        let Some(e) = self.space.entries.get_mut(i) else {
            return Ok(Printed::Wanted);
        };
        if e.sighting != Sighting::Unseen {
            return Ok(Printed::Duplicate { first_line: e.line });
        }
        e.line = line;
        if !e.deleted() && e.raw() == Some(raw) {
            e.sighting = Sighting::Seen;
            self.counts.unchanged += 1;
            Ok(Printed::Unchanged)
        } else {
            e.sighting = Sighting::Claimed;
            Ok(Printed::Wanted)
        }
    }

    /// Stages the object of a row [`Stager::print`] wanted.
    pub fn fetched(
        &mut self,
        anchor: &str,
        json: &str,
        hash: u64,
        raw: Option<u64>,
        line: u64,
    ) -> Result<()> {
        let found = self.space.find(anchor);
        self.apply(found, anchor, json, hash, raw, line)
    }

    fn apply(
        &mut self,
        found: Option<usize>,
        anchor: &str,
        json: &str,
        hash: u64,
        raw: Option<u64>,
        line: u64,
    ) -> Result<()> {
        let raw_sql = raw.map(|r| r as i64);
        let written = found.and_then(|i| self.space.entries.get(i).filter(|e| e.id != NOT_WRITTEN));
        let Some(e) = written else {
            let id = self.next_id;
            self.next_id += 1;
            self.adds.text.push_str(anchor);
            let anchor_end = self.adds.text.len();
            self.adds.text.push_str(json);
            self.adds.rows.push(PendingAdd {
                id,
                anchor_end,
                json_end: self.adds.text.len(),
                hash,
                raw,
                line,
            });
            if self.adds.rows.len() == MANY_ROWS {
                self.flush()?;
            }
            let i = match found {
                Some(i) => i,
                None => self.space.push(anchor.as_bytes(), id, hash, raw, 0),
            };
            if let Some(e) = self.space.entries.get_mut(i) {
                e.id = id;
                e.sighting = Sighting::Seen;
                e.line = line;
            }
            self.counts.adds += 1;
            return Ok(());
        };
        let (id, same) = (e.id, !e.deleted() && e.hash == hash);
        let raw_differs = raw.is_some() && e.raw() != raw;
        self.flush()?;
        if same {
            // The same content from different bytes (quoting, spacing, a
            // column moved): nothing for the sync, a new fingerprint to keep.
            if raw_differs {
                self.rehash
                    .execute(params![id, raw_sql])
                    .map_err(|e| self.tx.err(e))?;
            }
            self.counts.unchanged += 1;
        } else {
            self.keep_prev
                .execute(params![id, self.synced])
                .map_err(|e| self.tx.err(e))?;
            self.update
                .execute(params![
                    id,
                    json,
                    hash as i64,
                    raw_sql,
                    self.seq,
                    line as i64,
                    self.synced
                ])
                .map_err(|e| self.tx.err(e))?;
            self.counts.updates += 1;
        }
        if let Some(i) = found
            && let Some(e) = self.space.entries.get_mut(i)
        {
            e.sighting = Sighting::Seen;
            e.line = line;
            e.flags &= !DELETED;
        }
        Ok(())
    }

    /// A row the source marks as deleted (a tombstone): the object, if the
    /// space has it, stages a delete.
    pub fn gone(&mut self, anchor: &str, line: u64) -> Result<()> {
        self.counts.read += 1;
        let Some(i) = self.entry(anchor)? else {
            return Ok(());
        };
        let Some(e) = self.space.entries.get_mut(i) else {
            return Ok(());
        };
        if e.sighting != Sighting::Unseen {
            return Ok(());
        }
        e.sighting = Sighting::Seen;
        e.line = line;
        if e.id == NOT_WRITTEN || e.deleted() {
            return Ok(());
        }
        e.flags |= DELETED;
        let id = e.id;
        self.flush()?;
        self.delete
            .execute(params![id, self.seq])
            .map_err(|e| self.tx.err(e))?;
        self.counts.deletes += 1;
        Ok(())
    }

    /// Ends a full import: every object the source no longer has stages a
    /// delete.
    pub fn finish_full(mut self) -> Result<ImportCounts> {
        if !self.complete {
            return Err(StoreError::Corrupt {
                path: self.tx.path.clone(),
                message: format!(
                    "connector space {}: a delta import cannot stage deletes for rows it did not read",
                    self.agent
                ),
            });
        }
        self.flush()?;
        let gone: Vec<CsId> = self
            .space
            .entries
            .iter()
            .filter(|e| e.sighting != Sighting::Seen && !e.deleted() && e.id != NOT_WRITTEN)
            .map(|e| e.id)
            .collect();
        for id in &gone {
            self.delete
                .execute(params![id, self.seq])
                .map_err(|e| self.tx.err(e))?;
        }
        self.counts.deletes += gone.len() as u64;
        Ok(self.counts)
    }

    /// Ends a delta import: what was not read is not touched.
    pub fn finish_delta(mut self) -> Result<ImportCounts> {
        self.flush()?;
        Ok(self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn schema() -> Schema {
        Schema::new(["id", "name"])
    }

    fn rec(s: &Schema, id: &str, name: &str) -> Record {
        let mut b = Record::builder();
        b.push(s.get("id").unwrap_or(0), id);
        b.push(s.get("name").unwrap_or(1), name);
        b.build()
    }

    fn full(store: &mut Store, rows: &[(&str, &str)]) -> ImportCounts {
        let s = schema();
        let space = store.space("hr").unwrap();
        let tx = store.begin().unwrap();
        let mut st = tx.stager("hr", &s, space).unwrap();
        for (i, (id, name)) in rows.iter().enumerate() {
            st.object(id, &rec(&s, id, name), &s, i as u64 + 2)
                .unwrap()
                .unwrap();
        }
        let c = st.finish_full().unwrap();
        tx.commit().unwrap();
        c
    }

    #[test]
    fn full_imports_add_update_keep_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let c = full(&mut store, &[("1", "Ann"), ("2", "Bo")]);
        assert_eq!((c.adds, c.read), (2, 2));
        let c = full(&mut store, &[("1", "Ann"), ("2", "Bob"), ("3", "Cy")]);
        assert_eq!((c.unchanged, c.updates, c.adds, c.deletes), (1, 1, 1, 0));
        let c = full(&mut store, &[("3", "Cy")]);
        assert_eq!((c.unchanged, c.deletes), (1, 2));
        // A deleted anchor that comes back is an update.
        let c = full(&mut store, &[("1", "Ann"), ("3", "Cy")]);
        assert_eq!((c.updates, c.unchanged, c.adds, c.deletes), (1, 1, 0, 0));
    }

    #[test]
    fn adds_written_many_to_a_statement_are_the_rows_one_at_a_time_would_be() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        // Two full statements and a remainder, then the same rows with an
        // update between new ones (it writes what waits first), and a delete.
        let n = 2 * MANY_ROWS + 5;
        let ids: Vec<String> = (0..n).map(|i| format!("{i:04}")).collect();
        let rows: Vec<(&str, &str)> = ids.iter().map(|i| (i.as_str(), "x")).collect();
        let c = full(&mut store, &rows);
        assert_eq!((c.adds, c.read), (n as u64, n as u64));
        let stored = |store: &Store| -> Vec<(CsId, String, i64, String)> {
            let mut st = store
                .conn
                .prepare("SELECT id, anchor, line, op FROM cs_object ORDER BY id")
                .unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
        };
        let first = stored(&store);
        assert_eq!(first.len(), n);
        for (i, (id, anchor, line, op)) in first.iter().enumerate() {
            assert_eq!(
                (*id, anchor.as_str(), *line, op.as_str()),
                (i as CsId + 1, ids[i].as_str(), i as i64 + 2, "add")
            );
        }
        let mut again = rows.clone();
        again[3] = (ids[3].as_str(), "changed");
        again.remove(7);
        again.push(("new-1", "y"));
        again.insert(10, ("new-0", "y"));
        let c = full(&mut store, &again);
        assert_eq!(
            (c.unchanged, c.updates, c.adds, c.deletes),
            (n as u64 - 2, 1, 2, 1)
        );
        let second = stored(&store);
        assert_eq!(second.len(), n + 2);
        // The new anchors follow the largest id, in the order they came.
        let tail: Vec<(CsId, &str)> = second[n..]
            .iter()
            .map(|(id, a, _, _)| (*id, a.as_str()))
            .collect();
        assert_eq!(
            tail,
            vec![(n as CsId + 1, "new-0"), (n as CsId + 2, "new-1")]
        );
        // Not synced yet, the changed one stays an add, with its new values.
        let attrs: String = store
            .conn
            .query_row("SELECT attrs FROM cs_object WHERE id = 4", [], |r| r.get(0))
            .unwrap();
        assert!(attrs.contains("changed"), "{attrs}");
        assert_eq!(second[3].3, "add");
        assert_eq!(second[7].3, "delete");
    }

    #[test]
    fn prints_skip_same_bytes_and_want_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let s = schema();
        let space = store.space("hr").unwrap();
        let tx = store.begin().unwrap();
        let mut st = tx.stager("hr", &s, space).unwrap();
        for (id, raw) in [("1", 11), ("2", 22), ("3", 33)] {
            let r = rec(&s, id, "x");
            let json = crate::model::json::record_to_json(&r, &s);
            st.object_encoded(id, &json, r.content_hash(&s), Some(raw), 2)
                .unwrap()
                .unwrap();
        }
        st.finish_full().unwrap();
        tx.commit().unwrap();

        let space = store.space("hr").unwrap();
        let tx = store.begin().unwrap();
        let mut st = tx.stager("hr", &s, space).unwrap();
        assert_eq!(st.print("1", 11, 2).unwrap(), Printed::Unchanged);
        assert_eq!(st.print("2", 99, 3).unwrap(), Printed::Wanted);
        assert_eq!(st.print("4", 44, 4).unwrap(), Printed::Wanted);
        assert_eq!(
            st.print("1", 11, 5).unwrap(),
            Printed::Duplicate { first_line: 2 }
        );
        // Row 2's bytes changed but its content did not: a new fingerprint, no update.
        let r = rec(&s, "2", "x");
        let json = crate::model::json::record_to_json(&r, &s);
        st.fetched("2", &json, r.content_hash(&s), Some(99), 3)
            .unwrap();
        let r = rec(&s, "4", "y");
        let json = crate::model::json::record_to_json(&r, &s);
        st.fetched("4", &json, r.content_hash(&s), Some(44), 4)
            .unwrap();
        let c = st.finish_full().unwrap();
        tx.commit().unwrap();
        assert_eq!(
            (c.read, c.unchanged, c.updates, c.adds, c.deletes),
            (4, 2, 0, 1, 1),
            "row 3 was not in the source"
        );

        let space = store.space("hr").unwrap();
        let tx = store.begin().unwrap();
        let mut st = tx.stager("hr", &s, space).unwrap();
        assert_eq!(st.print("2", 99, 2).unwrap(), Printed::Unchanged);
        // A wanted row that never comes is missing from the source.
        assert_eq!(st.print("4", 45, 3).unwrap(), Printed::Wanted);
        let c = st.finish_full().unwrap();
        assert_eq!((c.unchanged, c.deletes), (1, 2));
    }

    #[test]
    fn delta_stager_looks_up_and_deletes_by_tombstone_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        full(&mut store, &[("1", "Ann"), ("2", "Bo"), ("3", "Cy")]);
        let s = schema();
        let tx = store.begin().unwrap();
        let mut st = tx.delta_stager("hr", &s).unwrap();
        st.object("2", &rec(&s, "2", "Bob"), &s, 1)
            .unwrap()
            .unwrap();
        st.object("1", &rec(&s, "1", "Ann"), &s, 2)
            .unwrap()
            .unwrap();
        st.object("9", &rec(&s, "9", "Nu"), &s, 3).unwrap().unwrap();
        assert!(matches!(
            st.object("9", &rec(&s, "9", "Nu"), &s, 4).unwrap(),
            Err(StageRefusal::Duplicate { first_line: 3 })
        ));
        st.gone("3", 5).unwrap();
        st.gone("404", 6).unwrap();
        let c = st.finish_delta().unwrap();
        tx.commit().unwrap();
        assert_eq!(
            (c.read, c.updates, c.unchanged, c.adds, c.deletes),
            (6, 1, 1, 1, 1)
        );
        assert_eq!(store.live_objects("hr").unwrap(), 3);
    }

    /// The name the last sync saw of each pending object (none for an add).
    fn prev_names(store: &Store) -> Vec<(String, Option<String>)> {
        let s = schema();
        let name = s.get("name").unwrap_or(1);
        store
            .load_pending_cs("hr", &s)
            .unwrap()
            .into_iter()
            .map(|r| {
                let prev = r
                    .prev
                    .and_then(|p| p.values(name).next().map(str::to_string));
                (r.anchor, prev)
            })
            .collect()
    }

    #[test]
    fn an_update_keeps_what_the_last_sync_saw_until_the_next_sync() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        full(&mut store, &[("1", "Ann"), ("2", "Bo"), ("3", "Cy")]);
        let tx = store.begin().unwrap();
        tx.mark_synced("hr").unwrap();
        tx.commit().unwrap();
        // Two imports before a sync: the first change's "before" stands.
        full(&mut store, &[("1", "Anne"), ("2", "Bo"), ("3", "Cy")]);
        full(&mut store, &[("1", "Annie"), ("2", "Bo")]);
        // A deleted object that comes back before the sync keeps what
        // the sync saw, too.
        full(&mut store, &[("1", "Annie"), ("2", "Bo"), ("3", "Cyd")]);
        assert_eq!(
            prev_names(&store),
            vec![
                ("1".into(), Some("Ann".into())),
                ("3".into(), Some("Cy".into()))
            ]
        );
        let tx = store.begin().unwrap();
        tx.mark_synced("hr").unwrap();
        tx.commit().unwrap();
        assert!(prev_names(&store).is_empty());
        full(&mut store, &[("1", "Ana"), ("2", "Bo"), ("3", "Cyd")]);
        assert_eq!(prev_names(&store), vec![("1".into(), Some("Annie".into()))]);
    }
}
