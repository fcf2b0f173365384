//! The seed's TCP/UDP line protocol (BackgroundService, `docs/line-protocol.md`), so its
//! existing clients work unchanged: a request is one string `module:data`; over TCP the daemon
//! runs the job named by the module (durably, through the store, like any job), writes its
//! result as text and closes; over UDP it runs the job and answers nothing.
//!
//! ```text
//! $ printf 'echo:hello' | nc -N 127.0.0.1 12341      # offload serve --tcp 127.0.0.1:12341
//! hello
//! $ printf 'queue:add:echo:hi\n' | nc 127.0.0.1 12341
//! id:0193d4b2-…
//! ```
//!
//! Main loops (tasks of [`Listeners::start`]):
//! - `tcp.rs`: the accept loop, then one task per connection (at most `max_connections`):
//!   `read.rs` frames the request (half-close, newline or a quiet gap), `request.rs` parses
//!   it, `handlers/` answers it (one file per request kind), `reply.rs` renders the answer;
//! - `udp.rs`: the receive loop (source allow-list, rate per source: `bucket.rs`), then one
//!   short task per datagram that submits its job; the same loop sends the answers jobs emit
//!   (`answers.rs`);
//! - `ends.rs`: follows the engine's job ends, waking the requests that wait for one and
//!   counting the UDP jobs that have not ended.
//!
//! # Exposure
//!
//! The protocol has no credential. It serves loopback peers only unless `[lines] allow`
//! (`--lines-allow`) names the networks that may use it: without that opt-in, a non-loopback
//! bind, or a daemon with a `token` (its HTTP API is meant to be protected), refuses to start
//! ([`ConfigError::LinesNeedAllow`](crate::error::ConfigError::LinesNeedAllow)). Peers outside
//! loopback and the allow-list are closed at accept (TCP) or dropped (UDP), and counted.
//!
//! # Waits
//!
//! `module:data` and `queue:get` wait for a job's end: at most `max_waits` at once (more:
//! `503: too many waiting requests (limit N)`), at most `max_wait_ms` each (then `504:`, the job
//! goes on), and a client that closes its connection frees its place at once (its socket is
//! watched while it waits; a client that half-closed after its request cannot be told from one
//! that left, so its wait lasts until its job ends or `max_wait_ms`). A wait holds no thread and
//! reads the store only when its job ends (or every 30 s, a safety net).
//!
//! A job receives `{"module", "data", "parts": [module, data], "transport", "peer"}` as its
//! params; the Node SDK runs the seed's `TExecute(parts, client)` / `UExecute(parts)` modules
//! from them (`sdks/node/lib/background-service.js`). A direct TCP call also offers its
//! connection to the job's worker (`"client"`: a token of `engine/attach.rs`): a seed module
//! then gets the real socket, answers on it, and the call writes nothing more. A UDP job may
//! answer its datagram (`answers.rs`: `UExecute(parts, rinfo, answer)`), from this listener's
//! port.
//!
//! # Errors
//!
//! Answers are `NNN:message` (`reply.rs`): `400` bad request, `404` unknown module or id,
//! `408` too slow, `413` too large, `500` the job failed, `503` overloaded, queue full or
//! stopping, `504` the job did not end within `max_wait_ms`.

mod answers;
mod bucket;
mod ends;
mod handlers;
#[cfg(test)]
mod props;
mod read;
mod reply;
mod request;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::LineLimits;
use crate::engine::Engine;
use crate::error::ServeError;

/// What every request handler sees.
pub(crate) struct Ctx {
    pub(crate) engine: Arc<Engine>,
    pub(crate) limits: LineLimits,
    /// Set when the daemon stops.
    pub(crate) stop: watch::Receiver<bool>,
    /// Job ends: waits and UDP jobs.
    pub(crate) ends: Arc<ends::Ends>,
}

/// The sockets, bound before the engine starts (a taken address fails the start early).
pub(crate) struct Bound {
    tcp: Option<TcpListener>,
    udp: Option<UdpSocket>,
}

impl Bound {
    /// Binds the configured addresses (none: the protocol is off).
    pub(crate) async fn bind(
        tcp: Option<SocketAddr>,
        udp: Option<SocketAddr>,
    ) -> Result<Self, ServeError> {
        let bind_error = |addr: SocketAddr, e: std::io::Error| ServeError::Bind {
            addr: addr.to_string(),
            reason: e.to_string(),
        };
        let tcp = match tcp {
            Some(a) => Some(TcpListener::bind(a).await.map_err(|e| bind_error(a, e))?),
            None => None,
        };
        let udp = match udp {
            Some(a) => Some(UdpSocket::bind(a).await.map_err(|e| bind_error(a, e))?),
            None => None,
        };
        Ok(Self { tcp, udp })
    }
}

/// The running listeners.
pub(crate) struct Listeners {
    tcp: Option<SocketAddr>,
    udp: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Listeners {
    /// Starts serving the bound sockets.
    pub(crate) fn start(bound: Bound, engine: Arc<Engine>) -> Result<Self, ServeError> {
        let (stop, stop_rx) = watch::channel(false);
        let limits = engine.config().lines.clone();
        let ends = Arc::new(ends::Ends::new(
            limits.max_waits,
            limits.udp_max_queued,
            &engine.metrics,
        ));
        let mut tasks = Vec::new();
        if bound.tcp.is_some() || bound.udp.is_some() {
            tasks.push(tokio::spawn(
                Arc::clone(&ends).follow(Arc::clone(&engine), stop_rx.clone()),
            ));
        }
        let ctx = Arc::new(Ctx {
            limits,
            engine,
            stop: stop_rx.clone(),
            ends,
        });
        let mut this = Self {
            tcp: None,
            udp: None,
            stop,
            tasks: Vec::new(),
        };
        if let Some(listener) = bound.tcp {
            let addr = listener.local_addr()?;
            tracing::info!("tcp line protocol listening on tcp://{addr}");
            this.tcp = Some(addr);
            tasks.push(tokio::spawn(tcp::serve(
                listener,
                Arc::clone(&ctx),
                stop_rx.clone(),
            )));
        }
        if let Some(socket) = bound.udp {
            let addr = socket.local_addr()?;
            tracing::info!("udp line protocol listening on udp://{addr}");
            this.udp = Some(addr);
            tasks.push(tokio::spawn(udp::serve(socket, ctx, stop_rx)));
        }
        this.tasks = tasks;
        Ok(this)
    }

    /// The TCP address, when on.
    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The UDP address, when on.
    pub(crate) fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp
    }

    /// Stops accepting; requests in progress are answered `503:` (their jobs stay queued).
    pub(crate) async fn stop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// Resolves once `stop` is set (never, if its sender is gone without setting it).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}
