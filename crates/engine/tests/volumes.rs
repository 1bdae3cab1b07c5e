//! Volumes: the volume commands, named volumes surviving their
//! containers, new volumes filled from the image, anonymous volumes from
//! an image's VOLUME and `-v /path` removed by `rm -v` and `--rm`.

mod common;

use common::engine::*;
use common::*;
use serde_json::json;

/// An image whose /data holds files (owned by user 1000) and which
/// declares /data and /cache as volumes.
fn volume_image() -> Image {
    let layer = busybox_layer()
        .dir("data", 0o750)
        .file_owned("data/seed.txt", 0o640, 1000, 1000, b"from the image\n")
        .dir("cache", 0o755)
        .tar();
    let mut img = Image::new(vec![layer], &["withvol:1"]);
    img.config = json!({"Cmd": ["sh"], "Volumes": {"/data": {}, "/cache": {}}});
    img
}

#[test]
fn volume_commands() {
    require_root!();
    let e = Engine::new();
    assert_eq!(
        e.ok(&["volume", "create", "--label", "team=capsa", "mine"]),
        "mine\n"
    );
    // Creating it again is fine (Docker's idempotence).
    assert_eq!(e.ok(&["volume", "create", "mine"]), "mine\n");
    let anon = e.ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64);
    let ls = e.ok(&["volume", "ls"]);
    assert!(ls.starts_with("DRIVER    VOLUME NAME\n"), "{ls}");
    assert!(ls.contains("local     mine\n"), "{ls}");
    assert_eq!(
        e.ok(&["volume", "ls", "-q", "--filter", "label=team=capsa"]),
        "mine\n"
    );
    assert_eq!(
        e.ok(&[
            "volume",
            "ls",
            "--format",
            "{{.Name}}:{{.Driver}}",
            "--filter",
            "name=min"
        ]),
        "mine:local\n"
    );
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["volume", "inspect", "mine"])).unwrap();
    assert_eq!(v[0]["Name"], "mine");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    assert_eq!(v[0]["Labels"]["team"], "capsa");
    let mp = v[0]["Mountpoint"].as_str().unwrap();
    assert!(
        std::path::Path::new(mp).is_dir() && mp.ends_with("/volumes/mine/_data"),
        "{mp}"
    );
    assert_eq!(e.field("mine", "{{.Driver}}"), "local");
    // In use: refused; unused: removed; unknown: an error, but not with -f.
    e.run_d(&[
        "--name", "user", "-v", "mine:/m", "busybox", "sleep", "3600",
    ]);
    let err = e.fails_with(&["volume", "rm", "mine"], 1);
    assert!(err.contains("volume is in use"), "{err}");
    assert_eq!(
        e.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        format!("{anon}\n")
    );
    e.ok(&["rm", "-f", "user"]);
    assert_eq!(e.ok(&["volume", "rm", "mine"]), "mine\n");
    assert!(!std::path::Path::new(mp).exists());
    e.fails_with(&["volume", "rm", "nope"], 1);
    e.ok(&["volume", "rm", "-f", "nope"]);
    let err = e.fails_with(&["volume", "create", "bad/name"], 1);
    assert!(err.contains("invalid characters"), "{err}");
    // prune: only unused anonymous ones unless -a.
    e.ok(&["volume", "create", "named"]);
    let out = e.ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&anon) && !out.contains("named"), "{out}");
    let out = e.ok(&["volume", "prune", "-f", "-a"]);
    assert!(out.contains("named"), "{out}");
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn data_in_a_named_volume_survives_its_container() {
    require_root!();
    let e = Engine::new();
    let first = e.run_d(&[
        "--name",
        "writer",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(e.ok(&["wait", "writer"]), "0\n");
    e.ok(&["rm", "-v", "writer"]);
    e.assert_clean(&[first]);
    // -v removes anonymous volumes only: the named one is there.
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "data\n");
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "-v",
            "data:/again",
            "busybox",
            "cat",
            "/again/f"
        ]),
        "kept\n"
    );
    let m = e.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=data,target=/ro,readonly",
        "busybox",
        "sh",
        "-c",
        "cat /ro/f; touch /ro/x 2>/dev/null || echo ro",
    ]);
    assert_eq!(m, "kept\nro\n");
}

#[test]
fn new_volumes_are_filled_from_the_image() {
    require_root!();
    let e = Engine::new();
    e.root.load(&docker_archive(&[volume_image()]));
    // A new named volume over /data gets the image's files, owners and modes.
    let o = e.ok(&[
        "run",
        "--rm",
        "-v",
        "fresh:/data",
        "withvol:1",
        "sh",
        "-c",
        "cat /data/seed.txt; stat -c '%u %a' /data /data/seed.txt",
    ]);
    assert_eq!(o, "from the image\n0 750\n1000 640\n");
    // Not again once it has data (Docker fills a volume whenever it is
    // empty), and not with nocopy.
    e.ok(&[
        "run",
        "--rm",
        "-v",
        "fresh:/data",
        "withvol:1",
        "sh",
        "-c",
        "rm /data/seed.txt; echo mine > /data/own",
    ]);
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "-v",
            "fresh:/data",
            "withvol:1",
            "ls",
            "/data"
        ]),
        "own\n"
    );
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "-v",
            "other:/data:nocopy",
            "withvol:1",
            "ls",
            "/data"
        ]),
        ""
    );
}

#[test]
fn anonymous_volumes_of_the_image_go_with_rm_v() {
    require_root!();
    let e = Engine::new();
    e.root.load(&docker_archive(&[volume_image()]));
    e.run_d(&[
        "--name",
        "anon",
        "-v",
        "/extra",
        "withvol:1",
        "sleep",
        "3600",
    ]);
    let mounts = e.inspect("anon")["Mounts"].as_array().unwrap().clone();
    let dests: Vec<&str> = mounts
        .iter()
        .map(|m| m["Destination"].as_str().unwrap())
        .collect();
    assert_eq!(dests.len(), 3, "{mounts:?}");
    for d in ["/data", "/cache", "/extra"] {
        assert!(dests.contains(&d), "{d} missing: {mounts:?}");
    }
    for m in &mounts {
        assert_eq!(m["Type"], "volume");
        assert_eq!(m["Name"].as_str().unwrap().len(), 64);
        assert_eq!(m["RW"], true);
    }
    // The image's content is in its anonymous /data volume.
    assert_eq!(
        e.ok(&["exec", "anon", "cat", "/data/seed.txt"]),
        "from the image\n"
    );
    assert_eq!(e.ok(&["volume", "ls", "-q"]).lines().count(), 3);
    e.ok(&["rm", "-f", "-v", "anon"]);
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "");
    // Without -v they stay (dangling), as with Docker.
    e.run_d(&["--name", "keep", "withvol:1", "true"]);
    e.ok(&["wait", "keep"]);
    e.ok(&["rm", "keep"]);
    assert_eq!(
        e.ok(&["volume", "ls", "-q", "--filter", "dangling=true"])
            .lines()
            .count(),
        2
    );
    // --rm removes them with the container.
    e.ok(&["volume", "prune", "-f"]);
    e.ok(&["run", "--rm", "withvol:1", "true"]);
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn volumes_from_shares_the_mounts() {
    require_root!();
    let e = Engine::new();
    e.run_d(&[
        "--name",
        "owner",
        "-v",
        "shared:/shared",
        "busybox",
        "sh",
        "-c",
        "echo hi > /shared/x; sleep 3600",
    ]);
    e.wait_until(10, "the file", || {
        e.run(&["exec", "owner", "test", "-e", "/shared/x"])
            .status
            .success()
    });
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "owner",
            "busybox",
            "cat",
            "/shared/x"
        ]),
        "hi\n"
    );
    let o = e.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "owner:ro",
        "busybox",
        "sh",
        "-c",
        "touch /shared/y 2>/dev/null || echo ro",
    ]);
    assert_eq!(o, "ro\n");
}
