//! ChildJob against real processes. Every containment claim is checked by reading the process
//! table (`/proc`), never by sleeping and hoping.

use std::process::Stdio;
use std::time::Duration;

use offload_conformance::repo_root;
use offload_process::{
    live_group_members, ChildJob, ChildJobConfig, ExecError, ExecOptions, Limit, Mode, Outcome,
    ParamsVia, ProcessEvent, ResourceLimits, Runtime,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

mod common;

use common::*;

#[tokio::test]
async fn kill_of_a_sigterm_ignorer_escalates_and_leaves_no_process_of_its_group() {
    let jobs = fixture_jobs();
    let p = jobs
        .exec("ignore-term", Value::Null, ExecOptions::default())
        .await
        .unwrap();
    let mut events = p.events();
    let child: u32 = loop {
        if let ProcessEvent::Log { line, .. } = events.recv().await.unwrap() {
            if let Some(pid) = line.strip_prefix("ignoring TERM, child ") {
                break pid.parse().unwrap();
            }
        }
    };
    assert!(alive(child));
    let outcome = p.kill(Duration::from_millis(300)).await;
    assert_eq!(
        outcome,
        Outcome::Killed {
            signal: libc::SIGKILL
        }
    );
    assert!(
        live_group_members(p.pid()).is_empty(),
        "the group of {} survived",
        p.pid()
    );
    assert!(
        !alive(child),
        "the SIGTERM-ignoring grandchild {child} survived"
    );
    assert!(jobs.pids().is_empty());
}

#[tokio::test]
async fn kill_reaches_grandchildren_that_left_the_group() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("pids");
    let jobs = fixture_jobs();
    let p = jobs
        .exec(
            "grandchildren",
            Value::Null,
            ExecOptions::default().env("PIDFILE", pidfile.to_string_lossy()),
        )
        .await
        .unwrap();
    wait_until(
        "the fixture wrote its pids",
        Duration::from_secs(10),
        || pidfile.exists(),
    )
    .await;
    let pids = read_pids(&pidfile);
    assert_eq!(pids.len(), 4, "{pids:?}");
    assert!(pids.iter().all(|&pid| alive(pid)));
    let outcome = p.kill(Duration::from_millis(500)).await;
    assert!(matches!(outcome, Outcome::Killed { .. }), "{outcome:?}");
    for pid in pids {
        assert!(!alive(pid), "process {pid} outlived the killed job");
    }
}

#[tokio::test]
async fn sigkill_of_the_supervisor_leaves_no_child_or_grandchild() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("pids");
    let mut supervisor = tokio::process::Command::new(SUPERVISOR)
        .arg(fixtures())
        .arg("grandchildren")
        .env("PIDFILE", &pidfile)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(supervisor.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let worker: u32 = first.strip_prefix("pid ").unwrap().parse().unwrap();
    wait_until(
        "the fixture wrote its pids",
        Duration::from_secs(10),
        || pidfile.exists(),
    )
    .await;
    let mut pids = read_pids(&pidfile);
    pids.push(worker);
    assert!(pids.iter().all(|&pid| alive(pid)), "{pids:?}");

    supervisor.start_kill().unwrap(); // SIGKILL: no destructor, no handler runs
    supervisor.wait().await.unwrap();
    wait_until(
        "every child and grandchild of the SIGKILLed supervisor is gone",
        Duration::from_secs(10),
        || pids.iter().all(|&pid| !alive(pid)),
    )
    .await;
}

#[tokio::test]
async fn sigterm_of_the_supervisor_runs_the_registry() {
    let mut supervisor = tokio::process::Command::new(SUPERVISOR)
        .arg(fixtures())
        .arg("ignore-term")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(supervisor.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let worker: u32 = first.strip_prefix("pid ").unwrap().parse().unwrap();
    let sup_pid = i32::try_from(supervisor.id().unwrap()).unwrap();
    // SAFETY-free: libc::kill on a pid we own.
    assert_eq!(unsafe_kill(sup_pid, libc::SIGTERM), 0);
    let status = supervisor.wait().await.unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    wait_until(
        "the registry ended the worker group",
        Duration::from_secs(10),
        || live_group_members(worker).is_empty(),
    )
    .await;
}

/// The registry's handlers are in place as soon as a ChildJob is made: a SIGTERM at once
/// (the fixture raises it before it awaits anything) runs the registry's shutdown and exits
/// 143. When a task of their own registered them, such a signal took the default action
/// (status: killed by signal 15; the workers then died by their parent-death signal alone,
/// without the graceful shutdown).
#[tokio::test]
async fn sigterm_right_after_the_child_job_is_made_runs_the_registry() {
    let status = tokio::process::Command::new(SUPERVISOR)
        .arg(fixtures())
        .arg("ignore-term")
        .arg("--term-at-once")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
}

/// The same for a ChildPool: a SIGTERM while its workers start runs the registry (exit 143),
/// whose shutdown ends the workers started so far. (The handlers used to be installed only
/// once `min` workers were ready.)
#[tokio::test]
async fn sigterm_while_a_pool_starts_runs_the_registry() {
    let jobs = offload_conformance::jobs_dir();
    let status = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(SUPERVISOR)
            .arg(&jobs)
            .arg("--pool-term-at-start")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .status(),
    )
    .await
    .expect("the fixture ended")
    .unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
}

#[expect(unsafe_code, reason = "sending a signal to a child of this test")]
fn unsafe_kill(pid: i32, sig: i32) -> i32 {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) }
}

#[tokio::test]
async fn registry_shutdown_all_ends_every_process() {
    let out = tokio::process::Command::new(SUPERVISOR)
        .arg(fixtures())
        .arg("ignore-term")
        .arg("--shutdown-all")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let worker: u32 = text
        .lines()
        .find_map(|l| l.strip_prefix("pid "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(text.contains(r#""outcome":"killed""#), "{text}");
    wait_until(
        "the registry ended the worker group",
        Duration::from_secs(10),
        || live_group_members(worker).is_empty(),
    )
    .await;
}

#[tokio::test]
async fn every_path_trick_is_refused() {
    let jobs = fixture_jobs();
    for name in [
        "../Cargo",
        "/bin/sh",
        "a/../../x",
        "x\0y",
        "..",
        "jobs//x",
        "",
    ] {
        let err = jobs
            .exec(name, Value::Null, ExecOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ExecError::Resolve(_)), "{name:?}: {err}");
    }
    assert!(jobs.pids().is_empty());
}

#[tokio::test]
async fn a_memory_hog_ends_with_a_resource_limit() {
    let jobs = fixture_jobs();
    let p = jobs
        .exec(
            "memhog",
            json!({"bytes": 4_u64 << 30}),
            ExecOptions::default().limits(ResourceLimits::default().address_space(1 << 30)),
        )
        .await
        .unwrap();
    assert_eq!(
        p.outcome().await,
        Outcome::ResourceLimit {
            which: Limit::Memory
        }
    );
}

#[tokio::test]
async fn a_cpu_hog_ends_with_a_resource_limit() {
    let dir = tempfile::tempdir().unwrap();
    let spin = dir.path().join("spin");
    std::fs::write(&spin, "#!/bin/sh\nwhile :; do :; done\n").unwrap();
    make_executable(&spin);
    let jobs = ChildJob::new(ChildJobConfig::with_jobs_dir(dir.path()).handle_signals(false));
    let p = jobs
        .exec(
            "spin",
            Value::Null,
            ExecOptions::default().limits(ResourceLimits::default().cpu_seconds(1)),
        )
        .await
        .unwrap();
    assert_eq!(
        p.outcome().await,
        Outcome::ResourceLimit { which: Limit::Cpu }
    );
}

#[tokio::test]
async fn an_ee_core_job_runs_unchanged_with_its_events() {
    let jobs = fixture_jobs();
    let mut events = jobs.events();
    let p = jobs
        .exec(
            "eecore-timer",
            json!({"jobId": "t1", "ticks": 3}),
            ExecOptions::default(),
        )
        .await
        .unwrap();
    let outcome = p.exited().await;
    let mut numbers = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let ProcessEvent::Event {
            name, data, pid, ..
        } = ev
        {
            assert_eq!(pid, p.pid());
            assert_eq!(name, "job-timer-progress-t1");
            numbers.push(data["number"].as_u64().unwrap());
        }
    }
    assert_eq!(numbers, vec![1, 2, 3]);
    assert_eq!(outcome, Outcome::Succeeded { value: Value::Null });
}

#[tokio::test]
async fn crashes_exits_and_protocol_violations_are_typed() {
    let jobs = fixture_jobs();
    let run = |name: &'static str| {
        let jobs = jobs.clone();
        async move {
            let p = jobs
                .exec(name, Value::Null, ExecOptions::default())
                .await
                .unwrap();
            let o = p.exited().await;
            assert!(
                live_group_members(p.pid()).is_empty(),
                "{name}: group survived"
            );
            (o, p.stderr_tail())
        }
    };
    let (crash, tail) = run("crash").await;
    assert_eq!(
        crash,
        Outcome::Crashed {
            signal: libc::SIGSEGV
        }
    );
    assert_eq!(tail, vec!["about to crash".to_owned()]);
    assert_eq!(run("exit-quietly").await.0, Outcome::Exited { code: 7 });
    assert!(matches!(
        run("violate").await.0,
        Outcome::ProtocolError { .. }
    ));
}

#[tokio::test]
async fn a_flooding_job_is_read_line_by_line_with_bounded_lines() {
    let jobs = fixture_jobs();
    let p = jobs
        .exec("flood", Value::Null, ExecOptions::default())
        .await
        .unwrap();
    let mut events = p.events();
    let mut lines = 0usize;
    let mut longest = 0usize;
    let mut saw_truncated = false;
    loop {
        match events.recv().await {
            Ok(ProcessEvent::Log { line, .. }) => {
                lines += 1;
                longest = longest.max(line.len());
                saw_truncated |= line.ends_with("[truncated]");
            }
            Ok(ProcessEvent::Exited { outcome, .. }) => {
                assert_eq!(outcome, Outcome::Exited { code: 3 });
                break;
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(lines > 0);
    assert!(saw_truncated, "the 1 MiB line was not cut");
    assert!(longest <= offload_process::MAX_LOG_LINE + 32, "{longest}");
}

#[tokio::test]
async fn a_timeout_cancels_then_reports_timed_out() {
    let (_dir, jobs) = native_jobs(&["sleep"]);
    let p = jobs
        .exec(
            "sleep",
            json!({"ms": 60_000}),
            ExecOptions::default().timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    assert_eq!(p.outcome().await, Outcome::TimedOut);
    assert_eq!(p.exited().await, Outcome::TimedOut);
    assert!(live_group_members(p.pid()).is_empty());
}

#[tokio::test]
async fn a_timeout_kills_a_job_that_ignores_cancel() {
    let jobs = fixture_jobs();
    let mut opts = ExecOptions::default().timeout(Duration::from_millis(200));
    opts.cancel_grace = Duration::from_millis(200);
    let p = jobs.exec("ignore-term", Value::Null, opts).await.unwrap();
    assert_eq!(p.exited().await, Outcome::TimedOut);
    assert!(live_group_members(p.pid()).is_empty());
}

#[tokio::test]
async fn command_mode_takes_params_on_stdin_or_in_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let upper = dir.path().join("upper");
    std::fs::write(&upper, "#!/bin/sh\ntr a-z A-Z\n").unwrap();
    let greet = dir.path().join("greet");
    std::fs::write(&greet, "#!/bin/sh\necho \"hi $1, you are $2\"\n").unwrap();
    let fail = dir.path().join("fail");
    std::fs::write(&fail, "#!/bin/sh\necho nope >&2\nexit 4\n").unwrap();
    for f in [&upper, &greet, &fail] {
        make_executable(f);
    }
    let jobs = ChildJob::new(ChildJobConfig::with_jobs_dir(dir.path()).handle_signals(false));
    let stdin = ExecOptions::default().mode(Mode::Command(ParamsVia::Stdin));
    let p = jobs
        .exec("upper", json!("hello"), stdin.clone())
        .await
        .unwrap();
    assert_eq!(
        p.outcome().await,
        Outcome::Succeeded {
            value: json!("HELLO")
        }
    );

    let args = ExecOptions::default()
        .mode(Mode::Command(ParamsVia::Args))
        .args(["{params.name}", "{params.age}"]);
    let p = jobs
        .exec("greet", json!({"name": "Ann", "age": 7}), args)
        .await
        .unwrap();
    assert_eq!(
        p.outcome().await,
        Outcome::Succeeded {
            value: json!("hi Ann, you are 7")
        }
    );

    let p = jobs.exec("fail", Value::Null, stdin).await.unwrap();
    assert_eq!(p.outcome().await, Outcome::Exited { code: 4 });
    assert_eq!(p.stderr_tail(), vec!["nope".to_owned()]);
}

#[tokio::test]
async fn call_reaches_the_running_job_instance() {
    let jobs = ChildJob::new(
        ChildJobConfig::with_jobs_dir(repo_root().join("examples/jobs")).handle_signals(false),
    );
    let p = jobs
        .exec(
            "timer",
            json!({"jobId": "c1", "ticks": 40}),
            ExecOptions::default(),
        )
        .await
        .unwrap();
    let answer = p.call("pause", vec![]).await.unwrap();
    assert_eq!(answer, json!("paused"));
    let missing = p.call("no_such_function", vec![]).await;
    assert!(
        matches!(&missing, Err(offload_process::CallError::Failed(e)) if e.name == "NoSuchFunction"),
        "{missing:?}"
    );
    assert!(p.outcome().await.is_success());
}

#[tokio::test]
async fn create_process_then_dispatch_answers_as_events() {
    let jobs = fixture_jobs();
    let p = jobs
        .create_process(Runtime::Program(RUST_WORKER.into()), ExecOptions::default())
        .await
        .unwrap();
    let mut events = p.events();
    let id = p.dispatch("run", "echo", vec![json!({"x": 1})]).unwrap();
    let answer = loop {
        if let ProcessEvent::Answer {
            id: got, result, ..
        } = events.recv().await.unwrap()
        {
            assert_eq!(got, id);
            break result;
        }
    };
    assert_eq!(answer, Ok(json!({"x": 1})));
    assert!(p.ready().await.is_some());
    let outcome = p.kill(Duration::from_millis(500)).await;
    assert!(matches!(outcome, Outcome::Killed { .. }), "{outcome:?}");
}

#[tokio::test]
async fn dropping_the_last_handle_kills_the_processes() {
    let (_dir, jobs) = native_jobs(&["sleep"]);
    let p = jobs
        .exec("sleep", json!({"ms": 60_000}), ExecOptions::default())
        .await
        .unwrap();
    let pid = p.pid();
    assert!(p.ready().await.is_some());
    drop(jobs);
    assert_eq!(
        p.exited().await,
        Outcome::Killed {
            signal: libc::SIGKILL
        }
    );
    assert!(live_group_members(pid).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_spares_run_one_job_each_and_die_with_their_manager() {
    let jobs = ChildJob::new(
        ChildJobConfig::with_jobs_dir(offload_conformance::jobs_dir())
            .handle_signals(false)
            .warm_spare(true),
    );
    let mut pids = Vec::new();
    for (i, job) in ["echo.js", "echo.js", "echo.py", "echo.py", "echo.js"]
        .iter()
        .enumerate()
    {
        let p = jobs
            .exec(job, json!({"i": i}), ExecOptions::default())
            .await
            .unwrap();
        assert_eq!(
            p.outcome().await,
            Outcome::Succeeded {
                value: json!({"i": i})
            },
            "{job}"
        );
        p.exited().await;
        pids.push(p.pid());
    }
    let distinct: std::collections::HashSet<_> = pids.iter().collect();
    assert_eq!(
        distinct.len(),
        pids.len(),
        "a process ran two jobs: {pids:?}"
    );
    // The spares waiting now die with the manager.
    wait_until("spares are started", Duration::from_secs(20), || {
        jobs.spare_pids().len() == 2
    })
    .await;
    let spares = jobs.spare_pids();
    assert!(jobs.pids().is_empty(), "spares are not jobs");
    drop(jobs);
    wait_until("spares are gone", Duration::from_secs(10), || {
        spares.iter().all(|&p| !alive(p))
    })
    .await;
}
