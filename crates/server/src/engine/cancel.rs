//! Cancelling jobs: one by id (the API, the dashboard), and the unfinished runs of a cron
//! schedule whose `overlap = "replace"` fires a new run over them. A waiting job is cancelled
//! by the store at once (and told as a `job` event here); a running one is marked
//! `cancel_requested` and killed by the node that holds it — at once when that is this node,
//! else by that node's lease keeper, which sees the mark when it renews.

use offload_store::{CancelResult, JobId, JobState, ListFilter};

use super::{Engine, EngineError};
use crate::events::JobChange;

/// The most unfinished runs of one schedule that a `replace` looks at (with `replace`, there is
/// at most one unless an operator ran it by hand).
const MAX_REPLACED: usize = 100;

impl Engine {
    /// Cancels job `id`: what the store did with it (a running job's kill is under way when
    /// this returns `Requested`).
    pub(crate) async fn cancel(&self, id: JobId) -> Result<CancelResult, EngineError> {
        let done = self.store.cancel(id).await?;
        match done {
            CancelResult::Cancelled => {
                let rec = self.store.get(id).await?;
                self.announce(JobChange {
                    id,
                    job: rec.job,
                    pool: rec.pool,
                    state: JobState::Cancelled,
                    attempt: rec.attempt,
                });
            }
            CancelResult::Requested => {
                self.cancel_running(id);
            }
            CancelResult::AlreadyDone(_) => {}
        }
        Ok(done)
    }

    /// Cancels every unfinished run of cron schedule `schedule` (its `replace` overlap policy);
    /// returns how many it cancelled or asked to stop.
    pub(crate) async fn cancel_runs_of(&self, schedule: &str) -> Result<usize, EngineError> {
        let page = self
            .store
            .list(ListFilter {
                schedule: Some(schedule.to_owned()),
                limit: MAX_REPLACED,
                ..ListFilter::default()
            })
            .await?;
        let mut cancelled = 0;
        for job in page.jobs.iter().filter(|j| !j.state.is_terminal()) {
            if !matches!(self.cancel(job.id).await?, CancelResult::AlreadyDone(_)) {
                cancelled += 1;
            }
        }
        Ok(cancelled)
    }
}
