//! `offload run` prints every line its job printed, before the job's result: the lines come
//! through a reliable sink, so a job printing faster than the terminal reads waits on its own
//! writes instead of losing lines (through the event stream, a job printing 100,000 lines lost
//! 25-41 % of them).

mod common;

use std::process::Command;

use common::OFFLOAD;

#[test]
fn every_line_the_job_printed_is_shown_before_its_result() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("chatty.js"),
        "module.exports = async (p) => {\n\
         for (let i = 0; i < p.n; i++) console.log('line ' + i);\n\
         console.error('last words');\n\
         return { printed: p.n };\n};\n",
    )
    .unwrap();
    let n = 50_000;
    let out = Command::new(OFFLOAD)
        .args(["run", "chatty", "--quiet", "--params"])
        .arg(format!("{{\"n\": {n}}}"))
        .arg("--jobs")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        &stderr[stderr.len().saturating_sub(2000)..]
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(lines.len(), n, "lines shown");
    assert!(
        lines
            .iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line {i}")),
        "in order"
    );
    assert!(stderr.contains("last words"), "stderr lines too");
    assert!(stdout.contains("\"printed\": 50000"), "{stdout}");
}
