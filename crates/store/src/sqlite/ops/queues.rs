//! Paused queues: `pause_queue`, `resume_queue`, `paused_queues` (the claim honours them in
//! its own statement, `claim.sql`).

use rusqlite::{params, Connection};

use super::super::engine;
use super::{all, first};
use crate::queues::{paused_queue, too_many_paused, MAX_PAUSED_QUEUES};
use crate::rules::rows::Row;
use crate::{Millis, PausedQueue, Queue, StoreError};

const PAUSE: &str = include_str!("../sql/queues/pause.sql");
const COUNT: &str = include_str!("../sql/queues/count.sql");
const RESUME: &str = include_str!("../sql/queues/resume.sql");
const LIST: &str = include_str!("../sql/queues/list.sql");

pub(in crate::sqlite) fn pause(c: &Connection, q: &Queue, at: Millis) -> Result<bool, StoreError> {
    q.check()?;
    let kind = q.kind.as_str();
    let mut s = c.prepare_cached(COUNT).map_err(engine)?;
    let (n, present) = first(&mut s, params![kind, q.name], |r| {
        Ok((r.int("n")?, r.flag("present")?))
    })?
    .unwrap_or((0, false));
    if present {
        return Ok(false);
    }
    if usize::try_from(n).unwrap_or(usize::MAX) >= MAX_PAUSED_QUEUES {
        return Err(too_many_paused().into());
    }
    let changed = c
        .prepare_cached(PAUSE)
        .and_then(|mut s| s.execute(params![kind, q.name, at]))
        .map_err(engine)?;
    Ok(changed > 0)
}

pub(in crate::sqlite) fn resume(c: &Connection, q: &Queue) -> Result<bool, StoreError> {
    let changed = c
        .prepare_cached(RESUME)
        .and_then(|mut s| s.execute(params![q.kind.as_str(), q.name]))
        .map_err(engine)?;
    Ok(changed > 0)
}

pub(in crate::sqlite) fn list(c: &Connection) -> Result<Vec<PausedQueue>, StoreError> {
    let mut s = c.prepare_cached(LIST).map_err(engine)?;
    all(&mut s, [], |r| paused_queue(r))
}
