//! What the client commands print, as reviewed snapshots (`tests/snapshots/output__*.snap`):
//! the tables (`jobs`, `status`, `workers`, `cron list`), results, and the errors with their
//! exit codes (bad arguments, unknown job and id, daemon unreachable, refused submits). The
//! real `offload` binary against a real `offload serve`; ids, times, pids, ports and paths are
//! redacted (`common::cli::redacted`). A column whose width follows a redacted value (a pid, a
//! duration) is collapsed to two spaces by the test's own filters: the exact padding is pinned
//! by the unit tests beside each table (`src/commands/*.rs`).

mod common;

use common::cli::{offload, redacted, Out};
use common::{repo_root, Daemon};

fn examples() -> std::path::PathBuf {
    repo_root().join("examples/jobs")
}

/// Runs `offload --server URL ARGS` and expects exit 0: stdout.
fn ok(server: &str, args: &[&str]) -> String {
    let out = offload(Some(server), args);
    assert_eq!(out.code, 0, "offload {args:?}: {out:?}");
    out.stdout
}

/// Snapshots `out` under `name` with the common redactions and `filters` (regex, replacement).
fn snapshot(name: &str, out: &Out, filters: &[(&str, &str)]) {
    let mut settings = redacted();
    for (re, with) in filters {
        settings.add_filter(re, *with);
    }
    settings.bind(|| insta::assert_snapshot!(name, out.transcript()));
}

/// The attempts table of `status`: pid and duration redacted, columns collapsed.
const ATTEMPTS: &[(&str, &str)] = &[
    (
        r"(?m)^  #  OUTCOME +PID  STARTED +DURATION  ERROR$",
        "  #  OUTCOME  PID  STARTED  DURATION  ERROR",
    ),
    (
        r"(?m)^  (\d+)  (\S+) +\d+  (\S+) +[0-9.]+(ms|s|m|h|d)( \d+(s|m|h))?  ",
        "  $1  $2  [PID]  $3  [DURATION]  ",
    ),
];

#[test]
fn tables_and_results() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("offload.toml");
    std::fs::write(
        &config,
        "[[cron]]\nname = \"nightly\"\ncron = \"0 3 * * *\"\njob = \"cleanup\"\nparams = { older_than_days = 7 }\n",
    )
    .unwrap();
    let d = Daemon::start_with(
        &examples(),
        &tmp.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let s = d.url.as_str();

    let out = offload(
        Some(s),
        &["submit", "hello", "--params", r#"{"steps": 1}"#, "--wait"],
    );
    snapshot("submit_wait_succeeded", &out, &[]);
    let out = offload(Some(s), &["submit", "fails", "--retries", "0", "--wait"]);
    snapshot("submit_wait_failed", &out, &[]);
    let dead = ok(s, &["jobs", "--state", "dead", "--json"]);
    let dead: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    let dead = dead["id"].as_str().unwrap().to_owned();

    snapshot("jobs_table", &offload(Some(s), &["jobs", "--table"]), &[]);
    snapshot(
        "status_dead",
        &offload(Some(s), &["status", &dead]),
        ATTEMPTS,
    );
    snapshot(
        "result_dead",
        &offload(Some(s), &["result", &dead, "--json"]),
        &[],
    );

    let later = ok(
        s,
        &[
            "submit",
            "hello",
            "--delay",
            "60s",
            "--priority",
            "-3",
            "--key",
            "order-7",
            "--params",
            r#"{"name": "later"}"#,
        ],
    );
    let later = later.trim();
    snapshot(
        "status_scheduled",
        &offload(Some(s), &["status", later]),
        &[],
    );
    snapshot(
        "result_not_over",
        &offload(Some(s), &["result", later]),
        &[],
    );
    snapshot(
        "cancel_scheduled",
        &offload(Some(s), &["cancel", later]),
        &[],
    );

    // One worker per pool that ran a job; pids, memory, CPU and uptime redacted.
    snapshot(
        "workers_table",
        &offload(Some(s), &["workers"]),
        &[
            (
                r"(?m)^ *PID +POOL +STATE +RSS MiB +HEAP MiB +CPU% +DONE +IN FLIGHT +RESTARTS +UPTIME$",
                "PID  POOL  STATE  RSS MiB  HEAP MiB  CPU%  DONE  IN FLIGHT  RESTARTS  UPTIME",
            ),
            (
                // The heap is a number once the worker answered a ping, "-" before.
                r"(?m)^ *\d+  (\S+) +(\S+) +[0-9.]+ +(?:[0-9.]+|-) +[0-9.]+ +(\d+) +(\d+) +(\d+) +\S+( \S+)?$",
                "[PID]  $1  $2  [RSS]  [HEAP]  [CPU]  $3  $4  $5  [UPTIME]",
            ),
        ],
    );
    snapshot(
        "cron_list_table",
        &offload(Some(s), &["cron", "list"]),
        &[
            (r"NEXT +STATUS", "NEXT  STATUS"),
            (r"\(\[WHEN\]\) +", "([WHEN])  "),
        ],
    );
    snapshot(
        "cron_pause",
        &offload(Some(s), &["cron", "pause", "nightly"]),
        &[],
    );
    snapshot(
        "cron_list_paused",
        &offload(Some(s), &["cron", "list"]),
        &[
            (r"NEXT +STATUS", "NEXT  STATUS"),
            (r"\(\[WHEN\]\) +", "([WHEN])  "),
        ],
    );
    ok(s, &["cron", "resume", "nightly"]);
    snapshot(
        "cron_run_unknown",
        &offload(Some(s), &["cron", "run", "nope"]),
        &[],
    );

    // Bulk retry and delete; one delete of a job that is gone.
    snapshot(
        "retry_all_dead",
        &offload(
            Some(s),
            &["retry", "--all", "--state", "dead", "--job", "fails"],
        ),
        &[],
    );
    snapshot(
        "delete_all_cancelled",
        &offload(Some(s), &["delete", "--all", "--state", "cancelled"]),
        &[],
    );
    snapshot(
        "delete_unknown_id",
        &offload(Some(s), &["delete", later]),
        &[(later, "[ID]")],
    );
    snapshot(
        "arg_delete_state_without_all",
        &offload(Some(s), &["delete", "--state", "dead"]),
        &[],
    );

    // Paused queues: a pool twice, a job name that is not paused, an unknown pool.
    snapshot(
        "pause_pool",
        &offload(Some(s), &["pause", "--pool", "node"]),
        &[],
    );
    snapshot(
        "pause_pool_again",
        &offload(Some(s), &["pause", "--pool", "node"]),
        &[],
    );
    ok(s, &["resume", "--pool", "node"]);
    snapshot(
        "resume_job_not_paused",
        &offload(Some(s), &["resume", "--job", "images/resize"]),
        &[],
    );
    snapshot(
        "pause_unknown_pool",
        &offload(Some(s), &["pause", "--pool", "nope"]),
        &[],
    );
    snapshot(
        "arg_pause_both",
        &offload(Some(s), &["pause", "--pool", "node", "--job", "hello"]),
        &[],
    );
}

#[test]
fn errors_say_what_happened_and_exit_by_the_table() {
    // Bad arguments: clap's message, exit 2, nothing sent anywhere.
    for (name, args) in [
        ("arg_unknown_subcommand", &["bogus"][..]),
        ("arg_missing_job", &["submit"][..]),
        ("arg_bad_limit", &["jobs", "--limit", "x"][..]),
        ("arg_bad_delay", &["submit", "hello", "--delay", "soon"][..]),
        ("arg_json_without_wait", &["submit", "hello", "--json"][..]),
    ] {
        snapshot(name, &offload(None, args), &[]);
    }
    // No daemon there: exit 7.
    snapshot(
        "daemon_unreachable",
        &offload(Some("http://127.0.0.1:1"), &["jobs"]),
        &[],
    );

    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(
        &examples(),
        &tmp.path().join("data"),
        &["--token", "s3cret"],
    );
    let s = d.url.as_str();
    // Refused submits: no token, a wrong token, an unknown job, a name that leaves the jobs
    // folder, params that are not JSON.
    snapshot(
        "submit_without_token",
        &offload(Some(s), &["submit", "hello"]),
        &[],
    );
    snapshot(
        "submit_wrong_token",
        &offload(Some(s), &["--token", "wrong", "submit", "hello"]),
        &[],
    );
    let t = ["--token", "s3cret"];
    let with_token = |args: &[&str]| offload(Some(s), &[&t[..], args].concat());
    snapshot(
        "submit_unknown_job",
        &with_token(&["submit", "no-such-job"]),
        &[],
    );
    snapshot(
        "submit_bad_name",
        &with_token(&["submit", "../etc/passwd"]),
        &[],
    );
    snapshot(
        "submit_bad_params",
        &with_token(&["submit", "hello", "--params", "{oops"]),
        &[],
    );
    // Unknown ids, and a retry of a job that is not dead.
    let unknown = "0193aaaa-0000-7000-8000-000000000000";
    snapshot("status_unknown_id", &with_token(&["status", unknown]), &[]);
    snapshot("result_unknown_id", &with_token(&["result", unknown]), &[]);
    snapshot("cancel_unknown_id", &with_token(&["cancel", unknown]), &[]);
    let out = with_token(&["submit", "hello", "--wait", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let id = v["id"].as_str().unwrap();
    snapshot("retry_not_dead", &with_token(&["retry", id]), &[]);
}
