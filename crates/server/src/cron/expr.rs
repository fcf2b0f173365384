//! Cron expressions: parsing, the ticks before and after a time, and the minimum interval
//! between ticks (`[limits] min_cron_interval_ms`). Pure functions: the configuration's
//! validation and the scheduler both use them.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use offload_store::{now_ms, Millis};

use crate::engine::error::EngineError;

/// Parses a cron expression (5 or 6 fields).
///
/// # Errors
///
/// [`EngineError::InvalidCron`] with the parser's message.
pub(crate) fn parse(expr: &str) -> Result<Cron, EngineError> {
    Cron::from_str(expr).map_err(|e| EngineError::InvalidCron(format!("{expr:?}: {e}")))
}

/// How many consecutive ticks [`check`] looks at to find the shortest interval (every field
/// of an expression cycles within this many ticks, so the shortest gap shows among them).
const GAP_SAMPLE: usize = 256;

/// Parses `expr` and checks it against `min_interval` (`[limits] min_cron_interval_ms`): no
/// two of its next [`GAP_SAMPLE`] ticks may be closer than that.
///
/// # Errors
///
/// [`EngineError::InvalidCron`] for a bad expression or one that fires too often, naming the
/// limit.
pub(crate) fn check(expr: &str, min_interval: Duration) -> Result<Cron, EngineError> {
    let cron = parse(expr)?;
    let min = i64::try_from(min_interval.as_millis()).unwrap_or(i64::MAX);
    if let Some(gap) = shortest_gap(&cron, now_ms()) {
        if gap < min {
            return Err(EngineError::InvalidCron(format!(
                "{expr:?} fires every {gap} ms, more often than min_cron_interval_ms = {min} \
                 ([limits] in offload.toml)"
            )));
        }
    }
    Ok(cron)
}

/// The shortest time between two of the next [`GAP_SAMPLE`] ticks after `from`.
fn shortest_gap(cron: &Cron, from: Millis) -> Option<i64> {
    let mut prev = next_after(cron, from)?;
    let mut shortest: Option<i64> = None;
    for _ in 1..GAP_SAMPLE {
        let Some(next) = next_after(cron, prev) else {
            break;
        };
        let gap = next - prev;
        shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
        prev = next;
    }
    shortest
}

fn to_dt(ms: Millis) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

/// The first tick strictly after `after`.
pub(crate) fn next_after(cron: &Cron, after: Millis) -> Option<Millis> {
    cron.find_next_occurrence(&to_dt(after), false)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// The last tick strictly before `before`.
pub(crate) fn previous_before(cron: &Cron, before: Millis) -> Option<Millis> {
    cron.find_previous_occurrence(&to_dt(before), false)
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_ticks() {
        let c = parse("*/5 * * * *").unwrap();
        let t0 = 1_795_000_000_000; // some minute
        let n = next_after(&c, t0).unwrap();
        assert!(n > t0);
        assert_eq!(n % 300_000, 0, "{n} is not on a 5-minute boundary");
        assert!(parse("not a cron").is_err());
        assert!(parse("61 * * * *").is_err());
    }

    #[test]
    fn the_minimum_interval_is_enforced() {
        let minute = Duration::from_secs(60);
        assert!(check("* * * * *", minute).is_ok(), "every minute is 60 s");
        assert!(check("0 3 * * *", minute).is_ok());
        let e = check("* * * * * *", minute).unwrap_err();
        let EngineError::InvalidCron(message) = e else {
            panic!("{e:?} is not InvalidCron")
        };
        assert!(
            message.contains("min_cron_interval_ms = 60000"),
            "{message}"
        );
        // Close ticks only once a day are found too.
        assert!(check("0,30 0 3 * * *", minute).is_err());
        assert!(check("* * * * * *", Duration::from_secs(1)).is_ok());
        assert_eq!(
            shortest_gap(&parse("*/5 * * * * *").unwrap(), 0),
            Some(5000)
        );
    }
}
