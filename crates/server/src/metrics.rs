//! Prometheus metrics. Counters and histograms go through a `metrics` recorder owned by the
//! daemon (not the process-global one, so several daemons can live in one test process);
//! gauges that are cheap to read at scrape time (jobs per state, worker RSS/CPU) are read then.

use std::fmt::Write as _;
use std::sync::Arc;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use offload_store::Counts;

use crate::workers::WorkerView;

const META: Metadata<'static> = Metadata::new("offload", Level::INFO, Some("offload_server"));

/// The daemon's metrics.
#[derive(Clone)]
pub(crate) struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    submitted: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set.
    pub(crate) fn new() -> Self {
        let latency = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0, 300.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
            .map_or_else(
                |_| PrometheusBuilder::new().build_recorder(),
                PrometheusBuilder::build_recorder,
            );
        let handle = recorder.handle();
        let submitted =
            recorder.register_counter(&Key::from_name("offload_jobs_submitted_total"), &META);
        Self {
            recorder: Arc::new(recorder),
            handle,
            submitted,
        }
    }

    /// `n` jobs were accepted.
    pub(crate) fn submitted(&self, n: u64) {
        self.submitted.increment(n);
    }

    /// A job's attempt ended.
    pub(crate) fn finished(&self, pool: &str, outcome: &str, wait_s: f64, run_s: f64) {
        let labels = vec![
            Label::new("pool", pool.to_owned()),
            Label::new("outcome", outcome.to_owned()),
        ];
        self.recorder
            .register_counter(
                &Key::from_parts("offload_jobs_finished_total", labels),
                &META,
            )
            .increment(1);
        let pool_label = vec![Label::new("pool", pool.to_owned())];
        self.histogram("offload_job_wait_seconds", pool_label.clone())
            .record(wait_s);
        self.histogram("offload_job_run_seconds", pool_label)
            .record(run_s);
    }

    /// A worker of `pool` died unexpectedly.
    pub(crate) fn restart(&self, pool: &str) {
        self.recorder
            .register_counter(
                &Key::from_parts(
                    "offload_worker_restarts_total",
                    vec![Label::new("pool", pool.to_owned())],
                ),
                &META,
            )
            .increment(1);
    }

    /// A UDP datagram of the line protocol was dropped: `reason` is `not_allowed` (its source
    /// is outside `[lines] allow`), `rate` (its source is over `udp_rate_per_s`), `queue_cap`
    /// (`udp_max_queued` UDP jobs wait already), `overloaded` (too many submits in flight),
    /// `too_large`, `bad_request` or `refused` (the submit was refused: unknown job, queue full).
    pub(crate) fn udp_dropped(&self, reason: &'static str) {
        self.recorder
            .register_counter(
                &Key::from_parts(
                    "offload_udp_dropped_total",
                    vec![Label::new("reason", reason)],
                ),
                &META,
            )
            .increment(1);
    }

    /// `offload_line_waits`: line-protocol requests waiting for a job's end now.
    pub(crate) fn line_waits(&self) -> metrics::Gauge {
        self.recorder
            .register_gauge(&Key::from_name("offload_line_waits"), &META)
    }

    /// A TCP connection of the line protocol was closed at accept: `reason` is `not_allowed`
    /// (its peer is outside `[lines] allow`) or `overloaded` (`max_connections`).
    pub(crate) fn tcp_refused(&self, reason: &'static str) {
        self.recorder
            .register_counter(
                &Key::from_parts(
                    "offload_tcp_refused_total",
                    vec![Label::new("reason", reason)],
                ),
                &META,
            )
            .increment(1);
    }

    /// An HTTP request or connection refused by a limit: `reason` is `too_many_connections`
    /// (`http.max_connections`), `too_many_subscribers` or `too_many_long_polls`.
    pub(crate) fn http_refused(&self, reason: &'static str) {
        self.recorder
            .register_counter(
                &Key::from_parts(
                    "offload_http_refused_total",
                    vec![Label::new("reason", reason)],
                ),
                &META,
            )
            .increment(1);
    }

    /// Events an SSE subscriber lost because it read too slowly (it was told: `event: lagged`).
    pub(crate) fn sse_lost(&self, n: u64) {
        self.recorder
            .register_counter(&Key::from_name("offload_sse_lost_events_total"), &META)
            .increment(n);
    }

    /// A cron schedule paused: `reason` is `failures` (`pause_after_failures`) or `manual`.
    pub(crate) fn schedule_paused(&self, reason: &'static str) {
        self.recorder
            .register_counter(
                &Key::from_parts(
                    "offload_cron_paused_total",
                    vec![Label::new("reason", reason)],
                ),
                &META,
            )
            .increment(1);
    }

    /// A cron tick fired nothing because the wait after the schedule's failed runs is not over
    /// (`failure_backoff_ms`).
    pub(crate) fn tick_backed_off(&self) {
        self.recorder
            .register_counter(&Key::from_name("offload_cron_backoff_ticks_total"), &META)
            .increment(1);
    }

    /// A cron tick fired nothing because the schedule's previous run is unfinished
    /// (`overlap = "skip"`).
    pub(crate) fn tick_skipped(&self) {
        self.recorder
            .register_counter(&Key::from_name("offload_cron_skipped_ticks_total"), &META)
            .increment(1);
    }

    /// A cron tick cancelled the schedule's unfinished run to start a new one
    /// (`overlap = "replace"`).
    pub(crate) fn tick_replaced(&self) {
        self.recorder
            .register_counter(&Key::from_name("offload_cron_replaced_ticks_total"), &META)
            .increment(1);
    }

    /// A progress value or job event over `http.max_event_bytes`, replaced by a marker.
    pub(crate) fn event_capped(&self) {
        self.recorder
            .register_counter(&Key::from_name("offload_events_capped_total"), &META)
            .increment(1);
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &META)
    }

    /// The Prometheus text, with the scrape-time gauges.
    pub(crate) fn render(&self, counts: &Counts, workers: &[WorkerView]) -> String {
        let mut out = self.handle.render();
        out.push_str("# TYPE offload_jobs gauge\n");
        for ((pool, state), n) in counts {
            let _ = writeln!(
                out,
                "offload_jobs{{pool=\"{}\",state=\"{}\"}} {n}",
                escape(pool),
                state.as_str()
            );
        }
        out.push_str("# TYPE offload_worker_rss_bytes gauge\n");
        for w in workers {
            let _ = writeln!(
                out,
                "offload_worker_rss_bytes{{pool=\"{}\",pid=\"{}\"}} {}",
                escape(&w.pool),
                w.pid,
                w.rss
            );
        }
        out.push_str("# TYPE offload_worker_cpu_percent gauge\n");
        for w in workers {
            let _ = writeln!(
                out,
                "offload_worker_cpu_percent{{pool=\"{}\",pid=\"{}\"}} {:.1}",
                escape(&w.pool),
                w.pid,
                w.cpu
            );
        }
        // SQLite's own heap in this process (page caches, statements, schema): bounded by
        // `sqlite_cache_mb`; 0 on PostgreSQL.
        out.push_str("# TYPE offload_sqlite_memory_bytes gauge\n");
        let _ = writeln!(
            out,
            "offload_sqlite_memory_bytes {}",
            offload_store::sqlite::memory::memory_used()
        );
        out
    }
}

/// The scrape-time gauges of the rate and concurrency limits (`GET /v1/limits` in Prometheus
/// form): `offload_limit_tokens` (whole tokens in a rate limit's bucket),
/// `offload_limit_running` (jobs of the queue running, every node's), `offload_limit_held`
/// (queued jobs the limit holds back now), each labelled `kind` (`pool`/`job`) and `name`.
pub(crate) fn render_limits(limits: &[offload_store::ThrottleState]) -> String {
    let mut out = String::new();
    let label = |s: &offload_store::ThrottleState| {
        format!(
            "kind=\"{}\",name=\"{}\"",
            s.throttle.queue.kind.as_str(),
            escape(&s.throttle.queue.name)
        )
    };
    out.push_str("# TYPE offload_limit_tokens gauge\n");
    for s in limits {
        if let Some(t) = s.tokens {
            let _ = writeln!(out, "offload_limit_tokens{{{}}} {t}", label(s));
        }
    }
    out.push_str("# TYPE offload_limit_running gauge\n");
    for s in limits {
        let _ = writeln!(out, "offload_limit_running{{{}}} {}", label(s), s.running);
    }
    out.push_str("# TYPE offload_limit_held gauge\n");
    for s in limits {
        let _ = writeln!(out, "offload_limit_held{{{}}} {}", label(s), s.held_jobs());
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
