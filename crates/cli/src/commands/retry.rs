//! `offload retry`: queue a dead or cancelled job again, with a fresh set of attempts.

use clap::Args;

use crate::client::Client;

/// Arguments of `offload retry`.
#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    /// The job's id.
    id: String,
}

pub(crate) async fn run(args: RetryArgs, client: &Client) -> anyhow::Result<i32> {
    let r = client.retry(&args.id).await?;
    println!("{} {}", r.id, r.state.as_str());
    Ok(crate::exit::OK)
}
