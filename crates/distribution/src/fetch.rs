//! Reading a blob that survives broken connections: when the stream breaks
//! (an I/O error, or an end before the announced size), it waits with
//! exponential backoff and continues with an HTTP `Range` request from the
//! byte it had reached. A registry that ignores ranges sends the blob from
//! the start again and the bytes already read are skipped, so whatever
//! reads through this (the hashing and unpacking pipeline) still sees each
//! byte once, in order.

use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use capsa_images::Digest;
use ureq::BodyReader;

use crate::client::Session;
use crate::error::{Failure, Kind};

/// The size of a blob whose descriptor gives none: it ends where the stream does.
const UNKNOWN_SIZE: u64 = u64::MAX;

/// Consecutive failures (without any byte received in between) before giving up.
pub const MAX_RETRIES: u32 = 5;

/// The wait before the `n`th consecutive retry: 0.5 s, 1 s, 2 s, ... at most 10 s.
pub fn backoff(n: u32) -> Duration {
    let ms = 500u64.saturating_mul(1 << n.saturating_sub(1).min(5));
    Duration::from_millis(ms.min(10_000))
}

/// Told of a blob read's progress and retries.
pub trait Observer: Sync {
    /// Bytes of the blob received so far.
    fn received(&self, total: u64);
    /// The connection broke; a new attempt starts after `wait`.
    fn retrying(&self, attempt: u32, wait: Duration, reason: &str);
}

/// A blob being read from a registry, resumed across broken connections.
pub struct BlobReader<'a> {
    session: &'a Session,
    digest: &'a Digest,
    size: u64,
    pos: u64,
    body: Option<BodyReader<'static>>,
    /// Bytes still to skip of a body that restarted from 0.
    skip: u64,
    failures: u32,
    cancel: &'a AtomicBool,
    observer: &'a dyn Observer,
    /// The failure that ended the read, for the caller to report.
    failure: &'a Mutex<Option<Failure>>,
    /// Set once the read failed: it stays failed.
    failed: bool,
}

impl<'a> BlobReader<'a> {
    /// A reader of blob `digest` of `size` bytes; reading stops with an
    /// error soon after `cancel` is set. A failure that ends the read is
    /// also left in `failure`.
    pub fn new(
        session: &'a Session,
        digest: &'a Digest,
        size: u64,
        cancel: &'a AtomicBool,
        observer: &'a dyn Observer,
        failure: &'a Mutex<Option<Failure>>,
    ) -> Self {
        BlobReader {
            session,
            digest,
            size: if size == 0 { UNKNOWN_SIZE } else { size },
            pos: 0,
            body: None,
            skip: 0,
            failures: 0,
            cancel,
            observer,
            failure,
            failed: false,
        }
    }

    fn fail(&mut self, f: Failure) -> io::Error {
        self.failed = true;
        self.body = None;
        let e = io::Error::other(f.reason.clone());
        *self.failure.lock().expect("failure slot") = Some(f);
        e
    }

    /// Records a broken stream and waits before the next attempt, or gives up.
    fn broken(&mut self, reason: String) -> io::Result<()> {
        self.body = None;
        self.failures += 1;
        if self.failures > MAX_RETRIES {
            return Err(self.fail(Failure::new(
                Kind::Unreachable,
                format!(
                    "blob {}: giving up after {MAX_RETRIES} retries at byte {} of {}: {reason}",
                    self.digest, self.pos, self.size
                ),
            )));
        }
        let wait = backoff(self.failures);
        tracing::debug!(digest = %self.digest, pos = self.pos, "retrying in {wait:?}: {reason}");
        self.observer.retrying(self.failures, wait, &reason);
        std::thread::sleep(wait);
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.failed {
                return Err(io::Error::other("the blob could not be read"));
            }
            if self.cancel.load(Ordering::Relaxed) {
                // Not `Interrupted`: readers retry those.
                return Err(io::Error::other("cancelled"));
            }
            if self.body.is_none() {
                match self.session.open_blob(self.digest, self.pos) {
                    Ok((body, start)) => {
                        self.skip = self.pos - start;
                        self.body = Some(body);
                    }
                    Err(f) if f.kind == Kind::Unreachable => {
                        self.broken(f.reason)?;
                        continue;
                    }
                    Err(f) => return Err(self.fail(f)),
                }
            }
            let body = self.body.as_mut().expect("opened above");
            if self.skip > 0 {
                let mut scratch = [0u8; 16 << 10];
                let want = scratch.len().min(self.skip as usize);
                match body.read(&mut scratch[..want]) {
                    Ok(0) => {
                        let r = format!("connection closed at byte {}", self.pos - self.skip);
                        self.broken(r)?;
                    }
                    Ok(n) => self.skip -= n as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => self.broken(e.to_string())?,
                }
                continue;
            }
            match body.read(buf) {
                Ok(0) if self.size != UNKNOWN_SIZE && self.pos < self.size => {
                    let r = format!("connection closed at byte {} of {}", self.pos, self.size);
                    self.broken(r)?;
                }
                Ok(0) => return Ok(0),
                Ok(n) => {
                    if self.pos + n as u64 > self.size {
                        return Err(self.fail(Failure::new(
                            Kind::Digest,
                            format!(
                                "blob {}: the registry sent more than the {} bytes the manifest announces",
                                self.digest, self.size
                            ),
                        )));
                    }
                    self.pos += n as u64;
                    self.failures = 0;
                    self.observer.received(self.pos);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.broken(e.to_string())?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_millis(1000));
        assert_eq!(backoff(3), Duration::from_millis(2000));
        assert_eq!(backoff(30), Duration::from_millis(10_000));
    }
}
