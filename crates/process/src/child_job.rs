//! [`ChildJob`]: run one job in a fresh child process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use offload_protocol::DEFAULT_MAX_FRAME;
use serde_json::Value;
use thiserror::Error;
use tokio::sync::broadcast;

use crate::process::{start, Dispatch, JobProcess, MainJob, ProcessEvent, ProcessOptions};
use crate::registry::{self, Managed};
use crate::resolve::{JobKind, JobsDir, ResolveError, ResolvedJob};
use crate::runtime::Runtimes;
use crate::spawn::{ResourceLimits, SpawnError, WorkerCommand};

/// Settings shared by every job a [`ChildJob`] runs.
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

/// What [`ChildJob::create_process`] starts.
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
}

/// Runs each job in a fresh child process (the seed's `ChildJob`).
///
/// Cheap to clone. Registered with the registry; when the last clone drops, its processes are
/// SIGKILLed.
///
/// ```no_run
/// # async fn demo() -> Result<(), offload_process::ExecError> {
/// use offload_process::{ChildJob, ChildJobConfig, ExecOptions, Outcome};
/// use std::time::Duration;
///
/// let jobs = ChildJob::new(ChildJobConfig::with_jobs_dir("examples/jobs"));
/// let proc = jobs
///     .exec("hello", serde_json::json!({"name": "world"}), ExecOptions::default().timeout(Duration::from_secs(30)))
///     .await?;
/// match proc.outcome().await {
///     Outcome::Succeeded { value } => println!("{value}"),
///     other => eprintln!("{other}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ChildJob {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ChildJobConfig,
    jobs_dir: JobsDir,
    procs: Mutex<HashMap<u32, JobProcess>>,
    /// Started runners waiting for a job, one per runtime (`warm_spare`).
    spares: Mutex<HashMap<JobKind, JobProcess>>,
    events: broadcast::Sender<ProcessEvent>,
    registry_id: AtomicU64,
    next_id: AtomicU64,
}

impl Managed for Inner {
    fn processes(&self) -> Vec<JobProcess> {
        let spares: Vec<JobProcess> = self.spares().values().cloned().collect();
        self.procs()
            .values()
            .cloned()
            .chain(spares)
            .filter(JobProcess::is_running)
            .collect()
    }

    fn kill_policy(&self) -> (i32, Duration) {
        (self.config.kill_signal, self.config.kill_grace)
    }
}

impl Inner {
    fn procs(&self) -> std::sync::MutexGuard<'_, HashMap<u32, JobProcess>> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spares(&self) -> std::sync::MutexGuard<'_, HashMap<JobKind, JobProcess>> {
        self.spares.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        registry::unregister(self.registry_id.load(Ordering::Relaxed));
        let spares: Vec<JobProcess> = self.spares().drain().map(|(_, p)| p).collect();
        for p in self.procs().values().chain(spares.iter()) {
            // Tell the actor (so the outcome says Killed), and signal directly in case the
            // runtime that runs the actor is already gone.
            p.start_kill_with(libc::SIGKILL, Duration::ZERO);
            let _ = crate::spawn::signal_group(p.pid(), libc::SIGKILL);
        }
    }
}

impl ChildJob {
    /// A ChildJob with `config`; registers it and, if asked, the signal listener.
    pub fn new(config: ChildJobConfig) -> Self {
        let (events, _) = broadcast::channel(1024);
        let handle_signals = config.handle_signals;
        let inner = Arc::new(Inner {
            jobs_dir: JobsDir::new(&config.jobs_dir),
            config,
            procs: Mutex::new(HashMap::new()),
            spares: Mutex::new(HashMap::new()),
            events,
            registry_id: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        });
        let weak: Weak<dyn Managed> = Arc::downgrade(&inner) as Weak<dyn Managed>;
        inner
            .registry_id
            .store(registry::register(weak), Ordering::Relaxed);
        if handle_signals {
            registry::install_signal_handlers();
        }
        Self { inner }
    }

    /// The jobs folder.
    pub fn jobs_dir(&self) -> &JobsDir {
        &self.inner.jobs_dir
    }

    /// Resolves `job` and runs it with `params` in a new process.
    ///
    /// # Errors
    ///
    /// [`ExecError`] when the job does not resolve or the process cannot start. Everything
    /// after the start is reported by the process's [`outcome`](JobProcess::outcome).
    pub async fn exec(
        &self,
        job: &str,
        params: Value,
        opts: ExecOptions,
    ) -> Result<JobProcess, ExecError> {
        let resolved = self.inner.jobs_dir.resolve(job)?;
        self.exec_resolved(resolved, params, opts).await
    }

    /// Runs the job file at an absolute `path`, which need not be in the jobs folder (the
    /// explicit escape hatch).
    ///
    /// # Errors
    ///
    /// As [`exec`](Self::exec).
    pub async fn exec_path(
        &self,
        path: &Path,
        params: Value,
        opts: ExecOptions,
    ) -> Result<JobProcess, ExecError> {
        let resolved = JobsDir::resolve_path(path)?;
        self.exec_resolved(resolved, params, opts).await
    }

    /// Runs an already resolved job.
    ///
    /// # Errors
    ///
    /// As [`exec`](Self::exec).
    pub async fn exec_resolved(
        &self,
        job: ResolvedJob,
        params: Value,
        opts: ExecOptions,
    ) -> Result<JobProcess, ExecError> {
        if let Some(t) = opts.timeout {
            crate::timer::check("timeout", t)?;
        }
        crate::timer::check("cancel_grace", opts.cancel_grace)?;
        let id = opts.id.clone().unwrap_or_else(|| {
            format!("job-{}", self.inner.next_id.fetch_add(1, Ordering::Relaxed))
        });
        let size = serde_json::to_vec(&params).map_or(0, |v| v.len());
        if size + 512 > self.inner.config.max_frame {
            return Err(ExecError::ParamsTooLarge {
                size,
                max: self.inner.config.max_frame,
            });
        }
        let (cmd, command_input) = match opts.mode {
            Mode::Protocol => (self.runtime_command(job.kind, &job.path)?, None),
            Mode::Command(via) => {
                if job.kind != JobKind::Native {
                    return Err(ExecError::CommandModeNeedsProgram {
                        job: job.name.clone(),
                        kind: job.kind,
                    });
                }
                let mut cmd = WorkerCommand::new(&job.path).channel(false);
                let input = match via {
                    ParamsVia::Stdin => {
                        cmd = cmd.stdin_piped(true);
                        Some(serde_json::to_vec(&params).unwrap_or_default())
                    }
                    ParamsVia::Args => {
                        cmd = cmd.args(opts.args.iter().map(|a| template(a, &params)));
                        Some(Vec::new())
                    }
                };
                (cmd, input)
            }
        };
        let cmd = if matches!(opts.mode, Mode::Command(ParamsVia::Args)) {
            cmd
        } else {
            cmd.args(&opts.args)
        };
        let main = MainJob {
            id,
            name: job.name.clone(),
            path: Some(job.path.to_string_lossy().into_owned()),
            params,
        };
        if self.spare_fits(job.kind, &opts) {
            let spare = self.inner.spares().remove(&job.kind);
            self.refill_spare(job.kind);
            if let Some(spare) = spare.filter(JobProcess::is_running) {
                if spare.assign(main.clone(), opts.timeout) {
                    self.track(&spare);
                    return Ok(spare);
                }
            }
        }
        self.start(cmd, Some(main), command_input, &opts).await
    }

    /// Whether a job can use a warm spare: protocol mode, and nothing fixed at spawn differs
    /// from the defaults.
    fn spare_fits(&self, kind: JobKind, opts: &ExecOptions) -> bool {
        let defaults = ExecOptions::default();
        self.inner.config.warm_spare
            && matches!(kind, JobKind::Node | JobKind::Python)
            && opts.mode == Mode::Protocol
            && opts.env.is_empty()
            && opts.cwd.is_none()
            && opts.args.is_empty()
            && opts.limits.is_empty()
            && opts.kill_signal.is_none()
            && opts.cancel_grace == defaults.cancel_grace
    }

    /// Starts a new spare runner for `kind` in the background, unless one is there.
    fn refill_spare(&self, kind: JobKind) {
        if self.inner.spares().contains_key(&kind) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(cmd) = this.runtime_command(kind, Path::new("")) else {
                return;
            };
            match this.spawn(cmd, None, None, &ExecOptions::default()).await {
                Ok(p) => {
                    let mut spares = this.inner.spares();
                    if spares.contains_key(&kind) || !p.is_running() {
                        p.start_kill_with(libc::SIGKILL, Duration::ZERO);
                    } else {
                        spares.insert(kind, p);
                    }
                }
                Err(e) => tracing::warn!(?kind, error = %e, "cannot start a warm spare"),
            }
        });
    }

    /// Starts a worker process without dispatching anything (the seed's `createProcess`); send
    /// it work with [`JobProcess::dispatch`] or [`JobProcess::send`].
    ///
    /// # Errors
    ///
    /// [`ExecError`] when the process cannot start.
    pub async fn create_process(
        &self,
        runtime: Runtime,
        opts: ExecOptions,
    ) -> Result<JobProcess, ExecError> {
        let cmd = match &runtime {
            Runtime::Node => self.runtime_command(JobKind::Node, Path::new(""))?,
            Runtime::Python => self.runtime_command(JobKind::Python, Path::new(""))?,
            Runtime::Program(p) => WorkerCommand::new(p),
        }
        .args(&opts.args);
        self.start(cmd, None, None, &opts).await
    }

    fn runtime_command(&self, kind: JobKind, path: &Path) -> Result<WorkerCommand, ExecError> {
        self.inner
            .config
            .runtimes
            .command(kind, path)
            .map_err(|source| ExecError::Runtime { kind, source })
    }

    async fn start(
        &self,
        cmd: WorkerCommand,
        main: Option<MainJob>,
        command_input: Option<Vec<u8>>,
        opts: &ExecOptions,
    ) -> Result<JobProcess, ExecError> {
        let process = self.spawn(cmd, main, command_input, opts).await?;
        self.track(&process);
        Ok(process)
    }

    /// Adds a process to the live map. The actor publishes the exit before it calls
    /// `on_exit`, so checking after the insert leaves no stale entry whichever runs first.
    fn track(&self, process: &JobProcess) {
        let mut procs = self.inner.procs();
        procs.insert(process.pid(), process.clone());
        if !process.is_running() {
            procs.remove(&process.pid());
        }
    }

    async fn spawn(
        &self,
        cmd: WorkerCommand,
        main: Option<MainJob>,
        command_input: Option<Vec<u8>>,
        opts: &ExecOptions,
    ) -> Result<JobProcess, ExecError> {
        let config = &self.inner.config;
        let mut cmd = cmd
            .jobs_dir(
                self.inner
                    .jobs_dir
                    .canonical()
                    .unwrap_or_else(|_| config.jobs_dir.clone()),
            )
            .max_frame(config.max_frame)
            .limits(opts.limits)
            .env_policy(config.env_policy.clone());
        for (k, v) in &opts.env {
            cmd = cmd.env(k, v);
        }
        if let Some(dir) = &opts.cwd {
            cmd = cmd.cwd(dir);
        }
        let weak = Arc::downgrade(&self.inner);
        let popts = ProcessOptions {
            timeout: opts.timeout,
            cancel_grace: opts.cancel_grace,
            linger: opts.cancel_grace,
            kill_signal: opts.kill_signal.unwrap_or(config.kill_signal),
            limits: opts.limits,
            max_frame: config.max_frame,
            manager_events: Some(self.inner.events.clone()),
            sink: None,
            cgroup: config.cgroups,
            on_exit: Some(Box::new(move |pid| {
                if let Some(inner) = weak.upgrade() {
                    inner.procs().remove(&pid);
                    inner.spares().retain(|_, p| p.pid() != pid);
                }
            })),
        };
        let process = start(
            cmd,
            popts,
            Dispatch {
                main,
                command_input,
                max_output: opts.max_output,
            },
        )
        .await?;
        Ok(process)
    }

    /// The live job processes (warm spares are not jobs: see [`spare_pids`](Self::spare_pids)).
    pub fn jobs(&self) -> Vec<JobProcess> {
        self.inner
            .procs()
            .values()
            .filter(|p| p.is_running())
            .cloned()
            .collect()
    }

    /// The pids of the live processes.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.jobs().iter().map(JobProcess::pid).collect();
        pids.sort_unstable();
        pids
    }

    /// Starts the warm spares of `kinds` (Node, Python) if they are not there, and waits until
    /// each has completed its handshake. Call it at start-up so that even the first `exec()`
    /// is warm. A no-op unless the config has `warm_spare`.
    pub async fn warm_up(&self, kinds: &[JobKind]) {
        if !self.inner.config.warm_spare {
            return;
        }
        for &kind in kinds {
            if !matches!(kind, JobKind::Node | JobKind::Python) {
                continue;
            }
            self.refill_spare(kind);
        }
        // Wait for each spare to exist (refill runs in the background), then for its handshake.
        for &kind in kinds {
            if !matches!(kind, JobKind::Node | JobKind::Python) {
                continue;
            }
            for _ in 0..2000 {
                let spare = self.inner.spares().get(&kind).cloned();
                if let Some(p) = spare {
                    p.ready().await;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    /// The pids of the warm spares waiting for a job.
    pub fn spare_pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.inner.spares().values().map(JobProcess::pid).collect();
        pids.sort_unstable();
        pids
    }

    /// A live process by pid.
    pub fn process(&self, pid: u32) -> Option<JobProcess> {
        self.inner.procs().get(&pid).cloned()
    }

    /// Manager-level events of every process (events with receiver `job` or `all`, progress,
    /// answers, logs, exits); each carries its pid.
    pub fn events(&self) -> broadcast::Receiver<ProcessEvent> {
        self.inner.events.subscribe()
    }

    /// Kills every live process gracefully (signal, grace, SIGKILL) and waits for them.
    pub async fn kill_all(&self) {
        let (signal, grace) = self.inner.kill_policy();
        let procs = self.inner.processes();
        for p in &procs {
            p.start_kill_with(signal, grace);
        }
        for p in procs {
            p.exited().await;
        }
    }
}

/// `{params}` → the params JSON; `{params.key}` → that field (strings raw).
fn template(arg: &str, params: &Value) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(start) = rest.find("{params") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('}') else {
            out.push_str(after);
            return out;
        };
        let key = &after["{params".len()..end];
        if key.is_empty() {
            out.push_str(&params.to_string());
        } else if let Some(field) = key.strip_prefix('.') {
            match params.get(field) {
                Some(Value::String(s)) => out.push_str(s),
                Some(v) => out.push_str(&v.to_string()),
                None => {}
            }
        } else {
            out.push_str(&after[..=end]);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::template;
    use serde_json::json;

    #[test]
    fn templates_fill_params() {
        let p = json!({"name": "a b", "n": 3});
        assert_eq!(template("--name={params.name}", &p), "--name=a b");
        assert_eq!(template("{params.n}", &p), "3");
        assert_eq!(template("{params.missing}x", &p), "x");
        assert_eq!(template("{params}", &p), p.to_string());
        assert_eq!(template("{other}", &p), "{other}");
        assert_eq!(template("plain", &p), "plain");
    }
}
