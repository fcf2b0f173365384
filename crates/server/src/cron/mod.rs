//! Cron schedules: from `offload.toml` (`source: config`) and from the API (`source: api`, kept
//! in the store). Each tick submits a job carrying `(schedule, tick)`, which the store keeps
//! unique: a tick fires once, across restarts (and, with a shared store, across nodes).
//!
//! Missed ticks (the daemon was down): `skip` fires nothing for them; `run_once` fires the most
//! recent missed tick once at start.
//!
//! Guard rails (`offload_schedule::policy`, shared with the library's scheduler; the daemon's
//! checks in `checks.rs`): with `overlap = "skip"` (the default) a tick fires nothing while a
//! run of the schedule is unfinished; with `"replace"` it cancels that run (killed on the node
//! that holds it: `Engine::cancel_runs_of`) and fires; `pause_after_failures = N` pauses the schedule once N runs
//! in a row ended `dead`. The counters and the pause are kept by the store (its triggers count
//! every run as it is submitted and ends), so on a shared store every node sees the same: the
//! scheduler reads them before each tick and at least once a minute, when it also pauses a
//! schedule that reached its limit (a `schedule` event and `offload_cron_paused_total`). The
//! check and the submit are two steps, which is safe: two nodes racing for one tick still
//! create one job (the tick is unique), and the next tick comes after this one is committed.
//!
//! Expressions (parsing, ticks, the minimum interval) are `offload_schedule::expr`. A tick's job goes
//! through [`Engine::submit`] like any job, as [`Source::Cron`] (one attempt: the next tick is
//! its retry).

pub(crate) mod checks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use croner::Cron;
use offload_store::{now_ms, CronSchedule, CronState, CronTick, Millis, Submitted};
use tokio::sync::Notify;

use crate::config::CronSection;
use crate::engine::{Engine, EngineError, Source, Submit};
use crate::events::{ScheduleChange, ServerEvent};
use offload_schedule::expr::{next_after, parse, previous_before};
use offload_schedule::{policy::decide, policy::should_pause, Decision, Policy, Status};

/// A schedule as the API shows it: its definition, where it comes from, its next tick and its
/// counters (`state`: `None` before its first run).
#[derive(Debug, Clone)]
pub(crate) struct ScheduleView {
    /// Its definition.
    pub(crate) schedule: CronSchedule,
    /// `config` or `api`.
    pub(crate) source: &'static str,
    /// The next tick.
    pub(crate) next_at: Option<Millis>,
    /// Its counters and pause, as last read from the store.
    pub(crate) state: Option<CronState>,
}

#[derive(Clone)]
struct Entry {
    schedule: CronSchedule,
    cron: Cron,
    policy: Policy,
    source: &'static str,
    next_at: Option<Millis>,
    state: Option<CronState>,
}

impl Entry {
    fn status(&self) -> Status {
        self.state
            .as_ref()
            .map_or_else(Status::default, |s| Status {
                paused: s.paused_at.is_some(),
                consecutive_failures: s.consecutive_failures,
                active: s.active,
                last_failure_at: s.last_failure_at,
            })
    }
}

/// Checks a schedule's expression (against `[limits]` when `limited`) and policies.
fn compile(
    engine: &Engine,
    s: &CronSchedule,
    limited: bool,
) -> Result<(Cron, Policy), EngineError> {
    let cron = if limited {
        checks::expression(&s.cron, engine.config().limits.min_cron_interval)?
    } else {
        parse(&s.cron)?
    };
    let policy = checks::policy(&s.overlap, s.pause_after_failures, s.timezone.as_deref())?;
    let policy = checks::pacing(policy, s)?;
    Ok((cron, policy))
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
                        overlap: c.overlap.clone(),
                        pause_after_failures: c.pause_after_failures,
                        timezone: c.timezone.clone(),
                        jitter_ms: c.jitter_ms,
                        failure_backoff_ms: c.failure_backoff_ms,
                        failure_backoff_max_ms: c.failure_backoff_max_ms,
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
        let mut states = states_by_name(&engine).await?;
        let now = now_ms();
        for (s, source) in list {
            let (cron, policy) = compile(&engine, &s, false).map_err(|e| {
                crate::error::ConfigError::Invalid(format!("cron {:?}: {e}", s.name))
            })?;
            let mut entry = Entry {
                next_at: next_after(&cron, policy.tz, now),
                state: states.remove(&s.name),
                schedule: s,
                cron,
                policy,
                source,
            };
            let mut told = Told(None);
            if entry.schedule.missed == "run_once" {
                let last = engine.store.last_tick(&entry.schedule.name).await?;
                if let Some(prev) = previous_before(&entry.cron, entry.policy.tz, now) {
                    if last.is_none_or(|l| l < prev) {
                        told = this.tick(&engine, &mut entry, prev).await;
                    }
                }
            }
            this.lock().insert(entry.schedule.name.clone(), entry);
            told.tell(&engine);
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
                schedule: e.schedule.clone(),
                source: e.source,
                next_at: e.next_at,
                state: e.state.clone(),
            })
            .collect();
        v.sort_by(|a, b| a.schedule.name.cmp(&b.schedule.name));
        v
    }

    /// Adds or replaces an API schedule (stored). Everything is checked before the store is
    /// written: a refused schedule leaves nothing behind.
    pub(crate) async fn put(
        &self,
        engine: &Engine,
        s: CronSchedule,
    ) -> Result<Option<Millis>, EngineError> {
        let limits = &engine.config().limits;
        let (cron, policy) = compile(engine, &s, true)?;
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
        self.source_of(&s.name, "change it there")?;
        engine.route(&s.job).await?;
        engine.store.put_schedule(s.clone()).await?;
        let next_at = next_after(&cron, policy.tz, now_ms());
        let mut entries = self.lock();
        let state = entries.remove(&s.name).and_then(|e| e.state);
        entries.insert(
            s.name.clone(),
            Entry {
                schedule: s,
                cron,
                policy,
                source: "api",
                next_at,
                state,
            },
        );
        drop(entries);
        self.changed.notify_one();
        Ok(next_at)
    }

    /// The source of schedule `name`; [`EngineError::Conflict`] for one of `offload.toml`
    /// (saying to `fix` it there).
    fn source_of(&self, name: &str, fix: &str) -> Result<Option<&'static str>, EngineError> {
        match self.lock().get(name).map(|e| e.source) {
            Some("config") => Err(EngineError::Conflict(format!(
                "schedule {name:?} comes from offload.toml; {fix}"
            ))),
            source => Ok(source),
        }
    }

    /// Deletes an API schedule.
    pub(crate) async fn delete(&self, engine: &Engine, name: &str) -> Result<(), EngineError> {
        if self.source_of(name, "remove it there")?.is_none() {
            return Err(EngineError::NotFound(format!("no schedule {name:?}")));
        }
        engine.store.delete_schedule(name).await?;
        self.lock().remove(name);
        self.changed.notify_one();
        Ok(())
    }

    fn known(&self, name: &str) -> Result<(), EngineError> {
        if self.lock().contains_key(name) {
            Ok(())
        } else {
            Err(EngineError::NotFound(format!("no schedule {name:?}")))
        }
    }

    /// Pauses a schedule (any source: the pause is kept by the store, for every node); one
    /// paused already stays as it was.
    pub(crate) async fn pause(&self, engine: &Engine, name: &str) -> Result<(), EngineError> {
        self.known(name)?;
        // Already paused: it stays as it was (and nothing is told again).
        let paused = engine
            .store
            .pause_schedule(name, now_ms(), "manual")
            .await?;
        // Told after the refresh: a reader woken by the event (the dashboard's table) reads
        // the schedules from here, and must see the pause.
        self.refresh(engine).await;
        if paused {
            engine.metrics.schedule_paused("manual");
            changed(engine, name, "paused", Some("manual".into()), None);
        }
        Ok(())
    }

    /// Resumes a schedule; its failure count starts afresh.
    pub(crate) async fn resume(&self, engine: &Engine, name: &str) -> Result<(), EngineError> {
        self.known(name)?;
        engine.store.resume_schedule(name).await?;
        self.refresh(engine).await;
        changed(engine, name, "resumed", None, None);
        Ok(())
    }

    /// Submits the schedule's job now, whatever its pause and overlap policy (an operator's
    /// explicit request), as a tick at the current time.
    pub(crate) async fn run_now(
        &self,
        engine: &Engine,
        name: &str,
    ) -> Result<Submitted, EngineError> {
        let s = self
            .lock()
            .get(name)
            .map(|e| e.schedule.clone())
            .ok_or_else(|| EngineError::NotFound(format!("no schedule {name:?}")))?;
        // An operator's run starts now: no jitter.
        let done = submit(engine, &s, now_ms(), None).await?;
        self.refresh(engine).await;
        Ok(done)
    }

    /// Reads the API's schedules from the store again (another node created, changed or
    /// deleted one, or paused or resumed one): adds and replaces what changed, drops what is
    /// gone, and re-reads the counters and pauses. Schedules of `offload.toml` stay as they are.
    pub(crate) async fn sync(&self, engine: &Engine) {
        let stored = match engine.store.schedules().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the schedules another node changed");
                return;
            }
        };
        let now = now_ms();
        {
            let mut entries = self.lock();
            entries.retain(|name, e| e.source != "api" || stored.iter().any(|s| &s.name == name));
            for s in stored {
                if entries
                    .get(&s.name)
                    .is_some_and(|e| e.source == "config" || e.schedule == s)
                {
                    continue;
                }
                match compile(engine, &s, false) {
                    Ok((cron, policy)) => {
                        let state = entries.remove(&s.name).and_then(|e| e.state);
                        entries.insert(
                            s.name.clone(),
                            Entry {
                                next_at: next_after(&cron, policy.tz, now),
                                schedule: s,
                                cron,
                                policy,
                                source: "api",
                                state,
                            },
                        );
                    }
                    Err(e) => {
                        tracing::warn!(schedule = %s.name, error = %e, "a stored schedule does not compile here");
                    }
                }
            }
        }
        self.refresh(engine).await;
        self.changed.notify_one();
    }

    /// Reads every schedule's counters from the store (kept as they were on an error).
    async fn refresh(&self, engine: &Engine) {
        match states_by_name(engine).await {
            Ok(mut states) => {
                for (name, e) in self.lock().iter_mut() {
                    e.state = states.remove(name);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the cron counters"),
        }
    }

    /// Pauses the schedules that reached `pause_after_failures` since the last look.
    async fn pause_failing(&self, engine: &Engine) {
        let failing: Vec<String> = self
            .lock()
            .values()
            .filter(|e| should_pause(&e.policy, e.status()))
            .map(|e| e.schedule.name.clone())
            .collect();
        for name in failing {
            let Some(mut e) = self.lock().get(&name).cloned() else {
                continue;
            };
            let told = self.pause_for_failures(engine, &mut e).await;
            self.write_back(e);
            told.tell(engine);
        }
    }

    /// Keeps the next tick and counters of a copy of an entry worked on outside the lock,
    /// unless the schedule was replaced or deleted meanwhile (that change wins). The entry
    /// stays in the map meanwhile, so the list and pause/resume/run always find it.
    fn write_back(&self, e: Entry) {
        if let Some(current) = self.lock().get_mut(&e.schedule.name) {
            if current.schedule == e.schedule {
                current.next_at = e.next_at;
                current.state = e.state;
            }
        }
    }

    /// Pauses `e` for its failures; what to tell once `e` is written back (a reader woken by
    /// the event reads the schedules from here).
    async fn pause_for_failures(&self, engine: &Engine, e: &mut Entry) -> Told {
        let Some(state) = e.state.as_mut() else {
            return Told(None);
        };
        let reason = format!("{} consecutive failures", state.consecutive_failures);
        let now = now_ms();
        match engine
            .store
            .pause_schedule(&e.schedule.name, now, &reason)
            .await
        {
            Ok(true) => {}
            // Another node paused it first, and told.
            Ok(false) => {
                state.paused_at = Some(now);
                return Told(None);
            }
            Err(err) => {
                tracing::error!(schedule = %e.schedule.name, error = %err, "cannot pause a schedule");
                return Told(None);
            }
        }
        tracing::warn!(schedule = %e.schedule.name, %reason, "cron schedule paused");
        engine.metrics.schedule_paused("failures");
        let told = Told(Some((
            e.schedule.name.clone(),
            reason.clone(),
            state.last_error.clone(),
        )));
        state.paused_at = Some(now);
        state.paused_reason = Some(reason);
        told
    }

    /// One due tick of `e`: fires, skips, replaces or pauses as [`decide`] says.
    async fn tick(&self, engine: &Engine, e: &mut Entry, tick: Millis) -> Told {
        match decide(&e.policy, e.status(), now_ms()) {
            Decision::Fire => fire(engine, e, tick).await,
            Decision::Replace => {
                match engine.cancel_runs_of(&e.schedule.name).await {
                    Ok(n) => {
                        tracing::info!(schedule = %e.schedule.name, tick, cancelled = n, "cron tick replaces the unfinished run");
                        engine.metrics.tick_replaced();
                    }
                    // The new run starts anyway: `replace` never leaves the schedule idle.
                    Err(err) => tracing::error!(
                        schedule = %e.schedule.name, error = %err,
                        "cannot cancel the unfinished run a cron tick replaces"
                    ),
                }
                fire(engine, e, tick).await;
            }
            Decision::SkipOverlap => {
                tracing::info!(schedule = %e.schedule.name, tick, "cron tick skipped: the previous run is unfinished");
                engine.metrics.tick_skipped();
            }
            Decision::Pause => return self.pause_for_failures(engine, e).await,
            Decision::SkipBackoff => {
                tracing::info!(schedule = %e.schedule.name, tick, "cron tick skipped: waiting after failed runs (failure_backoff_ms)");
                engine.metrics.tick_backed_off();
            }
            Decision::Paused => {}
        }
        Told(None)
    }

    async fn run(self: Arc<Self>, engine: Arc<Engine>) {
        loop {
            let now = now_ms();
            let any_due = self
                .lock()
                .values()
                .any(|e| e.next_at.is_some_and(|at| at <= now));
            // Fresh counters before a tick (another node may have paused or run it), and at
            // least once a minute for the list and the pause.
            self.refresh(&engine).await;
            self.pause_failing(&engine).await;
            if any_due {
                let names: Vec<String> = self.lock().keys().cloned().collect();
                for name in names {
                    let Some(mut e) = self.lock().get(&name).cloned() else {
                        continue;
                    };
                    let mut told = Vec::new();
                    while let Some(at) = e.next_at.filter(|at| *at <= now) {
                        e.next_at = next_after(&e.cron, e.policy.tz, at);
                        told.push(self.tick(&engine, &mut e, at).await);
                    }
                    self.write_back(e);
                    for t in told {
                        t.tell(&engine);
                    }
                }
                // What the ticks did (and a pause or resume that came meanwhile), for the list.
                self.refresh(&engine).await;
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

async fn states_by_name(
    engine: &Engine,
) -> Result<HashMap<String, CronState>, offload_store::StoreError> {
    Ok(engine
        .store
        .cron_states()
        .await?
        .into_iter()
        .map(|s| (s.schedule.clone(), s))
        .collect())
}

/// A pause for failures to announce once its entry is written back: (schedule, reason, the
/// last error).
#[must_use]
struct Told(Option<(String, String, Option<serde_json::Value>)>);

impl Told {
    fn tell(self, engine: &Engine) {
        if let Some((name, reason, last_error)) = self.0 {
            changed(engine, &name, "paused", Some(reason), last_error);
        }
    }
}

fn changed(
    engine: &Engine,
    name: &str,
    change: &'static str,
    reason: Option<String>,
    last_error: Option<serde_json::Value>,
) {
    let _ = engine.events.send(ServerEvent::Schedule(ScheduleChange {
        schedule: name.to_owned(),
        change,
        reason,
        last_error,
    }));
}

/// Submits the job of tick `tick` of `e` and marks the schedule active.
async fn fire(engine: &Engine, e: &mut Entry, tick: Millis) {
    let delay = jitter(&e.policy, &e.schedule.name, tick);
    match submit(engine, &e.schedule, tick, delay).await {
        Ok(done) => {
            if !done.duplicate {
                tracing::info!(schedule = %e.schedule.name, tick, "cron tick fired");
            }
            if let Some(s) = e.state.as_mut() {
                s.active = true;
            } else {
                e.state = Some(CronState {
                    schedule: e.schedule.name.clone(),
                    active: true,
                    ..CronState::default()
                });
            }
        }
        Err(err) => tracing::error!(
            schedule = %e.schedule.name, job = %e.schedule.job, error = %err,
            "cannot submit a cron job"
        ),
    }
}

/// The jitter of one tick's run (`jitter_ms`): drawn by the shared rule from a generator
/// seeded by the schedule's name and the tick, so every node that might submit the tick gives
/// its job the same due time.
fn jitter(policy: &Policy, name: &str, tick: Millis) -> Option<u64> {
    use rand::SeedableRng;
    use std::hash::{Hash, Hasher};
    if policy.jitter.is_zero() {
        return None;
    }
    let mut h = std::hash::DefaultHasher::new();
    (name, tick).hash(&mut h);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(h.finish());
    u64::try_from(policy.jitter_delay(&mut rng).as_millis()).ok()
}

/// Submits the job of one tick (the store answers a tick that already fired with its job),
/// due `delay_ms` after now (its jitter).
async fn submit(
    engine: &Engine,
    s: &CronSchedule,
    tick: Millis,
    delay_ms: Option<u64>,
) -> Result<Submitted, EngineError> {
    let source = Source::Cron(CronTick {
        schedule: s.name.clone(),
        tick,
    });
    let mut job = Submit::new(&s.job, s.params.clone());
    job.delay_ms = delay_ms;
    let done = engine.submit(source, job).await?;
    Ok(done)
}
