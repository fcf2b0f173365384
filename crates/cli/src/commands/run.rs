//! `offload run`: one job in a fresh process, progress live, result on stdout.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use offload_process::{
    ChildJob, ChildJobConfig, ExecError, ExecOptions, Mode, Outcome, OutputItem, ParamsVia,
    ProcessEvent, Receiver, ResourceLimits,
};
use serde_json::Value;

use crate::exit;
use crate::progress::Progress;

/// Arguments of `offload run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The job: a name relative to the jobs folder (`resize`, `images/resize`), or a path to it
    /// written the ee-core way, from the working directory (`./jobs/images/resize`).
    job: String,
    /// The params: JSON, or `@file.json`, or `-` for stdin.
    #[arg(short, long, default_value = "null")]
    params: String,
    /// The jobs folder.
    #[arg(long, env = "OFFLOAD_JOBS", default_value = "jobs")]
    jobs: PathBuf,
    /// Stop the job after this long (`30s`, `2m`, `500ms`).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Print the whole outcome as JSON instead of the result alone.
    #[arg(long)]
    json: bool,
    /// Run an executable that does not speak the protocol: params on stdin, result = stdout.
    #[arg(long)]
    command: bool,
    /// Limit the job's address space (`512M`, `2G`).
    #[arg(long, value_parser = parse_bytes)]
    memory: Option<u64>,
    /// Limit the job's CPU time, in seconds.
    #[arg(long)]
    cpu: Option<u64>,
    /// Do not show progress even on a terminal.
    #[arg(long, short)]
    quiet: bool,
    /// Extra arguments for native and command-mode jobs.
    #[arg(last = true)]
    args: Vec<String>,
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let mult = match s[i..]
                .to_ascii_uppercase()
                .trim_end_matches("IB")
                .trim_end_matches('B')
            {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                other => return Err(format!("unknown unit {other:?}: use K, M or G")),
            };
            (&s[..i], mult)
        }
        None => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .map(|n| n * mult)
        .map_err(|e| format!("{s:?} is not a size: {e}"))
}

fn read_params(arg: &str) -> anyhow::Result<Value> {
    let text = if arg == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read params from stdin")?
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read_to_string(path).with_context(|| format!("cannot read params file {path}"))?
    } else {
        arg.to_owned()
    };
    serde_json::from_str(&text).context("params are not valid JSON")
}

/// Lexically normalised absolute form of `p` (`.` dropped, `..` pops), without touching the
/// file system: a symlink is judged by where it sits, not where it points.
fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The job's name. A name is used as it is; a path written the ee-core way
/// (`./jobs/example/timer`, `../app/jobs/x.js`, `/abs/jobs/x`), relative to the working
/// directory, names the job it points at inside the jobs folder (extension optional). A path
/// outside the jobs folder is refused.
fn job_name(arg: &str, jobs: &Path) -> Result<String, String> {
    let path_like = arg.starts_with("./") || arg.starts_with("../") || arg.starts_with('/');
    if !path_like {
        return Ok(arg.to_owned());
    }
    let target = absolute(Path::new(arg));
    let base = absolute(jobs);
    let rel = target.strip_prefix(&base).map_err(|_| {
        format!(
            "job path {arg:?} is outside the jobs folder {} (set --jobs, or give a name relative to it)",
            jobs.display()
        )
    })?;
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let Some(last) = parts.last_mut() else {
        return Err(format!(
            "job path {arg:?} names the jobs folder itself, not a job"
        ));
    };
    for ext in [".js", ".mjs", ".cjs", ".py"] {
        if let Some(stem) = last.strip_suffix(ext) {
            *last = stem.to_owned();
            break;
        }
    }
    Ok(parts.join("/"))
}

/// Log lines waiting to be printed before the job's own writes wait for the terminal.
const LOG_BUFFER: usize = 1024;

/// How long the lines still on their way are waited for once the job has ended.
const LOG_DRAIN: Duration = Duration::from_secs(5);

pub(crate) async fn run(mut args: RunArgs) -> anyhow::Result<i32> {
    args.job = match job_name(&args.job, &args.jobs) {
        Ok(name) => name,
        Err(e) => {
            eprintln!("offload: {e}");
            return Ok(exit::USAGE);
        }
    };
    let params = read_params(&args.params)?;
    let jobs = ChildJob::new(ChildJobConfig::with_jobs_dir(&args.jobs));
    let mut limits = ResourceLimits::default();
    if let Some(m) = args.memory {
        limits = limits.address_space(m);
    }
    if let Some(c) = args.cpu {
        limits = limits.cpu_seconds(c);
    }
    let mut opts = ExecOptions::default()
        .limits(limits)
        .args(args.args.clone());
    if let Some(t) = args.timeout {
        opts = opts.timeout(t);
    }
    if args.command {
        opts = opts.mode(Mode::Command(ParamsVia::Stdin));
    }
    // The job's output lines come through a reliable sink: a job printing faster than the
    // terminal scrolls waits on its own writes, as on a terminal, instead of losing lines (a
    // job printing 100,000 lines lost 25-41 % of them through the event stream).
    let (log_tx, mut log_rx) = tokio::sync::mpsc::channel(LOG_BUFFER);
    opts = opts.log_sink(log_tx);
    // Manager-level events (receiver `job`/`all`, progress, logs, exit) are subscribed before
    // the start so none is missed; `task`-only events come from the process's own stream.
    let mut events = jobs.events();
    let process = match jobs.exec(&args.job, params, opts).await {
        Ok(p) => p,
        Err(e @ (ExecError::Resolve(_) | ExecError::CommandModeNeedsProgram { .. })) => {
            eprintln!("offload: {e}");
            return Ok(exit::USAGE);
        }
        Err(e) => bail!(e),
    };

    let bar = Progress::new(&args.job, !args.quiet);
    let mut task_events = process.events();
    let pid = process.pid();
    let outcome = loop {
        tokio::select! {
            Some(item) = log_rx.recv() => {
                if let OutputItem::Line { line, .. } = item {
                    bar.println(line);
                }
            }
            ev = task_events.recv() => {
                if let Ok(ProcessEvent::Event { name, data, receiver: Receiver::Task, .. }) = ev {
                    bar.println(format!("event {name}: {data}"));
                }
            }
            ev = events.recv() => match ev {
                Ok(ev) if ev.pid() != pid => {}
                Ok(ProcessEvent::Progress { data, .. }) => bar.update(&data),
                Ok(ProcessEvent::Event { name, data, .. }) => {
                    bar.println(format!("event {name}: {data}"));
                }
                Ok(ProcessEvent::Exited { outcome, .. }) => break outcome,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => bar.println(format!(
                    "offload: {n} progress updates or events of the job were not shown (sent faster than printed)"
                )),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break process.exited().await,
            },
        }
    };
    // Every line the job printed comes before its result (the sink closes once the output
    // pumps are done).
    while let Ok(Some(item)) = tokio::time::timeout(LOG_DRAIN, log_rx.recv()).await {
        if let OutputItem::Line { line, .. } = item {
            bar.println(line);
        }
    }
    bar.finish();
    if args.json {
        println!("{}", serde_json::to_string(&outcome)?);
    } else {
        match &outcome {
            Outcome::Succeeded { value } => println!("{}", serde_json::to_string_pretty(value)?),
            Outcome::Failed {
                name,
                message,
                stack,
            }
            | Outcome::FailedNoRetry {
                name,
                message,
                stack,
            } => {
                eprintln!("offload: job {} failed: {name}: {message}", args.job);
                if let Some(stack) = stack {
                    eprintln!("{stack}");
                }
            }
            other => {
                eprintln!("offload: job {} {other}", args.job);
                for line in process.stderr_tail().iter().rev().take(5).rev() {
                    eprintln!("  | {line}");
                }
            }
        }
    }
    Ok(exit::for_outcome(&outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert_eq!(parse_bytes("1KiB"), Ok(1024));
        assert!(parse_bytes("12X").is_err());
    }

    #[test]
    fn ee_core_paths_name_the_job_inside_the_jobs_folder() {
        let jobs = std::env::current_dir().unwrap().join("app/jobs");
        assert_eq!(job_name("images/resize", &jobs).unwrap(), "images/resize");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            job_name("./app/jobs/example/timer", &jobs).unwrap(),
            "example/timer"
        );
        assert_eq!(
            job_name("./app/jobs/example/timer.js", &jobs).unwrap(),
            "example/timer"
        );
        assert_eq!(
            job_name("./app/x/../jobs/hello.py", &jobs).unwrap(),
            "hello"
        );
        let abs = format!("{}/app/jobs/a/b", cwd.display());
        assert_eq!(job_name(&abs, &jobs).unwrap(), "a/b");
        let out = job_name("./app/jobs/../secret", &jobs).unwrap_err();
        assert!(out.contains("outside the jobs folder"), "{out}");
        assert!(job_name("../elsewhere/x", &jobs).is_err());
        assert!(job_name("./app/jobs", &jobs)
            .unwrap_err()
            .contains("jobs folder itself"));
    }
}
