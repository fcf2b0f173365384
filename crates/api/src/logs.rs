//! `GET /v1/jobs/{id}/logs`: the lines each attempt of a job wrote to stdout and stderr.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{JobId, Millis};

/// The most lines one page holds.
pub const MAX_LOG_PAGE: u32 = 10_000;
/// Lines in a page when `limit` is not given.
pub const DEFAULT_LOG_PAGE: u32 = 1_000;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// The query of `GET /v1/jobs/{id}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Only this attempt's lines (1 for the first; one the job does not have yet: 404).
    /// Absent: every attempt's lines kept, attempt after attempt. Attempts are numbered on
    /// across manual retries; a retry keeps the lines of the job's last
    /// `max_log_attempts_per_job` attempts (default 10), so an older attempt may have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1)]
    pub attempt: Option<u32>,
    /// Continue after this cursor (`next_cursor` of the previous page, or a line's
    /// `<attempt>.<seq>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^[0-9]{1,10}\\.[0-9]{1,10}$", max_length = 21)]
    pub cursor: Option<String>,
    /// At most this many lines (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// One line of an attempt's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// The attempt (1 for the first).
    pub attempt: u32,
    /// Its place in the attempt's log, from 0.
    pub seq: u32,
    /// Stdout or stderr.
    pub stream: LogStream,
    /// When the daemon read it (ms since the Unix epoch).
    pub at: Millis,
    /// The text, without its newline (a line over 64 KiB ends in ` …[truncated]`).
    pub line: String,
    /// Printed by a pool worker while it ran several jobs at once: stored with each of them,
    /// since the daemon cannot tell which printed it.
    pub shared: bool,
    /// The attempt's log was cut here: this last line is the daemon's, saying how many lines
    /// and bytes were dropped over `max_log_bytes_per_attempt`.
    pub cut: bool,
}

/// A page of a job's log lines, in (attempt, seq) order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobLogs {
    /// The job.
    #[schema(value_type = String, format = Uuid)]
    pub id: JobId,
    /// Its attempts so far (the current or last one's number).
    pub attempts: u32,
    /// Whether the job is still running or waiting to run (more lines may come).
    pub active: bool,
    /// The lines.
    pub lines: Vec<LogLine>,
    /// Pass as `cursor` for the next page; `null` when this page was the last.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

impl LogLine {
    /// Its position as a `cursor`: `<attempt>.<seq>`.
    pub fn cursor(&self) -> String {
        format!("{}.{}", self.attempt, self.seq)
    }
}

/// Reads a `cursor` (`<attempt>.<seq>`).
pub fn parse_log_cursor(s: &str) -> Option<(u32, u32)> {
    let (a, q) = s.split_once('.')?;
    // Up to 10 digits each (the documented pattern): a number past `u32::MAX` is past every
    // line.
    let num = |t: &str| -> Option<u32> {
        if t.is_empty() || t.len() > 10 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(u32::try_from(t.parse::<u64>().ok()?).unwrap_or(u32::MAX))
    };
    Some((num(a)?, num(q)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back() {
        assert_eq!(parse_log_cursor("2.17"), Some((2, 17)));
        assert_eq!(parse_log_cursor("0.0"), Some((0, 0)));
        assert_eq!(
            parse_log_cursor("9999999999.1"),
            Some((u32::MAX, 1)),
            "past every line"
        );
        for bad in [
            "",
            "1",
            "1.",
            ".1",
            "a.1",
            "1.-1",
            "1.2.3",
            "+1.2",
            "12345678901.1",
        ] {
            assert_eq!(parse_log_cursor(bad), None, "{bad:?}");
        }
    }
}
