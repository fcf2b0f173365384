//! Rate and concurrency limits: `set_limits`, `limits`, and the limited claim's buckets (read
//! locked, written back in the claim's transaction; the decisions are
//! [`offload_store::rules::throttle`]'s).

use std::collections::HashMap;

use deadpool_postgres::{Object, Transaction};
use offload_store::rules::rows::Row;
use offload_store::rules::throttle::{full, stored, Bucket, Gate};
use offload_store::rules::values::to_i64;
use offload_store::throttle::{check_all, Throttle, ThrottleState};
use offload_store::{QueueKind, StoreError};

use super::all;
use crate::engine;

const LOCK: &str = include_str!("../sql/throttle/lock.sql");
const LIST: &str = include_str!("../sql/throttle/list.sql");
const RUNNING: &str = include_str!("../sql/throttle/running.sql");
const QUEUED: &str = include_str!("../sql/throttle/queued.sql");
const PUT: &str = include_str!("../sql/throttle/put.sql");
const DELETE: &str = include_str!("../sql/throttle/delete.sql");
const LOCK_TABLE: &str = include_str!("../sql/throttle/lock_table.sql");
const SAVE: &str = include_str!("../sql/throttle/save.sql");

type Counted = HashMap<(QueueKind, String), u64>;

fn counted(rows: &[tokio_postgres::Row]) -> Result<Counted, StoreError> {
    let pairs = all(rows, |r| {
        let kind = r.text("kind")?;
        let kind = QueueKind::parse(&kind)
            .ok_or_else(|| StoreError::Engine(format!("unknown queue kind {kind:?}")))?;
        Ok(((kind, r.text("name")?), r.int("n")?.unsigned_abs()))
    })?;
    Ok(pairs.into_iter().collect())
}

fn buckets(limits: &[tokio_postgres::Row], running: &Counted) -> Result<Vec<Bucket>, StoreError> {
    all(limits, |r| {
        let (t, micro, at) = stored(r)?;
        let now = r.int("now")?;
        let n = running
            .get(&(t.queue.kind, t.queue.name.clone()))
            .copied()
            .unwrap_or(0);
        Ok(Bucket::at(t, micro, at, n, now))
    })
}

/// Every limit's bucket, locked and refilled to the database's now, with its running jobs.
pub(crate) async fn lock(tx: &Transaction<'_>) -> Result<Vec<Bucket>, StoreError> {
    let st = tx.prepare_cached(LOCK).await.map_err(engine)?;
    let limits = tx.query(&st, &[]).await.map_err(engine)?;
    if limits.is_empty() {
        return Ok(Vec::new());
    }
    let st = tx.prepare_cached(RUNNING).await.map_err(engine)?;
    let running = counted(&tx.query(&st, &[]).await.map_err(engine)?)?;
    buckets(&limits, &running)
}

/// Writes back the buckets of a claim.
pub(crate) async fn save(tx: &Transaction<'_>, gate: &Gate) -> Result<(), StoreError> {
    let (mut kinds, mut names, mut tokens, mut at) = (vec![], vec![], vec![], vec![]);
    for b in gate
        .buckets()
        .into_iter()
        .filter(|b| b.throttle.rate.is_some())
    {
        kinds.push(b.throttle.queue.kind.as_str());
        names.push(b.throttle.queue.name.as_str());
        tokens.push(b.micro);
        at.push(b.refilled_at);
    }
    if kinds.is_empty() {
        return Ok(());
    }
    let st = tx.prepare_cached(SAVE).await.map_err(engine)?;
    tx.execute(&st, &[&kinds, &names, &tokens, &at])
        .await
        .map_err(engine)?;
    Ok(())
}

pub(crate) async fn set(c: &mut Object, limits: &[Throttle]) -> Result<(), StoreError> {
    check_all(limits)?;
    let tx = c.transaction().await.map_err(engine)?;
    tx.batch_execute(LOCK_TABLE).await.map_err(engine)?;
    let kinds: Vec<&str> = limits.iter().map(|l| l.queue.kind.as_str()).collect();
    let names: Vec<&str> = limits.iter().map(|l| l.queue.name.as_str()).collect();
    let st = tx.prepare_cached(DELETE).await.map_err(engine)?;
    tx.execute(&st, &[&kinds, &names]).await.map_err(engine)?;
    let st = tx.prepare_cached(PUT).await.map_err(engine)?;
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
        let tokens = l.rate.map_or(0, full);
        tx.execute(
            &st,
            &[
                &l.queue.kind.as_str(),
                &l.queue.name,
                &limit,
                &period,
                &max_running,
                &tokens,
            ],
        )
        .await
        .map_err(engine)?;
    }
    tx.commit().await.map_err(engine)?;
    Ok(())
}

pub(crate) async fn list(c: &Object) -> Result<Vec<ThrottleState>, StoreError> {
    let list = c.prepare_cached(LIST).await.map_err(engine)?;
    let running = c.prepare_cached(RUNNING).await.map_err(engine)?;
    let queued = c.prepare_cached(QUEUED).await.map_err(engine)?;
    let (limits, running, queued) = tokio::try_join!(
        c.query(&list, &[]),
        c.query(&running, &[]),
        c.query(&queued, &[])
    )
    .map_err(engine)?;
    let (running, queued) = (counted(&running)?, counted(&queued)?);
    let mut out: Vec<ThrottleState> = buckets(&limits, &running)?
        .into_iter()
        .map(|b| {
            let q = &b.throttle.queue;
            let n = queued.get(&(q.kind, q.name.clone())).copied().unwrap_or(0);
            b.state(n)
        })
        .collect();
    out.sort_by(|a, b| a.throttle.queue.cmp(&b.throttle.queue));
    Ok(out)
}
