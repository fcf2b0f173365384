//! `module:data`: submit the job (durably, like any job), wait for its end, answer its result.

use std::net::SocketAddr;
use std::time::Duration;

use offload_store::{JobId, JobRecord, Submitted};
use serde_json::{json, Value};

use super::super::reply::{self, LineError};
use super::super::request::Call;
use super::super::{stopped, Ctx};

/// How the request came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// A TCP request: someone reads the result.
    Tcp,
    /// A datagram: nobody does.
    Udp,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// The params a line-protocol job receives (docs/line-protocol.md):
/// `{"module", "data", "parts": [module, data], "transport": "tcp" | "udp", "peer"}`.
pub(crate) fn params(call: &Call, transport: Transport, peer: SocketAddr) -> Value {
    json!({
        "module": call.module,
        "data": call.data,
        "parts": [call.module, call.data],
        "transport": transport.as_str(),
        "peer": peer.to_string(),
    })
}

/// Submits the job of `call` (the engine's one submit path): `404:` for an unknown module.
pub(crate) async fn submit(
    ctx: &Ctx,
    call: &Call,
    transport: Transport,
    peer: SocketAddr,
) -> Result<Submitted, LineError> {
    let params = params(call, transport, peer);
    Ok(ctx
        .engine
        .submit_one(&call.module, params, ctx.limits.max_attempts)
        .await?)
}

/// Waits as long as the job takes (its pool's timeout bounds it), re-reading at least every
/// minute. When the daemon stops meanwhile: `503:` naming the job, which stays in the store.
pub(crate) async fn wait(ctx: &Ctx, id: JobId) -> Result<JobRecord, LineError> {
    let mut stop = ctx.stop.clone();
    let end = async {
        loop {
            let rec = ctx.engine.wait_for_end(id, Duration::from_secs(60)).await?;
            if rec.state.is_terminal() {
                return Ok(rec);
            }
        }
    };
    tokio::select! {
        r = end => r,
        () = stopped(&mut stop) => Err(LineError::unavailable(format!(
            "the daemon is stopping; job {id} stays in the store: ask queue:get:id:{id} later"
        ))),
    }
}

pub(super) async fn call(ctx: &Ctx, call: &Call, peer: SocketAddr) -> Result<String, LineError> {
    let submitted = submit(ctx, call, Transport::Tcp, peer).await?;
    let rec = wait(ctx, submitted.id).await?;
    reply::finished(&rec)
}
