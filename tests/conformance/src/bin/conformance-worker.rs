//! The Rust SDK's fixture worker: the jobs listed in `tests/conformance/cases.json`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use offload_worker::{Context, JobError, Receiver, Worker};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Notify;

#[derive(Deserialize)]
struct Fail {
    message: String,
}

#[derive(Deserialize)]
struct Count {
    count: u64,
}

#[derive(Deserialize)]
struct Sleep {
    ms: u64,
}

#[derive(Deserialize)]
struct Emit {
    name: String,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
struct Barrier {
    n: u64,
}

#[derive(Deserialize)]
struct Block {
    #[serde(default)]
    ignore_cancel: bool,
    #[serde(default)]
    ms: u64,
}

#[derive(Deserialize)]
struct Flow {
    busy: bool,
}

/// The worker's control, kept by the `flow` job: the broadcast `flow-ready` makes the worker
/// ready again from outside any job (for the pool tests).
static CONTROL: std::sync::OnceLock<offload_worker::Control> = std::sync::OnceLock::new();

/// Set by the `hooks` job: the shutdown and kill hooks emit their events only after it.
static HOOKS: AtomicBool = AtomicBool::new(false);

#[derive(Deserialize)]
struct FdText {
    text: String,
}

#[derive(Deserialize)]
struct Paced {
    count: u64,
    bytes: usize,
    paced: bool,
}

/// This process's peak resident size so far (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct Big {
    bytes: usize,
}

fn main() {
    let arrived = Arc::new((AtomicU64::new(0), Notify::new()));
    let worker = Worker::new()
        .handler("echo", |p: Value, _ctx: Context| async move {
            Ok::<_, JobError>(p)
        })
        .function(
            "echo",
            "handle",
            |args: Vec<Value>, _ctx: Context| async move {
                Ok::<_, JobError>(args.into_iter().next().unwrap_or(Value::Null))
            },
        )
        .handler("fail", |p: Fail, _ctx: Context| async move {
            Err::<(), _>(JobError::new("Error", p.message).with_stack(format!(
                "Error: failed on purpose\n    at fail ({}:{})",
                file!(),
                line!()
            )))
        })
        .handler("fail_final", |p: Fail, _ctx: Context| async move {
            Err::<(), _>(JobError::new("ValidationError", p.message).non_retryable())
        })
        .handler("progress", |p: Count, ctx: Context| async move {
            for i in 0..p.count {
                ctx.progress(json!({ "i": i }));
            }
            Ok::<_, JobError>(p.count)
        })
        .handler("paced", |p: Paced, ctx: Context| async move {
            // `count` progress frames of `bytes` each; with `paced`, each awaits `sent()`.
            // Answers the peak resident size before and after, in KiB.
            let before = peak_rss_kib();
            let pad = "x".repeat(p.bytes);
            for i in 0..p.count {
                ctx.progress(json!({ "i": i, "pad": &pad }));
                if p.paced {
                    ctx.sent().await;
                }
            }
            Ok::<_, JobError>(json!({ "before": before, "peak": peak_rss_kib() }))
        })
        .handler("sleep", |p: Sleep, ctx: Context| async move {
            ctx.sleep(Duration::from_millis(p.ms)).await?;
            Ok::<_, JobError>("slept")
        })
        .handler("emit", |p: Emit, ctx: Context| async move {
            ctx.emit_to(&p.name, p.data, Receiver::Job);
            Ok::<_, JobError>(())
        })
        .handler("barrier", move |p: Barrier, ctx: Context| {
            let arrived = Arc::clone(&arrived);
            async move {
                arrived.0.fetch_add(1, Ordering::SeqCst);
                arrived.1.notify_waiters();
                loop {
                    let notified = arrived.1.notified();
                    if arrived.0.load(Ordering::SeqCst) >= p.n {
                        arrived.1.notify_waiters();
                        return Ok::<_, JobError>(p.n);
                    }
                    tokio::select! {
                        () = notified => {}
                        () = ctx.cancelled().cancelled() => return Err(JobError::cancelled()),
                    }
                }
            }
        })
        .handler("block", |p: Block, ctx: Context| async move {
            // Holds the runtime's thread without awaiting: only the SDK's reading thread can
            // still see a `cancel` or the end of the channel.
            let start = std::time::Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(1));
                if p.ignore_cancel {
                    if start.elapsed() >= Duration::from_millis(p.ms) {
                        return Ok::<_, JobError>("blocked");
                    }
                } else if ctx.is_cancelled() {
                    return Err(JobError::cancelled());
                }
            }
        })
        .handler("panic", |_p: Value, _ctx: Context| async move {
            if true {
                panic!("boom");
            }
            Ok::<_, JobError>(())
        })
        // Not in cases.json: for the pool tests.
        .handler("hang", |_p: Value, _ctx: Context| async move {
            // Ignores its cancellation token on purpose.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, JobError>(())
        })
        .handler("abort", |_p: Value, _ctx: Context| async move {
            if true {
                std::process::abort();
            }
            Ok::<_, JobError>(())
        })
        .handler("grow", |p: Big, _ctx: Context| async move {
            // Holds on to memory, so the worker's RSS grows (a leak to recycle).
            let leak: &'static mut [u8] = Box::leak(vec![1u8; p.bytes].into_boxed_slice());
            Ok::<_, JobError>(leak.len())
        })
        .handler("big", |p: Big, _ctx: Context| async move {
            Ok::<_, JobError>("x".repeat(p.bytes))
        })
        .handler("flow", |p: Flow, ctx: Context| async move {
            let _ = CONTROL.set(ctx.control());
            if p.busy {
                ctx.busy();
            } else {
                ctx.ready();
            }
            Ok::<_, JobError>(p.busy)
        })
        .handler("hooks", |_p: Value, _ctx: Context| async move {
            HOOKS.store(true, Ordering::SeqCst);
            Ok::<_, JobError>(())
        })
        .on_event("flow-ready", |_| {
            if let Some(c) = CONTROL.get() {
                c.ready();
            }
        })
        // Not in cases.json: for the pool tests. Starts a child that spins (CPU) and waits
        // until cancelled; the child is killed then (the tree's CPU counts against the worker).
        .handler("spin_child", |_p: Value, ctx: Context| async move {
            let mut child = std::process::Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .map_err(|e| JobError::new("SpawnError", e.to_string()))?;
            ctx.emit("spinning", child.id());
            ctx.cancelled().cancelled().await;
            let _ = child.kill();
            let _ = child.wait();
            Err::<(), _>(JobError::cancelled())
        })
        .on_shutdown(|control| async move {
            if HOOKS.load(Ordering::SeqCst) {
                control.emit("shutdown-hook", Value::Null);
            }
        })
        .on_kill(|control| {
            if HOOKS.load(Ordering::SeqCst) {
                control.emit("kill-hook", Value::Null);
            }
        })
        // Descriptors passed with the run (`docs/protocol.md` §9): writes `text` and the
        // descriptor's index to each, then closes them; answers how many it got.
        .handler("fd_write", |p: FdText, ctx: Context| async move {
            use std::io::Write;
            let fds = ctx.take_fds();
            let n = fds.len();
            for (i, fd) in fds.into_iter().enumerate() {
                let mut f = std::fs::File::from(fd);
                f.write_all(format!("{} {i}\n", p.text).as_bytes())
                    .map_err(|e| JobError::new("IoError", e.to_string()))?;
            }
            Ok::<_, JobError>(json!({ "fds": n }))
        })
        // Serves a connection handed out by a pool's ConnectionServer: answers each line with
        // "<pid> <line>" until the client closes.
        .handler("conn_serve", |_p: Value, ctx: Context| async move {
            use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
            let io = |e: std::io::Error| JobError::new("IoError", e.to_string());
            let Some(fd) = ctx.take_fds().into_iter().next() else {
                return Err(JobError::new("FdMissing", "no connection"));
            };
            let std_stream = std::net::TcpStream::from(fd);
            std_stream.set_nonblocking(true).map_err(io)?;
            let stream = tokio::net::TcpStream::from_std(std_stream).map_err(io)?;
            let (rd, mut wr) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(rd).lines();
            let pid = std::process::id();
            let mut n = 0u64;
            while let Some(line) = lines.next_line().await.map_err(io)? {
                wr.write_all(format!("{pid} {line}\n").as_bytes())
                    .await
                    .map_err(io)?;
                n += 1;
            }
            Ok::<_, JobError>(json!({ "lines": n }))
        })
        // Writes `bytes` zero bytes into the descriptor passed (a pipe), 64 KiB at a time:
        // the streaming measurement of tests/conformance/tests/fds.rs.
        .handler("fd_pump", |p: Big, ctx: Context| async move {
            use std::io::Write;
            let Some(fd) = ctx.take_fds().into_iter().next() else {
                return Err(JobError::new("FdMissing", "no descriptor"));
            };
            let mut out = std::fs::File::from(fd);
            let chunk = vec![0u8; 64 * 1024];
            let mut left = p.bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                out.write_all(&chunk[..n])
                    .map_err(|e| JobError::new("IoError", e.to_string()))?;
                left -= n;
            }
            Ok::<_, JobError>(p.bytes)
        })
        // Keeps its descriptors untaken: they close when the job ends.
        .handler("fd_ignore", |_p: Value, _ctx: Context| async move {
            Ok::<_, JobError>("ignored")
        });
    offload_conformance::streams::stream_jobs(worker).run()
}
