//! The durations the flags take: `--lock-wait` and `--wait-timeout`.

/// `--lock-wait`: `90`, `90s`, `10m`, `1h`, `1h30m` (seconds without a unit); at
/// most a day, since a deploy that queues longer than that is stuck, not waiting.
pub fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    let invalid = || format!("{text:?} is not a duration: use e.g. 90s, 10m or 1h");
    let mut seconds: u64 = 0;
    let mut number = String::new();
    let mut parts = 0;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(invalid()),
        };
        let value: u64 = number.parse().map_err(|_| invalid())?;
        seconds = seconds.saturating_add(value.saturating_mul(unit));
        number.clear();
        parts += 1;
    }
    if !number.is_empty() {
        if parts > 0 {
            return Err(invalid());
        }
        seconds = number.parse().map_err(|_| invalid())?;
    } else if parts == 0 {
        return Err(invalid());
    }
    if seconds > 24 * 3600 {
        return Err(format!("{text:?} is more than a day; wait at most 24h"));
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// `--wait-timeout`: a duration as `--lock-wait` reads it, more than zero.
pub fn parse_wait_timeout(text: &str) -> Result<std::time::Duration, String> {
    match parse_wait(text)? {
        wait if wait.is_zero() => Err(format!(
            "{text:?} would stop waiting at once; give the whole wait, e.g. 20m"
        )),
        wait => Ok(wait),
    }
}
