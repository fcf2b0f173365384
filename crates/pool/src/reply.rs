//! [`Reply`]: where a job's one [`JobResult`] goes — the `oneshot` a [`JobHandle`] awaits, or a
//! callback called by whoever finished the job, once the pool's state lock is released (the
//! actor's task, or the worker's reading task on the direct path: [`ChildPool::run_raw_then`],
//! no task has to wake to await the result, the hot path of the Node addon). Either way a job that never finishes (its pool
//! gone, its supervisor panicked) still gets a result, naming why.
//!
//! [`JobHandle`]: crate::JobHandle
//! [`ChildPool::run_raw_then`]: crate::ChildPool::run_raw_then

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::shared::Shared;
use crate::types::{JobId, JobResult};

/// A callback that receives a job's result (see [`ChildPool::run_raw_then`](crate::ChildPool::run_raw_then)).
pub(crate) type OnResult = Box<dyn FnOnce(JobResult) + Send + 'static>;

/// Where a job's result goes.
pub(crate) enum Reply {
    /// A [`JobHandle`](crate::JobHandle) awaits it.
    Handle(oneshot::Sender<JobResult>),
    /// Called by whoever finished the job.
    Callback(Callback),
}

impl Reply {
    /// Delivers the result.
    pub(crate) fn send(self, result: JobResult) {
        match self {
            Self::Handle(tx) => {
                let _ = tx.send(result);
            }
            Self::Callback(mut c) => c.call(result),
        }
    }

    /// Drops it without delivering anything (a submit that was refused: its caller got the
    /// error).
    pub(crate) fn forget(self) {
        if let Self::Callback(mut c) = self {
            c.f = None;
        }
    }
}

/// A result callback that is called exactly once: with the job's result, or, when dropped
/// without it, with the result of a lost job ([`lost`]).
pub(crate) struct Callback {
    f: Option<OnResult>,
    id: JobId,
    shared: Arc<Shared>,
    /// The actor's panics when the job was submitted.
    panics: u64,
}

impl Callback {
    pub(crate) fn new(f: OnResult, id: JobId, shared: Arc<Shared>) -> Self {
        let panics = shared.panics();
        Self {
            f: Some(f),
            id,
            shared,
            panics,
        }
    }

    fn call(&mut self, result: JobResult) {
        if let Some(f) = self.f.take() {
            // The pool calls it: a panicking callback must not take the pool down with it.
            if catch_unwind(AssertUnwindSafe(|| f(result))).is_err() {
                tracing::error!(job = self.id, "a job's result callback panicked");
            }
        }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        if self.f.is_some() {
            let result = lost(self.id, &self.shared, self.panics);
            self.call(result);
        }
    }
}

/// The result of a job whose reply was dropped without a result: its supervisor panicked
/// since (`SupervisorFailed`), or the pool stopped (`PoolGone`).
pub(crate) fn lost(id: JobId, shared: &Shared, panics: u64) -> JobResult {
    let (name, message) = if shared.panics() > panics {
        (
            "SupervisorFailed",
            "the pool's supervisor failed and was restarted; the job was lost with it",
        )
    } else {
        ("PoolGone", "the pool stopped before the job ended")
    };
    JobResult {
        id,
        outcome: offload_process::Outcome::Failed {
            name: name.into(),
            message: message.into(),
            stack: None,
        },
        attempts: Vec::new(),
    }
}
