//! The node registry: `GET /v1/nodes`, `POST /v1/nodes/{id}/drain`, `POST /v1/nodes/{id}/undrain`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Millis;

/// A node's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Claims jobs.
    Active,
    /// Asked to drain: claims nothing, lets its running jobs finish (past the deadline, hands
    /// them back to the queue).
    Draining,
    /// Drained: claims nothing, runs nothing (until `undrain`).
    Drained,
    /// Exited cleanly.
    Stopped,
    /// Its heartbeat is older than the lease: it died or lost the database (its running jobs
    /// are re-queued when their leases end).
    Lost,
}

impl NodeState {
    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Drained => "drained",
            Self::Stopped => "stopped",
            Self::Lost => "lost",
        }
    }
}

/// What a drained node does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AfterDrain {
    /// Exits once drained.
    Exit,
    /// Stays up, idle, until `undrain` (the default).
    #[default]
    Idle,
}

/// A node's drain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeDrain {
    /// When it was given.
    pub requested_at: Millis,
    /// How long running jobs may go on, from `requested_at`, before they are handed back.
    pub deadline_ms: u64,
    /// What happens once drained.
    pub then: AfterDrain,
    /// What is left of the deadline (0: past).
    pub remaining_ms: u64,
}

/// A node of the store (one on SQLite; every node of a PostgreSQL cluster).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Node {
    /// Its id (`--node-id`).
    pub id: String,
    /// Its host name.
    pub host: String,
    /// Its offload version.
    pub version: String,
    /// Its state.
    pub state: NodeState,
    /// The pools it runs.
    pub pools: Vec<String>,
    /// When it started (ms since the epoch, the store's clock).
    pub started_at: Millis,
    /// Its last heartbeat (the store's clock).
    pub heartbeat_at: Millis,
    /// How long ago that was.
    pub heartbeat_age_ms: u64,
    /// Jobs running on it at its last heartbeat.
    pub running: u32,
    /// Jobs it can run at once (its pools' slots).
    pub capacity: u32,
    /// `running / capacity` (absent while it has no slots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<f64>,
    /// Its machine's 1-minute load average (absent where the system does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load1: Option<f64>,
    /// Its drain order, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<NodeDrain>,
}

/// `GET /v1/nodes`: every node, by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    /// The id of the node that answered.
    pub this: String,
    /// A node whose heartbeat is older than this (the lease) is `lost`.
    pub lost_after_ms: u64,
    /// The nodes.
    pub nodes: Vec<Node>,
}

/// The body of `POST /v1/nodes/{id}/drain` (every field optional: `{}` drains for 30 s, then
/// idles).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    /// How long running jobs may go on before they are handed back to the queue (default
    /// 30,000; at most a day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 86_400_000)]
    pub deadline_ms: Option<u64>,
    /// Exit or stay idle once drained (default `idle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<AfterDrain>,
}

/// The default drain deadline (30 s).
pub const DEFAULT_DRAIN_DEADLINE_MS: u64 = 30_000;
/// The longest drain deadline (a day).
pub const MAX_DRAIN_DEADLINE_MS: u64 = 86_400_000;
