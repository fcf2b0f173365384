//! `NativeSchedule`: `offload_schedule::Scheduler` on a `NativePool`, for `pool.schedule(…)`.

use std::sync::Mutex;
use std::time::Duration;

use napi_derive::napi;
use offload_pool::RunOptions;
use offload_schedule::{
    FailureBackoff, Policy, ScheduleError, ScheduleSpec, Scheduled, Scheduler, Trigger,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::pool::NativePool;
use crate::{emit, js_error, ms, parse, EventFn};

/// The schedule the JavaScript layer sends (validated there; checked again here).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScheduleOpts {
    name: String,
    job: String,
    #[serde(default)]
    params: Value,
    every_ms: Option<u64>,
    cron: Option<String>,
    timezone: Option<String>,
    #[serde(default)]
    overlap: Option<String>,
    pause_after_failures: Option<u32>,
    backoff_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    jitter_ms: Option<u64>,
    #[serde(default)]
    immediately: bool,
    timeout_ms: Option<u64>,
}

fn invalid(e: ScheduleError) -> napi::Error {
    js_error("InvalidArgument", e)
}

impl ScheduleOpts {
    fn spec(self) -> napi::Result<ScheduleSpec> {
        let trigger = match (self.every_ms, &self.cron) {
            (Some(every), None) => Trigger::every(ms(every)).map_err(invalid)?,
            (None, Some(expr)) => Trigger::cron(expr).map_err(invalid)?,
            _ => {
                return Err(js_error(
                    "InvalidArgument",
                    "schedule: give exactly one of `every` and `cron`",
                ))
            }
        };
        let mut policy = Policy::check(
            self.overlap.as_deref().unwrap_or("skip"),
            self.pause_after_failures,
            self.timezone.as_deref(),
        )
        .map_err(invalid)?
        .with_jitter(ms(self.jitter_ms.unwrap_or(0)))
        .map_err(invalid)?;
        if let Some(base) = self.backoff_ms {
            let max = self.backoff_max_ms.map_or(ms(base) * 32, ms);
            policy.failure_backoff = Some(FailureBackoff::new(ms(base), max).map_err(invalid)?);
        }
        let mut run = RunOptions::default();
        if let Some(t) = self.timeout_ms {
            run = run.timeout(ms(t));
        }
        Ok(ScheduleSpec::new(self.name, self.job, self.params, trigger)
            .policy(policy)
            .run_options(run)
            .immediately(self.immediately))
    }
}

/// Checks a schedule (JSON) without starting it: the JavaScript layer throws at once on a bad
/// expression, time zone or policy.
#[napi]
pub fn check_schedule(spec: String) -> napi::Result<()> {
    parse::<ScheduleOpts>("schedule options", &spec)?
        .spec()
        .map(drop)
}

/// A running schedule.
#[napi]
pub struct NativeSchedule {
    inner: Mutex<Option<Scheduled>>,
}

/// Starts `spec` (JSON) on `pool`. `on_event` gets each `ScheduleEvent` as JSON
/// (`{"event": "started" | "succeeded" | …, …}`), the last being `{"event": "stopped"}`.
#[napi]
pub fn start_schedule(
    pool: &NativePool,
    spec: String,
    on_event: EventFn,
) -> napi::Result<NativeSchedule> {
    let spec = parse::<ScheduleOpts>("schedule options", &spec)?.spec()?;
    let scheduled = napi::bindgen_prelude::within_runtime_if_available(|| {
        let scheduled = Scheduler::start(pool.child_pool(), spec);
        let mut rx = scheduled.events();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        let last = matches!(ev, offload_schedule::ScheduleEvent::Stopped);
                        emit(&on_event, json!(ev).to_string());
                        if last {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        scheduled
    });
    Ok(NativeSchedule {
        inner: Mutex::new(Some(scheduled)),
    })
}

impl NativeSchedule {
    fn with<T>(&self, f: impl FnOnce(&Scheduled) -> T) -> Option<T> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(f)
    }
}

#[napi]
impl NativeSchedule {
    /// Its counters (JSON `ScheduleStatus`).
    #[napi]
    pub fn status(&self) -> String {
        self.with(|s| json!(s.status()).to_string())
            .unwrap_or_else(|| json!({"stopped": true}).to_string())
    }

    /// Pauses it.
    #[napi]
    pub fn pause(&self) {
        self.with(Scheduled::pause);
    }

    /// Resumes it.
    #[napi]
    pub fn resume(&self) {
        self.with(Scheduled::resume);
    }

    /// Starts one run now.
    #[napi]
    pub fn run_now(&self) {
        self.with(Scheduled::run_now);
    }

    /// Stops it: unfinished runs get `deadline_ms`, then are cancelled; resolves to the final
    /// counters (JSON).
    #[napi]
    pub async fn stop(&self, deadline_ms: u32) -> String {
        let taken = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(s) => {
                let status = s.stop(Duration::from_millis(u64::from(deadline_ms))).await;
                json!(status).to_string()
            }
            None => json!({"stopped": true}).to_string(),
        }
    }
}
