//! The schema and its migrations.
//!
//! `PRAGMA user_version` holds the schema version. [`MIGRATIONS`]`[i]` (`sql/schema/v{i+1}.sql`)
//! takes a database from version `i` to `i + 1`; a released migration is never edited, only
//! followed by a new one (with a fixture `tests/data/v{N}.db`, see `tests/compat.rs`). The loop
//! itself is the engines' shared one ([`crate::rules::migrate`]).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::engine;
use crate::rules::migrate::{Migrator, Step};
use crate::StoreError;

/// The schema version this binary writes.
pub(crate) const VERSION: u32 = MIGRATIONS.len() as u32;

/// Every migration, oldest first.
const MIGRATIONS: [&str; 12] = [
    include_str!("sql/schema/v1.sql"),
    include_str!("sql/schema/v2.sql"),
    include_str!("sql/schema/v3.sql"),
    include_str!("sql/schema/v4.sql"),
    include_str!("sql/schema/v5.sql"),
    include_str!("sql/schema/v6.sql"),
    include_str!("sql/schema/v7.sql"),
    include_str!("sql/schema/v8.sql"),
    include_str!("sql/schema/v9.sql"),
    include_str!("sql/schema/v10.sql"),
    include_str!("sql/schema/v11.sql"),
    include_str!("sql/schema/v12.sql"),
];

/// The migration transaction: `user_version` is the version.
struct Sqlite<'c>(Transaction<'c>);

impl Migrator for Sqlite<'_> {
    async fn version(&mut self) -> Result<u32, StoreError> {
        self.0
            .query_row("PRAGMA user_version", [], |r| r.get("user_version"))
            .map_err(engine)
    }

    async fn apply(&mut self, step: Step) -> Result<(), String> {
        self.0.execute_batch(step.sql).map_err(|e| e.to_string())?;
        self.0
            .pragma_update(None, "user_version", step.to)
            .map_err(|e| e.to_string())
    }
}

/// Runs a future that never waits (SQLite's calls block) to its end, without a runtime: `open`
/// is synchronous and may run inside one or not.
fn finish<T>(f: impl Future<Output = T>) -> T {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("a SQLite migration never waits"),
    }
}

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
    let mut m = Sqlite(tx);
    finish(crate::rules::migrate::migrate(&mut m, &MIGRATIONS))?;
    m.0.commit().map_err(engine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::ops;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut s = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; s.parameter_count()];
        let rows = s
            .query_map(rusqlite::params_from_iter(nulls), |r| {
                r.get::<_, String>("detail")
            })
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
        let p = plan(&conn, ops::claim::CLAIM);
        assert!(
            p.contains("jobs_claim") && !p.contains("TEMP B-TREE"),
            "{p}"
        );
        let p = plan(&conn, ops::claim::PROMOTE_DUE);
        assert!(p.contains("jobs_due"), "{p}");
        let p = plan(&conn, ops::claim::COUNT_DUE);
        assert!(p.contains("jobs_due"), "{p}");
        let p = plan(&conn, ops::claim::PICK_LOST);
        assert!(p.contains("jobs_state"), "{p}");
    }

    /// A job's end finds its dependents by the key of `job_deps` (the statements of the
    /// `job_deps_released` trigger, schema v9): a search, never a scan of `jobs` or the edges.
    #[test]
    fn the_release_of_dependents_searches_by_key() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for sql in [
            "SELECT j.pool FROM job_deps d JOIN jobs j ON j.id = d.job_id \
             WHERE d.dep_id = ?1 AND j.state = 'waiting'",
            "UPDATE jobs SET waiting_on = waiting_on - 1 \
             WHERE state = 'waiting' AND id IN (SELECT job_id FROM job_deps WHERE dep_id = ?1)",
            "DELETE FROM job_deps WHERE dep_id = ?1",
        ] {
            let p = plan(&conn, sql);
            assert!(!p.contains("SCAN"), "{sql}: {p}");
            assert!(p.contains("SEARCH"), "{sql}: {p}");
        }
    }

    /// With STAT4 compiled in (as libsqlite3-sys does), SQLite re-prepares a statement when a
    /// rebound parameter might change its plan: the claim did on every call, and parsing cost
    /// a third of the claim path. The query planner stability guarantee turns that off.
    #[test]
    fn hot_statements_are_not_reprepared_when_rebound() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::sqlite::configure(&conn, crate::sqlite::DEFAULT_CACHE_KIB).unwrap();
        migrate(&mut conn).unwrap();
        for (sql, n) in [
            (ops::claim::CLAIM, 5),
            (ops::claim::COUNT_DUE, 1),
            (ops::claim::PROMOTE_DUE, 1),
            (ops::claim::PICK_LOST, 2),
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
