//! Stage timings for `--debug`: each stage of a container's set-up is logged
//! with the microseconds since the command started, by the runtime and by the
//! container's init alike (the init is forked, so it shares the start), so
//! one log reads as a single timeline of both processes.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Marks the start of the command; later calls keep the first mark.
pub fn start() {
    START.get_or_init(Instant::now);
}

/// Logs `stage` at debug level with `us`, the microseconds since [`start`]
/// (since the first stage when `start` was never called).
pub fn stage(stage: &str) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let us = START.get_or_init(Instant::now).elapsed().as_micros() as u64;
        tracing::debug!(us, "{stage}");
    }
}
