//! `offload jobs`: the daemon's jobs, newest first: an aligned table on a terminal, one JSON
//! object per line otherwise (or with `--json`).

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::Value;

use crate::client::{Client, ListQuery};
use crate::output::{compact, field, time, Table};

/// Arguments of `offload jobs`.
#[derive(Debug, Args)]
pub(crate) struct JobsArgs {
    /// Only jobs in this state (scheduled, queued, running, succeeded, failed, dead, cancelled).
    #[arg(long)]
    state: Option<String>,
    /// Only jobs of this name.
    #[arg(long)]
    job: Option<String>,
    /// Only the runs of this cron schedule (its history).
    #[arg(long)]
    schedule: Option<String>,
    /// Only jobs submitted since: a time ago (`90s`, `2h`, `7d`) or an RFC 3339 time (UTC).
    #[arg(long, value_parser = when)]
    since: Option<i64>,
    /// Only jobs submitted before: a time ago or an RFC 3339 time (UTC).
    #[arg(long, value_parser = when)]
    until: Option<i64>,
    /// At most this many (the daemon allows 1 to 1,000).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Continue after a previous page (its `next_cursor`).
    #[arg(long)]
    cursor: Option<String>,
    /// One JSON object per line, even on a terminal.
    #[arg(long, conflicts_with = "table")]
    json: bool,
    /// An aligned table, even when stdout is not a terminal.
    #[arg(long)]
    table: bool,
}

pub(crate) async fn run(args: JobsArgs, client: &Client) -> anyhow::Result<i32> {
    let page = client
        .jobs(&ListQuery {
            state: args.state,
            job: args.job,
            schedule: args.schedule,
            since: args.since,
            until: args.until,
            limit: Some(args.limit),
            cursor: args.cursor,
        })
        .await?;
    let table = args.table || (!args.json && std::io::stdout().is_terminal());
    // The rows as the daemon sent them (the table and the JSON lines read fields by name).
    let jobs = page
        .jobs
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<Value>, _>>()?;
    if table {
        print!("{}", render(&jobs));
        if let Some(c) = &page.next_cursor {
            eprintln!("(more: offload jobs --cursor {c})");
        }
    } else {
        for job in &jobs {
            println!("{}", serde_json::to_string(job)?);
        }
    }
    Ok(crate::exit::OK)
}

/// A time as Unix milliseconds: `2h` is two hours ago, `2026-12-04T10:00:00Z` (or without the
/// zone, read as UTC) that time.
fn when(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let at = match humantime::parse_duration(t) {
        Ok(ago) => SystemTime::now().checked_sub(ago),
        Err(_) => humantime::parse_rfc3339_weak(t).ok(),
    }
    .ok_or_else(|| format!("{t:?} is neither a time ago (90s, 2h, 7d) nor an RFC 3339 time"))?;
    let ms = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("{t:?} is before 1970"))?
        .as_millis();
    i64::try_from(ms).map_err(|_| format!("{t:?} is too far ahead"))
}

/// The table: id, name, state, attempt, creation time, and the error or result in short.
pub(crate) fn render(jobs: &[Value]) -> String {
    let mut t = Table::new(&["ID", "JOB", "STATE", "ATTEMPT", "CREATED", "INFO"]);
    for j in jobs {
        let info = match j.get("error").filter(|e| !e.is_null()) {
            Some(e) => format!("{}: {}", field(e, "name"), compact(&e["message"], 50)),
            None => j
                .get("result")
                .filter(|r| !r.is_null())
                .map_or_else(String::new, |r| compact(r, 50)),
        };
        t.row(vec![
            field(j, "id"),
            field(j, "job"),
            field(j, "state"),
            format!("{}/{}", field(j, "attempt"), field(j, "max_attempts")),
            j.get("created_at")
                .and_then(Value::as_i64)
                .map_or_else(|| "-".into(), time),
            info,
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_ago_or_rfc3339() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let two_hours = when("2h").unwrap();
        assert!((now - 7_200_000 - two_hours).abs() < 60_000, "{two_hours}");
        assert_eq!(when("2026-12-04T10:00:00Z").unwrap(), 1_796_378_400_000);
        assert_eq!(when("2026-12-04 10:00:00").unwrap(), 1_796_378_400_000);
        assert!(when("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn jobs_are_a_table() {
        let jobs = [
            json!({"id": "a1", "job": "hello", "state": "succeeded", "attempt": 1,
                   "max_attempts": 3, "created_at": 0, "result": {"ok": true}, "error": null}),
            json!({"id": "b2", "job": "fails", "state": "dead", "attempt": 2, "max_attempts": 2,
                   "created_at": 0, "error": {"name": "ValueError", "message": "boom"}}),
        ];
        assert_eq!(
            render(&jobs),
            "ID  JOB    STATE      ATTEMPT  CREATED               INFO\n\
             a1  hello  succeeded  1/3      1970-01-01T00:00:00Z  {\"ok\":true}\n\
             b2  fails  dead       2/2      1970-01-01T00:00:00Z  ValueError: boom\n"
        );
    }
}
