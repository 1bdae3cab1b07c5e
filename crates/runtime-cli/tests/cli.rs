//! The command line itself: version, spec, features, logging formats.

mod common;

use common::{Bundle, Runtime, bin};

#[test]
fn version_prints_runc_style_lines() {
    let out = std::process::Command::new(bin())
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("capsa-runtime version "));
    assert!(
        text.lines()
            .any(|l| l == format!("spec: {}", capsa_runtime::spec::OCI_VERSION))
    );
}

#[test]
fn spec_writes_a_config_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(bin())
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&["spec", "--bundle", d]).status.success());
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(c["process"]["args"][0], "sh");
    assert_eq!(c["root"]["path"], "rootfs");
    let again = run(&["spec", "--bundle", d]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let dir2 = tempfile::tempdir().unwrap();
    let d2 = dir2.path().to_str().unwrap();
    assert!(
        run(&["spec", "--rootless", "--bundle", d2])
            .status
            .success()
    );
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir2.path().join("config.json")).unwrap()).unwrap();
    assert!(
        c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "user")
    );
    assert!(c["linux"]["uidMappings"].is_array());
}

#[test]
fn features_lists_what_works() {
    let out = std::process::Command::new(bin())
        .arg("features")
        .output()
        .unwrap();
    assert!(out.status.success());
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMax"], capsa_runtime::spec::OCI_VERSION);
    assert!(
        f["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "createContainer")
    );
    assert!(
        f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "time")
    );
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    assert!(
        f["linux"]["seccomp"]["operators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "SCMP_CMP_MASKED_EQ")
    );
}

#[test]
fn json_log_gets_the_error_record() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let out = rt
        .cmd(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            "nosuchcontainer",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"]
            .as_str()
            .unwrap()
            .contains("nosuchcontainer does not exist")
    );
    assert!(last["time"].is_string());
    // also on stderr, for people
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn debug_log_has_stage_timings() {
    require_root!();
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let id = rt.id("debug");
    let out = rt.output(&["--debug", "run", "--bundle", &b.path_str(), &id]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("level=debug msg=\"created\" us="), "{err}");
}

#[test]
fn systemd_cgroup_is_taken_by_every_command() {
    // containerd gives the flag to every command; only creating a container
    // needs systemd (tests/systemd.rs), the others follow its state.
    let rt = Runtime::new();
    let out = rt.ok(&["--systemd-cgroup", "list"]);
    assert!(out.starts_with("ID"), "{out}");
}

#[test]
fn unknown_flags_are_refused() {
    let rt = Runtime::new();
    let err = rt.fails(&["create", "--no-such-flag", "x"]);
    assert!(err.contains("--no-such-flag"), "{err}");
}
