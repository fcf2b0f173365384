//! Job logs: the lines each attempt of a job wrote to stdout and stderr, stored with the
//! attempt (`job_logs` / `offload_job_logs`, schema v7).
//!
//! The daemon captures them (bounded per attempt, the cut marked by a final [`LogLine::marker`]
//! line) and appends them in batches with [`Store::append_logs`](crate::Store::append_logs);
//! [`Store::logs`](crate::Store::logs) reads them back in order, a page at a time. A job's logs
//! go with the job: deleting or purging it deletes them. A manual `retry` numbers the next
//! attempt on (3 after 2, schema v10) and keeps the earlier attempts' logs, but only those of
//! the job's last [`DEFAULT_LOG_ATTEMPTS`] attempts (configurable: `SqliteOptions::log_attempts`,
//! the daemon's `[limits] max_log_attempts_per_job`); the retry deletes older ones. A job's
//! attempts between two retries (at most its `max_attempts`) all keep their logs. Lines for a
//! job that no longer exists are ignored.

use serde::{Deserialize, Serialize};

use crate::limits::LimitError;
use crate::rules::rows::Row;
use crate::rules::values::{corrupt, to_u32};
use crate::{JobId, Millis, StoreError};

/// The most lines one [`Store::logs`](crate::Store::logs) call returns.
pub const MAX_LOG_PAGE: usize = 10_000;
/// The most lines one [`Store::append_logs`](crate::Store::append_logs) call stores.
pub const MAX_LOG_BATCH: usize = 10_000;
/// The attempts whose logs a manual retry keeps by default (the last 10).
pub const DEFAULT_LOG_ATTEMPTS: u32 = 10;
/// The most attempts whose logs a retry may be configured to keep.
pub const MAX_LOG_ATTEMPTS: u32 = 1_000;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// Its stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stdout" => Some(Self::Stdout),
            "stderr" => Some(Self::Stderr),
            _ => None,
        }
    }
}

/// One stored line of a job's attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The job.
    pub job_id: JobId,
    /// The attempt (1 for the first).
    pub attempt: u32,
    /// Its place in the attempt's log, from 0.
    pub seq: u32,
    /// Stdout or stderr.
    pub stream: LogStream,
    /// When the daemon read it.
    pub at: Millis,
    /// The text, without its newline.
    pub line: String,
    /// Printed by a pool worker while it ran several jobs at once: stored with each of them.
    pub shared: bool,
    /// The attempt's last line, saying how much was dropped over the limit (not the job's).
    pub marker: bool,
}

/// Which lines [`Store::logs`](crate::Store::logs) returns: those of one attempt or all,
/// after a position, in (attempt, seq) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogQuery {
    /// Only this attempt's lines.
    pub attempt: Option<u32>,
    /// Only lines after this (attempt, seq).
    pub after: Option<(u32, u32)>,
    /// At most this many (1..=[`MAX_LOG_PAGE`]).
    pub limit: usize,
}

impl LogQuery {
    /// Checks the limit.
    ///
    /// # Errors
    ///
    /// [`LimitError`] naming `limit`.
    pub fn check(&self) -> Result<(), LimitError> {
        if self.limit == 0 || self.limit > MAX_LOG_PAGE {
            return Err(LimitError::new(
                "limit",
                self.limit,
                format!("1..={MAX_LOG_PAGE} lines"),
            ));
        }
        Ok(())
    }

    /// Bounds as stored: attempt filter (or -1), after (attempt, seq) (or (0, -1)), limit.
    pub fn bounds(&self) -> (i64, i64, i64, i64) {
        let attempt = self.attempt.map_or(-1, i64::from);
        let (a, s) = self
            .after
            .map_or((0, -1), |(a, s)| (i64::from(a), i64::from(s)));
        (attempt, a, s, i64::try_from(self.limit).unwrap_or(i64::MAX))
    }
}

/// Checks a batch's size.
///
/// # Errors
///
/// [`LimitError`] naming `log lines`.
pub fn check_batch(lines: &[LogLine]) -> Result<(), LimitError> {
    if lines.len() > MAX_LOG_BATCH {
        return Err(LimitError::new(
            "log lines",
            lines.len(),
            format!("at most {MAX_LOG_BATCH} a call"),
        ));
    }
    Ok(())
}

/// A line from a row with columns `job_id, attempt, seq, stream, at, line, shared, marker`.
///
/// # Errors
///
/// [`StoreError`] when a column is missing or corrupt.
pub fn log_line(r: &impl Row) -> Result<LogLine, StoreError> {
    let stream = r.text("stream")?;
    Ok(LogLine {
        job_id: r.id("job_id")?,
        attempt: to_u32(r.int("attempt")?, "log attempt")?,
        seq: to_u32(r.int("seq")?, "log seq")?,
        stream: LogStream::parse(&stream).ok_or_else(|| corrupt("log stream", &stream))?,
        at: r.int("at")?,
        line: r.text("line")?,
        shared: r.flag("shared")?,
        marker: r.flag("marker")?,
    })
}
