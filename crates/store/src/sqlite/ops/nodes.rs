//! The node registry: `register_node`, `heartbeat`, `nodes`, `drain_node`, `stop_node`,
//! `purge_nodes` (the rules in [`crate::nodes`]). SQLite holds one node, with the same API.

use std::time::Duration;

use rusqlite::{params, Connection};

use super::super::engine;
use super::{all, first};
use crate::nodes::{
    check_node_id, check_register, drain_order, load_centi, node_record, pools_value, NodeState,
};
use crate::rules::rows::Row;
use crate::rules::values::ms;
use crate::{Beat, DrainOrder, DrainRequest, Millis, NodeRecord, NodeStart, StoreError};

const FIND: &str = include_str!("../sql/nodes/find.sql");
const REGISTER: &str = include_str!("../sql/nodes/register.sql");
const HEARTBEAT: &str = include_str!("../sql/nodes/heartbeat.sql");
const LIST: &str = include_str!("../sql/nodes/list.sql");
const DRAIN: &str = include_str!("../sql/nodes/drain.sql");
const STOP: &str = include_str!("../sql/nodes/stop.sql");
const PURGE: &str = include_str!("../sql/nodes/purge.sql");

pub(in crate::sqlite) fn register(
    c: &Connection,
    node: &NodeStart,
    live: Duration,
    take_over: Option<Millis>,
    now: Millis,
) -> Result<(), StoreError> {
    check_node_id(&node.id)?;
    let mut s = c.prepare_cached(FIND).map_err(engine)?;
    let existing = first(&mut s, params![node.id], |r| {
        let state = r.text("state")?;
        let state = NodeState::parse(&state)
            .ok_or_else(|| StoreError::Engine(format!("unknown node state {state:?}")))?;
        Ok((state, r.int("heartbeat_at")?))
    })?;
    check_register(&node.id, existing, now, live, take_over)?;
    c.prepare_cached(REGISTER)
        .and_then(|mut s| {
            s.execute(params![
                node.id,
                node.host,
                node.version,
                pools_value(&node.pools).to_string(),
                node.capacity,
                now
            ])
        })
        .map_err(engine)?;
    Ok(())
}

pub(in crate::sqlite) fn heartbeat(
    c: &Connection,
    id: &str,
    beat: &Beat,
    now: Millis,
) -> Result<Option<DrainOrder>, StoreError> {
    let mut s = c.prepare_cached(HEARTBEAT).map_err(engine)?;
    let row = first(
        &mut s,
        params![
            id,
            beat.running,
            beat.capacity,
            load_centi(beat.load1),
            pools_value(&beat.pools).to_string(),
            now
        ],
        |r| drain_order(r, r.int("now")?),
    )?;
    row.ok_or(StoreError::NotFound)
}

pub(in crate::sqlite) fn list(c: &Connection, now: Millis) -> Result<Vec<NodeRecord>, StoreError> {
    let mut s = c.prepare_cached(LIST).map_err(engine)?;
    all(&mut s, params![now], |r| node_record(r))
}

pub(in crate::sqlite) fn drain(
    c: &Connection,
    id: &str,
    order: Option<DrainRequest>,
    now: Millis,
) -> Result<NodeRecord, StoreError> {
    if let Some(o) = &order {
        o.check()?;
    }
    let (at, deadline, then) = match order {
        Some(o) => (
            Some(now),
            Some(i64::try_from(o.deadline_ms).unwrap_or(i64::MAX)),
            Some(o.then.as_str()),
        ),
        None => (None, None, None),
    };
    let mut s = c.prepare_cached(DRAIN).map_err(engine)?;
    first(&mut s, params![id, at, deadline, then, now], |r| {
        node_record(r)
    })?
    .ok_or(StoreError::NotFound)
}

pub(in crate::sqlite) fn stop(c: &Connection, id: &str, now: Millis) -> Result<(), StoreError> {
    c.prepare_cached(STOP)
        .and_then(|mut s| s.execute(params![id, now]))
        .map_err(engine)?;
    Ok(())
}

pub(in crate::sqlite) fn purge(
    c: &Connection,
    older_than: Duration,
    now: Millis,
) -> Result<u64, StoreError> {
    let n = c
        .prepare_cached(PURGE)
        .and_then(|mut s| s.execute(params![now.saturating_sub(ms(older_than))]))
        .map_err(engine)?;
    Ok(n as u64)
}
