//! Entra-style scoping filters: which objects a sync rule applies to. A
//! filter is a list of groups; the clauses of a group are ANDed, the groups
//! ORed, and no groups at all means every object is in scope. Clauses arrive
//! from the rule file as [`RawClause`]s that keep their TOML spans, so every
//! compile error points at the exact key in the file; compiling resolves the
//! attribute, the operator and its value (regexes, numbers, dates) once.
//!
//! Comparisons are case-sensitive, as in Entra; a clause on a multi-valued
//! attribute holds when any value satisfies it, and a negative operator
//! (`not-equals`, `not-regex-match`, `not-includes`) is the negation of its
//! positive form, so it holds when no value matches (and for null).

use super::value::{parse_bool, parse_date, parse_number};
use super::{Context, Input, Scope, suggest};
use chrono::{Duration, Months, NaiveDateTime, NaiveTime};
use regex::Regex;
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// One clause as written in a rule file:
/// `{ attribute = "STAT2", operator = "equals", value = "3" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClause {
    pub attribute: Spanned<String>,
    pub operator: Spanned<String>,
    /// A string, number, boolean, date, or array of those.
    #[serde(default)]
    pub value: Option<Spanned<toml::Value>>,
}

/// A filter problem; `span` is the byte range in the rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeError {
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScopeError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    IsNull,
    IsNotNull,
    IsTrue,
    IsFalse,
    RegexMatch,
    NotRegexMatch,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    Includes,
    NotIncludes,
    StartsWith,
    EndsWith,
    DateBefore,
    DateAfter,
}

const OPERATORS: &[(&str, Op)] = &[
    ("equals", Op::Equals),
    ("not-equals", Op::NotEquals),
    ("is-null", Op::IsNull),
    ("is-not-null", Op::IsNotNull),
    ("is-true", Op::IsTrue),
    ("is-false", Op::IsFalse),
    ("regex-match", Op::RegexMatch),
    ("not-regex-match", Op::NotRegexMatch),
    ("greater-than", Op::GreaterThan),
    ("greater-than-or-equal", Op::GreaterThanOrEqual),
    ("greater-than-or-equals", Op::GreaterThanOrEqual),
    ("less-than", Op::LessThan),
    ("less-than-or-equal", Op::LessThanOrEqual),
    ("less-than-or-equals", Op::LessThanOrEqual),
    ("includes", Op::Includes),
    ("not-includes", Op::NotIncludes),
    ("starts-with", Op::StartsWith),
    ("ends-with", Op::EndsWith),
    ("date-before", Op::DateBefore),
    ("date-after", Op::DateAfter),
];

/// `EQUALS`, `NOT EQUALS`, `Greater_Than_OR_EQUALS` and `not-equals` all
/// name the same operators: case, spaces and underscores do not matter.
fn normalize_op(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for part in name.split([' ', '_', '-']).filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&part.to_ascii_lowercase());
    }
    out
}

/// A reference date: fixed, or relative to the run's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DateRef {
    Fixed(NaiveDateTime),
    Now {
        midnight: bool,
        months: i64,
        seconds: i64,
    },
}

impl DateRef {
    /// `2024-03-01`, `2024-03-01T08:00:00`, `now`, `today`, or either of
    /// those with an offset: `now-30d`, `today+2w`, `now-6m`, `now-1y`,
    /// `now+12h` (units: h hours, d days, w weeks, m months, y years).
    fn parse(s: &str) -> Option<DateRef> {
        if let Some(d) = parse_date(s) {
            return Some(DateRef::Fixed(d));
        }
        let t = s.trim().to_ascii_lowercase();
        let (midnight, rest) = if let Some(r) = t.strip_prefix("now") {
            (false, r)
        } else {
            (true, t.strip_prefix("today")?)
        };
        let rest = rest.trim();
        if rest.is_empty() {
            return Some(DateRef::Now {
                midnight,
                months: 0,
                seconds: 0,
            });
        }
        let (sign, rest) = match rest.as_bytes()[0] {
            b'+' => (1, &rest[1..]),
            b'-' => (-1, &rest[1..]),
            _ => return None,
        };
        let rest = rest.trim();
        let split = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: i64 = rest[..split].parse().ok()?;
        if n > 100_000 {
            return None;
        }
        let n = sign * n;
        let (months, seconds) = match &rest[split..] {
            "h" => (0, n * 3_600),
            "d" => (0, n * 86_400),
            "w" => (0, n * 7 * 86_400),
            "m" => (n, 0),
            "y" => (n * 12, 0),
            _ => return None,
        };
        Some(DateRef::Now {
            midnight,
            months,
            seconds,
        })
    }

    fn resolve(self, ctx: &Context) -> Option<NaiveDateTime> {
        match self {
            DateRef::Fixed(d) => Some(d),
            DateRef::Now {
                midnight,
                months,
                seconds,
            } => {
                let mut d = ctx.now.naive_utc();
                if midnight {
                    d = d.date().and_time(NaiveTime::MIN);
                }
                let m = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
                d = if months < 0 {
                    d.checked_sub_months(m)?
                } else {
                    d.checked_add_months(m)?
                };
                d.checked_add_signed(Duration::try_seconds(seconds)?)
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Arg {
    None,
    Text(String),
    Num(f64),
    List(Vec<String>),
    Regex(Regex),
    Date(DateRef),
}

#[derive(Debug, Clone)]
struct Clause {
    attr: u32,
    op: Op,
    arg: Arg,
}

/// A compiled scoping filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    groups: Vec<Vec<Clause>>,
}

/// A TOML scalar as the text a clause compares with.
fn scalar_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

fn op_help() -> String {
    let names: Vec<&str> = OPERATORS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !n.ends_with("-or-equals"))
        .collect();
    format!("operators: {}", names.join(", "))
}

impl Filter {
    /// Compiles groups of clauses (clauses ANDed within a group, groups
    /// ORed). Reports every problem found, each with its span in the file.
    pub fn compile(
        groups: &[Vec<RawClause>],
        scope: &dyn Scope,
    ) -> Result<Filter, Vec<ScopeError>> {
        let mut errors = Vec::new();
        let mut names: Option<Vec<String>> = None;
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let mut clauses = Vec::with_capacity(group.len());
            for raw in group {
                if let Some(c) = compile_clause(raw, scope, &mut names, &mut errors) {
                    clauses.push(c);
                }
            }
            out.push(clauses);
        }
        if errors.is_empty() {
            Ok(Filter { groups: out })
        } else {
            Err(errors)
        }
    }

    /// Whether the object is in scope. An empty filter admits everything,
    /// and so does an empty group (the AND of no clauses).
    pub fn eval(&self, input: &dyn Input, ctx: &Context) -> bool {
        self.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|g| g.iter().all(|c| c.eval(input, ctx)))
    }

    /// No groups: everything is in scope.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Attributes the filter reads, sorted, without duplicates.
    pub fn attrs(&self) -> Vec<u32> {
        let mut a: Vec<u32> = self.groups.iter().flatten().map(|c| c.attr).collect();
        a.sort_unstable();
        a.dedup();
        a
    }
}

fn compile_clause(
    raw: &RawClause,
    scope: &dyn Scope,
    names: &mut Option<Vec<String>>,
    errors: &mut Vec<ScopeError>,
) -> Option<Clause> {
    let attr_name = raw.attribute.get_ref().trim();
    let attr_name = attr_name
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(attr_name)
        .trim();
    let attr = scope.resolve(attr_name);
    if attr.is_none() {
        let names = names.get_or_insert_with(|| scope.names());
        errors.push(ScopeError {
            span: raw.attribute.span(),
            message: format!("unknown attribute \"{attr_name}\""),
            help: suggest(attr_name, names.iter().map(String::as_str))
                .map(|s| format!("did you mean \"{s}\"?")),
        });
    }
    let op_name = raw.operator.get_ref();
    let normalized = normalize_op(op_name);
    let Some(&(_, op)) = OPERATORS.iter().find(|(n, _)| *n == normalized) else {
        let help = suggest(&normalized, OPERATORS.iter().map(|(n, _)| *n))
            .map(|s| format!("did you mean \"{s}\"?"))
            .unwrap_or_else(op_help);
        errors.push(ScopeError {
            span: raw.operator.span(),
            message: format!("unknown operator \"{op_name}\""),
            help: Some(help),
        });
        return None;
    };
    let arg = compile_arg(raw, op, errors)?;
    Some(Clause {
        attr: attr?,
        op,
        arg,
    })
}

fn compile_arg(raw: &RawClause, op: Op, errors: &mut Vec<ScopeError>) -> Option<Arg> {
    let op_name = normalize_op(raw.operator.get_ref());
    let takes_none = matches!(op, Op::IsNull | Op::IsNotNull | Op::IsTrue | Op::IsFalse);
    let Some(value) = &raw.value else {
        if takes_none {
            return Some(Arg::None);
        }
        errors.push(ScopeError {
            span: raw.operator.span(),
            message: format!("operator \"{op_name}\" needs a value"),
            help: Some("add `value = ...` to the clause".into()),
        });
        return None;
    };
    let span = value.span();
    let v = value.get_ref();
    let mut fail = |message: String, help: Option<&str>| {
        errors.push(ScopeError {
            span: span.clone(),
            message,
            help: help.map(str::to_string),
        });
        None
    };
    if takes_none {
        return fail(
            format!("operator \"{op_name}\" takes no value"),
            Some("remove `value` from the clause"),
        );
    }
    match op {
        Op::Includes | Op::NotIncludes => match v {
            toml::Value::Array(items) => {
                let texts: Option<Vec<String>> = items.iter().map(scalar_text).collect();
                match texts {
                    Some(t) => Some(Arg::List(t)),
                    None => fail(
                        format!("operator \"{op_name}\" needs a list of single values"),
                        None,
                    ),
                }
            }
            other => match scalar_text(other) {
                Some(t) => Some(Arg::Text(t)),
                None => fail(
                    format!("operator \"{op_name}\" needs a string or a list"),
                    None,
                ),
            },
        },
        _ if matches!(v, toml::Value::Array(_) | toml::Value::Table(_)) => fail(
            format!("operator \"{op_name}\" needs a single value"),
            Some("use \"includes\" to test against a list"),
        ),
        Op::RegexMatch | Op::NotRegexMatch => {
            let pattern = scalar_text(v).unwrap_or_default();
            match Regex::new(&pattern) {
                Ok(r) => Some(Arg::Regex(r)),
                Err(e) => fail(
                    format!(
                        "invalid regular expression: {}",
                        super::functions::regex_message(&e)
                    ),
                    Some("patterns use Rust regex syntax (no look-around or backreferences)"),
                ),
            }
        }
        Op::GreaterThan | Op::GreaterThanOrEqual | Op::LessThan | Op::LessThanOrEqual => {
            let n = match v {
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::Float(f) => Some(*f),
                toml::Value::String(s) => parse_number(s.trim()),
                _ => None,
            };
            match n {
                Some(n) => Some(Arg::Num(n)),
                None => fail(
                    format!("operator \"{op_name}\" needs a number"),
                    Some("use date-before/date-after to compare dates"),
                ),
            }
        }
        Op::DateBefore | Op::DateAfter => {
            match scalar_text(v).as_deref().and_then(DateRef::parse) {
                Some(d) => Some(Arg::Date(d)),
                None => fail(
                    format!("operator \"{op_name}\" needs a date"),
                    Some(
                        "write an ISO date like \"2024-03-01\", or \"now\", \"today\", \"now-30d\", \"today+1y\"",
                    ),
                ),
            }
        }
        _ => match scalar_text(v) {
            Some(t) => Some(Arg::Text(t)),
            None => fail(format!("operator \"{op_name}\" needs a single value"), None),
        },
    }
}

impl Clause {
    fn eval(&self, input: &dyn Input, ctx: &Context) -> bool {
        let mut values = (0..input.count(self.attr))
            .filter_map(|i| input.nth(self.attr, i))
            .filter(|s| !s.is_empty());
        match self.op {
            Op::IsNull => values.next().is_none(),
            Op::IsNotNull => values.next().is_some(),
            Op::NotEquals => !values.any(|v| self.test(Op::Equals, v, ctx)),
            Op::NotRegexMatch => !values.any(|v| self.test(Op::RegexMatch, v, ctx)),
            Op::NotIncludes => !values.any(|v| self.test(Op::Includes, v, ctx)),
            op => values.any(|v| self.test(op, v, ctx)),
        }
    }

    fn test(&self, op: Op, v: &str, ctx: &Context) -> bool {
        match (op, &self.arg) {
            (Op::Equals, Arg::Text(t)) => v == t,
            (Op::IsTrue, _) => parse_bool(v) == Some(true),
            (Op::IsFalse, _) => parse_bool(v) == Some(false),
            (Op::RegexMatch, Arg::Regex(r)) => r.is_match(v),
            (Op::Includes, Arg::List(list)) => list.iter().any(|x| x == v),
            (Op::Includes, Arg::Text(t)) => v.contains(t.as_str()),
            (Op::StartsWith, Arg::Text(t)) => v.starts_with(t.as_str()),
            (Op::EndsWith, Arg::Text(t)) => v.ends_with(t.as_str()),
            (Op::GreaterThan, Arg::Num(n)) => parse_number(v.trim()).is_some_and(|x| x > *n),
            (Op::GreaterThanOrEqual, Arg::Num(n)) => {
                parse_number(v.trim()).is_some_and(|x| x >= *n)
            }
            (Op::LessThan, Arg::Num(n)) => parse_number(v.trim()).is_some_and(|x| x < *n),
            (Op::LessThanOrEqual, Arg::Num(n)) => parse_number(v.trim()).is_some_and(|x| x <= *n),
            (Op::DateBefore | Op::DateAfter, Arg::Date(r)) => {
                match (parse_date(v), r.resolve(ctx)) {
                    (Some(d), Some(r)) if op == Op::DateBefore => d < r,
                    (Some(d), Some(r)) => d > r,
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    struct Names(Vec<&'static str>);

    impl Scope for Names {
        fn resolve(&self, name: &str) -> Option<u32> {
            self.0.iter().position(|n| *n == name).map(|i| i as u32)
        }
        fn names(&self) -> Vec<String> {
            self.0.iter().map(|s| s.to_string()).collect()
        }
    }

    /// Attribute index → values.
    struct Obj(Vec<Vec<&'static str>>);

    impl Input for Obj {
        fn count(&self, attr: u32) -> usize {
            self.0.get(attr as usize).map_or(0, Vec::len)
        }
        fn nth(&self, attr: u32, i: usize) -> Option<&str> {
            self.0.get(attr as usize)?.get(i).copied()
        }
    }

    #[derive(Deserialize)]
    struct Doc {
        inbound: Vec<Vec<RawClause>>,
    }

    fn scope() -> Names {
        Names(vec![
            "STAT2", "email", "dept", "flag", "hired", "level", "groups",
        ])
    }

    fn ctx() -> Context<'static> {
        Context {
            now: Utc.with_ymd_and_hms(2024, 6, 15, 12, 0, 0).unwrap(),
            object_key: "k",
            unique: None,
        }
    }

    fn compile(src: &str) -> Result<Filter, Vec<ScopeError>> {
        let doc: Doc = toml::from_str(src).unwrap();
        Filter::compile(&doc.inbound, &scope())
    }

    /// Object with STAT2, email, dept, flag, hired, level, groups.
    fn person(values: [&[&'static str]; 7]) -> Obj {
        Obj(values.iter().map(|v| v.to_vec()).collect())
    }

    fn one_clause(op: &str, value: &str) -> Filter {
        let value = if value.is_empty() {
            String::new()
        } else {
            format!(", value = {value}")
        };
        let src = format!("inbound = [[{{ attribute = \"dept\", operator = \"{op}\"{value} }}]]");
        compile(&src).unwrap_or_else(|e| panic!("{src}: {e:?}"))
    }

    fn dept(values: &[&'static str]) -> Obj {
        person([&[], &[], values, &[], &[], &[], &[]])
    }

    #[test]
    fn groups_and_within_or_across() {
        let f = compile(
            r#"inbound = [
                [{ attribute = "STAT2", operator = "equals", value = "3" },
                 { attribute = "dept", operator = "EQUALS", value = "Sales" }],
                [{ attribute = "email", operator = "is-null" }]
            ]"#,
        )
        .unwrap();
        let c = ctx();
        assert!(f.eval(
            &person([&["3"], &["a@x"], &["Sales"], &[], &[], &[], &[]]),
            &c
        ));
        assert!(!f.eval(&person([&["3"], &["a@x"], &["HR"], &[], &[], &[], &[]]), &c));
        assert!(f.eval(&person([&["3"], &[], &["HR"], &[], &[], &[], &[]]), &c));
        assert!(!f.eval(
            &person([&["2"], &["a@x"], &["Sales"], &[], &[], &[], &[]]),
            &c
        ));
        assert_eq!(f.attrs(), vec![0, 1, 2]);
        assert!(!f.is_empty());
    }

    #[test]
    fn no_groups_means_everything() {
        let f = Filter::compile(&[], &scope()).unwrap();
        assert!(f.is_empty());
        assert!(f.eval(&dept(&[]), &ctx()));
    }

    #[test]
    fn equality_operators_are_case_sensitive() {
        let c = ctx();
        let eq = one_clause("equals", "\"Sales\"");
        assert!(eq.eval(&dept(&["Sales"]), &c));
        assert!(!eq.eval(&dept(&["sales"]), &c));
        assert!(!eq.eval(&dept(&[]), &c));
        // Any value of a multi-valued attribute.
        assert!(eq.eval(&dept(&["HR", "Sales"]), &c));

        let ne = one_clause("NOT EQUALS", "\"Sales\"");
        assert!(ne.eval(&dept(&["sales"]), &c));
        assert!(!ne.eval(&dept(&["Sales"]), &c));
        assert!(!ne.eval(&dept(&["HR", "Sales"]), &c));
        assert!(ne.eval(&dept(&[]), &c));

        // Numbers and booleans compare by their TOML text.
        assert!(one_clause("equals", "3").eval(&dept(&["3"]), &c));
        assert!(one_clause("equals", "true").eval(&dept(&["true"]), &c));
    }

    #[test]
    fn null_and_boolean_operators() {
        let c = ctx();
        let null = one_clause("IS NULL", "");
        assert!(null.eval(&dept(&[]), &c));
        assert!(null.eval(&dept(&[""]), &c));
        assert!(!null.eval(&dept(&["x"]), &c));
        let not_null = one_clause("is-not-null", "");
        assert!(not_null.eval(&dept(&["x"]), &c));
        assert!(!not_null.eval(&dept(&[]), &c));

        let t = one_clause("IS TRUE", "");
        let f = one_clause("is_false", "");
        assert!(t.eval(&dept(&["True"]), &c));
        assert!(t.eval(&dept(&["1"]), &c));
        assert!(!t.eval(&dept(&["False"]), &c));
        assert!(!t.eval(&dept(&["maybe"]), &c));
        assert!(f.eval(&dept(&["false"]), &c));
        assert!(!f.eval(&dept(&[]), &c));
    }

    #[test]
    fn regex_operators() {
        let c = ctx();
        let m = one_clause("REGEX MATCH", r#"'^([1-9][0-9])$'"#);
        assert!(m.eval(&dept(&["42"]), &c));
        assert!(!m.eval(&dept(&["7"]), &c));
        assert!(m.eval(&dept(&["7", "10"]), &c));
        let n = one_clause("not-regex-match", r#""^temp""#);
        assert!(n.eval(&dept(&["staff"]), &c));
        assert!(!n.eval(&dept(&["temp-1"]), &c));
        assert!(n.eval(&dept(&[]), &c));
    }

    #[test]
    fn numeric_operators() {
        let c = ctx();
        let gt = one_clause("Greater_Than", "10");
        assert!(gt.eval(&dept(&["11"]), &c));
        assert!(!gt.eval(&dept(&["10"]), &c));
        assert!(!gt.eval(&dept(&["abc"]), &c));
        assert!(one_clause("Greater_Than_OR_EQUALS", "10").eval(&dept(&["10"]), &c));
        assert!(one_clause("less-than", "\"2.5\"").eval(&dept(&["2"]), &c));
        assert!(!one_clause("less-than", "2.5").eval(&dept(&["3"]), &c));
        assert!(one_clause("less-than-or-equal", "-1").eval(&dept(&["-1"]), &c));
    }

    #[test]
    fn includes_and_affixes() {
        let c = ctx();
        let inc = one_clause("includes", r#"["Sales", "HR"]"#);
        assert!(inc.eval(&dept(&["HR"]), &c));
        assert!(!inc.eval(&dept(&["Sales Ops"]), &c));
        let sub = one_clause("Includes", r#""Sales""#);
        assert!(sub.eval(&dept(&["Inside Sales"]), &c));
        assert!(!sub.eval(&dept(&["inside sales"]), &c));
        let not_inc = one_clause("not-includes", r#"["Sales", "HR"]"#);
        assert!(not_inc.eval(&dept(&["IT"]), &c));
        assert!(!not_inc.eval(&dept(&["IT", "HR"]), &c));
        assert!(not_inc.eval(&dept(&[]), &c));
        assert!(one_clause("starts-with", r#""OU=""#).eval(&dept(&["OU=x"]), &c));
        assert!(!one_clause("starts-with", r#""ou=""#).eval(&dept(&["OU=x"]), &c));
        assert!(one_clause("ends-with", r#""@corp.com""#).eval(&dept(&["a@corp.com"]), &c));
    }

    #[test]
    fn date_operators_fixed_and_relative() {
        let c = ctx(); // now = 2024-06-15T12:00:00
        let before = one_clause("date-before", r#""2024-01-01""#);
        assert!(before.eval(&dept(&["2023-12-31"]), &c));
        assert!(!before.eval(&dept(&["2024-01-01"]), &c));
        assert!(!before.eval(&dept(&["not a date"]), &c));
        let toml_date = one_clause("date-after", "2024-01-01");
        assert!(toml_date.eval(&dept(&["2024-01-01T00:00:01"]), &c));
        let recent = one_clause("date-after", r#""now-30d""#);
        assert!(recent.eval(&dept(&["2024-06-01"]), &c));
        assert!(!recent.eval(&dept(&["2024-05-16T11:59:59"]), &c));
        let future = one_clause("date-after", r#""now""#);
        assert!(future.eval(&dept(&["2024-06-15T12:00:01"]), &c));
        let today = one_clause("date-before", r#""today""#);
        assert!(today.eval(&dept(&["2024-06-14T23:59:59"]), &c));
        assert!(!today.eval(&dept(&["2024-06-15T00:00:00"]), &c));
        let year = one_clause("date-before", r#""today-1y""#);
        assert!(year.eval(&dept(&["2023-06-14"]), &c));
        assert!(!year.eval(&dept(&["2023-06-15"]), &c));
        assert!(one_clause("date-after", r#""now+2w""#).eval(&dept(&["2024-06-30"]), &c));
        assert!(one_clause("date-before", r#""now-6m""#).eval(&dept(&["2023-12-14"]), &c));
        assert!(one_clause("date-after", r#""now+12h""#).eval(&dept(&["2024-06-16T00:00:01"]), &c));
    }

    #[test]
    fn errors_point_into_the_file() {
        let src = r#"inbound = [[
  { attribute = "emial", operator = "equals", value = "x" },
  { attribute = "dept", operator = "equal", value = "x" },
  { attribute = "dept", operator = "is-null", value = "x" },
  { attribute = "dept", operator = "equals" },
  { attribute = "dept", operator = "regex-match", value = "[a-" },
  { attribute = "dept", operator = "greater-than", value = "ten" },
  { attribute = "dept", operator = "date-after", value = "yesterday" },
  { attribute = "dept", operator = "equals", value = ["a", "b"] },
]]"#;
        let errors = compile(src).unwrap_err();
        let got: Vec<(&str, &str, Option<&str>)> = errors
            .iter()
            .map(|e| (&src[e.span.clone()], e.message.as_str(), e.help.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "\"emial\"",
                    "unknown attribute \"emial\"",
                    Some("did you mean \"email\"?")
                ),
                (
                    "\"equal\"",
                    "unknown operator \"equal\"",
                    Some("did you mean \"equals\"?")
                ),
                (
                    "\"x\"",
                    "operator \"is-null\" takes no value",
                    Some("remove `value` from the clause")
                ),
                (
                    "\"equals\"",
                    "operator \"equals\" needs a value",
                    Some("add `value = ...` to the clause")
                ),
                (
                    "\"[a-\"",
                    "invalid regular expression: unclosed character class",
                    Some("patterns use Rust regex syntax (no look-around or backreferences)")
                ),
                (
                    "\"ten\"",
                    "operator \"greater-than\" needs a number",
                    Some("use date-before/date-after to compare dates")
                ),
                (
                    "\"yesterday\"",
                    "operator \"date-after\" needs a date",
                    Some(
                        "write an ISO date like \"2024-03-01\", or \"now\", \"today\", \"now-30d\", \"today+1y\""
                    )
                ),
                (
                    "[\"a\", \"b\"]",
                    "operator \"equals\" needs a single value",
                    Some("use \"includes\" to test against a list")
                ),
            ]
        );
    }

    #[test]
    fn unknown_operator_without_close_match_lists_all() {
        let errors =
            compile(r#"inbound = [[{ attribute = "dept", operator = "zzz", value = "x" }]]"#)
                .unwrap_err();
        assert_eq!(errors.len(), 1);
        let help = errors[0].help.clone().unwrap_or_default();
        assert!(
            help.starts_with("operators: equals, not-equals, is-null"),
            "{help}"
        );
        assert!(!help.contains("-or-equals"), "{help}");
    }

    #[test]
    fn unknown_keys_are_rejected_by_serde() {
        let r: Result<Doc, _> = toml::from_str(
            r#"inbound = [[{ attribute = "dept", operator = "equals", valeu = "x" }]]"#,
        );
        assert!(r.is_err());
    }

    #[test]
    fn bracketed_attribute_names_resolve() {
        let f =
            compile(r#"inbound = [[{ attribute = "[dept]", operator = "is-not-null" }]]"#).unwrap();
        assert!(f.eval(&dept(&["x"]), &ctx()));
    }

    #[test]
    fn relative_date_parsing() {
        assert_eq!(
            DateRef::parse("NOW - 3d"),
            Some(DateRef::Now {
                midnight: false,
                months: 0,
                seconds: -3 * 86_400
            })
        );
        for bad in [
            "now-",
            "now-3",
            "now-3x",
            "now*3d",
            "tomorrow",
            "now-999999999d",
        ] {
            assert_eq!(DateRef::parse(bad), None, "{bad}");
        }
    }
}
