//! `append_logs` and `logs`: the lines of each attempt (see [`offload_store::logs`]).

use deadpool_postgres::Object;
use offload_store::logs::{check_batch, log_line, LogLine, LogQuery};
use offload_store::{JobId, StoreError};

use super::{all, Cols};
use crate::engine;

const APPEND: &str = include_str!("../sql/logs/append.sql");
const READ: &str = include_str!("../sql/logs/read.sql");

pub(crate) async fn append(c: &Object, lines: &[LogLine]) -> Result<(), StoreError> {
    check_batch(lines)?;
    if lines.is_empty() {
        return Ok(());
    }
    let ids: Vec<JobId> = lines.iter().map(|l| l.job_id).collect();
    let attempts: Vec<i64> = lines.iter().map(|l| i64::from(l.attempt)).collect();
    let seqs: Vec<i64> = lines.iter().map(|l| i64::from(l.seq)).collect();
    let streams: Vec<&str> = lines.iter().map(|l| l.stream.as_str()).collect();
    let ats: Vec<i64> = lines.iter().map(|l| l.at).collect();
    let texts: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
    let shared: Vec<bool> = lines.iter().map(|l| l.shared).collect();
    let markers: Vec<bool> = lines.iter().map(|l| l.marker).collect();
    let st = c.prepare_cached(APPEND).await.map_err(engine)?;
    c.execute(
        &st,
        &[
            &ids, &attempts, &seqs, &streams, &ats, &texts, &shared, &markers,
        ],
    )
    .await
    .map_err(engine)?;
    Ok(())
}

pub(crate) async fn read(c: &Object, id: JobId, q: &LogQuery) -> Result<Vec<LogLine>, StoreError> {
    q.check()?;
    let (attempt, after_attempt, after_seq, limit) = q.bounds();
    let st = c.prepare_cached(READ).await.map_err(engine)?;
    let rows = c
        .query(&st, &[&id, &attempt, &after_attempt, &after_seq, &limit])
        .await
        .map_err(engine)?;
    all(&rows, |r: &Cols<'_>| log_line(r))
}
