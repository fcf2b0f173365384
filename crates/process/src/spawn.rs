//! Starting a worker process with its channel, contained: its own process group,
//! `PR_SET_PDEATHSIG`, optional rlimits, its cgroup, spawned from one long-lived thread
//! without copying the supervisor (`vfork.rs`).
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process. A
//! child forked from a short-lived thread (a `spawn_blocking` worker, a runtime's thread that is
//! shut down) would be killed early. So every spawn goes through [`spawner`], one thread that
//! lives as long as the process.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;

use offload_protocol::{env, CHANNEL_FD, DEFAULT_MAX_FRAME, PROTOCOL_VERSION};
use thiserror::Error;
use tokio::net::UnixStream;
use tokio::sync::oneshot;

use crate::child::WorkerChild;
use crate::limits::ResourceLimits;
use crate::sys::{self, ChildSetup};
use crate::vfork::{ParentEnds, Prepared, Started};

/// How to start one worker process.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    limits: ResourceLimits,
    node_channel: bool,
    channel: bool,
    max_frame: usize,
    jobs_dir: Option<PathBuf>,
    stdin_piped: bool,
    env_policy: crate::EnvPolicy,
    cgroup: bool,
}

impl WorkerCommand {
    /// A worker running `program`.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            cwd: None,
            limits: ResourceLimits::default(),
            node_channel: false,
            channel: true,
            max_frame: DEFAULT_MAX_FRAME,
            jobs_dir: None,
            stdin_piped: false,
            env_policy: crate::EnvPolicy::Inherit,
            cgroup: false,
        }
    }

    /// Appends an argument.
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    #[must_use]
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Which inherited variables the worker gets (default: all; see [`crate::EnvPolicy`]).
    #[must_use]
    pub fn env_policy(mut self, policy: crate::EnvPolicy) -> Self {
        self.env_policy = policy;
        self
    }

    /// Sets an environment variable (always set, whatever the [`env_policy`](Self::env_policy)).
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Sets the working directory.
    #[must_use]
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets resource limits.
    #[must_use]
    pub fn limits(mut self, limits: ResourceLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Also exposes the channel as Node's IPC channel (`NODE_CHANNEL_FD`, json mode).
    #[must_use]
    pub fn node_channel(mut self, yes: bool) -> Self {
        self.node_channel = yes;
        self
    }

    /// Whether to give the child a channel at all (off for command-mode programs).
    #[must_use]
    pub fn channel(mut self, yes: bool) -> Self {
        self.channel = yes;
        self
    }

    /// The frame limit announced to the worker (`OFFLOAD_MAX_FRAME`).
    #[must_use]
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// The frame limit.
    pub fn frame_limit(&self) -> usize {
        self.max_frame
    }

    /// The jobs folder announced to the worker (`OFFLOAD_JOBS_DIR`).
    #[must_use]
    pub fn jobs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.jobs_dir = Some(dir.into());
        self
    }

    /// Gives the child a piped stdin (command mode) instead of `/dev/null`.
    #[must_use]
    pub fn stdin_piped(mut self, yes: bool) -> Self {
        self.stdin_piped = yes;
        self
    }

    /// Puts the worker in a cgroup of its own where a writable cgroup v2 hierarchy exists (the
    /// fourth containment layer, `cgroup.rs`); ignored elsewhere.
    #[must_use]
    pub fn cgroup(mut self, yes: bool) -> Self {
        self.cgroup = yes;
        self
    }

    /// The program.
    pub fn program(&self) -> &Path {
        Path::new(&self.program)
    }

    /// Starts the worker. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] when the channel cannot be created or the program cannot be started.
    pub async fn spawn(&self) -> Result<SpawnedWorker, SpawnError> {
        for (name, value) in &self.envs {
            crate::check_env_var(&name.to_string_lossy(), &value.to_string_lossy())?;
        }
        let spawn_error = |source| SpawnError::Spawn {
            program: self.program.to_string_lossy().into_owned(),
            source,
        };
        let (ours, theirs) = if self.channel {
            let (a, b) = std::os::unix::net::UnixStream::pair().map_err(SpawnError::Channel)?;
            (Some(a), Some(OwnedFd::from(b)))
        } else {
            (None, None)
        };
        let env = self.environment();
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_os_str());
        let program = crate::vfork::find_program(&self.program, path).map_err(spawn_error)?;
        let hierarchy = self.cgroup.then(crate::cgroup::hierarchy).flatten();
        let cgroup = hierarchy.and_then(|h| {
            crate::cgroup::WorkerCgroup::take(h)
                .map_err(|e| tracing::warn!(error = %e, "cannot create a worker cgroup; this worker is contained without one"))
                .ok()
        });
        let setup = ChildSetup {
            channel_fd: -1,
            target_fd: CHANNEL_FD,
            parent_pid: sys::current_pid(),
            limits: self.limits,
            cgroup_procs_fd: cgroup
                .as_ref()
                .map_or(-1, crate::cgroup::WorkerCgroup::procs_fd),
            cgroup_dir_fd: cgroup
                .as_ref()
                .map_or(-1, crate::cgroup::WorkerCgroup::dir_fd),
        };
        let (prepared, ends) = crate::vfork::Prepared::new(
            &program,
            &self.args,
            &env,
            self.cwd.as_deref(),
            self.stdin_piped,
            theirs,
            setup,
        )
        .map_err(spawn_error)?;
        let started = spawner::spawn(prepared, ends, hierarchy)
            .await
            .map_err(spawn_error)?;
        let pid = started.pid;
        // The child was created in its cgroup, or moved itself in before `exec` and said
        // whether it could.
        let cgroup = cgroup.filter(|cg| {
            if !started.joined_cgroup {
                tracing::warn!(pid, cgroup = %cg.dir().display(), "the worker is not in its cgroup; contained without it");
            }
            started.joined_cgroup
        });
        let cgroup = cgroup.map(|mut cg| {
            cg.close_spawn_fds();
            cg
        });
        let child = WorkerChild::new(started).map_err(spawn_error)?;
        let channel = match ours {
            Some(s) => {
                s.set_nonblocking(true).map_err(SpawnError::Channel)?;
                Some(UnixStream::from_std(s).map_err(SpawnError::Channel)?)
            }
            None => None,
        };
        Ok(SpawnedWorker {
            pid,
            child,
            channel,
            cgroup,
        })
    }

    /// The child's whole environment: the policy's inherited variables, offload's own, then
    /// the command's.
    fn environment(&self) -> Vec<(OsString, OsString)> {
        let mut env: BTreeMap<OsString, OsString> =
            match self.env_policy.filter(std::env::vars_os()) {
                Some(vars) => vars.into_iter().collect(),
                None => std::env::vars_os().collect(),
            };
        let mut set = |k: &str, v: OsString| {
            env.insert(k.into(), v);
        };
        if self.channel {
            set(env::CHANNEL_FD, CHANNEL_FD.to_string().into());
            set(env::PROTOCOL, PROTOCOL_VERSION.to_string().into());
            set(
                env::PROTOCOL_MINOR,
                offload_protocol::PROTOCOL_MINOR.to_string().into(),
            );
            set(env::MAX_FRAME, self.max_frame.to_string().into());
            if self.node_channel {
                set(env::NODE_CHANNEL_FD, CHANNEL_FD.to_string().into());
                set(env::NODE_CHANNEL_SERIALIZATION_MODE, "json".into());
            }
        }
        if let Some(dir) = &self.jobs_dir {
            set(env::JOBS_DIR, dir.clone().into_os_string());
        }
        for (k, v) in &self.envs {
            env.insert(k.clone(), v.clone());
        }
        env.into_iter().collect()
    }
}

/// A started worker: its pid (= its process group id), the tokio child (stdout and stderr
/// piped, not yet taken), and the supervisor's end of the channel.
#[derive(Debug)]
pub struct SpawnedWorker {
    /// The pid, also the process group id.
    pub pid: u32,
    /// The child; `stdout` and `stderr` are pipes.
    pub child: WorkerChild,
    /// The supervisor's end of the channel, unless the command had none.
    pub channel: Option<UnixStream>,
    /// The worker's own cgroup, when the cgroup layer is on.
    pub(crate) cgroup: Option<crate::cgroup::WorkerCgroup>,
}

/// Why a worker could not be started.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The socketpair could not be created.
    #[error("cannot create the worker channel: {0}")]
    Channel(#[source] io::Error),
    /// A variable given with [`WorkerCommand::env`] cannot be set (`=` or NUL in its name, an
    /// empty name, NUL in its value): refused before anything starts.
    #[error("env: {0}")]
    Env(#[from] crate::EnvVarError),
    /// The program could not be executed.
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Sends `signal` to the whole process group `pgid`; `Ok(false)` if it no longer exists.
///
/// # Errors
///
/// The OS error, other than "no such process".
pub fn signal_group(pgid: u32, signal: i32) -> io::Result<bool> {
    sys::kill_group(pgid, signal)
}

/// Whether any process of group `pgid` still exists (zombies included).
pub fn group_alive(pgid: u32) -> bool {
    sys::group_alive(pgid)
}

/// The live (not zombie) processes of group `pgid`, from `/proc`.
pub fn live_group_members(pgid: u32) -> Vec<u32> {
    if !sys::group_alive(pgid) {
        return Vec::new();
    }
    sys::live_group_members(pgid)
}

mod spawner {
    //! The long-lived spawning thread.
    use super::*;

    struct Request {
        prepared: Prepared,
        ends: ParentEnds,
        reply: oneshot::Sender<io::Result<Started>>,
        /// After answering, make the next worker's cgroup while this one starts.
        spare_in: Option<&'static crate::cgroup::Hierarchy>,
    }

    fn sender() -> &'static mpsc::Sender<Request> {
        static SENDER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
        SENDER.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Request>();
            std::thread::Builder::new()
                .name("offload-spawner".into())
                .spawn(move || {
                    for req in rx {
                        let _ = req.reply.send(req.prepared.spawn(req.ends));
                        if let Some(h) = req.spare_in {
                            crate::cgroup::WorkerCgroup::prepare_spare(h);
                        }
                    }
                })
                .expect("cannot start the offload-spawner thread");
            tx
        })
    }

    pub(super) async fn spawn(
        prepared: Prepared,
        ends: ParentEnds,
        spare_in: Option<&'static crate::cgroup::Hierarchy>,
    ) -> io::Result<Started> {
        let (reply, rx) = oneshot::channel();
        let req = Request {
            prepared,
            ends,
            reply,
            spare_in,
        };
        sender()
            .send(req)
            .map_err(|_| io::Error::other("the offload-spawner thread is gone"))?;
        rx.await
            .map_err(|_| io::Error::other("the offload-spawner thread dropped a request"))?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    /// The cgroup v2 path of `pid` (the `0::` line).
    fn cgroup_of(pid: u32) -> String {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap()
            .to_owned()
    }

    /// Both ways into the worker's cgroup: created there (`clone3.rs`), and the fallback
    /// where the child writes itself into `cgroup.procs`. Each spawn also leaves the next
    /// worker's directory made (the spare), which the second spawn takes.
    #[tokio::test]
    async fn a_worker_starts_inside_its_own_cgroup_either_way() {
        if crate::cgroup::hierarchy().is_none() {
            eprintln!("SKIPPED: no writable cgroup v2 hierarchy here");
            return;
        }
        for by_write in [false, true] {
            crate::clone3::tests::JOIN_BY_WRITE.store(by_write, Ordering::Relaxed);
            let mut w = WorkerCommand::new("/bin/sleep")
                .arg("30")
                .channel(false)
                .cgroup(true)
                .spawn()
                .await
                .unwrap();
            let cg = w.cgroup.as_ref().expect("the worker has its cgroup");
            let dir = cg.dir().to_string_lossy().into_owned();
            let own = cgroup_of(w.pid);
            assert!(
                dir.ends_with(&own),
                "by_write={by_write}: {own} is not {dir}"
            );
            assert!(own.contains("/offload-"), "{own}");
            w.child.start_kill().unwrap();
            w.child.wait().await.unwrap();
        }
        crate::clone3::tests::JOIN_BY_WRITE.store(false, Ordering::Relaxed);
    }
}
