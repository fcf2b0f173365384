//! `offload submit --unique` and `--after`, as reviewed snapshots
//! (`tests/snapshots/submit_flags__*.snap`): the real `offload` binary against a real
//! `offload serve`. A second `--unique while-active` submit of an unfinished job prints the
//! first job's id (and says so on stderr); `--after` makes a `waiting` job that `status` shows
//! with what it waits for; a bad `--after` is refused naming the field. Jobs are kept
//! unfinished by a paused job name.

mod common;

use common::cli::{offload, redacted, Out};
use common::{repo_root, Daemon};

fn snapshot(name: &str, out: &Out) {
    redacted().bind(|| insta::assert_snapshot!(name, out.transcript()));
}

fn ok(server: &str, args: &[&str]) -> String {
    let out = offload(Some(server), args);
    assert_eq!(out.code, 0, "offload {args:?}: {out:?}");
    out.stdout.trim().to_owned()
}

#[test]
fn unique_and_after_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(
        &repo_root().join("examples/jobs"),
        &tmp.path().join("data"),
        &[],
    );
    let s = d.url.as_str();
    ok(s, &["pause", "--job", "hello"]);

    let first = ok(s, &["submit", "hello", "--unique", "while-active"]);
    let again = offload(Some(s), &["submit", "hello", "--unique", "while-active"]);
    assert_eq!(again.stdout.trim(), first, "the unfinished job is returned");
    snapshot("unique_again", &again);
    let other = ok(
        s,
        &[
            "submit",
            "hello",
            "--unique",
            "while-active",
            "-p",
            r#"{"name": "b"}"#,
        ],
    );
    assert_ne!(other, first, "other params make another job");
    snapshot(
        "arg_bad_unique",
        &offload(Some(s), &["submit", "hello", "--unique", "forever"]),
    );

    let waiting = ok(
        s,
        &[
            "submit",
            "primes",
            "--after",
            &first,
            "--after",
            &other,
            "--after-always",
        ],
    );
    snapshot("status_waiting", &offload(Some(s), &["status", &waiting]));
    snapshot(
        "after_unknown",
        &offload(
            Some(s),
            &[
                "submit",
                "primes",
                "--after",
                "01900000-0000-7000-8000-000000000000",
            ],
        ),
    );
    snapshot(
        "after_not_an_id",
        &offload(Some(s), &["submit", "primes", "--after", "yesterday"]),
    );
}
