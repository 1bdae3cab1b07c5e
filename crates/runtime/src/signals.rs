//! Signal names and numbers as `kill` accepts them: `KILL`, `SIGKILL`, `9`,
//! `RTMIN+3`, case-insensitive.

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// Parses a signal given by name (with or without `SIG`) or number.
pub fn parse(text: &str) -> Result<i32> {
    let bad = || Error::Other(format!("unknown signal {text:?}"));
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (1..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let n = libc::SIGRTMIN() + offset(rest, '+').ok_or_else(bad)?;
        return if n <= libc::SIGRTMAX() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let n = libc::SIGRTMAX() - offset(rest, '-').ok_or_else(bad)?;
        return if n >= libc::SIGRTMIN() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let full = format!("SIG{name}");
    let sig = match full.as_str() {
        "SIGIOT" => Signal::SIGABRT,
        "SIGPOLL" => Signal::SIGIO,
        "SIGCLD" => Signal::SIGCHLD,
        _ => Signal::from_str(&full).map_err(|_| bad())?,
    };
    Ok(sig as i32)
}

fn offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix(sign)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("sigterm").unwrap(), 15);
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("HUP").unwrap(), 1);
        assert_eq!(parse("RTMIN").unwrap(), libc::SIGRTMIN());
        assert_eq!(parse("SIGRTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse("RTMAX-1").unwrap(), libc::SIGRTMAX() - 1);
        for bad in ["", "NOPE", "0", "65", "-1", "RTMIN+99", "SIG"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
