//! `offload submit`: queue a job on the daemon; prints its id, or with `--wait` shows its
//! progress live and prints its result, exiting with the code of its outcome.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde_json::Value;

use offload_api::SubmitRequest;

use crate::client::Client;
use crate::commands::result::{await_outcome, print_outcome};

/// Arguments of `offload submit`.
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The job: a name relative to the daemon's jobs folder (`resize`, `images/resize`).
    job: String,
    /// The params: JSON, or `@file.json`, or `-` for stdin.
    #[arg(short, long)]
    params: Option<String>,
    /// Higher runs first.
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i32>,
    /// Run it no sooner than this from now (`5s`, `10m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    delay: Option<Duration>,
    /// Stop an attempt after this long (`30s`, `2m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Retry a failed attempt this many times (max_attempts = retries + 1).
    #[arg(long)]
    retries: Option<u32>,
    /// Idempotency key: a second submit with the same key within 24 h returns the first job.
    #[arg(long)]
    key: Option<String>,
    /// Wait for the outcome: progress live on stderr, the result on stdout, exit code by
    /// outcome.
    #[arg(long, short)]
    wait: bool,
    /// With `--wait`: print the whole outcome (`{id, state, result, error}`) as JSON.
    #[arg(long, requires = "wait")]
    json: bool,
    /// With `--wait`: do not show progress even on a terminal.
    #[arg(long, short)]
    quiet: bool,
}

/// Reads `--params`: JSON, `@file`, or `-` for stdin.
pub(crate) fn read_params(arg: &str) -> anyhow::Result<Value> {
    let text = if arg == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read params from stdin")?
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read_to_string(path).with_context(|| format!("cannot read params file {path}"))?
    } else {
        arg.to_owned()
    };
    serde_json::from_str(&text).context("params are not valid JSON")
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) async fn run(args: SubmitArgs, client: &Client) -> anyhow::Result<i32> {
    let params = args.params.as_deref().map(read_params).transpose()?;
    let req = SubmitRequest {
        job: args.job.clone(),
        params,
        priority: args.priority,
        delay_ms: args.delay.map(millis),
        timeout_ms: args.timeout.map(millis),
        max_attempts: args.retries.map(|r| r.saturating_add(1)),
        idempotency_key: args.key,
        ..SubmitRequest::default()
    };
    let submitted = client.submit(&req).await?;
    if submitted.duplicate {
        eprintln!(
            "offload: a job with this key was already submitted: {} ({})",
            submitted.id,
            submitted.state.as_str()
        );
    }
    if !args.wait {
        println!("{}", submitted.id);
        return Ok(crate::exit::OK);
    }
    let outcome = await_outcome(
        client,
        &submitted.id.to_string(),
        &args.job,
        None,
        !args.quiet,
    )
    .await?;
    Ok(match outcome {
        Some(o) => print_outcome(&o, &args.job, args.json)?,
        None => crate::exit::PENDING,
    })
}
