//! A Rust worker whose every job prints `lines` numbered lines to stdout, one to stderr and an
//! unterminated piece, then returns at once (the server's `logs_exact` test: every line a job
//! printed before its answer is that job's).

use offload_worker::{Context, JobError, Worker};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Params {
    #[serde(default = "default_tag")]
    tag: String,
    #[serde(default = "default_lines")]
    lines: usize,
    #[serde(default = "default_width")]
    width: usize,
    /// Also the stderr line and the unterminated piece.
    #[serde(default = "yes")]
    tail: bool,
}

fn yes() -> bool {
    true
}

fn default_tag() -> String {
    "burst".into()
}

fn default_lines() -> usize {
    1000
}

fn default_width() -> usize {
    6
}

async fn burst(p: Params, _ctx: Context) -> Result<Value, JobError> {
    for i in 0..p.lines.min(10_000_000) {
        println!("{} {:0width$}", p.tag, i, width = p.width.min(20));
    }
    if p.tail {
        eprintln!("{} err", p.tag);
        print!("{} tail", p.tag);
    }
    Ok(json!({ "tag": p.tag }))
}

fn main() {
    Worker::new().default_handler(burst).run()
}
