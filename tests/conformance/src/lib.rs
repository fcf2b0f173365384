//! Support for the conformance suite and the round-trip benchmark: which worker kinds exist and
//! how to start each one.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

pub mod streams;

use offload_process::WorkerCommand;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fixture jobs folder shared by every SDK.
pub fn jobs_dir() -> PathBuf {
    repo_root().join("tests/conformance/jobs")
}

/// One kind of worker under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The Rust SDK (`conformance-worker` binary).
    Rust,
    /// The Node SDK's runner.
    Node,
    /// The Python SDK's runner.
    Python,
    /// A plain Node script using `process.send`, no SDK.
    PlainNode,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::Rust, Kind::Node, Kind::Python, Kind::PlainNode];

    /// The name used in `cases.json`'s `skip` lists.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rust => "rust",
            Kind::Node => "node",
            Kind::Python => "python",
            Kind::PlainNode => "plain-node",
        }
    }

    /// How to start a worker of this kind; `rust_worker` is the path of `conformance-worker`.
    pub fn command(self, rust_worker: &Path) -> WorkerCommand {
        let root = repo_root();
        let cmd = match self {
            Kind::Rust => WorkerCommand::new(rust_worker),
            Kind::Node => WorkerCommand::new("node")
                .arg(root.join("sdks/node/runner.js"))
                .node_channel(true),
            Kind::Python => WorkerCommand::new("python3")
                .args(["-m", "offload_worker"])
                .env("PYTHONPATH", root.join("sdks/python"))
                .env("PYTHONDONTWRITEBYTECODE", "1"),
            Kind::PlainNode => WorkerCommand::new("node")
                .arg(root.join("tests/conformance/plain-worker.js"))
                .node_channel(true),
        };
        cmd.jobs_dir(jobs_dir())
    }
}
