//! Human-readable sizes, durations and times exactly as Docker prints them
//! (github.com/docker/go-units and Go's `time` formatting).

use std::time::{SystemTime, UNIX_EPOCH};

use capsa_images::time::civil_from_days;

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// go-units `HumanSizeWithPrecision`: decimal units, `precision`
/// significant digits (`%.*g`): 4261550 → "4.26MB" with precision 3.
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < DECIMAL_UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g(size, precision), DECIMAL_UNITS[i])
}

/// go-units `BytesSize`: binary units (KiB, MiB, ...) with four
/// significant digits, as `docker stats` prints memory.
pub fn human_size_binary(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{}{}", format_g(size, 4), UNITS[i])
}

/// go-units `HumanSize`: four significant digits.
pub fn human_size(size: f64) -> String {
    human_size_with_precision(size, 4)
}

/// Go's `%.*g` for the non-negative numbers sizes are.
fn format_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let p = precision.max(1);
    let exp = v.abs().log10().floor() as i32;
    // Rounding may carry into the next power of ten.
    let rounded = format!("{:.*e}", p - 1, v);
    let exp = rounded
        .split_once('e')
        .and_then(|(_, e)| e.parse::<i32>().ok())
        .unwrap_or(exp);
    if exp < -4 || exp >= p as i32 {
        // Go writes e+XX; sizes below 1000 never get here with precision >= 3.
        let (mant, _) = rounded.split_once('e').unwrap_or((&rounded, ""));
        let mant = trim_zeros(mant);
        return format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let decimals = (p as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}"))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// go-units `HumanDuration` of a number of seconds.
pub fn human_duration(secs: i64) -> String {
    let d = secs.max(0) as f64;
    let seconds = secs;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// Seconds since the epoch now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// "2 weeks ago", as Docker's CREATED columns.
pub fn since(unix: i64) -> String {
    format!("{} ago", human_duration(now_unix() - unix))
}

/// A time in the local zone: (date-time fields, UTC offset seconds, zone name).
fn local(unix: i64) -> ((i64, i64, i64, i64, i64, i64), i64, String) {
    let (offset, zone) = crate::sys::local_offset(unix);
    let t = unix + offset;
    let (y, mo, d) = civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    ((y, mo, d, s / 3600, s / 60 % 60, s % 60), offset, zone)
}

fn offset_str(offset: i64, colon: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.abs();
    if colon {
        format!("{sign}{:02}:{:02}", o / 3600, o / 60 % 60)
    } else {
        format!("{sign}{:02}{:02}", o / 3600, o / 60 % 60)
    }
}

/// Go's `time.Time.String()` in the local zone:
/// `2023-05-19 00:34:17 +0200 CEST`.
pub fn go_time_string(unix: i64) -> String {
    let ((y, mo, d, h, mi, s), off, zone) = local(unix);
    format!(
        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} {} {zone}",
        offset_str(off, false)
    )
}

/// Go's `time.RFC3339` in the local zone: `2023-05-19T00:34:17+02:00`
/// (`Z` in UTC).
pub fn go_rfc3339(unix: i64) -> String {
    let ((y, mo, d, h, mi, s), off, _) = local(unix);
    let z = if off == 0 {
        "Z".to_string()
    } else {
        offset_str(off, true)
    };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{z}")
}

/// Parses Docker's filter timestamps: a Go duration before now (`10m`,
/// `1h30m`), seconds since the epoch (`1700000000[.nanos]`), RFC 3339, or
/// a date `2006-01-02`.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if let Some(d) = parse_go_duration(s) {
        return Some(now_unix() - d);
    }
    if let Some((secs, _)) = s.split_once('.').or(Some((s, "")))
        && !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
    {
        return secs.parse().ok();
    }
    if let Some(t) = capsa_images::time::parse_rfc3339(s) {
        return Some(t);
    }
    capsa_images::time::parse_rfc3339(&format!("{s}T00:00:00Z"))
}

/// A Go duration (`300ms`, `-1.5h`, `2h45m`) in whole seconds.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() || rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic() || *b == 0xc2 || *b == 0xb5)
            .count();
        let unit = &rest[..u];
        rest = &rest[u..];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
    }
    let secs = total as i64;
    Some(if neg { -secs } else { secs })
}

/// go-units `RAMInBytes`, as Docker parses `-m`, `--shm-size`,
/// `--memory-swap` and `max-size`: a number with an optional binary unit
/// (`b`, `k`, `m`, `g`, `t`, `p`, optionally followed by `b` or `ib`),
/// case-insensitive: `256m` = 268435456, `1.5g`.
pub fn parse_size(s: &str) -> anyhow::Result<i64> {
    let bad = || anyhow::anyhow!("invalid size: '{s}'");
    let t = s.trim();
    let num_len = t
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    if num_len == 0 {
        return Err(bad());
    }
    let value: f64 = t[..num_len].parse().map_err(|_| bad())?;
    let unit = t[num_len..].trim_start().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    Ok((value * mult) as i64)
}

/// A Docker timestamp (see [`parse_timestamp`]) in nanoseconds, keeping
/// the fraction of `SECONDS.NANOS` and RFC 3339 forms.
pub fn parse_timestamp_ns(s: &str) -> Option<i64> {
    if let Some((secs, frac)) = s.split_once('.')
        && !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        let mut n: i64 = 0;
        for (i, c) in frac.bytes().take(9).enumerate() {
            n += (c - b'0') as i64 * 10i64.pow(8 - i as u32);
        }
        return Some(secs.parse::<i64>().ok()? * 1_000_000_000 + n);
    }
    if s.contains('T') && s.contains('.') {
        return crate::container::logs::parse_rfc3339_ns(s);
    }
    parse_timestamp(s).map(|t| t * 1_000_000_000)
}

/// Docker's `Up 3 seconds` / `Exited (0) 2 minutes ago` duration words
/// (go-units HumanDuration), from nanoseconds.
pub fn human_duration_ns(ns: i64) -> String {
    human_duration(ns / 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size_with_precision(4261550.0, 3), "4.26MB");
        assert_eq!(human_size_with_precision(0.0, 3), "0B");
        assert_eq!(human_size_with_precision(999.0, 3), "999B");
        assert_eq!(human_size_with_precision(1000.0, 3), "1kB");
        assert_eq!(human_size_with_precision(77_900_000.0, 3), "77.9MB");
        assert_eq!(human_size_with_precision(5_000_000.0, 3), "5MB");
        assert_eq!(human_size(1_234_567_890.0), "1.235GB");
        assert_eq!(human_size_with_precision(999_999.0, 3), "1e+03kB");
    }

    #[test]
    fn durations_like_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(45 * 60), "45 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(47 * 3600), "47 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(15 * 86400), "2 weeks");
        assert_eq!(human_duration(90 * 86400), "3 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }

    #[test]
    fn go_durations_and_timestamps() {
        assert_eq!(parse_go_duration("1h30m"), Some(5400));
        assert_eq!(parse_go_duration("10s"), Some(10));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_timestamp("1700000000"), Some(1700000000));
        assert_eq!(parse_timestamp("2023-11-14T22:13:20Z"), Some(1700000000));
        assert_eq!(parse_timestamp("1970-01-02"), Some(86400));
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn sizes_like_ram_in_bytes() {
        assert_eq!(parse_size("256m").unwrap(), 256 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("10k").unwrap(), 10240);
        assert_eq!(parse_size("32MiB").unwrap(), 32 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("64mb").unwrap(), 64 << 20);
        assert!(parse_size("12q").unwrap_err().to_string().contains("12q"));
        assert!(parse_size("").is_err());
        assert!(parse_size("m").is_err());
        assert_eq!(parse_timestamp_ns("10.5"), Some(10_500_000_000));
    }
}
