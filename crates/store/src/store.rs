//! The `Store` trait: the storage contract both engines implement (SQLite in `sqlite/`,
//! PostgreSQL in `offload-store-pg`), and the conformance suite (`testkit/`) checks.

use std::time::Duration;

use serde_json::Value;

use crate::{
    Beat, BulkAction, BulkOutcome, CancelResult, Claimed, Completion, Counts, CronSchedule,
    CronState, Demand, DrainOrder, DrainRequest, JobFilter, JobId, JobRecord, JobState, ListFilter,
    LogLine, LogQuery, Millis, NewJob, NodeRecord, NodeStart, Page, PausedQueue, Queue, StatCell,
    StatRow, StatsQuery, StoreError, Submitted, Throttle, ThrottleState,
};

/// The storage contract of the daemon. Every method is one atomic transaction; engines batch
/// concurrent calls into group commits. A method returns only after its change is durable.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores jobs (one transaction for the batch). Idempotency keys are scoped by job name
    /// (schema v6: the same key with two names names two jobs): a job whose `idempotency_key`
    /// matches a job of its name created within `idempotency_window` (or its own `key_ttl_ms`)
    /// with the same params (compared as JSON values) returns that job with `duplicate: true`;
    /// with other params the whole batch fails with [`StoreError::IdempotencyConflict`]. A job
    /// whose `cron` tick already fired returns the first one; a `unique` job whose unfinished
    /// twin exists returns it. A job with `after` ([`after`](crate::after)) starts `waiting`
    /// for the jobs it names (earlier items of the batch by index), or `cancelled` when one of
    /// them is dead or cancelled already; an unknown id or a later item refuses the whole batch
    /// ([`StoreError::Limit`] naming `after`). Numbers out of the ranges of
    /// [`limits`](crate::limits) are [`StoreError::Limit`].
    async fn submit(
        &self,
        jobs: Vec<NewJob>,
        idempotency_window: Duration,
    ) -> Result<Vec<Submitted>, StoreError>;

    /// Woken (`notify_one`) whenever a commit makes jobs `queued` (a submit, a release of
    /// dependents…), possibly before that commit is flushed: a dispatcher that waits on it may
    /// claim them at once instead of when the writing call returns. `None` (the default): no
    /// such signal, the caller wakes its dispatcher itself.
    fn queued_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    /// Claims due jobs for `node`: first makes due `scheduled`/`failed` jobs `queued`, then
    /// picks per pool up to `n` queued jobs, highest priority first, then oldest `run_at`,
    /// then id; they become `running` with `attempt + 1` and a lease until now + `lease`.
    /// Paused queues give none; a job over a rate or concurrency limit ([`Store::set_limits`])
    /// is passed over (it stays `queued`) and the jobs behind it are claimed.
    async fn claim(
        &self,
        node: &str,
        demand: &[Demand],
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Extends the leases `node` holds on `ids` to now + `lease`; returns the ids whose lease
    /// it no longer holds (expired and reclaimed, or completed).
    async fn renew(
        &self,
        node: &str,
        ids: &[JobId],
        lease: Duration,
    ) -> Result<Vec<JobId>, StoreError>;

    /// Records ended attempts and applies their transitions (one transaction for the batch).
    /// A completion whose attempt or node no longer matches is ignored.
    async fn complete(&self, done: Vec<Completion>) -> Result<(), StoreError>;

    /// Records the last progress value of running jobs (batched; last value wins).
    async fn progress(&self, updates: Vec<(JobId, Value)>) -> Result<(), StoreError>;

    /// Makes `running` jobs whose lease ended before now `queued` again (their attempt is
    /// counted, recorded as `lease_expired`); with `node`, all running jobs of that node
    /// regardless of lease (a restarted single node). Returns how many.
    async fn recover(&self, node: Option<&str>) -> Result<u64, StoreError>;

    /// One job with its attempts.
    async fn get(&self, id: JobId) -> Result<JobRecord, StoreError>;

    /// Jobs, newest first.
    async fn list(&self, filter: ListFilter) -> Result<Page, StoreError>;

    /// Cancels a job (see [`CancelResult`]).
    async fn cancel(&self, id: JobId) -> Result<CancelResult, StoreError>;

    /// Moves a `dead` or `cancelled` job back to `queued` with a fresh round of attempts:
    /// numbered on after the earlier ones (whose rows and logs stay), as many as the job's
    /// `max_attempts` at submit (`max_attempts` grows by that much).
    /// [`StoreError::Conflict`] in any other state.
    async fn retry(&self, id: JobId) -> Result<JobState, StoreError>;

    /// Counts of jobs per (pool, state).
    async fn counts(&self) -> Result<Counts, StoreError>;

    /// Deletes terminal jobs last updated before `before`, and succeeded jobs whose own
    /// `keep_result_ms` has passed (whatever `before` says: it replaces the retention for
    /// them); returns how many.
    async fn purge(&self, before: Millis) -> Result<u64, StoreError>;

    /// Adds or replaces a stored cron schedule.
    async fn put_schedule(&self, schedule: CronSchedule) -> Result<(), StoreError>;

    /// Stored cron schedules.
    async fn schedules(&self) -> Result<Vec<CronSchedule>, StoreError>;

    /// Deletes a stored cron schedule.
    async fn delete_schedule(&self, name: &str) -> Result<(), StoreError>;

    /// The last tick that fired for schedule `name` (from the jobs it created), if any.
    async fn last_tick(&self, name: &str) -> Result<Option<Millis>, StoreError>;

    /// The counters of every schedule that has submitted a job or was paused, by name.
    async fn cron_states(&self) -> Result<Vec<CronState>, StoreError>;

    /// Pauses schedule `name` at `at`, for `reason`, unless it is paused already (it keeps its
    /// time and reason); returns whether this call paused it (on a shared store, of several
    /// nodes that see the same failures one tells of the pause).
    async fn pause_schedule(
        &self,
        name: &str,
        at: Millis,
        reason: &str,
    ) -> Result<bool, StoreError>;

    /// Resumes schedule `name` and starts its failure count afresh (no-op when not paused).
    async fn resume_schedule(&self, name: &str) -> Result<(), StoreError>;

    /// Pauses `queue` at `at` (see [`queues`](crate::queues)): `claim` picks none of its jobs until it is
    /// resumed. Returns whether this call paused it (`false`: it was paused already and keeps
    /// its time). [`StoreError::Limit`] for a name out of bounds or when
    /// [`queues::MAX_PAUSED_QUEUES`](crate::queues::MAX_PAUSED_QUEUES) are paused already.
    async fn pause_queue(&self, queue: &Queue, at: Millis) -> Result<bool, StoreError>;

    /// Resumes `queue`; returns whether it was paused.
    async fn resume_queue(&self, queue: &Queue) -> Result<bool, StoreError>;

    /// Every paused queue, pools first, then by name.
    async fn paused_queues(&self) -> Result<Vec<PausedQueue>, StoreError>;

    /// Replaces every rate and concurrency limit (see [`throttle`](crate::throttle)) with `limits`, in one
    /// transaction. A limit whose rate is unchanged keeps its bucket; a new or changed one
    /// starts full. From then on `claim` starts no job over a limit: its jobs stay `queued`.
    /// [`StoreError::Limit`] for a number out of range, a name given twice or more than
    /// [`throttle::MAX_LIMITS`](crate::throttle::MAX_LIMITS) limits ([`throttle::check_all`](crate::throttle::check_all)).
    async fn set_limits(&self, limits: Vec<Throttle>) -> Result<(), StoreError>;

    /// Every limit and where it stands now (tokens, running and queued jobs, whether it holds
    /// its queue back), pools first, then by name.
    async fn limits(&self) -> Result<Vec<ThrottleState>, StoreError>;

    /// Deletes a job that is not running, with its attempts; returns the state it had.
    /// [`StoreError::Conflict`] for a running job ([`bulk::running_refusal`](crate::bulk::running_refusal): cancel it
    /// first), [`StoreError::NotFound`] for an unknown one.
    async fn delete(&self, id: JobId) -> Result<JobState, StoreError>;

    /// Retries or deletes at most `limit` jobs matching `filter`, oldest first, in one
    /// transaction (see [`bulk`](crate::bulk)); the filter is checked first ([`JobFilter::check`]).
    async fn bulk(
        &self,
        action: BulkAction,
        filter: &JobFilter,
        limit: usize,
    ) -> Result<BulkOutcome, StoreError>;

    /// Whether other processes share this store (several nodes on one database): a node id's
    /// fresh heartbeat may then be another live node's. `false` by default (an embedded store
    /// one process holds).
    fn is_shared(&self) -> bool {
        false
    }

    /// Registers node `node.id` as `active` (a start clears its drain order); see [`nodes`](crate::nodes).
    /// [`StoreError::NodeInUse`] when its row belongs to a live node (not `stopped`, heartbeat
    /// younger than `live`), unless `take_over` is that row's `heartbeat_at` (the caller saw it
    /// stay unchanged: the node that wrote it is gone). [`StoreError::Limit`] for a bad id.
    async fn register_node(
        &self,
        node: &NodeStart,
        live: Duration,
        take_over: Option<Millis>,
    ) -> Result<(), StoreError>;

    /// Records node `id`'s heartbeat (now, on the store's clock) and load; its state follows
    /// its drain order (none: `active`; running jobs: `draining`; none running: `drained`).
    /// Returns the drain order. [`StoreError::NotFound`] when its row is gone (register again).
    async fn heartbeat(&self, id: &str, beat: &Beat) -> Result<Option<DrainOrder>, StoreError>;

    /// Every node's row, by id.
    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError>;

    /// Gives node `id` a drain order (`Some`: it becomes `draining` unless `stopped`) or takes
    /// it back (`None`: `active` again unless `stopped`); returns its row.
    /// [`StoreError::NotFound`] for an unknown id, [`StoreError::Limit`] for a deadline over
    /// [`nodes::MAX_DRAIN_DEADLINE_MS`](crate::nodes::MAX_DRAIN_DEADLINE_MS).
    async fn drain_node(
        &self,
        id: &str,
        order: Option<DrainRequest>,
    ) -> Result<NodeRecord, StoreError>;

    /// Marks node `id` `stopped` (a clean exit). A later [`Store::heartbeat`] of the same id
    /// leaves the row stopped (one may be on its way at the exit); only a start revives it.
    async fn stop_node(&self, id: &str) -> Result<(), StoreError>;

    /// Deletes the rows of nodes whose last heartbeat is older than `older_than` (stopped or
    /// lost nodes); returns how many.
    async fn purge_nodes(&self, older_than: Duration) -> Result<u64, StoreError>;

    /// Stores log lines of attempts (one transaction for the batch, at most
    /// [`logs::MAX_LOG_BATCH`](crate::logs::MAX_LOG_BATCH) lines: [`StoreError::Limit`] beyond). A line whose job no
    /// longer exists, or whose (job, attempt, seq) is stored already, is skipped.
    async fn append_logs(&self, lines: Vec<LogLine>) -> Result<(), StoreError>;

    /// A job's log lines in (attempt, seq) order, as `query` selects (see [`LogQuery`]); none
    /// for an unknown job. [`StoreError::Limit`] for a limit out of 1..=[`logs::MAX_LOG_PAGE`](crate::logs::MAX_LOG_PAGE).
    async fn logs(&self, id: JobId, query: LogQuery) -> Result<Vec<LogLine>, StoreError>;

    /// Adds counts to the history (see [`stats`](crate::stats)): each row's `n` is summed into the stored
    /// row of its (minute, pool, job, metric, bucket), so the adds of several nodes merge. One
    /// transaction; [`StoreError::Limit`] for rows out of bounds ([`stats::normalize`](crate::stats::normalize)).
    async fn add_stats(&self, rows: Vec<StatRow>) -> Result<(), StoreError>;

    /// The history of `q`'s window, summed per point, metric and bucket over the matching
    /// pools and job names (turn it into points with [`stats::series`](crate::stats::series));
    /// [`StoreError::Limit`] for a query out of bounds ([`StatsQuery::check`]).
    async fn stats(&self, q: &StatsQuery) -> Result<Vec<StatCell>, StoreError>;

    /// Deletes the history of the minutes before `before`; returns how many rows.
    async fn purge_stats(&self, before: Millis) -> Result<u64, StoreError>;
}
