//! The SQL of every operation. Most are one statement (one round trip, its own transaction);
//! those that must read before they write run in a transaction. `now` is always the
//! database's (`offload_now_ms()`).

use std::collections::HashSet;
use std::time::Duration;

use deadpool_postgres::Object;
use offload_store::{
    AttemptRecord, CancelResult, Claimed, Completion, Counts, CronSchedule, Demand, JobId,
    JobRecord, JobState, ListFilter, Millis, NewJob, Page, StoreError, StoredError, Submitted,
    Transition,
};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::engine;
use crate::notify::{JobNotice, Notice};

/// The largest page `list` returns.
const MAX_LIMIT: usize = 1_000;
/// The page size when the filter's `limit` is 0.
const DEFAULT_LIMIT: usize = 100;

const JOB_COLS: &str = "id, job, pool, params, state, priority, run_at, created_at, updated_at, \
     attempt, max_attempts, timeout_ms, backoff_ms, idempotency_key, progress, result, error, \
     cancel_requested, node, lease_until";

// ---------------------------------------------------------------------------------------------
// Conversions.

/// Milliseconds of a duration, saturated to what an `i64` holds.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(format!("corrupt {what} in the database: {detail}"))
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

fn error_json(e: &StoredError) -> Value {
    serde_json::json!({ "name": e.name, "message": e.message, "stack": e.stack })
}

fn parse_error(v: Option<Value>) -> Result<Option<StoredError>, StoreError> {
    v.map(|v| serde_json::from_value(v).map_err(|e| corrupt("error", e)))
        .transpose()
}

/// A column, or an engine error naming it.
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    idx: usize,
) -> Result<T, StoreError> {
    row.try_get(idx).map_err(engine)
}

fn job_from_row(row: &Row) -> Result<JobRecord, StoreError> {
    let state: String = col(row, 4)?;
    let timeout_ms: Option<i64> = col(row, 11)?;
    Ok(JobRecord {
        id: col(row, 0)?,
        job: col(row, 1)?,
        pool: col(row, 2)?,
        params: col(row, 3)?,
        state: parse_state(&state)?,
        priority: col(row, 5)?,
        run_at: col(row, 6)?,
        created_at: col(row, 7)?,
        updated_at: col(row, 8)?,
        attempt: to_u32(col(row, 9)?, "attempt")?,
        max_attempts: to_u32(col(row, 10)?, "max_attempts")?,
        timeout_ms: timeout_ms.map(|t| to_u64(t, "timeout_ms")).transpose()?,
        backoff_ms: to_u64(col(row, 12)?, "backoff_ms")?,
        idempotency_key: col(row, 13)?,
        progress: col(row, 14)?,
        result: col(row, 15)?,
        error: parse_error(col(row, 16)?)?,
        cancel_requested: col(row, 17)?,
        node: col(row, 18)?,
        lease_until: col(row, 19)?,
        attempts: Vec::new(),
    })
}

/// Whether an error is worth one more try of the whole transaction (a deadlock between two
/// batches that lock the same keys in different orders, a serialization failure).
fn retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Engine(m) if m.contains("(40P01)") || m.contains("(40001)"))
}

// ---------------------------------------------------------------------------------------------
// Submit.

/// Checks what can be checked before a job reaches the database.
pub(crate) fn validate(job: &NewJob) -> Result<(), StoreError> {
    offload_store::limits::check_job(job, offload_store::limits::MAX_TIMEOUT_MS)?;
    if let Some(t) = job.timeout_ms {
        from_u64(t, "timeout_ms")?;
    }
    from_u64(job.backoff_ms, "backoff_ms")?;
    Ok(())
}

/// Inserts jobs (arrays, in order). A job whose cron tick exists is skipped (`DO NOTHING`,
/// the unique index decides even between concurrent nodes); the tick table keeps the latest
/// tick per schedule. Returns the inserted ids with their state.
const INSERT_JOBS: &str = "
WITH ins AS (
    INSERT INTO offload_jobs (id, job, pool, params, state, priority, run_at, created_at,
        updated_at, max_attempts, timeout_ms, backoff_ms, idempotency_key, cron_schedule,
        cron_tick)
    SELECT i.id, i.job, i.pool, i.params,
           CASE WHEN coalesce(i.run_at, t.now) > t.now THEN 'scheduled' ELSE 'queued' END,
           i.priority, coalesce(i.run_at, t.now), t.now, t.now, i.max_attempts, i.timeout_ms,
           i.backoff_ms, i.idempotency_key, i.cron_schedule, i.cron_tick
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::json[], $5::int[], $6::bigint[],
                $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[],
                $12::bigint[]) WITH ORDINALITY
         AS i(id, job, pool, params, priority, run_at, max_attempts, timeout_ms, backoff_ms,
              idempotency_key, cron_schedule, cron_tick, ord)
    CROSS JOIN (SELECT offload_now_ms() AS now) t
    ORDER BY i.ord
    ON CONFLICT (cron_schedule, cron_tick) WHERE cron_schedule IS NOT NULL DO NOTHING
    RETURNING id, state, pool, cron_schedule, cron_tick
), ticks AS (
    INSERT INTO offload_cron_ticks (schedule, last_tick, job_id)
    SELECT DISTINCT ON (cron_schedule) cron_schedule, cron_tick, id FROM ins
    WHERE cron_schedule IS NOT NULL ORDER BY cron_schedule, cron_tick DESC
    ON CONFLICT (schedule) DO UPDATE SET last_tick = excluded.last_tick,
        job_id = excluded.job_id WHERE excluded.last_tick > offload_cron_ticks.last_tick
)
SELECT id, state, pool FROM ins";

const CRON_JOB: &str =
    "SELECT id, state FROM offload_jobs WHERE cron_schedule = $1 AND cron_tick = $2";

/// Takes an idempotency key for `$2`, unless a job took it within the window (`$3` ms).
const TAKE_KEY: &str = "
INSERT INTO offload_idempotency (key, job_id, created_at) VALUES ($1, $2, offload_now_ms())
ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, created_at = excluded.created_at
    WHERE offload_idempotency.created_at <= excluded.created_at - $3
RETURNING job_id";

const KEY_HOLDER: &str = "SELECT i.job_id, j.state, j.job, j.params FROM offload_idempotency i \
     LEFT JOIN offload_jobs j ON j.id = i.job_id WHERE i.key = $1";

/// Columns of [`INSERT_JOBS`], one vector per parameter.
#[derive(Default)]
struct Columns {
    id: Vec<JobId>,
    job: Vec<String>,
    pool: Vec<String>,
    params: Vec<Value>,
    priority: Vec<i32>,
    run_at: Vec<Option<i64>>,
    max_attempts: Vec<i64>,
    timeout_ms: Vec<Option<i64>>,
    backoff_ms: Vec<i64>,
    key: Vec<Option<String>>,
    cron_schedule: Vec<Option<String>>,
    cron_tick: Vec<Option<i64>>,
}

impl Columns {
    fn push(&mut self, id: JobId, j: NewJob) -> Result<(), StoreError> {
        self.timeout_ms.push(
            j.timeout_ms
                .map(|t| from_u64(t, "timeout_ms"))
                .transpose()?,
        );
        self.backoff_ms.push(from_u64(j.backoff_ms, "backoff_ms")?);
        self.id.push(id);
        self.job.push(j.job);
        self.pool.push(j.pool);
        self.params.push(j.params);
        self.priority.push(j.priority);
        self.run_at.push(j.run_at);
        self.max_attempts.push(i64::from(j.max_attempts));
        self.key.push(j.idempotency_key);
        self.cron_schedule
            .push(j.cron.as_ref().map(|c| c.schedule.clone()));
        self.cron_tick.push(j.cron.map(|c| c.tick));
        Ok(())
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.id,
            &self.job,
            &self.pool,
            &self.params,
            &self.priority,
            &self.run_at,
            &self.max_attempts,
            &self.timeout_ms,
            &self.backoff_ms,
            &self.key,
            &self.cron_schedule,
            &self.cron_tick,
        ]
    }
}

/// What a submit answers, and the pools that got claimable jobs (to announce).
type SubmitOutcome = (Vec<Submitted>, Vec<String>);

pub(crate) async fn submit(
    c: &mut Object,
    jobs: Vec<NewJob>,
    window: Duration,
) -> Result<SubmitOutcome, StoreError> {
    if jobs.iter().all(|j| j.idempotency_key.is_none()) {
        return submit_plain(c, jobs).await;
    }
    let mut tries = 0;
    loop {
        tries += 1;
        match submit_keyed(c, jobs.clone(), window).await {
            Err(e) if tries < 3 && retryable(&e) => {
                tracing::debug!(error = %e, "submit retried");
            }
            other => return other,
        }
    }
}

fn due_pools<'a>(pools: impl Iterator<Item = (&'a str, JobState)>) -> Vec<String> {
    let mut due: Vec<String> = Vec::new();
    for (pool, state) in pools {
        if state == JobState::Queued && !due.iter().any(|p| p == pool) {
            due.push(pool.to_owned());
        }
    }
    due
}

/// Jobs without idempotency keys: one statement for the whole batch.
async fn submit_plain(c: &Object, jobs: Vec<NewJob>) -> Result<SubmitOutcome, StoreError> {
    let ticks: Vec<Option<(String, i64)>> = jobs
        .iter()
        .map(|j| j.cron.as_ref().map(|t| (t.schedule.clone(), t.tick)))
        .collect();
    let mut cols = Columns::default();
    for j in jobs {
        cols.push(JobId::now_v7(), j)?;
    }
    let st = c.prepare_cached(INSERT_JOBS).await.map_err(engine)?;
    let rows = c.query(&st, &cols.params()).await.map_err(engine)?;
    let mut inserted = std::collections::HashMap::with_capacity(rows.len());
    let mut due = Vec::new();
    for r in &rows {
        let id: JobId = col(r, 0)?;
        let state = parse_state(&col::<String>(r, 1)?)?;
        if state == JobState::Queued {
            due.push((col::<String>(r, 2)?, state));
        }
        inserted.insert(id, state);
    }
    let mut out = Vec::with_capacity(cols.id.len());
    for (id, tick) in cols.id.iter().zip(ticks) {
        if let Some(&state) = inserted.get(id) {
            out.push(Submitted {
                id: *id,
                state,
                duplicate: false,
            });
            continue;
        }
        // Only a cron tick that fired already is skipped.
        let (schedule, tick) =
            tick.ok_or_else(|| StoreError::Engine(format!("job {id} was not inserted")))?;
        let st = c.prepare_cached(CRON_JOB).await.map_err(engine)?;
        let row = c
            .query_one(&st, &[&schedule, &tick])
            .await
            .map_err(engine)?;
        out.push(Submitted {
            id: col(&row, 0)?,
            state: parse_state(&col::<String>(&row, 1)?)?,
            duplicate: true,
        });
    }
    let due = due_pools(due.iter().map(|(p, s)| (p.as_str(), *s)));
    Ok((out, due))
}

/// Jobs with idempotency keys: one transaction, job by job (a later job of the batch may be a
/// duplicate of an earlier one).
async fn submit_keyed(
    c: &mut Object,
    jobs: Vec<NewJob>,
    window: Duration,
) -> Result<SubmitOutcome, StoreError> {
    let window = ms(window);
    // Lock every key and cron tick of the batch first, in one order, so two batches that share
    // some never wait for each other in a cycle (a deadlock costs a second to detect).
    let mut locks: Vec<String> = jobs
        .iter()
        .flat_map(|j| {
            let key = j.idempotency_key.as_ref().map(|k| format!("key:{k}"));
            let tick = j
                .cron
                .as_ref()
                .map(|t| format!("cron:{}:{}", t.schedule, t.tick));
            key.into_iter().chain(tick)
        })
        .collect();
    locks.sort();
    locks.dedup();
    let tx = c.transaction().await.map_err(engine)?;
    let lock = tx
        .prepare_cached(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 7))) \
             FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) AS sorted",
        )
        .await
        .map_err(engine)?;
    tx.query_one(&lock, &[&locks]).await.map_err(engine)?;
    let take_key = tx.prepare_cached(TAKE_KEY).await.map_err(engine)?;
    let key_holder = tx.prepare_cached(KEY_HOLDER).await.map_err(engine)?;
    let insert = tx.prepare_cached(INSERT_JOBS).await.map_err(engine)?;
    let cron_job = tx.prepare_cached(CRON_JOB).await.map_err(engine)?;
    let mut out = Vec::with_capacity(jobs.len());
    let mut due = Vec::new();
    for job in jobs {
        let id = JobId::now_v7();
        let key = job.idempotency_key.clone();
        if let Some(key) = &key {
            let took = tx
                .query_opt(&take_key, &[key, &id, &window])
                .await
                .map_err(engine)?;
            if took.is_none() {
                let row = tx.query_one(&key_holder, &[key]).await.map_err(engine)?;
                let first: JobId = col(&row, 0)?;
                if let Some(state) = col::<Option<String>>(&row, 1)? {
                    // Scoped: the key answers only the same job with the same params.
                    let name: Option<String> = col(&row, 2)?;
                    let params: Option<Value> = col(&row, 3)?;
                    if name.as_deref() != Some(job.job.as_str())
                        || params.as_ref() != Some(&job.params)
                    {
                        return Err(StoreError::IdempotencyConflict { key: key.clone() });
                    }
                    out.push(Submitted {
                        id: first,
                        state: parse_state(&state)?,
                        duplicate: true,
                    });
                    continue;
                }
                // The key's job is gone: the key is free.
                tx.execute(
                    "UPDATE offload_idempotency SET job_id = $2, created_at = offload_now_ms() \
                     WHERE key = $1",
                    &[key, &id],
                )
                .await
                .map_err(engine)?;
            }
        }
        let tick = job.cron.as_ref().map(|t| (t.schedule.clone(), t.tick));
        let mut cols = Columns::default();
        cols.push(id, job)?;
        let rows = tx.query(&insert, &cols.params()).await.map_err(engine)?;
        if let Some(r) = rows.first() {
            let state = parse_state(&col::<String>(r, 1)?)?;
            if state == JobState::Queued {
                due.push(col::<String>(r, 2)?);
            }
            out.push(Submitted {
                id,
                state,
                duplicate: false,
            });
            continue;
        }
        let (schedule, tick) =
            tick.ok_or_else(|| StoreError::Engine(format!("job {id} was not inserted")))?;
        let row = tx
            .query_one(&cron_job, &[&schedule, &tick])
            .await
            .map_err(engine)?;
        if let Some(key) = &key {
            // The key does not name a job that was not created.
            tx.execute(
                "DELETE FROM offload_idempotency WHERE key = $1 AND job_id = $2",
                &[key, &id],
            )
            .await
            .map_err(engine)?;
        }
        out.push(Submitted {
            id: col(&row, 0)?,
            state: parse_state(&col::<String>(&row, 1)?)?,
            duplicate: true,
        });
    }
    tx.commit().await.map_err(engine)?;
    let due = due_pools(due.iter().map(|p| (p.as_str(), JobState::Queued)));
    Ok((out, due))
}

// ---------------------------------------------------------------------------------------------
// Claim, renew, complete, progress, recover.

/// Makes due `scheduled`/`failed` jobs `queued` (index `offload_jobs_due`), skipping rows
/// another node is promoting; returns the pools that got jobs.
const PROMOTE_DUE: &str = "
WITH due AS (
    SELECT id FROM offload_jobs
    WHERE state IN ('scheduled', 'failed') AND run_at <= offload_now_ms()
    ORDER BY run_at LIMIT 1000
    FOR UPDATE SKIP LOCKED
), promoted AS (
    UPDATE offload_jobs j SET state = 'queued', updated_at = offload_now_ms()
    FROM due WHERE j.id = due.id
    RETURNING j.pool
)
SELECT DISTINCT pool FROM promoted";

const CLAIM: &str = "SELECT id, job, pool, params, attempt, max_attempts, timeout_ms, \
     backoff_ms, created_at, run_at FROM offload_claim($1, $2, $3, $4)";

/// Claims: promotes due jobs, then picks per pool (`offload_claim`, `FOR UPDATE SKIP LOCKED`).
/// The two statements are pipelined (one round trip). Returns the claimed jobs and the pools
/// that got newly due jobs.
pub(crate) async fn claim(
    c: &Object,
    node: &str,
    demand: &[Demand],
    lease: Duration,
) -> Result<(Vec<Claimed>, Vec<String>), StoreError> {
    let pools: Vec<&str> = demand.iter().map(|d| d.pool.as_str()).collect();
    let ns: Vec<i64> = demand
        .iter()
        .map(|d| i64::try_from(d.n).unwrap_or(i64::MAX))
        .collect();
    let lease_ms = ms(lease);
    let promote = c.prepare_cached(PROMOTE_DUE).await.map_err(engine)?;
    let claim = c.prepare_cached(CLAIM).await.map_err(engine)?;
    let args: [&(dyn ToSql + Sync); 4] = [&node, &pools, &ns, &lease_ms];
    let (promoted, rows) =
        tokio::try_join!(c.query(&promote, &[]), c.query(&claim, &args)).map_err(engine)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let timeout_ms: Option<i64> = col(r, 6)?;
        out.push(Claimed {
            id: col(r, 0)?,
            job: col(r, 1)?,
            pool: col(r, 2)?,
            params: col(r, 3)?,
            attempt: to_u32(col(r, 4)?, "attempt")?,
            max_attempts: to_u32(col(r, 5)?, "max_attempts")?,
            timeout_ms: timeout_ms.map(|t| to_u64(t, "timeout_ms")).transpose()?,
            backoff_ms: to_u64(col(r, 7)?, "backoff_ms")?,
            created_at: col(r, 8)?,
            run_at: col(r, 9)?,
        });
    }
    let promoted = promoted
        .iter()
        .map(|r| col::<String>(r, 0))
        .collect::<Result<_, _>>()?;
    Ok((out, promoted))
}

pub(crate) async fn renew(
    c: &Object,
    node: &str,
    ids: &[JobId],
    lease: Duration,
) -> Result<Vec<JobId>, StoreError> {
    let st = c
        .prepare_cached(
            "UPDATE offload_jobs SET lease_until = offload_now_ms() + $3 \
             WHERE id = ANY($1) AND state = 'running' AND node = $2 RETURNING id",
        )
        .await
        .map_err(engine)?;
    let rows = c
        .query(&st, &[&ids, &node, &ms(lease)])
        .await
        .map_err(engine)?;
    let held: HashSet<JobId> = rows.iter().map(|r| col(r, 0)).collect::<Result<_, _>>()?;
    Ok(ids
        .iter()
        .copied()
        .filter(|id| !held.contains(id))
        .collect())
}

/// Applies completions (arrays): only those whose job is still `running` with the same
/// attempt and node; ends (or records) their attempt; returns the changed jobs.
const COMPLETE: &str = "
WITH c AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[],
                         $6::bigint[], $7::text[], $8::text[], $9::bigint[], $10::json[],
                         $11::json[])
        AS c(id, attempt, node, pid, started_at, ended_at, outcome, next_state, next_run_at,
             result, error)
), cur AS (
    SELECT c.*, j.cancel_requested FROM c JOIN offload_jobs j ON j.id = c.id
    WHERE j.state = 'running' AND j.attempt = c.attempt AND j.node = c.node
    FOR UPDATE OF j
), ended AS (
    UPDATE offload_jobs j SET
        state = CASE WHEN cur.next_state = 'failed' AND cur.cancel_requested THEN 'cancelled'
                     ELSE cur.next_state END,
        run_at = CASE WHEN cur.next_state = 'failed' AND NOT cur.cancel_requested
                      THEN cur.next_run_at ELSE j.run_at END,
        result = cur.result,
        error = CASE WHEN cur.next_state = 'succeeded' THEN NULL
                     ELSE coalesce(cur.error, j.error) END,
        node = NULL, lease_until = NULL, updated_at = offload_now_ms()
    FROM cur WHERE j.id = cur.id
    RETURNING j.id, j.job, j.pool, j.state, j.attempt, j.run_at <= offload_now_ms() AS due
), closed AS (
    UPDATE offload_attempts a SET pid = coalesce(cur.pid, a.pid), started_at = cur.started_at,
        ended_at = cur.ended_at, outcome = cur.outcome, error = cur.error
    FROM cur
    WHERE a.seq = (SELECT max(s.seq) FROM offload_attempts s
                   WHERE s.job_id = cur.id AND s.attempt = cur.attempt)
    RETURNING a.job_id
), added AS (
    INSERT INTO offload_attempts (job_id, attempt, node, pid, started_at, ended_at, outcome,
                                  error)
    SELECT cur.id, cur.attempt, cur.node, cur.pid, cur.started_at, cur.ended_at, cur.outcome,
           cur.error
    FROM cur WHERE cur.id NOT IN (SELECT job_id FROM closed)
)
SELECT id, job, pool, state, attempt, due FROM ended";

fn job_notice(r: &Row) -> Result<JobNotice, StoreError> {
    Ok(JobNotice {
        id: col(r, 0)?,
        job: col(r, 1)?,
        pool: col(r, 2)?,
        state: parse_state(&col::<String>(r, 3)?)?,
        attempt: to_u32(col(r, 4)?, "attempt")?,
    })
}

pub(crate) async fn complete(c: &Object, done: Vec<Completion>) -> Result<Vec<Notice>, StoreError> {
    // A job completed twice in one batch: the first wins, as if applied one after the other.
    let mut seen = HashSet::with_capacity(done.len());
    let mut id = Vec::with_capacity(done.len());
    let mut attempt = Vec::with_capacity(done.len());
    let mut node = Vec::with_capacity(done.len());
    let mut pid: Vec<Option<i64>> = Vec::with_capacity(done.len());
    let mut started_at = Vec::with_capacity(done.len());
    let mut ended_at = Vec::with_capacity(done.len());
    let mut outcome = Vec::with_capacity(done.len());
    let mut next_state = Vec::with_capacity(done.len());
    let mut next_run_at: Vec<Option<i64>> = Vec::with_capacity(done.len());
    let mut result: Vec<Option<Value>> = Vec::with_capacity(done.len());
    let mut error: Vec<Option<Value>> = Vec::with_capacity(done.len());
    for d in done {
        if !seen.insert(d.id) {
            continue;
        }
        id.push(d.id);
        attempt.push(i64::from(d.attempt));
        node.push(d.node);
        pid.push(d.pid.map(i64::from));
        started_at.push(d.started_at);
        ended_at.push(d.ended_at);
        outcome.push(d.outcome);
        let (state, run_at, res, err) = match d.then {
            Transition::Succeeded { result } => (JobState::Succeeded, None, Some(result), None),
            Transition::Retry { error, run_at } => (
                JobState::Failed,
                Some(run_at),
                None,
                Some(error_json(&error)),
            ),
            Transition::Dead { error } => (JobState::Dead, None, None, Some(error_json(&error))),
            Transition::Cancelled => (JobState::Cancelled, None, None, None),
        };
        next_state.push(state.as_str());
        next_run_at.push(run_at);
        result.push(res);
        error.push(err);
    }
    let st = c.prepare_cached(COMPLETE).await.map_err(engine)?;
    let rows = c
        .query(
            &st,
            &[
                &id,
                &attempt,
                &node,
                &pid,
                &started_at,
                &ended_at,
                &outcome,
                &next_state,
                &next_run_at,
                &result,
                &error,
            ],
        )
        .await
        .map_err(engine)?;
    let mut notices = Vec::with_capacity(rows.len() + 1);
    for r in &rows {
        let n = job_notice(r)?;
        let due: Option<bool> = col(r, 5)?;
        if n.state == JobState::Failed && due == Some(true) {
            notices.push(Notice::Due {
                pool: n.pool.clone(),
            });
        }
        notices.push(Notice::Job(n));
    }
    if rows.len() < id.len() {
        tracing::debug!(
            stale = id.len() - rows.len(),
            "stale completions ignored (the job moved on)"
        );
    }
    Ok(notices)
}

pub(crate) async fn progress(c: &Object, updates: Vec<(JobId, Value)>) -> Result<(), StoreError> {
    // Last value wins.
    let mut ids: Vec<JobId> = Vec::with_capacity(updates.len());
    let mut values: Vec<Value> = Vec::with_capacity(updates.len());
    for (id, v) in updates.into_iter().rev() {
        if !ids.contains(&id) {
            ids.push(id);
            values.push(v);
        }
    }
    let st = c
        .prepare_cached(
            "UPDATE offload_jobs j SET progress = u.v, updated_at = offload_now_ms() \
             FROM unnest($1::uuid[], $2::json[]) AS u(id, v) \
             WHERE j.id = u.id AND j.state = 'running'",
        )
        .await
        .map_err(engine)?;
    c.execute(&st, &[&ids, &values]).await.map_err(engine)?;
    Ok(())
}

/// Re-queues running jobs whose lease ended (or of node `$1`), skipping rows another node is
/// recovering; a job whose cancel was asked becomes `cancelled`. Ends their open attempt as
/// `lease_expired` (or records it).
const RECOVER: &str = "
WITH lost AS (
    SELECT id, attempt, node FROM offload_jobs
    WHERE state = 'running' AND (lease_until < offload_now_ms() OR node = $1)
    FOR UPDATE SKIP LOCKED
), requeued AS (
    UPDATE offload_jobs j
    SET state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'queued' END,
        node = NULL, lease_until = NULL, updated_at = offload_now_ms()
    FROM lost WHERE j.id = lost.id
    RETURNING j.id, j.job, j.pool, j.state, j.attempt
), closed AS (
    UPDATE offload_attempts a SET ended_at = offload_now_ms(), outcome = 'lease_expired',
        error = NULL
    FROM lost
    WHERE a.seq = (SELECT max(s.seq) FROM offload_attempts s
                   WHERE s.job_id = lost.id AND s.attempt = lost.attempt)
    RETURNING a.job_id
), added AS (
    INSERT INTO offload_attempts (job_id, attempt, node, started_at, ended_at, outcome)
    SELECT lost.id, lost.attempt, lost.node, offload_now_ms(), offload_now_ms(), 'lease_expired'
    FROM lost WHERE lost.id NOT IN (SELECT job_id FROM closed)
)
SELECT id, job, pool, state, attempt FROM requeued";

pub(crate) async fn recover(c: &Object, node: Option<&str>) -> Result<Vec<Notice>, StoreError> {
    let st = c.prepare_cached(RECOVER).await.map_err(engine)?;
    let rows = c.query(&st, &[&node]).await.map_err(engine)?;
    if node.is_none() {
        // The periodic call of every node: also fold the count deltas (one node at a time).
        let st = c
            .prepare_cached("SELECT offload_compact_counts()")
            .await
            .map_err(engine)?;
        c.execute(&st, &[]).await.map_err(engine)?;
    }
    let mut notices = Vec::with_capacity(rows.len() + 1);
    let mut due: Vec<String> = Vec::new();
    for r in &rows {
        let n = job_notice(r)?;
        if n.state == JobState::Queued && !due.contains(&n.pool) {
            due.push(n.pool.clone());
        }
        notices.push(Notice::Job(n));
    }
    notices.extend(due.into_iter().map(|pool| Notice::Due { pool }));
    Ok(notices)
}

// ---------------------------------------------------------------------------------------------
// Cancel, retry, purge, schedules.

pub(crate) async fn cancel(
    c: &mut Object,
    id: JobId,
) -> Result<(CancelResult, Option<Notice>), StoreError> {
    let tx = c.transaction().await.map_err(engine)?;
    let st = tx
        .prepare_cached(
            "SELECT state, node, job, pool, attempt FROM offload_jobs WHERE id = $1 FOR UPDATE",
        )
        .await
        .map_err(engine)?;
    let row = tx
        .query_opt(&st, &[&id])
        .await
        .map_err(engine)?
        .ok_or(StoreError::NotFound)?;
    let state = parse_state(&col::<String>(&row, 0)?)?;
    let (sql, result) = match state {
        JobState::Scheduled | JobState::Queued | JobState::Failed => (
            "UPDATE offload_jobs SET state = 'cancelled', updated_at = offload_now_ms() \
             WHERE id = $1",
            CancelResult::Cancelled,
        ),
        JobState::Running => (
            "UPDATE offload_jobs SET cancel_requested = true, updated_at = offload_now_ms() \
             WHERE id = $1",
            CancelResult::Requested,
        ),
        JobState::Succeeded | JobState::Dead | JobState::Cancelled => {
            return Ok((CancelResult::AlreadyDone(state), None));
        }
    };
    let st = tx.prepare_cached(sql).await.map_err(engine)?;
    tx.execute(&st, &[&id]).await.map_err(engine)?;
    tx.commit().await.map_err(engine)?;
    let notice = match result {
        CancelResult::Requested => Notice::CancelRequested {
            id,
            node: col(&row, 1)?,
        },
        _ => Notice::Job(JobNotice {
            id,
            job: col(&row, 2)?,
            pool: col(&row, 3)?,
            state: JobState::Cancelled,
            attempt: to_u32(col(&row, 4)?, "attempt")?,
        }),
    };
    Ok((result, Some(notice)))
}

pub(crate) async fn retry(c: &mut Object, id: JobId) -> Result<(JobState, Notice), StoreError> {
    let tx = c.transaction().await.map_err(engine)?;
    let st = tx
        .prepare_cached("SELECT state, pool FROM offload_jobs WHERE id = $1 FOR UPDATE")
        .await
        .map_err(engine)?;
    let row = tx
        .query_opt(&st, &[&id])
        .await
        .map_err(engine)?
        .ok_or(StoreError::NotFound)?;
    match parse_state(&col::<String>(&row, 0)?)? {
        JobState::Dead | JobState::Cancelled => {}
        other => {
            return Err(StoreError::Conflict(format!(
                "only a dead or cancelled job can be retried; this one is {}",
                other.as_str()
            )))
        }
    }
    let st = tx
        .prepare_cached(
            "UPDATE offload_jobs SET state = 'queued', attempt = 0, run_at = offload_now_ms(), \
             updated_at = offload_now_ms(), cancel_requested = false, result = NULL, \
             node = NULL, lease_until = NULL WHERE id = $1",
        )
        .await
        .map_err(engine)?;
    tx.execute(&st, &[&id]).await.map_err(engine)?;
    tx.commit().await.map_err(engine)?;
    Ok((
        JobState::Queued,
        Notice::Due {
            pool: col(&row, 1)?,
        },
    ))
}

pub(crate) async fn purge(c: &Object, before: Millis) -> Result<u64, StoreError> {
    let st = c
        .prepare_cached(
            "WITH doomed AS (
                 DELETE FROM offload_jobs
                 WHERE state IN ('succeeded', 'dead', 'cancelled') AND updated_at < $1
                 RETURNING id, idempotency_key
             ), attempts AS (
                 DELETE FROM offload_attempts WHERE job_id IN (SELECT id FROM doomed)
             ), keys AS (
                 DELETE FROM offload_idempotency i USING doomed d
                 WHERE i.key = d.idempotency_key AND i.job_id = d.id
             )
             SELECT count(*) FROM doomed",
        )
        .await
        .map_err(engine)?;
    let row = c.query_one(&st, &[&before]).await.map_err(engine)?;
    to_u64(col(&row, 0)?, "count")
}

pub(crate) async fn put_schedule(c: &Object, s: &CronSchedule) -> Result<(), StoreError> {
    let st = c
        .prepare_cached(
            "INSERT INTO offload_schedules (name, cron, job, params, missed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET \
             cron = excluded.cron, job = excluded.job, params = excluded.params, \
             missed = excluded.missed, created_at = excluded.created_at",
        )
        .await
        .map_err(engine)?;
    c.execute(
        &st,
        &[
            &s.name,
            &s.cron,
            &s.job,
            &s.params,
            &s.missed,
            &s.created_at,
        ],
    )
    .await
    .map_err(engine)?;
    Ok(())
}

pub(crate) async fn delete_schedule(c: &Object, name: &str) -> Result<(), StoreError> {
    // A schedule created again under this name starts afresh (no "missed" tick from the old
    // one).
    let st = c
        .prepare_cached(
            "WITH gone AS (DELETE FROM offload_schedules WHERE name = $1 RETURNING name), \
             ticks AS (DELETE FROM offload_cron_ticks WHERE schedule IN (SELECT name FROM gone)) \
             SELECT count(*) FROM gone",
        )
        .await
        .map_err(engine)?;
    let row = c.query_one(&st, &[&name]).await.map_err(engine)?;
    if col::<i64>(&row, 0)? == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reads.

pub(crate) async fn get(c: &Object, id: JobId) -> Result<JobRecord, StoreError> {
    let job = c
        .prepare_cached(&format!(
            "SELECT {JOB_COLS} FROM offload_jobs WHERE id = $1"
        ))
        .await
        .map_err(engine)?;
    let attempts = c
        .prepare_cached(
            "SELECT attempt, node, pid, started_at, ended_at, outcome, error \
             FROM offload_attempts WHERE job_id = $1 ORDER BY seq",
        )
        .await
        .map_err(engine)?;
    // Pipelined: one round trip. Two statements, two snapshots: the attempts may be one step
    // ahead of the job row.
    let args: [&(dyn ToSql + Sync); 1] = [&id];
    let (row, rows) =
        tokio::try_join!(c.query_opt(&job, &args), c.query(&attempts, &args)).map_err(engine)?;
    let mut job = job_from_row(&row.ok_or(StoreError::NotFound)?)?;
    for r in &rows {
        let pid: Option<i64> = col(r, 2)?;
        job.attempts.push(AttemptRecord {
            attempt: to_u32(col(r, 0)?, "attempt")?,
            node: col(r, 1)?,
            pid: pid.map(|p| to_u32(p, "pid")).transpose()?,
            started_at: col(r, 3)?,
            ended_at: col(r, 4)?,
            outcome: col(r, 5)?,
            error: parse_error(col(r, 6)?)?,
        });
    }
    Ok(job)
}

/// Encodes the position after `id` (its 32 hex digits: opaque to callers).
fn cursor_of(id: JobId) -> String {
    id.simple().to_string()
}

pub(crate) async fn list(c: &Object, filter: &ListFilter) -> Result<Page, StoreError> {
    let limit = match filter.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let state = filter.state.map(JobState::as_str);
    let after = filter
        .cursor
        .as_ref()
        .map(|cursor| {
            JobId::try_parse(cursor)
                .map_err(|_| StoreError::Invalid(format!("bad cursor {cursor:?}")))
        })
        .transpose()?;
    let mut sql = format!("SELECT {JOB_COLS} FROM offload_jobs WHERE true");
    let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if let Some(state) = &state {
        args.push(state);
        sql.push_str(&format!(" AND state = ${}", args.len()));
    }
    if let Some(job) = &filter.job {
        args.push(job);
        sql.push_str(&format!(" AND job = ${}", args.len()));
    }
    if let Some(after) = &after {
        args.push(after);
        sql.push_str(&format!(" AND id < ${}", args.len()));
    }
    // One more than the page, to know whether another page follows.
    let n = limit as i64 + 1;
    args.push(&n);
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len()));
    let st = c.prepare_cached(&sql).await.map_err(engine)?;
    let rows = c.query(&st, &args).await.map_err(engine)?;
    let more = rows.len() > limit;
    let jobs = rows
        .iter()
        .take(limit)
        .map(job_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if more {
        jobs.last().map(|j| cursor_of(j.id))
    } else {
        None
    };
    Ok(Page { jobs, next_cursor })
}

pub(crate) async fn counts(c: &Object) -> Result<Counts, StoreError> {
    let st = c
        .prepare_cached(
            "SELECT pool, state, sum(n)::bigint FROM ( \
                 SELECT pool, state, n FROM offload_counts \
                 UNION ALL SELECT pool, state, n FROM offload_count_deltas \
             ) x GROUP BY pool, state HAVING sum(n) > 0",
        )
        .await
        .map_err(engine)?;
    let rows = c.query(&st, &[]).await.map_err(engine)?;
    let mut out = Counts::new();
    for r in &rows {
        let state = parse_state(&col::<String>(r, 1)?)?;
        out.insert((col(r, 0)?, state), to_u64(col(r, 2)?, "count")?);
    }
    Ok(out)
}

pub(crate) async fn schedules(c: &Object) -> Result<Vec<CronSchedule>, StoreError> {
    let st = c
        .prepare_cached(
            "SELECT name, cron, job, params, missed, created_at FROM offload_schedules \
             ORDER BY name",
        )
        .await
        .map_err(engine)?;
    let rows = c.query(&st, &[]).await.map_err(engine)?;
    rows.iter()
        .map(|r| {
            Ok(CronSchedule {
                name: col(r, 0)?,
                cron: col(r, 1)?,
                job: col(r, 2)?,
                params: col(r, 3)?,
                missed: col(r, 4)?,
                created_at: col(r, 5)?,
            })
        })
        .collect()
}

pub(crate) async fn last_tick(c: &Object, name: &str) -> Result<Option<Millis>, StoreError> {
    let st = c
        .prepare_cached("SELECT last_tick FROM offload_cron_ticks WHERE schedule = $1")
        .await
        .map_err(engine)?;
    let row = c.query_opt(&st, &[&name]).await.map_err(engine)?;
    row.map(|r| col(&r, 0)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_deadlocks_and_serialization_failures_are_retried() {
        assert!(retryable(&StoreError::Engine(
            "deadlock detected (40P01)".into()
        )));
        assert!(!retryable(&StoreError::Engine(
            "duplicate key (23505)".into()
        )));
        assert!(!retryable(&StoreError::NotFound));
    }
}
