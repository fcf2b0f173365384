//! The node registry (schema v5): every `offload serve` registers itself in the store it runs
//! on, heartbeats, and reads there whether it is asked to drain.
//!
//! A row per node id (`nodes` / `offload_nodes`): host, version, pools, start, last heartbeat
//! (on the store's clock), running jobs, capacity, 1-minute load average, its state and the
//! drain order an operator gave (through any node). The SQLite engine holds one node; the
//! PostgreSQL engine every node of the cluster.
//!
//! - **Register** ([`Store::register_node`](crate::Store::register_node)): a row that is not
//!   `stopped` and whose heartbeat is younger than the caller's `live` window belongs to a live
//!   node: the start is refused ([`StoreError::NodeInUse`]), unless the caller saw that
//!   heartbeat unchanged for a while (`take_over`: the node that wrote it is gone). A start
//!   clears any drain order.
//! - **Heartbeat**: records the load; the state follows the drain order (none: `active`; one,
//!   with jobs running: `draining`; with none: `drained`); answers the order.
//! - **Drain / undrain**: sets or clears the order ([`DrainRequest`]), on any node's behalf.
//! - **Stop**: a clean exit marks the row `stopped`. `lost` is not stored: a reader calls a node
//!   lost when its heartbeat is older than the lease ([`NodeRecord::is_lost`]).
//! - **Purge**: rows whose heartbeat is older than a bound (stopped or lost nodes) are deleted.
//!
//! Bounds: a node id is 1..=[`MAX_NODE_ID`] bytes of letters, digits, `.`, `_`, `-`, `:`; a
//! drain deadline at most [`MAX_DRAIN_DEADLINE_MS`]; at most [`MAX_POOLS`] pool names are kept.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::limits::LimitError;
use crate::rules::rows::Row;
use crate::rules::values::{to_u32, to_u64};
use crate::{Millis, StoreError};

/// The longest node id, in bytes.
pub const MAX_NODE_ID: usize = 128;
/// The longest drain deadline: 1 day.
pub const MAX_DRAIN_DEADLINE_MS: u64 = 24 * 3600 * 1000;
/// The most pool names a node's row keeps (the rest are cut).
pub const MAX_POOLS: usize = 256;
/// How long the row of a stopped or lost node stays: 24 hours after its last heartbeat.
pub const NODE_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// A node's state, as stored (`lost` is read from the heartbeat's age instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Claims jobs.
    Active,
    /// Asked to drain: claims nothing, lets its running jobs finish (or hands them back past
    /// the deadline).
    Draining,
    /// Drained: claims nothing and runs nothing.
    Drained,
    /// Exited cleanly.
    Stopped,
}

impl NodeState {
    /// Its stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Drained => "drained",
            Self::Stopped => "stopped",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Draining, Self::Drained, Self::Stopped]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// What a drained node does once its running jobs are over (or handed back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterDrain {
    /// Exits (as after SIGTERM).
    Exit,
    /// Stays up, idle, until `undrain`.
    Idle,
}

impl AfterDrain {
    /// Its stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exit => "exit",
            Self::Idle => "idle",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exit" => Some(Self::Exit),
            "idle" => Some(Self::Idle),
            _ => None,
        }
    }
}

/// What a node says of itself when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStart {
    /// Its id (see [`check_node_id`]).
    pub id: String,
    /// Its host name.
    pub host: String,
    /// Its offload version.
    pub version: String,
    /// The pools it runs now.
    pub pools: Vec<String>,
    /// Jobs it can run at once now.
    pub capacity: u32,
}

/// What a node reports at each heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Beat {
    /// Jobs running on it.
    pub running: u32,
    /// Jobs it can run at once.
    pub capacity: u32,
    /// Its 1-minute load average (`None` where the system does not say).
    pub load1: Option<f64>,
    /// The pools it runs.
    pub pools: Vec<String>,
}

/// An operator's drain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainRequest {
    /// How long running jobs may go on before they are handed back (ms, at most
    /// [`MAX_DRAIN_DEADLINE_MS`]).
    pub deadline_ms: u64,
    /// Exit or stay idle once drained.
    pub then: AfterDrain,
}

impl DrainRequest {
    /// Checks the deadline's bound.
    ///
    /// # Errors
    ///
    /// [`LimitError`] naming `deadline_ms`.
    pub fn check(&self) -> Result<(), LimitError> {
        if self.deadline_ms > MAX_DRAIN_DEADLINE_MS {
            return Err(LimitError::new(
                "deadline_ms",
                self.deadline_ms,
                format!("at most {MAX_DRAIN_DEADLINE_MS} (1 day)"),
            ));
        }
        Ok(())
    }
}

/// A drain order as stored, with what is left of its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainOrder {
    /// When it was given (the store's clock).
    pub requested_at: Millis,
    /// Its deadline, from `requested_at`.
    pub deadline_ms: u64,
    /// Exit or stay idle once drained.
    pub then: AfterDrain,
    /// What is left of the deadline at the read (0: past).
    pub remaining_ms: u64,
}

/// A node's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Its id.
    pub id: String,
    /// Its host name.
    pub host: String,
    /// Its offload version.
    pub version: String,
    /// The pools it runs.
    pub pools: Vec<String>,
    /// When it started (the store's clock).
    pub started_at: Millis,
    /// Its last heartbeat (the store's clock).
    pub heartbeat_at: Millis,
    /// How long ago that was, at the read.
    pub heartbeat_age_ms: u64,
    /// Jobs running on it at its last heartbeat.
    pub running: u32,
    /// Jobs it can run at once.
    pub capacity: u32,
    /// Its 1-minute load average.
    pub load1: Option<f64>,
    /// Its state as stored.
    pub state: NodeState,
    /// Its drain order, if any.
    pub drain: Option<DrainOrder>,
}

impl NodeRecord {
    /// Whether its heartbeat is older than `ttl` (the lease) while it is not stopped.
    pub fn is_lost(&self, ttl: Duration) -> bool {
        self.state != NodeState::Stopped && u128::from(self.heartbeat_age_ms) > ttl.as_millis()
    }
}

/// Checks a node id: 1..=[`MAX_NODE_ID`] bytes of ASCII letters, digits, `.`, `_`, `-`, `:`
/// (it is part of URLs and of every lease).
///
/// # Errors
///
/// [`LimitError`] naming `node id`.
pub fn check_node_id(id: &str) -> Result<(), LimitError> {
    let n = id.len();
    if n == 0 || n > MAX_NODE_ID {
        return Err(LimitError::new(
            "node id",
            format!("of {n} bytes"),
            format!("1..={MAX_NODE_ID} bytes"),
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
    {
        return Err(LimitError::new(
            "node id",
            format!("{id:?} (has {c:?})"),
            "ASCII letters, digits, '.', '_', '-' and ':' only",
        ));
    }
    Ok(())
}

/// `pools` cut to [`MAX_POOLS`], as stored (a JSON array).
pub fn pools_value(pools: &[String]) -> serde_json::Value {
    serde_json::Value::from(pools.iter().take(MAX_POOLS).cloned().collect::<Vec<_>>())
}

/// A load average as stored (hundredths).
pub fn load_centi(load: Option<f64>) -> Option<i64> {
    load.filter(|l| l.is_finite() && *l >= 0.0)
        .map(|l| (l * 100.0).round().min(1e12) as i64)
}

/// Decides a registration over an existing row (`state`, `heartbeat_at`) at `now`: refused when
/// the row belongs to a live node, unless `take_over` names the heartbeat the caller saw stay.
///
/// # Errors
///
/// [`StoreError::NodeInUse`].
pub fn check_register(
    id: &str,
    existing: Option<(NodeState, Millis)>,
    now: Millis,
    live: Duration,
    take_over: Option<Millis>,
) -> Result<(), StoreError> {
    let Some((state, beat)) = existing else {
        return Ok(());
    };
    let age = u64::try_from(now.saturating_sub(beat)).unwrap_or(0);
    if state == NodeState::Stopped || u128::from(age) > live.as_millis() || take_over == Some(beat)
    {
        return Ok(());
    }
    Err(StoreError::NodeInUse {
        id: id.to_owned(),
        heartbeat_at: beat,
        heartbeat_age_ms: age,
    })
}

/// A node's row from columns `id, host, version, pools, started_at, heartbeat_at, running,
/// capacity, load1_centi, state, drain_at, drain_deadline_ms, drain_then, now`.
///
/// # Errors
///
/// An engine error for a missing column or a value that is not as written.
pub fn node_record(r: &impl Row) -> Result<NodeRecord, StoreError> {
    let now = r.int("now")?;
    let heartbeat_at = r.int("heartbeat_at")?;
    let state = r.text("state")?;
    let state = NodeState::parse(&state)
        .ok_or_else(|| StoreError::Engine(format!("unknown node state {state:?}")))?;
    let pools = match r.json("pools")? {
        serde_json::Value::Array(a) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    Ok(NodeRecord {
        id: r.text("id")?,
        host: r.text("host")?,
        version: r.text("version")?,
        pools,
        started_at: r.int("started_at")?,
        heartbeat_at,
        heartbeat_age_ms: u64::try_from(now.saturating_sub(heartbeat_at)).unwrap_or(0),
        running: to_u32(r.int("running")?, "running")?,
        capacity: to_u32(r.int("capacity")?, "capacity")?,
        load1: r.opt_int("load1_centi")?.map(|c| c as f64 / 100.0),
        state,
        drain: drain_order(r, now)?,
    })
}

/// The drain order from columns `drain_at, drain_deadline_ms, drain_then` at `now`.
///
/// # Errors
///
/// An engine error for a value that is not as written.
pub fn drain_order(r: &impl Row, now: Millis) -> Result<Option<DrainOrder>, StoreError> {
    let Some(at) = r.opt_int("drain_at")? else {
        return Ok(None);
    };
    let deadline_ms = to_u64(r.opt_int("drain_deadline_ms")?.unwrap_or(0), "deadline")?;
    let then = r.opt_text("drain_then")?.unwrap_or_default();
    let then = AfterDrain::parse(&then)
        .ok_or_else(|| StoreError::Engine(format!("unknown drain action {then:?}")))?;
    let end = at.saturating_add(i64::try_from(deadline_ms).unwrap_or(i64::MAX));
    Ok(Some(DrainOrder {
        requested_at: at,
        deadline_ms,
        then,
        remaining_ms: u64::try_from(end.saturating_sub(now)).unwrap_or(0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_bounded_and_url_safe() {
        assert!(check_node_id("node-a.example:1_2").is_ok());
        assert!(check_node_id("").is_err());
        assert!(check_node_id(&"a".repeat(MAX_NODE_ID)).is_ok());
        assert!(check_node_id(&"a".repeat(MAX_NODE_ID + 1)).is_err());
        for bad in ["a/b", "a b", "é", "a?b"] {
            let e = check_node_id(bad).unwrap_err().to_string();
            assert!(e.contains("node id"), "{e}");
        }
    }

    #[test]
    fn a_live_row_refuses_unless_stopped_old_or_taken_over() {
        let live = Duration::from_secs(30);
        let now = 100_000;
        assert!(check_register("n", None, now, live, None).is_ok());
        let fresh = Some((NodeState::Active, now - 1_000));
        let e = check_register("n", fresh, now, live, None).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::NodeInUse {
                    heartbeat_age_ms: 1_000,
                    ..
                }
            ),
            "{e}"
        );
        assert!(check_register("n", fresh, now, live, Some(now - 1_000)).is_ok());
        assert!(check_register("n", fresh, now, live, Some(now - 2_000)).is_err());
        let stopped = Some((NodeState::Stopped, now - 1_000));
        assert!(check_register("n", stopped, now, live, None).is_ok());
        let old = Some((NodeState::Draining, now - 31_000));
        assert!(check_register("n", old, now, live, None).is_ok());
    }

    #[test]
    fn drain_deadlines_are_bounded() {
        let ok = DrainRequest {
            deadline_ms: MAX_DRAIN_DEADLINE_MS,
            then: AfterDrain::Idle,
        };
        assert!(ok.check().is_ok());
        let e = DrainRequest {
            deadline_ms: MAX_DRAIN_DEADLINE_MS + 1,
            ..ok
        }
        .check()
        .unwrap_err();
        assert_eq!(e.field, "deadline_ms");
    }
}
