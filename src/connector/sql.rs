//! SQLite tables and queries, read-only.
//!
//! The database belongs to the connected system, so it is opened read-only
//! and never created: a wrong path is an error, not a new empty database,
//! and a configured statement that would write is refused before it runs.
//! Result columns go through the same [`ColumnPlan`] as CSV columns, so a
//! table and a file holding the same rows import to the same objects. SQLite
//! values become text the way a person would write them (integers without
//! `.0`); a BLOB has no such form and rejects its row.
//!
//! With `[agent.delta]`, a delta import reads only rows whose watermark
//! column is at or above the highest value the last import saw, in
//! watermark order, and a true tombstone column stages a delete. Reading
//! from the watermark itself (`>=`, not `>`) re-reads the rows at the
//! boundary: a row committed later with the same watermark as one already
//! read is not lost, and the rows read twice compare unchanged.

use super::convert::ColumnPlan;
use super::mark::{self, SourceMark};
use super::{
    Connector, ConnectorError, ImportSink, ImportedObject, RowError, SqlConfig, SqlDelta, SqlQuery,
};
use crate::model::Schema;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, Statement};
use std::fmt::Write as _;

pub struct SqlConnector {
    config: SqlConfig,
}

/// Where the delta columns are among a statement's result columns.
#[derive(Debug, Clone, Copy, Default)]
struct DeltaColumns {
    watermark: Option<usize>,
    tombstone: Option<usize>,
}

impl SqlConfig {
    /// A key for everything that decides which rows are read and how they
    /// convert: a watermark taken under other rules is not continued from.
    pub fn rules_key(&self) -> u64 {
        mark::rules_key(&format!(
            "sql {:?} {:?} {:?} {:?}",
            self.query, self.anchor, self.columns, self.delta
        ))
    }
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

    /// The configured statement as a subquery, for the watermark's bounds.
    /// A trailing `;` would end it; a line break keeps a trailing comment
    /// from swallowing the closing parenthesis.
    fn nested(&self) -> Result<String, ConnectorError> {
        let sql = self.sql()?;
        Ok(format!("(\n{}\n)", sql.trim_end().trim_end_matches(';')))
    }

    /// The prepared statement (not yet run), the plan for its columns and,
    /// when `delta`, where the delta columns are.
    fn prepare<'c>(
        &self,
        conn: &'c Connection,
        sql: &str,
        delta: bool,
    ) -> Result<(Statement<'c>, ColumnPlan, DeltaColumns), ConnectorError> {
        let stmt = conn.prepare(sql).map_err(|e| match &self.config.query {
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
        let mut found = DeltaColumns::default();
        if let Some(d) = self.config.delta.as_ref().filter(|_| delta) {
            let find = |key: &str, column: &str| {
                names.iter().position(|n| n == column).ok_or_else(|| {
                    let mut m = format!("[agent.delta]: {key} {column:?} is not a result column");
                    match super::convert::suggest(column, names.iter().map(String::as_str)) {
                        Some(s) => {
                            let _ = write!(m, " (did you mean {s:?}?)");
                        }
                        None => {
                            let _ = write!(m, " (the columns are: {})", names.join(", "));
                        }
                    }
                    self.error(m)
                })
            };
            found.watermark = Some(find("watermark", &d.watermark)?);
            if let Some(t) = &d.tombstone {
                found.tombstone = Some(find("tombstone", t)?);
            }
        }
        Ok((stmt, plan, found))
    }

    /// The result column names of the configured statement, before renames.
    pub fn source_columns(&self) -> Result<Vec<String>, ConnectorError> {
        let conn = self.connect()?;
        let sql = self.sql()?;
        let stmt = conn
            .prepare(&sql)
            .map_err(|e| self.error(format!("query: {e}")))?;
        Ok(stmt.column_names().map(str::to_string).collect())
    }

    /// Reads every row of `stmt` into `sink`, numbering rows on from
    /// `line`. With `track`, the statement is in watermark order and the
    /// last watermark read is returned, with the last row number.
    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        stmt: &mut Statement<'_>,
        params: &[Value],
        mut line: u64,
        plan: &ColumnPlan,
        delta: DeltaColumns,
        track: bool,
        sink: &mut dyn ImportSink,
    ) -> Result<(Option<Value>, u64), ConnectorError> {
        let width = plan.width();
        let mut conv = plan.converter();
        let mut text = String::new();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| self.error(format!("query: {e}")))?;
        let mut highest = None;
        let reject = |sink: &mut dyn ImportSink, line, anchor, message| {
            sink.reject(RowError {
                source: self.config.display.clone(),
                line,
                anchor,
                message,
            })
        };
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
            let converted = conv.finish();
            if track && let Some(w) = delta.watermark {
                // Rows come in watermark order: the last value read is the
                // highest. NULL has no place in that order, and a BLOB no
                // stored form; neither becomes the watermark.
                match row.get_ref(w) {
                    Ok(ValueRef::Integer(n)) => highest = Some(Value::Integer(n)),
                    Ok(ValueRef::Real(x)) => highest = Some(Value::Real(x)),
                    Ok(ValueRef::Text(t)) => {
                        highest = Some(Value::Text(String::from_utf8_lossy(t).into_owned()))
                    }
                    _ => {}
                }
            }
            let deleted = match delta.tombstone.map(|t| row.get_ref(t)) {
                None => Ok(false),
                Some(Ok(v)) => truth(v),
                Some(Err(e)) => Err(format!("cannot be read: {e}")),
            };
            match (deleted, converted) {
                (Ok(false), Ok((anchor, attrs))) => sink.object(ImportedObject {
                    anchor,
                    attrs,
                    line,
                    print: None,
                }),
                (Ok(false), Err(f)) => reject(sink, line, f.anchor, f.message),
                (Ok(true), Ok((anchor, _))) => sink.gone(anchor, line),
                // A deleted row needs only its anchor; what else is wrong
                // with it no longer matters.
                (Ok(true), Err(f)) => match f.anchor {
                    Some(anchor) => sink.gone(anchor, line),
                    None => reject(sink, line, None, f.message),
                },
                (Err(why), converted) => {
                    let column = self
                        .config
                        .delta
                        .as_ref()
                        .and_then(|d| d.tombstone.as_deref());
                    let anchor = match converted {
                        Ok((a, _)) => Some(a),
                        Err(f) => f.anchor,
                    };
                    let message = format!("tombstone column {:?} {why}", column.unwrap_or(""));
                    reject(sink, line, anchor, message);
                }
            }
        }
        Ok((highest, line))
    }

    /// The stored form of a watermark: the column, the rules it was taken
    /// under, and the value as SQLite gave it.
    fn watermark_text(&self, value: &Value) -> Option<String> {
        let d = self.config.delta.as_ref()?;
        let v = match value {
            Value::Integer(n) => serde_json::json!(n),
            Value::Real(x) => serde_json::json!(x),
            Value::Text(t) => serde_json::json!(t),
            Value::Null | Value::Blob(_) => return None,
        };
        Some(
            serde_json::json!({
                "column": d.watermark,
                "rules": format!("{:016x}", self.config.rules_key()),
                "value": v,
            })
            .to_string(),
        )
    }

    /// The value of a stored watermark taken under the current rules.
    fn watermark_value(&self, text: &str) -> Result<Value, String> {
        let Some(d) = &self.config.delta else {
            return Err("the agent has no [agent.delta]".into());
        };
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| "the stored watermark is unreadable".to_string())?;
        if v.get("column").and_then(|c| c.as_str()) != Some(d.watermark.as_str()) {
            return Err(format!(
                "the stored watermark is not of column {:?}",
                d.watermark
            ));
        }
        let rules = format!("{:016x}", self.config.rules_key());
        if v.get("rules").and_then(|r| r.as_str()) != Some(rules.as_str()) {
            return Err("the agent's rules changed since the watermark was taken".into());
        }
        match v.get("value") {
            Some(serde_json::Value::String(s)) => Ok(Value::Text(s.clone())),
            Some(serde_json::Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Value::Integer(i)),
                None => n
                    .as_f64()
                    .map(Value::Real)
                    .ok_or_else(|| "the stored watermark is unreadable".to_string()),
            },
            _ => Err("the stored watermark is unreadable".into()),
        }
    }
}

/// A tombstone value read as true or false, as conditions read them:
/// `true`, `yes` and non-zero numbers are true; `false`, `no`, zero, empty
/// and NULL are false.
fn truth(v: ValueRef<'_>) -> Result<bool, String> {
    match v {
        ValueRef::Null => Ok(false),
        ValueRef::Integer(n) => Ok(n != 0),
        ValueRef::Real(x) => Ok(x != 0.0),
        ValueRef::Blob(_) => Err("holds a BLOB, not true or false".into()),
        ValueRef::Text(t) => {
            let s = String::from_utf8_lossy(t);
            let s = s.trim();
            match s.to_ascii_lowercase().as_str() {
                "" | "false" | "no" => Ok(false),
                "true" | "yes" => Ok(true),
                other => match other.parse::<f64>() {
                    Ok(x) => Ok(x != 0.0),
                    Err(_) => Err(format!("holds {s:?}, not true or false")),
                },
            }
        }
    }
}

impl Connector for SqlConnector {
    fn kind(&self) -> &'static str {
        "sql"
    }

    fn schema(&self) -> Result<Schema, ConnectorError> {
        let conn = self.connect()?;
        let (_, plan, _) = self.prepare(&conn, &self.sql()?, false)?;
        Ok(plan.schema().clone())
    }

    fn full_import(&mut self, sink: &mut dyn ImportSink) -> Result<(), ConnectorError> {
        let conn = self.connect()?;
        // One read transaction: the watermark recorded is the highest of
        // exactly the rows read, whatever a writer commits meanwhile.
        conn.execute_batch("BEGIN")
            .map_err(|e| self.error(format!("cannot start reading: {e}")))?;
        let (mut stmt, plan, delta) = self.prepare(&conn, &self.sql()?, true)?;
        self.read(&mut stmt, &[], 0, &plan, delta, false, sink)?;
        drop(stmt);
        if let Some(d) = &self.config.delta {
            let highest: Value = conn
                .query_row(
                    &format!(
                        "SELECT max({}) FROM {}",
                        quote_ident(&d.watermark),
                        self.nested()?
                    ),
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| self.error(format!("watermark: {e}")))?;
            if let Some(text) = self.watermark_text(&highest) {
                sink.mark(SourceMark::Watermark(text));
            }
        }
        // A read-only transaction: ending it cannot lose anything.
        let _ = conn.execute_batch("COMMIT");
        Ok(())
    }

    fn resumes_from(&self, watermark: &str) -> Result<(), String> {
        self.watermark_value(watermark).map(|_| ())
    }

    fn changes_since(
        &mut self,
        watermark: &str,
        sink: &mut dyn ImportSink,
    ) -> Result<(), ConnectorError> {
        let since = self.watermark_value(watermark).map_err(|m| self.error(m))?;
        let Some(SqlDelta {
            watermark: column, ..
        }) = &self.config.delta
        else {
            return Err(ConnectorError::Unsupported(
                "a delta import without [agent.delta]",
            ));
        };
        let column = quote_ident(column);
        let nested = self.nested()?;
        let conn = self.connect()?;
        // Both reads see one snapshot of the database.
        conn.execute_batch("BEGIN")
            .map_err(|e| self.error(format!("cannot start reading: {e}")))?;
        // Rows without a watermark cannot say when they changed, so every
        // delta import reads them. Two statements rather than one with OR:
        // each can use an index on the column.
        let unmarked = format!("SELECT * FROM {nested} WHERE {column} IS NULL");
        let (mut stmt, plan, delta) = self.prepare(&conn, &unmarked, true)?;
        let (_, line) = self.read(&mut stmt, &[], 0, &plan, delta, false, sink)?;
        drop(stmt);
        let changed = format!("SELECT * FROM {nested} WHERE {column} >= ?1 ORDER BY {column}");
        let (mut stmt, plan, delta) = self.prepare(&conn, &changed, true)?;
        let (highest, _) = self.read(&mut stmt, &[since], line, &plan, delta, true, sink)?;
        drop(stmt);
        // A read-only transaction: ending it cannot lose anything.
        let _ = conn.execute_batch("COMMIT");
        if let Some(text) = highest.and_then(|h| self.watermark_text(&h)) {
            sink.mark(SourceMark::Watermark(text));
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
            delta: None,
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
    fn tombstones_read_as_conditions_do() {
        for (v, t) in [
            (ValueRef::Null, Ok(false)),
            (ValueRef::Integer(0), Ok(false)),
            (ValueRef::Integer(2), Ok(true)),
            (ValueRef::Real(0.5), Ok(true)),
            (ValueRef::Text(b" Yes "), Ok(true)),
            (ValueRef::Text(b"FALSE"), Ok(false)),
            (ValueRef::Text(b""), Ok(false)),
            (ValueRef::Text(b"1"), Ok(true)),
            (
                ValueRef::Text(b"maybe"),
                Err("holds \"maybe\", not true or false".to_string()),
            ),
        ] {
            assert_eq!(truth(v), t, "{v:?}");
        }
    }

    fn delta_config(path: PathBuf, query: SqlQuery) -> SqlConfig {
        let mut c = config(path, query, "id");
        c.delta = Some(SqlDelta {
            watermark: "at".into(),
            tombstone: Some("gone".into()),
        });
        c
    }

    #[test]
    fn a_full_import_records_the_highest_watermark_and_tombstones() {
        let (_d, path) = db("CREATE TABLE t (id TEXT, at INTEGER, gone INTEGER);
             INSERT INTO t VALUES ('a', 5, 0), ('b', 9, 1), ('c', NULL, 0), ('d', 7, 'x');");
        let mut c = SqlConnector::new(delta_config(path, SqlQuery::Table("t".into())));
        let sink = import(&mut c);
        let anchors: Vec<&str> = sink.objects.iter().map(|o| o.anchor.as_str()).collect();
        assert_eq!(anchors, ["a", "c"]);
        assert_eq!(sink.gone, [("b".to_string(), 2)]);
        assert_eq!(sink.rejected.len(), 1);
        assert_eq!(
            sink.rejected[0].message,
            "tombstone column \"gone\" holds \"x\", not true or false"
        );
        let [SourceMark::Watermark(w)] = sink.marks.as_slice() else {
            panic!("{:?}", sink.marks);
        };
        assert!(w.contains(r#""value":9"#), "{w}");
        assert_eq!(c.resumes_from(w), Ok(()));
    }

    #[test]
    fn changes_since_reads_from_the_watermark_in_order() {
        let (_d, path) = db("CREATE TABLE t (id TEXT, at INTEGER, gone INTEGER);
             INSERT INTO t VALUES ('a', 5, 0), ('b', 9, 0), ('c', 7, 0), ('d', NULL, 0), ('e', 7, 1);");
        let query = SqlQuery::Select("SELECT id, at, gone FROM t -- every row\n;".into());
        let mut c = SqlConnector::new(delta_config(path, query));
        let mut first = Collect::default();
        c.full_import(&mut first).unwrap();
        let [SourceMark::Watermark(_)] = first.marks.as_slice() else {
            panic!("{:?}", first.marks);
        };
        let since = c.watermark_text(&Value::Integer(7)).unwrap_or_default();
        let mut sink = Collect::default();
        c.changes_since(&since, &mut sink).unwrap();
        let anchors: Vec<&str> = sink.objects.iter().map(|o| o.anchor.as_str()).collect();
        // NULL first, then in watermark order from 7 on.
        assert_eq!(anchors, ["d", "c", "b"]);
        assert_eq!(sink.gone.len(), 1);
        let [SourceMark::Watermark(w)] = sink.marks.as_slice() else {
            panic!("{:?}", sink.marks);
        };
        assert!(w.contains(r#""value":9"#), "{w}");

        // Another column or other rules: not continued from.
        let mut other = delta_config(c.config.path.clone(), SqlQuery::Table("t".into()));
        let msg = SqlConnector::new(other.clone())
            .resumes_from(w)
            .unwrap_err();
        assert!(msg.contains("rules changed"), "{msg}");
        other.delta = Some(SqlDelta {
            watermark: "id".into(),
            tombstone: None,
        });
        let msg = SqlConnector::new(other).resumes_from(w).unwrap_err();
        assert!(msg.contains("not of column \"id\""), "{msg}");
        assert!(c.resumes_from("not json").is_err());
    }

    #[test]
    fn a_missing_watermark_column_names_the_columns() {
        let (_d, path) = db("CREATE TABLE t (id TEXT, at_ INTEGER)");
        let mut c = SqlConnector::new(delta_config(path, SqlQuery::Table("t".into())));
        assert!(
            c.schema().is_ok(),
            "the schema does not need the delta columns"
        );
        let msg = source_message(c.full_import(&mut Collect::default()));
        assert!(
            msg.contains("watermark \"at\" is not a result column (did you mean \"at_\"?)"),
            "{msg}"
        );
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
