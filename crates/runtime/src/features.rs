//! What this runtime supports, as runtime-spec's features document
//! (`capsa-runtime features`). Only what really works is listed.

use serde_json::{Value, json};

use crate::spec::OCI_VERSION;

/// The features document.
pub fn features() -> Value {
    let mut caps: Vec<String> = crate::capabilities::supported()
        .iter()
        .map(|c| c.to_string())
        .collect();
    caps.sort();
    let lsm = crate::lsm::Host::default();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::mounts::options::KNOWN,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": true,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": crate::seccomp::features(),
            "apparmor": {"enabled": lsm.apparmor_enabled()},
            "selinux": {"enabled": lsm.selinux_enabled()},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "io.github.capsa.runtime.version": env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_parse_as_oci_features() {
        let v = features();
        let f: oci_spec::runtime::Features = serde_json::from_value(v).unwrap();
        assert_eq!(f.oci_version_max(), OCI_VERSION);
        let linux = f.linux().as_ref().unwrap();
        assert!(
            linux
                .capabilities()
                .as_ref()
                .unwrap()
                .contains(&"CAP_SYS_ADMIN".to_string())
        );
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 8);
    }
}
