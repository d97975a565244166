//! The reconciliation report: what each target holds against what it
//! should hold, for auditors. Gathering the findings from the store is
//! `crate::reconcile`; this module is the report's shape and its three
//! renderings: one self-contained HTML file, one CSV file per section, and
//! JSON.

use serde::Serialize;

pub mod render;

/// A whole report, ready to render. Every section is a table of text cells:
/// the renderings show the same rows, so their counts always agree.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub title: String,
    /// RFC 3339, when the report was made.
    pub generated_at: String,
    /// The period the event sections cover, in words ("run 12",
    /// "since 2026-11-01", "every run").
    pub period: String,
    /// The store the report was read from.
    pub store: String,
    /// One line per target, for the summary table and the chart.
    pub targets: Vec<TargetSummary>,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetSummary {
    pub target: String,
    /// ldap, scim, sql, csv.
    pub kind: String,
    /// Accounts idsync manages there.
    pub accounts: u64,
    /// Rows per section for this target: (section key, count), in section order.
    pub counts: Vec<(String, u64)>,
    /// Why the target is quarantined, if it is.
    pub quarantined: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Section {
    /// Stable, file-name safe: `drift-rolled-back`, `orphans`, ... The CSV
    /// file is `<key>.csv`.
    pub key: String,
    pub title: String,
    /// One or two sentences: what the rows are and what to do about them.
    pub about: String,
    pub columns: Vec<String>,
    /// Each row has one cell per column.
    pub rows: Vec<Vec<String>>,
}
