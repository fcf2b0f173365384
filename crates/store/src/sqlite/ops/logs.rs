//! `append_logs` and `logs`: the lines of each attempt (see [`crate::logs`]).

use rusqlite::{params, Connection};

use super::super::engine;
use super::{all, id_text};
use crate::logs::{check_batch, log_line, LogLine, LogQuery};
use crate::{JobId, StoreError};

const APPEND: &str = include_str!("../sql/logs/append.sql");
const READ: &str = include_str!("../sql/logs/read.sql");

pub(in crate::sqlite) fn append(c: &Connection, lines: &[LogLine]) -> Result<(), StoreError> {
    check_batch(lines)?;
    let mut s = c.prepare_cached(APPEND).map_err(engine)?;
    for l in lines {
        s.execute(params![
            id_text(l.job_id),
            l.attempt,
            l.seq,
            l.stream.as_str(),
            l.at,
            l.line,
            l.shared,
            l.marker
        ])
        .map_err(engine)?;
    }
    Ok(())
}

pub(in crate::sqlite) fn read(
    c: &Connection,
    id: JobId,
    q: &LogQuery,
) -> Result<Vec<LogLine>, StoreError> {
    q.check()?;
    let (attempt, after_attempt, after_seq, limit) = q.bounds();
    let mut s = c.prepare_cached(READ).map_err(engine)?;
    all(
        &mut s,
        params![id_text(id), attempt, after_attempt, after_seq, limit],
        |r| log_line(r),
    )
}
