//! Cron schedules: from `offload.toml` (`source: config`) and from the API (`source: api`, kept
//! in the store). Each tick submits a job carrying `(schedule, tick)`, which the store keeps
//! unique: a tick fires once, across restarts (and, with a shared store, across nodes).
//!
//! Missed ticks (the daemon was down): `skip` fires nothing for them; `run_once` fires the most
//! recent missed tick once at start.
//!
//! Expressions (parsing, ticks, the minimum interval) are in `expr.rs`. A tick's job goes
//! through [`Engine::submit`] like any job, as [`Source::Cron`] (one attempt: the next tick is
//! its retry).

pub(crate) mod expr;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use croner::Cron;
use offload_store::{now_ms, CronSchedule, CronTick, Millis};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::config::CronSection;
use crate::engine::{Engine, EngineError, Source, Submit};
use expr::{next_after, parse, previous_before};

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
                crate::error::ConfigError::Invalid(format!("cron {:?}: {e}", s.name))
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
    ) -> Result<Option<Millis>, EngineError> {
        let limits = &engine.config().limits;
        let cron = expr::check(&s.cron, limits.min_cron_interval)?;
        {
            let entries = self.lock();
            if !entries.contains_key(&s.name) && entries.len() >= limits.max_cron_schedules {
                return Err(EngineError::Conflict(format!(
                    "there are {} schedules already, the limit max_cron_schedules = {} \
                     ([limits] in offload.toml): remove one first",
                    entries.len(),
                    limits.max_cron_schedules
                )));
            }
        }
        if !matches!(s.missed.as_str(), "skip" | "run_once") {
            return Err(EngineError::Invalid(
                "missed must be \"skip\" or \"run_once\"".into(),
            ));
        }
        if self
            .lock()
            .get(&s.name)
            .is_some_and(|e| e.source == "config")
        {
            return Err(EngineError::Conflict(format!(
                "schedule {:?} comes from offload.toml; change it there",
                s.name
            )));
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
    pub(crate) async fn delete(&self, engine: &Engine, name: &str) -> Result<(), EngineError> {
        match self.lock().get(name).map(|e| e.source) {
            None => return Err(EngineError::NotFound(format!("no schedule {name:?}"))),
            Some("config") => {
                return Err(EngineError::Conflict(format!(
                    "schedule {name:?} comes from offload.toml; remove it there"
                )))
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
    let source = Source::Cron(CronTick {
        schedule: s.name.clone(),
        tick,
    });
    match engine
        .submit(source, Submit::new(&s.job, s.params.clone()))
        .await
    {
        Ok(done) if !done.duplicate => {
            tracing::info!(schedule = %s.name, tick, "cron tick fired");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(schedule = %s.name, job = %s.job, error = %e, "cannot submit a cron job");
        }
    }
}
