//! The reads: `get` (a job with its attempts), `list` (pages, newest first) and `counts`.

use rusqlite::Connection;

use super::super::engine;
use super::{all, first, id_text};
use crate::rules::page::{after, id_at, limit, page};
use crate::rules::rows::{attempt, count, job};
use crate::{Counts, JobId, JobRecord, ListFilter, Page, StoreError};

const JOB: &str = include_str!("../sql/read/job.sql");
const ATTEMPTS: &str = include_str!("../sql/read/attempts.sql");
const LIST: &str = include_str!("../sql/read/list.sql");
const COUNTS: &str = include_str!("../sql/read/counts.sql");

pub(in crate::sqlite) fn get(c: &Connection, id: JobId) -> Result<JobRecord, StoreError> {
    let id_s = id_text(id);
    let mut s = c.prepare_cached(JOB).map_err(engine)?;
    let mut job = first(&mut s, [&id_s], |r| job(r))?.ok_or(StoreError::NotFound)?;
    let mut s = c.prepare_cached(ATTEMPTS).map_err(engine)?;
    job.attempts = all(&mut s, [&id_s], |r| attempt(r))?;
    Ok(job)
}

pub(in crate::sqlite) fn list(c: &Connection, filter: &ListFilter) -> Result<Page, StoreError> {
    let limit = limit(filter.limit);
    let mut filters = String::new();
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    if let Some(state) = filter.state {
        filters.push_str(" AND state = ?");
        args.push(Box::new(state.as_str()));
    }
    if let Some(job) = &filter.job {
        filters.push_str(" AND job = ?");
        args.push(Box::new(job.clone()));
    }
    if let Some(schedule) = &filter.schedule {
        filters.push_str(" AND cron_schedule = ?");
        args.push(Box::new(schedule.clone()));
    }
    if let Some(since) = filter.since {
        filters.push_str(" AND id >= ?");
        args.push(Box::new(id_text(id_at(since))));
    }
    if let Some(until) = filter.until {
        filters.push_str(" AND id < ?");
        args.push(Box::new(id_text(id_at(until))));
    }
    if let Some(cursor) = &filter.cursor {
        filters.push_str(" AND id < ?");
        args.push(Box::new(id_text(after(cursor)?)));
    }
    // One more than the page, to know whether another page follows.
    args.push(Box::new(limit as i64 + 1));
    let sql = LIST.replace("{filters}", &filters);
    let mut s = c.prepare_cached(&sql).map_err(engine)?;
    let jobs = all(&mut s, rusqlite::params_from_iter(args.iter()), |r| job(r))?;
    Ok(page(jobs, limit))
}

pub(in crate::sqlite) fn counts(c: &Connection) -> Result<Counts, StoreError> {
    let mut s = c.prepare_cached(COUNTS).map_err(engine)?;
    Ok(all(&mut s, [], |r| count(r))?.into_iter().collect())
}
