//! Rate and concurrency limits: `set_limits`, `limits`, and the buckets the claim reads and
//! writes back in its transaction (`claim.rs`; the decisions are
//! [`crate::rules::throttle`]'s).

use std::collections::HashSet;

use rusqlite::{params, Connection};

use super::super::engine;
use super::{all, first};
use crate::rules::rows::Row;
use crate::rules::throttle::{full, stored, Bucket, Gate};
use crate::rules::values::to_i64;
use crate::throttle::{check_all, Throttle, ThrottleState};
use crate::{Millis, StoreError};

const LIST: &str = include_str!("../sql/throttle/list.sql");
const RUNNING: &str = include_str!("../sql/throttle/running.sql");
const QUEUED: &str = include_str!("../sql/throttle/queued.sql");
const PUT: &str = include_str!("../sql/throttle/put.sql");
const DELETE: &str = include_str!("../sql/throttle/delete.sql");
const SAVE: &str = include_str!("../sql/throttle/save.sql");

fn count(c: &Connection, sql: &str, t: &Throttle) -> Result<u64, StoreError> {
    let mut s = c.prepare_cached(sql).map_err(engine)?;
    let n = first(&mut s, params![t.queue.kind.as_str(), t.queue.name], |r| {
        r.int("n")
    })?;
    Ok(n.map_or(0, |n| n.unsigned_abs()))
}

/// Every limit's bucket, refilled to `now`, with its queue's running jobs.
pub(in crate::sqlite) fn buckets(c: &Connection, now: Millis) -> Result<Vec<Bucket>, StoreError> {
    let rows = {
        let mut s = c.prepare_cached(LIST).map_err(engine)?;
        all(&mut s, [], |r| stored(r))?
    };
    rows.into_iter()
        .map(|(t, micro, at)| {
            let running = count(c, RUNNING, &t)?;
            Ok(Bucket::at(t, micro, at, running, now))
        })
        .collect()
}

/// Writes back the buckets of a claim.
pub(in crate::sqlite) fn save(c: &Connection, gate: &Gate) -> Result<(), StoreError> {
    let mut s = c.prepare_cached(SAVE).map_err(engine)?;
    for b in gate
        .buckets()
        .into_iter()
        .filter(|b| b.throttle.rate.is_some())
    {
        let q = &b.throttle.queue;
        s.execute(params![q.kind.as_str(), q.name, b.micro, b.refilled_at])
            .map_err(engine)?;
    }
    Ok(())
}

pub(in crate::sqlite) fn set(
    c: &Connection,
    limits: &[Throttle],
    now: Millis,
) -> Result<(), StoreError> {
    check_all(limits)?;
    let keep: HashSet<_> = limits.iter().map(|l| &l.queue).collect();
    let old = {
        let mut s = c.prepare_cached(LIST).map_err(engine)?;
        all(&mut s, [], |r| stored(r))?
    };
    let mut delete = c.prepare_cached(DELETE).map_err(engine)?;
    for (t, _, _) in old.iter().filter(|(t, _, _)| !keep.contains(&t.queue)) {
        delete
            .execute(params![t.queue.kind.as_str(), t.queue.name])
            .map_err(engine)?;
    }
    let mut put = c.prepare_cached(PUT).map_err(engine)?;
    for l in limits {
        let limit = l.rate.map(|r| to_i64(r.limit, "rate.limit")).transpose()?;
        let period = l
            .rate
            .map(|r| to_i64(r.period_ms, "rate.period_ms"))
            .transpose()?;
        let max_running = l
            .max_running
            .map(|k| to_i64(k, "max_running"))
            .transpose()?;
        put.execute(params![
            l.queue.kind.as_str(),
            l.queue.name,
            limit,
            period,
            max_running,
            l.rate.map_or(0, full),
            now
        ])
        .map_err(engine)?;
    }
    Ok(())
}

pub(in crate::sqlite) fn list(
    c: &Connection,
    now: Millis,
) -> Result<Vec<ThrottleState>, StoreError> {
    let mut out = buckets(c, now)?
        .into_iter()
        .map(|b| Ok(b.state(count(c, QUEUED, &b.throttle)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    out.sort_by(|a, b| a.throttle.queue.cmp(&b.throttle.queue));
    Ok(out)
}
