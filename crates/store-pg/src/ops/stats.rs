//! History: `add_stats` (one statement summing into the stored rows, so the adds of several
//! nodes merge), `stats` (summed per point) and `purge_stats`.

use deadpool_postgres::Object;
use offload_store::stats::{cell, StatCell, StatRow, StatsQuery, MAX_CELLS};
use offload_store::{Millis, StoreError};

use super::all;
use crate::engine;

const ADD: &str = include_str!("../sql/stats/add.sql");
const READ: &str = include_str!("../sql/stats/read.sql");
const PURGE: &str = include_str!("../sql/stats/purge.sql");

/// Adds `rows` ([`offload_store::stats::normalize`]d: unique keys in key order).
pub(crate) async fn add(c: &Object, rows: &[StatRow]) -> Result<(), StoreError> {
    let minute: Vec<i64> = rows.iter().map(|r| r.minute).collect();
    let pool: Vec<&str> = rows.iter().map(|r| r.pool.as_str()).collect();
    let job: Vec<&str> = rows.iter().map(|r| r.job.as_str()).collect();
    let metric: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
    let bucket: Vec<i16> = rows
        .iter()
        .map(|r| i16::try_from(r.bucket).unwrap_or(i16::MAX))
        .collect();
    let n: Vec<i64> = rows
        .iter()
        .map(|r| i64::try_from(r.n).unwrap_or(i64::MAX))
        .collect();
    let st = c.prepare_cached(ADD).await.map_err(engine)?;
    c.execute(&st, &[&minute, &pool, &job, &metric, &bucket, &n])
        .await
        .map_err(engine)?;
    Ok(())
}

pub(crate) async fn read(c: &Object, q: &StatsQuery) -> Result<Vec<StatCell>, StoreError> {
    let (from, to) = q.aligned();
    let st = c.prepare_cached(READ).await.map_err(engine)?;
    let rows = c
        .query(&st, &[&from, &to, &q.step_ms, &q.pool, &q.job, &MAX_CELLS])
        .await
        .map_err(engine)?;
    all(&rows, |r| cell(r))
}

pub(crate) async fn purge(c: &Object, before: Millis) -> Result<u64, StoreError> {
    let st = c.prepare_cached(PURGE).await.map_err(engine)?;
    c.execute(&st, &[&before]).await.map_err(engine)
}
