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
const MIGRATIONS: [&str; 11] = [
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
