//! A pool whose workers' channels are read on the host's own thread (`HostReader`,
//! `crates/process/src/process/host_read.rs`), as the Node addon reads them on the JavaScript
//! thread. The host here is a plain thread polling the sockets it is given, which can be made
//! "busy" (not reading) like a JavaScript thread running user code. What must hold: answers
//! and submissions on that thread, a job's events before its end, no timeout decided on an
//! answer the busy host has not read, a worker killed mid-job, and every channel closed once
//! its worker is gone.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use offload_pool::{ChildPool, HostReader, JobResult, RunOptions};
use offload_process::{HostChannel, HostRead, Outcome};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

/// The host thread: reads the channels it is given.
struct Host {
    /// Not reading until then (a busy JavaScript thread).
    busy_until: Arc<Mutex<Option<Instant>>>,
    /// Channels open on the host's side.
    open: Arc<AtomicUsize>,
    /// Channels given to the host so far.
    given: Arc<AtomicUsize>,
    /// Reads of a channel.
    reads: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    /// Runs closures on the host thread (a submission from it).
    tasks: std_mpsc::Sender<Box<dyn FnOnce() + Send>>,
    /// Read without pausing between rounds (else a millisecond).
    eager: Arc<AtomicBool>,
}

fn start_host() -> (HostReader, Host) {
    let (chan_tx, chan_rx) = std_mpsc::channel::<Arc<HostChannel>>();
    let (task_tx, task_rx) = std_mpsc::channel::<Box<dyn FnOnce() + Send>>();
    let host = Host {
        busy_until: Arc::new(Mutex::new(None)),
        open: Arc::new(AtomicUsize::new(0)),
        given: Arc::new(AtomicUsize::new(0)),
        reads: Arc::new(AtomicUsize::new(0)),
        stop: Arc::new(AtomicBool::new(false)),
        tasks: task_tx,
        eager: Arc::new(AtomicBool::new(false)),
    };
    let eager = Arc::clone(&host.eager);
    let (busy, open, reads, stop) = (
        Arc::clone(&host.busy_until),
        Arc::clone(&host.open),
        Arc::clone(&host.reads),
        Arc::clone(&host.stop),
    );
    std::thread::spawn(move || {
        let mut channels: Vec<Arc<HostChannel>> = Vec::new();
        while !stop.load(Ordering::Acquire) {
            while let Ok(t) = task_rx.try_recv() {
                t();
            }
            channels.extend(chan_rx.try_iter());
            open.store(channels.len(), Ordering::Release);
            let until = *busy.lock().unwrap();
            if until.is_some_and(|u| Instant::now() < u) {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            // A real host waits in its event loop for the sockets (the addon: libuv's
            // `uv_poll`); reading them all every millisecond is the same to the channels.
            let mut closed = Vec::new();
            for (i, c) in channels.iter().enumerate() {
                reads.fetch_add(1, Ordering::AcqRel);
                // Paused (backpressure): not watched until the pool gives it again.
                if matches!(c.read_ready(), HostRead::Closed | HostRead::Paused) {
                    closed.push(i);
                }
            }
            for i in closed.into_iter().rev() {
                channels.swap_remove(i);
            }
            open.store(channels.len(), Ordering::Release);
            if !eager.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let given = Arc::clone(&host.given);
    let reader = HostReader(Arc::new(move |c| {
        given.fetch_add(1, Ordering::AcqRel);
        let _ = chan_tx.send(c);
    }));
    (reader, host)
}

impl Host {
    fn busy_for(&self, d: Duration) {
        *self.busy_until.lock().unwrap() = Some(Instant::now() + d);
    }

    fn is_busy(&self) -> bool {
        self.busy_until
            .lock()
            .unwrap()
            .is_some_and(|u| Instant::now() < u)
    }

    fn resume(&self) {
        *self.busy_until.lock().unwrap() = None;
    }

    fn on_thread(&self, f: impl FnOnce() + Send + 'static) {
        self.tasks.send(Box::new(f)).unwrap();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// A pool started with `cfg`, its channels read by a new host thread.
async fn host_pool(mut cfg: offload_pool::PoolConfig) -> (ChildPool, Host) {
    let (reader, host) = start_host();
    cfg.host_reader = Some(reader);
    (ChildPool::start(cfg).await.unwrap(), host)
}

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_and_submissions_go_through_the_host_thread() {
    guarded(async {
        let (pool, host) = host_pool(rust_pool(2, 2)).await;
        assert_eq!(host.given.load(Ordering::Acquire), 2);
        // Submitted on the host thread, as the addon submits on the JavaScript thread.
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, JobResult)>();
        let p = pool.clone();
        host.on_thread(move || {
            for i in 0..200u64 {
                let tx = tx.clone();
                let submit = p.run_raw_then(
                    "echo",
                    raw(&format!("{{\"i\":{i}}}")),
                    RunOptions::default(),
                    Box::new(move |r| {
                        let _ = tx.send((i, r));
                    }),
                );
                futures_poll_once(submit).unwrap();
            }
        });
        let mut seen = [false; 200];
        for _ in 0..200 {
            let (i, r) = rx.recv().await.unwrap();
            assert_eq!(
                r.outcome,
                Outcome::Succeeded {
                    value: json!({"i": i})
                }
            );
            seen[i as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert!(
            host.reads.load(Ordering::Acquire) > 0,
            "the host read nothing"
        );
        // And from the runtime's tasks, as any caller.
        for i in 0..50 {
            let r = pool.run("echo", json!(i)).await.unwrap().result().await;
            assert_eq!(r.outcome, Outcome::Succeeded { value: json!(i) });
        }
        let pids = pool.pids();
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&pids).await;
        wait_until(
            "the host closed every channel",
            Duration::from_secs(10),
            || host.open.load(Ordering::Acquire) == 0,
        )
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_host_delays_an_answer_but_never_turns_it_into_a_timeout() {
    guarded(async {
        let (pool, host) = host_pool(rust_pool(1, 1)).await;
        let opts = || {
            RunOptions::default()
                .timeout(Duration::from_millis(100))
                .max_attempts(1)
        };
        let worker = pool.pids()[0];
        // The worker answers in 5 ms; the host reads nothing for 30 s.
        host.busy_for(Duration::from_secs(30));
        let job = pool
            .run_with("sleep", json!({"ms": 5}), opts())
            .await
            .unwrap();
        let r = job.result().await;
        assert_eq!(
            r.outcome,
            Outcome::Succeeded {
                value: json!("slept")
            },
            "{r:?}"
        );
        // The host has read nothing yet: the process read the answer when the timeout came,
        // and the worker that answered in time was not killed for it.
        assert!(host.is_busy(), "the answer waited for the host");
        assert_eq!(pool.pids(), vec![worker], "the worker was replaced");
        // A job that does not answer in time still times out, busy host or not.
        let job = pool
            .run_with("sleep", json!({"ms": 60000}), opts())
            .await
            .unwrap();
        assert_eq!(job.result().await.outcome, Outcome::TimedOut);
        host.resume();
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_progress_comes_before_its_end_when_the_host_reads() {
    guarded(async {
        let (pool, host) = host_pool(rust_pool(2, 2).concurrency(4)).await;
        let mut jobs = Vec::new();
        for k in 0..24 {
            if k == 12 {
                // Half of them with a busy host: what it has not read, the process reads.
                host.busy_for(Duration::from_millis(50));
            }
            jobs.push(submit_progress(&pool, 40, 256).await);
        }
        for (job, events) in jobs {
            expect_progress_then_end(job, events, 40).await;
        }
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_reply_read_by_the_host_reaches_the_call_not_the_pool() {
    guarded(async {
        let (pool, host) = host_pool(rust_pool(1, 1)).await;
        // A host that reads as fast as it can: a reply may be read right after the call's
        // frame is written, before the process's actor goes on.
        host.eager.store(true, Ordering::Release);
        let worker = pool.worker(pool.pids()[0]).unwrap();
        for _ in 0..2000 {
            match worker.call("nothing", vec![]).await {
                Err(offload_process::CallError::Failed(e)) => assert_eq!(e.name, "NoSuchFunction"),
                other => panic!("{other:?}"),
            }
        }
        host.eager.store(false, Ordering::Release);
        let r = pool.run("echo", json!(1)).await.unwrap().result().await;
        assert_eq!(r.outcome, Outcome::Succeeded { value: json!(1) });
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_progress_arrives_whole_and_in_order() {
    guarded(async {
        let (pool, _host) = host_pool(rust_pool(1, 1)).await;
        // Far more frames than the host may hand the process actor before it handled them
        // (`MAX_QUEUED`): past it the host stops reading and the actor reads in its stead.
        let count: u64 = 40_000;
        let (job, events) = submit_progress(&pool, count, 40_016).await;
        expect_progress_then_end(job, events, count).await;
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_is_replaced_and_its_channel_closed() {
    guarded(async {
        let (pool, host) = host_pool(rust_pool(1, 1)).await;
        let first = pool.pids()[0];
        let job = pool
            .run_with(
                "sleep",
                json!({"ms": 60000}),
                RunOptions::default().max_attempts(1),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(offload_process::signal_group(first, 9).unwrap());
        let r = job.result().await;
        assert!(
            matches!(r.outcome, Outcome::Crashed { .. }),
            "{:?}",
            r.outcome
        );
        // Its replacement works, and only its channel is still open on the host.
        let r = pool.run("echo", json!(7)).await.unwrap().result().await;
        assert_eq!(r.outcome, Outcome::Succeeded { value: json!(7) });
        assert_eq!(host.given.load(Ordering::Acquire), 2);
        wait_until(
            "the dead worker's channel is closed",
            Duration::from_secs(10),
            || host.open.load(Ordering::Acquire) == 1,
        )
        .await;
        pool.shutdown(Duration::from_secs(5)).await;
        wait_until(
            "the host closed every channel",
            Duration::from_secs(10),
            || host.open.load(Ordering::Acquire) == 0,
        )
        .await;
    })
    .await;
}

/// Polls a submission once: it must complete at once (the queue has room).
fn futures_poll_once<T>(f: impl std::future::Future<Output = T>) -> T {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the submission did not complete at once"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_backpressure_a_paused_channel_is_given_again_and_nothing_is_lost() {
    guarded(async {
        let (pool, host) = host_pool(rust_pool(1, 1).event_backpressure(8)).await;
        let given = host.given.load(Ordering::Acquire);
        let count = 5_000u64;
        let mut job = pool
            .run_with(
                "progress",
                json!({ "count": count }),
                RunOptions::default().with_events(),
            )
            .await
            .unwrap();
        let mut events = job.events().unwrap();
        let mut next = 0u64;
        loop {
            match events.recv().await {
                Ok(offload_pool::JobEvent::Progress { data, .. }) => {
                    assert_eq!(data["i"], json!(next));
                    next += 1;
                    // Slower than the worker: its reads wait for this.
                    std::thread::sleep(Duration::from_micros(20));
                }
                Ok(offload_pool::JobEvent::Finished { .. }) => break,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(next, count);
        assert_eq!(
            job.result().await.outcome,
            Outcome::Succeeded {
                value: json!(count)
            }
        );
        // The host stopped watching while the events waited, and was given the channel again.
        assert!(host.given.load(Ordering::Acquire) > given);
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}
