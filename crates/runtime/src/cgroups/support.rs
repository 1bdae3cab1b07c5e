//! What the host's cgroups can apply, asked before a container exists: for
//! callers that drop a setting the kernel cannot honour with a warning
//! (Docker's engine does so for block I/O weights) rather than have the
//! runtime refuse it.
//!
//! Many interface files exist only in cgroups other than a hierarchy's root
//! (BFQ's `blkio.bfq.weight`, iocost's `io.weight`), and the caller's own
//! cgroup often is the root, so a cgroup like the container's is looked at:
//! the one containers go beneath when it is not the root, else one of its
//! children.

use std::path::{Path, PathBuf};

use super::{Layout, Mode, UNIFIED};

/// Which block I/O weights the kernel takes in a container's cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockIoWeights {
    /// `linux.resources.blockIO.weight` (Docker's `--blkio-weight`).
    pub weight: bool,
    /// `linux.resources.blockIO.weightDevice` (`--blkio-weight-device`).
    pub weight_device: bool,
}

impl BlockIoWeights {
    const NONE: BlockIoWeights = BlockIoWeights {
        weight: false,
        weight_device: false,
    };
    const ALL: BlockIoWeights = BlockIoWeights {
        weight: true,
        weight_device: true,
    };
}

/// At most this many children of the base cgroup are looked at.
const CHILDREN_LOOKED_AT: usize = 16;

impl Layout {
    /// Which block I/O weights the kernel takes in the cgroups containers
    /// get beneath the caller's (the ones the runtime writes: CFQ's
    /// `blkio.weight` or BFQ's `blkio.bfq.weight` on v1; on v2 BFQ's
    /// `io.bfq.weight` or iocost's `io.weight`). On v1 they exist only while
    /// an I/O scheduler that takes weights is loaded (not with mq-deadline,
    /// kyber or none).
    pub fn block_io_weights(&self) -> BlockIoWeights {
        let Some(mode) = self.mode() else {
            return BlockIoWeights::NONE;
        };
        let v1 = self
            .hierarchies
            .iter()
            .find(|h| h.version == 1 && h.name.split(',').any(|c| c == "blkio"));
        match (mode, v1) {
            (Mode::V1 | Mode::Hybrid, Some(h)) => {
                let Some(base) = self.base_dir(h, mode) else {
                    return BlockIoWeights::NONE;
                };
                let at_root = self.base(h, mode) == Path::new("/");
                let found = |names: [&str; 2]| {
                    let like_a_container = if at_root {
                        children(&base).next()
                    } else {
                        Some(base.clone())
                    };
                    match like_a_container {
                        Some(dir) => names.iter().any(|n| dir.join(n).exists()),
                        // No cgroup but the root to look at: CFQ's files are
                        // on the root too; BFQ's appear in every other cgroup
                        // once it is loaded, and a loaded BFQ is listed among
                        // the block devices' schedulers.
                        None => base.join(names[0]).exists() || bfq_is_loaded(),
                    }
                };
                BlockIoWeights {
                    weight: found(["blkio.weight", "blkio.bfq.weight"]),
                    weight_device: found(["blkio.weight_device", "blkio.bfq.weight_device"]),
                }
            }
            (Mode::V2 | Mode::Hybrid, _) => {
                let Some(h) = self.hierarchies.iter().find(|h| h.name == UNIFIED) else {
                    return BlockIoWeights::NONE;
                };
                let Some(base) = self.base_dir(h, mode) else {
                    return BlockIoWeights::NONE;
                };
                let controllers =
                    std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
                if !controllers.split_whitespace().any(|c| c == "io") {
                    return BlockIoWeights::NONE;
                }
                // A cgroup with the io controller enabled (io.max is in every
                // such cgroup but the root) shows which weight files there
                // are; with none to look at, assume one, as Docker does.
                let at_root = self.base(h, mode) == Path::new("/");
                let own = (!at_root).then(|| base.clone());
                let with_io = own
                    .into_iter()
                    .chain(children(&base))
                    .find(|d| d.join("io.max").exists());
                match with_io {
                    Some(d)
                        if !["io.weight", "io.bfq.weight"]
                            .iter()
                            .any(|n| d.join(n).exists()) =>
                    {
                        BlockIoWeights::NONE
                    }
                    _ => BlockIoWeights::ALL,
                }
            }
            (Mode::V1, None) => BlockIoWeights::NONE,
        }
    }
}

/// The first few child cgroups of `dir`.
fn children(dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .take(CHILDREN_LOOKED_AT)
}

/// Whether BFQ is among the I/O schedulers the block devices may use.
fn bfq_is_loaded() -> bool {
    std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read_to_string(e.path().join("queue/scheduler")).is_ok_and(|s| {
                s.split_whitespace()
                    .any(|n| n.trim_matches(['[', ']']) == "bfq")
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::Hierarchy;

    fn layout(mount: &Path, name: &str, version: u8, own: &str) -> Layout {
        Layout {
            hierarchies: vec![Hierarchy {
                name: name.into(),
                mount_point: mount.to_path_buf(),
                version,
                root: "/".into(),
            }],
            own: [(name.to_string(), PathBuf::from(own))].into(),
        }
    }

    fn touch(dir: &Path, names: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        for n in names {
            std::fs::write(dir.join(n), "").unwrap();
        }
    }

    #[test]
    fn v1_weights_are_looked_for_beneath_the_root() {
        // BFQ's files are in every cgroup but the root.
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), &["blkio.throttle.read_bps_device"]);
        touch(
            &t.path().join("system.slice"),
            &["blkio.bfq.weight", "blkio.bfq.weight_device"],
        );
        assert_eq!(
            layout(t.path(), "blkio", 1, "/").block_io_weights(),
            BlockIoWeights::ALL
        );
        assert_eq!(
            layout(t.path(), "blkio", 1, "/system.slice").block_io_weights(),
            BlockIoWeights::ALL
        );
    }

    #[test]
    fn v1_without_a_scheduler_that_weighs_has_no_weights() {
        let t = tempfile::tempdir().unwrap();
        touch(&t.path().join("a"), &["blkio.throttle.read_bps_device"]);
        assert_eq!(
            layout(t.path(), "blkio", 1, "/").block_io_weights(),
            BlockIoWeights::NONE
        );
        assert_eq!(
            layout(t.path(), "blkio", 1, "/a").block_io_weights(),
            BlockIoWeights::NONE
        );
        // CFQ's weight without its per-device file (as some kernels had).
        touch(&t.path().join("a"), &["blkio.weight"]);
        assert_eq!(
            layout(t.path(), "blkio", 1, "/a").block_io_weights(),
            BlockIoWeights {
                weight: true,
                weight_device: false
            }
        );
    }

    #[test]
    fn v2_needs_the_io_controller_and_a_weight_file() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "cpu memory pids").unwrap();
        let l = layout(t.path(), UNIFIED, 2, "/init.scope");
        assert_eq!(l.block_io_weights(), BlockIoWeights::NONE);
        std::fs::write(t.path().join("cgroup.controllers"), "cpu io memory").unwrap();
        // Nothing with io enabled to look at: assumed, as Docker does.
        assert_eq!(l.block_io_weights(), BlockIoWeights::ALL);
        touch(&t.path().join("x"), &["io.max"]);
        assert_eq!(l.block_io_weights(), BlockIoWeights::NONE);
        touch(&t.path().join("x"), &["io.weight"]);
        assert_eq!(l.block_io_weights(), BlockIoWeights::ALL);
    }
}
