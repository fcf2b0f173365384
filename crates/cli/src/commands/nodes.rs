//! `offload nodes`, `offload drain`, `offload undrain`: the nodes of the daemon's store (one on
//! SQLite, every node of a PostgreSQL cluster) and taking one out for maintenance. Any node
//! takes a drain for any other.

use std::time::Duration;

use clap::Args;
use offload_api::{AfterDrain, DrainRequest, Node};
use serde_json::Value;

use crate::client::Client;
use crate::output::{duration_ms, field, Table};

/// Arguments of `offload nodes`.
#[derive(Debug, Args)]
pub(crate) struct NodesArgs {
    /// One JSON object per line (`GET /v1/nodes`).
    #[arg(long)]
    json: bool,
}

/// Arguments of `offload drain`.
#[derive(Debug, Args)]
pub(crate) struct DrainArgs {
    /// The node's id (`offload nodes` lists them).
    node: String,
    /// How long its running jobs may go on before they are handed back to the queue, e.g.
    /// `30s` (at most a day).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    deadline: Duration,
    /// Exit once drained (default: stay up, idle, until `offload undrain`).
    #[arg(long)]
    exit: bool,
}

/// Arguments of `offload undrain`.
#[derive(Debug, Args)]
pub(crate) struct UndrainArgs {
    /// The node's id.
    node: String,
}

pub(crate) async fn list(args: NodesArgs, client: &Client) -> anyhow::Result<i32> {
    let nodes = client.nodes().await?;
    if args.json {
        for n in &nodes.nodes {
            println!("{}", serde_json::to_string(n)?);
        }
    } else {
        let rows = nodes
            .nodes
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<Value>, _>>()?;
        print!("{}", render(&rows, &nodes.this));
    }
    Ok(crate::exit::OK)
}

pub(crate) async fn drain(args: DrainArgs, client: &Client) -> anyhow::Result<i32> {
    let req = DrainRequest {
        deadline_ms: Some(u64::try_from(args.deadline.as_millis()).unwrap_or(u64::MAX)),
        then: Some(if args.exit {
            AfterDrain::Exit
        } else {
            AfterDrain::Idle
        }),
    };
    let n = client.drain(&args.node, Some(&req)).await?;
    let then = if args.exit {
        "then exits"
    } else {
        "then stays idle"
    };
    println!(
        "node {} {}: running jobs have {} before they are handed back; {then}",
        n.id,
        n.state.as_str(),
        duration_ms(u64::try_from(args.deadline.as_millis()).unwrap_or(u64::MAX)),
    );
    Ok(crate::exit::OK)
}

pub(crate) async fn undrain(args: UndrainArgs, client: &Client) -> anyhow::Result<i32> {
    let n: Node = client.drain(&args.node, None).await?;
    println!("node {} {}: claiming jobs again", n.id, n.state.as_str());
    Ok(crate::exit::OK)
}

/// id (`*` marks the node that answered), host, version, state, heartbeat age, running,
/// capacity, load, load average, pools.
pub(crate) fn render(nodes: &[Value], this: &str) -> String {
    let mut t = Table::new(&[
        "ID",
        "HOST",
        "VERSION",
        "STATE",
        ">HEARTBEAT",
        ">RUNNING",
        ">SLOTS",
        ">LOAD",
        ">LOAD1",
        "POOLS",
    ]);
    for n in nodes {
        let id = field(n, "id");
        let id = if id == this { format!("{id} *") } else { id };
        let num = |k: &str| n.get(k).and_then(Value::as_f64);
        let pools = n
            .get("pools")
            .and_then(Value::as_array)
            .map(|p| {
                p.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        t.row(vec![
            id,
            field(n, "host"),
            field(n, "version"),
            field(n, "state"),
            n.get("heartbeat_age_ms")
                .and_then(Value::as_u64)
                .map_or_else(|| "-".into(), |ms| format!("{} ago", duration_ms(ms))),
            field(n, "running"),
            field(n, "capacity"),
            num("load").map_or_else(|| "-".into(), |l| format!("{:.0}%", l * 100.0)),
            num("load1").map_or_else(|| "-".into(), |l| format!("{l:.2}")),
            if pools.is_empty() { "-".into() } else { pools },
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nodes_are_a_table() {
        let n = [
            json!({"id": "a", "host": "h1", "version": "0.1.0", "state": "active",
            "pools": ["node", "python"], "started_at": 1, "heartbeat_at": 2,
            "heartbeat_age_ms": 1500, "running": 2, "capacity": 8, "load": 0.25, "load1": 0.5}),
            json!({"id": "b", "host": "h2", "version": "0.1.0", "state": "lost",
            "pools": [], "started_at": 1, "heartbeat_at": 2,
            "heartbeat_age_ms": 65_000, "running": 0, "capacity": 0}),
        ];
        insta::assert_snapshot!(render(&n, "a"));
    }
}
