//! The stored cron schedules and the last tick of each schedule.

use deadpool_postgres::Object;
use offload_store::rules::rows::{cron_state, schedule, Row};
use offload_store::rules::values::to_i64;
use offload_store::{CronSchedule, CronState, Millis, StoreError};

use super::{all, Cols};
use crate::engine;

const PUT_SCHEDULE: &str = include_str!("../sql/cron/put_schedule.sql");
const SCHEDULES: &str = include_str!("../sql/cron/schedules.sql");
const DELETE_SCHEDULE: &str = include_str!("../sql/cron/delete_schedule.sql");
const LAST_TICK: &str = include_str!("../sql/cron/last_tick.sql");
const CRON_STATES: &str = include_str!("../sql/cron/cron_states.sql");
const PAUSE: &str = include_str!("../sql/cron/pause.sql");
const RESUME: &str = include_str!("../sql/cron/resume.sql");

pub(crate) async fn put_schedule(c: &Object, s: &CronSchedule) -> Result<(), StoreError> {
    let st = c.prepare_cached(PUT_SCHEDULE).await.map_err(engine)?;
    c.execute(
        &st,
        &[
            &s.name,
            &s.cron,
            &s.job,
            &s.params,
            &s.missed,
            &s.created_at,
            &s.overlap,
            &s.pause_after_failures.map(i64::from),
            &s.timezone,
            &s.jitter_ms.map(|n| to_i64(n, "jitter_ms")).transpose()?,
            &s.failure_backoff_ms
                .map(|n| to_i64(n, "failure_backoff_ms"))
                .transpose()?,
            &s.failure_backoff_max_ms
                .map(|n| to_i64(n, "failure_backoff_max_ms"))
                .transpose()?,
        ],
    )
    .await
    .map_err(engine)?;
    Ok(())
}

pub(crate) async fn delete_schedule(c: &Object, name: &str) -> Result<(), StoreError> {
    let st = c.prepare_cached(DELETE_SCHEDULE).await.map_err(engine)?;
    let row = c.query_one(&st, &[&name]).await.map_err(engine)?;
    if Cols(&row).int("n")? == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn schedules(c: &Object) -> Result<Vec<CronSchedule>, StoreError> {
    let st = c.prepare_cached(SCHEDULES).await.map_err(engine)?;
    let rows = c.query(&st, &[]).await.map_err(engine)?;
    all(&rows, |r| schedule(r))
}

pub(crate) async fn last_tick(c: &Object, name: &str) -> Result<Option<Millis>, StoreError> {
    let st = c.prepare_cached(LAST_TICK).await.map_err(engine)?;
    let row = c.query_opt(&st, &[&name]).await.map_err(engine)?;
    row.map(|r| Cols(&r).int("last_tick")).transpose()
}

pub(crate) async fn cron_states(c: &Object) -> Result<Vec<CronState>, StoreError> {
    let st = c.prepare_cached(CRON_STATES).await.map_err(engine)?;
    let rows = c.query(&st, &[]).await.map_err(engine)?;
    all(&rows, |r| cron_state(r))
}

pub(crate) async fn pause(
    c: &Object,
    name: &str,
    at: Millis,
    reason: &str,
) -> Result<bool, StoreError> {
    let st = c.prepare_cached(PAUSE).await.map_err(engine)?;
    let n = c
        .execute(&st, &[&name, &at, &reason])
        .await
        .map_err(engine)?;
    Ok(n > 0)
}

pub(crate) async fn resume(c: &Object, name: &str) -> Result<(), StoreError> {
    let st = c.prepare_cached(RESUME).await.map_err(engine)?;
    c.execute(&st, &[&name]).await.map_err(engine)?;
    Ok(())
}
