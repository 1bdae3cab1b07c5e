//! A mount's `options`: parsed into mount(2) flags, file-system data,
//! propagation changes, recursive mount attributes (runc's `rro`, `rnosuid`,
//! ...) and the bind and id-mapping modes.
//!
//! Options apply in order, so a later `rw` undoes an earlier `ro`. Anything
//! not known here is file-system data (`size=64m`, `mode=755`, `newinstance`)
//! and is handed to the kernel, which refuses what it does not understand.

use nix::mount::MsFlags;

use crate::sys::MountAttr;

/// Whether a bind mount (or an id mapping) covers only the source mount or
/// also the mounts beneath it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// `bind`, `idmap`: the source mount alone.
    Single,
    /// `rbind`, `ridmap`: the whole tree beneath the source.
    Recursive,
}

/// A propagation change made after the mount exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Propagation {
    /// MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE.
    pub kind: MsFlags,
    /// Whether it applies to every mount beneath too (`rshared`, ...).
    pub recursive: bool,
}

/// A mount's options, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// mount(2) flags that are set (`ro`, `nosuid`, `noatime`, ...).
    pub flags: MsFlags,
    /// Flags an option explicitly turned off (`rw`, `suid`, `exec`, ...):
    /// bind mounts clear them, fresh mounts simply do not set them.
    pub cleared: MsFlags,
    /// Propagation changes, in the order given.
    pub propagation: Vec<Propagation>,
    /// Attributes set and cleared on the mount and every mount beneath it
    /// (`rro`, `rnosuid`, `rnoatime`, ...).
    pub recursive: MountAttr,
    /// `bind` or `rbind`.
    pub bind: Option<Depth>,
    /// `idmap` or `ridmap`.
    pub idmap: Option<Depth>,
    /// `remount`: change the mount already at the destination.
    pub remount: bool,
    /// `tmpcopyup` (runc's extension): fill a new tmpfs with a copy of the
    /// directory it covers.
    pub copy_up: bool,
    /// Options that only concern a file system's superblock (`sync`,
    /// `dirsync`, `mand`, `lazytime`, `silent`, `iversion`, and their
    /// opposites): meaningless for a bind mount.
    pub superblock_options: Vec<String>,
    /// Everything else, passed to the file system as data.
    pub data: Vec<String>,
}

/// The atime modes: setting one replaces the others.
const ATIME_MODES: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

/// Superblock flags: they have no meaning on a bind mount.
const SUPERBLOCK_FLAGS: MsFlags = MsFlags::MS_SYNCHRONOUS
    .union(MsFlags::MS_DIRSYNC)
    .union(MsFlags::MS_MANDLOCK)
    .union(MsFlags::MS_LAZYTIME)
    .union(MsFlags::MS_SILENT)
    .union(MsFlags::MS_I_VERSION);

/// MS_NOSYMFOLLOW (Linux 5.10), which nix does not name.
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// What one option does.
enum Effect {
    Set(MsFlags),
    Clear(MsFlags),
    Propagate(MsFlags, bool),
    /// A recursive attribute: set (true) or clear (false) these MOUNT_ATTR_* bits.
    Recursive(bool, u64),
    /// A recursive atime mode (MOUNT_ATTR_NOATIME, _STRICTATIME or _RELATIME).
    RecursiveAtime(u64),
    Bind(Depth),
    Idmap(Depth),
    Remount,
    CopyUp,
    Nothing,
}

/// Every option name [`Options::parse`] gives a meaning to (others are
/// passed to the file system as data), as `features` lists them.
pub const KNOWN: &[&str] = &[
    "defaults",
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "dirsync",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "lazytime",
    "nolazytime",
    "silent",
    "loud",
    "iversion",
    "noiversion",
    "nosymfollow",
    "symfollow",
    "bind",
    "rbind",
    "idmap",
    "ridmap",
    "remount",
    "tmpcopyup",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "private",
    "rprivate",
    "unbindable",
    "runbindable",
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rnosymfollow",
    "rsymfollow",
    "rnoatime",
    "rstrictatime",
    "rrelatime",
    "ratime",
    "rnorelatime",
    "rnostrictatime",
];

fn effect(option: &str) -> Option<Effect> {
    use Effect::*;
    Some(match option {
        "defaults" => Nothing,
        "ro" => Set(MsFlags::MS_RDONLY),
        "rw" => Clear(MsFlags::MS_RDONLY),
        "nosuid" => Set(MsFlags::MS_NOSUID),
        "suid" => Clear(MsFlags::MS_NOSUID),
        "nodev" => Set(MsFlags::MS_NODEV),
        "dev" => Clear(MsFlags::MS_NODEV),
        "noexec" => Set(MsFlags::MS_NOEXEC),
        "exec" => Clear(MsFlags::MS_NOEXEC),
        "sync" => Set(MsFlags::MS_SYNCHRONOUS),
        "async" => Clear(MsFlags::MS_SYNCHRONOUS),
        "dirsync" => Set(MsFlags::MS_DIRSYNC),
        "mand" => Set(MsFlags::MS_MANDLOCK),
        "nomand" => Clear(MsFlags::MS_MANDLOCK),
        "atime" => Clear(MsFlags::MS_NOATIME),
        "noatime" => Set(MsFlags::MS_NOATIME),
        "diratime" => Clear(MsFlags::MS_NODIRATIME),
        "nodiratime" => Set(MsFlags::MS_NODIRATIME),
        "relatime" => Set(MsFlags::MS_RELATIME),
        "norelatime" => Clear(MsFlags::MS_RELATIME),
        "strictatime" => Set(MsFlags::MS_STRICTATIME),
        "nostrictatime" => Clear(MsFlags::MS_STRICTATIME),
        "lazytime" => Set(MsFlags::MS_LAZYTIME),
        "nolazytime" => Clear(MsFlags::MS_LAZYTIME),
        "silent" => Set(MsFlags::MS_SILENT),
        "loud" => Clear(MsFlags::MS_SILENT),
        "iversion" => Set(MsFlags::MS_I_VERSION),
        "noiversion" => Clear(MsFlags::MS_I_VERSION),
        "nosymfollow" => Set(MS_NOSYMFOLLOW),
        "symfollow" => Clear(MS_NOSYMFOLLOW),
        "bind" => Bind(Depth::Single),
        "rbind" => Bind(Depth::Recursive),
        "idmap" => Idmap(Depth::Single),
        "ridmap" => Idmap(Depth::Recursive),
        "remount" => Remount,
        "tmpcopyup" => CopyUp,
        "shared" => Propagate(MsFlags::MS_SHARED, false),
        "rshared" => Propagate(MsFlags::MS_SHARED, true),
        "slave" => Propagate(MsFlags::MS_SLAVE, false),
        "rslave" => Propagate(MsFlags::MS_SLAVE, true),
        "private" => Propagate(MsFlags::MS_PRIVATE, false),
        "rprivate" => Propagate(MsFlags::MS_PRIVATE, true),
        "unbindable" => Propagate(MsFlags::MS_UNBINDABLE, false),
        "runbindable" => Propagate(MsFlags::MS_UNBINDABLE, true),
        "rro" => Recursive(true, libc::MOUNT_ATTR_RDONLY),
        "rrw" => Recursive(false, libc::MOUNT_ATTR_RDONLY),
        "rnosuid" => Recursive(true, libc::MOUNT_ATTR_NOSUID),
        "rsuid" => Recursive(false, libc::MOUNT_ATTR_NOSUID),
        "rnodev" => Recursive(true, libc::MOUNT_ATTR_NODEV),
        "rdev" => Recursive(false, libc::MOUNT_ATTR_NODEV),
        "rnoexec" => Recursive(true, libc::MOUNT_ATTR_NOEXEC),
        "rexec" => Recursive(false, libc::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => Recursive(true, libc::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => Recursive(false, libc::MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => Recursive(true, libc::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => Recursive(false, libc::MOUNT_ATTR_NOSYMFOLLOW),
        "rnoatime" => RecursiveAtime(libc::MOUNT_ATTR_NOATIME),
        "rstrictatime" => RecursiveAtime(libc::MOUNT_ATTR_STRICTATIME),
        // As with runc, undoing an atime mode means the kernel's default.
        "rrelatime" | "ratime" | "rnorelatime" | "rnostrictatime" => {
            RecursiveAtime(libc::MOUNT_ATTR_RELATIME)
        }
        _ => return None,
    })
}

impl Default for Options {
    fn default() -> Options {
        Options {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            recursive: MountAttr::default(),
            bind: None,
            idmap: None,
            remount: false,
            copy_up: false,
            superblock_options: Vec::new(),
            data: Vec::new(),
        }
    }
}

impl Options {
    /// Parses a mount's option list.
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Options {
        let mut o = Options::default();
        for option in options {
            let option = option.as_ref();
            let Some(effect) = effect(option) else {
                o.data.push(option.to_string());
                continue;
            };
            match effect {
                Effect::Set(flag) => {
                    if ATIME_MODES.contains(flag) {
                        o.flags.remove(ATIME_MODES);
                    }
                    o.flags.insert(flag);
                    o.cleared.remove(flag);
                }
                Effect::Clear(flag) => {
                    o.flags.remove(flag);
                    o.cleared.insert(flag);
                }
                Effect::Propagate(kind, recursive) => {
                    o.propagation.push(Propagation { kind, recursive })
                }
                Effect::Recursive(true, attr) => {
                    o.recursive.set |= attr;
                    o.recursive.clr &= !attr;
                }
                Effect::Recursive(false, attr) => {
                    o.recursive.clr |= attr;
                    o.recursive.set &= !attr;
                }
                Effect::RecursiveAtime(mode) => {
                    o.recursive.set = (o.recursive.set & !libc::MOUNT_ATTR__ATIME) | mode;
                    o.recursive.clr |= libc::MOUNT_ATTR__ATIME;
                }
                Effect::Bind(depth) => o.bind = Some(depth),
                Effect::Idmap(depth) => o.idmap = Some(depth),
                Effect::Remount => o.remount = true,
                Effect::CopyUp => o.copy_up = true,
                Effect::Nothing => {}
            }
            if let Effect::Set(flag) | Effect::Clear(flag) = effect
                && SUPERBLOCK_FLAGS.intersects(flag)
            {
                o.superblock_options.push(option.to_string());
            }
        }
        o
    }

    /// The file-system data: the unknown options joined with commas.
    pub fn data(&self) -> String {
        self.data.join(",")
    }

    /// The mount attributes a bind mount's non-recursive options ask for,
    /// to set on the bind mount itself (not on the mounts beneath it).
    pub fn bind_attr(&self) -> MountAttr {
        let mut attr = MountAttr::default();
        for (flag, bit) in [
            (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
            (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
            (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
            (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
            (MsFlags::MS_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
            (MS_NOSYMFOLLOW, libc::MOUNT_ATTR_NOSYMFOLLOW),
        ] {
            if self.flags.contains(flag) {
                attr.set |= bit;
            } else if self.cleared.contains(flag) {
                attr.clr |= bit;
            }
        }
        if self.flags.intersects(ATIME_MODES) || self.cleared.intersects(ATIME_MODES) {
            attr.clr |= libc::MOUNT_ATTR__ATIME;
            if self.flags.contains(MsFlags::MS_NOATIME) {
                attr.set |= libc::MOUNT_ATTR_NOATIME;
            } else if self.flags.contains(MsFlags::MS_STRICTATIME) {
                attr.set |= libc::MOUNT_ATTR_STRICTATIME;
            }
        }
        attr
    }

    /// Whether the options turn the mount read-only.
    pub fn readonly(&self) -> bool {
        self.flags.contains(MsFlags::MS_RDONLY)
    }
}

/// Parses a propagation name as `rootfsPropagation` takes it.
pub fn propagation(name: &str) -> Option<Propagation> {
    match effect(name) {
        Some(Effect::Propagate(kind, recursive)) => Some(Propagation { kind, recursive }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_option_has_a_meaning() {
        for o in KNOWN {
            assert!(effect(o).is_some(), "{o}");
        }
        assert!(effect("size=64m").is_none());
    }

    #[test]
    fn flags_apply_in_order() {
        let o = Options::parse(&["ro", "nosuid", "rw", "nodev", "noexec"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
        );
        assert_eq!(o.cleared, MsFlags::MS_RDONLY);
        assert!(!o.readonly());
        let o = Options::parse(&["rw", "ro"]);
        assert!(o.readonly());
        assert!(o.cleared.is_empty());
    }

    #[test]
    fn unknown_options_are_data() {
        let o = Options::parse(&["nosuid", "mode=755", "size=65536k", "newinstance"]);
        assert_eq!(o.data(), "mode=755,size=65536k,newinstance");
        assert_eq!(o.flags, MsFlags::MS_NOSUID);
    }

    #[test]
    fn every_flag_option_is_known() {
        for (name, flag) in [
            ("sync", MsFlags::MS_SYNCHRONOUS),
            ("dirsync", MsFlags::MS_DIRSYNC),
            ("mand", MsFlags::MS_MANDLOCK),
            ("noatime", MsFlags::MS_NOATIME),
            ("nodiratime", MsFlags::MS_NODIRATIME),
            ("relatime", MsFlags::MS_RELATIME),
            ("strictatime", MsFlags::MS_STRICTATIME),
            ("lazytime", MsFlags::MS_LAZYTIME),
            ("silent", MsFlags::MS_SILENT),
            ("iversion", MsFlags::MS_I_VERSION),
            ("nosymfollow", MS_NOSYMFOLLOW),
        ] {
            let o = Options::parse(&[name]);
            assert_eq!(o.flags, flag, "{name}");
            assert!(o.data.is_empty(), "{name}");
        }
        for (name, flag) in [
            ("async", MsFlags::MS_SYNCHRONOUS),
            ("nomand", MsFlags::MS_MANDLOCK),
            ("atime", MsFlags::MS_NOATIME),
            ("diratime", MsFlags::MS_NODIRATIME),
            ("norelatime", MsFlags::MS_RELATIME),
            ("nostrictatime", MsFlags::MS_STRICTATIME),
            ("nolazytime", MsFlags::MS_LAZYTIME),
            ("loud", MsFlags::MS_SILENT),
            ("noiversion", MsFlags::MS_I_VERSION),
            ("suid", MsFlags::MS_NOSUID),
            ("dev", MsFlags::MS_NODEV),
            ("exec", MsFlags::MS_NOEXEC),
        ] {
            let o = Options::parse(&[name]);
            assert!(o.flags.is_empty(), "{name}");
            assert_eq!(o.cleared, flag, "{name}");
        }
        let o = Options::parse(&["defaults"]);
        assert_eq!(o, Options::default());
    }

    #[test]
    fn atime_modes_replace_each_other() {
        let o = Options::parse(&["noatime", "strictatime"]);
        assert_eq!(o.flags, MsFlags::MS_STRICTATIME);
        let o = Options::parse(&["strictatime", "relatime"]);
        assert_eq!(o.flags, MsFlags::MS_RELATIME);
    }

    #[test]
    fn bind_modes() {
        assert_eq!(Options::parse(&["bind"]).bind, Some(Depth::Single));
        assert_eq!(Options::parse(&["rbind"]).bind, Some(Depth::Recursive));
        assert_eq!(Options::parse(&["ro"]).bind, None);
        assert_eq!(Options::parse(&["idmap"]).idmap, Some(Depth::Single));
        assert_eq!(Options::parse(&["ridmap"]).idmap, Some(Depth::Recursive));
        assert!(Options::parse(&["remount"]).remount);
        assert!(Options::parse(&["tmpcopyup"]).copy_up);
    }

    #[test]
    fn propagation_in_order() {
        let o = Options::parse(&["rbind", "rprivate", "shared", "runbindable"]);
        assert_eq!(
            o.propagation,
            [
                Propagation {
                    kind: MsFlags::MS_PRIVATE,
                    recursive: true
                },
                Propagation {
                    kind: MsFlags::MS_SHARED,
                    recursive: false
                },
                Propagation {
                    kind: MsFlags::MS_UNBINDABLE,
                    recursive: true
                },
            ]
        );
        assert_eq!(
            propagation("rslave"),
            Some(Propagation {
                kind: MsFlags::MS_SLAVE,
                recursive: true
            })
        );
        assert_eq!(propagation("slave").map(|p| p.recursive), Some(false));
        assert_eq!(propagation("ro"), None);
        assert_eq!(propagation("bogus"), None);
    }

    #[test]
    fn recursive_attributes() {
        let o = Options::parse(&["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"]);
        assert_eq!(
            o.recursive.set,
            libc::MOUNT_ATTR_RDONLY
                | libc::MOUNT_ATTR_NOSUID
                | libc::MOUNT_ATTR_NODEV
                | libc::MOUNT_ATTR_NOEXEC
                | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.recursive.clr, libc::MOUNT_ATTR__ATIME);
        assert!(o.flags.is_empty());
        let o = Options::parse(&["rro", "rrw", "rexec", "rstrictatime", "ratime"]);
        assert_eq!(o.recursive.set, libc::MOUNT_ATTR_RELATIME);
        assert_eq!(
            o.recursive.clr,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOEXEC | libc::MOUNT_ATTR__ATIME
        );
        let o = Options::parse(&["rnodiratime", "rnosymfollow", "rdev", "rsuid"]);
        assert_eq!(
            o.recursive.set,
            libc::MOUNT_ATTR_NODIRATIME | libc::MOUNT_ATTR_NOSYMFOLLOW
        );
        assert_eq!(
            o.recursive.clr,
            libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID
        );
    }

    #[test]
    fn bind_attributes() {
        let a = Options::parse(&["rbind", "ro", "nosuid", "exec"]).bind_attr();
        assert_eq!(a.set, libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID);
        assert_eq!(a.clr, libc::MOUNT_ATTR_NOEXEC);
        let a = Options::parse(&["bind", "noatime"]).bind_attr();
        assert_eq!(a.set, libc::MOUNT_ATTR_NOATIME);
        assert_eq!(a.clr, libc::MOUNT_ATTR__ATIME);
        let a = Options::parse(&["bind", "relatime", "nodiratime"]).bind_attr();
        assert_eq!(a.set, libc::MOUNT_ATTR_NODIRATIME);
        assert_eq!(a.clr, libc::MOUNT_ATTR__ATIME);
        assert!(Options::parse(&["bind"]).bind_attr().is_empty());
    }

    #[test]
    fn superblock_options_are_noted() {
        let o = Options::parse(&["bind", "ro", "sync", "nolazytime"]);
        assert_eq!(o.superblock_options, ["sync", "nolazytime"]);
        assert!(
            Options::parse(&["ro", "nosuid"])
                .superblock_options
                .is_empty()
        );
    }
}
