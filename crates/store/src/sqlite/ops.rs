//! The SQL of every operation. Each function runs inside a transaction the caller opened (the
//! writer's group commit, or a reader's snapshot); writes take `now` from the writer and note
//! their state changes in [`Deltas`].

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;

use super::counts::Deltas;
use super::engine;
use crate::{
    AttemptRecord, CancelResult, Claimed, Completion, Counts, CronSchedule, CronTick, Demand,
    JobId, JobRecord, JobState, ListFilter, Millis, NewJob, Page, StoreError, StoredError,
    Submitted, Transition,
};

/// The largest page `list` returns.
pub(crate) const MAX_LIMIT: usize = 1_000;
/// The page size when the filter's `limit` is 0.
pub(crate) const DEFAULT_LIMIT: usize = 100;

const JOB_COLS: &str = "id, job, pool, params, state, priority, run_at, created_at, updated_at, \
     attempt, max_attempts, timeout_ms, backoff_ms, idempotency_key, progress, result, error, \
     cancel_requested, node, lease_until";

// ---------------------------------------------------------------------------------------------
// Conversions.

/// Milliseconds of a duration, saturated to what an `i64` holds.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn id_text(id: JobId) -> String {
    id.hyphenated().to_string()
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(format!("corrupt {what} in the database: {detail}"))
}

fn parse_id(s: &str) -> Result<JobId, StoreError> {
    JobId::parse_str(s).map_err(|e| corrupt("job id", e))
}

fn parse_json(s: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

fn opt_json(s: Option<String>, what: &str) -> Result<Option<Value>, StoreError> {
    s.map(|s| parse_json(&s, what)).transpose()
}

fn error_text(e: &StoredError) -> String {
    serde_json::json!({ "name": e.name, "message": e.message, "stack": e.stack }).to_string()
}

fn parse_error(s: Option<String>) -> Result<Option<StoredError>, StoreError> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| corrupt("error", e)))
        .transpose()
}

fn parse_state(s: &str) -> Result<JobState, StoreError> {
    s.parse().map_err(|_| corrupt("job state", s))
}

fn to_u32(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(what, v))
}

fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(what, v))
}

fn from_u64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} {v} is too large")))
}

fn job_from_row(row: &Row<'_>) -> Result<JobRecord, StoreError> {
    let get_err = |e: rusqlite::Error| engine(e);
    let id: String = row.get(0).map_err(get_err)?;
    let params: String = row.get(3).map_err(get_err)?;
    let state: String = row.get(4).map_err(get_err)?;
    let attempt: i64 = row.get(9).map_err(get_err)?;
    let max_attempts: i64 = row.get(10).map_err(get_err)?;
    let timeout_ms: Option<i64> = row.get(11).map_err(get_err)?;
    let backoff_ms: i64 = row.get(12).map_err(get_err)?;
    Ok(JobRecord {
        id: parse_id(&id)?,
        job: row.get(1).map_err(get_err)?,
        pool: row.get(2).map_err(get_err)?,
        params: parse_json(&params, "params")?,
        state: parse_state(&state)?,
        priority: row.get(5).map_err(get_err)?,
        run_at: row.get(6).map_err(get_err)?,
        created_at: row.get(7).map_err(get_err)?,
        updated_at: row.get(8).map_err(get_err)?,
        attempt: to_u32(attempt, "attempt")?,
        max_attempts: to_u32(max_attempts, "max_attempts")?,
        timeout_ms: timeout_ms.map(|t| to_u64(t, "timeout_ms")).transpose()?,
        backoff_ms: to_u64(backoff_ms, "backoff_ms")?,
        idempotency_key: row.get(13).map_err(get_err)?,
        progress: opt_json(row.get(14).map_err(get_err)?, "progress")?,
        result: opt_json(row.get(15).map_err(get_err)?, "result")?,
        error: parse_error(row.get(16).map_err(get_err)?)?,
        cancel_requested: row.get(17).map_err(get_err)?,
        node: row.get(18).map_err(get_err)?,
        lease_until: row.get(19).map_err(get_err)?,
        attempts: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// Writes. Each may run twice (see the writer): it computes from its arguments, consumes nothing.

/// Checks what can be checked before a job reaches the writer.
pub(crate) fn validate(job: &NewJob) -> Result<(), StoreError> {
    crate::limits::check_job(job, crate::limits::MAX_TIMEOUT_MS)?;
    if let Some(t) = job.timeout_ms {
        from_u64(t, "timeout_ms")?;
    }
    from_u64(job.backoff_ms, "backoff_ms")?;
    Ok(())
}

/// The first job of an idempotency key, if created within the window; a conflict when that
/// job has another name or other params (compared as JSON values).
fn by_key(
    c: &Connection,
    job: &NewJob,
    key: &str,
    window: i64,
    now: Millis,
) -> Result<Option<Submitted>, StoreError> {
    let first = c
        .prepare_cached(
            "SELECT i.job_id, i.created_at, j.state, j.job, j.params FROM idempotency i \
             JOIN jobs j ON j.id = i.job_id WHERE i.key = ?1",
        )
        .and_then(|mut s| {
            s.query_row([key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .optional()
        })
        .map_err(engine)?;
    match first {
        Some((id, created_at, state, name, params)) if now.saturating_sub(created_at) < window => {
            if name != job.job || parse_json(&params, "params")? != job.params {
                return Err(StoreError::IdempotencyConflict {
                    key: key.to_owned(),
                });
            }
            Ok(Some(Submitted {
                id: parse_id(&id)?,
                state: parse_state(&state)?,
                duplicate: true,
            }))
        }
        _ => Ok(None),
    }
}

/// The job a cron tick created, if any.
fn by_tick(c: &Connection, tick: &CronTick) -> Result<Option<Submitted>, StoreError> {
    let first = c
        .prepare_cached("SELECT id, state FROM jobs WHERE cron_schedule = ?1 AND cron_tick = ?2")
        .and_then(|mut s| {
            s.query_row(params![tick.schedule, tick.tick], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()
        })
        .map_err(engine)?;
    first
        .map(|(id, state)| {
            Ok(Submitted {
                id: parse_id(&id)?,
                state: parse_state(&state)?,
                duplicate: true,
            })
        })
        .transpose()
}

pub(crate) fn submit(
    c: &Connection,
    deltas: &mut Deltas,
    jobs: &[NewJob],
    window: Duration,
    now: Millis,
) -> Result<Vec<Submitted>, StoreError> {
    let window = ms(window);
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Some(key) = &job.idempotency_key {
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
            .map(|t| from_u64(t, "timeout_ms"))
            .transpose()?;
        let backoff = from_u64(job.backoff_ms, "backoff_ms")?;
        c.prepare_cached(
            "INSERT INTO jobs (id, job, pool, params, state, priority, run_at, created_at, \
             updated_at, max_attempts, timeout_ms, backoff_ms, idempotency_key, cron_schedule, \
             cron_tick) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
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
            ])
        })
        .map_err(engine)?;
        deltas.add(&job.pool, state, 1);
        if let Some(key) = &job.idempotency_key {
            c.prepare_cached(
                "INSERT INTO idempotency (key, job_id, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, \
                 created_at = excluded.created_at",
            )
            .and_then(|mut s| s.execute(params![key, id_s, now]))
            .map_err(engine)?;
        }
        if let Some(tick) = &job.cron {
            c.prepare_cached(
                "INSERT INTO cron_ticks (schedule, last_tick, job_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (schedule) DO UPDATE SET last_tick = excluded.last_tick, \
                 job_id = excluded.job_id WHERE excluded.last_tick > cron_ticks.last_tick",
            )
            .and_then(|mut s| s.execute(params![tick.schedule, tick.tick, id_s]))
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

/// Due `scheduled`/`failed` jobs per pool and state (index `jobs_due`).
pub(crate) const COUNT_DUE: &str = "SELECT pool, state, count(*) FROM jobs \
     WHERE state IN ('scheduled', 'failed') AND run_at <= ?1 GROUP BY pool, state";

/// Makes them `queued` (index `jobs_due`).
pub(crate) const PROMOTE_DUE: &str = "UPDATE jobs SET state = 'queued', updated_at = ?1 \
     WHERE state IN ('scheduled', 'failed') AND run_at <= ?1";

/// Claims the next queued jobs of a pool: picked in claim order (index `jobs_claim`, no sort).
pub(crate) const CLAIM: &str = "UPDATE jobs SET state = 'running', attempt = attempt + 1, \
     node = ?3, lease_until = ?4, updated_at = ?5 WHERE id IN (SELECT id FROM jobs \
     WHERE pool = ?1 AND state = 'queued' ORDER BY priority DESC, run_at, id LIMIT ?2) \
     RETURNING id, job, pool, params, attempt, max_attempts, timeout_ms, backoff_ms, created_at, \
     run_at, priority";

/// Running jobs whose lease ended, or of a node (index `jobs_state`).
pub(crate) const PICK_LOST: &str = "SELECT id, attempt, node, pool, cancel_requested FROM jobs \
     WHERE state = 'running' AND (lease_until < ?1 OR node = ?2)";

fn promote_due(c: &Connection, deltas: &mut Deltas, now: Millis) -> Result<(), StoreError> {
    let due: Vec<(String, String, i64)> = {
        let mut s = c.prepare_cached(COUNT_DUE).map_err(engine)?;
        let rows = s
            .query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(engine)?;
        rows.collect::<Result<_, _>>().map_err(engine)?
    };
    if due.is_empty() {
        return Ok(());
    }
    for (pool, state, n) in &due {
        deltas.add(pool, parse_state(state)?, -n);
        deltas.add(pool, JobState::Queued, *n);
    }
    c.prepare_cached(PROMOTE_DUE)
        .and_then(|mut s| s.execute([now]))
        .map_err(engine)?;
    Ok(())
}

pub(crate) fn claim(
    c: &Connection,
    deltas: &mut Deltas,
    node: &str,
    demand: &[Demand],
    lease: Duration,
    now: Millis,
) -> Result<Vec<Claimed>, StoreError> {
    promote_due(c, deltas, now)?;
    let lease_until = now.saturating_add(ms(lease));
    let mut out = Vec::new();
    for d in demand {
        if d.n == 0 {
            continue;
        }
        let mut s = c.prepare_cached(CLAIM).map_err(engine)?;
        let mut rows = s
            .query(params![
                d.pool,
                i64::try_from(d.n).unwrap_or(i64::MAX),
                node,
                lease_until,
                now
            ])
            .map_err(engine)?;
        let mut picked = Vec::new();
        while let Some(r) = rows.next().map_err(engine)? {
            let get = |i| r.get::<_, i64>(i).map_err(engine);
            let id: String = r.get(0).map_err(engine)?;
            let params: String = r.get(3).map_err(engine)?;
            let timeout_ms: Option<i64> = r.get(6).map_err(engine)?;
            let claimed = Claimed {
                id: parse_id(&id)?,
                job: r.get(1).map_err(engine)?,
                pool: r.get(2).map_err(engine)?,
                params: parse_json(&params, "params")?,
                attempt: to_u32(get(4)?, "attempt")?,
                max_attempts: to_u32(get(5)?, "max_attempts")?,
                timeout_ms: timeout_ms.map(|t| to_u64(t, "timeout_ms")).transpose()?,
                backoff_ms: to_u64(get(7)?, "backoff_ms")?,
                created_at: get(8)?,
                run_at: get(9)?,
            };
            picked.push((get(10)?, id, claimed));
        }
        drop(rows);
        // RETURNING comes in no particular order: put them back in claim order.
        picked.sort_by(|(pa, ia, a), (pb, ib, b)| {
            pb.cmp(pa).then(a.run_at.cmp(&b.run_at)).then(ia.cmp(ib))
        });
        let mut insert = c
            .prepare_cached(
                "INSERT INTO attempts (job_id, attempt, node, started_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(engine)?;
        for (_, id, claimed) in picked {
            insert
                .execute(params![id, claimed.attempt, node, now])
                .map_err(engine)?;
            deltas.moved(&claimed.pool, JobState::Queued, JobState::Running);
            out.push(claimed);
        }
    }
    Ok(out)
}

pub(crate) fn renew(
    c: &Connection,
    node: &str,
    ids: &[JobId],
    lease: Duration,
    now: Millis,
) -> Result<Vec<JobId>, StoreError> {
    let lease_until = now.saturating_add(ms(lease));
    let mut s = c
        .prepare_cached(
            "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND state = 'running' AND node = ?2",
        )
        .map_err(engine)?;
    let mut lost = Vec::new();
    for &id in ids {
        if s.execute(params![id_text(id), node, lease_until])
            .map_err(engine)?
            == 0
        {
            lost.push(id);
        }
    }
    Ok(lost)
}

/// How an attempt ended, as recorded in `attempts`.
struct AttemptEnd<'a> {
    node: Option<&'a str>,
    pid: Option<u32>,
    started_at: Option<Millis>,
    ended_at: Millis,
    outcome: &'a str,
    error: Option<&'a str>,
}

/// Ends the open attempt `attempt` of `job_id` (the latest row with that number), or records it
/// if the row is missing.
fn end_attempt(
    c: &Connection,
    job_id: &str,
    attempt: i64,
    end: &AttemptEnd<'_>,
) -> Result<(), StoreError> {
    let updated = c
        .prepare_cached(
            "UPDATE attempts SET pid = coalesce(?3, pid), started_at = coalesce(?4, started_at), \
             ended_at = ?5, outcome = ?6, error = ?7 WHERE seq = (SELECT max(seq) FROM attempts \
             WHERE job_id = ?1 AND attempt = ?2)",
        )
        .and_then(|mut s| {
            s.execute(params![
                job_id,
                attempt,
                end.pid,
                end.started_at,
                end.ended_at,
                end.outcome,
                end.error
            ])
        })
        .map_err(engine)?;
    if updated == 0 {
        c.prepare_cached(
            "INSERT INTO attempts (job_id, attempt, node, pid, started_at, ended_at, outcome, \
             error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut s| {
            s.execute(params![
                job_id,
                attempt,
                end.node,
                end.pid,
                end.started_at.unwrap_or(end.ended_at),
                end.ended_at,
                end.outcome,
                end.error
            ])
        })
        .map_err(engine)?;
    }
    Ok(())
}

pub(crate) fn complete(
    c: &Connection,
    deltas: &mut Deltas,
    done: &[Completion],
    now: Millis,
) -> Result<(), StoreError> {
    for d in done {
        let id = id_text(d.id);
        let error = match &d.then {
            Transition::Retry { error, .. } | Transition::Dead { error } => Some(error_text(error)),
            Transition::Succeeded { .. } | Transition::Cancelled => None,
        };
        let (state, retry_at, result) = match &d.then {
            Transition::Succeeded { result } => {
                (JobState::Succeeded, None, Some(result.to_string()))
            }
            Transition::Retry { run_at, .. } => (JobState::Failed, Some(*run_at), None),
            Transition::Dead { .. } => (JobState::Dead, None, None),
            Transition::Cancelled => (JobState::Cancelled, None, None),
        };
        // Only the current attempt of the node holding the lease ends the job; a cancel asked
        // while it ran wins over a retry (the job does not run again).
        let ended = c
            .prepare_cached(
                "UPDATE jobs SET \
                 state = CASE WHEN ?4 = 'failed' AND cancel_requested THEN 'cancelled' ELSE ?4 END, \
                 run_at = CASE WHEN ?4 = 'failed' AND NOT cancel_requested THEN ?5 ELSE run_at END, \
                 result = ?6, \
                 error = CASE WHEN ?4 = 'succeeded' THEN NULL ELSE coalesce(?7, error) END, \
                 node = NULL, lease_until = NULL, updated_at = ?8 \
                 WHERE id = ?1 AND state = 'running' AND attempt = ?2 AND node = ?3 \
                 RETURNING pool, state",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        id,
                        d.attempt,
                        d.node,
                        state.as_str(),
                        retry_at,
                        result,
                        error,
                        now
                    ],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()
            })
            .map_err(engine)?;
        let Some((pool, new_state)) = ended else {
            tracing::debug!(id = %d.id, attempt = d.attempt, node = %d.node, "stale completion ignored");
            continue;
        };
        deltas.moved(&pool, JobState::Running, parse_state(&new_state)?);
        end_attempt(
            c,
            &id,
            i64::from(d.attempt),
            &AttemptEnd {
                node: Some(&d.node),
                pid: d.pid,
                started_at: Some(d.started_at),
                ended_at: d.ended_at,
                outcome: &d.outcome,
                error: error.as_deref(),
            },
        )?;
    }
    Ok(())
}

pub(crate) fn progress(
    c: &Connection,
    updates: &[(JobId, Value)],
    now: Millis,
) -> Result<(), StoreError> {
    let mut s = c
        .prepare_cached(
            "UPDATE jobs SET progress = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'running'",
        )
        .map_err(engine)?;
    for (id, value) in updates {
        s.execute(params![id_text(*id), value.to_string(), now])
            .map_err(engine)?;
    }
    Ok(())
}

pub(crate) fn recover(
    c: &Connection,
    deltas: &mut Deltas,
    node: Option<&str>,
    now: Millis,
) -> Result<u64, StoreError> {
    type Lost = (String, i64, Option<String>, String, bool);
    let lost: Vec<Lost> = {
        let mut s = c.prepare_cached(PICK_LOST).map_err(engine)?;
        let rows = s
            .query_map(params![now, node], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(engine)?;
        rows.collect::<Result<_, _>>().map_err(engine)?
    };
    for (id, attempt, node, pool, cancel_requested) in &lost {
        end_attempt(
            c,
            id,
            *attempt,
            &AttemptEnd {
                node: node.as_deref(),
                pid: None,
                started_at: None,
                ended_at: now,
                outcome: "lease_expired",
                error: None,
            },
        )?;
        // A job whose cancel was asked is not run again: its node is gone, so is the run.
        let to = if *cancel_requested {
            JobState::Cancelled
        } else {
            JobState::Queued
        };
        c.prepare_cached(
            "UPDATE jobs SET state = ?2, node = NULL, lease_until = NULL, updated_at = ?3 \
             WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id, to.as_str(), now]))
        .map_err(engine)?;
        deltas.moved(pool, JobState::Running, to);
    }
    Ok(lost.len() as u64)
}

/// A job's state and pool.
fn state_of(c: &Connection, id: &str) -> Result<(JobState, String), StoreError> {
    let (state, pool): (String, String) = c
        .prepare_cached("SELECT state, pool FROM jobs WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(engine)?
        .ok_or(StoreError::NotFound)?;
    Ok((parse_state(&state)?, pool))
}

pub(crate) fn cancel(
    c: &Connection,
    deltas: &mut Deltas,
    id: JobId,
    now: Millis,
) -> Result<CancelResult, StoreError> {
    let id = id_text(id);
    let (state, pool) = state_of(c, &id)?;
    match state {
        JobState::Scheduled | JobState::Queued | JobState::Failed => {
            c.prepare_cached("UPDATE jobs SET state = 'cancelled', updated_at = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, now]))
                .map_err(engine)?;
            deltas.moved(&pool, state, JobState::Cancelled);
            Ok(CancelResult::Cancelled)
        }
        JobState::Running => {
            c.prepare_cached("UPDATE jobs SET cancel_requested = 1, updated_at = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, now]))
                .map_err(engine)?;
            Ok(CancelResult::Requested)
        }
        JobState::Succeeded | JobState::Dead | JobState::Cancelled => {
            Ok(CancelResult::AlreadyDone(state))
        }
    }
}

pub(crate) fn retry(
    c: &Connection,
    deltas: &mut Deltas,
    id: JobId,
    now: Millis,
) -> Result<JobState, StoreError> {
    let id = id_text(id);
    let (state, pool) = state_of(c, &id)?;
    if !matches!(state, JobState::Dead | JobState::Cancelled) {
        return Err(StoreError::Conflict(format!(
            "only a dead or cancelled job can be retried; this one is {}",
            state.as_str()
        )));
    }
    c.prepare_cached(
        "UPDATE jobs SET state = 'queued', attempt = 0, run_at = ?2, updated_at = ?2, \
         cancel_requested = 0, result = NULL, node = NULL, lease_until = NULL WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![id, now]))
    .map_err(engine)?;
    deltas.moved(&pool, state, JobState::Queued);
    Ok(JobState::Queued)
}

pub(crate) fn purge(
    c: &Connection,
    deltas: &mut Deltas,
    before: Millis,
) -> Result<u64, StoreError> {
    const DOOMED: &str = "FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') \
                          AND updated_at < ?1";
    let gone: Vec<(String, String, i64)> = {
        let mut s = c
            .prepare(&format!(
                "SELECT pool, state, count(*) {DOOMED} GROUP BY pool, state"
            ))
            .map_err(engine)?;
        let rows = s
            .query_map([before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(engine)?;
        rows.collect::<Result<_, _>>().map_err(engine)?
    };
    if gone.is_empty() {
        return Ok(0);
    }
    for (pool, state, n) in &gone {
        deltas.add(pool, parse_state(state)?, -n);
    }
    c.execute(
        &format!("DELETE FROM attempts WHERE job_id IN (SELECT id {DOOMED})"),
        [before],
    )
    .map_err(engine)?;
    c.execute(
        &format!(
            "DELETE FROM idempotency WHERE key IN (SELECT idempotency_key {DOOMED} \
             AND idempotency_key IS NOT NULL) AND job_id IN (SELECT id {DOOMED})"
        ),
        [before],
    )
    .map_err(engine)?;
    let n = c
        .execute(&format!("DELETE {DOOMED}"), [before])
        .map_err(engine)?;
    Ok(n as u64)
}

pub(crate) fn put_schedule(c: &Connection, s: &CronSchedule) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO schedules (name, cron, job, params, missed, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, \
         job = excluded.job, params = excluded.params, missed = excluded.missed, \
         created_at = excluded.created_at",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.name,
            s.cron,
            s.job,
            s.params.to_string(),
            s.missed,
            s.created_at
        ])
    })
    .map_err(engine)?;
    Ok(())
}

pub(crate) fn delete_schedule(c: &Connection, name: &str) -> Result<(), StoreError> {
    let n = c
        .prepare_cached("DELETE FROM schedules WHERE name = ?1")
        .and_then(|mut s| s.execute([name]))
        .map_err(engine)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    // A schedule created again under this name starts afresh (no "missed" tick from the old one).
    c.prepare_cached("DELETE FROM cron_ticks WHERE schedule = ?1")
        .and_then(|mut s| s.execute([name]))
        .map_err(engine)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reads.

pub(crate) fn get(c: &Connection, id: JobId) -> Result<JobRecord, StoreError> {
    let id_s = id_text(id);
    let mut job = {
        let mut s = c
            .prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?1"))
            .map_err(engine)?;
        let mut rows = s.query([&id_s]).map_err(engine)?;
        let row = rows.next().map_err(engine)?.ok_or(StoreError::NotFound)?;
        job_from_row(row)?
    };
    let mut s = c
        .prepare_cached(
            "SELECT attempt, node, pid, started_at, ended_at, outcome, error FROM attempts \
             WHERE job_id = ?1 ORDER BY seq",
        )
        .map_err(engine)?;
    let mut rows = s.query([&id_s]).map_err(engine)?;
    while let Some(r) = rows.next().map_err(engine)? {
        let attempt: i64 = r.get(0).map_err(engine)?;
        let pid: Option<i64> = r.get(2).map_err(engine)?;
        job.attempts.push(AttemptRecord {
            attempt: to_u32(attempt, "attempt")?,
            node: r.get(1).map_err(engine)?,
            pid: pid.map(|p| to_u32(p, "pid")).transpose()?,
            started_at: r.get(3).map_err(engine)?,
            ended_at: r.get(4).map_err(engine)?,
            outcome: r.get(5).map_err(engine)?,
            error: parse_error(r.get(6).map_err(engine)?)?,
        });
    }
    Ok(job)
}

/// Encodes the position after `id` (its 32 hex digits: opaque to callers).
fn cursor_of(id: JobId) -> String {
    id.simple().to_string()
}

pub(crate) fn list(c: &Connection, filter: &ListFilter) -> Result<Page, StoreError> {
    let limit = match filter.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let mut sql = format!("SELECT {JOB_COLS} FROM jobs WHERE 1");
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    if let Some(state) = filter.state {
        sql.push_str(" AND state = ?");
        args.push(Box::new(state.as_str()));
    }
    if let Some(job) = &filter.job {
        sql.push_str(" AND job = ?");
        args.push(Box::new(job.clone()));
    }
    if let Some(cursor) = &filter.cursor {
        let after = JobId::try_parse(cursor)
            .map_err(|_| StoreError::Invalid(format!("bad cursor {cursor:?}")))?;
        sql.push_str(" AND id < ?");
        args.push(Box::new(id_text(after)));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    // One more than the page, to know whether another page follows.
    args.push(Box::new(limit as i64 + 1));
    let mut s = c.prepare_cached(&sql).map_err(engine)?;
    let mut rows = s
        .query(rusqlite::params_from_iter(args.iter()))
        .map_err(engine)?;
    let mut jobs = Vec::with_capacity(limit.min(64));
    let mut more = false;
    while let Some(row) = rows.next().map_err(engine)? {
        if jobs.len() == limit {
            more = true;
            break;
        }
        jobs.push(job_from_row(row)?);
    }
    let next_cursor = if more {
        jobs.last().map(|j| cursor_of(j.id))
    } else {
        None
    };
    Ok(Page { jobs, next_cursor })
}

pub(crate) fn counts(c: &Connection) -> Result<Counts, StoreError> {
    let mut s = c
        .prepare_cached("SELECT pool, state, n FROM job_counts WHERE n > 0")
        .map_err(engine)?;
    let mut rows = s.query([]).map_err(engine)?;
    let mut out = Counts::new();
    while let Some(r) = rows.next().map_err(engine)? {
        let pool: String = r.get(0).map_err(engine)?;
        let state: String = r.get(1).map_err(engine)?;
        let n: i64 = r.get(2).map_err(engine)?;
        out.insert((pool, parse_state(&state)?), to_u64(n, "count")?);
    }
    Ok(out)
}

pub(crate) fn schedules(c: &Connection) -> Result<Vec<CronSchedule>, StoreError> {
    let mut s = c
        .prepare_cached(
            "SELECT name, cron, job, params, missed, created_at FROM schedules ORDER BY name",
        )
        .map_err(engine)?;
    let mut rows = s.query([]).map_err(engine)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(engine)? {
        let params: String = r.get(3).map_err(engine)?;
        out.push(CronSchedule {
            name: r.get(0).map_err(engine)?,
            cron: r.get(1).map_err(engine)?,
            job: r.get(2).map_err(engine)?,
            params: parse_json(&params, "schedule params")?,
            missed: r.get(4).map_err(engine)?,
            created_at: r.get(5).map_err(engine)?,
        });
    }
    Ok(out)
}

pub(crate) fn last_tick(c: &Connection, name: &str) -> Result<Option<Millis>, StoreError> {
    c.prepare_cached("SELECT last_tick FROM cron_ticks WHERE schedule = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(engine)
}
