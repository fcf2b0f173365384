//! `module:data`: submit the job (durably, like any job), wait for its end, answer its result.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use offload_store::{JobId, JobRecord, Submitted};
use serde_json::{json, Value};

use super::super::ends::WaitSlot;
use super::super::reply::{self, LineError};
use super::super::request::Call;
use super::super::{stopped, Ctx};
use super::Gone;
use crate::engine::attach::CLIENT_FIELD;
use crate::engine::{Source, Submit};

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
    submit_offering(ctx, call, transport, peer, None).await
}

/// [`submit`], the params naming the client socket offered under `client` (`attach.rs`).
async fn submit_offering(
    ctx: &Ctx,
    call: &Call,
    transport: Transport,
    peer: SocketAddr,
    client: Option<&str>,
) -> Result<Submitted, LineError> {
    let mut params = params(call, transport, peer);
    if let (Some(token), Some(map)) = (client, params.as_object_mut()) {
        map.insert(CLIENT_FIELD.into(), Value::String(token.to_owned()));
    }
    let job = Submit::new(&call.module, params);
    Ok(ctx.engine.submit(Source::Lines, job).await?)
}

/// A waiting request re-reads its job at least this often, even without an end event.
const RECHECK: Duration = Duration::from_secs(30);

/// Waits for the job's end: woken by its end event (`ends.rs`), never longer than
/// `max_wait_ms` (`504:`, the job goes on), and not at all once the client is `gone`. When the
/// daemon stops meanwhile: `503:` naming the job, which stays in the store. A job that has
/// ended already is answered at once; otherwise the wait takes `slot`, or a place of its own
/// ([`Ends::wait_slot`](super::super::ends::Ends::wait_slot): `503:` when `max_waits` requests wait already).
pub(crate) async fn wait(
    ctx: &Ctx,
    id: JobId,
    mut gone: Gone<'_>,
    mut slot: Option<WaitSlot>,
) -> Result<JobRecord, LineError> {
    let mut stop = ctx.stop.clone();
    let deadline = tokio::time::Instant::now() + ctx.limits.max_wait;
    // Register first, then read: an end between the two is not missed.
    let ended = ctx.ends.register(id);
    loop {
        let rec = ctx.engine.store.get(id).await?;
        if rec.state.is_terminal() {
            return Ok(rec);
        }
        if slot.is_none() {
            slot = Some(ctx.ends.wait_slot()?);
        }
        tokio::select! {
            () = ended.notified() => {}
            () = tokio::time::sleep(RECHECK) => {}
            () = &mut gone => return Err(LineError::client_gone()),
            () = tokio::time::sleep_until(deadline) => {
                return Err(LineError::job_timeout(format!(
                    "job {id} did not end within {} ms (max_wait_ms); it goes on: ask \
                     queue:get:id:{id} later",
                    ctx.limits.max_wait.as_millis()
                )));
            }
            () = stopped(&mut stop) => {
                return Err(LineError::unavailable(format!(
                    "the daemon is stopping; job {id} stays in the store: ask queue:get:id:{id} later"
                )));
            }
        }
    }
}

/// A direct call. `client` is the connection's socket, offered to the job's worker (`None`
/// for no offer): a worker that takes it and answers on it itself (a seed module's
/// `TExecute(parts, client)` under the Node SDK) ends the job with the result
/// [`reply::CLIENT_REPLIED`], and the call answers nothing more (`Ok(None)`).
pub(super) async fn call(
    ctx: &Ctx,
    call: &Call,
    peer: SocketAddr,
    gone: Gone<'_>,
    client: Option<OwnedFd>,
) -> Result<Option<String>, LineError> {
    // A place to wait first: a refused call creates no job.
    let slot = ctx.ends.wait_slot()?;
    // Its entry goes with this call, taken or not.
    let offered = client.map(|fd| ctx.engine.attachments.attach(fd));
    let token = offered.as_ref().map(|a| a.token());
    let submitted = submit_offering(ctx, call, Transport::Tcp, peer, token).await?;
    let rec = wait(ctx, submitted.id, gone, Some(slot)).await?;
    if reply::client_replied(&rec) {
        return Ok(None);
    }
    reply::finished(&rec).map(Some)
}
