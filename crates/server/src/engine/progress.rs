//! A running job's progress and events: forwarded to the event stream (`progress`,
//! `job_event`) as they come, and stored at most every 200 ms; the last value is stored before
//! the job's end is recorded. A value over `http.max_event_bytes` of JSON is replaced by a
//! marker (`crate::events::capped`) and counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use offload_store::{JobId, Store};
use serde_json::Value;
use tokio::sync::broadcast;

use super::log_writer::AttemptKey;
use super::logs::JobLogs;
use super::runner::{RunEvent, RunEvents};
use crate::events::{JobEmitted, JobProgress, ServerEvent};
use crate::metrics::Metrics;

/// What a job's progress forwarder saw: the latest value and the one last stored.
pub(super) type ProgressSeen = (Option<Value>, Option<Value>);

/// Where a fresh process's log lines go: the engine's capture and the attempt (a pool
/// worker's lines are read from its pool's sink: `logs.rs`).
pub(super) struct LogTo {
    pub(super) logs: JobLogs,
    pub(super) key: AttemptKey,
}

/// Forwards a job's progress and events until its end event, and its log lines to `log`.
pub(super) async fn forward_progress(
    id: JobId,
    store: Arc<dyn Store>,
    sse: broadcast::Sender<ServerEvent>,
    events: Option<RunEvents>,
    max_event: usize,
    metrics: Metrics,
    log: LogTo,
) -> ProgressSeen {
    let mut latest: Option<Value> = None;
    let mut written: Option<Value> = None;
    let mut last_write: Option<Instant> = None;
    let Some(mut events) = events else {
        return (latest, written);
    };
    let cap = |d: Value| {
        let (d, replaced) = crate::events::capped(d, max_event);
        if replaced {
            metrics.event_capped();
        }
        d
    };
    loop {
        match events.next().await {
            RunEvent::End => return (latest, written),
            RunEvent::Log(stream, line) => log.logs.line(log.key, stream, line, false).await,
            RunEvent::Emitted { name, data } => {
                let data = cap(data);
                let _ = sse.send(ServerEvent::JobEvent(JobEmitted { id, name, data }));
            }
            RunEvent::Progress(data) => {
                let data = cap(data);
                let _ = sse.send(ServerEvent::Progress(JobProgress {
                    id,
                    data: data.clone(),
                }));
                latest = Some(data);
                if last_write.is_none_or(|t| t.elapsed() >= Duration::from_millis(200)) {
                    last_write = Some(Instant::now());
                    if store
                        .progress(vec![(id, latest.clone().unwrap_or(Value::Null))])
                        .await
                        .is_ok()
                    {
                        written.clone_from(&latest);
                    }
                }
            }
        }
    }
}

/// Waits for a job's forwarder to see its end (briefly), then stores its last progress value
/// before the completion is recorded.
pub(super) async fn finish_progress(
    id: JobId,
    store: &Arc<dyn Store>,
    forward: tokio::task::JoinHandle<ProgressSeen>,
) {
    let abort = forward.abort_handle();
    let seen = match tokio::time::timeout(Duration::from_secs(3), forward).await {
        Ok(Ok(seen)) => seen,
        _ => {
            abort.abort();
            return;
        }
    };
    if let (Some(latest), written) = seen {
        if written.as_ref() != Some(&latest) {
            if let Err(e) = store.progress(vec![(id, latest)]).await {
                tracing::warn!(%id, error = %e, "cannot record the last progress");
            }
        }
    }
}
