//! The container's root filesystem, checked from inside the container
//! (/proc/self/mountinfo and behaviour) and from the host (nothing leaks,
//! nothing outside the rootfs changes).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use common::{Bundle, Runtime, unique};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use serde_json::{Value, json};

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
struct Entry {
    root: String,
    point: String,
    opts: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    source: String,
    super_opts: Vec<String>,
}

impl Entry {
    fn has(&self, opt: &str) -> bool {
        self.opts.iter().any(|o| o == opt)
    }
    fn has_super(&self, opt: &str) -> bool {
        self.super_opts.iter().any(|o| o == opt)
    }
}

fn parse_mountinfo(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 6 || r.len() < 3 {
                return None;
            }
            Some(Entry {
                root: l[3].to_string(),
                point: l[4].to_string(),
                opts: l[5].split(',').map(String::from).collect(),
                optional: l[6..].iter().map(|s| s.to_string()).collect(),
                fstype: r[0].to_string(),
                source: r[1].to_string(),
                super_opts: r[2].split(',').map(String::from).collect(),
            })
        })
        .collect()
}

/// The topmost mount at `point`.
fn at<'a>(entries: &'a [Entry], point: &str) -> &'a Entry {
    entries
        .iter()
        .rev()
        .find(|e| e.point == point)
        .unwrap_or_else(|| panic!("nothing mounted at {point}: {entries:#?}"))
}

/// Splits the output of a script that printed sections headed `== name`.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let head = format!("== {name}\n");
    let start = out
        .find(&head)
        .unwrap_or_else(|| panic!("no section {name} in {out}"))
        + head.len();
    let rest = &out[start..];
    &rest[..rest.find("\n== ").map_or(rest.len(), |i| i + 1)]
}

/// Adds mounts to the config.
fn add_mounts(b: &mut Bundle, mounts: Value) {
    b.edit(|c| {
        let list = c["mounts"].as_array_mut().unwrap();
        list.extend(mounts.as_array().unwrap().iter().cloned());
    });
}

/// Host mount points under `dir` (from the host's own mountinfo).
fn host_mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    parse_mountinfo(&text)
        .into_iter()
        .map(|e| e.point)
        .filter(|p| Path::new(p).starts_with(dir))
        .collect()
}

/// A mount made on the host by a test, unmounted when dropped.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: &Path) -> HostMount {
        std::fs::create_dir_all(at).unwrap();
        mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        HostMount(at.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// A bundle whose process prints its mountinfo and then runs `script`.
fn bundle_sh(script: &str) -> Bundle {
    let mut b = Bundle::busybox();
    b.sh(&format!(
        "echo '== mountinfo'; cat /proc/self/mountinfo; echo '== script'; {script}"
    ));
    b
}

/// Adds a user namespace mapping 0-65535 to 100000-165535.
fn with_user_ns(b: &mut Bundle) {
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"].as_object_mut().unwrap().remove("resources");
    });
}

#[test]
fn default_mounts_and_their_options() {
    require_root!();
    let rt = Runtime::new();
    let b = bundle_sh("stat -c '%a' /dev /dev/shm; ls /dev/pts");
    let out = rt.run_ok(&b, &rt.id("defaults"));
    let m = parse_mountinfo(section(&out, "mountinfo"));

    let root = at(&m, "/");
    assert!(root.has("ro"), "root.readonly: {root:?}");
    assert_eq!(at(&m, "/proc").fstype, "proc");
    let dev = at(&m, "/dev");
    assert_eq!(
        (dev.fstype.as_str(), dev.source.as_str()),
        ("tmpfs", "tmpfs")
    );
    assert!(dev.has("nosuid") && dev.has("rw"), "{dev:?}");
    assert!(
        dev.has_super("size=65536k") && dev.has_super("mode=755"),
        "{dev:?}"
    );
    let pts = at(&m, "/dev/pts");
    assert_eq!(pts.fstype, "devpts");
    assert!(pts.has("nosuid") && pts.has("noexec"), "{pts:?}");
    for o in ["ptmxmode=666", "mode=620", "gid=5"] {
        assert!(pts.has_super(o), "{o} in {pts:?}");
    }
    let shm = at(&m, "/dev/shm");
    assert_eq!((shm.fstype.as_str(), shm.source.as_str()), ("tmpfs", "shm"));
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(shm.has(o), "{o} in {shm:?}");
    }
    assert!(shm.has_super("size=65536k"), "{shm:?}");
    let mq = at(&m, "/dev/mqueue");
    assert_eq!(mq.fstype, "mqueue");
    assert!(mq.has("nodev"), "{mq:?}");
    let sys = at(&m, "/sys");
    assert_eq!(sys.fstype, "sysfs");
    assert!(sys.has("ro") && sys.has("nosuid"), "{sys:?}");
    assert!(at(&m, "/sys/fs/cgroup").has("ro"));

    let script = section(&out, "script");
    let mut lines = script.lines();
    assert_eq!(lines.next(), Some("755"), "{script}");
    assert_eq!(lines.next(), Some("1777"), "{script}");
    // A new devpts instance: none of the host's terminals are visible.
    assert_eq!(lines.next(), Some("ptmx"), "{script}");
}

#[test]
fn tmpfs_size_mode_and_flags() {
    require_root!();
    let rt = Runtime::new();
    let mut b = bundle_sh(
        "stat -c '%a' /data; dd if=/dev/zero of=/data/big bs=1k count=2048 2>/dev/null && echo filled-beyond-size || echo full; \
         touch /frozen/x 2>&1 || true; /frozen-exec/busybox true 2>&1 || echo noexec-refused",
    );
    b.edit(|c| c["root"]["readonly"] = json!(false));
    add_mounts(
        &mut b,
        json!([
            {"destination": "/data", "type": "tmpfs", "source": "tmpfs",
             "options": ["size=1m", "mode=1770", "nosuid", "nodev", "noatime"]},
            {"destination": "/frozen", "type": "tmpfs", "source": "tmpfs",
             "options": ["ro", "nosuid", "nodev", "noexec", "strictatime"]},
            {"destination": "/frozen-exec", "type": "bind", "source": "rootfs/bin",
             "options": ["bind", "noexec"]}
        ]),
    );
    let out = rt.run_ok(&b, &rt.id("tmpfs"));
    let m = parse_mountinfo(section(&out, "mountinfo"));
    let data = at(&m, "/data");
    assert!(
        data.has_super("size=1024k") && data.has_super("mode=1770"),
        "{data:?}"
    );
    for o in ["rw", "nosuid", "nodev", "noatime"] {
        assert!(data.has(o), "{o} in {data:?}");
    }
    let frozen = at(&m, "/frozen");
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(frozen.has(o), "{o} in {frozen:?}");
    }
    assert!(!frozen.has("relatime"), "strictatime: {frozen:?}");
    assert!(at(&m, "/frozen-exec").has("noexec"));
    let script = section(&out, "script");
    assert!(script.starts_with("1770\nfull\n"), "{script}");
    assert!(script.contains("Read-only file system"), "{script}");
    assert!(script.contains("noexec-refused"), "{script}");
}

#[test]
fn bind_and_rbind_of_nested_mounts() {
    require_root!();
    let rt = Runtime::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("top"), "top\n").unwrap();
    let nested = HostMount::tmpfs(&host.path().join("nested"));
    std::fs::write(host.path().join("nested/inner"), "inner\n").unwrap();
    let src = host.path().display().to_string();

    let mut b = bundle_sh(
        "cat /b/top; ls /b/nested | wc -l; cat /rb/nested/inner; \
         echo w > /ro/top 2>/dev/null || echo ro-refused; \
         echo w > /ro/nested/inner && echo nested-writable; \
         echo w > /rro/nested/inner 2>/dev/null || echo rro-refused; \
         echo w > /rw/top && echo writable",
    );
    add_mounts(
        &mut b,
        json!([
            {"destination": "/b", "type": "bind", "source": src, "options": ["bind"]},
            {"destination": "/rb", "type": "bind", "source": src, "options": ["rbind"]},
            {"destination": "/ro", "type": "bind", "source": src, "options": ["rbind", "ro"]},
            {"destination": "/rro", "type": "bind", "source": src, "options": ["rbind", "rro"]},
            {"destination": "/rw", "source": src, "options": ["bind", "rw"]}
        ]),
    );
    let out = rt.run_ok(&b, &rt.id("bind"));
    let m = parse_mountinfo(section(&out, "mountinfo"));
    assert!(
        !m.iter().any(|e| e.point == "/b/nested"),
        "bind is not recursive"
    );
    assert_eq!(at(&m, "/rb/nested").fstype, "tmpfs");
    assert!(at(&m, "/ro").has("ro"));
    // Plain ro only covers the top mount (as runc); rro covers all.
    assert!(at(&m, "/ro/nested").has("rw"));
    assert!(at(&m, "/rro").has("ro") && at(&m, "/rro/nested").has("ro"));
    let script = section(&out, "script");
    assert_eq!(
        script,
        "top\n0\ninner\nro-refused\nnested-writable\nrro-refused\nwritable\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("top")).unwrap(),
        "w\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("nested/inner")).unwrap(),
        "w\n"
    );
    drop(nested);
}

/// Makes `dir` a shared mount point on the host (undone when dropped).
fn shared_host_dir(dir: &Path) -> HostMount {
    mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .unwrap();
    HostMount(dir.to_path_buf())
}

#[test]
fn propagation_of_host_mounts() {
    require_root!();
    let rt = Runtime::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir(host.path().join("sub")).unwrap();
    let shared = shared_host_dir(host.path());
    let src = host.path().display().to_string();
    let outdir = tempfile::tempdir().unwrap();

    let mut b = Bundle::busybox();
    b.sh("cat /proc/self/mountinfo > /out/mountinfo; \
          i=0; while [ ! -e /shared/sub/marker ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
          ls /shared/sub > /out/shared; ls /private/sub > /out/private");
    add_mounts(
        &mut b,
        json!([
            {"destination": "/shared", "type": "bind", "source": src, "options": ["rbind", "rshared"]},
            {"destination": "/private", "type": "bind", "source": src, "options": ["rbind", "rprivate"]},
            {"destination": "/out", "type": "bind", "source": outdir.path(), "options": ["bind"]}
        ]),
    );
    let id = rt.id("prop");
    rt.create(&b, &id);
    // The container is set up: mount something under the source now.
    let late = HostMount::tmpfs(&host.path().join("sub"));
    std::fs::write(host.path().join("sub/marker"), "").unwrap();
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");

    let m = parse_mountinfo(&std::fs::read_to_string(outdir.path().join("mountinfo")).unwrap());
    assert!(
        at(&m, "/shared")
            .optional
            .iter()
            .any(|o| o.starts_with("shared:")),
        "{:?}",
        at(&m, "/shared")
    );
    assert!(
        at(&m, "/private").optional.is_empty(),
        "{:?}",
        at(&m, "/private")
    );
    let read = |f: &str| std::fs::read_to_string(outdir.path().join(f)).unwrap();
    assert_eq!(
        read("shared"),
        "marker\n",
        "the host's new mount reached rshared"
    );
    assert_eq!(read("private"), "", "and not rprivate");
    drop(late);
    drop(shared);
}

#[test]
fn default_devices_and_symlinks() {
    require_root!();
    let rt = Runtime::new();
    let b = bundle_sh(
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done; \
         echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | od -An -tx1; \
         echo x > /dev/full 2>/dev/null || echo full-refused; head -c 8 /dev/urandom | wc -c; \
         for l in ptmx fd stdin stdout stderr; do echo \"$l -> $(readlink /dev/$l)\"; done; \
         test -e /dev/core && readlink /dev/core; true",
    );
    let out = rt.run_ok(&b, &rt.id("devices"));
    let script = section(&out, "script");
    let mut want = String::new();
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        want.push_str(&format!(
            "/dev/{name} character special file {major:x}:{minor:x} 666 0:0\n"
        ));
    }
    want.push_str("null-ok\n 00 00 00 00\nfull-refused\n8\n");
    want.push_str(
        "ptmx -> pts/ptmx\nfd -> /proc/self/fd\nstdin -> /proc/self/fd/0\n\
         stdout -> /proc/self/fd/1\nstderr -> /proc/self/fd/2\n",
    );
    if Path::new("/proc/kcore").exists() {
        want.push_str("/proc/kcore\n");
    }
    assert_eq!(script, want);
}

#[test]
fn configured_devices() {
    require_root!();
    let rt = Runtime::new();
    let mut b = bundle_sh(
        "stat -c '%n %F %t:%T %a %u:%g' /dev/mynull /dev/null /dev/loopx /opt/dev/u /run/fifo; \
         echo x > /dev/null && echo ok",
    );
    b.edit(|c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001},
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600},
            {"path": "/dev/loopx", "type": "b", "major": 7, "minor": 200},
            {"path": "/opt/dev/u", "type": "u", "major": 1, "minor": 5, "fileMode": 0o604},
            {"path": "/run/fifo", "type": "p", "fileMode": 0o620}
        ]);
        c["root"]["readonly"] = json!(false);
    });
    // A stale file where a device goes is replaced.
    std::fs::create_dir_all(b.rootfs().join("opt/dev")).unwrap();
    std::fs::write(b.rootfs().join("opt/dev/u"), "stale").unwrap();
    let out = rt.run_ok(&b, &rt.id("cfgdev"));
    assert_eq!(
        section(&out, "script"),
        "/dev/mynull character special file 1:3 640 1000:1001\n\
         /dev/null character special file 1:3 600 0:0\n\
         /dev/loopx block special file 7:c8 666 0:0\n\
         /opt/dev/u character special file 1:5 604 0:0\n\
         /run/fifo fifo 0:0 620 0:0\n\
         ok\n"
    );
    // Devices outside /dev land in the rootfs.
    let meta = std::fs::metadata(b.rootfs().join("opt/dev/u")).unwrap();
    assert_eq!(meta.rdev(), nix::sys::stat::makedev(1, 5));
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(b.rootfs().join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn devices_in_a_user_namespace_are_bound_from_the_host() {
    require_root!();
    let rt = Runtime::new();
    let mut b = bundle_sh(
        "stat -c '%n %t:%T' /dev/null /dev/zero /dev/fuse; echo x > /dev/null && echo ok",
    );
    with_user_ns(&mut b);
    b.edit(|c| {
        c["linux"]["devices"] =
            json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
        // Without a network namespace of its own sysfs cannot be mounted: the
        // host's /sys is bound instead.
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network");
    });
    let out = rt.run_ok(&b, &rt.id("userns-dev"));
    let m = parse_mountinfo(section(&out, "mountinfo"));
    assert_eq!(
        at(&m, "/dev/null").fstype,
        "devtmpfs",
        "{:?}",
        at(&m, "/dev/null")
    );
    let sys = at(&m, "/sys");
    assert_eq!((sys.fstype.as_str(), sys.root.as_str()), ("sysfs", "/"));
    assert!(sys.has("ro"), "{sys:?}");
    assert_eq!(
        section(&out, "script"),
        "/dev/null 1:3\n/dev/zero 1:5\n/dev/fuse a:e5\nok\n"
    );
}

#[test]
fn readonly_root_and_masked_and_readonly_paths() {
    require_root!();
    let rt = Runtime::new();
    let mut b = bundle_sh(
        "touch /newfile 2>&1; cat /proc/keys | wc -c; ls /proc/acpi | wc -l; touch /proc/acpi/x 2>&1; \
         ls /home | wc -l; touch /home/x 2>&1; \
         echo capsa > /proc/sys/kernel/hostname 2>/dev/null || echo sysctl-refused; \
         if [ -e /proc/kcore ]; then cat /proc/kcore | wc -c; else echo 0; fi; \
         if [ -e /proc/sysrq-trigger ]; then echo h > /proc/sysrq-trigger 2>/dev/null || echo sysrq-refused; \
         else echo nosysrq; fi; \
         touch /data/inner/x 2>&1; touch /data/x 2>&1; true",
    );
    add_mounts(
        &mut b,
        json!([
            {"destination": "/data", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/data/inner", "type": "tmpfs", "source": "tmpfs"}
        ]),
    );
    b.edit(|c| {
        let masked = c["linux"]["maskedPaths"].as_array_mut().unwrap();
        masked.push(json!("/proc/no-such-file"));
        // A second masked directory, which shares the first one's tmpfs.
        masked.push(json!("/home"));
        c["linux"]["readonlyPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/data"));
    });
    let out = rt.run_ok(&b, &rt.id("masks"));
    let m = parse_mountinfo(section(&out, "mountinfo"));
    let acpi = at(&m, "/proc/acpi");
    assert_eq!(acpi.fstype, "tmpfs");
    assert!(acpi.has("ro"), "{acpi:?}");
    let home = at(&m, "/home");
    assert_eq!(
        (home.fstype.as_str(), home.has("ro")),
        ("tmpfs", true),
        "{home:?}"
    );
    assert_eq!(at(&m, "/proc/keys").root, "/null");
    assert!(at(&m, "/proc/sys").has("ro"));
    assert!(
        at(&m, "/data/inner").has("ro"),
        "readonly paths are recursive"
    );
    let sysrq = if Path::new("/proc/sysrq-trigger").exists() {
        "sysrq-refused\n"
    } else {
        "nosysrq\n"
    };
    assert_eq!(
        section(&out, "script"),
        format!(
            "touch: /newfile: Read-only file system\n0\n0\n\
             touch: /proc/acpi/x: Read-only file system\n\
             0\ntouch: /home/x: Read-only file system\n\
             sysctl-refused\n0\n{sysrq}\
             touch: /data/inner/x: Read-only file system\ntouch: /data/x: Read-only file system\n"
        )
    );
}

#[test]
fn symlinks_in_the_rootfs_cannot_escape_it() {
    require_root!();
    let rt = Runtime::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("precious"), "keep").unwrap();
    let name = unique("capsa-escape");
    let mut b = Bundle::busybox();
    let rootfs = b.rootfs();
    // Absolute, relative and dangling symlinks all pointing at the host.
    symlink("/etc", rootfs.join("evil")).unwrap();
    let depth = "../".repeat(rootfs.components().count() + 3);
    symlink(
        format!("{depth}{}", host.path().display()),
        rootfs.join("rel"),
    )
    .unwrap();
    symlink(format!("/tmp/{name}"), rootfs.join("dangling")).unwrap();
    symlink(host.path().join("precious"), rootfs.join("filelink")).unwrap();
    let before = std::fs::read_dir("/etc").unwrap().count();

    b.sh("awk '$5 ~ /^\\/(etc|tmp)\\// {print $5}' /proc/self/mountinfo; cat /filelink");
    add_mounts(
        &mut b,
        json!([
            {"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/rel/y/z", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/dangling/deep", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/filelink", "type": "bind", "source": "config.json", "options": ["bind", "ro"]},
            {"destination": "/evil/../../../../etc/../evil/y", "type": "tmpfs", "source": "tmpfs"}
        ]),
    );
    b.edit(|c| {
        c["linux"]["devices"] =
            json!([{"path": "/evil/capsa-dev", "type": "c", "major": 1, "minor": 3}]);
    });
    let out = rt.run_ok(&b, &rt.id("escape"));
    let host_dir = host.path().strip_prefix("/").unwrap().display().to_string();
    assert_eq!(
        out.lines().take(5).collect::<Vec<_>>(),
        [
            "/etc/x".to_string(),
            format!("/{host_dir}/y/z"),
            format!("/tmp/{name}/deep"),
            format!("/{host_dir}/precious"),
            "/etc/y".to_string(),
        ]
    );
    assert!(out.contains("\"ociVersion\""), "{out}");
    // The host is untouched...
    assert!(!Path::new("/etc/x").exists() && !Path::new("/etc/y").exists());
    assert!(!Path::new("/etc/capsa-dev").exists());
    assert_eq!(std::fs::read_dir("/etc").unwrap().count(), before);
    assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_to_string(host.path().join("precious")).unwrap(),
        "keep"
    );
    assert!(!Path::new(&format!("/tmp/{name}")).exists());
    // ...and everything was made inside the rootfs.
    assert!(rootfs.join("etc/x").is_dir() && rootfs.join("etc/y").is_dir());
    assert!(rootfs.join(&host_dir).join("y/z").is_dir());
    assert!(rootfs.join(format!("tmp/{name}/deep")).is_dir());
    assert!(rootfs.join(&host_dir).join("precious").is_file());
    assert!(host_mounts_under(b.path()).is_empty());
}

#[test]
fn missing_destinations_are_created_inside_the_rootfs() {
    require_root!();
    let rt = Runtime::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("file"), "content\n").unwrap();
    let mut b = bundle_sh("cat /a/b/c/file; ls /x/y/z; stat -c '%F' /single; pwd");
    b.edit(|c| c["process"]["cwd"] = json!("/work/dir"));
    add_mounts(
        &mut b,
        json!([
            {"destination": "/a/b/c", "type": "bind", "source": host.path(), "options": ["rbind"]},
            {"destination": "/x/y/z", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/single", "type": "bind", "source": host.path().join("file"), "options": ["bind"]}
        ]),
    );
    let out = rt.run_ok(&b, &rt.id("mkdirs"));
    assert_eq!(
        section(&out, "script"),
        "content\nregular file\n/work/dir\n"
    );
    assert!(b.rootfs().join("work/dir").is_dir());
    assert!(b.rootfs().join("a/b/c").is_dir());
    assert!(b.rootfs().join("x/y/z").is_dir());
    assert!(b.rootfs().join("single").is_file());
}

#[test]
fn no_pivot_moves_the_root() {
    require_root!();
    let rt = Runtime::new();
    let b = bundle_sh("ls /; cat /proc/keys | wc -c; touch /x 2>&1; true");
    let id = rt.id("nopivot");
    let out = rt.output(&["run", "--no-pivot", "--bundle", &b.path_str(), &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = parse_mountinfo(section(&text, "mountinfo"));
    assert_eq!(at(&m, "/").root, b.rootfs().display().to_string());
    assert!(at(&m, "/").has("ro"));
    assert!(
        !m.iter()
            .any(|e| e.point == "/work" || e.point.starts_with("/tmp/"))
    );
    let script = section(&text, "script");
    let listing: Vec<&str> = script.lines().take_while(|l| *l != "0").collect();
    assert!(
        listing.contains(&"bin") && listing.contains(&"proc"),
        "{script}"
    );
    assert!(
        !listing.contains(&"work") && !listing.contains(&"usr"),
        "{script}"
    );
    assert!(
        script.ends_with("0\ntouch: /x: Read-only file system\n"),
        "{script}"
    );
}

#[test]
fn cgroup_mount_shows_the_containers_own_cgroup() {
    require_root!();
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let host = parse_mountinfo(&host);
    let v1_memory = host
        .iter()
        .any(|e| e.fstype == "cgroup" && e.super_opts.iter().any(|o| o == "memory"));
    let hybrid =
        host.iter().any(|e| e.fstype == "cgroup") && host.iter().any(|e| e.fstype == "cgroup2");
    let pure_v2 = !host.iter().any(|e| e.fstype == "cgroup")
        && host
            .iter()
            .any(|e| e.fstype == "cgroup2" && e.point == "/sys/fs/cgroup");
    if !v1_memory && !pure_v2 {
        eprintln!("SKIPPED: neither a cgroup v1 memory hierarchy nor a pure cgroup v2 host");
        return;
    }
    let rt = Runtime::new();
    // With a cgroup namespace (the default config): the container's cgroup
    // is the root of what it sees.
    let b = if pure_v2 {
        bundle_sh("cat /sys/fs/cgroup/cgroup.procs; cat /proc/self/cgroup")
    } else {
        bundle_sh("cat /sys/fs/cgroup/memory/cgroup.procs; cat /proc/self/cgroup | grep memory")
    };
    let out = rt.run_ok(&b, &rt.id("cgns"));
    let m = parse_mountinfo(section(&out, "mountinfo"));
    let script = section(&out, "script");
    assert!(
        script.lines().any(|l| l == "1"),
        "pid 1 is in the ns root: {script}"
    );
    if pure_v2 {
        let cg = at(&m, "/sys/fs/cgroup");
        assert_eq!((cg.fstype.as_str(), cg.root.as_str()), ("cgroup2", "/"));
        assert!(cg.has("ro") && cg.has("nosuid"), "{cg:?}");
        assert!(script.ends_with("\n0::/\n"), "{script}");
    } else {
        let mem = at(&m, "/sys/fs/cgroup/memory");
        assert_eq!((mem.fstype.as_str(), mem.root.as_str()), ("cgroup", "/"));
        assert!(mem.has("ro") && mem.has("nosuid"), "{mem:?}");
        assert_eq!(at(&m, "/sys/fs/cgroup").fstype, "tmpfs");
        if hybrid {
            assert_eq!(at(&m, "/sys/fs/cgroup/unified").fstype, "cgroup2");
        }
        assert!(script.ends_with(":memory:/\n"), "{script}");
    }

    // Without one: a bind mount of the container's own cgroup directory.
    let mut b = if pure_v2 {
        bundle_sh("grep '^0::' /proc/self/cgroup | cut -d: -f3")
    } else {
        bundle_sh("grep memory /proc/self/cgroup | cut -d: -f3")
    };
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "cgroup")
    });
    let out = rt.run_ok(&b, &rt.id("nocgns"));
    let m = parse_mountinfo(section(&out, "mountinfo"));
    let own = section(&out, "script").trim().to_string();
    let mount = at(
        &m,
        if pure_v2 {
            "/sys/fs/cgroup"
        } else {
            "/sys/fs/cgroup/memory"
        },
    );
    assert_eq!(mount.root, own, "{mount:?}");
    assert!(mount.has("ro"), "{mount:?}");
    assert_ne!(own, "/");
}

#[test]
fn idmapped_mounts() {
    require_root!();
    let shm = Path::new("/dev/shm");
    let on_tmpfs = parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap())
        .iter()
        .any(|e| e.point == "/dev/shm" && e.fstype == "tmpfs");
    if !on_tmpfs {
        eprintln!("SKIPPED: /dev/shm is not a tmpfs (needed for an id-mapped mount)");
        return;
    }
    let host = tempfile::Builder::new()
        .prefix("capsa-idmap-")
        .tempdir_in(shm)
        .unwrap();
    std::fs::set_permissions(host.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = host.path().join("f");
    std::fs::write(&file, "x").unwrap();
    nix::unistd::chown(&file, Some(1000.into()), Some(1000.into())).unwrap();
    let nested = HostMount::tmpfs(&host.path().join("nested"));
    let inner = host.path().join("nested/g");
    std::fs::write(&inner, "y").unwrap();
    nix::unistd::chown(&inner, Some(1000.into()), Some(1000.into())).unwrap();
    let src = host.path().display().to_string();

    // Explicit mappings, in a container without a user namespace: idmap maps
    // the top mount only, ridmap the mounts beneath too.
    let rt = Runtime::new();
    let mut b = bundle_sh("stat -c '%u:%g' /mapped/f /mapped/nested/g /rmapped/nested/g /plain/f");
    let maps = json!({
        "uidMappings": [{"containerID": 1000, "hostID": 2000, "size": 1}],
        "gidMappings": [{"containerID": 1000, "hostID": 3000, "size": 1}]
    });
    let mut mapped = json!({"destination": "/mapped", "type": "bind", "source": src,
                            "options": ["rbind", "ro", "idmap"]});
    let mut rmapped = json!({"destination": "/rmapped", "type": "bind", "source": src,
                             "options": ["rbind", "ridmap"]});
    for m in [&mut mapped, &mut rmapped] {
        m["uidMappings"] = maps["uidMappings"].clone();
        m["gidMappings"] = maps["gidMappings"].clone();
    }
    add_mounts(
        &mut b,
        json!([mapped, rmapped,
            {"destination": "/plain", "type": "bind", "source": src, "options": ["rbind"]}]),
    );
    let out = rt.run_ok(&b, &rt.id("idmap"));
    let m = parse_mountinfo(section(&out, "mountinfo"));
    assert!(at(&m, "/mapped").has("idmapped") && at(&m, "/mapped").has("ro"));
    assert!(!at(&m, "/mapped/nested").has("idmapped"));
    assert!(at(&m, "/rmapped/nested").has("idmapped"));
    assert_eq!(
        section(&out, "script"),
        "2000:3000\n1000:1000\n2000:3000\n1000:1000\n"
    );

    // `idmap` alone: the container's user namespace mappings.
    let mut b = bundle_sh("stat -c '%u:%g' /mapped/f /plain/f");
    with_user_ns(&mut b);
    // The container's root may not create them in the host-owned rootfs.
    std::fs::create_dir(b.rootfs().join("mapped")).unwrap();
    std::fs::create_dir(b.rootfs().join("plain")).unwrap();
    add_mounts(
        &mut b,
        json!([
            {"destination": "/mapped", "type": "bind", "source": src, "options": ["rbind", "idmap"]},
            {"destination": "/plain", "type": "bind", "source": src, "options": ["rbind"]}
        ]),
    );
    let out = rt.run_ok(&b, &rt.id("idmap-userns"));
    assert_eq!(section(&out, "script"), "1000:1000\n65534:65534\n");
    // The host file is unchanged.
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    drop(nested);
}

#[test]
fn remount_changes_an_earlier_mount() {
    require_root!();
    let rt = Runtime::new();
    let mut b = bundle_sh("touch /data/x 2>&1; true");
    add_mounts(
        &mut b,
        json!([
            {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
            {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["remount", "ro", "size=2m"]}
        ]),
    );
    let out = rt.run_ok(&b, &rt.id("remount"));
    let m = parse_mountinfo(section(&out, "mountinfo"));
    let data = at(&m, "/data");
    assert!(data.has("ro") && data.has_super("size=2048k"), "{data:?}");
    assert_eq!(
        m.iter().filter(|e| e.point == "/data").count(),
        1,
        "remount adds no mount"
    );
    assert_eq!(
        section(&out, "script"),
        "touch: /data/x: Read-only file system\n"
    );
}

/// `create` must fail: returns stderr after checking that nothing is left.
fn create_fails(rt: &Runtime, b: &Bundle, prefix: &str) -> String {
    let id = rt.id(prefix);
    let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!ok, "create {id} succeeded");
    assert!(!rt.root().join(&id).exists(), "state left behind");
    assert!(host_mounts_under(b.path()).is_empty(), "mounts left behind");
    err
}

#[test]
fn errors_name_the_mount_and_leave_nothing_behind() {
    require_root!();
    let rt = Runtime::new();

    let mut b = Bundle::busybox();
    b.edit(|c| c["linux"]["rootfsPropagation"] = json!("sideways"));
    let err = create_fails(&rt, &b, "badprop");
    assert!(
        err.contains("linux.rootfsPropagation") && err.contains("sideways"),
        "{err}"
    );

    // One bad mount after the default ones (so at index 7).
    for (prefix, mount, needles) in [
        (
            "nosource",
            json!({"destination": "/data", "type": "bind", "source": "/no/such/source", "options": ["rbind"]}),
            &["mounts[7] /data", "open_tree", "/no/such/source", "ENOENT"][..],
        ),
        (
            "baddata",
            json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=lots"]}),
            &["mounts[7] /data", "mount", "size=lots", "EINVAL"],
        ),
        (
            "overproc",
            json!({"destination": "/proc/self/attr", "type": "tmpfs", "source": "tmpfs"}),
            &["mounts[7]", "inside a procfs"],
        ),
        (
            "idmaptmpfs",
            json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
            &["mounts[7].options", "must be bind mounts"],
        ),
        (
            "copyupbind",
            json!({"destination": "/data", "type": "bind", "source": "rootfs", "options": ["rbind", "tmpcopyup"]}),
            &["mounts[7].options", "tmpcopyup"],
        ),
    ] {
        let mut b = Bundle::busybox();
        add_mounts(&mut b, json!([mount]));
        let err = create_fails(&rt, &b, prefix);
        for needle in needles {
            assert!(err.contains(needle), "{prefix}: {needle} in {err}");
        }
    }

    // Without a mount namespace of its own, masked paths are refused (as
    // runc refuses them), and so is a root propagation (it would be the
    // host's).
    for (field, edit) in [
        ("linux.maskedPaths", json!(null)),
        ("linux.rootfsPropagation", json!("rprivate")),
    ] {
        let mut b = Bundle::busybox();
        b.edit(|c| {
            if edit.is_null() {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "mount");
            } else {
                no_mount_namespace(c);
                c["linux"]["rootfsPropagation"] = edit.clone();
            }
        });
        let err = create_fails(&rt, &b, "nomountns");
        assert!(
            err.contains(field) && err.contains("without a mount namespace"),
            "{field}: {err}"
        );
    }
}

/// A config without a mount namespace, and so without the masked and
/// read-only paths that need one.
fn no_mount_namespace(c: &mut serde_json::Value) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    c["linux"].as_object_mut().unwrap().remove("maskedPaths");
    c["linux"].as_object_mut().unwrap().remove("readonlyPaths");
}

#[test]
fn options_a_bind_mount_cannot_take_are_ignored_with_a_warning() {
    // As runc: file-system data and superblock flags mean nothing to a
    // bind mount; the flags it does take still apply.
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("grep ' /data ' /proc/self/mountinfo");
    add_mounts(
        &mut b,
        json!([{"destination": "/data", "type": "bind", "source": "rootfs",
                "options": ["rbind", "ro", "sync", "mode=755", "size=1m"]}]),
    );
    let (code, out, err) = rt.run(&b, &rt.id("binddata"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(" /data ro,"), "{out}");
    for o in ["sync", "mode=755", "size=1m"] {
        assert!(
            err.contains("level=warning") && err.contains(&format!("\\\"{o}\\\" ignored")),
            "{o}: {err}"
        );
    }
}

#[test]
fn mounts_without_a_mount_namespace_go_on_the_rootfs_and_leave_with_it() {
    // As runc, the config's mounts are made in the runtime's mount
    // namespace, over the root filesystem; unlike runc, delete (and the end
    // of `run`) takes them away again.
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.edit(no_mount_namespace);
    b.sh("test -c /dev/null && grep -c ' /proc ' /proc/self/mountinfo && touch /x 2>&1; true");
    let out = rt.run_ok(&b, &rt.id("nomnt"));
    assert!(out.starts_with("1\n"), "{out}");
    assert!(out.contains("Read-only"), "root.readonly: {out}");
    assert!(host_mounts_under(b.path()).is_empty(), "run left mounts");
    b.args(&["sleep", "100"]);
    let id = rt.id("nomnt");
    rt.create(&b, &id);
    assert!(!host_mounts_under(b.path()).is_empty(), "made on the host");
    rt.ok(&["start", &id]);
    rt.ok(&["delete", "--force", &id]);
    assert!(
        host_mounts_under(b.path()).is_empty(),
        "{:?}",
        host_mounts_under(b.path())
    );
}

#[test]
fn root_propagation_is_the_container_roots_own() {
    // Shared and unbindable apply to the container's root once it is the
    // root (its parent on the host is made private, and an unbindable root
    // could not be bound as the rootfs): a bind of / then shares new mounts
    // (shared) or fails (unbindable), as runtime-tools' runtimetest checks.
    require_root!();
    let rt = Runtime::new();
    let mut b = bundle_sh(
        "awk '$5 == \"/\" && / shared:/' /proc/self/mountinfo | grep -q . && echo root-shared; \
         if mount -o rbind / /copy 2>/dev/null; then echo bound; else echo unbindable; exit 0; fi; \
         mount -o bind /src /dst && { [ -e /copy/dst/f ] && echo propagated || echo kept; }",
    );
    for d in ["copy", "src", "dst"] {
        std::fs::create_dir(b.rootfs().join(d)).unwrap();
    }
    std::fs::write(b.rootfs().join("src/f"), "").unwrap();
    for (propagation, want) in [
        ("shared", "root-shared\nbound\npropagated\n"),
        ("rshared", "root-shared\nbound\npropagated\n"),
        ("unbindable", "unbindable\n"),
        ("runbindable", "unbindable\n"),
        ("slave", "bound\nkept\n"),
        ("private", "bound\nkept\n"),
    ] {
        b.edit(|c| {
            c["linux"]["rootfsPropagation"] = json!(propagation);
            c["linux"].as_object_mut().unwrap().remove("seccomp");
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_SYS_ADMIN"));
            }
        });
        let out = rt.run_ok(&b, &rt.id("rootprop"));
        assert_eq!(section(&out, "script"), want, "{propagation}");
        assert!(host_mounts_under(b.path()).is_empty(), "{propagation}");
    }
}

#[test]
fn nothing_of_the_container_is_mounted_on_the_host() {
    require_root!();
    let rt = Runtime::new();
    for propagation in ["rslave", "rshared", "rprivate"] {
        let mut b = Bundle::busybox();
        b.args(&["sleep", "100"]);
        b.edit(|c| c["linux"]["rootfsPropagation"] = json!(propagation));
        let id = rt.id("leak");
        rt.create(&b, &id);
        assert!(
            host_mounts_under(b.path()).is_empty(),
            "{propagation}: {:?}",
            host_mounts_under(b.path())
        );
        rt.ok(&["start", &id]);
        rt.ok(&["kill", &id, "KILL"]);
        rt.wait_status(&id, "stopped");
        rt.ok(&["delete", &id]);
        assert!(host_mounts_under(b.path()).is_empty(), "{propagation}");
    }
}

#[test]
fn tmpcopyup_starts_a_tmpfs_with_the_covered_content() {
    require_root!();
    let rt = Runtime::new();
    let mut b = bundle_sh(
        "cat /etc/app/conf; stat -c '%a %u' /etc/app/conf; readlink /etc/app/link; ls /etc/app/sub; \
         echo new > /etc/app/new && echo writable",
    );
    let app = b.rootfs().join("etc/app");
    std::fs::create_dir_all(app.join("sub/x")).unwrap();
    std::fs::write(app.join("conf"), "setting\n").unwrap();
    std::fs::set_permissions(app.join("conf"), std::fs::Permissions::from_mode(0o640)).unwrap();
    nix::unistd::chown(&app.join("conf"), Some(1000.into()), None).unwrap();
    symlink("/etc/passwd", app.join("link")).unwrap();
    add_mounts(
        &mut b,
        json!([{"destination": "/etc/app", "type": "tmpfs", "source": "tmpfs",
                "options": ["tmpcopyup", "mode=755"]}]),
    );
    let out = rt.run_ok(&b, &rt.id("copyup"));
    let m = parse_mountinfo(section(&out, "mountinfo"));
    assert_eq!(at(&m, "/etc/app").fstype, "tmpfs");
    assert_eq!(
        section(&out, "script"),
        "setting\n640 1000\n/etc/passwd\nx\nwritable\n"
    );
    assert!(
        !app.join("new").exists(),
        "written to the tmpfs, not the rootfs"
    );
}
