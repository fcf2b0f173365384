//! The daemon's number rules for jobs: the bounds of `offload_store::limits` (one place for
//! every path: HTTP submit and batch, the line protocol, cron, the store) plus what depends on
//! this daemon's configuration (`max_timeout_ms`) and clock (`delay_ms` / `run_at` at most one
//! year ahead). Every refusal is an [`EngineError::Invalid`] (HTTP 400 `invalid_request`)
//! naming the field and the limit. Times are computed with checked or saturating arithmetic:
//! no wrap, no panic. The configuration's own numbers are checked in `config/numbers.rs`.

use offload_store::limits as bounds;
use offload_store::{Millis, NewJob};

use crate::engine::error::EngineError;

/// Checks a prepared job against the bounds and the configured maximum timeout.
pub(crate) fn check_job(job: &NewJob, max_timeout_ms: u64) -> Result<(), EngineError> {
    Ok(bounds::check_job(job, max_timeout_ms)?)
}

/// A submit's `run_at` from its `delay_ms` or `run_at` (exclusive), at most one year ahead of
/// `now`.
pub(crate) fn run_at(
    delay_ms: Option<u64>,
    run_at: Option<Millis>,
    now: Millis,
) -> Result<Option<Millis>, EngineError> {
    match (delay_ms, run_at) {
        (Some(_), Some(_)) => Err(EngineError::Invalid(
            "give delay_ms or run_at, not both".into(),
        )),
        (Some(d), None) => Ok(Some(bounds::run_at_after(d, now)?)),
        (None, Some(at)) => {
            bounds::check_run_at(at, now)?;
            Ok(Some(at))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_and_run_at_are_bounded_without_wrapping() {
        let now = 1_795_000_000_000;
        let e = run_at(Some(i64::MAX as u64), None, now).unwrap_err();
        let EngineError::Invalid(message) = e else {
            panic!("{e:?} is not Invalid")
        };
        assert!(message.starts_with("delay_ms "), "{message}");
        assert!(message.contains("365 days"), "{message}");
        assert!(run_at(Some(u64::MAX), None, now).is_err());
        assert_eq!(run_at(Some(10), None, now).unwrap(), Some(now + 10));
        let e = run_at(None, Some(i64::MAX), now).unwrap_err();
        assert!(e.to_string().starts_with("run_at "), "{e}");
        assert!(run_at(None, Some(-1), now).is_err());
        assert!(run_at(Some(1), Some(1), now).is_err());
        assert_eq!(run_at(None, None, now).unwrap(), None);
    }
}
