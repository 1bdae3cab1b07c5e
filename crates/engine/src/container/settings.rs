//! What a container is made of, in Docker's own shapes and field names:
//! `Config` (the process and metadata) and `HostConfig` (how it runs on the
//! host), as `docker inspect` shows them, plus the mounts capsa resolved.
//! They are stored as JSON with the container's row and are the input of
//! the OCI config (`spec.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Docker's `Config`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    /// The container's hostname.
    pub hostname: String,
    /// Its NIS domain name.
    pub domainname: String,
    /// `USER[:GROUP]` the process runs as (empty: the image's).
    pub user: String,
    /// `run` attached stdin.
    pub attach_stdin: bool,
    /// `run` attached stdout.
    pub attach_stdout: bool,
    /// `run` attached stderr.
    pub attach_stderr: bool,
    /// Ports the image or `--expose` declare (`80/tcp` → {}).
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// A terminal is allocated.
    pub tty: bool,
    /// Stdin is kept open for attaching (`-i`).
    pub open_stdin: bool,
    /// Stdin closes after the first attached client's stdin ends.
    pub stdin_once: bool,
    /// `NAME=VALUE` environment.
    pub env: Vec<String>,
    /// The command (after the entrypoint).
    pub cmd: Option<Vec<String>>,
    /// The image as the user named it.
    pub image: String,
    /// Volumes the image declares (path → {}).
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// The working directory.
    pub working_dir: String,
    /// The entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Build triggers (always null here).
    pub on_build: Option<Vec<String>>,
    /// Labels: the image's, then the container's.
    pub labels: BTreeMap<String, String>,
    /// The signal `stop` sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
}

/// `LogConfig` of a `HostConfig`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    /// `json-file` or `none`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Driver options (`max-size`, `max-file`).
    pub config: BTreeMap<String, String>,
}

/// `RestartPolicy` of a `HostConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `no`, `on-failure`, `always` or `unless-stopped`.
    pub name: String,
    /// Most restarts for `on-failure` (0: no limit).
    pub maximum_retry_count: i64,
}

/// A device given with `--device`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    /// The device on the host.
    pub path_on_host: String,
    /// Its path in the container.
    pub path_in_container: String,
    /// `rwm` letters.
    pub cgroup_permissions: String,
}

/// A throttle of one block device (`--device-read-bps`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ThrottleDevice {
    /// The device's path on the host.
    pub path: String,
    /// Bytes or operations per second.
    pub rate: u64,
}

/// A weight of one block device (`--blkio-weight-device`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WeightDevice {
    /// The device's path on the host.
    pub path: String,
    /// The weight (10 to 1000).
    pub weight: u16,
}

/// A resource limit (`--ulimit`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    /// `nofile`, `nproc`, ...
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// A `--mount` as given, in Docker's `Mount` shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountSpec {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Host path or volume name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Mounted read-only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Bind options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<serde_json::Value>,
    /// Volume options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<serde_json::Value>,
    /// Tmpfs options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<serde_json::Value>,
}

/// Docker's `HostConfig`, the parts capsa implements.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `-v` entries as given.
    pub binds: Option<Vec<String>>,
    /// `--cidfile`.
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    /// The log driver.
    pub log_config: LogConfig,
    /// `none`, `host` or `container:ID`.
    pub network_mode: String,
    /// Published ports (none: networking is not there yet).
    pub port_bindings: BTreeMap<String, serde_json::Value>,
    /// The restart policy.
    pub restart_policy: RestartPolicy,
    /// `--rm`.
    pub auto_remove: bool,
    /// The volume driver (`local`).
    pub volume_driver: String,
    /// `--volumes-from`.
    pub volumes_from: Option<Vec<String>>,
    /// The terminal size at creation: [height, width].
    pub console_size: [u16; 2],
    /// `--annotation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// `--cap-add`.
    pub cap_add: Option<Vec<String>>,
    /// `--cap-drop`.
    pub cap_drop: Option<Vec<String>>,
    /// `host` or `private`.
    pub cgroupns_mode: String,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--add-host`.
    pub extra_hosts: Option<Vec<String>>,
    /// `--group-add`.
    pub group_add: Option<Vec<String>>,
    /// `private`, `shareable`, `host`, `none` or `container:ID`.
    pub ipc_mode: String,
    /// Cgroup (`--cgroup` of Windows; empty).
    pub cgroup: String,
    /// Links (refused; always null).
    pub links: Option<Vec<String>>,
    /// `--oom-score-adj`.
    pub oom_score_adj: i32,
    /// `host`, `container:ID` or empty (private).
    pub pid_mode: String,
    /// `--privileged`.
    pub privileged: bool,
    /// `-P` (refused; always false).
    pub publish_all_ports: bool,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// `--security-opt` as given.
    pub security_opt: Option<Vec<String>>,
    /// `--storage-opt` (refused; null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_opt: Option<BTreeMap<String, String>>,
    /// `--tmpfs` path → options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// `host` or empty.
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    /// `host` or empty.
    pub userns_mode: String,
    /// /dev/shm's size in bytes.
    pub shm_size: i64,
    /// `--sysctl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<BTreeMap<String, String>>,
    /// The OCI runtime: `capsa` (in-process) or a runc-compatible binary.
    pub runtime: String,
    /// Windows only; empty.
    pub isolation: String,
    /// `--cpu-shares`.
    pub cpu_shares: i64,
    /// `-m`, bytes.
    pub memory: i64,
    /// `--cpus` × 10⁹.
    pub nano_cpus: i64,
    /// `--cgroup-parent`.
    pub cgroup_parent: String,
    /// `--blkio-weight`.
    pub blkio_weight: u16,
    /// `--blkio-weight-device`.
    pub blkio_weight_device: Vec<WeightDevice>,
    /// `--device-read-bps`.
    pub blkio_device_read_bps: Vec<ThrottleDevice>,
    /// `--device-write-bps`.
    pub blkio_device_write_bps: Vec<ThrottleDevice>,
    /// `--device-read-iops`.
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Vec<ThrottleDevice>,
    /// `--device-write-iops`.
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Vec<ThrottleDevice>,
    /// `--cpu-period`.
    pub cpu_period: i64,
    /// `--cpu-quota`.
    pub cpu_quota: i64,
    /// `--cpu-rt-period`.
    pub cpu_realtime_period: i64,
    /// `--cpu-rt-runtime`.
    pub cpu_realtime_runtime: i64,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--device`.
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule`.
    pub device_cgroup_rules: Option<Vec<String>>,
    /// GPUs (refused; null).
    pub device_requests: Option<Vec<serde_json::Value>>,
    /// `--memory-reservation`.
    pub memory_reservation: i64,
    /// `--memory-swap` (-1: unlimited).
    pub memory_swap: i64,
    /// `--memory-swappiness` (None: the kernel's).
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: Option<bool>,
    /// `--pids-limit` (None or ≤ 0: none).
    pub pids_limit: Option<i64>,
    /// `--ulimit`.
    pub ulimits: Option<Vec<Ulimit>>,
    /// Windows only.
    pub cpu_count: i64,
    /// Windows only.
    pub cpu_percent: i64,
    /// Windows only.
    #[serde(rename = "IOMaximumIOps")]
    pub io_maximum_iops: i64,
    /// Windows only.
    #[serde(rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: i64,
    /// `--mount`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountSpec>,
    /// Paths masked in the container.
    pub masked_paths: Vec<String>,
    /// Paths made read-only.
    pub readonly_paths: Vec<String>,
    /// `--init`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
}

/// A mount capsa resolved, as `inspect` lists it in `Mounts`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The volume's name (volumes only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The host path (empty for tmpfs).
    pub source: String,
    /// The path in the container.
    pub destination: String,
    /// The volume driver (volumes only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Options as given (`ro`, `z`, ...), or tmpfs options.
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Bind propagation.
    pub propagation: String,
    /// An anonymous volume (removed by `rm -v`).
    #[serde(skip_serializing)]
    pub anonymous: bool,
    /// Filled from the image path it covers when new (not for `nocopy`).
    #[serde(skip_serializing)]
    pub copy_up: bool,
}

/// Everything stored with a container besides its state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Docker's Config.
    pub config: Config,
    /// Docker's HostConfig.
    pub host_config: HostConfig,
    /// The resolved mounts.
    pub mounts: Vec<MountPoint>,
    /// The program run (first word of entrypoint + cmd).
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// `os/arch` of the image.
    pub platform: String,
    /// The cgroup directories, once created.
    pub cgroup: Option<capsa_runtime::cgroups::CgroupPaths>,
}

impl Settings {
    /// The json-file log limits: (max-size bytes, 0 for none; max-file).
    pub fn log_limits(&self) -> (u64, u32) {
        let c = &self.host_config.log_config.config;
        let size = c
            .get("max-size")
            .and_then(|s| crate::units::parse_size(s).ok())
            .unwrap_or(0);
        let files = c.get("max-file").and_then(|s| s.parse().ok()).unwrap_or(1);
        (size.max(0) as u64, files)
    }

    /// The signal `stop` sends.
    pub fn stop_signal(&self) -> String {
        self.config
            .stop_signal
            .clone()
            .unwrap_or_else(|| "SIGTERM".into())
    }

    /// Seconds `stop` waits before killing.
    pub fn stop_timeout(&self) -> i64 {
        self.config.stop_timeout.unwrap_or(10)
    }
}
