//! `complete` (one statement for the batch: the end of each attempt and its transition) and
//! `progress`.

use std::collections::HashSet;

use deadpool_postgres::Object;
use offload_store::rules::rows::Row;
use offload_store::rules::state::Ending;
use offload_store::rules::values::error_value;
use offload_store::{Completion, JobId, JobState, StoreError};
use serde_json::Value;

use super::{all, job_notice};
use crate::engine;
use offload_store::Notice;

const COMPLETE: &str = include_str!("../sql/complete/complete.sql");
const PROGRESS: &str = include_str!("../sql/complete/progress.sql");

pub(crate) async fn complete(c: &Object, done: Vec<Completion>) -> Result<Vec<Notice>, StoreError> {
    // A job completed twice in one batch: the first wins, as if applied one after the other.
    let mut seen = HashSet::with_capacity(done.len());
    let mut id = Vec::with_capacity(done.len());
    let mut attempt = Vec::with_capacity(done.len());
    let mut node = Vec::with_capacity(done.len());
    let mut pid: Vec<Option<i64>> = Vec::with_capacity(done.len());
    let mut started_at = Vec::with_capacity(done.len());
    let mut ended_at = Vec::with_capacity(done.len());
    let mut outcome = Vec::with_capacity(done.len());
    let mut next_state = Vec::with_capacity(done.len());
    let mut next_run_at: Vec<Option<i64>> = Vec::with_capacity(done.len());
    let mut result: Vec<Option<Value>> = Vec::with_capacity(done.len());
    let mut error: Vec<Option<Value>> = Vec::with_capacity(done.len());
    let mut uncounted = Vec::with_capacity(done.len());
    for d in done {
        if !seen.insert(d.id) {
            continue;
        }
        let ending = Ending::of(&d.then);
        next_state.push(ending.state.as_str());
        next_run_at.push(ending.retry_at);
        result.push(ending.result.cloned());
        error.push(ending.error.map(error_value));
        uncounted.push(ending.uncounted);
        id.push(d.id);
        attempt.push(i64::from(d.attempt));
        node.push(d.node);
        pid.push(d.pid.map(i64::from));
        started_at.push(d.started_at);
        ended_at.push(d.ended_at);
        outcome.push(d.outcome);
    }
    let st = c.prepare_cached(COMPLETE).await.map_err(engine)?;
    let rows = c
        .query(
            &st,
            &[
                &id,
                &attempt,
                &node,
                &pid,
                &started_at,
                &ended_at,
                &outcome,
                &next_state,
                &next_run_at,
                &result,
                &error,
                &uncounted,
            ],
        )
        .await
        .map_err(engine)?;
    let ended = all(&rows, |r| {
        let woken: Option<Vec<String>> = r.0.try_get("woken").map_err(engine)?;
        Ok((job_notice(r)?, r.flag("due")?, woken.unwrap_or_default()))
    })?;
    let mut notices = Vec::with_capacity(ended.len() + 1);
    let mut due_pools: Vec<String> = Vec::new();
    for (n, due, woken) in ended {
        if (n.state == JobState::Failed && due) || n.state == JobState::Queued {
            due_pools.push(n.pool.clone());
        }
        // Dependents the end released are due on every node, not only at the next poll.
        due_pools.extend(woken);
        notices.push(Notice::Job(n));
    }
    due_pools.sort_unstable();
    due_pools.dedup();
    notices.extend(due_pools.into_iter().map(|pool| Notice::Due { pool }));
    if rows.len() < id.len() {
        tracing::debug!(
            stale = id.len() - rows.len(),
            "stale completions ignored (the job moved on)"
        );
    }
    Ok(notices)
}

pub(crate) async fn progress(c: &Object, updates: Vec<(JobId, Value)>) -> Result<(), StoreError> {
    // Last value wins.
    let mut ids: Vec<JobId> = Vec::with_capacity(updates.len());
    let mut values: Vec<Value> = Vec::with_capacity(updates.len());
    for (id, v) in updates.into_iter().rev() {
        if !ids.contains(&id) {
            ids.push(id);
            values.push(v);
        }
    }
    let st = c.prepare_cached(PROGRESS).await.map_err(engine)?;
    c.execute(&st, &[&ids, &values]).await.map_err(engine)?;
    Ok(())
}
