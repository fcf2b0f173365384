//! The fourth containment layer: one cgroup v2 per worker process (Linux).
//!
//! Where a writable cgroup v2 hierarchy exists (even one without controllers, mounted beside
//! the v1 controllers: membership, `cgroup.procs` and `cgroup.kill` work without any), the
//! supervisor creates one parent cgroup, `offload-<supervisor token>`, under its own cgroup,
//! and one child `w<n>` per worker. The worker is created in its cgroup (`clone3` with
//! `CLONE_INTO_CGROUP`, `clone3.rs`, x86-64 Linux 5.7+), or else moves itself there between
//! the clone and `exec` (it writes `0` to an inherited `cgroup.procs` descriptor opened by the
//! parent: one async-signal-safe `write`, see `sys.rs`). The next worker's cgroup directory is
//! made ahead by the spawner thread ([`WorkerCgroup::take`]). Everything the worker starts is
//! born there, whatever its session, process group or environment (leaving needs write access to a common
//! ancestor's `cgroup.procs`: an unprivileged job has none; a job running as root that moves
//! itself out on purpose is not contained). So a grandchild that calls
//! `setsid`, ignores SIGTERM and scrubs its environment is still found:
//!
//! - at the end of each job of a resident worker, every process of the cgroup but the worker
//!   is SIGKILLed ([`WorkerCgroup::kill_others`]);
//! - when the worker exits, the whole cgroup is killed (`cgroup.kill`, or SIGKILL of every
//!   listed pid until it is empty on kernels before 5.14), then removed;
//! - when the supervisor dies, the lifeline reaper kills and removes what is left
//!   (`reaper.rs`).
//!
//! Elsewhere (no cgroup2 mount, not writable, or `OFFLOAD_NO_CGROUP=1`), containment keeps its
//! three other layers and says so once at start.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Set to `1` to disable the cgroup layer for this supervisor process.
pub const NO_CGROUP_ENV: &str = "OFFLOAD_NO_CGROUP";

/// How long the supervisor waits for a killed cgroup to be empty before removing it.
const EMPTY_WAIT: Duration = Duration::from_secs(2);

/// The per-supervisor parent cgroup.
#[derive(Debug)]
pub(crate) struct Hierarchy {
    parent: PathBuf,
}

/// The per-supervisor parent cgroup, created on first use; `None` where cgroups cannot be
/// used (the reason is logged once).
pub(crate) fn hierarchy() -> Option<&'static Hierarchy> {
    static HIERARCHY: OnceLock<Option<Hierarchy>> = OnceLock::new();
    HIERARCHY
        .get_or_init(|| match probe() {
            Ok(h) => {
                tracing::info!(
                    cgroup = %h.parent.display(),
                    "containment: one cgroup v2 per worker (process group, markers, lifeline reaper and cgroup)"
                );
                Some(h)
            }
            Err(reason) => {
                tracing::warn!(
                    %reason,
                    "containment without cgroups: process groups, environment markers and the lifeline reaper only; a process that leaves its group and scrubs its environment can escape"
                );
                None
            }
        })
        .as_ref()
}

/// The parent cgroup's path, if the layer is on (for the lifeline reaper).
pub(crate) fn parent_dir() -> Option<&'static Path> {
    hierarchy().map(|h| h.parent.as_path())
}

fn probe() -> Result<Hierarchy, String> {
    if std::env::var_os(NO_CGROUP_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        return Err(format!("disabled by {NO_CGROUP_ENV}"));
    }
    if !cfg!(target_os = "linux") {
        return Err("cgroups exist only on Linux".into());
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let mount = cgroup2_mount(&mountinfo).ok_or("no cgroup2 hierarchy is mounted")?;
    let own = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let own = own_cgroup(&own).ok_or("this process has no cgroup v2 membership")?;
    let base = mount.join(own.trim_start_matches('/'));
    let parent = base.join(format!("offload-{}", crate::markers::supervisor_token()));
    match fs::create_dir(&parent) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", parent.display())),
    }
    let usable = OpenOptions::new()
        .write(true)
        .open(parent.join("cgroup.procs"))
        .map(drop);
    if let Err(e) = usable {
        let _ = fs::remove_dir(&parent);
        return Err(format!(
            "{} is not writable: {e}",
            parent.join("cgroup.procs").display()
        ));
    }
    Ok(Hierarchy { parent })
}

/// The mount point of the first cgroup2 filesystem in a `mountinfo` text.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })
}

/// This process's cgroup v2 path (the `0::` line of `/proc/self/cgroup`).
fn own_cgroup(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("0::"))
}

/// One worker's cgroup. Removed (best effort) when dropped.
#[derive(Debug)]
pub(crate) struct WorkerCgroup {
    dir: PathBuf,
    /// `cgroup.procs`, opened for the child's pre-exec `write("0")` (close-on-exec); closed
    /// once the child is started.
    procs: Option<File>,
    /// The directory, opened for `clone3`'s `CLONE_INTO_CGROUP` (close-on-exec); closed once
    /// the child is started.
    dir_fd: Option<File>,
}

/// The directory of one worker cgroup made ahead of the next spawn (see
/// [`WorkerCgroup::take`]); no descriptor is held for it. Removed by the lifeline reaper with
/// the parent if the supervisor exits with it unused.
static SPARE: Mutex<Option<PathBuf>> = Mutex::new(None);

fn spare() -> std::sync::MutexGuard<'static, Option<PathBuf>> {
    SPARE.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WorkerCgroup {
    /// A cgroup for the next worker: the spare made after the previous spawn, else a new one.
    /// Making one (a `mkdir` in the cgroup filesystem) is most of ≈ 0.1 ms of a native worker's
    /// start on an idle 2-core machine; the spawner thread makes the spare after answering a
    /// spawn ([`prepare_spare`](Self::prepare_spare)), while that worker starts.
    pub(crate) fn take(h: &Hierarchy) -> io::Result<Self> {
        let ready = spare().take();
        if let Some(dir) = ready {
            if let Ok(cg) = Self::open(dir) {
                return Ok(cg);
            }
        }
        Self::open(Self::make_dir(h)?)
    }

    /// Makes the spare unless there is one (a failure is left to the next [`take`](Self::take),
    /// which tries again and reports it).
    pub(crate) fn prepare_spare(h: &Hierarchy) {
        if spare().is_some() {
            return;
        }
        if let Ok(dir) = Self::make_dir(h) {
            let mut slot = spare();
            if slot.is_none() {
                *slot = Some(dir);
            } else {
                drop(slot);
                let _ = fs::remove_dir(&dir);
            }
        }
    }

    /// A fresh worker cgroup under the per-supervisor parent.
    fn make_dir(h: &Hierarchy) -> io::Result<PathBuf> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let dir = h
            .parent
            .join(format!("w{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        fs::create_dir(&dir)?;
        Ok(dir)
    }

    /// Opens what the spawn needs of the cgroup at `dir`; removes it if that fails.
    fn open(dir: PathBuf) -> io::Result<Self> {
        let procs = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(dir.join("cgroup.procs"));
        // Without the directory's descriptor the child joins by its write, as before.
        let dir_fd = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_DIRECTORY)
            .open(&dir)
            .ok();
        match procs {
            Ok(procs) => Ok(Self {
                dir,
                procs: Some(procs),
                dir_fd,
            }),
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// The descriptor the child writes `0` to, moving itself in (`-1` once closed).
    pub(crate) fn procs_fd(&self) -> RawFd {
        self.procs.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// The directory's descriptor for `CLONE_INTO_CGROUP` (`-1` once closed or not opened).
    pub(crate) fn dir_fd(&self) -> RawFd {
        self.dir_fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// Closes both descriptors once the child is started (two fds per live worker otherwise).
    pub(crate) fn close_spawn_fds(&mut self) {
        self.procs = None;
        self.dir_fd = None;
    }

    /// The cgroup's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pids in the cgroup now.
    pub(crate) fn members(&self) -> Vec<u32> {
        let mut text = String::new();
        match File::open(self.dir.join("cgroup.procs")) {
            Ok(mut f) => {
                let _ = f.read_to_string(&mut text);
            }
            Err(_) => return Vec::new(),
        }
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// SIGKILLs every process of the cgroup but `keep` (the worker); returns their pids.
    /// Repeats while new pids appear (a process may fork while it is being killed).
    pub(crate) fn kill_others(&self, keep: u32) -> Vec<u32> {
        let mut killed = Vec::new();
        for _ in 0..32 {
            let fresh: Vec<u32> = self
                .members()
                .into_iter()
                .filter(|&p| p != keep && !killed.contains(&p))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for pid in fresh {
                crate::sys::kill_pid(pid, libc::SIGKILL);
                killed.push(pid);
            }
        }
        killed
    }

    /// Kills every process of the cgroup (`cgroup.kill`, else SIGKILL of each listed pid),
    /// waits until it is empty (at most two seconds) and removes it. Returns the pids seen.
    pub(crate) async fn kill_all_and_remove(&self) -> Vec<u32> {
        let seen = self.members();
        let kill_file = OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.kill"))
            .and_then(|mut f| f.write_all(b"1"));
        let deadline = crate::timer::deadline_in(EMPTY_WAIT);
        loop {
            let left = self.members();
            if left.is_empty() {
                break;
            }
            if kill_file.is_err() {
                for pid in &left {
                    crate::sys::kill_pid(*pid, libc::SIGKILL);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(cgroup = %self.dir.display(), ?left, "a killed cgroup is not empty yet");
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.remove();
        seen
    }

    fn remove(&self) {
        match fs::remove_dir(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::debug!(cgroup = %self.dir.display(), error = %e, "cannot remove a worker cgroup yet");
            }
        }
    }
}

impl Drop for WorkerCgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_beside_v1_controllers() {
        let text = "\
35 25 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 25 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        assert_eq!(
            cgroup2_mount(text),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup2_mount("1 2 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn reads_the_v2_line_of_proc_self_cgroup() {
        let text = "4:memory:/a/b\n0::/user.slice/x\n";
        assert_eq!(own_cgroup(text), Some("/user.slice/x"));
        assert_eq!(own_cgroup("4:memory:/\n"), None);
    }
}
