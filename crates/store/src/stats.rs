//! History: per-minute aggregates per pool and job name (schema v8).
//!
//! The store keeps counts, not events: one row per (minute, pool, job name, [`Metric`], bucket)
//! holding `n`. A node accumulates the current minutes in memory and adds them with
//! [`Store::add_stats`](crate::Store::add_stats) every few seconds; the add *sums* into the
//! stored rows (`INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`), so the rows of several
//! nodes merge into one. Run time and queue wait are fixed log-scale histograms
//! ([`bucket_of`]: four buckets per doubling, from 1 ms to about 11 days), so percentiles are
//! computed from the merged buckets at read time ([`series`]), within [`PRECISION`].
//!
//! Bounds: a read covers at most [`MAX_WINDOW_MS`] (31 days) and [`MAX_POINTS`] points (a
//! minute or an hour each), so it returns at most [`MAX_CELLS`] summed rows;
//! one add carries at most [`MAX_ADD_ROWS`] rows; a node folds the job names of a minute past
//! its own cap into [`OTHER`] (the daemon's `history.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::limits::LimitError;
use crate::queues::MAX_QUEUE_NAME;
use crate::Millis;

/// One minute, in ms.
pub const MINUTE_MS: i64 = 60_000;
/// One hour, in ms.
pub const HOUR_MS: i64 = 3_600_000;
/// The longest window one read covers (31 days).
pub const MAX_WINDOW_MS: i64 = 31 * 24 * HOUR_MS;
/// The most points one read returns.
pub const MAX_POINTS: i64 = 1_500;
/// The most rows one [`Store::add_stats`](crate::Store::add_stats) carries.
pub const MAX_ADD_ROWS: usize = 50_000;
/// Buckets of a histogram: bucket 0 holds 0 ms, bucket `b ≥ 1` holds
/// `[2^((b−1)/4), 2^(b/4))` ms; the last also holds everything longer (≈ 11 days and more).
pub const BUCKETS: u16 = 120;
/// The relative error of a percentile read from the buckets (a bucket's geometric middle is at
/// most `2^(1/8) − 1` ≈ 9.05 % away from any value in it).
pub const PRECISION: f64 = 0.0906;
/// The most summed cells one read returns: every count and every bucket of both histograms at
/// every point (a store's read stops there, which it never reaches).
pub const MAX_CELLS: i64 = MAX_POINTS * (5 + 2 * BUCKETS as i64);
/// The pool and job name of the stats folded together past a node's cap of names per minute.
pub const OTHER: &str = "(other)";

/// What a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Jobs submitted (bucket 0).
    Submitted,
    /// Attempts that succeeded (bucket 0).
    Succeeded,
    /// Attempts that failed and will be retried (bucket 0).
    Failed,
    /// Attempts after which the job went dead (bucket 0).
    Dead,
    /// Attempts that ended cancelled (bucket 0).
    Cancelled,
    /// Run times of ended attempts: a histogram ([`bucket_of`]).
    RunMs,
    /// Queue waits of ended attempts (from due to started): a histogram.
    WaitMs,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 7] = [
        Metric::Submitted,
        Metric::Succeeded,
        Metric::Failed,
        Metric::Dead,
        Metric::Cancelled,
        Metric::RunMs,
        Metric::WaitMs,
    ];

    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
            Self::RunMs => "run_ms",
            Self::WaitMs => "wait_ms",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// A count to add to the history: `n` more of `metric` (in `bucket`) for `pool`/`job` in the
/// minute starting at `minute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatRow {
    /// The minute's start (a multiple of [`MINUTE_MS`]).
    pub minute: Millis,
    /// The pool.
    pub pool: String,
    /// The job name.
    pub job: String,
    /// What is counted.
    pub metric: Metric,
    /// The histogram bucket (0 for plain counts).
    pub bucket: u16,
    /// How many.
    pub n: u64,
}

/// A read of the history: points of `step_ms` from `from` (inclusive) to `to` (exclusive),
/// summed over every pool and job name unless filtered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    /// The window's start (rounded down to a step).
    pub from: Millis,
    /// The window's end (rounded up to a step).
    pub to: Millis,
    /// [`MINUTE_MS`] or [`HOUR_MS`].
    pub step_ms: i64,
    /// Only this pool.
    pub pool: Option<String>,
    /// Only this job name.
    pub job: Option<String>,
}

impl StatsQuery {
    /// The window aligned to whole steps: `(from, to)`.
    pub fn aligned(&self) -> (Millis, Millis) {
        let step = self.step_ms.max(1);
        let from = self.from.div_euclid(step) * step;
        let to = self
            .to
            .saturating_add(step - 1)
            .div_euclid(step)
            .saturating_mul(step);
        (from, to)
    }

    /// How many points the aligned window holds.
    pub fn points(&self) -> i64 {
        let (from, to) = self.aligned();
        (to.saturating_sub(from)) / self.step_ms.max(1)
    }

    /// Checks the step, the window and the filters.
    ///
    /// # Errors
    ///
    /// [`LimitError`] naming `step`, `from`, `to` (window), `points`, `pool` or `job`.
    pub fn check(&self) -> Result<(), LimitError> {
        if self.step_ms != MINUTE_MS && self.step_ms != HOUR_MS {
            return Err(LimitError::new(
                "step",
                format!("{} ms", self.step_ms),
                "minute (60000 ms) or hour (3600000 ms)",
            ));
        }
        if self.from < 0 || self.to <= self.from {
            return Err(LimitError::new(
                "from",
                self.from,
                format!("0..{} (before `to`)", self.to),
            ));
        }
        let (from, to) = self.aligned();
        if to - from > MAX_WINDOW_MS {
            return Err(LimitError::new(
                "window",
                format!("{} ms", to - from),
                format!("at most {MAX_WINDOW_MS} ms (31 days)"),
            ));
        }
        let points = self.points();
        if points > MAX_POINTS {
            return Err(LimitError::new(
                "points",
                points,
                format!("at most {MAX_POINTS} per read: use a larger step or a shorter window"),
            ));
        }
        for (field, name) in [("pool", &self.pool), ("job", &self.job)] {
            if let Some(name) = name {
                if name.is_empty() || name.len() > MAX_QUEUE_NAME {
                    return Err(LimitError::new(
                        field,
                        format!("of {} bytes", name.len()),
                        format!("1..={MAX_QUEUE_NAME} bytes"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A summed count of one point of a read: `n` of `metric` in `bucket` at the point `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatCell {
    /// The point's start.
    pub t: Millis,
    /// What is counted.
    pub metric: Metric,
    /// The bucket (0 for plain counts).
    pub bucket: u16,
    /// How many, summed over nodes, pools and job names.
    pub n: u64,
}

/// The bucket of a duration of `ms` milliseconds.
pub fn bucket_of(ms: u64) -> u16 {
    if ms == 0 {
        return 0;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let b = ((ms as f64).log2() * 4.0).floor() as i64 + 1;
    u16::try_from(b.clamp(1, i64::from(BUCKETS - 1))).unwrap_or(BUCKETS - 1)
}

/// The value a bucket stands for: its geometric middle, in ms (0 for bucket 0).
pub fn bucket_value(bucket: u16) -> f64 {
    if bucket == 0 {
        return 0.0;
    }
    ((f64::from(bucket) - 0.5) / 4.0).exp2()
}

/// The `p`-quantile (`0 < p ≤ 1`) of a histogram given as (bucket, count) pairs in bucket order,
/// or `None` for an empty one.
pub fn percentile(hist: &BTreeMap<u16, u64>, p: f64) -> Option<f64> {
    let total: u64 = hist.values().sum();
    if total == 0 {
        return None;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0u64;
    for (&b, &n) in hist {
        seen += n;
        if seen >= rank {
            return Some(bucket_value(b));
        }
    }
    hist.keys().next_back().map(|&b| bucket_value(b))
}

/// One point of a series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsPoint {
    /// The point's start.
    pub t: Millis,
    /// Jobs submitted.
    pub submitted: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed and were retried.
    pub failed: u64,
    /// Attempts after which the job went dead.
    pub dead: u64,
    /// Attempts cancelled.
    pub cancelled: u64,
    /// Attempts with a recorded run time (the histograms' count).
    pub ended: u64,
    /// Median run time, ms (`None` when no attempt ended).
    pub run_p50_ms: Option<f64>,
    /// 95th percentile of the run time, ms.
    pub run_p95_ms: Option<f64>,
    /// Median queue wait, ms.
    pub wait_p50_ms: Option<f64>,
    /// 95th percentile of the queue wait, ms.
    pub wait_p95_ms: Option<f64>,
}

/// The points of `q`'s window, oldest first, one per step (zero where nothing was recorded),
/// from the cells a store returned for it.
pub fn series(q: &StatsQuery, cells: &[StatCell]) -> Vec<StatsPoint> {
    let (from, _) = q.aligned();
    let step = q.step_ms.max(1);
    let n = usize::try_from(q.points().clamp(0, MAX_POINTS)).unwrap_or(0);
    let mut points: Vec<StatsPoint> = (0..n)
        .map(|i| StatsPoint {
            t: from + i64::try_from(i).unwrap_or(0) * step,
            ..StatsPoint::default()
        })
        .collect();
    let mut hists: Vec<[BTreeMap<u16, u64>; 2]> = vec![Default::default(); n];
    for c in cells {
        let Ok(i) = usize::try_from((c.t - from).div_euclid(step)) else {
            continue;
        };
        let Some(p) = points.get_mut(i) else {
            continue;
        };
        match c.metric {
            Metric::Submitted => p.submitted += c.n,
            Metric::Succeeded => p.succeeded += c.n,
            Metric::Failed => p.failed += c.n,
            Metric::Dead => p.dead += c.n,
            Metric::Cancelled => p.cancelled += c.n,
            Metric::RunMs => {
                p.ended += c.n;
                *hists[i][0].entry(c.bucket).or_default() += c.n;
            }
            Metric::WaitMs => *hists[i][1].entry(c.bucket).or_default() += c.n,
        }
    }
    for (p, [run, wait]) in points.iter_mut().zip(&hists) {
        p.run_p50_ms = percentile(run, 0.5);
        p.run_p95_ms = percentile(run, 0.95);
        p.wait_p50_ms = percentile(wait, 0.5);
        p.wait_p95_ms = percentile(wait, 0.95);
    }
    points
}

/// Checks rows to add and merges those with the same key, sorted by key (so concurrent adds of
/// several nodes lock rows in one order, and one statement never touches a row twice).
///
/// # Errors
///
/// [`LimitError`] for more than [`MAX_ADD_ROWS`] rows, a bucket out of range, a minute not on
/// a minute, or a name out of bounds.
pub fn normalize(rows: Vec<StatRow>) -> Result<Vec<StatRow>, LimitError> {
    if rows.len() > MAX_ADD_ROWS {
        return Err(LimitError::new(
            "stat rows",
            rows.len(),
            format!("at most {MAX_ADD_ROWS} per call"),
        ));
    }
    let mut merged: BTreeMap<(Millis, String, String, Metric, u16), u64> = BTreeMap::new();
    for r in rows {
        if r.bucket >= BUCKETS {
            return Err(LimitError::new("bucket", r.bucket, format!("0..{BUCKETS}")));
        }
        if r.minute < 0 || r.minute % MINUTE_MS != 0 {
            return Err(LimitError::new(
                "minute",
                r.minute,
                "a minute's start, in ms",
            ));
        }
        for (field, name) in [("pool", &r.pool), ("job", &r.job)] {
            if name.is_empty() || name.len() > MAX_QUEUE_NAME {
                return Err(LimitError::new(
                    field,
                    format!("of {} bytes", name.len()),
                    format!("1..={MAX_QUEUE_NAME} bytes"),
                ));
            }
        }
        if r.n == 0 {
            continue;
        }
        let n = merged
            .entry((r.minute, r.pool, r.job, r.metric, r.bucket))
            .or_default();
        *n = n.saturating_add(r.n);
    }
    Ok(merged
        .into_iter()
        .map(|((minute, pool, job, metric, bucket), n)| StatRow {
            minute,
            pool,
            job,
            metric,
            bucket,
            n,
        })
        .collect())
}

/// A summed cell from a row with columns `t`, `metric`, `bucket`, `n`.
///
/// # Errors
///
/// An engine error for a missing column or an unknown metric.
pub fn cell(r: &impl crate::rules::rows::Row) -> Result<StatCell, crate::StoreError> {
    let metric = r.text("metric")?;
    let metric = Metric::parse(&metric)
        .ok_or_else(|| crate::StoreError::Engine(format!("unknown stat metric {metric:?}")))?;
    Ok(StatCell {
        t: r.int("t")?,
        metric,
        bucket: u16::try_from(r.int("bucket")?).unwrap_or(0),
        n: u64::try_from(r.int("n")?).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values_within_the_precision() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 1);
        for ms in [1u64, 2, 3, 7, 10, 99, 100, 250, 1_000, 12_345, 3_600_000] {
            let b = bucket_of(ms);
            let v = bucket_value(b);
            #[allow(clippy::cast_precision_loss)]
            let err = (v - ms as f64).abs() / ms as f64;
            assert!(err <= PRECISION, "{ms} ms → bucket {b} → {v}: {err}");
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        let mut last = 0;
        for ms in 0..5_000u64 {
            let b = bucket_of(ms);
            assert!(b >= last, "buckets grow with the value");
            last = b;
        }
    }

    #[test]
    fn percentiles_come_from_the_merged_buckets() {
        let mut h = BTreeMap::new();
        for ms in 1..=100u64 {
            *h.entry(bucket_of(ms)).or_insert(0) += 1;
        }
        let p50 = percentile(&h, 0.5).unwrap();
        let p95 = percentile(&h, 0.95).unwrap();
        assert!((p50 - 50.0).abs() / 50.0 <= PRECISION, "{p50}");
        assert!((p95 - 95.0).abs() / 95.0 <= PRECISION, "{p95}");
        assert_eq!(percentile(&BTreeMap::new(), 0.5), None);
    }

    #[test]
    fn queries_are_bounded() {
        let q = |from, to, step_ms| StatsQuery {
            from,
            to,
            step_ms,
            pool: None,
            job: None,
        };
        assert!(q(0, HOUR_MS, MINUTE_MS).check().is_ok());
        assert_eq!(q(0, HOUR_MS, MINUTE_MS).points(), 60);
        assert_eq!(q(1, HOUR_MS - 1, MINUTE_MS).aligned(), (0, HOUR_MS));
        assert_eq!(q(0, HOUR_MS, 1_000).check().unwrap_err().field, "step");
        assert_eq!(
            q(0, 2 * 24 * HOUR_MS, MINUTE_MS).check().unwrap_err().field,
            "points"
        );
        assert_eq!(
            q(0, 40 * 24 * HOUR_MS, HOUR_MS).check().unwrap_err().field,
            "window"
        );
        assert_eq!(q(5, 5, MINUTE_MS).check().unwrap_err().field, "from");
    }

    #[test]
    fn rows_merge_by_key_and_are_checked() {
        let row = |job: &str, n| StatRow {
            minute: MINUTE_MS,
            pool: "p".into(),
            job: job.into(),
            metric: Metric::Submitted,
            bucket: 0,
            n,
        };
        let out = normalize(vec![row("b", 1), row("a", 2), row("b", 3), row("c", 0)]).unwrap();
        assert_eq!(out, vec![row("a", 2), row("b", 4)]);
        let mut bad = row("a", 1);
        bad.minute = 7;
        assert_eq!(normalize(vec![bad]).unwrap_err().field, "minute");
        let mut bad = row("a", 1);
        bad.bucket = BUCKETS;
        assert_eq!(normalize(vec![bad]).unwrap_err().field, "bucket");
    }
}
