//! The HTTP accept loop: hyper's HTTP/1 connection driver with a request-head timeout, a cap on
//! connections, and graceful shutdown (axum::serve has no head timeout, and no cap).
//!
//! A connection beyond `http.max_connections` is still accepted: while one of [`SPARE`] spare
//! slots is free it is served by a tiny service that answers `GET /healthz` and refuses every
//! other request with `503 too_many_connections`, then closes; beyond the spare slots it gets
//! the same 503 written at once (when the socket takes it) and is closed. Either way the
//! refusal costs no wait.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::config::HttpLimits;
use crate::metrics::Metrics;

/// How long open connections may finish their request at shutdown (under `Daemon::stop`'s own
/// 2 s wait for the server).
const DRAIN: Duration = Duration::from_millis(1500);

/// Connections over the cap that may still ask `/healthz`.
pub(crate) const SPARE: usize = 16;

const REFUSAL_BODY: &str = r#"{"error":{"code":"too_many_connections","message":"the daemon serves http.max_connections connections at once; retry later"}}"#;

/// Open files the daemon may have: raises the soft `RLIMIT_NOFILE` to the hard limit and says
/// so in the log; returns the soft limit now in force.
pub(crate) fn raise_nofile() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    let (soft, hard) = (now.current, now.maximum);
    if soft != hard {
        let want = Rlimit {
            current: hard,
            maximum: hard,
        };
        match setrlimit(Resource::Nofile, want) {
            Ok(()) => {
                tracing::info!(from = ?soft, to = ?hard, "raised the open-file limit (RLIMIT_NOFILE) to its hard limit");
                return hard;
            }
            Err(e) => {
                tracing::warn!(soft = ?soft, hard = ?hard, error = %e, "cannot raise the open-file limit (RLIMIT_NOFILE)");
            }
        }
    } else {
        tracing::info!(limit = ?soft, "the open-file limit (RLIMIT_NOFILE) is at its hard limit");
    }
    soft
}

/// The connection cap that fits under `nofile` open files (half of them, the rest for the
/// store, workers' pipes and sockets).
pub(crate) fn fit_connections(max: usize, nofile: Option<u64>) -> usize {
    let Some(n) = nofile else { return max };
    let room = usize::try_from(n / 2).unwrap_or(usize::MAX).max(16);
    if max > room {
        tracing::warn!(
            max_connections = max,
            room,
            "http.max_connections is over half the open-file limit: lowered"
        );
        room
    } else {
        max
    }
}

/// Serves `router` on `listener` until `stop` fires, then lets open connections finish their
/// current request for a moment ([`DRAIN`]) and closes the rest.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpLimits,
    max_connections: usize,
    metrics: Metrics,
    mut stop: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let spare = Arc::new(Semaphore::new(SPARE));
    let (shut_tx, shut_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let head = limits.header_timeout;
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors (or a connection reset before accept): let some
                // connections close instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
            conns.spawn(connection(
                stream,
                router.clone(),
                head,
                shut_rx.clone(),
                permit,
            ));
        } else if let Ok(permit) = Arc::clone(&spare).try_acquire_owned() {
            metrics.http_refused("too_many_connections");
            conns.spawn(overflow(stream, head.min(Duration::from_secs(2)), permit));
        } else {
            metrics.http_refused("too_many_connections");
            refuse(&stream);
        }
    }
    drop(listener);
    let _ = shut_tx.send(true);
    // Requests in progress finish; streams and long polls that would not end are cut.
    let drained =
        tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::info!(
            open = conns.len(),
            "closing the HTTP connections still open"
        );
        conns.shutdown().await;
    }
}

fn builder(head: Duration) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(head)
        .max_buf_size(64 * 1024);
    b
}

async fn connection(
    stream: TcpStream,
    router: Router,
    head: Duration,
    mut shut: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let service = TowerToHyperService::new(router);
    let conn = builder(head).serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let stopping = async move {
        let _stopped = shut.wait_for(|s| *s).await.is_ok();
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// A connection over the cap: `/healthz` only, one request, then closed.
async fn overflow(stream: TcpStream, head: Duration, _permit: OwnedSemaphorePermit) {
    let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
        let healthz = req.method() == Method::GET && req.uri().path() == "/healthz";
        let (status, body) = if healthz {
            (StatusCode::OK, r#"{"status":"ok"}"#)
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, REFUSAL_BODY)
        };
        let resp = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("connection", "close")
            .body(http_body_util::Full::new(axum::body::Bytes::from_static(
                body.as_bytes(),
            )))
            .unwrap_or_default();
        Ok::<_, Infallible>(resp)
    });
    let mut b = builder(head);
    b.keep_alive(false);
    let _ = b.serve_connection(TokioIo::new(stream), service).await;
}

/// Beyond every slot: the 503 if the socket takes it at once, then close.
fn refuse(stream: &TcpStream) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{REFUSAL_BODY}",
        REFUSAL_BODY.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_under_half_the_open_file_limit() {
        assert_eq!(fit_connections(512, None), 512);
        assert_eq!(fit_connections(512, Some(1 << 20)), 512);
        assert_eq!(fit_connections(512, Some(1024)), 512);
        assert_eq!(fit_connections(512, Some(256)), 128);
        assert_eq!(fit_connections(512, Some(4)), 16);
    }
}
