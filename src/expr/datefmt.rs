//! Date formats and date arithmetic for `FormatDateTime`, `DateAdd` and
//! `DateDiff`. Entra rule authors write .NET custom format strings
//! (`yyyyMMddHHmmss.fZ`, `dd.MM.yyyy`), so those are interpreted here
//! directly with .NET's meaning, invariant culture; a format containing `%`
//! is taken as a chrono/strftime format instead. Formats are compiled once
//! (at expression compile time when they are literals) into a list of pieces.

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{
    Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};
use std::fmt::Write;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Piece {
    Year(u8),
    Month(u8),
    /// 1–2: day of month; 3–4: weekday name.
    Day(u8),
    Hour24(u8),
    Hour12(u8),
    Minute(u8),
    Second(u8),
    Frac {
        digits: u8,
        optional: bool,
    },
    AmPm(u8),
    Offset(u8),
    /// .NET `K`: `Z` for the UTC values this engine works with.
    Kind,
    Lit(String),
}

#[derive(Debug, Clone)]
pub(super) enum DateFmt {
    Net(Vec<Piece>),
    Strftime(Vec<Item<'static>>),
}

/// .NET's one-letter standard formats, as the invariant culture expands them.
fn standard(fmt: &str) -> Option<&'static str> {
    Some(match fmt {
        "o" | "O" => "yyyy-MM-ddTHH:mm:ss.fffffffK",
        "s" => "yyyy-MM-ddTHH:mm:ss",
        "u" => "yyyy-MM-dd HH:mm:ssZ",
        "r" | "R" => "ddd, dd MMM yyyy HH:mm:ss 'GMT'",
        "d" => "MM/dd/yyyy",
        "D" => "dddd, dd MMMM yyyy",
        "t" => "HH:mm",
        "T" => "HH:mm:ss",
        "g" => "MM/dd/yyyy HH:mm",
        "G" => "MM/dd/yyyy HH:mm:ss",
        _ => return None,
    })
}

impl DateFmt {
    /// Compiles a format string; the error names what is wrong with it.
    pub fn compile(fmt: &str) -> Result<DateFmt, String> {
        if fmt.is_empty() {
            return Err("empty date format".into());
        }
        if fmt.contains('%') {
            return StrftimeItems::new(fmt)
                .parse_to_owned()
                .map(DateFmt::Strftime)
                .map_err(|_| format!("invalid strftime date format {fmt:?}"));
        }
        let fmt = standard(fmt).unwrap_or(fmt);
        let chars: Vec<char> = fmt.chars().collect();
        let mut pieces: Vec<Piece> = Vec::new();
        let lit = |pieces: &mut Vec<Piece>, c: char| match pieces.last_mut() {
            Some(Piece::Lit(s)) => s.push(c),
            _ => pieces.push(Piece::Lit(c.to_string())),
        };
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let run = chars[i..].iter().take_while(|&&x| x == c).count();
            let n = u8::try_from(run).unwrap_or(u8::MAX);
            let piece = match c {
                'y' => Piece::Year(n),
                'M' => Piece::Month(n.min(4)),
                'd' => Piece::Day(n.min(4)),
                'H' => Piece::Hour24(n.min(2)),
                'h' => Piece::Hour12(n.min(2)),
                'm' => Piece::Minute(n.min(2)),
                's' => Piece::Second(n.min(2)),
                'f' | 'F' if n > 7 => {
                    return Err(format!(
                        "too many '{c}' in date format {fmt:?} (at most 7 fraction digits)"
                    ));
                }
                'f' | 'F' => Piece::Frac {
                    digits: n,
                    optional: c == 'F',
                },
                't' => Piece::AmPm(n.min(2)),
                'z' => Piece::Offset(n.min(3)),
                'K' => {
                    pieces.push(Piece::Kind);
                    i += 1;
                    continue;
                }
                '\'' | '"' => {
                    let Some(len) = chars[i + 1..].iter().position(|&x| x == c) else {
                        return Err(format!("unterminated quoted text in date format {fmt:?}"));
                    };
                    for &x in &chars[i + 1..i + 1 + len] {
                        lit(&mut pieces, x);
                    }
                    i += len + 2;
                    continue;
                }
                '\\' => {
                    let Some(&x) = chars.get(i + 1) else {
                        return Err(format!("date format {fmt:?} ends with a lone backslash"));
                    };
                    lit(&mut pieces, x);
                    i += 2;
                    continue;
                }
                _ => {
                    lit(&mut pieces, c);
                    i += 1;
                    continue;
                }
            };
            pieces.push(piece);
            i += run;
        }
        Ok(DateFmt::Net(pieces))
    }

    pub fn format(&self, d: NaiveDateTime) -> Result<String, String> {
        match self {
            DateFmt::Strftime(items) => {
                let mut out = String::new();
                let utc = Utc.from_utc_datetime(&d);
                write!(out, "{}", utc.format_with_items(items.iter()))
                    .map_err(|_| "the strftime format cannot show this date".to_string())?;
                Ok(out)
            }
            DateFmt::Net(pieces) => Ok(format_net(pieces, d)),
        }
    }

    /// Reads `s` in this format as UTC; missing fields default to
    /// 1970-01-01 00:00:00 so results never depend on the clock.
    pub fn parse(&self, s: &str) -> Option<NaiveDateTime> {
        match self {
            DateFmt::Strftime(items) => {
                let mut p = Parsed::new();
                chrono::format::parse(&mut p, s.trim(), items.iter()).ok()?;
                if p.offset().is_some() {
                    return p.to_datetime().ok().map(|d| d.naive_utc());
                }
                p.to_naive_datetime_with_offset(0)
                    .ok()
                    .or_else(|| Some(p.to_naive_date().ok()?.and_time(NaiveTime::MIN)))
            }
            DateFmt::Net(pieces) => parse_net(pieces, s.trim()),
        }
    }
}

fn format_net(pieces: &[Piece], d: NaiveDateTime) -> String {
    let mut out = String::with_capacity(24);
    for p in pieces {
        // Writing to a String cannot fail.
        let _ = match *p {
            Piece::Year(1) => write!(out, "{}", d.year().rem_euclid(100)),
            Piece::Year(2) => write!(out, "{:02}", d.year().rem_euclid(100)),
            Piece::Year(n) => write!(out, "{:0w$}", d.year(), w = usize::from(n)),
            Piece::Month(1) => write!(out, "{}", d.month()),
            Piece::Month(2) => write!(out, "{:02}", d.month()),
            Piece::Month(n) => {
                let name = MONTHS[d.month0() as usize];
                out.push_str(if n == 3 { &name[..3] } else { name });
                Ok(())
            }
            Piece::Day(1) => write!(out, "{}", d.day()),
            Piece::Day(2) => write!(out, "{:02}", d.day()),
            Piece::Day(n) => {
                let name = DAYS[d.weekday().num_days_from_monday() as usize];
                out.push_str(if n == 3 { &name[..3] } else { name });
                Ok(())
            }
            Piece::Hour24(1) => write!(out, "{}", d.hour()),
            Piece::Hour24(_) => write!(out, "{:02}", d.hour()),
            Piece::Hour12(n) => {
                let h = match d.hour() % 12 {
                    0 => 12,
                    h => h,
                };
                if n == 1 {
                    write!(out, "{h}")
                } else {
                    write!(out, "{h:02}")
                }
            }
            Piece::Minute(1) => write!(out, "{}", d.minute()),
            Piece::Minute(_) => write!(out, "{:02}", d.minute()),
            Piece::Second(1) => write!(out, "{}", d.second()),
            Piece::Second(_) => write!(out, "{:02}", d.second()),
            Piece::Frac { digits, optional } => {
                let nanos = d.nanosecond() % 1_000_000_000;
                let v = nanos / 10u32.pow(9 - u32::from(digits));
                let mut s = format!("{v:0w$}", w = usize::from(digits));
                if optional {
                    let kept = s.trim_end_matches('0').len();
                    s.truncate(kept);
                    // .NET drops the dot before an all-zero `F` fraction.
                    if s.is_empty() && out.ends_with('.') {
                        out.pop();
                    }
                }
                out.push_str(&s);
                Ok(())
            }
            Piece::AmPm(n) => {
                let pm = d.hour() >= 12;
                out.push_str(match (n, pm) {
                    (1, false) => "A",
                    (1, true) => "P",
                    (_, false) => "AM",
                    (_, true) => "PM",
                });
                Ok(())
            }
            Piece::Offset(1) => write!(out, "+0"),
            Piece::Offset(2) => write!(out, "+00"),
            Piece::Offset(_) => write!(out, "+00:00"),
            Piece::Kind => write!(out, "Z"),
            Piece::Lit(ref s) => write!(out, "{s}"),
        };
    }
    out
}

struct Scan<'s> {
    s: &'s str,
    i: usize,
}

impl Scan<'_> {
    fn rest(&self) -> &str {
        self.s.get(self.i..).unwrap_or("")
    }

    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let rest = self.rest().as_bytes();
        let n = rest
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n < min {
            return None;
        }
        let mut v = 0u32;
        for &b in &rest[..n] {
            v = v.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
        }
        self.i += n;
        Some(v)
    }

    /// Case-insensitive match of one of `names`; returns its index.
    fn name(&mut self, names: &[&str], abbr: bool) -> Option<usize> {
        let rest = self.rest();
        for (k, full) in names.iter().enumerate() {
            let name = if abbr { &full[..3] } else { full };
            if rest
                .get(..name.len())
                .is_some_and(|r| r.eq_ignore_ascii_case(name))
            {
                self.i += name.len();
                return Some(k);
            }
        }
        None
    }

    fn offset(&mut self) -> Option<i64> {
        let rest = self.rest();
        if rest.starts_with(['Z', 'z']) {
            self.i += 1;
            return Some(0);
        }
        let sign = match rest.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.i += 1;
        let h = self.digits(1, 2)?;
        let m = if self.rest().starts_with(':') {
            self.i += 1;
            self.digits(2, 2)?
        } else {
            self.digits(2, 2).unwrap_or(0)
        };
        Some(sign * i64::from(h * 3600 + m * 60))
    }
}

fn parse_net(pieces: &[Piece], s: &str) -> Option<NaiveDateTime> {
    let mut sc = Scan { s, i: 0 };
    let (mut year, mut month, mut day) = (1970i32, 1u32, 1u32);
    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut offset = 0i64;
    for p in pieces {
        match *p {
            Piece::Year(n) if n <= 2 => {
                let y = sc.digits(usize::from(n), 2)? as i32;
                // .NET's default two-digit-year window ends in 2049.
                year = if y <= 49 { 2000 + y } else { 1900 + y };
            }
            Piece::Year(n) => {
                let w = usize::from(n).max(4);
                year = sc.digits(w, w)? as i32;
            }
            Piece::Month(n) if n <= 2 => month = sc.digits(usize::from(n), 2)?,
            Piece::Month(n) => month = sc.name(&MONTHS, n == 3)? as u32 + 1,
            Piece::Day(n) if n <= 2 => day = sc.digits(usize::from(n), 2)?,
            // The weekday is redundant with the date; it is read and ignored.
            Piece::Day(n) => {
                sc.name(&DAYS, n == 3)?;
            }
            Piece::Hour24(n) | Piece::Hour12(n) => hour = sc.digits(usize::from(n), 2)?,
            Piece::Minute(n) => minute = sc.digits(usize::from(n), 2)?,
            Piece::Second(n) => second = sc.digits(usize::from(n), 2)?,
            Piece::Frac { digits, optional } => {
                let d = usize::from(digits);
                let start = sc.i;
                let v = sc.digits(if optional { 0 } else { d }, d)?;
                let read = (sc.i - start) as u32;
                nanos = v * 10u32.pow(9 - read.min(9));
            }
            Piece::AmPm(n) => {
                let rest = sc.rest();
                let (is_pm, len) = if n == 1 {
                    match rest.as_bytes().first()?.to_ascii_uppercase() {
                        b'A' => (false, 1),
                        b'P' => (true, 1),
                        _ => return None,
                    }
                } else {
                    match rest.get(..2)?.to_ascii_uppercase().as_str() {
                        "AM" => (false, 2),
                        "PM" => (true, 2),
                        _ => return None,
                    }
                };
                sc.i += len;
                pm = Some(is_pm);
            }
            Piece::Offset(_) => offset = sc.offset()?,
            Piece::Kind => {
                if !sc.rest().is_empty() {
                    offset = sc.offset().unwrap_or(0);
                }
            }
            Piece::Lit(ref lit) => {
                let rest = sc.rest();
                let head = rest.get(..lit.len())?;
                if !head.eq_ignore_ascii_case(lit) {
                    return None;
                }
                sc.i += lit.len();
            }
        }
    }
    if !sc.rest().is_empty() {
        return None;
    }
    if let Some(pm) = pm {
        if hour > 12 {
            return None;
        }
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    date.and_time(time)
        .checked_sub_signed(Duration::seconds(offset))
}

/// A `DateAdd`/`DateDiff` interval, named as in VBA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interval {
    Year,
    Quarter,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
}

pub(super) const INTERVALS_HELP: &str = "intervals: \"yyyy\" year, \"q\" quarter, \"m\" month, \
     \"ww\" week, \"d\"/\"y\"/\"w\" day, \"h\" hour, \"n\" minute, \"s\" second";

impl Interval {
    pub fn parse(s: &str) -> Option<Interval> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "yyyy" => Interval::Year,
            "q" => Interval::Quarter,
            "m" => Interval::Month,
            "ww" => Interval::Week,
            // VBA's "y" (day of year) and "w" (weekday) add and count days.
            "d" | "y" | "w" => Interval::Day,
            "h" => Interval::Hour,
            "n" => Interval::Minute,
            "s" => Interval::Second,
            _ => return None,
        })
    }

    fn seconds(self) -> Option<f64> {
        Some(match self {
            Interval::Week => 7.0 * 86_400.0,
            Interval::Day => 86_400.0,
            Interval::Hour => 3_600.0,
            Interval::Minute => 60.0,
            Interval::Second => 1.0,
            Interval::Year | Interval::Quarter | Interval::Month => return None,
        })
    }
}

/// Adds `n` intervals. Calendar intervals (year, quarter, month) take the
/// whole part of `n` and clamp to the month's last day (Jan 31 + 1 month =
/// Feb 28/29), as VBA does; the others accept fractions.
pub(super) fn date_add(iv: Interval, n: f64, d: NaiveDateTime) -> Option<NaiveDateTime> {
    if !n.is_finite() {
        return None;
    }
    if let Some(unit) = iv.seconds() {
        let ms = n * unit * 1000.0;
        if ms.abs() > 1e17 {
            return None;
        }
        return d.checked_add_signed(Duration::try_milliseconds(ms.round() as i64)?);
    }
    let per = match iv {
        Interval::Year => 12.0,
        Interval::Quarter => 3.0,
        _ => 1.0,
    };
    let months = n.trunc() * per;
    if months.abs() > 1e6 {
        return None;
    }
    let m = Months::new(months.abs() as u32);
    if months < 0.0 {
        d.checked_sub_months(m)
    } else {
        d.checked_add_months(m)
    }
}

/// Whole intervals from `a` to `b` (positive when `b` is later), as VB.NET's
/// `DateDiff`: calendar intervals count boundaries crossed (Dec 31 → Jan 1 is
/// one year), the others truncate the elapsed time toward zero.
pub(super) fn date_diff(iv: Interval, a: NaiveDateTime, b: NaiveDateTime) -> f64 {
    let years = i64::from(b.year()) - i64::from(a.year());
    match iv {
        Interval::Year => years as f64,
        Interval::Quarter => {
            (years * 4 + i64::from(b.month0() / 3) - i64::from(a.month0() / 3)) as f64
        }
        Interval::Month => (years * 12 + i64::from(b.month()) - i64::from(a.month())) as f64,
        _ => {
            let secs = (b - a).num_seconds();
            let unit = iv.seconds().unwrap_or(1.0) as i64;
            (secs / unit) as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    fn reformat(input: &str, from: &str, to: &str) -> Option<String> {
        let d = DateFmt::compile(from).unwrap().parse(input)?;
        Some(DateFmt::compile(to).unwrap().format(d).unwrap())
    }

    #[test]
    fn net_formats_round_trip() {
        assert_eq!(
            reformat(
                "20150123105347.1Z",
                "yyyyMMddHHmmss.fZ",
                "yyyy-MM-dd HH:mm:ss.fff"
            ),
            Some("2015-01-23 10:53:47.100".into())
        );
        assert_eq!(
            reformat("01.02.2024", "dd.MM.yyyy", "yyyy-MM-dd"),
            Some("2024-02-01".into())
        );
        assert_eq!(
            reformat("3/7/24 1:05 PM", "M/d/yy h:mm tt", "yyyy-MM-ddTHH:mm"),
            Some("2024-03-07T13:05".into())
        );
        assert_eq!(
            reformat("12 March 1999", "d MMMM yyyy", "ddd, dd MMM yy"),
            Some("Fri, 12 Mar 99".into())
        );
        assert_eq!(
            reformat("2024-03-01T10:00:00+02:00", "yyyy-MM-ddTHH:mm:sszzz", "o"),
            Some("2024-03-01T08:00:00.0000000Z".into())
        );
        assert_eq!(
            reformat("2024-03-01", "yyyy-MM-dd", "'Day' d 'of' MMMM, \\y yyyy"),
            Some("Day 1 of March, y 2024".into())
        );
        assert_eq!(
            reformat(
                "2024-03-01 12:00:00",
                "yyyy-MM-dd HH:mm:ss",
                "HH:mm:ss.FFF|h tt"
            ),
            Some("12:00:00|12 PM".into())
        );
    }

    #[test]
    fn net_parse_rejects_mismatches() {
        let f = DateFmt::compile("yyyy-MM-dd").unwrap();
        for bad in [
            "2024-3-01",
            "2024-02-30",
            "2024-03-01x",
            "24-03-01",
            "march",
        ] {
            assert_eq!(f.parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn strftime_formats() {
        assert_eq!(
            reformat("2024-03-01 08:00", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M %z"),
            Some("01/03/2024 08:00 +0000".into())
        );
        assert_eq!(
            reformat("2024-03-01", "%Y-%m-%d", "%A"),
            Some("Friday".into())
        );
        assert!(DateFmt::compile("%Q").is_err());
    }

    #[test]
    fn bad_formats_are_rejected() {
        assert!(DateFmt::compile("ffffffff").is_err());
        assert!(DateFmt::compile("yyyy 'oops").is_err());
        assert!(DateFmt::compile("yyyy\\").is_err());
        assert!(DateFmt::compile("").is_err());
    }

    #[test]
    fn add_and_diff_follow_vba() {
        let d = dt("2024-01-31 10:00:00");
        assert_eq!(
            date_add(Interval::Month, 1.0, d),
            Some(dt("2024-02-29 10:00:00"))
        );
        assert_eq!(
            date_add(Interval::Year, -1.0, d),
            Some(dt("2023-01-31 10:00:00"))
        );
        assert_eq!(
            date_add(Interval::Quarter, 1.0, d),
            Some(dt("2024-04-30 10:00:00"))
        );
        assert_eq!(
            date_add(Interval::Day, 1.5, d),
            Some(dt("2024-02-01 22:00:00"))
        );
        assert_eq!(
            date_add(Interval::Week, -1.0, d),
            Some(dt("2024-01-24 10:00:00"))
        );
        assert_eq!(
            date_add(Interval::Minute, 90.0, d),
            Some(dt("2024-01-31 11:30:00"))
        );
        assert_eq!(date_add(Interval::Day, f64::NAN, d), None);
        assert_eq!(date_add(Interval::Year, 1e12, d), None);

        let a = dt("2023-12-31 23:00:00");
        let b = dt("2024-01-01 01:00:00");
        assert_eq!(date_diff(Interval::Year, a, b), 1.0);
        assert_eq!(date_diff(Interval::Month, a, b), 1.0);
        assert_eq!(date_diff(Interval::Quarter, a, b), 1.0);
        assert_eq!(date_diff(Interval::Day, a, b), 0.0);
        assert_eq!(date_diff(Interval::Hour, a, b), 2.0);
        assert_eq!(date_diff(Interval::Hour, b, a), -2.0);
        assert_eq!(date_diff(Interval::Week, a, dt("2024-01-15 00:00:00")), 2.0);
    }

    #[test]
    fn intervals() {
        assert_eq!(Interval::parse("YYYY"), Some(Interval::Year));
        assert_eq!(Interval::parse("M"), Some(Interval::Month));
        assert_eq!(Interval::parse("n"), Some(Interval::Minute));
        assert_eq!(Interval::parse("ww"), Some(Interval::Week));
        assert_eq!(Interval::parse("days"), None);
    }
}
