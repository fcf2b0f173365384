//! `cancel`, `retry` and `purge`: what an operator does to jobs. Cancel and retry lock the job,
//! decide from its state ([`offload_store::rules::state`]) and write, in one transaction.

use deadpool_postgres::Object;
use offload_store::limits::MAX_ATTEMPTS_PER_JOB;
use offload_store::rules::rows::Row;
use offload_store::rules::state::{check_retry, Cancel};
use offload_store::rules::values::{to_u32, to_u64};
use offload_store::{CancelResult, JobId, JobState, Millis, StoreError};

use super::Cols;
use crate::engine;
use offload_store::{JobNotice, Notice};

const LOCK_JOB: &str = include_str!("../sql/admin/lock_job.sql");
const CANCEL_NOW: &str = include_str!("../sql/admin/cancel_now.sql");
const CANCEL_REQUEST: &str = include_str!("../sql/admin/cancel_request.sql");
const RETRY: &str = include_str!("../sql/admin/retry.sql");
const PURGE: &str = include_str!("../sql/admin/purge.sql");

pub(crate) async fn cancel(
    c: &mut Object,
    id: JobId,
) -> Result<(CancelResult, Option<Notice>), StoreError> {
    let tx = c.transaction().await.map_err(engine)?;
    let st = tx.prepare_cached(LOCK_JOB).await.map_err(engine)?;
    let row = tx
        .query_opt(&st, &[&id])
        .await
        .map_err(engine)?
        .ok_or(StoreError::NotFound)?;
    let row = Cols(&row);
    let action = Cancel::of(row.state("state")?);
    let sql = match action {
        Cancel::Now => CANCEL_NOW,
        Cancel::Request => CANCEL_REQUEST,
        Cancel::AlreadyDone(_) => return Ok((action.result(), None)),
    };
    let st = tx.prepare_cached(sql).await.map_err(engine)?;
    tx.execute(&st, &[&id]).await.map_err(engine)?;
    tx.commit().await.map_err(engine)?;
    let notice = match action {
        Cancel::Request => Notice::CancelRequested {
            id,
            node: row.opt_text("node")?,
        },
        _ => Notice::Job(JobNotice {
            id,
            job: row.text("job")?,
            pool: row.text("pool")?,
            state: JobState::Cancelled,
            attempt: to_u32(row.int("attempt")?, "attempt")?,
        }),
    };
    Ok((action.result(), Some(notice)))
}

pub(crate) async fn retry(
    c: &mut Object,
    id: JobId,
    log_attempts: u32,
) -> Result<(JobState, Notice), StoreError> {
    let tx = c.transaction().await.map_err(engine)?;
    let st = tx.prepare_cached(LOCK_JOB).await.map_err(engine)?;
    let row = tx
        .query_opt(&st, &[&id])
        .await
        .map_err(engine)?
        .ok_or(StoreError::NotFound)?;
    let row = Cols(&row);
    check_retry(row.state("state")?, to_u32(row.int("attempt")?, "attempt")?)?;
    let st = tx.prepare_cached(RETRY).await.map_err(engine)?;
    let bound = i64::from(MAX_ATTEMPTS_PER_JOB);
    tx.execute(&st, &[&id, &i64::from(log_attempts), &bound])
        .await
        .map_err(engine)?;
    tx.commit().await.map_err(engine)?;
    Ok((
        JobState::Queued,
        Notice::Due {
            pool: row.text("pool")?,
        },
    ))
}

pub(crate) async fn purge(c: &Object, before: Millis) -> Result<u64, StoreError> {
    let st = c.prepare_cached(PURGE).await.map_err(engine)?;
    let row = c.query_one(&st, &[&before]).await.map_err(engine)?;
    to_u64(Cols(&row).int("n")?, "count")
}
