//! The hot path of `NativePool::submit_many`: runs are submitted on the JavaScript thread
//! itself (no task, no thread hop, one lock of the token map per batch), with their params as
//! the JSON text JavaScript wrote (`ChildPool::run_raw_then`: never parsed in Rust).
//!
//! A run without events hands its result to a callback the pool's own task calls
//! ([`Done::deliver`]): the answer is appended to one shared buffer and, if the buffer was
//! empty, JavaScript gets one `"drain"` call and takes everything gathered meanwhile with
//! `takeResults` — no task awaits the result and none is woken to deliver it. Runs with events
//! (whose result must follow their last event) and refusals go through one driver task per
//! pool, which awaits them and sends what finished together in one threadsafe-function call.
//! A run JavaScript never cancels by its token (`_runLight`) has no slot in the token map.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use offload_pool::{Canceller, ChildPool, JobHandle, JobResult, PoolError, RunOptions};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::{emit, EventFn};

/// A run's token in the JavaScript layer, and where it stands in the addon.
pub(crate) enum Slot {
    /// Submitted to JavaScript, not yet accepted by the pool; `true` once cancelled.
    Pending(bool),
    Running(Canceller),
    /// Its result was taken by JavaScript before the submit that waited for room in the
    /// queue recorded it (`Backpressure::Wait`): that submit removes the token.
    Finished,
}

pub(crate) type Slots = Arc<Mutex<HashMap<u32, Slot>>>;

/// A run's answer once it ends: its token and its JSON for JavaScript.
type Answer = Pin<Box<dyn Future<Output = (u32, String)> + Send>>;

/// A run as the pool accepted it.
enum Accepted {
    /// With events: its result is awaited by the driver.
    Handle(JobHandle),
    /// Without: its result goes to [`Done`].
    Light(Canceller),
}

/// A submission waiting for room in the pool's queue (`Backpressure::Wait`).
type Submit = Pin<Box<dyn Future<Output = Result<Accepted, PoolError>> + Send>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One run of a `submit_many` batch.
pub(crate) struct Item {
    pub token: u32,
    /// JavaScript may cancel it by its token (else it has no slot in the token map).
    pub cancellable: bool,
    pub job: String,
    pub params: Box<RawValue>,
    pub opts: RunOptions,
}

impl Item {
    /// Its token, and whether it has a slot in the token map (cancellable, or with events).
    fn key(&self) -> (u32, bool) {
        (self.token, self.cancellable || self.opts.events)
    }
}

/// The start of what [`Done::take`] returns.
const RESULTS: &str = "{\"results\":[";

/// The answers of runs without events that JavaScript has not taken yet.
struct Gathered {
    /// `{"results":[` and their JSON, comma-separated.
    json: String,
    /// The tokens of the cancellable ones (they have a slot in the token map).
    tokens: Vec<u32>,
    /// JavaScript was told (`"drain"`) and has not taken them yet.
    signalled: bool,
}

/// Where the pool's task leaves the answers of runs without events (see the module docs).
pub(crate) struct Done {
    gathered: Mutex<Gathered>,
    events: Arc<EventFn>,
}

impl Done {
    pub(crate) fn new(events: Arc<EventFn>) -> Arc<Self> {
        Arc::new(Self {
            gathered: Mutex::new(Gathered {
                json: RESULTS.to_owned(),
                tokens: Vec::new(),
                signalled: false,
            }),
            events,
        })
    }

    /// Called with a run's result (by the pool's task, or on the JavaScript thread by a
    /// watch, `host_poll.rs`): appends its answer, and tells JavaScript when nothing was
    /// gathered yet, unless a watch reading on this thread delivers it (`js_answers.rs`).
    fn deliver(&self, token: u32, cancellable: bool, result: &JobResult) {
        {
            let mut g = lock(&self.gathered);
            if g.json.len() > RESULTS.len() {
                g.json.push(',');
            }
            push_result_json(&mut g.json, token, result);
            if cancellable {
                g.tokens.push(token);
            }
        }
        if !gathered_by_watch() {
            self.signal();
        }
    }

    /// Tells JavaScript (`"drain"`) that results wait, once until it takes them.
    pub(crate) fn signal(&self) {
        if !std::mem::replace(&mut lock(&self.gathered).signalled, true) {
            emit(&self.events, "drain".to_owned());
        }
    }

    /// Everything gathered, as `{"results": [...]}`; the tokens leave `slots`.
    pub(crate) fn take(&self, slots: &Slots) -> String {
        let (mut json, tokens) = {
            let mut g = lock(&self.gathered);
            g.signalled = false;
            let mut next = String::with_capacity(g.json.capacity().min(1 << 20));
            next.push_str(RESULTS);
            (
                std::mem::replace(&mut g.json, next),
                std::mem::take(&mut g.tokens),
            )
        };
        json.push_str("]}");
        if !tokens.is_empty() {
            let mut s = lock(slots);
            for t in tokens {
                if s.remove(&t).is_none() {
                    // Its submit has not recorded it yet (see `Slot::Finished`).
                    s.insert(t, Slot::Finished);
                }
            }
        }
        json
    }
}

thread_local! {
    /// A watch reads on this thread (`host_poll.rs`): results gathered now are its to deliver.
    static READING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Results were gathered while it read.
    static GATHERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `read` as a watch's read; also says whether results were gathered meanwhile (then no
/// `"drain"` was signalled for them: the watch delivers them, `js_answers.rs`).
pub(crate) fn as_watch<R>(read: impl FnOnce() -> R) -> (R, bool) {
    READING.with(|r| r.set(true));
    GATHERED.with(|g| g.set(false));
    let out = read();
    READING.with(|r| r.set(false));
    (out, GATHERED.with(std::cell::Cell::take))
}

/// Whether a watch reads on this thread now; if so, the result just gathered is counted as its
/// to deliver.
fn gathered_by_watch() -> bool {
    if READING.with(std::cell::Cell::get) {
        GATHERED.with(|g| g.set(true));
        true
    } else {
        false
    }
}

/// The runs of one pool: submits them and delivers their answers.
pub(crate) struct Runs {
    pool: ChildPool,
    slots: Slots,
    events: Arc<EventFn>,
    done: Arc<Done>,
    answers: mpsc::UnboundedSender<Vec<Answer>>,
}

impl Runs {
    /// Starts the driver task (on napi's runtime; callable from any thread).
    pub(crate) fn start(
        pool: ChildPool,
        slots: Slots,
        events: Arc<EventFn>,
        done: Arc<Done>,
    ) -> Self {
        let (answers, rx) = mpsc::unbounded_channel();
        napi::bindgen_prelude::spawn(drive(rx, Arc::clone(&slots), Arc::clone(&events)));
        Self {
            pool,
            slots,
            done,
            events,
            answers,
        }
    }

    /// Where the results of runs without events wait, and the token map.
    pub(crate) fn done_and_slots(&self) -> (Arc<Done>, Slots) {
        (Arc::clone(&self.done), Arc::clone(&self.slots))
    }

    /// What `takeResults` returns.
    pub(crate) fn take(&self) -> String {
        self.done.take(&self.slots)
    }

    fn clone_parts(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            slots: Arc::clone(&self.slots),
            events: Arc::clone(&self.events),
            done: Arc::clone(&self.done),
            answers: self.answers.clone(),
        }
    }

    /// The submission of one run.
    fn submission(&self, it: Item) -> Submit {
        let pool = self.pool.clone();
        if it.opts.events {
            return Box::pin(async move {
                pool.run_raw(&it.job, it.params, it.opts)
                    .await
                    .map(Accepted::Handle)
            });
        }
        let (done, token, cancellable) = (Arc::clone(&self.done), it.token, it.cancellable);
        Box::pin(async move {
            pool.run_raw_then(&it.job, it.params, it.opts, move |r| {
                done.deliver(token, cancellable, &r);
            })
            .await
            .map(Accepted::Light)
        })
    }

    /// Submits `items` in order. A submission completes at once unless the pool's queue is full
    /// under `Backpressure::Wait`: from there on, the rest of the batch is submitted, still in
    /// order, by a task that waits for room.
    pub(crate) fn submit(&self, items: Vec<Item>) {
        let mut answers = Vec::new();
        let mut items = items.into_iter();
        let mut waiting: Option<((u32, bool), Submit)> = None;
        {
            let mut slots = lock(&self.slots);
            let mut cx = Context::from_waker(Waker::noop());
            for it in items.by_ref() {
                let key = it.key();
                let mut submit = self.submission(it);
                match submit.as_mut().poll(&mut cx) {
                    Poll::Ready(r) => {
                        if let Some(a) = self.accepted(&mut slots, key, r) {
                            answers.push(a);
                        }
                    }
                    Poll::Pending => {
                        if key.1 {
                            slots.entry(key.0).or_insert(Slot::Pending(false));
                        }
                        waiting = Some((key, submit));
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
        let runs = self.clone_parts();
        napi::bindgen_prelude::spawn(async move {
            let (key, submit) = first;
            let r = submit.await;
            let a = runs.accepted(&mut lock(&runs.slots), key, r);
            if let Some(a) = a {
                let _ = runs.answers.send(vec![a]);
            }
            for it in rest {
                let key = it.key();
                let r = runs.submission(it).await;
                let a = runs.accepted(&mut lock(&runs.slots), key, r);
                if let Some(a) = a {
                    let _ = runs.answers.send(vec![a]);
                }
            }
        });
    }

    /// Records a submitted run under its token when it is `tracked` (cancellable or with
    /// events), cancelling it if JavaScript already asked to; returns the answer to come for
    /// the driver (a refusal is an answer at once; a run without events has none: its result
    /// goes to [`Done`]).
    fn accepted(
        &self,
        slots: &mut HashMap<u32, Slot>,
        (token, tracked): (u32, bool),
        r: Result<Accepted, PoolError>,
    ) -> Option<Answer> {
        let accepted = match r {
            Ok(a) => a,
            Err(e) => {
                slots.remove(&token);
                let answer = json!({"token": token, "error": {"code": pool_error_code(&e), "message": e.to_string()}})
                    .to_string();
                return Some(Box::pin(std::future::ready((token, answer))));
            }
        };
        let canceller = match &accepted {
            Accepted::Handle(h) => Some(h.canceller()),
            Accepted::Light(c) => tracked.then(|| c.clone()),
        };
        if let Some(canceller) = canceller {
            match slots.get(&token) {
                Some(Slot::Finished) => {
                    slots.remove(&token);
                }
                Some(Slot::Pending(true)) => {
                    canceller.cancel();
                    slots.insert(token, Slot::Running(canceller));
                }
                _ => {
                    slots.insert(token, Slot::Running(canceller));
                }
            }
        }
        let Accepted::Handle(mut handle) = accepted else {
            return None;
        };
        let forward = handle
            .events()
            .map(|rx| forward_job(token, rx, Arc::clone(&self.events)));
        Some(Box::pin(async move {
            let result = handle.result().await;
            if let Some(f) = forward {
                let _ = f.await;
            }
            (token, result_json(token, &result))
        }))
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
                    let credit = crate::job_credit(&ev);
                    crate::emit_with(
                        &tsfn,
                        json!({"token": token, "job": ev}).to_string(),
                        credit,
                    );
                    if last {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    emit(&tsfn, json!({"token": token, "lost": n}).to_string());
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
        emit(&tsfn, json!({"token": token, "end": true}).to_string());
    })
}

/// The stable code of a pool refusal.
pub(crate) fn pool_error_code(e: &PoolError) -> &'static str {
    e.code()
}

/// A run's answer for JavaScript (see [`push_result_json`]).
fn result_json(token: u32, result: &JobResult) -> String {
    let mut s = String::new();
    push_result_json(&mut s, token, result);
    s
}

/// Appends a run's answer for JavaScript, serialized from the result itself (no `Value` copy):
/// a success is `[token, value]` (JavaScript reads nothing else of it, and an array parses into
/// fewer objects), anything else `{"token", "id", "outcome", "attempts"}`.
fn push_result_json(out: &mut String, token: u32, result: &JobResult) {
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        token: u32,
        id: u64,
        outcome: &'a offload_process::Outcome,
        #[serde(skip_serializing_if = "Option::is_none")]
        attempts: Option<&'a [offload_pool::Attempt]>,
    }
    let start = out.len();
    // serde_json writes UTF-8 only; the `String` is rebuilt from its own bytes (no copy).
    let mut bytes = std::mem::take(out).into_bytes();
    let written = match &result.outcome {
        offload_process::Outcome::Succeeded { value } => {
            serde_json::to_writer(&mut bytes, &(token, value))
        }
        outcome => serde_json::to_writer(
            &mut bytes,
            &Answer {
                token,
                id: result.id,
                outcome,
                attempts: Some(result.attempts.as_slice()),
            },
        ),
    };
    if let Err(e) = written {
        bytes.truncate(start);
        let fallback = json!({"token": token, "error": {"code": "ProtocolError", "message": format!("cannot encode the result: {e}")}});
        bytes.extend_from_slice(fallback.to_string().as_bytes());
    }
    *out = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
}
