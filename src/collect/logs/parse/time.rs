//! Timestamps: RFC 3339 and its relatives, epoch numbers, syslog and glog times.

use chrono::{
    DateTime, Datelike, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};
use std::cell::Cell;

/// RFC 3339 and its near relatives (space for `T`, comma decimals, `+0000`, ` UTC`), naive
/// local times, epoch numbers (s, ms, µs or ns by size) and syslog times without a year.
pub(super) fn parse_time(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    match parse_iso(text) {
        Some(at) => at,
        None => parse_time_general(text, now),
    }
}

/// Every form `parse_time` reads, through chrono's parsers.
fn parse_time_general(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(n) = text.parse::<i64>() {
        return from_epoch_int(n);
    }
    if let Ok(n) = text.parse::<f64>() {
        return from_epoch(n);
    }
    let mut s = text.replace(',', ".");
    if let Some(stripped) = s.strip_suffix(" UTC").or_else(|| s.strip_suffix("UTC")) {
        s = format!("{stripped}+00:00");
    } else if let Some(stripped) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        s = format!("{stripped}+00:00");
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(&s, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&s, format) {
            return local(t);
        }
    }
    parse_syslog_time(text, now)
}

thread_local! {
    /// The local offset of the last hour converted: (hour since the epoch, as a naive
    /// local time; offset in seconds). Log times come in order, so this is nearly always
    /// the hour wanted, and chrono's time zone lookup is skipped.
    static LOCAL_HOUR: Cell<Option<(i64, i64)>> = const { Cell::new(None) };
}

/// A naive local time in UTC (the earlier one when a clock change makes it ambiguous).
fn local(naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    let as_utc = naive.and_utc();
    let hour = as_utc.timestamp().div_euclid(3600);
    if let Some((cached, offset)) = LOCAL_HOUR.get()
        && cached == hour
    {
        return Some(as_utc - chrono::Duration::seconds(offset));
    }
    let at = Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))?;
    // Remembered only if the whole hour has one offset (not the hour of a clock change).
    let start = NaiveDateTime::new(naive.date(), NaiveTime::from_hms_opt(naive.hour(), 0, 0)?);
    let end = start + chrono::Duration::seconds(3599);
    let offset_at = |t: NaiveDateTime| {
        Local
            .from_local_datetime(&t)
            .single()
            .map(|l| l.offset().local_minus_utc() as i64)
    };
    match (offset_at(start), offset_at(end)) {
        (Some(a), Some(b)) if a == b => LOCAL_HOUR.set(Some((hour, a))),
        _ => LOCAL_HOUR.set(None),
    }
    Some(at)
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.,fraction][zone]` and `YYYY/MM/DD HH:MM:SS[.,fraction]`, read
/// without chrono's format parser; zone `Z`, `±HH:MM`, `±HHMM` or `UTC` (after an optional
/// space); none is local time. `None`: another shape (the general parser tries);
/// `Some(None)`: this shape, but not a valid time.
fn parse_iso(text: &str) -> Option<Option<DateTime<Utc>>> {
    let b = text.as_bytes();
    let num = |from: usize, n: usize| -> Option<u32> {
        let digits = b.get(from..from + n)?;
        digits.iter().try_fold(0u32, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
        })
    };
    let sep = *b.get(4)?;
    if !(sep == b'-' || sep == b'/') || b.get(7) != Some(&sep) {
        return None;
    }
    let t = *b.get(10)?;
    let t_ok = if sep == b'/' {
        t == b' '
    } else {
        matches!(t, b'T' | b't' | b' ')
    };
    if !t_ok || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if second > 59 {
        return None; // a leap second: the general parser knows them
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        let start = i;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        nanos *= 10u32.pow(9u32.saturating_sub((i - start) as u32));
    }
    let zone = &text[i..];
    let offset = match zone {
        "" => None,
        "Z" | "z" | "UTC" | " UTC" => Some(0),
        _ => {
            let z = zone.strip_prefix(' ').unwrap_or(zone).as_bytes();
            let sign = match z.first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let two = |k: usize| -> Option<i64> {
                let d = z.get(k..k + 2)?;
                d.iter()
                    .all(u8::is_ascii_digit)
                    .then(|| i64::from((d[0] - b'0') * 10 + (d[1] - b'0')))
            };
            let (h, m) = match z.len() {
                6 if z[3] == b':' => (two(1)?, two(4)?),
                5 => (two(1)?, two(3)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            Some(sign * (h * 3600 + m * 60))
        }
    };
    if sep == b'/' && offset.is_some() {
        return None;
    }
    let Some(date) = NaiveDate::from_ymd_opt(year as i32, month, day) else {
        return Some(None);
    };
    let Some(time) = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos) else {
        return Some(None);
    };
    let naive = NaiveDateTime::new(date, time);
    Some(match offset {
        Some(offset) => Some(naive.and_utc() - chrono::Duration::seconds(offset)),
        None => local(naive),
    })
}

/// Seconds, milliseconds, microseconds or nanoseconds since the epoch, told apart by size.
pub(super) fn from_epoch(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n <= 0.0 || n >= 9.2e18 {
        return None;
    }
    if n.fract() == 0.0 {
        return from_epoch_int(n as i64);
    }
    // Split before scaling so a fraction of a second keeps its precision.
    let per_second = epoch_units_per_second(n as i64);
    let seconds = (n / per_second as f64).floor();
    let nanos = ((n - seconds * per_second as f64) * (1e9 / per_second as f64)).round();
    DateTime::from_timestamp(seconds as i64, (nanos as u32).min(999_999_999))
}

pub(super) fn from_epoch_int(n: i64) -> Option<DateTime<Utc>> {
    if n <= 0 {
        return None;
    }
    let per_second = epoch_units_per_second(n);
    let nanos_per_unit = 1_000_000_000 / per_second;
    DateTime::from_timestamp(n / per_second, ((n % per_second) * nanos_per_unit) as u32)
}

/// 1e11 seconds is the year 5138, so anything bigger is a finer unit.
fn epoch_units_per_second(n: i64) -> i64 {
    match n {
        100_000_000_000_000_000.. => 1_000_000_000,
        100_000_000_000_000.. => 1_000_000,
        100_000_000_000.. => 1_000,
        _ => 1,
    }
}

/// `Dec 12 10:30:45`, local time, in the year that puts it closest before now.
pub(super) fn parse_syslog_time(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let year = now.with_timezone(&Local).year();
    let with_year = |year: i32| {
        NaiveDateTime::parse_from_str(
            &format!(
                "{year} {}",
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            "%Y %b %d %H:%M:%S",
        )
        .ok()
        .and_then(local)
    };
    let t = with_year(year)?;
    if t > now + chrono::Duration::days(1) {
        with_year(year - 1)
    } else {
        Some(t)
    }
}

/// glog's `MMDD hh:mm:ss.ffffff`, local time, this year (or last, as for syslog).
pub(super) fn parse_glog_time(
    month: &str,
    day: &str,
    time: &str,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let year = now.with_timezone(&Local).year();
    let at = |year: i32| {
        let date = NaiveDate::from_ymd_opt(year, month.parse().ok()?, day.parse().ok()?)?;
        let time = NaiveTime::parse_from_str(time, "%H:%M:%S%.f").ok()?;
        local(date.and_time(time))
    };
    let t = at(year)?;
    if t > now + chrono::Duration::days(1) {
        at(year - 1)
    } else {
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let now = Utc::now();
        let z = DateTime::parse_from_rfc3339("2025-12-12T10:30:45Z").unwrap();
        for text in [
            "2025-12-12T10:30:45Z",
            "2025-12-12 10:30:45Z",
            "2025-12-12T10:30:45+00:00",
            "2025-12-12T10:30:45 UTC",
        ] {
            assert_eq!(parse_time(text, now), Some(z.with_timezone(&Utc)), "{text}");
        }
        assert_eq!(parse_time("1765535445", now), Some(z.with_timezone(&Utc)));
        assert_eq!(
            parse_time("1765535445000000", now),
            Some(z.with_timezone(&Utc))
        );
        assert_eq!(parse_time("not a time", now), None);
        assert!(parse_time("Feb 30 10:00:00", now).is_none());
    }

    #[test]
    fn the_fast_time_reader_agrees_with_chrono() {
        let now = Utc::now();
        let mut cases = vec![
            "2025-12-12T10:30:45Z".to_string(),
            "2025-12-12T10:30:45.123Z".into(),
            "2025-12-12t10:30:45.123456789z".into(),
            "2025-12-12T10:30:45.1234567891Z".into(),
            "2025-12-12 10:30:45,123".into(),
            "2025-12-12 10:30:45".into(),
            "2025-12-12T10:30:45+01:00".into(),
            "2025-12-12T10:30:45-0530".into(),
            "2025-12-12 10:30:45 +0000".into(),
            "2025-12-12 10:30:45 UTC".into(),
            "2025-12-12T10:30:45UTC".into(),
            "2025/12/12 10:30:45".into(),
            "2025/12/12 10:30:45.5".into(),
            "2025-02-30T10:30:45Z".into(),
            "2025-12-12T24:00:00Z".into(),
            "2025-12-12T10:30:45+24:00".into(),
            "2025-12-12T10:30:45.Z".into(),
            "2025-12-12X10:30:45Z".into(),
            "2025-12-12T10:30:45 nonsense".into(),
            "2024-03-31 02:30:00".into(),
            "2024-10-27 02:30:00".into(),
        ];
        for month in 1..=12 {
            cases.push(format!("2025-{month:02}-15 12:00:00"));
        }
        for text in &cases {
            assert_eq!(
                parse_time(text, now),
                parse_time_general(text, now),
                "{text}"
            );
        }
    }
}
