//! The evaluator's working value, `V<'a>`: like the public [`Value`] but its
//! strings may borrow from the input record or the compiled expression, so
//! reading an attribute and passing it through a function costs no copy until
//! a function really builds a new string. Also owns the lenient readings every
//! function shares: text form, number, ISO date and boolean.

use super::{EvalError, Value, format_date, format_num};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum V<'a> {
    Null,
    Str(Cow<'a, str>),
    Num(f64),
    Bool(bool),
    Date(NaiveDateTime),
    List(Vec<V<'a>>),
}

impl<'a> V<'a> {
    pub fn borrow(v: &'a Value) -> V<'a> {
        match v {
            Value::Null => V::Null,
            Value::Str(s) => V::Str(Cow::Borrowed(s)),
            Value::Num(n) => V::Num(*n),
            Value::Bool(b) => V::Bool(*b),
            Value::Date(d) => V::Date(*d),
            Value::List(items) => V::List(items.iter().map(V::borrow).collect()),
        }
    }

    pub fn into_value(self) -> Value {
        match self {
            V::Null => Value::Null,
            V::Str(s) => Value::Str(s.into_owned()),
            V::Num(n) => Value::Num(n),
            V::Bool(b) => Value::Bool(b),
            V::Date(d) => Value::Date(d),
            V::List(items) => Value::List(items.into_iter().map(V::into_value).collect()),
        }
    }

    pub fn str(s: impl Into<Cow<'a, str>>) -> V<'a> {
        V::Str(s.into())
    }

    /// Null, the empty string and a list of nothing but those are all "no
    /// value": the store cannot tell them apart.
    pub fn is_null(&self) -> bool {
        match self {
            V::Null => true,
            V::Str(s) => s.is_empty(),
            V::List(items) => items.iter().all(V::is_null),
            _ => false,
        }
    }

    /// Text form of a single value; `None` for null. A list is not a single
    /// value: callers that accept lists map over them first.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            V::Null => None,
            V::Str(s) => Some(Cow::Borrowed(s)),
            V::Num(n) => Some(Cow::Owned(format_num(*n))),
            V::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            V::Date(d) => Some(Cow::Owned(format_date(d))),
            V::List(items) => match items.as_slice() {
                [one] => one.text(),
                _ => None,
            },
        }
    }

    /// Like [`V::text`] but consumes, keeping a borrowed string borrowed.
    pub fn into_text(self) -> Option<Cow<'a, str>> {
        match self {
            V::Str(s) => Some(s),
            V::List(mut items) if items.len() == 1 => items.pop().and_then(V::into_text),
            other => other.text().map(|c| Cow::Owned(c.into_owned())),
        }
    }

    pub fn number(&self) -> Option<f64> {
        match self {
            V::Num(n) => Some(*n),
            V::Str(s) => parse_number(s),
            V::List(items) if items.len() == 1 => items[0].number(),
            _ => None,
        }
    }

    pub fn date(&self) -> Option<NaiveDateTime> {
        match self {
            V::Date(d) => Some(*d),
            V::Str(s) => parse_date(s),
            V::List(items) if items.len() == 1 => items[0].date(),
            _ => None,
        }
    }

    /// Flattens nested lists into single values, in order.
    pub fn flatten_into(self, out: &mut Vec<V<'a>>) {
        match self {
            V::List(items) => items.into_iter().for_each(|v| v.flatten_into(out)),
            other => out.push(other),
        }
    }
}

/// A short form of a value for error messages.
pub(super) fn show(v: &V) -> String {
    match v {
        V::Null => "null".into(),
        V::List(items) => {
            let items: Vec<_> = items.iter().map(show).collect();
            format!("[{}]", items.join(", "))
        }
        other => {
            let t = other.text().unwrap_or_default();
            let mut s: String = t.chars().take(60).collect();
            if t.chars().count() > 60 {
                s.push('…');
            }
            format!("{s:?}")
        }
    }
}

/// A plain decimal number: optional sign, digits, optional fraction. Stricter
/// than `str::parse::<f64>`, which would read "inf", "NaN" and "1e5" and so
/// make employee ids or names compare as numbers.
pub(super) fn parse_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let digits = match b.first()? {
        b'-' | b'+' => &b[1..],
        _ => b,
    };
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut after_dot = true;
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                seen_digit = true;
                after_dot = true;
            }
            b'.' if !seen_dot && seen_digit => {
                seen_dot = true;
                after_dot = false;
            }
            _ => return None,
        }
    }
    if !seen_digit || !after_dot {
        return None;
    }
    s.parse().ok()
}

/// Reads `true`/`false`/`yes`/`no`/`1`/`0` in any case.
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") || s == "1" {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("no") || s == "0" {
        Some(false)
    } else {
        None
    }
}

struct Cursor<'s> {
    b: &'s [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let chunk = self.b.get(self.i..self.i + n)?;
        let mut v = 0u32;
        for &c in chunk {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i += n;
        Some(v)
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    /// Fraction digits after the dot, as nanoseconds (extra digits ignored).
    fn fraction(&mut self) -> Option<u32> {
        let start = self.i;
        let mut nanos = 0u32;
        let mut scale = 100_000_000u32;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
            self.i += 1;
        }
        (self.i > start).then_some(nanos)
    }

    /// `Z`, `+hh:mm`, `+hhmm`, `+hh`, or nothing; returns seconds east of UTC.
    fn offset(&mut self) -> Option<i64> {
        match self.peek() {
            None => Some(0),
            Some(b'Z' | b'z') => {
                self.i += 1;
                Some(0)
            }
            Some(sign @ (b'+' | b'-')) => {
                self.i += 1;
                let h = self.digits(2)?;
                self.eat(b':');
                let m = if self.done() { 0 } else { self.digits(2)? };
                let secs = i64::from(h * 3600 + m * 60);
                Some(if sign == b'-' { -secs } else { secs })
            }
            Some(_) => None,
        }
    }
}

/// Reads the date forms identity data actually carries, all as UTC:
/// ISO 8601 `2024-03-01`, `2024-03-01T08:00[:00[.fff]]` with an optional `Z`
/// or offset (a space may stand for the `T`), and LDAP generalized time
/// `20240301080000.0Z` (the `Z`, an offset or a fraction is required there so
/// that a 14-digit id is never read as a date). An offset is applied, so the
/// result is the UTC instant.
pub(super) fn parse_date(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let y = c.digits(4)?;
    let (date, generalized) = if c.eat(b'-') {
        let m = c.digits(2)?;
        if !c.eat(b'-') {
            return None;
        }
        let d = c.digits(2)?;
        (NaiveDate::from_ymd_opt(y as i32, m, d)?, false)
    } else {
        let m = c.digits(2)?;
        let d = c.digits(2)?;
        (NaiveDate::from_ymd_opt(y as i32, m, d)?, true)
    };
    if c.done() {
        return (!generalized).then(|| date.and_time(NaiveTime::MIN));
    }
    if !(generalized || c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let h = c.digits(2)?;
    let colon = !generalized;
    if colon && !c.eat(b':') {
        return None;
    }
    let mi = c.digits(2)?;
    let mut sec = 0;
    if (colon && c.eat(b':')) || (!colon && c.peek().is_some_and(|b| b.is_ascii_digit())) {
        sec = c.digits(2)?;
    }
    let mut nanos = 0;
    let mut had_fraction = false;
    if c.eat(b'.') || c.eat(b',') {
        nanos = c.fraction()?;
        had_fraction = true;
    }
    if generalized && c.done() && !had_fraction {
        return None;
    }
    let offset = c.offset()?;
    if !c.done() {
        return None;
    }
    let time = NaiveTime::from_hms_nano_opt(h, mi, sec, nanos)?;
    date.and_time(time)
        .checked_sub_signed(Duration::seconds(offset))
}

/// Evaluation error with the function's name in front, as every runtime
/// message reads "Function: what went wrong".
pub(super) fn err(func: &str, message: impl std::fmt::Display) -> EvalError {
    EvalError {
        message: format!("{func}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn numbers_are_plain_decimals() {
        assert_eq!(parse_number("42"), Some(42.0));
        assert_eq!(parse_number("-0.5"), Some(-0.5));
        assert_eq!(parse_number("+7"), Some(7.0));
        for bad in [
            "", "-", "1.", ".5", "1e5", "inf", "NaN", "1 ", "1,5", "0x10",
        ] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_in_iso_and_generalized_time() {
        assert_eq!(parse_date("2024-03-01"), Some(dt("2024-03-01 00:00:00")));
        assert_eq!(
            parse_date("2024-03-01T08:05"),
            Some(dt("2024-03-01 08:05:00"))
        );
        assert_eq!(
            parse_date("2024-03-01 08:05:09"),
            Some(dt("2024-03-01 08:05:09"))
        );
        assert_eq!(
            parse_date("2024-03-01T08:05:09.25Z"),
            Some(dt("2024-03-01 08:05:09.25"))
        );
        assert_eq!(
            parse_date("2024-03-01T08:00:00+02:00"),
            Some(dt("2024-03-01 06:00:00"))
        );
        assert_eq!(
            parse_date("2024-03-01T08:00:00-0130"),
            Some(dt("2024-03-01 09:30:00"))
        );
        assert_eq!(
            parse_date("20240301080000.0Z"),
            Some(dt("2024-03-01 08:00:00"))
        );
        assert_eq!(
            parse_date("20240301080000Z"),
            Some(dt("2024-03-01 08:00:00"))
        );
        for bad in [
            "",
            "2024",
            "2024-13-01",
            "2024-02-30",
            "20240301",
            "20240301080000",
            "2024-03-01T",
            "2024-03-01T25:00",
            "2024-03-01x",
            "2024-03-01T08:00:00+2",
            "hello",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("no"), Some(false));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn null_is_also_empty() {
        assert!(V::Null.is_null());
        assert!(V::str("").is_null());
        assert!(V::List(vec![V::Null, V::str("")]).is_null());
        assert!(!V::List(vec![V::Null, V::str("a")]).is_null());
        assert!(!V::Num(0.0).is_null());
    }
}
