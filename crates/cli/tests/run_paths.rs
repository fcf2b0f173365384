//! `offload run` with a job written the ee-core way: a path from the working directory.

mod common;

use std::process::Command;

use common::{repo_root, OFFLOAD};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(OFFLOAD)
        .current_dir(repo_root())
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_path_inside_the_jobs_folder_runs_that_job() {
    let (code, stdout, stderr) = run(&[
        "./examples/jobs/hello",
        "--jobs",
        "examples/jobs",
        "--params",
        r#"{"name": "path", "steps": 1}"#,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Hello, path!"), "{stdout}");
    let (code, stdout, stderr) = run(&["./examples/jobs/hello.js", "--jobs", "./examples/jobs/"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Hello, world!"), "{stdout}");
}

#[test]
fn a_path_that_leaves_the_jobs_folder_is_refused() {
    let (code, _, stderr) = run(&["./examples/jobs/../../README.md", "--jobs", "examples/jobs"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("outside the jobs folder"), "{stderr}");
    let (code, _, stderr) = run(&["./crates/cli/Cargo.toml", "--jobs", "examples/jobs"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("outside the jobs folder"), "{stderr}");
}
