//! Helpers shared by the PostgreSQL store's integration tests: the SQLite suite's helpers, on a
//! scratch database per test (see `offload_store_pg::testing`).
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use offload_store::{Completion, Demand, JobId, NewJob, StoredError, Transition};
use offload_store_pg::testing::TestDb;
use offload_store_pg::PgStore;
use serde_json::{json, Value};

pub const NODE: &str = "node-a";
pub const LEASE: Duration = Duration::from_secs(30);
pub const WINDOW: Duration = Duration::from_secs(3600);

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

pub fn job(name: &str, pool: &str) -> NewJob {
    NewJob {
        job: name.into(),
        params: json!({ "n": 1 }),
        pool: pool.into(),
        priority: 0,
        run_at: None,
        timeout_ms: Some(1_000),
        max_attempts: 3,
        backoff_ms: 100,
        idempotency_key: None,
        cron: None,
    }
}

pub fn demand(pool: &str, n: usize) -> Vec<Demand> {
    vec![Demand {
        pool: pool.into(),
        n,
    }]
}

pub fn error(message: &str) -> StoredError {
    StoredError {
        name: "Error".into(),
        message: message.into(),
        stack: Some("at job.js:1".into()),
    }
}

pub fn completion(id: JobId, attempt: u32, then: Transition) -> Completion {
    let outcome = match &then {
        Transition::Succeeded { .. } => "succeeded",
        Transition::Retry { .. } | Transition::Dead { .. } => "failed",
        Transition::Cancelled => "cancelled",
    };
    Completion {
        id,
        attempt,
        node: NODE.into(),
        pid: Some(4242),
        started_at: offload_store::now_ms(),
        ended_at: offload_store::now_ms(),
        outcome: outcome.into(),
        then,
    }
}

pub fn succeeded(result: Value) -> Transition {
    Transition::Succeeded { result }
}
