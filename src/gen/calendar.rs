//! Dates as plain day numbers, and the two ways the sources write them.
//!
//! The generator does date arithmetic for every record, so it works on `i64`
//! days since 1970-01-01 (proleptic Gregorian) with Howard Hinnant's civil
//! calendar algorithms: exact, branch-light, and free of any dependency whose
//! behaviour could change the output.

/// Days since 1970-01-01 of a civil date.
pub const fn days(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
pub const fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD`, as Workday and the contractor database write dates.
pub fn iso(day: i64) -> String {
    let (y, m, d) = civil(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `DD.MM.YYYY`, as SAP writes dates.
pub fn sap(day: i64) -> String {
    let (y, m, d) = civil(day);
    format!("{d:02}.{m:02}.{y:04}")
}

/// `YYYY-MM-DDTHH:MM:SS` for a day and a second of that day.
pub fn iso_datetime(day: i64, second: u32) -> String {
    let (y, m, d) = civil(day);
    let (hh, mm, ss) = (second / 3600, second / 60 % 60, second % 60);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}")
}

/// SAP's "no end date" (`31.12.9999`).
pub const SAP_OPEN_END: &str = "31.12.9999";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    #[test]
    fn agrees_with_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for day in days(1900, 1, 1)..days(2101, 1, 1) {
            let c = epoch + chrono::Days::new(0) + chrono::TimeDelta::days(day);
            assert_eq!(civil(day), (i64::from(c.year()), c.month(), c.day()));
            assert_eq!(days(i64::from(c.year()), c.month(), c.day()), day);
        }
        assert_eq!(iso(days(2024, 2, 29)), "2024-02-29");
        assert_eq!(sap(days(1990, 3, 1)), "01.03.1990");
        assert_eq!(
            iso_datetime(days(2022, 1, 10), 8 * 3600 + 15 * 60 + 7),
            "2022-01-10T08:15:07"
        );
    }
}
