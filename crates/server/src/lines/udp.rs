//! The UDP listener: each `module:data` datagram submits its job (durably) and gets no answer,
//! as the seed's `UExecute` — unless its job answers it (`answers.rs`: the Node SDK's
//! `UExecute(parts, rinfo, answer)`), then the answer goes back from this socket. `queue:add:module:data` does the same; other queue commands and bad
//! datagrams are logged and dropped.
//!
//! A datagram is dropped, and counted in `offload_udp_dropped_total{reason}` (`/metrics`), when
//! its source is outside `[lines] allow` (`not_allowed`); its source is over `udp_rate_per_s`
//! (`rate`, a token bucket per address: `bucket.rs`); `udp_max_queued` UDP-submitted jobs have
//! not ended yet (`queue_cap`, `ends.rs`); `max_connections` submits are in flight
//! (`overloaded`); it is over `max_request_bytes` (`too_large`); it is not a request
//! (`bad_request`); or its submit is refused (`refused`: unknown job, queue full).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::answers::{Sources, UDP_ANSWER};
use super::bucket::Buckets;
use super::handlers::{submit, Transport};
use super::request::{self, Request};
use super::{stopped, Ctx};

pub(crate) async fn serve(socket: UdpSocket, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(ctx.limits.max_connections));
    let mut tasks = JoinSet::new();
    let mut buckets = Buckets::new(ctx.limits.udp_rate_per_s, ctx.limits.udp_burst);
    // The largest UDP payload, plus one byte to notice a datagram over it.
    let mut buf = vec![0u8; 65_536];
    let sources = Arc::new(Sources::new(ctx.limits.udp_max_queued));
    let socket = Arc::new(socket);
    let mut events = ctx.engine.events.subscribe();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            event = events.recv() => match event {
                Ok(crate::events::ServerEvent::JobEvent(e)) if e.name == UDP_ANSWER => {
                    if let Some((peer, bytes)) = sources.answer(e.id, &e.data) {
                        if let Err(err) = socket.send_to(&bytes, peer).await {
                            tracing::debug!(%peer, error = %err, "udp line protocol: answer not sent");
                        }
                    }
                }
                Ok(crate::events::ServerEvent::Job(c)) if c.state.is_terminal() => sources.ended(c.id),
                Ok(_) => {}
                // Lagged: answers in between are lost, as datagrams may be.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    events = ctx.engine.events.subscribe();
                }
            },
            received = socket.recv_from(&mut buf) => {
                let (n, peer) = match received {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "udp line protocol: receive failed");
                        continue;
                    }
                };
                let metrics = &ctx.engine.metrics;
                if !ctx.limits.allows(peer.ip()) {
                    tracing::debug!(%peer, "udp line protocol: source outside [lines] allow, dropped");
                    metrics.udp_dropped("not_allowed");
                    continue;
                }
                if !buckets.take(peer.ip(), Instant::now()) {
                    tracing::debug!(%peer, rate = ctx.limits.udp_rate_per_s, "udp line protocol: source over its rate, dropped");
                    metrics.udp_dropped("rate");
                    continue;
                }
                if n > ctx.limits.max_request {
                    tracing::warn!(%peer, bytes = n, max = ctx.limits.max_request, "udp line protocol: datagram over the size limit dropped");
                    metrics.udp_dropped("too_large");
                    continue;
                }
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(%peer, "udp line protocol: overloaded, datagram dropped");
                    metrics.udp_dropped("overloaded");
                    continue;
                };
                let bytes = buf[..n].to_vec();
                let ctx = Arc::clone(&ctx);
                let sources = Arc::clone(&sources);
                let socket = Arc::clone(&socket);
                tasks.spawn(async move {
                    if let Some(id) = datagram(&bytes, peer, &ctx).await {
                        if let Some((to, answer)) = sources.insert(id, peer) {
                            let _ = socket.send_to(&answer, to).await;
                        }
                    }
                    drop(permit);
                });
            }
        }
    }
    // Submits in flight finish (they are short).
    while tasks.join_next().await.is_some() {}
}

/// Submits the datagram's job: its id, or `None` when it was dropped.
async fn datagram(bytes: &[u8], peer: SocketAddr, ctx: &Ctx) -> Option<offload_store::JobId> {
    let metrics = &ctx.engine.metrics;
    let call = match request::parse(bytes) {
        Ok(Request::Call(c) | Request::Add(c)) => c,
        Ok(other) => {
            tracing::warn!(%peer, request = ?other, "udp line protocol: only module:data and queue:add run over UDP; dropped");
            metrics.udp_dropped("bad_request");
            return None;
        }
        Err(e) => {
            tracing::warn!(%peer, error = %e.render(), "udp line protocol: bad datagram dropped");
            metrics.udp_dropped("bad_request");
            return None;
        }
    };
    let Some(place) = ctx.ends.udp_reserve() else {
        tracing::debug!(%peer, max = ctx.limits.udp_max_queued, "udp line protocol: udp_max_queued UDP jobs wait already; dropped");
        metrics.udp_dropped("queue_cap");
        ctx.ends.udp_full(&ctx.engine);
        return None;
    };
    match submit(ctx, &call, Transport::Udp, peer).await {
        Ok(s) => {
            place.submitted(s.id);
            tracing::debug!(%peer, module = %call.module, id = %s.id, "udp line protocol: job submitted");
            Some(s.id)
        }
        Err(e) => {
            metrics.udp_dropped("refused");
            tracing::warn!(%peer, module = %call.module, error = %e.render(), "udp line protocol: job not submitted");
            None
        }
    }
}
