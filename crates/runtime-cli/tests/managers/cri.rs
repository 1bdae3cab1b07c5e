//! A small CRI client (the API the kubelet speaks to containerd), over
//! containerd's socket: the calls a pod's life makes, each blocking, with
//! a timeout. Pods use the host's network namespace, so no CNI plugin is
//! needed and no traffic leaves the machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerStats, ContainerStatsRequest, ContainerStatus,
    ContainerStatusRequest, CreateContainerRequest, ExecSyncRequest, ExecSyncResponse, ImageSpec,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, RemoveContainerRequest, RemovePodSandboxRequest,
    RunPodSandboxRequest, StartContainerRequest, StopContainerRequest, StopPodSandboxRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to a CRI runtime service.
pub struct Client {
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
}

/// A pod this client started: its sandbox and its configuration (which
/// every container of the pod is created with).
pub struct Pod {
    /// The sandbox id.
    pub id: String,
    /// The configuration it was started with.
    pub config: PodSandboxConfig,
}

impl Client {
    /// Connects to the unix socket at `socket`.
    pub fn connect(socket: &Path) -> Client {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let socket: PathBuf = socket.to_path_buf();
        let channel = rt
            .block_on(
                // The URI is not used: every connection goes to the socket.
                Endpoint::try_from("http://[::]:0")
                    .unwrap()
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let socket = socket.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(socket).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    })),
            )
            .expect("connecting to the CRI socket");
        Client {
            rt,
            client: RuntimeServiceClient::new(channel),
        }
    }

    /// Runs one call to its end or the timeout.
    fn call<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, String> {
        match self
            .rt
            .block_on(async { tokio::time::timeout(CALL_TIMEOUT, f).await })
        {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => Err(format!("{what}: {status}")),
            Err(_) => Err(format!("{what}: no answer within {CALL_TIMEOUT:?}")),
        }
    }

    /// RunPodSandbox: a pod named `name` in the host's network namespace,
    /// run by `handler` (a RuntimeClass's handler), its containers' cgroups
    /// beneath `cgroup_parent` and their logs in `log_dir`.
    pub fn run_pod(
        &self,
        name: &str,
        handler: &str,
        cgroup_parent: &str,
        log_dir: &Path,
    ) -> Result<Pod, String> {
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_string(),
                uid: super::hex_id(),
                namespace: "capsa-test".to_string(),
                attempt: 0,
            }),
            // No hostname: the pod shares the host's UTS namespace with its
            // network (as the kubelet leaves it for host-network pods).
            log_directory: log_dir.display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.to_string(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Node as i32,
                        pid: NamespaceMode::Pod as i32,
                        ipc: NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            labels: HashMap::from([("capsa-test".to_string(), name.to_string())]),
            ..Default::default()
        };
        let mut c = self.client.clone();
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.to_string(),
        };
        let r = self.call("RunPodSandbox", c.run_pod_sandbox(req))?;
        Ok(Pod {
            id: r.pod_sandbox_id,
            config,
        })
    }

    /// CreateContainer: container `name` of `pod` from `image`, running
    /// `command`, its log in `<log_dir>/<name>.log`.
    pub fn create_container(
        &self,
        pod: &Pod,
        name: &str,
        image: &str,
        command: &[&str],
    ) -> Result<String, String> {
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            ..Default::default()
        };
        let mut c = self.client.clone();
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        };
        Ok(self
            .call("CreateContainer", c.create_container(req))?
            .container_id)
    }

    /// StartContainer.
    pub fn start_container(&self, id: &str) -> Result<(), String> {
        let mut c = self.client.clone();
        let req = StartContainerRequest {
            container_id: id.to_string(),
        };
        self.call("StartContainer", c.start_container(req))
            .map(|_| ())
    }

    /// ContainerStatus.
    pub fn container_status(&self, id: &str) -> Result<ContainerStatus, String> {
        let mut c = self.client.clone();
        let req = ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        };
        self.call("ContainerStatus", c.container_status(req))?
            .status
            .ok_or_else(|| "ContainerStatus: no status".to_string())
    }

    /// ExecSync of `cmd` in container `id`.
    pub fn exec_sync(&self, id: &str, cmd: &[&str]) -> Result<ExecSyncResponse, String> {
        let mut c = self.client.clone();
        let req = ExecSyncRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 60,
        };
        self.call("ExecSync", c.exec_sync(req))
    }

    /// ContainerStats.
    pub fn container_stats(&self, id: &str) -> Result<ContainerStats, String> {
        let mut c = self.client.clone();
        let req = ContainerStatsRequest {
            container_id: id.to_string(),
        };
        self.call("ContainerStats", c.container_stats(req))?
            .stats
            .ok_or_else(|| "ContainerStats: no stats".to_string())
    }

    /// StopContainer, SIGKILL after `timeout` seconds.
    pub fn stop_container(&self, id: &str, timeout: i64) -> Result<(), String> {
        let mut c = self.client.clone();
        let req = StopContainerRequest {
            container_id: id.to_string(),
            timeout,
        };
        self.call("StopContainer", c.stop_container(req))
            .map(|_| ())
    }

    /// RemoveContainer.
    pub fn remove_container(&self, id: &str) -> Result<(), String> {
        let mut c = self.client.clone();
        let req = RemoveContainerRequest {
            container_id: id.to_string(),
        };
        self.call("RemoveContainer", c.remove_container(req))
            .map(|_| ())
    }

    /// StopPodSandbox.
    pub fn stop_pod(&self, id: &str) -> Result<(), String> {
        let mut c = self.client.clone();
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call("StopPodSandbox", c.stop_pod_sandbox(req))
            .map(|_| ())
    }

    /// RemovePodSandbox.
    pub fn remove_pod(&self, id: &str) -> Result<(), String> {
        let mut c = self.client.clone();
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call("RemovePodSandbox", c.remove_pod_sandbox(req))
            .map(|_| ())
    }
}
