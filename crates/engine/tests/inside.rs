//! Commands on a running container: exec, attach, top, stats, update,
//! and its files: cp (both ways, archive semantics, symlinks kept inside
//! the container), diff, commit, export.

mod common;

use std::io::Read;
use std::process::Stdio;

use common::engine::*;
use common::*;

#[test]
fn exec_runs_in_the_container_with_its_options() {
    require_root!();
    let e = Engine::new();
    e.run_d(&["--name", "x", "-e", "BASE=1", "busybox", "sleep", "3600"]);
    assert_eq!(e.ok(&["exec", "x", "sh", "-c", "echo $BASE $EXTRA"]), "1\n");
    assert_eq!(
        e.ok(&[
            "exec",
            "-e",
            "EXTRA=2",
            "x",
            "sh",
            "-c",
            "echo $BASE $EXTRA"
        ]),
        "1 2\n"
    );
    assert_eq!(e.ok(&["exec", "-w", "/tmp", "x", "pwd"]), "/tmp\n");
    assert_eq!(e.ok(&["exec", "-u", "1000", "x", "id", "-u"]), "1000\n");
    assert_eq!(e.ok(&["exec", "-u", "user", "x", "id", "-un"]), "user\n");
    // The exec'd process shares the container's namespaces and cgroups.
    let pid = host_pid(&e, "x");
    let ns = |p: i32, n: &str| std::fs::read_link(format!("/proc/{p}/ns/{n}")).unwrap();
    let inner = e.ok(&[
        "exec",
        "x",
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt",
    ]);
    assert_eq!(
        inner,
        format!(
            "{}\n{}\n",
            ns(pid, "pid").display(),
            ns(pid, "mnt").display()
        )
    );
    // Exit status, missing program, stdin only with -i.
    e.fails_with(&["exec", "x", "sh", "-c", "exit 9"], 9);
    let err = e.fails_with(&["exec", "x", "no-such-program"], 127);
    assert!(err.contains("no-such-program"), "{err}");
    let out = e.root.run_stdin(&["exec", "-i", "x", "cat"], b"piped in\n");
    assert_eq!(stdout(&out), "piped in\n");
    let out = e.root.run_stdin(&["exec", "x", "cat"], b"not read\n");
    assert_eq!(stdout(&out), "");
    // --privileged gives the exec'd process every capability.
    let eff = e.ok(&[
        "exec",
        "--privileged",
        "x",
        "sh",
        "-c",
        "grep CapEff /proc/self/status",
    ]);
    assert_ne!(
        eff.split_whitespace().nth(1),
        Some("00000000a80425fb"),
        "{eff}"
    );
    // -d returns at once; the process runs on.
    e.ok(&[
        "exec",
        "-d",
        "x",
        "sh",
        "-c",
        "sleep 0.5; touch /tmp/detached",
    ]);
    e.wait_until(10, "the detached exec", || {
        e.run(&["exec", "x", "test", "-e", "/tmp/detached"])
            .status
            .success()
    });
    // A terminal for exec -t.
    let (out, code) = with_terminal(&e, "exec -it x sh", b"tty; exit 3\n");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert_eq!(code, Some(3));
    // Not running: refused.
    e.ok(&["stop", "-t", "1", "x"]);
    let err = e.fails_with(&["exec", "x", "true"], 1);
    assert!(err.contains("is not running"), "{err}");
}

#[test]
fn attach_receives_output_and_sends_input() {
    require_root!();
    let e = Engine::new();
    e.run_d(&[
        "--name",
        "chat",
        "-i",
        "busybox",
        "sh",
        "-c",
        "while read l; do echo got:$l; done; echo bye",
    ]);
    let mut child = e
        .cmd(&["attach", "chat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // Our stdin closed: with -d -i the container's stays open (it lives on).
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(e.status("chat"), "running");
    let _ = child.kill();
    let mut got = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    let _ = child.wait();
    assert!(got.contains("got:hello"), "{got}");
    // attach waits for the exit and returns its status (the container
    // waits for the line we send through the attachment).
    e.run_d(&[
        "--name",
        "short",
        "-i",
        "busybox",
        "sh",
        "-c",
        "read x; echo late:$x; exit 4",
    ]);
    let out = e.root.run_stdin(&["attach", "short"], b"go\n");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), "late:go\n");
    let err = e.fails_with(&["attach", "short"], 1);
    assert!(err.contains("stopped container"), "{err}");
}

#[test]
fn top_stats_and_update() {
    require_root!();
    let e = Engine::new();
    let id = e.run_d(&[
        "--name",
        "busy",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "sleep 3600 & sleep 3600; true",
    ]);
    let top = e.ok(&["top", "busy"]);
    let lines: Vec<&str> = top.lines().collect();
    assert!(
        lines[0].starts_with("UID") && lines[0].contains("PID") && lines[0].contains("CMD"),
        "{top}"
    );
    assert_eq!(lines.len(), 4, "the init and its two sleeps: {top}");
    assert!(
        lines.iter().filter(|l| l.ends_with("sleep 3600")).count() == 2,
        "{top}"
    );
    let top = e.ok(&["top", "busy", "-o", "pid,comm"]);
    assert!(top.starts_with("PID"), "{top}");
    let stats = e.ok(&["stats", "--no-stream"]);
    let lines: Vec<&str> = stats.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "CONTAINER",
            "ID",
            "NAME",
            "CPU",
            "%",
            "MEM",
            "USAGE",
            "/",
            "LIMIT",
            "MEM",
            "%",
            "NET",
            "I/O",
            "BLOCK",
            "I/O",
            "PIDS"
        ]
    );
    assert!(lines[1].starts_with(&id[..12]), "{stats}");
    assert!(lines[1].contains("/ 64MiB"), "{stats}");
    assert!(lines[1].trim_end().ends_with(" 3"), "{stats}");
    let f = e.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "busy",
    ]);
    assert_eq!(f, "busy 3\n");
    // update changes the live cgroup and is kept for the next start.
    e.ok(&[
        "update",
        "--memory",
        "96m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "busy",
    ]);
    assert_eq!(
        cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max").unwrap(),
        (96u64 << 20).to_string()
    );
    assert_eq!(
        cgroup_file(&id, "pids", "pids.max", "pids.max").unwrap(),
        "50"
    );
    // --cpus 0.5: half of Docker's 100 ms period.
    assert_eq!(
        cgroup_file(&id, "cpu", "cpu.cfs_quota_us", "cpu.max").unwrap(),
        if cgroup_v2_host() {
            "50000 100000"
        } else {
            "50000"
        }
    );
    assert_eq!(
        e.field("busy", "{{.HostConfig.Memory}}"),
        (96u64 << 20).to_string()
    );
    assert_eq!(e.field("busy", "{{.HostConfig.PidsLimit}}"), "50");
    e.ok(&["restart", "-t", "1", "busy"]);
    assert_eq!(
        cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max").unwrap(),
        (96u64 << 20).to_string()
    );
    e.ok(&["update", "--restart", "on-failure:2", "busy"]);
    assert_eq!(
        e.field("busy", "{{.HostConfig.RestartPolicy.Name}}"),
        "on-failure"
    );
}

#[test]
fn cp_in_and_out_with_archive_semantics() {
    require_root!();
    let e = Engine::new();
    e.run_d(&["--name", "files", "busybox", "sh", "-c", "mkdir -p /srv/d/e; echo deep > /srv/d/e/f; echo top > /srv/file; ln -s /etc/passwd /srv/link; ln -s ../../../../../../etc /srv/escape; sleep 3600"]);
    e.wait_until(10, "the files", || {
        e.run(&["exec", "files", "test", "-e", "/srv/escape"])
            .status
            .success()
    });
    let out = e.root.scratch("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = |n: &str| out.join(n).display().to_string();
    // A file to a new name, into a directory, a directory, its contents.
    e.ok(&["cp", "files:/srv/file", &o("renamed")]);
    assert_eq!(
        std::fs::read_to_string(out.join("renamed")).unwrap(),
        "top\n"
    );
    e.ok(&["cp", "files:/srv/file", &o("")]);
    assert_eq!(std::fs::read_to_string(out.join("file")).unwrap(), "top\n");
    e.ok(&["cp", "files:/srv/d", &o("dcopy")]);
    assert_eq!(
        std::fs::read_to_string(out.join("dcopy/e/f")).unwrap(),
        "deep\n"
    );
    std::fs::create_dir_all(out.join("into")).unwrap();
    e.ok(&["cp", "files:/srv/d/.", &o("into")]);
    assert!(out.join("into/e/f").exists());
    // Symlinks are copied as symlinks; one pointing out of the container
    // is resolved inside it, never on the host.
    e.ok(&["cp", "files:/srv/link", &o("link")]);
    assert_eq!(
        std::fs::read_link(out.join("link"))
            .unwrap()
            .to_str()
            .unwrap(),
        "/etc/passwd"
    );
    e.ok(&["cp", "-L", "files:/srv/link", &o("followed")]);
    let copied = std::fs::read_to_string(out.join("followed")).unwrap();
    assert!(
        copied.starts_with("root:x:0:0:root:/root:/bin/sh\nuser:x:1000"),
        "the container's passwd, not the host's: {copied}"
    );
    e.ok(&["cp", "files:/srv/escape/passwd", &o("escaped")]);
    assert_eq!(
        std::fs::read_to_string(out.join("escaped")).unwrap(),
        copied
    );
    let err = e.fails_with(&["cp", "files:/nope", &o("x")], 1);
    assert!(err.contains("Could not find the file /nope"), "{err}");
    // To stdout as a tar.
    let tar = e.cmd(&["cp", "files:/srv/d", "-"]).output().unwrap();
    let mut names: Vec<String> = tar::Archive::new(&tar.stdout[..])
        .entries()
        .unwrap()
        .map(|x| x.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["d/", "d/e/", "d/e/f"]);
    // Into the container: files owned by root (no -a), through a symlink
    // that would lead out of it only inside it.
    let src = e.root.scratch("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/g"), "host file\n").unwrap();
    std::os::unix::fs::chown(src.join("sub/g"), Some(1234), Some(1234)).unwrap();
    e.ok(&["cp", src.to_str().unwrap(), "files:/srv/"]);
    assert_eq!(
        e.ok(&[
            "exec",
            "files",
            "sh",
            "-c",
            "cat /srv/src/sub/g; stat -c %u /srv/src/sub/g"
        ]),
        "host file\n0\n"
    );
    e.ok(&[
        "cp",
        "-a",
        src.join("sub/g").to_str().unwrap(),
        "files:/srv/kept",
    ]);
    assert_eq!(
        e.ok(&["exec", "files", "stat", "-c", "%u", "/srv/kept"]),
        "1234\n"
    );
    e.ok(&[
        "cp",
        src.join("sub/g").to_str().unwrap(),
        "files:/srv/escape/",
    ]);
    assert_eq!(e.ok(&["exec", "files", "cat", "/etc/g"]), "host file\n");
    assert!(
        !std::path::Path::new("/etc/g").exists(),
        "written on the host through a container's symlink"
    );
    // A tar on stdin, into a stopped container too.
    e.ok(&["stop", "-t", "1", "files"]);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    b.append_data(&mut h, "fromtar", &b"tar\n"[..]).unwrap();
    let data = b.into_inner().unwrap();
    let r = e.root.run_stdin(&["cp", "-", "files:/srv"], &data);
    assert!(r.status.success(), "{}", stderr(&r));
    e.ok(&["start", "files"]);
    assert_eq!(e.ok(&["exec", "files", "cat", "/srv/fromtar"]), "tar\n");
}

#[test]
fn diff_commit_and_export() {
    require_root!();
    let e = Engine::new();
    e.ok(&[
        "run",
        "--name",
        "changed",
        "busybox",
        "sh",
        "-c",
        "echo new > /newfile; rm /bin/vi; echo more >> /etc/passwd; mkdir /tmp/dir",
    ]);
    let diff = e.ok(&["diff", "changed"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "A /newfile",
        "D /bin/vi",
        "C /etc",
        "C /etc/passwd",
        "C /tmp",
        "A /tmp/dir",
        "C /bin",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{diff}");
    }
    // The runtime's mount points are no change of the user's.
    for hidden in [
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
        "/proc",
        "/sys",
        "/dev",
    ] {
        assert!(
            !lines.iter().any(|l| l.ends_with(hidden)),
            "{hidden} listed:\n{diff}"
        );
    }
    let id = e.ok(&[
        "commit",
        "-m",
        "my change",
        "-a",
        "me",
        "-c",
        "ENV COMMITTED=yes",
        "changed",
        "mine:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "mine:1",
            "sh",
            "-c",
            "cat /newfile; test -e /bin/vi || echo no-vi; echo $COMMITTED; cat /etc/hosts | head -1"
        ]),
        "new\nno-vi\nyes\n127.0.0.1\tlocalhost\n"
    );
    let img: serde_json::Value =
        serde_json::from_str(&e.ok(&["image", "inspect", "mine:1"])).unwrap();
    assert_eq!(img[0]["Comment"], "my change");
    assert_eq!(img[0]["Author"], "me");
    assert_eq!(img[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    let hist = e.ok(&["history", "mine:1"]);
    assert!(hist.contains("my change"), "{hist}");
    // export: the whole root file system as a tar.
    let tar = e.cmd(&["export", "changed"]).output().unwrap();
    assert!(tar.status.success());
    let names: Vec<String> = tar::Archive::new(&tar.stdout[..])
        .entries()
        .unwrap()
        .map(|x| x.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "newfile"));
    assert!(names.iter().any(|n| n == "bin/busybox"));
    assert!(!names.iter().any(|n| n == "bin/vi"));
    let file = e.root.scratch("export.tar");
    e.ok(&["export", "-o", file.to_str().unwrap(), "changed"]);
    assert_eq!(std::fs::read(&file).unwrap().len(), tar.stdout.len());
    // Exported, imported back, it runs.
    e.ok(&["import", file.to_str().unwrap(), "reimported:1"]);
    assert_eq!(
        e.ok(&["run", "--rm", "reimported:1", "cat", "/newfile"]),
        "new\n"
    );
}
