//! With `vfork.rs` (the spawn itself), `clone3.rs` (the spawn into a cgroup), `fdpass.rs`
//! (descriptors over the channel) and `process/channel.rs` (the channel's registrations with
//! the runtime), the only modules with `unsafe`: what a child does between its clone and
//! `exec`, signals to process groups, waiting for a child (`pidfd_open`, `waitpid`), and the
//! output pumps' non-blocking `read` of a pipe. Linux-only calls are behind
//! `cfg(target_os = "linux")`.
//!
//! Everything in [`ChildSetup::apply`] runs in the child (sharing the parent's memory), where
//! only async-signal-safe functions may be called: no allocation, no locks, no logging. It uses
//! raw `libc` calls on values prepared in the parent.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

use crate::limits::ResourceLimits;

/// What the child does to itself before `exec`, prepared in the parent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildSetup {
    /// The inherited end of the channel, to become `target_fd`; `-1` for none.
    pub(crate) channel_fd: RawFd,
    pub(crate) target_fd: RawFd,
    /// The supervisor's pid, to detect that it died before `PR_SET_PDEATHSIG` was armed.
    pub(crate) parent_pid: libc::pid_t,
    pub(crate) limits: ResourceLimits,
    /// An open `cgroup.procs` of the worker's cgroup (close-on-exec); `-1` for none.
    pub(crate) cgroup_procs_fd: RawFd,
    /// The worker's cgroup directory, open (close-on-exec) for `clone3`'s
    /// `CLONE_INTO_CGROUP` (`clone3.rs`); `-1` for none.
    pub(crate) cgroup_dir_fd: RawFd,
}

impl ChildSetup {
    /// Runs in the child between the clone and `execve` (`vfork.rs`); whether the child is in
    /// its cgroup: created there (`in_cgroup`, `clone3.rs`), or moved there by itself now.
    pub(crate) fn apply(&self, in_cgroup: bool) -> io::Result<bool> {
        let mut joined = in_cgroup;
        if !in_cgroup && self.cgroup_procs_fd >= 0 {
            // Writing "0" moves the writing process. Not fatal: the parent learns whether it
            // worked and falls back to the other layers if the move failed.
            // SAFETY: write is async-signal-safe; the buffer is a static byte string.
            joined = unsafe { libc::write(self.cgroup_procs_fd, b"0".as_ptr().cast(), 1) } == 1;
        }
        #[cfg(target_os = "linux")]
        {
            // SAFETY: prctl and getppid are async-signal-safe.
            unsafe {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl: then nobody would kill us.
                if libc::getppid() != self.parent_pid {
                    libc::_exit(137);
                }
            }
        }
        // SAFETY: dup2/fcntl on fds owned by this (child) process; async-signal-safe.
        unsafe {
            if self.channel_fd < 0 {
                // No channel for this child (command mode).
            } else if self.channel_fd == self.target_fd {
                let flags = libc::fcntl(self.target_fd, libc::F_GETFD);
                if flags < 0
                    || libc::fcntl(self.target_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0
                {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(self.channel_fd, self.target_fd) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let limits = [
            (libc::RLIMIT_AS, self.limits.address_space_bytes),
            (libc::RLIMIT_CPU, self.limits.cpu_seconds),
            (libc::RLIMIT_NOFILE, self.limits.open_files),
        ];
        for (resource, value) in limits {
            if let Some(v) = value {
                let lim = libc::rlimit {
                    rlim_cur: v as libc::rlim_t,
                    rlim_max: v as libc::rlim_t,
                };
                // SAFETY: setrlimit is async-signal-safe; `lim` lives on this stack frame.
                if unsafe { libc::setrlimit(resource, &lim) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(joined)
    }
}

/// A pidfd of our child `pid` (Linux 5.3+), registered with the current runtime's reactor:
/// readable once the process has exited.
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_open(pid: u32) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open has no memory-safety preconditions.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::PIDFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: a new descriptor nobody else owns; an `OwnedFd` keeps it open, and the same, for
    // as long as the `AsyncFd` holds it.
    unsafe {
        let fd = std::os::fd::OwnedFd::from_raw_fd(fd);
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
            .map_err(io::Error::from)
    }
}

/// Reaps our child `pid` if it has exited: its raw wait status, `None` while it runs.
pub(crate) fn try_reap(pid: u32, block: bool) -> io::Result<Option<i32>> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child; `status` is a valid int.
        let r = unsafe { libc::waitpid(pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
        match r {
            0 => return Ok(None),
            r if r > 0 => return Ok(Some(status)),
            _ => {
                let err = io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EINTR) {
                    return Err(err);
                }
            }
        }
    }
}

/// The calling process's pid.
pub(crate) fn current_pid() -> libc::pid_t {
    // SAFETY: getpid cannot fail and has no preconditions.
    unsafe { libc::getpid() }
}

/// Sends `signal` to the process group `pgid`. `Ok(false)` when the group no longer exists.
pub(crate) fn kill_group(pgid: u32, signal: i32) -> io::Result<bool> {
    let pgid = libc::pid_t::try_from(pgid).map_err(|_| io::Error::other("pid out of range"))?;
    if pgid <= 1 {
        return Err(io::Error::other("refusing to signal process group <= 1"));
    }
    // SAFETY: killpg has no memory-safety preconditions.
    if unsafe { libc::killpg(pgid, signal) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Whether any process of group `pgid` still exists (zombies included).
pub(crate) fn group_alive(pgid: u32) -> bool {
    kill_group(pgid, 0).unwrap_or(false)
}

/// Sends `signal` to one process; whether it was delivered.
pub(crate) fn kill_pid(pid: u32, signal: i32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 1 {
        return false;
    }
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Live (not zombie) members of process group `pgid`, read from `/proc` (Linux; empty
/// elsewhere).
pub(crate) fn live_group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // Fields after the command name: state, ppid, pgrp, …
            let mut fields = stat.rsplit(')').next().unwrap_or("").split_whitespace();
            let state = fields.next().unwrap_or("Z");
            let pgrp = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
            pgrp == Some(pgid) && state != "Z" && state != "X"
        })
        .collect()
}

/// What the supervisor reads of `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Neither a zombie nor dead.
    pub(crate) live: bool,
    /// In the kernel's exit path (`PF_EXITING`): it has begun to die, its descriptors may
    /// already be closed, it is not a zombie yet.
    pub(crate) exiting: bool,
    pub(crate) pgrp: u32,
}

/// The kernel's `PF_EXITING` task flag (`include/linux/sched.h`), set when a task starts to
/// exit, before it closes its descriptors.
const PF_EXITING: u64 = 0x4;

/// Parses `/proc/<pid>/stat` (Linux; `None` elsewhere or when the process is gone).
pub(crate) fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<ProcStat> {
    // After the command name: state (field 3), ppid, pgrp (5), session, tty, tpgid, flags (9)
    let mut fields = stat.rsplit(')').next()?.split_whitespace();
    let state = fields.next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    let flags: u64 = fields.nth(3)?.parse().ok()?;
    Some(ProcStat {
        live: !matches!(state, "Z" | "X"),
        exiting: flags & PF_EXITING != 0,
        pgrp,
    })
}

/// Whether our child `pid` has already begun to die by itself: gone, a zombie, or in the exit
/// path. A kill sent then did not cause the death, so it is not the outcome's cause (a worker
/// SIGKILLed from outside closes its channel before it becomes a zombie, and the pool's
/// answer to a closed channel is a kill). Off Linux: `false` (a kill is always the cause).
pub(crate) fn dying(pid: u32) -> bool {
    if !cfg!(target_os = "linux") {
        return false;
    }
    proc_stat(pid).is_none_or(|s| !s.live || s.exiting)
}

/// The last pid the system created (in this pid namespace).
///
/// A pool asks this each time a worker becomes idle (`Containment::may_have_leftovers`), so
/// the file stays open (one descriptor per supervisor process, close-on-exec) and each call
/// is one `pread`, not an open, a read and a close. The file is `/proc/sys/kernel/ns_last_pid`
/// (the number alone: ≈ 0.7 µs a read here, against ≈ 0.95 µs for `/proc/loadavg`, whose
/// whole line the kernel formats each time), else `/proc/loadavg`'s fifth field where `/proc/sys`
/// is not readable (some containers mask it). Both give the same number: the pid namespace's
/// last allocated pid, as the reading task sees it.
pub(crate) fn last_pid() -> Option<u32> {
    static SOURCE: std::sync::OnceLock<Option<LastPid>> = std::sync::OnceLock::new();
    SOURCE.get_or_init(LastPid::open).as_ref()?.read()
}

/// Where [`last_pid`] reads.
enum LastPid {
    /// `/proc/sys/kernel/ns_last_pid`: the number and a line break.
    NsLastPid(std::fs::File),
    /// `/proc/loadavg`: the pid is the fifth field.
    LoadAvg(std::fs::File),
}

impl LastPid {
    const NS_LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";

    fn open() -> Option<Self> {
        if let Ok(f) = std::fs::File::open(Self::NS_LAST_PID) {
            let source = Self::NsLastPid(f);
            if source.read().is_some() {
                return Some(source);
            }
        }
        std::fs::File::open("/proc/loadavg").ok().map(Self::LoadAvg)
    }

    fn read(&self) -> Option<u32> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 128];
        let (file, field) = match self {
            Self::NsLastPid(f) => (f, 0),
            Self::LoadAvg(f) => (f, 4),
        };
        let n = file.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        text.split_whitespace().nth(field)?.parse().ok()
    }
}

/// Whether `pid` is a live process (a zombie counts as gone), from `/proc`.
pub(crate) fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            !matches!(state, Some("Z" | "X") | None)
        }
        Err(_) => false,
    }
}

/// One `read(2)` on `fd`, a pipe the caller owns for the whole call (the output pumps' pipes,
/// which tokio opened non-blocking: an empty pipe answers `WouldBlock`).
pub(crate) fn read_fd(fd: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: `fd` is open for the borrow's lifetime and `buf` is valid for `buf.len()` bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_a_hostile_command_name() {
        let stat = "42 (a) b) c) S 1 40 40 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(
            parse_stat(stat),
            Some(ProcStat {
                live: true,
                exiting: false,
                pgrp: 40,
            })
        );
        let exiting = "7 (w) R 1 7 7 0 -1 4194884 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1";
        assert_eq!(
            parse_stat(exiting),
            Some(ProcStat {
                live: true,
                exiting: true,
                pgrp: 7,
            })
        );
        let me = proc_stat(std::process::id()).unwrap();
        assert!(me.live && !me.exiting);
        assert!(!dying(std::process::id()));
        assert!(dying(u32::MAX));
        assert_eq!(proc_stat(u32::MAX), None);
        assert!(last_pid().unwrap() > 0);
    }

    #[test]
    fn both_sources_of_the_last_pid_agree_and_a_spawn_moves_them() {
        let ns = std::fs::File::open(LastPid::NS_LAST_PID).map(LastPid::NsLastPid);
        let loadavg = LastPid::LoadAvg(std::fs::File::open("/proc/loadavg").unwrap());
        let before = loadavg.read().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let spawned = child.id();
        child.wait().unwrap();
        // Other tests may create processes meanwhile: at least this child's pid, or a later one
        // (or the counter wrapped: then it is below `before`).
        let after = loadavg.read().unwrap();
        assert!(
            after >= spawned || after < before,
            "{before} {spawned} {after}"
        );
        if let Ok(ns) = ns {
            // Read back to back, a process created between the two reads moves the second.
            let (a, b, c) = (
                loadavg.read().unwrap(),
                ns.read().unwrap(),
                loadavg.read().unwrap(),
            );
            assert!(a <= b && b <= c || c < a, "{a} {b} {c}");
        }
    }
}
