//! Job dependencies (`after`): a job submitted with `after: [id, …]` is `waiting` until every
//! job it names is over, then runs; if one of them ends `dead` or `cancelled` (or is deleted
//! before it ended), the dependent is `cancelled` with a `DependencyFailed` error naming it,
//! unless its [`AfterPolicy`] is `Always` (then it runs once they are all over, whatever
//! their ends).
//!
//! # How the engines keep it
//!
//! - The dependent's row keeps the ids it named (`after_ids`, for its view), its policy and
//!   `waiting_on`, how many of them are not over yet; it is in state `waiting`, in no claim or
//!   due index, so nothing looks at it until it is released.
//! - One row per unfinished edge (`job_deps (dep_id, job_id)`, keyed by the dependency first),
//!   and a flag on the dependency (`has_dependents`), so a job without dependents costs
//!   nothing when it ends.
//! - A trigger of each engine's `jobs` table (schema v9) releases the dependents of a job with
//!   the flag when it ends (or is deleted unfinished): the edges are found by the index, each
//!   dependent's `waiting_on` drops by one in one statement (it becomes `queued`, or
//!   `scheduled` until its `run_at`, at 0), or it is cancelled, which cascades to its own
//!   dependents the same way. Every path to an end (a completion, a cancel, a lost lease, a
//!   delete) goes through it, in the transaction that ends the job. Since schema v11 a cascade
//!   is walked level by level (PostgreSQL: a loop in the trigger's function; SQLite: the
//!   `job_cascade` table, emptied by the writer after every call), never by a trigger firing
//!   itself: a chain of any length ends in that transaction (triggers nested one level per
//!   link failed the completion past about 1,000 links).
//! - At submit, each named job still running or waiting gets its flag set by an `UPDATE` of
//!   its row (on PostgreSQL: a row lock, so a dependency that ends at the same time on
//!   another node either ends first, and the submit sees it over, or waits for the submit, and
//!   its trigger sees the new edge).
//!
//! Cycles are impossible by construction: `after` names existing jobs or earlier items of the
//! same batch ([`After::Item`]), never the job itself or a later one. A job is purged only
//! once it is over, when its dependents were already released or cancelled; an `after` naming
//! a purged (or never existing) job is refused like any unknown id.

use serde::{Deserialize, Serialize};

use crate::limits::LimitError;
pub use crate::limits::{check_after_len as check_len, MAX_AFTER};
use crate::{JobId, JobState, StoredError};

/// One job a new job runs after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum After {
    /// An existing job.
    Job(JobId),
    /// An earlier item of the same batch, by its 0-based index (the job it made, or the first
    /// job it found as a duplicate).
    Item(usize),
}

/// What a dependent does when a job it runs after ends `dead` or `cancelled`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterPolicy {
    /// It runs only if every job it runs after succeeded; else it is cancelled.
    #[default]
    Succeeded,
    /// It runs once every job it runs after is over, whatever their ends.
    Always,
}

impl AfterPolicy {
    /// Its name, as stored and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Always => "always",
        }
    }

    /// The policy stored as `s` (`NULL` or anything else reads as the default).
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("always") => Self::Always,
            _ => Self::Succeeded,
        }
    }
}

/// The error field's name in refusals.
const FIELD: &str = "after";

/// The ids item `index` of a batch runs after, each once, in the order given: an
/// [`After::Item`] is the id `earlier[k]` answered.
///
/// # Errors
///
/// [`LimitError`] naming `after` for more than [`MAX_AFTER`] entries or an item that is not
/// earlier in the batch.
pub fn resolve(after: &[After], index: usize, earlier: &[JobId]) -> Result<Vec<JobId>, LimitError> {
    check_len(after.len())?;
    let mut ids = Vec::with_capacity(after.len());
    for a in after {
        let id = match *a {
            After::Job(id) => id,
            After::Item(k) => *earlier.get(k).filter(|_| k < index).ok_or_else(|| {
                let earlier = match index {
                    0 => "an earlier item of a batch (this is a single submit or a batch's \
                          first item: none is earlier)"
                        .to_owned(),
                    1 => "an earlier item of the batch (this is item 1: #0)".to_owned(),
                    _ => format!(
                        "an earlier item of the batch (this is item {index}: #0..#{})",
                        index - 1
                    ),
                };
                LimitError::new(FIELD, format!("#{k}"), earlier)
            })?,
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The refusal of an `after` id that names no job (never submitted, deleted or purged).
pub fn unknown(id: JobId) -> LimitError {
    LimitError::new(
        FIELD,
        id,
        "the id of an existing job (this one is unknown, deleted or purged)",
    )
}

/// Where a new job stands once the states of the jobs it runs after are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// None of them is unfinished: it starts as any job does.
    Free,
    /// It waits for these (the unfinished ones).
    Wait(Vec<JobId>),
    /// One ended dead or cancelled (and its policy is not `Always`): it is cancelled at once.
    Cancelled(StoredError),
}

/// Decides how a job with `policy` starts, from the ids it runs after and their states now.
pub fn start(policy: AfterPolicy, deps: &[(JobId, JobState)]) -> Start {
    if policy == AfterPolicy::Succeeded {
        if let Some((id, state)) = deps
            .iter()
            .find(|(_, s)| matches!(s, JobState::Dead | JobState::Cancelled))
        {
            return Start::Cancelled(failed(*id, state.as_str()));
        }
    }
    let open: Vec<JobId> = deps
        .iter()
        .filter(|(_, s)| !s.is_terminal())
        .map(|(id, _)| *id)
        .collect();
    if open.is_empty() {
        Start::Free
    } else {
        Start::Wait(open)
    }
}

/// The error of a dependent cancelled because `dep` ended `how` (`dead`, `cancelled`,
/// `deleted`); the engines' triggers write the same shape.
pub fn failed(dep: JobId, how: &str) -> StoredError {
    StoredError {
        name: "DependencyFailed".into(),
        message: format!("job {dep} it runs after ended {how}"),
        stack: None,
        retry: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> JobId {
        JobId::from_u128(n)
    }

    #[test]
    fn items_resolve_only_to_earlier_ones_and_each_id_once() {
        let earlier = [id(1), id(2)];
        let got = resolve(
            &[
                After::Item(1),
                After::Job(id(9)),
                After::Item(0),
                After::Item(1),
            ],
            2,
            &earlier,
        )
        .unwrap();
        assert_eq!(got, vec![id(2), id(9), id(1)]);
        let e = resolve(&[After::Item(1)], 1, &earlier).unwrap_err();
        assert_eq!(e.field, "after");
        assert!(e.to_string().contains("#1"), "{e}");
        assert!(resolve(&[After::Item(0)], 0, &[]).is_err());
        let many = vec![After::Job(id(1)); MAX_AFTER + 1];
        assert_eq!(resolve(&many, 0, &[]).unwrap_err().field, "after");
        assert!(resolve(&many[..MAX_AFTER], 0, &[]).is_ok());
    }

    #[test]
    fn a_failed_dependency_cancels_unless_always() {
        let deps = [(id(1), JobState::Succeeded), (id(2), JobState::Dead)];
        match start(AfterPolicy::Succeeded, &deps) {
            Start::Cancelled(e) => {
                assert_eq!(e.name, "DependencyFailed");
                assert!(e.message.contains(&id(2).to_string()), "{}", e.message);
                assert!(e.message.ends_with("dead"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(start(AfterPolicy::Always, &deps), Start::Free);
        let deps = [(id(1), JobState::Running), (id(2), JobState::Succeeded)];
        assert_eq!(
            start(AfterPolicy::Succeeded, &deps),
            Start::Wait(vec![id(1)])
        );
        assert_eq!(start(AfterPolicy::Succeeded, &[]), Start::Free);
        assert_eq!(AfterPolicy::parse(Some("always")), AfterPolicy::Always);
        assert_eq!(AfterPolicy::parse(None), AfterPolicy::Succeeded);
    }
}
