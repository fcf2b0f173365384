//! Byte streams of a job (`ChildPool::run_with_streams`, `docs/protocol.md` §10) against the
//! Rust, Node and Python SDKs: 64 MiB through in both directions, checksummed (CRC-32); a slow
//! consumer holds the producer back (what it wrote stays bounded by the socket buffer); a
//! consumer that stops reading fails the writer with `Stalled` naming the limit (a job: the
//! error `StreamStalled`); an end closed early is `Closed` (a job: `StreamClosed`). After each,
//! the worker takes the next job and neither side holds a descriptor more than before.

mod common;

use std::time::Duration;

use common::*;
use offload_conformance::streams::{pattern_block, pattern_crc, Crc32, CHUNK};
use offload_pool::{
    ChildPool, JobEvent, JobResult, PoolConfig, RunOptions, StreamError, StreamOptions,
    StreamReader, StreamWriter, WorkerKind,
};
use offload_process::Outcome;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;
const BIG: usize = 64 * MIB;

fn pool_of(kind: &str) -> PoolConfig {
    let worker = match kind {
        "rust" => return rust_pool(1, 1),
        "node" => WorkerKind::Node,
        "python" => WorkerKind::Python,
        other => panic!("no worker kind {other}"),
    };
    PoolConfig::new(worker, offload_conformance::jobs_dir())
        .size(1, 1)
        .handle_signals(false)
}

/// Writes `bytes` of the pattern, then ends the stream.
async fn feed(mut w: StreamWriter, bytes: usize) -> std::io::Result<()> {
    let block = pattern_block();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK);
        w.write_all(&block[..n]).await?;
        left -= n;
    }
    w.shutdown().await
}

/// Reads to the end: (bytes, crc).
async fn drain(mut r: StreamReader) -> (usize, u32) {
    let mut buf = vec![0u8; CHUNK];
    let (mut n, mut crc) = (0, Crc32::default());
    loop {
        let got = r.read(&mut buf).await.unwrap();
        if got == 0 {
            return (n, crc.value());
        }
        crc.update(&buf[..got]);
        n += got;
    }
}

fn value(r: &JobResult) -> &Value {
    match &r.outcome {
        Outcome::Succeeded { value } => value,
        other => panic!("the job failed: {other:?}"),
    }
}

fn failure(r: &JobResult) -> (&str, &str) {
    match &r.outcome {
        Outcome::Failed { name, message, .. } | Outcome::FailedNoRetry { name, message, .. } => {
            (name, message)
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The pool's one worker, and the descriptors of both sides once it is warm (it ran `sleep`
/// too: Python's first async job opens the asyncio loop's descriptors for good).
async fn start(kind: &str) -> (ChildPool, u32, Vec<String>, usize) {
    let pool = ChildPool::start(pool_of(kind)).await.unwrap();
    let pid = warm(&pool).await;
    let r = pool
        .run("sleep", json!({"ms": 1}))
        .await
        .unwrap()
        .result()
        .await;
    assert!(r.outcome.is_success(), "{:?}", r.outcome);
    (pool, pid, fd_links(), fds_of(pid))
}

/// The worker is the same and healthy, and neither side holds a descriptor more.
async fn assert_clean(pool: ChildPool, pid: u32, mine: &[String], worker: usize) {
    assert_eq!(warm(&pool).await, pid, "the worker was replaced");
    assert_supervisor_fds(mine).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fds_of(pid) > worker && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let links: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .collect();
    assert!(
        fds_of(pid) <= worker,
        "the worker holds more descriptors than before: {links:?}"
    );
    pool.shutdown(Duration::from_secs(5)).await;
}

async fn sixty_four_mib_both_ways(kind: &str) {
    let (pool, pid, mine, worker) = start(kind).await;
    let want = json!({"bytes": BIG, "crc": pattern_crc(BIG)});
    // In: the job sums what the caller writes.
    let (job, s) = pool
        .run_with_streams(
            "stream_sum",
            json!({}),
            RunOptions::default(),
            StreamOptions::input(),
        )
        .await
        .unwrap();
    assert!(s.output.is_none());
    feed(s.input.unwrap(), BIG).await.unwrap();
    assert_eq!(value(&job.result().await), &want);
    // Out: the caller sums what the job writes.
    let (job, s) = pool
        .run_with_streams(
            "stream_make",
            json!({"bytes": BIG}),
            RunOptions::default(),
            StreamOptions::output(),
        )
        .await
        .unwrap();
    assert_eq!(drain(s.output.unwrap()).await, (BIG, pattern_crc(BIG)));
    assert_eq!(value(&job.result().await), &want);
    // Both at once: the job copies its input to its output.
    let (job, s) = pool
        .run_with_streams(
            "stream_echo",
            json!({}),
            RunOptions::default(),
            StreamOptions::both(),
        )
        .await
        .unwrap();
    let (fed, got) = tokio::join!(feed(s.input.unwrap(), BIG), drain(s.output.unwrap()));
    fed.unwrap();
    assert_eq!(got, (BIG, pattern_crc(BIG)));
    assert_eq!(value(&job.result().await), &json!({"bytes": BIG}));
    assert_clean(pool, pid, &mine, worker).await;
}

/// While the caller reads nothing, the job's writes wait: what it wrote stays within the
/// socket buffer (and a chunk); once the caller reads, all 64 MiB arrive intact.
async fn a_slow_consumer_holds_the_producer_back(kind: &str) {
    let (pool, pid, mine, worker) = start(kind).await;
    let (mut job, s) = pool
        .run_with_streams(
            "stream_make",
            json!({"bytes": BIG}),
            RunOptions::default().with_events(),
            StreamOptions::output(),
        )
        .await
        .unwrap();
    let mut events = job.events().unwrap();
    let mut written = 0usize;
    // Until the producer has been quiet for a while: it waits on the full buffer.
    loop {
        match tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
            Ok(Ok(JobEvent::Progress { data, .. })) => {
                written = data["written"].as_u64().unwrap() as usize;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("the job's events: {e}"),
            Err(_) if written > 0 => break,
            Err(_) => {}
        }
    }
    let bound = socket_buffers() + 2 * CHUNK;
    eprintln!("{kind}: the producer wrote {written} bytes while nothing was read (bound {bound})");
    assert!(
        written <= bound && written < BIG,
        "the producer wrote {written} bytes while nothing was read (bound {bound})"
    );
    assert_eq!(drain(s.output.unwrap()).await, (BIG, pattern_crc(BIG)));
    assert_eq!(value(&job.result().await)["bytes"], json!(BIG));
    assert_clean(pool, pid, &mine, worker).await;
}

/// What an `AF_UNIX` stream socket may hold unread: the sender's buffer at most (the kernel
/// charges queued data to it), doubled by the kernel from `wmem_default`.
fn socket_buffers() -> usize {
    let read = |p: &str| -> usize {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4 * MIB)
    };
    2 * read("/proc/sys/net/core/wmem_default").max(read("/proc/sys/net/core/rmem_default"))
}

/// A caller that stops reading fails the job's writes with `StreamStalled`, naming the limit;
/// a job that stops reading fails the caller's with `StreamError::Stalled`.
async fn a_stalled_consumer_is_a_typed_error_on_either_side(kind: &str) {
    let (pool, pid, mine, worker) = start(kind).await;
    let limit = Duration::from_millis(300);
    let (job, s) = pool
        .run_with_streams(
            "stream_make",
            json!({"bytes": BIG}),
            RunOptions::default(),
            StreamOptions::output().stall(limit),
        )
        .await
        .unwrap();
    let r = job.result().await;
    let (name, message) = failure(&r);
    assert_eq!(name, "StreamStalled", "{message}");
    assert!(
        message.contains("300"),
        "the message names the limit: {message}"
    );
    drop(s);
    // The job never reads its input: the caller's write fails typed.
    let (job, s) = pool
        .run_with_streams(
            "sleep",
            json!({"ms": 600_000}),
            RunOptions::default(),
            StreamOptions::input().stall(limit),
        )
        .await
        .unwrap();
    let err = feed(s.input.unwrap(), BIG).await.unwrap_err();
    assert_eq!(
        StreamError::from_io(&err),
        Some(StreamError::Stalled { limit }),
        "{err}"
    );
    job.cancel();
    let _ = job.result().await;
    assert_clean(pool, pid, &mine, worker).await;
}

/// A caller that closes the job's output early fails the job with `StreamClosed`; a job that
/// ends without reading its input fails the caller's writes with `StreamError::Closed`.
async fn an_end_closed_early_is_a_typed_error_on_either_side(kind: &str) {
    let (pool, pid, mine, worker) = start(kind).await;
    let (job, s) = pool
        .run_with_streams(
            "stream_make",
            json!({"bytes": BIG}),
            RunOptions::default(),
            StreamOptions::output(),
        )
        .await
        .unwrap();
    let mut out = s.output.unwrap();
    let mut first = vec![0u8; CHUNK];
    out.read_exact(&mut first).await.unwrap();
    assert_eq!(first, pattern_block());
    drop(out);
    let r = job.result().await;
    assert_eq!(failure(&r).0, "StreamClosed", "{:?}", r.outcome);
    let (job, s) = pool
        .run_with_streams(
            "echo",
            json!(1),
            RunOptions::default(),
            StreamOptions::input(),
        )
        .await
        .unwrap();
    assert_eq!(value(&job.result().await), &json!(1));
    let err = feed(s.input.unwrap(), BIG).await.unwrap_err();
    assert_eq!(
        StreamError::from_io(&err),
        Some(StreamError::Closed),
        "{err}"
    );
    assert_clean(pool, pid, &mine, worker).await;
}

macro_rules! for_each_sdk {
    ($($kind:ident),*) => {$(
        mod $kind {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sixty_four_mib_through_both_ways_checksummed() {
                guarded(sixty_four_mib_both_ways(stringify!($kind))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_slow_consumer_holds_the_producer_back() {
                guarded(super::a_slow_consumer_holds_the_producer_back(stringify!($kind))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_stalled_consumer_is_a_typed_error_on_either_side() {
                guarded(super::a_stalled_consumer_is_a_typed_error_on_either_side(
                    stringify!($kind),
                ))
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_end_closed_early_is_a_typed_error_on_either_side() {
                guarded(super::an_end_closed_early_is_a_typed_error_on_either_side(
                    stringify!($kind),
                ))
                .await;
            }
        }
    )*};
}

for_each_sdk!(rust, node, python);
