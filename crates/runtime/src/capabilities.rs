//! Process capabilities: the five sets of `process.capabilities`, applied
//! exactly as given.
//!
//! The bounding set is reduced first (it needs CAP_SETPCAP, which the later
//! steps may drop), then the uid changes with PR_SET_KEEPCAPS, then effective,
//! permitted and inheritable are set in one capset(2), and the ambient set last
//! (its members must be permitted and inheritable).

use std::collections::HashSet;

use caps::{CapSet, Capability as Cap};
use oci_spec::runtime::{Capability, LinuxCapabilities};

use crate::error::{Error, Result};
use crate::sys;

/// The 14 capabilities Docker gives a container by default (and capsa's
/// engine with it).
pub const DEFAULT_CONTAINER_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// CAP_SYS_ADMIN as a bit mask (installing a seccomp filter without
/// no_new_privs needs it).
pub const CAP_SYS_ADMIN: u64 = 1 << 21;

/// The capabilities of one process, as bit masks (bit N = capability N).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Upper bound of what the process and its children can ever gain.
    pub bounding: u64,
    /// Capabilities in use.
    pub effective: u64,
    /// Capabilities the process may make effective.
    pub permitted: u64,
    /// Capabilities kept across execve for files with inheritable caps.
    pub inheritable: u64,
    /// Capabilities kept across execve of unprivileged programs.
    pub ambient: u64,
}

/// The kernel's capability for an OCI capability name.
pub fn to_kernel(cap: &Capability) -> Result<Cap> {
    let name = format!("CAP_{cap}");
    name.parse::<Cap>()
        .map_err(|_| Error::config("process.capabilities", format!("unknown capability {name}")))
}

fn mask(set: Option<&HashSet<Capability>>, supported: u64) -> Result<u64> {
    let mut bits = 0u64;
    for cap in set.into_iter().flatten() {
        bits |= to_kernel(cap)?.bitmask();
    }
    // Capabilities this kernel does not know are left out, as runc does.
    Ok(bits & supported)
}

/// The capabilities this kernel supports (up to
/// /proc/sys/kernel/cap_last_cap), read once: probing each one with
/// PR_CAPBSET_READ would cost a system call per capability per use.
pub fn supported() -> &'static [Cap] {
    static SUPPORTED: std::sync::OnceLock<Vec<Cap>> = std::sync::OnceLock::new();
    SUPPORTED.get_or_init(|| {
        let last = crate::procfs::read_text("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|t| t.trim().parse::<u8>().ok());
        let mut list: Vec<Cap> = match last {
            Some(last) => caps::all()
                .into_iter()
                .filter(|c| c.index() <= last)
                .collect(),
            None => caps::runtime::thread_all_supported().into_iter().collect(),
        };
        list.sort_by_key(|c| c.index());
        list
    })
}

/// All capabilities this kernel supports, as a mask.
pub fn supported_mask() -> u64 {
    supported().iter().fold(0, |m, c| m | c.bitmask())
}

impl CapSets {
    /// The sets of `process.capabilities` (absent sets are empty).
    pub fn from_config(caps: Option<&LinuxCapabilities>) -> Result<CapSets> {
        let supported = supported_mask();
        let Some(c) = caps else {
            return Ok(CapSets::default());
        };
        Ok(CapSets {
            bounding: mask(c.bounding().as_ref(), supported)?,
            effective: mask(c.effective().as_ref(), supported)?,
            permitted: mask(c.permitted().as_ref(), supported)?,
            inheritable: mask(c.inheritable().as_ref(), supported)?,
            ambient: mask(c.ambient().as_ref(), supported)?,
        })
    }

    /// Drops from the bounding set everything not in `self.bounding`.
    pub fn apply_bounding(&self) -> Result<()> {
        for &cap in supported() {
            if self.bounding & cap.bitmask() == 0 {
                caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                    Error::Other(format!("dropping {cap} from the bounding set: {e}"))
                })?;
            }
        }
        Ok(())
    }

    /// These sets with `bits` also effective and permitted, for steps
    /// between setting them and exec. Exec drops them again (unless the
    /// configured inheritable, ambient or, for root, bounding set gives
    /// them back, as it would anyway): the permitted set after exec is made
    /// from those sets and the file's capabilities alone.
    pub fn holding_until_exec(&self, bits: u64) -> CapSets {
        CapSets {
            effective: self.effective | bits,
            permitted: self.permitted | bits,
            ..*self
        }
    }

    /// The error of a failed capset: naming the capabilities asked for that
    /// this process does not hold (a host that withholds some from its
    /// containers' runtime), when that is why.
    fn capset_error(&self, e: nix::errno::Errno) -> Error {
        let held = caps::read(None, CapSet::Permitted).unwrap_or_default();
        let held = held.iter().fold(0u64, |m, c| m | c.bitmask());
        let missing: Vec<String> = supported()
            .iter()
            .filter(|c| (self.permitted | self.effective) & !held & c.bitmask() != 0)
            .map(|c| c.to_string())
            .collect();
        if e == nix::errno::Errno::EPERM && !missing.is_empty() {
            return Error::config(
                "process.capabilities",
                format!(
                    "{} asked for, but the runtime itself does not hold {} (capset: EPERM)",
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" }
                ),
            );
        }
        Error::sys("capset", format!("{self:x?}"), e)
    }

    /// Sets effective, permitted and inheritable at once, then ambient.
    pub fn apply_process_sets(&self) -> Result<()> {
        if self.effective & !self.permitted != 0 {
            return Err(Error::config(
                "process.capabilities.effective",
                "contains capabilities that are not in the permitted set",
            ));
        }
        sys::capset(self.effective, self.permitted, self.inheritable)
            .map_err(|e| self.capset_error(e))?;
        // Kernels without ambient capabilities (before 4.3) refuse the clear;
        // there is then nothing to clear.
        if let Err(e) = caps::clear(None, CapSet::Ambient)
            && self.ambient != 0
        {
            return Err(Error::Other(format!("clearing the ambient set: {e}")));
        }
        for &cap in supported() {
            if self.ambient & cap.bitmask() == 0 {
                continue;
            }
            // The kernel keeps only ambient capabilities that are also
            // permitted and inheritable; runc skips the others, and so do we.
            let allowed = self.permitted & self.inheritable & cap.bitmask() != 0;
            if !allowed {
                tracing::debug!("ambient {cap} skipped: not permitted and inheritable");
                continue;
            }
            caps::raise(None, CapSet::Ambient, cap)
                .map_err(|e| Error::Other(format!("raising ambient capability {cap}: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kernel_bits() {
        assert_eq!(
            to_kernel(&Capability::SysAdmin).unwrap(),
            Cap::CAP_SYS_ADMIN
        );
        assert_eq!(to_kernel(&Capability::NetRaw).unwrap(), Cap::CAP_NET_RAW);
        assert_eq!(to_kernel(&Capability::Chown).unwrap(), Cap::CAP_CHOWN);
        assert_eq!(Cap::CAP_CHOWN.bitmask(), 1);
    }

    #[test]
    fn sys_admin_bit() {
        assert_eq!(CAP_SYS_ADMIN, Cap::CAP_SYS_ADMIN.bitmask());
    }

    #[test]
    fn absent_sets_are_empty() {
        assert_eq!(CapSets::from_config(None).unwrap(), CapSets::default());
    }
}
