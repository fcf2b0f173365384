//! A job's life on the runtime once it is registered: its handler is polled once in place
//! (most handlers answer at once: no task, no wake-up), in a task of its own only when it
//! waits; its panics are caught, its descriptors closed, its answer queued.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use offload_protocol::{EncodeError, ErrorInfo, FromWorker, WorkerError as WireError};
use serde_json::Value;

use crate::context::{Context, JobError, StopReason};
use crate::outbox::Outbox;
use crate::shared::Shared;

/// A first poll at least this long sends its answer at once ([`Outbox::flush_now`]).
const LONG_POLL: Duration = Duration::from_micros(50);

/// A handler's future.
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, JobError>> + Send>>;

/// Runs a registered job: polls `fut` once here, and if it waits, in a task with the
/// deadline's timer.
pub(crate) fn launch(
    fut: BoxFuture,
    ctx: Context,
    deadline: Option<u64>,
    shared: &Arc<Shared>,
    outbox: &Outbox,
) {
    let mut fut = CatchUnwind {
        fut,
        shared: Arc::clone(shared),
    };
    // A future that is not ready keeps the waker of its latest poll: the task's first poll
    // below replaces this one.
    let mut cx = std::task::Context::from_waker(Waker::noop());
    let polled = Instant::now();
    if let Poll::Ready(outcome) = Pin::new(&mut fut).poll(&mut cx) {
        finish(outcome, &ctx, shared, outbox);
        // A job that held the thread for a while (CPU work done in its first poll): its answer
        // goes now, not after the rest of its batch, which may hold the thread as long (two
        // 1 ms jobs in flight would otherwise answer together, and the worker idle a round
        // trip per pair). Quick jobs keep answering together, one write per batch.
        if polled.elapsed() >= LONG_POLL {
            outbox.flush_now();
        }
        return;
    }
    let shared = Arc::clone(shared);
    let outbox = outbox.clone();
    tokio::spawn(async move {
        let timer = deadline.map(|ms| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(until(ms)).await;
                ctx.stop(StopReason::Deadline);
            })
        });
        let outcome = fut.await;
        if let Some(t) = timer {
            t.abort();
        }
        finish(outcome, &ctx, &shared, &outbox);
    });
}

type Outcome = Result<Result<Value, JobError>, Box<dyn std::any::Any + Send>>;

/// A `result` frame written from the job's own id (no copy of it); it encodes exactly as
/// `FromWorker::Result` (a test checks it).
#[derive(serde::Serialize)]
struct ResultRef<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    value: &'a Value,
}

/// The job's answer: descriptors closed, slot freed, output flushed, then the frame.
fn finish(outcome: Outcome, ctx: &Context, shared: &Shared, outbox: &Outbox) {
    let outcome =
        outcome.unwrap_or_else(|panic| Err(JobError::new("Panic", panic_message(&*panic))));
    // Descriptors the handler did not take are closed before the answer goes.
    drop(ctx.take_fds());
    ctx.close_streams();
    // Free the slot before answering, so the supervisor's next job is not `Busy`.
    let empty = {
        let mut jobs = shared.jobs();
        jobs.remove(ctx.id());
        jobs.is_empty()
    };
    // What the job printed is in the pipes before its answer: the supervisor drains them
    // when the answer comes (`docs/design/job-logs.md`).
    flush_output();
    let sent = match outcome {
        Ok(value) => outbox.try_send_frame(&ResultRef {
            kind: "result",
            id: ctx.id(),
            value: &value,
        }),
        Err(mut e) => {
            match ctx.stop_reason() {
                Some(StopReason::Cancelled) => e.name = "Cancelled".into(),
                Some(StopReason::Deadline) => e.name = "DeadlineExceeded".into(),
                None => {}
            }
            outbox.try_send(&FromWorker::Error(WireError::new(ctx.id(), e.into_info())))
        }
    };
    if let Err(EncodeError::FrameTooLarge { size, max }) = sent {
        outbox.send(&FromWorker::Error(WireError::new(
            ctx.id(),
            ErrorInfo::new(
                "FrameTooLarge",
                format!("the result is {size} bytes, over the frame limit of {max}"),
            ),
        )));
    }
    if empty {
        shared.drained.notify_waiters();
    }
}

fn until(deadline_ms: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_millis(deadline_ms).saturating_sub(now)
}

/// A handler's future with its panics caught (the panic's payload instead of an unwind), its
/// polls counted in [`Shared::polls`] for the watchdog.
struct CatchUnwind {
    fut: BoxFuture,
    shared: Arc<Shared>,
}

impl Future for CatchUnwind {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.shared.polls.fetch_add(1, Ordering::Relaxed);
        let fut = this.fut.as_mut();
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx)));
        this.shared.polls.fetch_add(1, Ordering::Relaxed);
        match polled {
            Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the handler panicked".into())
}

/// Flushes stdout (Rust's is line-buffered: a `print!` without a newline waits there) and
/// stderr. Blocks while the pipe is full, as the job's own `println!` does.
fn flush_output() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

#[cfg(test)]
mod tests {
    use offload_protocol::{encode, ResultMsg};
    use serde_json::json;

    use super::*;

    #[test]
    fn a_borrowed_result_encodes_as_the_owned_one() {
        for value in [
            json!(2),
            json!(null),
            json!({"a": [1, "é\n\"q\""], "b": 2.5}),
        ] {
            let borrowed = ResultRef {
                kind: "result",
                id: "j17",
                value: &value,
            };
            let owned = FromWorker::Result(ResultMsg::new("j17", value.clone()));
            assert_eq!(
                encode(&borrowed, 4096).unwrap(),
                encode(&owned, 4096).unwrap()
            );
        }
    }
}
