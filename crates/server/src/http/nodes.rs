//! The node registry: `GET /v1/nodes` (every node of the store, `lost` when its heartbeat is
//! older than the lease), `POST /v1/nodes/{id}/drain` and `POST /v1/nodes/{id}/undrain` (any
//! node takes the request for any other: the order is stored, and the target follows it). The
//! engine does the work (`engine/nodes.rs`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use offload_api::{self as api, DrainRequest, ErrorBody, ErrorCode, Node, NodeList};
use offload_store::nodes::MAX_NODE_ID;
use offload_store::{AfterDrain, NodeRecord, NodeState};

use super::{json, parse_body, App};
use crate::error::ApiError;

/// A node's row as the API shows it: `lost` when its heartbeat is older than `lease`.
pub(crate) fn view(n: NodeRecord, lease: Duration) -> Node {
    let state = if n.is_lost(lease) {
        api::NodeState::Lost
    } else {
        match n.state {
            NodeState::Active => api::NodeState::Active,
            NodeState::Draining => api::NodeState::Draining,
            NodeState::Drained => api::NodeState::Drained,
            NodeState::Stopped => api::NodeState::Stopped,
        }
    };
    Node {
        load: (n.capacity > 0).then(|| f64::from(n.running) / f64::from(n.capacity)),
        id: n.id,
        host: n.host,
        version: n.version,
        state,
        pools: n.pools,
        started_at: n.started_at,
        heartbeat_at: n.heartbeat_at,
        heartbeat_age_ms: n.heartbeat_age_ms,
        running: n.running,
        capacity: n.capacity,
        load1: n.load1,
        drain: n.drain.map(|d| api::NodeDrain {
            requested_at: d.requested_at,
            deadline_ms: d.deadline_ms,
            then: match d.then {
                AfterDrain::Exit => api::AfterDrain::Exit,
                AfterDrain::Idle => api::AfterDrain::Idle,
            },
            remaining_ms: d.remaining_ms,
        }),
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_NODE_ID {
        return Err(ApiError::bad_request(format!(
            "node id of {} bytes is out of range: 1..={MAX_NODE_ID} bytes",
            id.len()
        )));
    }
    Ok(())
}

/// The nodes of this store (one on SQLite; every node of a PostgreSQL cluster), by id: state,
/// heartbeat, load, running jobs, pools, drain order.
#[utoipa::path(get, path = "/v1/nodes", operation_id = "list_nodes", tag = "ops",
    responses((status = 200, description = "The nodes", body = NodeList)))]
pub(crate) async fn list(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let lease = app.engine.config().lease;
    let nodes = app
        .engine
        .nodes()
        .await?
        .into_iter()
        .map(|n| view(n, lease))
        .collect();
    Ok(json(
        StatusCode::OK,
        &NodeList {
            this: app.engine.config().node.clone(),
            lost_after_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX),
            nodes,
        },
    ))
}

/// Drain a node (any node of the store, through any node): it claims nothing more, lets its
/// running jobs finish for `deadline_ms`, then hands those still running back to the queue
/// (re-queued at once; the attempt is not counted), then exits or stays idle as `then` says.
/// The node learns it at once on PostgreSQL (NOTIFY), else at its next heartbeat.
#[utoipa::path(post, path = "/v1/nodes/{id}/drain", operation_id = "drain_node", tag = "ops",
    params(("id" = String, Path, max_length = 128, description = "The node's id")),
    request_body(content = Option<DrainRequest>, description = "Optional: no body (or `null`) drains for 30 s, then idles"),
    responses(
        (status = 200, description = "The node, with its drain order", body = Node),
        (status = 400, description = "`invalid_json`, `invalid_request`: a deadline over 86400000 ms", body = ErrorBody),
        (status = 404, description = "`not_found`: no such node", body = ErrorBody),
    ))]
pub(crate) async fn drain(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    // No body, `null` or an object (serde would take an array for a struct too).
    let empty = body
        .as_ref()
        .is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace));
    let v: serde_json::Value = if empty {
        serde_json::Value::Null
    } else {
        parse_body(body)?
    };
    let req: DrainRequest = match v {
        serde_json::Value::Null => DrainRequest::default(),
        v @ serde_json::Value::Object(_) => serde_json::from_value(v).map_err(|e| {
            ApiError::of(
                ErrorCode::InvalidJson,
                format!("the body is not a valid request: {e}"),
            )
        })?,
        _ => {
            return Err(ApiError::of(
                ErrorCode::InvalidJson,
                "the body is not a valid request: a JSON object (or nothing) is expected",
            ))
        }
    };
    let order = offload_store::DrainRequest {
        deadline_ms: req.deadline_ms.unwrap_or(api::DEFAULT_DRAIN_DEADLINE_MS),
        then: match req.then.unwrap_or_default() {
            api::AfterDrain::Exit => AfterDrain::Exit,
            api::AfterDrain::Idle => AfterDrain::Idle,
        },
    };
    let node = app.engine.drain_node(&id, Some(order)).await?;
    Ok(json(StatusCode::OK, &view(node, app.engine.config().lease)))
}

/// Undrain a node: it claims again (a drain order it has not finished is taken back).
#[utoipa::path(post, path = "/v1/nodes/{id}/undrain", operation_id = "undrain_node", tag = "ops",
    params(("id" = String, Path, max_length = 128, description = "The node's id")),
    responses(
        (status = 200, description = "The node, without a drain order", body = Node),
        (status = 400, description = "`invalid_request`: an id over 128 bytes", body = ErrorBody),
        (status = 404, description = "`not_found`: no such node", body = ErrorBody),
    ))]
pub(crate) async fn undrain(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    let node = app.engine.drain_node(&id, None).await?;
    Ok(json(StatusCode::OK, &view(node, app.engine.config().lease)))
}
