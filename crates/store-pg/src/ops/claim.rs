//! The leases: `claim` (promote due jobs, then pick per pool with `FOR UPDATE SKIP LOCKED`),
//! `renew`, and `recover` (jobs whose lease ended, or of a restarted node, back to the queue).

use std::collections::HashSet;
use std::time::Duration;

use deadpool_postgres::Object;
use offload_store::rules::rows::{claimed, Row};
use offload_store::rules::values::ms;
use offload_store::{Claimed, Demand, JobId, JobState, StoreError};
use tokio_postgres::types::ToSql;

use super::{all, job_notice};
use crate::engine;
use offload_store::Notice;

const PROMOTE_DUE: &str = include_str!("../sql/claim/promote_due.sql");
const CLAIM: &str = include_str!("../sql/claim/claim.sql");
const RENEW: &str = include_str!("../sql/claim/renew.sql");
const RECOVER: &str = include_str!("../sql/claim/recover.sql");
const COMPACT_COUNTS: &str = include_str!("../sql/claim/compact_counts.sql");

/// Claims: promotes due jobs, then picks per pool (`offload_claim`, `FOR UPDATE SKIP LOCKED`).
/// The two statements are pipelined (one round trip). Returns the claimed jobs and the pools
/// that got newly due jobs.
pub(crate) async fn claim(
    c: &Object,
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
    let claim = c.prepare_cached(CLAIM).await.map_err(engine)?;
    let args: [&(dyn ToSql + Sync); 4] = [&node, &pools, &ns, &lease_ms];
    let (promoted, rows) =
        tokio::try_join!(c.query(&promote, &[]), c.query(&claim, &args)).map_err(engine)?;
    let out = all(&rows, |r| claimed(r))?;
    let promoted = all(&promoted, |r| r.text("pool"))?;
    Ok((out, promoted))
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
