//! Where cgroups are: the host's hierarchies (from mountinfo), the caller's
//! own cgroup in each (from /proc/self/cgroup), the container's directory in
//! each, and making and removing the directories the runtime owns.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use super::{CgroupPaths, Mode, UNIFIED};
use crate::error::{Error, IoContext, Result};

/// One mounted cgroup hierarchy of the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Its name: the comma-joined v1 controllers or `name=` option as the
    /// kernel lists them in /proc/self/cgroup ("cpu,cpuacct", "memory",
    /// "name=systemd"), or "unified" for cgroup2.
    pub name: String,
    /// Where it is mounted (a mount of the hierarchy's root is preferred to
    /// a bind mount of a subtree).
    pub mount_point: PathBuf,
    /// 1 or 2.
    pub version: u8,
    /// The cgroup shown at `mount_point`: "/" unless only a subtree of the
    /// hierarchy is mounted (as inside some containers).
    pub root: PathBuf,
}

/// Parses /proc/self/mountinfo text into the host's cgroup hierarchies, one
/// entry per hierarchy: the first mount of its root, else its first mount.
pub fn parse_hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let mount_point = PathBuf::from(unescape_mountinfo(l[4]));
        let root = PathBuf::from(unescape_mountinfo(l[3]));
        let h = match r[0] {
            "cgroup2" => Hierarchy {
                name: UNIFIED.into(),
                mount_point,
                version: 2,
                root,
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
                    root,
                }
            }
            _ => continue,
        };
        match out.iter_mut().find(|o| o.name == h.name) {
            None => out.push(h),
            Some(o) if o.root != Path::new("/") && h.root == Path::new("/") => *o = h,
            Some(_) => {}
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
    let text =
        crate::procfs::read_text("/proc/self/mountinfo").ctx("read", "/proc/self/mountinfo")?;
    Ok(parse_hierarchies(&text))
}

/// Parses /proc/PID/cgroup text: hierarchy name (named as in
/// [`Hierarchy::name`]) → the process's cgroup in it.
pub fn parse_proc_cgroup(text: &str) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        // "ID:CONTROLLERS:PATH"; the path may itself contain ':'.
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let name = if id == "0" && ctrls.is_empty() {
            UNIFIED.to_string()
        } else {
            let mut names: Vec<&str> = ctrls.split(',').collect();
            names.sort_unstable();
            names.join(",")
        };
        out.insert(name, PathBuf::from(path));
    }
    out
}

/// The host's cgroup layout as seen by the caller: the mounted hierarchies
/// and the caller's own cgroup in each. Read it once with
/// [`Layout::detect`] and reuse it for many containers.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// The mounted hierarchies.
    pub hierarchies: Vec<Hierarchy>,
    /// Hierarchy name → the caller's cgroup in it.
    pub own: BTreeMap<String, PathBuf>,
}

impl Layout {
    /// Reads /proc/self/mountinfo and /proc/self/cgroup.
    pub fn detect() -> Result<Layout> {
        let own = crate::procfs::read_text("/proc/self/cgroup").ctx("read", "/proc/self/cgroup")?;
        Ok(Layout {
            hierarchies: host_hierarchies()?,
            own: parse_proc_cgroup(&own),
        })
    }

    /// The layout's kind; `None` when no cgroup file system is mounted.
    pub fn mode(&self) -> Option<Mode> {
        let v1 = self.hierarchies.iter().any(|h| h.version == 1);
        let v2 = self.hierarchies.iter().any(|h| h.version == 2);
        match (v1, v2) {
            (true, true) => Some(Mode::Hybrid),
            (true, false) => Some(Mode::V1),
            (false, true) => Some(Mode::V2),
            (false, false) => None,
        }
    }

    /// Works out the container's directory in every hierarchy it gets one
    /// in (all of them on v1 and hybrid hosts, the unified one on v2) from
    /// `linux.cgroupsPath`: relative (or absent: the container's id) means
    /// beneath the caller's own cgroup, absolute means from the root. On
    /// pure v2 hosts a relative path goes beneath the parent of the
    /// caller's cgroup, as runc does: a cgroup holding processes (and the
    /// caller's holds at least the caller) cannot pass controllers on to
    /// its children, so a cgroup beneath it could have none.
    pub fn place(&self, cgroups_path: Option<&Path>, id: &str) -> Result<CgroupPaths> {
        let mode = self.mode().ok_or_else(|| {
            Error::Unsupported(
                "no cgroup file system is mounted (none in /proc/self/mountinfo)".into(),
            )
        })?;
        let (absolute, rel) = clean_cgroups_path(cgroups_path, id)?;
        let mut dirs = BTreeMap::new();
        for h in &self.hierarchies {
            if mode == Mode::V2 && h.version != 2 {
                continue;
            }
            let cgroup = if absolute {
                Path::new("/").join(&rel)
            } else {
                let own = self
                    .own
                    .get(&h.name)
                    .map_or(Path::new("/"), |p| p.as_path());
                let base = match mode {
                    Mode::V2 => own.parent().unwrap_or(own),
                    Mode::V1 | Mode::Hybrid => own,
                };
                base.join(&rel)
            };
            let inside = cgroup.strip_prefix(&h.root).map_err(|_| {
                Error::config(
                    "linux.cgroupsPath",
                    format!(
                        "cgroup {} of hierarchy {} is outside the part mounted at {} ({})",
                        cgroup.display(),
                        h.name,
                        h.mount_point.display(),
                        h.root.display()
                    ),
                )
            })?;
            dirs.insert(h.name.clone(), h.mount_point.join(inside));
        }
        Ok(CgroupPaths {
            mode: Some(mode),
            dirs,
            created: Vec::new(),
            systemd_unit: None,
        })
    }
}

/// Checks `linux.cgroupsPath` (absent or empty: the container id) and
/// returns whether it is absolute and its components joined as a relative
/// path.
fn clean_cgroups_path(cgroups_path: Option<&Path>, id: &str) -> Result<(bool, PathBuf)> {
    let path = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new(id),
    };
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::config(
                    "linux.cgroupsPath",
                    format!("{}: '..' is not allowed", path.display()),
                ));
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(Error::config(
            "linux.cgroupsPath",
            format!(
                "{}: names the root cgroup; give a cgroup beneath it",
                path.display()
            ),
        ));
    }
    Ok((path.is_absolute(), rel))
}

/// What [`make_dir`] did.
#[derive(Debug)]
pub enum Made {
    /// The directories it created, outermost first (the last is `dir`).
    Created(Vec<PathBuf>),
    /// The caller may not create cgroups in this hierarchy (an unprivileged
    /// user): nothing was created; the directory it could not make, and why.
    Denied(PathBuf, std::io::Error),
}

/// Creates cgroup directory `dir` and any missing parents. `dir` itself
/// must not exist yet: the runtime only uses cgroups it creates. A parent
/// that another process removes meanwhile (an empty shared parent going
/// away with the last container in it) is made again.
pub fn make_dir(dir: &Path) -> Result<Made> {
    let mut tries = 0;
    loop {
        match make_dir_once(dir)? {
            MadeOnce::ParentGone if tries < 5 => tries += 1,
            MadeOnce::ParentGone => {
                return Err(Error::cgroup(
                    dir,
                    "its parent cgroup keeps being removed while it is made",
                ));
            }
            MadeOnce::Done(made) => return Ok(made),
        }
    }
}

/// What one attempt of [`make_dir`] gave.
enum MadeOnce {
    Done(Made),
    /// A parent vanished between its check and the mkdir beneath it.
    ParentGone,
}

fn make_dir_once(dir: &Path) -> Result<MadeOnce> {
    let mut made = Vec::new();
    // The common case, one system call: the parent exists.
    match std::fs::create_dir(dir) {
        Ok(()) => return Ok(MadeOnce::Done(Made::Created(vec![dir.to_path_buf()]))),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(exists(dir)),
        Err(e) if is_denied(&e) => return Ok(MadeOnce::Done(Made::Denied(dir.to_path_buf(), e))),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("mkdir", dir, e)),
    }
    let mut missing = vec![dir];
    let mut p = dir;
    while let Some(parent) = p.parent() {
        if parent.exists() {
            break;
        }
        missing.push(parent);
        p = parent;
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => made.push(d.to_path_buf()),
            // Another container made the same parent meanwhile: not ours.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && d != dir => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                remove_dirs(&made, &[])?;
                return Err(exists(dir));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                remove_dirs(&made, &[])?;
                return Ok(MadeOnce::ParentGone);
            }
            Err(e) if is_denied(&e) && made.is_empty() => {
                return Ok(MadeOnce::Done(Made::Denied(d.to_path_buf(), e)));
            }
            Err(e) => {
                remove_dirs(&made, &[])?;
                return Err(Error::io("mkdir", d, e));
            }
        }
    }
    Ok(MadeOnce::Done(Made::Created(made)))
}

fn exists(dir: &Path) -> Error {
    Error::cgroup(
        dir,
        "already exists; capsa only puts containers in cgroups it creates \
         (remove it or choose another linux.cgroupsPath)",
    )
}

fn is_denied(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
    )
}

/// Removes the directories `dirs` (given outermost first) innermost first.
/// Those in `leaves` (the container's own cgroups) go with any sub-cgroups
/// that processes of the container made inside them. A directory still busy
/// after a short wait is an error; an intermediate directory that another
/// container now uses is left alone.
pub fn remove_dirs(dirs: &[PathBuf], leaves: &[&Path]) -> Result<()> {
    for dir in dirs.iter().rev() {
        // Most cgroups are empty leaves: try the removal first and look at
        // what is inside only when the kernel says there is something.
        match std::fs::remove_dir(dir) {
            Ok(()) => continue,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(_) => {}
        }
        if leaves.contains(&dir.as_path()) {
            remove_children(dir)?;
        } else if has_children(dir)? {
            tracing::debug!("{} holds other cgroups: left in place", dir.display());
            continue;
        }
        rmdir_retrying(dir)?;
    }
    Ok(())
}

fn child_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    Ok(entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect())
}

fn has_children(dir: &Path) -> Result<bool> {
    Ok(!child_dirs(dir)?.is_empty())
}

fn remove_children(dir: &Path) -> Result<()> {
    for child in child_dirs(dir)? {
        remove_children(&child)?;
        rmdir_retrying(&child)?;
    }
    Ok(())
}

/// Every cgroup directory beneath `dir`, `dir` first.
pub fn tree(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let children = child_dirs(&out[i])?;
        out.extend(children);
        i += 1;
    }
    Ok(out)
}

/// rmdir, retrying for a moment while the kernel still counts exiting
/// processes in the cgroup (EBUSY).
fn rmdir_retrying(dir: &Path) -> Result<()> {
    const BUSY: &str = "still holds processes (rmdir: EBUSY)";
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut pause = Duration::from_micros(200);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(Error::cgroup(dir, BUSY));
            }
            Err(e) => return Err(Error::io("rmdir", dir, e)),
        }
    }
}

/// Whether the caller is an unprivileged user or root of a user namespace
/// other than the initial one: it then may lack the right to make cgroups.
pub fn rootless() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return true;
    }
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => {
            let fields: Vec<&str> = map.split_whitespace().collect();
            fields != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

impl CgroupPaths {
    /// The container's directory in the unified (cgroup2) hierarchy.
    pub fn unified(&self) -> Option<&Path> {
        self.dirs.get(UNIFIED).map(PathBuf::as_path)
    }

    /// The container's directory in the v1 hierarchy holding `controller`.
    pub fn v1(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(name, _)| name.as_str() != UNIFIED && name.split(',').any(|c| c == controller))
            .map(|(_, d)| d.as_path())
    }

    /// The outermost directory the runtime created in the hierarchy that
    /// holds `dir`, or `dir` itself.
    pub(crate) fn outermost_created(&self, dir: &Path) -> PathBuf {
        self.created
            .iter()
            .find(|c| dir.starts_with(c))
            .cloned()
            .unwrap_or_else(|| dir.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpuacct,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:38 /sub /mnt/x rw,relatime - cgroup2 cgroup2 rw
51 31 0:39 / /mnt/with\\040space rw - cgroup cgroup rw,pids
";

    #[test]
    fn hybrid_mountinfo_is_parsed() {
        let h = parse_hierarchies(HYBRID);
        let names: Vec<&str> = h.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["cpu", "cpu,cpuacct", "name=systemd", "unified", "pids"]
        );
        assert_eq!(h[3].version, 2);
        assert_eq!(h[3].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(h[4].mount_point, PathBuf::from("/mnt/with space"));
    }

    #[test]
    fn a_subtree_mount_is_used_when_the_root_is_not_mounted() {
        let text = "41 31 0:38 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
42 31 0:38 / /host/memory rw - cgroup cgroup rw,memory
43 31 0:39 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let h = parse_hierarchies(text);
        assert_eq!(h[0].mount_point, PathBuf::from("/host/memory"));
        assert_eq!(h[0].root, PathBuf::from("/"));
        assert_eq!(h[1].root, PathBuf::from("/docker/abc"));
        let layout = Layout {
            hierarchies: h,
            own: parse_proc_cgroup("4:memory:/docker/abc\n3:pids:/docker/abc\n"),
        };
        let p = layout.place(None, "c1").unwrap();
        assert_eq!(
            p.dirs["memory"],
            PathBuf::from("/host/memory/docker/abc/c1")
        );
        assert_eq!(p.dirs["pids"], PathBuf::from("/sys/fs/cgroup/pids/c1"));
        let err = layout.place(Some(Path::new("/elsewhere")), "c1");
        assert!(err.unwrap_err().to_string().contains("outside"));
    }

    #[test]
    fn proc_cgroup_is_parsed() {
        let own = parse_proc_cgroup(
            "9:name=systemd:/\n4:memory:/process_api/x\n2:cpuacct,cpu:/a:b\n0::/u\n",
        );
        assert_eq!(own["memory"], PathBuf::from("/process_api/x"));
        assert_eq!(own["cpu,cpuacct"], PathBuf::from("/a:b"));
        assert_eq!(own["name=systemd"], PathBuf::from("/"));
        assert_eq!(own[UNIFIED], PathBuf::from("/u"));
    }

    fn hybrid_layout() -> Layout {
        Layout {
            hierarchies: parse_hierarchies(HYBRID),
            own: parse_proc_cgroup("3:pids:/mine\n0::/\n"),
        }
    }

    #[test]
    fn relative_paths_go_beneath_our_own_cgroup() {
        let layout = hybrid_layout();
        assert_eq!(layout.mode(), Some(Mode::Hybrid));
        let p = layout.place(None, "ctr").unwrap();
        assert_eq!(p.dirs["pids"], PathBuf::from("/mnt/with space/mine/ctr"));
        assert_eq!(p.dirs[UNIFIED], PathBuf::from("/sys/fs/cgroup/unified/ctr"));
        assert_eq!(p.dirs["cpu"], PathBuf::from("/sys/fs/cgroup/cpu/ctr"));
        assert_eq!(p.dirs.len(), 5);
        let p = layout.place(Some(Path::new("a/./b")), "ctr").unwrap();
        assert_eq!(p.dirs["pids"], PathBuf::from("/mnt/with space/mine/a/b"));
        let p = layout.place(Some(Path::new("")), "ctr").unwrap();
        assert_eq!(p.dirs["pids"], PathBuf::from("/mnt/with space/mine/ctr"));
    }

    #[test]
    fn absolute_paths_are_used_as_given() {
        let p = hybrid_layout()
            .place(Some(Path::new("/capsa/x")), "ctr")
            .unwrap();
        assert_eq!(p.dirs["pids"], PathBuf::from("/mnt/with space/capsa/x"));
        assert_eq!(p.mode, Some(Mode::Hybrid));
    }

    #[test]
    fn v2_hosts_use_the_unified_hierarchy_only() {
        let layout = Layout {
            hierarchies: parse_hierarchies(
                "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
            ),
            own: parse_proc_cgroup("0::/user.slice/session-1.scope\n"),
        };
        assert_eq!(layout.mode(), Some(Mode::V2));
        // Beneath the parent of our own cgroup: ours holds us, so no
        // controller could reach a cgroup beneath it.
        let p = layout.place(None, "c").unwrap();
        assert_eq!(p.dirs.len(), 1);
        assert_eq!(
            p.unified().unwrap(),
            Path::new("/sys/fs/cgroup/user.slice/c")
        );
        let p = layout.place(Some(Path::new("a/b")), "c").unwrap();
        assert_eq!(
            p.unified().unwrap(),
            Path::new("/sys/fs/cgroup/user.slice/a/b")
        );
        let p = layout.place(Some(Path::new("/a/b")), "c").unwrap();
        assert_eq!(p.unified().unwrap(), Path::new("/sys/fs/cgroup/a/b"));
        // In the root cgroup (which may hold processes), beneath it.
        let root = Layout {
            own: parse_proc_cgroup("0::/\n"),
            ..layout
        };
        assert_eq!(
            root.place(None, "c").unwrap().unified().unwrap(),
            Path::new("/sys/fs/cgroup/c")
        );
    }

    #[test]
    fn bad_cgroups_paths_name_the_field() {
        for bad in ["../escape", "a/../../b", "/"] {
            let e = hybrid_layout()
                .place(Some(Path::new(bad)), "ctr")
                .unwrap_err()
                .to_string();
            assert!(e.contains("linux.cgroupsPath"), "{bad}: {e}");
        }
        assert!(Layout::default().place(None, "x").is_err());
    }

    #[test]
    fn dirs_are_made_recorded_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let leaf = tmp.path().join("a/b/leaf");
        let Made::Created(made) = make_dir(&leaf).unwrap() else {
            panic!("denied")
        };
        assert_eq!(
            made,
            [tmp.path().join("a"), tmp.path().join("a/b"), leaf.clone()]
        );
        // The container's leaf must be new.
        assert!(
            make_dir(&leaf)
                .unwrap_err()
                .to_string()
                .contains("already exists")
        );
        // A sibling made later by another container keeps the shared parent.
        let Made::Created(other) = make_dir(&tmp.path().join("a/b/other")).unwrap() else {
            panic!("denied")
        };
        assert_eq!(other.len(), 1);
        // Sub-cgroups made inside the container's own go with it.
        std::fs::create_dir_all(leaf.join("inner/deeper")).unwrap();
        assert_eq!(tree(&leaf).unwrap().len(), 3);
        remove_dirs(&made, &[leaf.as_path()]).unwrap();
        assert!(!leaf.exists());
        assert!(tmp.path().join("a/b/other").exists());
        remove_dirs(&other, &[other[0].as_path()]).unwrap();
        assert!(!tmp.path().join("a/b/other").exists());
        // Removing what is already gone is fine.
        remove_dirs(&made, &[leaf.as_path()]).unwrap();
    }

    #[test]
    fn controllers_are_found_by_exact_name() {
        let p = hybrid_layout().place(None, "c").unwrap();
        assert_eq!(p.v1("cpu"), Some(Path::new("/sys/fs/cgroup/cpu/c")));
        assert_eq!(
            p.v1("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/c"))
        );
        assert_eq!(p.v1("memory"), None);
        assert_eq!(p.v1(UNIFIED), None);
    }
}
