//! `delete` of one job and `bulk` retry or delete by a filter (see [`crate::bulk`]).

use rusqlite::{params, Connection};

use super::super::counts::Deltas;
use super::super::engine;
use super::{all, first, id_text};
use crate::bulk::{running_refusal, BulkAction, BulkOutcome, JobFilter};
use crate::rules::rows::Row;
use crate::{JobId, JobState, Millis, StoreError};

const STATE_OF: &str = include_str!("../sql/admin/state_of.sql");
const PICK: &str = include_str!("../sql/bulk/pick.sql");
const FORGET_KEY: &str = include_str!("../sql/bulk/forget_key.sql");
const DELETE_ATTEMPTS: &str = include_str!("../sql/bulk/delete_attempts.sql");
const DELETE_JOB: &str = include_str!("../sql/bulk/delete_job.sql");

/// Deletes job `id` (its key, attempts and row); the caller checked its state.
fn remove(c: &Connection, id: &str) -> Result<(), StoreError> {
    for sql in [FORGET_KEY, DELETE_ATTEMPTS, DELETE_JOB] {
        c.prepare_cached(sql)
            .and_then(|mut s| s.execute([id]))
            .map_err(engine)?;
    }
    Ok(())
}

pub(in crate::sqlite) fn delete(
    c: &Connection,
    deltas: &mut Deltas,
    id: JobId,
) -> Result<JobState, StoreError> {
    let id = id_text(id);
    let mut s = c.prepare_cached(STATE_OF).map_err(engine)?;
    let (state, pool) = first(&mut s, [&id], |r| Ok((r.state("state")?, r.text("pool")?)))?
        .ok_or(StoreError::NotFound)?;
    if state == JobState::Running {
        return Err(running_refusal());
    }
    remove(c, &id)?;
    deltas.add(&pool, state, -1);
    Ok(state)
}

pub(in crate::sqlite) fn bulk(
    c: &Connection,
    deltas: &mut Deltas,
    action: BulkAction,
    filter: &JobFilter,
    limit: usize,
    now: Millis,
    log_attempts: u32,
) -> Result<BulkOutcome, StoreError> {
    filter.check(action, limit)?;
    let states = serde_json::to_string(&filter.state_names())
        .map_err(|e| StoreError::Engine(e.to_string()))?;
    let picked = {
        let mut s = c.prepare_cached(PICK).map_err(engine)?;
        let n = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        all(
            &mut s,
            params![
                states,
                filter.job,
                filter.pool,
                filter.since,
                filter.until,
                n,
                // A retry skips the jobs at the bound of attempts (`check_retry`).
                (action == BulkAction::Retry).then_some(crate::limits::MAX_ATTEMPTS_PER_JOB)
            ],
            |r| Ok((r.text("id")?, r.text("pool")?, r.state("state")?)),
        )?
    };
    let more = picked.len() > limit;
    for (id, pool, state) in picked.iter().take(limit) {
        match action {
            BulkAction::Retry => {
                super::admin::retry_one(c, id, now, log_attempts)?;
                deltas.moved(pool, *state, JobState::Queued);
            }
            BulkAction::Delete => {
                remove(c, id)?;
                deltas.add(pool, *state, -1);
            }
        }
    }
    Ok(BulkOutcome {
        affected: picked.len().min(limit) as u64,
        more,
    })
}
