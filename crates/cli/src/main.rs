//! `offload`: the command line. One file per subcommand in `commands/`, dispatched from one
//! `match` here.

mod commands;
mod exit;

use clap::{Parser, Subcommand};

/// Run background jobs in separate OS processes.
#[derive(Debug, Parser)]
#[command(name = "offload", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing's EnvFilter syntax), e.g. `debug` or `offload=trace`.
    /// (Default: `warn` for client commands, `info` for `serve`.)
    #[arg(long, global = true, env = "OFFLOAD_LOG")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one job in a fresh process and print its result.
    Run(commands::run::RunArgs),
    /// Run the daemon: a durable job queue with an HTTP API (embedded SQLite).
    Serve(commands::serve::ServeArgs),
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(cli.log.as_deref().unwrap_or(
            match cli.command {
                Command::Serve(_) => "info,offload::job=warn",
                _ => "warn",
            },
        )))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("offload: cannot start the runtime: {e}");
            std::process::exit(exit::INTERNAL);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => commands::run::run(args).await,
            Command::Serve(args) => commands::serve::run(args).await,
        }
    });
    let code = match code {
        Ok(code) => code,
        Err(e) => {
            eprintln!("offload: {e:#}");
            exit::USAGE
        }
    };
    // Interrupted: the registry killed the job; say so in the exit status.
    if let Some(signal) = offload_process::registry::received_signal() {
        std::process::exit(128 + signal);
    }
    std::process::exit(code);
}
