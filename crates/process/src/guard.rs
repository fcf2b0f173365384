//! A process actor cannot take its process with it: if the actor of one worker panics (a bug),
//! the process and everything it started are killed (group, markers, cgroup), its outcome and
//! exit are published as `Failed { name: "SupervisorFailed" }`, and its owner (a pool's actor,
//! `ChildJob`) hears `Exited` as for any other death, so it replaces the worker and retries the
//! job. Nothing is orphaned and nobody waits forever.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::watch;

use crate::contain::Containment;
use crate::emitter::Emitter;
use crate::outcome::Outcome;
use crate::process::ProcessEvent;

/// The exit callback, shared between the actor (which normally calls it) and the guard.
pub(crate) type OnExit = Arc<Mutex<Option<Box<dyn FnOnce(u32) + Send>>>>;

/// What the guard needs to end a process whose actor panicked.
pub(crate) struct ActorGuard {
    pub(crate) pid: u32,
    pub(crate) containment: Arc<Containment>,
    pub(crate) emitter: Emitter,
    pub(crate) outcome_tx: watch::Sender<Option<Outcome>>,
    pub(crate) exit_tx: watch::Sender<Option<Outcome>>,
    pub(crate) on_exit: OnExit,
}

/// Runs a process actor; on a panic, ends its process as described in the module docs.
pub(crate) async fn guarded(actor: impl Future<Output = ()>, guard: ActorGuard) {
    let Err(panic) = CatchUnwind(Box::pin(actor)).await else {
        return;
    };
    let message = panic_message(panic.as_ref());
    let pid = guard.pid;
    tracing::error!(pid, panic = %message, "a process actor panicked; killing its process");
    let _ = crate::spawn::signal_group(pid, libc::SIGKILL);
    crate::reaper::kill_marked(&guard.containment.marker);
    guard.containment.kill_cgroup().await;
    let outcome = Outcome::Failed {
        name: "SupervisorFailed".into(),
        message: format!("the process's supervisor failed ({message}); the process was killed"),
        stack: None,
    };
    guard.outcome_tx.send_if_modified(|o| {
        if o.is_none() {
            *o = Some(outcome.clone());
            true
        } else {
            false
        }
    });
    let final_outcome = guard.outcome_tx.borrow().clone().unwrap_or(outcome);
    let _ = guard.exit_tx.send(Some(final_outcome.clone()));
    let on_exit = guard
        .on_exit
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(f) = on_exit {
        f(pid);
    }
    guard.emitter.emit(ProcessEvent::Exited {
        pid,
        outcome: final_outcome,
    });
}

/// The text of a caught panic (`&str` or `String` payloads), for the typed errors of a
/// supervisor that caught one (this crate's process actor, `offload-pool`'s pool actor).
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// A future that turns a panic during a poll into an `Err`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().0;
        // A panicked actor is dropped, never polled again.
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
