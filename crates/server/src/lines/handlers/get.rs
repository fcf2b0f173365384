//! `queue:get:id:<id>`: waits for the job's end and answers what a direct call would have.
//! Any job's id works, whatever submitted it. Bounded: `max_waits` at once, `max_wait_ms` each
//! (see `call.rs`).

use offload_store::JobId;

use super::super::reply::{self, LineError};
use super::super::Ctx;
use super::call::wait;
use super::Gone;

pub(super) async fn get(ctx: &Ctx, id: JobId, gone: Gone<'_>) -> Result<String, LineError> {
    let rec = wait(ctx, id, gone, None)
        .await
        .map_err(|e| unknown(e, id))?;
    reply::finished(&rec)
}

/// `404:` naming the id.
pub(super) fn unknown(e: LineError, id: JobId) -> LineError {
    if e.code == 404 {
        LineError::not_found(format!("no job {id}"))
    } else {
        e
    }
}
