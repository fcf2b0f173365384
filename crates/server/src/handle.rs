//! [`DaemonHandle`]: what a shared store's other nodes tell this daemon.
//!
//! With a store that several nodes share (PostgreSQL), a job submitted on one node may be
//! claimed by another, and a client may watch it from a third. The store's notifications reach
//! the daemon through this handle (the binary wires them: `offload serve --store postgres://…`):
//! new jobs wake the dispatcher at once (polling stays the fallback), job changes reach SSE
//! clients and long polls, a cancel asked elsewhere stops the job where it runs, and a
//! schedule created, deleted, paused or resumed elsewhere is read again at once, and a drain
//! order given to this node through another one is followed at once.

use std::sync::Arc;

use offload_store::{JobId, Notice};
use tokio::sync::broadcast;

use crate::cron::Scheduler;
use crate::engine::Engine;
use crate::events::JobChange;

/// A cheap, cloneable handle on a running [`Daemon`](crate::Daemon).
#[derive(Clone)]
pub struct DaemonHandle {
    pub(crate) engine: Arc<Engine>,
    pub(crate) cron: Arc<Scheduler>,
}

impl std::fmt::Debug for DaemonHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonHandle").finish_non_exhaustive()
    }
}

impl DaemonHandle {
    /// Claims now instead of at the next poll.
    pub fn wake(&self) {
        self.engine.notify();
    }

    /// Jobs of `pool` became claimable (on another node): starts the pool here if it does not
    /// run yet (as a restart would for waiting jobs), then claims now.
    pub fn jobs_due(&self, pool: &str) {
        if self.engine.pool(pool).is_some() {
            self.engine.notify();
            return;
        }
        let engine = Arc::clone(&self.engine);
        let pool = pool.to_owned();
        tokio::spawn(async move {
            // Starting the pool wakes the dispatcher.
            if let Err(e) = engine.ensure_pool(&pool, None).await {
                tracing::debug!(pool, error = %e, "jobs due in a pool this node cannot run");
            }
        });
    }

    /// A job changed state on another node: tells this daemon's SSE clients and long polls.
    pub fn job_changed(&self, change: JobChange) {
        self.engine.announce(change);
    }

    /// Stops a job if it runs here (a cancel was asked on another node); its end is recorded
    /// as cancelled. Returns whether it ran here.
    pub fn cancel_running(&self, id: JobId) -> bool {
        self.engine.cancel_running(id)
    }

    /// A job running on another node reported progress: tells this daemon's event-stream
    /// clients (as often as the runner stores it: at most every 200 ms per job).
    pub fn progress(&self, id: JobId, data: serde_json::Value) {
        let _ = self
            .engine
            .events
            .send(crate::events::ServerEvent::Progress(
                crate::events::JobProgress { id, data },
            ));
    }

    /// A schedule was created, changed, deleted, paused or resumed on another node: this
    /// daemon reads the schedules again (at once, rather than at its next restart or look).
    pub fn schedules_changed(&self) {
        let (engine, cron) = (Arc::clone(&self.engine), Arc::clone(&self.cron));
        tokio::spawn(async move { cron.sync(&engine).await });
    }

    /// Node `node` was drained or undrained through another node: if it is this one, it reads
    /// its drain order now (rather than at its next heartbeat).
    pub fn drain_changed(&self, node: &str) {
        if node == self.engine.config().node {
            self.engine.look_at_drain();
        }
    }

    /// Follows what the other nodes of a shared store announce until the store closes its
    /// stream (`offload serve --store postgres://…` spawns this with the store's notices):
    /// jobs due wake the dispatcher (starting their pool here if needed), job changes reach
    /// this daemon's clients, and a cancel asked elsewhere stops the job if it runs here.
    pub async fn follow(self, mut notices: broadcast::Receiver<Notice>) {
        loop {
            match notices.recv().await {
                Ok(Notice::Due { pool }) => self.jobs_due(&pool),
                Ok(Notice::Job(j)) => self.job_changed(JobChange {
                    id: j.id,
                    job: j.job,
                    pool: j.pool,
                    state: j.state,
                    attempt: j.attempt,
                }),
                Ok(Notice::CancelRequested { id, .. }) => {
                    self.cancel_running(id);
                }
                Ok(Notice::Schedules) => self.schedules_changed(),
                Ok(Notice::Progress { id, data }) => self.progress(id, data),
                Ok(Notice::Drain { node }) => self.drain_changed(&node),
                // Reconnected, fell behind, or a notice this build does not know: look once.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.wake(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
