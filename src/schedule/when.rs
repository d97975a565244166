//! When a schedule is due: an interval (`every = "15m"`) or a cron pattern
//! (`cron = "0 2 * * *"`, five fields, evaluated in UTC). Everything here is
//! a pure function of the profile's last start and the clock, so the
//! scheduler's decisions are tested without waiting for time to pass.
//!
//! A schedule is due at the first time after its profile last *started*
//! (any run of it, scheduled or by hand); a profile that never ran is due at
//! once. Missed times therefore coalesce: a scheduler that was down for three
//! nights runs the nightly profile once, not three times.

use chrono::{DateTime, TimeDelta, Utc};
use croner::parser::{CronParser, Seconds, Year};
use std::fmt;

/// Longer intervals are better said with a cron pattern; the cap also keeps
/// the arithmetic far from overflow.
const MAX_INTERVAL_SECS: u64 = 366 * 86_400;

#[derive(Debug, Clone)]
pub enum When {
    /// `every = "15m"`: the text as written, and its length.
    Every { text: String, interval: TimeDelta },
    /// `cron = "0 2 * * *"`: the text as written, and the parsed pattern.
    Cron {
        text: String,
        pattern: Box<croner::Cron>,
    },
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::Every { text, .. } => write!(f, "every {text}"),
            When::Cron { text, .. } => write!(f, "cron {text:?}"),
        }
    }
}

impl When {
    /// `every = TEXT`; the error says what is wrong with the text.
    pub fn every(text: &str) -> Result<When, String> {
        Ok(When::Every {
            text: text.trim().to_string(),
            interval: parse_interval(text)?,
        })
    }

    /// `cron = TEXT`: five fields (minute hour day-of-month month
    /// day-of-week) or a nickname such as `@daily`, in UTC. A pattern that
    /// can never match (`0 0 30 2 *`) is an error too.
    pub fn cron(text: &str) -> Result<When, String> {
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let pattern = parser.parse(text).map_err(|e| {
            format!(
                "{e} (five fields: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\")"
            )
        })?;
        let probe = DateTime::<Utc>::UNIX_EPOCH;
        if pattern.find_next_occurrence(&probe, false).is_err() {
            return Err("the pattern never matches a date".into());
        }
        Ok(When::Cron {
            text: text.trim().to_string(),
            pattern: Box::new(pattern),
        })
    }

    /// The first time after `last` (the profile's last start) that this
    /// schedule is due; `None` when a cron pattern has no further match.
    pub fn due_after(&self, last: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            When::Every { interval, .. } => last.checked_add_signed(*interval),
            When::Cron { pattern, .. } => pattern.find_next_occurrence(&last, false).ok(),
        }
    }

    /// When the schedule is next due: `now` if its profile never ran, else
    /// the first time after its last start (which may be long past: the
    /// missed times are owed one run).
    pub fn next_due(
        &self,
        last: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match last {
            None => Some(now),
            Some(l) => self.due_after(l),
        }
    }
}

/// `"30s"`, `"15m"`, `"1h30m"`, `"1h 30m"`, `"2d"`: whole numbers with a unit
/// each (`s`, `m`, `h`, `d`), added up.
pub fn parse_interval(text: &str) -> Result<TimeDelta, String> {
    const USAGE: &str = "units are s, m, h and d, e.g. \"30s\", \"15m\", \"1h30m\", \"1d\"";
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("an interval is a number and a unit; {USAGE}"));
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!("expected a number at {rest:?}; {USAGE}"));
        }
        let (number, after) = rest.split_at(digits);
        let after = after.trim_start();
        let unit_len = after.len() - after.trim_start_matches(|c: char| c.is_alphabetic()).len();
        let (unit, after) = after.split_at(unit_len);
        let scale: u64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "" if after.is_empty() => return Err(format!("{number:?} has no unit; {USAGE}")),
            "" => {
                return Err(format!(
                    "unexpected {after:?} (whole numbers only); {USAGE}"
                ));
            }
            other => return Err(format!("unknown unit {other:?}; {USAGE}")),
        };
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .filter(|&n| n <= MAX_INTERVAL_SECS);
        total = match part.and_then(|p| total.checked_add(p)) {
            Some(t) if t <= MAX_INTERVAL_SECS => t,
            _ => return Err("an interval is at most 366d; use cron for longer ones".into()),
        };
        rest = after.trim_start();
    }
    if total == 0 {
        return Err("an interval must be longer than zero".into());
    }
    // Bounded by MAX_INTERVAL_SECS above, so the conversion is exact.
    Ok(TimeDelta::seconds(total as i64))
}

/// What the scheduler does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run schedule `i` now: the earliest due, ties to the first written.
    Run(usize),
    /// Nothing is due before this time.
    Wait(DateTime<Utc>),
    /// Nothing will ever be due.
    Never,
}

/// The decision over every schedule's next due time (see [`When::next_due`]).
/// The earliest due goes first, so a schedule that is always overdue (runs
/// longer than its interval) cannot starve the others.
pub fn pick(due: &[Option<DateTime<Utc>>], now: DateTime<Utc>) -> Next {
    let earliest = due
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.map(|d| (d, i)))
        .min();
    match earliest {
        Some((d, i)) if d <= now => Next::Run(i),
        Some((d, _)) => Next::Wait(d),
        None => Next::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    #[test]
    fn intervals_parse_with_units_and_add_up() {
        let ok = |t: &str| parse_interval(t).map(|d| d.num_seconds());
        assert_eq!(ok("30s"), Ok(30));
        assert_eq!(ok("15m"), Ok(900));
        assert_eq!(ok("1h"), Ok(3_600));
        assert_eq!(ok("2d"), Ok(172_800));
        assert_eq!(ok("1h30m"), Ok(5_400));
        assert_eq!(ok(" 1h 30m "), Ok(5_400));
        assert_eq!(ok("90 s"), Ok(90));
        assert_eq!(ok("366d"), Ok(366 * 86_400));
    }

    #[test]
    fn bad_intervals_say_what_is_wrong() {
        let err = |t: &str| parse_interval(t).err().unwrap_or_default();
        assert!(err("").contains("a number and a unit"), "{}", err(""));
        assert!(err("15").starts_with("\"15\" has no unit"), "{}", err("15"));
        assert!(
            err("15x").starts_with("unknown unit \"x\""),
            "{}",
            err("15x")
        );
        assert!(err("15min").starts_with("unknown unit \"min\""));
        assert!(err("m").starts_with("expected a number at \"m\""));
        assert!(err("-5m").starts_with("expected a number"));
        assert!(err("1.5h").starts_with("unexpected \".5h\" (whole numbers only)"));
        assert_eq!(err("0s"), "an interval must be longer than zero");
        assert!(err("367d").contains("at most 366d"));
        assert!(err("99999999999999999999s").contains("at most 366d"));
        assert!(err("366d1s").contains("at most 366d"));
    }

    #[test]
    fn cron_patterns_have_five_fields_and_must_match_some_date() {
        assert!(When::cron("0 2 * * *").is_ok());
        assert!(When::cron("*/15 * * * MON-FRI").is_ok());
        assert!(When::cron("@daily").is_ok());
        assert!(When::cron("0 0 29 2 *").is_ok());
        let err = |t: &str| When::cron(t).err().unwrap_or_default();
        assert!(
            err("0 0 2 * * *").contains("5 fields"),
            "{}",
            err("0 0 2 * * *")
        );
        assert!(err("* * * *").contains("5 fields"));
        assert!(
            err("61 * * * *").contains("out of bounds"),
            "{}",
            err("61 * * * *")
        );
        assert!(err("0 0 30 2 *").contains("never matches"));
    }

    #[test]
    fn an_interval_is_due_its_length_after_the_last_start() -> Result<(), String> {
        let w = When::every("15m")?;
        let last = at(2026, 11, 24, 10, 0, 0);
        assert_eq!(w.due_after(last), Some(at(2026, 11, 24, 10, 15, 0)));
        // Never ran: due at once.
        let now = at(2026, 11, 24, 12, 0, 0);
        assert_eq!(w.next_due(None, now), Some(now));
        // Down for hours: due once, at the first missed time.
        assert_eq!(
            w.next_due(Some(last), now),
            Some(at(2026, 11, 24, 10, 15, 0))
        );
        Ok(())
    }

    #[test]
    fn a_cron_schedule_is_due_at_the_first_match_after_the_last_start() -> Result<(), String> {
        let w = When::cron("0 2 * * *")?;
        // A run that started a little after 02:00 is not due again that day.
        let last = at(2026, 11, 24, 2, 0, 0) + TimeDelta::milliseconds(150);
        assert_eq!(w.due_after(last), Some(at(2026, 11, 25, 2, 0, 0)));
        let before = at(2026, 11, 24, 1, 59, 0);
        assert_eq!(w.due_after(before), Some(at(2026, 11, 24, 2, 0, 0)));
        // Last ran three nights ago: the missed nights are owed one run.
        let old = at(2026, 11, 21, 2, 0, 5);
        let now = at(2026, 11, 24, 9, 0, 0);
        assert_eq!(w.next_due(Some(old), now), Some(at(2026, 11, 22, 2, 0, 0)));
        // Weekdays only: Friday's run is followed by Monday's.
        let wd = When::cron("30 6 * * MON-FRI")?;
        let friday = at(2026, 11, 27, 6, 30, 1);
        assert_eq!(wd.due_after(friday), Some(at(2026, 11, 30, 6, 30, 0)));
        Ok(())
    }

    #[test]
    fn the_earliest_due_schedule_runs_first_and_missed_runs_coalesce() -> Result<(), String> {
        let now = at(2026, 11, 24, 2, 0, 30);
        let delta = When::every("15m")?;
        let nightly = When::cron("0 2 * * *")?;
        // The delta is overdue (it ran at 01:50), the nightly is due since
        // 02:00: the nightly's time is earlier.
        let due = [
            delta.next_due(Some(at(2026, 11, 24, 1, 50, 0)), now),
            nightly.next_due(Some(at(2026, 11, 23, 2, 0, 1)), now),
        ];
        assert_eq!(pick(&due, now), Next::Run(1));
        // After the nightly ran, the delta is next, still owed one run.
        let after = at(2026, 11, 24, 2, 10, 0);
        let due = [
            delta.next_due(Some(at(2026, 11, 24, 1, 50, 0)), after),
            nightly.next_due(Some(now), after),
        ];
        assert_eq!(pick(&due, after), Next::Run(0));
        // Once it ran, nothing is due until 15 minutes after its start.
        let due = [
            delta.next_due(Some(after), after),
            nightly.next_due(Some(now), after),
        ];
        assert_eq!(pick(&due, after), Next::Wait(at(2026, 11, 24, 2, 25, 0)));
        // Ties go to the first written.
        assert_eq!(pick(&[Some(now), Some(now)], now), Next::Run(0));
        assert_eq!(pick(&[None, None], now), Next::Never);
        assert_eq!(pick(&[], now), Next::Never);
        Ok(())
    }
}
