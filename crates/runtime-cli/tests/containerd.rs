//! capsa-runtime under containerd's `ctr`: a private containerd, 64-character
//! ids, `ctr run --runc-binary` with a runtime root at least as long as
//! containerd's default; every scenario run with capsa-runtime and runc
//! and compared (runc is the oracle).

mod common;
mod managers;

use std::path::Path;

use managers::{Cri, Env, Output, TIMEOUT, run};

const IMAGE: &str = "capsa.test/busybox:1";
const NS: &str = "default";

/// `ctr run` flags that pick runtime `runtime` and keep everything in `env`.
fn run_flags(env: &Env, runtime: &str, id: &str) -> Vec<String> {
    vec![
        "--runc-binary".into(),
        env.runtime_bin(runtime).display().to_string(),
        "--runc-root".into(),
        env.runtime_root(runtime).display().to_string(),
        "--fifo-dir".into(),
        env.dir.join("fifo").display().to_string(),
        "--cgroup".into(),
        format!("{}/{id}", env.cgroup_parent),
    ]
}

fn ctr(env: &Env, args: &[&str]) -> Output {
    run(env.ctr(NS).args(args), TIMEOUT)
}

fn ctr_ok(env: &Env, args: &[&str]) -> String {
    let out = ctr(env, args);
    assert_eq!(out.code, 0, "ctr {args:?}: {out:?}\n{}", env.logs());
    out.stdout
}

/// The STATUS column of task `id` in `ctr task ls`.
fn task_status(env: &Env, id: &str) -> String {
    ctr_ok(env, &["task", "ls"])
        .lines()
        .find(|l| l.starts_with(id))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("none")
        .to_string()
}

/// What containers did under one runtime.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    run: (i32, String),
    exec: (i32, String),
    statuses: Vec<String>,
    metrics_names_pids: bool,
    ps_lists_the_pid: bool,
    killed: String,
}

fn scenario(env: &Env, runtime: &str) -> Seen {
    let id = managers::hex_id();
    let mut c = env.ctr(NS);
    c.args(["run", "--rm"])
        .args(run_flags(env, runtime, &id))
        .args([IMAGE, &id, "sh", "-c", "echo hello; exit 3"]);
    let once = run(&mut c, TIMEOUT);

    let id = managers::hex_id();
    let mut c = env.ctr(NS);
    c.args(["run", "-d"])
        .args(run_flags(env, runtime, &id))
        .args([IMAGE, &id, "sleep", "1000"]);
    run(&mut c, TIMEOUT).ok("ctr run -d");
    if runtime == "capsa" {
        // Under a root at least as long as containerd's default.
        assert!(env.assert_capsa_runs(&id).as_os_str().len() > 107);
    }
    let exec = ctr(
        env,
        &[
            "task",
            "exec",
            "--fifo-dir",
            &env.dir.join("fifo").display().to_string(),
            "--exec-id",
            "exec1",
            &id,
            "sh",
            "-c",
            "echo in-$0; exit 5",
            "exec",
        ],
    );
    let mut statuses = vec![task_status(env, &id)];
    ctr_ok(env, &["task", "pause", &id]);
    statuses.push(task_status(env, &id));
    ctr_ok(env, &["task", "resume", &id]);
    statuses.push(task_status(env, &id));
    let metrics = ctr_ok(env, &["task", "metrics", &id]);
    let pid = ctr_ok(env, &["task", "ls"])
        .lines()
        .find(|l| l.starts_with(&id))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_default();
    let ps = ctr_ok(env, &["task", "ps", &id]);
    ctr_ok(env, &["task", "kill", "-s", "KILL", &id]);
    let deadline = std::time::Instant::now() + TIMEOUT;
    while task_status(env, &id) != "STOPPED" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    statuses.push(task_status(env, &id));
    let killed = ctr_ok(env, &["task", "delete", &id]);
    statuses.push(task_status(env, &id));
    ctr_ok(env, &["container", "delete", &id]);
    if runtime == "capsa" {
        let dir = env.runtime_root(runtime).join(NS).join(&id);
        assert!(!dir.exists(), "{} was left", dir.display());
    }
    Seen {
        run: (once.code, once.stdout),
        exec: (exec.code, exec.stdout),
        statuses,
        metrics_names_pids: metrics.contains("pids.current") || metrics.contains("pids"),
        ps_lists_the_pid: !pid.is_empty() && ps.lines().any(|l| l.starts_with(&pid)),
        killed: killed.trim().to_string(),
    }
}

#[test]
fn ctr_runs_tasks_as_with_runc() {
    if !managers::available(&["containerd", "ctr", "containerd-shim-runc-v2", "runc"]) {
        return;
    }
    let mut env = Env::new("ctr", Path::new(common::bin()));
    env.start_containerd(Cri::Off, "");
    let archive = managers::image::busybox_archive(&env.dir, "busybox", IMAGE, &["sh"]);
    env.ctr_import(NS, &archive);
    let capsa = managers::same_as_runc(&env, |runtime| scenario(&env, runtime));
    assert_eq!(capsa.run, (3, "hello\n".to_string()));
    assert_eq!(capsa.exec, (5, "in-exec\n".to_string()));
    assert_eq!(
        capsa.statuses,
        ["RUNNING", "PAUSED", "RUNNING", "STOPPED", "none"]
    );
    assert!(
        capsa.metrics_names_pids && capsa.ps_lists_the_pid,
        "{capsa:?}"
    );
}
