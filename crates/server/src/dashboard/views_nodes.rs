//! The overview's nodes table: the nodes of the store (one on SQLite, every node of a
//! PostgreSQL cluster), from the same handler as `GET /v1/nodes`; refreshed every 5 s.

use maud::{html, Markup};
use offload_api::NodeList;

use super::layout::{self, count};

/// Id (the node that answers marked), host, version, state, heartbeat age, running, load.
pub(crate) fn nodes(list: &NodeList) -> Markup {
    html! {
        div #nodes hx-get="/ui/overview/nodes" hx-trigger="every 5s"
            hx-swap="innerHTML" hx-sync="this:queue last" {
            div.scroll { table {
                caption.sr-only { "Nodes" }
                thead { tr {
                    th scope="col" { "Node" } th scope="col" { "Host" } th scope="col" { "Version" }
                    th scope="col" { "State" } th scope="col" class="num" { "Heartbeat" }
                    th scope="col" class="num" { "Running" } th scope="col" class="num" { "Load" }
                    th scope="col" class="num" { "Load avg" }
                } }
                tbody { @for n in &list.nodes { tr data-node=(n.id) {
                    th scope="row" {
                        (n.id)
                        @if n.id == list.this { " " span.hint { "(this node)" } }
                    }
                    td { (n.host) } td { (n.version) }
                    td { span class={ "node-" (n.state.as_str()) } { (n.state.as_str()) } }
                    td.num { (layout::duration(n.heartbeat_age_ms)) " ago" }
                    td.num { (count(u64::from(n.running))) " / " (count(u64::from(n.capacity))) }
                    td.num { (n.load.map_or_else(|| "-".to_owned(), |l| format!("{:.0} %", l * 100.0))) }
                    td.num { (n.load1.map_or_else(|| "-".to_owned(), |l| format!("{l:.2}"))) }
                } } }
            } }
        }
    }
}
