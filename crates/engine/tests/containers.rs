//! The container lifecycle with Docker's command line: run (foreground,
//! detached, --rm), create/start, stop, restart, kill, rm, ps (columns,
//! filters, formats), logs, wait, inspect, rename, pause/unpause, exit
//! codes, and bad input that must create nothing.

mod common;

use std::time::{Duration, Instant};

use common::engine::*;
use common::*;

#[test]
fn run_in_the_foreground_gives_output_and_exit_status() {
    require_root!();
    let e = Engine::new();
    let out = e.run(&[
        "run",
        "--name",
        "fg",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    // Recorded before `run` returned.
    assert_eq!(e.status("fg"), "exited");
    assert_eq!(e.field("fg", "{{.State.ExitCode}}"), "3");
    // Its log has both streams in Docker's json-file format.
    let id = e.field("fg", "{{.Id}}");
    let log =
        std::fs::read_to_string(e.store().join(format!("containers/{id}/{id}-json.log"))).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .any(|l| l["log"] == "out\n" && l["stream"] == "stdout")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["log"] == "err\n" && l["stream"] == "stderr")
    );
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn run_rm_removes_the_container_and_everything_it_had() {
    require_root!();
    let e = Engine::new();
    let out = e.run(&[
        "run",
        "--rm",
        "--name",
        "gone",
        "busybox",
        "sh",
        "-c",
        "echo bye; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(stdout(&out), "bye\n");
    assert!(e.ids().is_empty());
    assert!(e.mounts().is_empty(), "{:?}", e.mounts());
    assert_eq!(
        std::fs::read_dir(e.store().join("containers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn detached_container_lives_on_and_is_listed_stopped_and_removed() {
    require_root!();
    let e = Engine::new();
    let id = e.run_d(&[
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 3600",
    ]);
    assert_eq!(id.len(), 64);
    assert_eq!(e.status("web"), "running");
    let ps = e.ok(&["ps"]);
    let lines: Vec<&str> = ps.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "CONTAINER",
            "ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
    assert!(lines[1].starts_with(&id[..12]), "{ps}");
    // Docker's COMMAND: quoted, cut to 19 characters and an ellipsis.
    assert!(lines[1].contains("\"sh -c echo started;…\""), "{ps}");
    assert!(lines[1].contains("Up "), "{ps}");
    assert!(lines[1].trim_end().ends_with("web"), "{ps}");
    e.wait_until(10, "the log", || e.ok(&["logs", "web"]) == "started\n");
    let t = Instant::now();
    e.ok(&["stop", "-t", "1", "web"]);
    assert!(t.elapsed() < Duration::from_secs(20));
    assert_eq!(e.status("web"), "exited");
    // Plain ps hides it, -a shows it with Docker's status text.
    assert_eq!(e.ok(&["ps", "-q"]), "");
    let all = e.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(all.starts_with("Exited (137) "), "{all}");
    e.ok(&["rm", "web"]);
    e.assert_clean(&[id]);
}

#[test]
fn stop_of_a_container_that_ignores_sigterm_waits_then_kills() {
    require_root!();
    let e = Engine::new();
    e.run_d(&[
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 1; done",
    ]);
    let t = Instant::now();
    e.ok(&["stop", "-t", "2", "stubborn"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "stop took {took:?}, before its timeout"
    );
    assert_eq!(e.field("stubborn", "{{.State.ExitCode}}"), "137");
    // A container that honours SIGTERM stops at once with its own status.
    e.run_d(&[
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 42' TERM; while true; do sleep 0.1; done",
    ]);
    e.ok(&["stop", "-t", "30", "polite"]);
    assert_eq!(e.field("polite", "{{.State.ExitCode}}"), "42");
    // --stop-signal and --stop-timeout of the container are used.
    e.run_d(&[
        "--name",
        "hup",
        "--stop-signal",
        "SIGHUP",
        "--stop-timeout",
        "30",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 9' HUP; while true; do sleep 0.1; done",
    ]);
    e.ok(&["stop", "hup"]);
    assert_eq!(e.field("hup", "{{.State.ExitCode}}"), "9");
    assert_eq!(
        e.field("hup", "{{.Config.StopSignal}} {{.Config.StopTimeout}}"),
        "SIGHUP 30"
    );
}

#[test]
fn create_then_start_attached() {
    require_root!();
    let e = Engine::new();
    let id = e
        .ok(&[
            "create",
            "--name",
            "later",
            "busybox",
            "sh",
            "-c",
            "echo hello from start; exit 2",
        ])
        .trim()
        .to_string();
    assert_eq!(e.status("later"), "created");
    assert_eq!(e.ok(&["ps", "-a", "--format", "{{.Status}}"]), "Created\n");
    let out = e.run(&["start", "-a", "later"]);
    assert_eq!(stdout(&out), "hello from start\n");
    assert_eq!(out.status.code(), Some(2));
    // A second start runs it again.
    e.ok(&["start", "later"]);
    assert_eq!(e.ok(&["wait", "later"]), "2\n");
    let logs = e.ok(&["logs", &id]);
    assert_eq!(logs, "hello from start\nhello from start\n");
    // start of a container whose program is missing: Docker's 127 at start.
    e.ok(&["create", "--name", "broken", "busybox", "nosuchprogram"]);
    let err = e.fails_with(&["start", "broken"], 1);
    assert!(err.contains("nosuchprogram"), "{err}");
}

#[test]
fn exit_codes_like_docker_run() {
    require_root!();
    let e = Engine::new();
    let err = e.fails_with(&["run", "--rm", "busybox", "nosuchcommand"], 127);
    assert!(err.contains("executable file not found"), "{err}");
    let err = e.fails_with(&["run", "--rm", "busybox", "/etc/passwd"], 126);
    assert!(err.contains("permission denied"), "{err}");
    // Killed by SIGKILL (not as PID 1, which ignores it: under --init).
    e.fails_with(
        &["run", "--rm", "--init", "busybox", "sh", "-c", "kill -9 $$"],
        137,
    );
    e.fails_with(&["run", "--rm", "busybox", "sh", "-c", "exit 255"], 255);
    // capsa's own failures: 125, and nothing is created.
    // Unknown image: the pull it starts goes to a loopback registry
    // address where nothing listens (tests never leave the machine).
    let err = e.fails_with(&["run", "--rm", "127.0.0.1:9/nosuchimage:1", "true"], 125);
    assert!(err.contains("127.0.0.1:9/nosuchimage:1"), "{err}");
    let err = e.fails_with(
        &["run", "--rm", "--pull", "never", "nosuchimage:1", "true"],
        125,
    );
    assert!(err.contains("No such image: nosuchimage:1"), "{err}");
    let err = e.fails_with(&["run", "-m", "12q", "busybox", "true"], 125);
    assert!(err.contains("12q"), "{err}");
    let err = e.fails_with(
        &[
            "run",
            "--mount",
            "type=bind,source=/does/not/exist,target=/x",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("bind source path does not exist"), "{err}");
    let err = e.fails_with(&["run", "--nosuchflag", "busybox", "true"], 125);
    assert!(err.contains("nosuchflag"), "{err}");
    let err = e.fails_with(&["run", "-p", "8080:80", "busybox", "true"], 125);
    assert!(err.contains("--publish"), "{err}");
    let err = e.fails_with(&["run", "--network", "bridge", "busybox", "true"], 125);
    assert!(err.contains("not available"), "{err}");
    let err = e.fails_with(
        &["run", "--restart", "always", "--rm", "busybox", "true"],
        125,
    );
    assert!(err.contains("Conflicting options"), "{err}");
    assert!(e.ids().is_empty(), "{:?}", e.ids());
    assert!(e.mounts().is_empty());
    assert_eq!(
        std::fs::read_dir(e.store().join("containers"))
            .unwrap()
            .count(),
        0
    );
    // A name in use is a conflict, and leaves the first container alone.
    e.run_d(&["--name", "taken", "busybox", "sleep", "3600"]);
    let err = e.fails_with(&["run", "--name", "taken", "busybox", "true"], 125);
    assert!(err.contains("is already in use"), "{err}");
    assert_eq!(e.ids().len(), 1);
}

#[test]
fn kill_restart_pause_rename_wait() {
    require_root!();
    let e = Engine::new();
    e.run_d(&[
        "--name",
        "k",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 5' USR1; while true; do sleep 0.1; done",
    ]);
    e.ok(&["kill", "-s", "USR1", "k"]);
    assert_eq!(e.ok(&["wait", "k"]), "5\n");
    let err = e.fails_with(&["kill", "k"], 1);
    assert!(err.contains("is not running"), "{err}");
    e.ok(&["restart", "-t", "1", "k"]);
    assert_eq!(e.status("k"), "running");
    e.ok(&["pause", "k"]);
    assert_eq!(e.status("k"), "paused");
    assert!(
        e.ok(&["ps", "--format", "{{.Status}}"])
            .contains("(Paused)")
    );
    assert!(
        e.ok(&["ps", "-q"]).len() > 1,
        "paused containers are listed"
    );
    e.ok(&["unpause", "k"]);
    assert_eq!(e.status("k"), "running");
    e.ok(&["rename", "k", "renamed"]);
    assert_eq!(e.field("renamed", "{{.Name}}"), "/renamed");
    e.fails_with(&["inspect", "k"], 1);
    e.ok(&["kill", "renamed"]);
    assert_eq!(e.ok(&["wait", "renamed"]), "137\n");
}

#[test]
fn rm_refuses_running_containers_unless_forced() {
    require_root!();
    let e = Engine::new();
    let id = e.run_d(&["--name", "busy", "busybox", "sleep", "3600"]);
    let err = e.fails_with(&["rm", "busy"], 1);
    assert!(
        err.contains("stop the container before removing or force remove"),
        "{err}"
    );
    assert_eq!(e.status("busy"), "running");
    let pid = host_pid(&e, "busy");
    // Paused, too: it is thawed to die.
    e.ok(&["pause", "busy"]);
    e.ok(&["rm", "-f", "busy"]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .is_empty()
    );
    e.assert_clean(&[id]);
    e.fails_with(&["rm", "busy"], 1);
}

#[test]
fn inspect_has_dockers_shape() {
    require_root!();
    let e = Engine::new();
    e.run_d(&[
        "--name",
        "shape",
        "-e",
        "FOO=bar",
        "-l",
        "team=capsa",
        "-w",
        "/tmp",
        "busybox",
        "sleep",
        "3600",
    ]);
    let v = e.inspect("shape");
    for key in [
        "Id",
        "Created",
        "Path",
        "Args",
        "State",
        "Image",
        "Name",
        "RestartCount",
        "HostConfig",
        "Mounts",
        "Config",
        "NetworkSettings",
        "LogPath",
        "HostsPath",
        "GraphDriver",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    let st = &v["State"];
    for key in [
        "Status",
        "Running",
        "Paused",
        "Restarting",
        "OOMKilled",
        "Dead",
        "Pid",
        "ExitCode",
        "Error",
        "StartedAt",
        "FinishedAt",
    ] {
        assert!(st.get(key).is_some(), "missing State.{key}");
    }
    assert_eq!(st["Status"], "running");
    assert_eq!(st["Running"], true);
    assert!(st["Pid"].as_i64().unwrap() > 1);
    assert_eq!(st["FinishedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(v["Path"], "sleep");
    assert_eq!(v["Args"], serde_json::json!(["3600"]));
    assert_eq!(v["Name"], "/shape");
    assert!(v["Image"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v["Config"]["Image"], "busybox");
    assert_eq!(v["Config"]["WorkingDir"], "/tmp");
    assert_eq!(v["Config"]["Labels"]["team"], "capsa");
    assert!(
        v["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "FOO=bar")
    );
    assert_eq!(v["HostConfig"]["NetworkMode"], "none");
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "no");
    assert_eq!(v["HostConfig"]["ShmSize"], 67108864);
    assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "json-file");
    assert_eq!(
        e.field("shape", "{{.Config.Hostname}}"),
        e.field("shape", "{{.Id}}")[..12]
    );
    assert_eq!(e.field("shape", "{{json .State.Running}}"), "true");
    // container inspect and inspect --type agree; images and volumes too.
    let v2: serde_json::Value =
        serde_json::from_str(&e.ok(&["container", "inspect", "shape"])).unwrap();
    assert_eq!(v2[0]["Id"], v["Id"]);
    let img: serde_json::Value = serde_json::from_str(&e.ok(&["inspect", "busybox"])).unwrap();
    assert_eq!(img[0]["Id"], v["Image"]);
    let err = e.fails_with(&["inspect", "nothing-here"], 1);
    assert!(err.contains("No such object"), "{err}");
}

#[test]
fn ps_filters_formats_and_flags() {
    require_root!();
    let e = Engine::new();
    let a = e.run_d(&[
        "--name", "alpha", "-l", "tier=web", "busybox", "sleep", "3600",
    ]);
    e.fails_with(
        &[
            "run", "--name", "beta", "-l", "tier=db", "busybox", "sh", "-c", "exit 3",
        ],
        3,
    );
    e.ok(&["create", "--name", "gamma", "busybox", "true"]);
    let names = |args: &[&str]| -> Vec<String> {
        let mut v = vec!["ps", "--format", "{{.Names}}"];
        v.extend_from_slice(args);
        let mut n: Vec<String> = e.ok(&v).lines().map(str::to_string).collect();
        n.sort();
        n
    };
    assert_eq!(names(&[]), ["alpha"]);
    assert_eq!(names(&["-a"]), ["alpha", "beta", "gamma"]);
    assert_eq!(names(&["-a", "--filter", "status=exited"]), ["beta"]);
    assert_eq!(names(&["--filter", "status=created"]), ["gamma"]);
    assert_eq!(names(&["-a", "--filter", "label=tier=db"]), ["beta"]);
    assert_eq!(names(&["-a", "--filter", "label=tier"]), ["alpha", "beta"]);
    assert_eq!(names(&["-a", "--filter", "name=alp"]), ["alpha"]);
    assert_eq!(names(&["-a", "--filter", "exited=3"]), ["beta"]);
    assert_eq!(names(&["-a", "--filter", "ancestor=busybox"]).len(), 3);
    assert_eq!(names(&["-n", "1"]), ["gamma"]);
    assert_eq!(names(&["-l"]), ["gamma"]);
    assert_eq!(e.ok(&["ps", "-q"]), format!("{}\n", &a[..12]));
    assert_eq!(e.ok(&["ps", "-q", "--no-trunc"]), format!("{a}\n"));
    let table = e.ok(&["ps", "--format", "table {{.ID}}\t{{.Names}}\t{{.State}}"]);
    assert!(
        table.starts_with("CONTAINER ID   NAMES     STATE"),
        "{table}"
    );
    assert!(e.ok(&["ps", "-s"]).contains("SIZE"));
    assert!(
        e.ok(&["ps", "-s", "--format", "{{.Size}}"])
            .contains("(virtual ")
    );
    e.fails_with(&["ps", "--filter", "bogus=1"], 1);
    assert_eq!(e.ok(&["ps", "--format", "{{json .Names}}"]), "\"alpha\"\n");
}

#[test]
fn logs_tail_timestamps_since_and_follow() {
    require_root!();
    let e = Engine::new();
    e.ok(&[
        "run",
        "--name",
        "talk",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2",
    ]);
    assert_eq!(
        e.ok(&["logs", "talk"]),
        "line1\nline2\nline3\nline4\nline5\n"
    );
    let out = e.run(&["logs", "talk"]);
    assert_eq!(stderr(&out), "oops\n");
    assert_eq!(e.ok(&["logs", "--tail", "2", "talk"]), "line5\n");
    // The last two messages: line5 on stdout, oops on stderr.
    let t = e.ok(&["logs", "-t", "--tail", "2", "talk"]);
    // 2006-01-02T15:04:05.000000000Z line5
    let (ts, rest) = t.split_once(' ').unwrap();
    assert_eq!(ts.len(), 30, "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    assert_eq!(rest, "line5\n");
    assert_eq!(
        e.ok(&["logs", "--since", "2099-01-01T00:00:00Z", "talk"]),
        ""
    );
    assert_eq!(
        e.ok(&["logs", "--until", "2000-01-01T00:00:00Z", "talk"]),
        ""
    );
    // -f follows a running container until it exits.
    e.run_d(&[
        "--name",
        "follow",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 1; echo b; sleep 1; echo c",
    ]);
    let out = e.ok(&["logs", "-f", "follow"]);
    assert_eq!(out, "a\nb\nc\n");
    // Without a log driver there is nothing to read.
    e.ok(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "x",
    ]);
    let err = e.fails_with(&["logs", "quiet"], 1);
    assert!(err.contains("does not support reading"), "{err}");
}

#[test]
fn terminal_and_stdin() {
    require_root!();
    let e = Engine::new();
    // -i: stdin reaches the container and its end closes it.
    let out = e.root.run_stdin(
        &["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"],
        b"from stdin\n",
    );
    assert_eq!(stdout(&out), "from stdin\ndone\n");
    // Without -i the container's stdin is empty.
    let out = e
        .root
        .run_stdin(&["run", "--rm", "busybox", "cat"], b"ignored\n");
    assert_eq!(stdout(&out), "");
    // -t: a real terminal with our window size.
    let (out, code) = with_terminal(&e, "run --rm -t busybox sh -c 'tty; stty size'", b"");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("24 80"), "{out}");
    // The container's window follows ours: once it has printed its first
    // size, our terminal is resized, and it sees the new size.
    let sync = e.root.scratch("winch");
    std::fs::create_dir_all(&sync).unwrap();
    let resize = format!(
        "(until [ -e {s}/ready ]; do sleep 0.05; done; stty rows 40 cols 100 </dev/tty) & ",
        s = sync.display()
    );
    let inside = r#"stty size; touch /sync/ready; i=0; while [ "$(stty size)" != "40 100" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; stty size"#;
    let out = terminal_cmd_after(
        &e,
        &resize,
        &format!(
            "run --rm -t -v {}:/sync busybox sh -c '{inside}'",
            sync.display()
        ),
        (24, 80),
    )
    .output()
    .unwrap();
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines, ["24 80", "40 100"], "{:?}", out);
    // -it: typed input, and the shell's status.
    let (out, code) = with_terminal(
        &e,
        "run --rm -it busybox sh",
        b"echo typed-$((6*7)); exit 6\n",
    );
    assert!(out.contains("typed-42"), "{out}");
    assert_eq!(code, Some(6));
    // Detach keys leave the container running.
    let (_, code) = with_terminal(&e, "run -it --name detached busybox sh", b"\x10\x11");
    assert_eq!(code, Some(0));
    assert_eq!(e.status("detached"), "running");
}

#[test]
fn names_and_ids_resolve_like_docker() {
    require_root!();
    let e = Engine::new();
    let id = e.run_d(&["busybox", "sleep", "3600"]);
    let name = e.field(&id, "{{.Name}}");
    let name = name.trim_start_matches('/');
    assert!(name.contains('_'), "{name}");
    assert_eq!(e.field(&id[..6], "{{.Id}}"), id);
    assert_eq!(e.field(name, "{{.Id}}"), id);
    assert_eq!(e.field(&format!("/{name}"), "{{.Id}}"), id);
    let err = e.fails_with(&["run", "--name", "bad name", "busybox", "true"], 125);
    assert!(err.contains("Invalid container name"), "{err}");
}
