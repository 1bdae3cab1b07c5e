//! Layer application: every kind of tar entry, metadata, whiteouts and
//! opaque directories in overlay form, and hostile layers refused with
//! nothing written outside the snapshot.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::*;

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    capsa_images::unpack::get_xattr(path, name).unwrap()
}

fn snapshot(root: &Root, chain: &str) -> PathBuf {
    root.path()
        .join("store/snapshots")
        .join(hex(chain))
        .join("fs")
}

fn is_whiteout(p: &Path) -> bool {
    let m = std::fs::symlink_metadata(p).unwrap();
    m.file_type().is_char_device() && m.rdev() == 0
}

#[test]
fn every_entry_kind_and_its_metadata() {
    require_root!();
    let root = Root::new();
    let caps = b"\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    let base = busybox_layer()
        .dir("data", 0o750)
        .file_owned("data/owned", 0o640, 1000, 1000, b"owned\n")
        .file("data/setuid", 0o4755, b"#!/bin/sh\n")
        .file_xattrs(
            "data/cap",
            0o755,
            b"binary",
            &[("security.capability", caps), ("user.note", b"hello")],
        )
        .hardlink("data/hardlink", "data/owned")
        .symlink("data/rel-link", "../etc/passwd")
        .symlink("data/abs-link", "/etc/passwd")
        .dir("dev", 0o755)
        .node("dev/null", tar::EntryType::Char, 0o666, 1, 3)
        .node("dev/loop9", tar::EntryType::Block, 0o660, 7, 9)
        .node("data/fifo", tar::EntryType::Fifo, 0o600, 0, 0)
        .tar();
    let img = Image::new(vec![base.clone()], &["kinds:1"]);
    root.load(&docker_archive(&[img]));
    let fs = snapshot(&root, &sha256(&base));
    let meta = |p: &str| std::fs::symlink_metadata(fs.join(p)).unwrap();

    assert_eq!(std::fs::read(fs.join("data/owned")).unwrap(), b"owned\n");
    let m = meta("data/owned");
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1000, 0o640));
    assert_eq!(m.mtime(), 1_600_000_000);
    assert_eq!(meta("data").mode() & 0o7777, 0o750);
    assert_eq!(
        meta("data").mtime(),
        1_600_000_000,
        "directory mtimes are set last"
    );
    assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(meta("data/setuid").mode() & 0o7777, 0o4755);
    assert_eq!(meta("data/hardlink").ino(), m.ino());
    assert_eq!(m.nlink(), 2);
    assert_eq!(
        std::fs::read_link(fs.join("data/rel-link")).unwrap(),
        Path::new("../etc/passwd")
    );
    assert_eq!(
        std::fs::read_link(fs.join("data/abs-link")).unwrap(),
        Path::new("/etc/passwd")
    );
    let null = meta("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(null.mode() & 0o777, 0o666);
    let lp = meta("dev/loop9");
    assert!(lp.file_type().is_block_device());
    assert_eq!(lp.rdev(), nix::sys::stat::makedev(7, 9));
    assert!(meta("data/fifo").file_type().is_fifo());
    assert_eq!(
        get_xattr(&fs.join("data/cap"), "security.capability").as_deref(),
        Some(&caps[..])
    );
    assert_eq!(
        get_xattr(&fs.join("data/cap"), "user.note").as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(
        std::fs::metadata(fs.join("bin/busybox"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    // The image size counts file contents once per inode.
    let size = root.inspect("kinds:1")["Size"].as_i64().unwrap();
    let bb = std::fs::metadata(BUSYBOX).unwrap().len() as i64;
    assert!(size >= bb && size < bb + 4096, "{size}");
}

#[test]
fn whiteouts_and_opaque_dirs_in_overlay_form() {
    require_root!();
    let root = Root::new();
    let (base, top) = whiteout_layers();
    let img = Image::new(vec![base.clone(), top.clone()], &["wh:1"]).comp(Comp::Zstd);
    root.load(&docker_archive_legacy(&[img]));
    let chain = sha256(format!("{} {}", sha256(&base), sha256(&top)).as_bytes());
    let fs = snapshot(&root, &chain);
    assert!(is_whiteout(&fs.join("gone.txt")));
    assert!(is_whiteout(&fs.join("data/a")));
    assert!(!fs.join("data/.wh.a").exists());
    assert!(!fs.join(".wh.gone.txt").exists());
    assert_eq!(
        get_xattr(&fs.join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!fs.join("opq/.wh..wh..opq").exists());
    assert_eq!(std::fs::read(fs.join("opq/z")).unwrap(), b"z");
    assert!(get_xattr(&fs.join("data"), "trusted.overlay.opaque").is_none());
}

/// Loads an image made of the busybox layer and `hostile`, expects the load
/// to fail with `expect` in the message, and checks that nothing was kept.
fn refused(hostile: Vec<u8>, expect: &str, outside: &[&Path]) {
    let root = Root::new();
    let img = Image::new(vec![hostile], &["hostile:1"]);
    let p = root.scratch("hostile.tar");
    std::fs::write(&p, docker_archive(&[img])).unwrap();
    let err = root.fails(&["load", "-i", p.to_str().unwrap()]);
    assert!(err.starts_with("Error: "), "{err}");
    assert!(err.contains(expect), "expected {expect:?} in {err:?}");
    for o in outside {
        assert!(
            !o.exists(),
            "{} was written outside the snapshot",
            o.display()
        );
    }
    let store = root.path().join("store");
    assert_eq!(
        std::fs::read_dir(store.join("snapshots")).unwrap().count(),
        0
    );
    assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(store.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(root.ok(&["images", "-q"]), "");
}

fn outside_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("capsa-outside-")
        .tempdir()
        .unwrap()
}

#[test]
fn hostile_paths_are_refused() {
    require_root!();
    let out = outside_dir();
    let target = out.path().join("pwned");
    let t = target.to_str().unwrap();
    // Absolute path.
    refused(
        Layer::new()
            .raw(t.as_bytes(), tar::EntryType::Regular, None, b"x")
            .tar(),
        "absolute path refused",
        &[&target],
    );
    // ../ escapes, at the start and in the middle.
    let up = format!("../../../../../../../..{t}");
    refused(
        Layer::new()
            .raw(up.as_bytes(), tar::EntryType::Regular, None, b"x")
            .tar(),
        "'..' refused",
        &[&target],
    );
    let mid = format!("a/../../../../../../../..{t}");
    refused(
        Layer::new()
            .raw(mid.as_bytes(), tar::EntryType::Regular, None, b"x")
            .tar(),
        "'..' refused",
        &[&target],
    );
}

#[test]
fn writing_through_links_of_earlier_entries_is_refused() {
    require_root!();
    let out = outside_dir();
    let o = out.path().to_str().unwrap();
    let pwned = out.path().join("pwned");
    // An absolute symlink to a directory outside, then a file beneath it.
    refused(
        Layer::new()
            .symlink("escape", o)
            .file("escape/pwned", 0o644, b"x")
            .tar(),
        "goes through the symlink",
        &[&pwned],
    );
    // A relative symlink climbing out.
    refused(
        Layer::new()
            .symlink("escape", &format!("../../../../../../../..{o}"))
            .file("escape/pwned", 0o644, b"x")
            .tar(),
        "goes through the symlink",
        &[&pwned],
    );
    // A symlink inside the layer used as a parent.
    refused(
        Layer::new()
            .dir("real", 0o755)
            .symlink("alias", "real")
            .file("alias/f", 0o644, b"x")
            .tar(),
        "goes through the symlink",
        &[],
    );
    // A hardlink to a file outside (absolute, then climbing).
    let victim = out.path().join("victim");
    std::fs::write(&victim, b"original").unwrap();
    refused(
        Layer::new()
            .raw(
                b"hl",
                tar::EntryType::Link,
                Some(victim.to_str().unwrap().as_bytes()),
                b"",
            )
            .file("hl", 0o644, b"overwritten")
            .tar(),
        "outside the layer",
        &[],
    );
    let climb = format!("../../../../../../../..{}", victim.display());
    refused(
        Layer::new()
            .raw(b"hl", tar::EntryType::Link, Some(climb.as_bytes()), b"")
            .tar(),
        "outside the layer",
        &[],
    );
    // A hardlink to a path that is not in this layer.
    refused(
        Layer::new().hardlink("hl", "etc/shadow").tar(),
        "is not in this layer",
        &[],
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"original");
}

#[test]
fn replacing_an_entry_never_writes_through_it() {
    require_root!();
    let root = Root::new();
    // A later entry of the same name replaces a hardlink and a symlink
    // instead of writing into what they point to.
    let layer = Layer::new()
        .file("orig", 0o644, b"original")
        .hardlink("hl", "orig")
        .file("hl", 0o644, b"replaced")
        .symlink("sl", "orig")
        .file("sl", 0o644, b"also replaced")
        .tar();
    let img = Image::new(vec![layer.clone()], &["replace:1"]);
    root.load(&docker_archive(&[img]));
    let fs = snapshot(&root, &sha256(&layer));
    assert_eq!(std::fs::read(fs.join("orig")).unwrap(), b"original");
    assert_eq!(std::fs::read(fs.join("hl")).unwrap(), b"replaced");
    assert!(std::fs::symlink_metadata(fs.join("sl")).unwrap().is_file());
}

#[test]
fn tar_bombs_are_refused_before_filling_the_disk() {
    require_root!();
    // A header claiming a terabyte.
    refused(Layer::lying_file("big", 1 << 40, b"tiny"), "tar bomb", &[]);
    // A small gzip that expands beyond the free space of a 32 MB store.
    let root = Root::new();
    let store = root.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    if let Err(e) = nix::mount::mount(
        Some("tmpfs"),
        &store,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=32m"),
    ) {
        eprintln!("SKIPPED (bomb part): cannot mount a tmpfs: {e}");
        return;
    }
    let zeros = vec![0u8; 64 << 20];
    let bomb = Layer::new().file("zeros", 0o644, &zeros).tar();
    let img = Image::new(vec![bomb], &["bomb:1"]);
    let archive = docker_archive(&[img]);
    assert!(archive.len() < 1 << 20, "the bomb compresses well");
    let p = root.scratch("bomb.tar");
    std::fs::write(&p, archive).unwrap();
    let err = root.fails(&["load", "-i", p.to_str().unwrap()]);
    assert!(err.contains("tar bomb"), "{err}");
    assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(store.join("snapshots")).unwrap().count(),
        0
    );
}

#[test]
fn huge_entry_metadata_is_refused() {
    require_root!();
    // A GNU long name of 20 MB.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(20 << 20);
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_cksum();
    b.append(&h, &vec![b'a'; 20 << 20][..]).unwrap();
    let mut f = tar::Header::new_gnu();
    f.set_path("x").unwrap();
    f.set_size(0);
    f.set_cksum();
    b.append(&f, &[][..]).unwrap();
    refused(b.into_inner().unwrap(), "bytes of headers", &[]);
}

#[test]
fn diff_id_mismatch_is_refused() {
    require_root!();
    let root = Root::new();
    let mut img = Image::new(vec![busybox_layer().tar()], &["lie:1"]);
    img.diff_ids = Some(vec![sha256(b"something else")]);
    let p = root.scratch("lie.tar");
    std::fs::write(&p, docker_archive(&[img])).unwrap();
    let err = root.fails(&["load", "-i", p.to_str().unwrap()]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains("diff_id"), "{err}");
    assert_eq!(root.ok(&["images", "-q"]), "");
    let store = root.path().join("store");
    assert_eq!(
        std::fs::read_dir(store.join("snapshots")).unwrap().count(),
        0
    );
}

#[test]
fn blob_digest_mismatch_is_refused_and_nothing_kept() {
    require_root!();
    let root = Root::new();
    let img = Image::new(vec![busybox_layer().tar()], &["bad:1"]);
    // Rename the layer blob to a wrong digest inside the archive.
    let good = docker_archive(std::slice::from_ref(&img));
    let mut a = tar::Archive::new(&good[..]);
    let mut out = tar::Builder::new(Vec::new());
    let layer_hex = hex(&sha256(&compress(&img.layers[0], Comp::Gzip))).to_string();
    let wrong = "0".repeat(64);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if path.ends_with(&layer_hex) {
            path = format!("blobs/sha256/{wrong}");
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        out.append_data(&mut h, &path, &data[..]).unwrap();
    }
    let p = root.scratch("bad.tar");
    std::fs::write(&p, out.into_inner().unwrap()).unwrap();
    let err = root.fails(&["load", "-i", p.to_str().unwrap()]);
    assert!(err.contains("digest mismatch"), "{err}");
    let store = root.path().join("store");
    assert_eq!(
        std::fs::read_dir(store.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);
}

/// Everything about a tree that a layer carries, for comparisons.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let what = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_file() {
                format!(
                    "file {} nlink {}",
                    sha256(&std::fs::read(&p).unwrap()),
                    m.nlink()
                )
            } else {
                format!("node {:o} {}", m.mode() & 0o170000, m.rdev())
            };
            let mut xs = Vec::new();
            for name in ["security.capability", "user.note", "trusted.overlay.opaque"] {
                if let Some(v) = get_xattr(&p, name) {
                    xs.push(format!("{name}={v:?}"));
                }
            }
            // Whiteouts (0:0 character devices) are made when unpacked:
            // their time is not content.
            let whiteout = m.file_type().is_char_device() && m.rdev() == 0;
            let mtime = if m.is_dir() || m.file_type().is_symlink() || whiteout {
                0
            } else {
                m.mtime()
            };
            out.push(format!(
                "{rel} {what} {:o} {}:{} {mtime} {}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid(),
                xs.join(",")
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn snapshots_export_back_to_layer_tars() {
    require_root!();
    let root = Root::new();
    let (base, top) = whiteout_layers();
    let kinds = Layer::new()
        .dir("d", 0o750)
        .file_owned("d/owned", 0o640, 1000, 1000, b"owned\n")
        .file_xattrs("d/cap", 0o755, b"bin", &[("user.note", b"hello")])
        .hardlink("d/hl", "d/owned")
        .symlink("d/sl", "../etc/passwd")
        .node("d/null", tar::EntryType::Char, 0o666, 1, 3)
        .node("d/fifo", tar::EntryType::Fifo, 0o600, 0, 0)
        .tar();
    let img = Image::new(vec![base.clone(), top.clone(), kinds.clone()], &["exp:1"]);
    root.load(&docker_archive(&[img]));
    let c1 = sha256(&base);
    let c2 = sha256(format!("{c1} {}", sha256(&top)).as_bytes());
    let c3 = sha256(format!("{c2} {}", sha256(&kinds)).as_bytes());
    for chain in [&c2, &c3] {
        let fs = snapshot(&root, chain);
        let mut tar_bytes = Vec::new();
        let (diff_id, size) = capsa_images::export::export_diff(&fs, &mut tar_bytes).unwrap();
        assert_eq!(diff_id.as_str(), sha256(&tar_bytes));
        assert_eq!(size, tar_bytes.len() as u64);
        let names: Vec<String> = tar::Archive::new(&tar_bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        if chain == &c2 {
            assert!(names.contains(&".wh.gone.txt".to_string()), "{names:?}");
            assert!(names.contains(&"data/.wh.a".to_string()), "{names:?}");
            assert!(names.contains(&"opq/.wh..wh..opq".to_string()), "{names:?}");
        }
        // Unpacking the exported tar gives the same snapshot.
        let again = Root::new();
        let img = Image::new(vec![tar_bytes.clone()], &["again:1"]).comp(Comp::None);
        again.load(&docker_archive(&[img]));
        assert_eq!(tree(&snapshot(&again, &sha256(&tar_bytes))), tree(&fs));
    }
}
