//! SQLite files that belong to connected systems, not to idsync: writing a
//! table (the generator's contractor database), reading one back whole
//! (checks that a database and its SQL source agree), and an application's
//! account table a SQL target keeps (`AccountTable`). With the SQL
//! connector, the only code outside `store/` that talks SQL, and only ever
//! to databases that are not the store.

use super::ConnectorError;
use super::target::ExportError;
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

/// A stored value as text (numbers as written); NULL as none.
fn text_of(v: ValueRef) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
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
                .map(|i| Ok(text_of(r.get_ref(i)?)))
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

/// An application's table of accounts, keyed by one column, with the
/// columns a SQL target writes. Values are text; NULL is no value. Every
/// call is one statement, so one transaction of its own.
pub struct AccountTable {
    conn: Connection,
    /// `path table`, for messages.
    display: String,
    table: String,
    key: String,
    columns: Vec<String>,
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl AccountTable {
    /// Opens the table; it must exist with `key` and every one of `columns`.
    pub fn open(
        path: &Path,
        display: &str,
        table: &str,
        key: &str,
        columns: &[String],
    ) -> Result<AccountTable, ExportError> {
        let down = |e: rusqlite::Error| ExportError::Transient(format!("{display}: {e}"));
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(down)?;
        let _ = conn.busy_timeout(std::time::Duration::from_secs(10));
        let have: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .map_err(down)?;
            let rows = stmt
                .query_map([table], |r| r.get::<_, String>(0))
                .map_err(down)?;
            rows.collect::<rusqlite::Result<_>>().map_err(down)?
        };
        if have.is_empty() {
            return Err(ExportError::Transient(format!(
                "{display}: no table {table:?}"
            )));
        }
        let missing: Vec<&str> = std::iter::once(key)
            .chain(columns.iter().map(String::as_str))
            .filter(|c| !have.iter().any(|h| h == c))
            .collect();
        if !missing.is_empty() {
            return Err(ExportError::Transient(format!(
                "{display}: table {table:?} has no column {}",
                missing.join(", ")
            )));
        }
        Ok(AccountTable {
            conn,
            display: format!("{display} table {table}"),
            table: table.to_string(),
            key: key.to_string(),
            columns: columns.to_vec(),
        })
    }

    /// A locked database is worth trying later; anything else is this
    /// row's problem.
    fn fail(&self, e: rusqlite::Error) -> ExportError {
        let msg = format!("{}: {e}", self.display);
        match e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                ExportError::Transient(msg)
            }
            _ => ExportError::Rejected(msg),
        }
    }

    fn run(&self, sql: &str, values: Vec<Option<String>>) -> Result<usize, ExportError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.fail(e))?;
        stmt.execute(params_from_iter(values))
            .map_err(|e| self.fail(e))
    }

    fn strings(&self, sql: &str, arg: &str) -> Result<Vec<String>, ExportError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map([arg], |r| r.get::<_, String>(0))
            .map_err(|e| self.fail(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.fail(e))
    }

    pub fn exists(&self, key: &str) -> Result<bool, ExportError> {
        let sql = format!(
            "SELECT 1 FROM {} WHERE {} = ?1",
            ident(&self.table),
            ident(&self.key)
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.fail(e))?;
        stmt.exists([key]).map_err(|e| self.fail(e))
    }

    /// The values of the columns (in their order) of row `key`.
    pub fn row(&self, key: &str) -> Result<Option<Vec<Option<String>>>, ExportError> {
        let cols: Vec<String> = self.columns.iter().map(|c| ident(c)).collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?1",
            if cols.is_empty() {
                "1".to_string()
            } else {
                cols.join(", ")
            },
            ident(&self.table),
            ident(&self.key)
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.fail(e))?;
        let mut rows = stmt.query([key]).map_err(|e| self.fail(e))?;
        let Some(r) = rows.next().map_err(|e| self.fail(e))? else {
            return Ok(None);
        };
        (0..self.columns.len())
            .map(|i| r.get_ref(i).map(text_of).map_err(|e| self.fail(e)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A new row: `key` and the columns' values in their order.
    pub fn insert(&self, key: &str, values: Vec<Option<String>>) -> Result<(), ExportError> {
        let cols: Vec<String> = std::iter::once(&self.key)
            .chain(&self.columns)
            .map(|c| ident(c))
            .collect();
        let sql = format!(
            "INSERT INTO {}({}) VALUES ({})",
            ident(&self.table),
            cols.join(", "),
            (1..=cols.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut all = vec![Some(key.to_string())];
        all.extend(values);
        self.run(&sql, all).map(|_| ())
    }

    /// Writes row `key` whole, under key `to`; how many rows it changed.
    pub fn update(
        &self,
        key: &str,
        to: &str,
        values: Vec<Option<String>>,
    ) -> Result<usize, ExportError> {
        let sets: Vec<String> = std::iter::once(&self.key)
            .chain(&self.columns)
            .enumerate()
            .map(|(i, c)| format!("{} = ?{}", ident(c), i + 1))
            .collect();
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = ?{}",
            ident(&self.table),
            sets.join(", "),
            ident(&self.key),
            sets.len() + 1
        );
        let mut all = vec![Some(to.to_string())];
        all.extend(values);
        all.push(Some(key.to_string()));
        self.run(&sql, all)
    }

    /// How many rows it deleted.
    pub fn delete(&self, key: &str) -> Result<usize, ExportError> {
        let sql = format!(
            "DELETE FROM {} WHERE {} = ?1",
            ident(&self.table),
            ident(&self.key)
        );
        self.run(&sql, vec![Some(key.to_string())])
    }

    /// Keys of rows whose `column` holds `value`, at most two (one is a
    /// match, two say it is not unique).
    pub fn keys_where(&self, column: &str, value: &str) -> Result<Vec<String>, ExportError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?1 LIMIT 2",
            ident(&self.key),
            ident(&self.table),
            ident(column)
        );
        self.strings(&sql, value)
    }

    /// Every key, in order.
    pub fn keys(&self) -> Result<Vec<String>, ExportError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE ?1 = ?1 ORDER BY 1",
            ident(&self.key),
            ident(&self.table)
        );
        self.strings(&sql, "")
    }
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

    #[test]
    fn a_table_target_writes_rows_and_says_what_is_missing() {
        use crate::connector::file_target::SqlTarget;
        use crate::connector::target::attrs_of as attrs;
        use crate::connector::target::{Change, ExportError, ExportOp, SqlTargetConfig, Target};
        let dir = tempfile::tempdir().expect("tmp");
        let db = dir.path().join("app.db");
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute_batch("CREATE TABLE accounts(login TEXT PRIMARY KEY, mail TEXT, dept TEXT)")
            .expect("create");
        let cfg = |cols: &[&str]| SqlTargetConfig {
            path: db.clone(),
            display: "app.db".into(),
            table: "accounts".into(),
            key: "login".into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            read_back: Vec::new(),
        };
        let mut bad = SqlTarget::new(cfg(&["mail", "office"]));
        let e = bad.connect().expect_err("no column");
        assert!(e.to_string().contains("office"), "{e}");

        let mut t = SqlTarget::new(cfg(&["mail", "dept"]));
        t.connect().expect("connect");
        t.apply(&ExportOp::Create {
            name: "alee".into(),
            attrs: attrs(&[("mail", &["a@x"]), ("dept", &["IT"])]),
        })
        .expect("insert");
        let found = t.find("mail", "a@x").expect("find").expect("found");
        assert_eq!(found.id, "alee");
        t.apply(&ExportOp::Update {
            id: "alee".into(),
            name: "alee".into(),
            rename: Some("ann.lee".into()),
            changes: vec![Change::Replace("dept".into(), vec![])],
        })
        .expect("update");
        let row: (String, Option<String>) = conn
            .query_row("SELECT login, dept FROM accounts", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("row");
        assert_eq!(row, ("ann.lee".into(), None));
        assert_eq!(
            t.apply(&ExportOp::Delete {
                id: "alee".into(),
                name: "alee".into()
            }),
            Err(ExportError::NotFound("alee".into()))
        );
    }
}
