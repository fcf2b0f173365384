//! `queue:check:id:<id>` → `0` not started (queued or scheduled, never attempted), `1` started
//! (running, or waiting for a retry after a failed attempt), `2` done (succeeded, dead or
//! cancelled).

use offload_store::{JobId, JobState};

use super::super::reply::LineError;
use super::super::Ctx;
use super::get::unknown;

pub(super) async fn check(ctx: &Ctx, id: JobId) -> Result<String, LineError> {
    let rec = ctx
        .engine
        .store
        .get(id)
        .await
        .map_err(|e| unknown(LineError::from(e), id))?;
    let status = match rec.state {
        s if s.is_terminal() => 2,
        JobState::Running | JobState::Failed => 1,
        _ if rec.attempt > 0 => 1,
        _ => 0,
    };
    Ok(status.to_string())
}
