//! capsa-runtime under Docker: a private dockerd (on a private containerd)
//! with `--add-runtime capsa=…` and an exec root as long as Docker's
//! default, each scenario run with `--runtime capsa` and `--runtime runc`
//! on the same daemon and compared (runc is the oracle).

mod common;
mod managers;

use std::process::Command;

use managers::{Env, Output, TIMEOUT, run};

const IMAGE: &str = "capsa.test/busybox:1";

/// A dockerd with the busybox image loaded; `None` (skipped) without Docker.
fn dockerd() -> Option<Env> {
    if !managers::available(&[
        "dockerd",
        "containerd",
        "ctr",
        "containerd-shim-runc-v2",
        "runc",
    ]) {
        return None;
    }
    let mut env = Env::new("docker", common::bin().as_ref());
    env.start_dockerd();
    let archive = managers::image::busybox_archive(&env.dir, "busybox", IMAGE, &["sh"]);
    run(env.docker().arg("load").arg("-i").arg(&archive), TIMEOUT).ok("docker load");
    Some(env)
}

/// Runs `docker args...`.
fn docker(env: &Env, args: &[&str]) -> Output {
    run(env.docker().args(args), TIMEOUT)
}

/// Runs `docker args...`, failing the test unless it succeeds; stdout, trimmed.
fn docker_ok(env: &Env, args: &[&str]) -> String {
    let out = docker(env, args);
    assert_eq!(out.code, 0, "docker {args:?}: {out:?}\n{}", env.logs());
    out.stdout.trim().to_string()
}

/// `docker run --rm --runtime RUNTIME extra... IMAGE cmd...`.
fn docker_run(env: &Env, runtime: &str, extra: &[&str], cmd: &[&str]) -> Output {
    let mut c: Command = env.docker();
    c.args(["run", "--rm", "--runtime", runtime])
        .args(extra)
        .arg(IMAGE)
        .args(cmd);
    run(&mut c, TIMEOUT)
}

/// What a detached container's life looked like under one runtime.
#[derive(Debug, PartialEq, Eq)]
struct Life {
    exec: (i32, String),
    exec_in_paused_fails: bool,
    status_paused: String,
    status_unpaused: String,
    memory_limit: String,
    top_shows_the_loop: bool,
    stats_pids_nonzero: bool,
    stop_exit_code: String,
    logs: String,
    kill_exit_code: String,
}

/// run -d, exec, logs, top, stats, pause/unpause, update, stop; run -d,
/// kill.
fn life(env: &Env, runtime: &str) -> Life {
    let name = format!("life-{runtime}");
    let id = docker_ok(
        env,
        &[
            "run",
            "-d",
            "--runtime",
            runtime,
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            managers::TRAPPING_SCRIPT,
        ],
    );
    env.wait_until("the container's trap", || {
        docker(env, &["logs", &name]).stdout.contains("started")
    });
    if runtime == "capsa" {
        // Under an exec root as long as Docker's default.
        assert!(env.assert_capsa_runs(&id).as_os_str().len() > 107);
    }
    let exec = docker(
        env,
        &["exec", &name, "sh", "-c", "echo exec-$0; exit 3", "ok"],
    );
    let top = docker_ok(env, &["top", &name]);
    let pids = docker_ok(
        env,
        &["stats", "--no-stream", "--format", "{{.PIDs}}", &name],
    );
    docker_ok(env, &["pause", &name]);
    let status_paused = docker_ok(env, &["inspect", "-f", "{{.State.Status}}", &name]);
    let exec_in_paused_fails = docker(env, &["exec", &name, "true"]).code != 0;
    docker_ok(env, &["unpause", &name]);
    let status_unpaused = docker_ok(env, &["inspect", "-f", "{{.State.Status}}", &name]);
    docker_ok(
        env,
        &[
            "update",
            "--memory",
            "64m",
            "--memory-swap",
            "64m",
            "--cpus",
            "0.5",
            &name,
        ],
    );
    let memory_limit = docker_ok(
        env,
        &[
            "exec",
            &name,
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
    );
    docker_ok(env, &["stop", "-t", "30", &name]);
    let stop_exit_code = docker_ok(env, &["inspect", "-f", "{{.State.ExitCode}}", &name]);
    let logs = docker(env, &["logs", &name]);
    docker_ok(env, &["rm", &name]);

    let killed = format!("killed-{runtime}");
    docker_ok(
        env,
        &[
            "run",
            "-d",
            "--runtime",
            runtime,
            "--name",
            &killed,
            IMAGE,
            "sleep",
            "1000",
        ],
    );
    docker_ok(env, &["kill", &killed]);
    docker_ok(env, &["wait", &killed]);
    let kill_exit_code = docker_ok(env, &["inspect", "-f", "{{.State.ExitCode}}", &killed]);
    docker_ok(env, &["rm", &killed]);
    Life {
        exec: (exec.code, exec.stdout),
        exec_in_paused_fails,
        status_paused,
        status_unpaused,
        memory_limit,
        top_shows_the_loop: top.contains("while :"),
        stats_pids_nonzero: pids.parse::<u32>().is_ok_and(|n| n > 0),
        stop_exit_code,
        logs: logs.stdout + &logs.stderr,
        kill_exit_code,
    }
}

#[test]
fn docker_runs_a_container_life_as_with_runc() {
    let Some(env) = dockerd() else { return };
    let capsa = managers::same_as_runc(&env, |runtime| life(&env, runtime));
    assert_eq!(capsa.exec, (3, "exec-ok\n".to_string()));
    assert_eq!(capsa.status_paused, "paused");
    assert_eq!(capsa.memory_limit, (64 << 20).to_string());
    assert_eq!(capsa.stop_exit_code, "0");
    assert_eq!(capsa.logs, "started\nterm\n");
    assert_eq!(capsa.kill_exit_code, "137");
}

/// What one-shot containers did under one runtime.
#[derive(Debug, PartialEq, Eq)]
struct OneShots {
    exit_codes: Vec<i32>,
    init: (i32, String),
    tty: (i32, String),
    oom: (i32, String),
}

fn one_shots(env: &Env, runtime: &str) -> OneShots {
    let exit_codes = [
        vec!["true"],
        vec!["sh", "-c", "exit 42"],
        vec!["/etc/passwd"],
        vec!["no-such-program"],
    ]
    .iter()
    .map(|cmd| docker_run(env, runtime, &[], cmd).code)
    .collect();
    let init = docker_run(env, runtime, &["--init"], &["ps", "-o", "pid,args"]);
    let init_pid1 = init
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or_default()
        .trim()
        .to_string();
    let tty = docker_run(env, runtime, &["-t"], &["sh", "-c", "tty; stty size"]);
    let name = format!("oom-{runtime}");
    let oom = run(
        env.docker()
            .args(["run", "--runtime", runtime, "--name", &name])
            .args(["-m", "32m", "--memory-swap", "32m", IMAGE])
            .args(["sh", "-c", "x=a; while :; do x=$x$x; done"]),
        TIMEOUT,
    );
    let oom_killed = docker_ok(env, &["inspect", "-f", "{{.State.OOMKilled}}", &name]);
    docker_ok(env, &["rm", &name]);
    OneShots {
        exit_codes,
        init: (init.code, init_pid1),
        tty: (tty.code, tty.stdout.replace('\r', "")),
        oom: (oom.code, oom_killed),
    }
}

#[test]
fn docker_exit_codes_init_tty_and_oom_are_runcs() {
    let Some(env) = dockerd() else { return };
    let capsa = managers::same_as_runc(&env, |runtime| one_shots(&env, runtime));
    assert_eq!(capsa.exit_codes, vec![0, 42, 126, 127]);
    assert_eq!(
        capsa.init,
        (0, "1 /sbin/docker-init -- ps -o pid,args".to_string())
    );
    assert!(capsa.tty.1.starts_with("/dev/pts/0\n"), "{:?}", capsa.tty);
    assert_eq!(capsa.oom, (137, "true".to_string()));
}
