//! Talking to systemd's manager over the system bus (zbus): starting the
//! container's transient scope and waiting for its job, reading the unit's
//! cgroup, changing its properties, stopping it.

use std::path::Path;
use std::time::Duration;

use futures_lite::StreamExt as _;
use zbus::blocking::Connection;
use zbus::message::Type as MessageType;
use zbus::zvariant::{self, OwnedObjectPath, OwnedValue};
use zbus::{MatchRule, MessageStream};

use super::props::{Property, Value};
use crate::error::{Error, Result};

/// systemd's bus name.
const SYSTEMD: &str = "org.freedesktop.systemd1";
/// The manager's object.
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
/// The manager's interface.
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// The interface of scope units (holding ControlGroup).
const SCOPE: &str = "org.freedesktop.systemd1.Scope";
/// The standard properties interface.
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
/// The variable naming the system bus when it is not the default one.
const BUS_VARIABLE: &str = "DBUS_SYSTEM_BUS_ADDRESS";
/// The system bus when the variable is not set.
const DEFAULT_BUS: &str = "unix:path=/run/dbus/system_bus_socket";

/// How long a method call or a job may take (as runc waits).
const TIMEOUT: Duration = Duration::from_secs(30);

/// Refuses `--systemd-cgroup` where there is no systemd to ask: systemd is
/// not running (no /run/systemd/system) and no system bus is named
/// explicitly (DBUS_SYSTEM_BUS_ADDRESS).
pub fn check_available() -> Result<()> {
    if Path::new("/run/systemd/system").is_dir() || explicit_bus().is_some() {
        return Ok(());
    }
    Err(Error::Unsupported(format!(
        "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system) and no \
         system bus is given ({BUS_VARIABLE} is not set); leave the flag out to manage cgroups \
         through the cgroup file system"
    )))
}

fn explicit_bus() -> Option<String> {
    std::env::var(BUS_VARIABLE).ok().filter(|a| !a.is_empty())
}

/// A connection to systemd's manager.
pub struct Bus {
    conn: Connection,
}

/// The name of a D-Bus error reply, if `e` is one.
fn error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
        zbus::Error::FDO(e) => Some(zbus::DBusError::name(e.as_ref()).to_string()),
        _ => None,
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("systemd: {what}: {e}"))
}

impl Bus {
    /// Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS, else the
    /// default socket), after [`check_available`].
    pub fn connect() -> Result<Bus> {
        check_available()?;
        let address = explicit_bus().unwrap_or_else(|| DEFAULT_BUS.into());
        let conn = zbus::blocking::connection::Builder::system()
            .and_then(|b| b.method_timeout(TIMEOUT).build())
            .map_err(|e| {
                Error::Other(format!(
                    "--systemd-cgroup: cannot connect to the system bus at {address}: {e}"
                ))
            })?;
        Ok(Bus { conn })
    }

    fn call<B>(
        &self,
        path: &str,
        iface: &str,
        method: &str,
        body: &B,
    ) -> zbus::Result<zbus::Message>
    where
        B: serde::Serialize + zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(SYSTEMD), path, Some(iface), method, body)
    }

    /// systemd's version number ("252.17-1" and "v245.4" are 252 and 245).
    pub fn version(&self) -> Result<u32> {
        let v = self.property(MANAGER_PATH, MANAGER, "Version")?;
        let digits: String = v
            .trim_start_matches(['"', 'v'])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .map_err(|_| failed("reading its version", format!("{v:?} is not a version")))
    }

    /// A string property of an object of systemd.
    fn property(&self, path: &str, iface: &str, name: &str) -> Result<String> {
        let what = || format!("reading {iface}.{name} of {path}");
        let reply = self
            .call(path, PROPERTIES, "Get", &(iface, name))
            .map_err(|e| failed(&what(), e))?;
        let value: OwnedValue = reply.body().deserialize().map_err(|e| failed(&what(), e))?;
        String::try_from(value).map_err(|e| failed(&what(), e))
    }

    /// Starts transient unit `unit` with `props` and waits for its job. A
    /// unit of that name left over in the failed state is reset and the
    /// start tried once more, as runc does.
    pub fn start_unit(&self, unit: &str, props: &[Property]) -> Result<()> {
        let what = format!("starting unit {unit}");
        let body = (
            unit,
            "replace",
            wire(props),
            Vec::<(&str, Vec<(&str, zvariant::Value<'_>)>)>::new(),
        );
        let start = || {
            self.call(MANAGER_PATH, MANAGER, "StartTransientUnit", &body)
                .and_then(|reply| reply.body().deserialize::<OwnedObjectPath>())
        };
        let result = match self.run_job(start) {
            Err(JobError::Call(e))
                if error_name(&e).as_deref() == Some("org.freedesktop.systemd1.UnitExists") =>
            {
                let _ = self.reset_failed(unit);
                self.run_job(start)
            }
            other => other,
        };
        match result {
            Ok(r) if r == "done" => Ok(()),
            Ok(r) => {
                let _ = self.reset_failed(unit);
                Err(Error::Other(format!(
                    "systemd: {what}: its job ended {r:?}, not \"done\" (journalctl -u {unit} \
                     may say why)"
                )))
            }
            Err(e) => {
                if matches!(e, JobError::Timeout) {
                    let _ = self.reset_failed(unit);
                }
                Err(e.into_error(&what))
            }
        }
    }

    /// Stops unit `unit` and waits for it, then lets systemd forget it
    /// (ResetFailedUnit). A unit systemd no longer has (a scope goes away
    /// with its last process) is no error.
    pub fn stop_unit(&self, unit: &str) -> Result<()> {
        let what = format!("stopping unit {unit}");
        let stop = || {
            self.call(MANAGER_PATH, MANAGER, "StopUnit", &(unit, "replace"))
                .and_then(|reply| reply.body().deserialize::<OwnedObjectPath>())
        };
        let result = match self.run_job(stop) {
            Ok(r) if r != "done" => {
                tracing::warn!("systemd: {what}: its job ended {r:?}");
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(JobError::Call(e))
                if error_name(&e).as_deref() == Some("org.freedesktop.systemd1.NoSuchUnit") =>
            {
                Ok(())
            }
            Err(e) => Err(e.into_error(&what)),
        };
        let _ = self.reset_failed(unit);
        result
    }

    /// ResetFailedUnit: systemd forgets a unit that failed.
    pub fn reset_failed(&self, unit: &str) -> Result<()> {
        match self.call(MANAGER_PATH, MANAGER, "ResetFailedUnit", &(unit,)) {
            Ok(_) => Ok(()),
            Err(e) if error_name(&e).as_deref() == Some("org.freedesktop.systemd1.NoSuchUnit") => {
                Ok(())
            }
            Err(e) => Err(failed(&format!("resetting unit {unit}"), e)),
        }
    }

    /// SetUnitProperties for the unit's runtime (not persistent) settings.
    pub fn set_properties(&self, unit: &str, props: &[Property]) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        self.call(
            MANAGER_PATH,
            MANAGER,
            "SetUnitProperties",
            &(unit, true, wire(props)),
        )
        .map(drop)
        .map_err(|e| failed(&format!("setting properties of unit {unit}"), e))
    }

    /// The unit's cgroup ("/system.slice/capsa-x.scope"), relative to the
    /// root of the cgroup hierarchies as systemd sees them.
    pub fn control_group(&self, unit: &str) -> Result<String> {
        let path: OwnedObjectPath = self
            .call(MANAGER_PATH, MANAGER, "GetUnit", &(unit,))
            .and_then(|r| r.body().deserialize())
            .map_err(|e| failed(&format!("looking up unit {unit}"), e))?;
        self.property(path.as_str(), SCOPE, "ControlGroup")
    }

    /// Runs `call` (which queues a job and returns its path) and waits for
    /// the JobRemoved signal of that job; returns the job's result. The
    /// signal is subscribed to before the call, so that it cannot be missed.
    fn run_job(
        &self,
        call: impl FnOnce() -> zbus::Result<OwnedObjectPath>,
    ) -> Result<String, JobError> {
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(SYSTEMD)
            .and_then(|b| b.path(MANAGER_PATH))
            .and_then(|b| b.interface(MANAGER))
            .and_then(|b| b.member("JobRemoved"))
            .map_err(JobError::Call)?
            .build();
        let mut signals = async_io::block_on(MessageStream::for_match_rule(
            rule,
            self.conn.inner(),
            Some(64),
        ))
        .map_err(JobError::Call)?;
        let job = call().map_err(JobError::Call)?;
        let wait = async {
            while let Some(msg) = signals.next().await {
                let msg = msg.map_err(JobError::Call)?;
                let Ok((_, path, _, result)) = msg
                    .body()
                    .deserialize::<(u32, OwnedObjectPath, String, String)>()
                else {
                    continue;
                };
                if path == job {
                    return Ok(result);
                }
            }
            Err(JobError::Closed)
        };
        let timeout = async {
            async_io::Timer::after(TIMEOUT).await;
            Err(JobError::Timeout)
        };
        async_io::block_on(futures_lite::future::or(wait, timeout))
    }
}

/// Why waiting for a job failed.
enum JobError {
    /// A call to systemd (or to the bus) failed.
    Call(zbus::Error),
    /// The bus connection ended before the job did.
    Closed,
    /// The job did not end in time.
    Timeout,
}

impl JobError {
    fn into_error(self, what: &str) -> Error {
        match self {
            JobError::Call(e) => failed(what, e),
            JobError::Closed => failed(what, "the bus connection ended before the job did"),
            JobError::Timeout => failed(
                what,
                format!("its job did not end within {} s", TIMEOUT.as_secs()),
            ),
        }
    }
}

/// Properties as D-Bus `a(sv)`.
fn wire(props: &[Property]) -> Vec<(&str, zvariant::Value<'_>)> {
    props
        .iter()
        .map(|(name, v)| (name.as_str(), value(v)))
        .collect()
}

fn value(v: &Value) -> zvariant::Value<'_> {
    match v {
        Value::Str(s) => zvariant::Value::from(s.as_str()),
        Value::Bool(b) => zvariant::Value::from(*b),
        Value::U64(n) => zvariant::Value::from(*n),
        Value::U32s(list) => zvariant::Value::from(list.clone()),
        Value::Bytes(bytes) => zvariant::Value::from(bytes.clone()),
        Value::DeviceAllow(list) => zvariant::Value::from(list.clone()),
        Value::U8(n) => zvariant::Value::from(*n),
        Value::I16(n) => zvariant::Value::from(*n),
        Value::U16(n) => zvariant::Value::from(*n),
        Value::I32(n) => zvariant::Value::from(*n),
        Value::U32(n) => zvariant::Value::from(*n),
        Value::I64(n) => zvariant::Value::from(*n),
        Value::F64(n) => zvariant::Value::from(*n),
        Value::Array(sig, items) => {
            // The parser only makes arrays of scalars of this signature.
            let sig =
                zvariant::Signature::try_from(sig.as_str()).unwrap_or(zvariant::Signature::Str);
            let mut array = zvariant::Array::new(&sig);
            for item in items {
                let _ = array.append(value(item));
            }
            zvariant::Value::Array(array)
        }
    }
}
