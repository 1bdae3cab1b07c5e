//! Container root filesystems: overlay mounts of an image's snapshots with
//! a writable upper layer (new mount API and the legacy fallback, beyond
//! the page-size option limit), their removal, and the image config turned
//! into an OCI runtime config.

mod common;

use std::path::Path;
use std::process::Command;

use capsa_images::rootfs::MountMethod;
use capsa_images::runtime_config::runtime_config;
use capsa_images::{Digest, Store};
use common::*;
use serde_json::json;

fn store(root: &Root) -> Store {
    Store::open(&root.path().join("store")).unwrap()
}

fn layered_image() -> Image {
    let (base, top) = whiteout_layers();
    Image::new(vec![base, top], &["layered:1"])
}

fn chroot_sh(dir: &Path, script: &str) -> String {
    let out = Command::new("chroot")
        .arg(dir)
        .args(["/bin/sh", "-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn overlay_rootfs_shows_the_image_and_keeps_writes_in_its_upper_layer() {
    require_root!();
    for method in [MountMethod::Auto, MountMethod::NewApi, MountMethod::Legacy] {
        let root = Root::new();
        root.load(&docker_archive(&[layered_image()]));
        let s = store(&root);
        let r = s.create_rootfs("c1", "layered:1", method).unwrap();
        let m = &r.merged;
        assert!(!m.join("gone.txt").exists(), "{method:?}");
        assert_eq!(names(&m.join("data")), ["b", "c"]);
        assert_eq!(
            names(&m.join("opq")),
            ["z"],
            "opaque directory hides the lower x"
        );
        assert_eq!(chroot_sh(m, "cat /etc/motd; id -un"), "welcome\nroot\n");
        chroot_sh(m, "echo written > /new; rm /data/b");
        assert_eq!(std::fs::read(r.upper.join("new")).unwrap(), b"written\n");
        // The snapshots are untouched.
        let base = root
            .path()
            .join("store/snapshots")
            .join(hex(&sha256(&layered_image().layers[0])));
        assert!(base.join("fs/data/b").exists());
        assert!(!base.join("fs/new").exists());
        assert_eq!(root.mounts().len(), 1);
        s.remove_rootfs("c1").unwrap();
        assert!(root.mounts().is_empty());
        assert!(!r.dir.exists());
        assert!(s.remove_rootfs("c1").is_err(), "removing twice is an error");
    }
}

#[test]
fn images_with_more_layers_than_one_option_string_holds() {
    require_root!();
    let root = Root::new();
    let n = 70;
    let mut layers = vec![busybox_layer().tar()];
    for i in 1..n {
        layers.push(
            Layer::new()
                .file(&format!("layer-{i}"), 0o644, b"x")
                .file("top", 0o644, format!("{i}").as_bytes())
                .tar(),
        );
    }
    let img = Image::new(layers, &["tall:1"]).comp(Comp::None);
    root.load(&docker_archive(&[img]));
    let s = store(&root);
    // The absolute lowerdir paths exceed a page.
    let lower_len: usize = s
        .db()
        .layers_of(&s.resolve("tall:1").unwrap().id)
        .unwrap()
        .iter()
        .map(|l| {
            s.snapshot_dir(&Digest::parse(&l.chain_id).unwrap())
                .join("fs")
                .as_os_str()
                .len()
                + 1
        })
        .sum();
    assert!(lower_len > 4096, "{lower_len}");
    for (id, method) in [
        ("tall-new", MountMethod::NewApi),
        ("tall-legacy", MountMethod::Legacy),
    ] {
        let r = s.create_rootfs(id, "tall:1", method).unwrap();
        assert_eq!(
            std::fs::read(r.merged.join("top")).unwrap(),
            format!("{}", n - 1).as_bytes()
        );
        assert!(
            r.merged.join("layer-1").exists() && r.merged.join(format!("layer-{}", n - 1)).exists()
        );
        assert_eq!(chroot_sh(&r.merged, "echo hi"), "hi\n");
    }
    s.remove_rootfs("tall-new").unwrap();
    s.remove_rootfs("tall-legacy").unwrap();
    assert!(root.mounts().is_empty());
}

#[test]
fn rootfs_keeps_its_layers_when_the_image_is_removed() {
    require_root!();
    let root = Root::new();
    let img = layered_image();
    root.load(&docker_archive(std::slice::from_ref(&img)));
    let s = store(&root);
    let r = s
        .create_rootfs("user1", "layered:1", MountMethod::Auto)
        .unwrap();
    // In use: rmi refuses unless forced, by tag and by id.
    let err = root.fails(&["rmi", "layered:1"]);
    assert!(
        err.contains("container user1 is using its referenced image"),
        "{err}"
    );
    let err = root.fails(&["rmi", &hex(&img.id())[..12]]);
    assert!(
        err.contains("image is being used by stopped container user1"),
        "{err}"
    );
    // A prune leaves it too.
    root.ok(&["image", "prune", "-a", "-f"]);
    assert!(
        root.ok(&["images", "-q"])
            .starts_with(&hex(&img.id())[..12])
    );
    let out = root.ok(&["rmi", "-f", "layered:1"]);
    assert!(out.contains(&format!("Deleted: {}", img.id())), "{out}");
    assert_eq!(root.ok(&["images", "-q"]), "");
    // The mounted rootfs still works; its snapshots are kept.
    assert_eq!(chroot_sh(&r.merged, "cat /etc/motd"), "welcome\n");
    assert_eq!(
        std::fs::read_dir(root.path().join("store/snapshots"))
            .unwrap()
            .count(),
        2
    );
    s.remove_rootfs("user1").unwrap();
    // Now nothing holds them: the next prune collects them.
    let out = root.ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(root.path().join("store/snapshots"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(root.path().join("store/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn image_config_becomes_a_runtime_config() {
    require_root!();
    let root = Root::new();
    let mut img = Image::new(vec![busybox_layer().tar()], &["cfg:1"]);
    img.config = json!({
        "User": "user",
        "Env": ["FOO=bar"],
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo $FOO"],
        "WorkingDir": "/home/user",
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}},
        "Labels": {"org.example.team": "capsa"},
        "StopSignal": "SIGQUIT",
    });
    root.load(&docker_archive(std::slice::from_ref(&img)));
    let s = store(&root);
    let r = s.create_rootfs("cfg", "cfg:1", MountMethod::Auto).unwrap();
    let bytes = s
        .read_blob(&Digest::parse(&img.id()).unwrap(), 1 << 20)
        .unwrap();
    let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&bytes).unwrap();
    let rc = runtime_config(&config, &r.merged).unwrap();
    let p = rc.spec.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &["/bin/sh", "-c", "echo $FOO"]);
    let env = p.env().as_ref().unwrap();
    assert!(env.contains(&"FOO=bar".to_string()));
    assert!(env.iter().any(|e| e.starts_with("PATH=")));
    assert!(env.contains(&"HOME=/home/user".to_string()));
    assert_eq!(p.cwd(), Path::new("/home/user"));
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(p.user().additional_gids().as_deref(), Some(&[10][..]));
    assert_eq!(rc.exposed_ports, ["53/udp", "80/tcp"]);
    assert_eq!(rc.volumes, ["/data"]);
    assert_eq!(rc.stop_signal, "SIGQUIT");
    assert_eq!(rc.labels["org.example.team"], "capsa");
    let ann = rc.spec.annotations().as_ref().unwrap();
    assert_eq!(ann["org.opencontainers.image.stopSignal"], "SIGQUIT");
    assert_eq!(
        ann["org.opencontainers.image.exposedPorts"],
        "53/udp,80/tcp"
    );
    assert_eq!(ann["org.example.team"], "capsa");
    assert_eq!(rc.spec.root().as_ref().unwrap().path(), &r.merged);
    // /etc/passwd as a symlink leaving the rootfs resolves inside it.
    std::fs::remove_file(r.merged.join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink(
        "/../../../../etc/passwd-in-image",
        r.merged.join("etc/passwd"),
    )
    .unwrap();
    std::fs::write(
        r.merged.join("etc/passwd-in-image"),
        "user:x:4321:4321::/u:/bin/sh\n",
    )
    .unwrap();
    let rc = runtime_config(&config, &r.merged).unwrap();
    assert_eq!(rc.spec.process().as_ref().unwrap().user().uid(), 4321);
    // Unknown users are refused.
    let mut bad = config.clone();
    let mut c = bad.config().clone().unwrap();
    c.set_user(Some("nobody-here".into()));
    bad.set_config(Some(c));
    let err = runtime_config(&bad, &r.merged).unwrap_err().to_string();
    assert!(err.contains("unable to find user nobody-here"), "{err}");
    s.remove_rootfs("cfg").unwrap();
}
