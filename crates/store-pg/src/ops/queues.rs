//! Paused queues: `pause_queue`, `resume_queue`, `paused_queues`. The claim honours them in its
//! own statement (`offload_claim`, schema v3), so a pause stops every node's claims at once.

use deadpool_postgres::Object;
use offload_store::queues::{paused_queue, too_many_paused, MAX_PAUSED_QUEUES};
use offload_store::rules::rows::Row;
use offload_store::{Millis, PausedQueue, Queue, StoreError};

use super::{all, Cols};
use crate::engine;

const LOCK: &str = include_str!("../sql/queues/lock.sql");
const COUNT: &str = include_str!("../sql/queues/count.sql");
const PAUSE: &str = include_str!("../sql/queues/pause.sql");
const RESUME: &str = include_str!("../sql/queues/resume.sql");
const LIST: &str = include_str!("../sql/queues/list.sql");

pub(crate) async fn pause(c: &mut Object, q: &Queue, at: Millis) -> Result<bool, StoreError> {
    q.check()?;
    let kind = q.kind.as_str();
    let tx = c.transaction().await.map_err(engine)?;
    tx.batch_execute(LOCK).await.map_err(engine)?;
    let st = tx.prepare_cached(COUNT).await.map_err(engine)?;
    let row = tx.query_one(&st, &[&kind, &q.name]).await.map_err(engine)?;
    let row = Cols(&row);
    if row.flag("present")? {
        return Ok(false);
    }
    if usize::try_from(row.int("n")?).unwrap_or(usize::MAX) >= MAX_PAUSED_QUEUES {
        return Err(too_many_paused().into());
    }
    let st = tx.prepare_cached(PAUSE).await.map_err(engine)?;
    let n = tx
        .execute(&st, &[&kind, &q.name, &at])
        .await
        .map_err(engine)?;
    tx.commit().await.map_err(engine)?;
    Ok(n > 0)
}

pub(crate) async fn resume(c: &Object, q: &Queue) -> Result<bool, StoreError> {
    let st = c.prepare_cached(RESUME).await.map_err(engine)?;
    let n = c
        .execute(&st, &[&q.kind.as_str(), &q.name])
        .await
        .map_err(engine)?;
    Ok(n > 0)
}

pub(crate) async fn list(c: &Object) -> Result<Vec<PausedQueue>, StoreError> {
    let st = c.prepare_cached(LIST).await.map_err(engine)?;
    let rows = c.query(&st, &[]).await.map_err(engine)?;
    all(&rows, |r| paused_queue(r))
}
