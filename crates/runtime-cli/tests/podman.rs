//! capsa-runtime under Podman (`--runtime`, conmon): private storage and
//! run roots, no network, `--ulimit` values this host allows; every
//! scenario run with capsa-runtime and runc and compared (runc is the
//! oracle).

mod common;
mod managers;

use std::path::Path;

use managers::{Env, Output, TIMEOUT, run};

const IMAGE: &str = "capsa.test/busybox:1";

/// `--ulimit` flags within this process's hard limits: Podman asks for
/// 1048576 open files and processes by default, which a host without
/// CAP_SYS_RESOURCE (hard limits below that) cannot give, with any runtime.
fn ulimits() -> Vec<String> {
    use nix::sys::resource::{Resource, getrlimit};
    let mut flags = Vec::new();
    for (name, res) in [
        ("nofile", Resource::RLIMIT_NOFILE),
        ("nproc", Resource::RLIMIT_NPROC),
    ] {
        let (_, hard) = getrlimit(res).unwrap();
        let n = hard.min(4096);
        flags.push("--ulimit".to_string());
        flags.push(format!("{name}={n}:{n}"));
    }
    flags
}

fn podman(env: &Env, runtime: &str, args: &[&str]) -> Output {
    run(env.podman(runtime).args(args), TIMEOUT)
}

fn podman_ok(env: &Env, runtime: &str, args: &[&str]) -> String {
    let out = podman(env, runtime, args);
    assert_eq!(out.code, 0, "podman {args:?}: {out:?}");
    out.stdout.trim().to_string()
}

/// `podman run` flags every container gets.
fn run_flags(env: &Env) -> Vec<String> {
    let mut f = vec![
        "--network".to_string(),
        "none".to_string(),
        "--cgroup-parent".to_string(),
        env.cgroup_parent.clone(),
    ];
    f.extend(ulimits());
    f
}

/// What containers did under one runtime.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    run: (i32, String),
    exec: (i32, String),
    stop_exit_code: String,
    logs: String,
    left: String,
}

fn scenario(env: &Env, runtime: &str) -> Seen {
    let flags = run_flags(env);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut args = vec!["run", "--rm"];
    args.extend(&flags);
    args.extend([IMAGE, "sh", "-c", "echo hello; ulimit -n; exit 4"]);
    let once = podman(env, runtime, &args);

    let name = format!("p-{runtime}");
    let mut args = vec!["run", "-d", "--name", &name];
    args.extend(&flags);
    args.extend([IMAGE, "sh", "-c", managers::TRAPPING_SCRIPT]);
    let id = podman_ok(env, runtime, &args);
    env.wait_until("the container's trap", || {
        podman(env, runtime, &["logs", &name])
            .stdout
            .contains("started")
    });
    if runtime == "capsa" {
        // Under a root as long as capsa-runtime's default at least.
        assert!(env.assert_capsa_runs(&id).as_os_str().len() > 107);
    }
    let exec = podman(
        env,
        runtime,
        &["exec", &name, "sh", "-c", "echo in-$0; exit 6", "exec"],
    );
    podman_ok(env, runtime, &["stop", "-t", "30", &name]);
    let stop_exit_code = podman_ok(
        env,
        runtime,
        &["inspect", "-f", "{{.State.ExitCode}}", &name],
    );
    let logs = podman_ok(env, runtime, &["logs", &name]);
    podman_ok(env, runtime, &["rm", &name]);
    let left = podman_ok(env, runtime, &["ps", "-a", "-q"]);
    Seen {
        run: (once.code, once.stdout),
        exec: (exec.code, exec.stdout),
        stop_exit_code,
        logs,
        left,
    }
}

#[test]
fn podman_runs_execs_stops_and_removes_as_with_runc() {
    if !managers::available(&["podman", "conmon", "runc"]) {
        return;
    }
    let env = Env::new("podman", Path::new(common::bin()));
    let archive = managers::image::busybox_archive(&env.dir, "busybox", IMAGE, &["sh"]);
    podman_ok(
        &env,
        "runc",
        &["load", "-i", &archive.display().to_string()],
    );
    let capsa = managers::same_as_runc(&env, |runtime| scenario(&env, runtime));
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    assert_eq!(capsa.run, (4, format!("hello\n{}\n", hard.min(4096))));
    assert_eq!(capsa.exec, (6, "in-exec\n".to_string()));
    assert_eq!(capsa.stop_exit_code, "0");
    assert_eq!(capsa.logs, "started\nterm");
    assert_eq!(capsa.left, "");
}
