//! The leases: `claim` (promote due jobs, then pick per pool with `FOR UPDATE SKIP LOCKED`),
//! `renew`, and `recover` (jobs whose lease ended, or of a restarted node, back to the queue).

use std::collections::HashSet;
use std::time::Duration;

use deadpool_postgres::Object;
use offload_store::rules::rows::{claimed, Row};
use offload_store::rules::values::ms;
use offload_store::{Claimed, Demand, JobId, JobState, StoreError};
use tokio_postgres::types::ToSql;

use super::{all, job_notice, throttle, Cols};
use crate::engine;
use offload_store::rules::throttle::Gate;
use offload_store::Notice;

const PROMOTE_DUE: &str = include_str!("../sql/claim/promote_due.sql");
const CLAIM: &str = include_str!("../sql/claim/claim.sql");
const RENEW: &str = include_str!("../sql/claim/renew.sql");
const RECOVER: &str = include_str!("../sql/claim/recover.sql");
const COMPACT_COUNTS: &str = include_str!("../sql/claim/compact_counts.sql");
const LIMITED: &str = include_str!("../sql/throttle/limited.sql");
const PICK_LIMITED: &str = include_str!("../sql/claim/pick_limited.sql");
const CLAIM_IDS: &str = include_str!("../sql/claim/claim_ids.sql");

/// Claims: promotes due jobs, asks whether limits exist, then picks per pool
/// (`offload_claim`, `FOR UPDATE SKIP LOCKED`, which claims nothing while limits exist). The
/// three statements are pipelined (one round trip). With limits, the limited claim follows in a
/// transaction of its own. Returns the claimed jobs and the pools that got newly due jobs.
pub(crate) async fn claim(
    c: &mut Object,
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
    let limited = c.prepare_cached(LIMITED).await.map_err(engine)?;
    let claim = c.prepare_cached(CLAIM).await.map_err(engine)?;
    let args: [&(dyn ToSql + Sync); 4] = [&node, &pools, &ns, &lease_ms];
    let (promoted, limited, rows) = tokio::try_join!(
        c.query(&promote, &[]),
        c.query_one(&limited, &[]),
        c.query(&claim, &args)
    )
    .map_err(engine)?;
    let promoted = all(&promoted, |r| r.text("pool"))?;
    let mut out = all(&rows, |r| claimed(r))?;
    // `offload_claim` saw no limit (it claimed, or found nothing): its answer stands.
    if out.is_empty() && Cols(&limited).flag("limited")? {
        out = claim_limited(c, node, demand, lease_ms).await?;
    }
    Ok((out, promoted))
}

/// The claim when limits exist, in one transaction: locks every limit row (so one node at a
/// time takes from the buckets and counts running jobs), then per pool picks in claim order
/// past the job names their limit closed and lets the [`Gate`] keep what may start, again
/// until it refuses none; writes back the buckets.
async fn claim_limited(
    c: &mut Object,
    node: &str,
    demand: &[Demand],
    lease_ms: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let tx = c.transaction().await.map_err(engine)?;
    let mut gate = Gate::new(throttle::lock(&tx).await?);
    let pick = tx.prepare_cached(PICK_LIMITED).await.map_err(engine)?;
    let claim_ids = tx.prepare_cached(CLAIM_IDS).await.map_err(engine)?;
    let mut out = Vec::new();
    for d in demand {
        let mut want = gate.pool_allowance(&d.pool, d.n);
        while want > 0 {
            let closed = gate.closed_jobs();
            let n = i64::try_from(want).unwrap_or(i64::MAX);
            let rows = tx
                .query(&pick, &[&d.pool, &closed, &n])
                .await
                .map_err(engine)?;
            let candidates = all(&rows, |r| Ok((r.id("id")?, r.text("job")?)))?;
            let (kept, refused) = gate.sift(&d.pool, candidates);
            if !kept.is_empty() {
                let rows = tx
                    .query(&claim_ids, &[&kept, &node, &lease_ms])
                    .await
                    .map_err(engine)?;
                let got = all(&rows, |r| claimed(r))?;
                want = want.saturating_sub(got.len());
                out.extend(got);
            }
            if !refused {
                break;
            }
        }
    }
    throttle::save(&tx, &gate).await?;
    tx.commit().await.map_err(engine)?;
    Ok(out)
}

pub(crate) async fn renew(
    c: &Object,
    node: &str,
    ids: &[JobId],
    lease: Duration,
) -> Result<Vec<JobId>, StoreError> {
    let st = c.prepare_cached(RENEW).await.map_err(engine)?;
    let rows = c
        .query(&st, &[&ids, &node, &ms(lease)])
        .await
        .map_err(engine)?;
    let held: HashSet<JobId> = all(&rows, |r| r.id("id"))?.into_iter().collect();
    Ok(ids
        .iter()
        .copied()
        .filter(|id| !held.contains(id))
        .collect())
}

pub(crate) async fn recover(c: &Object, node: Option<&str>) -> Result<Vec<Notice>, StoreError> {
    let st = c.prepare_cached(RECOVER).await.map_err(engine)?;
    let rows = c.query(&st, &[&node]).await.map_err(engine)?;
    if node.is_none() {
        // The periodic call of every node: also fold the count deltas (one node at a time).
        let st = c.prepare_cached(COMPACT_COUNTS).await.map_err(engine)?;
        c.execute(&st, &[]).await.map_err(engine)?;
    }
    let mut notices = Vec::with_capacity(rows.len() + 1);
    let mut due: Vec<String> = Vec::new();
    for n in all(&rows, job_notice)? {
        if n.state == JobState::Queued && !due.contains(&n.pool) {
            due.push(n.pool.clone());
        }
        notices.push(Notice::Job(n));
    }
    notices.extend(due.into_iter().map(|pool| Notice::Due { pool }));
    Ok(notices)
}
