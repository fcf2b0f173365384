//! The reads: `get` (a job with its attempts, pipelined), `list` (pages, newest first) and
//! `counts`.

use deadpool_postgres::Object;
use offload_store::rules::page::{after, id_at, limit, page};
use offload_store::rules::rows::{attempt, count, job};
use offload_store::{Counts, JobId, JobRecord, JobState, ListFilter, Page, StoreError};
use tokio_postgres::types::ToSql;

use super::{all, Cols};
use crate::engine;

const JOB: &str = include_str!("../sql/read/job.sql");
const ATTEMPTS: &str = include_str!("../sql/read/attempts.sql");
const LIST: &str = include_str!("../sql/read/list.sql");
const COUNTS: &str = include_str!("../sql/read/counts.sql");

pub(crate) async fn get(c: &Object, id: JobId) -> Result<JobRecord, StoreError> {
    let job_st = c.prepare_cached(JOB).await.map_err(engine)?;
    let attempts_st = c.prepare_cached(ATTEMPTS).await.map_err(engine)?;
    // Pipelined: one round trip. Two statements, two snapshots: the attempts may be one step
    // ahead of the job row.
    let args: [&(dyn ToSql + Sync); 1] = [&id];
    let (row, rows) = tokio::try_join!(c.query_opt(&job_st, &args), c.query(&attempts_st, &args))
        .map_err(engine)?;
    let mut job = job(&Cols(&row.ok_or(StoreError::NotFound)?))?;
    job.attempts = all(&rows, |r| attempt(r))?;
    Ok(job)
}

pub(crate) async fn list(c: &Object, filter: &ListFilter) -> Result<Page, StoreError> {
    let limit = limit(filter.limit);
    let state = filter.state.map(JobState::as_str);
    let after = filter.cursor.as_deref().map(after).transpose()?;
    let since = filter.since.map(id_at);
    let until = filter.until.map(id_at);
    let mut filters = String::new();
    let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if let Some(state) = &state {
        args.push(state);
        filters.push_str(&format!(" AND state = ${}", args.len()));
    }
    if let Some(job) = &filter.job {
        args.push(job);
        filters.push_str(&format!(" AND job = ${}", args.len()));
    }
    if let Some(schedule) = &filter.schedule {
        args.push(schedule);
        filters.push_str(&format!(" AND cron_schedule = ${}", args.len()));
    }
    if let Some(since) = &since {
        args.push(since);
        filters.push_str(&format!(" AND id >= ${}", args.len()));
    }
    if let Some(until) = &until {
        args.push(until);
        filters.push_str(&format!(" AND id < ${}", args.len()));
    }
    if let Some(after) = &after {
        args.push(after);
        filters.push_str(&format!(" AND id < ${}", args.len()));
    }
    // One more than the page, to know whether another page follows.
    let n = limit as i64 + 1;
    args.push(&n);
    let sql = LIST
        .replace("{filters}", &filters)
        .replace("{limit}", &format!("${}", args.len()));
    let st = c.prepare_cached(&sql).await.map_err(engine)?;
    let rows = c.query(&st, &args).await.map_err(engine)?;
    Ok(page(all(&rows, |r| job(r))?, limit))
}

pub(crate) async fn counts(c: &Object) -> Result<Counts, StoreError> {
    let st = c.prepare_cached(COUNTS).await.map_err(engine)?;
    let rows = c.query(&st, &[]).await.map_err(engine)?;
    Ok(all(&rows, |r| count(r))?.into_iter().collect())
}
