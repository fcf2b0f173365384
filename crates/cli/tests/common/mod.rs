//! Boots a real `offload serve` in a tempdir (pueue's tests/helper/daemon.rs pattern): waits for
//! its "listening on" line, kills it on drop.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const OFFLOAD: &str = env!("CARGO_BIN_EXE_offload");

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An HTTP client for the API (long polls need the generous timeout).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap()
}

/// `POST path` with a JSON body: (status, JSON body or null).
pub async fn post(d: &Daemon, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = http()
        .post(format!("{}{path}", d.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// `GET path`: (status, JSON body or null).
pub async fn get(d: &Daemon, path: &str) -> (u16, serde_json::Value) {
    let r = http().get(format!("{}{path}", d.url)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Long-polls a job's result until it is over (a hang guard of two minutes).
pub async fn wait_result(d: &Daemon, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, v) = get(d, &format!("/v1/jobs/{id}/result?wait=20")).await;
        if status == 200 {
            return v;
        }
        assert_eq!(status, 202, "{v}");
        assert!(Instant::now() < deadline, "job {id} never ended: {v}");
    }
}

/// A running daemon.
pub struct Daemon {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
    pub jobs: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `offload serve` on a free port with `jobs` and a fresh data folder.
    pub fn start(jobs: &Path) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let mut d = Self::start_with(jobs, &data, &[]);
        d._tmp = Some(tmp);
        d
    }

    /// Starts `offload serve` with a given data folder and extra arguments.
    pub fn start_with(jobs: &Path, data: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(OFFLOAD)
            .arg("serve")
            .arg("--jobs")
            .arg(jobs)
            .arg("--data")
            .arg(data)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra)
            .env("OFFLOAD_LOG", "info,offload::job=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("offload serve starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.trim().to_owned());
                }
                keep.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("offload serve did not start: {:?}", lines.lock().unwrap()));
        Self {
            child,
            url: format!("http://{addr}"),
            data: data.to_path_buf(),
            jobs: jobs.to_path_buf(),
            _tmp: None,
            stderr: lines,
        }
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGKILL, no grace.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "offload serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub mod cli;
