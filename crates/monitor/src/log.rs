//! The container's log in Docker's json-file format: one JSON object per
//! line, `{"log":"...\n","stream":"stdout","time":"2024-...Z"}`, in
//! `<id>-json.log`, rotated to `.1`, `.2`, ... when `max-size` is set.
//!
//! Output is cut into messages at newlines, as Docker does; a line longer
//! than [`LINE_MAX`] is written in pieces (without a newline, Docker's
//! "partial" messages), and what is left at end of stream is written as is.

use crate::sys::{self, Fd, o};
use crate::text::{self, Buf};

/// The longest message: longer lines are split (Docker's 16 KiB buffer).
pub const LINE_MAX: usize = 16 * 1024;

/// Room for one encoded message: every byte may take six (`\u00XX`).
const ENCODED_MAX: usize = LINE_MAX * 6 + 128;

/// Which stream a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The container's stdout (or its terminal).
    Stdout,
    /// The container's stderr.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static [u8] {
        match self {
            Stream::Stdout => b"stdout",
            Stream::Stderr => b"stderr",
        }
    }
}

/// The json-file writer with its rotation settings.
pub struct JsonLog {
    fd: Fd,
    name: Buf<256>,
    size: u64,
    /// Rotate before the file would grow beyond this many bytes (0: never).
    max_size: u64,
    /// How many files to keep, the current one included (at least 1).
    max_file: u32,
    line: Buf<ENCODED_MAX>,
}

impl JsonLog {
    /// Opens (appending) the log file `name`, relative to the working directory.
    pub fn open(name: &[u8], max_size: u64, max_file: u32) -> sys::SysResult<JsonLog> {
        let fd = open_log(name)?;
        let size = sys::seek_end(fd)?;
        let mut n = Buf::new();
        n.push(name);
        Ok(JsonLog {
            fd,
            name: n,
            size,
            max_size,
            max_file: max_file.max(1),
            line: Buf::new(),
        })
    }

    /// Writes one message (at most [`LINE_MAX`] bytes) with the time `now`.
    pub fn write(&mut self, stream: Stream, msg: &[u8], now: (i64, u32)) -> sys::SysResult<()> {
        self.line.clear();
        self.line.push(b"{\"log\":\"");
        text::json_escape(&mut self.line, msg);
        self.line
            .push(b"\",\"stream\":\"")
            .push(stream.name())
            .push(b"\",\"time\":\"");
        text::rfc3339_nano(&mut self.line, now.0, now.1);
        self.line.push(b"\"}\n");
        let len = self.line.len() as u64;
        if self.max_size > 0 && self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        sys::write_all(self.fd, self.line.as_bytes())?;
        self.size += len;
        Ok(())
    }

    /// Moves `name` to `name.1` (and `.1` to `.2`, ...), keeping
    /// `max_file` files; with one file, replaces it by a new empty one
    /// (a new inode, so that readers following it notice).
    fn rotate(&mut self) -> sys::SysResult<()> {
        let name = self.name.as_bytes();
        if self.max_file == 1 {
            sys::unlink(name)?;
            let fd = open_log(name)?;
            sys::close(self.fd);
            self.fd = fd;
            self.size = 0;
            return Ok(());
        }
        let numbered = |n: u32| {
            let mut b = Buf::<300>::new();
            b.push(name).byte(b'.').num(n as i64);
            b
        };
        let _ = sys::unlink(numbered(self.max_file - 1).as_bytes());
        for n in (1..self.max_file - 1).rev() {
            match sys::rename(numbered(n).as_bytes(), numbered(n + 1).as_bytes()) {
                Ok(()) | Err(sys::errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        sys::rename(name, numbered(1).as_bytes())?;
        let fd = open_log(name)?;
        sys::close(self.fd);
        self.fd = fd;
        self.size = 0;
        Ok(())
    }
}

impl Drop for JsonLog {
    fn drop(&mut self) {
        sys::close(self.fd);
    }
}

fn open_log(name: &[u8]) -> sys::SysResult<Fd> {
    sys::open(
        name,
        o::WRONLY | o::CREAT | o::APPEND | o::CLOEXEC | o::NOCTTY,
        0o640,
    )
}

/// Cuts a stream into messages: complete lines (with their newline), or
/// [`LINE_MAX`] bytes of a longer one.
pub struct Lines {
    buf: Buf<LINE_MAX>,
}

impl Default for Lines {
    fn default() -> Self {
        Self::new()
    }
}

impl Lines {
    /// No pending bytes.
    pub const fn new() -> Lines {
        Lines { buf: Buf::new() }
    }

    /// Adds `data`; calls `emit` for each message it completes.
    pub fn feed(&mut self, mut data: &[u8], emit: &mut dyn FnMut(&[u8])) {
        while !data.is_empty() {
            let room = LINE_MAX - self.buf.len();
            let take = data.len().min(room);
            match data[..take].iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    if self.buf.is_empty() {
                        emit(&data[..=nl]);
                    } else {
                        self.buf.push(&data[..=nl]);
                        emit(self.buf.as_bytes());
                        self.buf.clear();
                    }
                    data = &data[nl + 1..];
                }
                None => {
                    self.buf.push(&data[..take]);
                    data = &data[take..];
                    if self.buf.len() == LINE_MAX {
                        emit(self.buf.as_bytes());
                        self.buf.clear();
                    }
                }
            }
        }
    }

    /// Emits what is pending (at end of stream).
    pub fn flush(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(self.buf.as_bytes());
            self.buf.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn collect(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut l = std::boxed::Box::new(Lines::new());
        for c in chunks {
            l.feed(c, &mut |m| out.push(m.to_vec()));
        }
        l.flush(&mut |m| out.push(m.to_vec()));
        out
    }

    #[test]
    fn lines_are_cut_at_newlines_and_at_the_limit() {
        assert_eq!(
            collect(&[b"a\nb", b"c\n\nd"]),
            [
                b"a\n".to_vec(),
                b"bc\n".to_vec(),
                b"\n".to_vec(),
                b"d".to_vec()
            ]
        );
        let long = std::vec![b'x'; LINE_MAX + 10];
        let got = collect(&[&long, b"\n"]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), LINE_MAX);
        assert_eq!(got[1], [std::vec![b'x'; 10], b"\n".to_vec()].concat());
    }

    #[test]
    fn writes_json_lines_and_rotates() {
        let dir = std::env::temp_dir().join(std::format!("capsa-monitor-log-{}", sys::getpid()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c-json.log");
        let name = path.to_str().unwrap().as_bytes();
        let mut log = std::boxed::Box::new(JsonLog::open(name, 200, 3).unwrap());
        log.write(Stream::Stdout, b"hello \"x\"\n", (1_700_000_000, 5))
            .unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            first,
            "{\"log\":\"hello \\\"x\\\"\\n\",\"stream\":\"stdout\",\"time\":\"2023-11-14T22:13:20.000000005Z\"}\n"
        );
        for i in 0..20 {
            log.write(
                Stream::Stderr,
                std::format!("line {i}\n").as_bytes(),
                (0, 0),
            )
            .unwrap();
        }
        let names: Vec<String> = {
            let mut v: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names, ["c-json.log", "c-json.log.1", "c-json.log.2"]);
        for n in &names {
            let len = std::fs::metadata(dir.join(n)).unwrap().len();
            assert!(len <= 200, "{n} has {len} bytes");
        }
        let last = std::fs::read_to_string(&path).unwrap();
        assert!(last.ends_with(
            "\"log\":\"line 19\\n\",\"stream\":\"stderr\",\"time\":\"1970-01-01T00:00:00Z\"}\n"
        ));
        drop(log);
        // One file: replaced.
        let mut one = std::boxed::Box::new(JsonLog::open(name, 100, 1).unwrap());
        for _ in 0..5 {
            one.write(Stream::Stdout, b"0123456789\n", (0, 0)).unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
