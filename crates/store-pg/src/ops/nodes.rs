//! The node registry: `register_node`, `heartbeat`, `nodes`, `drain_node`, `stop_node`,
//! `purge_nodes` (the rules in [`offload_store::nodes`]), on the database's clock.

use std::time::Duration;

use deadpool_postgres::Object;
use offload_store::nodes::{
    check_node_id, check_register, drain_order, load_centi, node_record, pools_value, NodeState,
};
use offload_store::rules::rows::Row;
use offload_store::rules::values::ms;
use offload_store::{Beat, DrainOrder, DrainRequest, Millis, NodeRecord, NodeStart, StoreError};

use super::{all, Cols};
use crate::engine;

const INSERT: &str = include_str!("../sql/nodes/insert.sql");
const FIND: &str = include_str!("../sql/nodes/find.sql");
const REGISTER: &str = include_str!("../sql/nodes/register.sql");
const HEARTBEAT: &str = include_str!("../sql/nodes/heartbeat.sql");
const LIST: &str = include_str!("../sql/nodes/list.sql");
const DRAIN: &str = include_str!("../sql/nodes/drain.sql");
const STOP: &str = include_str!("../sql/nodes/stop.sql");
const PURGE: &str = include_str!("../sql/nodes/purge.sql");

pub(crate) async fn register(
    c: &mut Object,
    node: &NodeStart,
    live: Duration,
    take_over: Option<Millis>,
) -> Result<(), StoreError> {
    check_node_id(&node.id)?;
    let pools = pools_value(&node.pools);
    let capacity = i64::from(node.capacity);
    let tx = c.transaction().await.map_err(engine)?;
    let st = tx.prepare_cached(INSERT).await.map_err(engine)?;
    let inserted = tx
        .query_opt(
            &st,
            &[&node.id, &node.host, &node.version, &pools, &capacity],
        )
        .await
        .map_err(engine)?;
    if inserted.is_none() {
        let st = tx.prepare_cached(FIND).await.map_err(engine)?;
        let existing = match tx.query_opt(&st, &[&node.id]).await.map_err(engine)? {
            Some(row) => {
                let r = Cols(&row);
                let state = r.text("state")?;
                let state = NodeState::parse(&state)
                    .ok_or_else(|| StoreError::Engine(format!("unknown node state {state:?}")))?;
                Some((state, r.int("heartbeat_at")?, r.int("now")?))
            }
            None => None,
        };
        let now = existing.map_or(0, |e| e.2);
        check_register(
            &node.id,
            existing.map(|(s, b, _)| (s, b)),
            now,
            live,
            take_over,
        )?;
        let st = tx.prepare_cached(REGISTER).await.map_err(engine)?;
        tx.execute(
            &st,
            &[&node.id, &node.host, &node.version, &pools, &capacity],
        )
        .await
        .map_err(engine)?;
    }
    tx.commit().await.map_err(engine)
}

pub(crate) async fn heartbeat(
    c: &Object,
    id: &str,
    beat: &Beat,
) -> Result<Option<DrainOrder>, StoreError> {
    let st = c.prepare_cached(HEARTBEAT).await.map_err(engine)?;
    let row = c
        .query_opt(
            &st,
            &[
                &id,
                &i64::from(beat.running),
                &i64::from(beat.capacity),
                &load_centi(beat.load1),
                &pools_value(&beat.pools),
            ],
        )
        .await
        .map_err(engine)?
        .ok_or(StoreError::NotFound)?;
    let r = Cols(&row);
    drain_order(&r, r.int("now")?)
}

pub(crate) async fn list(c: &Object) -> Result<Vec<NodeRecord>, StoreError> {
    let st = c.prepare_cached(LIST).await.map_err(engine)?;
    let rows = c.query(&st, &[]).await.map_err(engine)?;
    all(&rows, |r| node_record(r))
}

pub(crate) async fn drain(
    c: &Object,
    id: &str,
    order: Option<DrainRequest>,
) -> Result<NodeRecord, StoreError> {
    if let Some(o) = &order {
        o.check()?;
    }
    let deadline: Option<i64> = order.map(|o| i64::try_from(o.deadline_ms).unwrap_or(i64::MAX));
    let then: Option<&str> = order.map(|o| o.then.as_str());
    let st = c.prepare_cached(DRAIN).await.map_err(engine)?;
    let row = c
        .query_opt(&st, &[&id, &order.is_some(), &deadline, &then])
        .await
        .map_err(engine)?
        .ok_or(StoreError::NotFound)?;
    node_record(&Cols(&row))
}

pub(crate) async fn stop(c: &Object, id: &str) -> Result<(), StoreError> {
    let st = c.prepare_cached(STOP).await.map_err(engine)?;
    c.execute(&st, &[&id]).await.map_err(engine)?;
    Ok(())
}

pub(crate) async fn purge(c: &Object, older_than: Duration) -> Result<u64, StoreError> {
    let st = c.prepare_cached(PURGE).await.map_err(engine)?;
    c.execute(&st, &[&ms(older_than)]).await.map_err(engine)
}
