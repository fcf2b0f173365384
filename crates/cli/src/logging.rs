//! The daemon's and the commands' own log on stderr: text for people (colours only on a
//! terminal), or one JSON object per line for machines (`--log-format json`).

use std::io::IsTerminal as _;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// `2026-12-03T16:00:00Z  INFO message key=value`, coloured when stderr is a terminal.
    Text,
    /// `{"timestamp", "level", "fields": {"message", …}, …}`, one object per line.
    Json,
}

/// Installs the global subscriber. `filter` is tracing's `EnvFilter` syntax.
pub(crate) fn init(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::new(filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}
