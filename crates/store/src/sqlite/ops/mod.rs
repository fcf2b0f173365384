//! The operations of the SQLite engine, one file per group of [`Store`](crate::Store) methods
//! (the same groups as `offload-store-pg` and the conformance suite):
//!
//! | file | methods |
//! |---|---|
//! | `submit.rs` | `submit` |
//! | `after.rs` | `submit`'s dependencies (`after`; their release is the schema's triggers) |
//! | `claim.rs` | `claim`, `renew`, `recover` (the leases) |
//! | `complete.rs` | `complete`, `progress` |
//! | `admin.rs` | `cancel`, `retry`, `purge` |
//! | `bulk.rs` | `delete`, `bulk` |
//! | `read.rs` | `get`, `list`, `counts` |
//! | `cron.rs` | `put_schedule`, `schedules`, `delete_schedule`, `last_tick` |
//! | `queues.rs` | `pause_queue`, `resume_queue`, `paused_queues` |
//! | `nodes.rs` | `register_node`, `heartbeat`, `nodes`, `drain_node`, `stop_node`, `purge_nodes` |
//! | `throttle.rs` | `set_limits`, `limits` (and the buckets `claim` reads and writes) |
//! | `logs.rs` | `append_logs`, `logs` |
//! | `stats.rs` | `add_stats`, `stats`, `purge_stats` (history) |
//!
//! Their SQL is in `../sql/<group>/*.sql`. Each function runs inside a transaction the caller
//! opened (the writer's group commit, or a reader's snapshot); writes take `now` from the
//! writer, note their state changes in [`Deltas`](super::counts::Deltas), and may run twice
//! (see the writer): they compute from their arguments and consume nothing. Rows are decoded
//! by column name ([`Cols`], through [`crate::rules::rows`]).

pub(super) mod admin;
pub(in crate::sqlite) mod after;
pub(super) mod bulk;
pub(super) mod claim;
pub(super) mod complete;
pub(super) mod cron;
pub(super) mod logs;
pub(super) mod nodes;
pub(super) mod queues;
pub(super) mod read;
pub(super) mod stats;
pub(super) mod submit;
pub(super) mod throttle;

use rusqlite::types::FromSql;
use rusqlite::{Params, Statement};
use serde_json::Value;

use super::engine;
use crate::rules::rows::Row;
use crate::rules::values::{corrupt, parse_json};
use crate::{JobId, StoreError};

/// A job id as stored: hyphenated lowercase text, so text order is creation order.
pub(super) fn id_text(id: JobId) -> String {
    id.hyphenated().to_string()
}

/// The column names of a statement, looked up once per call rather than once per value
/// (rusqlite's lookup by name asks SQLite for every column's name at each read).
pub(super) struct Columns(Vec<String>);

impl Columns {
    pub(super) fn of(s: &Statement<'_>) -> Self {
        Self(s.column_names().map(str::to_owned).collect())
    }

    fn index(&self, col: &str) -> Result<usize, StoreError> {
        self.0
            .iter()
            .position(|c| c == col)
            .ok_or_else(|| StoreError::Engine(format!("no column {col:?} in the statement")))
    }
}

/// A row read by column name: ids and JSON are stored as text, flags as integers.
pub(super) struct Cols<'a, 'r> {
    row: &'a rusqlite::Row<'r>,
    names: &'a Columns,
}

impl Cols<'_, '_> {
    fn get<T: FromSql>(&self, col: &str) -> Result<T, StoreError> {
        self.row.get(self.names.index(col)?).map_err(engine)
    }
}

impl Row for Cols<'_, '_> {
    fn id(&self, col: &str) -> Result<JobId, StoreError> {
        let text: String = self.get(col)?;
        JobId::parse_str(&text).map_err(|e| corrupt("job id", e))
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
        parse_json(&self.text(col)?, col)
    }

    fn opt_json(&self, col: &str) -> Result<Option<Value>, StoreError> {
        self.opt_text(col)?
            .map(|text| parse_json(&text, col))
            .transpose()
    }
}

/// Runs `s` and decodes every row with `decode`.
pub(super) fn all<T>(
    s: &mut Statement<'_>,
    params: impl Params,
    mut decode: impl FnMut(&Cols<'_, '_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let names = Columns::of(s);
    let mut rows = s.query(params).map_err(engine)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(engine)? {
        out.push(decode(&Cols { row, names: &names })?);
    }
    Ok(out)
}

/// Runs `s` and decodes its first row, if any.
pub(super) fn first<T>(
    s: &mut Statement<'_>,
    params: impl Params,
    decode: impl FnOnce(&Cols<'_, '_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let names = Columns::of(s);
    let mut rows = s.query(params).map_err(engine)?;
    match rows.next().map_err(engine)? {
        Some(row) => decode(&Cols { row, names: &names }).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// Columns are found by name whatever their position, and a missing one is named.
    #[test]
    fn rows_are_read_by_column_name() {
        let c = Connection::open_in_memory().unwrap();
        let mut s = c
            .prepare("SELECT '{\"a\":1}' AS params, 7 AS attempt, NULL AS node, 1 AS flag")
            .unwrap();
        let got = first(&mut s, [], |r| {
            Ok((
                r.int("attempt")?,
                r.json("params")?,
                r.opt_text("node")?,
                r.flag("flag")?,
            ))
        })
        .unwrap();
        assert_eq!(got, Some((7, serde_json::json!({ "a": 1 }), None, true)));
        let err = first(&mut s, [], |r| r.int("pool")).unwrap_err();
        assert!(err.to_string().contains("\"pool\""), "{err}");
    }
}
