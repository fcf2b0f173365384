//! `GET /v1/events`: the event stream, with a bounded buffer per subscriber.
//!
//! A pump task per subscriber reads the engine's broadcast at once (so a subscriber that does
//! not read never holds the broadcast's ring) and queues the serialized events in a buffer of
//! at most `http.sse_buffer_bytes`. When an event does not fit, the oldest queued ones are
//! dropped; the subscriber then gets `event: lagged` with `{"lost": n}` before what it still
//! has, and catches up from there. Subscribers at once are capped (`http.max_sse_subscribers`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use offload_api::{ErrorBody, ErrorCode, EventsQuery};
use offload_store::JobId;
use tokio::sync::{broadcast, oneshot, Notify, OwnedSemaphorePermit};

use super::App;
use crate::error::ApiError;
use crate::events::ServerEvent;
use crate::metrics::Metrics;

/// Server-sent events: `job`, `progress`, `job_event`, `worker`, `lagged` (docs/http-api.md).
#[utoipa::path(get, path = "/v1/events", operation_id = "events", tag = "events",
    params(EventsQuery),
    responses(
        (status = 200, description = "An event stream", body = String, content_type = "text/event-stream"),
        (status = 400, description = "`invalid_request`: `id` is not a job id", body = ErrorBody),
        (status = 503, description = "`too_many_subscribers` (or `too_many_connections`)", body = ErrorBody),
    ))]
pub(crate) async fn events(
    State(app): State<Arc<App>>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let only: Option<JobId> = super::parse_query(q)?.id;
    let max = app.limits.max_sse_subscribers;
    let permit = Arc::clone(&app.sse_slots)
        .try_acquire_owned()
        .map_err(|_| {
            app.engine.metrics.http_refused("too_many_subscribers");
            ApiError::of(
                ErrorCode::TooManySubscribers,
                format!("{max} event streams are open (http.max_sse_subscribers); close one or raise the limit"),
            )
        })?;
    let buffer =
        Arc::new(Buffer::new(app.limits.sse_buffer_bytes).with_metrics(app.engine.metrics.clone()));
    let (gone_tx, gone_rx) = oneshot::channel::<()>();
    tokio::spawn(pump(
        app.engine.events.subscribe(),
        only,
        Arc::clone(&buffer),
        gone_tx,
    ));
    let reader = Reader {
        buffer,
        _gone: gone_rx,
        _permit: permit,
    };
    let stream = futures_util::stream::unfold(reader, |reader| async move {
        let event = reader.next().await;
        Some((Ok(event), reader))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A subscriber's queue of serialized events, bounded in bytes.
#[derive(Debug)]
pub(crate) struct Buffer {
    queue: Mutex<Queue>,
    ready: Notify,
    budget: usize,
    /// Where lost events are counted (`offload_sse_lost_events_total`).
    metrics: Option<Metrics>,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<(&'static str, String)>,
    bytes: usize,
    lost: u64,
}

impl Buffer {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            budget,
            metrics: None,
        }
    }

    /// Counts what this subscriber loses in `metrics`.
    fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn count_lost(&self, n: u64) {
        if let (Some(m), true) = (&self.metrics, n > 0) {
            m.sse_lost(n);
        }
    }

    /// Queues an event, dropping the oldest ones (counted) until it fits.
    pub(crate) fn push(&self, name: &'static str, data: String) {
        let mut dropped = 0;
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if data.len() > self.budget {
                dropped += 1;
            } else {
                while q.bytes + data.len() > self.budget {
                    let Some((_, old)) = q.items.pop_front() else {
                        break;
                    };
                    q.bytes -= old.len();
                    dropped += 1;
                }
                q.bytes += data.len();
                q.items.push_back((name, data));
            }
            q.lost += dropped;
        }
        self.count_lost(dropped);
        self.ready.notify_one();
    }

    /// Counts events the broadcast itself skipped.
    fn lost(&self, n: u64) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).lost += n;
        self.count_lost(n);
        self.ready.notify_one();
    }

    /// The next thing to send: `lagged` first when events were lost.
    pub(crate) fn pop(&self) -> Option<(&'static str, String)> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.lost > 0 {
            let lost = std::mem::take(&mut q.lost);
            return Some(("lagged", format!("{{\"lost\":{lost}}}")));
        }
        let item = q.items.pop_front()?;
        q.bytes -= item.1.len();
        Some(item)
    }

    /// Bytes queued now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

/// The stream's side: it owns the subscriber slot; dropping it (the client went away) stops
/// the pump.
struct Reader {
    buffer: Arc<Buffer>,
    _gone: oneshot::Receiver<()>,
    _permit: OwnedSemaphorePermit,
}

impl Reader {
    async fn next(&self) -> Event {
        loop {
            if let Some((name, data)) = self.buffer.pop() {
                return Event::default().event(name).data(data);
            }
            self.buffer.ready.notified().await;
        }
    }
}

/// Moves events from the broadcast into the subscriber's buffer until the subscriber is gone.
async fn pump(
    mut rx: broadcast::Receiver<ServerEvent>,
    only: Option<JobId>,
    buffer: Arc<Buffer>,
    mut gone: oneshot::Sender<()>,
) {
    loop {
        let ev = tokio::select! {
            () = gone.closed() => return,
            ev = rx.recv() => ev,
        };
        match ev {
            Ok(ev) => {
                if only.is_some() && ev.job_id() != only {
                    continue;
                }
                if let Ok(data) = serde_json::to_string(&ev) {
                    buffer.push(ev.name(), data);
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => buffer.lost(n),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_buffer_drops_the_oldest_and_says_how_many() {
        let b = Buffer::new(10);
        for i in 0..5 {
            b.push("progress", format!("{i:04}"));
        }
        assert!(b.bytes() <= 10);
        assert_eq!(b.pop(), Some(("lagged", "{\"lost\":3}".to_owned())));
        assert_eq!(b.pop(), Some(("progress", "0003".to_owned())));
        assert_eq!(b.pop(), Some(("progress", "0004".to_owned())));
        assert_eq!(b.pop(), None);
        b.push("progress", "x".repeat(11));
        assert_eq!(b.pop(), Some(("lagged", "{\"lost\":1}".to_owned())));
    }
}
