//! Docker's image commands and their output: images (columns, -q, -a,
//! --digests, --no-trunc, --filter, --format), tag, rmi, image inspect,
//! history, image prune, system df, import.

mod common;

use common::*;
use serde_json::{Value, json};

const OLD: &str = "2001-01-01T00:00:00Z";
const OLD_UNIX: i64 = 978_307_200;

fn years_ago(unix: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    format!("{} years ago", (now - unix) / 3600 / 24 / 365)
}

fn small(name: &str, created: &str, tags: &[&str]) -> Image {
    let mut img = Image::new(
        vec![
            busybox_layer().tar(),
            Layer::new().file(name, 0o644, name.as_bytes()).tar(),
        ],
        tags,
    );
    img.created = created.into();
    img
}

/// Two images: `a:1` (older) and `b` tagged `b:1` and `b:2` (newer).
fn setup() -> (Root, Image, Image) {
    let root = Root::new();
    let a = small("a", OLD, &["a:1"]);
    let b = small("b", "2002-01-01T00:00:00Z", &["b:1"]);
    root.load(&docker_archive(&[a.clone(), b.clone()]));
    root.ok(&["tag", "b:1", "b:2"]);
    (root, a, b)
}

/// The cells of a table line (separated by two spaces or more).
fn columns(line: &str) -> Vec<String> {
    line.split("  ")
        .filter(|s| !s.is_empty())
        .map(|s| s.trim().to_string())
        .collect()
}

fn short(img: &Image) -> String {
    hex(&img.id())[..12].to_string()
}

#[test]
fn images_lists_docker_columns() {
    require_root!();
    let (root, a, b) = setup();
    let out = root.ok(&["images"]);
    let lines: Vec<&str> = out.lines().collect();
    let size_a = root.inspect("a:1")["Size"].as_i64().unwrap() as f64;
    let human = |s: f64| {
        let mb = s / 1e6;
        format!(
            "{}MB",
            format!("{mb:.3}")
                .chars()
                .take(4)
                .collect::<String>()
                .trim_end_matches('.')
        )
    };
    let rows = [
        ("b", "1", short(&b), years_ago(OLD_UNIX + 365 * 86400)),
        ("b", "2", short(&b), years_ago(OLD_UNIX + 365 * 86400)),
        ("a", "1", short(&a), years_ago(OLD_UNIX)),
    ];
    let width = |i: usize, h: &str| {
        let w = rows
            .iter()
            .map(|r| [r.0, r.1, &r.2, &r.3][i].len())
            .chain([h.len()])
            .max()
            .unwrap()
            + 3;
        w.max(10)
    };
    let (w0, w1, w2, w3) = (
        width(0, "REPOSITORY"),
        width(1, "TAG"),
        width(2, "IMAGE ID"),
        width(3, "CREATED"),
    );
    let mut expected = format!(
        "{:w0$}{:w1$}{:w2$}{:w3$}SIZE\n",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
    );
    for r in &rows {
        expected.push_str(&format!(
            "{:w0$}{:w1$}{:w2$}{:w3$}{}\n",
            r.0,
            r.1,
            r.2,
            r.3,
            human(size_a)
        ));
    }
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(out, expected);
}

#[test]
fn images_quiet_no_trunc_digests_and_all() {
    require_root!();
    let (root, a, b) = setup();
    assert_eq!(
        root.ok(&["images", "-q"]),
        format!("{}\n{}\n{}\n", short(&b), short(&b), short(&a))
    );
    assert_eq!(
        root.ok(&["images", "-q", "--no-trunc", "a"]),
        format!("{}\n", a.id())
    );
    assert_eq!(root.ok(&["images", "-a", "-q"]), root.ok(&["images", "-q"]));
    let out = root.ok(&["images", "--digests", "a"]);
    assert_eq!(
        columns(out.lines().next().unwrap()),
        ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    );
    assert!(out.lines().nth(1).unwrap().contains("<none>"));
    assert_eq!(root.ok(&["image", "ls", "-q"]), root.ok(&["images", "-q"]));
    assert_eq!(
        root.ok(&["image", "list", "-q"]),
        root.ok(&["images", "-q"])
    );
}

#[test]
fn images_format_templates() {
    require_root!();
    let (root, a, b) = setup();
    assert_eq!(
        root.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "b:1\nb:2\na:1\n"
    );
    let out = root.ok(&["images", "--format", "{{json .}}", "a"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "Containers",
            "CreatedAt",
            "CreatedSince",
            "Digest",
            "ID",
            "Repository",
            "SharedSize",
            "Size",
            "Tag",
            "UniqueSize",
            "VirtualSize"
        ]
    );
    assert_eq!(v["ID"], short(&a));
    assert_eq!(v["Digest"], "<none>");
    assert!(
        out.contains("\\u003cnone\\u003e"),
        "Go escapes < and >: {out}"
    );
    assert_eq!(root.ok(&["images", "--format", "json", "a"]), out);
    assert_eq!(
        root.ok(&["images", "--format", "table {{.ID}}\\t{{.Tag}}", "b"]),
        format!("IMAGE ID       TAG\n{0}   1\n{0}   2\n", short(&b))
    );
    assert_eq!(
        root.ok(&[
            "images",
            "--format",
            "{{if eq .Tag \"1\"}}{{upper .Repository}}{{end}}"
        ]),
        "B\n\nA\n"
    );
    let err = root.fails(&["images", "--format", "{{.Nope}}"]);
    assert!(err.contains("can't evaluate field Nope"), "{err}");
    let err = root.fails(&["images", "--format", "{{template \"x\"}}"]);
    assert!(err.contains("not supported"), "{err}");
}

#[test]
fn images_filters() {
    require_root!();
    let (root, a, _) = setup();
    let mut c = small("c", "2003-01-01T00:00:00Z", &[]);
    c.config["Labels"] = json!({"team": "x", "tier": "db"});
    root.load(&docker_archive_legacy(std::slice::from_ref(&c)));
    let q = |f: &[&str]| {
        let mut args = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        args.extend_from_slice(f);
        root.ok(&args)
    };
    assert_eq!(q(&["--filter", "dangling=true"]), "<none>:<none>\n");
    assert_eq!(q(&["-f", "dangling=false"]), "b:1\nb:2\na:1\n");
    assert_eq!(q(&["--filter", "reference=b:2"]), "b:2\n");
    assert_eq!(q(&["--filter", "reference=b*"]), "b:1\nb:2\n");
    assert_eq!(q(&["b:1"]), "b:1\n");
    assert_eq!(q(&["--filter", "label=team"]), "<none>:<none>\n");
    assert_eq!(
        q(&["--filter", "label=tier=db", "--filter", "label=team=x"]),
        "<none>:<none>\n"
    );
    assert_eq!(q(&["--filter", "label=tier=web"]), "");
    assert_eq!(q(&["--filter", "before=b:1"]), "a:1\n");
    assert_eq!(
        q(&["--filter", &format!("since={}", short(&a))]),
        "<none>:<none>\nb:1\nb:2\n"
    );
    assert_eq!(q(&["--filter", "until=2001-06-01"]), "a:1\n");
    assert_eq!(
        root.fails(&["images", "--filter", "colour=red"]),
        "Error: invalid filter 'colour'\n"
    );
    assert_eq!(
        root.fails(&["images", "--filter", "dangling"]),
        "Error: bad format of filter (expected name=value)\n"
    );
}

#[test]
fn tag_and_rmi_untag_then_delete_like_docker() {
    require_root!();
    let (root, a, _) = setup();
    // Tags.
    root.ok(&["tag", &short(&a), "localhost:5000/team/a:v1"]);
    assert_eq!(
        root.inspect("a:1")["RepoTags"],
        json!(["a:1", "localhost:5000/team/a:v1"])
    );
    assert_eq!(
        root.fails(&["tag", "nope", "x:1"]),
        "Error: No such image: nope:latest\n"
    );
    let err = root.fails(&["tag", "a:1", "Bad:Name"]);
    assert!(err.starts_with("Error: invalid reference format"), "{err}");
    // Untag while other tags remain.
    assert_eq!(root.ok(&["rmi", "b:2"]), "Untagged: b:2\n");
    // An id with tags in several repositories needs -f.
    let err = root.fails(&["rmi", &short(&a)]);
    assert_eq!(
        err,
        format!(
            "Error: conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories\n",
            short(&a)
        )
    );
    let out = root.ok(&["rmi", "-f", &short(&a)]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("Untagged: a:1"));
    assert_eq!(lines.next(), Some("Untagged: localhost:5000/team/a:v1"));
    assert_eq!(lines.next(), Some(format!("Deleted: {}", a.id()).as_str()));
    // Only a's own top layer goes; the busybox layer is shared with b.
    let top = sha256(format!("{} {}", sha256(&a.layers[0]), sha256(&a.layers[1])).as_bytes());
    assert_eq!(lines.next(), Some(format!("Deleted: {top}").as_str()));
    assert_eq!(lines.next(), None);
    // A bare name means :latest, which b does not have.
    assert_eq!(
        root.fails(&["rmi", "b"]),
        "Error: No such image: b:latest\n"
    );
    // The last tag: untag and delete, with its layers.
    let out = root.ok(&["rmi", "b:1"]);
    assert_eq!(out.lines().count(), 4, "untag, image, two layers: {out}");
    assert_eq!(root.ok(&["images", "-q"]), "");
    let store = root.path().join("store");
    assert_eq!(
        std::fs::read_dir(store.join("snapshots")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(store.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    // Several names: errors reported, the others done, exit 1.
    let (root, a, _) = setup();
    let out = root.run(&["rmi", "nope", "a:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "Error: No such image: nope:latest\n");
    assert!(stdout(&out).starts_with(&format!("Untagged: a:1\nDeleted: {}\n", a.id())));
}

#[test]
fn image_inspect_has_dockers_shape() {
    require_root!();
    let (root, a, _) = setup();
    let out = root.ok(&["image", "inspect", "a:1"]);
    assert!(
        out.starts_with("[\n    {\n        \"Id\": "),
        "four-space indent: {out}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let img = &v[0];
    let keys: Vec<&str> = img
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // serde_json sorts keys when parsing; check presence and values.
    for k in [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "DockerVersion",
        "Author",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "GraphDriver",
        "RootFS",
        "Metadata",
    ] {
        assert!(keys.contains(&k), "{k} missing");
    }
    assert_eq!(img["Id"], a.id());
    assert_eq!(img["RepoDigests"], json!([]));
    assert_eq!(img["Created"], OLD);
    assert_eq!(
        img["Config"]["Env"][0],
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(img["Config"]["Entrypoint"], Value::Null);
    assert_eq!(img["Config"]["Tty"], false);
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    // Field order as Docker writes it.
    let pos = |k: &str| out.find(&format!("\"{k}\":")).unwrap();
    assert!(
        pos("Id") < pos("RepoTags")
            && pos("Config") < pos("Architecture")
            && pos("Size") < pos("RootFS")
    );
    // Templates.
    assert_eq!(
        root.ok(&["image", "inspect", "-f", "{{.Id}}", "a:1"]),
        format!("{}\n", a.id())
    );
    assert_eq!(
        root.ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            "a:1"
        ]),
        format!(
            "{}\n",
            serde_json::to_string(&img["RootFS"]["Layers"]).unwrap()
        )
    );
    assert_eq!(
        root.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Config.Cmd}} {{.Os}} {{.Nope}}",
            "a:1"
        ]),
        "[sh] linux <no value>\n"
    );
    // Missing images: what exists is printed, the error goes to stderr.
    let out = root.run(&["image", "inspect", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "[]\n");
    assert_eq!(stderr(&out), "Error: No such image: nope:latest\n");
}

#[test]
fn history_lists_layers_newest_first() {
    require_root!();
    let (root, a, _) = setup();
    let out = root.ok(&["history", "a:1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(
        columns(lines[0]),
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    );
    assert!(lines[1].starts_with(&short(&a)));
    assert!(lines[1].contains("/bin/sh -c #(nop)  CMD [\"sh\"]"));
    assert!(lines[1].contains(" 0B"));
    assert!(lines[2].starts_with("<missing>"));
    assert!(lines[3].contains("/bin/sh -c #(nop) ADD layer 0 in / "));
    let rows = root.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Size}}|{{.CreatedBy}}",
        "a:1",
    ]);
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(
        rows[0],
        format!("{}|0B|/bin/sh -c #(nop)  CMD [\"sh\"]", a.id())
    );
    assert_eq!(rows[1], "<missing>|1B|/bin/sh -c #(nop) ADD layer 1 in / ");
    let raw = root.ok(&[
        "history",
        "-H=false",
        "--format",
        "{{.Size}} {{.CreatedSince}}",
        "a:1",
    ]);
    assert_eq!(raw.lines().nth(1).unwrap(), "1 2001-01-01T00:00:00Z");
    assert_eq!(
        root.ok(&["history", "-q", "a:1"]),
        format!("{}\n<missing>\n<missing>\n", short(&a))
    );
    // Long CREATED BY is cut at 45 characters with an ellipsis.
    let mut long = small("long", OLD, &["long:1"]);
    long.created_by = Some("/bin/sh -c apt-get update && apt-get install -y something-long".into());
    let root2 = Root::new();
    root2.load(&docker_archive(&[long]));
    let out = root2.ok(&["history", "--format", "{{.CreatedBy}}", "long:1"]);
    assert_eq!(
        out.lines().nth(1).unwrap(),
        "/bin/sh -c apt-get update && apt-get install…"
    );
    let out = root2.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "long:1",
    ]);
    assert_eq!(
        out.lines().nth(1).unwrap(),
        "/bin/sh -c apt-get update && apt-get install -y something-long"
    );
}

#[test]
fn image_prune_dangling_and_all() {
    require_root!();
    let (root, a, b) = setup();
    let c = small("c", "2003-01-01T00:00:00Z", &[]);
    root.load(&docker_archive_legacy(std::slice::from_ref(&c)));
    let out = root.ok(&["image", "prune", "-f"]);
    let top = sha256(format!("{} {}", sha256(&c.layers[0]), sha256(&c.layers[1])).as_bytes());
    assert_eq!(
        out,
        format!(
            "Deleted Images:\ndeleted: {}\ndeleted: {top}\n\nTotal reclaimed space: 1B\n",
            c.id()
        )
    );
    assert_eq!(
        root.ok(&["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    // Declining the prompt does nothing.
    let out = root.run_stdin(&["image", "prune", "-a"], b"n\n");
    assert!(out.status.success());
    assert!(stdout(&out).starts_with(
        "WARNING! This will remove all images without at least one container associated to them."
    ));
    assert_eq!(root.ok(&["images", "-q"]).lines().count(), 3);
    // Filters.
    let out = root.ok(&["image", "prune", "-a", "-f", "--filter", "until=2001-06-01"]);
    assert!(
        out.starts_with(&format!(
            "Deleted Images:\nuntagged: a:1\ndeleted: {}\n",
            a.id()
        )),
        "{out}"
    );
    let out = root.run_stdin(&["image", "prune", "-a"], b"y\n");
    assert!(stdout(&out).contains(&format!(
        "untagged: b:1\nuntagged: b:2\ndeleted: {}\n",
        b.id()
    )));
    assert!(stdout(&out).contains("Total reclaimed space: "));
    assert_eq!(root.ok(&["images", "-q"]), "");
    assert_eq!(
        std::fs::read_dir(root.path().join("store/snapshots"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        root.fails(&["image", "prune", "-f", "--filter", "x=y"]),
        "Error: invalid filter 'x'\n"
    );
}

#[test]
fn system_df_reports_images() {
    require_root!();
    let (root, _, _) = setup();
    let out = root.ok(&["system", "df"]);
    let lines: Vec<&str> = out.lines().collect();
    let cols = columns;
    assert_eq!(
        cols(lines[0]),
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    );
    let images = cols(lines[1]);
    assert_eq!(images[0], "Images");
    assert_eq!(images[1], "2");
    assert_eq!(images[2], "0");
    assert!(images[4].ends_with("(100%)"), "{out}");
    assert_eq!(cols(lines[2])[..3], ["Containers", "0", "0"]);
    assert_eq!(
        root.ok(&["system", "df", "--format", "{{.Type}}={{.TotalCount}}"]),
        "Images=2\nContainers=0\nLocal Volumes=0\n"
    );
}

#[test]
fn import_makes_a_one_layer_image() {
    require_root!();
    let root = Root::new();
    let rootfs = busybox_layer().tar();
    let p = root.scratch("rootfs.tar.gz");
    std::fs::write(&p, compress(&rootfs, Comp::Gzip)).unwrap();
    let out = root.ok(&[
        "import",
        "--change",
        "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]",
        "-c",
        "ENV A=1",
        "-c",
        "EXPOSE 8080",
        "-c",
        "USER user",
        p.to_str().unwrap(),
        "imported:v1",
    ]);
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    let v = root.inspect("imported:v1");
    assert_eq!(v["Id"], id);
    assert_eq!(v["Config"]["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
    assert_eq!(v["Config"]["Env"], json!(["A=1"]));
    assert_eq!(v["Config"]["ExposedPorts"], json!({"8080/tcp": {}}));
    assert_eq!(v["Config"]["User"], "user");
    assert_eq!(v["RootFS"]["Layers"], json!([sha256(&rootfs)]));
    assert_eq!(v["Comment"], format!("Imported from {}", p.display()));
    assert_eq!(
        root.ok(&["history", "--format", "{{.Comment}}", "imported:v1"]),
        format!("Imported from {}\n", p.display())
    );
    // From stdin with a message, untagged, zstd.
    let out = root.run_stdin(
        &["import", "-m", "my rootfs", "-"],
        &compress(&rootfs, Comp::Zstd),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id2 = stdout(&out).trim().to_string();
    assert_eq!(root.inspect(&id2)["Comment"], "my rootfs");
    // The same layer is unpacked once.
    assert_eq!(
        std::fs::read_dir(root.path().join("store/snapshots"))
            .unwrap()
            .count(),
        1
    );
    // Bad input is refused before anything is read.
    let err = root.fails(&["import", "-c", "FROM scratch", p.to_str().unwrap()]);
    assert!(err.contains("FROM is not a valid change command"), "{err}");
    let junk = root.scratch("junk");
    std::fs::write(&junk, b"this is not a tar archive at all, just text, long enough to fill a header block ............................................................................................................................................................................................................................................................................................................................................................................................................................................................").unwrap();
    let err = root.fails(&["import", junk.to_str().unwrap(), "junk:1"]);
    assert!(err.starts_with("Error: layer"), "{err}");
    let err = root.fails(&["import", "http://example.com/x.tar"]);
    assert!(err.contains("URL"), "{err}");
}
