//! Timestamps and durations as kanban-md writes them: Go's RFC3339Nano (offset kept, `Z` for
//! UTC, fraction trimmed) and Go duration strings such as `1h30m` for `claim_timeout`.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use std::time::Duration;

/// A point in time with the offset it was written with.
pub type Timestamp = DateTime<FixedOffset>;

/// Now, in the local offset, as kanban-md stamps `created`/`updated`.
pub fn now() -> Timestamp {
    chrono::Local::now().fixed_offset()
}

/// Go's `time.RFC3339Nano`: `2006-01-02T15:04:05.999999999Z07:00`.
pub fn format_rfc3339_nano(t: &Timestamp) -> String {
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    let offset = t.offset().local_minus_utc();
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60));
    }
    out
}

/// Reads a timestamp leniently: RFC 3339 (any case `T`, fraction, `Z` or offset), a space
/// instead of `T`, or a bare date (midnight UTC), as YAML and kanban-md accept them.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    let utc = FixedOffset::east_opt(0)?;
    for layout in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dt%H:%M:%S%.f",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, layout) {
            return utc.from_local_datetime(&naive).single();
        }
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(t);
    }
    let date = parse_date(s)?;
    utc.from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .single()
}

/// A `due` date: `YYYY-MM-DD` (a full timestamp is cut to its date).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d);
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.date_naive())
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers with units `ns us µs ms s m h`.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() || negative {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_nano_like_go() {
        for s in [
            "2026-02-01T12:00:00Z",
            "2026-02-01T12:00:00.5Z",
            "2026-02-01T12:00:00.123456789+02:00",
            "2026-02-01T12:00:00.1234-07:30",
        ] {
            assert_eq!(format_rfc3339_nano(&parse_timestamp(s).unwrap()), s);
        }
        let t = parse_timestamp("2026-02-01T12:00:00.500000000+00:00").unwrap();
        assert_eq!(format_rfc3339_nano(&t), "2026-02-01T12:00:00.5Z");
    }

    #[test]
    fn lenient_timestamps() {
        let want = "2026-02-01T00:00:00Z";
        assert_eq!(
            format_rfc3339_nano(&parse_timestamp("2026-02-01").unwrap()),
            want
        );
        assert_eq!(
            format_rfc3339_nano(&parse_timestamp("2026-02-01 00:00:00").unwrap()),
            want
        );
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}
