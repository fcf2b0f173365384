//! `offload pause` and `offload resume`: a pool, or every job of a name, stops or starts
//! taking jobs (the daemon keeps the pause in its store: it survives restarts and holds on
//! every node of a shared store).

use clap::Args;
use offload_api::QueueKind;

use crate::client::Client;

/// Arguments of `offload pause` and `offload resume`: one queue.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct QueueArgs {
    /// A pool (as `offload serve` names it: `[[pool]]` names, `node`, `python`, …).
    #[arg(long, value_name = "POOL")]
    pool: Option<String>,
    /// Every job of this name, in whatever pool.
    #[arg(long, value_name = "NAME")]
    job: Option<String>,
}

pub(crate) async fn run(args: QueueArgs, pause: bool, client: &Client) -> anyhow::Result<i32> {
    let (kind, name) = match (args.pool, args.job) {
        (Some(pool), _) => (QueueKind::Pool, pool),
        (None, Some(job)) => (QueueKind::Job, job),
        (None, None) => unreachable!("clap requires one of --pool and --job"),
    };
    let action = if pause { "pause" } else { "resume" };
    let s = client.queue_action(kind, &name, action).await?;
    let what = match s.kind {
        QueueKind::Pool => "pool",
        QueueKind::Job => "job",
    };
    let now = if s.paused { "paused" } else { "resumed" };
    if s.changed {
        println!("{what} {} {now}", s.name);
    } else if s.paused {
        println!("{what} {} was already paused", s.name);
    } else {
        println!("{what} {} was not paused", s.name);
    }
    Ok(crate::exit::OK)
}
