//! `after` at submit: the new job's dependencies are looked up (and marked as having
//! dependents, which locks their rows until the submit commits), and it starts `waiting`,
//! free, or `cancelled` ([`offload_store::after`]). Their ends release it by the schema's
//! trigger (`sql/schema/v9.sql`).

use deadpool_postgres::Transaction;
use offload_store::after::{resolve, start, unknown, Start};
use offload_store::rules::rows::Row;
use offload_store::rules::values::error_value;
use offload_store::{JobId, JobState, NewJob, StoreError};

use super::Cols;
use crate::engine;

const MARK: &str = include_str!("../sql/after/mark.sql");
const SET: &str = include_str!("../sql/after/set.sql");
const EDGES: &str = include_str!("../sql/after/edges.sql");

/// Attaches the dependencies of `job`, item `index` of its batch, just inserted as `id` in
/// `state`; `earlier` are the ids the batch's earlier items answered. Returns its state now.
pub(super) async fn attach(
    tx: &Transaction<'_>,
    id: JobId,
    state: JobState,
    job: &NewJob,
    index: usize,
    earlier: &[JobId],
) -> Result<JobState, StoreError> {
    if job.after.is_empty() {
        return Ok(state);
    }
    let deps = resolve(&job.after, index, earlier)?;
    // Locked in one order, so two submits naming the same jobs never wait in a cycle.
    let mut sorted = deps.clone();
    sorted.sort();
    let mark = tx.prepare_cached(MARK).await.map_err(engine)?;
    let mut states = Vec::with_capacity(deps.len());
    for dep in sorted {
        let row = tx.query_opt(&mark, &[&dep]).await.map_err(engine)?;
        let row = row.ok_or_else(|| StoreError::from(unknown(dep)))?;
        states.push((dep, Cols(&row).state("state")?));
    }
    // The view keeps the order given.
    states.sort_by_key(|(d, _)| deps.iter().position(|x| x == d));
    let (to, waiting_on, error) = match start(job.after_policy, &states) {
        Start::Free => (state, 0i64, None),
        Start::Wait(open) => {
            let edges = tx.prepare_cached(EDGES).await.map_err(engine)?;
            tx.execute(&edges, &[&open, &id]).await.map_err(engine)?;
            (JobState::Waiting, open.len() as i64, None)
        }
        Start::Cancelled(e) => (JobState::Cancelled, 0, Some(error_value(&e))),
    };
    let ids = serde_json::to_value(&deps).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let set = tx.prepare_cached(SET).await.map_err(engine)?;
    tx.execute(
        &set,
        &[
            &id,
            &to.as_str(),
            &waiting_on,
            &ids,
            &job.after_policy.as_str(),
            &error,
        ],
    )
    .await
    .map_err(engine)?;
    Ok(to)
}
