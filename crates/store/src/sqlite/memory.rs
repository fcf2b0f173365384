//! What SQLite holds in memory: the process-wide heap SQLite allocated, and one connection's
//! page cache. The one place of this crate that calls SQLite's C API directly (`unsafe`):
//! rusqlite has no safe wrapper for `sqlite3_memory_used` or `sqlite3_db_status`.
#![allow(unsafe_code)]

use rusqlite::ffi;
#[cfg(test)]
use rusqlite::Connection;

/// The bytes SQLite has allocated in this process now, over every connection and every store
/// (its page caches, prepared statements, schema): `sqlite3_memory_used()`. 0 when nothing
/// of SQLite is open.
#[must_use]
pub fn memory_used() -> u64 {
    // SAFETY: takes no argument, reads a counter under SQLite's own mutex.
    let used = unsafe { ffi::sqlite3_memory_used() };
    u64::try_from(used).unwrap_or(0)
}

/// The bytes of `conn`'s page cache now (`SQLITE_DBSTATUS_CACHE_USED`): what the tests
/// check `cache_kib` against.
#[cfg(test)]
pub(crate) fn cache_used(conn: &Connection) -> u64 {
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: `conn.handle()` is a live `sqlite3*` for as long as `conn` is borrowed, and the
    // two out-pointers are valid `c_int`s on the stack.
    let rc = unsafe {
        ffi::sqlite3_db_status(
            conn.handle(),
            ffi::SQLITE_DBSTATUS_CACHE_USED,
            &raw mut current,
            &raw mut highwater,
            0,
        )
    };
    if rc == ffi::SQLITE_OK {
        u64::try_from(current).unwrap_or(0)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::open_connection;

    /// Writes about 8 MiB through a connection whose cache is `cache_kib`, returns its cache's
    /// size after.
    fn cache_after_writing(cache_kib: u32) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("t.db"), cache_kib).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .unwrap();
        let body = "x".repeat(1_000);
        for _ in 0..8 {
            conn.execute_batch("BEGIN").unwrap();
            for _ in 0..1_000 {
                conn.execute("INSERT INTO t (body) VALUES (?1)", [&body])
                    .unwrap();
            }
            conn.execute_batch("COMMIT").unwrap();
        }
        let cache = cache_used(&conn);
        // The process-wide count holds this connection's cache (and whatever else is open).
        assert!(
            memory_used() >= cache,
            "memory_used {} < cache {cache}",
            memory_used()
        );
        cache
    }

    /// A connection's page cache stops at its `cache_kib` however much it writes, where a
    /// large cache keeps every page written: the daemon's RSS followed the database's size
    /// while the writer's cache was 32 MiB.
    #[test]
    fn the_page_cache_is_bounded_by_cache_kib() {
        let bounded = cache_after_writing(512);
        // cache_size counts the pages' bytes; SQLite's header of each page comes on top (~3 %).
        assert!(
            bounded <= 512 * 1024 * 9 / 8,
            "a 512 KiB cache holds {bounded} bytes"
        );
        let large = cache_after_writing(32_000);
        assert!(
            large > 4 * 1024 * 1024,
            "a 32 MB cache after 8 MB written holds only {large} bytes"
        );
    }
}
