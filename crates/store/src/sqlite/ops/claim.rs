//! The leases: `claim` (promote due jobs, then pick per pool in claim order), `renew`, and
//! `recover` (jobs whose lease ended, or of a restarted node, back to the queue).

use std::time::Duration;

use rusqlite::{params, Connection};

use super::super::counts::Deltas;
use super::super::engine;
use super::complete::{end_attempt, AttemptEnd};
use super::{all, id_text, throttle};
use crate::rules::rows::{claimed, Row};
use crate::rules::throttle::Gate;
use crate::rules::values::ms;
use crate::{Claimed, Demand, JobId, JobState, Millis, StoreError};

/// Due `scheduled`/`failed` jobs per pool and state (index `jobs_due`).
pub(crate) const COUNT_DUE: &str = include_str!("../sql/claim/count_due.sql");
/// Makes them `queued` (index `jobs_due`).
pub(crate) const PROMOTE_DUE: &str = include_str!("../sql/claim/promote_due.sql");
/// Claims the next queued jobs of a pool in claim order (index `jobs_claim`, no sort).
pub(crate) const CLAIM: &str = include_str!("../sql/claim/claim.sql");
/// Running jobs whose lease ended, or of a node (index `jobs_state`).
pub(crate) const PICK_LOST: &str = include_str!("../sql/claim/pick_lost.sql");
/// The next queued jobs of a pool, skipping closed job names (a limited claim).
const PICK_LIMITED: &str = include_str!("../sql/claim/pick_limited.sql");
/// Claims one picked job (a limited claim).
const CLAIM_ONE: &str = include_str!("../sql/claim/claim_one.sql");
const START_ATTEMPT: &str = include_str!("../sql/claim/start_attempt.sql");
const RENEW: &str = include_str!("../sql/claim/renew.sql");
const REQUEUE: &str = include_str!("../sql/claim/requeue.sql");

fn promote_due(c: &Connection, deltas: &mut Deltas, now: Millis) -> Result<(), StoreError> {
    let mut s = c.prepare_cached(COUNT_DUE).map_err(engine)?;
    let due = all(&mut s, [now], |r| {
        Ok((r.text("pool")?, r.state("state")?, r.int("n")?))
    })?;
    if due.is_empty() {
        return Ok(());
    }
    for (pool, state, n) in &due {
        deltas.add(pool, *state, -n);
        deltas.add(pool, JobState::Queued, *n);
    }
    c.prepare_cached(PROMOTE_DUE)
        .and_then(|mut s| s.execute([now]))
        .map_err(engine)?;
    Ok(())
}

pub(in crate::sqlite) fn claim(
    c: &Connection,
    deltas: &mut Deltas,
    node: &str,
    demand: &[Demand],
    lease: Duration,
    now: Millis,
) -> Result<Vec<Claimed>, StoreError> {
    promote_due(c, deltas, now)?;
    let lease_until = now.saturating_add(ms(lease));
    let buckets = throttle::buckets(c, now)?;
    if !buckets.is_empty() {
        let mut gate = Gate::new(buckets);
        let out = claim_limited(c, deltas, &mut gate, node, demand, lease_until, now)?;
        throttle::save(c, &gate)?;
        return Ok(out);
    }
    let mut out = Vec::new();
    for d in demand {
        if d.n == 0 {
            continue;
        }
        let mut s = c.prepare_cached(CLAIM).map_err(engine)?;
        let n = i64::try_from(d.n).unwrap_or(i64::MAX);
        let picked = all(&mut s, params![d.pool, n, node, lease_until, now], |r| {
            Ok((r.int32("priority")?, r.text("id")?, claimed(r)?))
        })?;
        start(c, deltas, node, now, picked, &mut out)?;
    }
    Ok(out)
}

/// Records the attempts of `picked` (in claim order) and moves them to `out`.
fn start(
    c: &Connection,
    deltas: &mut Deltas,
    node: &str,
    now: Millis,
    mut picked: Vec<(i32, String, Claimed)>,
    out: &mut Vec<Claimed>,
) -> Result<(), StoreError> {
    // RETURNING comes in no particular order: put them back in claim order.
    picked.sort_by(|(pa, ia, a), (pb, ib, b)| {
        pb.cmp(pa).then(a.run_at.cmp(&b.run_at)).then(ia.cmp(ib))
    });
    let mut insert = c.prepare_cached(START_ATTEMPT).map_err(engine)?;
    for (_, id, claimed) in picked {
        insert
            .execute(params![id, claimed.attempt, node, now])
            .map_err(engine)?;
        deltas.moved(&claimed.pool, JobState::Queued, JobState::Running);
        out.push(claimed);
    }
    Ok(())
}

/// The claim when limits exist: per pool, picks in claim order past the job names their limit
/// closed, lets the [`Gate`] keep what may start, again until it refuses none.
fn claim_limited(
    c: &Connection,
    deltas: &mut Deltas,
    gate: &mut Gate,
    node: &str,
    demand: &[Demand],
    lease_until: Millis,
    now: Millis,
) -> Result<Vec<Claimed>, StoreError> {
    let mut out = Vec::new();
    for d in demand {
        let mut want = gate.pool_allowance(&d.pool, d.n);
        while want > 0 {
            let closed = serde_json::to_string(&gate.closed_jobs())
                .map_err(|e| StoreError::Engine(e.to_string()))?;
            let n = i64::try_from(want).unwrap_or(i64::MAX);
            let candidates = {
                let mut s = c.prepare_cached(PICK_LIMITED).map_err(engine)?;
                all(&mut s, params![d.pool, closed, n], |r| {
                    Ok((r.text("id")?, r.text("job")?))
                })?
            };
            let (kept, refused) = gate.sift(&d.pool, candidates);
            let mut picked = Vec::with_capacity(kept.len());
            let mut one = c.prepare_cached(CLAIM_ONE).map_err(engine)?;
            for id in kept {
                let rows = all(&mut one, params![id, node, lease_until, now], |r| {
                    Ok((r.int32("priority")?, r.text("id")?, claimed(r)?))
                })?;
                picked.extend(rows);
            }
            want = want.saturating_sub(picked.len());
            start(c, deltas, node, now, picked, &mut out)?;
            if !refused {
                break;
            }
        }
    }
    Ok(out)
}

pub(in crate::sqlite) fn renew(
    c: &Connection,
    node: &str,
    ids: &[JobId],
    lease: Duration,
    now: Millis,
) -> Result<Vec<JobId>, StoreError> {
    let lease_until = now.saturating_add(ms(lease));
    let mut s = c.prepare_cached(RENEW).map_err(engine)?;
    let mut lost = Vec::new();
    for &id in ids {
        if s.execute(params![id_text(id), node, lease_until])
            .map_err(engine)?
            == 0
        {
            lost.push(id);
        }
    }
    Ok(lost)
}

/// A running job whose node is gone.
struct Lost {
    id: String,
    attempt: i64,
    node: Option<String>,
    pool: String,
    cancel_requested: bool,
}

pub(in crate::sqlite) fn recover(
    c: &Connection,
    deltas: &mut Deltas,
    node: Option<&str>,
    now: Millis,
) -> Result<u64, StoreError> {
    let lost = {
        let mut s = c.prepare_cached(PICK_LOST).map_err(engine)?;
        all(&mut s, params![now, node], |r| {
            Ok(Lost {
                id: r.text("id")?,
                attempt: r.int("attempt")?,
                node: r.opt_text("node")?,
                pool: r.text("pool")?,
                cancel_requested: r.flag("cancel_requested")?,
            })
        })?
    };
    for job in &lost {
        end_attempt(
            c,
            &job.id,
            job.attempt,
            &AttemptEnd {
                node: job.node.as_deref(),
                pid: None,
                started_at: None,
                ended_at: now,
                outcome: "lease_expired",
                error: None,
            },
        )?;
        // A job whose cancel was asked is not run again: its node is gone, so is the run.
        let to = if job.cancel_requested {
            JobState::Cancelled
        } else {
            JobState::Queued
        };
        c.prepare_cached(REQUEUE)
            .and_then(|mut s| s.execute(params![job.id, to.as_str(), now]))
            .map_err(engine)?;
        deltas.moved(&job.pool, JobState::Running, to);
    }
    Ok(lost.len() as u64)
}
