//! Pausing and resuming queues (a pool, or every job of one name): the pause lives in the
//! store, whose claim skips paused queues, so it survives restarts and, on PostgreSQL, stops
//! every node's claims. Running jobs finish; the jobs this node holds ahead of a slot go back
//! to the queue. Each change is told on the event stream (`queue`) by the node that made it.

use offload_store::{now_ms, PausedQueue, Queue, QueueKind};

use super::{Engine, EngineError};
use crate::events::{QueueChange, ServerEvent};

impl Engine {
    /// Pauses `queue`; returns whether it was not paused before. A pool must be running or
    /// configured (`[[pool]]`); a job name need not have a file yet.
    pub(crate) async fn pause_queue(&self, queue: &Queue) -> Result<bool, EngineError> {
        self.check_queue(queue)?;
        let changed = self.store.pause_queue(queue, now_ms()).await?;
        // Jobs this node holds ahead (`claim_ahead`) have not started: back to the queue, so
        // the pause stops them too (another node's held jobs still start).
        match queue.kind {
            QueueKind::Pool => self.hand_back_held_where(|c| c.pool == queue.name),
            QueueKind::Job => self.hand_back_held_where(|c| c.job == queue.name),
        }
        if changed {
            self.tell(queue, "paused");
        }
        Ok(changed)
    }

    /// Resumes `queue`; returns whether it was paused.
    pub(crate) async fn resume_queue(&self, queue: &Queue) -> Result<bool, EngineError> {
        self.check_queue(queue)?;
        let changed = self.store.resume_queue(queue).await?;
        if changed {
            self.tell(queue, "resumed");
            self.notify();
        }
        Ok(changed)
    }

    /// Every paused queue.
    pub(crate) async fn paused_queues(&self) -> Result<Vec<PausedQueue>, EngineError> {
        Ok(self.store.paused_queues().await?)
    }

    fn check_queue(&self, queue: &Queue) -> Result<(), EngineError> {
        queue.check()?;
        match queue.kind {
            QueueKind::Pool => {
                let known = self.pool(&queue.name).is_some()
                    || self.cfg.pools.iter().any(|p| p.name == queue.name);
                if !known {
                    return Err(EngineError::NotFound(format!(
                        "no pool {:?}: GET /v1/pools lists the running pools, [[pool]] in \
                         offload.toml the configured ones",
                        queue.name
                    )));
                }
            }
            // Any name as jobs are submitted with it (the store bounds its length): a job
            // can be paused before its file is deployed.
            QueueKind::Job => {}
        }
        Ok(())
    }

    fn tell(&self, queue: &Queue, change: &'static str) {
        let _ = self.events.send(ServerEvent::Queue(QueueChange {
            kind: queue.kind.as_str(),
            name: queue.name.clone(),
            change,
        }));
    }
}
