//! The TCP listener: one task per connection, at most `max_connections` at once.
//!
//! A connection: read one request (`read.rs`), answer it (`handlers/`), close. Beyond the limit
//! a connection is answered `503:` at once; a peer outside loopback and `[lines] allow` is
//! closed at once. While a request waits for its job, its socket is watched: a client that
//! closes frees its place at once. Every wait is bounded (idle and request timeouts
//! while reading, the idle timeout while writing), so a slow or endless client only ever holds
//! its own task and slot. When the daemon stops, requests still in progress are answered
//! `503:` (their jobs stay in the store).

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::read::{self, End, ReadError};
use super::reply::LineError;
use super::{handlers, request, stopped, Ctx};

/// Connections being refused (`503:`) at once; beyond that they are closed without a word.
const REFUSING: usize = 64;

/// How long a closed connection's leftover input is drained (so closing does not reset it and
/// lose the answer in flight).
const LINGER: Duration = Duration::from_secs(1);

pub(crate) async fn serve(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(ctx.limits.max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, typically: let connections finish.
                        tracing::warn!(error = %e, "tcp line protocol: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if !ctx.limits.allows(peer.ip()) {
                    // Closed without a word: an outsider learns nothing.
                    tracing::debug!(%peer, "tcp line protocol: peer outside [lines] allow, closed");
                    ctx.engine.metrics.tcp_refused("not_allowed");
                    drop(stream);
                    continue;
                }
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(permit) => {
                        tasks.spawn(connection(stream, peer, Arc::clone(&ctx), stop.clone(), permit));
                    }
                    Err(_) => {
                        ctx.engine.metrics.tcp_refused("overloaded");
                        tracing::warn!(%peer, max = ctx.limits.max_connections, "tcp line protocol: too many connections, refusing one");
                        if let Ok(permit) = Arc::clone(&refusing).try_acquire_owned() {
                            let limits = ctx.limits.clone();
                            tasks.spawn(async move {
                                let e = LineError::unavailable(format!(
                                    "overloaded: {} connections are open; try again later",
                                    limits.max_connections
                                ));
                                finish(stream, &e.render(), limits.idle_timeout).await;
                                drop(permit);
                            });
                        }
                    }
                }
            }
        }
    }
    // Requests in progress saw the stop too: let them answer `503:`.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// How long a request may take to answer a stop itself (a wait names its job) before the
/// connection gets the generic `503:`.
const STOP_GRACE: Duration = Duration::from_millis(500);

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    // A request waiting for its job answers the stop itself, naming the job (`call::wait`);
    // it may be between two awaits when the stop comes, so it gets a moment to do so.
    let answer = {
        let exchange = exchange(&mut stream, peer, &ctx);
        tokio::pin!(exchange);
        tokio::select! {
            biased;
            a = &mut exchange => a,
            () = stopped(&mut stop) => match tokio::time::timeout(STOP_GRACE, &mut exchange).await {
                Ok(a) => a,
                Err(_) => Some(
                    LineError::unavailable("the daemon is stopping; try again later").render(),
                ),
            },
        }
    };
    if let Some(answer) = answer {
        finish(stream, &answer, ctx.limits.idle_timeout).await;
    }
}

/// Reads the request and computes the answer (`None`: the client left, before asking or
/// while waiting).
async fn exchange(stream: &mut TcpStream, peer: SocketAddr, ctx: &Ctx) -> Option<String> {
    let (bytes, end) = match read::request(stream, &ctx.limits).await {
        Ok(r) => r,
        Err(ReadError::Gone) => return None,
        Err(ReadError::Answer(e)) => {
            tracing::debug!(%peer, code = e.code, "tcp line protocol: request refused");
            return Some(e.render());
        }
    };
    let req = match request::parse(&bytes) {
        Ok(req) => req,
        Err(e) => return Some(e.render()),
    };
    tracing::debug!(%peer, ?end, bytes = bytes.len(), "tcp line protocol: request");
    // A direct call offers the connection itself to its job's worker (`engine/attach.rs`):
    // then what the client sends next is the job's to read, and the watch only peeks.
    let client = match &req {
        request::Request::Call(_) => stream.as_fd().try_clone_to_owned().ok(),
        _ => None,
    };
    let peek = client.is_some();
    let gone = client_gone(stream, end, ctx.limits.max_request, peek);
    tokio::pin!(gone);
    match handlers::answer(ctx, req, peer, gone, client).await {
        // The worker answered on the socket itself: close this copy without a word (no
        // shutdown: that would end the worker's copy too).
        Ok(None) => None,
        Ok(Some(answer)) => Some(answer),
        Err(e) if e.is_client_gone() => {
            tracing::debug!(%peer, "tcp line protocol: the client left while waiting");
            None
        }
        Err(e) => Some(e.render()),
    }
}

/// Resolves when the client closes its connection (or sends more than `max` further bytes,
/// which are discarded). Never, after a half-close: that client's end cannot be told from the
/// way it ends its request. With `peek` (the connection is offered to the job) nothing is
/// consumed: it resolves at end of file, and stops watching once the client sends more (those
/// bytes are the job's to read).
async fn client_gone(stream: &mut TcpStream, end: End, max: usize, peek: bool) {
    if end == End::HalfClose {
        return std::future::pending().await;
    }
    if peek {
        let mut one = [0u8; 1];
        return match stream.peek(&mut one).await {
            Ok(0) | Err(_) => {}
            Ok(_) => std::future::pending().await,
        };
    }
    let mut sink = [0u8; 1024];
    let mut extra = 0usize;
    loop {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                extra += n;
                if extra > max {
                    return;
                }
            }
        }
    }
}

/// Writes the answer (bounded by `timeout`: a client that does not read is dropped), closes
/// the sending side, and drains what the client still sends for a moment before closing.
async fn finish(mut stream: TcpStream, answer: &str, timeout: Duration) {
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    if tokio::time::timeout(timeout, write).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
