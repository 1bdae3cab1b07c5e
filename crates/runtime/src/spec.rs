//! Reading and checking a bundle's `config.json` (runtime-spec 1.2, Linux).
//!
//! Parsing uses `oci-spec`'s types; errors name the JSON path of the field at
//! fault. [`validate`] refuses what the spec forbids and what this runtime
//! cannot honour, so that nothing is silently run without it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, IoContext, Result};

/// The runtime-spec version this runtime implements.
pub const OCI_VERSION: &str = "1.2.1";

/// Parses `bytes` as a runtime config; `what` names the source in errors.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    // The plain parse is the fast one (tracking the path costs a container
    // start tens of microseconds); a document that fails is parsed again to
    // name the field at fault.
    let first = match serde_json::from_slice(bytes) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let field = if path == "." || path.is_empty() {
                what.to_string()
            } else {
                format!("{what}: {path}")
            };
            Err(Error::config(field, inner.to_string()))
        }
        Ok(_) => Err(Error::config(what.to_string(), first.to_string())),
    }
}

/// Reads `<bundle>/config.json`; returns the parsed spec and the raw bytes
/// (without the capabilities it ignores, see [`parse_ignoring_unknown_caps`]).
pub fn load(bundle: &Path) -> Result<(Spec, Vec<u8>)> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).ctx("read", &path)?;
    parse_ignoring_unknown_caps(bytes, "config.json", "/process/capabilities")
}

/// Parses `bytes` as [`parse`] does; a document that fails for capability
/// names this runtime does not know (at JSON pointer `caps`, an object of
/// capability lists) is parsed again without them, with a warning, as runc
/// ignores unknown capabilities (a capability not granted weakens
/// nothing). Returns the value and the bytes it was parsed from.
pub fn parse_ignoring_unknown_caps<T: serde::de::DeserializeOwned>(
    bytes: Vec<u8>,
    what: &str,
    caps: &str,
) -> Result<(T, Vec<u8>)> {
    let err = match parse(&bytes, what) {
        Ok(v) => return Ok((v, bytes)),
        Err(e) => e,
    };
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Err(err);
    };
    let mut unknown = Vec::new();
    if let Some(sets) = doc.pointer_mut(caps).and_then(|v| v.as_object_mut()) {
        for list in sets.values_mut().filter_map(|l| l.as_array_mut()) {
            list.retain(|name| {
                let known =
                    serde_json::from_value::<oci_spec::runtime::Capability>(name.clone()).is_ok();
                if !known && !unknown.contains(name) {
                    unknown.push(name.clone());
                }
                known
            });
        }
    }
    if unknown.is_empty() {
        return Err(err);
    }
    tracing::warn!("{what}: ignoring unknown or unavailable capabilities: {unknown:?}");
    let fixed = serde_json::to_vec(&doc).map_err(|e| Error::config(what, e.to_string()))?;
    Ok((parse(&fixed, what)?, fixed))
}

/// The absolute path of the container's root filesystem on the host.
pub fn rootfs_path(bundle: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::config("root", "missing: the container needs a root filesystem"))?;
    Ok(if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    })
}

/// Checks `spec` against the runtime spec and this runtime's abilities.
///
/// `bundle` is used to check that the root filesystem exists.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<()> {
    check_version(spec.version());

    let rootfs = rootfs_path(bundle, spec)?;
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::config(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        Err(e) => {
            return Err(Error::config(
                "root.path",
                format!("{}: {e}", rootfs.display()),
            ));
        }
    }

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing: nothing to run"))?;
    validate_process(process, "process")?;

    let linux = spec.linux().as_ref().ok_or_else(|| {
        Error::config(
            "linux",
            "missing: a Linux container needs the linux section",
        )
    })?;

    let mut seen = HashSet::new();
    let mut user_ns = None;
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::config(
                format!("linux.namespaces[{i}]"),
                format!("namespace {} is listed twice", ns_name(ns.typ())),
            ));
        }
        if ns.typ() == LinuxNamespaceType::User {
            user_ns = Some(ns.path().is_some());
        }
        if let Some(p) = ns.path()
            && !p.is_absolute()
        {
            return Err(Error::config(
                format!("linux.namespaces[{i}].path"),
                format!("{} is not an absolute path", p.display()),
            ));
        }
    }
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    match user_ns {
        Some(false) if !has_maps => {
            return Err(Error::config(
                "linux.uidMappings",
                "a new user namespace needs uidMappings and gidMappings",
            ));
        }
        Some(true) if has_maps => {
            return Err(Error::config(
                "linux.uidMappings",
                "mappings cannot be given for a user namespace joined by path",
            ));
        }
        // runc 1.1 runs such a config, the mappings unused.
        None if has_maps => ignored(
            "linux.uidMappings",
            "mappings are given but no user namespace is configured",
        ),
        None if !nix::unistd::geteuid().is_root() => {
            return Err(Error::config(
                "linux.namespaces",
                format!(
                    "capsa-runtime runs as unprivileged user {}: the container needs a user \
                     namespace (a {{\"type\": \"user\"}} entry with uidMappings and gidMappings, \
                     as `capsa-runtime spec --rootless` writes)",
                    nix::unistd::geteuid()
                ),
            ));
        }
        _ => {}
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
        if !seen.contains(&LinuxNamespaceType::Time) {
            return Err(Error::config(
                "linux.timeOffsets",
                "offsets need a time namespace",
            ));
        }
        for clock in linux.time_offsets().iter().flatten().map(|(k, _)| k) {
            if clock != "monotonic" && clock != "boottime" {
                return Err(Error::config(
                    format!("linux.timeOffsets.{clock}"),
                    "only the monotonic and boottime clocks can be offset",
                ));
            }
        }
    }
    let names_host = spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        || spec.domainname().as_ref().is_some_and(|h| !h.is_empty());
    if names_host && !seen.contains(&LinuxNamespaceType::Uts) {
        return Err(Error::config(
            "hostname",
            "setting a hostname needs a new uts namespace",
        ));
    }

    // LSM labels (no LSM here) and hardware we do not drive are refused
    // rather than ignored.
    if linux.mount_label().as_ref().is_some_and(|l| !l.is_empty())
        && !crate::lsm::Host::default().selinux_enabled()
    {
        return Err(Error::Unsupported(
            "linux.mountLabel: SELinux is not enabled on this host".into(),
        ));
    }
    // What runc 1.1 does not know (it ignores the fields) and capsa does
    // not do either is ignored with a warning: none of it isolates. Cache
    // and memory bandwidth schemas are refused, as runc refuses them
    // without Intel RDT.
    if let Some(rdt) = linux.intel_rdt() {
        if rdt.l3_cache_schema().is_some() || rdt.mem_bw_schema().is_some() {
            return Err(Error::Unsupported(
                "linux.intelRdt: Intel RDT (resctrl) is not supported: its schemas cannot be set"
                    .into(),
            ));
        }
        ignored("linux.intelRdt", "Intel RDT (resctrl) is not supported");
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        ignored(
            "linux.netDevices",
            "moving network devices into the container is not supported",
        );
    }
    if linux.memory_policy().is_some() {
        ignored(
            "linux.memoryPolicy",
            "NUMA memory policies are not supported",
        );
    }
    Ok(())
}

/// Warns that config field `field` is ignored, and why.
pub fn ignored(field: &str, why: &str) {
    tracing::warn!("{field}: ignored: {why}");
}

/// Checks the fields of a process (of config.json or of `exec --process`).
pub fn validate_process(process: &oci_spec::runtime::Process, field: &str) -> Result<()> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => {
            return Err(Error::config(
                format!("{field}.args"),
                "missing: nothing to run",
            ));
        }
    }
    if !process.cwd().is_absolute() {
        return Err(Error::config(
            format!("{field}.cwd"),
            format!("{} is not an absolute path", process.cwd().display()),
        ));
    }
    for (i, env) in process.env().iter().flatten().enumerate() {
        if !env.contains('=') {
            return Err(Error::config(
                format!("{field}.env[{i}]"),
                format!("{env:?} is not of the form NAME=VALUE"),
            ));
        }
    }
    crate::lsm::Host::default().check_process(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
        field,
    )?;
    if process.exec_cpu_affinity().is_some() {
        ignored(
            &format!("{field}.execCPUAffinity"),
            "CPU affinity at exec is not supported",
        );
    }
    Ok(())
}

/// runc runs a config of any `ociVersion`; one of another major version
/// than ours gets a warning (what it means may differ).
fn check_version(version: &str) {
    let major = version.split(['.', '-', '+']).next();
    if major != Some("1") {
        tracing::warn!(
            "ociVersion: {version:?}: this runtime implements runtime-spec {OCI_VERSION}; \
             fields it does not know are ignored"
        );
    }
}

/// The name runtime-spec uses for a namespace type.
pub fn ns_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The default config.json that `spec` writes: runc's defaults (busybox
/// `sh` on a terminal, three capabilities, the usual mounts, masked paths).
/// With `rootless`, a config an unprivileged user `uid`:`gid` can run: a user
/// namespace mapping them to root, no network namespace, /sys bound from the
/// host, no cgroup mount and no resource limits.
pub fn default_config(rootless: bool, uid: u32, gid: u32) -> serde_json::Value {
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut config = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [format!("PATH={}", crate::process::DEFAULT_PATH), "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "capsa",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/sys/devices/virtual/powercap"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if rootless {
        let linux = &mut config["linux"];
        linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = serde_json::json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}
        ]);
        if let Some(obj) = linux.as_object_mut() {
            obj.remove("resources");
        }
        let mounts = config["mounts"].as_array_mut().expect("built above");
        mounts.retain(|m| m["type"] != "cgroup");
        for m in mounts.iter_mut() {
            if m["type"] == "sysfs" {
                *m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if m["type"] == "devpts"
                && let Some(opts) = m["options"].as_array_mut()
            {
                opts.retain(|o| o != "gid=5");
            }
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(config: &str) -> (tempfile::TempDir, Result<()>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        let res = load(dir.path()).and_then(|(spec, _)| validate(&spec, dir.path()));
        (dir, res)
    }

    const MINIMAL: &str = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
        "process":{"user":{"uid":0,"gid":0},"args":["/bin/true"],"cwd":"/"},
        "linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}"#;

    #[test]
    fn default_configs_parse() {
        for rootless in [false, true] {
            let v = default_config(rootless, 1000, 1000);
            let bytes = serde_json::to_vec(&v).unwrap();
            let spec: Spec = parse(&bytes, "config.json").unwrap();
            assert_eq!(
                spec.process().as_ref().unwrap().args().as_ref().unwrap()[0],
                "sh"
            );
        }
    }

    #[test]
    fn minimal_config_is_accepted() {
        let (_d, res) = bundle_with(MINIMAL);
        res.unwrap();
    }

    #[test]
    fn unknown_namespace_names_the_field() {
        let cfg = MINIMAL.replace(r#"{"type":"mount"}"#, r#"{"type":"bogus"}"#);
        let (_d, res) = bundle_with(&cfg);
        let msg = res.unwrap_err().to_string();
        assert!(msg.contains("linux.namespaces[1].type"), "{msg}");
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn any_version_is_taken_as_runc_takes_it() {
        for v in ["2.0.0", "1.0.0-rc1", "bogus"] {
            let cfg = MINIMAL.replace("1.2.0", v);
            let (_d, res) = bundle_with(&cfg);
            res.unwrap();
        }
    }

    #[test]
    fn bad_json_is_an_error() {
        let (_d, res) = bundle_with("{\"ociVersion\": ");
        assert!(
            res.unwrap_err()
                .to_string()
                .starts_with("config: config.json")
        );
    }

    #[test]
    fn missing_rootfs_is_an_error() {
        let cfg = MINIMAL.replace(r#""path":"rootfs""#, r#""path":"nope""#);
        let (_d, res) = bundle_with(&cfg);
        assert!(res.unwrap_err().to_string().contains("root.path"));
    }

    #[test]
    fn duplicate_namespace_is_an_error() {
        let cfg = MINIMAL.replace(r#"{"type":"mount"}"#, r#"{"type":"pid"}"#);
        let (_d, res) = bundle_with(&cfg);
        assert!(res.unwrap_err().to_string().contains("listed twice"));
    }

    #[test]
    fn unknown_capabilities_are_left_out_as_runc_does() {
        let cfg = MINIMAL.replace(
            r#""cwd":"/""#,
            r#""cwd":"/","capabilities":{"bounding":["CAP_NOPE","CAP_KILL"],"effective":["CAP_NOPE"]}"#,
        );
        let (d, res) = bundle_with(&cfg);
        res.unwrap();
        let (spec, raw) = load(d.path()).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
        assert!(caps.effective().as_ref().unwrap().is_empty());
        assert!(!String::from_utf8(raw).unwrap().contains("CAP_NOPE"));
        // Any other error is still one.
        let cfg = MINIMAL.replace(r#""cwd":"/""#, r#""cwd":7"#);
        let (_d, res) = bundle_with(&cfg);
        assert!(res.unwrap_err().to_string().contains("process.cwd"));
    }

    #[test]
    fn fields_runc_does_not_know_are_ignored_not_refused() {
        let cfg = MINIMAL.replace(
            r#""namespaces""#,
            r#""memoryPolicy":{"mode":"MPOL_BIND","nodes":"0"},"netDevices":{"eth9":{}},"intelRdt":{"closID":"x"},"namespaces""#,
        );
        let (_d, res) = bundle_with(&cfg);
        res.unwrap();
        let cfg = MINIMAL.replace(
            r#""namespaces""#,
            r#""intelRdt":{"l3CacheSchema":"L3:0=f"},"namespaces""#,
        );
        let (_d, res) = bundle_with(&cfg);
        assert!(res.unwrap_err().to_string().contains("linux.intelRdt"));
    }
}
