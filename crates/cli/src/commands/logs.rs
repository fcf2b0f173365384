//! `offload logs`: the lines a job's attempts printed, as the daemon stored them
//! (`GET /v1/jobs/{id}/logs`): its stdout lines on stdout, its stderr lines (and the daemon's
//! cut marker) on stderr; `--json` prints each line as one JSON object instead. `--follow`
//! keeps reading new lines until the job is over.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use offload_api::{LogLine, LogStream, LogsQuery, MAX_LOG_PAGE};

use crate::client::Client;

/// How often `--follow` asks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// Arguments of `offload logs`.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The job's id.
    id: String,
    /// Only this attempt (1 for the first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    attempt: Option<u32>,
    /// Keep printing new lines as they come, until the job is over.
    #[arg(long, short)]
    follow: bool,
    /// Print each line as a JSON object (`{attempt, seq, stream, at, line, shared, cut}`), one
    /// a line.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: LogsArgs, client: &Client) -> anyhow::Result<i32> {
    let mut q = LogsQuery {
        attempt: args.attempt,
        cursor: None,
        limit: Some(MAX_LOG_PAGE),
    };
    let mut shown: Option<u32> = None;
    loop {
        let page = client.logs(&args.id, &q).await?;
        let several = args.attempt.is_none() && page.attempts > 1;
        for l in &page.lines {
            print_line(l, args.json, several && shown != Some(l.attempt))?;
            shown = Some(l.attempt);
        }
        if let Some(last) = page.lines.last() {
            q.cursor = Some(last.cursor());
        }
        if page.next_cursor.is_some() {
            continue;
        }
        if !args.follow || !page.active {
            return Ok(crate::exit::OK);
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// Prints one line: stdout's to stdout, stderr's to stderr, after an `== attempt N ==` header
/// when `header`; or the line as JSON.
fn print_line(l: &LogLine, json: bool, header: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(l)?)?;
        return Ok(());
    }
    if header {
        writeln!(out, "== attempt {} ==", l.attempt)?;
    }
    match l.stream {
        LogStream::Stdout => writeln!(out, "{}", l.line)?,
        LogStream::Stderr => {
            out.flush()?;
            writeln!(std::io::stderr(), "{}", l.line)?;
        }
    }
    Ok(())
}
