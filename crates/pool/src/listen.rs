//! Connection distribution, as Node's cluster does it: a pool owns a listening socket, accepts
//! each connection and hands it to a worker chosen by its balancer — a job of the pool whose
//! run carries the connection (`docs/protocol.md` §9). With [`Affinity::ClientIp`] the
//! connections of one client address go to the same worker while it lives (the pool's key
//! affinity). A connection is its job: a worker that dies takes only its own connections with
//! it (their jobs fail; connection jobs have one attempt), the others go on, and the pool
//! replaces the worker for the next ones.
//!
//! ```no_run
//! # async fn demo(pool: offload_pool::ChildPool) -> std::io::Result<()> {
//! use offload_pool::{Affinity, ConnectionServer, ServeConnections};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = ConnectionServer::start(&pool, listener, ServeConnections::new("serve").affinity(Affinity::ClientIp))?;
//! println!("serving on {}", server.local_addr());
//! # Ok(()) }
//! ```
//!
//! The handler gets the connection with its run (Rust SDK: `ctx.take_fds()`, a blocking
//! `TcpStream`; Node: `ctx.fds[0]`, a `net.Socket`; Python: a `socket.socket`) and params
//! `{"peer": "ip:port", "local": "ip:port"}`; it serves it until it is done. Bounded: at most
//! `max_connections` connections are held (by jobs queued or running) at once; past it the
//! accept loop waits (the kernel's backlog holds the rest).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::{ChildPool, RunOptions};

/// Which worker a connection goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Affinity {
    /// Whichever the pool's balancer picks.
    #[default]
    None,
    /// The connections of one client IP address go to the same worker while it lives.
    ClientIp,
}

/// How a [`ConnectionServer`] hands out its connections.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConnections {
    /// The job that serves one connection.
    pub job: String,
    /// Which worker a connection goes to.
    pub affinity: Affinity,
    /// The most connections held at once (default 1,024).
    pub max_connections: usize,
}

impl ServeConnections {
    /// Connections served by `job`, no affinity.
    pub fn new(job: impl Into<String>) -> Self {
        Self {
            job: job.into(),
            affinity: Affinity::None,
            max_connections: 1024,
        }
    }

    /// Sets the affinity.
    #[must_use]
    pub fn affinity(mut self, a: Affinity) -> Self {
        self.affinity = a;
        self
    }

    /// Sets the most connections held at once.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }
}

#[derive(Debug, Default)]
struct Counts {
    accepted: AtomicU64,
    served: AtomicU64,
    failed: AtomicU64,
}

/// A pool's listening socket and its accept loop (see the module docs). Stops when dropped or
/// [`stop`](Self::stop)ped: the listener closes; connections already handed out go on.
#[derive(Debug)]
pub struct ConnectionServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
    counts: Arc<Counts>,
}

impl ConnectionServer {
    /// Starts accepting on `listener`, each connection a job of `pool`.
    ///
    /// # Errors
    ///
    /// The listener's address cannot be read.
    pub fn start(
        pool: &ChildPool,
        listener: TcpListener,
        opts: ServeConnections,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(accept_loop(
            pool.clone(),
            listener,
            opts,
            Arc::clone(&counts),
        ));
        Ok(Self { addr, task, counts })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.counts.accepted.load(Ordering::Relaxed)
    }

    /// Connections whose job succeeded.
    pub fn served(&self) -> u64 {
        self.counts.served.load(Ordering::Relaxed)
    }

    /// Connections whose job failed (its worker died, it was refused, …).
    pub fn failed(&self) -> u64 {
        self.counts.failed.load(Ordering::Relaxed)
    }

    /// Stops accepting (the listener closes).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for ConnectionServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    pool: ChildPool,
    listener: TcpListener,
    opts: ServeConnections,
    counts: Arc<Counts>,
) {
    let held = Arc::new(Semaphore::new(opts.max_connections));
    loop {
        let Ok(permit) = Arc::clone(&held).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, typically: let connections finish.
                tracing::warn!(error = %e, "connection distribution: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        counts.accepted.fetch_add(1, Ordering::Relaxed);
        let local = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        // The worker gets a blocking socket, as any descriptor it opens itself.
        let conn = match stream.into_std().and_then(|s| {
            s.set_nonblocking(false)?;
            Ok(s)
        }) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "connection distribution: cannot hand over");
                continue;
            }
        };
        let mut run = RunOptions::default();
        if opts.affinity == Affinity::ClientIp {
            run = run.key(peer.ip().to_string());
        }
        let params = json!({"peer": peer.to_string(), "local": local});
        let submitted = pool
            .run_with_fds(&opts.job, params, run, vec![conn.into()])
            .await;
        let counts = Arc::clone(&counts);
        match submitted {
            Ok(handle) => {
                tokio::spawn(async move {
                    let r = handle.result().await;
                    if r.outcome.is_success() {
                        counts.served.fetch_add(1, Ordering::Relaxed);
                    } else {
                        tracing::debug!(%peer, outcome = %r.outcome, "connection job failed");
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                // The connection was closed with the refused submit.
                tracing::warn!(%peer, error = %e, "connection distribution: submit refused");
                counts.failed.fetch_add(1, Ordering::Relaxed);
                if matches!(e, crate::PoolError::ShuttingDown | crate::PoolError::Gone) {
                    return;
                }
            }
        }
    }
}
