//! capsa-runtime on Kubernetes' path: containerd's CRI plugin with a
//! `capsa` runtime handler (what a RuntimeClass selects) next to `runc`,
//! driven by the test's own CRI client over containerd's socket, as the
//! kubelet drives it: a pod (host network; a pause image made locally), a
//! container in it, exec, stats, stop and removal, with each handler and
//! compared (runc is the oracle).

mod common;
mod managers;

use std::path::Path;

use managers::cri::Client;
use managers::{Cri, Env};

const PAUSE: &str = "capsa.test/pause:1";
const IMAGE: &str = "capsa.test/busybox:1";
/// The containerd namespace of the CRI plugin.
const NS: &str = "k8s.io";

/// What a pod's life looked like under one handler.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    state_running: i32,
    exec: (i32, String, String),
    stats_have_memory_and_cpu: bool,
    stopped: (i32, i32),
    log: String,
}

fn pod_life(env: &Env, cri: &Client, handler: &str) -> Seen {
    let logs = env.dir.join(format!("logs-{handler}"));
    std::fs::create_dir_all(&logs).unwrap();
    let pod = cri
        .run_pod(
            &format!("pod-{handler}"),
            handler,
            &env.cgroup_parent,
            &logs,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", env.logs()));
    if handler == "capsa" {
        // Under a root at least as long as containerd's default.
        assert!(env.assert_capsa_runs(&pod.id).as_os_str().len() > 107);
    }
    let id = cri
        .create_container(
            &pod,
            "main",
            IMAGE,
            &["sh", "-c", managers::TRAPPING_SCRIPT],
        )
        .unwrap();
    cri.start_container(&id).unwrap();
    let log_file = logs.join("main.log");
    env.wait_until("the container's trap", || {
        std::fs::read_to_string(&log_file).is_ok_and(|l| l.contains("started"))
    });
    if handler == "capsa" {
        env.assert_capsa_runs(&id);
    }
    let state_running = cri.container_status(&id).unwrap().state;
    let exec = cri
        .exec_sync(&id, &["sh", "-c", "echo out; echo err >&2; exit 3"])
        .unwrap();
    let stats = cri.container_stats(&id).unwrap();
    let stats_have_memory_and_cpu = stats
        .memory
        .and_then(|m| m.working_set_bytes)
        .is_some_and(|w| w.value > 0)
        && stats
            .cpu
            .and_then(|c| c.usage_core_nano_seconds)
            .is_some_and(|c| c.value > 0);
    cri.stop_container(&id, 30).unwrap();
    let status = cri.container_status(&id).unwrap();
    let log = std::fs::read_to_string(&log_file).unwrap_or_default();
    // CRI log lines: "<time> <stream> <tag> <text>".
    let log: Vec<&str> = log
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .collect();
    cri.remove_container(&id).unwrap();
    cri.stop_pod(&pod.id).unwrap();
    cri.remove_pod(&pod.id).unwrap();
    if handler == "capsa" {
        let dir = env.runtime_root(handler).join(NS).join(&pod.id);
        assert!(!dir.exists(), "{} was left", dir.display());
    }
    Seen {
        state_running,
        exec: (
            exec.exit_code,
            String::from_utf8_lossy(&exec.stdout).into_owned(),
            String::from_utf8_lossy(&exec.stderr).into_owned(),
        ),
        stats_have_memory_and_cpu,
        stopped: (status.state, status.exit_code),
        log: log.join("\n"),
    }
}

#[test]
fn cri_pods_run_with_the_capsa_handler_as_with_runc() {
    if !managers::available(&["containerd", "ctr", "containerd-shim-runc-v2", "runc"]) {
        return;
    }
    let mut env = Env::new("cri", Path::new(common::bin()));
    env.start_containerd(Cri::On, PAUSE);
    let pause =
        managers::image::busybox_archive(&env.dir, "pause", PAUSE, &["sleep", "2147483647"]);
    let busybox = managers::image::busybox_archive(&env.dir, "busybox", IMAGE, &["sh"]);
    env.ctr_import(NS, &pause);
    env.ctr_import(NS, &busybox);
    let cri = Client::connect(&env.containerd_socket());
    let capsa = managers::same_as_runc(&env, |runtime| pod_life(&env, &cri, runtime));
    use k8s_cri::v1::ContainerState;
    assert_eq!(capsa.state_running, ContainerState::ContainerRunning as i32);
    assert_eq!(capsa.exec, (3, "out\n".to_string(), "err\n".to_string()));
    assert!(capsa.stats_have_memory_and_cpu);
    assert_eq!(capsa.stopped, (ContainerState::ContainerExited as i32, 0));
    assert_eq!(capsa.log, "started\nterm");
}
