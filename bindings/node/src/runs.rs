//! The hot path of `NativePool::submit_many`: runs are submitted on the JavaScript thread
//! itself (no task, no thread hop, one lock of the token map per batch), and one driver task
//! per pool awaits every run's result and hands the answers to JavaScript in batches: one
//! threadsafe-function call carries every answer that finished meanwhile.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use offload_pool::{Canceller, ChildPool, JobHandle, PoolError, RunOptions};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::{emit, EventFn};

/// A run's token in the JavaScript layer, and where it stands in the addon.
pub(crate) enum Slot {
    /// Submitted to JavaScript, not yet accepted by the pool; `true` once cancelled.
    Pending(bool),
    Running(Canceller),
}

pub(crate) type Slots = Arc<Mutex<HashMap<u32, Slot>>>;

/// A run's answer once it ends: its token and its JSON for JavaScript.
type Answer = Pin<Box<dyn Future<Output = (u32, String)> + Send>>;

/// A submission waiting for room in the pool's queue (`Backpressure::Wait`).
type Submit = Pin<Box<dyn Future<Output = Result<JobHandle, PoolError>> + Send>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One run of a `submit_many` batch.
pub(crate) struct Item {
    pub token: u32,
    pub job: String,
    pub params: Value,
    pub opts: RunOptions,
}

/// The runs of one pool: submits them and delivers their answers.
pub(crate) struct Runs {
    pool: ChildPool,
    slots: Slots,
    events: Arc<EventFn>,
    answers: mpsc::UnboundedSender<Vec<Answer>>,
}

impl Runs {
    /// Starts the driver task (on napi's runtime; callable from any thread).
    pub(crate) fn start(pool: ChildPool, slots: Slots, events: Arc<EventFn>) -> Self {
        let (answers, rx) = mpsc::unbounded_channel();
        napi::bindgen_prelude::spawn(drive(rx, Arc::clone(&slots), Arc::clone(&events)));
        Self {
            pool,
            slots,
            events,
            answers,
        }
    }

    /// Submits `items` in order. A submission completes at once unless the pool's queue is full
    /// under `Backpressure::Wait`: from there on, the rest of the batch is submitted, still in
    /// order, by a task that waits for room.
    pub(crate) fn submit(&self, items: Vec<Item>) {
        let mut answers = Vec::with_capacity(items.len());
        let mut items = items.into_iter();
        let mut waiting: Option<(u32, Submit)> = None;
        {
            let mut slots = lock(&self.slots);
            let mut cx = Context::from_waker(Waker::noop());
            for it in items.by_ref() {
                let pool = self.pool.clone();
                let mut submit: Submit =
                    Box::pin(async move { pool.run_with(&it.job, it.params, it.opts).await });
                match submit.as_mut().poll(&mut cx) {
                    Poll::Ready(r) => answers.push(self.accepted(&mut slots, it.token, r)),
                    Poll::Pending => {
                        slots.entry(it.token).or_insert(Slot::Pending(false));
                        waiting = Some((it.token, submit));
                        break;
                    }
                }
            }
        }
        if !answers.is_empty() {
            let _ = self.answers.send(answers);
        }
        let Some(first) = waiting else {
            return;
        };
        let rest: Vec<Item> = items.collect();
        let (pool, slots, events, tx) = (
            self.pool.clone(),
            Arc::clone(&self.slots),
            Arc::clone(&self.events),
            self.answers.clone(),
        );
        napi::bindgen_prelude::spawn(async move {
            let runs = Runs {
                pool,
                slots,
                events,
                answers: tx,
            };
            let (token, submit) = first;
            let r = submit.await;
            let a = runs.accepted(&mut lock(&runs.slots), token, r);
            let _ = runs.answers.send(vec![a]);
            for it in rest {
                let r = runs.pool.run_with(&it.job, it.params, it.opts).await;
                let a = runs.accepted(&mut lock(&runs.slots), it.token, r);
                let _ = runs.answers.send(vec![a]);
            }
        });
    }

    /// Records a submitted run under its token (cancelling it if JavaScript already asked to)
    /// and returns its answer to come; a refusal is an answer at once.
    fn accepted(
        &self,
        slots: &mut HashMap<u32, Slot>,
        token: u32,
        r: Result<JobHandle, PoolError>,
    ) -> Answer {
        let mut handle = match r {
            Ok(h) => h,
            Err(e) => {
                slots.remove(&token);
                let answer = json!({"token": token, "error": {"code": pool_error_code(&e), "message": e.to_string()}})
                    .to_string();
                return Box::pin(std::future::ready((token, answer)));
            }
        };
        if matches!(slots.get(&token), Some(Slot::Pending(true))) {
            handle.cancel();
        }
        slots.insert(token, Slot::Running(handle.canceller()));
        let forward = handle
            .events()
            .map(|rx| forward_job(token, rx, Arc::clone(&self.events)));
        Box::pin(async move {
            let result = handle.result().await;
            if let Some(f) = forward {
                let _ = f.await;
            }
            (token, result_json(token, &result))
        })
    }
}

/// Awaits every run's answer; what finished together goes to JavaScript in one call
/// (`{"results": [...]}`), after the tokens left the map.
async fn drive(mut rx: mpsc::UnboundedReceiver<Vec<Answer>>, slots: Slots, tsfn: Arc<EventFn>) {
    let mut runs = FuturesUnordered::new();
    let mut open = true;
    let mut done: Vec<(u32, String)> = Vec::with_capacity(256);
    loop {
        tokio::select! {
            biased;
            more = rx.recv(), if open => match more {
                Some(v) => runs.extend(v),
                None => open = false,
            },
            Some(first) = runs.next(), if !runs.is_empty() => {
                done.push(first);
                while done.len() < 4096 {
                    match runs.next().now_or_never() {
                        Some(Some(a)) => done.push(a),
                        _ => break,
                    }
                }
                {
                    let mut s = lock(&slots);
                    for (token, _) in &done {
                        s.remove(token);
                    }
                }
                let mut json = String::with_capacity(
                    16 + done.iter().map(|(_, a)| a.len() + 1).sum::<usize>(),
                );
                json.push_str("{\"results\":[");
                for (k, (_, a)) in done.drain(..).enumerate() {
                    if k > 0 {
                        json.push(',');
                    }
                    json.push_str(&a);
                }
                json.push_str("]}");
                emit(&tsfn, json);
            }
            else => break,
        }
    }
}

/// Forwards one run's events as `{"token", "job"}`, then `{"token", "end": true}`.
pub(crate) fn forward_job(
    token: u32,
    mut rx: tokio::sync::broadcast::Receiver<offload_pool::JobEvent>,
    tsfn: Arc<EventFn>,
) -> tokio::task::JoinHandle<()> {
    napi::bindgen_prelude::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let last = matches!(ev, offload_pool::JobEvent::Finished { .. });
                    emit(&tsfn, json!({"token": token, "job": ev}).to_string());
                    if last {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
        emit(&tsfn, json!({"token": token, "end": true}).to_string());
    })
}

/// The stable code of a pool refusal.
pub(crate) fn pool_error_code(e: &PoolError) -> &'static str {
    match e {
        PoolError::ShuttingDown => "ShuttingDown",
        PoolError::QueueFull { .. } => "QueueFull",
        PoolError::InvalidJob(m) if m.contains("no job") || m.contains("not found") => {
            "JobNotFound"
        }
        PoolError::InvalidJob(_) => "InvalidJob",
        _ => "PoolGone",
    }
}

/// A run's answer for JavaScript, serialized from the result itself (no `Value` copy): a
/// success is `[token, value]` (JavaScript reads nothing else of it, and an array parses into
/// fewer objects), anything else `{"token", "id", "outcome", "attempts"}`.
fn result_json(token: u32, result: &offload_pool::JobResult) -> String {
    if let offload_process::Outcome::Succeeded { value } = &result.outcome {
        if let Ok(s) = serde_json::to_string(&(token, value)) {
            return s;
        }
    }
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        token: u32,
        id: u64,
        outcome: &'a offload_process::Outcome,
        #[serde(skip_serializing_if = "Option::is_none")]
        attempts: Option<&'a [offload_pool::Attempt]>,
    }
    let answer = Answer {
        token,
        id: result.id,
        outcome: &result.outcome,
        attempts: (!result.outcome.is_success()).then_some(result.attempts.as_slice()),
    };
    serde_json::to_string(&answer).unwrap_or_else(|e| {
        json!({"token": token, "error": {"code": "ProtocolError", "message": format!("cannot encode the result: {e}")}})
            .to_string()
    })
}
