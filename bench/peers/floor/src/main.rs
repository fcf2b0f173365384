//! The floor of the pool benchmark: what two processes on a socketpair cost with the protocol's
//! framing (one JSON object per line: `run` frames out, `result` frames back) and nothing else.
//!
//! The supervisor starts 2 copies of itself (`--worker`), each with one end of a socketpair as
//! its stdin and stdout, and drives them with blocking reads and writes from one thread per
//! worker: every frame is parsed and built with serde_json like offload's, whatever is ready is
//! written in one `write`, and there are no queues, tasks or runtimes. It prints one JSON line in
//! the format of the other rows (`bench/peers/README.md`).
//!
//! ```text
//! offload-bench-floor --workload a|b|c --tasks N [--time-limit S] [--runs N] [--warmup N]
//! ```

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

const WORKERS: usize = 2;

#[derive(Serialize)]
struct Run<'a> {
    r#type: &'static str,
    id: &'a str,
    job: &'static str,
    params: X,
}

#[derive(Serialize, Deserialize)]
struct X {
    x: u64,
}

#[derive(Deserialize)]
struct RunIn<'a> {
    #[serde(borrow)]
    id: &'a str,
    #[serde(borrow)]
    job: &'a str,
    params: X,
}

#[derive(Serialize)]
struct ResultOut<'a> {
    r#type: &'static str,
    id: &'a str,
    value: u64,
}

#[derive(Deserialize)]
struct ResultIn<'a> {
    #[serde(borrow)]
    id: &'a str,
    value: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        worker();
        return;
    }
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let workload = opt("--workload").unwrap_or_else(|| "a".into());
    let tasks: u64 = opt("--tasks")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let limit = Duration::from_secs_f64(
        opt("--time-limit")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60.0),
    );
    let runs: u32 = opt("--runs").and_then(|v| v.parse().ok()).unwrap_or(1);
    let warmup: Option<u64> = opt("--warmup").and_then(|v| v.parse().ok());
    for run in 1..=runs {
        println!("{}", one_run(&workload, tasks, limit, run, warmup));
    }
}

// ---- worker ------------------------------------------------------------------------------------

/// Reads `run` frames from stdin, answers each with a `result` frame on stdout; all the answers
/// to one read go out in one write. Ends at end of file.
fn worker() {
    let mut input = std::fs::File::from(owned(std::io::stdin().as_fd()));
    let mut output = std::fs::File::from(owned(std::io::stdout().as_fd()));
    let mut buf = vec![0u8; 64 * 1024];
    let mut start = 0; // bytes of an unfinished line at the front of `buf`
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        let n = match input.read(&mut buf[start..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let end = start + n;
        let mut from = 0;
        while let Some(i) = buf[from..end].iter().position(|&b| b == b'\n') {
            let line = &buf[from..from + i];
            from += i + 1;
            let run: RunIn<'_> = serde_json::from_slice(line).expect("a run frame");
            let value = match run.job {
                "inc" => run.params.x + 1,
                _ => {
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_millis(1) {
                        std::hint::spin_loop();
                    }
                    run.params.x
                }
            };
            let answer = ResultOut {
                r#type: "result",
                id: run.id,
                value,
            };
            serde_json::to_writer(&mut out, &answer).expect("json");
            out.push(b'\n');
        }
        if !out.is_empty() {
            if output.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
        buf.copy_within(from..end, 0);
        start = end - from;
        if start == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
}

fn owned(fd: std::os::fd::BorrowedFd<'_>) -> OwnedFd {
    fd.try_clone_to_owned().expect("dup")
}

// ---- supervisor --------------------------------------------------------------------------------

struct Conn {
    child: Child,
    sock: UnixStream,
    buf: Vec<u8>,
    start: usize,
}

impl Conn {
    fn spawn() -> Self {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let theirs2 = theirs.try_clone().expect("dup");
        let child = Command::new(std::env::current_exe().expect("own path"))
            .arg("--worker")
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(OwnedFd::from(theirs2)))
            .spawn()
            .expect("spawn the worker");
        Self {
            child,
            sock: ours,
            buf: vec![0; 64 * 1024],
            start: 0,
        }
    }

    fn push_run(out: &mut Vec<u8>, i: u64, job: &'static str) {
        let mut digits = [0u8; 20];
        let frame = Run {
            r#type: "run",
            id: itoa(i, &mut digits),
            job,
            params: X { x: i },
        };
        serde_json::to_writer(&mut *out, &frame).expect("json");
        out.push(b'\n');
    }

    /// Reads at least one answer; calls `each(id, value)` for every complete one.
    fn read_answers(&mut self, mut each: impl FnMut(u64, u64)) {
        let n = self.sock.read(&mut self.buf[self.start..]).expect("read");
        assert!(n > 0, "the worker closed the channel");
        let end = self.start + n;
        let mut from = 0;
        while let Some(i) = self.buf[from..end].iter().position(|&b| b == b'\n') {
            let line = &self.buf[from..from + i];
            from += i + 1;
            let r: ResultIn<'_> = serde_json::from_slice(line).expect("a result frame");
            each(r.id.parse().expect("numeric id"), r.value);
        }
        self.buf.copy_within(from..end, 0);
        self.start = end - from;
    }
}

/// `i` in decimal, formatted into `digits` (no allocation).
fn itoa(mut i: u64, digits: &mut [u8; 20]) -> &str {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (i % 10) as u8;
        i /= 10;
        if i == 0 {
            break;
        }
    }
    std::str::from_utf8(&digits[at..]).expect("ascii digits")
}

/// Runs tasks `[next, total)` taken from the shared counter on one worker, at most `window` in
/// flight; returns (done, errors).
fn drive(
    conn: &mut Conn,
    next: &AtomicU64,
    total: u64,
    window: u64,
    job: &'static str,
    deadline: Instant,
) -> (u64, u64, bool) {
    let mut out = Vec::with_capacity(64 * 1024);
    let (mut in_flight, mut done, mut errors) = (0u64, 0u64, 0u64);
    let mut exhausted = false;
    let mut timed_out = false;
    loop {
        while !exhausted && !timed_out && in_flight < window {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= total {
                exhausted = true;
                break;
            }
            Conn::push_run(&mut out, i, job);
            in_flight += 1;
        }
        if !out.is_empty() {
            conn.sock.write_all(&out).expect("write");
            out.clear();
        }
        if in_flight == 0 {
            return (done, errors, timed_out);
        }
        conn.read_answers(|id, v| {
            let want = if job == "inc" { id + 1 } else { id };
            if v != want {
                errors += 1;
            }
            in_flight -= 1;
            done += 1;
        });
        if done % 256 == 0 && Instant::now() > deadline {
            timed_out = true;
        }
    }
}

/// CPU seconds (utime + stime, all threads) and context switches (all threads) of `pid`.
fn usage(pid: &str) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |k: usize| {
        rest.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let mut switches = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let s = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            for line in s.lines() {
                if line.starts_with("voluntary_ctxt_switches:")
                    || line.starts_with("nonvoluntary_ctxt_switches:")
                {
                    switches += line
                        .rsplit(char::is_whitespace)
                        .next()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
    }
    (cpu, switches)
}

fn one_run(workload: &str, tasks: u64, limit: Duration, run: u32, warmup: Option<u64>) -> String {
    let (job, window) = match workload {
        "a" => ("inc", 64),
        "b" => ("inc", 1),
        _ => ("spin", 2),
    };
    let t0 = Instant::now();
    let mut conns: Vec<Conn> = (0..WORKERS).map(|_| Conn::spawn()).collect();
    // Start-up: every worker answered once.
    for c in &mut conns {
        let next = AtomicU64::new(0);
        drive(c, &next, 1, 1, "inc", t0 + limit);
    }
    let start_ms = t0.elapsed().as_secs_f64() * 1e3;
    // (c): 12,000 tasks of 1 ms before the count, as every row of bench/peers does (there, so
    // that a JIT has stopped compiling what runs per task; here the same warm-up for comparison).
    let warm = warmup.unwrap_or(if workload == "c" { 12_000 } else { 1000 });
    for c in &mut conns {
        let next = AtomicU64::new(0);
        drive(c, &next, warm / WORKERS as u64, window, job, t0 + limit);
    }

    let pids: Vec<String> = conns.iter().map(|c| c.child.id().to_string()).collect();
    let measure = |pids: &[String]| {
        let (s, ss) = usage("self");
        let mut w = (0.0, 0);
        for p in pids {
            let (c, n) = usage(p);
            w.0 += c;
            w.1 += n;
        }
        (s, ss, w.0, w.1)
    };
    let before = measure(&pids);
    let started = Instant::now();
    let deadline = started + limit;
    let mut lat: Vec<f64> = Vec::new();
    let (done, errors, timed_out);
    if workload == "b" {
        // One task at a time, always to the first worker (the idle one).
        let c = &mut conns[0];
        let mut out = Vec::with_capacity(256);
        let (mut d, mut e, mut t) = (0u64, 0u64, false);
        for i in 0..tasks {
            let s = Instant::now();
            Conn::push_run(&mut out, i, "inc");
            c.sock.write_all(&out).expect("write");
            out.clear();
            let mut got = false;
            while !got {
                c.read_answers(|id, v| {
                    if v != id + 1 {
                        e += 1;
                    }
                    got = true;
                });
            }
            lat.push(s.elapsed().as_secs_f64() * 1e6);
            d += 1;
            if d % 256 == 0 && Instant::now() > deadline {
                t = true;
                break;
            }
        }
        (done, errors, timed_out) = (d, e, t);
    } else {
        let next = Arc::new(AtomicU64::new(0));
        let results: Vec<(u64, u64, bool)> = std::thread::scope(|s| {
            let hs: Vec<_> = conns
                .iter_mut()
                .map(|c| {
                    let next = Arc::clone(&next);
                    s.spawn(move || drive(c, &next, tasks, window, job, deadline))
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("driver")).collect()
        });
        done = results.iter().map(|r| r.0).sum();
        errors = results.iter().map(|r| r.1).sum();
        timed_out = results.iter().any(|r| r.2);
    }
    let secs = started.elapsed().as_secs_f64();
    let after = measure(&pids);
    for mut c in conns {
        drop(c.sock);
        let _ = c.child.wait();
    }
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| -> Option<f64> {
        (!lat.is_empty()).then(|| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)])
    };
    let n = done.max(1) as f64;
    serde_json::json!({
        "system": "floor",
        "workload": workload,
        "run": run,
        "tasks": done,
        "secs": secs,
        "per_sec": done as f64 / secs,
        "p50_us": pct(0.5),
        "p99_us": pct(0.99),
        "workers": WORKERS,
        "concurrency": window,
        "note": format!("2 worker processes, socketpair, blocking I/O, one thread per worker, {window} in flight per worker"),
        "start_ms": start_ms,
        "errors": errors,
        "first_error": serde_json::Value::Null,
        "timed_out": timed_out,
        "sup_cpu_us_per_task": (after.0 - before.0) * 1e6 / n,
        "workers_cpu_us_per_task": (after.2 - before.2) * 1e6 / n,
        "sup_switches_per_task": (after.1 - before.1) as f64 / n,
        "workers_switches_per_task": (after.3 - before.3) as f64 / n,
    })
    .to_string()
}
