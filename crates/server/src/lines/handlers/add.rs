//! `queue:add:module:data` → `id:<id>`, once the job is durable.

use std::net::SocketAddr;

use super::super::reply::LineError;
use super::super::request::Call;
use super::super::Ctx;
use super::call::{submit, Transport};

pub(super) async fn add(ctx: &Ctx, call: &Call, peer: SocketAddr) -> Result<String, LineError> {
    let submitted = submit(ctx, call, Transport::Tcp, peer).await?;
    Ok(format!("id:{}", submitted.id))
}
