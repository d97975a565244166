//! SQLite tables and queries, read-only.
//!
//! The database belongs to the connected system, so it is opened read-only
//! and never created: a wrong path is an error, not a new empty database,
//! and a configured statement that would write is refused before it runs.
//! Result columns go through the same [`ColumnPlan`] as CSV columns, so a
//! table and a file holding the same rows import to the same objects. SQLite
//! values become text the way a person would write them (integers without
//! `.0`); a BLOB has no such form and rejects its row.

use super::convert::ColumnPlan;
use super::{Connector, ConnectorError, ImportSink, ImportedObject, RowError, SqlConfig, SqlQuery};
use crate::model::Schema;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Statement};
use std::fmt::Write as _;

pub struct SqlConnector {
    config: SqlConfig,
}

impl SqlConnector {
    pub fn new(config: SqlConfig) -> SqlConnector {
        SqlConnector { config }
    }

    fn error(&self, message: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::Source {
            path: self.config.display.clone(),
            message: message.to_string(),
        }
    }

    fn connect(&self) -> Result<Connection, ConnectorError> {
        // SQLite reports a missing file as "unable to open database file";
        // the file system says what is actually wrong.
        let meta = std::fs::metadata(&self.config.path).map_err(|source| ConnectorError::Io {
            path: self.config.display.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(self.error("not a file"));
        }
        // Without SQLITE_OPEN_CREATE SQLite never creates the file, and a
        // read-only handle cannot write it, journal it or roll it back.
        let conn = Connection::open_with_flags(
            &self.config.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.error(format!("cannot open the database: {e}")))?;
        conn.pragma_update(None, "query_only", true)
            .map_err(|e| self.error(format!("cannot open the database: {e}")))?;
        Ok(conn)
    }

    fn sql(&self) -> Result<String, ConnectorError> {
        match &self.config.query {
            SqlQuery::Table(t) if t.is_empty() => Err(self.error("the table name is empty")),
            SqlQuery::Table(t) => Ok(format!("SELECT * FROM {}", quote_ident(t))),
            SqlQuery::Select(s) => Ok(s.clone()),
        }
    }

    /// The prepared statement (not yet run) and the plan for its columns.
    fn prepare<'c>(
        &self,
        conn: &'c Connection,
    ) -> Result<(Statement<'c>, ColumnPlan), ConnectorError> {
        let sql = self.sql()?;
        let stmt = conn.prepare(&sql).map_err(|e| match &self.config.query {
            SqlQuery::Table(t) if t.contains('.') => self.error(format!(
                "table {t:?}: {e} (a table name is one identifier; \
                 for a schema-qualified table configure a SELECT)"
            )),
            SqlQuery::Table(t) => self.error(format!("table {t:?}: {e}")),
            SqlQuery::Select(_) => self.error(format!("query: {e}")),
        })?;
        if !stmt.readonly() {
            return Err(self.error("the query would change the database; only a SELECT is allowed"));
        }
        let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
        if names.is_empty() {
            return Err(self.error("the query returns no columns; only a SELECT is allowed"));
        }
        let plan = ColumnPlan::new(&names, &self.config.columns, &self.config.anchor)
            .map_err(|m| self.error(format!("result columns: {m}")))?;
        Ok((stmt, plan))
    }
}

impl Connector for SqlConnector {
    fn kind(&self) -> &'static str {
        "sql"
    }

    fn schema(&self) -> Result<Schema, ConnectorError> {
        let conn = self.connect()?;
        let (_, plan) = self.prepare(&conn)?;
        Ok(plan.schema().clone())
    }

    fn full_import(&mut self, sink: &mut dyn ImportSink) -> Result<(), ConnectorError> {
        let conn = self.connect()?;
        let (mut stmt, plan) = self.prepare(&conn)?;
        let width = plan.width();
        let mut conv = plan.converter();
        let mut text = String::new();
        let mut rows = stmt
            .query([])
            .map_err(|e| self.error(format!("query: {e}")))?;
        let mut line: u64 = 0;
        while let Some(row) = rows
            .next()
            .map_err(|e| self.error(format!("reading row {}: {e}", line + 1)))?
        {
            line += 1;
            for i in 0..width {
                if !plan.wants(i) {
                    continue;
                }
                match row.get_ref(i) {
                    Ok(ValueRef::Null) => {}
                    Ok(ValueRef::Text(bytes)) => match std::str::from_utf8(bytes) {
                        Ok(s) => conv.field(i, s),
                        Err(_) => conv.fail(i, "is not valid UTF-8"),
                    },
                    Ok(ValueRef::Integer(n)) => {
                        text.clear();
                        let _ = write!(text, "{n}");
                        conv.field(i, &text);
                    }
                    Ok(ValueRef::Real(x)) => {
                        text.clear();
                        // Display is the shortest text that reads back as
                        // the same number, and has no ".0" on whole ones.
                        let _ = write!(text, "{x}");
                        conv.field(i, &text);
                    }
                    Ok(ValueRef::Blob(_)) => conv.fail(i, "holds a BLOB, which has no text form"),
                    Err(e) => conv.fail(i, &format!("cannot be read: {e}")),
                }
            }
            match conv.finish() {
                Ok((anchor, attrs)) => sink.object(ImportedObject {
                    anchor,
                    attrs,
                    line,
                }),
                Err(f) => sink.reject(RowError {
                    source: self.config.display.clone(),
                    line,
                    anchor: f.anchor,
                    message: f.message,
                }),
            }
        }
        Ok(())
    }
}

/// `name` as one SQL identifier, whatever characters it holds.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::convert::conformance::{self, Kind, Table};
    use crate::connector::csv::tests::CsvKind;
    use crate::connector::sqlite_file::TableWriter;

    /// A record as JSON with its keys sorted, for readable expectations.
    fn sorted_json(r: &crate::model::Record, schema: &Schema) -> String {
        let text = crate::model::json::record_to_json(r, schema);
        serde_json::from_str::<serde_json::Value>(&text)
            .map(|v| v.to_string())
            .unwrap_or(text)
    }
    use crate::connector::{Collect, ColumnSpec, ColumnSpecs};
    use std::path::{Path, PathBuf};

    /// Stores tables as an all-TEXT SQLite table, `None` as NULL.
    struct SqlKind;

    impl Kind for SqlKind {
        fn make(
            &self,
            dir: &Path,
            table: &Table,
            anchor: &str,
            columns: ColumnSpecs,
        ) -> Box<dyn Connector> {
            let path = dir.join("hr.db");
            let cols: Vec<String> = table
                .columns
                .iter()
                .map(|c| format!("{} TEXT", quote_ident(c)))
                .collect();
            let ddl = format!("CREATE TABLE people ({})", cols.join(", "));
            let mut w = TableWriter::create(&path, &ddl, "people", table.columns.len()).unwrap();
            for row in &table.rows {
                let owned: Vec<Option<String>> =
                    row.iter().map(|v| v.map(str::to_string)).collect();
                w.insert(&owned).unwrap();
            }
            w.finish().unwrap();
            let mut config = config(path, SqlQuery::Table("people".into()), anchor);
            config.columns = columns;
            Box::new(SqlConnector::new(config))
        }

        fn line(&self, row: usize) -> u64 {
            row as u64 + 1
        }
    }

    #[test]
    fn conformance() {
        conformance::conformance(&SqlKind);
    }

    #[test]
    fn csv_and_sql_of_the_same_rows_import_the_same_objects() {
        let (csv_schema, csv) = conformance::import_people(&CsvKind);
        let (sql_schema, sql) = conformance::import_people(&SqlKind);
        assert_eq!(csv_schema, sql_schema);
        let strip = |v: Vec<conformance::Flat>| {
            v.into_iter()
                .map(|(a, _, attrs)| (a, attrs))
                .collect::<Vec<_>>()
        };
        let csv_objects = strip(conformance::flatten(&csv_schema, &csv));
        assert_eq!(csv_objects.len(), 3);
        assert_eq!(csv_objects, strip(conformance::flatten(&sql_schema, &sql)));
        let messages = |c: &Collect| {
            c.rejected
                .iter()
                .map(|r| (r.anchor.clone(), r.message.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(messages(&csv), messages(&sql));
    }

    fn config(path: PathBuf, query: SqlQuery, anchor: &str) -> SqlConfig {
        SqlConfig {
            path,
            display: "hr.db".to_string(),
            query,
            anchor: anchor.to_string(),
            columns: ColumnSpecs::new(),
        }
    }

    /// A database in a temp dir built by `setup`.
    fn db(setup: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hr.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(setup).unwrap();
        drop(conn);
        (dir, path)
    }

    const PEOPLE: &str = "
        CREATE TABLE \"the \"\"staff\"\"\" (id INTEGER, name TEXT, score REAL, pic BLOB, born TEXT);
        INSERT INTO \"the \"\"staff\"\"\" VALUES
            (1, 'Ann', 2.0, NULL, '01.03.1980'),
            (2, NULL, 2.5, NULL, NULL),
            (3, 'Cy', NULL, x'00ff', NULL),
            (NULL, 'Di', NULL, NULL, NULL),
            (5, 'Ed', -1e-7, NULL, '1980-03-01'),
            (-9007199254740993, CAST(x'ff' AS TEXT), NULL, NULL, NULL);
    ";

    fn table(path: PathBuf) -> SqlConnector {
        let mut c = config(path, SqlQuery::Table("the \"staff\"".into()), "id");
        c.columns.insert(
            "born".into(),
            ColumnSpec {
                date: vec!["%d.%m.%Y".into()],
                ..ColumnSpec::default()
            },
        );
        SqlConnector::new(c)
    }

    fn import(c: &mut SqlConnector) -> Collect {
        let mut sink = Collect::default();
        c.full_import(&mut sink).unwrap();
        sink
    }

    fn source_message(r: Result<impl Sized, ConnectorError>) -> String {
        match r {
            Err(ConnectorError::Source { path, message }) => {
                assert_eq!(path, "hr.db");
                message
            }
            Err(e) => panic!("expected a source error, got {e}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn table_values_nulls_numbers_and_row_errors() {
        let (_d, path) = db(PEOPLE);
        let mut c = table(path);
        let schema = c.schema().unwrap();
        assert_eq!(schema.names(), ["id", "name", "score", "pic", "born"]);
        let sink = import(&mut c);

        let objects: Vec<(u64, &str, String)> = sink
            .objects
            .iter()
            .map(|o| (o.line, o.anchor.as_str(), sorted_json(&o.attrs, &schema)))
            .collect();
        assert_eq!(
            objects,
            [
                (
                    1,
                    "1",
                    r#"{"born":"1980-03-01","id":"1","name":"Ann","score":"2"}"#.to_string()
                ),
                (2, "2", r#"{"id":"2","score":"2.5"}"#.to_string()),
            ]
        );
        let rejected: Vec<(u64, Option<&str>, &str)> = sink
            .rejected
            .iter()
            .map(|r| (r.line, r.anchor.as_deref(), r.message.as_str()))
            .collect();
        assert_eq!(
            rejected,
            [
                (
                    3,
                    Some("3"),
                    "column \"pic\" holds a BLOB, which has no text form"
                ),
                (4, None, "no anchor: column \"id\" is empty"),
                (
                    5,
                    Some("5"),
                    "column \"born\": \"1980-03-01\" is not a date in the format %d.%m.%Y"
                ),
                (
                    6,
                    Some("-9007199254740993"),
                    "column \"name\" is not valid UTF-8"
                ),
            ]
        );
    }

    #[test]
    fn query_with_rename_and_ignore() {
        let (_d, path) = db(PEOPLE);
        let mut config = config(
            path,
            SqlQuery::Select(
                "SELECT id AS EmpNo, upper(name) AS Name, pic, score FROM \"the \"\"staff\"\"\" \
                 WHERE pic IS NOT NULL OR score < 0"
                    .into(),
            ),
            "emp",
        );
        config.columns.insert(
            "EmpNo".into(),
            ColumnSpec {
                rename: Some("emp".into()),
                ..ColumnSpec::default()
            },
        );
        config.columns.insert(
            "pic".into(),
            ColumnSpec {
                ignore: true,
                ..ColumnSpec::default()
            },
        );
        let mut c = SqlConnector::new(config);
        let schema = c.schema().unwrap();
        assert_eq!(schema.names(), ["emp", "Name", "score"]);
        let sink = import(&mut c);
        assert!(
            sink.rejected.is_empty(),
            "the BLOB column is ignored: {:?}",
            sink.rejected
        );
        let got: Vec<(u64, String)> = sink
            .objects
            .iter()
            .map(|o| (o.line, sorted_json(&o.attrs, &schema)))
            .collect();
        assert_eq!(
            got,
            [
                (1, r#"{"Name":"CY","emp":"3"}"#.to_string()),
                (
                    2,
                    r#"{"Name":"ED","emp":"5","score":"-0.0000001"}"#.to_string()
                ),
            ]
        );
    }

    #[test]
    fn missing_database_is_an_error_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.db");
        let mut c = SqlConnector::new(config(path.clone(), SqlQuery::Table("t".into()), "id"));
        match c.full_import(&mut Collect::default()) {
            Err(ConnectorError::Io { path, source }) => {
                assert_eq!(path, "hr.db");
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected an io error, got {other:?}"),
        }
        assert!(c.schema().is_err());
        assert!(!path.exists());
    }

    #[test]
    fn the_database_is_never_written() {
        let (dir, path) = db(PEOPLE);
        let before = std::fs::read(&path).unwrap();
        let files = |d: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let files_before = files(dir.path());

        let c = table(path.clone());
        let conn = c.connect().unwrap();
        let err = conn
            .execute("INSERT INTO \"the \"\"staff\"\"\" (id) VALUES (99)", [])
            .unwrap_err();
        assert!(
            err.to_string().contains("readonly") || err.to_string().contains("read-only"),
            "{err}"
        );
        assert!(conn.execute_batch("CREATE TABLE x (y)").is_err());
        drop(conn);

        let mut c = SqlConnector::new(config(
            path.clone(),
            SqlQuery::Select("DELETE FROM \"the \"\"staff\"\"\"".into()),
            "id",
        ));
        let msg = source_message(c.full_import(&mut Collect::default()));
        assert!(msg.contains("only a SELECT is allowed"), "{msg}");

        let mut c = table(path.clone());
        assert_eq!(import(&mut c).objects.len(), 2);

        assert_eq!(std::fs::read(&path).unwrap(), before, "file unchanged");
        assert_eq!(
            files(dir.path()),
            files_before,
            "no journal or WAL files left"
        );
    }

    #[test]
    fn wal_databases_read_with_and_without_a_writer() {
        let (dir, path) =
            db("PRAGMA journal_mode = WAL; CREATE TABLE t (id TEXT); INSERT INTO t VALUES ('a');");
        let mut c = SqlConnector::new(config(path.clone(), SqlQuery::Table("t".into()), "id"));
        let sink = import(&mut c);
        assert_eq!(sink.objects.len(), 1, "{:?}", sink.rejected);

        // A live writer: its committed rows are read, nothing is blocked.
        let writer = Connection::open(&path).unwrap();
        writer.execute("INSERT INTO t VALUES ('b')", []).unwrap();
        let sink = import(&mut c);
        let anchors: Vec<&str> = sink.objects.iter().map(|o| o.anchor.as_str()).collect();
        assert_eq!(anchors, ["a", "b"]);
        drop(writer);
        drop(dir);
    }

    #[test]
    fn bad_table_and_query_are_source_errors() {
        let (_d, path) = db(PEOPLE);
        let c = SqlConnector::new(config(path.clone(), SqlQuery::Table("staff".into()), "id"));
        let msg = source_message(c.schema());
        assert!(msg.contains("no such table"), "{msg}");

        let c = SqlConnector::new(config(
            path.clone(),
            SqlQuery::Table("main.staff".into()),
            "id",
        ));
        let msg = source_message(c.schema());
        assert!(msg.contains("configure a SELECT"), "{msg}");

        let c = SqlConnector::new(config(path.clone(), SqlQuery::Table(String::new()), "id"));
        assert!(source_message(c.schema()).contains("empty"));

        let c = SqlConnector::new(config(
            path.clone(),
            SqlQuery::Select("SELECT 1 AS id; SELECT 2 AS id".into()),
            "id",
        ));
        source_message(c.schema());

        let c = SqlConnector::new(config(
            path.clone(),
            SqlQuery::Select("SELECT 1 AS ID".into()),
            "id",
        ));
        assert!(source_message(c.schema()).contains("did you mean \"ID\""));

        let c = SqlConnector::new(config(
            path,
            SqlQuery::Select("SELECT 1 AS id, 2 AS id".into()),
            "id",
        ));
        assert!(source_message(c.schema()).contains("two columns named \"id\""));
    }

    #[test]
    fn a_file_that_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hr.db");
        std::fs::write(&path, "id,name\n1,Ann\n").unwrap();
        let c = SqlConnector::new(config(path, SqlQuery::Table("t".into()), "id"));
        let msg = source_message(c.schema());
        assert!(msg.contains("not a database"), "{msg}");
    }
}
