//! `submit`: jobs in one transaction, answered in order; a job whose idempotency key (within
//! the window) or cron tick already names a job gets that job back.

use std::time::Duration;

use rusqlite::{params, Connection};

use super::super::counts::Deltas;
use super::super::engine;
use super::{first, id_text};
use crate::rules::rows::{duplicate, Row};
use crate::rules::submit::{same_job, unique_key, validate};
use crate::rules::values::{ms, to_i64};
use crate::{CronTick, JobId, JobState, Millis, NewJob, StoreError, Submitted};

const BY_KEY: &str = include_str!("../sql/submit/by_key.sql");
const BY_TICK: &str = include_str!("../sql/submit/by_tick.sql");
const INSERT_JOB: &str = include_str!("../sql/submit/insert_job.sql");
const TAKE_KEY: &str = include_str!("../sql/submit/take_key.sql");
const NOTE_TICK: &str = include_str!("../sql/submit/note_tick.sql");
const COUNT_CRON_RUN: &str = include_str!("../sql/submit/count_cron_run.sql");
const BY_UNIQUE: &str = include_str!("../sql/submit/by_unique.sql");

/// The first job of an idempotency key of the job's name, if created within the window; a
/// conflict when that job has other params.
fn by_key(
    c: &Connection,
    job: &NewJob,
    key: &str,
    window: i64,
    now: Millis,
) -> Result<Option<Submitted>, StoreError> {
    let mut s = c.prepare_cached(BY_KEY).map_err(engine)?;
    let found = first(&mut s, [key, &job.job], |r| {
        let created_at = r.int("key_created_at")?;
        if now.saturating_sub(created_at) >= window {
            return Ok(None);
        }
        same_job(key, job, Some(&r.text("job")?), Some(&r.json("params")?))?;
        duplicate(r).map(Some)
    })?;
    Ok(found.flatten())
}

/// The job a cron tick created, if any.
fn by_tick(c: &Connection, tick: &CronTick) -> Result<Option<Submitted>, StoreError> {
    let mut s = c.prepare_cached(BY_TICK).map_err(engine)?;
    first(&mut s, params![tick.schedule, tick.tick], |r| duplicate(r))
}

pub(in crate::sqlite) fn submit(
    c: &Connection,
    deltas: &mut Deltas,
    jobs: &[NewJob],
    window: Duration,
    now: Millis,
) -> Result<Vec<Submitted>, StoreError> {
    let window = ms(window);
    let mut out = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.iter().enumerate() {
        if let Some(key) = &job.idempotency_key {
            // The submit's own window, else the store's.
            let window = job
                .key_ttl_ms
                .map(|t| to_i64(t, "key_ttl_ms"))
                .transpose()?
                .unwrap_or(window);
            if let Some(first) = by_key(c, job, key, window, now)? {
                out.push(first);
                continue;
            }
        }
        if let Some(tick) = &job.cron {
            if let Some(first) = by_tick(c, tick)? {
                out.push(first);
                continue;
            }
        }
        let unique = unique_key(job);
        if let Some(unique) = &unique {
            // One writer: no other submit runs between this look and the insert.
            let mut s = c.prepare_cached(BY_UNIQUE).map_err(engine)?;
            if let Some(first) = first(&mut s, params![job.job, unique], |r| duplicate(r))? {
                out.push(first);
                continue;
            }
        }
        validate(job)?;
        let id = JobId::now_v7();
        let id_s = id_text(id);
        let run_at = job.run_at.unwrap_or(now);
        let state = if run_at > now {
            JobState::Scheduled
        } else {
            JobState::Queued
        };
        let timeout = job
            .timeout_ms
            .map(|t| to_i64(t, "timeout_ms"))
            .transpose()?;
        let backoff = to_i64(job.backoff_ms, "backoff_ms")?;
        let policy = job
            .backoff
            .as_ref()
            .map(|b| serde_json::to_string(b).map_err(|e| StoreError::Invalid(e.to_string())))
            .transpose()?;
        let keep = job
            .keep_result_ms
            .map(|k| to_i64(k, "keep_result_ms"))
            .transpose()?;
        c.prepare_cached(INSERT_JOB)
            .and_then(|mut s| {
                s.execute(params![
                    id_s,
                    job.job,
                    job.pool,
                    job.params.to_string(),
                    state.as_str(),
                    job.priority,
                    run_at,
                    now,
                    job.max_attempts,
                    timeout,
                    backoff,
                    job.idempotency_key,
                    job.cron.as_ref().map(|t| &t.schedule),
                    job.cron.as_ref().map(|t| t.tick),
                    policy,
                    keep,
                    unique,
                ])
            })
            .map_err(engine)?;
        deltas.add(&job.pool, state, 1);
        let earlier: Vec<JobId> = out.iter().map(|d: &Submitted| d.id).collect();
        let state = super::after::attach(c, deltas, &id_s, state, job, index, &earlier)?;
        if let Some(key) = &job.idempotency_key {
            c.prepare_cached(TAKE_KEY)
                .and_then(|mut s| s.execute(params![key, id_s, now, job.job]))
                .map_err(engine)?;
        }
        if let Some(tick) = &job.cron {
            c.prepare_cached(NOTE_TICK)
                .and_then(|mut s| s.execute(params![tick.schedule, tick.tick, id_s]))
                .map_err(engine)?;
            c.prepare_cached(COUNT_CRON_RUN)
                .and_then(|mut s| s.execute([&tick.schedule]))
                .map_err(engine)?;
        }
        out.push(Submitted {
            id,
            state,
            duplicate: false,
        });
    }
    Ok(out)
}
