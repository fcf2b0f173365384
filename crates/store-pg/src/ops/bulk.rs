//! `delete` of one job and `bulk` retry or delete by a filter (see [`offload_store::bulk`]):
//! each in one transaction.

use deadpool_postgres::Object;
use offload_store::bulk::{running_refusal, BulkAction, BulkOutcome, JobFilter};
use offload_store::limits::MAX_ATTEMPTS_PER_JOB;
use offload_store::rules::rows::Row;
use offload_store::{JobId, JobState, Notice, StoreError};
use tokio_postgres::types::ToSql;

use super::{all, Cols};
use crate::engine;

const LOCK_JOB: &str = include_str!("../sql/bulk/lock_job.sql");
const DELETE_JOB: &str = include_str!("../sql/bulk/delete_job.sql");
const RETRY: &str = include_str!("../sql/bulk/retry.sql");
const DELETE: &str = include_str!("../sql/bulk/delete.sql");
const MORE: &str = include_str!("../sql/bulk/more.sql");

pub(crate) async fn delete(c: &mut Object, id: JobId) -> Result<JobState, StoreError> {
    let tx = c.transaction().await.map_err(engine)?;
    let st = tx.prepare_cached(LOCK_JOB).await.map_err(engine)?;
    let row = tx
        .query_opt(&st, &[&id])
        .await
        .map_err(engine)?
        .ok_or(StoreError::NotFound)?;
    let state = Cols(&row).state("state")?;
    if state == JobState::Running {
        return Err(running_refusal());
    }
    let st = tx.prepare_cached(DELETE_JOB).await.map_err(engine)?;
    tx.execute(&st, &[&id]).await.map_err(engine)?;
    tx.commit().await.map_err(engine)?;
    Ok(state)
}

/// Returns what it did and, for a retry, a `Due` notice per pool that got queued jobs.
pub(crate) async fn bulk(
    c: &mut Object,
    action: BulkAction,
    filter: &JobFilter,
    limit: usize,
    log_attempts: u32,
) -> Result<(BulkOutcome, Vec<Notice>), StoreError> {
    filter.check(action, limit)?;
    let states = filter.state_names();
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let keep = i64::from(log_attempts);
    // A retry skips the jobs at the bound of attempts (`check_retry`).
    let bound = (action == BulkAction::Retry).then_some(i64::from(MAX_ATTEMPTS_PER_JOB));
    let args: [&(dyn ToSql + Sync); 8] = [
        &states,
        &filter.job,
        &filter.pool,
        &filter.since,
        &filter.until,
        &n,
        &keep,
        &bound,
    ];
    let more_args: [&(dyn ToSql + Sync); 6] = [
        &states,
        &filter.job,
        &filter.pool,
        &filter.since,
        &filter.until,
        &bound,
    ];
    let tx = c.transaction().await.map_err(engine)?;
    // The retry also takes the logs kept ($7) and the bound of attempts ($8).
    let (sql, n_args) = match action {
        BulkAction::Retry => (RETRY, 8),
        BulkAction::Delete => (DELETE, 6),
    };
    let st = tx.prepare_cached(sql).await.map_err(engine)?;
    let rows = tx.query(&st, &args[..n_args]).await.map_err(engine)?;
    let per_pool = all(&rows, |r| Ok((r.text("pool")?, r.int("n")?)))?;
    let st = tx.prepare_cached(MORE).await.map_err(engine)?;
    let more = Cols(&tx.query_one(&st, &more_args).await.map_err(engine)?).flag("more")?;
    tx.commit().await.map_err(engine)?;
    let affected = per_pool.iter().map(|(_, n)| *n).sum::<i64>();
    let notices = match action {
        BulkAction::Retry => per_pool
            .into_iter()
            .map(|(pool, _)| Notice::Due { pool })
            .collect(),
        BulkAction::Delete => Vec::new(),
    };
    Ok((
        BulkOutcome {
            affected: u64::try_from(affected).unwrap_or(0),
            more,
        },
        notices,
    ))
}
