//! Linux security module labels: `process.apparmorProfile`,
//! `process.selinuxLabel` and `linux.mountLabel`.
//!
//! A label is applied only where its LSM is enabled; a config that asks for
//! one on a host without it is refused (as runc does), never run unconfined.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where the kernel exposes LSM state; tests point it elsewhere.
#[derive(Clone, Debug)]
pub struct Host {
    /// /sys (for AppArmor's module parameters and selinuxfs).
    pub sys: PathBuf,
    /// The current thread's /proc directory (`/proc/thread-self`).
    pub proc_thread: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            sys: PathBuf::from("/sys"),
            proc_thread: PathBuf::from("/proc/thread-self"),
        }
    }
}

impl Host {
    /// Whether AppArmor is enabled (its module parameter reads `Y`).
    pub fn apparmor_enabled(&self) -> bool {
        std::fs::read_to_string(self.sys.join("module/apparmor/parameters/enabled"))
            .is_ok_and(|v| v.trim_start().starts_with('Y'))
    }

    /// Whether SELinux is enabled (selinuxfs is mounted).
    pub fn selinux_enabled(&self) -> bool {
        self.sys.join("fs/selinux/enforce").exists()
    }

    /// Sets the AppArmor profile the next execve of this thread enters.
    pub fn set_apparmor_exec(&self, profile: &str) -> Result<()> {
        // Linux 5.8+ has an AppArmor-specific attr directory; older kernels
        // only the shared one.
        let specific = self.proc_thread.join("attr/apparmor/exec");
        let path = if specific.exists() {
            specific
        } else {
            self.proc_thread.join("attr/exec")
        };
        write_attr(&path, &format!("exec {profile}"), "process.apparmorProfile")
    }

    /// Sets the SELinux label the next execve of this thread gets.
    pub fn set_selinux_exec(&self, label: &str) -> Result<()> {
        write_attr(
            &self.proc_thread.join("attr/exec"),
            label,
            "process.selinuxLabel",
        )
    }

    /// Checks that the host can apply the labels a process asks for.
    pub fn check_process(
        &self,
        apparmor: Option<&str>,
        selinux: Option<&str>,
        field: &str,
    ) -> Result<()> {
        if apparmor.is_some_and(|p| !p.is_empty()) && !self.apparmor_enabled() {
            return Err(Error::Unsupported(format!(
                "{field}.apparmorProfile: AppArmor is not enabled on this host"
            )));
        }
        if selinux.is_some_and(|l| !l.is_empty()) && !self.selinux_enabled() {
            return Err(Error::Unsupported(format!(
                "{field}.selinuxLabel: SELinux is not enabled on this host"
            )));
        }
        Ok(())
    }

    /// Applies a process's labels to the calling thread for its execve.
    pub fn apply_process(&self, apparmor: Option<&str>, selinux: Option<&str>) -> Result<()> {
        if let Some(p) = apparmor.filter(|p| !p.is_empty()) {
            self.set_apparmor_exec(p)?;
        }
        if let Some(l) = selinux.filter(|l| !l.is_empty()) {
            self.set_selinux_exec(l)?;
        }
        Ok(())
    }
}

/// The mount data option that labels a file system with `linux.mountLabel`.
pub fn mount_label_option(label: &str) -> String {
    format!("context=\"{label}\"")
}

/// File systems that take no `context=` option (as runc leaves them
/// unlabelled): their files get labels of their own.
const UNLABELLED_FS: &[&str] = &["proc", "sysfs", "mqueue", "cgroup", "cgroup2", "bind"];

/// The data of a new `fstype` mount with `linux.mountLabel` (`label`)
/// added as its SELinux context, as runc does (the config is refused
/// beforehand where SELinux is not enabled).
pub fn label_mount_data(data: &str, fstype: &str, label: Option<&str>) -> String {
    match label.filter(|l| !l.is_empty()) {
        Some(l) if !UNLABELLED_FS.contains(&fstype) && !data.contains("context=") => {
            if data.is_empty() {
                mount_label_option(l)
            } else {
                format!("{data},{}", mount_label_option(l))
            }
        }
        _ => data.to_string(),
    }
}

fn write_attr(path: &Path, value: &str, field: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| {
        Error::config(
            field,
            format!("writing {value:?} to {}: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_host(apparmor: bool, selinux: bool, new_attr_dir: bool) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        let proc_thread = dir.path().join("proc");
        std::fs::create_dir_all(sys.join("module/apparmor/parameters")).unwrap();
        std::fs::write(
            sys.join("module/apparmor/parameters/enabled"),
            if apparmor { "Y\n" } else { "N\n" },
        )
        .unwrap();
        if selinux {
            std::fs::create_dir_all(sys.join("fs/selinux")).unwrap();
            std::fs::write(sys.join("fs/selinux/enforce"), "1").unwrap();
        }
        std::fs::create_dir_all(proc_thread.join("attr")).unwrap();
        if new_attr_dir {
            std::fs::create_dir_all(proc_thread.join("attr/apparmor")).unwrap();
            std::fs::write(proc_thread.join("attr/apparmor/exec"), "").unwrap();
        }
        (dir, Host { sys, proc_thread })
    }

    #[test]
    fn apparmor_profile_goes_to_the_exec_attr() {
        for new_dir in [true, false] {
            let (_d, host) = fake_host(true, false, new_dir);
            host.check_process(Some("docker-default"), None, "process")
                .unwrap();
            host.apply_process(Some("docker-default"), None).unwrap();
            let file = if new_dir {
                "attr/apparmor/exec"
            } else {
                "attr/exec"
            };
            let got = std::fs::read_to_string(host.proc_thread.join(file)).unwrap();
            assert_eq!(got, "exec docker-default");
        }
    }

    #[test]
    fn selinux_label_goes_to_the_exec_attr() {
        let (_d, host) = fake_host(false, true, false);
        let label = "system_u:system_r:container_t:s0:c1,c2";
        host.check_process(None, Some(label), "process").unwrap();
        host.apply_process(None, Some(label)).unwrap();
        assert_eq!(
            std::fs::read_to_string(host.proc_thread.join("attr/exec")).unwrap(),
            label
        );
        assert_eq!(
            mount_label_option("x_u:y_r:z_t:s0"),
            "context=\"x_u:y_r:z_t:s0\""
        );
    }

    #[test]
    fn the_mount_label_goes_to_new_labelable_file_systems() {
        let l = Some("system_u:object_r:container_file_t:s0:c1,c2");
        let want = "mode=755,context=\"system_u:object_r:container_file_t:s0:c1,c2\"";
        assert_eq!(label_mount_data("mode=755", "tmpfs", l), want);
        assert_eq!(
            label_mount_data("", "devpts", l),
            "context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        for fs in ["proc", "sysfs", "mqueue", "cgroup", "cgroup2"] {
            assert_eq!(label_mount_data("ro", fs, l), "ro", "{fs}");
        }
        assert_eq!(label_mount_data("mode=755", "tmpfs", None), "mode=755");
        assert_eq!(label_mount_data("mode=755", "tmpfs", Some("")), "mode=755");
        // A context the mount gives itself wins.
        assert_eq!(
            label_mount_data("context=\"a:b:c:s0\"", "tmpfs", l),
            "context=\"a:b:c:s0\""
        );
    }

    #[test]
    fn labels_are_refused_where_the_lsm_is_off() {
        let (_d, host) = fake_host(false, false, false);
        let e = host.check_process(Some("p"), None, "process").unwrap_err();
        assert!(
            e.to_string()
                .contains("process.apparmorProfile: AppArmor is not enabled"),
            "{e}"
        );
        let e = host.check_process(None, Some("l"), "process").unwrap_err();
        assert!(
            e.to_string()
                .contains("process.selinuxLabel: SELinux is not enabled"),
            "{e}"
        );
        // nothing asked, nothing refused
        host.check_process(None, Some(""), "process").unwrap();
    }
}
