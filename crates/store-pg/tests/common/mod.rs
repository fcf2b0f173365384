//! Helpers shared by the PostgreSQL store's integration tests: the conformance suite's helpers
//! (`offload_store::testkit`), on a scratch database per test (see `offload_store_pg::testing`).
#![allow(dead_code, unreachable_pub)]

#[allow(unused_imports)] // each test binary uses some
pub use offload_store::testkit::*;
use offload_store_pg::testing::TestDb;
use offload_store_pg::PgStore;

/// A store on a fresh database (dropped with the `TestDb`; drop the store first).
pub async fn store() -> (TestDb, PgStore) {
    let db = TestDb::create();
    let store = PgStore::connect(&db.url).await.expect("connect");
    (db, store)
}

/// A plain connection to the test database, for looking under the store.
pub async fn sql(db: &TestDb) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// Checks that `counts` (kept by triggers as deltas) matches a count of the rows, before and
/// after the deltas are folded.
pub async fn check_counts(db: &TestDb, store: &PgStore) {
    use offload_store::Store;
    let client = sql(db).await;
    let rows = client
        .query(
            "SELECT pool, state, count(*) FROM offload_jobs GROUP BY pool, state",
            &[],
        )
        .await
        .unwrap();
    let actual: offload_store::Counts = rows
        .iter()
        .map(|r| {
            let state: String = r.get(1);
            (
                (r.get::<_, String>(0), state.parse().unwrap()),
                r.get::<_, i64>(2) as u64,
            )
        })
        .collect();
    assert_eq!(store.counts().await.unwrap(), actual, "counts drifted");
    client
        .execute("SELECT offload_compact_counts()", &[])
        .await
        .unwrap();
    assert_eq!(
        store.counts().await.unwrap(),
        actual,
        "counts drifted when folded"
    );
}
