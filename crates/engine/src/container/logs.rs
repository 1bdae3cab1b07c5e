//! Reading a container's json-file log (`<id>-json.log` and its rotated
//! `.1`, `.2`, ...), and following it across rotations.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One log message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// From stderr (else stdout).
    pub stderr: bool,
    /// Its time, ns since the epoch.
    pub time_ns: i64,
    /// The message as written (with its newline).
    pub log: String,
}

#[derive(Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

/// Parses one line of the log.
pub fn parse_line(line: &[u8]) -> Option<Entry> {
    let l: Line = serde_json::from_slice(line).ok()?;
    Some(Entry {
        stderr: l.stream == "stderr",
        time_ns: parse_rfc3339_ns(&l.time)?,
        log: l.log,
    })
}

/// Parses an RFC 3339 time with an optional fraction into ns since the epoch.
pub fn parse_rfc3339_ns(s: &str) -> Option<i64> {
    let (whole, nanos) = match s.find('.') {
        Some(dot) => {
            let rest = &s[dot + 1..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let tail = &rest[digits.len()..];
            let mut n: i64 = 0;
            for (i, c) in digits.chars().take(9).enumerate() {
                n += (c as i64 - '0' as i64) * 10i64.pow(8 - i as u32);
            }
            (format!("{}{tail}", &s[..dot]), n)
        }
        None => (s.to_string(), 0),
    };
    let secs = capsa_images::time::parse_rfc3339(&whole)?;
    Some(secs * 1_000_000_000 + nanos)
}

/// The log's files, oldest first.
pub fn files(dir: &Path, id: &str) -> Vec<PathBuf> {
    let base = dir.join(format!("{id}-json.log"));
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name
                .strip_prefix(&format!("{id}-json.log."))?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if base.exists() {
        out.push(base);
    }
    out
}

/// Every message in the log files.
pub fn read_all(files: &[PathBuf]) -> Vec<Entry> {
    let mut out = Vec::new();
    for f in files {
        if let Ok(data) = std::fs::read(f) {
            out.extend(data.split(|&b| b == b'\n').filter_map(parse_line));
        }
    }
    out
}

/// Follows the current log file: what is appended, across rotation
/// (the file renamed away and a new one made) and truncation.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    pos: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Starts at the current end of `path`.
    pub fn at_end(path: PathBuf) -> Follower {
        let mut f = Follower {
            path,
            file: None,
            ino: 0,
            pos: 0,
            partial: Vec::new(),
        };
        if let Ok(mut file) = File::open(&f.path) {
            f.ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
            f.pos = file.seek(SeekFrom::End(0)).unwrap_or(0);
            f.file = Some(file);
        }
        f
    }

    /// New complete messages since the last call.
    pub fn poll(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        self.read_rest(&mut out);
        let Ok(m) = std::fs::metadata(&self.path) else {
            return out;
        };
        if m.ino() != self.ino {
            // Rotated, maybe several times since the last call: the files
            // made after the one we held are read whole, oldest first.
            for f in self.rotated_since() {
                read_whole(f, &mut out);
            }
            if let Ok(f) = File::open(&self.path) {
                self.ino = f.metadata().map(|m| m.ino()).unwrap_or(m.ino());
                self.pos = 0;
                self.partial.clear();
                self.file = Some(f);
                self.read_rest(&mut out);
            }
        } else if m.len() < self.pos {
            // Truncated in place.
            self.pos = 0;
            self.partial.clear();
            if let Some(f) = self.file.as_mut() {
                let _ = f.seek(SeekFrom::Start(0));
            }
            self.read_rest(&mut out);
        }
        out
    }

    /// The rotated files newer than the one held, oldest first, opened.
    fn rotated_since(&self) -> Vec<File> {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return Vec::new();
        };
        let prefix = format!("{}.", name.to_string_lossy());
        let mut numbered: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e
                    .file_name()
                    .to_string_lossy()
                    .strip_prefix(&prefix)?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .collect();
        numbered.sort_by_key(|r| std::cmp::Reverse(r.0));
        let opened: Vec<(u64, File)> = numbered
            .into_iter()
            .filter_map(|(_, p)| {
                let f = File::open(p).ok()?;
                Some((f.metadata().ok()?.ino(), f))
            })
            .collect();
        // Ours gone (beyond max-file): every rotated file is newer.
        let skip = opened
            .iter()
            .position(|(ino, _)| *ino == self.ino)
            .map_or(0, |k| k + 1);
        opened.into_iter().skip(skip).map(|(_, f)| f).collect()
    }

    fn read_rest(&mut self, out: &mut Vec<Entry>) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return;
        }
        self.pos += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        if let Some(last) = self.partial.iter().rposition(|&b| b == b'\n') {
            let complete: Vec<u8> = self.partial.drain(..=last).collect();
            out.extend(complete.split(|&b| b == b'\n').filter_map(parse_line));
        }
    }
}

/// Every complete message of a file.
fn read_whole(mut f: File, out: &mut Vec<Entry>) {
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_ok() {
        out.extend(buf.split(|&b| b == b'\n').filter_map(parse_line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_times() {
        let e =
            parse_line(br#"{"log":"hi\n","stream":"stderr","time":"2023-11-14T22:13:20.12345Z"}"#)
                .unwrap();
        assert!(e.stderr);
        assert_eq!(e.log, "hi\n");
        assert_eq!(e.time_ns, 1_700_000_000_123_450_000);
        assert_eq!(
            parse_rfc3339_ns("1970-01-01T00:00:01Z"),
            Some(1_000_000_000)
        );
        assert!(parse_line(b"{nope").is_none());
    }

    #[test]
    fn follows_across_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let line = |s: &str| {
            format!(
                "{{\"log\":\"{s}\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}}\n"
            )
        };
        std::fs::write(&p, line("old")).unwrap();
        let mut f = Follower::at_end(p.clone());
        assert!(f.poll().is_empty());
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        w.write_all(line("a").as_bytes()).unwrap();
        w.write_all(b"{\"log\":\"par").unwrap();
        let got: Vec<String> = f.poll().into_iter().map(|e| e.log).collect();
        assert_eq!(got, ["a\n"]);
        w.write_all(b"t\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n")
            .unwrap();
        // Rotation: renamed away, a new file.
        std::fs::rename(&p, dir.path().join("c-json.log.1")).unwrap();
        std::fs::write(&p, line("b")).unwrap();
        let got: Vec<String> = f.poll().into_iter().map(|e| e.log).collect();
        assert_eq!(got, ["part\n", "b\n"]);
        // Two rotations between calls: the file in between is not lost.
        std::fs::rename(&p, dir.path().join("c-json.log.2")).unwrap();
        std::fs::write(dir.path().join("c-json.log.1"), line("mid")).unwrap();
        std::fs::write(&p, line("new")).unwrap();
        let got: Vec<String> = f.poll().into_iter().map(|e| e.log).collect();
        assert_eq!(got, ["mid\n", "new\n"]);
        assert_eq!(files(dir.path(), "c").len(), 3);
        // Replaced by a new file (max-file=1: no numbered files).
        let one = tempfile::tempdir().unwrap();
        let p = one.path().join("d-json.log");
        std::fs::write(&p, line("first")).unwrap();
        let mut f = Follower::at_end(p.clone());
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, line("c")).unwrap();
        let got: Vec<String> = f.poll().into_iter().map(|e| e.log).collect();
        assert_eq!(got, ["c\n"]);
    }
}
