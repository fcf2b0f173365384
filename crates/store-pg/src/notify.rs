//! `LISTEN`/`NOTIFY` between the nodes of one database.
//!
//! One dedicated connection per store (not from the pool) listens on the channel
//! [`CHANNEL`] and sends this store's notifications. They are sent **after** the change they
//! announce committed, in a transaction of their own with `synchronous_commit = off`: a
//! `NOTIFY` inside the write transaction would take PostgreSQL's notification lock through the
//! commit's WAL flush and so serialize every committing writer of the cluster. A lost
//! notification costs at most one poll interval (the daemon polls every 100 ms).
//!
//! Notifications this connection sent itself are not reported back (the node that made a
//! change already knows about it).

use std::future::poll_fn;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use offload_store::{JobId, JobNotice, Notice};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The channel every offload node listens on (one offload cluster per database).
pub const CHANNEL: &str = "offload";

/// PostgreSQL's payload limit is 8,000 bytes; keep a margin.
const MAX_PAYLOAD: usize = 7_000;

/// The wire form: one notification may carry several job changes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Wire {
    Due { pool: String },
    Jobs { jobs: Vec<JobNotice> },
    Cancel { id: JobId, node: Option<String> },
    Schedules,
    Progress { id: JobId, data: serde_json::Value },
    Drain { node: String },
}

/// The most bytes of JSON a progress value may have in a notification; a larger one is sent
/// as a marker (the stored value is whole: `GET /v1/jobs/{id}`).
const MAX_PROGRESS: usize = 6_000;

fn progress_wire(id: JobId, data: serde_json::Value) -> Wire {
    let len = serde_json::to_string(&data).map_or(usize::MAX, |s| s.len());
    let data = if len > MAX_PROGRESS {
        serde_json::json!({"offload_dropped": {
            "reason": "too large for a notification to other nodes: read the job",
            "limit_bytes": MAX_PROGRESS,
        }})
    } else {
        data
    };
    Wire::Progress { id, data }
}

/// Turns queued notices into payloads: due pools once each, job changes packed under the
/// payload limit.
fn payloads(notices: Vec<Notice>) -> Vec<String> {
    let mut due: Vec<String> = Vec::new();
    let mut jobs: Vec<JobNotice> = Vec::new();
    let mut out = Vec::new();
    let mut schedules = false;
    for n in notices {
        match n {
            Notice::Due { pool } if !due.contains(&pool) => due.push(pool),
            Notice::Due { .. } => {}
            Notice::Job(j) => jobs.push(j),
            Notice::CancelRequested { id, node } => {
                out.extend(serde_json::to_string(&Wire::Cancel { id, node }).ok());
            }
            Notice::Schedules => schedules = true,
            Notice::Drain { node } => {
                out.extend(serde_json::to_string(&Wire::Drain { node }).ok());
            }
            Notice::Progress { id, data } => {
                out.extend(serde_json::to_string(&progress_wire(id, data)).ok());
            }
            // Heard, never sent: a reconnection is this node's own news.
            Notice::Reconnected => {}
            // A notice a newer offload-store defines and this engine does not send yet.
            _ => {}
        }
    }
    for pool in due {
        out.extend(serde_json::to_string(&Wire::Due { pool }).ok());
    }
    // Many schedule changes in one batch: one notification (the nodes read them all again).
    if schedules {
        out.extend(serde_json::to_string(&Wire::Schedules).ok());
    }
    let mut chunk: Vec<JobNotice> = Vec::new();
    let mut size = 0;
    for j in jobs {
        // Generous per-job estimate: the id, names, state, attempt and JSON punctuation.
        let len = 100 + j.job.len() + j.pool.len();
        if size + len > MAX_PAYLOAD && !chunk.is_empty() {
            out.extend(serde_json::to_string(&Wire::Jobs { jobs: chunk }).ok());
            chunk = Vec::new();
            size = 0;
        }
        if len > MAX_PAYLOAD {
            continue; // absurdly long names: not worth a notification
        }
        size += len;
        chunk.push(j);
    }
    if !chunk.is_empty() {
        out.extend(serde_json::to_string(&Wire::Jobs { jobs: chunk }).ok());
    }
    out
}

fn parse(payload: &str) -> Vec<Notice> {
    match serde_json::from_str::<Wire>(payload) {
        Ok(Wire::Due { pool }) => vec![Notice::Due { pool }],
        Ok(Wire::Jobs { jobs }) => jobs.into_iter().map(Notice::Job).collect(),
        Ok(Wire::Cancel { id, node }) => vec![Notice::CancelRequested { id, node }],
        Ok(Wire::Schedules) => vec![Notice::Schedules],
        Ok(Wire::Progress { id, data }) => vec![Notice::Progress { id, data }],
        Ok(Wire::Drain { node }) => vec![Notice::Drain { node }],
        Err(e) => {
            tracing::debug!(payload, error = %e, "ignored a notification that is not offload's");
            Vec::new()
        }
    }
}

/// Runs the listening connection until the store is dropped: connects (again after any
/// failure, with backoff), listens, forwards what other nodes send to `notices`, and sends
/// what `outgoing` receives.
pub(crate) async fn run(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    mut outgoing: mpsc::UnboundedReceiver<Notice>,
    notices: broadcast::Sender<Notice>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        let (client, mut conn) = match config.connect(tls.clone()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %crate::describe(&e), "cannot open the LISTEN connection; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                // Drop what queued meanwhile: polling covers it.
                while outgoing.try_recv().is_ok() {}
                continue;
            }
        };
        let own_pid = Arc::new(AtomicI32::new(0));
        let pid = Arc::clone(&own_pid);
        let forward = notices.clone();
        let mut driver = tokio::spawn(async move {
            while let Some(msg) = poll_fn(|cx| conn.poll_message(cx)).await {
                match msg {
                    Ok(AsyncMessage::Notification(n)) => {
                        if n.process_id() == pid.load(Ordering::Relaxed) || n.channel() != CHANNEL {
                            continue;
                        }
                        for notice in parse(n.payload()) {
                            let _ = forward.send(notice);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %crate::describe(&e), "the LISTEN connection failed");
                        return;
                    }
                }
            }
        });
        let setup = async {
            let row = client
                .query_one("SELECT pg_backend_pid() AS pid", &[])
                .await?;
            own_pid.store(row.get("pid"), Ordering::Relaxed);
            client
                .batch_execute(&format!(
                    "SET synchronous_commit = off; SET application_name = 'offload-listen'; \
                     LISTEN {CHANNEL}"
                ))
                .await
        };
        if let Err(e) = setup.await {
            tracing::warn!(error = %crate::describe(&e), "cannot LISTEN; retrying");
            driver.abort();
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        let _ = notices.send(Notice::Reconnected);
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        let send = match client
            .prepare(&format!(
                "SELECT pg_notify('{CHANNEL}', p) FROM unnest($1::text[]) AS p"
            ))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %crate::describe(&e), "cannot prepare NOTIFY; retrying");
                driver.abort();
                continue;
            }
        };
        loop {
            tokio::select! {
                first = outgoing.recv() => {
                    let Some(first) = first else {
                        driver.abort();
                        return; // the store was dropped
                    };
                    let mut batch = vec![first];
                    while let Ok(n) = outgoing.try_recv() {
                        batch.push(n);
                    }
                    let payloads = payloads(batch);
                    if payloads.is_empty() {
                        continue;
                    }
                    if let Err(e) = client.execute(&send, &[&payloads]).await {
                        tracing::warn!(error = %crate::describe(&e), "cannot NOTIFY; reconnecting");
                        break;
                    }
                }
                _ = &mut driver => break,
            }
        }
        driver.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offload_store::JobState;

    #[test]
    fn progress_fits_a_notification_or_becomes_a_marker() {
        let id = JobId::now_v7();
        let small = serde_json::json!({"done": 3, "total": 10});
        let big = serde_json::json!({"blob": "x".repeat(20_000)});
        let p = payloads(vec![
            Notice::Progress {
                id,
                data: small.clone(),
            },
            Notice::Progress { id, data: big },
        ]);
        assert!(p.iter().all(|p| p.len() < 8_000), "a payload is too long");
        let back: Vec<Notice> = p.iter().flat_map(|p| parse(p)).collect();
        assert_eq!(back[0], Notice::Progress { id, data: small });
        let Notice::Progress { data, .. } = &back[1] else {
            panic!("{back:?}")
        };
        assert_eq!(data["offload_dropped"]["limit_bytes"], MAX_PROGRESS);
    }

    #[test]
    fn schedule_changes_go_as_one_notification() {
        let p = payloads(vec![
            Notice::Schedules,
            Notice::Schedules,
            Notice::Reconnected,
        ]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(parse(&p[0]), [Notice::Schedules]);
    }

    #[test]
    fn payloads_dedupe_due_pools_and_fit_the_limit() {
        let mut n = vec![
            Notice::Due { pool: "a".into() },
            Notice::Due { pool: "a".into() },
            Notice::Due { pool: "b".into() },
        ];
        for i in 0..500 {
            n.push(Notice::Job(JobNotice {
                id: JobId::now_v7(),
                job: format!("job-{i}"),
                pool: "node".into(),
                state: JobState::Succeeded,
                attempt: 1,
            }));
        }
        let p = payloads(n);
        assert!(p.iter().all(|p| p.len() < 8_000), "a payload is too long");
        let back: Vec<Notice> = p.iter().flat_map(|p| parse(p)).collect();
        assert_eq!(
            back.iter()
                .filter(|n| matches!(n, Notice::Due { .. }))
                .count(),
            2
        );
        assert_eq!(
            back.iter().filter(|n| matches!(n, Notice::Job(_))).count(),
            500
        );
        assert!(parse("not json").is_empty());
    }
}
