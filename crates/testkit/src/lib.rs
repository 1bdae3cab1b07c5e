//! What the integration tests of every capsa crate share (a dev-dependency
//! only): the busybox binary test images and bundles are made from, a root
//! filesystem of it, and the check that skips a test, saying why, where it
//! cannot run.

use std::path::Path;
use std::process::Command;

/// The busybox binary (Debian's busybox-static) tests build from.
pub const BUSYBOX: &str = "/usr/bin/busybox";

/// Makes a busybox root filesystem in `rootfs`: the static binary, a
/// symlink per applet in /bin, /etc/passwd and /etc/group.
pub fn make_busybox_rootfs(rootfs: &Path) {
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user",
    ] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

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
