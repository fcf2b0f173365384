//! `after` at submit: the new job's dependencies are looked up (and marked as having
//! dependents), and it starts `waiting`, free, or `cancelled` ([`crate::after`]). Their ends
//! release it by the schema's triggers (`sql/schema/v9.sql`, `v11.sql`), and
//! [`release_cascade`] finishes what they leave, after every write call.

use rusqlite::{params, Connection};

use super::super::counts::Deltas;
use super::super::engine;
use super::{first, id_text};
use crate::after::{resolve, start, unknown, Start};
use crate::rules::rows::Row;
use crate::rules::values::error_value;
use crate::{JobId, JobState, NewJob, StoreError};

const MARK: &str = include_str!("../sql/after/mark.sql");
const SET: &str = include_str!("../sql/after/set.sql");
const EDGE: &str = include_str!("../sql/after/edge.sql");
const CASCADE: &str = include_str!("../sql/after/cascade.sql");

/// The most levels of a chain released by one call: a bound on the loop, far beyond any chain
/// a database can hold pending (each level is at least one job; it only stops a bug from
/// spinning the writer).
const MAX_CASCADE_LEVELS: usize = 100_000_000;

/// Releases the dependents of every job in `job_cascade` (jobs a dependency's end cancelled,
/// whose own dependents wait), level by level until none is left: each `DELETE` fires
/// `job_cascade_released` for the rows it takes, which may add the next level. The trigger
/// depth stays the same whatever the chain's length (schema v11). The writer calls it after
/// every call, in the call's transaction: a chain ends with the job that ended its head.
pub(in crate::sqlite) fn release_cascade(c: &Connection) -> Result<(), StoreError> {
    let mut s = c.prepare_cached(CASCADE).map_err(engine)?;
    for _ in 0..MAX_CASCADE_LEVELS {
        if s.execute([]).map_err(engine)? == 0 {
            return Ok(());
        }
    }
    Err(StoreError::Engine(format!(
        "the release of dependents did not end after {MAX_CASCADE_LEVELS} levels"
    )))
}

/// Attaches the dependencies of `job`, item `index` of its batch, just inserted as `id` in
/// `state`; `earlier` are the ids the batch's earlier items answered. Returns its state now.
pub(super) fn attach(
    c: &Connection,
    deltas: &mut Deltas,
    id: &str,
    state: JobState,
    job: &NewJob,
    index: usize,
    earlier: &[JobId],
) -> Result<JobState, StoreError> {
    if job.after.is_empty() {
        return Ok(state);
    }
    let deps = resolve(&job.after, index, earlier)?;
    let mut states = Vec::with_capacity(deps.len());
    for dep in &deps {
        let mut s = c.prepare_cached(MARK).map_err(engine)?;
        let st = first(&mut s, [id_text(*dep)], |r| r.state("state"))?
            .ok_or_else(|| StoreError::from(unknown(*dep)))?;
        states.push((*dep, st));
    }
    let (to, waiting_on, error) = match start(job.after_policy, &states) {
        Start::Free => (state, 0, None),
        Start::Wait(open) => {
            for dep in &open {
                c.prepare_cached(EDGE)
                    .and_then(|mut s| s.execute(params![id_text(*dep), id]))
                    .map_err(engine)?;
            }
            (JobState::Waiting, open.len() as i64, None)
        }
        Start::Cancelled(e) => (JobState::Cancelled, 0, Some(error_value(&e).to_string())),
    };
    let ids = serde_json::to_string(&deps).map_err(|e| StoreError::Invalid(e.to_string()))?;
    c.prepare_cached(SET)
        .and_then(|mut s| {
            s.execute(params![
                id,
                to.as_str(),
                waiting_on,
                ids,
                job.after_policy.as_str(),
                error
            ])
        })
        .map_err(engine)?;
    deltas.moved(&job.pool, state, to);
    Ok(to)
}
