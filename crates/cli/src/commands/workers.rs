//! `offload workers`: the daemon's resident workers and their health, as a table (`--json`:
//! one JSON object per line).

use clap::Args;
use serde_json::Value;

use crate::client::Client;
use crate::output::{duration_ms, field, Table};

/// Arguments of `offload workers`.
#[derive(Debug, Args)]
pub(crate) struct WorkersArgs {
    /// One JSON object per line (`GET /v1/workers`).
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: WorkersArgs, client: &Client) -> anyhow::Result<i32> {
    let workers = client
        .workers()
        .await?
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<Value>, _>>()?;
    if args.json {
        for w in &workers {
            println!("{}", serde_json::to_string(w)?);
        }
    } else if workers.is_empty() {
        eprintln!("no workers (pools start them on demand)");
    } else {
        print!("{}", render(&workers));
    }
    Ok(crate::exit::OK)
}

/// pid, pool, state, RSS in MiB, CPU %, jobs done, in flight, restarts, uptime.
pub(crate) fn render(workers: &[Value]) -> String {
    let mut t = Table::new(&[
        ">PID",
        "POOL",
        "STATE",
        ">RSS MiB",
        ">CPU%",
        ">DONE",
        ">IN FLIGHT",
        ">RESTARTS",
        ">UPTIME",
    ]);
    for w in workers {
        let num = |k: &str| w.get(k).and_then(Value::as_f64);
        t.row(vec![
            field(w, "pid"),
            field(w, "pool"),
            field(w, "state"),
            num("rss").map_or_else(|| "-".into(), |b| format!("{:.1}", b / 1_048_576.0)),
            num("cpu").map_or_else(|| "-".into(), |c| format!("{c:.1}")),
            field(w, "jobs_done"),
            field(w, "in_flight"),
            field(w, "restarts"),
            w.get("uptime_ms")
                .and_then(Value::as_u64)
                .map_or_else(|| "-".into(), duration_ms),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn workers_are_a_table() {
        let w = [
            json!({"pool": "node", "pid": 4242, "index": 0, "state": "ready",
            "rss": 47_185_920, "cpu": 1.25, "in_flight": 0, "jobs_done": 12, "failures": 0,
            "restarts": 1, "uptime_ms": 65_000, "last_error": null}),
        ];
        assert_eq!(
            render(&w),
            " PID  POOL  STATE  RSS MiB  CPU%  DONE  IN FLIGHT  RESTARTS  UPTIME\n\
             4242  node  ready     45.0   1.2    12          0         1   1m 5s\n"
        );
    }
}
