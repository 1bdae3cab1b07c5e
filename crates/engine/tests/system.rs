//! The system commands: `events` (a live stream of container and volume
//! events, filters, Go templates, `--since`/`--until`), `info`, `version`,
//! `system prune`, `container prune`, `system df`, and the live `stats`
//! table, with the output shapes Docker documents.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use common::engine::*;
use common::*;

/// Nanoseconds since the epoch, as `--since`/`--until` take them.
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// `SECS.NANOS`, Docker's fractional timestamp.
fn ts(ns: i64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Runs a command that must end by itself, killing it (and failing) if it
/// is still running after a minute.
fn bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        let mut e = Vec::new();
        let _ = out.read_to_end(&mut o);
        let _ = err.read_to_end(&mut e);
        (o, e)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not end by itself");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = reader.join().unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// `capsa events ARGS` that must end by itself (an `--until` in the
/// past); its stdout.
fn past_events(e: &Engine, args: &[&str]) -> String {
    let mut a = vec!["events"];
    a.extend_from_slice(args);
    let out = bounded(e.cmd(&a));
    assert!(out.status.success(), "events {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// The events from `since` to `until` (ns) with more `events` flags.
fn events_between(e: &Engine, since: i64, until: i64, extra: &[&str]) -> String {
    let (since, until) = (ts(since), ts(until));
    let mut a = vec!["--since", since.as_str(), "--until", until.as_str()];
    a.extend_from_slice(extra);
    past_events(e, &a)
}

/// A `capsa events` process followed line by line; killed when dropped.
struct Follower {
    child: Child,
    lines: Receiver<String>,
}

impl Follower {
    fn start(e: &Engine, args: &[&str]) -> Follower {
        let mut a = vec!["events"];
        a.extend_from_slice(args);
        let mut child = e
            .cmd(&a)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines }
    }

    /// The next line (failing after a minute).
    fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("an event line within a minute")
    }

    /// Lines up to and including the first one containing `marker`.
    fn until(&self, marker: &str) -> Vec<String> {
        self.until_line(|l| l.contains(marker))
    }

    /// Lines up to and including the first one satisfying `last`.
    fn until_line(&self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let mut v = Vec::new();
        loop {
            let l = self.next();
            let done = last(&l);
            v.push(l);
            if done {
                return v;
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until every follower (which sees volume events) follows the log:
/// creates probe volumes until each has printed one, then one more,
/// `ready`, read by each, so that what comes next is what the test does.
fn make_ready(e: &Engine, followers: &[&Follower]) {
    let mut ready = vec![false; followers.len()];
    let mut n = 0;
    while ready.iter().any(|r| !r) {
        assert!(n < 300, "the followers never reported a probe volume");
        e.ok(&["volume", "create", &format!("probe-{n}")]);
        for (f, r) in followers.iter().zip(ready.iter_mut()) {
            if !*r {
                *r = f.lines.recv_timeout(Duration::from_millis(200)).is_ok();
            }
        }
        n += 1;
    }
    e.ok(&["volume", "create", "ready"]);
    for f in followers {
        f.until("ready");
    }
}

/// Docker's default event line: `TIME TYPE ACTION ID (k=v, ...)`.
fn parse_line(l: &str) -> (String, String, String, String, String) {
    let (head, attrs) = l.split_once(" (").unwrap_or_else(|| panic!("{l}"));
    let attrs = attrs.strip_suffix(')').unwrap_or_else(|| panic!("{l}"));
    let p: Vec<&str> = head.split(' ').collect();
    assert_eq!(p.len(), 4, "{l}");
    (
        p[0].to_string(),
        p[1].to_string(),
        p[2].to_string(),
        p[3].to_string(),
        attrs.to_string(),
    )
}

/// Whether `t` is Go's RFC3339Nano with nine fraction digits
/// (`2006-01-02T15:04:05.000000000Z07:00`).
fn is_rfc3339_nano(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() >= 30
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..29)
        && (&t[29..] == "Z" || (t.len() == 35 && matches!(b[29], b'+' | b'-')))
}

#[test]
fn events_stream_a_containers_life_as_it_happens() {
    require_root!();
    let e = Engine::new();
    let plain = Follower::start(&e, &[]);
    let json = Follower::start(&e, &["--format", "{{json .}}"]);
    make_ready(&e, &[&plain, &json]);

    let life = e.run(&[
        "run", "--name", "life", "--label", "team=a", "busybox", "sh", "-c", "exit 3",
    ]);
    assert_eq!(life.status.code(), Some(3));
    let pets = e.run_d(&["--name", "pets", "busybox", "sleep", "3600"]);
    e.ok(&["pause", "pets"]);
    e.ok(&["unpause", "pets"]);
    e.ok(&["rename", "pets", "pets2"]);
    e.ok(&["kill", "pets2"]);
    assert_eq!(e.ok(&["wait", "pets2"]), "137\n");
    let life_id = e.field("life", "{{.Id}}");
    e.ok(&["rm", "life", "pets2"]);
    e.ok(&["volume", "create", "v1"]);
    e.ok(&["volume", "rm", "v1"]);

    let got = plain.until("volume destroy v1");
    let want: Vec<(&str, &str, &str, &str)> = vec![
        (
            "container",
            "create",
            &life_id,
            "image=busybox, name=life, team=a",
        ),
        (
            "container",
            "attach",
            &life_id,
            "image=busybox, name=life, team=a",
        ),
        (
            "container",
            "start",
            &life_id,
            "image=busybox, name=life, team=a",
        ),
        (
            "container",
            "die",
            &life_id,
            "exitCode=3, image=busybox, name=life, team=a",
        ),
        ("container", "create", &pets, "image=busybox, name=pets"),
        ("container", "start", &pets, "image=busybox, name=pets"),
        ("container", "pause", &pets, "image=busybox, name=pets"),
        ("container", "unpause", &pets, "image=busybox, name=pets"),
        (
            "container",
            "rename",
            &pets,
            "image=busybox, name=pets2, oldName=/pets",
        ),
        (
            "container",
            "kill",
            &pets,
            "image=busybox, name=pets2, signal=9",
        ),
        (
            "container",
            "die",
            &pets,
            "exitCode=137, image=busybox, name=pets2",
        ),
        (
            "container",
            "destroy",
            &life_id,
            "image=busybox, name=life, team=a",
        ),
        ("container", "destroy", &pets, "image=busybox, name=pets2"),
        ("volume", "create", "v1", "driver=local"),
        ("volume", "destroy", "v1", "driver=local"),
    ];
    let parsed: Vec<_> = got.iter().map(|l| parse_line(l)).collect();
    let seen: Vec<(&str, &str, &str, &str)> = parsed
        .iter()
        .map(|(_, t, a, id, attrs)| (t.as_str(), a.as_str(), id.as_str(), attrs.as_str()))
        .collect();
    assert_eq!(seen, want, "{got:#?}");
    for (t, ..) in &parsed {
        assert!(is_rfc3339_nano(t), "{t}");
    }

    // The same events as JSON, with Docker's events.Message keys.
    let docs: Vec<Value> = json
        .until_line(|l| l.contains("\"destroy\"") && l.contains("\"ID\":\"v1\""))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(docs.len(), want.len());
    let mut last = 0;
    for ((d, w), (t, ..)) in docs.iter().zip(&want).zip(&parsed) {
        assert_eq!(
            (&d["Type"], &d["Action"], &d["Actor"]["ID"]),
            (&Value::from(w.0), &Value::from(w.1), &Value::from(w.2)),
            "{d}"
        );
        assert_eq!(d["scope"], "local");
        let ns = d["timeNano"].as_i64().unwrap();
        assert_eq!(d["time"].as_i64().unwrap(), ns / 1_000_000_000, "{d}");
        assert_eq!(t[20..29], format!("{:09}", ns % 1_000_000_000), "{d}");
        assert!(ns >= last, "events out of order: {d}");
        last = ns;
        if w.0 == "container" {
            // Docker's deprecated top-level fields are still there.
            assert_eq!(
                (&d["status"], &d["id"], &d["from"]),
                (&d["Action"], &d["Actor"]["ID"], &Value::from("busybox")),
                "{d}"
            );
            assert_eq!(d["Actor"]["Attributes"]["image"], "busybox");
        } else {
            assert!(d.get("status").is_none() && d.get("from").is_none(), "{d}");
        }
    }
    drop((plain, json));
    e.assert_clean(&[life_id, pets]);
}

#[test]
fn events_filters_templates_since_and_until() {
    require_root!();
    let e = Engine::new();
    let t0 = now_ns();
    let one = e.ok(&[
        "run", "--name", "one", "--label", "team=a", "busybox", "true",
    ]);
    assert_eq!(one, "");
    let out = e.run(&["run", "--name", "two", "busybox", "sh", "-c", "exit 2"]);
    assert_eq!(out.status.code(), Some(2));
    e.ok(&["volume", "create", "vol1"]);
    let t1 = now_ns();
    e.ok(&["run", "--name", "three", "busybox", "true"]);
    let t2 = now_ns();
    let (one_id, two_id) = (e.field("one", "{{.Id}}"), e.field("two", "{{.Id}}"));
    let window = |extra: &[&str]| events_between(&e, t0, t1, extra);
    let short = ["--format", "{{.Actor.Attributes.name}} {{.Action}}"];
    let life = |n: &str| format!("{n} create\n{n} attach\n{n} start\n{n} die\n");
    // The window holds one and two and the volume, not three.
    assert_eq!(
        window(&[&short[..], &["--filter", "type=container"]].concat()),
        life("one") + &life("two")
    );
    // A name or an id prefix; keys AND'ed, values of one key OR'ed.
    assert_eq!(
        window(&[&short[..], &["--filter", "container=one"]].concat()),
        life("one")
    );
    assert_eq!(
        window(
            &[
                &short[..],
                &["--filter", &format!("container={}", &two_id[..10])],
                &["--filter", "event=die", "--filter", "event=create"],
            ]
            .concat()
        ),
        "two create\ntwo die\n"
    );
    assert_eq!(
        window(&[&short[..], &["--filter", "label=team=a"]].concat()),
        life("one")
    );
    // Docker matches a prefix of the name too, and every event is local.
    assert_eq!(
        window(&[&short[..], &["--filter", "container=tw"]].concat()),
        life("two")
    );
    assert_eq!(
        window(&["--filter", "scope=local", "--format", "{{.Action}}"])
            .lines()
            .count(),
        9
    );
    assert_eq!(
        window(
            &[
                &short[..],
                &["--filter", "image=busybox", "--filter", "event=start"]
            ]
            .concat()
        ),
        "one start\ntwo start\n"
    );
    assert_eq!(
        window(&[
            "--filter",
            "type=volume",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.ID}} [{{.Status}}]"
        ]),
        "volume create vol1 []\n"
    );
    // Docker's Go field names of events.Message.
    let die = window(&[
        "--filter",
        "event=die",
        "--filter",
        "container=one",
        "--format",
        "{{.Status}}|{{.ID}}|{{.From}}|{{.Type}}|{{.Scope}}|{{.Actor.Attributes.exitCode}}|{{.Time}}|{{.TimeNano}}",
    ]);
    let f: Vec<&str> = die.trim_end().split('|').collect();
    assert_eq!(
        f[..6],
        ["die", one_id.as_str(), "busybox", "container", "local", "0"],
        "{die}"
    );
    let (secs, ns): (i64, i64) = (f[6].parse().unwrap(), f[7].parse().unwrap());
    assert_eq!(secs, ns / 1_000_000_000);
    assert!((t0..=t1).contains(&ns), "{ns} not in [{t0}, {t1}]");
    // `json` is `{{json .}}`.
    let json = window(&["--format", "json", "--filter", "type=volume"]);
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        (&v["Type"], &v["Action"], &v["Actor"]["ID"]),
        (
            &Value::from("volume"),
            &Value::from("create"),
            &Value::from("vol1")
        )
    );
    assert_eq!(
        json,
        window(&["--format", "{{json .}}", "--filter", "type=volume"])
    );
    // Default lines.
    let plain = window(&["--filter", "container=two", "--filter", "event=die"]);
    let (t, kind, action, id, attrs) = parse_line(plain.trim_end());
    assert!(is_rfc3339_nano(&t), "{plain}");
    assert_eq!(
        (kind.as_str(), action.as_str(), id.as_str(), attrs.as_str()),
        (
            "container",
            "die",
            two_id.as_str(),
            "exitCode=2, image=busybox, name=two"
        )
    );
    // Later windows, and a relative --since.
    assert_eq!(events_between(&e, t1, t2, &short), life("three"));
    let recent = past_events(
        &e,
        &[
            "--since",
            "10m",
            "--until",
            &ts(t2),
            "--filter",
            "event=start",
            "--format",
            "{{.Actor.Attributes.name}}",
        ],
    );
    assert_eq!(recent, "one\ntwo\nthree\n");

    // --since without --until replays, then follows on: each event once.
    let f = Follower::start(
        &e,
        &[
            "--since",
            &ts(t0),
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.ID}}",
        ],
    );
    e.ok(&["volume", "create", "vol2"]);
    let got = f.until("volume create vol2");
    let starts = got
        .iter()
        .filter(|l| l.starts_with("container start"))
        .count();
    assert_eq!(starts, 3, "{got:#?}");
    assert_eq!(
        got.iter().filter(|l| *l == "volume create vol1").count(),
        1,
        "{got:#?}"
    );
    drop(f);

    // --until in the future ends the stream then.
    let soon = ts(now_ns() + 1_500_000_000);
    let out = past_events(
        &e,
        &[
            "--until",
            &soon,
            "--filter",
            "type=volume",
            "--format",
            "{{.Actor.ID}}",
        ],
    );
    assert!(out.starts_with("vol1\nvol2\n"), "{out}");

    // Bad input is refused before anything streams.
    let err = e.fails_with(&["events", "--filter", "bogus=1"], 1);
    assert!(err.contains("invalid filter 'bogus'"), "{err}");
    let err = e.fails_with(&["events", "--since", "yesterday"], 1);
    assert!(err.contains("invalid value for \"since\""), "{err}");
    let err = e.fails_with(&["events", "--format", "{{.Nope}}"], 1);
    assert!(err.contains("Nope"), "{err}");
}

/// The host's cgroup version as Docker reports it.
fn host_cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

#[test]
fn info_counts_containers_by_state_and_formats() {
    require_root!();
    let e = Engine::new();
    let counts = "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.Images}}";
    assert_eq!(e.ok(&["info", "--format", counts]), "0 0 0 0 1\n");
    e.run_d(&["--name", "up", "busybox", "sleep", "3600"]);
    e.run_d(&["--name", "held", "busybox", "sleep", "3600"]);
    e.ok(&["pause", "held"]);
    e.ok(&["create", "--name", "new", "busybox", "true"]);
    e.ok(&["run", "--name", "done", "busybox", "true"]);
    assert_eq!(e.ok(&["info", "--format", counts]), "4 1 1 2 1\n");
    assert_eq!(e.ok(&["system", "info", "-f", counts]), "4 1 1 2 1\n");

    let v: Value = serde_json::from_str(&e.ok(&["info", "--format", "{{json .}}"])).unwrap();
    let store = std::fs::canonicalize(e.store()).unwrap();
    assert_eq!(v["DockerRootDir"], store.to_str().unwrap());
    assert_eq!(v["Driver"], "overlay2");
    assert_eq!(v["OSType"], "linux");
    assert_eq!(v["CgroupVersion"], host_cgroup_version());
    assert_eq!(v["CgroupDriver"], "cgroupfs");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(v["KernelVersion"], release.trim());
    assert_eq!(
        v["NCPU"],
        std::thread::available_parallelism().unwrap().get()
    );
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(v["MemTotal"], mem_kb * 1024);
    let id = v["ID"].as_str().unwrap();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(v["Runtimes"]["capsa"]["path"], "capsa (in-process)");
    assert_eq!(v["DefaultRuntime"], "capsa");
    assert_eq!(
        e.ok(&["info", "--format", "{{.Driver}} {{.ServerVersion}}"]),
        format!("overlay2 {}\n", env!("CARGO_PKG_VERSION"))
    );

    // Docker's layout: Client, then Server with the counts indented.
    let text = e.ok(&["info"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Client:", "{text}");
    let server = lines.iter().position(|l| *l == "Server:").unwrap();
    assert_eq!(
        lines[server + 1..server + 6],
        [
            " Containers: 4",
            "  Running: 1",
            "  Paused: 1",
            "  Stopped: 2",
            " Images: 1"
        ],
        "{text}"
    );
    for want in [
        " Storage Driver: overlay2".to_string(),
        format!(" Cgroup Version: {}", host_cgroup_version()),
        format!(" Kernel Version: {}", release.trim()),
        format!(" Docker Root Dir: {}", store.display()),
        format!(" ID: {id}"),
    ] {
        assert!(lines.contains(&want.as_str()), "{want:?} in {text}");
    }
}

#[test]
fn version_shapes_and_go_field_names() {
    require_root!();
    let e = Engine::new();
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(
        e.ok(&[
            "version",
            "--format",
            "{{.Client.Version}} {{.Server.Version}}"
        ]),
        format!("{v} {v}\n")
    );
    // Docker's versionInfo fields (APIVersion is `ApiVersion` in JSON).
    assert_eq!(
        e.ok(&[
            "version",
            "-f",
            "{{.Client.APIVersion}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}/{{.Client.Os}}"
        ]),
        "1.47 1.47 1.24 linux/linux\n"
    );
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(
        e.ok(&["version", "-f", "{{.Server.KernelVersion}}"]),
        format!("{}\n", release.trim())
    );
    let doc: Value = serde_json::from_str(&e.ok(&["version", "-f", "{{json .}}"])).unwrap();
    assert_eq!(doc["Client"]["ApiVersion"], "1.47");
    assert_eq!(doc["Server"]["Version"], v);
    let names: Vec<&str> = doc["Server"]["Components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Engine", "capsa-runtime", "capsa-init"]);
    assert_eq!(
        e.ok(&[
            "version",
            "-f",
            "{{range .Server.Components}}{{.Name}}={{.Version}};{{end}}"
        ]),
        format!("Engine={v};capsa-runtime={v};capsa-init={v};\n")
    );
    let err = e.fails_with(&["version", "-f", "{{.Nope}}"], 1);
    assert!(err.contains("can't evaluate field Nope"), "{err}");
    let text = e.ok(&["version"]);
    assert!(
        text.starts_with(&format!("Client:\n Version:           {v}\n")),
        "{text}"
    );
    assert!(
        text.contains("\nServer: capsa (daemonless)\n Engine:\n"),
        "{text}"
    );
    assert!(text.contains("API version:       1.47\n"), "{text}");
}

/// Waits until the wall clock has passed the second `ns` falls in, so that
/// what is made next is in a later second (prune's `until` has seconds).
fn next_second(e: &Engine, ns: i64) {
    e.wait_until(5, "the next second", || {
        now_ns() / 1_000_000_000 > ns / 1_000_000_000
    });
}

#[test]
fn container_prune_removes_stopped_containers_matching_filters() {
    require_root!();
    let e = Engine::new();
    let t0 = now_ns();
    let old = e.run(&["run", "--name", "old", "busybox", "true"]);
    assert!(old.status.success());
    let old_id = e.field("old", "{{.Id}}");
    next_second(&e, now_ns());
    let cut = (now_ns() / 1_000_000_000).to_string();
    let up = e.run_d(&[
        "--name", "up", "--label", "keep=1", "busybox", "sleep", "3600",
    ]);
    e.ok(&[
        "run",
        "--name",
        "kept",
        "--label",
        "keep=1",
        "busybox",
        "sh",
        "-c",
        "head -c 10000 /dev/zero > /file",
    ]);
    e.ok(&[
        "run", "--name", "other", "--label", "keep=2", "busybox", "true",
    ]);
    e.ok(&["create", "--name", "fresh", "busybox", "true"]);
    let id = |n: &str| e.field(n, "{{.Id}}");
    let (kept, other, fresh) = (id("kept"), id("other"), id("fresh"));

    // Asked first; no keeps everything.
    let out = e.root.run_stdin(&["container", "prune"], b"n\n");
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(e.ids().len(), 5);
    // Bad filters remove nothing.
    let err = e.fails_with(&["container", "prune", "-f", "--filter", "until=soon"], 1);
    assert!(err.contains("until=soon"), "{err}");
    let err = e.fails_with(&["container", "prune", "-f", "--filter", "name=old"], 1);
    assert!(err.contains("invalid filter 'name'"), "{err}");
    assert_eq!(e.ids().len(), 5);
    // until: made before the cut.
    assert_eq!(
        e.ok(&[
            "container",
            "prune",
            "-f",
            "--filter",
            &format!("until={cut}")
        ]),
        format!("Deleted Containers:\n{old_id}\n\nTotal reclaimed space: 0B\n")
    );
    // label: the running one stays; the space of the writable layer counts.
    assert_eq!(
        e.ok(&["container", "prune", "-f", "--filter", "label=keep=1"]),
        format!("Deleted Containers:\n{kept}\n\nTotal reclaimed space: 10kB\n")
    );
    assert_eq!(
        e.ok(&["container", "prune", "--force", "--filter", "label!=keep"]),
        format!("Deleted Containers:\n{fresh}\n\nTotal reclaimed space: 0B\n")
    );
    // Yes removes every stopped one.
    let out = e.root.run_stdin(&["container", "prune"], b"y\n");
    assert!(
        stdout(&out).ends_with(&format!(
            "[y/N] Deleted Containers:\n{other}\n\nTotal reclaimed space: 0B\n"
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(e.ids(), std::slice::from_ref(&up));
    assert_eq!(
        e.ok(&["container", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    // Each prune is an event (no actor, the bytes reclaimed).
    let pruned = events_between(
        &e,
        t0,
        now_ns(),
        &[
            "--filter",
            "event=prune",
            "--format",
            "{{.Type}} {{.Action}} [{{.Actor.ID}}] {{.Actor.Attributes.reclaimed}}",
        ],
    );
    assert_eq!(
        pruned,
        "container prune [] 0\ncontainer prune [] 10000\ncontainer prune [] 0\n".to_string()
            + "container prune [] 0\ncontainer prune [] 0\n"
    );
    e.assert_clean(&[old_id, kept, other, fresh]);
}

/// Writes a one-file layer tar to a scratch file for `import`.
fn layer_file(e: &Engine, name: &str) -> String {
    let p = e.root.scratch(name);
    std::fs::write(&p, Layer::new().file(name, 0o644, name.as_bytes()).tar()).unwrap();
    p.display().to_string()
}

#[test]
fn system_prune_removes_containers_images_and_volumes() {
    require_root!();
    let e = Engine::new();
    let t0 = now_ns();
    let dangling = e
        .ok(&["import", &layer_file(&e, "dangling")])
        .trim()
        .to_string();
    e.ok(&["import", &layer_file(&e, "tagged"), "other:latest"]);
    let up = e.run_d(&["--name", "up", "busybox", "sleep", "3600"]);
    e.ok(&[
        "run",
        "--name",
        "stopped",
        "-v",
        "/anon",
        "-v",
        "named:/named",
        "busybox",
        "true",
    ]);
    let stopped = e.field("stopped", "{{.Id}}");
    let anon = e.field("stopped", "{{range .Mounts}}{{if not .Name}}{{else if eq .Name \"named\"}}{{else}}{{.Name}}{{end}}{{end}}");
    assert_eq!(anon.len(), 64, "{anon}");
    let images = || e.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let volumes = || e.ok(&["volume", "ls", "-q"]);

    let out = e.root.run_stdin(&["system", "prune"], b"n\n");
    assert_eq!(
        stdout(&out),
        "WARNING! This will remove:\n  - all stopped containers\n  - all dangling images\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(e.ids().len(), 2);
    let err = e.fails_with(
        &["system", "prune", "-f", "--volumes", "--filter", "until=1h"],
        1,
    );
    assert!(
        err.contains("\"until\" filter is not supported with \"--volumes\""),
        "{err}"
    );
    let err = e.fails_with(&["system", "prune", "-f", "--filter", "until=later"], 1);
    assert!(err.contains("until=later"), "{err}");
    assert_eq!(e.ids().len(), 2);

    // Stopped containers and dangling images; volumes stay.
    let out = e.ok(&["system", "prune", "-f"]);
    assert!(
        out.starts_with(&format!(
            "Deleted Containers:\n{stopped}\n\nDeleted Images:\n"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("deleted: {dangling}\n")), "{out}");
    assert!(out.contains("\nTotal reclaimed space: "), "{out}");
    assert_eq!(e.ids(), std::slice::from_ref(&up));
    let left = images();
    assert!(!left.contains(&dangling[7..19]), "{left}");
    assert!(
        left.contains("other:latest") && left.contains("busybox:latest"),
        "{left}"
    );
    assert_eq!(volumes(), format!("{anon}\nnamed\n"));

    // --volumes: anonymous ones no container uses; named ones stay.
    let out = e.ok(&["system", "prune", "-f", "--volumes"]);
    assert_eq!(
        out,
        format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 0B\n")
    );
    assert_eq!(volumes(), "named\n");

    // -a: every image no container uses.
    let out = e.ok(&["system", "prune", "-a", "-f"]);
    assert!(
        out.starts_with("Deleted Images:\nuntagged: other:latest\n"),
        "{out}"
    );
    let left = images();
    assert_eq!(left.lines().count(), 1, "{left}");
    assert!(left.starts_with("busybox:latest "), "{left}");
    let pruned = events_between(
        &e,
        t0,
        now_ns(),
        &["--filter", "event=prune", "--format", "{{.Type}}"],
    );
    assert_eq!(
        pruned,
        "container\nimage\ncontainer\nvolume\nimage\ncontainer\nimage\n"
    );
    e.assert_clean(&[stopped]);
}

#[test]
fn system_df_reports_images_containers_and_volumes() {
    require_root!();
    let e = Engine::new();
    let df = || {
        e.ok(&[
            "system",
            "df",
            "--format",
            "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}",
        ])
    };
    let empty = df();
    let lines: Vec<&str> = empty.lines().collect();
    assert_eq!(lines.len(), 3, "{empty}");
    assert!(lines[0].starts_with("Images|1|0|"), "{empty}");
    assert_eq!(
        lines[1..],
        ["Containers|0|0|0B|0B", "Local Volumes|0|0|0B|0B"]
    );

    e.run_d(&["--name", "up", "-v", "used:/u", "busybox", "sleep", "3600"]);
    e.ok(&[
        "exec",
        "up",
        "sh",
        "-c",
        "head -c 1000 /dev/zero > /f; head -c 2000 /dev/zero > /u/f",
    ]);
    e.ok(&[
        "run",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "head -c 3000 /dev/zero > /g",
    ]);
    e.ok(&["volume", "create", "idle"]);
    e.ok(&[
        "run",
        "--rm",
        "-v",
        "idle:/i",
        "busybox",
        "sh",
        "-c",
        "head -c 500 /dev/zero > /i/x",
    ]);
    let out = df();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("Images|1|1|"), "{out}");
    assert!(lines[0].ends_with("|0B (0%)"), "{out}");
    assert_eq!(
        lines[1..],
        [
            "Containers|2|1|4kB|3kB (75%)",
            "Local Volumes|2|1|2.5kB|500B (20%)"
        ]
    );
    // Docker's table and JSON rows.
    let table = e.ok(&["system", "df"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(rows[0], ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    assert_eq!(rows[2], ["Containers", "2", "1", "4kB", "3kB (75%)"]);
    assert_eq!(rows[3], ["Local Volumes", "2", "1", "2.5kB", "500B (20%)"]);
    let json = e.ok(&["system", "df", "--format", "{{json .}}"]);
    let v: Value = serde_json::from_str(json.lines().nth(2).unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"Type": "Local Volumes", "TotalCount": "2", "Active": "1", "Size": "2.5kB", "Reclaimable": "500B (20%)"})
    );
    // A stopped container's volume is still in use.
    e.ok(&["stop", "-t", "0", "up"]);
    let out = df();
    assert_eq!(
        out.lines().skip(1).collect::<Vec<_>>(),
        [
            "Containers|2|0|4kB|4kB (100%)",
            "Local Volumes|2|1|2.5kB|500B (20%)"
        ]
    );
}

/// `capsa stats ARGS` on a terminal (util-linux `script`), its output read
/// on a thread; ended with ^C typed on the terminal, killed when dropped.
struct LiveStats {
    child: Child,
    input: std::process::ChildStdin,
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl LiveStats {
    fn start(e: &Engine, args: &str) -> LiveStats {
        let mut child = terminal_cmd(e, &format!("stats {args}"), (40, 160))
            .stderr(Stdio::null())
            .spawn()
            .expect("script (util-linux) is installed");
        let input = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        LiveStats {
            child,
            input,
            output,
        }
    }

    /// The frames drawn so far (each begins by clearing the screen).
    fn frames(&self) -> Vec<String> {
        let text = self.output.lock().unwrap().replace('\r', "");
        text.split("\x1b[2J\x1b[H")
            .skip(1)
            .map(str::to_string)
            .collect()
    }

    /// Waits until a complete frame (one followed by another) satisfies
    /// `ok`; returns it.
    fn wait_frame(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let frames = self.frames();
            if let Some(f) = frames
                .iter()
                .take(frames.len().saturating_sub(1))
                .find(|f| ok(f))
            {
                return f.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no frame with {what}: {frames:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LiveStats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn stats_redraws_a_live_table_until_interrupted() {
    require_root!();
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: script (util-linux) is missing");
        return;
    }
    let e = Engine::new();
    let a = e.run_d(&["--name", "alpha", "-m", "64m", "busybox", "sleep", "3600"]);
    let live = LiveStats::start(&e, "");
    let row = |frame: &str, id: &str, name: &str| -> Option<Vec<String>> {
        frame
            .lines()
            .find(|l| l.starts_with(&id[..12]))
            .map(|l| {
                l.split("   ")
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|cols| cols.get(1).is_some_and(|n| n == name))
    };
    let first = live.wait_frame("alpha", |f| row(f, &a, "alpha").is_some());
    let header: Vec<&str> = first
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ],
        "{first}"
    );
    let cols = row(&first, &a, "alpha").unwrap();
    assert_eq!(cols.len(), 8, "{first}");
    assert!(cols[2].ends_with('%') && cols[4].ends_with('%'), "{first}");
    assert!(cols[3].ends_with(" / 64MiB"), "{first}");
    assert_eq!(cols[7], "1", "{first}");
    // The table follows containers as they start and stop.
    let b = e.run_d(&[
        "--name",
        "beta",
        "busybox",
        "sh",
        "-c",
        "sleep 3600 & sleep 3600",
    ]);
    live.wait_frame("alpha and beta", |f| {
        row(f, &a, "alpha").is_some() && row(f, &b, "beta").is_some_and(|c| c[7] == "2")
    });
    e.ok(&["stop", "-t", "0", "alpha"]);
    live.wait_frame("beta alone", |f| {
        row(f, &a, "alpha").is_none() && row(f, &b, "beta").is_some()
    });
    // ^C on the terminal ends it.
    let mut live = live;
    live.input.write_all(b"\x03").unwrap();
    live.input.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while live.child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "stats did not end on ^C"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        e.own_processes().iter().all(|(_, c)| !c.contains(" stats")),
        "{:?}",
        e.own_processes()
    );
}

#[test]
fn events_of_images() {
    require_root!();
    let e = Engine::new();
    let t0 = now_ns();
    let busybox = e.field("busybox", "{{.Id}}");
    e.ok(&["tag", "busybox", "mine:1"]);
    let imported = e
        .ok(&[
            "import",
            "-c",
            "LABEL team=img",
            &layer_file(&e, "content"),
            "imported:1",
        ])
        .trim()
        .to_string();
    let archive = e.root.scratch("saved.tar");
    e.ok(&["save", "-o", archive.to_str().unwrap(), "mine:1"]);
    e.ok(&["load", "-i", archive.to_str().unwrap()]);
    e.ok(&["rmi", "mine:1", "imported:1"]);
    e.ok(&["image", "prune", "-f"]);
    let t1 = now_ns();
    let window = |extra: &[&str]| events_between(&e, t0, t1, extra);
    let fmt = "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}";
    let (b, i) = (busybox.as_str(), imported.as_str());
    assert_eq!(
        window(&["--filter", "type=image", "--format", fmt]),
        [
            format!("tag {b} mine:1"),
            format!("import {i} {i}"),
            format!("save {b} {b}"),
            format!("load {b} {b}"),
            format!("untag {b} {b}"),
            format!("untag {i} {i}"),
            format!("delete {i} {i}"),
            "prune  <no value>".to_string(),
        ]
        .map(|l| l + "\n")
        .concat()
    );
    // The image's labels are attributes; Docker's deprecated fields too.
    assert_eq!(
        window(&[
            "--filter",
            "label=team=img",
            "--format",
            "{{.Status}} {{.ID}}"
        ]),
        format!("import {i}\n")
    );
    // image= matches the id and the name with or without its tag.
    assert_eq!(
        window(&["--filter", "image=mine", "--format", "{{.Action}}"]),
        "tag\n"
    );
    assert_eq!(
        window(&[
            "--filter",
            "type=image",
            "--filter",
            &format!("image={i}"),
            "--format",
            "{{.Action}}"
        ]),
        "import\nuntag\ndelete\n"
    );
    assert_eq!(
        window(&[
            "--filter",
            "type=image",
            "--filter",
            "event=prune",
            "--format",
            "{{.Actor.Attributes.reclaimed}}"
        ]),
        "0\n"
    );
}
