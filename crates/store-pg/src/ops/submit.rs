//! `submit`: jobs without idempotency keys go in one statement for the whole batch; a batch
//! with keys runs job by job in one transaction (a later job of the batch may be a duplicate
//! of an earlier one, or name earlier ones in `after`), after locking its keys and ticks in one
//! order.

use std::collections::HashMap;
use std::time::Duration;

use deadpool_postgres::Object;
use offload_store::rules::rows::{duplicate, Row};
use offload_store::rules::submit::{same_job, unique_key};
use offload_store::rules::values::{ms, to_i64};
use offload_store::{JobId, JobState, NewJob, StoreError, Submitted};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::{all, retryable, Cols};
use crate::engine;

const INSERT_JOBS: &str = include_str!("../sql/submit/insert_jobs.sql");
const CRON_JOB: &str = include_str!("../sql/submit/cron_job.sql");
const TAKE_KEY: &str = include_str!("../sql/submit/take_key.sql");
const KEY_HOLDER: &str = include_str!("../sql/submit/key_holder.sql");
const LOCK_KEYS: &str = include_str!("../sql/submit/lock_keys.sql");
const FREE_KEY: &str = include_str!("../sql/submit/free_key.sql");
const DROP_KEY: &str = include_str!("../sql/submit/drop_key.sql");
const BY_UNIQUE: &str = include_str!("../sql/submit/by_unique.sql");

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
    backoff: Vec<Option<Value>>,
    keep_result_ms: Vec<Option<i64>>,
    unique_key: Vec<Option<String>>,
}

impl Columns {
    fn push(&mut self, id: JobId, j: NewJob) -> Result<(), StoreError> {
        self.unique_key.push(unique_key(&j));
        self.timeout_ms
            .push(j.timeout_ms.map(|t| to_i64(t, "timeout_ms")).transpose()?);
        self.backoff_ms.push(to_i64(j.backoff_ms, "backoff_ms")?);
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
        self.keep_result_ms.push(
            j.keep_result_ms
                .map(|k| to_i64(k, "keep_result_ms"))
                .transpose()?,
        );
        self.backoff.push(
            j.backoff
                .map(|b| serde_json::to_value(b).map_err(|e| StoreError::Invalid(e.to_string())))
                .transpose()?,
        );
        Ok(())
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 15] {
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
            &self.backoff,
            &self.keep_result_ms,
            &self.unique_key,
        ]
    }
}

/// What a submit answers, and the pools that got claimable jobs (to announce).
pub(crate) type SubmitOutcome = (Vec<Submitted>, Vec<String>);

pub(crate) async fn submit(
    c: &mut Object,
    jobs: Vec<NewJob>,
    window: Duration,
) -> Result<SubmitOutcome, StoreError> {
    if jobs
        .iter()
        .all(|j| j.idempotency_key.is_none() && !j.unique && j.after.is_empty())
    {
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

/// Each pool once, in order of first appearance.
fn once_each(pools: Vec<String>) -> Vec<String> {
    let mut due: Vec<String> = Vec::with_capacity(pools.len());
    for pool in pools {
        if !due.contains(&pool) {
            due.push(pool);
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
    let rows = all(&rows, |r| {
        Ok((r.id("id")?, r.state("state")?, r.text("pool")?))
    })?;
    let mut inserted = HashMap::with_capacity(rows.len());
    let mut due = Vec::new();
    for (id, state, pool) in rows {
        if state == JobState::Queued {
            due.push(pool);
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
        out.push(duplicate(&Cols(&row))?);
    }
    Ok((out, once_each(due)))
}

/// Jobs with idempotency keys, unique or `after`: one transaction, job by job (a later job of the batch
/// may be a duplicate of an earlier one).
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
            let key = j
                .idempotency_key
                .as_ref()
                .map(|k| format!("key:{}:{k}", j.job));
            let tick = j
                .cron
                .as_ref()
                .map(|t| format!("cron:{}:{}", t.schedule, t.tick));
            // Concurrent submits of one unique key serialize here: the later finds the first.
            let unique = unique_key(j).map(|u| format!("unique:{}:{u}", j.job));
            key.into_iter().chain(tick).chain(unique)
        })
        .collect();
    locks.sort();
    locks.dedup();
    let tx = c.transaction().await.map_err(engine)?;
    let lock = tx.prepare_cached(LOCK_KEYS).await.map_err(engine)?;
    tx.query_one(&lock, &[&locks]).await.map_err(engine)?;
    let take_key = tx.prepare_cached(TAKE_KEY).await.map_err(engine)?;
    let key_holder = tx.prepare_cached(KEY_HOLDER).await.map_err(engine)?;
    let insert = tx.prepare_cached(INSERT_JOBS).await.map_err(engine)?;
    let cron_job = tx.prepare_cached(CRON_JOB).await.map_err(engine)?;
    let by_unique = tx.prepare_cached(BY_UNIQUE).await.map_err(engine)?;
    let mut out = Vec::with_capacity(jobs.len());
    let mut due = Vec::new();
    for (index, job) in jobs.into_iter().enumerate() {
        let id = JobId::now_v7();
        let key = job.idempotency_key.clone();
        if let Some(key) = &key {
            // The submit's own window, else the store's.
            let window = job
                .key_ttl_ms
                .map(|t| to_i64(t, "key_ttl_ms"))
                .transpose()?
                .unwrap_or(window);
            let took = tx
                .query_opt(&take_key, &[key, &id, &window, &job.job])
                .await
                .map_err(engine)?;
            if took.is_none() {
                let row = tx
                    .query_one(&key_holder, &[key, &job.job])
                    .await
                    .map_err(engine)?;
                let holder = Cols(&row);
                if let Some(state) = holder.opt_text("state")? {
                    // Scoped by job name: the key answers only the same params.
                    same_job(
                        key,
                        &job,
                        holder.opt_text("job")?.as_deref(),
                        holder.opt_json("params")?.as_ref(),
                    )?;
                    out.push(Submitted {
                        id: holder.id("job_id")?,
                        state: offload_store::rules::values::state(&state)?,
                        duplicate: true,
                    });
                    continue;
                }
                // The key's job is gone: the key is free.
                let free = tx.prepare_cached(FREE_KEY).await.map_err(engine)?;
                tx.execute(&free, &[key, &id, &job.job])
                    .await
                    .map_err(engine)?;
            }
        }
        if let Some(unique) = unique_key(&job) {
            let rows = tx
                .query(&by_unique, &[&job.job, &unique])
                .await
                .map_err(engine)?;
            if let Some(r) = rows.first() {
                if let Some(key) = &key {
                    // The key does not name a job that was not created.
                    let drop_key = tx.prepare_cached(DROP_KEY).await.map_err(engine)?;
                    tx.execute(&drop_key, &[key, &id]).await.map_err(engine)?;
                }
                out.push(duplicate(&Cols(r))?);
                continue;
            }
        }
        let tick = job.cron.as_ref().map(|t| (t.schedule.clone(), t.tick));
        let deps = (!job.after.is_empty()).then(|| job.clone());
        let mut cols = Columns::default();
        cols.push(id, job)?;
        let rows = tx.query(&insert, &cols.params()).await.map_err(engine)?;
        if let Some(r) = rows.first() {
            let r = Cols(r);
            let mut state = r.state("state")?;
            if let Some(job) = &deps {
                let earlier: Vec<JobId> = out.iter().map(|d: &Submitted| d.id).collect();
                state = super::after::attach(&tx, id, state, job, index, &earlier).await?;
            }
            if state == JobState::Queued {
                due.push(r.text("pool")?);
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
            let drop_key = tx.prepare_cached(DROP_KEY).await.map_err(engine)?;
            tx.execute(&drop_key, &[key, &id]).await.map_err(engine)?;
        }
        out.push(duplicate(&Cols(&row))?);
    }
    tx.commit().await.map_err(engine)?;
    Ok((out, once_each(due)))
}
