//! The daemon's checks of a schedule, over the rules shared with the library
//! (`offload_schedule`): its errors as [`EngineError`]s, the limit named as `offload.toml`
//! names it. A leaf: the configuration's validation uses it without reaching the engine.

use std::time::Duration;

use croner::Cron;
use offload_schedule::policy::{FailureBackoff, MAX_FAILURE_BACKOFF};
use offload_schedule::{Policy, ScheduleError};

use crate::engine::error::EngineError;

impl From<ScheduleError> for EngineError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Expr(_) => Self::InvalidCron(e.to_string()),
            ScheduleError::TooOften { .. } => {
                Self::InvalidCron(format!("{e} ([limits] in offload.toml)"))
            }
            _ => Self::Invalid(e.to_string()),
        }
    }
}

/// Parses `expr` and checks it against `[limits] min_cron_interval_ms`.
///
/// # Errors
///
/// [`EngineError::InvalidCron`] naming the expression or the limit.
pub(crate) fn expression(expr: &str, min_interval: Duration) -> Result<Cron, EngineError> {
    Ok(offload_schedule::expr::check(
        expr,
        min_interval,
        "min_cron_interval_ms",
    )?)
}

/// Checks the policies as given in `[[cron]]` or `POST /v1/cron`.
///
/// # Errors
///
/// [`EngineError::Invalid`] naming the field and the reason.
pub(crate) fn policy(
    overlap: &str,
    pause_after_failures: Option<u32>,
    timezone: Option<&str>,
) -> Result<Policy, EngineError> {
    Ok(Policy::check(overlap, pause_after_failures, timezone)?)
}

/// Adds a schedule's jitter and failure backoff to `policy`.
///
/// # Errors
///
/// [`EngineError::Invalid`] naming `jitter` or `failure_backoff` and the bound.
pub(crate) fn pacing(
    policy: Policy,
    s: &offload_store::CronSchedule,
) -> Result<Policy, EngineError> {
    let mut policy = policy.with_jitter(Duration::from_millis(s.jitter_ms.unwrap_or(0)))?;
    if let Some(base) = s.failure_backoff_ms {
        let base = Duration::from_millis(base);
        let max = s.failure_backoff_max_ms.map_or_else(
            || base.saturating_mul(64).min(MAX_FAILURE_BACKOFF).max(base),
            Duration::from_millis,
        );
        policy.failure_backoff = Some(FailureBackoff::new(base, max)?);
    } else if s.failure_backoff_max_ms.is_some() {
        return Err(EngineError::Invalid(
            "failure_backoff_max_ms: given without failure_backoff_ms".into(),
        ));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use offload_schedule::Overlap;

    use super::*;

    #[test]
    fn errors_name_their_field_or_limit() {
        let message = |e: EngineError| match e {
            EngineError::Invalid(m) | EngineError::InvalidCron(m) => m,
            e => panic!("{e:?}"),
        };
        let m = message(policy("sometimes", None, None).unwrap_err());
        assert!(m.starts_with("overlap:"), "{m}");
        assert_eq!(
            policy("replace", None, None).unwrap().overlap,
            Overlap::Replace
        );
        let m = message(policy("skip", Some(0), None).unwrap_err());
        assert!(m.starts_with("pause_after_failures:"), "{m}");
        let m = message(policy("skip", None, Some("Mars/Olympus")).unwrap_err());
        assert!(m.starts_with("timezone:"), "{m}");
        let e = expression("* * * * * *", Duration::from_secs(60)).unwrap_err();
        assert!(matches!(e, EngineError::InvalidCron(_)), "{e:?}");
        assert!(message(e).contains("min_cron_interval_ms = 60000 ([limits] in offload.toml)"),);
        assert!(matches!(
            expression("61 * * * *", Duration::from_secs(60)),
            Err(EngineError::InvalidCron(_))
        ));
    }
}
