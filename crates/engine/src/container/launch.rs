//! Starting a container's process and its monitor.
//!
//! The command (`run`, `start`) forks a launcher ([`spawn`]). The launcher
//! leaves the command's session, becomes a child subreaper, creates the
//! container with the runtime — in-process for capsa's runtime, so that the
//! container's init is its own child — with pipes or a pty as its stdio,
//! reports the init's pid over a SEQPACKET link, waits until the command
//! has recorded the container ([`confirm`]; a command killed before that
//! makes it delete the container, so that nothing runs unrecorded), and
//! execs the monitor,
//! which inherits the init as its child, the output pipes, the link and,
//! while the command is attached, the command's stdout/stderr. A container
//! restarted by its restart policy goes through [`launch_here`] and
//! [`exec_monitor`] in the process that was its monitor.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use capsa_runtime::cgroups::CgroupPaths;
use nix::fcntl::OFlag;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::unistd::{Pid, dup, dup2_stderr, dup2_stdin, dup2_stdout, pipe2};
use serde::{Deserialize, Serialize};

use super::runtime::Runtime;

/// Everything the launcher needs; plain data, usable after fork.
pub struct Plan {
    /// The container's id.
    pub id: String,
    /// Its directory (the bundle, holding config.json).
    pub dir: PathBuf,
    /// The store root (for the monitor's `capsa __exited`).
    pub root: PathBuf,
    /// The `capsa` binary.
    pub exe: PathBuf,
    /// The monitor program.
    pub monitor: PathBuf,
    /// The in-process runtime's state root, or the external runtime.
    pub runtime: RuntimeChoice,
    /// Short directory for console sockets.
    pub console_dir: PathBuf,
    /// The container has a terminal.
    pub tty: bool,
    /// Its stdin is a pipe kept open (`-i`).
    pub open_stdin: bool,
    /// Stdin closes when the first attached client's does.
    pub stdin_once: bool,
    /// Bring up `lo` in its own network namespace.
    pub loopback: bool,
    /// The json-file log (max-size, max-file), or none.
    pub log: Option<(u64, u32)>,
    /// The OCI cgroupsPath (to locate an external runtime's cgroups).
    pub cgroups_path: String,
}

/// Which runtime creates the container.
#[derive(Clone, Debug)]
pub enum RuntimeChoice {
    /// capsa's, with this state root.
    Builtin(PathBuf),
    /// A runc-compatible binary with its state root.
    External {
        /// The binary.
        bin: PathBuf,
        /// Its `--root`.
        root: PathBuf,
    },
}

impl RuntimeChoice {
    /// The choice for a resolved runtime.
    pub fn of(rt: &Runtime) -> RuntimeChoice {
        match rt {
            Runtime::Builtin(r) => RuntimeChoice::Builtin(r.root().path().to_path_buf()),
            Runtime::External { bin, root } => RuntimeChoice::External {
                bin: bin.clone(),
                root: root.clone(),
            },
        }
    }
}

/// What the launcher reports once the container's process exists.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Started {
    /// The init's host pid.
    pub pid: i32,
    /// Its start time (clock ticks).
    pub start: u64,
    /// Its cgroups.
    pub cgroup: CgroupPaths,
}

/// A failed launch: the exit status Docker uses for it and why.
#[derive(Debug)]
pub struct LaunchError {
    /// 125 (capsa failed), 126 (cannot invoke), 127 (not found).
    pub code: u8,
    /// The message.
    pub message: String,
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LaunchError {}

impl LaunchError {
    /// Classifies a runtime error as `docker run` does: the program not
    /// found → 127, found but not executable → 126, anything else → 125.
    pub fn from_runtime(e: impl std::fmt::Display) -> LaunchError {
        let message = e.to_string();
        let code = match message.find("exec: \"") {
            Some(_) if message.contains("not found") || message.contains("No such file") => 127,
            Some(_) => 126,
            None => 125,
        };
        LaunchError { code, message }
    }

    fn capsa(e: impl std::fmt::Display) -> LaunchError {
        LaunchError {
            code: 125,
            message: e.to_string(),
        }
    }
}

/// The container's process and the descriptors the monitor takes over.
pub struct Launched {
    /// pid, start time, cgroups.
    pub started: Started,
    /// Read end of its stdout pipe.
    pub out: Option<OwnedFd>,
    /// Read end of its stderr pipe.
    pub err: Option<OwnedFd>,
    /// The pty master.
    pub pty: Option<OwnedFd>,
    /// Write end of its stdin pipe.
    pub stdin: Option<OwnedFd>,
    /// The monitor's attach socket, listening already, so that clients
    /// can connect as soon as the container runs.
    pub listener: OwnedFd,
}

/// Binds and listens on `attach.sock` in the working directory (the
/// container's), replacing a stale one.
fn attach_listener() -> std::result::Result<OwnedFd, LaunchError> {
    use nix::sys::socket::{Backlog, UnixAddr, bind, listen, socket};
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| LaunchError::capsa(format!("socket: {e}")))?;
    let name = super::attach::SOCKET;
    let _ = std::fs::remove_file(name);
    let addr = UnixAddr::new(name).map_err(|e| LaunchError::capsa(format!("{name}: {e}")))?;
    bind(sock.as_raw_fd(), &addr)
        .and_then(|_| listen(&sock, Backlog::new(16).unwrap_or(Backlog::MAXCONN)))
        .map_err(|e| LaunchError::capsa(format!("attach socket {name}: {e}")))?;
    Ok(sock)
}

fn pipe() -> std::result::Result<(OwnedFd, OwnedFd), LaunchError> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| LaunchError::capsa(format!("pipe2: {e}")))
}

fn devnull() -> std::result::Result<OwnedFd, LaunchError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| LaunchError::capsa(format!("open /dev/null: {e}")))
}

/// Points this process's stdin/stdout/stderr at the given descriptors.
fn set_stdio(i: impl AsFd, o: impl AsFd, e: impl AsFd) -> std::result::Result<(), LaunchError> {
    dup2_stdin(i)
        .and_then(|_| dup2_stdout(o))
        .and_then(|_| dup2_stderr(e))
        .map_err(|e| LaunchError::capsa(format!("dup2: {e}")))
}

/// A unix socket receiving a pty master (the runtime's console socket).
struct ConsoleListener {
    path: PathBuf,
    sock: std::os::unix::net::UnixListener,
}

impl ConsoleListener {
    fn new(dir: &Path, id: &str) -> std::result::Result<ConsoleListener, LaunchError> {
        crate::ctx::mkdir_mode(dir, 0o700).map_err(LaunchError::capsa)?;
        let path = dir.join(format!(
            "{}-{}.sock",
            &id[..12.min(id.len())],
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let sock = std::os::unix::net::UnixListener::bind(&path)
            .map_err(|e| LaunchError::capsa(format!("console socket {}: {e}", path.display())))?;
        Ok(ConsoleListener { path, sock })
    }

    fn receive(&self) -> std::result::Result<OwnedFd, LaunchError> {
        let (conn, _) = self
            .sock
            .accept()
            .map_err(|e| LaunchError::capsa(format!("console socket: {e}")))?;
        capsa_runtime::console::recv_fd(conn.as_raw_fd())
            .map(|(fd, _)| fd)
            .map_err(LaunchError::capsa)
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates and starts the container's process in this process, which must
/// be a child subreaper and single-threaded. On return the process's own
/// stdio is /dev/null.
pub fn launch_here(plan: &Plan) -> std::result::Result<Launched, LaunchError> {
    std::env::set_current_dir(&plan.dir)
        .map_err(|e| LaunchError::capsa(format!("chdir {}: {e}", plan.dir.display())))?;
    let listener = attach_listener()?;
    let null = devnull()?;
    let mut out = None;
    let mut err = None;
    let mut stdin = None;
    let console = if plan.tty {
        set_stdio(&null, &null, &null)?;
        // The in-process runtime hands us the pty itself; another runtime
        // sends it over a console socket.
        match &plan.runtime {
            RuntimeChoice::Builtin(_) => None,
            RuntimeChoice::External { .. } => {
                Some(ConsoleListener::new(&plan.console_dir, &plan.id)?)
            }
        }
    } else {
        let (or, ow) = pipe()?;
        let (er, ew) = pipe()?;
        let stdin_r = if plan.open_stdin {
            let (ir, iw) = pipe()?;
            stdin = Some(iw);
            ir
        } else {
            null.try_clone()
                .map_err(|e| LaunchError::capsa(format!("dup: {e}")))?
        };
        set_stdio(&stdin_r, &ow, &ew)?;
        out = Some(or);
        err = Some(er);
        None
    };
    let created = create(plan, console.as_ref());
    // The container holds its ends now; ours go.
    set_stdio(&null, &null, &null)?;
    let (started, pty) = created?;
    let pty = match (pty, &console) {
        (Some(p), _) => Some(p),
        (None, Some(c)) => Some(c.receive()?),
        (None, None) => None,
    };
    if plan.tty {
        stdin = None;
    }
    Ok(Launched {
        started,
        out,
        err,
        pty,
        stdin,
        listener,
    })
}

/// Runs the runtime; returns the started process and the pty master when
/// the runtime handed it over directly.
fn create(
    plan: &Plan,
    console: Option<&ConsoleListener>,
) -> std::result::Result<(Started, Option<OwnedFd>), LaunchError> {
    match &plan.runtime {
        RuntimeChoice::Builtin(root) => {
            let rt = capsa_runtime::Runtime::new(root);
            let opts = capsa_runtime::CreateOptions {
                id: plan.id.clone(),
                bundle: plan.dir.clone(),
                ..Default::default()
            };
            let mut created = rt
                .create_attached(&opts)
                .map_err(LaunchError::from_runtime)?;
            let pty = created.pty_master.take();
            let pid = created.pid();
            if plan.loopback {
                bring_up_loopback(pid.as_raw()).map_err(|e| {
                    let _ = rt.delete(&plan.id, true);
                    LaunchError::capsa(e)
                })?;
            }
            if let Err(e) = rt.start_attached(&mut created) {
                let _ = rt.delete(&plan.id, true);
                return Err(LaunchError::from_runtime(e));
            }
            let info = rt.info(&plan.id).map_err(LaunchError::capsa)?;
            Ok((
                Started {
                    pid: pid.as_raw(),
                    start: info.record.pid_start_time,
                    cgroup: info.record.cgroup,
                },
                pty,
            ))
        }
        RuntimeChoice::External { bin, root } => {
            let pid_file = plan.dir.join("init.pid");
            let log = plan.dir.join("runtime.log");
            let _ = std::fs::remove_file(&pid_file);
            let mut cmd = Runtime::command(bin, root);
            cmd.arg("--log")
                .arg(&log)
                .arg("--log-format")
                .arg("json")
                .arg("create")
                .arg("--bundle")
                .arg(&plan.dir)
                .arg("--pid-file")
                .arg(&pid_file);
            if let Some(c) = console {
                cmd.arg("--console-socket").arg(&c.path);
            }
            cmd.arg(&plan.id);
            let status = cmd
                .status()
                .map_err(|e| LaunchError::capsa(format!("running {}: {e}", bin.display())))?;
            if !status.success() {
                return Err(LaunchError::from_runtime(format!(
                    "{} create failed: {}",
                    bin.display(),
                    last_log_error(&log)
                )));
            }
            let pid: i32 = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| {
                    LaunchError::capsa(format!("{} wrote no pid file", bin.display()))
                })?;
            let fail = |e: String| {
                let _ = Runtime::External {
                    bin: bin.clone(),
                    root: root.clone(),
                }
                .delete(&plan.id);
                LaunchError::from_runtime(e)
            };
            if plan.loopback {
                bring_up_loopback(pid).map_err(|e| fail(e.to_string()))?;
            }
            let st = Runtime::command(bin, root)
                .arg("--log")
                .arg(&log)
                .arg("--log-format")
                .arg("json")
                .args(["start", &plan.id])
                .status()
                .map_err(|e| fail(format!("running {}: {e}", bin.display())))?;
            if !st.success() {
                return Err(fail(format!(
                    "{} start failed: {}",
                    bin.display(),
                    last_log_error(&log)
                )));
            }
            let cgroup = capsa_runtime::cgroups::Layout::detect()
                .and_then(|l| l.place(Some(Path::new(&plan.cgroups_path)), &plan.id))
                .unwrap_or_default();
            let start = capsa_runtime::procfs::start_time(pid).unwrap_or(0);
            Ok((Started { pid, start, cgroup }, None))
        }
    }
}

/// The last error message of a runc JSON log.
fn last_log_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error" || v["level"] == "fatal")
        .and_then(|v| v["msg"].as_str().map(str::to_string))
        .unwrap_or_else(|| "see its log".into())
}

/// Brings `lo` up in the network namespace of process `pid`, from a
/// thread (setns of a network namespace is per thread).
fn bring_up_loopback(pid: i32) -> Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .with_context(|| format!("open /proc/{pid}/ns/net"))?;
    std::thread::spawn(move || -> Result<()> {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .context("setns into the container's network namespace")?;
        crate::sys::loopback_up().context("bringing up lo")?;
        Ok(())
    })
    .join()
    .map_err(|_| anyhow!("bringing up lo: the thread panicked"))?
}

/// The initial client of the monitor: the command that launched it.
pub struct Client {
    /// The launcher's end of the link.
    pub link: OwnedFd,
    /// Receives the container's stdout (a copy of the command's).
    pub out: Option<OwnedFd>,
    /// Receives the container's stderr.
    pub err: Option<OwnedFd>,
    /// The command writes stdin itself (it was sent the descriptor).
    pub took_stdin: bool,
}

/// Execs the monitor for a launched container. Returns only on failure.
pub fn exec_monitor(plan: &Plan, l: &Launched, client: Option<&Client>) -> anyhow::Error {
    let fd = |f: Option<&OwnedFd>| f.map_or(-1, |f| f.as_raw_fd());
    let (stdin, stdin_once) = match (&l.pty, &l.stdin) {
        (Some(p), _) => (p.as_raw_fd(), false),
        (None, Some(s)) if !client.is_some_and(|c| c.took_stdin) => {
            (s.as_raw_fd(), plan.stdin_once)
        }
        _ => (-1, false),
    };
    let mut args: Vec<String> = vec![
        "capsa-monitor".into(),
        format!("dir={}", plan.dir.display()),
        format!("id={}", plan.id),
        format!("pid={}", l.started.pid),
        format!("out={}", fd(l.out.as_ref())),
        format!("err={}", fd(l.err.as_ref())),
        format!("pty={}", fd(l.pty.as_ref())),
        format!("stdin={stdin}"),
        format!("stdin-once={}", stdin_once as u8),
        format!("exe={}", plan.exe.display()),
        format!("root={}", plan.root.display()),
        format!("listen={}", l.listener.as_raw_fd()),
    ];
    if let Some((size, files)) = plan.log {
        args.push(format!("log={}-json.log", plan.id));
        args.push(format!("max-size={size}"));
        args.push(format!("max-file={files}"));
    }
    let mut pass = vec![
        fd(l.out.as_ref()),
        fd(l.err.as_ref()),
        fd(l.pty.as_ref()),
        stdin,
        l.listener.as_raw_fd(),
    ];
    if let Some(c) = client {
        args.push(format!("link={}", c.link.as_raw_fd()));
        args.push(format!("client-out={}", fd(c.out.as_ref())));
        args.push(format!("client-err={}", fd(c.err.as_ref())));
        pass.extend([c.link.as_raw_fd(), fd(c.out.as_ref()), fd(c.err.as_ref())]);
    }
    for f in pass.into_iter().filter(|&f| f >= 0) {
        if let Err(e) = crate::sys::keep_across_exec(f) {
            return anyhow!("fcntl({f}, F_SETFD): {e}");
        }
    }
    let cargs: Vec<CString> = match args.into_iter().map(CString::new).collect() {
        Ok(v) => v,
        Err(e) => return anyhow!("monitor arguments: {e}"),
    };
    let path = match CString::new(plan.monitor.as_os_str().as_encoded_bytes()) {
        Ok(p) => p,
        Err(e) => return anyhow!("monitor path: {e}"),
    };
    match nix::unistd::execv(&path, &cargs) {
        Err(e) => anyhow!("exec {}: {e}", plan.monitor.display()),
    }
}

/// A message of the launcher to the command.
#[derive(Debug, Serialize, Deserialize)]
enum Report {
    Started(Started),
    Failed { code: u8, message: String },
}

/// A launched container as the command sees it.
pub struct Spawned {
    /// The launcher's pid (the monitor's, once it execs).
    pub launcher: Pid,
    /// The link to the monitor: `exit N` arrives on it.
    pub link: OwnedFd,
    /// The container's process.
    pub started: Started,
    /// The container's stdin (pipe write end or pty master), when asked for.
    pub stdin: Option<OwnedFd>,
}

/// What the command wants of the monitor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Attach {
    /// Send the container's stdout to our stdout.
    pub stdout: bool,
    /// Send the container's stderr to our stderr.
    pub stderr: bool,
    /// We write the container's stdin (or need the pty master).
    pub stdin: bool,
}

/// Forks the launcher. The caller must be single-threaded and hold no
/// database connection it would mind sharing (the child never uses it).
pub fn spawn(plan: &Plan, attach: Attach) -> Result<std::result::Result<Spawned, LaunchError>> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair")?;
    match crate::sys::fork().context("fork")? {
        nix::unistd::ForkResult::Child => {
            drop(ours);
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                launcher(plan, theirs, attach)
            }))
            .unwrap_or(125);
            crate::sys::exit_now(code)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            let mut buf = vec![0u8; 64 * 1024];
            let (n, fd) = recv_with_fd(ours.as_raw_fd(), &mut buf)?;
            if n == 0 {
                let _ = nix::sys::wait::waitpid(child, None);
                bail!("the container's launcher exited without a word");
            }
            let report: Report = serde_json::from_slice(&buf[..n]).context("launcher report")?;
            match report {
                Report::Started(started) => Ok(Ok(Spawned {
                    launcher: child,
                    link: ours,
                    started,
                    stdin: fd,
                })),
                Report::Failed { code, message } => {
                    let _ = nix::sys::wait::waitpid(child, None);
                    Ok(Err(LaunchError { code, message }))
                }
            }
        }
    }
}

/// The launcher: returns its exit code only when it could not exec the monitor.
fn launcher(plan: &Plan, link: OwnedFd, attach: Attach) -> i32 {
    crate::sys::close_fds_except(&[link.as_raw_fd()]);
    let report = |r: &Report, fd: Option<RawFd>| {
        let data = serde_json::to_vec(r).unwrap_or_default();
        let fds: Vec<RawFd> = fd.into_iter().collect();
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [std::io::IoSlice::new(&data)];
        let _ = sendmsg::<()>(
            link.as_raw_fd(),
            &iov,
            if fds.is_empty() { &[] } else { &cmsg },
            MsgFlags::empty(),
            None,
        );
    };
    let fail = |e: LaunchError| {
        report(
            &Report::Failed {
                code: e.code,
                message: e.message,
            },
            None,
        );
        e.code as i32
    };
    if let Err(e) = nix::unistd::setsid() {
        return fail(LaunchError::capsa(format!("setsid: {e}")));
    }
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        return fail(LaunchError::capsa(format!(
            "prctl(PR_SET_CHILD_SUBREAPER): {e}"
        )));
    }
    let client_out = attach.stdout.then(|| dup(std::io::stdout()).ok()).flatten();
    let client_err = (attach.stderr && !plan.tty)
        .then(|| dup(std::io::stderr()).ok())
        .flatten();
    let launched = match launch_here(plan) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let give = if attach.stdin {
        launched.pty.as_ref().or(launched.stdin.as_ref())
    } else {
        None
    };
    report(
        &Report::Started(launched.started.clone()),
        give.map(|f| f.as_raw_fd()),
    );
    // The command records the container, then says go. If it is gone
    // before that, nobody knows of this process: it must not run.
    if !go_received(&link) {
        let _ = match &plan.runtime {
            RuntimeChoice::Builtin(root) => capsa_runtime::Runtime::new(root)
                .delete(&plan.id, true)
                .map_err(anyhow::Error::from),
            RuntimeChoice::External { bin, root } => Runtime::External {
                bin: bin.clone(),
                root: root.clone(),
            }
            .delete(&plan.id),
        };
        return 125;
    }
    let client = Client {
        link,
        out: client_out,
        err: client_err,
        took_stdin: attach.stdin,
    };
    let e = exec_monitor(plan, &launched, Some(&client));
    // No monitor: the container must not run unwatched.
    let _ = nix::sys::signal::kill(
        Pid::from_raw(launched.started.pid),
        nix::sys::signal::SIGKILL,
    );
    eprintln!("capsa: {e}");
    125
}

/// The word the command sends the launcher once it has recorded the
/// container as running.
const GO: &[u8] = b"go";

/// Tells the launcher that the container is recorded: it may exec the
/// monitor. A launcher killed meanwhile cannot hear it; the container then
/// runs without a monitor, which the record allows for (as after a killed
/// monitor), so that is no error.
pub fn confirm(spawned: &Spawned) {
    let _ = nix::sys::socket::send(spawned.link.as_raw_fd(), GO, MsgFlags::MSG_NOSIGNAL);
}

/// Waits for the command's go; false when it is gone without one.
fn go_received(link: &OwnedFd) -> bool {
    let mut buf = [0u8; 8];
    loop {
        match nix::sys::socket::recv(link.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(n) => return &buf[..n] == GO,
            Err(_) => return false,
        }
    }
}

/// Receives one message and at most one descriptor.
pub fn recv_with_fd(sock: RawFd, buf: &mut [u8]) -> Result<(usize, Option<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r.context("recvmsg")?,
        }
    };
    let mut fd = None;
    for c in msg.cmsgs().context("control messages")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for (i, f) in fds.into_iter().enumerate() {
                let owned = capsa_runtime::sys::own_received_fd(f);
                if i == 0 {
                    fd = Some(owned);
                }
            }
        }
    }
    Ok((msg.bytes, fd))
}
