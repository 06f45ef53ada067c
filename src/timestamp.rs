//! Wall-clock time as deploy writes it: Unix seconds, UTC text from them (no date
//! crate: the civil-from-days algorithm, Howard Hinnant's `civil_from_days`), and a
//! span of seconds as people read it (`42s`, `10m`, `3h5m`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS UTC`, for people (the lock holder's "since").
pub fn utc(seconds: u64) -> String {
    let (date, [h, m, s]) = civil(seconds);
    format!("{date} {h:02}:{m:02}:{s:02} UTC")
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339), for records (the SPA manifest's deploy times).
pub fn rfc3339(seconds: u64) -> String {
    let (date, [h, m, s]) = civil(seconds);
    format!("{date}T{h:02}:{m:02}:{s:02}Z")
}

/// A span of `seconds` as people read it: `42s`, `10m`, `3h5m` (a lock's age, a wait).
pub fn age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// The date as `YYYY-MM-DD` and the time of day of Unix `seconds`.
fn civil(seconds: u64) -> (String, [u64; 3]) {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        [rem / 3600, (rem % 3600) / 60, rem % 60],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting_matches_known_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06:40 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert!(now_unix() > 1_795_000_000);
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(3 * 3600 + 5 * 60), "3h5m");
    }
}
