//! The series behind the overview's charts: jobs submitted, succeeded and failed per minute,
//! and the mean run time and queue wait, for a fixed window.
//!
//! [`series`] is the one function the charts read. Today it is backed by the daemon's
//! in-memory metrics, sampled (at most every [`SAMPLE_EVERY_MS`]) whenever a chart asks, into
//! a ring of at most [`MAX_SAMPLES`]: it knows only what happened while a page was open since
//! the daemon started. Once the store keeps per-minute history (`GET /v1/stats`), only the
//! body of `series` changes to read it; the JSON the page reads stays the same.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use offload_store::{now_ms, Counts};
use serde::{Deserialize, Serialize};

use super::Dash;

/// The fewest milliseconds between two samples.
pub(crate) const SAMPLE_EVERY_MS: i64 = 5_000;
/// Samples kept: one hour at one per [`SAMPLE_EVERY_MS`].
pub(crate) const MAX_SAMPLES: usize = 720;
/// One point per minute.
const STEP_MS: i64 = 60_000;

/// The window a chart shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Window {
    /// The last hour, per minute.
    #[default]
    Hour,
    /// The last day, per minute (needs persisted history: today the same hour).
    Day,
}

/// What the charts draw: parallel arrays, one entry per minute, oldest first.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub(crate) struct Series {
    /// Where the points come from: `memory` (sampled since the daemon started).
    pub(crate) source: &'static str,
    /// Seconds per point.
    pub(crate) step_s: i64,
    /// Each point's minute, in seconds since the epoch.
    pub(crate) t: Vec<i64>,
    /// Jobs submitted in that minute.
    pub(crate) submitted: Vec<Option<f64>>,
    /// Attempts that succeeded.
    pub(crate) succeeded: Vec<Option<f64>>,
    /// Attempts that did not.
    pub(crate) failed: Vec<Option<f64>>,
    /// Mean run time of the attempts that ended, ms.
    pub(crate) run_ms: Vec<Option<f64>>,
    /// Mean queue wait of those attempts, ms.
    pub(crate) wait_ms: Vec<Option<f64>>,
}

/// Cumulative counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Sample {
    at: i64,
    submitted: f64,
    succeeded: f64,
    failed: f64,
    run_sum: f64,
    run_count: f64,
    wait_sum: f64,
    wait_count: f64,
}

/// The ring of samples.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    ring: Mutex<VecDeque<Sample>>,
}

impl Sampler {
    fn record(&self, s: Sample) -> Vec<Sample> {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring
            .back()
            .is_none_or(|last| s.at - last.at >= SAMPLE_EVERY_MS)
        {
            if ring.len() >= MAX_SAMPLES {
                ring.pop_front();
            }
            ring.push_back(s);
        }
        ring.iter().copied().collect()
    }
}

/// Reads the counters out of the metrics' text (the same numbers `/metrics` shows).
fn parse(text: &str, at: i64) -> Sample {
    let mut s = Sample {
        at,
        ..Sample::default()
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        let name = key.split('{').next().unwrap_or(key);
        match name {
            "offload_jobs_submitted_total" => s.submitted += v,
            "offload_jobs_finished_total" if key.contains("outcome=\"succeeded\"") => {
                s.succeeded += v;
            }
            "offload_jobs_finished_total" => s.failed += v,
            "offload_job_run_seconds_sum" => s.run_sum += v,
            "offload_job_run_seconds_count" => s.run_count += v,
            "offload_job_wait_seconds_sum" => s.wait_sum += v,
            "offload_job_wait_seconds_count" => s.wait_count += v,
            _ => {}
        }
    }
    s
}

/// Per-minute points over the hour ending at `now` from consecutive samples.
fn bucket(samples: &[Sample], now: i64) -> Series {
    let last = now.div_euclid(STEP_MS);
    let first = last - 59;
    let n = 60usize;
    let mut sums = vec![Sample::default(); n];
    let mut seen = vec![false; n];
    for pair in samples.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let Ok(i) = usize::try_from(b.at.div_euclid(STEP_MS) - first) else {
            continue;
        };
        if i >= n {
            continue;
        }
        let d = &mut sums[i];
        d.submitted += b.submitted - a.submitted;
        d.succeeded += b.succeeded - a.succeeded;
        d.failed += b.failed - a.failed;
        d.run_sum += b.run_sum - a.run_sum;
        d.run_count += b.run_count - a.run_count;
        d.wait_sum += b.wait_sum - a.wait_sum;
        d.wait_count += b.wait_count - a.wait_count;
        seen[i] = true;
    }
    let mean = |sum: f64, count: f64| (count > 0.0).then(|| sum / count * 1000.0);
    let mut out = Series {
        source: "memory",
        step_s: STEP_MS / 1000,
        ..Series::default()
    };
    for (i, (d, seen)) in sums.iter().zip(&seen).enumerate() {
        out.t.push((first + i as i64) * STEP_MS / 1000);
        let v = |x: f64| seen.then_some(x);
        out.submitted.push(v(d.submitted));
        out.succeeded.push(v(d.succeeded));
        out.failed.push(v(d.failed));
        out.run_ms.push(mean(d.run_sum, d.run_count));
        out.wait_ms.push(mean(d.wait_sum, d.wait_count));
    }
    out
}

/// The series for `window` (see the module's note on where it comes from).
pub(crate) fn series(dash: &Dash, _window: Window) -> Series {
    let now = now_ms();
    let text = dash.app.engine.metrics.render(&Counts::new(), &[]);
    let samples = dash.stats.record(parse(&text, now));
    bucket(&samples, now)
}

#[derive(Debug, Deserialize)]
pub(crate) struct WindowQuery {
    #[serde(default)]
    window: Window,
}

/// `GET /ui/stats.json?window=hour`.
pub(crate) async fn handler(
    State(dash): State<Arc<Dash>>,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Response {
    let window = q.map(|Query(q)| q.window).unwrap_or_default();
    axum::Json(series(&dash, window)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_become_per_minute_points() {
        let text = "# HELP x\noffload_jobs_submitted_total 10\n\
            offload_jobs_finished_total{pool=\"a\",outcome=\"succeeded\"} 4\n\
            offload_jobs_finished_total{pool=\"a\",outcome=\"dead\"} 1\n\
            offload_job_run_seconds_sum{pool=\"a\"} 2.5\noffload_job_run_seconds_count{pool=\"a\"} 5\n";
        let a = parse("", 600_000);
        let b = parse(text, 630_000);
        assert_eq!((b.submitted, b.succeeded, b.failed), (10.0, 4.0, 1.0));
        let s = bucket(&[a, b], 650_000);
        assert_eq!(s.t.len(), 60);
        assert_eq!(*s.t.last().unwrap(), 600);
        assert_eq!(s.succeeded.last(), Some(&Some(4.0)));
        assert_eq!(s.run_ms.last(), Some(&Some(500.0)));
        assert_eq!(s.succeeded[0], None, "no sample: no point");
    }

    #[test]
    fn the_ring_is_bounded() {
        let s = Sampler::default();
        for i in 0..(MAX_SAMPLES as i64 + 10) {
            s.record(Sample {
                at: i * SAMPLE_EVERY_MS,
                ..Sample::default()
            });
        }
        assert_eq!(s.ring.lock().unwrap().len(), MAX_SAMPLES);
    }
}
