//! What the integration tests of every capsa crate share (a dev-dependency
//! only): the busybox binary test images and bundles are made from, and
//! the check that skips a test, saying why, where it cannot run.

use std::path::Path;

/// The busybox binary (Debian's busybox-static) tests build from.
pub const BUSYBOX: &str = "/usr/bin/busybox";

/// Prints why a test is skipped and returns true when not running as root
/// or without busybox.
pub fn skip_unless_root() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: this test needs root");
        return true;
    }
    if !Path::new(BUSYBOX).exists() {
        eprintln!("SKIPPED: {BUSYBOX} is missing (apt-get install busybox-static)");
        return true;
    }
    false
}

/// Skips (returning from the test) unless running as root with busybox.
#[macro_export]
macro_rules! require_root {
    () => {
        if $crate::skip_unless_root() {
            return;
        }
    };
}

/// The weight file of the host's cgroup v1 blkio hierarchy: CFQ's
/// `blkio.weight` or BFQ's `blkio.bfq.weight`; `None` when the I/O
/// scheduler takes no weights (mq-deadline, kyber, none) or there is no v1
/// blkio hierarchy.
pub fn blkio_weight_file() -> Option<&'static str> {
    ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| Path::new("/sys/fs/cgroup/blkio").join(f).exists())
}
