//! One file per request, dispatched from [`answer`]'s match.

mod add;
mod call;
mod check;
mod get;

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::pin::Pin;

use super::reply::LineError;
use super::request::Request;
use super::Ctx;

pub(crate) use call::{submit, Transport};

/// Resolves when the TCP client has left (a waiting request then stops waiting).
pub(crate) type Gone<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send + 'a)>;

/// The answer to a TCP request (a UDP datagram only submits: see `udp.rs`); `None` when the
/// job's worker answered on the client socket itself (`client`, offered to a direct call).
pub(crate) async fn answer(
    ctx: &Ctx,
    req: Request,
    peer: SocketAddr,
    gone: Gone<'_>,
    client: Option<OwnedFd>,
) -> Result<Option<String>, LineError> {
    match req {
        Request::Call(c) => call::call(ctx, &c, peer, gone, client).await,
        Request::Add(c) => add::add(ctx, &c, peer).await.map(Some),
        Request::Get(id) => get::get(ctx, id, gone).await.map(Some),
        Request::Check(id) => check::check(ctx, id).await.map(Some),
    }
}
