//! Deleting one job, and retrying or deleting many by a filter: what an operator does to
//! finished jobs (the dashboard's "retry all matching").
//!
//! A bulk call acts on at most [`MAX_BULK`] jobs (oldest first, by id) in one transaction: all
//! of them or none. Its answer says how many it changed and whether more match (call again).

use serde::{Deserialize, Serialize};

use crate::limits::LimitError;
use crate::{JobState, Millis, StoreError};

/// The most jobs one bulk call acts on.
pub const MAX_BULK: usize = 10_000;

/// What a bulk call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// `dead` or `cancelled` jobs back to `queued` with a fresh round of attempts (as `retry`).
    Retry,
    /// Finished jobs (`succeeded`, `dead`, `cancelled`) deleted with their attempts.
    Delete,
}

impl BulkAction {
    /// The states this action takes.
    pub fn allowed(self) -> &'static [JobState] {
        match self {
            Self::Retry => &[JobState::Dead, JobState::Cancelled],
            Self::Delete => &[JobState::Succeeded, JobState::Dead, JobState::Cancelled],
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::Delete => "delete",
        }
    }
}

/// Which jobs a bulk call takes: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    /// One of these states (at least one; each allowed by the action).
    pub states: Vec<JobState>,
    /// Only this job name.
    pub job: Option<String>,
    /// Only this pool.
    pub pool: Option<String>,
    /// Submitted at or after this time.
    pub since: Option<Millis>,
    /// Submitted before this time.
    pub until: Option<Millis>,
}

impl JobFilter {
    /// Checks the filter for `action`, and `limit` (1..=[`MAX_BULK`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for no state or a state the action does not take;
    /// [`StoreError::Limit`] for `limit` out of range. (`since` after `until` matches none.)
    pub fn check(&self, action: BulkAction, limit: usize) -> Result<(), StoreError> {
        if limit == 0 || limit > MAX_BULK {
            return Err(LimitError::new("limit", limit, format!("1..={MAX_BULK}")).into());
        }
        let allowed = action.allowed();
        let names = || {
            allowed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.states.is_empty() {
            return Err(StoreError::Invalid(format!(
                "a bulk {} needs the states to act on: one or more of {}",
                action.as_str(),
                names()
            )));
        }
        if let Some(bad) = self.states.iter().find(|s| !allowed.contains(s)) {
            return Err(StoreError::Invalid(format!(
                "a bulk {} takes jobs that are {}, not {}",
                action.as_str(),
                names(),
                bad.as_str()
            )));
        }
        Ok(())
    }

    /// The states as their names.
    pub fn state_names(&self) -> Vec<&'static str> {
        self.states.iter().map(|s| s.as_str()).collect()
    }
}

/// What a bulk call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkOutcome {
    /// Jobs changed.
    pub affected: u64,
    /// More jobs match the filter (the call stopped at its limit).
    pub more: bool,
}

/// The refusal to delete a running job.
pub fn running_refusal() -> StoreError {
    StoreError::Conflict(
        "the job is running: cancel it first (its attempt ends), then delete it".into(),
    )
}
