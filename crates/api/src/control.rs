//! Control of a pool's workers: `POST /v1/pools/{name}/workers/{pid}/kill` (soft or hard) and
//! `POST /v1/pools/{name}/broadcast` (an event to every ready worker, with their acks).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The default grace of a kill (5 s).
pub const DEFAULT_KILL_GRACE_MS: u64 = 5_000;
/// The longest grace of a kill (10 minutes).
pub const MAX_KILL_GRACE_MS: u64 = 600_000;
/// The default time a broadcast waits for acks (5 s).
pub const DEFAULT_BROADCAST_TIMEOUT_MS: u64 = 5_000;
/// The longest time a broadcast waits for acks (a minute).
pub const MAX_BROADCAST_TIMEOUT_MS: u64 = 60_000;
/// The longest broadcast name, in bytes.
pub const MAX_BROADCAST_NAME: usize = 128;
/// The largest broadcast `data`, in bytes of compact JSON (64 KiB).
pub const MAX_BROADCAST_DATA: usize = 65_536;

/// How a worker is killed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KillMode {
    /// The worker gets `shutdown`: it takes no new job, its running jobs and its shutdown hook
    /// may finish within the grace; then it is killed if still there.
    #[default]
    Soft,
    /// The worker gets the `kill` notice (its hard-kill hook runs), then SIGKILL after the
    /// grace; its running jobs end with it (and are retried while attempts remain).
    Hard,
}

/// The body of `POST /v1/pools/{name}/workers/{pid}/kill` (every field optional: `{}` is a
/// soft kill with 5 s of grace).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillRequest {
    /// `soft` (the default) or `hard`.
    #[serde(default)]
    pub mode: KillMode,
    /// The grace before SIGKILL (default 5,000; at most 600,000).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 0, maximum = 600_000)]
    pub grace_ms: Option<u64>,
}

/// The answer to a kill: the worker is being killed; the pool starts its replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkerKilled {
    /// The pool.
    pub pool: String,
    /// The worker.
    pub pid: u32,
    /// How.
    pub mode: KillMode,
    /// The grace it got.
    pub grace_ms: u64,
}

/// The body of `POST /v1/pools/{name}/broadcast`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    /// The event's name (1 to 128 bytes): workers' listeners of that name run.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// Its data (any JSON, at most 64 KiB as compact JSON; default null).
    #[serde(default)]
    pub data: Value,
    /// How long to wait for the workers' acks (default 5,000; at most 60,000).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 0, maximum = 60_000)]
    pub timeout_ms: Option<u64>,
}

/// One worker's answer to a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BroadcastAck {
    /// The worker.
    pub pid: u32,
    /// Whether it acknowledged the event (its listeners ran) within the timeout.
    pub acked: bool,
}

/// The answer to a broadcast: every ready worker it was sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Broadcasted {
    /// The pool.
    pub pool: String,
    /// The event's name.
    pub name: String,
    /// One entry per worker, by pid.
    pub acks: Vec<BroadcastAck>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_kill_is_soft_and_unknown_fields_are_refused() {
        let k: KillRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(k.mode, KillMode::Soft);
        assert_eq!(k.grace_ms, None);
        let k: KillRequest = serde_json::from_str(r#"{"mode":"hard","grace_ms":250.0}"#).unwrap();
        assert_eq!((k.mode, k.grace_ms), (KillMode::Hard, Some(250)));
        assert!(serde_json::from_str::<KillRequest>(r#"{"mode":"gentle"}"#).is_err());
        assert!(serde_json::from_str::<KillRequest>(r#"{"signal":9}"#).is_err());
        let b: BroadcastRequest = serde_json::from_str(r#"{"name":"reload"}"#).unwrap();
        assert_eq!(b.data, Value::Null);
    }
}
