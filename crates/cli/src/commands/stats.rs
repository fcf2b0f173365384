//! `offload stats`: the job history (`GET /v1/stats`) as a table, one row per minute (or hour)
//! in which something happened, then the window's totals (`--json`: the answer as is).

use std::time::Duration;

use anyhow::bail;
use clap::{Args, ValueEnum};
use offload_api::{StatsPoint, StatsQuery, StatsSeries, StatsStep};

use crate::client::Client;
use crate::output::{duration_ms, time, Table};

/// The width of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Step {
    /// One row per minute.
    Minute,
    /// One row per hour.
    Hour,
}

/// Arguments of `offload stats`.
#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// Only this pool.
    #[arg(long, value_name = "POOL")]
    pool: Option<String>,
    /// Only the jobs of this name.
    #[arg(long, value_name = "NAME")]
    job: Option<String>,
    /// The window: up to now, this far back (at most 31 days).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    since: Duration,
    /// One row per minute or per hour (default: minutes up to a day, hours beyond).
    #[arg(long, value_enum)]
    step: Option<Step>,
    /// The answer of `GET /v1/stats`, as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: StatsArgs, client: &Client) -> anyhow::Result<i32> {
    let since = i64::try_from(args.since.as_millis()).unwrap_or(i64::MAX);
    if since <= 0 {
        bail!("--since must be longer than 0");
    }
    let step = match args.step {
        Some(Step::Minute) => StatsStep::Minute,
        Some(Step::Hour) => StatsStep::Hour,
        None if since <= 24 * 3_600_000 => StatsStep::Minute,
        None => StatsStep::Hour,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let q = StatsQuery {
        from: Some(now.saturating_sub(since)),
        to: Some(now),
        step: Some(step),
        pool: args.pool,
        job: args.job,
    };
    let series = client.stats(&q).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&series)?);
    } else {
        print!("{}", render(&series));
    }
    Ok(crate::exit::OK)
}

fn pct(v: Option<f64>) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    v.map_or_else(|| "-".into(), |ms| duration_ms(ms.round().max(0.0) as u64))
}

fn busy(p: &StatsPoint) -> bool {
    p.submitted + p.succeeded + p.failed + p.dead + p.cancelled + p.ended > 0
}

/// One row per point with activity, then the totals; or a line saying nothing happened.
pub(crate) fn render(s: &StatsSeries) -> String {
    let points: Vec<&StatsPoint> = s.points.iter().filter(|p| busy(p)).collect();
    if points.is_empty() {
        return format!(
            "no jobs from {} to {} (the history keeps [history] retention_days; a node adds its \
             counts every few seconds)\n",
            time(s.from),
            time(s.to)
        );
    }
    let mut t = Table::new(&[
        "TIME",
        ">SUBMITTED",
        ">SUCCEEDED",
        ">FAILED",
        ">DEAD",
        ">CANCELLED",
        ">RUN P50",
        ">RUN P95",
        ">WAIT P50",
        ">WAIT P95",
    ]);
    let mut total = StatsPoint::default();
    for p in &points {
        total.submitted += p.submitted;
        total.succeeded += p.succeeded;
        total.failed += p.failed;
        total.dead += p.dead;
        total.cancelled += p.cancelled;
        t.row(vec![
            time(p.t),
            p.submitted.to_string(),
            p.succeeded.to_string(),
            p.failed.to_string(),
            p.dead.to_string(),
            p.cancelled.to_string(),
            pct(p.run_p50_ms),
            pct(p.run_p95_ms),
            pct(p.wait_p50_ms),
            pct(p.wait_p95_ms),
        ]);
    }
    t.row(vec![
        "total".into(),
        total.submitted.to_string(),
        total.succeeded.to_string(),
        total.failed.to_string(),
        total.dead.to_string(),
        total.cancelled.to_string(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
    ]);
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_points_are_rows_then_totals() {
        let s = StatsSeries {
            from: 1_764_000_000_000,
            to: 1_764_000_180_000,
            step: StatsStep::Minute,
            pool: None,
            job: None,
            points: vec![
                StatsPoint {
                    t: 1_764_000_000_000,
                    submitted: 3,
                    succeeded: 2,
                    failed: 1,
                    ended: 3,
                    run_p50_ms: Some(12.3),
                    run_p95_ms: Some(1_540.0),
                    wait_p50_ms: Some(0.0),
                    wait_p95_ms: Some(4.4),
                    ..StatsPoint::default()
                },
                StatsPoint {
                    t: 1_764_000_060_000,
                    ..StatsPoint::default()
                },
                StatsPoint {
                    t: 1_764_000_120_000,
                    dead: 1,
                    ended: 1,
                    run_p50_ms: Some(90.0),
                    run_p95_ms: Some(90.0),
                    wait_p50_ms: Some(2.0),
                    wait_p95_ms: Some(2.0),
                    ..StatsPoint::default()
                },
            ],
        };
        assert_eq!(
            render(&s),
            "TIME                  SUBMITTED  SUCCEEDED  FAILED  DEAD  CANCELLED  RUN P50  RUN P95  \
             WAIT P50  WAIT P95\n\
             2025-11-24T16:00:00Z          3          2       1     0          0     12ms     1.5s  \
             \x20    0ms       4ms\n\
             2025-11-24T16:02:00Z          0          0       0     1          0     90ms     90ms  \
             \x20    2ms       2ms\n\
             total                         3          2       1     1          0        -        -  \
             \x20      -         -\n"
        );
        let empty = StatsSeries {
            points: vec![],
            ..s
        };
        assert!(render(&empty).starts_with("no jobs from 2025-11-24T"));
    }
}
