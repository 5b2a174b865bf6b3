//! Sizes ("100GB", "8MB", 1048576) and durations ("30s", "1m30s") in human form.

use std::time::Duration;

/// Parses a byte size: a plain number of bytes, or a number with K/KB/M/MB/G/GB/T/TB
/// (powers of 1024, as nats-server reads them).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size: expected a number with an optional unit such as 512MB or 10GB"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        other => return Err(format!("unknown size unit `{other}` in `{text}`: use B, KB, MB, GB or TB")),
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size `{text}` is too large"))
}

/// Parses a duration as Go's time.ParseDuration does, plus `d` for days: "500ms", "30s", "1h30m", "7d".
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let err = || format!("`{text}` is not a duration: expected forms such as 500ms, 30s, 2m, 1h30m or 7d");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits_end = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits_end == 0 {
            return Err(err());
        }
        let value: u64 = rest[..digits_end].parse().map_err(|_| err())?;
        rest = &rest[digits_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => Duration::from_nanos(1),
            "us" | "µs" => Duration::from_micros(1),
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return Err(err()),
        };
        total += unit * u32::try_from(value).map_err(|_| err())?;
        rest = &rest[unit_end..];
    }
    Ok(total)
}

/// Formats a duration the way Go prints it (and nats-server parses it): "30s", "1m30s", "250ms".
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 {
        out += &format!("{s}s");
    }
    out
}

/// A duration as a topology writes it, with days (`7d`, `1d12h`). Server configs take
/// [`format_duration`]: Go durations have no days.
pub fn format_duration_days(d: Duration) -> String {
    let days = d.as_secs() / 86_400;
    let rest = d - Duration::from_secs(days * 86_400);
    match (days, rest.is_zero()) {
        (0, _) => format_duration(d),
        (n, true) => format!("{n}d"),
        (n, false) => format!("{n}d{}", format_duration(rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("8MB").unwrap(), 8 << 20);
        assert_eq!(parse_size("10GB").unwrap(), 10 << 30);
        assert_eq!(parse_size("1 TB").unwrap(), 1 << 40);
        assert!(parse_size("10XB").is_err());
        assert!(parse_size("GB").is_err());
    }

    #[test]
    fn durations_round_trip() {
        for (text, canonical) in [
            ("30s", "30s"),
            ("90s", "1m30s"),
            ("500ms", "500ms"),
            ("2h", "2h"),
            ("1h30m", "1h30m"),
            ("7d", "168h"),
        ] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), canonical, "{text}");
        }
        for (text, shown) in [("7d", "7d"), ("36h", "1d12h"), ("2h", "2h"), ("90s", "1m30s")] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration_days(d), shown, "{text}");
            assert_eq!(parse_duration(shown).unwrap(), d, "{shown}");
        }
        for bad in ["", "10", "s", "5x", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
