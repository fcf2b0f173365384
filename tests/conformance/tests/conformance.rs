//! Runs every case of `tests/conformance/cases.json` against every worker kind: the Rust, Node
//! and Python SDKs and a plain Node script. One test per kind; each reports all failing cases.

use std::path::Path;
use std::time::Duration;

use offload_conformance::{repo_root, Kind};
use offload_process::WorkerChild as Child;
use offload_process::{group_alive, signal_group};
use offload_protocol::{decode_from_worker, Decoded, FrameReader, DEFAULT_MAX_FRAME};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

const DEFAULT_WITHIN: Duration = Duration::from_secs(10);

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join("tests/conformance/cases.json"))
        .expect("cases.json is readable");
    let doc: Value = serde_json::from_str(&text).expect("cases.json is valid json");
    doc["cases"].as_array().expect("cases is an array").clone()
}

/// Partial match: every field written in `want` must match `got`.
fn matches(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::String(s), _) if s == "$any" => true,
        (Value::String(s), Value::String(g)) if s == "$string" => !g.is_empty(),
        (Value::String(s), _) if s == "$string" => false,
        (Value::String(s), _) if s == "$number" => got.is_number(),
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .all(|(k, wv)| g.get(k).is_some_and(|gv| matches(wv, gv))),
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| matches(a, b))
        }
        _ => want == got,
    }
}

struct Session {
    child: Child,
    pid: u32,
    reader: Option<FrameReader<OwnedReadHalf>>,
    writer: Option<OwnedWriteHalf>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Session {
    async fn start(kind: Kind, env: &serde_json::Map<String, Value>) -> Result<Self, String> {
        let mut cmd = kind.command(Path::new(env!("CARGO_BIN_EXE_conformance-worker")));
        for (k, v) in env {
            cmd = cmd.env(k, v.as_str().unwrap_or_default());
        }
        let mut w = cmd.spawn().await.map_err(|e| format!("spawn: {e}"))?;
        let channel = w.channel.take().ok_or("no channel")?;
        let (rd, wr) = channel.into_split();
        let mut stderr = w.child.stderr.take().ok_or("no stderr")?;
        let mut stdout = w.child.stdout.take().ok_or("no stdout")?;
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink).await;
        });
        let stderr = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).into_owned()
        });
        Ok(Self {
            child: w.child,
            pid: w.pid,
            reader: Some(FrameReader::new(rd, DEFAULT_MAX_FRAME)),
            writer: Some(wr),
            stderr,
        })
    }

    async fn next(&mut self, within: Duration) -> Result<Value, String> {
        let reader = self.reader.as_mut().ok_or("channel closed by the test")?;
        let frame = tokio::time::timeout(within, reader.next_frame())
            .await
            .map_err(|_| format!("no frame within {within:?}"))?
            .map_err(|e| format!("read: {e}"))?
            .ok_or("the worker closed the channel")?;
        match decode_from_worker(&frame) {
            Ok(Decoded::Message(_)) => {}
            Ok(Decoded::Ignored { reason }) => return Err(format!("ignored frame: {reason}")),
            Err(e) => {
                return Err(format!(
                    "undecodable frame {:?}: {e}",
                    String::from_utf8_lossy(&frame)
                ))
            }
        }
        serde_json::from_slice(&frame).map_err(|e| e.to_string())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let w = self.writer.as_mut().ok_or("channel closed by the test")?;
        w.write_all(bytes).await.map_err(|e| format!("write: {e}"))
    }

    async fn step(&mut self, step: &Value) -> Result<(), String> {
        let within = step["within_ms"]
            .as_u64()
            .map_or(DEFAULT_WITHIN, Duration::from_millis);
        if let Some(want) = step.get("expect") {
            let got = self.next(within).await?;
            if !matches(want, &got) {
                return Err(format!("expected {want}, got {got}"));
            }
        } else if let Some(set) = step.get("expect_set").and_then(Value::as_array) {
            let mut left: Vec<&Value> = set.iter().collect();
            while !left.is_empty() {
                let got = self.next(within).await?;
                let i = left
                    .iter()
                    .position(|w| matches(w, &got))
                    .ok_or_else(|| format!("unexpected {got}, still waiting for {left:?}"))?;
                left.remove(i);
            }
        } else if let Some(msg) = step.get("send") {
            let mut line = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
            line.push(b'\n');
            self.write(&line).await?;
        } else if let Some(raw) = step.get("send_raw").and_then(Value::as_str) {
            self.write(raw.as_bytes()).await?;
        } else if let Some(n) = step.get("send_raw_oversized").and_then(Value::as_u64) {
            let head = br#"{"type":"run","id":"big","job":"echo","params":""#;
            let mut line = head.to_vec();
            line.resize(usize::try_from(n).unwrap_or(0).max(head.len()), b'x');
            line.extend_from_slice(b"\"}\n");
            // The worker may exit before reading all of it: a failed write is fine here.
            let _ = self.write(&line).await;
        } else if let Some(ms) = step.get("sleep_ms").and_then(Value::as_u64) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        } else if step.get("close").is_some() {
            self.reader = None;
            self.writer = None;
        } else if let Some(exit) = step.get("expect_exit") {
            let status = tokio::time::timeout(within, self.child.wait())
                .await
                .map_err(|_| format!("the worker did not exit within {within:?}"))?
                .map_err(|e| e.to_string())?;
            let ok = match &exit["code"] {
                Value::Number(n) => status.code() == n.as_i64().and_then(|c| i32::try_from(c).ok()),
                Value::String(s) if s == "nonzero" => !status.success(),
                _ => true,
            };
            if !ok {
                return Err(format!("exit {status}, wanted {}", exit["code"]));
            }
        } else if let Some(text) = step.get("expect_stderr_contains").and_then(Value::as_str) {
            let stderr = tokio::time::timeout(within, &mut self.stderr)
                .await
                .map_err(|_| "stderr did not close".to_owned())?
                .map_err(|e| e.to_string())?;
            if !stderr.contains(text) {
                return Err(format!("stderr lacks {text:?}: {stderr:?}"));
            }
        } else {
            return Err(format!("unknown step {step}"));
        }
        Ok(())
    }

    /// Kills the worker's group and checks that nothing of it is left.
    async fn finish(mut self) -> Result<(), String> {
        let _ = signal_group(self.pid, libc_sigkill());
        let _ = self.child.wait().await;
        for _ in 0..100 {
            if !group_alive(self.pid) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("process group {} outlived its worker", self.pid))
    }
}

fn libc_sigkill() -> i32 {
    9
}

async fn run_kind(kind: Kind) {
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in cases() {
        let name = case["name"].as_str().unwrap_or("?").to_owned();
        let skipped = case["skip"]
            .as_array()
            .is_some_and(|s| s.iter().any(|k| k == kind.name()));
        if skipped {
            continue;
        }
        ran += 1;
        let env = case["env"].as_object().cloned().unwrap_or_default();
        let mut session = match Session::start(kind, &env).await {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        for (i, step) in case["steps"].as_array().into_iter().flatten().enumerate() {
            if let Err(e) = session.step(step).await {
                failures.push(format!("{name}, step {i} ({step}): {e}"));
                break;
            }
        }
        if let Err(e) = session.finish().await {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(ran > 0, "no case ran for {}", kind.name());
    assert!(
        failures.is_empty(),
        "{} of {ran} conformance cases failed for {}:\n  {}",
        failures.len(),
        kind.name(),
        failures.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk() {
    run_kind(Kind::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_sdk() {
    run_kind(Kind::Node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk() {
    run_kind(Kind::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_node_script() {
    run_kind(Kind::PlainNode).await;
}

#[test]
fn matcher_is_partial_but_strict() {
    use serde_json::json;
    assert!(matches(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    assert!(!matches(&json!({"a": 1}), &json!({"a": 2})));
    assert!(!matches(&json!({"a": 1}), &json!({"b": 1})));
    assert!(matches(&json!({"s": "$string"}), &json!({"s": "x"})));
    assert!(!matches(&json!({"s": "$string"}), &json!({"s": ""})));
    assert!(!matches(&json!({"s": "$number"}), &json!({"s": "1"})));
    assert!(!matches(&json!([1, 2]), &json!([1, 2, 3])));
}
