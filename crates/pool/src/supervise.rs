//! The supervisor of the pool's actor: a pool cannot die of one job.
//!
//! The actor (`actor.rs`) runs inside [`supervise`], which catches a panic at the boundary of
//! each poll. When the actor panics anyway (a bug; every timer already clamps):
//!
//! 1. the panic is counted in [`Shared`] (by its `PanicGuard`, the actor's first field) *before*
//!    the rest of the actor's state is dropped by the unwinding, so every job whose reply is
//!    dropped with it ends with `Outcome::Failed { name: "SupervisorFailed" }`
//!    (see `JobHandle::result`), never a hang;
//! 2. every worker process of the dead incarnation is SIGKILLed through its own process actor
//!    (group, markers, cgroup) and awaited: none is left orphaned;
//! 3. after a backoff (the restart policy's: `base`, doubling per panic in a row, at most `max`;
//!    a run that lasted `interval` resets it) a new incarnation starts with fresh state on the
//!    same message channel, so handles keep working and later `run` calls succeed;
//! 4. [`PoolEvent::SupervisorRestarted`] is emitted and the panic logged at `error`.
//!
//! A pool that is stopping (shutdown, kill, every handle gone) is not restarted.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use offload_process::{panic_message, timer};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::actor::{self, Direct, Msg};
use crate::config::{PoolConfig, RestartPolicy};
use crate::error::StartError;
use crate::shared::Shared;
use crate::types::PoolEvent;

/// How long the supervisor waits for the workers of a dead incarnation to be gone.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Runs the actor, restarting it after a panic (see the module docs).
#[expect(
    clippy::too_many_arguments,
    reason = "the pool's channels and shared parts"
)]
pub(crate) async fn supervise(
    cfg: PoolConfig,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    shared: Arc<Shared>,
    direct: Arc<Direct>,
    events: crate::events::PoolEvents,
    permits: Arc<Semaphore>,
    accepting: Arc<AtomicBool>,
    online: oneshot::Sender<Result<(), StartError>>,
) {
    let mut online = Some(online);
    let mut in_a_row = 0u32;
    loop {
        let began = Instant::now();
        let run = actor::run(
            cfg.clone(),
            &mut rx,
            Arc::clone(&shared),
            Arc::clone(&direct),
            events.clone(),
            Arc::clone(&permits),
            Arc::clone(&accepting),
            online.take(),
        );
        let panic = match CatchUnwind::new(run).await {
            Ok(()) => return,
            Err(panic) => panic,
        };
        let message = panic_message(panic.as_ref());
        let panics = shared.panics();
        tracing::error!(
            pool = %cfg.name,
            panic = %message,
            panics,
            "the pool's supervisor panicked; its jobs fail with SupervisorFailed, its workers are killed, it starts again"
        );
        kill_workers(&shared).await;
        if !accepting.load(Ordering::Acquire) || rx.is_closed() {
            permits.close();
            return;
        }
        if began.elapsed() >= cfg.restart.interval {
            in_a_row = 0;
        }
        in_a_row = in_a_row.saturating_add(1);
        let delay = restart_delay(&cfg.restart, in_a_row);
        events.send(PoolEvent::SupervisorRestarted {
            panics,
            message,
            delay,
        });
        tokio::time::sleep(timer::clamp(delay)).await;
    }
}

/// The wait before restarting after the `n`-th panic in a row (1-based): `base`, doubling,
/// at most `max`.
pub(crate) fn restart_delay(policy: &RestartPolicy, n: u32) -> Duration {
    let factor = 1u32
        .checked_shl(n.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    policy.base.saturating_mul(factor).min(policy.max)
}

/// SIGKILLs every process of the dead incarnation and waits until they are gone.
async fn kill_workers(shared: &Shared) {
    let processes = shared.processes();
    for p in &processes {
        p.start_kill_with(libc::SIGKILL, Duration::ZERO);
    }
    for p in &processes {
        if tokio::time::timeout(KILL_WAIT, p.exited()).await.is_err() {
            tracing::error!(pid = p.pid(), "a worker of a panicked pool did not exit");
            let _ = offload_process::signal_group(p.pid(), libc::SIGKILL);
        }
    }
    shared.clear();
}

/// A future that turns a panic during a poll into an `Err`.
struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> CatchUnwind<F> {
    fn new(f: F) -> Self {
        Self { inner: Box::pin(f) }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().inner;
        // The actor's state is dropped right after a panic and never polled again, so no
        // broken invariant can be observed.
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_and_cap() {
        let p = RestartPolicy::default();
        assert_eq!(restart_delay(&p, 1), Duration::from_millis(100));
        assert_eq!(restart_delay(&p, 2), Duration::from_millis(200));
        assert_eq!(restart_delay(&p, 4), Duration::from_millis(800));
        assert_eq!(restart_delay(&p, 30), p.max);
        assert_eq!(restart_delay(&p, u32::MAX), p.max);
    }

    #[tokio::test]
    async fn a_panicking_future_becomes_an_error() {
        let r = CatchUnwind::new(async {
            tokio::task::yield_now().await;
            panic!("boom")
        })
        .await;
        assert_eq!(panic_message(r.unwrap_err().as_ref()), "boom");
        assert_eq!(CatchUnwind::new(async { 7 }).await.unwrap(), 7);
    }
}
