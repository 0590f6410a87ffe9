//! UTC timestamps as the change log and run ids write them, without a date-time dependency.
//!
//! Only UTC is ever written: a change log read in another time zone, or after a daylight-saving
//! switch, must tell the same story. Reading accepts the RFC 3339 forms other tools print
//! (fractional seconds, `+00:00` and other offsets) because plan files and az output carry them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;

/// The current time, `2026-11-29T08:01:02Z`.
pub fn now_rfc3339() -> String {
    format_rfc3339(SystemTime::now())
}

/// `2026-11-29T08:01:02Z`: whole seconds, UTC. Sub-second precision is dropped on purpose: the
/// log's order is its `seq`, not its clock.
pub fn format_rfc3339(t: SystemTime) -> String {
    let (year, month, day, hour, minute, second) = civil(t);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// `20261129T080102Z`: the same instant as [`format_rfc3339`] in the ISO 8601 basic form, which
/// sorts as text in time order and is safe in a file name (no `:`).
pub fn compact_utc(t: SystemTime) -> String {
    let (year, month, day, hour, minute, second) = civil(t);
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`. Fractions finer than a nanosecond are
/// truncated; a leap second (`:60`) counts as the first second of the next minute.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    let separators_ok = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !separators_ok
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let mut rest = &b[19..];
    let mut nanos: u32 = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        for (i, c) in fraction[..len.min(9)].iter().enumerate() {
            nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &fraction[len..];
    }
    let offset_seconds: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let hours = digits(rest, 1, 2)?;
            let minutes = digits(rest, 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' { -magnitude } else { magnitude }
        }
        _ => return None,
    };

    let seconds = days_from_civil(i64::from(year), month, day) * SECONDS_PER_DAY
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset_seconds;
    let whole = Duration::from_secs(seconds.unsigned_abs());
    let base = if seconds >= 0 {
        UNIX_EPOCH.checked_add(whole)?
    } else {
        UNIX_EPOCH.checked_sub(whole)?
    };
    base.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// `len` ASCII digits at `start`, or None.
fn digits(b: &[u8], start: usize, len: usize) -> Option<u32> {
    let field = b.get(start..start + len)?;
    field.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whole seconds since the epoch, rounded towards the past (also before 1970).
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => {
            let d = e.duration();
            -(d.as_secs() as i64) - i64::from(d.subsec_nanos() > 0)
        }
    }
}

/// (year, month, day, hour, minute, second) in UTC.
fn civil(t: SystemTime) -> (i64, u32, u32, i64, i64, i64) {
    let seconds = unix_seconds(t);
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let in_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    (
        year,
        month,
        day,
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
    )
}

// Howard Hinnant's proleptic-Gregorian day algorithms
// (https://howardhinnant.github.io/date_algorithms.html): exact for every representable day.

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // 2026-11-29T08:01:02Z, computed independently: `date -u -d @1795939262`.
        assert_eq!(format_rfc3339(at(1_795_939_262)), "2026-11-29T08:01:02Z");
        assert_eq!(compact_utc(at(1_795_939_262)), "20261129T080102Z");
        // A leap day, and the last second of a year.
        assert_eq!(format_rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(at(1_735_689_599)), "2024-12-31T23:59:59Z");
        // Sub-second precision is dropped, never rounded up.
        assert_eq!(
            format_rfc3339(at(1_735_689_599) + Duration::from_millis(999)),
            "2024-12-31T23:59:59Z"
        );
        // Before 1970, seconds round towards the past.
        assert_eq!(
            format_rfc3339(UNIX_EPOCH - Duration::from_millis(500)),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn round_trips_every_day_of_several_centuries() {
        // One instant per 7 days and 13 hours from 1900 to 2400: every month, leap rules included.
        let mut t = parse_rfc3339("1900-01-01T00:00:00Z").unwrap();
        let end = parse_rfc3339("2400-03-01T00:00:00Z").unwrap();
        let step = Duration::from_secs(7 * 86_400 + 13 * 3600 + 17);
        while t < end {
            let text = format_rfc3339(t);
            assert_eq!(parse_rfc3339(&text), Some(t), "{text}");
            t += step;
        }
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let midnight = parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
        assert_eq!(
            midnight.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_704_067_200
        );
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00+00:00"), Some(midnight));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00-00:00"), Some(midnight));
        assert_eq!(parse_rfc3339("2024-01-01t00:00:00z"), Some(midnight));
        assert_eq!(
            parse_rfc3339("2024-01-01T02:30:00+02:30"),
            Some(midnight),
            "an offset east of UTC is subtracted"
        );
        assert_eq!(
            parse_rfc3339("2023-12-31T21:00:00-03:00"),
            Some(midnight),
            "an offset west of UTC is added"
        );
        assert_eq!(
            parse_rfc3339("2024-01-01T00:00:00.5Z"),
            Some(midnight + Duration::from_millis(500))
        );
        assert_eq!(
            parse_rfc3339("2024-01-01T00:00:00.123456789123+00:00"),
            Some(midnight + Duration::from_nanos(123_456_789)),
            "az prints seven digits; digits past nanoseconds are dropped"
        );
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z"),
            parse_rfc3339("2017-01-01T00:00:00Z")
        );
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0000",
            "2024-01-01T00:00:00+24:00",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024/01/01T00:00:00Z",
            "2024-01-01T00:00:00Zjunk",
            "20240101T000000Z",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn now_is_parseable_and_current() {
        let before = unix_seconds(SystemTime::now());
        let now = parse_rfc3339(&now_rfc3339()).unwrap();
        let after = unix_seconds(SystemTime::now());
        assert!((before..=after).contains(&unix_seconds(now)));
    }
}
