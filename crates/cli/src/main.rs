//! `offload`: the command line. One file per subcommand in `commands/`, dispatched from one
//! `match` here.

mod client;
mod commands;
mod exit;
mod logging;
mod output;
mod progress;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Run background jobs in separate OS processes.
#[derive(Debug, Parser)]
#[command(name = "offload", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing's EnvFilter syntax), e.g. `debug` or `offload=trace`.
    /// (Default: `warn` for client commands, `info` for `serve`.)
    #[arg(long, global = true, env = "OFFLOAD_LOG")]
    log: Option<String>,
    /// Log lines as `text` (coloured only on a terminal) or `json` (one object per line).
    #[arg(
        long,
        global = true,
        env = "OFFLOAD_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: logging::LogFormat,
    /// The daemon's address, for the client commands (`submit`, `status`, `jobs`, …).
    #[arg(long, global = true, env = "OFFLOAD_SERVER", default_value = client::DEFAULT_SERVER)]
    server: String,
    /// The daemon's bearer token, for the client commands.
    #[arg(long, global = true, env = "OFFLOAD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one job in a fresh process and print its result.
    Run(commands::run::RunArgs),
    /// Run the daemon: a durable job queue with an HTTP API (embedded SQLite).
    Serve(Box<commands::serve::ServeArgs>),
    /// Queue a job on the daemon; print its id, or its result with `--wait`.
    Submit(commands::submit::SubmitArgs),
    /// Show a job: state, attempts, progress, error.
    Status(commands::status::StatusArgs),
    /// Print what a job's attempts wrote to stdout and stderr (`--follow` for new lines).
    Logs(commands::logs::LogsArgs),
    /// Print a job's result (`--wait` for the end); exit code by outcome.
    Result(commands::result::ResultArgs),
    /// Cancel a job (a running one is killed).
    Cancel(commands::cancel::CancelArgs),
    /// Queue a dead or cancelled job again (`--all`: every one matching a filter).
    Retry(commands::retry::RetryArgs),
    /// Delete a job that is not running (`--all`: every finished one matching a filter).
    Delete(commands::delete::DeleteArgs),
    /// List jobs, newest first.
    Jobs(commands::jobs::JobsArgs),
    /// Show the daemon's workers: pid, pool, state, memory, heap, CPU, jobs, restarts
    /// (`workers kill POOL PID`: kill one, soft or hard).
    Workers(commands::workers::WorkersArgs),
    /// Send an event to every ready worker of a pool; show which acknowledged it.
    Broadcast(commands::broadcast::BroadcastArgs),
    /// Cron schedules.
    Cron(commands::cron::CronArgs),
    /// Pause a pool or a job name: its jobs stay queued, none starts (running ones finish).
    Pause(commands::pause::QueueArgs),
    /// Resume a paused pool or job name.
    Resume(commands::pause::QueueArgs),
    /// The nodes of the daemon's store: state, heartbeat, running jobs, load, pools.
    Nodes(commands::nodes::NodesArgs),
    /// Take a node out: it claims nothing more, lets running jobs finish (past the deadline,
    /// hands them back), then stays idle or exits (`--exit`).
    Drain(commands::nodes::DrainArgs),
    /// Put a drained (or draining) node back to work.
    Undrain(commands::nodes::UndrainArgs),
    /// Show the job history: per minute (or hour) submitted, succeeded, failed, dead, run time
    /// and queue wait p50/p95.
    Stats(commands::stats::StatsArgs),
}

fn main() {
    let cli = Cli::parse();
    logging::init(
        cli.log.as_deref().unwrap_or(match cli.command {
            Command::Serve(_) => "info,offload::job=warn",
            _ => "warn",
        }),
        cli.log_format,
    );
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
    let (server, token) = (cli.server, cli.token);
    let code = runtime.block_on(async {
        let client = || client::Client::new(&server, token.clone());
        match cli.command {
            Command::Run(args) => commands::run::run(args).await,
            Command::Serve(args) => commands::serve::run(*args).await,
            Command::Submit(args) => commands::submit::run(args, &client()?).await,
            Command::Status(args) => commands::status::run(args, &client()?).await,
            Command::Logs(args) => commands::logs::run(args, &client()?).await,
            Command::Result(args) => commands::result::run(args, &client()?).await,
            Command::Cancel(args) => commands::cancel::run(args, &client()?).await,
            Command::Retry(args) => commands::retry::run(args, &client()?).await,
            Command::Delete(args) => commands::delete::run(args, &client()?).await,
            Command::Jobs(args) => commands::jobs::run(args, &client()?).await,
            Command::Workers(args) => commands::workers::run(args, &client()?).await,
            Command::Broadcast(args) => commands::broadcast::run(args, &client()?).await,
            Command::Cron(args) => commands::cron::run(args, &client()?).await,
            Command::Pause(args) => commands::pause::run(args, true, &client()?).await,
            Command::Resume(args) => commands::pause::run(args, false, &client()?).await,
            Command::Nodes(args) => commands::nodes::list(args, &client()?).await,
            Command::Drain(args) => commands::nodes::drain(args, &client()?).await,
            Command::Undrain(args) => commands::nodes::undrain(args, &client()?).await,
            Command::Stats(args) => commands::stats::run(args, &client()?).await,
        }
    });
    let code = match code {
        Ok(code) => code,
        Err(e) => {
            eprintln!("offload: {e:#}");
            // A client command's error has its own documented code (daemon unreachable, …).
            e.downcast_ref::<client::ClientError>()
                .map_or(exit::USAGE, client::ClientError::exit_code)
        }
    };
    // Interrupted: the registry killed the job; say so in the exit status.
    if let Some(signal) = offload_process::registry::received_signal() {
        std::process::exit(128 + signal);
    }
    std::process::exit(code);
}
