//! LSM labels (`process.apparmorProfile`, `process.selinuxLabel`,
//! `linux.mountLabel`): where the LSM is not enabled (this kind of host has
//! neither), a config or exec asking for one is refused naming the field,
//! and nothing is left behind. (The apply path is unit-tested in `lsm`.)

mod common;

use common::{Bundle, Runtime};
use serde_json::json;

fn host() -> capsa_runtime::lsm::Host {
    capsa_runtime::lsm::Host::default()
}

#[test]
fn labels_are_refused_where_their_lsm_is_off() {
    require_root!();
    let rt = Runtime::new();
    let cases = [
        (
            "process.apparmorProfile",
            host().apparmor_enabled(),
            "AppArmor is not enabled",
        ),
        (
            "process.selinuxLabel",
            host().selinux_enabled(),
            "SELinux is not enabled",
        ),
        (
            "linux.mountLabel",
            host().selinux_enabled(),
            "SELinux is not enabled",
        ),
    ];
    for (field, enabled, reason) in cases {
        if enabled {
            eprintln!("SKIPPED ({field}): its LSM is enabled on this host");
            continue;
        }
        let mut b = Bundle::busybox();
        b.edit(|c| match field {
            "process.apparmorProfile" => c["process"]["apparmorProfile"] = json!("capsa-default"),
            "process.selinuxLabel" => {
                c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0:c1,c2")
            }
            _ => c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2"),
        });
        let id = rt.id("lsm");
        let (ok, _, err) = rt.detached(&["create", "--bundle", &b.path_str(), &id]);
        assert!(!ok, "{field} was accepted");
        assert!(
            err.contains(field) && err.contains(reason),
            "{field}: {err}"
        );
        assert!(!rt.root().join(&id).exists(), "{field}: state left behind");
        // An empty label asks for nothing.
        b.edit(|c| match field {
            "process.apparmorProfile" => c["process"]["apparmorProfile"] = json!(""),
            "process.selinuxLabel" => c["process"]["selinuxLabel"] = json!(""),
            _ => c["linux"]["mountLabel"] = json!(""),
        });
        rt.run_ok(&b, &rt.id("lsm-empty"));
    }
    let f: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert_eq!(f["linux"]["apparmor"]["enabled"], host().apparmor_enabled());
    assert_eq!(f["linux"]["selinux"]["enabled"], host().selinux_enabled());
}

#[test]
fn exec_with_a_label_is_refused_where_its_lsm_is_off() {
    require_root!();
    if host().apparmor_enabled() || host().selinux_enabled() {
        eprintln!("SKIPPED: an LSM is enabled on this host");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["sleep", "30"]);
    let id = rt.id("lsm-exec");
    let (ok, _, err) = rt.detached(&["run", "-d", "--bundle", &b.path_str(), &id]);
    assert!(ok, "{err}");
    for (flag, field) in [
        ("--apparmor", "process.apparmorProfile"),
        ("--process-label", "process.selinuxLabel"),
    ] {
        let err = rt.fails(&["exec", flag, "some-label", &id, "true"]);
        assert!(err.contains(field), "{flag}: {err}");
    }
    let process = b.path().join("process.json");
    let mut p = b.config["process"].clone();
    p["args"] = json!(["true"]);
    p["apparmorProfile"] = json!("capsa-default");
    std::fs::write(&process, p.to_string()).unwrap();
    let err = rt.fails(&["exec", "--process", &process.display().to_string(), &id]);
    assert!(err.contains("process.apparmorProfile"), "{err}");
    // The container itself is untouched.
    rt.ok(&["exec", &id, "true"]);
    assert_eq!(rt.status(&id), "running");
}
