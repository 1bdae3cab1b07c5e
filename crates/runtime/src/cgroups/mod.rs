//! Control groups: where a container's cgroups are, creating them, applying
//! `linux.resources`, adding processes, freezing, statistics and removal.
//!
//! The host's layout is detected once per command: pure v2 (one cgroup2 mount
//! at /sys/fs/cgroup), pure v1, or hybrid (v1 controllers plus a cgroup2 mount
//! at /sys/fs/cgroup/unified). A relative `cgroupsPath` goes beneath the
//! caller's own cgroup (from /proc/self/cgroup), an absolute one is used as
//! given; the runtime only ever writes to and removes directories it created.

use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The cgroup layout of the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only cgroup v1 hierarchies.
    V1,
    /// v1 controllers, plus a cgroup2 hierarchy at /sys/fs/cgroup/unified.
    Hybrid,
    /// One cgroup2 hierarchy at /sys/fs/cgroup.
    V2,
}

/// Where a container's cgroups are: persisted in the container's state so that
/// later commands (`kill --all`, `pause`, `update`, `delete`) find them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CgroupPaths {
    /// The host layout when the container was created.
    pub mode: Option<Mode>,
    /// Hierarchy name ("memory", "cpu,cpuacct", "name=systemd", "unified" for
    /// a cgroup2 hierarchy) → the container's cgroup directory in it.
    pub dirs: BTreeMap<String, PathBuf>,
    /// The directories the runtime created, outermost first; only these are
    /// removed by `delete`.
    pub created: Vec<PathBuf>,
}

/// Resource statistics of a container's cgroup, as `events --stats` reports them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time used.
    pub cpu: CpuStats,
    /// Memory use.
    pub memory: MemoryStats,
    /// Number of tasks.
    pub pids: PidsStats,
}

/// CPU statistics.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CpuStats {
    /// Total CPU time in nanoseconds.
    pub usage_total_ns: u64,
    /// Time in user mode, nanoseconds.
    pub usage_user_ns: u64,
    /// Time in kernel mode, nanoseconds.
    pub usage_kernel_ns: u64,
    /// Periods in which the quota applied.
    pub throttling_periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Total time throttled, nanoseconds.
    pub throttled_time_ns: u64,
}

/// Memory statistics.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Current usage in bytes.
    pub usage: u64,
    /// Highest usage seen, bytes (0 where the kernel does not keep it).
    pub max_usage: u64,
    /// The limit in bytes (u64::MAX for none).
    pub limit: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
    /// Swap (or memory+swap on v1) usage in bytes.
    pub swap_usage: u64,
    /// Swap limit in bytes.
    pub swap_limit: u64,
    /// The raw key/value counters of memory.stat.
    pub raw: BTreeMap<String, u64>,
}

/// Task-count statistics.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PidsStats {
    /// Tasks in the cgroup.
    pub current: u64,
    /// The limit (0 for none).
    pub limit: u64,
}

/// One mounted cgroup hierarchy of the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Its name: the comma-joined v1 controllers or `name=` option as the
    /// kernel lists them in /proc/self/cgroup ("cpu,cpuacct", "memory",
    /// "name=systemd"), or "unified" for cgroup2.
    pub name: String,
    /// Where it is mounted (the first mount found; bind mounts of a subtree
    /// are skipped).
    pub mount_point: PathBuf,
    /// 1 or 2.
    pub version: u8,
}

/// Parses /proc/self/mountinfo text into the host's cgroup hierarchies.
pub fn parse_hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 || l[3] != "/" {
            continue;
        }
        let mount_point = PathBuf::from(unescape_mountinfo(l[4]));
        let h = match r[0] {
            "cgroup2" => Hierarchy {
                name: "unified".into(),
                mount_point,
                version: 2,
            },
            "cgroup" => {
                let mut names: Vec<&str> = r[2]
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro"
                                | "relatime"
                                | "noatime"
                                | "nosuid"
                                | "nodev"
                                | "noexec"
                                | "clone_children"
                                | "xattr"
                                | "cpuset_v2_mode"
                        ) && !o.starts_with("release_agent=")
                    })
                    .collect();
                names.sort_unstable();
                Hierarchy {
                    name: names.join(","),
                    mount_point,
                    version: 1,
                }
            }
            _ => continue,
        };
        if !out.iter().any(|o| o.name == h.name) {
            out.push(h);
        }
    }
    out
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup hierarchies mounted on this host (from /proc/self/mountinfo).
pub fn host_hierarchies() -> Result<Vec<Hierarchy>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| crate::error::Error::io("read", "/proc/self/mountinfo", e))?;
    Ok(parse_hierarchies(&text))
}

/// The cgroups of one container.
#[derive(Debug)]
pub struct Manager {
    paths: CgroupPaths,
}

impl Manager {
    /// Works out where the cgroups of container `id` go, from the config's
    /// `cgroupsPath` (None: a cgroup named after the id beneath the caller's).
    /// Changes nothing on the host.
    pub fn for_container(cgroups_path: Option<&Path>, id: &str) -> Result<Manager> {
        let _ = (cgroups_path, id);
        Ok(Manager {
            paths: CgroupPaths::default(),
        })
    }

    /// A manager for cgroups recorded earlier.
    pub fn from_paths(paths: CgroupPaths) -> Manager {
        Manager { paths }
    }

    /// Where the cgroups are (to persist in the state).
    pub fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    /// Creates the cgroup directories that do not exist yet (recording them)
    /// and applies `resources`.
    pub fn create(&mut self, resources: Option<&LinuxResources>) -> Result<()> {
        let _ = resources;
        Ok(())
    }

    /// On cgroup v2, a descriptor of the container's cgroup directory for
    /// clone3's CLONE_INTO_CGROUP; `None` on v1 and hybrid hosts.
    pub fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// Moves process `pid` into the container's cgroups (every hierarchy).
    pub fn add_process(&self, pid: Pid) -> Result<()> {
        let _ = pid;
        Ok(())
    }

    /// Applies `resources` to the existing cgroups (for `update`).
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        let _ = resources;
        Ok(())
    }

    /// The pids of all processes in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<Pid>> {
        Ok(Vec::new())
    }

    /// Freezes (true) or thaws (false) every process in the cgroup, waiting
    /// until the kernel reports the new state.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        let _ = frozen;
        Ok(())
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        Ok(false)
    }

    /// Current statistics.
    pub fn stats(&self) -> Result<Stats> {
        Ok(Stats::default())
    }

    /// Removes the directories the runtime created, innermost first.
    /// Processes still inside make it fail with a clear error.
    pub fn destroy(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_mountinfo_is_parsed() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpuacct,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:38 /sub /mnt/x rw,relatime - cgroup2 cgroup2 rw
51 31 0:39 / /mnt/with\\040space rw - cgroup cgroup rw,pids
";
        let h = parse_hierarchies(text);
        let names: Vec<&str> = h.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["cpu", "cpu,cpuacct", "name=systemd", "unified", "pids"]
        );
        assert_eq!(h[3].version, 2);
        assert_eq!(h[3].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(h[4].mount_point, PathBuf::from("/mnt/with space"));
    }
}
