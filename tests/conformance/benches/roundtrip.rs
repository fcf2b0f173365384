//! Round-trip latency of each SDK: sequential `run` → `result` of the `echo` fixture over the
//! real channel, side by side in one run, with ratios against the plain `process.send` script.
//!
//! `cargo bench -p offload-conformance --bench roundtrip` (N round trips per kind: env
//! `ROUNDTRIPS`, default 5000).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use offload_conformance::Kind;
use offload_protocol::{decode_from_worker, encode, FrameReader, FromWorker, Run, ToWorker};
use tokio::io::AsyncWriteExt;

fn rust_worker() -> PathBuf {
    // The bench binary lives in target/<profile>/deps; the worker in target/<profile>.
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join("conformance-worker")
}

struct Stats {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
    startup: Duration,
}

async fn measure(kind: Kind, n: usize) -> Result<Stats, String> {
    let started = Instant::now();
    let mut w = kind
        .command(&rust_worker())
        .spawn()
        .await
        .map_err(|e| e.to_string())?;
    let (rd, mut wr) = w.channel.take().ok_or("no channel")?.into_split();
    let mut reader = FrameReader::new(rd, offload_protocol::DEFAULT_MAX_FRAME);
    let first = reader.next_frame().await.map_err(|e| e.to_string())?;
    if first.is_none() {
        return Err("worker exited before ready".into());
    }
    let startup = started.elapsed();
    let mut lat = Vec::with_capacity(n);
    let total = Instant::now();
    for i in 0..n {
        let run = ToWorker::Run(Run::new(
            format!("j{i}"),
            "echo",
            serde_json::json!({"i": i}),
        ));
        let frame = encode(&run, usize::MAX).map_err(|e| e.to_string())?;
        let t = Instant::now();
        wr.write_all(&frame).await.map_err(|e| e.to_string())?;
        let line = reader
            .next_frame()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("worker closed the channel")?;
        lat.push(t.elapsed());
        match decode_from_worker(&line)
            .map_err(|e| e.to_string())?
            .into_message()
        {
            Some(FromWorker::Result(_)) => {}
            other => return Err(format!("unexpected answer {other:?}")),
        }
    }
    let elapsed = total.elapsed();
    let _ = w.child.start_kill();
    let _ = w.child.wait().await;
    lat.sort_unstable();
    Ok(Stats {
        p50: lat[n / 2],
        p99: lat[(n * 99 / 100).min(n - 1)],
        per_sec: n as f64 / elapsed.as_secs_f64(),
        startup,
    })
}

fn main() {
    let n: usize = std::env::var("ROUNDTRIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("sequential echo round trips over the channel, n = {n}");
    println!(
        "{:<12} {:>12} {:>10} {:>10} {:>12} {:>16}",
        "worker", "start→ready", "p50", "p99", "jobs/s", "vs plain-node"
    );
    let results: Vec<(Kind, Result<Stats, String>)> = Kind::ALL
        .iter()
        .map(|&k| (k, rt.block_on(measure(k, n))))
        .collect();
    let baseline = results
        .iter()
        .find(|(k, _)| *k == Kind::PlainNode)
        .and_then(|(_, r)| r.as_ref().ok())
        .map(|s| s.per_sec);
    for (kind, r) in &results {
        match r {
            Ok(s) => println!(
                "{:<12} {:>12.1?} {:>10.1?} {:>10.1?} {:>12.0} {:>15.2}x",
                kind.name(),
                s.startup,
                s.p50,
                s.p99,
                s.per_sec,
                baseline.map_or(f64::NAN, |b| s.per_sec / b)
            ),
            Err(e) => println!("{:<12} failed: {e}", kind.name()),
        }
    }
}
