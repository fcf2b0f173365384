//! The markup of the overview (counts, charts, workers), the pools and the schedules.

use std::collections::{BTreeMap, BTreeSet};

use maud::{html, Markup};
use offload_api::{
    JobState, PausedQueueList, PoolList, QueueKind, Schedule, ScheduleList, WorkerList,
};

use super::layout::{self, count, empty, first_job_hint, when};
use super::Caps;

const ORDER: [JobState; 8] = [
    JobState::Queued,
    JobState::Scheduled,
    JobState::Waiting,
    JobState::Running,
    JobState::Failed,
    JobState::Succeeded,
    JobState::Dead,
    JobState::Cancelled,
];

/// `/`.
pub(crate) fn overview(
    counts: &BTreeMap<(String, JobState), u64>,
    workers: &WorkerList,
    nodes: &offload_api::NodeList,
    now: i64,
) -> Markup {
    html! {
        h1 { "Overview" }
        section aria-labelledby="counts-h" {
            h2 #counts-h { "Jobs" }
            (self::counts(counts))
        }
        section aria-labelledby="charts-h" {
            h2 #charts-h { "History" }
            p.hint {
                "Per minute, from the store's history (every node; kept "
                code { "[history] retention_days" } "). "
                span role="group" aria-label="Window" {
                    button type="button" data-window="hour" aria-pressed="true" { "Last hour" }
                    " "
                    button type="button" data-window="day" aria-pressed="false" { "Last day" }
                }
            }
            div.charts {
                figure {
                    figcaption #chart-tp-cap { "Throughput (jobs / min)" }
                    div.chart data-chart="throughput" role="img" aria-labelledby="chart-tp-cap" {}
                }
                figure {
                    figcaption #chart-rt-cap { "Run time p50 / p95 and queue wait p50 / p95 (ms)" }
                    div.chart data-chart="runtime" role="img" aria-labelledby="chart-rt-cap" {}
                }
            }
        }
        section aria-labelledby="workers-h" {
            h2 #workers-h { "Workers" }
            (self::workers(workers, now))
        }
        section aria-labelledby="nodes-h" {
            h2 #nodes-h { "Nodes" }
            (super::views_nodes::nodes(nodes))
        }
    }
}

/// Totals per state, then a pool × state table; refreshed on `job` events.
pub(crate) fn counts(counts: &BTreeMap<(String, JobState), u64>) -> Markup {
    let mut total: BTreeMap<JobState, u64> = BTreeMap::new();
    let pools: BTreeSet<&str> = counts.keys().map(|(p, _)| p.as_str()).collect();
    for ((_, st), n) in counts {
        *total.entry(*st).or_default() += n;
    }
    html! {
        div #counts hx-get="/ui/overview/counts" hx-trigger="dash-live, dash-refresh from:body"
            hx-swap="innerHTML" hx-sync="this:queue last" data-live="job" {
            @if counts.is_empty() {
                (empty("No jobs yet.", first_job_hint()))
            } @else {
                ul.tiles {
                    @for st in ORDER {
                        li class={ "tile st-" (st.as_str()) } {
                            a href={ "/ui/jobs?state=" (st.as_str()) } {
                                span.n { (count(total.get(&st).copied().unwrap_or(0))) }
                                span.what { (st.as_str()) }
                            }
                        }
                    }
                }
                div.scroll { table {
                    caption.sr-only { "Jobs per pool and state" }
                    thead { tr { th scope="col" { "Pool" } @for st in ORDER { th scope="col" class="num" { (st.as_str()) } } } }
                    tbody { @for p in &pools { tr {
                        th scope="row" { (p) }
                        @for st in ORDER {
                            td.num { (count(counts.get(&((*p).to_owned(), st)).copied().unwrap_or(0))) }
                        }
                    } } }
                } }
            }
        }
    }
}

/// The workers with RSS and CPU; refreshed on `worker` events and every 5 s.
pub(crate) fn workers(list: &WorkerList, now: i64) -> Markup {
    let _ = now;
    html! {
        div #workers hx-get="/ui/overview/workers" hx-trigger="dash-live, every 5s"
            hx-swap="innerHTML" hx-sync="this:queue last" data-live="worker" {
            @if list.workers.is_empty() {
                (empty("No worker is running.", html! {
                    p { "Pools start their workers on the first job of their kind (or at start with "
                        code { "min" } " > 0 in " code { "offload.toml" } ")." }
                }))
            } @else {
                div.scroll { table {
                    caption.sr-only { "Workers" }
                    thead { tr {
                        th scope="col" { "Pool" } th scope="col" { "PID" } th scope="col" { "State" }
                        th scope="col" class="num" { "RSS" } th scope="col" class="num" { "CPU" }
                        th scope="col" class="num" { "In flight" } th scope="col" class="num" { "Done" }
                        th scope="col" class="num" { "Failures" } th scope="col" class="num" { "Restarts" }
                        th scope="col" class="num" { "Up" }
                    } }
                    tbody { @for w in &list.workers { tr {
                        td { (w.pool) } td.num { (w.pid) }
                        td { (format!("{:?}", w.state).to_lowercase()) }
                        td.num { (layout::bytes(w.rss)) }
                        td.num { (format!("{:.1} %", w.cpu)) }
                        td.num { (w.in_flight) } td.num { (count(w.jobs_done)) }
                        td.num { (w.failures) } td.num { (w.restarts) }
                        td.num { (layout::duration(w.uptime_ms)) }
                    } } }
                } }
            }
        }
    }
}

/// `/ui/pools`.
pub(crate) fn pools_page(
    pools: &PoolList,
    workers: &WorkerList,
    queues: &PausedQueueList,
    cap: usize,
    caps: Caps,
    now: i64,
) -> Markup {
    html! {
        h1 { "Pools" }
        p.lead { "Each pool runs one kind of job in resident workers (or a fresh process per job). \
                  Resizing sets the number of workers now; the configuration's min and max apply again on restart." }
        (pool_table(pools, workers, cap, caps, now))
        @if caps.pause {
            section aria-labelledby="names-h" {
                h2 #names-h { "Paused job names" }
                p.lead { "Pausing a job name holds every job of that name, in whatever pool: they stay queued and none starts \
                          (on every node of a shared store, across restarts) until it is resumed. Running ones finish." }
                (job_queue_table(queues, now))
                form.inline hx-post="/ui/queues/pause" hx-target="#flash" {
                    label { "Pause the job name " input type="text" name="job" required maxlength="1024" placeholder="e.g. images/resize"; }
                    " " button type="submit" { "Pause" }
                }
            }
        }
        section aria-labelledby="workers-h" {
            h2 #workers-h { "Workers" }
            (self::workers(workers, now))
        }
    }
}

/// The pools with their resize forms; refreshed on `job` and `worker` events.
pub(crate) fn pool_table(
    pools: &PoolList,
    workers: &WorkerList,
    cap: usize,
    caps: Caps,
    now: i64,
) -> Markup {
    let _ = (workers, now);
    html! {
        div #pool-table hx-get="/ui/pools/table" hx-trigger="dash-live, dash-refresh from:body"
            hx-swap="innerHTML" hx-sync="this:queue last" data-live="worker job queue" {
            @if pools.pools.is_empty() {
                (empty("No pool has started yet.", first_job_hint()))
            } @else {
                div.scroll { table {
                    caption.sr-only { "Pools" }
                    thead { tr {
                        th scope="col" { "Pool" } th scope="col" { "Kind" } th scope="col" class="num" { "Workers" }
                        th scope="col" class="num" { "Min–max" } th scope="col" class="num" { "Concurrency" }
                        th scope="col" class="num" { "Waiting" } th scope="col" class="num" { "Running" }
                        th scope="col" { "Resize" }
                    } }
                    tbody { @for p in &pools.pools {
                        @let slug = layout::encode(&p.name);
                        tr data-pool=(p.name) {
                            th scope="row" { (p.name) }
                            td { (format!("{:?}", p.kind).to_lowercase()) " · " (format!("{:?}", p.isolation).to_lowercase()) }
                            td.num data-workers { (p.workers) }
                            td.num { (p.min) "–" (p.max) }
                            td.num { (p.concurrency) }
                            td.num { (count(p.queued)) }
                            td.num { (count(p.running)) }
                            td {
                                @if format!("{:?}", p.isolation) == "Pool" {
                                    form.inline hx-post={ "/ui/pools/" (slug) "/resize" } hx-target="#flash" {
                                        label { span.sr-only { "New size of pool " (p.name) }
                                            input type="number" name="size" min="0" max=(cap) value=(p.workers) required size="4";
                                        }
                                        button type="submit" { "Resize" }
                                    }
                                    button type="button" aria-label={ "Recycle the workers of pool " (p.name) } hx-post={ "/ui/pools/" (slug) "/recycle" } hx-target="#flash"
                                        hx-confirm={ "Replace every worker of pool " (p.name) "? Each finishes its running jobs first." } { "Recycle" }
                                    @if caps.pause {
                                        @if p.paused {
                                            button type="button" aria-label={ "Resume pool " (p.name) } hx-post={ "/ui/pools/" (slug) "/resume" } hx-target="#flash" { "Resume" }
                                        } @else {
                                            button type="button" aria-label={ "Pause pool " (p.name) } hx-post={ "/ui/pools/" (slug) "/pause" } hx-target="#flash" { "Pause" }
                                        }
                                    }
                                } @else {
                                    span.hint { "a process per job" }
                                }
                            }
                        }
                    } }
                } }
            }
        }
    }
}

/// The paused job names with their resume buttons; refreshed on `queue` events and after an
/// action.
pub(crate) fn job_queue_table(queues: &PausedQueueList, now: i64) -> Markup {
    let names: Vec<_> = queues
        .queues
        .iter()
        .filter(|q| q.kind == QueueKind::Job)
        .collect();
    html! {
        div #queue-table hx-get="/ui/queues/table" hx-trigger="dash-live, dash-refresh from:body"
            hx-swap="innerHTML" hx-sync="this:queue last" data-live="queue" {
            @if names.is_empty() {
                p.hint { "No job name is paused." }
            } @else {
                div.scroll { table {
                    caption.sr-only { "Paused job names" }
                    thead { tr {
                        th scope="col" { "Job name" } th scope="col" { "Paused" } th scope="col" { span.sr-only { "Actions" } }
                    } }
                    tbody { @for q in &names {
                        tr data-queue=(q.name) {
                            th scope="row" { a href={ "/ui/jobs?state=queued&job=" (layout::encode(&q.name)) } { (q.name) } }
                            td { (when(q.paused_at, now)) }
                            td { button type="button" aria-label={ "Resume job name " (q.name) }
                                hx-post={ "/ui/queues/" (layout::encode(&q.name)) "/resume" } hx-target="#flash" { "Resume" } }
                        }
                    } }
                } }
            }
        }
    }
}

/// `/ui/schedules`.
pub(crate) fn schedules_page(list: &ScheduleList, now: i64) -> Markup {
    html! {
        h1 { "Schedules" }
        p.lead { "Cron schedules submit their job at each tick. A paused schedule fires nothing until resumed; \
                  Run now submits one run at once, paused or not." }
        (schedule_table(list, now))
    }
}

fn last_outcome(s: &Schedule, now: i64) -> Markup {
    let c = &s.counters;
    let failed_last = match (c.last_success_at, c.last_failure_at) {
        (Some(ok), Some(bad)) => bad > ok,
        (None, Some(_)) => true,
        _ => false,
    };
    html! {
        @if c.runs == 0 { "no run yet" }
        @else if failed_last {
            span.badge.st-dead { "failed" } " " (when(c.last_failure_at.unwrap_or(0), now))
            @if c.consecutive_failures > 1 { " (" (c.consecutive_failures) " in a row)" }
            @if let Some(e) = &c.last_error { br; small { (e.get("message").and_then(|m| m.as_str()).map_or_else(|| e.to_string(), str::to_owned)) } }
        } @else if let Some(ok) = c.last_success_at {
            span.badge.st-succeeded { "succeeded" } " " (when(ok, now))
        } @else { "running" }
        " · " (count(c.runs)) " runs"
    }
}

/// The schedules table; refreshed on `schedule` and `job` events and after an action.
pub(crate) fn schedule_table(list: &ScheduleList, now: i64) -> Markup {
    html! {
        div #schedule-table hx-get="/ui/schedules/table" hx-trigger="dash-live, dash-refresh from:body"
            hx-swap="innerHTML" hx-sync="this:queue last" data-live="schedule job" {
            @if list.schedules.is_empty() {
                (empty("No schedule yet.", html! {
                    p { "Add one in " code { "offload.toml" } " (" code { "[[cron]]" } ") or through the API:" }
                    pre { "offload cron add nightly '0 3 * * *' cleanup" }
                }))
            } @else {
                div.scroll { table {
                    caption.sr-only { "Schedules" }
                    thead { tr {
                        th scope="col" { "Schedule" } th scope="col" { "When" } th scope="col" { "Job" }
                        th scope="col" { "Next run" } th scope="col" { "Last outcome" } th scope="col" { "State" }
                        th scope="col" { span.sr-only { "Actions" } }
                    } }
                    tbody { @for s in &list.schedules {
                        @let slug = layout::encode(&s.name);
                        tr data-schedule=(s.name) {
                            th scope="row" { (s.name) br; small { (format!("{:?}", s.source).to_lowercase()) } }
                            td { code { (s.cron) } @if let Some(tz) = &s.timezone { br; small { (tz) } } }
                            td { (s.job) }
                            td { @match (s.next_at, &s.paused) {
                                (_, Some(_)) => "paused",
                                (Some(at), None) => (when(at, now)),
                                (None, None) => "—",
                            } }
                            td { (last_outcome(s, now)) br; a href={ "/ui/jobs?schedule=" (slug) } aria-label={ "Runs of schedule " (s.name) } { "runs" } }
                            td { @match &s.paused {
                                Some(p) => { span.badge.st-cancelled { "paused" } br; small { (p.reason) ", " (when(p.at, now)) } }
                                None => span.badge.st-running { "active" },
                            } }
                            td { span.actions {
                                @if s.paused.is_some() {
                                    button type="button" hx-post={ "/ui/schedules/" (slug) "/resume" } hx-target="#flash"
                                        aria-label={ "Resume schedule " (s.name) } { "Resume" }
                                } @else {
                                    button type="button" hx-post={ "/ui/schedules/" (slug) "/pause" } hx-target="#flash"
                                        aria-label={ "Pause schedule " (s.name) } { "Pause" }
                                }
                                button type="button" hx-post={ "/ui/schedules/" (slug) "/run" } hx-target="#flash"
                                    aria-label={ "Run now: schedule " (s.name) } { "Run now" }
                            } }
                        }
                    } }
                } }
            }
        }
    }
}
