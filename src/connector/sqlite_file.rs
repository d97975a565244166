//! SQLite files that belong to connected systems, not to idsync: writing a
//! table (the generator's contractor database) and reading one back whole
//! (checks that a database and its SQL source agree). With the SQL
//! connector, the only code outside `store/` that talks SQL, and only ever
//! to databases that are not the store.

use super::ConnectorError;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use std::path::Path;

fn err(path: &Path, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Source {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Writes one table into a new database file, in one transaction.
pub struct TableWriter {
    conn: Connection,
    insert: String,
    path: std::path::PathBuf,
}

impl TableWriter {
    /// Replaces `path` with a database holding `ddl`; rows then go into `table`.
    pub fn create(
        path: &Path,
        ddl: &str,
        table: &str,
        columns: usize,
    ) -> Result<TableWriter, ConnectorError> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(path, e)),
            _ => {}
        }
        let conn = Connection::open(path).map_err(|e| err(path, e))?;
        // A generated file can simply be generated again, so durability is
        // not worth the fsyncs and the journal.
        conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
            .and_then(|_| conn.execute_batch(ddl))
            .and_then(|_| conn.execute_batch("BEGIN"))
            .map_err(|e| err(path, e))?;
        let marks: Vec<String> = (1..=columns).map(|i| format!("?{i}")).collect();
        Ok(TableWriter {
            conn,
            insert: format!(
                "INSERT INTO \"{}\" VALUES ({})",
                table.replace('"', "\"\""),
                marks.join(", ")
            ),
            path: path.to_path_buf(),
        })
    }

    /// One row, `None` as NULL.
    pub fn insert(&mut self, row: &[Option<String>]) -> Result<(), ConnectorError> {
        let mut stmt = self
            .conn
            .prepare_cached(&self.insert)
            .map_err(|e| err(&self.path, e))?;
        stmt.execute(params_from_iter(row.iter()))
            .map(|_| ())
            .map_err(|e| err(&self.path, e))
    }

    pub fn finish(self) -> Result<(), ConnectorError> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(|e| err(&self.path, e))?;
        self.conn.close().map_err(|(_, e)| err(&self.path, e))
    }
}

/// A table read back whole: the database's DDL statements (by name) and the
/// rows ordered by their first column, every value as text (numbers as
/// written) or NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDump {
    pub ddl: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

fn dump_conn(conn: &Connection, table: &str, path: &Path) -> Result<TableDump, ConnectorError> {
    let e = |x| err(path, x);
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .map_err(e)?;
    let ddl = stmt
        .query_map([], |r| r.get(0))
        .map_err(e)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(e)?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT * FROM \"{}\" ORDER BY 1",
            table.replace('"', "\"\"")
        ))
        .map_err(e)?;
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        ValueRef::Null => None,
                        ValueRef::Integer(n) => Some(n.to_string()),
                        ValueRef::Real(x) => Some(x.to_string()),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(e)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(e)?;
    Ok(TableDump { ddl, rows })
}

/// Reads `table` of the database at `path` (read-only).
pub fn dump_table(path: &Path, table: &str) -> Result<TableDump, ConnectorError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| err(path, e))?;
    dump_conn(&conn, table, path)
}

/// Runs an SQL script in a database in memory and reads `table` of it.
pub fn dump_script(sql: &str, table: &str) -> Result<TableDump, ConnectorError> {
    let here = Path::new("<script>");
    let conn = Connection::open_in_memory().map_err(|e| err(here, e))?;
    conn.execute_batch(sql).map_err(|e| err(here, e))?;
    dump_conn(&conn, table, here)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_table_reads_back_and_matches_its_script() -> Result<(), ConnectorError> {
        let dir = tempfile::tempdir().map_err(|e| err(Path::new("tmp"), e))?;
        let path = dir.path().join("t.db");
        let ddl = "CREATE TABLE t (id TEXT PRIMARY KEY, note TEXT)";
        let mut w = TableWriter::create(&path, ddl, "t", 2)?;
        w.insert(&[Some("b".into()), None])?;
        w.insert(&[Some("a".into()), Some("x".into())])?;
        w.finish()?;
        let dump = dump_table(&path, "t")?;
        assert_eq!(dump.ddl, [ddl]);
        assert_eq!(
            dump.rows,
            vec![
                vec![Some("a".to_string()), Some("x".to_string())],
                vec![Some("b".to_string()), None]
            ]
        );
        let script =
            format!("{ddl};\nINSERT INTO t VALUES ('b', NULL);\nINSERT INTO t VALUES ('a', 'x');");
        assert_eq!(dump_script(&script, "t")?, dump);
        Ok(())
    }
}
