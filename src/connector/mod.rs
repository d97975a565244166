//! Connectors: one narrow trait per kind of connected system.
//!
//! Import is the one required ability. Delta abilities arrive as default
//! methods that say "not supported", so the engine can ask any connector and
//! fall back (a delta import becomes a full import compared with the
//! connector space): a file tells an unchanged file by its digest and
//! compares rows by fingerprint before converting them; a SQL source reads
//! what changed since a watermark. Kinds are chosen by one `match` in
//! [`open`].

pub mod convert;
pub mod csv;
pub mod file_target;
pub mod ldap;
pub mod mark;
pub mod scim;
pub mod sql;
pub mod sqlite_file;
pub mod target;

pub use mark::{RowPlace, SourceDigest, SourceMark};

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
    /// The fingerprint of the raw row, for sources that compare rows before
    /// converting them.
    pub print: Option<u64>,
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
    /// A row known only by its anchor and fingerprint ([`Connector::fingerprints`]).
    fn print(&mut self, anchor: &str, place: RowPlace);
    /// A row the source marks as deleted (a tombstone column).
    fn gone(&mut self, anchor: String, line: u64);
    /// Where the source stood when it was read, for the next import to
    /// start from; reported after the last row.
    fn mark(&mut self, mark: SourceMark);
}

/// A sink that keeps everything; for tests and small tools.
#[derive(Debug, Default)]
pub struct Collect {
    pub objects: Vec<ImportedObject>,
    pub rejected: Vec<RowError>,
    pub prints: Vec<(String, RowPlace)>,
    pub gone: Vec<(String, u64)>,
    pub marks: Vec<SourceMark>,
}

impl ImportSink for Collect {
    fn object(&mut self, object: ImportedObject) {
        self.objects.push(object);
    }
    fn reject(&mut self, error: RowError) {
        self.rejected.push(error);
    }
    fn print(&mut self, anchor: &str, place: RowPlace) {
        self.prints.push((anchor.to_string(), place));
    }
    fn gone(&mut self, anchor: String, line: u64) {
        self.gone.push((anchor, line));
    }
    fn mark(&mut self, mark: SourceMark) {
        self.marks.push(mark);
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

    /// Also reports, after the last row, where the source stands
    /// ([`ImportSink::mark`]) when the connector keeps track of that.
    fn full_import(&mut self, sink: &mut dyn ImportSink) -> Result<(), ConnectorError>;

    /// The digest of the whole source as it is now, without reading its
    /// rows; `None` when this kind cannot tell. Two equal digests mean the
    /// same rows under the same rules.
    fn digest(&self) -> Result<Option<SourceDigest>, ConnectorError> {
        Ok(None)
    }

    /// Reads every row like [`Connector::full_import`] but reports it as an
    /// anchor, a place and a fingerprint of its raw bytes ([`ImportSink::print`])
    /// instead of converting it; a row whose anchor cannot be told without
    /// converting it is converted and reported as an object (or rejected).
    /// Fingerprints are keyed by the digest's `rules`, so they compare
    /// across imports only while the rules and the header stay the same.
    fn fingerprints(&mut self, _sink: &mut dyn ImportSink) -> Result<(), ConnectorError> {
        Err(ConnectorError::Unsupported(
            "comparing rows before converting them",
        ))
    }

    /// Converts and reports the rows at `rows`, places reported by the
    /// [`Connector::fingerprints`] call just before, in the order given. A
    /// row that is no longer what was fingerprinted fails the whole import.
    fn fetch(
        &mut self,
        _rows: &[RowPlace],
        _sink: &mut dyn ImportSink,
    ) -> Result<(), ConnectorError> {
        Err(ConnectorError::Unsupported(
            "comparing rows before converting them",
        ))
    }

    /// Whether [`Connector::changes_since`] can go on from `watermark` (a
    /// mark an earlier import of this agent reported); why not otherwise.
    fn resumes_from(&self, _watermark: &str) -> Result<(), String> {
        Err(format!("a {} source has no watermark", self.kind()))
    }

    /// Reports the rows changed at or after `watermark`, rows marked deleted
    /// through [`ImportSink::gone`], then the new watermark.
    fn changes_since(
        &mut self,
        _watermark: &str,
        _sink: &mut dyn ImportSink,
    ) -> Result<(), ConnectorError> {
        Err(ConnectorError::Unsupported("a delta import"))
    }
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
    /// How a delta import finds changed rows; `None`: it cannot.
    pub delta: Option<SqlDelta>,
}

/// `[agent.delta]` of a SQL agent. Column names are the source's, before
/// `[columns]` renames (the columns may be ignored there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlDelta {
    /// A column whose value grows whenever a row changes (`updated_at`, a
    /// row version): a delta import reads rows at or above the highest one
    /// it has seen.
    pub watermark: String,
    /// A column that is true for a deleted row.
    pub tombstone: Option<String>,
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

/// Builds the export connector of a target agent.
pub fn open_target(
    connection: &crate::rules::TargetConnection,
) -> Result<Box<dyn target::Target>, target::ExportError> {
    use crate::rules::TargetConnection;
    match connection {
        TargetConnection::Csv(c) => Ok(Box::new(file_target::CsvTarget::new(c.clone()))),
        TargetConnection::Sql(c) => Ok(Box::new(file_target::SqlTarget::new(c.clone()))),
        TargetConnection::Scim(c) => Ok(Box::new(scim::ScimTarget::new(c.clone()))),
        TargetConnection::Ldap(c) => Ok(Box::new(ldap::LdapTarget::new(c.clone()))),
    }
}
