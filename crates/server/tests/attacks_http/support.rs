//! The attack suite's view of a daemon booted in this process (`common::Running`: 127.0.0.1:0,
//! a tempdir, SQLite): it speaks raw HTTP/1.1 over `tokio::net::TcpStream`, so tests control
//! every byte and every stall.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{config, Running};

/// Node jobs the tests run.
const JOBS: &[(&str, &str)] = &[
    ("noop.js", "module.exports = async (params) => ({ ok: true, params });\n"),
    (
        "spam.js",
        "module.exports = async (p, ctx) => {\n  const pad = 'x'.repeat(p.size);\n  for (let i = 0; i < p.count; i++) ctx.progress({ i, pad });\n  return { sent: p.count };\n};\n",
    ),
];

/// A daemon in this process.
pub struct Served {
    running: Running,
    pub addr: SocketAddr,
}

impl Served {
    /// Starts one with `toml` as its `offload.toml` (e.g. an `[http]` section).
    pub async fn start(toml: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let jobs = tmp.path().join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        for (name, text) in JOBS {
            std::fs::write(jobs.join(name), text).unwrap();
        }
        let cfg = config(&jobs, &tmp.path().join("data"), toml);
        let running = Running::start(tmp, cfg).await;
        Self {
            addr: running.http,
            running,
        }
    }

    /// `Host` as a client of this daemon sends it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// One request on a fresh connection: (status, body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let host = self.host();
        let mut h: Vec<(&str, &str)> = vec![("host", host.as_str())];
        h.extend_from_slice(headers);
        exchange(self.addr, &request(method, path, &h, body)).await
    }

    /// `call` with a JSON body and the right content type; the body parsed.
    pub async fn json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let text = body.to_string();
        let (status, body) = self
            .call(
                method,
                path,
                &[("content-type", "application/json")],
                text.as_bytes(),
            )
            .await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Submits a job: its id.
    pub async fn submit(&self, body: Value) -> String {
        let (status, v) = self.json("POST", "/v1/jobs", &body).await;
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    /// Long-polls a job until it is over (a hang guard of two minutes).
    pub async fn wait(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, v) = self
                .json(
                    "GET",
                    &format!("/v1/jobs/{id}/result?wait=20"),
                    &Value::Null,
                )
                .await;
            if status == 200 {
                return v;
            }
            assert_eq!(status, 202, "{v}");
            assert!(Instant::now() < deadline, "job {id} never ended: {v}");
        }
    }

    /// Stops the daemon (running jobs get two seconds).
    pub async fn stop(self) {
        self.running.stop_within(Duration::from_secs(2)).await;
    }
}

/// The bytes of a request (`Connection: close`, `Content-Length` when a body is given).
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends `req` and reads the answer to the end: (status, body).
pub async fn exchange(addr: SocketAddr, req: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req).await.unwrap();
    read_answer(&mut s).await
}

/// Reads an answer to EOF (a minute at most): (status, body); status 0 when none came.
pub async fn read_answer(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut raw)).await;
    parse(&raw)
}

/// (status, body) of raw response bytes; status 0 when there is no head.
pub fn parse(raw: &[u8]) -> (u16, Vec<u8>) {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, raw.to_vec());
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw[end + 4..].to_vec())
}

/// The error code of a JSON error body.
pub fn code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["code"]
        .as_str()
        .unwrap_or("<not a JSON error>")
        .to_owned()
}

/// This process's resident memory (the daemon lives in it), in bytes.
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Whether the server closed `s`, sending `drip` one byte at a time meanwhile; gives up after
/// `give_up` (a generous deadline, not a threshold).
pub async fn closed_while_dripping(s: &mut TcpStream, drip: &[u8], give_up: Duration) -> bool {
    let deadline = Instant::now() + give_up;
    let mut buf = [0u8; 1024];
    let mut i = 0;
    while Instant::now() < deadline {
        if i < drip.len() {
            if s.write_all(&drip[i..=i]).await.is_err() {
                return true;
            }
            i += 1;
        }
        let read = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            return true;
        }
    }
    false
}
