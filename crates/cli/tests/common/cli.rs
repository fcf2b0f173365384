//! Runs the `offload` binary as a user would (no `OFFLOAD_*` variables inherited from the
//! environment, no stdin) and renders what it did as a transcript for the snapshots, with the
//! parts that change from run to run (ids, times, ports, pids, temporary paths) redacted.
#![allow(dead_code, unreachable_pub)]

use std::process::{Command, Stdio};

use super::{repo_root, OFFLOAD};

/// What one `offload` run printed and how it exited.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// `exit: N`, then stdout and stderr under their own headings: what a snapshot shows.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Every variable the binary reads (clap's `env = …`), cleared so a developer's shell cannot
/// change what a test sees.
const ENV: &[&str] = &[
    "OFFLOAD_LOG",
    "OFFLOAD_LOG_FORMAT",
    "OFFLOAD_SERVER",
    "OFFLOAD_TOKEN",
    "OFFLOAD_TOKEN_FILE",
    "OFFLOAD_JOBS",
    "OFFLOAD_DATA",
    "OFFLOAD_LISTEN",
    "OFFLOAD_TCP",
    "OFFLOAD_UDP",
    "OFFLOAD_LINES_ALLOW",
    "OFFLOAD_STORE",
];

/// `offload ARGS` (with `--server SERVER` first when given), run from the repository root.
pub fn command(server: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new(OFFLOAD);
    if let Some(s) = server {
        c.arg("--server").arg(s);
    }
    c.args(args).current_dir(repo_root()).stdin(Stdio::null());
    for v in ENV {
        c.env_remove(v);
    }
    c
}

/// Runs `offload` to its end.
pub fn offload(server: Option<&str>, args: &[&str]) -> Out {
    let out = command(server, args).output().expect("offload runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// insta settings that redact what changes between runs: job ids and UTC times (by placeholders
/// of the same width, so that tables stay aligned), how long ago times were, ports of 127.0.0.1, worker pids in results, temporary folders and this
/// checkout's path. Tables whose
/// columns hold such values get their own filters in the test that snapshots them.
pub fn redacted() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
    );
    s.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "YYYY-MM-DDTHH:MM:SSZ");
    s.add_filter(
        r"\((in )?[0-9.]+(ms|s|m|h|d)( [0-9]+(s|m|h))?( ago)?\)",
        "([WHEN])",
    );
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s.add_filter(r#""pid": ?\d+"#, r#""pid": [PID]"#);
    let root = repo_root().canonicalize().unwrap();
    s.add_filter(&regex_escape(&root.display().to_string()), "[REPO]");
    s.add_filter(r"/tmp/[^\s/]+", "[TMP]");
    s
}

/// `text` with the characters a regex gives a meaning to escaped.
fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
