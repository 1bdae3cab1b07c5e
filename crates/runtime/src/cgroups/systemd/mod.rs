//! Cgroups through systemd (`--systemd-cgroup`), as runc's systemd driver
//! does them: the container's init goes into a transient scope unit
//! (`prefix-name.scope` in a slice, from `linux.cgroupsPath` =
//! `slice:prefix:name`), created over D-Bus with the init's pid and the
//! resources systemd has properties for. The scope is delegated, so the
//! runtime then uses the scope's cgroup directories as its own: it makes
//! those systemd did not (hierarchies systemd does not manage), writes every
//! resource to the cgroup files with the same code as without systemd, and
//! freezes, signals and reads statistics there. `delete` stops the unit.
//!
//! Where the scope's cgroups are is asked of systemd (the unit's
//! ControlGroup), not guessed, so a systemd whose root cgroup is not the
//! hierarchies' root (in a container) is handled too.

mod annotations;
mod bus;
mod props;
mod unit;

use std::path::Path;

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::{CgroupPaths, Layout, Manager, Mode, UNIFIED, paths, write_file};
use crate::error::{Error, Result};

pub use bus::check_available;
pub use unit::{Scope, expand_slice};

impl Manager {
    /// A manager for a container whose cgroups systemd makes: nothing is
    /// placed until [`Manager::start_scope`] (the scope needs the init's
    /// pid). Refused for unprivileged callers (systemd's per-user manager is
    /// not supported).
    pub fn for_systemd(layout: &Layout) -> Result<Manager> {
        let mode = layout.mode().ok_or_else(|| {
            Error::Unsupported(
                "no cgroup file system is mounted (none in /proc/self/mountinfo)".into(),
            )
        })?;
        if paths::rootless() {
            return Err(Error::Unsupported(
                "--systemd-cgroup for an unprivileged user (systemd's user manager) is not \
                 supported; leave the flag out"
                    .into(),
            ));
        }
        Ok(Manager::from_paths(CgroupPaths {
            mode: Some(mode),
            ..CgroupPaths::default()
        }))
    }

    /// Asks systemd for the transient scope `scope` holding process `pid`,
    /// with `resources` as unit properties, and waits until it exists (the
    /// process is then in it); records the unit, finds its cgroup
    /// directories and plans those systemd did not make, for
    /// [`Manager::create_rest`] to make and fill.
    pub fn start_scope(
        &mut self,
        layout: &Layout,
        scope: &Scope,
        pid: Pid,
        resources: Option<&LinuxResources>,
    ) -> Result<()> {
        let mode = self.paths.mode.unwrap_or(Mode::V2);
        let v2 = mode == Mode::V2;
        let none = LinuxResources::default();
        let r = resources.unwrap_or(&none);
        let bus = bus::Bus::connect()?;
        let mut p = props::scope(scope, pid.as_raw() as u32, v2);
        p.extend(props::resources(r, v2, version(&bus, r), true)?);
        p.extend(scope.extra.iter().cloned());
        bus.start_unit(&scope.unit, &p)?;
        self.paths.systemd_unit = Some(scope.unit.clone());
        let cgroup = bus.control_group(&scope.unit)?;
        drop(bus);
        check_control_group(scope, &cgroup)?;
        let cgroup = Path::new(&cgroup);
        for h in &layout.hierarchies {
            if mode == Mode::V2 && h.version != 2 {
                continue;
            }
            let inside = cgroup.strip_prefix(&h.root).map_err(|_| {
                Error::cgroup(
                    &h.mount_point,
                    format!(
                        "systemd put unit {} in cgroup {}, outside the part of hierarchy {} \
                         mounted here ({})",
                        scope.unit,
                        cgroup.display(),
                        h.name,
                        h.root.display()
                    ),
                )
            })?;
            let dir = h.mount_point.join(inside);
            if dir.is_dir() {
                self.paths.dirs.insert(h.name.clone(), dir);
            } else {
                self.planned.insert(h.name.clone(), dir);
            }
        }
        // A cgroup2 directory systemd did not make (it makes it on v2 and
        // hybrid hosts): made here, and the init moved into it.
        if self.planned.contains_key(UNIFIED) {
            self.make_dirs(true, None)?;
            if let Some(dir) = self.paths.unified() {
                write_file(dir, "cgroup.procs", &pid.to_string(), "linux.cgroupsPath")?;
            }
        }
        Ok(())
    }

    /// For `update` of a container in a systemd scope: gives the unit the
    /// properties of `resources` (the whole set after the update), so that
    /// systemd keeps them; the device rules only when the update changes
    /// them (`devices`), with the container frozen meanwhile, as systemd
    /// rewrites them disruptively. Nothing without a unit.
    pub fn update_unit(&self, resources: &LinuxResources, devices: bool) -> Result<()> {
        let Some(unit) = &self.paths.systemd_unit else {
            return Ok(());
        };
        let v2 = self.paths.mode == Some(Mode::V2);
        let bus = bus::Bus::connect()?;
        let p = props::resources(resources, v2, version(&bus, resources), devices)?;
        let freeze = devices && !self.is_frozen()?;
        if freeze {
            self.set_frozen(true)?;
        }
        let set = bus.set_properties(unit, &p);
        if freeze {
            self.set_frozen(false)?;
        }
        set
    }

    /// Stops the container's systemd unit, if it has one (systemd removes
    /// the cgroups it made).
    pub(crate) fn stop_unit(&self) -> Result<()> {
        match &self.paths.systemd_unit {
            Some(unit) => bus::Bus::connect()?.stop_unit(unit),
            None => Ok(()),
        }
    }
}

/// systemd's version when the properties of `r` depend on it (0 if it
/// cannot be read: the younger properties are then left to the cgroup
/// files, as runc does).
fn version(bus: &bus::Bus, r: &LinuxResources) -> u32 {
    if !props::needs_version(r) {
        return 0;
    }
    bus.version().unwrap_or_else(|e| {
        tracing::warn!("{e}");
        0
    })
}

/// Checks that the cgroup systemd reports for the scope is where its slice
/// puts it (`…/<expanded slice>/<unit>`): the runtime writes to these
/// directories, so an unexpected answer is refused rather than trusted.
fn check_control_group(scope: &Scope, cgroup: &str) -> Result<()> {
    let slice = expand_slice(&scope.slice)?;
    let want = Path::new(slice.trim_start_matches('/')).join(&scope.unit);
    let got = Path::new(cgroup);
    if got.is_absolute() && got.ends_with(&want) {
        return Ok(());
    }
    Err(Error::Other(format!(
        "systemd: unit {} is in cgroup {cgroup:?}, not in {} of its slice {}",
        scope.unit,
        want.display(),
        scope.slice
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_cgroup_must_be_in_its_slice() {
        let s = Scope::from_config(Some(Path::new("a-b.slice:p:n")), "id").unwrap();
        check_control_group(&s, "/a.slice/a-b.slice/p-n.scope").unwrap();
        check_control_group(&s, "/nested/root/a.slice/a-b.slice/p-n.scope").unwrap();
        for bad in [
            "",
            "a.slice/a-b.slice/p-n.scope",
            "/a-b.slice/p-n.scope",
            "/x/p-n.scope",
        ] {
            let e = check_control_group(&s, bad).unwrap_err().to_string();
            assert!(e.contains("p-n.scope"), "{bad}: {e}");
        }
        let root = Scope::from_config(Some(Path::new("-.slice:p:n")), "id").unwrap();
        check_control_group(&root, "/p-n.scope").unwrap();
    }
}
