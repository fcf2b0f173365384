//! Every method and transition of `SqliteStore`, on real files in temporary directories: the
//! shared conformance suite (`offload_store::testkit`), then what only SQLite has.

mod common;

use std::sync::Arc;

use common::*;
use offload_store::{JobState, ListFilter, SqliteStore, Store, StoreError};

/// A `SqliteStore` in a fresh temporary directory (removed after the store is dropped).
struct Sqlite {
    store: Option<Arc<SqliteStore>>,
    dir: tempfile::TempDir,
}

impl Sqlite {
    fn fresh() -> Self {
        let (dir, store) = store();
        Self {
            store: Some(Arc::new(store)),
            dir,
        }
    }

    fn sqlite(&self) -> &Arc<SqliteStore> {
        self.store.as_ref().expect("the store is open")
    }
}

#[async_trait::async_trait(?Send)]
impl Harness for Sqlite {
    fn store(&self) -> Arc<dyn Store> {
        self.sqlite().clone()
    }

    async fn check_counts(&self) {
        check_counts(self.dir.path(), self.sqlite()).await;
    }

    async fn reopen(&mut self) -> Arc<dyn Store> {
        let old = self.store.take().expect("the store is open");
        assert_eq!(Arc::strong_count(&old), 1, "the case still holds the store");
        drop(old);
        let store = Arc::new(SqliteStore::open(self.dir.path()).unwrap());
        self.store = Some(Arc::clone(&store));
        store
    }
}

offload_store::store_conformance!(|| async { Sqlite::fresh() });

#[tokio::test]
async fn reopen_keeps_everything_and_the_directory_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("data").join("here");
    let store = SqliteStore::open(&nested).unwrap();
    assert_eq!(store.path(), Some(nested.join("offload.db").as_path()));
    let id = store.submit(vec![job("a", "node")], WINDOW).await.unwrap()[0].id;
    let err = SqliteStore::open(&nested).unwrap_err();
    assert!(err.to_string().contains("in use by process"), "{err}");
    store.get(id).await.unwrap(); // a read connection is open too
    drop(store);
    // Closing checkpointed the WAL into the file: one file to copy or back up.
    assert!(!nested.join("offload.db-wal").exists());
    let store = SqliteStore::open(&nested).unwrap();
    assert_eq!(store.get(id).await.unwrap().state, JobState::Queued);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("offload.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match SqliteStore::open(dir.path()) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!(
                (found, supported),
                (99, offload_store::sqlite::SCHEMA_VERSION)
            );
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn in_memory_store_works_the_same() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert_eq!(store.path(), None);
    let id = store.submit(vec![job("a", "node")], WINDOW).await.unwrap()[0].id;
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert_eq!(c[0].id, id);
    assert_eq!(store.get(id).await.unwrap().state, JobState::Running);
    assert_eq!(
        store.list(ListFilter::default()).await.unwrap().jobs.len(),
        1
    );
}

#[tokio::test]
async fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = SqliteStore::open(&data).unwrap();
    store.submit(vec![job("a", "node")], WINDOW).await.unwrap();
    let mode = |p: &std::path::Path| p.metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for f in [
        "offload.db",
        "offload.db-wal",
        "offload.db-shm",
        "offload.lock",
    ] {
        let p = data.join(f);
        assert!(p.exists(), "{f} is missing");
        assert_eq!(mode(&p), 0o600, "{f}");
    }
    drop(store);
    // A database left with a wider mode is narrowed on open.
    std::fs::set_permissions(
        data.join("offload.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let _store = SqliteStore::open(&data).unwrap();
    assert_eq!(mode(&data.join("offload.db")), 0o600);
}
