//! Clients of the seed's TCP/UDP line protocol for the tests, and a daemon started with it on:
//! the daemon binds port 0 and logs `tcp line protocol listening on tcp://ADDR` (and `udp://`),
//! which [`LineDaemon::start`] reads back, as `Daemon` does for the HTTP address.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{repo_root, Daemon};

/// How long a test client waits for an answer before failing.
pub const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// The job files of these tests.
pub fn fixtures() -> PathBuf {
    repo_root().join("crates/cli/tests/fixtures/lines")
}

/// A daemon with `--tcp` and `--udp` on free ports and `config` as its offload.toml.
pub struct LineDaemon {
    pub daemon: Daemon,
    pub tcp: SocketAddr,
    pub udp: SocketAddr,
    _tmp: tempfile::TempDir,
}

impl LineDaemon {
    pub fn start(config: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let toml = tmp.path().join("offload.toml");
        std::fs::write(&toml, config).unwrap();
        let daemon = Daemon::start_with(
            &fixtures(),
            &tmp.path().join("data"),
            &[
                "--config",
                toml.to_str().unwrap(),
                "--tcp",
                "127.0.0.1:0",
                "--udp",
                "127.0.0.1:0",
            ],
        );
        let tcp = logged_addr(&daemon, "tcp line protocol listening on tcp://");
        let udp = logged_addr(&daemon, "udp line protocol listening on udp://");
        Self {
            daemon,
            tcp,
            udp,
            _tmp: tmp,
        }
    }

    /// `GET path` on the HTTP API: the JSON body.
    pub fn http_get(&self, path: &str) -> serde_json::Value {
        let addr = self.daemon.url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(ANSWER_WAIT)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.1 2"), "GET {path}: {head}\n{body}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn logged_addr(d: &Daemon, prefix: &str) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for line in d.stderr() {
            let line = strip_ansi(&line);
            if let Some(rest) = line.split(prefix).nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("");
                return addr
                    .parse()
                    .unwrap_or_else(|e| panic!("{addr:?} in {line:?}: {e}"));
            }
        }
        assert!(
            Instant::now() < deadline,
            "no {prefix:?} line: {:?}",
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(ANSWER_WAIT)).unwrap();
    s.set_write_timeout(Some(ANSWER_WAIT)).unwrap();
    s
}

/// The seed's PHP client: one write without a newline, no half-close, one `fgets($fp, 1024)`
/// (up to a newline, 1023 bytes, or the end), then close.
pub fn php_call(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = connect(addr);
    s.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while got.len() < 1023 {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                got.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
            Err(e) => panic!("php client: no answer to {:?}: {e}", lossy(request)),
        }
    }
    String::from_utf8(got).unwrap()
}

/// Writes `request`, half-closes, reads the whole answer.
pub fn half_close_call(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = connect(addr);
    s.write_all(request).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    read_all(&mut s)
}

/// Writes `request` followed by a newline, keeps its side open, reads the answer to the end.
pub fn line_call(addr: SocketAddr, request: &str) -> String {
    let mut s = connect(addr);
    s.write_all(format!("{request}\n").as_bytes()).unwrap();
    read_all(&mut s)
}

/// Writes `request` without newline or half-close, reads the answer to the end (the daemon
/// closes after answering).
pub fn gap_call(addr: SocketAddr, request: &str) -> String {
    let mut s = connect(addr);
    s.write_all(request.as_bytes()).unwrap();
    read_all(&mut s)
}

/// Reads to the end.
pub fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("reading the answer: {e} (got {:?})", lossy(&out)));
    String::from_utf8(out).unwrap()
}

/// One datagram.
pub fn udp_send(addr: SocketAddr, datagram: &[u8]) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(datagram, addr).unwrap();
}

/// Whether `answer` is an error by the seed's client check `^[45][0-9]{2}:`.
pub fn is_error(answer: &str) -> bool {
    let b = answer.trim_start().as_bytes();
    b.len() >= 4
        && matches!(b[0], b'4' | b'5')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && b[3] == b':'
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}

/// The jobs folder of a test.
pub fn jobs_dir(d: &LineDaemon) -> &Path {
    &d.daemon.jobs
}
