//! The log writer when the store is stuck: the senders never wait for it (a backlog of at
//! most `MAX_PENDING_LINES` gathers, the rest is counted as lost), and once the store answers
//! again every kept line is stored and the attempt's marker counts the lost ones exactly.

use std::sync::Arc;
use std::time::Duration;

use offload_store::{
    Beat, BulkAction, BulkOutcome, CancelResult, Claimed, Completion, Counts, CronSchedule,
    CronState, Demand, DrainOrder, DrainRequest, JobFilter, JobId, JobRecord, JobState, ListFilter,
    LogLine, LogQuery, LogStream, Millis, NewJob, NodeRecord, NodeStart, Page, PausedQueue, Queue,
    SqliteStore, StatCell, StatRow, StatsQuery, Store, StoreError, Submitted, Throttle,
    ThrottleState,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{run, LogMsg, CHANNEL, MAX_PENDING_LINES};

/// A SQLite store whose `append_logs` waits for a permit of `gate` (none at first: stuck).
struct StuckLogs {
    inner: SqliteStore,
    gate: Arc<Semaphore>,
}

#[async_trait::async_trait]
impl Store for StuckLogs {
    async fn append_logs(&self, lines: Vec<LogLine>) -> Result<(), StoreError> {
        let _permit = self.gate.acquire().await.expect("the gate stays open");
        self.inner.append_logs(lines).await
    }

    async fn submit(
        &self,
        jobs: Vec<NewJob>,
        idempotency_window: Duration,
    ) -> Result<Vec<Submitted>, StoreError> {
        self.inner.submit(jobs, idempotency_window).await
    }

    async fn claim(
        &self,
        node: &str,
        demand: &[Demand],
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.inner.claim(node, demand, lease).await
    }

    async fn renew(
        &self,
        node: &str,
        ids: &[JobId],
        lease: Duration,
    ) -> Result<Vec<JobId>, StoreError> {
        self.inner.renew(node, ids, lease).await
    }

    async fn complete(&self, done: Vec<Completion>) -> Result<(), StoreError> {
        self.inner.complete(done).await
    }

    async fn progress(&self, updates: Vec<(JobId, Value)>) -> Result<(), StoreError> {
        self.inner.progress(updates).await
    }

    async fn recover(&self, node: Option<&str>) -> Result<u64, StoreError> {
        self.inner.recover(node).await
    }

    async fn get(&self, id: JobId) -> Result<JobRecord, StoreError> {
        self.inner.get(id).await
    }

    async fn list(&self, filter: ListFilter) -> Result<Page, StoreError> {
        self.inner.list(filter).await
    }

    async fn cancel(&self, id: JobId) -> Result<CancelResult, StoreError> {
        self.inner.cancel(id).await
    }

    async fn retry(&self, id: JobId) -> Result<JobState, StoreError> {
        self.inner.retry(id).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.inner.counts().await
    }

    async fn purge(&self, before: Millis) -> Result<u64, StoreError> {
        self.inner.purge(before).await
    }

    async fn put_schedule(&self, schedule: CronSchedule) -> Result<(), StoreError> {
        self.inner.put_schedule(schedule).await
    }

    async fn schedules(&self) -> Result<Vec<CronSchedule>, StoreError> {
        self.inner.schedules().await
    }

    async fn delete_schedule(&self, name: &str) -> Result<(), StoreError> {
        self.inner.delete_schedule(name).await
    }

    async fn last_tick(&self, name: &str) -> Result<Option<Millis>, StoreError> {
        self.inner.last_tick(name).await
    }

    async fn cron_states(&self) -> Result<Vec<CronState>, StoreError> {
        self.inner.cron_states().await
    }

    async fn pause_schedule(
        &self,
        name: &str,
        at: Millis,
        reason: &str,
    ) -> Result<bool, StoreError> {
        self.inner.pause_schedule(name, at, reason).await
    }

    async fn resume_schedule(&self, name: &str) -> Result<(), StoreError> {
        self.inner.resume_schedule(name).await
    }

    async fn pause_queue(&self, queue: &Queue, at: Millis) -> Result<bool, StoreError> {
        self.inner.pause_queue(queue, at).await
    }

    async fn resume_queue(&self, queue: &Queue) -> Result<bool, StoreError> {
        self.inner.resume_queue(queue).await
    }

    async fn paused_queues(&self) -> Result<Vec<PausedQueue>, StoreError> {
        self.inner.paused_queues().await
    }

    async fn set_limits(&self, limits: Vec<Throttle>) -> Result<(), StoreError> {
        self.inner.set_limits(limits).await
    }

    async fn limits(&self) -> Result<Vec<ThrottleState>, StoreError> {
        self.inner.limits().await
    }

    async fn delete(&self, id: JobId) -> Result<JobState, StoreError> {
        self.inner.delete(id).await
    }

    async fn bulk(
        &self,
        action: BulkAction,
        filter: &JobFilter,
        limit: usize,
    ) -> Result<BulkOutcome, StoreError> {
        self.inner.bulk(action, filter, limit).await
    }

    async fn register_node(
        &self,
        node: &NodeStart,
        live: Duration,
        take_over: Option<Millis>,
    ) -> Result<(), StoreError> {
        self.inner.register_node(node, live, take_over).await
    }

    async fn heartbeat(&self, id: &str, beat: &Beat) -> Result<Option<DrainOrder>, StoreError> {
        self.inner.heartbeat(id, beat).await
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.inner.nodes().await
    }

    async fn drain_node(
        &self,
        id: &str,
        order: Option<DrainRequest>,
    ) -> Result<NodeRecord, StoreError> {
        self.inner.drain_node(id, order).await
    }

    async fn stop_node(&self, id: &str) -> Result<(), StoreError> {
        self.inner.stop_node(id).await
    }

    async fn purge_nodes(&self, older_than: Duration) -> Result<u64, StoreError> {
        self.inner.purge_nodes(older_than).await
    }

    async fn logs(&self, id: JobId, query: LogQuery) -> Result<Vec<LogLine>, StoreError> {
        self.inner.logs(id, query).await
    }

    async fn add_stats(&self, rows: Vec<StatRow>) -> Result<(), StoreError> {
        self.inner.add_stats(rows).await
    }

    async fn stats(&self, q: &StatsQuery) -> Result<Vec<StatCell>, StoreError> {
        self.inner.stats(q).await
    }

    async fn purge_stats(&self, before: Millis) -> Result<u64, StoreError> {
        self.inner.purge_stats(before).await
    }
}

#[tokio::test]
async fn a_stuck_store_never_holds_up_the_senders_and_lost_lines_are_counted() {
    const TOTAL: usize = MAX_PENDING_LINES + 20_000;
    let tmp = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let inner = SqliteStore::open(tmp.path()).unwrap();
    let job = inner
        .submit(
            vec![NewJob {
                job: "stuck".into(),
                params: Value::Null,
                pool: "node".into(),
                priority: 0,
                run_at: None,
                timeout_ms: None,
                max_attempts: 1,
                backoff_ms: 0,
                backoff: None,
                keep_result_ms: None,
                key_ttl_ms: None,
                idempotency_key: None,
                cron: None,
                unique: false,
                after: Vec::new(),
                after_policy: offload_store::AfterPolicy::default(),
            }],
            Duration::from_secs(60),
        )
        .await
        .unwrap()[0]
        .id;
    let store = Arc::new(StuckLogs {
        inner,
        gate: Arc::clone(&gate),
    });
    let (tx, rx) = mpsc::channel(CHANNEL);
    let writer = tokio::spawn(run(store.clone(), 16 << 20, rx));
    let key = (job, 1);
    tx.send(LogMsg::Open(key)).await.unwrap();
    // Every send completes while the store answers nothing: the writer keeps taking lines
    // (a hang here is the failure; the guard only bounds it).
    let send_all = async {
        for i in 0..TOTAL {
            let line = LogMsg::Line {
                key,
                stream: LogStream::Stdout,
                at: 1,
                text: format!("{i:09}"),
                shared: false,
            };
            tx.send(line).await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), send_all)
        .await
        .expect("the senders waited for a stuck store");
    let (done, stored) = oneshot::channel();
    tx.send(LogMsg::Close(key, done)).await.unwrap();
    // The store answers again: the close is answered once everything kept is stored.
    gate.add_permits(Semaphore::MAX_PERMITS / 2);
    tokio::time::timeout(Duration::from_secs(120), stored)
        .await
        .expect("the close was answered")
        .unwrap();
    let all = LogQuery {
        attempt: Some(1),
        after: None,
        limit: 10_000,
    };
    let mut lines = Vec::new();
    loop {
        let page = store
            .inner
            .logs(
                job,
                LogQuery {
                    after: lines.last().map(|l: &LogLine| (l.attempt, l.seq)),
                    ..all
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        lines.extend(page);
    }
    let (marker, kept) = lines.split_last().unwrap();
    // The batch in flight when the store got stuck, then at most MAX_PENDING_LINES more.
    assert!(kept.len() >= MAX_PENDING_LINES && kept.len() <= MAX_PENDING_LINES + 1_000);
    let want: Vec<String> = (0..kept.len()).map(|i| format!("{i:09}")).collect();
    let got: Vec<&str> = kept.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(got, want, "the kept lines are the first ones, in order");
    assert!(marker.marker && !kept.iter().any(|l| l.marker));
    assert_eq!(
        marker.line,
        format!(
            "[offload: {} line(s) lost: the log store was behind (over {MAX_PENDING_LINES} lines or 8 MiB waiting)]",
            TOTAL - kept.len()
        )
    );
    drop(tx);
    writer.await.unwrap();
}
