//! `offload result`: a job's result on stdout (its error on stderr), exit code by outcome;
//! `--wait` waits for the end, showing progress live.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use offload_api::JobResult;

use crate::client::{Client, ClientError, Outcome, Polled};
use crate::exit;
use crate::progress::Progress;

/// Arguments of `offload result`.
#[derive(Debug, Args)]
pub(crate) struct ResultArgs {
    /// The job's id.
    id: String,
    /// Wait for the job to end: until it does, or at most SECS seconds.
    #[arg(long, short, value_name = "SECS", num_args = 0..=1, default_missing_value = "inf")]
    wait: Option<f64>,
    /// Print the whole outcome (`{id, state, result, error}`) as JSON.
    #[arg(long)]
    json: bool,
    /// Do not show progress even on a terminal.
    #[arg(long, short)]
    quiet: bool,
}

pub(crate) async fn run(args: ResultArgs, client: &Client) -> anyhow::Result<i32> {
    let limit = match args.wait {
        None => Some(Duration::ZERO),
        Some(s) if s.is_infinite() && s > 0.0 => None,
        Some(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => anyhow::bail!("--wait takes a number of seconds, not {s}"),
    };
    let outcome = if limit == Some(Duration::ZERO) {
        match client.result(&args.id, Duration::ZERO).await? {
            Polled::Done(r) => Some(r),
            Polled::Pending(p) => {
                eprintln!(
                    "offload: job {} is not over yet: {} (wait for it with --wait)",
                    p.id,
                    p.state.as_str()
                );
                return Ok(exit::PENDING);
            }
        }
    } else {
        await_outcome(client, &args.id, &args.id, limit, !args.quiet).await?
    };
    match outcome {
        Some(o) => print_outcome(&o, &args.id, args.json),
        None => {
            eprintln!("offload: job {} is not over yet", args.id);
            Ok(exit::PENDING)
        }
    }
}

/// Prints an outcome: the result (pretty JSON) on stdout, or the error on stderr; `json`
/// prints the whole outcome on one line instead. Returns the outcome's exit code.
pub(crate) fn print_outcome(o: &JobResult, label: &str, json: bool) -> anyhow::Result<i32> {
    if json {
        println!("{}", serde_json::to_string(o)?);
        return Ok(o.exit_code());
    }
    match (&o.state, &o.error) {
        (offload_api::JobState::Succeeded, _) => {
            let v = o.result.clone().unwrap_or(Value::Null);
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        (offload_api::JobState::Cancelled, _) => {
            eprintln!("offload: job {label} was cancelled");
        }
        (_, Some(e)) => {
            eprintln!("offload: job {label} failed: {}: {}", e.name, e.message);
            if let Some(stack) = e
                .stack
                .as_deref()
                .map(str::trim_end)
                .filter(|s| !s.is_empty())
            {
                eprintln!("{stack}");
            }
        }
        (state, None) => eprintln!("offload: job {label} ended {}", state.as_str()),
    }
    Ok(o.exit_code())
}

/// Waits for a job's end (at most `limit`; `None`: as long as it takes), showing its progress
/// and events from `GET /v1/events?id=` while the result is long-polled. `None` when the
/// limit ran out first.
pub(crate) async fn await_outcome(
    client: &Client,
    id: &str,
    label: &str,
    limit: Option<Duration>,
    show: bool,
) -> Result<Option<JobResult>, ClientError> {
    let deadline = limit.map(|l| Instant::now() + l);
    let remaining = || {
        deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        })
    };
    // Subscribed before the first poll, so nothing between the two is missed. The events are
    // for display only; the long poll decides the end, so a lost stream costs nothing.
    let mut events = client.events(Some(id)).await.ok();
    let progress = Progress::new(label, show);
    // Where it is now (the stream only tells what changes from here on).
    match client.result(id, Duration::ZERO).await {
        Ok(Polled::Done(r)) => {
            progress.finish();
            return Ok(Some(r));
        }
        Ok(Polled::Pending(p)) => {
            progress.label(format!("{label} ({})", p.state.as_str()));
            if let Some(data) = &p.progress {
                progress.update(data);
            }
        }
        Err(e) => {
            progress.finish();
            return Err(e);
        }
    }
    let mut poll = Box::pin(client.result(id, remaining()));
    let outcome = loop {
        tokio::select! {
            polled = &mut poll => match polled {
                Err(e) => {
                    progress.finish();
                    return Err(e);
                }
                Ok(Polled::Done(r)) => break Some(r),
                Ok(Polled::Pending(_)) if remaining().is_zero() => break None,
                Ok(Polled::Pending(_)) => poll = Box::pin(client.result(id, remaining())),
            },
            ev = async { events.as_mut()?.next().await.ok().flatten() }, if events.is_some() => {
                match ev {
                    Some(ev) => on_event(client, id, label, &progress, &ev.name, &ev.data).await,
                    None => events = None,
                }
            }
        }
    };
    progress.finish();
    Ok(outcome)
}

async fn on_event(
    client: &Client,
    id: &str,
    label: &str,
    progress: &Progress,
    name: &str,
    data: &str,
) {
    let Ok(data) = serde_json::from_str::<Value>(data) else {
        return;
    };
    match name {
        "progress" => progress.update(&data["data"]),
        "job_event" => progress.println(format!(
            "event {}: {}",
            crate::output::field(&data, "name"),
            data["data"]
        )),
        "job" => {
            let state = crate::output::field(&data, "state");
            let attempt = data["attempt"].as_u64().unwrap_or(0);
            if state == "failed" {
                // An attempt failed and a retry is due: say why.
                let why = match client.job(id).await {
                    Ok(job) => match job.get("error") {
                        Some(e) if !e.is_null() => format!(
                            ": {}: {}",
                            crate::output::field(e, "name"),
                            crate::output::field(e, "message")
                        ),
                        _ => String::new(),
                    },
                    Err(_) => String::new(),
                };
                progress.println(format!(
                    "offload: attempt {attempt} of job {label} failed{why}; retrying"
                ));
            }
            if attempt > 1 {
                progress.label(format!("{label} ({state}, attempt {attempt})"));
            } else {
                progress.label(format!("{label} ({state})"));
            }
        }
        _ => {}
    }
}
