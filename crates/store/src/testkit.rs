//! The engine-independent conformance suite of [`Store`] (feature `testkit`): every engine runs
//! the same cases, each on a fresh empty store.
//!
//! An engine implements [`Harness`] (its store, plus what the suite needs to look under it) and
//! expands [`store_conformance!`](crate::store_conformance) with a factory of fresh harnesses in
//! an integration test:
//!
//! ```ignore
//! offload_store::store_conformance!(|| async { MyHarness::fresh().await });
//! ```
//!
//! Each case is also a `pub async fn` here, taking that factory. The helpers (`job`, `demand`,
//! ...) build the values the cases submit and complete, for engine-specific tests too.
//!
//! The cases live in one file per group of [`Store`] methods, the groups of the engines'
//! operations: `submit.rs`, `claim.rs` (claim, renew, recover), `complete.rs` (complete,
//! progress), `admin.rs` (cancel, retry, purge), `read.rs` (get, list, counts), `cron.rs`,
//! `semantics.rs` (backoffs, non-retryable errors, per-job result retention, per-submit key windows),
//! `nodes.rs` (the node registry, a job handed back by a draining node),
//! `throttle.rs` (rate and concurrency limits), `unique.rs` (`unique = "while-active"`),
//! `stats.rs` (history), `after.rs` (dependencies).

mod admin;
mod after;
mod bulk;
mod claim;
mod complete;
mod cron;
mod logs;
mod nodes;
mod queues;
mod read;
mod semantics;
mod stats;
mod submit;
mod throttle;
mod unique;

pub use admin::*;
pub use after::*;
pub use bulk::*;
pub use claim::*;
pub use complete::*;
pub use cron::*;
pub use logs::*;
pub use nodes::*;
pub use queues::*;
pub use read::*;
pub use semantics::*;
pub use stats::*;
pub use submit::*;
pub use throttle::*;
pub use unique::*;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{now_ms, Completion, Demand, JobId, NewJob, Store, StoredError, Transition};

/// The node the cases claim and complete as.
pub const NODE: &str = "node-a";
/// The lease of the cases' claims.
pub const LEASE: Duration = Duration::from_secs(30);
/// The idempotency window of the cases' submits.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// A fresh empty store of one engine, and what the suite needs from that engine besides
/// [`Store`]. Dropping it drops the store, then whatever holds its data (a temporary directory,
/// a scratch database). Its futures need not be `Send`: the cases await them in place.
#[async_trait::async_trait(?Send)]
pub trait Harness {
    /// The store under test (a handle shared with the case).
    fn store(&self) -> Arc<dyn Store>;

    /// Asserts that [`Store::counts`] matches a count of the stored rows.
    async fn check_counts(&self);

    /// Closes the store and opens it again on the same data; the case has dropped its handles.
    async fn reopen(&mut self) -> Arc<dyn Store>;
}

/// A job `name` for `pool`: params `{"n": 1}`, 3 attempts, a 1 s timeout, 100 ms backoff.
pub fn job(name: &str, pool: &str) -> NewJob {
    NewJob {
        job: name.into(),
        params: json!({ "n": 1 }),
        pool: pool.into(),
        priority: 0,
        run_at: None,
        timeout_ms: Some(1_000),
        max_attempts: 3,
        backoff_ms: 100,
        backoff: None,
        keep_result_ms: None,
        key_ttl_ms: None,
        idempotency_key: None,
        cron: None,
        unique: false,
        after: Vec::new(),
        after_policy: Default::default(),
    }
}

/// A demand of `n` jobs of `pool`.
pub fn demand(pool: &str, n: usize) -> Vec<Demand> {
    vec![Demand {
        pool: pool.into(),
        n,
    }]
}

/// A stored error with `message` and a stack.
pub fn error(message: &str) -> StoredError {
    StoredError {
        name: "Error".into(),
        message: message.into(),
        stack: Some("at job.js:1".into()),
        retry: true,
    }
}

/// The completion of `attempt` of `id` on [`NODE`], with the outcome that fits `then`.
pub fn completion(id: JobId, attempt: u32, then: Transition) -> Completion {
    let outcome = match &then {
        Transition::Succeeded { .. } => "succeeded",
        Transition::Retry { .. } | Transition::Dead { .. } => "failed",
        Transition::Cancelled => "cancelled",
        Transition::HandBack => "handed_back",
    };
    Completion {
        id,
        attempt,
        node: NODE.into(),
        pid: Some(4242),
        started_at: now_ms(),
        ended_at: now_ms(),
        outcome: outcome.into(),
        then,
    }
}

/// A success with `result`.
pub fn succeeded(result: Value) -> Transition {
    Transition::Succeeded { result }
}

/// Expands to one `#[tokio::test]` per case of the [conformance suite](crate::testkit), each
/// running on a fresh harness from `$fresh`: an expression of a type
/// `FnOnce() -> impl Future<Output = impl Harness>`, evaluated once per test. The calling crate
/// needs `tokio` (features `macros`, `rt-multi-thread`) among its dev-dependencies.
#[macro_export]
macro_rules! store_conformance {
    ($fresh:expr $(,)?) => {
        $crate::store_conformance!(@cases $fresh;
            // submit
            submit_then_get,
            a_batch_is_answered_in_order_and_is_atomic,
            delayed_jobs_are_scheduled_until_due,
            idempotency_window,
            idempotency_keys_are_scoped_to_job_and_params,
            numbers_out_of_range_are_refused,
            // claim, renew, recover
            claim_order_and_per_pool_limits,
            claim_leases_the_job_and_records_the_attempt,
            renew_extends_leases_and_reports_lost_ones,
            an_expired_lease_is_recovered_and_claimable_again,
            // complete, progress
            completions_apply_their_transitions,
            stale_completions_are_ignored,
            progress_last_value_wins,
            // cancel, retry, purge
            cancel_in_every_state,
            retry_requeues_dead_and_cancelled_jobs_with_fresh_attempts,
            retries_stop_at_the_bound_of_attempts_per_job,
            purge_deletes_old_terminal_jobs_only,
            // get, list, counts
            list_newest_first_with_filters_and_cursor,
            list_caps_the_limit,
            list_filters_by_schedule_and_time,
            counts_follow_every_transition,
            // cron
            a_cron_tick_fires_once,
            schedules_crud,
            cron_counters_and_pause,
            // paused queues
            a_paused_pool_claims_nothing_until_resumed,
            a_paused_job_name_is_skipped_by_claims,
            queue_pauses_are_bounded,
            // node registry, hand-back
            nodes_register_heartbeat_drain_and_stop,
            a_handed_back_job_is_requeued_without_counting_the_attempt,
            // delete, bulk
            delete_one_job,
            bulk_retry_and_delete_by_filter,
            // logs
            logs_are_kept_per_attempt_and_go_with_their_job,
            a_retry_keeps_the_logs_of_the_last_attempts_only,
            // queue semantics
            backoffs_and_final_errors_round_trip,
            bad_backoffs_are_refused,
            purge_honours_a_succeeded_jobs_own_retention,
            a_submits_own_key_window_decides_whether_it_is_a_duplicate,
            // rate and concurrency limits
            a_rate_limit_gives_n_starts_per_period_then_none,
            a_concurrency_limit_is_never_exceeded,
            pool_and_job_limits_combine,
            bad_limits_are_refused,
            // unique = "while-active"
            unique_while_active_returns_the_unfinished_job,
            // dependencies (after)
            after_waits_until_every_dependency_succeeded,
            a_failed_dependency_cancels_its_chain_unless_always,
            cancel_and_delete_release_dependents,
            bad_after_is_refused_whole,
            a_deep_chain_is_cancelled_whole,
            // history
            stats_of_two_nodes_merge,
            stats_purge_deletes_old_minutes,
            stats_are_bounded;
            // on a multi-thread runtime
            concurrent_claimers_never_share_a_job,
            concurrent_claimers_respect_limits,
            concurrent_unique_submits_make_one_job,
            concurrent_single_submits_are_all_committed,
            concurrent_ends_release_the_dependent
        );
    };
    (@cases $fresh:expr; $($case:ident),+; $($multi:ident),+) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::testkit::$case($fresh).await;
            }
        )+
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $multi() {
                $crate::testkit::$multi($fresh).await;
            }
        )+
    };
}
