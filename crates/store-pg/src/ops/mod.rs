//! The operations of the PostgreSQL engine, one file per group of [`Store`](offload_store::Store)
//! methods (the same groups as the SQLite engine and the conformance suite):
//!
//! | file | methods |
//! |---|---|
//! | `submit.rs` | `submit` |
//! | `claim.rs` | `claim`, `renew`, `recover` (the leases) |
//! | `complete.rs` | `complete`, `progress` |
//! | `admin.rs` | `cancel`, `retry`, `purge` |
//! | `bulk.rs` | `delete`, `bulk` |
//! | `read.rs` | `get`, `list`, `counts` |
//! | `cron.rs` | `put_schedule`, `schedules`, `delete_schedule`, `last_tick` |
//! | `queues.rs` | `pause_queue`, `resume_queue`, `paused_queues` |
//! | `nodes.rs` | `register_node`, `heartbeat`, `nodes`, `drain_node`, `stop_node`, `purge_nodes` |
//! | `throttle.rs` | `set_limits`, `limits` (and the buckets of the limited claim) |
//! | `logs.rs` | `append_logs`, `logs` |
//! | `stats.rs` | `add_stats`, `stats`, `purge_stats` (history) |
//!
//! Their SQL is in `../sql/<group>/*.sql`. Most are one statement (one round trip, its own
//! transaction); those that must read before they write run in a transaction. `now` is always
//! the database's (`offload_now_ms()`). Rows are decoded by column name ([`Cols`], through
//! [`offload_store::rules::rows`]).

pub(crate) mod admin;
pub(crate) mod after;
pub(crate) mod bulk;
pub(crate) mod claim;
pub(crate) mod complete;
pub(crate) mod cron;
pub(crate) mod logs;
pub(crate) mod nodes;
pub(crate) mod queues;
pub(crate) mod read;
pub(crate) mod stats;
pub(crate) mod submit;
pub(crate) mod throttle;

use offload_store::rules::rows::Row;
use offload_store::{JobId, StoreError};
use serde_json::Value;
use tokio_postgres::types::FromSql;

use crate::engine;
use offload_store::JobNotice;

/// A row read by column name (PostgreSQL types: `uuid`, `json`, `boolean`, `integer`, `bigint`).
pub(crate) struct Cols<'a>(pub(crate) &'a tokio_postgres::Row);

impl<'a> Cols<'a> {
    fn get<T: FromSql<'a>>(&self, col: &str) -> Result<T, StoreError> {
        self.0.try_get(col).map_err(engine)
    }
}

impl Row for Cols<'_> {
    fn id(&self, col: &str) -> Result<JobId, StoreError> {
        self.get(col)
    }

    fn text(&self, col: &str) -> Result<String, StoreError> {
        self.get(col)
    }

    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        self.get(col)
    }

    fn int(&self, col: &str) -> Result<i64, StoreError> {
        self.get(col)
    }

    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        self.get(col)
    }

    fn int32(&self, col: &str) -> Result<i32, StoreError> {
        self.get(col)
    }

    fn flag(&self, col: &str) -> Result<bool, StoreError> {
        self.get(col)
    }

    fn json(&self, col: &str) -> Result<Value, StoreError> {
        self.get(col)
    }

    fn opt_json(&self, col: &str) -> Result<Option<Value>, StoreError> {
        self.get(col)
    }
}

/// Decodes every row with `decode`.
pub(crate) fn all<T>(
    rows: &[tokio_postgres::Row],
    mut decode: impl FnMut(&Cols<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(|r| decode(&Cols(r))).collect()
}

/// A job's change, from the columns `id, job, pool, state, attempt`.
pub(crate) fn job_notice(r: &Cols<'_>) -> Result<JobNotice, StoreError> {
    Ok(JobNotice {
        id: r.id("id")?,
        job: r.text("job")?,
        pool: r.text("pool")?,
        state: r.state("state")?,
        attempt: offload_store::rules::values::to_u32(r.int("attempt")?, "attempt")?,
    })
}

/// Whether an error is worth one more try of the whole transaction (a deadlock between two
/// batches that lock the same keys in different orders, a serialization failure).
pub(crate) fn retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Engine(m) if m.contains("(40P01)") || m.contains("(40001)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_deadlocks_and_serialization_failures_are_retried() {
        assert!(retryable(&StoreError::Engine(
            "deadlock detected (40P01)".into()
        )));
        assert!(!retryable(&StoreError::Engine(
            "duplicate key (23505)".into()
        )));
        assert!(!retryable(&StoreError::NotFound));
    }
}
