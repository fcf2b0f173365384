//! `offload cancel`: cancel a job (a running one is killed); prints its state.

use clap::Args;
use offload_api::JobState;

use crate::client::Client;

/// Arguments of `offload cancel`.
#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The job's id.
    id: String,
}

pub(crate) async fn run(args: CancelArgs, client: &Client) -> anyhow::Result<i32> {
    let r = client.cancel(&args.id).await?;
    match r.state {
        JobState::Cancelled => println!("{} cancelled", r.id),
        // Killing takes a moment; the daemon answered before the process was gone.
        JobState::Running => println!("{} running (cancel requested: it is being killed)", r.id),
        other => println!(
            "{} {} (already over: nothing to cancel)",
            r.id,
            other.as_str()
        ),
    }
    Ok(crate::exit::OK)
}
