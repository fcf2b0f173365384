//! `offload cron list|pause|resume|run`: the daemon's schedules (from `offload.toml` and the
//! API), their counters, and the pause, resume and run-now of one.

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::client::Client;
use crate::output::{compact, field, relative, time, Table};

/// Arguments of `offload cron`.
#[derive(Debug, Args)]
pub(crate) struct CronArgs {
    #[command(subcommand)]
    command: CronCommand,
}

#[derive(Debug, Subcommand)]
enum CronCommand {
    /// List the schedules: name, expression, job, next tick, status, runs, consecutive
    /// failures and the last error, missed-tick policy, source.
    List {
        /// One JSON object per line (`GET /v1/cron`).
        #[arg(long)]
        json: bool,
    },
    /// Pause a schedule: no tick fires until it is resumed (on every node).
    Pause {
        /// The schedule's name.
        name: String,
    },
    /// Resume a paused schedule; its count of consecutive failures starts afresh.
    Resume {
        /// The schedule's name.
        name: String,
    },
    /// Submit a schedule's job now, even while it is paused; prints the job's id.
    Run {
        /// The schedule's name.
        name: String,
    },
}

pub(crate) async fn run(args: CronArgs, client: &Client) -> anyhow::Result<i32> {
    match args.command {
        CronCommand::List { json } => {
            let schedules = client
                .schedules()
                .await?
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<Value>, _>>()?;
            if json {
                for s in &schedules {
                    println!("{}", serde_json::to_string(s)?);
                }
            } else if schedules.is_empty() {
                eprintln!("no schedules (add [[cron]] entries to offload.toml, or POST /v1/cron)");
            } else {
                print!("{}", render(&schedules));
            }
        }
        CronCommand::Pause { name } => {
            client.schedule_action(&name, "pause").await?;
            eprintln!("paused {name}");
        }
        CronCommand::Resume { name } => {
            client.schedule_action(&name, "resume").await?;
            eprintln!("resumed {name}");
        }
        CronCommand::Run { name } => {
            let done = client.run_schedule(&name).await?;
            println!("{}", done.id);
        }
    }
    Ok(crate::exit::OK)
}

/// The first line of `text`, cut to `max` characters (with `…`).
fn short(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let mut s: String = line.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

/// `paused (why)`, `running` (a run is unfinished) or `ok`.
fn status(s: &Value) -> String {
    if let Some(reason) = s.pointer("/paused/reason").and_then(Value::as_str) {
        format!("paused ({reason})")
    } else if s.pointer("/counters/active").and_then(Value::as_bool) == Some(true) {
        "running".into()
    } else {
        "ok".into()
    }
}

/// name, expression, job, next tick, status, runs, consecutive failures, last error,
/// missed-tick policy, source, params.
pub(crate) fn render(schedules: &[Value]) -> String {
    let mut t = Table::new(&[
        "NAME",
        "CRON",
        "JOB",
        "NEXT",
        "STATUS",
        "RUNS",
        "FAILS",
        "LAST ERROR",
        "MISSED",
        "SOURCE",
        "PARAMS",
    ]);
    for s in schedules {
        let count = |p: &str| {
            s.pointer(p)
                .and_then(Value::as_u64)
                .map_or_else(|| "0".into(), |n| n.to_string())
        };
        let zone = s
            .get("timezone")
            .and_then(Value::as_str)
            .map_or_else(String::new, |z| format!(" ({z})"));
        t.row(vec![
            field(s, "name"),
            format!("{}{zone}", field(s, "cron")),
            field(s, "job"),
            s.get("next_at")
                .and_then(Value::as_i64)
                .map_or_else(|| "-".into(), |n| format!("{} ({})", time(n), relative(n))),
            status(s),
            count("/counters/runs"),
            count("/counters/consecutive_failures"),
            s.pointer("/counters/last_error/message")
                .and_then(Value::as_str)
                .map_or_else(|| "-".into(), |m| short(m, 40)),
            field(s, "missed"),
            field(s, "source"),
            s.get("params")
                .filter(|p| !p.is_null())
                .map_or_else(String::new, |p| compact(p, 60)),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schedules_are_a_table() {
        let s = [
            json!({"name": "nightly", "cron": "0 3 * * *", "job": "cleanup",
            "params": {"days": 7}, "missed": "skip", "source": "config", "next_at": null,
            "counters": {"runs": 4, "consecutive_failures": 0, "active": true}}),
            json!({"name": "sync", "cron": "0 * * * *", "job": "sync", "params": null,
            "missed": "skip", "source": "api", "next_at": null, "timezone": "Europe/Berlin",
            "paused": {"at": 1, "reason": "3 consecutive failures"},
            "counters": {"runs": 3, "consecutive_failures": 3, "active": false,
                "last_error": {"name": "Error", "message": "no route"}}}),
        ];
        assert_eq!(
            render(&s),
            "NAME     CRON                       JOB      NEXT  STATUS                           RUNS  FAILS  LAST ERROR  MISSED  SOURCE  PARAMS\n\
             nightly  0 3 * * *                  cleanup  -     running                          4     0      -           skip    config  {\"days\":7}\n\
             sync     0 * * * * (Europe/Berlin)  sync     -     paused (3 consecutive failures)  3     3      no route    skip    api\n"
        );
    }
}
