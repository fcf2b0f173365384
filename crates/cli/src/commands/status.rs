//! `offload status`: a job's state, attempts, progress and error, readable (`--json`: as the
//! API returns it).

use clap::Args;
use serde_json::Value;

use crate::client::Client;
use crate::output::{compact, duration_ms, field, relative, time, Table};

/// Arguments of `offload status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The job's id.
    id: String,
    /// Print the job as JSON (`GET /v1/jobs/{id}`).
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: StatusArgs, client: &Client) -> anyhow::Result<i32> {
    let job = client.job(&args.id).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
    } else {
        print!("{}", render(&job));
    }
    Ok(crate::exit::OK)
}

/// The readable summary: `key  value` lines, then the attempts as a table.
fn render(job: &Value) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        ("id", field(job, "id")),
        (
            "job",
            format!("{} (pool {})", field(job, "job"), field(job, "pool")),
        ),
        ("state", state_line(job)),
    ];
    let int = |k: &str| job.get(k).and_then(Value::as_i64);
    if let Some(t) = int("created_at") {
        lines.push(("created", format!("{} ({})", time(t), relative(t))));
    }
    if field(job, "state") == "scheduled" || field(job, "state") == "failed" {
        if let Some(t) = int("run_at") {
            lines.push(("runs at", format!("{} ({})", time(t), relative(t))));
        }
    }
    if let Some(t) = int("updated_at") {
        lines.push(("updated", format!("{} ({})", time(t), relative(t))));
    }
    lines.push((
        "attempt",
        format!(
            "{} of {}",
            int("attempt").unwrap_or(0),
            int("max_attempts").unwrap_or(0)
        ),
    ));
    if int("priority").is_some_and(|p| p != 0) {
        lines.push(("priority", field(job, "priority")));
    }
    if let Some(t) = job.get("timeout_ms").and_then(Value::as_u64) {
        lines.push(("timeout", duration_ms(t)));
    }
    if let Some(after) = job
        .get("after")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        let ids: Vec<String> = after.iter().map(|a| compact(a, 40)).collect();
        let waiting = int("waiting_on").unwrap_or(0);
        let policy = if field(job, "after_policy") == "always" {
            ", runs whatever their ends"
        } else {
            ""
        };
        lines.push((
            "after",
            format!("{} ({waiting} not over{policy})", ids.join(", ")),
        ));
    }
    if let Some(k) = job.get("idempotency_key").filter(|k| !k.is_null()) {
        lines.push(("key", compact(k, 80)));
    }
    if let Some(p) = job.get("params").filter(|p| !p.is_null()) {
        lines.push(("params", compact(p, 100)));
    }
    if let Some(p) = job.get("progress").filter(|p| !p.is_null()) {
        let pct = crate::progress::fraction(p)
            .map(|f| format!(" ({:.0}%)", f * 100.0))
            .unwrap_or_default();
        lines.push(("progress", format!("{}{pct}", compact(p, 80))));
    }
    if let Some(r) = job.get("result").filter(|r| !r.is_null()) {
        lines.push(("result", compact(r, 100)));
    }
    if let Some(e) = job.get("error").filter(|e| !e.is_null()) {
        lines.push(("error", error_line(e)));
    }
    let mut out = String::new();
    for (k, v) in lines {
        out.push_str(&format!("{k:<10}{v}\n"));
    }
    let attempts = job.get("attempts").and_then(Value::as_array);
    if let Some(attempts) = attempts.filter(|a| !a.is_empty()) {
        out.push_str("attempts\n");
        let mut t = Table::new(&["  #", "OUTCOME", ">PID", "STARTED", ">DURATION", "ERROR"]);
        for a in attempts {
            let started = a.get("started_at").and_then(Value::as_i64);
            let ended = a.get("ended_at").and_then(Value::as_i64);
            let duration = match (started, ended) {
                (Some(s), Some(e)) => duration_ms(u64::try_from(e - s).unwrap_or(0)),
                (Some(s), None) => {
                    format!("{}…", duration_ms(u64::try_from(now_ms() - s).unwrap_or(0)))
                }
                _ => "-".into(),
            };
            t.row(vec![
                format!("  {}", field(a, "attempt")),
                match a.get("outcome") {
                    Some(Value::String(o)) => o.clone(),
                    _ => "running".into(),
                },
                field(a, "pid"),
                started.map_or_else(|| "-".into(), time),
                duration,
                a.get("error")
                    .filter(|e| !e.is_null())
                    .map_or_else(String::new, error_line),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

fn state_line(job: &Value) -> String {
    let state = field(job, "state");
    if job.get("cancel_requested").and_then(Value::as_bool) == Some(true) && state == "running" {
        format!("{state} (cancel requested)")
    } else {
        state
    }
}

fn error_line(e: &Value) -> String {
    format!("{}: {}", field(e, "name"), compact(&e["message"], 120))
}

fn now_ms() -> i64 {
    offload_store::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_job_is_summarized() {
        let job = json!({"id": "0193", "job": "fails", "pool": "python", "params": {"n": 1},
            "state": "dead", "priority": 0, "run_at": 1_795_000_000_000i64,
            "created_at": 1_795_000_000_000i64, "updated_at": 1_795_000_002_500i64,
            "attempt": 2, "max_attempts": 2, "timeout_ms": null, "idempotency_key": null,
            "progress": {"done": 1, "total": 4}, "result": null,
            "error": {"name": "ValueError", "message": "boom", "stack": "..."},
            "cancel_requested": false,
            "attempts": [
              {"attempt": 1, "node": "n", "pid": 42, "started_at": 1_795_000_000_001i64,
               "ended_at": 1_795_000_000_121i64, "outcome": "failed",
               "error": {"name": "ValueError", "message": "boom"}},
              {"attempt": 2, "node": "n", "pid": 4242, "started_at": 1_795_000_001_000i64,
               "ended_at": 1_795_000_002_500i64, "outcome": "failed",
               "error": {"name": "ValueError", "message": "boom"}}]});
        let text = render(&job);
        assert!(text.contains("state     dead\n"), "{text}");
        assert!(text.contains("job       fails (pool python)\n"), "{text}");
        assert!(text.contains("attempt   2 of 2\n"), "{text}");
        assert!(
            text.contains("progress  {\"done\":1,\"total\":4} (25%)\n"),
            "{text}"
        );
        assert!(text.contains("error     ValueError: boom\n"), "{text}");
        assert!(
            text.contains("  #  OUTCOME   PID  STARTED               DURATION  ERROR\n"),
            "{text}"
        );
        assert!(
            text.contains("  1  failed     42  2026-11-18T11:06:40Z     120ms  ValueError: boom\n"),
            "{text}"
        );
        assert!(
            text.contains("  2  failed   4242  2026-11-18T11:06:41Z      1.5s  ValueError: boom\n"),
            "{text}"
        );
    }
}
