//! The audit log's SQL: records appended in the caller's transaction, read
//! back in `seq` order one at a time, and a prefix removed with its anchor.
//! What a record hashes to and whether the log is intact is decided in
//! `crate::audit::chain`, never here.
//!
//! Appending reads the chain's head once per transaction and keeps it: the
//! head cannot move under us, because a writer holds both the run lock and
//! SQLite's write transaction (`Store::begin` takes it at once), so no other
//! connection appends between our read and our insert.

use super::{Result, Store, StoreError, Tx};
use crate::audit::AuditEntry;
use crate::audit::chain::{self, Anchor, AuditRecord, Fields};
use rusqlite::{Connection, OptionalExtension, params};

/// Which records to read, always in `seq` order.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only records written at or after this time (RFC 3339 as stored).
    pub since: Option<String>,
    /// Only records up to this seq.
    pub through_seq: Option<i64>,
    pub limit: Option<usize>,
    /// The latest records first (with `limit`: the last N).
    pub newest_first: bool,
}

impl Tx<'_> {
    /// Appends a record after the chain's head; returns its seq.
    pub fn audit(&self, e: &AuditEntry) -> Result<i64> {
        let (head_seq, prev) = match self.audit_head.borrow_mut().take() {
            Some(h) => h,
            None => head(&self.tx).map_err(|e| self.err(e))?,
        };
        let seq = head_seq + 1;
        let detail = chain::canonical_json(&e.detail);
        let kind = e.kind.as_str();
        let hash = chain::record_hash(&Fields {
            seq,
            at: &e.at,
            run: e.run,
            actor: &e.actor,
            kind,
            target: e.target.as_deref(),
            subject: e.subject.as_deref(),
            detail: &detail,
            prev: &prev,
        });
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO audit(seq, at, run, actor, kind, target, subject, detail, prev, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(|e| self.err(e))?;
        stmt.execute(params![
            seq, e.at, e.run, e.actor, kind, e.target, e.subject, detail, prev, hash
        ])
        .map_err(|e| self.err(e))?;
        *self.audit_head.borrow_mut() = Some((seq, hash));
        Ok(seq)
    }

    pub fn audit_anchor(&self) -> Result<Option<Anchor>> {
        anchor(&self.tx).map_err(|e| self.err(e))
    }

    /// Calls `f` with each record `q` selects until it returns false.
    pub fn audit_each(&self, q: &AuditQuery, f: &mut dyn FnMut(AuditRecord) -> bool) -> Result<()> {
        each(&self.tx, q, f).map_err(|e| self.err(e))
    }

    /// The last record a prune at `cutoff` removes: the end of the run of
    /// records, from the oldest on, all written before `cutoff`. Only a
    /// prefix is ever removed, so a record with an earlier time after a
    /// later one (a clock set back) stays until those before it go.
    pub fn audit_prune_point(&self, cutoff: &str) -> Result<Option<i64>> {
        let q = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<Option<i64>> {
            self.tx
                .query_row(sql, p, |r| r.get::<_, Option<i64>>(0))
                .optional()
                .map(Option::flatten)
                .map_err(|e| self.err(e))
        };
        let Some(first) = q("SELECT min(seq) FROM audit", &[])? else {
            return Ok(None);
        };
        // `+at` keeps SQLite walking the table in seq order from the start,
        // which stops at the first record kept.
        let through = match q(
            "SELECT seq FROM audit WHERE +at >= ?1 ORDER BY seq LIMIT 1",
            &[&cutoff],
        )? {
            Some(kept) => kept - 1,
            None => match q("SELECT max(seq) FROM audit", &[])? {
                Some(last) => last,
                None => return Ok(None),
            },
        };
        Ok((through >= first).then_some(through))
    }

    /// Removes every record up to `through` and makes the last of them the
    /// anchor verification starts from; returns how many went.
    pub fn audit_remove_through(&self, through: i64) -> Result<(u64, Anchor)> {
        let last: Option<(String, String)> = self
            .tx
            .query_row(
                "SELECT hash, at FROM audit WHERE seq = ?1",
                params![through],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((hash, at)) = last else {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                message: format!("audit record {through} to prune through is not there"),
            });
        };
        let removed = self
            .tx
            .execute("DELETE FROM audit WHERE seq <= ?1", params![through])
            .map_err(|e| self.err(e))?;
        self.tx
            .execute(
                "INSERT INTO audit_anchor(id, seq, hash, at) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at",
                params![through, hash, at],
            )
            .map_err(|e| self.err(e))?;
        Ok((
            removed as u64,
            Anchor {
                seq: through,
                hash,
                at,
            },
        ))
    }
}

/// A consistent view of the audit log for reading: the anchor and the
/// records as they stood when reading began, whatever a writer appends
/// meanwhile.
pub struct AuditReader<'a> {
    tx: rusqlite::Transaction<'a>,
    path: String,
}

impl Store {
    pub fn audit_reader(&self) -> Result<AuditReader<'_>> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        Ok(AuditReader {
            tx,
            path: self.path.display().to_string(),
        })
    }
}

impl AuditReader<'_> {
    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub fn anchor(&self) -> Result<Option<Anchor>> {
        anchor(&self.tx).map_err(|e| self.err(e))
    }

    /// Calls `f` with each record `q` selects until it returns false.
    pub fn each(&self, q: &AuditQuery, f: &mut dyn FnMut(AuditRecord) -> bool) -> Result<()> {
        each(&self.tx, q, f).map_err(|e| self.err(e))
    }
}

/// The seq and hash the next record follows: the last record's, else the
/// anchor's (everything was pruned), else the start of the log.
fn head(conn: &Connection) -> rusqlite::Result<(i64, String)> {
    let last = conn
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some(h) = last {
        return Ok(h);
    }
    Ok(anchor(conn)?
        .map(|a| (a.seq, a.hash))
        .unwrap_or_else(|| (0, chain::GENESIS.to_string())))
}

fn anchor(conn: &Connection) -> rusqlite::Result<Option<Anchor>> {
    conn.query_row(
        "SELECT seq, hash, at FROM audit_anchor WHERE id = 1",
        [],
        |r| {
            Ok(Anchor {
                seq: r.get(0)?,
                hash: r.get(1)?,
                at: r.get(2)?,
            })
        },
    )
    .optional()
}

fn each(
    conn: &Connection,
    q: &AuditQuery,
    f: &mut dyn FnMut(AuditRecord) -> bool,
) -> rusqlite::Result<()> {
    let mut sql = String::from(
        "SELECT seq, at, run, actor, kind, target, subject, detail, prev, hash FROM audit WHERE 1",
    );
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    if let Some(since) = &q.since {
        args.push(Box::new(since.clone()));
        sql.push_str(&format!(" AND at >= ?{}", args.len()));
    }
    if let Some(through) = q.through_seq {
        args.push(Box::new(through));
        sql.push_str(&format!(" AND seq <= ?{}", args.len()));
    }
    sql.push_str(if q.newest_first {
        " ORDER BY seq DESC"
    } else {
        " ORDER BY seq"
    });
    if let Some(limit) = q.limit {
        args.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" LIMIT ?{}", args.len()));
    }
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
    while let Some(r) = rows.next()? {
        let record = AuditRecord {
            seq: r.get(0)?,
            at: r.get(1)?,
            run: r.get(2)?,
            actor: r.get(3)?,
            kind: r.get(4)?,
            target: r.get(5)?,
            subject: r.get(6)?,
            detail: r.get(7)?,
            prev: r.get(8)?,
            hash: r.get(9)?,
        };
        if !f(record) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditKind, Verifier};
    use serde_json::json;

    fn entry(at: &str, n: i64) -> AuditEntry {
        AuditEntry {
            at: at.into(),
            run: Some(n),
            actor: "ops@host".into(),
            kind: AuditKind::StepFinished,
            target: Some("hr".into()),
            subject: None,
            detail: json!({"n": n, "counters": {"b": 1, "a": 2}}),
        }
    }

    fn all(store: &Store) -> Vec<AuditRecord> {
        let reader = store.audit_reader().expect("reader");
        let mut out = Vec::new();
        reader
            .each(&AuditQuery::default(), &mut |r| {
                out.push(r);
                true
            })
            .expect("read");
        out
    }

    fn verify(store: &Store) -> std::result::Result<crate::audit::Verified, crate::audit::Problem> {
        let reader = store.audit_reader().expect("reader");
        let mut v = Verifier::new(reader.anchor().expect("anchor"));
        let mut problem = None;
        reader
            .each(&AuditQuery::default(), &mut |r| match v.push(&r) {
                Ok(()) => true,
                Err(p) => {
                    problem = Some(p);
                    false
                }
            })
            .expect("read");
        match problem {
            Some(p) => Err(p),
            None => v.finish(),
        }
    }

    #[test]
    fn appends_chain_across_transactions_and_only_commits_with_them() -> Result<()> {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = Store::open(&dir.path().join("s.db"))?;
        let tx = store.begin()?;
        assert_eq!(tx.audit(&entry("2026-01-01T00:00:00.000Z", 1))?, 1);
        assert_eq!(tx.audit(&entry("2026-01-01T00:00:01.000Z", 2))?, 2);
        tx.commit()?;
        let tx = store.begin()?;
        tx.audit(&entry("2026-01-01T00:00:02.000Z", 3))?;
        drop(tx);
        let tx = store.begin()?;
        assert_eq!(tx.audit(&entry("2026-01-01T00:00:03.000Z", 4))?, 3);
        tx.commit()?;
        let records = all(&store);
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].prev, chain::GENESIS);
        assert_eq!(records[1].prev, records[0].hash);
        assert_eq!(records[2].prev, records[1].hash);
        assert_eq!(records[0].detail, r#"{"counters":{"a":2,"b":1},"n":1}"#);
        assert_eq!(verify(&store).expect("intact").checked, 3);
        Ok(())
    }

    #[test]
    fn pruning_a_prefix_leaves_a_log_that_verifies_from_its_anchor() -> Result<()> {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = Store::open(&dir.path().join("s.db"))?;
        let tx = store.begin()?;
        for (i, at) in ["2026-01-01", "2026-02-01", "2026-01-15", "2026-03-01"]
            .iter()
            .enumerate()
        {
            tx.audit(&entry(&format!("{at}T00:00:00.000Z"), i as i64))?;
        }
        tx.commit()?;
        let tx = store.begin()?;
        // The third record is older than the cutoff but follows a newer one:
        // it stays, so only a prefix goes.
        assert_eq!(tx.audit_prune_point("2026-01-20T00:00:00.000Z")?, Some(1));
        assert_eq!(tx.audit_prune_point("2025-01-01T00:00:00.000Z")?, None);
        assert_eq!(tx.audit_prune_point("2026-02-15T00:00:00.000Z")?, Some(3));
        let (removed, anchor) = tx.audit_remove_through(3)?;
        assert_eq!((removed, anchor.seq), (3, 3));
        let pruned = AuditEntry {
            kind: AuditKind::AuditPruned,
            detail: chain::pruned_detail(removed, &anchor, json!({})),
            ..entry("2026-03-02T00:00:00.000Z", 9)
        };
        assert_eq!(tx.audit(&pruned)?, 5);
        tx.commit()?;
        let v = verify(&store).expect("intact after prune");
        assert_eq!((v.first_seq, v.last_seq), (Some(4), Some(5)));
        Ok(())
    }

    #[test]
    fn after_everything_is_pruned_the_next_record_follows_the_anchor() -> Result<()> {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = Store::open(&dir.path().join("s.db"))?;
        let tx = store.begin()?;
        tx.audit(&entry("2026-01-01T00:00:00.000Z", 1))?;
        tx.audit(&entry("2026-01-02T00:00:00.000Z", 2))?;
        tx.commit()?;
        let tx = store.begin()?;
        let through = tx.audit_prune_point("2027-01-01T00:00:00.000Z")?;
        assert_eq!(through, Some(2));
        let (removed, anchor) = tx.audit_remove_through(2)?;
        tx.commit()?;
        // A new transaction reads the head from the anchor.
        let tx = store.begin()?;
        let pruned = AuditEntry {
            kind: AuditKind::AuditPruned,
            detail: chain::pruned_detail(removed, &anchor, json!({})),
            ..entry("2027-01-01T00:00:00.000Z", 3)
        };
        assert_eq!(tx.audit(&pruned)?, 3);
        tx.commit()?;
        let records = all(&store);
        assert_eq!(records[0].prev, anchor.hash);
        assert!(verify(&store).is_ok());
        Ok(())
    }
}
