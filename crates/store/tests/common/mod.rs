//! Helpers shared by the store's integration tests.
#![allow(dead_code, unreachable_pub)]

#[allow(unused_imports)] // each test binary uses some
pub use offload_store::testkit::*;
use offload_store::SqliteStore;

/// A store in a fresh temporary directory (kept alive with it).
pub fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).expect("open");
    (dir, store)
}

/// Checks that `counts` (kept by the writer) matches a count of the rows.
pub async fn check_counts(dir: &std::path::Path, store: &SqliteStore) {
    use offload_store::Store;
    let conn = rusqlite::Connection::open(dir.join("offload.db")).expect("open");
    let mut s = conn
        .prepare("SELECT pool, state, count(*) FROM jobs GROUP BY pool, state")
        .unwrap();
    let actual: offload_store::Counts = s
        .query_map([], |r| {
            let state: String = r.get(1)?;
            Ok((
                (r.get::<_, String>(0)?, state.parse().unwrap()),
                r.get::<_, i64>(2)? as u64,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(store.counts().await.unwrap(), actual, "counts drifted");
}
