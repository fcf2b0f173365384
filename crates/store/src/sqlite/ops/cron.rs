//! The stored cron schedules and the last tick of each schedule.

use rusqlite::{params, Connection};

use super::super::engine;
use super::{all, first};
use crate::rules::rows::{cron_state, schedule, Row};
use crate::rules::values::to_i64;
use crate::{CronSchedule, CronState, Millis, StoreError};

const PUT_SCHEDULE: &str = include_str!("../sql/cron/put_schedule.sql");
const SCHEDULES: &str = include_str!("../sql/cron/schedules.sql");
const DELETE_SCHEDULE: &str = include_str!("../sql/cron/delete_schedule.sql");
const FORGET_TICKS: &str = include_str!("../sql/cron/forget_ticks.sql");
const LAST_TICK: &str = include_str!("../sql/cron/last_tick.sql");
const FORGET_STATE: &str = include_str!("../sql/cron/forget_state.sql");
const CRON_STATES: &str = include_str!("../sql/cron/cron_states.sql");
const PAUSE: &str = include_str!("../sql/cron/pause.sql");
const RESUME: &str = include_str!("../sql/cron/resume.sql");

pub(in crate::sqlite) fn put_schedule(c: &Connection, s: &CronSchedule) -> Result<(), StoreError> {
    let ms = |n: Option<u64>, field| n.map(|n| to_i64(n, field)).transpose();
    let jitter = ms(s.jitter_ms, "jitter_ms")?;
    let backoff = ms(s.failure_backoff_ms, "failure_backoff_ms")?;
    let backoff_max = ms(s.failure_backoff_max_ms, "failure_backoff_max_ms")?;
    c.prepare_cached(PUT_SCHEDULE)
        .and_then(|mut st| {
            st.execute(params![
                s.name,
                s.cron,
                s.job,
                s.params.to_string(),
                s.missed,
                s.created_at,
                s.overlap,
                s.pause_after_failures,
                s.timezone,
                jitter,
                backoff,
                backoff_max,
            ])
        })
        .map_err(engine)?;
    Ok(())
}

pub(in crate::sqlite) fn delete_schedule(c: &Connection, name: &str) -> Result<(), StoreError> {
    let n = c
        .prepare_cached(DELETE_SCHEDULE)
        .and_then(|mut s| s.execute([name]))
        .map_err(engine)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    for forget in [FORGET_TICKS, FORGET_STATE] {
        c.prepare_cached(forget)
            .and_then(|mut s| s.execute([name]))
            .map_err(engine)?;
    }
    Ok(())
}

pub(in crate::sqlite) fn schedules(c: &Connection) -> Result<Vec<CronSchedule>, StoreError> {
    let mut s = c.prepare_cached(SCHEDULES).map_err(engine)?;
    all(&mut s, [], |r| schedule(r))
}

pub(in crate::sqlite) fn last_tick(
    c: &Connection,
    name: &str,
) -> Result<Option<Millis>, StoreError> {
    let mut s = c.prepare_cached(LAST_TICK).map_err(engine)?;
    first(&mut s, [name], |r| r.int("last_tick"))
}

pub(in crate::sqlite) fn cron_states(c: &Connection) -> Result<Vec<CronState>, StoreError> {
    let mut s = c.prepare_cached(CRON_STATES).map_err(engine)?;
    all(&mut s, [], |r| cron_state(r))
}

pub(in crate::sqlite) fn pause(
    c: &Connection,
    name: &str,
    at: Millis,
    reason: &str,
) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached(PAUSE)
        .and_then(|mut s| s.execute(params![name, at, reason]))
        .map_err(engine)?;
    Ok(n > 0)
}

pub(in crate::sqlite) fn resume(c: &Connection, name: &str) -> Result<(), StoreError> {
    c.prepare_cached(RESUME)
        .and_then(|mut s| s.execute([name]))
        .map_err(engine)?;
    Ok(())
}
