//! `offload retry`: queue a dead or cancelled job again, with a fresh round of attempts
//! (numbered on: the earlier attempts and their logs stay); with
//! `--all`, every job matching a filter (at most 10,000 a request; repeated until none is
//! left).

use clap::Args;
use offload_api::{BulkRetry, RetryableState};

use crate::client::Client;
use crate::commands::delete::{bulk_loop, Filter};

/// Arguments of `offload retry`.
#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    /// The job's id.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<String>,
    /// Every job matching the filter (`--state` is required).
    #[arg(long, requires = "state")]
    all: bool,
    /// With `--all`: jobs in this state (repeat it for several).
    #[arg(long, value_enum, requires = "all")]
    state: Vec<Retryable>,
    #[command(flatten)]
    filter: Filter,
}

/// A state `retry --all` takes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Retryable {
    Dead,
    Cancelled,
}

pub(crate) async fn run(args: RetryArgs, client: &Client) -> anyhow::Result<i32> {
    let Some(id) = args.id else {
        let body = BulkRetry {
            states: args
                .state
                .iter()
                .map(|s| match s {
                    Retryable::Dead => RetryableState::Dead,
                    Retryable::Cancelled => RetryableState::Cancelled,
                })
                .collect(),
            job: args.filter.job,
            pool: args.filter.pool,
            since: None,
            until: None,
            limit: None,
        };
        let n = bulk_loop(client, "retry", &body).await?;
        println!("{n} job{} queued again", if n == 1 { "" } else { "s" });
        return Ok(crate::exit::OK);
    };
    let r = client.retry(&id).await?;
    println!("{} {}", r.id, r.state.as_str());
    Ok(crate::exit::OK)
}
