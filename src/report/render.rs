//! The report's renderings: one self-contained HTML page (`page.rs`, its
//! chart in `chart.rs`), one CSV file per section plus `summary.csv`, and
//! JSON. [`write_all`] writes them all into one folder.
//!
//! Every rendering reads the sections through the same [`Table`] view, so
//! they show the same rows under the same column names and their counts
//! agree. The view also absorbs a builder's mistakes without losing data or
//! panicking: a short row is padded with empty cells, cells beyond the
//! columns get columns of their own, repeated column names are numbered
//! (JSON keys must be unique), and a section key that is not a safe file
//! name is replaced for the file name and the page's anchors.

mod chart;
mod page;

pub use page::html;

use super::{Report, Section, TargetSummary};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub const HTML_FILE: &str = "reconcile.html";
pub const JSON_FILE: &str = "reconcile.json";
pub const SUMMARY_FILE: &str = "summary.csv";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("report {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("report {path}: {source}")]
    Csv {
        path: String,
        #[source]
        source: csv::Error,
    },
    #[error("report {path}: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T> = std::result::Result<T, RenderError>;

/// What [`write_all`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub html: PathBuf,
    pub json: PathBuf,
    pub summary_csv: PathBuf,
    /// One per section, in report order.
    pub sections: Vec<WrittenSection>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenSection {
    /// The section's key as given in the report.
    pub key: String,
    pub rows: usize,
    pub csv: PathBuf,
}

/// Creates `dir` and writes `reconcile.html`, `reconcile.json`, one
/// `<key>.csv` per section and `summary.csv` into it. Each file is written
/// beside its final name and renamed into place, so a reader never sees half
/// a report.
pub fn write_all(report: &Report, dir: &Path) -> Result<Written> {
    create_dir(dir)?;
    let tables = tables(report);
    let html_path = dir.join(HTML_FILE);
    replace(&html_path, |tmp| {
        std::fs::write(tmp, page::render(report, &tables)).map_err(|e| io(tmp, e))
    })?;
    let json_path = dir.join(JSON_FILE);
    replace(&json_path, |tmp| {
        let file = std::fs::File::create(tmp).map_err(|e| io(tmp, e))?;
        let mut out = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(&mut out, &JsonReport::new(report, &tables)).map_err(
            |source| RenderError::Json {
                path: tmp.display().to_string(),
                source,
            },
        )?;
        std::io::Write::flush(&mut out).map_err(|e| io(tmp, e))
    })?;
    let csvs = write_csvs(report, &tables, dir)?;
    let sections = tables
        .iter()
        .zip(&csvs)
        .map(|(t, p)| WrittenSection {
            key: t.section.key.clone(),
            rows: t.rows(),
            csv: p.clone(),
        })
        .collect();
    Ok(Written {
        html: html_path,
        json: json_path,
        summary_csv: dir.join(SUMMARY_FILE),
        sections,
    })
}

/// Writes one `<key>.csv` per section (header = the columns) and
/// `summary.csv` (target, kind, accounts, one column per section key,
/// quarantined) into `dir`, creating it. Returns the sections' files in
/// report order, then the summary's.
pub fn csv_files(report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    create_dir(dir)?;
    let tables = tables(report);
    let mut paths = write_csvs(report, &tables, dir)?;
    paths.push(dir.join(SUMMARY_FILE));
    Ok(paths)
}

/// The whole report as pretty JSON; each section's rows are objects keyed by
/// column name, in column order, and each target's counts an object keyed by
/// section key.
pub fn json(report: &Report) -> String {
    let tables = tables(report);
    match serde_json::to_string_pretty(&JsonReport::new(report, &tables)) {
        Ok(s) => s,
        // Only strings and integers are serialized, which cannot fail; the
        // fallback keeps the signature total without a panic path.
        Err(e) => serde_json::json!({ "error": e.to_string() }).to_string(),
    }
}

/// A section as every rendering sees it: unique column names covering every
/// cell, and a slug safe as a file name and an HTML id.
pub(super) struct Table<'a> {
    pub section: &'a Section,
    pub slug: String,
    pub columns: Vec<String>,
}

impl Table<'_> {
    pub fn rows(&self) -> usize {
        self.section.rows.len()
    }

    /// Row `r`'s cells, exactly one per column.
    pub fn cells(&self, r: usize) -> impl Iterator<Item = &str> {
        let row = self.section.rows.get(r).map(Vec::as_slice).unwrap_or(&[]);
        (0..self.columns.len()).map(move |c| row.get(c).map(String::as_str).unwrap_or(""))
    }
}

pub(super) fn tables(report: &Report) -> Vec<Table<'_>> {
    // `summary` is taken by summary.csv.
    let mut slugs: HashSet<String> = HashSet::from(["summary".to_string()]);
    report
        .sections
        .iter()
        .enumerate()
        .map(|(i, section)| {
            let mut slug = slug(&section.key, i);
            let mut n = 2;
            while slugs.contains(&slug) {
                slug = format!("{}-{n}", self::slug(&section.key, i));
                n += 1;
            }
            slugs.insert(slug.clone());
            Table {
                section,
                slug,
                columns: columns(section),
            }
        })
        .collect()
}

/// Keeps letters, digits, `-` and `_`; anything else (a path separator, a
/// dot that could make `..`) becomes `_`.
fn slug(key: &str, index: usize) -> String {
    let s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        format!("section-{}", index + 1)
    } else {
        s
    }
}

fn columns(section: &Section) -> Vec<String> {
    let width = section
        .rows
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .max(section.columns.len());
    let mut seen = HashSet::new();
    (0..width)
        .map(|i| {
            let base = section
                .columns
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("column {}", i + 1));
            let mut name = base.clone();
            let mut n = 2;
            while !seen.insert(name.clone()) {
                name = format!("{base} ({n})");
                n += 1;
            }
            name
        })
        .collect()
}

/// The summary's count columns: the sections' keys in report order, then
/// any key a target counts that no section has (so no count goes unshown).
pub(super) struct CountColumn<'a> {
    pub key: &'a str,
    pub title: &'a str,
}

pub(super) fn count_columns<'a>(
    report: &'a Report,
    tables: &'a [Table<'a>],
) -> Vec<CountColumn<'a>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for t in tables {
        if seen.insert(t.section.key.as_str()) {
            out.push(CountColumn {
                key: &t.section.key,
                title: &t.section.title,
            });
        }
    }
    for target in &report.targets {
        for (key, _) in &target.counts {
            if seen.insert(key.as_str()) {
                out.push(CountColumn { key, title: key });
            }
        }
    }
    out
}

/// A target's count for a section key; repeated entries add up.
pub(super) fn count(target: &TargetSummary, key: &str) -> u64 {
    target
        .counts
        .iter()
        .filter(|(k, _)| k == key)
        .fold(0u64, |sum, (_, n)| sum.saturating_add(*n))
}

fn write_csvs(report: &Report, tables: &[Table<'_>], dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::with_capacity(tables.len());
    for t in tables {
        let path = dir.join(format!("{}.csv", t.slug));
        replace(&path, |tmp| {
            write_csv(tmp, |w| {
                w.write_record(&t.columns)?;
                for r in 0..t.rows() {
                    w.write_record(t.cells(r))?;
                }
                Ok(())
            })
        })?;
        paths.push(path);
    }
    let cols = count_columns(report, tables);
    replace(&dir.join(SUMMARY_FILE), |tmp| {
        write_csv(tmp, |w| {
            let mut header = vec!["target", "kind", "accounts"];
            header.extend(cols.iter().map(|c| c.key));
            header.push("quarantined");
            w.write_record(&header)?;
            for target in &report.targets {
                let mut rec = vec![
                    target.target.clone(),
                    target.kind.clone(),
                    target.accounts.to_string(),
                ];
                rec.extend(cols.iter().map(|c| count(target, c.key).to_string()));
                rec.push(target.quarantined.clone().unwrap_or_default());
                w.write_record(&rec)?;
            }
            Ok(())
        })
    })?;
    Ok(paths)
}

fn write_csv(
    path: &Path,
    body: impl FnOnce(&mut csv::Writer<std::fs::File>) -> csv::Result<()>,
) -> Result<()> {
    let err = |source| RenderError::Csv {
        path: path.display().to_string(),
        source,
    };
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    body(&mut w).map_err(err)?;
    w.flush().map_err(|e| io(path, e))
}

/// Writes through `write` into a hidden file beside `path`, then renames it
/// over `path`; on failure the partial file is removed.
fn replace(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let done = write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io(path, e)));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))
}

fn io(path: &Path, source: std::io::Error) -> RenderError {
    RenderError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    title: &'a str,
    generated_at: &'a str,
    period: &'a str,
    store: &'a str,
    targets: Vec<JsonTarget<'a>>,
    sections: Vec<JsonSection<'a>>,
}

#[derive(serde::Serialize)]
struct JsonTarget<'a> {
    target: &'a str,
    kind: &'a str,
    accounts: u64,
    counts: Counts<'a>,
    quarantined: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct JsonSection<'a> {
    key: &'a str,
    title: &'a str,
    about: &'a str,
    columns: &'a [String],
    rows: Vec<JsonRow<'a>>,
}

/// Every count column for one target, zero when the target has none.
struct Counts<'a> {
    target: &'a TargetSummary,
    keys: Vec<&'a str>,
}

struct JsonRow<'a> {
    table: &'a Table<'a>,
    row: usize,
}

impl<'a> JsonReport<'a> {
    fn new(report: &'a Report, tables: &'a [Table<'a>]) -> JsonReport<'a> {
        let keys: Vec<&str> = count_columns(report, tables)
            .iter()
            .map(|c| c.key)
            .collect();
        JsonReport {
            title: &report.title,
            generated_at: &report.generated_at,
            period: &report.period,
            store: &report.store,
            targets: report
                .targets
                .iter()
                .map(|t| JsonTarget {
                    target: &t.target,
                    kind: &t.kind,
                    accounts: t.accounts,
                    counts: Counts {
                        target: t,
                        keys: keys.clone(),
                    },
                    quarantined: t.quarantined.as_deref(),
                })
                .collect(),
            sections: tables
                .iter()
                .map(|t| JsonSection {
                    key: &t.section.key,
                    title: &t.section.title,
                    about: &t.section.about,
                    columns: &t.columns,
                    rows: (0..t.rows()).map(|row| JsonRow { table: t, row }).collect(),
                })
                .collect(),
        }
    }
}

impl Serialize for Counts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.keys.len()))?;
        for k in &self.keys {
            m.serialize_entry(k, &count(self.target, k))?;
        }
        m.end()
    }
}

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.table.columns.len()))?;
        for (col, cell) in self.table.columns.iter().zip(self.table.cells(self.row)) {
            m.serialize_entry(col, cell)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests;
