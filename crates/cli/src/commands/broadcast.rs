//! `offload broadcast POOL NAME [--data JSON]`: an event to every ready worker of a pool (their
//! `onEvent` / `on_event` listeners run), and which acknowledged it in time.

use clap::Args;
use offload_api::BroadcastRequest;
use serde_json::Value;

use crate::client::Client;
use crate::output::Table;

/// Arguments of `offload broadcast`.
#[derive(Debug, Args)]
pub(crate) struct BroadcastArgs {
    /// The pool.
    pool: String,
    /// The event's name (1 to 128 bytes).
    name: String,
    /// The event's data, as JSON (at most 64 KiB; default null).
    #[arg(long, value_name = "JSON")]
    data: Option<String>,
    /// How long to wait for the acks, in ms (default 5000; at most 60000).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// The answer as one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: BroadcastArgs, client: &Client) -> anyhow::Result<i32> {
    let data = match &args.data {
        Some(text) => serde_json::from_str::<Value>(text)
            .map_err(|e| anyhow::anyhow!("--data is not JSON: {e}"))?,
        None => Value::Null,
    };
    let req = BroadcastRequest {
        name: args.name,
        data,
        timeout_ms: args.timeout_ms,
    };
    let done = client.broadcast(&args.pool, &req).await?;
    if args.json {
        println!("{}", serde_json::to_string(&done)?);
    } else if done.acks.is_empty() {
        eprintln!("pool {} has no ready worker: nothing was sent", done.pool);
    } else {
        let mut t = Table::new(&[">PID", "ACKED"]);
        for a in &done.acks {
            t.row(vec![
                a.pid.to_string(),
                if a.acked { "yes" } else { "no" }.into(),
            ]);
        }
        print!("{}", t.render());
    }
    // Some worker did not acknowledge in time: a distinct status for scripts.
    if done.acks.iter().any(|a| !a.acked) {
        return Ok(crate::exit::FAILED);
    }
    Ok(crate::exit::OK)
}
