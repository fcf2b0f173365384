//! The model's records decoded from a row **by column name**, written once for every engine.
//!
//! An engine implements [`Row`] for its row type (the typed reads of one column: how it stores
//! ids, JSON and flags is its business); the functions here build the records from the named
//! columns. A statement that forgets a column, or returns one under another name, fails with an
//! engine error naming it instead of reading the wrong column.

use serde_json::Value;

use super::values::{corrupt, state, stored_error, to_u32, to_u64};
use crate::{
    AttemptRecord, Backoff, Claimed, CronSchedule, CronState, JobId, JobRecord, JobState,
    StoreError, Submitted,
};

/// One row of a result, read by column name. Each method reads the column `col` as a value of
/// the model; an engine maps its own types (text ids, JSON as text, integer flags) here.
pub trait Row {
    /// A job id.
    fn id(&self, col: &str) -> Result<JobId, StoreError>;
    /// Text.
    fn text(&self, col: &str) -> Result<String, StoreError>;
    /// Text or `NULL`.
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    /// A 64-bit integer.
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    /// A 64-bit integer or `NULL`.
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
    /// A 32-bit integer (a priority).
    fn int32(&self, col: &str) -> Result<i32, StoreError>;
    /// A boolean.
    fn flag(&self, col: &str) -> Result<bool, StoreError>;
    /// A JSON value.
    fn json(&self, col: &str) -> Result<Value, StoreError>;
    /// A JSON value or `NULL`.
    fn opt_json(&self, col: &str) -> Result<Option<Value>, StoreError>;

    /// A job state (stored as its name).
    fn state(&self, col: &str) -> Result<JobState, StoreError> {
        state(&self.text(col)?)
    }
}

/// A job without its attempts, from the columns `id, job, pool, params, state, priority,
/// run_at, created_at, updated_at, attempt, max_attempts, timeout_ms, backoff_ms, backoff,
/// keep_result_ms, idempotency_key, progress, result, error, cancel_requested, node, lease_until,
/// cron_schedule, after_ids, after_policy, waiting_on`.
///
/// # Errors
///
/// An engine error naming a missing or unreadable column.
pub fn job(r: &impl Row) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        id: r.id("id")?,
        job: r.text("job")?,
        pool: r.text("pool")?,
        params: r.json("params")?,
        state: r.state("state")?,
        priority: r.int32("priority")?,
        run_at: r.int("run_at")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        attempt: to_u32(r.int("attempt")?, "attempt")?,
        max_attempts: to_u32(r.int("max_attempts")?, "max_attempts")?,
        timeout_ms: r
            .opt_int("timeout_ms")?
            .map(|t| to_u64(t, "timeout_ms"))
            .transpose()?,
        backoff_ms: to_u64(r.int("backoff_ms")?, "backoff_ms")?,
        backoff: backoff(r)?,
        keep_result_ms: r
            .opt_int("keep_result_ms")?
            .map(|t| to_u64(t, "keep_result_ms"))
            .transpose()?,
        idempotency_key: r.opt_text("idempotency_key")?,
        progress: r.opt_json("progress")?,
        result: r.opt_json("result")?,
        error: stored_error(r.opt_json("error")?)?,
        cancel_requested: r.flag("cancel_requested")?,
        node: r.opt_text("node")?,
        lease_until: r.opt_int("lease_until")?,
        schedule: r.opt_text("cron_schedule")?,
        after: after_ids(r)?,
        after_policy: crate::AfterPolicy::parse(r.opt_text("after_policy")?.as_deref()),
        waiting_on: to_u32(r.int("waiting_on")?, "waiting_on")?,
        attempts: Vec::new(),
    })
}

/// The ids in the column `after_ids` (a JSON array of ids, `NULL`: none).
fn after_ids(r: &impl Row) -> Result<Vec<JobId>, StoreError> {
    let Some(v) = r.opt_json("after_ids")? else {
        return Ok(Vec::new());
    };
    serde_json::from_value(v).map_err(|e| corrupt("after_ids", e))
}

/// A claimed job, from the columns `id, job, pool, params, attempt, max_attempts, timeout_ms,
/// backoff_ms, backoff, created_at, run_at`.
///
/// # Errors
///
/// An engine error naming a missing or unreadable column.
pub fn claimed(r: &impl Row) -> Result<Claimed, StoreError> {
    Ok(Claimed {
        id: r.id("id")?,
        job: r.text("job")?,
        pool: r.text("pool")?,
        params: r.json("params")?,
        attempt: to_u32(r.int("attempt")?, "attempt")?,
        max_attempts: to_u32(r.int("max_attempts")?, "max_attempts")?,
        timeout_ms: r
            .opt_int("timeout_ms")?
            .map(|t| to_u64(t, "timeout_ms"))
            .transpose()?,
        backoff_ms: to_u64(r.int("backoff_ms")?, "backoff_ms")?,
        backoff: backoff(r)?,
        created_at: r.int("created_at")?,
        run_at: r.int("run_at")?,
    })
}

/// A job's backoff from its `backoff` column (JSON, null for a job that named none: then
/// [`Backoff::legacy`] of `backoff_ms`).
///
/// # Errors
///
/// An engine error naming a missing column; [`corrupt`] for JSON that is not a backoff.
pub fn backoff(r: &impl Row) -> Result<Backoff, StoreError> {
    match r.opt_json("backoff")? {
        Some(v) => serde_json::from_value(v).map_err(|e| corrupt("backoff", e)),
        None => Ok(Backoff::legacy(to_u64(r.int("backoff_ms")?, "backoff_ms")?)),
    }
}

/// An attempt, from the columns `attempt, node, pid, started_at, ended_at, outcome, error`.
///
/// # Errors
///
/// An engine error naming a missing or unreadable column.
pub fn attempt(r: &impl Row) -> Result<AttemptRecord, StoreError> {
    Ok(AttemptRecord {
        attempt: to_u32(r.int("attempt")?, "attempt")?,
        node: r.opt_text("node")?,
        pid: r.opt_int("pid")?.map(|p| to_u32(p, "pid")).transpose()?,
        started_at: r.int("started_at")?,
        ended_at: r.opt_int("ended_at")?,
        outcome: r.opt_text("outcome")?,
        error: stored_error(r.opt_json("error")?)?,
    })
}

/// A stored cron schedule, from the columns of `schedules.sql`.
///
/// # Errors
///
/// An engine error naming a missing or unreadable column.
pub fn schedule(r: &impl Row) -> Result<CronSchedule, StoreError> {
    Ok(CronSchedule {
        name: r.text("name")?,
        cron: r.text("cron")?,
        job: r.text("job")?,
        params: r.json("params")?,
        missed: r.text("missed")?,
        created_at: r.int("created_at")?,
        overlap: r.text("overlap")?,
        pause_after_failures: r
            .opt_int("pause_after_failures")?
            .map(|n| to_u32(n, "pause_after_failures"))
            .transpose()?,
        timezone: r.opt_text("timezone")?,
        jitter_ms: opt_u64(r, "jitter_ms")?,
        failure_backoff_ms: opt_u64(r, "failure_backoff_ms")?,
        failure_backoff_max_ms: opt_u64(r, "failure_backoff_max_ms")?,
    })
}

/// An unsigned integer column or `NULL`.
fn opt_u64(r: &impl Row, col: &'static str) -> Result<Option<u64>, StoreError> {
    r.opt_int(col)?.map(|n| to_u64(n, col)).transpose()
}

/// The counters of a schedule, from the columns of `cron_states.sql`.
///
/// # Errors
///
/// An engine error naming a missing or unreadable column.
pub fn cron_state(r: &impl Row) -> Result<CronState, StoreError> {
    Ok(CronState {
        schedule: r.text("schedule")?,
        runs: to_u64(r.int("runs")?, "runs")?,
        consecutive_failures: to_u32(r.int("consecutive_failures")?, "consecutive_failures")?,
        last_success_at: r.opt_int("last_success_at")?,
        last_failure_at: r.opt_int("last_failure_at")?,
        last_error: r.opt_json("last_error")?,
        paused_at: r.opt_int("paused_at")?,
        paused_reason: r.opt_text("paused_reason")?,
        active: r.flag("active")?,
    })
}

/// One entry of [`Counts`](crate::Counts), from the columns `pool, state, n`.
///
/// # Errors
///
/// An engine error naming a missing or unreadable column; a negative count is corrupt.
pub fn count(r: &impl Row) -> Result<((String, JobState), u64), StoreError> {
    Ok((
        (r.text("pool")?, r.state("state")?),
        to_u64(r.int("n")?, "count")?,
    ))
}

/// The answer for a submit that found its first job (by idempotency key or cron tick), from
/// the columns `id, state`.
///
/// # Errors
///
/// An engine error naming a missing or unreadable column.
pub fn duplicate(r: &impl Row) -> Result<Submitted, StoreError> {
    Ok(Submitted {
        id: r.id("id")?,
        state: r.state("state")?,
        duplicate: true,
    })
}
