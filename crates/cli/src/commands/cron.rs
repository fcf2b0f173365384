//! `offload cron list`: the daemon's schedules (from `offload.toml` and the API).

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
    /// List the schedules: name, expression, job, next tick, missed-tick policy, source.
    List {
        /// One JSON object per line (`GET /v1/cron`).
        #[arg(long)]
        json: bool,
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
    }
    Ok(crate::exit::OK)
}

/// name, expression, job, next tick, missed-tick policy, source, params.
pub(crate) fn render(schedules: &[Value]) -> String {
    let mut t = Table::new(&["NAME", "CRON", "JOB", "NEXT", "MISSED", "SOURCE", "PARAMS"]);
    for s in schedules {
        t.row(vec![
            field(s, "name"),
            field(s, "cron"),
            field(s, "job"),
            s.get("next_at")
                .and_then(Value::as_i64)
                .map_or_else(|| "-".into(), |n| format!("{} ({})", time(n), relative(n))),
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
            "params": {"days": 7}, "missed": "skip", "source": "config", "next_at": null}),
        ];
        assert_eq!(
            render(&s),
            "NAME     CRON       JOB      NEXT  MISSED  SOURCE  PARAMS\n\
             nightly  0 3 * * *  cleanup  -     skip    config  {\"days\":7}\n"
        );
    }
}
