//! The schema and its migrations.
//!
//! `PRAGMA user_version` holds the schema version. [`MIGRATIONS`]`[i]` takes a database from
//! version `i` to `i + 1`; a released migration is never edited, only followed by a new one
//! (with a fixture `tests/data/v{N}.db`, see `tests/compat.rs`).

use rusqlite::{Connection, TransactionBehavior};

use super::engine;
use crate::StoreError;

/// The schema version this binary writes.
pub(crate) const VERSION: u32 = 1;

/// Every migration, oldest first. `MIGRATIONS.len() == VERSION`.
const MIGRATIONS: [&str; VERSION as usize] = [V1];

/// Version 1.
///
/// - `jobs`: one row per job. `state` holds [`crate::JobState::as_str`]; JSON columns (`params`,
///   `progress`, `result`, `error`) hold serialized text. `id` is the UUIDv7 in its hyphenated
///   lowercase form, so text order is creation order.
/// - `jobs_claim` is partial: only `queued` jobs are in it, in claim order.
/// - `jobs_due` is partial: only jobs waiting for their `run_at` (`scheduled`, `failed`).
/// - `jobs_cron_tick`: a cron tick creates one job.
/// - `attempts`: one row per attempt; `seq` orders them (a `retry` starts numbering again at 1).
/// - `idempotency`: the latest job per idempotency key.
/// - `cron_ticks`: the last tick per schedule, kept when its jobs are purged.
/// - `job_counts`: jobs per (pool, state), kept by the writer (see `counts.rs`), so `counts`
///   does not scan.
const V1: &str = "
CREATE TABLE jobs (
    id               TEXT    NOT NULL PRIMARY KEY,
    job              TEXT    NOT NULL,
    pool             TEXT    NOT NULL,
    params           TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    timeout_ms       INTEGER,
    backoff_ms       INTEGER NOT NULL,
    idempotency_key  TEXT,
    cron_schedule    TEXT,
    cron_tick        INTEGER,
    progress         TEXT,
    result           TEXT,
    error            TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    node             TEXT,
    lease_until      INTEGER
);
CREATE INDEX jobs_claim ON jobs (pool, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_due ON jobs (state, run_at) WHERE state IN ('scheduled', 'failed');
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_job ON jobs (job, id);
CREATE UNIQUE INDEX jobs_cron_tick ON jobs (cron_schedule, cron_tick)
    WHERE cron_schedule IS NOT NULL;

CREATE TABLE attempts (
    seq        INTEGER PRIMARY KEY,
    job_id     TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    node       TEXT,
    pid        INTEGER,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    outcome    TEXT,
    error      TEXT
);
CREATE INDEX attempts_job ON attempts (job_id, attempt);

CREATE TABLE idempotency (
    key        TEXT    NOT NULL PRIMARY KEY,
    job_id     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE schedules (
    name       TEXT    NOT NULL PRIMARY KEY,
    cron       TEXT    NOT NULL,
    job        TEXT    NOT NULL,
    params     TEXT    NOT NULL,
    missed     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE cron_ticks (
    schedule  TEXT    NOT NULL PRIMARY KEY,
    last_tick INTEGER NOT NULL,
    job_id    TEXT    NOT NULL
) WITHOUT ROWID;

CREATE TABLE job_counts (
    pool  TEXT    NOT NULL,
    state TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (pool, state)
) WITHOUT ROWID;
";

/// Brings the database to [`VERSION`] in one transaction.
///
/// # Errors
///
/// [`StoreError::SchemaTooNew`] when the file was written by a newer offload; an engine error
/// when a migration fails (the database is left as it was).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(engine)?;
    let found: u32 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(engine)?;
    if found > VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: VERSION,
        });
    }
    if found == VERSION {
        return Ok(());
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql).map_err(|e| {
            StoreError::Engine(format!(
                "schema migration from version {from} to {} failed: {e}",
                from + 1
            ))
        })?;
    }
    tx.pragma_update(None, "user_version", VERSION)
        .map_err(engine)?;
    tx.commit().map_err(engine)?;
    tracing::info!(from = found, to = VERSION, "store schema migrated");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::ops;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut s = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; s.parameter_count()];
        let rows = s
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows.join(" | ")
    }

    /// The hot queries use their index, without a scan or a sort (a regression here is a
    /// throughput cliff at a million jobs, not a failing test elsewhere).
    #[test]
    fn hot_queries_use_their_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let p = plan(&conn, ops::CLAIM);
        assert!(
            p.contains("jobs_claim") && !p.contains("TEMP B-TREE"),
            "{p}"
        );
        let p = plan(&conn, ops::PROMOTE_DUE);
        assert!(p.contains("jobs_due"), "{p}");
        let p = plan(&conn, ops::COUNT_DUE);
        assert!(p.contains("jobs_due"), "{p}");
        let p = plan(&conn, ops::PICK_LOST);
        assert!(p.contains("jobs_state"), "{p}");
    }

    /// With STAT4 compiled in (as libsqlite3-sys does), SQLite re-prepares a statement when a
    /// rebound parameter might change its plan: the claim did on every call, and parsing cost
    /// a third of the claim path. The query planner stability guarantee turns that off.
    #[test]
    fn hot_statements_are_not_reprepared_when_rebound() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::sqlite::configure(&conn).unwrap();
        migrate(&mut conn).unwrap();
        for (sql, n) in [
            (ops::CLAIM, 5),
            (ops::COUNT_DUE, 1),
            (ops::PROMOTE_DUE, 1),
            (ops::PICK_LOST, 2),
        ] {
            let mut s = conn.prepare(sql).unwrap();
            for v in 1..4i64 {
                let args: Vec<i64> = (0..n).map(|k| v * 10 + k).collect();
                let mut rows = s.query(rusqlite::params_from_iter(args)).unwrap();
                while rows.next().unwrap().is_some() {}
            }
            let reprepared = s.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(reprepared, 0, "{sql}");
        }
    }

    #[test]
    fn migrating_twice_is_a_no_op_and_newer_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { found, supported })
                if found == VERSION + 1 && supported == VERSION
        ));
    }
}
