//! History: `add_stats` (summed into the stored rows), `stats` (summed per point) and
//! `purge_stats`.

use rusqlite::{params, Connection};

use super::super::engine;
use super::all;
use crate::stats::{cell, StatCell, StatRow, StatsQuery, MAX_CELLS};
use crate::{Millis, StoreError};

const ADD: &str = include_str!("../sql/stats/add.sql");
const READ: &str = include_str!("../sql/stats/read.sql");
const PURGE: &str = include_str!("../sql/stats/purge.sql");

pub(in crate::sqlite) fn add(c: &Connection, rows: &[StatRow]) -> Result<(), StoreError> {
    let mut s = c.prepare_cached(ADD).map_err(engine)?;
    for r in rows {
        s.execute(params![
            r.minute,
            r.pool,
            r.job,
            r.metric.as_str(),
            r.bucket,
            i64::try_from(r.n).unwrap_or(i64::MAX)
        ])
        .map_err(engine)?;
    }
    Ok(())
}

pub(in crate::sqlite) fn read(c: &Connection, q: &StatsQuery) -> Result<Vec<StatCell>, StoreError> {
    let (from, to) = q.aligned();
    let mut s = c.prepare_cached(READ).map_err(engine)?;
    all(
        &mut s,
        params![from, to, q.step_ms, q.pool, q.job, MAX_CELLS],
        |r| cell(r),
    )
}

pub(in crate::sqlite) fn purge(c: &Connection, before: Millis) -> Result<u64, StoreError> {
    let n = c
        .prepare_cached(PURGE)
        .and_then(|mut s| s.execute(params![before]))
        .map_err(engine)?;
    Ok(n as u64)
}
