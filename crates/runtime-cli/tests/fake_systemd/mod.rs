//! A fake systemd for the `--systemd-cgroup` tests, on a private bus: a
//! `dbus-daemon` of its own (on a unix socket in a temporary directory)
//! and, on a thread of the test, a service owning `org.freedesktop.systemd1`
//! that answers the manager's StartTransientUnit, StopUnit, ResetFailedUnit,
//! SetUnitProperties and GetUnit, the Version and the units' ControlGroup
//! properties, and records every call with its properties.
//!
//! It makes a scope's cgroup as systemd does, in the hierarchies systemd
//! tracks processes in (the cgroup2 one and `name=systemd`), under a root
//! cgroup of its own beneath the test's (beneath its parent on pure v2
//! hosts, with the controllers enabled down to the scopes), reported
//! through ControlGroup as a systemd running in a container would, moves
//! the scope's pids there through cgroup.procs, and removes it on
//! StopUnit. It never touches a cgroup it did not create; on drop it
//! removes its whole root.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capsa_runtime::cgroups::{Hierarchy, Layout, Mode, UNIFIED};
use zbus::blocking::{Connection, MessageIterator};
use zbus::message::Type as MessageType;
use zbus::zvariant::{ObjectPath, OwnedValue, Value};

const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// One call the fake received.
#[derive(Clone, Debug)]
pub struct Call {
    /// The method ("StartTransientUnit", "StopUnit", ...).
    pub method: String,
    /// The unit it named.
    pub unit: String,
    /// The properties it carried (StartTransientUnit, SetUnitProperties).
    pub props: Vec<(String, OwnedValue)>,
}

impl Call {
    /// The last value given for property `name`.
    pub fn prop(&self, name: &str) -> Option<&OwnedValue> {
        self.props
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// A scope the fake made.
struct Unit {
    /// Its cgroup, relative to the hierarchies' root.
    cgroup: PathBuf,
    /// The directories made for it, outermost first.
    made: Vec<PathBuf>,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    units: BTreeMap<String, Unit>,
    /// The result the next start job ends with ("done" when `None`).
    next_result: Option<String>,
    jobs: u32,
}

/// The fake systemd and its bus; all goes away on drop.
pub struct FakeSystemd {
    /// Holds the bus socket and the daemon's configuration.
    _dir: tempfile::TempDir,
    daemon: Child,
    address: String,
    state: Arc<Mutex<State>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The fake's root cgroup (relative to each hierarchy's root).
    pub root: PathBuf,
    /// Every hierarchy of the host.
    pub hierarchies: Vec<Hierarchy>,
}

impl FakeSystemd {
    /// Starts the bus and the fake; `None` (having said why) when this host
    /// cannot run it: not root, or no dbus-daemon.
    pub fn start(name: &str) -> Option<FakeSystemd> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: the fake systemd makes cgroups: this test needs root");
            return None;
        }
        if Command::new("dbus-daemon")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED: dbus-daemon is missing (apt-get install dbus)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("capsa-fake-systemd-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="method_return"/>
    <allow send_type="signal"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="signal"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // It says it cannot raise its descriptor limit (no CAP_SYS_RESOURCE).
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The address is printed once the daemon listens.
        let mut line = String::new();
        std::io::BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(!address.is_empty(), "dbus-daemon printed no address");

        let layout = Layout::detect().unwrap();
        let root = own_cgroup(&layout).join(format!("capsa-sdtest-{name}"));
        let conn = zbus::blocking::connection::Builder::address(address.as_str())
            .unwrap()
            .build()
            .unwrap();
        conn.request_name("org.freedesktop.systemd1").unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let service = Service {
            conn: conn.clone(),
            state: state.clone(),
            root: root.clone(),
            tracking: tracking(&layout),
        };
        let thread = std::thread::spawn(move || service.serve());
        Some(FakeSystemd {
            _dir: dir,
            daemon,
            address,
            state,
            thread: Some(thread),
            root,
            hierarchies: layout.hierarchies,
        })
    }

    /// The bus address, for DBUS_SYSTEM_BUS_ADDRESS.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Every call received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls of `method` naming `unit`.
    pub fn calls_of(&self, method: &str, unit: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.unit == unit)
            .collect()
    }

    /// Makes the next start job end with `result` instead of "done".
    pub fn fail_next_start(&self, result: &str) {
        self.state.lock().unwrap().next_result = Some(result.to_string());
    }

    /// Whether the fake still has unit `unit`.
    pub fn has_unit(&self, unit: &str) -> bool {
        self.state.lock().unwrap().units.contains_key(unit)
    }

    /// The directory of `cgroup` (relative to the hierarchies' root) in
    /// hierarchy `h`.
    pub fn dir(h: &Hierarchy, cgroup: &Path) -> PathBuf {
        h.mount_point
            .join(cgroup.strip_prefix(&h.root).unwrap_or(cgroup))
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Whatever is left of the fake's cgroup root, in every hierarchy
        // (the runtime makes the scope's directory in the hierarchies the
        // fake does not track).
        for h in &self.hierarchies {
            remove_tree(&Self::dir(h, &self.root));
        }
    }
}

/// The test's own cgroup in the first hierarchy the fake tracks; on pure
/// v2 hosts its parent, which (holding no process) can pass controllers
/// on to the slices and scopes made beneath it.
fn own_cgroup(layout: &Layout) -> PathBuf {
    let first = tracking(layout)
        .into_iter()
        .next()
        .expect("a cgroup hierarchy");
    let own = layout
        .own
        .get(&first.name)
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/"));
    match layout.mode() {
        Some(Mode::V2) => own.parent().map_or(own.clone(), Path::to_path_buf),
        _ => own,
    }
}

/// The hierarchies systemd keeps its units' cgroups in: the cgroup2 one
/// and `name=systemd` (else the first there is).
fn tracking(layout: &Layout) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = layout
        .hierarchies
        .iter()
        .filter(|h| h.name == UNIFIED || h.name == "name=systemd")
        .cloned()
        .collect();
    if out.is_empty() {
        out.extend(layout.hierarchies.first().cloned());
    }
    out
}

/// Removes cgroup directory `dir` and everything beneath it, killing what
/// still runs there.
fn remove_tree(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let mut all = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if let Ok(entries) = std::fs::read_dir(&all[i]) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    all.push(e.path());
                }
            }
        }
        i += 1;
    }
    for d in all.iter().rev() {
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(d).is_err() && d.exists() && Instant::now() < deadline {
            for pid in procs(d) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// systemd's slice name → cgroup path ("a-b.slice" → "a.slice/a-b.slice").
fn slice_path(slice: &str) -> PathBuf {
    let base = slice.strip_suffix(".slice").unwrap_or(slice);
    if base == "-" {
        return PathBuf::new();
    }
    let mut path = PathBuf::new();
    let parts: Vec<&str> = base.split('-').collect();
    for i in 0..parts.len() {
        path.push(format!("{}.slice", parts[..=i].join("-")));
    }
    path
}

/// A unit's object path, escaped as systemd does (`_2e` for '.').
fn unit_path(unit: &str) -> String {
    let mut p = String::from("/org/freedesktop/systemd1/unit/");
    for b in unit.bytes() {
        if b.is_ascii_alphanumeric() {
            p.push(b as char);
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    p
}

/// The serving half, on its own thread.
struct Service {
    conn: Connection,
    state: Arc<Mutex<State>>,
    root: PathBuf,
    tracking: Vec<Hierarchy>,
}

type Props = Vec<(String, OwnedValue)>;

/// What a method call gets back.
enum Answer {
    /// A job was queued: reply with its path, then JobRemoved with this
    /// result.
    Job(String, String),
    /// An object path.
    Path(String),
    /// A variant.
    Variant(OwnedValue),
    /// Nothing.
    Empty,
    /// A D-Bus error with its message.
    Error(&'static str, String),
}

impl Service {
    fn serve(self) {
        for msg in MessageIterator::from(&self.conn) {
            let Ok(msg) = msg else { break };
            let header = msg.header();
            if header.message_type() != MessageType::MethodCall {
                continue;
            }
            let member = header.member().map(|m| m.to_string()).unwrap_or_default();
            let path = header.path().map(|p| p.to_string()).unwrap_or_default();
            let answer = self.answer(&msg, &member, &path);
            let sent = match &answer {
                Answer::Job(job, _) => self
                    .conn
                    .reply(&header, &ObjectPath::try_from(job.as_str()).unwrap()),
                Answer::Path(p) => self
                    .conn
                    .reply(&header, &ObjectPath::try_from(p.as_str()).unwrap()),
                Answer::Variant(v) => self.conn.reply(&header, &Value::from(v.clone())),
                Answer::Empty => self.conn.reply(&header, &()),
                Answer::Error(name, text) => self.conn.reply_error(&header, *name, &(text,)),
            };
            if sent.is_err() {
                break;
            }
            // As systemd: the job's end comes after the reply naming it.
            if let Answer::Job(job, result) = answer {
                let id: u32 = job.rsplit('/').next().unwrap().parse().unwrap();
                let unit = self
                    .state
                    .lock()
                    .unwrap()
                    .calls
                    .last()
                    .unwrap()
                    .unit
                    .clone();
                let _ = self.conn.emit_signal(
                    None::<&str>,
                    MANAGER_PATH,
                    MANAGER,
                    "JobRemoved",
                    &(
                        id,
                        ObjectPath::try_from(job.as_str()).unwrap(),
                        unit,
                        result,
                    ),
                );
            }
        }
    }

    fn record(&self, method: &str, unit: &str, props: Props) {
        self.state.lock().unwrap().calls.push(Call {
            method: method.into(),
            unit: unit.into(),
            props,
        });
    }

    fn new_job(&self) -> String {
        let mut s = self.state.lock().unwrap();
        s.jobs += 1;
        format!("/org/freedesktop/systemd1/job/{}", s.jobs)
    }

    fn no_such_unit(unit: &str) -> Answer {
        Answer::Error(
            "org.freedesktop.systemd1.NoSuchUnit",
            format!("Unit {unit} not loaded."),
        )
    }

    fn answer(&self, msg: &zbus::Message, member: &str, path: &str) -> Answer {
        let body = msg.body();
        match member {
            "StartTransientUnit" => {
                type Aux = Vec<(String, Vec<(String, OwnedValue)>)>;
                let (unit, _mode, props, _aux): (String, String, Props, Aux) =
                    body.deserialize().unwrap();
                self.record(member, &unit, props.clone());
                self.start(&unit, &props)
            }
            "StopUnit" => {
                let (unit, _mode): (String, String) = body.deserialize().unwrap();
                self.record(member, &unit, Vec::new());
                self.stop(&unit)
            }
            "ResetFailedUnit" | "GetUnit" => {
                let (unit,): (String,) = body.deserialize().unwrap();
                self.record(member, &unit, Vec::new());
                if !self.state.lock().unwrap().units.contains_key(&unit) {
                    return Self::no_such_unit(&unit);
                }
                match member {
                    "GetUnit" => Answer::Path(unit_path(&unit)),
                    _ => Answer::Empty,
                }
            }
            "SetUnitProperties" => {
                let (unit, _runtime, props): (String, bool, Props) = body.deserialize().unwrap();
                self.record(member, &unit, props);
                if !self.state.lock().unwrap().units.contains_key(&unit) {
                    return Self::no_such_unit(&unit);
                }
                Answer::Empty
            }
            "Get" => {
                let (iface, name): (String, String) = body.deserialize().unwrap();
                if path == MANAGER_PATH && iface == MANAGER && name == "Version" {
                    return Answer::Variant(
                        OwnedValue::try_from(Value::from("252.30-fake")).unwrap(),
                    );
                }
                let state = self.state.lock().unwrap();
                let unit = state.units.iter().find(|(u, _)| unit_path(u) == path);
                match (unit, iface.as_str(), name.as_str()) {
                    (
                        Some((_, u)),
                        "org.freedesktop.systemd1.Scope" | "org.freedesktop.systemd1.Unit",
                        "ControlGroup",
                    ) => Answer::Variant(
                        OwnedValue::try_from(Value::from(u.cgroup.display().to_string())).unwrap(),
                    ),
                    _ => Answer::Error(
                        "org.freedesktop.DBus.Error.UnknownProperty",
                        format!("{path}: no property {iface}.{name}"),
                    ),
                }
            }
            other => Answer::Error(
                "org.freedesktop.DBus.Error.UnknownMethod",
                format!("the fake systemd has no method {other}"),
            ),
        }
    }

    fn start(&self, unit: &str, props: &Props) -> Answer {
        if self.state.lock().unwrap().units.contains_key(unit) {
            return Answer::Error(
                "org.freedesktop.systemd1.UnitExists",
                format!("Unit {unit} was already loaded or has a fragment file."),
            );
        }
        let job = self.new_job();
        let result = self.state.lock().unwrap().next_result.take();
        if let Some(result) = result {
            return Answer::Job(job, result);
        }
        let get = |name: &str| props.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
        let slice = get("Slice")
            .and_then(|v| String::try_from(v.clone()).ok())
            .unwrap_or_else(|| "system.slice".into());
        let pids: Vec<u32> = get("PIDs")
            .and_then(|v| Vec::<u32>::try_from(v.clone()).ok())
            .unwrap_or_default();
        let cgroup = Path::new("/")
            .join(self.root.strip_prefix("/").unwrap_or(&self.root))
            .join(slice_path(&slice))
            .join(unit);
        let mut made = Vec::new();
        for h in &self.tracking {
            let dir = FakeSystemd::dir(h, &cgroup);
            let mut missing = Vec::new();
            let mut d = dir.as_path();
            while !d.exists() {
                missing.push(d.to_path_buf());
                d = d.parent().unwrap();
            }
            for m in missing.into_iter().rev() {
                std::fs::create_dir(&m).unwrap();
                // As systemd does above a delegated scope: the slices pass
                // every controller they have on (none on hybrid hosts).
                if m != dir {
                    let have = std::fs::read_to_string(m.join("cgroup.controllers"));
                    for c in have.iter().flat_map(|h| h.split_whitespace()) {
                        std::fs::write(m.join("cgroup.subtree_control"), format!("+{c}")).unwrap();
                    }
                }
                made.push(m);
            }
            for pid in &pids {
                std::fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
            }
        }
        self.state
            .lock()
            .unwrap()
            .units
            .insert(unit.to_string(), Unit { cgroup, made });
        Answer::Job(job, "done".into())
    }

    fn stop(&self, unit: &str) -> Answer {
        let Some(u) = self.state.lock().unwrap().units.remove(unit) else {
            return Self::no_such_unit(unit);
        };
        // systemd kills what is left in the scope, then removes its cgroup.
        for h in &self.tracking {
            remove_tree(&FakeSystemd::dir(h, &u.cgroup));
        }
        for d in u.made.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        Answer::Job(self.new_job(), "done".into())
    }
}
