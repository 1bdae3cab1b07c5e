//! `capsa pull` and `capsa push` against real registries (Debian's
//! docker-registry on loopback) and fake ones: round trips, skopeo
//! interoperability both ways, multi-platform indexes, resumed downloads,
//! wrong digests, docker.io mirrors, progress output and one-line errors.

mod common;
mod registry_harness;

use std::collections::HashMap;
use std::process::Command;

use common::*;
use registry_harness::*;
use serde_json::{Value, json};

/// The digest in `push` output (`TAG: digest: sha256:... size: N`).
fn pushed_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.split_once(": digest: ")
                .map(|(_, r)| r.split(' ').next().unwrap().to_string())
        })
        .unwrap_or_else(|| panic!("no digest line in {out}"))
}

fn image_id(c: &Capsa, name: &str) -> String {
    c.ok(&["image", "inspect", "-f", "{{.Id}}", name])
        .trim()
        .to_string()
}

#[test]
fn push_and_pull_round_trip_through_a_plain_registry() {
    require_registry!();
    let reg = Registry::plain();
    let a = Capsa::new();
    let img = app_image("app:1", b"one");
    a.load(&docker_archive(std::slice::from_ref(&img)));
    let name = format!("{}/team/app:1", reg.host);
    a.ok(&["tag", "app:1", &name]);
    let out = a.ok(&["push", &name]);
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}/team/app]\n",
            reg.host
        )),
        "{out}"
    );
    assert_eq!(out.matches(": Pushed").count(), 2, "{out}");
    let digest = pushed_digest(&out);

    let b = Capsa::new();
    let out = b.ok(&["pull", "--max-concurrent-downloads", "1", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1: Pulling from team/app", "{out}");
    assert_eq!(out.matches(": Pull complete").count(), 2, "{out}");
    assert!(out.contains(&format!("\nDigest: {digest}\n")), "{out}");
    assert!(
        out.contains(&format!("\nStatus: Downloaded newer image for {name}\n")),
        "{out}"
    );
    assert_eq!(*lines.last().unwrap(), name);
    assert_eq!(image_id(&b, &name), img.id());
    let digests = b.ok(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert_eq!(digests.trim(), digest);
    // The repo digest names the image too.
    assert_eq!(
        image_id(&b, &format!("{}/team/app@{digest}", reg.host)),
        img.id()
    );

    // Again: nothing is fetched.
    let out = b.ok(&["pull", &name]);
    assert_eq!(out.matches(": Already exists").count(), 2, "{out}");
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );
    // By digest, quietly: only the reference.
    let by_digest = format!("{}/team/app@{digest}", reg.host);
    assert_eq!(b.ok(&["pull", "-q", &by_digest]), format!("{by_digest}\n"));

    // Pushing again finds the blobs; another repository mounts them.
    let out = a.ok(&["push", &name]);
    assert_eq!(out.matches(": Layer already exists").count(), 2, "{out}");
    assert_eq!(pushed_digest(&out), digest);
    let other = format!("{}/other/app:2", reg.host);
    a.ok(&["tag", "app:1", &other]);
    let out = a.ok(&["push", &other]);
    assert_eq!(out.matches(": Mounted from team/app").count(), 2, "{out}");
    assert_eq!(pushed_digest(&out), digest);
    // The pusher records the repo digest as Docker does.
    let inspect = a.ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", "app:1"]);
    assert!(
        inspect.contains(&format!("{}/team/app@{digest}", reg.host)),
        "{inspect}"
    );

    // Default tag, quiet push, missing local tag.
    let latest = format!("{}/team/app", reg.host);
    a.ok(&["tag", "app:1", &latest]);
    assert_eq!(a.ok(&["push", "-q", &latest]), format!("{latest}:latest\n"));
    let out = b.ok(&["pull", &latest]);
    assert!(
        out.starts_with("Using default tag: latest\nlatest: Pulling from team/app\n"),
        "{out}"
    );
    let err = a.fails(&["push", &format!("{}/team/nothing:1", reg.host)]);
    assert!(
        err.contains("An image does not exist locally with the tag"),
        "{err}"
    );
    // Each pull and push is an image event naming the reference and its
    // repository, as Docker logs them.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let until = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
    let events = |c: &Capsa, action: &str| {
        c.ok(&[
            "events",
            "--since",
            "0",
            "--until",
            &until,
            "--filter",
            "type=image",
            "--filter",
            &format!("event={action}"),
            "--format",
            "{{.Actor.ID}} {{.Actor.Attributes.name}}",
        ])
    };
    let h = &reg.host;
    assert_eq!(
        events(&a, "push"),
        format!(
            "{h}/team/app:1 {h}/team/app\n{h}/team/app:1 {h}/team/app\n{h}/other/app:2 {h}/other/app\n{h}/team/app:latest {h}/team/app\n"
        )
    );
    assert_eq!(
        events(&b, "pull"),
        format!(
            "{h}/team/app:1 {h}/team/app\n{h}/team/app:1 {h}/team/app\n{h}/team/app@{digest} {h}/team/app\n{h}/team/app:latest {h}/team/app\n"
        )
    );
}

#[test]
fn skopeo_interoperates_both_ways() {
    require_registry!(skopeo);
    let reg = Registry::plain();
    let c = Capsa::new();

    // skopeo pushes, capsa pulls and runs it.
    let img = app_image("x:1", b"from skopeo");
    let built = Built::new(&img, "amd64", None);
    let layout = c.root.scratch("layout");
    oci_layout(&layout, "x", &[(&built, "amd64", None)]);
    let name = format!("{}/sk/app:1", reg.host);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:x", layout.display()),
        &format!("docker://{name}"),
    ]);
    let out = c.ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Digest: {}", sha256(&built.manifest))),
        "{out}"
    );
    assert_eq!(image_id(&c, &name), built.id());
    let ran = c.ok(&[
        "run",
        "--rm",
        &name,
        "sh",
        "-c",
        "cat /etc/app; echo; echo ran",
    ]);
    assert_eq!(ran, "from skopeo\nran\n");

    // capsa pushes, skopeo copies back the same digests.
    let img2 = app_image("mine:2", b"from capsa");
    c.load(&docker_archive(std::slice::from_ref(&img2)));
    let name2 = format!("{}/cap/app:2", reg.host);
    c.ok(&["tag", "mine:2", &name2]);
    let digest = pushed_digest(&c.ok(&["push", &name2]));
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name2}"),
    ]);
    assert_eq!(sha256(raw.as_bytes()), digest);
    let back = c.root.scratch("back");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{name2}"),
        &format!("oci:{}:y", back.display()),
    ]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], json!(digest));
    let manifest: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(manifest["config"]["digest"], json!(img2.id()));
    for l in manifest["layers"].as_array().unwrap() {
        let d = l["digest"].as_str().unwrap();
        let blob = std::fs::read(back.join("blobs/sha256").join(hex(d))).unwrap();
        assert_eq!(sha256(&blob), d, "skopeo got the blob unchanged");
    }
}

#[test]
fn run_and_create_pull_missing_images() {
    require_registry!();
    let reg = Registry::plain();
    let a = Capsa::new();
    a.load(&docker_archive(&[app_image("app:1", b"pulled by run")]));
    let name = format!("{}/team/runme:1", reg.host);
    a.ok(&["tag", "app:1", &name]);
    a.ok(&["push", &name]);

    let b = Capsa::new();
    // --pull never with nothing local: Docker's error, exit 125.
    let o = b.run(&["run", "--rm", "--pull", "never", &name, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("No such image"), "{}", stderr(&o));
    // The default (missing) pulls, with the progress on stderr.
    let o = b.run(&["run", "--rm", &name, "cat", "/etc/app"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "pulled by run");
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("Unable to find image '{name}' locally\n")),
        "{err}"
    );
    assert!(err.contains(": Pull complete"), "{err}");
    assert!(
        err.contains(&format!("Status: Downloaded newer image for {name}")),
        "{err}"
    );
    // Present now: nothing is pulled.
    let o = b.run(&["run", "--rm", &name, "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    // --pull always asks the registry again; -q keeps it quiet.
    let o = b.run(&["create", "--name", "again", "--pull", "always", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("Status: Image is up to date for {name}")),
        "{}",
        stderr(&o)
    );
    b.ok(&["rm", "again"]);
    let o = b.run(&["run", "--rm", "-q", "--pull", "always", &name, "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    // A bad policy is refused before anything is made.
    let o = b.run(&["run", "--rm", "--pull", "sometimes", &name, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("invalid pull option: 'sometimes'"),
        "{}",
        stderr(&o)
    );
    // Each pull that asked the registry is an image event, as for `pull`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let pulls = b.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &format!("{}.{:09}", now.as_secs(), now.subsec_nanos()),
        "--filter",
        "type=image",
        "--filter",
        "event=pull",
        "--format",
        "{{.Actor.ID}}",
    ]);
    assert_eq!(pulls, format!("{name}\n{name}\n{name}\n"));
    // An image the registry does not have: one clear line.
    let o = b.run(&[
        "run",
        "--rm",
        &format!("{}/team/absent:1", reg.host),
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("team/absent"), "{}", stderr(&o));
}

fn host_and_other_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", "amd64"),
        _ => ("amd64", "arm64"),
    }
}

#[test]
fn multi_platform_indexes_pick_the_platform() {
    require_registry!(skopeo);
    let reg = Registry::plain();
    let (host, other) = host_and_other_arch();
    let c = Capsa::new();
    let mine = Built::new(&app_image("p:1", b"host"), host, None);
    let theirs = Built::new(&app_image("p:1", b"other"), other, None);
    let s390 = Built::new(&app_image("p:1", b"s390x"), "s390x", None);
    let layout = c.root.scratch("multi");
    oci_layout(&layout, "m", &[(&theirs, other, None), (&mine, host, None)]);
    let name = format!("{}/multi/app:1", reg.host);
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:m", layout.display()),
        &format!("docker://{name}"),
    ]);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]);

    let out = c.ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Digest: {}", sha256(raw.as_bytes()))),
        "the digest is the index's: {out}"
    );
    assert_eq!(image_id(&c, &name), mine.id());
    let d = Capsa::new();
    d.ok(&["pull", "--platform", &format!("linux/{other}"), &name]);
    assert_eq!(image_id(&d, &name), theirs.id());
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Architecture}}", &name])
            .trim(),
        other
    );

    let err = d.fails(&["pull", "--platform", "linux/arm/v7", &name]);
    assert_one_line_error(
        &err,
        &[
            "no matching manifest for linux/arm/v7 in the manifest list entries",
            &reg.host,
        ],
    );

    let layout2 = c.root.scratch("multi2");
    oci_layout(
        &layout2,
        "n",
        &[(&theirs, other, None), (&s390, "s390x", None)],
    );
    let name2 = format!("{}/multi/none:1", reg.host);
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:n", layout2.display()),
        &format!("docker://{name2}"),
    ]);
    let e = Capsa::new();
    let err = e.fails(&["pull", &name2]);
    assert_one_line_error(
        &err,
        &[
            &format!("no matching manifest for linux/{host} in the manifest list entries"),
            &name2,
        ],
    );
    assert!(e.store_entries("blobs/sha256").is_empty());
    let err = e.fails(&["pull", "--platform", "linux/bogus-os", &name2]);
    assert!(err.contains("invalid platform"), "{err}");
}

#[test]
fn interrupted_downloads_resume_with_range_requests() {
    require_registry!();
    let reg = Registry::plain();
    let a = Capsa::new();
    let noise = noise_layer("data.bin", 6 << 20, 42);
    let img = Image::new(vec![busybox_layer().tar(), noise], &["big:1"]).comp(Comp::None);
    a.load(&docker_archive(std::slice::from_ref(&img)));
    a.ok(&["tag", "big:1", &format!("{}/big/app:1", reg.host)]);
    a.ok(&["push", &format!("{}/big/app:1", reg.host)]);
    let blob_total: u64 = img
        .layers
        .iter()
        .map(|l| compress(l, Comp::Gzip).len() as u64)
        .sum();

    let proxy = CuttingProxy::start(reg.port, Cut::Downloads, 1_500_000, 3);
    let b = Capsa::new();
    let name = format!("127.0.0.1:{}/big/app:1", proxy.port);
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(
        proxy.cuts_left.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the proxy cut connections"
    );
    assert!(
        proxy
            .range_requests
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3,
        "resumed with Range"
    );
    let forwarded = proxy
        .bytes_to_client
        .load(std::sync::atomic::Ordering::Relaxed);
    // Resumed, not restarted: a restart would send the 1.5 MB before a cut
    // again; a resume repeats at most what the HTTP client had buffered.
    assert!(
        forwarded < blob_total + 1_500_000,
        "{forwarded} bytes forwarded for {blob_total}"
    );
    assert_eq!(image_id(&b, &name), img.id());
    assert!(b.store_entries("tmp").is_empty());
}

#[test]
fn large_blobs_are_pushed_in_chunks_that_resume() {
    require_registry!();
    let reg = Registry::plain();
    let a = Capsa::new();
    // Uncompressed layers: nothing to gain from compressing noise.
    let img = Image::new(
        vec![busybox_layer().tar(), noise_layer("data.bin", 20 << 20, 7)],
        &["chunky:1"],
    )
    .comp(Comp::None);
    a.load(&docker_archive(std::slice::from_ref(&img)));
    // Through a proxy that cuts the first upload connection after 5 MB.
    let proxy = CuttingProxy::start(reg.port, Cut::Uploads, 5_000_000, 1);
    let name = format!("127.0.0.1:{}/chunky/app:1", proxy.port);
    a.ok(&["tag", "chunky:1", &name]);
    let out = a.ok(&["push", &name]);
    assert_eq!(out.matches(": Pushed").count(), 2, "{out}");
    assert_eq!(
        proxy.cuts_left.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "an upload was cut"
    );
    // 20 MB in 16 MB chunks (small blobs go in one PUT), plus the retried chunk.
    assert!(
        proxy
            .patch_requests
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
    let b = Capsa::new();
    b.ok(&["pull", &format!("{}/chunky/app:1", reg.host)]);
    assert_eq!(
        image_id(&b, &format!("{}/chunky/app:1", reg.host)),
        img.id()
    );
}

#[test]
fn downloads_start_again_when_the_registry_ignores_ranges() {
    require_registry!();
    let img = Image::new(
        vec![busybox_layer().tar(), noise_layer("n.bin", 3 << 20, 9)],
        &["r:1"],
    )
    .comp(Comp::None);
    let routes = fake_routes(&img, None, None);
    let big = format!("blobs/{}", sha256(&img.layers[1]));
    let served = std::sync::atomic::AtomicUsize::new(0);
    let cut = big.clone();
    let srv = HttpServer::start(move |req| {
        if req.path() == "/v2/" {
            return Response::new(200, "{}");
        }
        let key = req
            .path()
            .splitn(5, '/')
            .nth(4)
            .unwrap_or_default()
            .to_string();
        let mut r = routes
            .get(&key)
            .cloned()
            .unwrap_or_else(|| Response::new(404, ""));
        // The big layer: the first two answers break after 1 MB; Range is ignored.
        if key == cut && served.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 2 {
            r.cut_at = Some(1 << 20);
        }
        r
    });
    let c = Capsa::new();
    let name = format!("{}/norange/app:1", srv.host());
    c.ok(&["pull", &name]);
    assert_eq!(image_id(&c, &name), img.id());
    let gets: Vec<Request> = srv
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path().ends_with(&big))
        .cloned()
        .collect();
    assert_eq!(gets.len(), 3, "two broken answers, then the whole blob");
    assert!(gets[1].header("range").is_some(), "it asked for the rest");
}

/// Routes of a fake registry serving `img` as `repo:1`, with `layer_bytes`
/// served for each layer digest instead of the real blobs when given.
fn fake_routes(
    img: &Image,
    layer_bytes: Option<Vec<Vec<u8>>>,
    config: Option<Vec<u8>>,
) -> HashMap<String, Response> {
    let built = Built::new(img, host_and_other_arch().0, None);
    let config = config.unwrap_or(built.config.clone());
    let mut manifest: Value = serde_json::from_slice(&built.manifest).unwrap();
    manifest["config"]["digest"] = json!(sha256(&config));
    manifest["config"]["size"] = json!(config.len());
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let mut routes = HashMap::new();
    routes.insert(
        "manifests/1".to_string(),
        Response::new(200, manifest)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
    );
    routes.insert(
        format!("blobs/{}", sha256(&config)),
        Response::new(200, config),
    );
    let served = layer_bytes.unwrap_or(built.layers.clone());
    for (real, sent) in built.layers.iter().zip(served) {
        routes.insert(format!("blobs/{}", sha256(real)), Response::new(200, sent));
    }
    routes
}

#[test]
fn wrong_digests_are_caught_and_nothing_is_kept() {
    require_registry!();
    let img = app_image("w:1", b"real");
    let other = app_image("w:1", b"fake!");
    let c = Capsa::new();

    // A layer blob whose bytes are not its digest's (one byte flipped).
    let real: Vec<Vec<u8>> = img.layers.iter().map(|l| compress(l, Comp::Gzip)).collect();
    let mut corrupt = real[1].clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x55;
    let srv = fake_registry(fake_routes(
        &img,
        Some(vec![real[0].clone(), corrupt]),
        None,
    ));
    let name = format!("{}/bad/app:1", srv.host());
    let err = c.fails(&["pull", &name]);
    assert_one_line_error(&err, &["digest mismatch", &srv.host(), "bad/app:1"]);
    assert!(c.ok(&["images", "-q"]).is_empty());
    // Nothing of the bad layer is kept; the good one may be (unreferenced, for reuse).
    let good_blob = hex(&sha256(&real[0])).to_string();
    let good_snapshot = hex(&sha256(&img.layers[0])).to_string();
    let only_good = |c: &Capsa| {
        assert!(
            c.store_entries("blobs/sha256")
                .iter()
                .all(|b| *b == good_blob),
            "{:?}",
            c.store_entries("blobs/sha256")
        );
        assert!(
            c.store_entries("snapshots")
                .iter()
                .all(|s| *s == good_snapshot),
            "{:?}",
            c.store_entries("snapshots")
        );
        assert!(c.store_entries("tmp").is_empty());
    };
    only_good(&c);
    // Another blob, longer than announced.
    let longer = compress(&other.layers[1], Comp::Gzip);
    assert!(longer.len() > real[1].len());
    let srv = fake_registry(fake_routes(&img, Some(vec![real[0].clone(), longer]), None));
    let err = c.fails(&["pull", &format!("{}/bad/app:1", srv.host())]);
    assert_one_line_error(&err, &["more than the", &srv.host()]);
    only_good(&c);

    // A config whose diff_ids do not match the layers.
    let mut config: Value = serde_json::from_slice(&img.config_bytes()).unwrap();
    config["architecture"] = json!(host_and_other_arch().0);
    config["rootfs"]["diff_ids"][1] = json!(sha256(&other.layers[1]));
    let srv = fake_registry(fake_routes(
        &img,
        None,
        Some(serde_json::to_vec(&config).unwrap()),
    ));
    let err = c.fails(&["pull", &format!("{}/bad/app:1", srv.host())]);
    assert_one_line_error(&err, &["diff_id mismatch", &srv.host()]);
    assert!(c.ok(&["images", "-q"]).is_empty());
    only_good(&c);

    // A manifest that is not the digest it was asked by.
    let mut routes = fake_routes(&img, None, None);
    let wrong = format!("sha256:{}", "0".repeat(64));
    let m = routes.remove("manifests/1").unwrap();
    routes.insert(format!("manifests/{wrong}"), m);
    let srv = fake_registry(routes);
    let err = c.fails(&["pull", &format!("{}/bad/app@{wrong}", srv.host())]);
    assert_one_line_error(&err, &["digest mismatch", &srv.host()]);
}

#[test]
fn failures_are_one_line_naming_the_registry_and_image() {
    require_registry!();
    let c = Capsa::new();
    // Unreachable: a closed loopback port.
    let closed = format!("127.0.0.1:{}", free_port());
    let err = c.fails(&["pull", &format!("{closed}/app:1")]);
    assert_one_line_error(&err, &["unreachable", &closed, &format!("{closed}/app:1")]);

    // 404 from a real registry.
    let reg = Registry::plain();
    let err = c.fails(&["pull", &format!("{}/nothing/here:1", reg.host)]);
    assert_one_line_error(
        &err,
        &["not found", "manifest unknown", &reg.host, "nothing/here:1"],
    );

    // 429, invalid JSON, schema 1, a server error.
    let mut routes = HashMap::new();
    routes.insert(
        "manifests/limited".to_string(),
        Response::new(429, r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#)
            .header("Retry-After", "60"),
    );
    routes.insert(
        "manifests/garbage".to_string(),
        Response::new(200, "{this is not json")
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
    );
    routes.insert(
        "manifests/old".to_string(),
        Response::new(
            200,
            r#"{"schemaVersion": 1, "name": "x", "tag": "old", "fsLayers": []}"#,
        )
        .header(
            "Content-Type",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
    );
    routes.insert(
        "manifests/broken".to_string(),
        Response::new(500, "internal\nerror"),
    );
    let srv = fake_registry(routes);
    let h = srv.host();
    let err = c.fails(&["pull", &format!("{h}/f/app:limited")]);
    assert_one_line_error(
        &err,
        &[
            "429",
            "pull rate limit",
            "retry after 60",
            &h,
            "f/app:limited",
        ],
    );
    let err = c.fails(&["pull", &format!("{h}/f/app:garbage")]);
    assert_one_line_error(&err, &["invalid JSON", &h, "f/app:garbage"]);
    let err = c.fails(&["pull", &format!("{h}/f/app:old")]);
    assert_one_line_error(&err, &["schema 1", "unsupported", &h]);
    let err = c.fails(&["pull", &format!("{h}/f/app:broken")]);
    assert_one_line_error(&err, &["500", "internal error", &h]);

    // Bad references and flags.
    let err = c.fails(&["pull", "Upper/Case"]);
    assert!(err.contains("invalid reference format"), "{err}");
    let err = c.fails(&["pull", "-a", &format!("{h}/f/app:1")]);
    assert!(
        err.contains("tag can't be used with --all-tags/-a"),
        "{err}"
    );
    std::fs::write(&c.registries_config, r#"{"registry-mirror": []}"#).unwrap();
    let err = c.fails(&["pull", &format!("{h}/f/app:1")]);
    assert!(
        err.contains("registries.json") && err.contains("registry-mirror"),
        "{err}"
    );
}

#[test]
fn all_tags_are_pushed_and_pulled() {
    require_registry!();
    let reg = Registry::plain();
    let a = Capsa::new();
    a.load(&docker_archive(&[
        app_image("t:1", b"1"),
        app_image("t:2", b"2"),
    ]));
    for t in ["1", "2"] {
        a.ok(&[
            "tag",
            &format!("t:{t}"),
            &format!("{}/tags/app:{t}", reg.host),
        ]);
    }
    let repo = format!("{}/tags/app", reg.host);
    let out = a.ok(&["push", "-a", &repo]);
    assert_eq!(out.matches(": digest: ").count(), 2, "{out}");
    let b = Capsa::new();
    let out = b.ok(&["pull", "-a", &repo]);
    assert!(out.ends_with(&format!("{repo}\n")), "{out}");
    let tags = b.ok(&["images", "--format", "{{.Tag}}"]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["1", "2"]);
}

#[test]
fn docker_io_pulls_go_through_a_configured_mirror() {
    require_registry!();
    let reg = Registry::plain();
    let a = Capsa::new();
    let img = app_image("m:1", b"mirrored");
    a.load(&docker_archive(std::slice::from_ref(&img)));
    a.ok(&["tag", "m:1", &format!("{}/library/mirrored:1", reg.host)]);
    a.ok(&["push", &format!("{}/library/mirrored:1", reg.host)]);
    let b = Capsa::new();
    std::fs::write(
        &b.registries_config,
        serde_json::to_vec(&json!({"registry-mirrors": [format!("http://{}", reg.host)]})).unwrap(),
    )
    .unwrap();
    let out = b.ok(&["pull", "mirrored:1"]);
    assert!(
        out.starts_with("1: Pulling from library/mirrored\n"),
        "{out}"
    );
    assert!(out.ends_with("docker.io/library/mirrored:1\n"), "{out}");
    assert_eq!(image_id(&b, "mirrored:1"), img.id());
}

#[test]
fn progress_on_a_terminal_shows_layer_bars() {
    require_registry!();
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: script (util-linux) is missing");
        return;
    }
    let reg = Registry::plain();
    let a = Capsa::new();
    a.load(&docker_archive(&[app_image("tty:1", b"tty")]));
    let name = format!("{}/tty/app:1", reg.host);
    a.ok(&["tag", "tty:1", &name]);
    a.ok(&["push", &name]);
    let b = Capsa::new();
    let cmdline = format!("{} --root {} pull {name}", bin(), b.store().display());
    let out = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .envs(b.envs())
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Pull complete"), "{text}");
    assert!(text.contains("Digest: sha256:"), "{text}");
    assert!(
        text.contains(&format!("Status: Downloaded newer image for {name}")),
        "{text}"
    );
    // Drawn in place with cursor movements, not as plain lines.
    assert!(text.contains('\u{1b}'), "{text}");
}
