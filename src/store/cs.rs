//! Connector spaces: staging an import as pending adds, updates and deletes,
//! and reading a space back for sync.

use super::{Result, Store, StoreError, Tx};
use crate::model::json::record_from_json;
use crate::model::{CsId, Delta, MvId, Record, Schema};
use rusqlite::{CachedStatement, OptionalExtension, params};
use rustc_hash::FxHashMap;

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

struct Existing {
    id: CsId,
    hash: u64,
    deleted: bool,
    seen: bool,
}

/// Stages one import of one agent inside a step's transaction. Objects are
/// compared with what the space holds: new anchors stage an add, a changed
/// content hash an update, an unchanged one nothing; after a full import,
/// anchors not seen stage a delete.
pub struct Stager<'t, 'c> {
    tx: &'t Tx<'c>,
    agent: String,
    seq: i64,
    synced: i64,
    existing: FxHashMap<Box<str>, Existing>,
    /// First line of each anchor in this import, to report duplicates.
    lines: FxHashMap<Box<str>, u64>,
    insert: CachedStatement<'t>,
    update: CachedStatement<'t>,
    pub counts: ImportCounts,
}

/// Why [`Stager::object`] refused an object.
#[derive(Debug)]
pub enum StageRefusal {
    Duplicate { first_line: u64 },
}

impl<'c> Tx<'c> {
    pub fn stager(&self, agent: &str, schema: &Schema) -> Result<Stager<'_, 'c>> {
        let names = serde_json::to_string(schema.names()).unwrap_or_else(|_| "[]".into());
        self.tx
            .execute(
                "INSERT INTO agent_state(agent, import_seq, schema) VALUES (?1, 1, ?2)
                 ON CONFLICT(agent) DO UPDATE SET import_seq = import_seq + 1, schema = excluded.schema",
                params![agent, names],
            )
            .map_err(|e| self.err(e))?;
        let seq: i64 = self
            .tx
            .query_row(
                "SELECT import_seq FROM agent_state WHERE agent = ?1",
                params![agent],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let synced: i64 = self
            .tx
            .query_row(
                "SELECT synced_seq FROM agent_state WHERE agent = ?1",
                params![agent],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let mut existing = FxHashMap::default();
        {
            let mut stmt = self
                .tx
                .prepare("SELECT id, anchor, hash, op FROM cs_object WHERE agent = ?1")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![agent], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(|e| self.err(e))?;
            for row in rows {
                let (id, anchor, hash, op) = row.map_err(|e| self.err(e))?;
                existing.insert(
                    anchor.into_boxed_str(),
                    Existing {
                        id,
                        hash: hash as u64,
                        deleted: op == "delete",
                        seen: false,
                    },
                );
            }
        }
        let insert = self
            .tx
            .prepare_cached("INSERT INTO cs_object(agent, anchor, attrs, hash, op, seq, line) VALUES (?1, ?2, ?3, ?4, 'add', ?5, ?6)")
            .map_err(|e| self.err(e))?;
        let update = self
            .tx
            .prepare_cached(
                "UPDATE cs_object SET prev_attrs = CASE WHEN seq <= ?7 THEN attrs ELSE prev_attrs END,
                    attrs = ?2, hash = ?3, op = CASE WHEN seq > ?7 AND op = 'add' THEN 'add' ELSE ?4 END, seq = ?5, line = ?6
                 WHERE id = ?1",
            )
            .map_err(|e| self.err(e))?;
        Ok(Stager {
            tx: self,
            agent: agent.to_string(),
            seq,
            synced,
            existing,
            lines: FxHashMap::default(),
            insert,
            update,
            counts: ImportCounts::default(),
        })
    }
}

impl Stager<'_, '_> {
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
        self.object_encoded(anchor, &json, attrs.content_hash(schema), line)
    }

    /// Stages an object already in its stored form (`model::json`) with its
    /// content hash, so both can be computed on another thread.
    pub fn object_encoded(
        &mut self,
        anchor: &str,
        json: &str,
        hash: u64,
        line: u64,
    ) -> Result<std::result::Result<(), StageRefusal>> {
        self.counts.read += 1;
        if let Some(&first_line) = self.lines.get(anchor) {
            return Ok(Err(StageRefusal::Duplicate { first_line }));
        }
        self.lines.insert(anchor.into(), line);
        let err = |e| StoreError::Sqlite {
            path: self.tx.path.clone(),
            source: e,
        };
        match self.existing.get_mut(anchor) {
            None => {
                self.insert
                    .execute(params![
                        self.agent,
                        anchor,
                        json,
                        hash as i64,
                        self.seq,
                        line as i64
                    ])
                    .map_err(err)?;
                self.counts.adds += 1;
            }
            Some(e) => {
                e.seen = true;
                if e.hash == hash && !e.deleted {
                    self.counts.unchanged += 1;
                } else {
                    // A staged delete that comes back is an update of what the
                    // metaverse last saw, never a second object.
                    self.update
                        .execute(params![
                            e.id,
                            json,
                            hash as i64,
                            "update",
                            self.seq,
                            line as i64,
                            self.synced
                        ])
                        .map_err(err)?;
                    self.counts.updates += 1;
                }
            }
        }
        Ok(Ok(()))
    }

    /// Ends a full import: every object the source no longer has stages a delete.
    pub fn finish_full(mut self) -> Result<ImportCounts> {
        let gone: Vec<CsId> = self
            .existing
            .values()
            .filter(|e| !e.seen && !e.deleted)
            .map(|e| e.id)
            .collect();
        let mut stmt = self
            .tx
            .tx
            .prepare_cached("UPDATE cs_object SET op = 'delete', seq = ?2 WHERE id = ?1")
            .map_err(|e| self.tx.err(e))?;
        for id in &gone {
            stmt.execute(params![id, self.seq])
                .map_err(|e| self.tx.err(e))?;
        }
        self.counts.deletes = gone.len() as u64;
        Ok(self.counts)
    }
}

/// A connector-space object as sync sees it.
#[derive(Debug, Clone)]
pub struct CsRow {
    pub id: CsId,
    pub anchor: String,
    pub attrs: Record,
    /// The pending import, if the object changed since the last sync.
    pub pending: Option<Delta>,
    /// The metaverse object it is joined to.
    pub mv: Option<MvId>,
    /// The attributes the last sync saw, for a pending update.
    pub prev: Option<Box<Record>>,
}

impl Store {
    /// Every object of an agent's connector space, staged deletes included,
    /// in anchor order.
    pub fn load_cs(&self, agent: &str, schema: &Schema) -> Result<Vec<CsRow>> {
        let synced: i64 = self
            .conn
            .query_row(
                "SELECT synced_seq FROM agent_state WHERE agent = ?1",
                params![agent],
                |r| r.get(0),
            )
            .unwrap_or(0);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.id, c.anchor, c.attrs, c.op, c.seq, l.mv_id, l.kind, c.prev_attrs
                 FROM cs_object c LEFT JOIN link l ON l.cs_id = c.id
                 WHERE c.agent = ?1 ORDER BY c.anchor",
            )
            .map_err(|e| self.err(e))?;
        // Rows are read in order on this thread and parsed on all of them.
        struct Raw {
            id: i64,
            anchor: String,
            text: String,
            pending: Option<Delta>,
            mv: Option<MvId>,
            prev: Option<String>,
        }
        // Slices of rows are handed to the pool as soon as they are read, so
        // parsing overlaps reading; results are put back in read order.
        const SLICE: usize = 1 << 15;
        let path = self.path.display().to_string();
        let parse = |raw: Vec<Raw>| -> Result<Vec<CsRow>> {
            raw.into_iter()
                .map(|r| {
                    let attrs =
                        record_from_json(&r.text, schema).map_err(|e| StoreError::Corrupt {
                            path: path.clone(),
                            message: format!("connector space {agent}, anchor {}: {e}", r.anchor),
                        })?;
                    Ok(CsRow {
                        prev: r
                            .prev
                            .and_then(|t| record_from_json(&t, schema).ok())
                            .map(Box::new),
                        id: r.id,
                        anchor: r.anchor,
                        attrs,
                        pending: r.pending,
                        mv: r.mv,
                    })
                })
                .collect()
        };
        let slots: std::sync::Mutex<Vec<Option<Result<Vec<CsRow>>>>> =
            std::sync::Mutex::new(Vec::new());
        let mut read_error = None;
        rayon::in_place_scope(|scope| {
            let mut rows = match stmt.query(params![agent]) {
                Ok(r) => r,
                Err(e) => {
                    read_error = Some(self.err(e));
                    return;
                }
            };
            let mut n = 0;
            loop {
                let mut raw = Vec::with_capacity(SLICE);
                while raw.len() < SLICE {
                    let r = match rows.next() {
                        Ok(Some(r)) => r,
                        Ok(None) => break,
                        Err(e) => {
                            read_error = Some(self.err(e));
                            break;
                        }
                    };
                    let row = (|| -> rusqlite::Result<Raw> {
                        let op: String = r.get(3)?;
                        let seq: i64 = r.get(4)?;
                        let pending = if seq > synced {
                            Delta::parse(&op)
                        } else {
                            None
                        };
                        Ok(Raw {
                            id: r.get(0)?,
                            anchor: r.get(1)?,
                            text: r.get(2)?,
                            pending,
                            mv: r.get(5)?,
                            prev: if pending.is_some() { r.get(7)? } else { None },
                        })
                    })();
                    match row {
                        Ok(x) => raw.push(x),
                        Err(e) => {
                            read_error = Some(self.err(e));
                            break;
                        }
                    }
                }
                if raw.is_empty() || read_error.is_some() {
                    break;
                }
                let full = raw.len() == SLICE;
                let idx = n;
                n += 1;
                if let Ok(mut s) = slots.lock() {
                    s.push(None);
                }
                let (slots, parse) = (&slots, &parse);
                scope.spawn(move |_| {
                    let parsed = parse(raw);
                    if let Ok(mut s) = slots.lock() {
                        s[idx] = Some(parsed);
                    }
                });
                if !full {
                    break;
                }
            }
        });
        if let Some(e) = read_error {
            return Err(e);
        }
        let slots = slots.into_inner().unwrap_or_default();
        let mut out = Vec::new();
        for slot in slots {
            match slot {
                Some(Ok(rows)) => out.extend(rows),
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(StoreError::Corrupt {
                        path: self.path.display().to_string(),
                        message: format!("connector space {agent}: a slice was not parsed"),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Objects of an agent's space with a pending import, in anchor order.
    pub fn load_pending_cs(&self, agent: &str, schema: &Schema) -> Result<Vec<CsRow>> {
        let synced = self.synced_seq(agent)?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.id, c.anchor, c.attrs, c.op, c.seq, l.mv_id, c.prev_attrs
                 FROM cs_object c LEFT JOIN link l ON l.cs_id = c.id
                 WHERE c.agent = ?1 AND c.seq > ?2 ORDER BY c.anchor",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params![agent, synced])
            .map_err(|e| self.err(e))?;
        let mut raw = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            raw.push((agent, schema, self.cs_raw(r, synced)?));
        }
        self.parse_cs(raw)
            .map(|v| v.into_iter().map(|(_, row)| row).collect())
    }

    /// The connectors of these identities, as (agent, object).
    pub fn load_cs_linked(
        &self,
        mvs: &[MvId],
        schema_of: &super::SchemaOf,
    ) -> Result<Vec<(String, CsRow)>> {
        let mut raw = Vec::new();
        for chunk in mvs.chunks(super::IN_LIST) {
            let sql = format!(
                "SELECT c.id, c.anchor, c.attrs, c.op, c.seq, l.mv_id, c.prev_attrs, c.agent, s.synced_seq
                 FROM link l JOIN cs_object c ON c.id = l.cs_id
                 LEFT JOIN agent_state s ON s.agent = c.agent
                 WHERE l.mv_id IN ({})",
                super::placeholders(chunk.len())
            );
            let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(chunk))
                .map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let agent: String = r.get(7).map_err(|e| self.err(e))?;
                let synced: Option<i64> = r.get(8).map_err(|e| self.err(e))?;
                // Connectors of agents the rules no longer have stay as they are.
                let Some(schema) = schema_of(&agent) else {
                    continue;
                };
                let row = self.cs_raw(r, synced.unwrap_or(0))?;
                raw.push((agent, schema, row));
            }
        }
        self.parse_cs(raw)
            .map(|v| v.into_iter().map(|(a, row)| (a.to_string(), row)).collect())
    }

    /// Parses rows read by [`Store::cs_raw`] on every core.
    fn parse_cs<A: AsRef<str> + Send>(
        &self,
        raw: Vec<(A, &Schema, RawCs)>,
    ) -> Result<Vec<(A, CsRow)>> {
        use rayon::prelude::*;
        let path = self.path.display().to_string();
        raw.into_par_iter()
            .map(|(agent, schema, r)| {
                let attrs = record_from_json(&r.text, schema).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    message: format!(
                        "connector space {}, anchor {}: {e}",
                        agent.as_ref(),
                        r.anchor
                    ),
                })?;
                let row = CsRow {
                    id: r.id,
                    prev: r
                        .prev
                        .and_then(|t| record_from_json(&t, schema).ok())
                        .map(Box::new),
                    anchor: r.anchor,
                    attrs,
                    pending: r.pending,
                    mv: r.mv,
                };
                Ok((agent, row))
            })
            .collect()
    }

    fn synced_seq(&self, agent: &str) -> Result<i64> {
        Ok(self
            .conn
            .query_row(
                "SELECT synced_seq FROM agent_state WHERE agent = ?1",
                params![agent],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .unwrap_or(0))
    }

    /// A row of (id, anchor, attrs, op, seq, mv, prev_attrs, ...), unparsed.
    fn cs_raw(&self, r: &rusqlite::Row, synced: i64) -> Result<RawCs> {
        let get = |e| self.err(e);
        let op: String = r.get(3).map_err(get)?;
        let seq: i64 = r.get(4).map_err(get)?;
        let pending = if seq > synced {
            Delta::parse(&op)
        } else {
            None
        };
        Ok(RawCs {
            id: r.get(0).map_err(get)?,
            anchor: r.get(1).map_err(get)?,
            text: r.get(2).map_err(get)?,
            prev: if pending.is_some() {
                r.get(6).map_err(get)?
            } else {
                None
            },
            pending,
            mv: r.get(5).map_err(get)?,
        })
    }

    /// One connector-space object by anchor.
    pub fn find_cs(&self, agent: &str, anchor: &str, schema: &Schema) -> Result<Option<CsRow>> {
        let row = self
            .conn
            .query_row(
                "SELECT c.id, c.attrs, c.op, l.mv_id FROM cs_object c
                 LEFT JOIN link l ON l.cs_id = c.id WHERE c.agent = ?1 AND c.anchor = ?2",
                params![agent, anchor],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((id, text, op, mv)) = row else {
            return Ok(None);
        };
        let attrs = record_from_json(&text, schema).map_err(|e| StoreError::Corrupt {
            path: self.path.display().to_string(),
            message: format!("connector space {agent}, anchor {anchor}: {e}"),
        })?;
        Ok(Some(CsRow {
            id,
            anchor: anchor.to_string(),
            attrs,
            pending: Delta::parse(&op),
            prev: None,
            mv,
        }))
    }

    /// Connector-space sizes per agent: (agent, objects, pending imports).
    pub fn cs_summary(&self) -> Result<Vec<(String, i64, i64)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.agent,
                        (SELECT count(*) FROM cs_object c WHERE c.agent = s.agent AND c.op <> 'delete'),
                        (SELECT count(*) FROM cs_object c WHERE c.agent = s.agent AND c.seq > s.synced_seq)
                 FROM agent_state s ORDER BY s.agent",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}

/// A connector-space row as read, before its attributes are parsed.
struct RawCs {
    id: CsId,
    anchor: String,
    text: String,
    prev: Option<String>,
    pending: Option<Delta>,
    mv: Option<MvId>,
}
