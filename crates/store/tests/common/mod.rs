//! Helpers shared by the store's integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use offload_store::{Completion, Demand, JobId, NewJob, SqliteStore, StoredError, Transition};
use serde_json::{json, Value};

pub const NODE: &str = "node-a";
pub const LEASE: Duration = Duration::from_secs(30);
pub const WINDOW: Duration = Duration::from_secs(3600);

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
