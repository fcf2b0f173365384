//! The daemon's own log: no terminal escapes when stderr is a pipe; `--log-format json` writes
//! one JSON object per line (issue 12, deliverable 7).

mod common;

use common::{repo_root, Daemon};

fn jobs() -> std::path::PathBuf {
    repo_root().join("examples/jobs")
}

#[test]
fn a_log_written_to_a_pipe_has_no_escape_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::start_with(&jobs(), &tmp.path().join("data"), &[]);
    d.terminate();
    let lines = d.stderr();
    assert!(
        lines.iter().any(|l| l.contains("INFO")),
        "the log has info lines: {lines:?}"
    );
    let escaped: Vec<_> = lines.iter().filter(|l| l.contains('\u{1b}')).collect();
    assert!(
        escaped.is_empty(),
        "escape codes in a piped log: {escaped:?}"
    );
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::start_with(&jobs(), &tmp.path().join("data"), &["--log-format", "json"]);
    d.terminate();
    let lines = d.stderr();
    // The "listening on" banner is for people and stays plain text; every log line is JSON.
    let logged: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        logged.iter().any(|v| v["level"] == "INFO"
            && v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("listening"))),
        "no JSON line for the listener: {lines:?}"
    );
    for l in &lines {
        assert!(!l.contains('\u{1b}'), "escape codes: {l}");
    }
}
