//! [`ChildJob`]: run one job in a fresh child process.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::process::{start, Dispatch, JobProcess, MainJob, ProcessEvent, ProcessOptions};
use crate::registry::{self, Managed};
use crate::resolve::{JobKind, JobsDir, ResolvedJob};
use crate::spawn::WorkerCommand;

mod options;

pub use options::{ChildJobConfig, ExecError, ExecOptions, Mode, ParamsVia, Runtime};

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
        self.exec_inner(job, params, opts, None).await
    }

    /// [`exec`](Self::exec) with descriptors passed to the job (`docs/protocol.md` §9): the
    /// worker gets them with its run (Rust SDK: `OwnedFd`s, Python: sockets and files, Node:
    /// `net.Socket` / `net.Server` / `dgram.Socket`). The run is sent once the worker's
    /// handshake says it takes them; a worker that does not, a refusal or a missing
    /// acknowledgement fails the job's outcome with an error named as [`FdError::name`]
    /// (never retried). The descriptors are closed on this side once passed, whatever
    /// happens.
    ///
    /// [`FdError::name`]: crate::FdError::name
    ///
    /// # Errors
    ///
    /// As [`exec`](Self::exec), and [`ExecError::Fds`] for more than `max_fds_per_run` or a
    /// descriptor that is not open, [`ExecError::FdsNeedProtocolMode`] in command mode.
    pub async fn exec_with_fds(
        &self,
        job: &str,
        params: Value,
        opts: ExecOptions,
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<JobProcess, ExecError> {
        if opts.mode != Mode::Protocol {
            return Err(ExecError::FdsNeedProtocolMode);
        }
        let kinds = crate::process::classify_all(&fds, self.inner.config.max_fds_per_run)?;
        let resolved = self.inner.jobs_dir.resolve(job)?;
        let fds = fds.into_iter().zip(kinds).collect();
        self.exec_inner(resolved, params, opts, Some(fds)).await
    }

    async fn exec_inner(
        &self,
        job: ResolvedJob,
        params: Value,
        opts: ExecOptions,
        fds: Option<Vec<(std::os::fd::OwnedFd, offload_protocol::FdKind)>>,
    ) -> Result<JobProcess, ExecError> {
        if let Some(t) = opts.timeout {
            crate::timer::check("timeout", t)?;
        }
        crate::timer::check("cancel_grace", opts.cancel_grace)?;
        for (name, value) in &opts.env {
            crate::check_env_var(name, value)?;
        }
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
        if fds.is_none() && self.spare_fits(job.kind, &opts) {
            let spare = self.inner.spares().remove(&job.kind);
            self.refill_spare(job.kind);
            if let Some(spare) = spare.filter(JobProcess::is_running) {
                if spare.assign(main.clone(), opts.timeout) {
                    self.track(&spare);
                    return Ok(spare);
                }
            }
        }
        let process = self
            .spawn(cmd, Some(main), command_input, fds, &opts)
            .await?;
        self.track(&process);
        Ok(process)
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
            && opts.log_sink.is_none()
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
            match this
                .spawn(cmd, None, None, None, &ExecOptions::default())
                .await
            {
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
        let process = self.spawn(cmd, main, command_input, None, opts).await?;
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
        main_fds: Option<Vec<(std::os::fd::OwnedFd, offload_protocol::FdKind)>>,
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
            sink_hook: None,
            log_sink: opts.log_sink.clone(),
            cgroup: config.cgroups,
            max_fds_per_run: config.max_fds_per_run,
            fd_ack_timeout: config.fd_ack_timeout,
            host_read: false,
            event_backpressure: config.event_backpressure,
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
                main_fds,
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
