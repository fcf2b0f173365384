//! One file per request, dispatched from [`answer`]'s match.

mod add;
mod call;
mod check;
mod get;

use std::net::SocketAddr;

use super::reply::LineError;
use super::request::Request;
use super::Ctx;

pub(crate) use call::{submit, Transport};

/// The answer to a TCP request (a UDP datagram only submits: see `udp.rs`).
pub(crate) async fn answer(ctx: &Ctx, req: Request, peer: SocketAddr) -> Result<String, LineError> {
    match req {
        Request::Call(c) => call::call(ctx, &c, peer).await,
        Request::Add(c) => add::add(ctx, &c, peer).await,
        Request::Get(id) => get::get(ctx, id).await,
        Request::Check(id) => check::check(ctx, id).await,
    }
}
