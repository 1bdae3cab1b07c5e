//! The store under concurrent commands and after a `capsa load` killed at
//! any point: nothing complete is lost, nothing incomplete is visible, and
//! the next command uses or repairs what it finds.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;
use serde_json::Value;

fn image(name: &str, tags: &[&str]) -> Image {
    Image::new(
        vec![
            busybox_layer().tar(),
            Layer::new().file(name, 0o644, &vec![b'x'; 3 << 20]).tar(),
        ],
        tags,
    )
}

/// Checks that every image's layers have snapshots and blobs, that each can
/// be saved, and that nothing is left in tmp.
fn check_consistent(root: &Root) {
    let store = root.path().join("store");
    let ids = root.ok(&["images", "-q", "--no-trunc"]);
    for id in ids.lines() {
        let v = root.inspect(id);
        let layers: Vec<String> = v["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        let mut parent: Option<String> = None;
        for l in &layers {
            let chain = match &parent {
                None => l.clone(),
                Some(p) => sha256(format!("{p} {l}").as_bytes()),
            };
            assert!(
                store
                    .join("snapshots")
                    .join(hex(&chain))
                    .join("fs")
                    .is_dir(),
                "snapshot of {chain} missing for {id}"
            );
            parent = Some(chain);
        }
        let out = root
            .cmd(&["save", id])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(out.success(), "save {id}");
    }
    // An idle store has no work in progress once a command has run.
    assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);
}

#[test]
fn concurrent_loads_and_rmi_never_corrupt_the_store() {
    require_root!();
    let root = Root::new();
    let a = image("a", &["a:1"]);
    let b = image("b", &["b:1"]);
    let c = image("c", &["c:1"]);
    let pa = root.scratch("a.tar");
    let pb = root.scratch("b.tar");
    std::fs::write(&pa, docker_archive(std::slice::from_ref(&a))).unwrap();
    std::fs::write(&pb, docker_archive_legacy(std::slice::from_ref(&b))).unwrap();
    for round in 0..3 {
        root.load(&docker_archive(std::slice::from_ref(&c)));
        let mut children = vec![
            root.cmd(&["load", "-i", pa.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            root.cmd(&["load", "-i", pb.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            root.cmd(&["rmi", "c:1"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            root.cmd(&["load", "-i", pa.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ];
        for ch in children.drain(..) {
            let out = ch.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
        }
        let tags = root.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        let mut tags: Vec<&str> = tags.lines().collect();
        tags.sort();
        assert_eq!(tags, ["a:1", "b:1"], "round {round}");
        check_consistent(&root);
        // The shared base layer has one snapshot; a, b and their tops three.
        assert_eq!(
            std::fs::read_dir(root.path().join("store/snapshots"))
                .unwrap()
                .count(),
            3
        );
        root.ok(&["rmi", "a:1", "b:1"]);
    }
}

#[test]
fn a_killed_load_leaves_a_store_that_the_next_command_repairs() {
    require_root!();
    let root = Root::new();
    let kept = image("kept", &["kept:1"]);
    root.load(&docker_archive(std::slice::from_ref(&kept)));
    let victim = image("victim", &["victim:1"]);
    let archive = docker_archive(std::slice::from_ref(&victim));
    let store = root.path().join("store");
    // Kill the load after feeding it part of the archive, all of it but
    // the end of the stream, and all of it while it commits.
    for cut in [
        archive.len() / 10,
        archive.len() / 2,
        archive.len() - 1024,
        archive.len(),
    ] {
        let mut child = root
            .cmd(&["load"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&archive[..cut]).unwrap();
        stdin.flush().unwrap();
        // Wait until it is at work (its workspace exists) or done.
        for _ in 0..2000 {
            if std::fs::read_dir(store.join("tmp")).unwrap().count() > 0
                || child.try_wait().unwrap().is_some()
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        drop(stdin);
        // What was complete is intact and usable.
        assert_eq!(root.inspect("kept:1")["Id"], Value::String(kept.id()));
        check_consistent(&root);
        // The retry succeeds.
        assert_eq!(
            root.load(&archive),
            "Loaded image: victim:1\n",
            "cut at {cut}"
        );
        check_consistent(&root);
        root.ok(&["rmi", "victim:1"]);
        check_consistent(&root);
    }
    assert_eq!(
        root.ok(&["images", "--format", "{{.Repository}}"]),
        "kept\n"
    );
}

#[test]
fn two_loads_of_the_same_layers_at_once() {
    require_root!();
    let root = Root::new();
    let img = image("same", &["same:1"]);
    let p = root.scratch("same.tar");
    std::fs::write(&p, docker_archive(std::slice::from_ref(&img))).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            root.cmd(&["load", "-i", p.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "Loaded image: same:1\n");
    }
    assert_eq!(
        std::fs::read_dir(root.path().join("store/snapshots"))
            .unwrap()
            .count(),
        2
    );
    check_consistent(&root);
}
