//! The worker: handler registry and the main loop.
//!
//! The runtime's thread reads and decodes frames ([`crate::inbound`]) and dispatches them
//! ([`Worker::serve`]); the watchdog thread reads instead while a handler holds that thread
//! ([`crate::watchdog`]); each job is polled once in place, then in its own task if it waits
//! ([`crate::job`]); one task writes frames ([`Outbox`]). Shared state is the map of running
//! jobs.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offload_protocol::{
    Ack, Broadcast, Call, ErrorInfo, FromWorker, Ready, Run, ToWorker, WorkerError as WireError,
    CAP_FDS, HANDLE_ACK, HANDLE_NACK, PROTOCOL_MINOR, PROTOCOL_VERSION, SHUTDOWN_ACK_ID,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::io::Interest;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::context::{Context, ContextInner, JobError, StopReason};
use crate::control::{Control, KillHook, ShutdownHook, HOOK_MIN};
use crate::error::WorkerError;
use crate::fds::PendingFds;
use crate::inbound::{Channel, Inbound, OnEnd, Read};
use crate::job::BoxFuture;
use crate::outbox::Outbox;
use crate::shared::Shared;
use crate::streams::RunStreams;
use crate::watchdog::Rouser;

type Handler = Arc<dyn Fn(Value, Context) -> BoxFuture + Send + Sync>;
type Listener = Arc<dyn Fn(&Value) + Send + Sync>;

/// The default grace period of SIGTERM.
const SIGTERM_GRACE: Duration = Duration::from_secs(5);
/// How long cancelled jobs get to answer before the worker exits anyway.
const CANCEL_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// A worker under construction: handlers, listeners, concurrency.
#[derive(Default)]
pub struct Worker {
    handlers: HashMap<String, Handler>,
    default: Option<Handler>,
    functions: HashMap<(String, String), Handler>,
    listeners: HashMap<String, Vec<Listener>>,
    concurrency: Option<u32>,
    on_shutdown: Vec<ShutdownHook>,
    on_kill: Vec<KillHook>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// How [`Worker::serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stopped {
    /// A `shutdown` (or SIGTERM) completed: everything answered and acked.
    Shutdown,
    /// The channel closed: the supervisor is gone or let go of this worker.
    ChannelClosed,
    /// The supervisor sent the hard-kill notice: the kill hooks ran, `SIGKILL` follows.
    Killed,
}

fn wrap<P, R, E, F, Fut>(f: F) -> Handler
where
    P: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    E: Into<JobError> + Send + 'static,
    F: Fn(P, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
{
    let f = Arc::new(f);
    Arc::new(move |params: Value, ctx: Context| {
        let f = Arc::clone(&f);
        Box::pin(async move {
            let params: P = serde_json::from_value(params)
                .map_err(|e| JobError::new("TypeError", format!("invalid params: {e}")))?;
            let out = f(params, ctx).await.map_err(Into::into)?;
            serde_json::to_value(out)
                .map_err(|e| JobError::new("TypeError", format!("result is not json: {e}")))
        }) as BoxFuture
    })
}

impl Worker {
    /// An empty worker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the handler of job `name`.
    #[must_use]
    pub fn handler<P, R, E, F, Fut>(mut self, name: &str, f: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Into<JobError> + Send + 'static,
        F: Fn(P, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.handlers.insert(name.to_owned(), wrap(f));
        self
    }

    /// Registers the handler used when no name matches (a single-job executable).
    #[must_use]
    pub fn default_handler<P, R, E, F, Fut>(mut self, f: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Into<JobError> + Send + 'static,
        F: Fn(P, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.default = Some(wrap(f));
        self
    }

    /// Registers function `func` of job `job`, reachable through `call`; it gets the call's
    /// `args` array as its params.
    #[must_use]
    pub fn function<P, R, E, F, Fut>(mut self, job: &str, func: &str, f: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Into<JobError> + Send + 'static,
        F: Fn(P, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.functions
            .insert((job.to_owned(), func.to_owned()), wrap(f));
        self
    }

    /// Runs `f` for every broadcast `event` named `name` (before the `ack`).
    #[must_use]
    pub fn on_event(mut self, name: &str, f: impl Fn(&Value) + Send + Sync + 'static) -> Self {
        self.listeners
            .entry(name.to_owned())
            .or_default()
            .push(Arc::new(f));
        self
    }

    /// Runs `f` when the supervisor asks this worker to stop gracefully (`shutdown`, SIGTERM:
    /// load-process-manager's `softKill`): at once, while running jobs finish. The shutdown's
    /// `ack` (and the exit) waits for every hook and every job, for the grace (at least 1 s);
    /// a hook still running then is abandoned.
    #[must_use]
    pub fn on_shutdown<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Control) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_shutdown.push(Arc::new(move |c| {
            Box::pin(f(c)) as Pin<Box<dyn Future<Output = ()> + Send>>
        }));
        self
    }

    /// Runs `f` on the supervisor's hard-kill notice (`kill`), before `SIGKILL` arrives
    /// (load-process-manager's `hardKill` event). Running jobs are cancelled; the worker then
    /// stops ([`Stopped::Killed`]). Keep it short: the kill comes after the notice's grace
    /// whatever the hook does.
    #[must_use]
    pub fn on_kill(mut self, f: impl Fn(&Control) + Send + Sync + 'static) -> Self {
        self.on_kill.push(Arc::new(f));
        self
    }

    /// How many jobs run at once; `OFFLOAD_CONCURRENCY` overrides it.
    #[must_use]
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    /// Runs the worker on a new current-thread runtime and exits the process: status 0 after a
    /// shutdown or when the channel closes, 2 with a message on stderr after a protocol or
    /// environment error.
    ///
    /// Handlers share the runtime's one thread, which also reads the channel (one wake-up per
    /// round trip). A watchdog thread reads it instead while that thread is held, so a handler
    /// that blocks it still gets its cancellation token fired on `cancel` (at once once it has
    /// blocked for a tick or two of 10 ms, within two ticks before that),
    /// and the end of the channel still ends the process; but the other jobs wait while it
    /// blocks: run CPU-bound or blocking work with `tokio::task::spawn_blocking` when jobs are
    /// to run in parallel.
    pub fn run(self) -> ! {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("offload worker: cannot start a runtime: {e}");
                std::process::exit(2)
            }
        };
        let code = match rt.block_on(self.serve_with(OnEnd::Exit)) {
            Ok(_) => 0,
            Err(e) => {
                eprintln!("offload worker: {e}");
                2
            }
        };
        // Exit without waiting for jobs that ignore cancellation.
        std::process::exit(code)
    }

    /// Serves the channel until shutdown or end of file. Call inside a tokio runtime with
    /// time, io and signal drivers enabled. Running jobs are not awaited when the channel
    /// closes: exit the process promptly after this returns.
    ///
    /// On a multi-threaded runtime, while a handler blocks one of its threads for longer than
    /// the watchdog's tick (10 ms), the watchdog may read the channel in this future's stead and
    /// hands it the frames (one hop more per frame; nothing is lost or reordered).
    ///
    /// # Errors
    ///
    /// [`WorkerError`] for a bad environment or a protocol error from the supervisor.
    pub async fn serve(self) -> Result<Stopped, WorkerError> {
        self.serve_with(OnEnd::Forward).await
    }

    async fn serve_with(self, on_end: OnEnd) -> Result<Stopped, WorkerError> {
        let cfg = Config::from_env(self.concurrency)?;
        let stream = crate::fd::take_channel_fd(cfg.fd)?;
        stream.set_nonblocking(true)?;
        let read_side = stream.try_clone()?;
        let ready_side = stream.try_clone()?;
        let closer = stream.try_clone()?;
        let (outbox, writer) = Outbox::start(stream, cfg.max_frame);
        outbox.send(&FromWorker::Ready(
            Ready::handshake(
                PROTOCOL_VERSION,
                std::process::id(),
                format!(
                    "rust/{}",
                    option_env!("CARGO_PKG_RUST_VERSION").unwrap_or("1")
                ),
                [
                    "cancel", "call", "progress", "events", "shutdown", "ping", CAP_FDS,
                ]
                .map(String::from)
                .to_vec(),
                cfg.concurrency,
            )
            .with_minor(PROTOCOL_MINOR),
        ));

        let shared = Arc::new(Shared::new());
        let (tx, mut inbound) = tokio::sync::mpsc::unbounded_channel();
        let channel = Arc::new(Channel::new(read_side, cfg.max_frame));
        let rouser = crate::watchdog::start(Arc::clone(&channel), Arc::clone(&shared), tx, on_end)?;
        let dispatcher = Dispatcher {
            worker: Arc::new(self),
            shared: Arc::clone(&shared),
            outbox: outbox.clone(),
            concurrency: cfg.concurrency as usize,
            fds: PendingFds::default(),
            rouser,
        };
        // The runtime's own registration of the channel, for reading (the writer has another).
        let readable = crate::fd::register(ready_side, Interest::READABLE)?;
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut batch = Vec::new();

        let end = loop {
            tokio::select! {
                biased;
                // What the watchdog read while this thread was held: older than the channel.
                msg = inbound.recv() => {
                    channel.progress.fetch_add(1, Ordering::SeqCst);
                    let Some(msg) = msg else { break Ok(Stopped::ChannelClosed) };
                    if let Some(end) = dispatcher.take(msg) {
                        break end;
                    }
                }
                guard = readable.readable() => {
                    let mut guard = guard?;
                    let end = {
                        let mut st = channel.lock();
                        channel.progress.fetch_add(1, Ordering::SeqCst);
                        while let Ok(msg) = inbound.try_recv() {
                            batch.push(msg);
                        }
                        let mut reads = 0;
                        loop {
                            match channel.read_once(&mut st, &shared, &mut batch) {
                                Read::Drained => {
                                    guard.clear_ready();
                                    break None;
                                }
                                // Bounded: the batch is handled before reading on.
                                Read::More if reads < 4 => reads += 1,
                                Read::More => break None,
                                Read::End(end) => {
                                    channel.ended.store(true, Ordering::SeqCst);
                                    break Some(end);
                                }
                            }
                        }
                    };
                    let mut stop = None;
                    for msg in batch.drain(..).chain(end) {
                        if stop.is_none() {
                            stop = dispatcher.take(msg);
                        }
                    }
                    if let Some(stop) = stop {
                        break stop;
                    }
                }
                _ = sigterm.recv() => dispatcher.begin_shutdown(SIGTERM_GRACE),
                () = shared.done.notified() => {
                    outbox.close();
                    drop(dispatcher);
                    drop(outbox);
                    let _ = writer.await;
                    // Ends the watchdog too; it leaves the exit to our caller.
                    shared.finished.store(true, Ordering::SeqCst);
                    let _ = closer.shutdown(std::net::Shutdown::Both);
                    if shared.killed.load(Ordering::SeqCst) {
                        return Ok(Stopped::Killed);
                    }
                    return Ok(Stopped::Shutdown);
                }
            }
        };
        channel.ended.store(true, Ordering::SeqCst);
        end
    }
}

/// What a run carries besides its params.
#[derive(Default)]
struct Extras {
    deadline: Option<u64>,
    /// Descriptors passed with it (`docs/protocol.md` §9).
    fds: Vec<std::os::fd::OwnedFd>,
    /// Those of them that are its streams (§10).
    streams: RunStreams,
}

struct Dispatcher {
    worker: Arc<Worker>,
    shared: Arc<Shared>,
    outbox: Outbox,
    concurrency: usize,
    /// Descriptors waiting for their run.
    fds: PendingFds,
    rouser: Rouser,
}

impl Dispatcher {
    /// Handles one thing read; `Some` ends `serve` with it.
    fn take(&self, msg: Inbound) -> Option<Result<Stopped, WorkerError>> {
        match msg {
            Inbound::Message(msg) => self.dispatch(msg),
            Inbound::Fd(notice, fd) => {
                let taken = self.fds.offer(&notice, fd);
                self.outbox
                    .send_line(if taken { HANDLE_ACK } else { HANDLE_NACK });
            }
            Inbound::Closed => {
                self.cancel_all(StopReason::Cancelled);
                return Some(Ok(Stopped::ChannelClosed));
            }
            Inbound::Protocol(e) => return Some(Err(WorkerError::Protocol(e))),
        }
        None
    }

    fn dispatch(&self, msg: ToWorker) {
        match msg {
            ToWorker::Run(run) => self.run(run),
            ToWorker::Call(call) => self.call(call),
            ToWorker::Cancel(c) => {
                self.fds.forget(&c.id);
                if let Some((ctx, _)) = self.shared.jobs().get(&c.id) {
                    ctx.stop(StopReason::Cancelled);
                }
            }
            ToWorker::Event(b) => self.broadcast(b),
            ToWorker::Ping(p) => self
                .outbox
                .send(&FromWorker::Pong(crate::control::pong(p.id))),
            ToWorker::Kill(_) => self.on_kill_notice(),
            ToWorker::Shutdown(s) => self.begin_shutdown(Duration::from_millis(s.grace_ms)),
            // Newer message kinds of protocol v1 that this SDK does not know yet.
            _ => {}
        }
    }

    fn fail(&self, id: String, name: &str, message: String) {
        self.outbox.send(&FromWorker::Error(WireError::new(
            id,
            ErrorInfo::new(name, message),
        )));
    }

    fn lookup(&self, job: &str) -> Option<Handler> {
        let w = &self.worker;
        w.handlers
            .get(job)
            .or_else(|| job.rsplit('/').next().and_then(|last| w.handlers.get(last)))
            .or(w.default.as_ref())
            .cloned()
    }

    fn run(&self, run: Run) {
        let mut fds = match run.fds {
            Some(n) => match self.fds.take(&run.id, n) {
                Ok(fds) => fds,
                Err(e) => return self.fail(run.id, "FdMissing", e),
            },
            None => Vec::new(),
        };
        let streams = match RunStreams::split(run.streams, &mut fds) {
            Ok(s) => s,
            Err(e) => return self.fail(run.id, "FdMissing", e),
        };
        let Some(handler) = self.lookup(&run.job) else {
            return self.fail(
                run.id,
                "JobNotFound",
                format!("no handler for job {:?}", run.job),
            );
        };
        self.start(
            run.id,
            run.job,
            run.params,
            Extras {
                deadline: run.deadline,
                fds,
                streams,
            },
            handler,
            true,
        );
    }

    fn call(&self, call: Call) {
        let key = (call.job.clone(), call.func.clone());
        let handler = self.worker.functions.get(&key).cloned().or_else(|| {
            let last = call.job.rsplit('/').next()?.to_owned();
            self.worker
                .functions
                .get(&(last, call.func.clone()))
                .cloned()
        });
        let Some(handler) = handler else {
            return self.fail(
                call.id,
                "NoSuchFunction",
                format!("job {:?} has no function {:?}", call.job, call.func),
            );
        };
        self.start(
            call.id,
            call.job,
            Value::Array(call.args),
            Extras::default(),
            handler,
            false,
        );
    }

    /// Starts a job (`counts`: a `run`, limited by the concurrency) or a call (not limited: a
    /// control operation on a running job, `docs/protocol.md` §4).
    fn start(
        &self,
        id: String,
        job: String,
        params: Value,
        extras: Extras,
        h: Handler,
        counts: bool,
    ) {
        let Extras {
            deadline,
            fds,
            streams,
        } = extras;
        if self.shared.shutting_down.load(Ordering::SeqCst) {
            return self.fail(id, "ShuttingDown", "the worker is shutting down".into());
        }
        let ctx = {
            let mut jobs = self.shared.jobs();
            if counts && jobs.running >= self.concurrency {
                drop(jobs);
                return self.fail(
                    id,
                    "Busy",
                    format!("the worker already runs {} jobs", self.concurrency),
                );
            }
            if jobs.contains_key(&id) {
                drop(jobs);
                return self.fail(id, "DuplicateId", "a job with this id is running".into());
            }
            let ctx = Context {
                inner: Arc::new(ContextInner {
                    id: id.clone(),
                    job,
                    deadline,
                    token: CancellationToken::new(),
                    reason: Mutex::new(None),
                    outbox: self.outbox.clone(),
                    fds: Mutex::new(fds),
                    streams: Mutex::new(streams),
                }),
            };
            jobs.insert(id, ctx.clone(), counts);
            ctx
        };
        self.rouser.rouse();
        crate::job::launch(
            h(params, ctx.clone()),
            ctx,
            deadline,
            &self.shared,
            &self.outbox,
        );
    }

    fn broadcast(&self, b: Broadcast) {
        if let Some(listeners) = self.worker.listeners.get(&b.name) {
            for l in listeners {
                l(&b.data);
            }
        }
        if let Some(id) = b.id {
            self.outbox.send(&FromWorker::Ack(Ack::new(id)));
        }
    }

    fn cancel_all(&self, reason: StopReason) {
        for (ctx, _) in self.shared.jobs().values() {
            ctx.stop(reason);
        }
    }

    fn begin_shutdown(&self, grace: Duration) {
        if self.shared.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let outbox = self.outbox.clone();
        let control = Control {
            outbox: self.outbox.clone(),
        };
        let hooks: Vec<_> = self
            .worker
            .on_shutdown
            .iter()
            .map(|h| h(control.clone()))
            .collect();
        let hooks = tokio::spawn(async move {
            for h in hooks {
                h.await;
            }
        });
        let hook_budget = grace.max(HOOK_MIN);
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            if tokio::time::timeout(grace, shared.wait_drained())
                .await
                .is_err()
            {
                for (ctx, _) in shared.jobs().values() {
                    ctx.stop(StopReason::Cancelled);
                }
                let _ = tokio::time::timeout(CANCEL_ANSWER_WAIT, shared.wait_drained()).await;
            }
            let left = hook_budget
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(100));
            if tokio::time::timeout(left, hooks).await.is_err() {
                eprintln!(
                    "offload worker: a shutdown hook did not finish within the grace; abandoned"
                );
            }
            outbox.send(&FromWorker::Ack(Ack::new(SHUTDOWN_ACK_ID)));
            shared.done.notify_one();
        });
    }

    /// The hard-kill notice: every job is cancelled, the kill hooks run, and the worker stops
    /// (the supervisor sends `SIGKILL` after the notice's grace whatever happens).
    fn on_kill_notice(&self) {
        self.cancel_all(StopReason::Cancelled);
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        let control = Control {
            outbox: self.outbox.clone(),
        };
        for hook in &self.worker.on_kill {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&control))).is_err() {
                eprintln!("offload worker: a kill hook panicked");
            }
        }
        self.shared.killed.store(true, Ordering::SeqCst);
        self.shared.done.notify_one();
    }
}
