//! Cron expressions: parsing, the ticks before and after a time in a time zone, and the
//! minimum interval between ticks (`[limits] min_cron_interval_ms`). Pure functions: the
//! configuration's validation and the scheduler both use them.
//!
//! Time zones are croner's handling of a `chrono_tz::Tz` (its README, "Daylight Saving Time"):
//! in a DST gap (spring forward), a fixed-time expression (`30 2 * * *`) fires at the first
//! valid time after the gap on that day, and a wildcard or step expression skips the ticks in
//! the gap; in a repeated hour (fall back), a fixed-time expression fires once (the first
//! pass) and a wildcard or step expression fires in both passes. The tests below pin each.

use std::str::FromStr;
use std::time::Duration;

use crate::error::ScheduleError;
use crate::{now_ms, Millis};
use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use croner::Cron;

/// Parses a cron expression (5 or 6 fields).
///
/// # Errors
///
/// [`ScheduleError::Expr`] with the parser's message.
pub fn parse(expr: &str) -> Result<Cron, ScheduleError> {
    Cron::from_str(expr).map_err(|e| ScheduleError::Expr(format!("{expr:?}: {e}")))
}

/// How many consecutive ticks [`check`] looks at to find the shortest interval (every field
/// of an expression cycles within this many ticks, so the shortest gap shows among them).
const GAP_SAMPLE: usize = 256;

/// Parses `expr` and checks it against `min_interval`: no two of its next 256 ticks (`GAP_SAMPLE`)
/// may be closer than that. `setting` names where the minimum is configured.
///
/// # Errors
///
/// [`ScheduleError::Expr`] for a bad expression, [`ScheduleError::TooOften`] for one that
/// fires too often.
pub fn check(
    expr: &str,
    min_interval: Duration,
    setting: &'static str,
) -> Result<Cron, ScheduleError> {
    let cron = parse(expr)?;
    let min = i64::try_from(min_interval.as_millis()).unwrap_or(i64::MAX);
    if let Some(gap) = shortest_gap(&cron, Tz::UTC, now_ms()) {
        if gap < min {
            return Err(ScheduleError::TooOften {
                expr: expr.to_owned(),
                every_ms: gap,
                min_ms: min,
                setting,
            });
        }
    }
    Ok(cron)
}

/// The shortest time between two of the next [`GAP_SAMPLE`] ticks after `from`.
fn shortest_gap(cron: &Cron, tz: Tz, from: Millis) -> Option<i64> {
    let mut prev = next_after(cron, tz, from)?;
    let mut shortest: Option<i64> = None;
    for _ in 1..GAP_SAMPLE {
        let Some(next) = next_after(cron, tz, prev) else {
            break;
        };
        let gap = next - prev;
        shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
        prev = next;
    }
    shortest
}

fn to_dt(tz: Tz, ms: Millis) -> DateTime<Tz> {
    tz.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(|| chrono::Utc::now().with_timezone(&tz))
}

/// The first tick strictly after `after`, the expression read in `tz`.
pub fn next_after(cron: &Cron, tz: Tz, after: Millis) -> Option<Millis> {
    cron.find_next_occurrence(&to_dt(tz, after), false)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// The last tick strictly before `before`, the expression read in `tz`.
pub fn previous_before(cron: &Cron, tz: Tz, before: Millis) -> Option<Millis> {
    cron.find_previous_occurrence(&to_dt(tz, before), false)
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
        let n = next_after(&c, Tz::UTC, t0).unwrap();
        assert!(n > t0);
        assert_eq!(n % 300_000, 0, "{n} is not on a 5-minute boundary");
        assert!(parse("not a cron").is_err());
        assert!(parse("61 * * * *").is_err());
    }

    #[test]
    fn the_minimum_interval_is_enforced() {
        let minute = Duration::from_secs(60);
        assert!(
            check("* * * * *", minute, "m").is_ok(),
            "every minute is 60 s"
        );
        assert!(check("0 3 * * *", minute, "m").is_ok());
        let e = check("* * * * * *", minute, "min_interval").unwrap_err();
        assert!(
            matches!(e, ScheduleError::TooOften { every_ms: 1000, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("min_interval = 60000"), "{e}");
        // Close ticks only once a day are found too.
        assert!(check("0,30 0 3 * * *", minute, "m").is_err());
        assert!(check("* * * * * *", Duration::from_secs(1), "m").is_ok());
        assert_eq!(
            shortest_gap(&parse("*/5 * * * * *").unwrap(), Tz::UTC, 0),
            Some(5000)
        );
    }

    /// Ticks after `from` (an RFC 3339 time), as RFC 3339 times in UTC.
    fn ticks(expr: &str, tz: Tz, from: &str, n: usize) -> Vec<String> {
        let c = parse(expr).unwrap();
        let mut at = DateTime::parse_from_rfc3339(from)
            .unwrap()
            .timestamp_millis();
        (0..n)
            .map(|_| {
                at = next_after(&c, tz, at).unwrap();
                chrono::Utc.timestamp_millis_opt(at).unwrap().to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn a_time_zone_moves_the_ticks() {
        // 03:00 in Berlin is 02:00 UTC in winter, 01:00 UTC in summer.
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            ticks("0 3 * * *", berlin, "2026-01-10T00:00:00Z", 1),
            ["2026-01-10T02:00:00+00:00"]
        );
        assert_eq!(
            ticks("0 3 * * *", berlin, "2026-07-10T00:00:00Z", 1),
            ["2026-07-10T01:00:00+00:00"]
        );
    }

    /// Berlin springs forward on 2026-03-29: 02:00 → 03:00 (01:00 UTC).
    #[test]
    fn dst_gap_a_fixed_time_fires_after_the_gap_and_wildcards_skip_it() {
        let berlin = chrono_tz::Europe::Berlin;
        // 02:30 does not exist that day: it fires at 03:00 local (01:00 UTC), once.
        assert_eq!(
            ticks("30 2 * * *", berlin, "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"]
        );
        // Every 30 minutes: 01:30 local, then 03:00 local (the gap's ticks are skipped).
        assert_eq!(
            ticks("*/30 * * * *", berlin, "2026-03-29T00:15:00Z", 2),
            ["2026-03-29T00:30:00+00:00", "2026-03-29T01:00:00+00:00"]
        );
    }

    /// Berlin falls back on 2026-10-25: 03:00 → 02:00 (01:00 UTC); 02:xx happens twice.
    #[test]
    fn dst_repeat_a_fixed_time_fires_once_and_wildcards_twice() {
        let berlin = chrono_tz::Europe::Berlin;
        // 02:30 local: the first pass only (00:30 UTC), then the next day.
        assert_eq!(
            ticks("30 2 * * *", berlin, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]
        );
        // Minute 30 of every hour: 02:30 in both passes (00:30 and 01:30 UTC).
        assert_eq!(
            ticks("30 * * * *", berlin, "2026-10-24T23:45:00Z", 3),
            [
                "2026-10-25T00:30:00+00:00",
                "2026-10-25T01:30:00+00:00",
                "2026-10-25T02:30:00+00:00"
            ]
        );
    }
}
