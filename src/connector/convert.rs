//! Column conversions shared by every tabular connector: renames, ignored
//! columns, per-column date formats, multi-value splitting, null markers.
//!
//! A connector learns its source's column names once (a CSV header, a SQL
//! statement's result columns) and compiles them with the `[columns]` specs
//! into a [`ColumnPlan`]. Everything that can be wrong with the configuration
//! (a spec for a column the source does not have, two columns landing on one
//! attribute name, an unknown anchor, a malformed date format) is found there,
//! once, before any row is read. The per-row path ([`RowConverter`]) then
//! works by column position only: no name lookups, no maps, and the date
//! formats already parsed, because it runs for every field of a million-row
//! import.

use crate::model::{Record, RecordBuilder, Schema};
use chrono::format::{Fixed, Item, Numeric, Parsed, StrftimeItems};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fmt::Write as _;

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

/// The compiled mapping from one source's columns to connector-space
/// attributes.
///
/// Built by [`ColumnPlan::new`]; rows are converted with a [`RowConverter`]
/// from [`ColumnPlan::converter`], fed field by field in source column order.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    schema: Schema,
    /// One entry per source column, by position.
    columns: Box<[Column]>,
    /// Source position of the anchor column.
    anchor_column: usize,
}

#[derive(Debug, Clone)]
struct Column {
    /// The name in the source, for row messages.
    name: String,
    /// `None` when the column is ignored (or has no name at all).
    attr: Option<u32>,
    trim: bool,
    null_values: Box<[String]>,
    dates: Box<[DateFormat]>,
    multi: Option<String>,
}

#[derive(Debug, Clone)]
struct DateFormat {
    text: String,
    items: Box<[Item<'static>]>,
    has_time: bool,
}

impl ColumnPlan {
    /// Compiles `source_columns` (in source order) with `specs` (keyed by
    /// source column name) and the anchor attribute (named as in the schema,
    /// i.e. after renames).
    ///
    /// Columns with an empty name carry no attribute: nothing could refer to
    /// them, and they are what a trailing delimiter on a header line makes.
    ///
    /// The error is a message without the source's path; connectors add it.
    pub fn new<S: AsRef<str>>(
        source_columns: &[S],
        specs: &ColumnSpecs,
        anchor: &str,
    ) -> Result<ColumnPlan, String> {
        let names: Vec<&str> = source_columns.iter().map(AsRef::as_ref).collect();

        let unknown: Vec<String> = specs
            .keys()
            .filter(|k| !names.contains(&k.as_str()))
            .map(|k| {
                let mut m = format!("the source has no column {k:?}");
                match suggest(k, names.iter().copied()) {
                    Some(s) => {
                        let _ = write!(m, " (did you mean {s:?}?)");
                    }
                    None => {
                        let _ = write!(m, " (its columns are: {})", list(names.iter().copied()));
                    }
                }
                m
            })
            .collect();
        if !unknown.is_empty() {
            return Err(format!("[columns]: {}", unknown.join("; ")));
        }

        // Compile each distinct spec once, even when a header repeats a name.
        let default = ColumnSpec::default();
        let mut compiled: HashMap<&str, CompiledSpec> = HashMap::new();
        for (name, spec) in specs {
            compiled.insert(name.as_str(), CompiledSpec::new(name, spec)?);
        }
        let plain = CompiledSpec::new("", &default)?;

        let mut schema = Schema::default();
        // attribute name -> source position that claimed it
        let mut claimed: HashMap<String, usize> = HashMap::new();
        let mut columns = Vec::with_capacity(names.len());
        for (pos, &name) in names.iter().enumerate() {
            let spec = specs.get(name).unwrap_or(&default);
            let c = compiled.get(name).unwrap_or(&plain);
            let attr_name = if spec.ignore || name.is_empty() {
                None
            } else {
                Some(spec.rename.as_deref().unwrap_or(name))
            };
            let attr = match attr_name {
                None => None,
                Some(a) => {
                    if let Some(&other) = claimed.get(a) {
                        let first = names.get(other).copied().unwrap_or("?");
                        return Err(clash((first, other), (name, pos), a));
                    }
                    claimed.insert(a.to_string(), pos);
                    Some(schema.add(a.to_string()))
                }
            };
            columns.push(Column {
                name: name.to_string(),
                attr,
                trim: spec.trim,
                null_values: c.null_values.clone(),
                dates: c.dates.clone(),
                multi: c.multi.clone(),
            });
        }

        let Some(anchor_column) = claimed.get(anchor).copied() else {
            return Err(missing_anchor(anchor, &names, specs, &schema));
        };

        Ok(ColumnPlan {
            schema,
            columns: columns.into_boxed_slice(),
            anchor_column,
        })
    }

    /// The connector-space schema: kept columns, renamed, in source order.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// How many fields a source row must have.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Whether the field at source position `column` is used at all; a
    /// connector may skip reading (and decoding) fields that are not.
    pub fn wants(&self, column: usize) -> bool {
        self.columns.get(column).is_some_and(|c| c.attr.is_some())
    }

    /// The source name of the column at `column`, for messages.
    pub fn column_name(&self, column: usize) -> &str {
        self.columns.get(column).map_or("?", |c| c.name.as_str())
    }

    /// The source position of the anchor column.
    pub fn anchor_column(&self) -> usize {
        self.anchor_column
    }

    /// The anchor a row whose anchor field holds `raw` gets, told without
    /// converting the rest of the row; `None` when the field holds no
    /// anchor, or several values, or a date that does not parse (a full
    /// conversion then says what is wrong).
    pub fn anchor_of<'r>(&self, raw: &'r str) -> Option<Cow<'r, str>> {
        let col = self.columns.get(self.anchor_column)?;
        let v = if col.trim { trim(raw) } else { raw };
        if v.is_empty() || col.is_null(v) {
            return None;
        }
        if let Some(sep) = &col.multi
            && v.contains(sep.as_str())
        {
            return None;
        }
        if col.dates.is_empty() {
            Some(Cow::Borrowed(v))
        } else {
            parse_date(&col.dates, v).map(Cow::Owned)
        }
    }

    /// A converter for this plan's rows; keep one for the whole import.
    pub fn converter(&self) -> RowConverter<'_> {
        RowConverter {
            plan: self,
            record: RecordBuilder::default(),
            anchor: None,
            error: None,
        }
    }
}

/// What a row could not be turned into an object for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    /// The row's anchor when it could be read despite the failure.
    pub anchor: Option<String>,
    pub message: String,
}

/// Turns one row at a time into an anchor and a [`Record`].
///
/// Feed the fields of a row with [`RowConverter::field`] (or
/// [`RowConverter::fail`] for a field the connector could not read), in any
/// order but each position at most once, then call [`RowConverter::finish`],
/// which also resets the converter for the next row. Fields the plan does
/// not [want](ColumnPlan::wants) are ignored.
pub struct RowConverter<'p> {
    plan: &'p ColumnPlan,
    record: RecordBuilder,
    anchor: Option<String>,
    /// The first problem in the row; later fields are still read so that the
    /// rejection can name the anchor even when it comes after the bad field.
    error: Option<String>,
}

impl RowConverter<'_> {
    /// Converts the raw text of the field at source position `column`.
    pub fn field(&mut self, column: usize, raw: &str) {
        let plan = self.plan;
        let Some(col) = plan.columns.get(column) else {
            return;
        };
        let Some(attr) = col.attr else {
            return;
        };
        let v = if col.trim { trim(raw) } else { raw };
        if v.is_empty() || col.is_null(v) {
            return;
        }
        match &col.multi {
            None => self.value(column, col, attr, v),
            Some(sep) => {
                for piece in v.split(sep.as_str()) {
                    let p = if col.trim { trim(piece) } else { piece };
                    if !p.is_empty() && !col.is_null(p) {
                        self.value(column, col, attr, p);
                    }
                }
            }
        }
    }

    /// Marks the field at `column` as unreadable; `reason` completes
    /// "column X ...", e.g. "is not valid UTF-8".
    pub fn fail(&mut self, column: usize, reason: &str) {
        if self.plan.wants(column) && self.error.is_none() {
            self.error = Some(format!(
                "column {:?} {reason}",
                self.plan.column_name(column)
            ));
        }
    }

    /// Ends the row: the anchor and record, or why the row is rejected.
    pub fn finish(&mut self) -> Result<(String, Record), RowFailure> {
        let record = std::mem::take(&mut self.record);
        let anchor = self.anchor.take();
        if let Some(message) = self.error.take() {
            return Err(RowFailure { anchor, message });
        }
        match anchor {
            Some(a) => Ok((a, record.build())),
            None => {
                let plan = self.plan;
                let col = plan.column_name(plan.anchor_column);
                let attr = plan
                    .columns
                    .get(plan.anchor_column)
                    .and_then(|c| c.attr)
                    .map_or("?", |a| plan.schema.name(a));
                let message = if col == attr {
                    format!("no anchor: column {col:?} is empty")
                } else {
                    format!("no anchor: column {col:?} (anchor {attr:?}) is empty")
                };
                Err(RowFailure {
                    anchor: None,
                    message,
                })
            }
        }
    }

    fn value(&mut self, column: usize, col: &Column, attr: u32, v: &str) {
        let out = if col.dates.is_empty() {
            v.to_owned()
        } else {
            match parse_date(&col.dates, v) {
                Some(s) => s,
                None => {
                    if self.error.is_none() {
                        self.error = Some(bad_date(col, v));
                    }
                    return;
                }
            }
        };
        if column == self.plan.anchor_column {
            if self.anchor.is_some() {
                if self.error.is_none() {
                    self.error = Some(format!(
                        "column {:?} holds several values, but it is the anchor",
                        col.name
                    ));
                }
            } else {
                self.anchor = Some(out.clone());
            }
        }
        self.record.push_owned(attr, out);
    }
}

impl Column {
    fn is_null(&self, v: &str) -> bool {
        self.null_values.iter().any(|n| n == v)
    }
}

/// The parts of a spec that are the same for every column it applies to.
struct CompiledSpec {
    null_values: Box<[String]>,
    dates: Box<[DateFormat]>,
    multi: Option<String>,
}

impl CompiledSpec {
    fn new(name: &str, spec: &ColumnSpec) -> Result<CompiledSpec, String> {
        if let Some(r) = &spec.rename
            && r.trim().is_empty()
        {
            return Err(format!("[columns.{name:?}]: rename must not be empty"));
        }
        if spec.multi.as_deref() == Some("") {
            return Err(format!(
                "[columns.{name:?}]: the multi separator must not be empty"
            ));
        }
        let mut dates = Vec::with_capacity(spec.date.len());
        for text in &spec.date {
            let items = StrftimeItems::new(text).parse_to_owned().map_err(|_| {
                format!("[columns.{name:?}]: {text:?} is not a valid chrono date format")
            })?;
            if items.is_empty() {
                return Err(format!(
                    "[columns.{name:?}]: a date format must not be empty"
                ));
            }
            let has_time = items.iter().any(is_time_item);
            dates.push(DateFormat {
                text: text.clone(),
                items: items.into_boxed_slice(),
                has_time,
            });
        }
        Ok(CompiledSpec {
            null_values: spec.null_values.clone().into_boxed_slice(),
            dates: dates.into_boxed_slice(),
            multi: spec.multi.clone(),
        })
    }
}

fn is_time_item(item: &Item<'_>) -> bool {
    match item {
        Item::Numeric(n, _) => matches!(
            n,
            Numeric::Hour
                | Numeric::Hour12
                | Numeric::Minute
                | Numeric::Second
                | Numeric::Nanosecond
                | Numeric::Timestamp
        ),
        Item::Fixed(f) => matches!(
            f,
            Fixed::RFC2822
                | Fixed::RFC3339
                | Fixed::Nanosecond
                | Fixed::Nanosecond3
                | Fixed::Nanosecond6
                | Fixed::Nanosecond9
                | Fixed::LowerAmPm
                | Fixed::UpperAmPm
        ),
        _ => false,
    }
}

/// The value as ISO 8601 under the first format it matches.
///
/// A value with a UTC offset (`%z`) is stored in UTC so that values from one
/// column compare as text. Fractions of seconds are dropped: the stored
/// shape is fixed to `YYYY-MM-DDTHH:MM:SS`.
fn parse_date(formats: &[DateFormat], v: &str) -> Option<String> {
    for f in formats {
        let mut parsed = Parsed::new();
        if chrono::format::parse(&mut parsed, v, f.items.iter()).is_err() {
            continue;
        }
        if f.has_time {
            let dt = if parsed.offset().is_some() {
                parsed.to_datetime().ok().map(|d| d.naive_utc())
            } else {
                parsed.to_naive_datetime_with_offset(0).ok()
            };
            if let Some(dt) = dt {
                return Some(iso_datetime(dt));
            }
        } else if let Ok(d) = parsed.to_naive_date() {
            let mut s = String::with_capacity(10);
            push_iso_date(&mut s, d);
            return Some(s);
        }
    }
    None
}

/// `str::trim`, minus its per-character Unicode decoding for the usual
/// field that starts and ends with a visible ASCII character.
fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|b| (0x21..0x7F).contains(b));
    let bytes = s.as_bytes();
    if visible(bytes.first()) && visible(bytes.last()) {
        s
    } else {
        s.trim()
    }
}

/// Pushes `n` as exactly `width` decimal digits (`n` must fit).
fn push_digits(out: &mut String, n: u32, width: u32) {
    for k in (0..width).rev() {
        let digit = (n / 10u32.pow(k)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

fn push_iso_date(out: &mut String, d: NaiveDate) {
    // Dates are formatted for every value of a date column: by hand, since
    // the formatting machinery costs more than the parse.
    if let Ok(y @ 0..=9999) = u32::try_from(d.year()) {
        push_digits(out, y, 4);
        out.push('-');
        push_digits(out, d.month(), 2);
        out.push('-');
        push_digits(out, d.day(), 2);
    } else {
        // chrono's own rendering marks out-of-range years with a sign.
        let _ = write!(out, "{}", d.format("%Y-%m-%d"));
    }
}

fn iso_datetime(dt: NaiveDateTime) -> String {
    let mut s = String::with_capacity(19);
    push_iso_date(&mut s, dt.date());
    s.push('T');
    push_digits(&mut s, dt.hour(), 2);
    s.push(':');
    push_digits(&mut s, dt.minute(), 2);
    s.push(':');
    // a leap second parses as second 59 plus a second of nanoseconds
    push_digits(&mut s, dt.second().min(59), 2);
    s
}

fn bad_date(col: &Column, v: &str) -> String {
    let formats: Vec<&str> = col.dates.iter().map(|f| f.text.as_str()).collect();
    if let [one] = formats.as_slice() {
        format!(
            "column {:?}: {} is not a date in the format {one}",
            col.name,
            shown(v)
        )
    } else {
        format!(
            "column {:?}: {} is not a date in any of the formats {}",
            col.name,
            shown(v),
            formats.join(", ")
        )
    }
}

/// A value quoted for a message, cut short so that a runaway field (a
/// missing closing quote swallowing half a file) does not flood the log.
fn shown(v: &str) -> String {
    const MAX: usize = 60;
    match v.char_indices().nth(MAX) {
        None => format!("{v:?}"),
        Some((cut, _)) => format!("{:?}...", &v[..cut]),
    }
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, n) in names.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{n:?}");
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

/// The candidate `name` was most likely meant to be, if any is close.
pub(super) fn suggest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        if c.is_empty() {
            continue;
        }
        let score = if c.to_lowercase() == lower {
            2.0
        } else {
            strsim::jaro_winkler(&lower, &c.to_lowercase())
        };
        if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Two source columns `(name, position)` that map to the same attribute.
fn clash((a, first): (&str, usize), (b, second): (&str, usize), attr: &str) -> String {
    if a == b {
        format!(
            "the source has two columns named {a:?} (columns {} and {}); \
             rename one in the source or ignore it",
            first + 1,
            second + 1
        )
    } else {
        format!("columns {a:?} and {b:?} would both become attribute {attr:?}; rename one of them")
    }
}

fn missing_anchor(anchor: &str, names: &[&str], specs: &ColumnSpecs, schema: &Schema) -> String {
    if names.contains(&anchor)
        && let Some(spec) = specs.get(anchor)
    {
        if spec.ignore {
            return format!("the anchor column {anchor:?} is ignored by [columns.{anchor:?}]");
        }
        if let Some(r) = &spec.rename {
            return format!(
                "the anchor column {anchor:?} is renamed to {r:?} by [columns.{anchor:?}]; \
                 name the anchor {r:?}"
            );
        }
    }
    let mut m = format!("the anchor {anchor:?} is not a column of the source");
    match suggest(anchor, schema.names().iter().map(String::as_str)) {
        Some(s) => {
            let _ = write!(m, " (did you mean {s:?}?)");
        }
        None => {
            let _ = write!(
                m,
                " (its attributes are: {})",
                list(schema.names().iter().map(String::as_str))
            );
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(f: impl FnOnce(&mut ColumnSpec)) -> ColumnSpec {
        let mut s = ColumnSpec::default();
        f(&mut s);
        s
    }

    fn specs(items: Vec<(&str, ColumnSpec)>) -> ColumnSpecs {
        items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn row(plan: &ColumnPlan, fields: &[&str]) -> Result<(String, Record), RowFailure> {
        let mut c = plan.converter();
        for (i, f) in fields.iter().enumerate() {
            c.field(i, f);
        }
        c.finish()
    }

    fn values<'r>(plan: &ColumnPlan, r: &'r Record, attr: &str) -> Vec<&'r str> {
        match plan.schema().get(attr) {
            Some(a) => r.values(a).collect(),
            None => Vec::new(),
        }
    }

    #[test]
    fn schema_renames_and_drops_in_source_order() {
        let s = specs(vec![
            ("EmpNo", spec(|s| s.rename = Some("id".into()))),
            ("Secret", spec(|s| s.ignore = true)),
        ]);
        let plan = ColumnPlan::new(&["Name", "EmpNo", "Secret", "Mail", ""], &s, "id").unwrap();
        assert_eq!(plan.schema().names(), ["Name", "id", "Mail"]);
        assert_eq!(plan.width(), 5);
        assert!(!plan.wants(2) && !plan.wants(4) && plan.wants(1));
        let (anchor, r) = row(&plan, &["  Ann ", "7", "pw", "", "junk"]).unwrap();
        assert_eq!(anchor, "7");
        assert_eq!(values(&plan, &r, "Name"), ["Ann"]);
        assert_eq!(
            values(&plan, &r, "Mail"),
            Vec::<&str>::new(),
            "empty is null"
        );
        assert_eq!(
            r.iter().count(),
            2,
            "ignored and unnamed columns carry nothing"
        );
    }

    #[test]
    fn unknown_spec_column_suggests_the_close_one() {
        let s = specs(vec![("Brithday", ColumnSpec::default())]);
        let err = ColumnPlan::new(&["id", "Birthday"], &s, "id").unwrap_err();
        assert!(err.contains("\"Brithday\""), "{err}");
        assert!(err.contains("did you mean \"Birthday\""), "{err}");

        let s = specs(vec![("zzz", ColumnSpec::default())]);
        let err = ColumnPlan::new(&["id", "Birthday"], &s, "id").unwrap_err();
        assert!(
            err.contains("its columns are: \"id\", \"Birthday\""),
            "{err}"
        );
    }

    #[test]
    fn clashing_names_are_plan_errors() {
        let s = specs(vec![
            ("a", spec(|s| s.rename = Some("x".into()))),
            ("b", spec(|s| s.rename = Some("x".into()))),
        ]);
        let err = ColumnPlan::new(&["id", "a", "b"], &s, "id").unwrap_err();
        assert!(
            err.contains("\"a\" and \"b\" would both become attribute \"x\""),
            "{err}"
        );

        let s = specs(vec![("a", spec(|s| s.rename = Some("b".into())))]);
        assert!(ColumnPlan::new(&["id", "a", "b"], &s, "id").is_err());

        let err = ColumnPlan::new(&["id", "mail", "mail"], &ColumnSpecs::new(), "id").unwrap_err();
        assert!(
            err.contains("two columns named \"mail\" (columns 2 and 3)"),
            "{err}"
        );

        // Ignoring the repeated name makes the header usable.
        let s = specs(vec![("mail", spec(|s| s.ignore = true))]);
        let plan = ColumnPlan::new(&["id", "mail", "mail"], &s, "id").unwrap();
        assert_eq!(plan.schema().names(), ["id"]);
    }

    #[test]
    fn anchor_errors_explain_renames_and_ignores() {
        let s = specs(vec![("EmpNo", spec(|s| s.rename = Some("id".into())))]);
        let err = ColumnPlan::new(&["EmpNo"], &s, "EmpNo").unwrap_err();
        assert!(err.contains("name the anchor \"id\""), "{err}");

        let s = specs(vec![("EmpNo", spec(|s| s.ignore = true))]);
        let err = ColumnPlan::new(&["EmpNo", "x"], &s, "EmpNo").unwrap_err();
        assert!(err.contains("is ignored"), "{err}");

        let err = ColumnPlan::new(&["EmpNo"], &ColumnSpecs::new(), "empno").unwrap_err();
        assert!(err.contains("did you mean \"EmpNo\""), "{err}");
    }

    #[test]
    fn bad_specs_are_plan_errors() {
        let s = specs(vec![("d", spec(|s| s.date = vec!["%Q".into()]))]);
        let err = ColumnPlan::new(&["id", "d"], &s, "id").unwrap_err();
        assert!(
            err.contains("\"%Q\" is not a valid chrono date format"),
            "{err}"
        );
        let s = specs(vec![("d", spec(|s| s.multi = Some(String::new())))]);
        assert!(ColumnPlan::new(&["id", "d"], &s, "id").is_err());
        let s = specs(vec![("d", spec(|s| s.rename = Some(" ".into())))]);
        assert!(ColumnPlan::new(&["id", "d"], &s, "id").is_err());
    }

    #[test]
    fn dates_convert_to_iso_or_name_the_formats() {
        let s = specs(vec![
            (
                "born",
                spec(|s| {
                    s.date = vec!["%d.%m.%Y".into(), "%Y%m%d".into()];
                    s.null_values = vec!["31.12.9999".into()];
                }),
            ),
            ("at", spec(|s| s.date = vec!["%d.%m.%Y %H:%M".into()])),
            (
                "utc",
                spec(|s| s.date = vec!["%Y-%m-%d %H:%M:%S %z".into()]),
            ),
        ]);
        let plan = ColumnPlan::new(&["id", "born", "at", "utc"], &s, "id").unwrap();

        let (_, r) = row(
            &plan,
            &[
                "1",
                "1.3.2024",
                "01.03.2024 08:05",
                "2024-03-01 08:00:00 +0200",
            ],
        )
        .unwrap();
        assert_eq!(values(&plan, &r, "born"), ["2024-03-01"]);
        assert_eq!(values(&plan, &r, "at"), ["2024-03-01T08:05:00"]);
        assert_eq!(values(&plan, &r, "utc"), ["2024-03-01T06:00:00"]);

        let (_, r) = row(&plan, &["2", "20240229", "", ""]).unwrap();
        assert_eq!(values(&plan, &r, "born"), ["2024-02-29"], "second format");

        let (_, r) = row(&plan, &["3", " 31.12.9999 ", "", ""]).unwrap();
        assert!(
            values(&plan, &r, "born").is_empty(),
            "null marker after trim"
        );

        let err = row(&plan, &["4", "30.02.2024", "", ""]).unwrap_err();
        assert_eq!(err.anchor.as_deref(), Some("4"));
        assert_eq!(
            err.message,
            "column \"born\": \"30.02.2024\" is not a date in any of the formats %d.%m.%Y, %Y%m%d"
        );
        let err = row(&plan, &["5", "", "yesterday", ""]).unwrap_err();
        assert_eq!(
            err.message,
            "column \"at\": \"yesterday\" is not a date in the format %d.%m.%Y %H:%M"
        );
    }

    #[test]
    fn anchor_of_agrees_with_a_full_conversion() {
        let s = specs(vec![
            ("d", spec(|s| s.date = vec!["%d.%m.%Y".into()])),
            ("m", spec(|s| s.multi = Some(";".into()))),
            (
                "n",
                spec(|s| {
                    s.null_values = vec!["-".into()];
                    s.trim = false;
                }),
            ),
        ]);
        for (anchor, values) in [
            ("id", vec![" A1 ", "", "  ", "x"]),
            ("d", vec!["01.02.2003", " 1.2.2003", "2003-02-01", ""]),
            ("m", vec!["a", " a ", "a;b", ";a"]),
            ("n", vec![" a ", "-", "a"]),
        ] {
            let plan = ColumnPlan::new(&["id", "d", "m", "n"], &s, anchor).unwrap();
            for v in values {
                let mut fields = ["id1", "01.01.2000", "x", "y"];
                fields[plan.anchor_column()] = v;
                let full = row(&plan, &fields).ok().map(|(a, _)| a);
                let quick = plan.anchor_of(v).map(Cow::into_owned);
                assert!(
                    quick.is_none() || quick == full,
                    "{anchor} {v:?}: {quick:?} vs {full:?}"
                );
                if !(anchor == "m" && v.contains(';')) {
                    assert_eq!(quick, full, "{anchor} {v:?}");
                }
            }
        }
    }

    #[test]
    fn trim_fast_path_agrees_with_str_trim() {
        for v in [
            "",
            "a",
            " a",
            "a ",
            "\ta\n",
            "\u{a0}x\u{a0}",
            "ü",
            "x\u{2003}",
            "~",
            "\u{7f}",
        ] {
            assert_eq!(trim(v), v.trim(), "{v:?}");
        }
    }

    #[test]
    fn years_outside_four_digits_keep_a_sign() {
        let s = specs(vec![("d", spec(|s| s.date = vec!["%Y-%m-%d".into()]))]);
        let plan = ColumnPlan::new(&["id", "d"], &s, "id").unwrap();
        let (_, r) = row(&plan, &["1", "0033-01-02"]).unwrap();
        assert_eq!(values(&plan, &r, "d"), ["0033-01-02"]);
        let (_, r) = row(&plan, &["1", "+12345-01-02"]).unwrap();
        assert_eq!(values(&plan, &r, "d"), ["+12345-01-02"]);
    }

    #[test]
    fn anchor_found_after_a_bad_field() {
        let s = specs(vec![("d", spec(|s| s.date = vec!["%Y".into()]))]);
        let plan = ColumnPlan::new(&["d", "id"], &s, "id").unwrap();
        let err = row(&plan, &["x", "A1"]).unwrap_err();
        assert_eq!(err.anchor.as_deref(), Some("A1"));
        // the converter is reset: the next row is clean
        let mut c = plan.converter();
        c.field(0, "x");
        c.field(1, "A1");
        assert!(c.finish().is_err());
        c.field(1, "A2");
        assert_eq!(c.finish().unwrap().0, "A2");
    }

    #[test]
    fn multi_splits_trims_and_drops_empties() {
        let s = specs(vec![(
            "groups",
            spec(|s| {
                s.multi = Some(";".into());
                s.null_values = vec!["none".into()];
            }),
        )]);
        let plan = ColumnPlan::new(&["id", "groups"], &s, "id").unwrap();
        let (_, r) = row(&plan, &["1", " b ; a;;none; c ;"]).unwrap();
        assert_eq!(
            values(&plan, &r, "groups"),
            ["b", "a", "c"],
            "source order kept"
        );
        let (_, r) = row(&plan, &["2", " ; "]).unwrap();
        assert!(values(&plan, &r, "groups").is_empty());
    }

    #[test]
    fn trim_off_keeps_whitespace() {
        let s = specs(vec![("code", spec(|s| s.trim = false))]);
        let plan = ColumnPlan::new(&["id", "code"], &s, "id").unwrap();
        let (a, r) = row(&plan, &[" 1 ", " x "]).unwrap();
        assert_eq!(a, "1");
        assert_eq!(values(&plan, &r, "code"), [" x "]);
    }

    #[test]
    fn missing_or_multiple_anchor_is_a_row_error() {
        let s = specs(vec![
            ("EmpNo", spec(|s| s.rename = Some("id".into()))),
            ("tags", spec(|s| s.multi = Some(",".into()))),
        ]);
        let plan = ColumnPlan::new(&["EmpNo", "tags"], &s, "id").unwrap();
        let err = row(&plan, &["  ", "a"]).unwrap_err();
        assert_eq!(err.anchor, None);
        assert_eq!(
            err.message,
            "no anchor: column \"EmpNo\" (anchor \"id\") is empty"
        );

        let s = specs(vec![("id", spec(|s| s.multi = Some(",".into())))]);
        let plan = ColumnPlan::new(&["id"], &s, "id").unwrap();
        let err = row(&plan, &["a,b"]).unwrap_err();
        assert!(err.message.contains("several values"), "{}", err.message);
    }

    #[test]
    fn fail_names_the_column_and_skips_unwanted() {
        let s = specs(vec![("skip", spec(|s| s.ignore = true))]);
        let plan = ColumnPlan::new(&["id", "name", "skip"], &s, "id").unwrap();
        let mut c = plan.converter();
        c.field(0, "1");
        c.fail(2, "is not valid UTF-8");
        assert!(c.finish().is_ok(), "an ignored column cannot spoil a row");
        c.field(0, "1");
        c.fail(1, "is not valid UTF-8");
        c.field(7, "out of range is ignored");
        let err = c.finish().unwrap_err();
        assert_eq!(err.message, "column \"name\" is not valid UTF-8");
        assert_eq!(err.anchor.as_deref(), Some("1"));
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let s = specs(vec![("d", spec(|s| s.date = vec!["%Y".into()]))]);
        let plan = ColumnPlan::new(&["id", "d"], &s, "id").unwrap();
        let long = "ä".repeat(500);
        let err = row(&plan, &["1", &long]).unwrap_err();
        assert!(err.message.len() < 300, "{}", err.message);
        assert!(err.message.contains("..."));
    }
}

/// Checks every tabular connector must pass the same way, run by each
/// connector's tests with its own way of storing a table.
#[cfg(test)]
pub(crate) mod conformance {
    use super::{ColumnSpec, ColumnSpecs};
    use crate::connector::{Collect, Connector, ConnectorError};
    use crate::model::Schema;
    use std::path::Path;

    /// A source table in logical form; `None` is "no value" (an empty CSV
    /// field, a SQL NULL).
    pub(crate) struct Table {
        pub columns: Vec<&'static str>,
        pub rows: Vec<Vec<Option<&'static str>>>,
    }

    /// One kind of tabular source, as the tests store it.
    pub(crate) trait Kind {
        /// Stores `table` in this kind's form under `dir` (a fresh directory)
        /// and returns a connector configured to read it.
        fn make(
            &self,
            dir: &Path,
            table: &Table,
            anchor: &str,
            columns: ColumnSpecs,
        ) -> Box<dyn Connector>;

        /// The `line` reported for data row `row` (0-based) of a table with
        /// no multi-line fields.
        fn line(&self, row: usize) -> u64;
    }

    pub(crate) fn people() -> Table {
        Table {
            columns: vec![
                "EmpNo", "First", "Last", "Born", "Groups", "Secret", "Leaves",
            ],
            rows: vec![
                vec![
                    Some("1001"),
                    Some("Ann"),
                    Some("Müller"),
                    Some("01.03.1980"),
                    Some("staff; it ;;"),
                    Some("pw1"),
                    Some("31.12.9999"),
                ],
                vec![
                    Some("  1002 "),
                    Some(" Bo "),
                    Some("Öztürk, Jr."),
                    Some("1975-12-24"),
                    None,
                    None,
                    Some("30.06.2025"),
                ],
                vec![None, Some("Nobody"), None, None, None, None, None],
                vec![
                    Some("1004"),
                    Some("Cy"),
                    Some("Say \"hi\""),
                    Some("32.01.1990"),
                    None,
                    None,
                    None,
                ],
                vec![
                    Some("1005"),
                    Some("Di"),
                    Some(""),
                    Some(""),
                    Some("sales"),
                    Some("x"),
                    Some(""),
                ],
            ],
        }
    }

    pub(crate) fn people_specs() -> ColumnSpecs {
        let mut s = ColumnSpecs::new();
        s.insert(
            "EmpNo".into(),
            ColumnSpec {
                rename: Some("id".into()),
                ..ColumnSpec::default()
            },
        );
        s.insert(
            "Born".into(),
            ColumnSpec {
                date: vec!["%d.%m.%Y".into(), "%Y-%m-%d".into()],
                ..ColumnSpec::default()
            },
        );
        s.insert(
            "Groups".into(),
            ColumnSpec {
                multi: Some(";".into()),
                ..ColumnSpec::default()
            },
        );
        s.insert(
            "Secret".into(),
            ColumnSpec {
                ignore: true,
                ..ColumnSpec::default()
            },
        );
        s.insert(
            "Leaves".into(),
            ColumnSpec {
                date: vec!["%d.%m.%Y".into()],
                null_values: vec!["31.12.9999".into()],
                ..ColumnSpec::default()
            },
        );
        s
    }

    /// Imports `people()` through `kind`: the schema and what reached the sink.
    pub(crate) fn import_people(kind: &dyn Kind) -> (Schema, Collect) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = kind.make(dir.path(), &people(), "id", people_specs());
        let schema = c.schema().expect("schema");
        let mut sink = Collect::default();
        c.full_import(&mut sink).expect("import");
        (schema, sink)
    }

    /// An object as `(anchor, line, [(attribute, values)])`.
    pub(crate) type Flat = (String, u64, Vec<(String, Vec<String>)>);

    /// Every object as `(anchor, line, attribute -> values)`, comparable
    /// across kinds.
    pub(crate) fn flatten(schema: &Schema, sink: &Collect) -> Vec<Flat> {
        sink.objects
            .iter()
            .map(|o| {
                let attrs = o
                    .attrs
                    .attrs()
                    .map(|a| {
                        (
                            schema.name(a).to_string(),
                            o.attrs.values(a).map(str::to_string).collect(),
                        )
                    })
                    .collect();
                (o.anchor.clone(), o.line, attrs)
            })
            .collect()
    }

    fn source_error(r: Result<impl Sized, ConnectorError>) -> String {
        match r {
            Err(ConnectorError::Source { message, .. }) => message,
            Err(e) => panic!("expected a source error, got {e}"),
            Ok(_) => panic!("expected a source error, got success"),
        }
    }

    pub(crate) fn conformance(kind: &dyn Kind) {
        let (schema, sink) = import_people(kind);
        assert_eq!(
            schema.names(),
            ["id", "First", "Last", "Born", "Groups", "Leaves"]
        );

        let got = flatten(&schema, &sink);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let expected = vec![
            (
                "1001".to_string(),
                kind.line(0),
                vec![
                    ("id".to_string(), s(&["1001"])),
                    ("First".to_string(), s(&["Ann"])),
                    ("Last".to_string(), s(&["Müller"])),
                    ("Born".to_string(), s(&["1980-03-01"])),
                    ("Groups".to_string(), s(&["staff", "it"])),
                ],
            ),
            (
                "1002".to_string(),
                kind.line(1),
                vec![
                    ("id".to_string(), s(&["1002"])),
                    ("First".to_string(), s(&["Bo"])),
                    ("Last".to_string(), s(&["Öztürk, Jr."])),
                    ("Born".to_string(), s(&["1975-12-24"])),
                    ("Leaves".to_string(), s(&["2025-06-30"])),
                ],
            ),
            (
                "1005".to_string(),
                kind.line(4),
                vec![
                    ("id".to_string(), s(&["1005"])),
                    ("First".to_string(), s(&["Di"])),
                    ("Groups".to_string(), s(&["sales"])),
                ],
            ),
        ];
        assert_eq!(got, expected);

        assert_eq!(sink.rejected.len(), 2, "{:?}", sink.rejected);
        let missing = &sink.rejected[0];
        assert_eq!(missing.line, kind.line(2));
        assert_eq!(missing.anchor, None);
        assert_eq!(
            missing.message,
            "no anchor: column \"EmpNo\" (anchor \"id\") is empty"
        );
        let bad = &sink.rejected[1];
        assert_eq!(bad.line, kind.line(3));
        assert_eq!(bad.anchor.as_deref(), Some("1004"));
        assert_eq!(
            bad.message,
            "column \"Born\": \"32.01.1990\" is not a date in any of the formats %d.%m.%Y, %Y-%m-%d"
        );

        // Configuration errors stop the import before anything is reported.
        let dir = tempfile::tempdir().expect("temp dir");
        let mut specs = people_specs();
        specs.insert("Brn".into(), ColumnSpec::default());
        let mut c = kind.make(dir.path(), &people(), "id", specs);
        let msg = source_error(c.schema());
        assert!(msg.contains("did you mean \"Born\""), "{msg}");
        let mut sink = Collect::default();
        let msg = source_error(c.full_import(&mut sink));
        assert!(msg.contains("no column \"Brn\""), "{msg}");
        assert!(sink.objects.is_empty() && sink.rejected.is_empty());

        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = kind.make(dir.path(), &people(), "EmpNo", people_specs());
        let msg = source_error(c.full_import(&mut Collect::default()));
        assert!(msg.contains("name the anchor \"id\""), "{msg}");

        let dir = tempfile::tempdir().expect("temp dir");
        let mut specs = people_specs();
        specs.insert(
            "First".into(),
            ColumnSpec {
                rename: Some("Last".into()),
                ..ColumnSpec::default()
            },
        );
        let c = kind.make(dir.path(), &people(), "id", specs);
        let msg = source_error(c.schema());
        assert!(
            msg.contains("would both become attribute \"Last\""),
            "{msg}"
        );
    }
}
