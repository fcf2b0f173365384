//! The data path without the actor's task: the pool's state lives in [`Direct`], behind one
//! lock, and the two hot inputs run the actor's own code on the task (or thread) where they
//! arise instead of waking the actor's task:
//!
//! - **submit** ([`Direct::submit`]): the caller's task (a task of the pool's runtime) queues
//!   the job, dispatches (balancer pick, `run` frame into the worker's write buffer) and
//!   flushes the frame itself;
//! - **answers** ([`Hook`], a [`SinkHook`] of every worker process): the task that read the
//!   answers from the worker's socket runs `on_answer` for them, dispatches what that freed,
//!   and completes the callers.
//!
//! Everything else (spawns, exits, timers, queries, health) still reaches the actor through its
//! channels, and the actor's task takes the same lock to handle it. So there is one state and
//! one set of methods; the lock only decides *which* task runs them.
//!
//! # Invariants (see `docs/design/pool.md`, "The direct path")
//!
//! 1. Every change of the pool's state happens under the lock, followed, before it is
//!    released, by what the actor's loop does after each input: `dispatch` (with one flush per
//!    worker), `scale`, and the `finished` check (a direct input that finished the pool wakes
//!    the actor's task to end it).
//! 2. No input overtakes an earlier one of the same origin. An answer is taken directly only
//!    when the sink holds no event of this incarnation that the actor has not handled
//!    (`in_sink == 0`, read under the lock: the worker's `progress` or `busy` sent before its
//!    answer is handled first). A submission goes directly only when no submission of this
//!    pool waits in the actor's channel (`in_channel == 0`).
//! 3. Results are delivered after the lock is released (`Actor::replies`): a result callback
//!    may call the pool again.
//! 4. A panic in a direct input is caught and marks the state broken; the actor's task is woken,
//!    finds it broken and panics too, so the supervisor (`supervise.rs`) ends the incarnation as for any panic
//!    of the actor: every job fails with `SupervisorFailed`, every worker is killed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use offload_process::{Answers, SinkHook};
use tokio::sync::Notify;

use super::{Actor, Submission};
use crate::reply::Reply;
use crate::types::JobResult;

/// The pool's state behind its lock, and what keeps the direct inputs in order.
pub(crate) struct Direct {
    /// The running incarnation of the actor; `None` between two (after a panic) and at the end.
    actor: Mutex<Option<Actor>>,
    /// Submissions sent to the actor's channel and not handled yet (across incarnations: the
    /// channel outlives them).
    in_channel: AtomicUsize,
    /// A direct input panicked: the state may be half changed; the actor's task must end this
    /// incarnation (invariant 4). Cleared by the next one.
    broken: AtomicBool,
    /// Wakes the actor's task after a direct input that needs it (the pool finished, or a
    /// direct input panicked).
    pub(super) wake: Notify,
    /// The host's thread reads the workers' channels ([`crate::HostReader`]): it writes its
    /// submissions too.
    host_reads: bool,
    /// The pool's runtime, entered by a direct input from a thread outside it (the host's):
    /// what it does may arm a timer or spawn a task.
    runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("in_channel", &self.in_channel.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Results to deliver once the lock is released.
pub(super) type Replies = Vec<(Reply, JobResult)>;

impl Direct {
    pub(crate) fn new(host_reads: bool) -> Self {
        Self {
            host_reads,
            runtime: tokio::runtime::Handle::try_current().ok(),
            actor: Mutex::new(None),
            in_channel: AtomicUsize::new(0),
            broken: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// The state, for the actor's own task. A broken state (a direct input panicked) or a
    /// poisoned lock: the actor panics too, and its supervisor handles it (invariant 4).
    pub(super) fn lock(&self) -> MutexGuard<'_, Option<Actor>> {
        let guard = self.actor.lock();
        if self.broken.load(Ordering::Acquire) {
            panic!("a direct input of the pool panicked while it held the pool's state");
        }
        match guard {
            Ok(g) => g,
            Err(_) => panic!("the pool's state lock is poisoned"),
        }
    }

    /// The state for a direct input: `None` when it must go through the actor's channels
    /// (between incarnations, or after a direct input panicked).
    fn lock_direct(&self) -> Option<MutexGuard<'_, Option<Actor>>> {
        let guard = self.actor.lock().ok()?;
        (guard.is_some() && !self.broken.load(Ordering::Acquire)).then_some(guard)
    }

    /// Installs a new incarnation.
    pub(super) fn install(&self, actor: Actor) {
        *self.actor.lock().unwrap_or_else(|e| e.into_inner()) = Some(actor);
        // The previous incarnation may have panicked holding the lock.
        self.actor.clear_poison();
        self.broken.store(false, Ordering::Release);
    }

    /// Removes the incarnation (its end, or its panic: then the actor's `PanicGuard` counts the
    /// panic as it drops here, before the replies it holds are dropped).
    pub(super) fn uninstall(&self) -> Option<Actor> {
        self.actor.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// A submission about to go through the actor's channel.
    pub(crate) fn sending_submission(&self) {
        self.in_channel.fetch_add(1, Ordering::AcqRel);
    }

    /// The actor took a submission from its channel (under the lock).
    pub(crate) fn received_submission(&self) {
        self.in_channel.fetch_sub(1, Ordering::AcqRel);
    }

    /// Submits on the caller's task: queued and dispatched under the lock (invariant 1).
    /// Gives the submission back when it must go through the actor's channel: between two
    /// incarnations, or behind a submission already there (invariant 2).
    pub(crate) fn submit(&self, s: Submission) -> Result<(), Box<Submission>> {
        let Some(guard) = self.lock_direct() else {
            return Err(Box::new(s));
        };
        if self.in_channel.load(Ordering::Acquire) > 0 {
            return Err(Box::new(s));
        }
        if !self.host_reads && tokio::runtime::Handle::try_current().is_err() {
            // From a thread outside the runtime that does not also read the answers (the
            // Node addon's JavaScript thread without host reading), writing the frame here cost
            // more wake-ups than it saved (`bench/peers/README.md`, "The data path without the
            // actor"): the actor's task dispatches it.
            return Err(Box::new(s));
        }
        let replies = self.run_locked(guard, |a| a.on_submit(s));
        deliver(replies);
        Ok(())
    }

    /// Runs `f` and the loop's epilogue on the state (invariant 1), contains a panic
    /// (invariant 4), and returns the results to deliver once the lock is released.
    fn run_locked(
        &self,
        mut guard: MutexGuard<'_, Option<Actor>>,
        f: impl FnOnce(&mut Actor),
    ) -> Replies {
        let _entered = match (&self.runtime, tokio::runtime::Handle::try_current()) {
            (Some(rt), Err(_)) => Some(rt.enter()),
            _ => None,
        };
        let run = catch_unwind(AssertUnwindSafe(|| {
            let Some(actor) = guard.as_mut() else {
                return (Vec::new(), false);
            };
            f(actor);
            actor.dispatch();
            actor.scale();
            (actor.replies.take(), actor.finished())
        }));
        drop(guard);
        match run {
            Ok((replies, finished)) => {
                if finished {
                    self.wake.notify_one();
                }
                replies
            }
            Err(_) => {
                tracing::error!("a direct input of the pool panicked; its actor restarts");
                self.broken.store(true, Ordering::Release);
                self.wake.notify_one();
                Vec::new()
            }
        }
    }
}

/// Delivers results (outside the lock).
pub(super) fn deliver(replies: Replies) {
    for (reply, result) in replies {
        reply.send(result);
    }
}

/// The direct answer path of one incarnation: given to each of its worker processes.
pub(super) struct Hook {
    pub(super) direct: Weak<Direct>,
    /// Events of this incarnation's processes put in the sink and not handled yet.
    pub(super) in_sink: Arc<AtomicUsize>,
}

impl SinkHook for Hook {
    fn sending(&self) {
        self.in_sink.fetch_add(1, Ordering::AcqRel);
    }

    fn answers(&self, pid: u32, answers: &mut Answers) {
        let Some(direct) = self.direct.upgrade() else {
            return;
        };
        let Some(guard) = direct.lock_direct() else {
            return;
        };
        // Only for this incarnation's workers, and only when nothing sent before waits in the
        // sink (invariant 2); otherwise the answers take the sink like every other event.
        let ours = guard.as_ref().is_some_and(|a| {
            Arc::ptr_eq(&a.in_sink, &self.in_sink)
                && a.workers.contains_key(&pid)
                && self.in_sink.load(Ordering::Acquire) == 0
        });
        if !ours {
            return;
        }
        let batch = std::mem::take(answers);
        let replies = direct.run_locked(guard, |a| {
            for (id, result) in batch {
                a.on_answer(pid, &id, result);
            }
        });
        deliver(replies);
    }
}
