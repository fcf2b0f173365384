//! `offload delete`: delete a job that is not running (cancel a running one first); with
//! `--all`, every finished job matching a filter (at most 10,000 a request; repeated until none
//! is left).

use clap::Args;
use offload_api::{BulkDelete, FinishedState};
use serde::Serialize;

use crate::client::Client;

/// The filters `retry --all` and `delete --all` share.
#[derive(Debug, Args)]
pub(crate) struct Filter {
    /// With `--all`: only jobs of this name.
    #[arg(long, value_name = "NAME", requires = "all")]
    pub(crate) job: Option<String>,
    /// With `--all`: only jobs of this pool.
    #[arg(long, value_name = "POOL", requires = "all")]
    pub(crate) pool: Option<String>,
}

/// Arguments of `offload delete`.
#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// The job's id.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<String>,
    /// Every finished job matching the filter (`--state` is required).
    #[arg(long, requires = "state")]
    all: bool,
    /// With `--all`: jobs in this state (repeat it for several).
    #[arg(long, value_enum, requires = "all")]
    state: Vec<Finished>,
    #[command(flatten)]
    filter: Filter,
}

/// A state `delete --all` takes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Finished {
    Succeeded,
    Dead,
    Cancelled,
}

/// The most requests one `--all` sends (10,000 jobs each): a bound on a filter that keeps
/// matching (jobs that die again while it runs, say).
const MAX_ROUNDS: usize = 100;

/// Sends the bulk request until no more match (or [`MAX_ROUNDS`]); returns the jobs changed.
pub(crate) async fn bulk_loop<B: Serialize>(
    client: &Client,
    action: &str,
    body: &B,
) -> anyhow::Result<u64> {
    let mut total = 0;
    for _ in 0..MAX_ROUNDS {
        let done = client.bulk(action, body).await?;
        total += done.affected;
        if !done.more || done.affected == 0 {
            break;
        }
    }
    Ok(total)
}

pub(crate) async fn run(args: DeleteArgs, client: &Client) -> anyhow::Result<i32> {
    let Some(id) = args.id else {
        let body = BulkDelete {
            states: args
                .state
                .iter()
                .map(|s| match s {
                    Finished::Succeeded => FinishedState::Succeeded,
                    Finished::Dead => FinishedState::Dead,
                    Finished::Cancelled => FinishedState::Cancelled,
                })
                .collect(),
            job: args.filter.job,
            pool: args.filter.pool,
            since: None,
            until: None,
            limit: None,
        };
        let n = bulk_loop(client, "delete", &body).await?;
        println!("{n} job{} deleted", if n == 1 { "" } else { "s" });
        return Ok(crate::exit::OK);
    };
    let r = client.delete(&id).await?;
    println!("{} deleted (was {})", r.id, r.state.as_str());
    Ok(crate::exit::OK)
}
