//! `NativePool`: `offload_pool::ChildPool` for JavaScript.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use napi_derive::napi;
use offload_pool::{
    ChildPool, HostPoolOptions, KillMode, KillOrder, PoolConfig, PoolEvent, RunOptions, StartError,
    WorkerKind,
};
use offload_process::ProcessEvent;
use offload_protocol::{Call, ToWorker};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::runs::{forward_job, lock, pool_error_code, Item, Runs, Slot, Slots};
use crate::{emit, js_error, ms, parse, signal_number, EventFn};

/// The pool options the JavaScript layer sends (already validated there; checked again by
/// [`HostPoolOptions`], shared with the Python binding): its `camelCase` keys are renamed to
/// the `snake_case` of [`HostPoolOptions`] first (top-level keys only: `env`'s are names).
fn pool_config(json: &str) -> napi::Result<PoolConfig> {
    let keys: serde_json::Map<String, Value> = parse("pool options", json)?;
    let snake = keys.into_iter().map(|(k, v)| (snake_case(&k), v)).collect();
    let opts: HostPoolOptions = serde_json::from_value(Value::Object(snake))
        .map_err(|e| js_error("InvalidArgument", format!("pool options: {e}")))?;
    let mut config = opts
        .into_config(WorkerKind::Node)
        .map_err(|e| js_error("InvalidArgument", e))?;
    // Every stream of the pool the addon subscribes to is read at once (`runs.rs`, `start`).
    config.event_backpressure = Some(crate::EVENTS_IN_FLIGHT);
    Ok(config)
}

/// `jobsDir` → `jobs_dir`.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct RunOpts {
    timeout_ms: Option<u64>,
    attempts: Option<u32>,
    key: Option<String>,
    /// Pinned to this worker (ee-core's `JobProcess.dispatch` on a pool's child).
    worker: Option<u32>,
    /// Positional arguments (ee-core's `jobParams` of that dispatch).
    args: Option<Vec<serde_json::Value>>,
    events: bool,
    /// JavaScript never cancels it by its token (`_runLight`): no slot in the token map.
    uncancellable: bool,
    /// The key of descriptors held for it (`holdFds`); only `run` takes them.
    fds: Option<u32>,
}

impl RunOpts {
    fn options(self) -> RunOptions {
        let mut ro = RunOptions::default();
        ro.timeout = self.timeout_ms.map(ms);
        ro.max_attempts = self.attempts.map(|n| n.max(1));
        ro.key = self.key;
        ro.worker = self.worker;
        ro.args = self.args;
        if self.events {
            ro = ro.with_events();
        }
        ro
    }
}

/// A supervised pool of resident worker processes.
#[napi]
pub struct NativePool {
    pool: ChildPool,
    slots: Slots,
    events: Arc<EventFn>,
    /// The runs of `submit_many` (their answers go to JavaScript in batches).
    runs: Runs,
    /// The key of its workers' channels in `host_poll.rs`.
    poll_key: u32,
}

impl Drop for NativePool {
    fn drop(&mut self) {
        crate::host_poll::forget(self.poll_key);
        crate::js_answers::unregister(self.poll_key);
    }
}

/// Starts a pool (`config` is JSON); resolves when `min` workers are ready. `on_event` gets
/// every event as a JSON string: `{"token", "job": JobEvent}`, `{"token", "end": true}`,
/// `{"pool": PoolEvent}` (worker lifecycle), `{"poolJob": JobEvent}` (named job events for
/// the manager), `{"worker": pid, "process": ProcessEvent}`. Its workers' channels are read
/// on this thread (`host_poll.rs`).
#[napi(ts_return_type = "Promise<NativePool>")]
pub fn start_pool(
    env: &napi::Env,
    config: String,
    on_event: EventFn,
) -> napi::Result<napi::bindgen_prelude::PromiseRaw<'_, NativePool>> {
    let mut config = pool_config(&config)?;
    let on_event = Arc::new(on_event);
    let poll_key = crate::host_poll::next_key();
    let done = crate::runs::Done::new(Arc::clone(&on_event));
    config.host_reader = crate::host_poll::host_reader(env, poll_key, Arc::clone(&done))?;
    env.spawn_future(start(config, on_event, poll_key, done))
}

async fn start(
    config: PoolConfig,
    on_event: Arc<EventFn>,
    poll_key: u32,
    done: Arc<crate::runs::Done>,
) -> napi::Result<NativePool> {
    let pool = ChildPool::start(config).await.map_err(|e| match e {
        // A limit of the options (ping below 10 ms, CPU above 10,000 %, …), named by the pool.
        StartError::Config(m) => js_error("InvalidArgument", m),
        e => js_error("StartFailed", e),
    })?;
    let mut rx = pool.control_events();
    let tsfn = Arc::clone(&on_event);
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                // Named events for the manager (receiver `job`/`all`), with or without a job.
                Ok(PoolEvent::Job(ev @ offload_pool::JobEvent::Event { .. })) => {
                    let credit = crate::job_credit(&ev);
                    crate::emit_with(&tsfn, json!({ "poolJob": ev }).to_string(), credit);
                }
                Ok(PoolEvent::Job(_)) => {}
                Ok(ev) => emit(&tsfn, json!({ "pool": ev }).to_string()),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    emit(&tsfn, json!({ "lost": n }).to_string());
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let slots: Slots = Arc::new(Mutex::new(HashMap::new()));
    let runs = Runs::start(
        pool.clone(),
        Arc::clone(&slots),
        Arc::clone(&on_event),
        done,
    );
    Ok(NativePool {
        pool,
        slots,
        events: on_event,
        runs,
        poll_key,
    })
}

impl NativePool {
    /// The pool (for the schedules of `schedule.rs`).
    pub(crate) fn child_pool(&self) -> &ChildPool {
        &self.pool
    }
}

#[napi]
impl NativePool {
    /// Runs `job` with `params` (JSON); resolves to JSON: `{"id", "outcome", "attempts"}`, or
    /// `{"error": {"code", "message"}}` when the pool refused it. `token` names the run for
    /// `cancel` and for its events (sent when `opts.events`, ended by `{"token", "end": true}`).
    #[napi]
    pub async fn run(
        &self,
        token: u32,
        job: String,
        params: String,
        opts: String,
    ) -> napi::Result<String> {
        let params: Box<RawValue> = parse("params", &params)?;
        let ro = parse::<RunOpts>("run options", &opts)?;
        let fds = ro.fds.map(crate::fds::take);
        let ro = ro.options();
        // A cancel may have come first (it leaves `Pending(true)`).
        lock(&self.slots)
            .entry(token)
            .or_insert(Slot::Pending(false));
        let submitted = match fds {
            Some(fds) => {
                let params: Value = parse("params", params.get())?;
                self.pool.run_with_fds(&job, params, ro, fds).await
            }
            None => self.pool.run_raw(&job, params, ro).await,
        };
        let mut handle = match submitted {
            Ok(h) => h,
            Err(e) => {
                lock(&self.slots).remove(&token);
                return Ok(
                    json!({"error": {"code": pool_error_code(&e), "message": e.to_string()}})
                        .to_string(),
                );
            }
        };
        {
            let mut slots = lock(&self.slots);
            if matches!(slots.get(&token), Some(Slot::Pending(true))) {
                handle.cancel();
            }
            slots.insert(token, Slot::Running(handle.canceller()));
        }
        let forward = handle
            .events()
            .map(|rx| forward_job(token, rx, Arc::clone(&self.events)));
        let result = handle.result().await;
        if let Some(f) = forward {
            let _ = f.await;
        }
        lock(&self.slots).remove(&token);
        Ok(
            json!({"id": result.id, "outcome": result.outcome, "attempts": result.attempts})
                .to_string(),
        )
    }

    /// Submits a batch of runs without a promise each: `batch` is a JSON array of
    /// `[token, job, params, opts]`. Each run's end arrives through the event callback, batched:
    /// `{"results": [[token, value] | {"token", "id", "outcome", "attempts"} | {"token",
    /// "error": {"code", "message"}}]}` (an array is a success); with `opts.events`, its events
    /// as with `run`.
    #[napi]
    pub fn submit_many(&self, batch: String) -> napi::Result<()> {
        let items: Vec<(u32, String, Box<RawValue>, RunOpts)> = parse("batch", &batch)?;
        self.runs.submit(
            items
                .into_iter()
                .map(|(token, job, params, o)| Item {
                    token,
                    cancellable: !o.uncancellable,
                    job,
                    params,
                    opts: o.options(),
                })
                .collect(),
        );
        Ok(())
    }

    /// Results read on this thread go to `callback` at once, as `{"results": [...]}` (see
    /// `js_answers.rs`); others still come through `"drain"` and `takeResults`.
    #[napi]
    pub fn direct_results(
        &self,
        env: napi::Env,
        callback: napi::bindgen_prelude::Function<String, ()>,
    ) -> napi::Result<()> {
        let (done, slots) = self.runs.done_and_slots();
        // SAFETY: a call from JavaScript, on its thread, with a function of its environment.
        unsafe {
            crate::js_answers::register(
                env.raw(),
                napi::JsValue::raw(&callback),
                self.poll_key,
                done,
                slots,
            )
        }
    }

    /// The answers of runs without events gathered since the last call, as
    /// `{"results": [...]}` (the event callback got `"drain"` when the first of them came).
    #[napi]
    pub fn take_results(&self) -> String {
        self.runs.take()
    }

    /// Cancels a run: a queued one ends at once, a running one gets `cancel`, then its worker
    /// is killed after the cancel grace. A token not seen yet is remembered (its `run` may not
    /// have reached the pool); call it only for runs that have not settled.
    #[napi]
    pub fn cancel(&self, token: u32) {
        let mut slots = lock(&self.slots);
        match slots.get_mut(&token) {
            Some(Slot::Pending(c)) => *c = true,
            Some(Slot::Running(c)) => c.cancel(),
            Some(Slot::Finished) => {}
            None => {
                slots.insert(token, Slot::Pending(true));
            }
        }
    }

    /// The live workers' pids.
    #[napi]
    pub fn pids(&self) -> Vec<u32> {
        self.pool.pids()
    }

    /// Per-worker health as JSON (pid, index, state, rss, cpu, in_flight, jobs_done, …).
    #[napi]
    pub async fn health(&self) -> napi::Result<String> {
        let h = self
            .pool
            .health()
            .await
            .map_err(|e| js_error("PoolGone", e))?;
        Ok(serde_json::to_string(&h).unwrap_or_else(|_| "[]".into()))
    }

    /// Jobs waiting in the queue.
    #[napi]
    pub async fn queued(&self) -> napi::Result<u32> {
        let n = self
            .pool
            .queued()
            .await
            .map_err(|e| js_error("PoolGone", e))?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Sets the number of workers.
    #[napi]
    pub async fn resize(&self, n: u32) -> napi::Result<()> {
        self.pool
            .resize(n as usize)
            .await
            .map_err(|e| js_error(e.code(), e))
    }

    /// Replaces every worker (after job files changed).
    #[napi]
    pub async fn recycle_all(&self) -> napi::Result<()> {
        self.pool
            .recycle_all()
            .await
            .map_err(|e| js_error("PoolGone", e))
    }

    /// Sends an event to every ready worker; resolves to JSON `{pid: acked}`.
    #[napi]
    pub async fn broadcast(
        &self,
        name: String,
        data: String,
        timeout_ms: u32,
    ) -> napi::Result<String> {
        let data: Value = parse("data", &data)?;
        let acks = self
            .pool
            .broadcast(&name, data, ms(u64::from(timeout_ms)))
            .await
            .map_err(|e| js_error("PoolGone", e))?;
        Ok(serde_json::to_string(&acks).unwrap_or_else(|_| "{}".into()))
    }

    /// The worker bound to `key` (binding one now if needed), or null.
    #[napi]
    pub async fn bound_child(&self, key: String) -> napi::Result<Option<u32>> {
        let p = self
            .pool
            .bound_child(&key)
            .await
            .map_err(|e| js_error(e.code(), e))?;
        Ok(p.map(|p| p.pid()))
    }

    /// Forwards the per-process events of worker `pid` (events for `task`/`all`, progress,
    /// logs, exit) as `{"worker": pid, "process": …}`; false if there is no such worker.
    #[napi]
    pub fn watch_worker(&self, pid: u32) -> bool {
        let Some(p) = self.pool.worker(pid) else {
            return false;
        };
        let mut rx = p.events();
        let tsfn = Arc::clone(&self.events);
        napi::bindgen_prelude::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        let last = matches!(ev, ProcessEvent::Exited { .. });
                        let credit = crate::process_credit(&ev);
                        let json = json!({"worker": pid, "process": ev}).to_string();
                        crate::emit_with(&tsfn, json, credit);
                        if last {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let lost = json!({"event": "lost", "lost": n});
                        emit(&tsfn, json!({"worker": pid, "process": lost}).to_string());
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        true
    }

    /// ee-core's `callFunc` on a pool worker: sends `call` of `func` on `job` (`path`: the
    /// job file) with `args` (JSON array). Fire and forget, like ee-core; false if the worker
    /// is gone.
    #[napi]
    pub fn call_worker(
        &self,
        pid: u32,
        job: String,
        path: Option<String>,
        func: String,
        args: String,
    ) -> napi::Result<bool> {
        let args: Vec<Value> = parse("args", &args)?;
        let Some(p) = self.pool.worker(pid) else {
            return Ok(false);
        };
        let id = format!(
            "call-{pid}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let mut call = Call::new(id, job, func, args);
        if let Some(path) = path {
            call = call.with_path(path);
        }
        Ok(p.send(ToWorker::Call(call)).is_ok())
    }

    /// Stops accepting jobs, lets running ones finish until `deadline_ms`, then kills the rest.
    #[napi]
    pub async fn shutdown(&self, deadline_ms: u32) {
        self.pool.shutdown(ms(u64::from(deadline_ms))).await;
    }

    /// Kills every worker at once.
    #[napi]
    pub async fn kill(&self) {
        self.pool.kill().await;
    }

    /// Kills one worker the way load-process-manager does: `soft` sends `shutdown` (its
    /// running jobs and shutdown hook may finish), `hard` the kill notice; either ends in
    /// SIGKILL after `grace_ms`. Resolves false for a pid that is not one of the workers; the
    /// pool starts the replacement.
    #[napi]
    pub async fn kill_worker_mode(
        &self,
        pid: u32,
        mode: String,
        grace_ms: u32,
    ) -> napi::Result<bool> {
        match self
            .pool
            .kill_worker(pid, kill_mode(&mode, grace_ms)?)
            .await
        {
            Ok(()) => Ok(true),
            Err(offload_pool::PoolError::NoSuchWorker { .. }) => Ok(false),
            Err(e) => Err(js_error(pool_error_code(&e), e)),
        }
    }

    /// Kills every worker, soft or hard, at once (`parallel`) or one after the other
    /// (`sequence`), and ends the pool; resolves when no worker is left.
    #[napi]
    pub async fn kill_all(&self, mode: String, grace_ms: u32, order: String) -> napi::Result<()> {
        let order = match order.as_str() {
            "parallel" => KillOrder::Parallel,
            "sequence" => KillOrder::Sequence,
            other => {
                return Err(js_error(
                    "InvalidArgument",
                    format!("order {other:?}: use \"parallel\" or \"sequence\""),
                ))
            }
        };
        self.pool
            .kill_all(kill_mode(&mode, grace_ms)?, order)
            .await
            .map_err(|e| js_error(pool_error_code(&e), e))
    }

    /// Kills one worker (SIGTERM, then SIGKILL after `grace_ms`); the pool replaces it.
    #[napi]
    pub fn kill_worker(&self, pid: u32, signal: String, grace_ms: u32) -> napi::Result<bool> {
        let sig = signal_number(&signal)?;
        Ok(match self.pool.worker(pid) {
            Some(p) => {
                p.start_kill_with(sig, ms(u64::from(grace_ms)));
                true
            }
            None => false,
        })
    }
}

/// A kill mode by name (`soft` or `hard`) with its grace.
fn kill_mode(mode: &str, grace_ms: u32) -> napi::Result<KillMode> {
    let grace = ms(u64::from(grace_ms));
    match mode {
        "soft" => Ok(KillMode::Soft { grace }),
        "hard" => Ok(KillMode::Hard { grace }),
        other => Err(js_error(
            "InvalidArgument",
            format!("kill mode {other:?}: use \"soft\" or \"hard\""),
        )),
    }
}
