//! The schema and its migrations.
//!
//! `offload_schema` holds one row per applied version. [`MIGRATIONS`]`[i]`
//! (`sql/schema/v{i+1}.sql`) takes a database from version `i` to `i + 1`; a released migration
//! is never edited, only followed by a new one. Nodes starting together migrate one at a time
//! (a transaction-scoped advisory lock): the first migrates, the others find the version
//! current. The loop itself is the engines' shared one ([`offload_store::rules::migrate`]).

use offload_store::rules::migrate::{Migrator, Step};
use offload_store::rules::rows::Row;
use tokio_postgres::{Client, Transaction};

use crate::ops::Cols;
use crate::{engine, StoreError};

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

/// The advisory lock key that serializes migrations (`offload` in ASCII).
const MIGRATION_LOCK: i64 = 0x006f_6666_6c6f_6164;

const LOCK: &str = include_str!("sql/schema/lock.sql");
const EXISTS: &str = include_str!("sql/schema/exists.sql");
const CURRENT: &str = include_str!("sql/schema/version.sql");
const RECORD: &str = include_str!("sql/schema/record.sql");

/// The migration transaction: the highest row of `offload_schema` is the version.
struct Pg<'c>(Transaction<'c>);

impl Migrator for Pg<'_> {
    async fn version(&mut self) -> Result<u32, StoreError> {
        let row = self.0.query_one(EXISTS, &[]).await.map_err(engine)?;
        if !Cols(&row).flag("present")? {
            return Ok(0);
        }
        let row = self.0.query_one(CURRENT, &[]).await.map_err(engine)?;
        let v: Option<i32> = row.try_get("version").map_err(engine)?;
        Ok(v.map_or(0, |v| u32::try_from(v).unwrap_or(0)))
    }

    async fn apply(&mut self, step: Step) -> Result<(), String> {
        self.0
            .batch_execute(step.sql)
            .await
            .map_err(|e| crate::describe(&e))?;
        let to = i32::try_from(step.to).unwrap_or(i32::MAX);
        self.0
            .execute(RECORD, &[&to])
            .await
            .map_err(|e| crate::describe(&e))?;
        Ok(())
    }
}

/// Brings the database to [`VERSION`] in one transaction.
///
/// # Errors
///
/// [`StoreError::SchemaTooNew`] when the database was written by a newer offload; an engine
/// error when a migration fails (the database is left as it was).
pub(crate) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(engine)?;
    tx.execute(LOCK, &[&MIGRATION_LOCK]).await.map_err(engine)?;
    let mut m = Pg(tx);
    offload_store::rules::migrate::migrate(&mut m, &MIGRATIONS).await?;
    m.0.commit().await.map_err(engine)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use offload_store::{JobId, JobState, LogQuery, Store};
    use tokio_postgres::NoTls;

    use super::*;
    use crate::testing::TestDb;
    use crate::{PgOptions, PgStore};

    /// A database at v9 with a dead job (attempts 1 and 2, a log line each) migrates to v10:
    /// the retry trigger is gone, and a retry numbers the attempts on and keeps the logs.
    #[tokio::test]
    async fn a_v9_database_gets_v10_and_a_retry_keeps_its_history() {
        let db = TestDb::create();
        let (mut client, conn) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
        let driver = tokio::spawn(conn);
        {
            let tx = client.transaction().await.unwrap();
            let mut m = Pg(tx);
            let (_, to) = offload_store::rules::migrate::migrate(&mut m, &MIGRATIONS[..9])
                .await
                .unwrap();
            assert_eq!(to, 9);
            m.0.commit().await.unwrap();
        }
        let id = JobId::now_v7();
        client
            .execute(
                "INSERT INTO offload_jobs (id, job, pool, params, state, priority, run_at,
                     created_at, updated_at, attempt, max_attempts, backoff_ms)
                 VALUES ($1, 'old.js', 'node', '{}', 'dead', 0, 1, 1, 1, 2, 2, 0)",
                &[&id],
            )
            .await
            .unwrap();
        for attempt in [1_i64, 2] {
            client
                .execute(
                    "INSERT INTO offload_job_logs (job_id, attempt, seq, stream, at, line)
                     VALUES ($1, $2, 0, 'stdout', 1, 'a line')",
                    &[&id, &attempt],
                )
                .await
                .unwrap();
        }
        drop(client);
        let _ = driver.await;

        let store = PgStore::connect_with(&db.url, PgOptions::default().with_listen(false))
            .await
            .unwrap();
        assert_eq!(
            db.query_i64("SELECT max(version)::bigint FROM offload_schema"),
            [i64::try_from(MIGRATIONS.len()).unwrap()]
        );
        assert_eq!(
            db.query_i64(
                "SELECT count(*) FROM pg_trigger WHERE tgname = 'offload_job_logs_retried'"
            ),
            [0]
        );
        assert_eq!(store.retry(id).await.unwrap(), JobState::Queued);
        let r = store.get(id).await.unwrap();
        assert_eq!((r.attempt, r.max_attempts), (2, 4));
        let q = LogQuery {
            attempt: None,
            after: None,
            limit: 10,
        };
        assert_eq!(store.logs(id, q).await.unwrap().len(), 2);
    }
}
