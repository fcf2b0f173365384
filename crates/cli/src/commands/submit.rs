//! `offload submit`: queue a job on the daemon; prints its id, or with `--wait` shows its
//! progress live and prints its result, exiting with the code of its outcome.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde_json::Value;

use offload_api::{AfterPolicy, Backoff, SubmitRequest, Unique};

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
    /// How a failed attempt waits before the next: `fixed:5s`, `linear:1s`, `exponential:500ms`,
    /// or a list of delays `1s,5s,30s` (past its end, the last one). Default: the daemon's
    /// (`exponential` from the pool's `backoff_ms`).
    #[arg(long, value_parser = parse_curve)]
    backoff: Option<Curve>,
    /// With `--backoff`: no retry waits longer than this (default and most: `1h`).
    #[arg(long, requires = "backoff", value_parser = humantime::parse_duration)]
    max_delay: Option<Duration>,
    /// With `--backoff`: full jitter (each delay drawn from 0 up to the curve's).
    #[arg(long, requires = "backoff")]
    jitter: bool,
    /// Keep the job this long once it has succeeded, then purge it with its result (`1h`,
    /// `30d`; default: the daemon's retention).
    #[arg(long, value_parser = humantime::parse_duration)]
    keep_result: Option<Duration>,
    /// Idempotency key: a second submit with the same key within 24 h (or `--key-ttl`) returns
    /// the first job.
    #[arg(long)]
    key: Option<String>,
    /// With `--key`: find the key's first job only if it took the key less than this long ago
    /// (`10m`, `7d`; default: the daemon's idempotency window).
    #[arg(long, requires = "key", value_parser = humantime::parse_duration)]
    key_ttl: Option<Duration>,
    /// `while-active`: while a job of the same name and params (or, with `--key`, the same
    /// key) is not finished, return it instead of queuing another.
    #[arg(long, value_enum)]
    unique: Option<UniqueArg>,
    /// Run only after this job (an id; repeat for several, at most 64): the job waits until
    /// they are all over, then runs if they all succeeded, else it is cancelled.
    #[arg(long, value_name = "ID")]
    after: Vec<String>,
    /// With `--after`: run once they are all over, whatever their ends (not only when they
    /// all succeeded).
    #[arg(long, requires = "after")]
    after_always: bool,
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

/// The values of `--unique`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum UniqueArg {
    /// One unfinished job per job name and params (or key).
    WhileActive,
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

/// The curve of `--backoff`, before `--max-delay` and `--jitter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Curve {
    Fixed(u64),
    Linear(u64),
    Exponential(u64),
    List(Vec<u64>),
}

/// Parses `--backoff`: `kind:duration` or a comma-separated list of durations.
fn parse_curve(s: &str) -> Result<Curve, String> {
    let ms = |d: &str| {
        humantime::parse_duration(d.trim())
            .map(millis)
            .map_err(|e| format!("{d:?} is not a duration: {e}"))
    };
    if let Some((kind, d)) = s.split_once(':') {
        let d = ms(d)?;
        return match kind {
            "fixed" => Ok(Curve::Fixed(d)),
            "linear" => Ok(Curve::Linear(d)),
            "exponential" => Ok(Curve::Exponential(d)),
            other => Err(format!(
                "{other:?} is not a backoff kind: fixed, linear or exponential (or a list: 1s,5s)"
            )),
        };
    }
    let list = s.split(',').map(ms).collect::<Result<Vec<_>, _>>()?;
    Ok(Curve::List(list))
}

fn backoff(curve: Curve, max_delay: Option<Duration>, jitter: bool) -> Backoff {
    let max_delay_ms = max_delay.map(millis);
    match curve {
        Curve::Fixed(delay_ms) => Backoff::Fixed {
            delay_ms,
            max_delay_ms,
            jitter,
        },
        Curve::Linear(delay_ms) => Backoff::Linear {
            delay_ms,
            max_delay_ms,
            jitter,
        },
        Curve::Exponential(delay_ms) => Backoff::Exponential {
            delay_ms,
            max_delay_ms,
            jitter,
        },
        Curve::List(delays_ms) => Backoff::List {
            delays_ms,
            max_delay_ms,
            jitter,
        },
    }
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
        backoff: args
            .backoff
            .map(|c| backoff(c, args.max_delay, args.jitter)),
        keep_result_ms: args.keep_result.map(millis),
        key_ttl_ms: args.key_ttl.map(millis),
        unique: args
            .unique
            .map(|UniqueArg::WhileActive| Unique::WhileActive),
        after: (!args.after.is_empty()).then(|| args.after.clone()),
        after_policy: args.after_always.then_some(AfterPolicy::Always),
        ..SubmitRequest::default()
    };
    let submitted = client.submit(&req).await?;
    if submitted.duplicate {
        eprintln!(
            "offload: a job with this key (or, with --unique, these params) was already \
             submitted: {} ({})",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_flags_parse_into_the_api_form() {
        assert_eq!(parse_curve("fixed:5s"), Ok(Curve::Fixed(5000)));
        assert_eq!(parse_curve("linear:250ms"), Ok(Curve::Linear(250)));
        assert_eq!(parse_curve("exponential:1s"), Ok(Curve::Exponential(1000)));
        assert_eq!(
            parse_curve("1s, 5s,30s"),
            Ok(Curve::List(vec![1000, 5000, 30_000]))
        );
        assert!(parse_curve("random:1s")
            .unwrap_err()
            .contains("not a backoff kind"));
        assert!(parse_curve("fixed:soon")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_curve("").is_err());
        assert_eq!(
            backoff(Curve::List(vec![1]), Some(Duration::from_secs(2)), true),
            Backoff::List {
                delays_ms: vec![1],
                max_delay_ms: Some(2000),
                jitter: true
            }
        );
    }
}
