//! `cancel`, `retry` and `purge`: what an operator does to jobs.

use rusqlite::{params, Connection};

use super::super::counts::Deltas;
use super::super::engine;
use super::{all, first, id_text};
use crate::limits::MAX_ATTEMPTS_PER_JOB;
use crate::rules::rows::Row;
use crate::rules::state::{check_retry, Cancel};
use crate::{CancelResult, JobId, JobState, Millis, StoreError};

const STATE_OF: &str = include_str!("../sql/admin/state_of.sql");
const CANCEL_NOW: &str = include_str!("../sql/admin/cancel_now.sql");
const CANCEL_REQUEST: &str = include_str!("../sql/admin/cancel_request.sql");
const RETRY: &str = include_str!("../sql/admin/retry.sql");
const TRIM_LOGS: &str = include_str!("../sql/logs/trim.sql");
const PURGE_COUNTS: &str = include_str!("../sql/admin/purge_counts.sql");
const PURGE_ATTEMPTS: &str = include_str!("../sql/admin/purge_attempts.sql");
const PURGE_KEYS: &str = include_str!("../sql/admin/purge_keys.sql");
const PURGE_JOBS: &str = include_str!("../sql/admin/purge_jobs.sql");

/// A job's state and pool.
fn state_of(c: &Connection, id: &str) -> Result<(JobState, String), StoreError> {
    state_and_attempts(c, id).map(|(state, pool, _)| (state, pool))
}

/// The job's state, pool and attempts so far.
fn state_and_attempts(c: &Connection, id: &str) -> Result<(JobState, String, u32), StoreError> {
    let mut s = c.prepare_cached(STATE_OF).map_err(engine)?;
    first(&mut s, [id], |r| {
        Ok((
            r.state("state")?,
            r.text("pool")?,
            u32::try_from(r.int("attempt")?).unwrap_or(u32::MAX),
        ))
    })?
    .ok_or(StoreError::NotFound)
}

pub(in crate::sqlite) fn cancel(
    c: &Connection,
    deltas: &mut Deltas,
    id: JobId,
    now: Millis,
) -> Result<CancelResult, StoreError> {
    let id = id_text(id);
    let (state, pool) = state_of(c, &id)?;
    let action = Cancel::of(state);
    let sql = match action {
        Cancel::Now => CANCEL_NOW,
        Cancel::Request => CANCEL_REQUEST,
        Cancel::AlreadyDone(_) => return Ok(action.result()),
    };
    c.prepare_cached(sql)
        .and_then(|mut s| s.execute(params![id, now]))
        .map_err(engine)?;
    if action == Cancel::Now {
        deltas.moved(&pool, state, JobState::Cancelled);
    }
    Ok(action.result())
}

pub(in crate::sqlite) fn retry(
    c: &Connection,
    deltas: &mut Deltas,
    id: JobId,
    now: Millis,
    log_attempts: u32,
) -> Result<JobState, StoreError> {
    let id = id_text(id);
    let (state, pool, attempts) = state_and_attempts(c, &id)?;
    check_retry(state, attempts)?;
    retry_one(c, &id, now, log_attempts)?;
    deltas.moved(&pool, state, JobState::Queued);
    Ok(JobState::Queued)
}

/// Queues job `id` for a new round of attempts, numbered on, and keeps the logs of its last
/// `log_attempts` attempts; the caller checked its state.
pub(in crate::sqlite) fn retry_one(
    c: &Connection,
    id: &str,
    now: Millis,
    log_attempts: u32,
) -> Result<(), StoreError> {
    c.prepare_cached(RETRY)
        .and_then(|mut s| s.execute(params![id, now, MAX_ATTEMPTS_PER_JOB]))
        .map_err(engine)?;
    c.prepare_cached(TRIM_LOGS)
        .and_then(|mut s| s.execute(params![id, log_attempts]))
        .map_err(engine)?;
    Ok(())
}

pub(in crate::sqlite) fn purge(
    c: &Connection,
    deltas: &mut Deltas,
    before: Millis,
) -> Result<u64, StoreError> {
    let now = crate::now_ms();
    let gone = {
        let mut s = c.prepare(PURGE_COUNTS).map_err(engine)?;
        all(&mut s, [before, now], |r| {
            Ok((r.text("pool")?, r.state("state")?, r.int("n")?))
        })?
    };
    if gone.is_empty() {
        return Ok(0);
    }
    for (pool, state, n) in &gone {
        deltas.add(pool, *state, -n);
    }
    c.execute(PURGE_ATTEMPTS, [before, now]).map_err(engine)?;
    c.execute(PURGE_KEYS, [before, now]).map_err(engine)?;
    let n = c.execute(PURGE_JOBS, [before, now]).map_err(engine)?;
    Ok(n as u64)
}
