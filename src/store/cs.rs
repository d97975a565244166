//! Connector spaces read back: for sync, for `show` and `status`, and what
//! the last import of each agent left to compare the next one with (a
//! file's digest, a watermark).

use super::{Result, Store, StoreError, Tx};
use crate::model::json::record_from_json;
use crate::model::{CsId, Delta, MvId, Record, Schema};
use rusqlite::{OptionalExtension, params};

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
        let synced = self.synced_seq(agent)?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.id, c.anchor, c.attrs, c.op, c.seq, l.mv_id, p.attrs
                 FROM cs_object c LEFT JOIN link l ON l.cs_id = c.id
                 LEFT JOIN cs_prev p ON p.id = c.id
                 WHERE c.agent = ?1 ORDER BY c.anchor",
            )
            .map_err(|e| self.err(e))?;
        // Rows are read in order on this thread and parsed on all of them.
        // Slices of rows are handed to the pool as soon as they are read, so
        // parsing overlaps reading; results are put back in read order.
        const SLICE: usize = 1 << 15;
        let path = self.path.display().to_string();
        let parse = |raw: Vec<RawCs>| -> Result<Vec<CsRow>> {
            raw.into_iter()
                .map(|r| r.parse(&path, agent, schema))
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
                    match self.cs_raw(r, synced) {
                        Ok(x) => raw.push(x),
                        Err(e) => {
                            read_error = Some(e);
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
        // Sized once: grown slice by slice, a million rows are copied into
        // fresh memory at every doubling.
        let total = slots
            .iter()
            .map(|s| s.as_ref().and_then(|r| r.as_ref().ok()).map_or(0, Vec::len))
            .sum();
        let mut out = Vec::with_capacity(total);
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
                "SELECT c.id, c.anchor, c.attrs, c.op, c.seq, l.mv_id, p.attrs
                 FROM cs_object c LEFT JOIN link l ON l.cs_id = c.id
                 LEFT JOIN cs_prev p ON p.id = c.id
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
                "SELECT c.id, c.anchor, c.attrs, c.op, c.seq, l.mv_id, p.attrs, c.agent, s.synced_seq
                 FROM link l JOIN cs_object c ON c.id = l.cs_id
                 LEFT JOIN cs_prev p ON p.id = c.id
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
                let row = r.parse(&path, agent.as_ref(), schema)?;
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

    /// A row of (id, anchor, attrs, op, seq, mv, previous attrs, ...), unparsed.
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

/// Where an agent's source stood at its last import, as its connector wrote
/// it: the digest of a file, the watermark of a SQL source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMarks {
    pub digest: Option<String>,
    pub watermark: Option<String>,
}

impl Store {
    pub fn source_marks(&self, agent: &str) -> Result<SourceMarks> {
        let row = self
            .conn
            .query_row(
                "SELECT source_digest, watermark FROM agent_state WHERE agent = ?1",
                params![agent],
                |r| {
                    Ok(SourceMarks {
                        digest: r.get(0)?,
                        watermark: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(row.unwrap_or_default())
    }

    /// How many objects the agent's space holds, staged deletes included:
    /// what a sync, which carries those deletes out, weighs them against.
    pub fn space_objects(&self, agent: &str) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM cs_object INDEXED BY cs_pending WHERE agent = ?1",
                params![agent],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// How many objects of the agent's space are not staged deletes.
    ///
    /// Counted from the smallest index: every object, less the pending
    /// deletes (a sync removes the deletes it has seen).
    pub fn live_objects(&self, agent: &str) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM cs_object INDEXED BY cs_pending WHERE agent = ?1)
                      - (SELECT count(*) FROM cs_object INDEXED BY cs_pending
                         WHERE agent = ?1 AND op = 'delete'
                           AND seq > coalesce((SELECT synced_seq FROM agent_state WHERE agent = ?1), 0))",
                params![agent],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }
}

impl Tx<'_> {
    /// Records the digest of the file an import read, with the batch it staged.
    pub fn set_source_digest(&self, agent: &str, digest: Option<&str>) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO agent_state(agent, source_digest) VALUES (?1, ?2)
                 ON CONFLICT(agent) DO UPDATE SET source_digest = excluded.source_digest",
                params![agent, digest],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records how far a SQL source has been read, with the batch it staged.
    pub fn set_watermark(&self, agent: &str, watermark: Option<&str>) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO agent_state(agent, watermark) VALUES (?1, ?2)
                 ON CONFLICT(agent) DO UPDATE SET watermark = excluded.watermark",
                params![agent, watermark],
            )
            .map(|_| ())
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

impl RawCs {
    fn parse(self, path: &str, agent: &str, schema: &Schema) -> Result<CsRow> {
        let attrs = record_from_json(&self.text, schema).map_err(|e| StoreError::Corrupt {
            path: path.to_string(),
            message: format!("connector space {agent}, anchor {}: {e}", self.anchor),
        })?;
        Ok(CsRow {
            id: self.id,
            prev: self
                .prev
                .and_then(|t| record_from_json(&t, schema).ok())
                .map(Box::new),
            anchor: self.anchor,
            attrs,
            pending: self.pending,
            mv: self.mv,
        })
    }
}
