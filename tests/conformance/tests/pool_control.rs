//! ChildPool's control of its workers against real processes: flow control (busy/ready),
//! liveness (pings, the unresponsive replaced), health (heap, the process tree, recycling by
//! heap and CPU, Degraded and Recovered), and soft and hard kills of one worker or all, in
//! parallel or in sequence. Process-table checks read /proc; every wait is on an event or a
//! state, bounded by a generous guard.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use offload_pool::{
    ChildPool, EscalationReason, JobEvent, KillMode, KillOrder, PoolConfig, PoolError, PoolEvent,
    RecyclePolicy, RecycleReason, RunOptions, WorkerKind,
};
use offload_process::Outcome;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

/// The next pool event `pick` accepts.
async fn next<T>(
    events: &mut tokio::sync::broadcast::Receiver<PoolEvent>,
    mut pick: impl FnMut(&PoolEvent) -> Option<T>,
) -> T {
    loop {
        match events.recv().await {
            Ok(ev) => {
                if let Some(t) = pick(&ev) {
                    return t;
                }
            }
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => panic!("the pool's events ended"),
        }
    }
}

async fn run_on(pool: &ChildPool, job: &str, params: serde_json::Value) -> (Outcome, u32) {
    let r = pool.run(job, params).await.unwrap().result().await;
    let pid = r.attempts.last().map(|a| a.pid).unwrap_or(0);
    (r.outcome, pid)
}

/// A worker script: the first start runs `first` (shell), every later one is the real fixture
/// worker.
fn first_then_real(dir: &Path, name: &str, first: &str) -> PathBuf {
    let marker = dir.join(format!("{name}.started"));
    let script = dir.join(format!("{name}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ -e '{m}' ]; then exec '{w}'; fi\n: > '{m}'\n{first}\n",
            m = marker.display(),
            w = RUST_WORKER,
        ),
    )
    .unwrap();
    make_executable(&script);
    script
}

// --- flow control ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_worker_gets_no_new_job_until_it_is_ready_again() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(2, 2)).await.unwrap();
        let (outcome, busy) = run_on(&pool, "flow", json!({"busy": true})).await;
        assert!(outcome.is_success(), "{outcome:?}");
        let other = *pool.pids().iter().find(|p| **p != busy).unwrap();
        // Its `busy` came before its answer on the channel: from now on it gets nothing.
        for i in 0..20 {
            let (outcome, pid) = run_on(&pool, "echo", json!(i)).await;
            assert_eq!(outcome, Outcome::Succeeded { value: json!(i) });
            assert_eq!(pid, other, "job {i} went to the busy worker");
        }
        // The broadcast's listener sends `ready` before its ack: once acked, it takes jobs.
        let acks = pool
            .broadcast("flow-ready", json!(null), Duration::from_secs(10))
            .await
            .unwrap();
        assert!(acks.values().all(|a| *a), "{acks:?}");
        let mut seen = std::collections::HashSet::new();
        for i in 0..20 {
            seen.insert(run_on(&pool, "echo", json!(i)).await.1);
        }
        assert!(
            seen.contains(&busy),
            "the ready worker never got a job again"
        );
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_never_waits_behind_a_busy_worker_while_another_can_take_it() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(2, 3)).await.unwrap();
        let (_, busy) = run_on(&pool, "flow", json!({"busy": true})).await;
        // The other worker gets a job that runs until cancelled.
        let mut long = pool
            .run_with(
                "sleep",
                json!({"ms": 600_000}),
                RunOptions::default().with_events(),
            )
            .await
            .unwrap();
        let mut long_events = long.events().unwrap();
        let long_pid = loop {
            if let JobEvent::Started { pid, .. } = long_events.recv().await.unwrap() {
                break pid;
            }
        };
        assert_ne!(long_pid, busy);
        // No free capacity but the busy worker's: the pool grows, and the job runs on the new one.
        let (outcome, pid) = run_on(&pool, "echo", json!("x")).await;
        assert_eq!(outcome, Outcome::Succeeded { value: json!("x") });
        assert!(pid != busy && pid != long_pid, "ran on {pid}");
        long.cancel();
        let pids = pool.pids();
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&pids).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_busy_forever_does_not_hang_shutdown() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let (outcome, _) = run_on(&pool, "flow", json!({"busy": true})).await;
        assert!(outcome.is_success());
        let queued = pool.run("echo", json!(1)).await.unwrap();
        let pids = pool.pids();
        pool.shutdown(Duration::from_secs(2)).await;
        match queued.result().await.outcome {
            Outcome::Failed { name, .. } => assert_eq!(name, "ShuttingDown"),
            other => panic!("the queued job: {other:?}"),
        }
        assert_all_gone(&pids).await;
    })
    .await;
}

// --- liveness and health --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stuck_in_a_loop_after_its_handshake_is_replaced_as_unresponsive() {
    guarded(async {
        let dir = tempfile::tempdir().unwrap();
        // The first worker announces `ping`, then spins without ever reading its channel.
        let script = first_then_real(
            dir.path(),
            "spinner",
            "printf '{\"type\":\"ready\",\"protocol\":1,\"capabilities\":[\"ping\"]}\\n' >&3\nwhile :; do :; done",
        );
        let mut cfg = PoolConfig::new(WorkerKind::Program(script), fixtures())
            .size(1, 1)
            .handle_signals(false);
        cfg.health_interval = Duration::from_millis(20);
        cfg.ping_interval = Some(Duration::from_millis(50));
        cfg.ping_timeout = Duration::from_millis(300);
        let pool = ChildPool::start(cfg).await.unwrap();
        let mut events = pool.events();
        let stuck = pool.pids()[0];
        let (pid, waited) = next(&mut events, |ev| match ev {
            PoolEvent::WorkerUnresponsive { pid, waited } => Some((*pid, *waited)),
            _ => None,
        })
        .await;
        assert_eq!(pid, stuck);
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        next(&mut events, |ev| match ev {
            PoolEvent::WorkerExited {
                pid,
                expected: false,
                outcome,
            } if *pid == stuck => Some(outcome.clone()),
            _ => None,
        })
        .await;
        assert_all_gone(&[stuck]).await;
        // The replacement answers pings and runs jobs.
        let (outcome, pid) = run_on(&pool, "echo", json!(3)).await;
        assert_eq!(outcome, Outcome::Succeeded { value: json!(3) });
        assert_ne!(pid, stuck);
        let pids = pool.pids();
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&pids).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heap_from_pongs_is_shown_and_recycles_past_max_heap() {
    guarded(async {
        let mut cfg = rust_pool(1, 1).recycle(RecyclePolicy {
            max_heap: Some(32 << 20),
            ..RecyclePolicy::default()
        });
        cfg.health_interval = Duration::from_millis(20);
        cfg.ping_interval = Some(Duration::from_millis(20));
        let pool = ChildPool::start(cfg).await.unwrap();
        let mut events = pool.events();
        let first = pool.pids()[0];
        loop {
            let h = pool.health().await.unwrap();
            if let Some(w) = h.iter().find(|w| w.pid == first) {
                if let (Some(used), Some(total)) = (w.heap_used, w.heap_total) {
                    assert!(used > 0 && total >= used / 2, "{used} / {total}");
                    assert!(w.rss > 0 && w.processes >= 1);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The job keeps 64 MiB: its next pong is past the limit.
        let (outcome, pid) = run_on(&pool, "grow", json!({"bytes": 64 << 20})).await;
        assert!(outcome.is_success());
        assert_eq!(pid, first);
        next(&mut events, |ev| match ev {
            PoolEvent::WorkerRecycled {
                pid,
                reason: RecycleReason::Heap,
            } if *pid == first => Some(()),
            _ => None,
        })
        .await;
        assert_all_gone(&[first]).await;
        let (outcome, _) = run_on(&pool, "echo", json!(1)).await;
        assert!(outcome.is_success());
        let pids = pool.pids();
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&pids).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_right_after_start_reports_each_workers_memory_not_zero() {
    guarded(async {
        // No periodic sample before the question: what it answers was read for it.
        let mut cfg = rust_pool(2, 2);
        cfg.health_interval = Duration::from_secs(3600);
        let pool = ChildPool::start(cfg).await.unwrap();
        let h = pool.health().await.unwrap();
        assert_eq!(h.len(), 2, "{h:?}");
        for w in &h {
            let status = std::fs::read_to_string(format!("/proc/{}/status", w.pid)).unwrap();
            let vm_rss_kib: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap();
            assert!(w.rss > 0 && w.processes >= 1, "{w:?}");
            // The same order of size as the kernel's own figure for that process.
            assert!(
                w.rss >= vm_rss_kib * 1024 / 4 && w.rss <= vm_rss_kib * 1024 * 4,
                "{} against VmRSS {vm_rss_kib} KiB",
                w.rss
            );
        }
        let pids = pool.pids();
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&pids).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_tree_counts_and_sustained_cpu_recycles_after_the_job() {
    guarded(async {
        let mut cfg = rust_pool(1, 2).recycle(RecyclePolicy {
            max_cpu: Some(20),
            cpu_samples: 2,
            ..RecyclePolicy::default()
        });
        cfg.health_interval = Duration::from_millis(100);
        let pool = ChildPool::start(cfg).await.unwrap();
        let mut events = pool.events();
        let first = pool.pids()[0];
        let job = pool
            .run_with(
                "spin_child",
                json!(null),
                RunOptions::default().with_events(),
            )
            .await
            .unwrap();
        // The child of the job is in the worker's tree.
        loop {
            let h = pool.health().await.unwrap();
            if h.iter().any(|w| w.pid == first && w.processes >= 2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        next(&mut events, |ev| match ev {
            PoolEvent::WorkerRecycled {
                pid,
                reason: RecycleReason::Cpu,
            } if *pid == first => Some(()),
            _ => None,
        })
        .await;
        // Recycling is safe: the worker drains; its job ends only when cancelled.
        assert!(pool.pids().contains(&first));
        job.cancel();
        next(&mut events, |ev| match ev {
            PoolEvent::WorkerExited {
                pid,
                expected: true,
                ..
            } if *pid == first => Some(()),
            _ => None,
        })
        .await;
        assert_all_gone(&[first]).await;
        pool.kill().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_degrades_the_pool_and_a_quiet_window_recovers_it() {
    guarded(async {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("starts");
        // Start 1 is the real worker; starts 2 to 4 announce themselves and die; then real again.
        let script = dir.path().join("flaky.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nn=$(cat '{c}' 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > '{c}'\n\
                 if [ $n -eq 1 ] || [ $n -gt 4 ]; then exec '{w}'; fi\n\
                 printf '{{\"type\":\"ready\",\"protocol\":1}}\\n' >&3\nexit 1\n",
                c = count.display(),
                w = RUST_WORKER,
            ),
        )
        .unwrap();
        make_executable(&script);
        let mut cfg = PoolConfig::new(WorkerKind::Program(script), fixtures())
            .size(1, 1)
            .handle_signals(false);
        cfg.health_interval = Duration::from_millis(20);
        cfg.restart.base = Duration::from_millis(10);
        cfg.restart.max = Duration::from_millis(50);
        cfg.restart.max_restarts = 2;
        cfg.restart.interval = Duration::from_millis(1500);
        let pool = ChildPool::start(cfg).await.unwrap();
        let mut events = pool.events();
        let first = pool.pids()[0];
        assert!(offload_process::signal_group(first, 9).unwrap());
        let restarts = next(&mut events, |ev| match ev {
            PoolEvent::Degraded { restarts } => Some(*restarts),
            _ => None,
        })
        .await;
        assert_eq!(restarts, 3);
        next(&mut events, |ev| {
            matches!(ev, PoolEvent::Recovered).then_some(())
        })
        .await;
        let (outcome, _) = run_on(&pool, "echo", json!(9)).await;
        assert_eq!(outcome, Outcome::Succeeded { value: json!(9) });
        let pids = pool.pids();
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&pids).await;
    })
    .await;
}

// --- soft and hard kill ---------------------------------------------------------------------

/// The next event a worker emitted outside any job, by name.
async fn worker_event(events: &mut tokio::sync::broadcast::Receiver<PoolEvent>, want: &str) -> u32 {
    next(events, |ev| match ev {
        PoolEvent::Job(JobEvent::Event { pid, name, .. }) if name == want => Some(*pid),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_kill_lets_the_running_job_and_the_hook_finish_then_replaces_the_worker() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let mut events = pool.events();
        let (_, pid) = run_on(&pool, "hooks", json!(null)).await;
        let mut running = pool
            .run_with(
                "sleep",
                json!({"ms": 300}),
                RunOptions::default().with_events(),
            )
            .await
            .unwrap();
        let mut job_events = running.events().unwrap();
        loop {
            if let JobEvent::Started { .. } = job_events.recv().await.unwrap() {
                break;
            }
        }
        pool.kill_worker(
            pid,
            KillMode::Soft {
                grace: Duration::from_secs(10),
            },
        )
        .await
        .unwrap();
        assert_eq!(worker_event(&mut events, "shutdown-hook").await, pid);
        let r = running.result().await;
        assert_eq!(
            r.outcome,
            Outcome::Succeeded {
                value: json!("slept")
            }
        );
        next(&mut events, |ev| match ev {
            PoolEvent::WorkerExited {
                pid: p,
                expected: true,
                outcome,
            } if *p == pid => Some(outcome.clone()),
            _ => None,
        })
        .await;
        assert_all_gone(&[pid]).await;
        let (outcome, other) = run_on(&pool, "echo", json!(2)).await;
        assert!(outcome.is_success());
        assert_ne!(other, pid);
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_kill_sends_the_notice_runs_the_hook_and_the_worker_is_gone() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let mut events = pool.events();
        let (_, pid) = run_on(&pool, "hooks", json!(null)).await;
        pool.kill_worker(
            pid,
            KillMode::Hard {
                grace: Duration::from_secs(10),
            },
        )
        .await
        .unwrap();
        assert_eq!(worker_event(&mut events, "kill-hook").await, pid);
        let outcome = next(&mut events, |ev| match ev {
            PoolEvent::WorkerExited {
                pid: p, outcome, ..
            } if *p == pid => Some(outcome.clone()),
            _ => None,
        })
        .await;
        // Killed, even when the worker exits by itself within the grace after its hook.
        assert!(
            matches!(outcome, Outcome::Killed { signal: 9 }),
            "{outcome:?}"
        );
        assert_all_gone(&[pid]).await;
        let (outcome, _) = run_on(&pool, "echo", json!(1)).await;
        assert!(outcome.is_success());
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_ignores_the_soft_kill_is_killed_after_the_grace() {
    guarded(async {
        let dir = tempfile::tempdir().unwrap();
        let script = first_then_real(
            dir.path(),
            "deaf",
            "printf '{\"type\":\"ready\",\"protocol\":1}\\n' >&3\nexec sleep 600",
        );
        let cfg = PoolConfig::new(WorkerKind::Program(script), fixtures())
            .size(1, 1)
            .handle_signals(false);
        let pool = ChildPool::start(cfg).await.unwrap();
        let mut events = pool.events();
        let deaf = pool.pids()[0];
        pool.kill_worker(
            deaf,
            KillMode::Soft {
                grace: Duration::from_millis(100),
            },
        )
        .await
        .unwrap();
        let outcome = next(&mut events, |ev| match ev {
            PoolEvent::WorkerExited { pid, outcome, .. } if *pid == deaf => Some(outcome.clone()),
            _ => None,
        })
        .await;
        assert!(!outcome.is_success(), "{outcome:?}");
        assert_all_gone(&[deaf]).await;
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_unknown_pid_is_a_typed_error_and_an_absurd_grace_is_refused() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let grace = Duration::from_secs(1);
        assert_eq!(
            pool.kill_worker(u32::MAX, KillMode::Hard { grace }).await,
            Err(PoolError::NoSuchWorker { pid: u32::MAX })
        );
        let pid = pool.pids()[0];
        let err = pool
            .kill_worker(
                pid,
                KillMode::Soft {
                    grace: Duration::MAX,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, PoolError::OutOfRange(_)), "{err:?}");
        assert!(alive(pid));
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

/// The order of `WorkerKilled` and `WorkerExited` events until every one of `pids` exited.
async fn kill_trace(
    events: &mut tokio::sync::broadcast::Receiver<PoolEvent>,
    pids: &[u32],
) -> Vec<(char, u32)> {
    let mut trace = Vec::new();
    let mut exited = 0;
    while exited < pids.len() {
        let ev = next(events, |ev| match ev {
            PoolEvent::WorkerKilled { pid, .. } => Some(('k', *pid)),
            PoolEvent::WorkerExited { pid, .. } => Some(('x', *pid)),
            _ => None,
        })
        .await;
        if ev.0 == 'x' {
            exited += 1;
        }
        trace.push(ev);
    }
    trace
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_all_in_sequence_tells_each_worker_after_the_previous_is_gone() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(3, 3)).await.unwrap();
        let mut events = pool.events();
        let pids = pool.pids();
        pool.kill_all(
            KillMode::Soft {
                grace: Duration::from_secs(5),
            },
            KillOrder::Sequence,
        )
        .await
        .unwrap();
        let trace = kill_trace(&mut events, &pids).await;
        assert_eq!(trace.len(), 6, "{trace:?}");
        for pair in trace.chunks(2) {
            assert_eq!(pair[0].0, 'k', "{trace:?}");
            assert_eq!(pair[1], ('x', pair[0].1), "{trace:?}");
        }
        assert_all_gone(&pids).await;
        assert!(matches!(
            pool.run("echo", json!(1)).await,
            Err(PoolError::ShuttingDown | PoolError::Gone)
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_all_in_parallel_tells_every_worker_at_once() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(3, 3)).await.unwrap();
        let mut events = pool.events();
        let pids = pool.pids();
        pool.kill_all(
            KillMode::Hard {
                grace: Duration::from_secs(5),
            },
            KillOrder::Parallel,
        )
        .await
        .unwrap();
        let trace = kill_trace(&mut events, &pids).await;
        assert!(
            trace[..3].iter().all(|(k, _)| *k == 'k'),
            "every worker is told before any exits: {trace:?}"
        );
        assert_all_gone(&pids).await;
    })
    .await;
}

// --- a busy worker delays its soft kill (seed 001) --------------------------------------------

/// The pool's events so far, without waiting.
fn drain(events: &mut tokio::sync::broadcast::Receiver<PoolEvent>) -> Vec<PoolEvent> {
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        seen.push(ev);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_worker_soft_killed_stays_until_it_is_ready_then_exits() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let mut events = pool.events();
        let (outcome, pid) = run_on(&pool, "flow", json!({"busy": true})).await;
        assert!(outcome.is_success(), "{outcome:?}");
        let grace = Duration::from_secs(10);
        pool.kill_worker(pid, KillMode::Soft { grace })
            .await
            .unwrap();
        // Not told yet: it still answers a broadcast (an idle worker told to stop would have
        // been left out of it, and would exit), and it has not exited.
        let acks = pool
            .broadcast("hello", json!(null), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(acks.get(&pid), Some(&true), "{acks:?}");
        assert!(alive(pid));
        let so_far = drain(&mut events);
        assert!(
            !so_far
                .iter()
                .any(|ev| matches!(ev, PoolEvent::WorkerExited { pid: p, .. } if *p == pid)),
            "{so_far:?}"
        );
        // `ready()` (the fixture's `flow-ready` listener): now the soft kill goes on.
        pool.broadcast("flow-ready", json!(null), Duration::from_secs(10))
            .await
            .unwrap();
        let outcome = next(&mut events, |ev| match ev {
            PoolEvent::WorkerExited {
                pid: p,
                outcome,
                expected: true,
            } if *p == pid => Some(outcome.clone()),
            _ => None,
        })
        .await;
        assert_eq!(
            outcome,
            Outcome::Exited { code: 0 },
            "a clean exit, not a kill"
        );
        assert_all_gone(&[pid]).await;
        let (outcome, other) = run_on(&pool, "echo", json!(1)).await;
        assert!(outcome.is_success());
        assert_ne!(other, pid);
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_busy_past_the_limit_is_hard_killed_with_a_typed_reason() {
    guarded(async {
        let mut cfg = rust_pool(1, 1);
        cfg.soft_kill_busy_limit = Duration::from_millis(200);
        let pool = ChildPool::start(cfg).await.unwrap();
        let mut events = pool.events();
        let _ = run_on(&pool, "hooks", json!(null)).await;
        let (_, pid) = run_on(&pool, "flow", json!({"busy": true})).await;
        pool.kill_worker(
            pid,
            KillMode::Soft {
                grace: Duration::from_secs(10),
            },
        )
        .await
        .unwrap();
        let reason = next(&mut events, |ev| match ev {
            PoolEvent::SoftKillEscalated { pid: p, reason } if *p == pid => Some(*reason),
            _ => None,
        })
        .await;
        assert_eq!(
            reason,
            EscalationReason::BusyPastLimit {
                limit: Duration::from_millis(200)
            }
        );
        // The hard kill's notice: its hook runs, no shutdown hook.
        assert_eq!(worker_event(&mut events, "kill-hook").await, pid);
        next(&mut events, |ev| match ev {
            PoolEvent::WorkerExited { pid: p, .. } if *p == pid => Some(()),
            PoolEvent::Job(JobEvent::Event { name, .. }) if name == "shutdown-hook" => {
                panic!("the shutdown hook ran: the soft kill was told")
            }
            _ => None,
        })
        .await;
        assert_all_gone(&[pid]).await;
        let (outcome, other) = run_on(&pool, "echo", json!(2)).await;
        assert!(outcome.is_success());
        assert_ne!(other, pid);
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}
