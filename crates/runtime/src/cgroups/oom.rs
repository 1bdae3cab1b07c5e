//! Watching a memory cgroup for OOM kills: on v1 an eventfd registered for
//! memory.oom_control through cgroup.event_control, on v2 the kernel's
//! change notification of memory.events and its `oom_kill` counter.

use std::fs::File;
use std::io::{Read, Seek};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::{stats, write_file};
use crate::error::{Error, IoContext, Result};

/// A watch on a container's memory cgroup for OOM kills. Poll
/// [`OomWatcher::fd`] for [`OomWatcher::events`], then call
/// [`OomWatcher::take`].
#[derive(Debug)]
pub struct OomWatcher {
    how: How,
}

#[derive(Debug)]
enum How {
    V1 {
        efd: EventFd,
        /// memory.oom_control, which must stay open for the registration.
        _control: File,
        /// cgroup.event_control: once gone, so is the cgroup.
        dir: PathBuf,
    },
    V2 {
        events: File,
        path: PathBuf,
        seen: u64,
    },
}

impl OomWatcher {
    /// Registers an eventfd for OOM notifications of the v1 memory cgroup `dir`.
    pub(super) fn v1(dir: &Path) -> Result<OomWatcher> {
        let path = dir.join("memory.oom_control");
        let control = File::open(&path).ctx("open", &path)?;
        let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| Error::sys("eventfd", "OOM notification", e))?;
        write_file(
            dir,
            "cgroup.event_control",
            &format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
            "events",
        )?;
        Ok(OomWatcher {
            how: How::V1 {
                efd,
                _control: control,
                dir: dir.to_path_buf(),
            },
        })
    }

    /// Opens memory.events of the v2 cgroup `dir`.
    pub(super) fn v2(dir: &Path) -> Result<OomWatcher> {
        let path = dir.join("memory.events");
        let events = File::open(&path).ctx("open", &path)?;
        let mut w = OomWatcher {
            how: How::V2 {
                events,
                path,
                seen: 0,
            },
        };
        w.take()?;
        Ok(w)
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.how {
            How::V1 { efd, .. } => efd.as_fd(),
            How::V2 { events, .. } => events.as_fd(),
        }
    }

    /// The poll events that mean "call [`OomWatcher::take`]".
    pub fn events(&self) -> PollFlags {
        match &self.how {
            How::V1 { .. } => PollFlags::POLLIN,
            How::V2 { .. } => PollFlags::POLLPRI,
        }
    }

    /// How many OOM kills happened since the last call (0 when woken for
    /// something else, such as the cgroup going away).
    pub fn take(&mut self) -> Result<u64> {
        match &mut self.how {
            How::V1 { efd, dir, .. } => match efd.read() {
                // The kernel also signals the eventfd when the cgroup is removed.
                Ok(n) if dir.join("cgroup.event_control").exists() => Ok(n),
                Ok(_) | Err(Errno::EAGAIN) => Ok(0),
                Err(e) => Err(Error::sys("read", "OOM eventfd", e)),
            },
            How::V2 { events, path, seen } => {
                let mut text = String::new();
                events.rewind().ctx("seek", &*path)?;
                events.read_to_string(&mut text).ctx("read", &*path)?;
                let kills = stats::parse_keyed(&text)
                    .get("oom_kill")
                    .copied()
                    .unwrap_or(0);
                let new = kills.saturating_sub(*seen);
                *seen = kills;
                Ok(new)
            }
        }
    }
}
