//! `complete` (the end of an attempt and its transition) and `progress`.

use rusqlite::{params, Connection};
use serde_json::Value;

use super::super::counts::Deltas;
use super::super::engine;
use super::{first, id_text};
use crate::rules::rows::Row;
use crate::rules::state::Ending;
use crate::rules::values::error_value;
use crate::{Completion, JobId, JobState, Millis, StoreError};

const END_JOB: &str = include_str!("../sql/complete/end_job.sql");
const CLOSE_ATTEMPT: &str = include_str!("../sql/complete/close_attempt.sql");
const ADD_ATTEMPT: &str = include_str!("../sql/complete/add_attempt.sql");
const PROGRESS: &str = include_str!("../sql/complete/progress.sql");

/// How an attempt ended, as recorded in `attempts`.
pub(super) struct AttemptEnd<'a> {
    pub(super) node: Option<&'a str>,
    pub(super) pid: Option<u32>,
    pub(super) started_at: Option<Millis>,
    pub(super) ended_at: Millis,
    pub(super) outcome: &'a str,
    pub(super) error: Option<&'a str>,
}

/// Ends the open attempt `attempt` of `job_id` (the latest row with that number), or records it
/// if the row is missing.
pub(super) fn end_attempt(
    c: &Connection,
    job_id: &str,
    attempt: i64,
    end: &AttemptEnd<'_>,
) -> Result<(), StoreError> {
    let updated = c
        .prepare_cached(CLOSE_ATTEMPT)
        .and_then(|mut s| {
            s.execute(params![
                job_id,
                attempt,
                end.pid,
                end.started_at,
                end.ended_at,
                end.outcome,
                end.error
            ])
        })
        .map_err(engine)?;
    if updated == 0 {
        c.prepare_cached(ADD_ATTEMPT)
            .and_then(|mut s| {
                s.execute(params![
                    job_id,
                    attempt,
                    end.node,
                    end.pid,
                    end.started_at.unwrap_or(end.ended_at),
                    end.ended_at,
                    end.outcome,
                    end.error
                ])
            })
            .map_err(engine)?;
    }
    Ok(())
}

pub(in crate::sqlite) fn complete(
    c: &Connection,
    deltas: &mut Deltas,
    done: &[Completion],
    now: Millis,
) -> Result<(), StoreError> {
    for d in done {
        let id = id_text(d.id);
        let ending = Ending::of(&d.then);
        let error = ending.error.map(|e| error_value(e).to_string());
        let result = ending.result.map(Value::to_string);
        let ended = {
            let mut s = c.prepare_cached(END_JOB).map_err(engine)?;
            first(
                &mut s,
                params![
                    id,
                    d.attempt,
                    d.node,
                    ending.state.as_str(),
                    ending.retry_at,
                    result,
                    error,
                    now,
                    ending.uncounted
                ],
                |r| Ok((r.text("pool")?, r.state("state")?)),
            )?
        };
        let Some((pool, new_state)) = ended else {
            tracing::debug!(id = %d.id, attempt = d.attempt, node = %d.node, "stale completion ignored");
            continue;
        };
        deltas.moved(&pool, JobState::Running, new_state);
        end_attempt(
            c,
            &id,
            i64::from(d.attempt),
            &AttemptEnd {
                node: Some(&d.node),
                pid: d.pid,
                started_at: Some(d.started_at),
                ended_at: d.ended_at,
                outcome: &d.outcome,
                error: error.as_deref(),
            },
        )?;
    }
    Ok(())
}

pub(in crate::sqlite) fn progress(
    c: &Connection,
    updates: &[(JobId, Value)],
    now: Millis,
) -> Result<(), StoreError> {
    let mut s = c.prepare_cached(PROGRESS).map_err(engine)?;
    for (id, value) in updates {
        s.execute(params![id_text(*id), value.to_string(), now])
            .map_err(engine)?;
    }
    Ok(())
}
