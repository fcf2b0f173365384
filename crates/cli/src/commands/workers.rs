//! `offload workers`: the daemon's resident workers and their health, as a table (`--json`:
//! one JSON object per line); `offload workers kill POOL PID`: a soft or hard kill of one.

use clap::{Args, Subcommand};
use offload_api::{KillMode, KillRequest};
use serde_json::Value;

use crate::client::Client;
use crate::output::{duration_ms, field, Table};

/// Arguments of `offload workers`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct WorkersArgs {
    #[command(subcommand)]
    action: Option<WorkersAction>,
    /// One JSON object per line (`GET /v1/workers`).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum WorkersAction {
    /// Kill one worker of a pool; the pool starts a replacement. Soft (the default): it takes
    /// no new job, its running jobs and its shutdown hook may finish within the grace. Hard:
    /// the kill notice (its hard-kill hook runs), then SIGKILL after the grace.
    Kill(KillArgs),
}

#[derive(Debug, Args)]
struct KillArgs {
    /// The pool (`offload workers` lists them with their pids).
    pool: String,
    /// The worker's pid.
    pid: u32,
    /// A hard kill instead of a soft one.
    #[arg(long)]
    hard: bool,
    /// The grace before SIGKILL, in ms (default 5000; at most 600000).
    #[arg(long, value_name = "MS")]
    grace_ms: Option<u64>,
}

pub(crate) async fn run(args: WorkersArgs, client: &Client) -> anyhow::Result<i32> {
    if let Some(WorkersAction::Kill(k)) = args.action {
        let req = KillRequest {
            mode: if k.hard {
                KillMode::Hard
            } else {
                KillMode::Soft
            },
            grace_ms: k.grace_ms,
        };
        let done = client.kill_worker(&k.pool, k.pid, &req).await?;
        let mode = if k.hard { "hard" } else { "soft" };
        println!(
            "worker {} of pool {} is being killed ({mode}, grace {} ms)",
            done.pid, done.pool, done.grace_ms
        );
        return Ok(crate::exit::OK);
    }
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

/// pid, pool, state, RSS in MiB, heap in use in MiB (`-` until the worker's first pong), CPU
/// %, jobs done, in flight, restarts, uptime.
pub(crate) fn render(workers: &[Value]) -> String {
    let mut t = Table::new(&[
        ">PID",
        "POOL",
        "STATE",
        ">RSS MiB",
        ">HEAP MiB",
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
            num("heap_used").map_or_else(|| "-".into(), |b| format!("{:.1}", b / 1_048_576.0)),
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
            "rss": 47_185_920, "heap_used": 5_242_880, "cpu": 1.25, "in_flight": 0,
            "jobs_done": 12, "failures": 0, "restarts": 1, "uptime_ms": 65_000,
            "last_error": null}),
            json!({"pool": "py", "pid": 4243, "index": 0, "state": "starting",
            "rss": 0, "cpu": 0.0, "in_flight": 0, "jobs_done": 0, "failures": 0,
            "restarts": 0, "uptime_ms": 10, "last_error": null}),
        ];
        assert_eq!(
            render(&w),
            " PID  POOL  STATE     RSS MiB  HEAP MiB  CPU%  DONE  IN FLIGHT  RESTARTS  UPTIME\n\
             4242  node  ready        45.0       5.0   1.2    12          0         1   1m 5s\n\
             4243  py    starting      0.0         -   0.0     0          0         0    10ms\n"
        );
    }
}
