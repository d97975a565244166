//! Connectors: one narrow trait per kind of connected system.
//!
//! Import is the one required ability. Export and delta import arrive as
//! default methods that say "not supported", so the engine can ask any
//! connector and fall back (a delta import becomes a full import compared with
//! the connector space). Kinds are chosen by one `match` in [`open`].

pub mod convert;
pub mod csv;
pub mod sql;
pub mod sqlite_file;

use crate::model::{Record, Schema};
use std::path::PathBuf;

pub use convert::{ColumnSpec, ColumnSpecs};

/// One object read from a connected system, before it is staged.
#[derive(Debug, Clone)]
pub struct ImportedObject {
    pub anchor: String,
    pub attrs: Record,
    /// Where it came from, for messages: a line number for files, a row number for SQL.
    pub line: u64,
}

/// A row the connector could not turn into an object. The import goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The file or database the row is in, as the rule file names it.
    pub source: String,
    pub line: u64,
    pub anchor: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.source, self.line)?;
        if let Some(a) = &self.anchor {
            write!(f, "anchor {a:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Receives what an import reads, in source order.
pub trait ImportSink {
    fn object(&mut self, object: ImportedObject);
    fn reject(&mut self, error: RowError);
}

/// A sink that keeps everything; for tests and small tools.
#[derive(Debug, Default)]
pub struct Collect {
    pub objects: Vec<ImportedObject>,
    pub rejected: Vec<RowError>,
}

impl ImportSink for Collect {
    fn object(&mut self, object: ImportedObject) {
        self.objects.push(object);
    }
    fn reject(&mut self, error: RowError) {
        self.rejected.push(error);
    }
}

/// A failure of the whole import (the file is missing, the header is wrong,
/// the database cannot be opened): nothing is staged.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("{path}: {message}")]
    Source { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not supported by this connector")]
    Unsupported(&'static str),
}

/// A configured connection to one connected system.
///
/// Contract: `full_import` reports every object it can read to `sink.object`
/// and every row it cannot to `sink.reject`, in source order, and returns an
/// error only when nothing trustworthy can be read at all. Objects carry only
/// attributes of `schema()` (after renames and ignores), values already
/// converted (dates in ISO 8601), empty values omitted.
pub trait Connector: Send {
    /// `csv`, `sql`, ...
    fn kind(&self) -> &'static str;

    /// The attribute names objects will carry, in a stable order. May read
    /// the source (a CSV header, a table's columns).
    fn schema(&self) -> Result<Schema, ConnectorError>;

    fn full_import(&mut self, sink: &mut dyn ImportSink) -> Result<(), ConnectorError>;
}

/// How an agent reads its system; compiled from the `[agent]` table.
#[derive(Debug, Clone)]
pub enum Source {
    Csv(CsvConfig),
    Sql(SqlConfig),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Latin1,
    Windows1252,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Encoding> {
        match s.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "latin-1" | "latin1" | "iso-8859-1" => Some(Encoding::Latin1),
            "windows-1252" | "cp1252" => Some(Encoding::Windows1252),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CsvConfig {
    /// Absolute, or relative to the working directory (the rule loader resolves it).
    pub path: PathBuf,
    /// The path as the rule file wrote it, for messages.
    pub display: String,
    pub delimiter: u8,
    pub quote: u8,
    pub encoding: Encoding,
    /// The column holding each row's anchor, named as in the schema (after renames).
    pub anchor: String,
    pub columns: ColumnSpecs,
}

#[derive(Debug, Clone)]
pub struct SqlConfig {
    pub path: PathBuf,
    pub display: String,
    /// Either a table name or a full `SELECT`.
    pub query: SqlQuery,
    pub anchor: String,
    pub columns: ColumnSpecs,
}

#[derive(Debug, Clone)]
pub enum SqlQuery {
    Table(String),
    Select(String),
}

/// Builds the connector for a compiled source.
pub fn open(source: &Source) -> Box<dyn Connector> {
    match source {
        Source::Csv(c) => Box::new(csv::CsvConnector::new(c.clone())),
        Source::Sql(c) => Box::new(sql::SqlConnector::new(c.clone())),
    }
}
