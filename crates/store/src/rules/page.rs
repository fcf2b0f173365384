//! `list`'s pages: their size and their cursor. A cursor is the last job's id as 32 hex digits
//! (opaque to callers); the next page holds the jobs with smaller ids (newest first).

use crate::{JobId, JobRecord, Page, StoreError};

/// The largest page `list` returns.
pub const MAX_LIMIT: usize = 1_000;
/// The page size when the filter's `limit` is 0.
pub const DEFAULT_LIMIT: usize = 100;
/// The last millisecond a job id can hold (UUIDv7 keeps 48 bits of Unix milliseconds).
pub const MAX_ID_MILLIS: u64 = (1 << 48) - 1;

/// The page size for a filter's `limit`. An engine fetches one row more (`limit + 1`) to know
/// whether another page follows, then calls [`page`].
pub fn limit(asked: usize) -> usize {
    match asked {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    }
}

/// The cursor of the position after `id`.
pub fn cursor(id: JobId) -> String {
    id.simple().to_string()
}

/// The id a cursor continues after.
///
/// # Errors
///
/// [`StoreError::Invalid`] for a cursor that did not come from `list`.
pub fn after(cursor: &str) -> Result<JobId, StoreError> {
    JobId::try_parse(cursor).map_err(|_| StoreError::Invalid(format!("bad cursor {cursor:?}")))
}

/// The smallest job id of millisecond `at`: ids are UUIDv7, ordered by the time they were
/// made, so "submitted before `at`" is "id below `id_at(at)`" and uses the id's indexes. A
/// time before 1970 is 1970; one past the ids' 48-bit clock (year 10889) is its last
/// millisecond.
pub fn id_at(at: crate::Millis) -> JobId {
    let ms = u64::try_from(at).unwrap_or(0).min(MAX_ID_MILLIS);
    uuid::Builder::from_unix_timestamp_millis(ms, &[0; 10]).into_uuid()
}

/// A page from up to `limit + 1` jobs, newest first: the extra job only says that another page
/// follows.
pub fn page(mut jobs: Vec<JobRecord>, limit: usize) -> Page {
    let more = jobs.len() > limit;
    jobs.truncate(limit);
    let next_cursor = if more {
        jobs.last().map(|j| cursor(j.id))
    } else {
        None
    };
    Page { jobs, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_cap() {
        assert_eq!(limit(0), DEFAULT_LIMIT);
        assert_eq!(limit(7), 7);
        assert_eq!(limit(5_000), MAX_LIMIT);
    }

    #[test]
    fn ids_at_a_time_order_like_the_ids_made_then() {
        let before = id_at(crate::now_ms() - 1);
        let made = JobId::now_v7();
        let after = id_at(crate::now_ms() + 1);
        assert!(before < made && made < after);
        assert!(cursor(before) < cursor(made) && cursor(made) < cursor(after));
        assert_eq!(id_at(-5), id_at(0));
        assert_eq!(id_at(i64::MAX), id_at(MAX_ID_MILLIS as i64));
        assert!(id_at(MAX_ID_MILLIS as i64 - 1) < id_at(i64::MAX));
    }

    #[test]
    fn a_cursor_round_trips_and_text_is_refused() {
        let id = JobId::now_v7();
        assert_eq!(after(&cursor(id)).unwrap(), id);
        assert_eq!(cursor(id).len(), 32);
        assert!(matches!(after("not a cursor"), Err(StoreError::Invalid(_))));
    }
}
