//! Every method and transition of `PgStore` against a real PostgreSQL server: the shared
//! conformance suite (`offload_store::testkit`), run on a scratch database each.

mod common;

use std::sync::Arc;

use common::*;
use offload_store::Store;
use offload_store_pg::testing::TestDb;
use offload_store_pg::PgStore;

/// A `PgStore` on a fresh scratch database (dropped after the store is).
struct Pg {
    store: Arc<PgStore>,
    db: TestDb,
}

impl Pg {
    async fn fresh() -> Self {
        let (db, store) = store().await;
        Self {
            store: Arc::new(store),
            db,
        }
    }
}

#[async_trait::async_trait(?Send)]
impl Harness for Pg {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn check_counts(&self) {
        check_counts(&self.db, &self.store).await;
    }

    async fn reopen(&mut self) -> Arc<dyn Store> {
        self.store = Arc::new(PgStore::connect(&self.db.url).await.unwrap());
        self.store.clone()
    }
}

offload_store::store_conformance!(Pg::fresh);
