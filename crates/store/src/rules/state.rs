//! What `cancel`, `retry` and `complete` do to a job, from its state: the state machine of
//! the [crate docs](crate), as decisions an engine then writes.

use serde_json::Value;

use crate::{CancelResult, JobState, Millis, StoreError, StoredError, Transition};

/// What a `cancel` does to a job in `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// It waits (`scheduled`, `queued`, `failed`, `waiting`): make it `cancelled` now.
    Now,
    /// It runs: set `cancel_requested`; the node holding it kills it and completes it.
    Request,
    /// It is over: change nothing.
    AlreadyDone(JobState),
}

impl Cancel {
    /// The decision for a job in `state`.
    pub fn of(state: JobState) -> Self {
        match state {
            JobState::Scheduled | JobState::Queued | JobState::Failed | JobState::Waiting => {
                Self::Now
            }
            JobState::Running => Self::Request,
            JobState::Succeeded | JobState::Dead | JobState::Cancelled => Self::AlreadyDone(state),
        }
    }

    /// What `cancel` answers.
    pub fn result(self) -> CancelResult {
        match self {
            Self::Now => CancelResult::Cancelled,
            Self::Request => CancelResult::Requested,
            Self::AlreadyDone(state) => CancelResult::AlreadyDone(state),
        }
    }
}

/// Checks that a job in `state` that has had `attempts` attempts can be retried: only `dead`
/// and `cancelled` jobs can, and only while they have had fewer than
/// [`MAX_ATTEMPTS_PER_JOB`](crate::limits::MAX_ATTEMPTS_PER_JOB) attempts (the retry's round is
/// cut to fit: the engines' statements take the same bound).
///
/// # Errors
///
/// [`StoreError::Conflict`] naming the state, or the bound.
pub fn check_retry(state: JobState, attempts: u32) -> Result<(), StoreError> {
    use crate::limits::MAX_ATTEMPTS_PER_JOB;
    match state {
        JobState::Dead | JobState::Cancelled if attempts >= MAX_ATTEMPTS_PER_JOB => {
            Err(StoreError::Conflict(format!(
                "this job has had {attempts} attempts, the most one job may have \
                 ({MAX_ATTEMPTS_PER_JOB}); submit it again as a new job"
            )))
        }
        JobState::Dead | JobState::Cancelled => Ok(()),
        other => Err(StoreError::Conflict(format!(
            "only a dead or cancelled job can be retried; this one is {}",
            other.as_str()
        ))),
    }
}

/// What a completion writes to its job (the engine's statement also lets a cancel asked while
/// the job ran win over a retry, and keeps the earlier error when the transition brings none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ending<'a> {
    /// The state the transition asks for.
    pub state: JobState,
    /// When to retry (`Retry` only).
    pub retry_at: Option<Millis>,
    /// The result (`Succeeded` only).
    pub result: Option<&'a Value>,
    /// The error (`Retry`, `Dead`): also the error of the attempt.
    pub error: Option<&'a StoredError>,
    /// Whether the attempt is not counted (`HandBack`: the job's attempt goes back by one, so
    /// its next claim runs the same number again).
    pub uncounted: bool,
}

impl<'a> Ending<'a> {
    /// The ending a transition asks for.
    pub fn of(then: &'a Transition) -> Self {
        let (state, retry_at, result, error) = match then {
            Transition::Succeeded { result } => (JobState::Succeeded, None, Some(result), None),
            Transition::Retry { error, run_at } => {
                (JobState::Failed, Some(*run_at), None, Some(error))
            }
            Transition::Dead { error } => (JobState::Dead, None, None, Some(error)),
            Transition::Cancelled => (JobState::Cancelled, None, None, None),
            Transition::HandBack => (JobState::Queued, None, None, None),
        };
        Self {
            state,
            retry_at,
            result,
            error,
            uncounted: matches!(then, Transition::HandBack),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_and_retry_follow_the_state_machine() {
        for state in JobState::ALL {
            let cancel = Cancel::of(state);
            assert_eq!(
                matches!(cancel, Cancel::AlreadyDone(_)),
                state.is_terminal(),
                "{state:?}"
            );
            assert_eq!(cancel == Cancel::Request, state == JobState::Running);
            assert_eq!(
                check_retry(state, 3).is_ok(),
                matches!(state, JobState::Dead | JobState::Cancelled)
            );
            assert!(check_retry(state, crate::limits::MAX_ATTEMPTS_PER_JOB).is_err());
        }
        assert!(check_retry(JobState::Dead, crate::limits::MAX_ATTEMPTS_PER_JOB - 1).is_ok());
        let e = check_retry(JobState::Running, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conflict: only a dead or cancelled job can be retried; this one is running"
        );
        let e = check_retry(JobState::Dead, 1000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conflict: this job has had 1000 attempts, the most one job may have (1000); \
             submit it again as a new job"
        );
    }

    #[test]
    fn endings_carry_only_what_their_transition_has() {
        let error = StoredError {
            name: "Error".into(),
            message: "boom".into(),
            stack: None,
            retry: true,
        };
        let retry = Transition::Retry {
            error: error.clone(),
            run_at: 7,
        };
        assert_eq!(
            Ending::of(&retry),
            Ending {
                state: JobState::Failed,
                retry_at: Some(7),
                result: None,
                error: Some(&error),
                uncounted: false,
            }
        );
        let ok = Transition::Succeeded {
            result: Value::Bool(true),
        };
        let e = Ending::of(&ok);
        assert_eq!(
            (e.state, e.result, e.error),
            (JobState::Succeeded, Some(&Value::Bool(true)), None)
        );
        assert_eq!(
            Ending::of(&Transition::Cancelled).state,
            JobState::Cancelled
        );
        let back = Ending::of(&Transition::HandBack);
        assert_eq!((back.state, back.uncounted), (JobState::Queued, true));
    }
}
