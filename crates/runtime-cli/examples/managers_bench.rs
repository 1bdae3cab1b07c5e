//! The managers' benchmark (run by `bench/managers.sh`): container starts
//! through Docker, containerd's `ctr` and the CRI, each with capsa-runtime
//! and with runc on the same private daemons, in one run, interleaved
//! (capsa, runc, capsa, …) so that the machine's drift falls on both.
//!
//! - `docker run --rm --runtime R busybox true` (the docker client's whole
//!   command: create, start, wait, removal);
//! - `ctr run --rm --runc-binary R busybox ID true`;
//! - a CRI pod start: RunPodSandbox + CreateContainer + StartContainer
//!   (timed in the client; stopping and removing the pod is not timed).
//!
//! Usage: `managers_bench CAPSA_RUNTIME [RUNS]`; prints a table of
//! medians, means and minimums and capsa's time as a share of runc's.

#[path = "../tests/managers/mod.rs"]
mod managers;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use managers::{Cri, Env, TIMEOUT};

const IMAGE: &str = "capsa.test/busybox:1";
const PAUSE: &str = "capsa.test/pause:1";
const RUNTIMES: [&str; 2] = ["capsa", "runc"];

/// Times one start of `cmd` to its exit; fails unless it exits 0.
fn time_command(mut cmd: Command) -> Duration {
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let code = managers::wait(&mut child, TIMEOUT);
    let took = t.elapsed();
    assert_eq!(code, Some(0), "{cmd:?} failed");
    took
}

/// Runs `measure(runtime)` `runs` times for each runtime, interleaved,
/// after one warm-up each; the times by runtime.
fn interleaved(runs: usize, mut measure: impl FnMut(&str) -> Duration) -> [Vec<Duration>; 2] {
    for r in RUNTIMES {
        measure(r);
    }
    let mut times = [Vec::new(), Vec::new()];
    for i in 0..runs {
        // Alternate which goes first, too.
        for k in 0..2 {
            let which = (i + k) % 2;
            times[which].push(measure(RUNTIMES[which]));
        }
    }
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints one benchmark's line per runtime and the ratio.
fn report(what: &str, times: &[Vec<Duration>; 2]) {
    let stats = |v: &Vec<Duration>| {
        let mut s: Vec<f64> = v.iter().copied().map(ms).collect();
        s.sort_by(f64::total_cmp);
        let median = if s.len() % 2 == 1 {
            s[s.len() / 2]
        } else {
            (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
        };
        let mean = s.iter().sum::<f64>() / s.len() as f64;
        (median, mean, s[0])
    };
    println!("== {what} ({} runs each, interleaved)", times[0].len());
    let all: Vec<(f64, f64, f64)> = times.iter().map(stats).collect();
    for (r, (median, mean, min)) in RUNTIMES.iter().zip(&all) {
        println!("  {r:<6} median {median:8.1} ms   mean {mean:8.1} ms   min {min:8.1} ms");
    }
    println!(
        "  capsa/runc: median {:.3}, mean {:.3} ({:.2}x faster by median)",
        all[0].0 / all[1].0,
        all[0].1 / all[1].1,
        all[1].0 / all[0].0
    );
    println!();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let capsa = args
        .next()
        .expect("usage: managers_bench CAPSA_RUNTIME [RUNS]");
    let runs: usize = args.next().map_or(30, |n| n.parse().expect("RUNS"));
    let capsa = std::fs::canonicalize(capsa).expect("CAPSA_RUNTIME");
    assert!(
        managers::available(&[
            "dockerd",
            "containerd",
            "ctr",
            "containerd-shim-runc-v2",
            "runc"
        ]),
        "the managers are missing"
    );

    // Docker.
    {
        let mut env = Env::new("bench-docker", &capsa);
        env.start_dockerd();
        let archive = managers::image::busybox_archive(&env.dir, "busybox", IMAGE, &["sh"]);
        managers::run(env.docker().arg("load").arg("-i").arg(&archive), TIMEOUT).ok("docker load");
        let times = interleaved(runs, |r| {
            let mut c = env.docker();
            c.args(["run", "--rm", "--runtime", r, IMAGE, "true"]);
            time_command(c)
        });
        report("docker run --rm --runtime R busybox true", &times);
    }

    // containerd: ctr and the CRI plugin.
    let mut env = Env::new("bench-ctr", &capsa);
    env.start_containerd(Cri::On, PAUSE);
    let busybox = managers::image::busybox_archive(&env.dir, "busybox", IMAGE, &["sh"]);
    let pause =
        managers::image::busybox_archive(&env.dir, "pause", PAUSE, &["sleep", "2147483647"]);
    env.ctr_import("default", &busybox);
    env.ctr_import("k8s.io", &busybox);
    env.ctr_import("k8s.io", &pause);
    let fifo = env.dir.join("fifo");
    let times = interleaved(runs, |r| {
        let mut c = env.ctr("default");
        c.args(["run", "--rm", "--runc-binary"])
            .arg(env.runtime_bin(r))
            .arg("--runc-root")
            .arg(env.runtime_root(r))
            .arg("--fifo-dir")
            .arg(&fifo)
            .arg("--cgroup")
            .arg(format!("{}/{}", env.cgroup_parent, managers::hex_id()))
            .args([IMAGE, &managers::hex_id(), "true"]);
        time_command(c)
    });
    report("ctr run --rm --runc-binary R busybox true", &times);

    let cri = managers::cri::Client::connect(&env.containerd_socket());
    let logs = env.dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut n = 0;
    let times = interleaved(runs, |handler| {
        n += 1;
        let t = Instant::now();
        let pod = cri
            .run_pod(&format!("bench-{n}"), handler, &env.cgroup_parent, &logs)
            .unwrap();
        let id = cri
            .create_container(&pod, "main", IMAGE, &["sleep", "1000"])
            .unwrap();
        cri.start_container(&id).unwrap();
        let took = t.elapsed();
        cri.stop_container(&id, 0).unwrap();
        cri.remove_container(&id).unwrap();
        cri.stop_pod(&pod.id).unwrap();
        cri.remove_pod(&pod.id).unwrap();
        took
    });
    report(
        "CRI pod start: RunPodSandbox + CreateContainer + StartContainer, handler R",
        &times,
    );
}
