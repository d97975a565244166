//! Column conversions shared by every tabular connector: renames, ignored
//! columns, per-column date formats, multi-value splitting, null markers.

use std::collections::BTreeMap;

/// What to do with one source column; compiled from `[columns."Name"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The attribute name the column gets in the connector space.
    pub rename: Option<String>,
    /// Drop the column entirely.
    pub ignore: bool,
    /// chrono formats the source writes dates in (`%d.%m.%Y`), tried in
    /// order; values are stored as ISO 8601 (`2024-03-01`, or
    /// `2024-03-01T08:00:00` when the format has a time).
    pub date: Vec<String>,
    /// Split the field into several values on this separator.
    pub multi: Option<String>,
    /// Source values that mean "no value" (`31.12.9999`, `n/a`).
    pub null_values: Vec<String>,
    /// Trim surrounding whitespace (default on).
    pub trim: bool,
}

impl Default for ColumnSpec {
    fn default() -> Self {
        ColumnSpec {
            rename: None,
            ignore: false,
            date: Vec::new(),
            multi: None,
            null_values: Vec::new(),
            trim: true,
        }
    }
}

/// Specs keyed by the column's name in the source.
pub type ColumnSpecs = BTreeMap<String, ColumnSpec>;
