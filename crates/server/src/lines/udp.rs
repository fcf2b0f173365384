//! The UDP listener: each `module:data` datagram submits its job (durably) and gets no answer,
//! as the seed's `UExecute`. `queue:add:module:data` does the same; other queue commands and bad
//! datagrams are logged and dropped. Submits run at most `max_connections` at once; beyond that
//! datagrams are dropped (logged), as UDP allows.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::handlers::{submit, Transport};
use super::request::{self, Request};
use super::{stopped, Ctx};

pub(crate) async fn serve(socket: UdpSocket, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(ctx.limits.max_connections));
    let mut tasks = JoinSet::new();
    // The largest UDP payload, plus one byte to notice a datagram over it.
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            received = socket.recv_from(&mut buf) => {
                let (n, peer) = match received {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "udp line protocol: receive failed");
                        continue;
                    }
                };
                if n > ctx.limits.max_request {
                    tracing::warn!(%peer, bytes = n, max = ctx.limits.max_request, "udp line protocol: datagram over the size limit dropped");
                    continue;
                }
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(%peer, "udp line protocol: overloaded, datagram dropped");
                    continue;
                };
                let bytes = buf[..n].to_vec();
                let ctx = Arc::clone(&ctx);
                tasks.spawn(async move {
                    datagram(&bytes, peer, &ctx).await;
                    drop(permit);
                });
            }
        }
    }
    // Submits in flight finish (they are short).
    while tasks.join_next().await.is_some() {}
}

async fn datagram(bytes: &[u8], peer: SocketAddr, ctx: &Ctx) {
    let call = match request::parse(bytes) {
        Ok(Request::Call(c) | Request::Add(c)) => c,
        Ok(other) => {
            tracing::warn!(%peer, request = ?other, "udp line protocol: only module:data and queue:add run over UDP; dropped");
            return;
        }
        Err(e) => {
            tracing::warn!(%peer, error = %e.render(), "udp line protocol: bad datagram dropped");
            return;
        }
    };
    match submit(ctx, &call, Transport::Udp, peer).await {
        Ok(s) => {
            tracing::debug!(%peer, module = %call.module, id = %s.id, "udp line protocol: job submitted")
        }
        Err(e) => {
            tracing::warn!(%peer, module = %call.module, error = %e.render(), "udp line protocol: job not submitted")
        }
    }
}
