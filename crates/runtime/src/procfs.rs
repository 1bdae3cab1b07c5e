//! Small readers of /proc and of the host's user database.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Reads a file of /proc, /sys or a cgroup file system whole. Such files
/// report no size, so std's reader starts with 32-byte reads and doubles
/// them: a system call each, and the kernel formats the text again for
/// each. One read into a page-sized buffer gets all of a small file.
pub fn read_text(path: impl AsRef<Path>) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut text = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match file.read(&mut chunk)? {
            0 => break,
            n => text.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8(text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The fields of `/proc/PID/stat` the runtime needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The one-letter process state (R, S, D, Z, T, ...).
    pub state: char,
    /// The parent's pid.
    pub ppid: i32,
    /// Start time in clock ticks after boot.
    pub start_time: u64,
}

/// Parses the content of a `/proc/PID/stat` file.
pub fn parse_stat(text: &str) -> Option<Stat> {
    // The command name (field 2) is in parentheses and may contain anything,
    // so split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    // After state (3) and ppid (4), start time is field 22: skip 17 more.
    let start_time = fields.nth(17)?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        start_time,
    })
}

/// Reads `/proc/PID/stat`; `None` if the process does not exist.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = read_text(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// The start time of a live process; `None` when it is gone or a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid)
        .filter(|s| s.state != 'Z' && s.state != 'X')
        .map(|s| s.start_time)
}

/// The path of one of a process's namespace files.
pub fn ns_path(pid: i32, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/{name}"))
}

/// The name of user `uid` in /etc/passwd, or the number as text.
pub fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut f = line.split(':');
                let name = f.next()?;
                let id = f.nth(1)?.parse::<u32>().ok()?;
                (id == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let line =
            "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.start_time, 987654);
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert!(start_time(i32::MAX).is_none());
    }
}
