//! `--help` of `offload` and of every subcommand, as reviewed snapshots
//! (`tests/snapshots/help__*.snap`): a changed flag, default or wording shows in the diff. Help
//! is static text, so nothing is redacted (the environment is cleared: clap shows the values of
//! `env` variables).

mod common;

use common::cli::offload;

/// Every subcommand, as `offload --help` lists them (besides clap's own `help`).
const SUBCOMMANDS: &[&str] = &[
    "run",
    "serve",
    "submit",
    "status",
    "logs",
    "result",
    "cancel",
    "retry",
    "delete",
    "jobs",
    "workers",
    "broadcast",
    "cron",
    "pause",
    "resume",
    "nodes",
    "drain",
    "undrain",
    "stats",
];

/// The names under `Commands:` in a help text.
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_top_level_help_lists_every_subcommand() {
    let out = offload(None, &["--help"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(listed_commands(&out.stdout), SUBCOMMANDS, "{}", out.stdout);
    insta::assert_snapshot!("offload", out.transcript());
}

#[test]
fn each_subcommand_has_its_help() {
    for name in SUBCOMMANDS {
        let out = offload(None, &[name, "--help"]);
        assert_eq!(out.code, 0, "{name}: {out:?}");
        insta::assert_snapshot!(format!("offload_{name}"), out.transcript());
    }
    let out = offload(None, &["cron", "--help"]);
    let cron = ["list", "pause", "resume", "run"];
    assert_eq!(listed_commands(&out.stdout), cron, "{}", out.stdout);
    for sub in cron {
        let out = offload(None, &["cron", sub, "--help"]);
        assert_eq!(out.code, 0, "{out:?}");
        insta::assert_snapshot!(format!("offload_cron_{sub}"), out.transcript());
    }
    let out = offload(None, &["workers", "kill", "--help"]);
    assert_eq!(out.code, 0, "{out:?}");
    insta::assert_snapshot!("offload_workers_kill", out.transcript());
}

#[test]
fn short_help_is_the_summary() {
    let out = offload(None, &["-h"]);
    assert_eq!(out.code, 0, "{out:?}");
    insta::assert_snapshot!("offload_short", out.transcript());
}
