//! Cron schedules: from `offload.toml` (`source: config`) and from the API (`source: api`, kept
//! in the store). Each tick submits a job carrying `(schedule, tick)`, which the store keeps
//! unique: a tick fires once, across restarts (and, with a shared store, across nodes).
//!
//! Missed ticks (the daemon was down): `skip` fires nothing for them; `run_once` fires the most
//! recent missed tick once at start.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use offload_store::{now_ms, CronSchedule, CronTick, Millis};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::config::{CronSection, Limits};
use crate::engine::{Engine, Submit};
use crate::error::ApiError;

/// A schedule as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct ScheduleView {
    /// Its name.
    pub(crate) name: String,
    /// Its expression.
    pub cron: String,
    /// The job.
    pub job: String,
    /// Its params.
    pub params: Value,
    /// `skip` or `run_once`.
    pub missed: String,
    /// `config` or `api`.
    pub source: &'static str,
    /// The next tick.
    pub next_at: Option<Millis>,
}

/// Parses a cron expression (5 or 6 fields).
///
/// # Errors
///
/// `400 invalid_cron` with the parser's message.
pub(crate) fn parse(expr: &str) -> Result<Cron, ApiError> {
    Cron::from_str(expr).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            offload_api::ErrorCode::InvalidCron,
            format!("{expr:?}: {e}"),
        )
    })
}

/// How many consecutive ticks [`check`] looks at to find the shortest interval (every field
/// of an expression cycles within this many ticks, so the shortest gap shows among them).
const GAP_SAMPLE: usize = 256;

/// Parses `expr` and checks it against `[limits] min_cron_interval_ms`: no two of its next
/// [`GAP_SAMPLE`] ticks may be closer than the limit.
///
/// # Errors
///
/// `400 invalid_cron` for a bad expression or one that fires too often, naming the limit.
pub(crate) fn check(expr: &str, limits: &Limits) -> Result<Cron, ApiError> {
    let cron = parse(expr)?;
    let min = i64::try_from(limits.min_cron_interval.as_millis()).unwrap_or(i64::MAX);
    if let Some(gap) = shortest_gap(&cron, now_ms()) {
        if gap < min {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                offload_api::ErrorCode::InvalidCron,
                format!(
                    "{expr:?} fires every {} ms, more often than min_cron_interval_ms = {min} \
                     ([limits] in offload.toml)",
                    gap
                ),
            ));
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

fn previous_before(cron: &Cron, before: Millis) -> Option<Millis> {
    cron.find_previous_occurrence(&to_dt(before), false)
        .ok()
        .map(|d| d.timestamp_millis())
}

struct Entry {
    schedule: CronSchedule,
    cron: Cron,
    source: &'static str,
    next_at: Option<Millis>,
}

/// The scheduler.
pub(crate) struct Scheduler {
    entries: Mutex<HashMap<String, Entry>>,
    changed: Notify,
}

impl Scheduler {
    /// Loads the schedules (config and store), applies the missed-tick policy, and starts the
    /// ticking task.
    pub(crate) async fn start(
        engine: Arc<Engine>,
        config: &[CronSection],
    ) -> Result<Arc<Self>, crate::error::ServeError> {
        let mut list: Vec<(CronSchedule, &'static str)> = config
            .iter()
            .map(|c| {
                (
                    CronSchedule {
                        name: c.name.clone(),
                        cron: c.cron.clone(),
                        job: c.job.clone(),
                        params: c.params.clone(),
                        missed: c.missed.clone(),
                        created_at: 0,
                    },
                    "config",
                )
            })
            .collect();
        for s in engine.store.schedules().await? {
            if !list.iter().any(|(c, _)| c.name == s.name) {
                list.push((s, "api"));
            }
        }
        let max = engine.config().limits.max_cron_schedules;
        if list.len() > max {
            // Stored before the limit was lowered: kept, but no new one is accepted.
            tracing::warn!(
                schedules = list.len(),
                max,
                "more cron schedules than max_cron_schedules ([limits]); POST /v1/cron refuses new ones"
            );
        }
        let this = Arc::new(Self {
            entries: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        });
        let now = now_ms();
        for (s, source) in list {
            let cron = parse(&s.cron).map_err(|e| {
                crate::error::ConfigError::Invalid(format!("cron {:?}: {}", s.name, e.message))
            })?;
            if s.missed == "run_once" {
                let last = engine.store.last_tick(&s.name).await?;
                if let Some(prev) = previous_before(&cron, now) {
                    if last.is_none_or(|l| l < prev) {
                        fire(&engine, &s, prev).await;
                    }
                }
            }
            let next_at = next_after(&cron, now);
            this.lock().insert(
                s.name.clone(),
                Entry {
                    schedule: s,
                    cron,
                    source,
                    next_at,
                },
            );
        }
        tokio::spawn(Arc::clone(&this).run(engine));
        Ok(this)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every schedule, by name.
    pub(crate) fn list(&self) -> Vec<ScheduleView> {
        let mut v: Vec<ScheduleView> = self
            .lock()
            .values()
            .map(|e| ScheduleView {
                name: e.schedule.name.clone(),
                cron: e.schedule.cron.clone(),
                job: e.schedule.job.clone(),
                params: e.schedule.params.clone(),
                missed: e.schedule.missed.clone(),
                source: e.source,
                next_at: e.next_at,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Adds or replaces an API schedule (stored).
    pub(crate) async fn put(
        &self,
        engine: &Engine,
        s: CronSchedule,
    ) -> Result<Option<Millis>, ApiError> {
        let limits = &engine.config().limits;
        let cron = check(&s.cron, limits)?;
        {
            let entries = self.lock();
            if !entries.contains_key(&s.name) && entries.len() >= limits.max_cron_schedules {
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    offload_api::ErrorCode::Conflict,
                    format!(
                        "there are {} schedules already, the limit max_cron_schedules = {} \
                         ([limits] in offload.toml): remove one first",
                        entries.len(),
                        limits.max_cron_schedules
                    ),
                ));
            }
        }
        if !matches!(s.missed.as_str(), "skip" | "run_once") {
            return Err(ApiError::bad_request(
                "missed must be \"skip\" or \"run_once\"",
            ));
        }
        if self
            .lock()
            .get(&s.name)
            .is_some_and(|e| e.source == "config")
        {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                offload_api::ErrorCode::Conflict,
                format!(
                    "schedule {:?} comes from offload.toml; change it there",
                    s.name
                ),
            ));
        }
        engine.route(&s.job).await?;
        engine.store.put_schedule(s.clone()).await?;
        let next_at = next_after(&cron, now_ms());
        self.lock().insert(
            s.name.clone(),
            Entry {
                schedule: s,
                cron,
                source: "api",
                next_at,
            },
        );
        self.changed.notify_one();
        Ok(next_at)
    }

    /// Deletes an API schedule.
    pub(crate) async fn delete(&self, engine: &Engine, name: &str) -> Result<(), ApiError> {
        match self.lock().get(name).map(|e| e.source) {
            None => return Err(ApiError::not_found(format!("no schedule {name:?}"))),
            Some("config") => {
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    offload_api::ErrorCode::Conflict,
                    format!("schedule {name:?} comes from offload.toml; remove it there"),
                ))
            }
            Some(_) => {}
        }
        engine.store.delete_schedule(name).await?;
        self.lock().remove(name);
        self.changed.notify_one();
        Ok(())
    }

    async fn run(self: Arc<Self>, engine: Arc<Engine>) {
        loop {
            let now = now_ms();
            let due: Vec<(CronSchedule, Millis)> = {
                let mut entries = self.lock();
                let mut due = Vec::new();
                for e in entries.values_mut() {
                    while let Some(at) = e.next_at.filter(|at| *at <= now) {
                        due.push((e.schedule.clone(), at));
                        e.next_at = next_after(&e.cron, at);
                    }
                }
                due
            };
            for (s, tick) in due {
                fire(&engine, &s, tick).await;
            }
            let next = self.lock().values().filter_map(|e| e.next_at).min();
            let wait = next.map_or(Duration::from_secs(60), |at| {
                Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0).max(1))
            });
            let _ =
                tokio::time::timeout(wait.min(Duration::from_secs(60)), self.changed.notified())
                    .await;
        }
    }
}

/// Submits the job of one tick (the store ignores a tick that already fired).
async fn fire(engine: &Engine, s: &CronSchedule, tick: Millis) {
    let submit = Submit {
        cron: Some(CronTick {
            schedule: s.name.clone(),
            tick,
        }),
        max_attempts: Some(1),
        ..Submit::new(&s.job, s.params.clone())
    };
    let job = match engine.prepare(submit, 1).await {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(schedule = %s.name, job = %s.job, error = %e.message, "cron job cannot run");
            return;
        }
    };
    match engine.commit(vec![job]).await {
        Ok(done) if done.first().is_some_and(|d| !d.duplicate) => {
            tracing::info!(schedule = %s.name, tick, "cron tick fired");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(schedule = %s.name, error = %e.message, "cannot submit a cron job")
        }
    }
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
        let limits = Limits::default();
        assert!(check("* * * * *", &limits).is_ok(), "every minute is 60 s");
        assert!(check("0 3 * * *", &limits).is_ok());
        let e = check("* * * * * *", &limits).unwrap_err();
        assert_eq!(e.code, "invalid_cron");
        assert!(
            e.message.contains("min_cron_interval_ms = 60000"),
            "{}",
            e.message
        );
        // Close ticks only once a day are found too.
        assert!(check("0,30 0 3 * * *", &limits).is_err());
        let every_second = Limits {
            min_cron_interval: Duration::from_secs(1),
            ..Limits::default()
        };
        assert!(check("* * * * * *", &every_second).is_ok());
        assert_eq!(
            shortest_gap(&parse("*/5 * * * * *").unwrap(), 0),
            Some(5000)
        );
    }
}
