//! Submitting jobs: the one way in for every caller (HTTP single and batch, the line protocol,
//! cron ticks). [`Engine::submit`] and [`Engine::submit_batch`] check a job, route it, fill in
//! its defaults, pass admission control, commit it to the store (durable before the answer),
//! announce it and wake the dispatcher.
//!
//! # Defaults
//!
//! What a job does not say comes from its pool's `[[pool]]` section, else from its
//! [`Source`]; the rule lives here only:
//!
//! | | `max_attempts` | `timeout_ms` | `backoff_ms` |
//! |---|---|---|---|
//! | [`Source::Http`] | asked, else the pool's, else 3 (`docs/http-api.md`) | asked, else the pool's, else none | the pool's, else 1000 |
//! | [`Source::Lines`] | the pool's, else `[lines] max_attempts` (`docs/line-protocol.md`) | the pool's | the pool's, else 1000 |
//! | [`Source::Cron`] | 1, whatever the pool says: the next tick is its retry | the pool's | the pool's, else 1000 |
//!
//! A job's retry `backoff` (any source) is the one asked, else its job name's
//! `[job."<name>"] backoff`, else its pool's `backoff`, else none: `exponential` from
//! `backoff_ms`, at most one hour, no jitter (`offload_store::rules::retry`). Its
//! `keep_result_ms` is the one asked, else its job name's, else none (the daemon's retention);
//! its idempotency window (`key_ttl_ms`) likewise, else `idempotency_hours`. A job is
//! `unique = "while-active"` when the submit or its job name's section says so.
//!
//! Every number is then checked against one set of bounds (`crate::limits`); HTTP params are
//! also bounded by `http.max_params_bytes` (a line-protocol request is bounded whole by
//! `[lines] max_request_bytes`, a cron schedule's params when it is added).

use offload_store::limits::{LimitError, MAX_ATTEMPTS};
use offload_store::{
    now_ms, After, AfterPolicy, Backoff, CronTick, JobState, Millis, NewJob, Submitted,
};
use serde_json::Value;

use super::{Engine, EngineError};
use crate::config::ServeConfig;
use crate::events::JobChange;

/// The attempts of an HTTP job when neither the request nor its pool names them.
const HTTP_ATTEMPTS: u32 = 3;

/// Who submits a job: decides its defaults (see the module's table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `POST /v1/jobs` and `POST /v1/jobs/batch`.
    Http,
    /// The line protocol, TCP or UDP.
    Lines,
    /// A cron tick: the store keeps one job per `(schedule, tick)`.
    Cron(CronTick),
}

impl Source {
    /// The attempts of a job that asked `asked` in a pool that sets `pool`.
    fn max_attempts(&self, asked: Option<u32>, pool: Option<u32>, cfg: &ServeConfig) -> u32 {
        let fallback = match self {
            Self::Http => HTTP_ATTEMPTS,
            Self::Lines => cfg.lines.max_attempts,
            Self::Cron(_) => return 1,
        };
        asked.or(pool).unwrap_or(fallback).max(1)
    }
}

/// A job to submit, before routing and defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct Submit {
    pub(crate) job: String,
    pub(crate) params: Value,
    pub(crate) priority: i32,
    /// Run no sooner than this many ms from now (exclusive with `run_at`).
    pub(crate) delay_ms: Option<u64>,
    /// Run no sooner than this time (ms since the epoch).
    pub(crate) run_at: Option<Millis>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) idempotency_key: Option<String>,
    /// The retry backoff asked (see the module's defaults).
    pub(crate) backoff: Option<Backoff>,
    /// Keep the job this long once it has succeeded (else its `[job."<name>"]`'s, else the
    /// daemon's retention).
    pub(crate) keep_result_ms: Option<u64>,
    /// This submit's idempotency window (else its `[job."<name>"]`'s, else
    /// `idempotency_hours`).
    pub(crate) key_ttl_ms: Option<u64>,
    /// `unique = "while-active"` asked (else its `[job."<name>"] unique`).
    pub(crate) unique: bool,
    /// The jobs it runs after, as given: ids, or `#k` for an earlier item of a batch
    /// ([`after_refs`]).
    pub(crate) after: Vec<String>,
    /// When it runs with `after`.
    pub(crate) after_policy: AfterPolicy,
}

/// The jobs of `after` as the store takes them: a job id (a UUID) or `#k`, the batch's
/// earlier item `k` (whether `k` is earlier, and whether an id names a job, the store checks in
/// its transaction).
///
/// # Errors
///
/// [`LimitError`] naming `after` for more than [`MAX_AFTER`](offload_store::after::MAX_AFTER)
/// entries or an entry of neither
/// form.
pub(crate) fn after_refs(after: &[String]) -> Result<Vec<After>, LimitError> {
    offload_store::after::check_len(after.len())?;
    after
        .iter()
        .map(|a| {
            let item = a.strip_prefix('#').and_then(|k| k.parse::<usize>().ok());
            match item {
                Some(k) => Ok(After::Item(k)),
                None => a.parse().map(After::Job).map_err(|_| {
                    LimitError::new(
                        "after",
                        format!("{a:?}"),
                        "a job id (a UUID) or #k, the batch's earlier item k (0-based)",
                    )
                }),
            }
        })
        .collect()
}

impl Submit {
    /// A job with its name and params, everything else by default.
    pub(crate) fn new(job: &str, params: Value) -> Self {
        Self {
            job: job.to_owned(),
            params,
            ..Self::default()
        }
    }
}

impl Engine {
    /// Submits one job; answers once it is durable.
    ///
    /// # Errors
    ///
    /// A refused job ([`EngineError::Invalid`], [`EngineError::TooLarge`],
    /// [`EngineError::UnknownJob`]), a full queue ([`EngineError::QueueFull`]), a pool that
    /// cannot start, a store failure.
    pub(crate) async fn submit(
        &self,
        source: Source,
        job: Submit,
    ) -> Result<Submitted, EngineError> {
        let new = self.prepare(&source, job).await?;
        self.commit(vec![new])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::Internal("the store returned no job".into()))
    }

    /// Submits jobs all or none, in one transaction; answers once they are durable, in order.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit); a refused job is [`EngineError::Item`] naming its place.
    pub(crate) async fn submit_batch(
        &self,
        source: Source,
        jobs: Vec<Submit>,
    ) -> Result<Vec<Submitted>, EngineError> {
        let mut prepared = Vec::with_capacity(jobs.len());
        for (index, job) in jobs.into_iter().enumerate() {
            let new = self
                .prepare(&source, job)
                .await
                .map_err(|e| EngineError::Item {
                    index,
                    error: Box::new(e),
                })?;
            prepared.push(new);
        }
        self.commit(prepared).await
    }

    /// Checks a job, routes it and fills in its defaults.
    async fn prepare(&self, source: &Source, s: Submit) -> Result<NewJob, EngineError> {
        if *source == Source::Http {
            let limit = self.cfg.http.max_params_bytes;
            if crate::events::json_size_over(&s.params, limit) {
                return Err(EngineError::TooLarge {
                    field: "params",
                    limit,
                    key: "http.max_params_bytes",
                });
            }
        }
        // The numbers are checked by `crate::limits`: here what is known before routing, then
        // the whole job once the pool's defaults are in.
        if s.max_attempts == Some(0) {
            return Err(LimitError::new("max_attempts", 0, format!("1..={MAX_ATTEMPTS}")).into());
        }
        let now = now_ms();
        // `run_at`'s bound moves once a day so the served document can state it exactly.
        let latest = offload_api::limits::latest_run_at(now);
        if let Some(at) = s.run_at.filter(|&at| at > latest) {
            return Err(LimitError::new(
                "run_at",
                at,
                format!(
                    "0..={latest} (ms since the epoch, at most 365 days after the start of \
                     today, UTC)"
                ),
            )
            .into());
        }
        let run_at = crate::limits::run_at(s.delay_ms, s.run_at, now)?;
        let after = after_refs(&s.after)?;
        let route = self.route(&s.job).await?;
        let section = self.pool(&route.pool).map(|p| p.section.clone());
        let section = section.as_ref();
        let named = self.cfg.job_sections.get(&s.job);
        let keep_result_ms = s
            .keep_result_ms
            .or_else(|| named.and_then(|j| j.keep_result_ms));
        let key_ttl_ms = s.key_ttl_ms.or_else(|| named.and_then(|j| j.key_ttl_ms));
        let unique = s.unique || named.is_some_and(|j| j.unique.is_some());
        let backoff = s.backoff.or_else(|| {
            named
                .and_then(|j| j.backoff.as_ref())
                .or_else(|| section.and_then(|p| p.backoff.as_ref()))
                .map(crate::backoff::to_store)
        });
        let new = NewJob {
            max_attempts: source.max_attempts(
                s.max_attempts,
                section.and_then(|p| p.max_attempts),
                &self.cfg,
            ),
            job: s.job,
            params: s.params,
            pool: route.pool,
            priority: s.priority,
            run_at,
            timeout_ms: s.timeout_ms.or_else(|| section.and_then(|p| p.timeout_ms)),
            backoff_ms: backoff
                .as_ref()
                .map_or(section.and_then(|p| p.backoff_ms).unwrap_or(1000), |b| {
                    b.base_ms()
                }),
            backoff,
            keep_result_ms,
            key_ttl_ms,
            idempotency_key: s.idempotency_key,
            cron: match source {
                Source::Cron(tick) => Some(tick.clone()),
                _ => None,
            },
            unique,
            after,
            after_policy: s.after_policy,
        };
        crate::limits::check_job(&new, self.cfg.max_timeout_ms)?;
        Ok(new)
    }

    /// Commits prepared jobs (one transaction) after admission control, then counts them,
    /// announces them on the event stream and wakes the dispatcher.
    async fn commit(&self, jobs: Vec<NewJob>) -> Result<Vec<Submitted>, EngineError> {
        self.admission.admit(&*self.store, &jobs).await?;
        // What the announcements need, taken before the store owns the jobs (their params are
        // not copied).
        let names: Vec<(String, String)> = jobs
            .iter()
            .map(|j| (j.job.clone(), j.pool.clone()))
            .collect();
        let done = self.store.submit(jobs, self.cfg.idempotency_window).await?;
        let fresh: Vec<((String, String), &Submitted)> = names
            .into_iter()
            .zip(&done)
            .filter(|(_, d)| !d.duplicate)
            .collect();
        self.metrics.submitted(fresh.len() as u64);
        self.history.submitted(
            offload_store::now_ms(),
            fresh
                .iter()
                .map(|((job, pool), _)| (pool.as_str(), job.as_str())),
        );
        // Only a queued job can be claimed now; a scheduled (or waiting) one is claimed once
        // the store makes it queued, which wakes the dispatcher then.
        let claimable = fresh.iter().any(|(_, d)| d.state == JobState::Queued);
        for ((job, pool), d) in fresh {
            self.announce(JobChange {
                id: d.id,
                job,
                pool,
                state: d.state,
                attempt: 0,
            });
        }
        if claimable {
            self.notify();
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_come_from_the_request_then_the_pool_then_the_source() {
        let mut cfg = ServeConfig::new("jobs", ".offload");
        cfg.lines.max_attempts = 5;
        assert_eq!(Source::Http.max_attempts(None, None, &cfg), 3);
        assert_eq!(Source::Http.max_attempts(None, Some(7), &cfg), 7);
        assert_eq!(Source::Http.max_attempts(Some(2), Some(7), &cfg), 2);
        assert_eq!(Source::Lines.max_attempts(None, None, &cfg), 5);
        assert_eq!(Source::Lines.max_attempts(None, Some(7), &cfg), 7);
        let tick = Source::Cron(CronTick {
            schedule: "s".into(),
            tick: 0,
        });
        assert_eq!(tick.max_attempts(None, Some(7), &cfg), 1);
    }
}
