//! Scratch databases for tests (feature `testing`): each [`TestDb`] is a new database with a
//! random name on the test server, dropped when the value is dropped, so tests run in
//! parallel and leave nothing behind.
//!
//! The server is `OFFLOAD_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`, a
//! role allowed to create databases). When nothing answers there, the first [`TestDb`] runs
//! `scripts/ensure-postgres` (installs PostgreSQL from the distribution's packages if it is
//! missing, starts it if it is stopped) and waits for it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

/// The admin URL of the test server.
pub fn admin_url() -> String {
    std::env::var("OFFLOAD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists while this value lives.
#[derive(Debug)]
pub struct TestDb {
    /// Its connection URL.
    pub url: String,
    /// Its name.
    pub name: String,
    admin: String,
}

/// Runs a future to completion on a runtime of its own, on a thread of its own (so it works
/// from sync tests, async tests and `Drop` alike).
fn block_on<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the test database")
            .block_on(f)
    })
    .join()
    .expect("the test database thread panicked")
}

async fn admin_exec(admin: String, sql: String) -> Result<(), tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(&admin, NoTls).await?;
    let driver = tokio::spawn(conn);
    let r = client.batch_execute(&sql).await;
    drop(client);
    let _ = driver.await;
    r
}

/// Makes sure the test server answers, once per process.
fn ensure_server(admin: &str) {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let admin = admin.to_owned();
    let ready = READY.get_or_init(move || {
        let probe = |admin: String| block_on(admin_exec(admin, "SELECT 1".into()));
        if probe(admin.clone()).is_ok() {
            return Ok(());
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/ensure-postgres");
        eprintln!("test database: nothing answers at {admin}; running {script}");
        let status = std::process::Command::new("bash")
            .arg(script)
            .status()
            .map_err(|e| format!("cannot run {script}: {e}"))?;
        if !status.success() {
            return Err(format!("{script} failed ({status})"));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match probe(admin.clone()) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("PostgreSQL does not answer at {admin}: {e}"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    });
    if let Err(e) = ready {
        panic!("no PostgreSQL for the tests: {e}");
    }
}

impl TestDb {
    /// Creates a database with a fresh name on the test server.
    ///
    /// # Panics
    ///
    /// When no server can be had, or the database cannot be created.
    pub fn create() -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let admin = admin_url();
        ensure_server(&admin);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "offload_test_{}_{}_{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        block_on(admin_exec(
            admin.clone(),
            format!("CREATE DATABASE \"{name}\""),
        ))
        .unwrap_or_else(|e| {
            panic!(
                "cannot create the test database {name}: {}",
                crate::describe(&e)
            )
        });
        let mut url: tokio_postgres::Config = admin.parse().expect("OFFLOAD_TEST_PG is a URL");
        url.dbname(&name);
        Self {
            url: url_of(&admin, &name),
            name,
            admin,
        }
    }
}

impl TestDb {
    /// Runs `sql` on the database and returns its first row, every column as an `i64`
    /// (counts, sums): to look under the store from a test.
    ///
    /// # Panics
    ///
    /// When the query fails or returns no row.
    pub fn query_i64(&self, sql: &str) -> Vec<i64> {
        let (url, owned) = (self.url.clone(), sql.to_owned());
        block_on(async move {
            let sql = owned;
            let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
            let driver = tokio::spawn(conn);
            let row = client.query_one(&sql, &[]).await;
            drop(client);
            let _ = driver.await;
            row.map(|r| (0..r.len()).map(|i| r.get::<_, i64>(i)).collect())
        })
        .unwrap_or_else(|e| panic!("{sql}: {}", crate::describe(&e)))
    }
}

/// `admin` with its database replaced by `db`.
fn url_of(admin: &str, db: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{base}/{db}{query}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::env::var_os("OFFLOAD_TEST_KEEP_DB").is_some() {
            eprintln!("test database kept: {}", self.url);
            return;
        }
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        if let Err(e) = block_on(admin_exec(self.admin.clone(), sql)) {
            eprintln!(
                "cannot drop the test database {}: {}",
                self.name,
                crate::describe(&e)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::url_of;

    #[test]
    fn urls_get_their_database_replaced() {
        assert_eq!(
            url_of("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(url_of("postgres://u@h", "t1"), "postgres://u@h/t1");
        assert_eq!(
            url_of("postgresql://u:p@h/db?sslmode=disable", "t1"),
            "postgresql://u:p@h/t1?sslmode=disable"
        );
    }
}
