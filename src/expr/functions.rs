//! The function library: the table of names and arities the checker
//! resolves calls against, and the implementation of every function. Entra
//! semantics are followed where Entra defines them; where it is silent the
//! choice is documented in `rules/README.md`. Functions that make
//! sense per value (`ToLower`, `Left`, `FormatDateTime`…) map over a
//! multi-valued source, and return null for a null source.

use super::EvalError;
use super::datefmt::{DateFmt, INTERVALS_HELP, Interval, date_add, date_diff};
use super::eval::{Call, Env, Prep, eval, truth};
use super::text;
use super::value::{V, err, parse_bool, parse_number, show};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use regex::{NoExpand, Regex};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    Append,
    CBool,
    CDate,
    CNumber,
    CStr,
    Coalesce,
    Contains,
    Count,
    DateAdd,
    DateDiff,
    DateFromNum,
    EndsWith,
    EscapeDN,
    FormatDateTime,
    Guid,
    Iif,
    InStr,
    IsMatch,
    IsNull,
    IsNullOrEmpty,
    IsPresent,
    Item,
    Join,
    Left,
    Length,
    Mid,
    NormalizeDiacritics,
    Not,
    Now,
    NumFromDate,
    PCase,
    RemoveDuplicates,
    /// `Replace` as written; the checker turns it into one of the forms below.
    Replace,
    /// Plain text replacement: (source, find, replacement).
    ReplaceText,
    /// Entra's template form: (source, oldValue, template).
    ReplaceTemplate,
    /// Every regex match replaced literally: (source, pattern, replacement).
    RegexReplace,
    /// Named/numbered group of every match replaced: (source, pattern, group, replacement).
    RegexReplaceGroup,
    /// Source, or when it is null the group extracted from another value:
    /// (source, pattern, group, other).
    RegexExtract,
    /// `ReplaceRegex`, with `$1`/`${name}` expansion: (source, pattern, replacement).
    ReplaceRegex,
    Right,
    SelectUniqueValue,
    Split,
    StartsWith,
    StripSpaces,
    Switch,
    ToLower,
    ToUpper,
    Trim,
    Word,
}

pub(super) struct FnDef {
    pub name: &'static str,
    pub func: Func,
    pub min: usize,
    pub max: usize,
    pub usage: &'static str,
}

const MANY: usize = usize::MAX;

macro_rules! f {
    ($name:literal, $func:ident, $min:expr, $max:expr, $usage:literal) => {
        FnDef {
            name: $name,
            func: Func::$func,
            min: $min,
            max: $max,
            usage: $usage,
        }
    };
}

pub(super) const FUNCTIONS: &[FnDef] = &[
    f!("Append", Append, 2, 2, "Append(source, suffix)"),
    f!("CBool", CBool, 1, 1, "CBool(value)"),
    f!("CDate", CDate, 1, 1, "CDate(value)"),
    f!("CNumber", CNumber, 1, 1, "CNumber(value)"),
    f!("CStr", CStr, 1, 1, "CStr(value)"),
    f!(
        "Coalesce",
        Coalesce,
        1,
        MANY,
        "Coalesce(value1, value2, ...)"
    ),
    f!("Contains", Contains, 2, 2, "Contains(source, text)"),
    f!("Count", Count, 1, 1, "Count(value)"),
    f!("DateAdd", DateAdd, 3, 3, "DateAdd(interval, number, date)"),
    f!(
        "DateDiff",
        DateDiff,
        3,
        3,
        "DateDiff(interval, date1, date2)"
    ),
    f!("DateFromNum", DateFromNum, 1, 1, "DateFromNum(ticks)"),
    f!("EndsWith", EndsWith, 2, 2, "EndsWith(source, text)"),
    f!("EscapeDN", EscapeDN, 1, 1, "EscapeDN(source)"),
    f!(
        "FormatDateTime",
        FormatDateTime,
        3,
        4,
        "FormatDateTime(source, [dateTimeStyles,] inputFormat, outputFormat)"
    ),
    f!("Guid", Guid, 0, 0, "Guid()"),
    f!(
        "IIF",
        Iif,
        3,
        3,
        "IIF(condition, valueIfTrue, valueIfFalse)"
    ),
    f!("InStr", InStr, 2, 3, "InStr(source, text, [start])"),
    f!("IsMatch", IsMatch, 2, 2, "IsMatch(source, regexPattern)"),
    f!("IsNull", IsNull, 1, 1, "IsNull(value)"),
    f!("IsNullOrEmpty", IsNullOrEmpty, 1, 1, "IsNullOrEmpty(value)"),
    f!("IsPresent", IsPresent, 1, 1, "IsPresent(value)"),
    f!("Item", Item, 2, 2, "Item(values, index)"),
    f!(
        "Join",
        Join,
        2,
        MANY,
        "Join(separator, value1, value2, ...)"
    ),
    f!("Left", Left, 2, 2, "Left(source, numChars)"),
    f!("Len", Length, 1, 1, "Len(source)"),
    f!("Length", Length, 1, 1, "Length(source)"),
    f!("Mid", Mid, 2, 3, "Mid(source, start, [length])"),
    f!(
        "NormalizeDiacritics",
        NormalizeDiacritics,
        1,
        1,
        "NormalizeDiacritics(source)"
    ),
    f!("Not", Not, 1, 1, "Not(condition)"),
    f!("Now", Now, 0, 0, "Now()"),
    f!("NumFromDate", NumFromDate, 1, 1, "NumFromDate(date)"),
    f!("PCase", PCase, 1, 2, "PCase(source, [wordSeparators])"),
    f!(
        "RemoveDuplicates",
        RemoveDuplicates,
        1,
        1,
        "RemoveDuplicates(values)"
    ),
    f!(
        "Replace",
        Replace,
        3,
        7,
        "Replace(source, find, replacement) or Replace(source, oldValue, regexPattern, \
         regexGroupName, replacementValue, replacementAttributeName, template)"
    ),
    f!(
        "ReplaceRegex",
        ReplaceRegex,
        3,
        3,
        "ReplaceRegex(source, regexPattern, replacement)"
    ),
    f!("Right", Right, 2, 2, "Right(source, numChars)"),
    f!(
        "SelectUniqueValue",
        SelectUniqueValue,
        1,
        MANY,
        "SelectUniqueValue(candidate1, candidate2, ...)"
    ),
    f!("Split", Split, 2, 2, "Split(source, delimiter)"),
    f!("StartsWith", StartsWith, 2, 2, "StartsWith(source, text)"),
    f!("StripSpaces", StripSpaces, 1, 1, "StripSpaces(source)"),
    f!(
        "Switch",
        Switch,
        4,
        MANY,
        "Switch(source, default, key1, value1, key2, value2, ...)"
    ),
    f!("ToLower", ToLower, 1, 2, "ToLower(source, [culture])"),
    f!("ToUpper", ToUpper, 1, 2, "ToUpper(source, [culture])"),
    f!("Trim", Trim, 1, 1, "Trim(source)"),
    f!("Word", Word, 3, 3, "Word(source, wordNumber, delimiters)"),
];

pub(super) fn lookup(name: &str) -> Option<&'static FnDef> {
    FUNCTIONS.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// Functions whose result depends on more than their arguments, and so are
/// never folded into a constant at compile time.
pub(super) fn is_pure(f: Func) -> bool {
    !matches!(f, Func::Now | Func::Guid | Func::SelectUniqueValue)
}

/// Display name of a function for runtime messages.
fn name(f: Func) -> &'static str {
    match f {
        Func::ReplaceText
        | Func::ReplaceTemplate
        | Func::RegexReplace
        | Func::RegexReplaceGroup
        | Func::RegexExtract => "Replace",
        other => FUNCTIONS
            .iter()
            .find(|d| d.func == other)
            .map_or("function", |d| d.name),
    }
}

type R<'a> = Result<V<'a>, EvalError>;

fn arg<'a>(c: &'a Call, i: usize, env: &Env<'a>) -> R<'a> {
    match c.args.get(i) {
        Some(n) => eval(n, env),
        None => Ok(V::Null),
    }
}

/// Applies `f` to each non-null single value of `v`, keeping the shape: a
/// list maps item by item, and null (or empty) stays null.
fn map_each<'a>(v: V<'a>, f: &mut dyn FnMut(V<'a>) -> R<'a>) -> R<'a> {
    match v {
        V::List(items) => Ok(V::List(
            items
                .into_iter()
                .map(|x| map_each(x, f))
                .collect::<Result<_, _>>()?,
        )),
        v if v.is_null() => Ok(V::Null),
        v => f(v),
    }
}

/// [`map_each`] over the text form of each value.
fn map_text<'a>(v: V<'a>, f: &mut dyn FnMut(Cow<'a, str>) -> R<'a>) -> R<'a> {
    map_each(v, &mut |x| match x.into_text() {
        Some(t) => f(t),
        None => Ok(V::Null),
    })
}

/// [`map_text`] for functions that only ever produce a string.
fn map_str<'a>(v: V<'a>, f: &mut dyn FnMut(Cow<'a, str>) -> Cow<'a, str>) -> R<'a> {
    map_text(v, &mut |t| Ok(V::Str(f(t))))
}

/// Applies a `&str -> Cow<str>` transformation to an owned-or-borrowed
/// string, keeping it borrowed from the input when nothing changed.
fn keep<'a>(t: Cow<'a, str>, f: impl for<'x> Fn(&'x str) -> Cow<'x, str>) -> Cow<'a, str> {
    match t {
        Cow::Borrowed(b) => f(b),
        Cow::Owned(o) => Cow::Owned(f(&o).into_owned()),
    }
}

/// The single text value of an argument such as a separator; null is `None`.
fn scalar_text<'a>(f: Func, what: &str, v: V<'a>) -> Result<Option<Cow<'a, str>>, EvalError> {
    if let V::List(items) = &v
        && items.iter().filter(|x| !x.is_null()).count() > 1
    {
        return Err(err(
            name(f),
            format!("{what} must be a single value, found {}", show(&v)),
        ));
    }
    let mut all = Vec::new();
    v.flatten_into(&mut all);
    Ok(all
        .into_iter()
        .find(|x| !x.is_null())
        .and_then(V::into_text))
}

fn number(f: Func, what: &str, v: &V) -> Result<f64, EvalError> {
    if v.is_null() {
        return Err(err(name(f), format!("{what} is null")));
    }
    v.number().filter(|n| n.is_finite()).ok_or_else(|| {
        err(
            name(f),
            format!("{what} must be a number, found {}", show(v)),
        )
    })
}

fn int(f: Func, what: &str, v: &V) -> Result<i64, EvalError> {
    // Saturating: a count beyond any string's length means "all of it".
    Ok(number(f, what, v)?.trunc().clamp(-1e15, 1e15) as i64)
}

fn flat<'a>(v: V<'a>) -> Vec<V<'a>> {
    let mut out = Vec::new();
    v.flatten_into(&mut out);
    out.retain(|x| !x.is_null());
    out
}

fn regex<'c>(c: &'c Call, i: usize, pattern: &str) -> Result<Cow<'c, Regex>, EvalError> {
    if let Some(Prep::Regex(r)) = c.prep.get(i) {
        return Ok(Cow::Borrowed(r));
    }
    Regex::new(pattern).map(Cow::Owned).map_err(|e| {
        err(
            name(c.func),
            format!(
                "invalid regular expression {pattern:?}: {}",
                regex_message(&e)
            ),
        )
    })
}

/// The one-line reason from a regex error, whose Display spans several lines.
pub(super) fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or(text.lines().last().unwrap_or("invalid pattern"))
        .to_string()
}

/// The regex argument `i`: prepared at compile time, or compiled now.
fn regex_arg<'a>(
    c: &'a Call,
    i: usize,
    env: &Env<'a>,
) -> Result<Option<Cow<'a, Regex>>, EvalError> {
    if let Some(Prep::Regex(r)) = c.prep.get(i) {
        return Ok(Some(Cow::Borrowed(r)));
    }
    match scalar_text(c.func, "the regex pattern", arg(c, i, env)?)? {
        Some(p) => regex(c, i, &p).map(Some),
        None => Ok(None),
    }
}

fn date_fmt<'a>(
    c: &'a Call,
    i: usize,
    env: &Env<'a>,
    what: &str,
) -> Result<Cow<'a, DateFmt>, EvalError> {
    if let Some(Prep::Fmt(f)) = c.prep.get(i) {
        return Ok(Cow::Borrowed(f));
    }
    let text = scalar_text(c.func, what, arg(c, i, env)?)?
        .ok_or_else(|| err(name(c.func), format!("{what} is null")))?;
    DateFmt::compile(&text)
        .map(Cow::Owned)
        .map_err(|e| err(name(c.func), e))
}

fn interval<'a>(c: &'a Call, env: &Env<'a>) -> Result<Interval, EvalError> {
    if let Some(Prep::Interval(iv)) = c.prep.first() {
        return Ok(*iv);
    }
    let text = scalar_text(c.func, "the interval", arg(c, 0, env)?)?.unwrap_or_default();
    Interval::parse(&text).ok_or_else(|| {
        err(
            name(c.func),
            format!("unknown interval {text:?} ({INTERVALS_HELP})"),
        )
    })
}

fn turkic<'a>(c: &'a Call, env: &Env<'a>) -> Result<bool, EvalError> {
    if let Some(Prep::Turkic(t)) = c.prep.get(1) {
        return Ok(*t);
    }
    let culture = scalar_text(c.func, "the culture", arg(c, 1, env)?)?;
    Ok(culture.is_some_and(|c| text::is_turkic(&c)))
}

fn to_date(f: Func, v: &V) -> Result<NaiveDateTime, EvalError> {
    v.date()
        .ok_or_else(|| err(name(f), format!("cannot read {} as a date", show(v))))
}

/// 100-nanosecond ticks since 1601-01-01 UTC: Active Directory's
/// `accountExpires`/`pwdLastSet` format.
fn ad_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(1601, 1, 1)
        .unwrap_or_default()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
}

/// The char-index slice `[start, start+len)` of `t`, borrowed when possible.
fn char_slice(t: Cow<'_, str>, start: usize, len: Option<usize>) -> Cow<'_, str> {
    let byte_at = |s: &str, n: usize| s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
    let (a, b) = {
        let a = byte_at(&t, start);
        let b = match len {
            Some(len) => a + byte_at(&t[a..], len),
            None => t.len(),
        };
        (a, b)
    };
    match t {
        Cow::Borrowed(s) => Cow::Borrowed(&s[a..b]),
        Cow::Owned(s) if a == 0 && b == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s[a..b].to_string()),
    }
}

/// The candidates of a `SelectUniqueValue` call, in order, nulls skipped:
/// what it would try, without asking which are taken. A candidate that
/// fails ends the list with its error, which is the call's only if none
/// before it is free (the call evaluates its candidates only as far as it
/// needs). So does the first candidate with a value `enough` accepts.
pub(super) fn unique_candidates<'a>(
    c: &'a Call,
    env: &Env<'a>,
    enough: Option<&dyn Fn(&str) -> bool>,
) -> super::Candidates {
    let mut values: Vec<String> = Vec::new();
    for (k, n) in c.args.iter().enumerate() {
        let before = values.len();
        match eval(n, env) {
            Ok(v) => values.extend(
                flat(v)
                    .into_iter()
                    .filter_map(|v| v.into_text().map(Cow::into_owned)),
            ),
            Err(e) => {
                return super::Candidates {
                    values,
                    error: Some(e),
                    more: false,
                };
            }
        }
        if let Some(enough) = enough
            && k + 1 < c.args.len()
            && values
                .get(before..)
                .is_some_and(|new| new.iter().any(|v| enough(v)))
        {
            return super::Candidates {
                values,
                error: None,
                more: true,
            };
        }
    }
    super::Candidates {
        values,
        error: None,
        more: false,
    }
}

pub(super) fn call<'a>(c: &'a Call, env: &Env<'a>) -> R<'a> {
    let f = c.func;
    let fname = name(f);
    match f {
        Func::Append => {
            let suffix = scalar_text(f, "the suffix", arg(c, 1, env)?)?;
            map_str(arg(c, 0, env)?, &mut |t| match &suffix {
                Some(s) if !s.is_empty() => Cow::Owned(format!("{t}{s}")),
                _ => t,
            })
        }
        Func::CBool => map_each(arg(c, 0, env)?, &mut |v| match &v {
            V::Bool(_) => Ok(v),
            V::Num(n) => Ok(V::Bool(*n != 0.0)),
            V::Str(s) => parse_bool(s)
                .map(V::Bool)
                .ok_or_else(|| err(fname, format!("{} is not a boolean", show(&v)))),
            _ => Err(err(fname, format!("{} is not a boolean", show(&v)))),
        }),
        Func::CDate => map_each(arg(c, 0, env)?, &mut |v| to_date(f, &v).map(V::Date)),
        Func::CNumber => map_each(arg(c, 0, env)?, &mut |v| match &v {
            V::Num(_) => Ok(v),
            V::Bool(b) => Ok(V::Num(if *b { 1.0 } else { 0.0 })),
            V::Str(s) => parse_number(s.trim())
                .map(V::Num)
                .ok_or_else(|| err(fname, format!("{} is not a number", show(&v)))),
            _ => Err(err(fname, format!("{} is not a number", show(&v)))),
        }),
        Func::CStr => map_text(arg(c, 0, env)?, &mut |t| Ok(V::Str(t))),
        Func::Coalesce => {
            for n in c.args.iter() {
                let v = eval(n, env)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            Ok(V::Null)
        }
        Func::Contains | Func::StartsWith | Func::EndsWith => {
            let needle = scalar_text(f, "the text to find", arg(c, 1, env)?)?;
            let Some(needle) = needle else {
                return Ok(V::Bool(false));
            };
            let hit = flat(arg(c, 0, env)?).iter().any(|v| {
                v.text().is_some_and(|t| match f {
                    Func::Contains => t.contains(&*needle),
                    Func::StartsWith => t.starts_with(&*needle),
                    _ => t.ends_with(&*needle),
                })
            });
            Ok(V::Bool(hit))
        }
        Func::Count => Ok(V::Num(flat(arg(c, 0, env)?).len() as f64)),
        Func::DateAdd => {
            let iv = interval(c, env)?;
            let n = number(f, "the number of intervals", &arg(c, 1, env)?)?;
            map_each(arg(c, 2, env)?, &mut |v| {
                let d = to_date(f, &v)?;
                date_add(iv, n, d)
                    .map(V::Date)
                    .ok_or_else(|| err(fname, format!("{} plus {n} is out of range", show(&v))))
            })
        }
        Func::DateDiff => {
            let iv = interval(c, env)?;
            let a = arg(c, 1, env)?;
            let b = arg(c, 2, env)?;
            if a.is_null() || b.is_null() {
                return Ok(V::Null);
            }
            Ok(V::Num(date_diff(iv, to_date(f, &a)?, to_date(f, &b)?)))
        }
        Func::DateFromNum => map_text(arg(c, 0, env)?, &mut |t| {
            let ticks: i64 = t
                .trim()
                .parse()
                .map_err(|_| err(fname, format!("{:?} is not a whole number of ticks", t)))?;
            // 0 and the largest value both mean "never" in Active Directory.
            if ticks == 0 || ticks == i64::MAX {
                return Ok(V::Null);
            }
            let d = Some(Duration::microseconds(ticks / 10))
                .and_then(|us| ad_epoch().checked_add_signed(us))
                .ok_or_else(|| err(fname, format!("{ticks} ticks is out of range")))?;
            Ok(V::Date(d))
        }),
        Func::NumFromDate => map_each(arg(c, 0, env)?, &mut |v| {
            let d = to_date(f, &v)?;
            let ticks = (d - ad_epoch())
                .num_microseconds()
                .and_then(|us| us.checked_mul(10))
                .ok_or_else(|| err(fname, format!("{} is out of range", show(&v))))?;
            Ok(V::str(ticks.to_string()))
        }),
        Func::FormatDateTime => {
            let n = c.args.len();
            let input = date_fmt(c, n.saturating_sub(2), env, "the input format")?;
            let output = date_fmt(c, n.saturating_sub(1), env, "the output format")?;
            map_each(arg(c, 0, env)?, &mut |v| {
                let d = match &v {
                    V::Date(d) => *d,
                    other => {
                        let text = other.text().unwrap_or_default();
                        match input.parse(&text) {
                            Some(d) => d,
                            None => {
                                let fmt = arg(c, n.saturating_sub(2), env)?;
                                return Err(err(
                                    fname,
                                    format!(
                                        "{} does not match the input format {}",
                                        show(&v),
                                        show(&fmt)
                                    ),
                                ));
                            }
                        }
                    }
                };
                output.format(d).map(V::str).map_err(|e| err(fname, e))
            })
        }
        Func::Guid => {
            // Namespace for idsync's deterministic Guid(): a fixed random UUID.
            const NS: uuid::Uuid = uuid::Uuid::from_u128(0x3b9f_6c1e_8a4d_4f27_9e1b_5d0c_7a62_e4f8);
            let name = format!("{}\u{1f}{}\u{1f}{}", env.ctx.object_key, env.source, c.site);
            Ok(V::str(
                uuid::Uuid::new_v5(&NS, name.as_bytes())
                    .hyphenated()
                    .to_string(),
            ))
        }
        Func::Iif => {
            if truth("IIF", &arg(c, 0, env)?)? {
                arg(c, 1, env)
            } else {
                arg(c, 2, env)
            }
        }
        Func::InStr => {
            let needle = scalar_text(f, "the text to find", arg(c, 1, env)?)?.unwrap_or_default();
            let start = match c.args.get(2) {
                Some(_) => int(f, "start", &arg(c, 2, env)?)?.max(1) as usize,
                None => 1,
            };
            map_text(arg(c, 0, env)?, &mut |t| {
                let skip = t.char_indices().nth(start - 1).map(|(i, _)| i);
                let pos = skip.and_then(|from| {
                    t[from..]
                        .find(&*needle)
                        .map(|b| t[..from + b].chars().count() + 1)
                });
                Ok(V::Num(pos.unwrap_or(0) as f64))
            })
        }
        Func::IsMatch => {
            let Some(re) = regex_arg(c, 1, env)? else {
                return Ok(V::Bool(false));
            };
            let hit = flat(arg(c, 0, env)?)
                .iter()
                .any(|v| v.text().is_some_and(|t| re.is_match(&t)));
            Ok(V::Bool(hit))
        }
        Func::IsNull | Func::IsNullOrEmpty => Ok(V::Bool(arg(c, 0, env)?.is_null())),
        Func::IsPresent => Ok(V::Bool(!arg(c, 0, env)?.is_null())),
        Func::Item => {
            let i = int(f, "the index", &arg(c, 1, env)?)?;
            let mut all = flat(arg(c, 0, env)?);
            if i < 1 || i as usize > all.len() {
                return Ok(V::Null);
            }
            Ok(all.swap_remove(i as usize - 1))
        }
        Func::Join => {
            let sep = scalar_text(f, "the separator", arg(c, 0, env)?)?.unwrap_or_default();
            let mut out: Option<String> = None;
            for n in c.args.iter().skip(1) {
                for v in flat(eval(n, env)?) {
                    if let Some(t) = v.text() {
                        match &mut out {
                            None => out = Some(t.into_owned()),
                            Some(s) => {
                                s.push_str(&sep);
                                s.push_str(&t);
                            }
                        }
                    }
                }
            }
            Ok(out.map_or(V::Null, V::str))
        }
        Func::Left | Func::Right => {
            let n = int(f, "numChars", &arg(c, 1, env)?)?;
            map_str(arg(c, 0, env)?, &mut |t| {
                if n < 0 {
                    return t;
                }
                let n = n as usize;
                if f == Func::Left {
                    char_slice(t, 0, Some(n))
                } else {
                    let len = t.chars().count();
                    char_slice(t, len.saturating_sub(n), None)
                }
            })
        }
        Func::Length => map_text(arg(c, 0, env)?, &mut |t| {
            Ok(V::Num(t.chars().count() as f64))
        }),
        Func::Mid => {
            let start = int(f, "start", &arg(c, 1, env)?)?.max(1) as usize;
            let len = match c.args.get(2) {
                Some(_) => Some(int(f, "length", &arg(c, 2, env)?)?.max(0) as usize),
                None => None,
            };
            map_str(arg(c, 0, env)?, &mut |t| char_slice(t, start - 1, len))
        }
        Func::NormalizeDiacritics => map_str(arg(c, 0, env)?, &mut |t| {
            keep(t, text::normalize_diacritics)
        }),
        Func::Not => Ok(V::Bool(!truth("Not", &arg(c, 0, env)?)?)),
        Func::Now => Ok(V::Date(env.ctx.now.naive_utc())),
        Func::PCase => {
            let seps = match c.args.get(1) {
                Some(_) => scalar_text(f, "the word separators", arg(c, 1, env)?)?,
                None => None,
            };
            map_str(arg(c, 0, env)?, &mut |t| {
                Cow::Owned(text::pcase(&t, seps.as_deref()))
            })
        }
        Func::RemoveDuplicates => {
            let mut seen: Vec<V> = Vec::new();
            for v in flat(arg(c, 0, env)?) {
                if !seen.iter().any(|s| s.text() == v.text()) {
                    seen.push(v);
                }
            }
            Ok(match seen.len() {
                0 => V::Null,
                _ => V::List(seen),
            })
        }
        Func::Replace => Err(err(fname, "unresolved Replace form")),
        Func::ReplaceText => {
            let find = scalar_text(f, "the text to find", arg(c, 1, env)?)?.unwrap_or_default();
            let repl = scalar_text(f, "the replacement", arg(c, 2, env)?)?.unwrap_or_default();
            map_str(arg(c, 0, env)?, &mut |t| {
                if find.is_empty() || !t.contains(&*find) {
                    t
                } else {
                    Cow::Owned(t.replace(&*find, &repl))
                }
            })
        }
        Func::ReplaceTemplate => {
            let old = scalar_text(f, "oldValue", arg(c, 1, env)?)?.unwrap_or_default();
            let template = scalar_text(f, "the template", arg(c, 2, env)?)?.unwrap_or_default();
            map_str(arg(c, 0, env)?, &mut |t| {
                if old.is_empty() {
                    Cow::Owned(template.to_string())
                } else {
                    Cow::Owned(template.replace(&*old, &t))
                }
            })
        }
        Func::RegexReplace | Func::ReplaceRegex => {
            let Some(re) = regex_arg(c, 1, env)? else {
                return arg(c, 0, env);
            };
            let repl = scalar_text(f, "the replacement", arg(c, 2, env)?)?.unwrap_or_default();
            let expand = f == Func::ReplaceRegex;
            map_str(arg(c, 0, env)?, &mut |t| {
                if expand {
                    keep(t, |s| re.replace_all(s, &*repl))
                } else {
                    keep(t, |s| re.replace_all(s, NoExpand(&repl)))
                }
            })
        }
        Func::RegexReplaceGroup => {
            let Some(re) = regex_arg(c, 1, env)? else {
                return arg(c, 0, env);
            };
            let group = scalar_text(f, "regexGroupName", arg(c, 2, env)?)?.unwrap_or_default();
            let repl = scalar_text(f, "replacementValue", arg(c, 3, env)?)?.unwrap_or_default();
            map_str(arg(c, 0, env)?, &mut |t| {
                let mut out = String::new();
                let mut last = 0;
                for caps in re.captures_iter(&t) {
                    let m = match group.parse::<usize>() {
                        Ok(i) => caps.get(i),
                        Err(_) => caps.name(&group),
                    };
                    if let Some(m) = m {
                        out.push_str(&t[last..m.start()]);
                        out.push_str(&repl);
                        last = m.end();
                    }
                }
                if last == 0 && out.is_empty() {
                    return t;
                }
                out.push_str(&t[last..]);
                Cow::Owned(out)
            })
        }
        Func::RegexExtract => {
            let source = arg(c, 0, env)?;
            if !source.is_null() {
                return Ok(source);
            }
            let Some(re) = regex_arg(c, 1, env)? else {
                return Ok(V::Null);
            };
            let group = scalar_text(f, "regexGroupName", arg(c, 2, env)?)?.unwrap_or_default();
            map_text(arg(c, 3, env)?, &mut |t| {
                let found = re.captures(&t).and_then(|caps| {
                    match group.parse::<usize>() {
                        Ok(i) => caps.get(i),
                        Err(_) => caps.name(&group),
                    }
                    .map(|m| m.as_str().to_string())
                });
                Ok(found.map_or(V::Null, V::str))
            })
        }
        Func::SelectUniqueValue => {
            let mut tried = Vec::new();
            for n in c.args.iter() {
                for v in flat(eval(n, env)?) {
                    let Some(t) = v.into_text() else { continue };
                    match env.ctx.unique {
                        None => return Ok(V::Str(t)),
                        Some(u) if !u.is_taken(&t) => return Ok(V::Str(t)),
                        Some(_) => tried.push(format!("{t:?}")),
                    }
                }
            }
            if tried.is_empty() {
                return Ok(V::Null);
            }
            Err(err(
                fname,
                format!("every candidate is already taken: {}", tried.join(", ")),
            ))
        }
        Func::Split => {
            let delim = scalar_text(f, "the delimiter", arg(c, 1, env)?)?.unwrap_or_default();
            let mut out = Vec::new();
            for v in flat(arg(c, 0, env)?) {
                let Some(t) = v.into_text() else { continue };
                if delim.is_empty() {
                    out.push(V::Str(t));
                    continue;
                }
                match t {
                    Cow::Borrowed(s) => out.extend(s.split(&*delim).map(V::str)),
                    Cow::Owned(s) => out.extend(s.split(&*delim).map(|p| V::str(p.to_string()))),
                }
            }
            Ok(if out.is_empty() {
                V::Null
            } else {
                V::List(out)
            })
        }
        Func::EscapeDN => map_str(arg(c, 0, env)?, &mut |t| {
            if t.contains([',', '+', '"', '\\', '<', '>', ';', '=', '#'])
                || t.starts_with(' ')
                || t.ends_with(' ')
            {
                Cow::Owned(escape_dn(&t))
            } else {
                t
            }
        }),
        Func::StripSpaces => map_str(arg(c, 0, env)?, &mut |t| {
            if t.contains(char::is_whitespace) {
                Cow::Owned(t.chars().filter(|c| !c.is_whitespace()).collect())
            } else {
                t
            }
        }),
        Func::Switch => {
            let source = arg(c, 0, env)?;
            let pick = |key: Option<Cow<str>>| -> R<'a> {
                if let Some(key) = key {
                    for pair in c.args[2..].chunks(2) {
                        let k = eval(&pair[0], env)?;
                        if k.text().is_some_and(|k| *k == *key) {
                            return pair.get(1).map_or(Ok(V::Null), |v| eval(v, env));
                        }
                    }
                }
                arg(c, 1, env)
            };
            // An empty value is null, so it takes the default like null does.
            fn key<'v>(v: &'v V) -> Option<Cow<'v, str>> {
                if v.is_null() { None } else { v.text() }
            }
            match source {
                V::List(items) if items.len() != 1 => Ok(V::List(
                    items
                        .iter()
                        .map(|v| pick(key(v)))
                        .collect::<Result<_, _>>()?,
                )),
                other => pick(key(&other)),
            }
        }
        Func::ToLower | Func::ToUpper => {
            let tr = turkic(c, env)?;
            map_str(arg(c, 0, env)?, &mut |t| {
                if f == Func::ToLower {
                    keep(t, |s| text::to_lower(s, tr))
                } else {
                    keep(t, |s| text::to_upper(s, tr))
                }
            })
        }
        Func::Trim => map_str(arg(c, 0, env)?, &mut |t| match t {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
            Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
        }),
        Func::Word => {
            let n = int(f, "wordNumber", &arg(c, 1, env)?)?;
            let delims = scalar_text(f, "the delimiters", arg(c, 2, env)?)?.unwrap_or_default();
            map_text(arg(c, 0, env)?, &mut |t| {
                if n < 1 {
                    return Ok(V::Null);
                }
                let word = t
                    .split(|ch: char| delims.contains(ch))
                    .filter(|w| !w.is_empty())
                    .nth(n as usize - 1)
                    .map(str::to_string);
                Ok(word.map_or(V::Null, V::str))
            })
        }
    }
}

/// An attribute value as it must be written inside a distinguished name
/// (RFC 4514): the special characters, a leading `#` or space and a
/// trailing space get a backslash.
fn escape_dn(t: &str) -> String {
    let mut out = String::with_capacity(t.len() + 4);
    let last = t.chars().count().saturating_sub(1);
    for (i, ch) in t.chars().enumerate() {
        let special = matches!(ch, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (ch == '#' || ch == ' '))
            || (i == last && ch == ' ');
        if special {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}
