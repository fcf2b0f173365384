//! What a [`ChildJob`](super::ChildJob) is told: its settings, each run's options, what it
//! starts, and why a start can fail.

use std::path::PathBuf;
use std::time::Duration;

use offload_protocol::DEFAULT_MAX_FRAME;
use thiserror::Error;

use crate::limits::ResourceLimits;
use crate::resolve::{JobKind, ResolveError};
use crate::runtime::Runtimes;
use crate::spawn::SpawnError;

/// Settings shared by every job a [`ChildJob`](super::ChildJob) runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChildJobConfig {
    /// The jobs folder (default `./jobs`).
    pub jobs_dir: PathBuf,
    /// Which programs run Node, Python and native jobs.
    pub runtimes: Runtimes,
    /// The first signal of a kill (default SIGTERM; SIGINT for ee-core parity).
    pub kill_signal: i32,
    /// How long a killed job gets before SIGKILL (default 1 s, ee-core's default).
    pub kill_grace: Duration,
    /// The largest frame (default 16 MiB).
    pub max_frame: usize,
    /// Install the SIGINT/SIGTERM listener of the registry (default true; see `registry`).
    pub handle_signals: bool,
    /// Keep one started, not yet dispatched Node and Python runner ready, so that `exec()` of
    /// a Node or Python job does not wait for the interpreter to start (default false). Each
    /// process still runs exactly one job. Used only for jobs with default environment,
    /// working directory, arguments, limits and signals (those are fixed at spawn).
    pub warm_spare: bool,
    /// Which of this process's environment variables jobs inherit (default: all; see
    /// [`EnvPolicy`](crate::EnvPolicy)).
    pub env_policy: crate::EnvPolicy,
    /// Give each process a cgroup of its own where a writable cgroup v2 hierarchy exists
    /// (default true): a grandchild that left the session and scrubbed its environment is
    /// still killed with its job. Moving a fresh process into its cgroup costs about 2 ms per
    /// `exec` (measured on a loaded 2-core VM); turn it off to save that where the other three
    /// containment layers are enough.
    pub cgroups: bool,
    /// The largest number of descriptors one run may carry (default 16; see
    /// [`ChildJob::exec_with_fds`](super::ChildJob::exec_with_fds)).
    pub max_fds_per_run: usize,
    /// How long a worker has to acknowledge each descriptor passed (default 5 s).
    pub fd_ack_timeout: Duration,
    /// Backpressure for each process's progress, events and log lines (see
    /// [`EventFlow`](crate::EventFlow)): nothing is dropped, and every subscriber of its
    /// streams (the processes' and [`ChildJob::events`](super::ChildJob::events)) must keep
    /// reading. Default none.
    pub event_backpressure: Option<usize>,
}

impl Default for ChildJobConfig {
    fn default() -> Self {
        Self {
            jobs_dir: PathBuf::from("jobs"),
            runtimes: Runtimes::default(),
            kill_signal: libc::SIGTERM,
            kill_grace: Duration::from_secs(1),
            max_frame: DEFAULT_MAX_FRAME,
            handle_signals: true,
            warm_spare: false,
            env_policy: crate::EnvPolicy::Inherit,
            cgroups: true,
            max_fds_per_run: crate::process::DEFAULT_MAX_FDS_PER_RUN,
            fd_ack_timeout: crate::process::DEFAULT_FD_ACK_TIMEOUT,
            event_backpressure: None,
        }
    }
}

impl ChildJobConfig {
    /// The default settings with `dir` as the jobs folder.
    pub fn with_jobs_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            jobs_dir: dir.into(),
            ..Self::default()
        }
    }

    /// Whether to install the registry's SIGINT/SIGTERM listener.
    #[must_use]
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.handle_signals = yes;
        self
    }

    /// Whether to keep a warm spare Node and Python runner (see [`warm_spare`](Self::warm_spare)).
    #[must_use]
    pub fn warm_spare(mut self, yes: bool) -> Self {
        self.warm_spare = yes;
        self
    }

    /// Whether to give each process a cgroup (see [`cgroups`](Self::cgroups)).
    #[must_use]
    pub fn cgroups(mut self, yes: bool) -> Self {
        self.cgroups = yes;
        self
    }

    /// The first signal of a kill, and the grace before SIGKILL.
    #[must_use]
    pub fn kill_policy(mut self, signal: i32, grace: Duration) -> Self {
        self.kill_signal = signal;
        self.kill_grace = grace;
        self
    }

    /// Which inherited environment variables jobs get (see [`EnvPolicy`](crate::EnvPolicy)).
    #[must_use]
    pub fn env_policy(mut self, policy: crate::EnvPolicy) -> Self {
        self.env_policy = policy;
        self
    }

    /// The programs that run Node, Python and native jobs.
    #[must_use]
    pub fn runtimes(mut self, runtimes: Runtimes) -> Self {
        self.runtimes = runtimes;
        self
    }

    /// The largest frame.
    #[must_use]
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// At most `limit` events of each process on their way to listeners (see
    /// [`event_backpressure`](Self::event_backpressure)).
    #[must_use]
    pub fn event_backpressure(mut self, limit: usize) -> Self {
        self.event_backpressure = Some(limit);
        self
    }
}

/// How a program receives its params in command mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamsVia {
    /// The params JSON on stdin, then end of input.
    Stdin,
    /// Templated into the arguments: `{params}` becomes the JSON; `{params.key}` the value of
    /// `key` (strings raw, other values as JSON, missing keys empty).
    Args,
}

/// How the process talks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// The worker protocol over fd 3 (every SDK, and Node scripts using `process.send`).
    #[default]
    Protocol,
    /// A program that does not speak the protocol: params in, stdout out (JSON when it parses,
    /// else text), exit status 0 = success.
    Command(ParamsVia),
}

/// Options of one job.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExecOptions {
    /// The job's id on the channel (default: a fresh one).
    pub id: Option<String>,
    /// Stop the job after this long: `cancel`, then `cancel_grace`, then kill the group.
    pub timeout: Option<Duration>,
    /// How long a timed-out or finished job gets before its group is killed (default 2 s).
    pub cancel_grace: Duration,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The working directory (default: the supervisor's).
    pub cwd: Option<PathBuf>,
    /// Extra arguments for the program (native and command-mode jobs).
    pub args: Vec<String>,
    /// setrlimit limits.
    pub limits: ResourceLimits,
    /// Protocol or command mode.
    pub mode: Mode,
    /// Overrides the manager's kill signal.
    pub kill_signal: Option<i32>,
    /// Largest stdout kept as a command-mode result (default 16 MiB).
    pub max_output: usize,
    /// A reliable sink of the job's log lines ([`ProcessOptions::log_sink`](crate::ProcessOptions::log_sink));
    /// such a job never runs in a warm spare (the sink is fixed at spawn).
    pub log_sink: Option<tokio::sync::mpsc::Sender<crate::OutputItem>>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            id: None,
            timeout: None,
            cancel_grace: Duration::from_secs(2),
            env: Vec::new(),
            cwd: None,
            args: Vec::new(),
            limits: ResourceLimits::default(),
            mode: Mode::Protocol,
            kill_signal: None,
            max_output: DEFAULT_MAX_FRAME,
            log_sink: None,
        }
    }
}

impl ExecOptions {
    /// Sets the timeout.
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Sets resource limits.
    #[must_use]
    pub fn limits(mut self, limits: ResourceLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sends the job's log lines to `sink` (reliably, waiting while it is full).
    #[must_use]
    pub fn log_sink(mut self, sink: tokio::sync::mpsc::Sender<crate::OutputItem>) -> Self {
        self.log_sink = Some(sink);
        self
    }

    /// Sets the mode.
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds program arguments.
    #[must_use]
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets the working directory.
    #[must_use]
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets the job's id.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// What [`ChildJob::create_process`](super::ChildJob::create_process) starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Runtime {
    /// The Node runner.
    Node,
    /// The Python runner.
    Python,
    /// A program.
    Program(PathBuf),
}

/// Why a job could not be started.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The job name did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The process could not be started.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The runtime (the embedded SDK) could not be prepared.
    #[error("cannot prepare the {kind:?} runtime: {source}")]
    Runtime {
        /// Which.
        kind: JobKind,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Command mode needs an executable job.
    #[error("command mode needs an executable job, {job:?} is a {kind:?} job")]
    CommandModeNeedsProgram {
        /// The job.
        job: String,
        /// Its kind.
        kind: JobKind,
    },
    /// The params do not fit in one frame.
    #[error("params of {size} bytes exceed the frame limit of {max} bytes")]
    ParamsTooLarge {
        /// Their encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An option is out of range (a timeout above [`crate::timer::MAX_DURATION`]).
    #[error(transparent)]
    OutOfRange(#[from] crate::timer::OutOfRange),
    /// The descriptors cannot be passed: too many, or one is not open. (What the worker
    /// refuses later fails the job's outcome with an error of the same name.)
    #[error(transparent)]
    Fds(#[from] crate::process::FdError),
    /// Descriptors go over the protocol channel: command mode has none.
    #[error("descriptors need protocol mode: a command-mode job has no channel")]
    FdsNeedProtocolMode,
    /// A variable of [`ExecOptions::env`] cannot be set as written.
    #[error(transparent)]
    Env(#[from] crate::EnvVarError),
}

impl ExecError {
    /// The refusal's stable code, as the host bindings name it to their users (`code` of the
    /// JavaScript and Python errors): `JobNotFound`, `InvalidJob`, `ParamsTooLarge`,
    /// `InvalidArgument` (an option out of range, an environment variable that cannot be set),
    /// or `SpawnFailed`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Resolve(ResolveError::NotFound { .. }) => "JobNotFound",
            Self::Resolve(_) => "InvalidJob",
            Self::ParamsTooLarge { .. } => "ParamsTooLarge",
            Self::OutOfRange(_) | Self::Env(_) | Self::Spawn(crate::SpawnError::Env(_)) => {
                "InvalidArgument"
            }
            _ => "SpawnFailed",
        }
    }
}
