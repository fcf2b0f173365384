//! Clients of the seed's TCP/UDP line protocol, blocking (a `#[test]` with a [`Running`]
//! booted on its own runtime), and a daemon started with the protocol on.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use super::{config, fixtures, sqlite, Running};

/// How long a test client waits for an answer before failing (a hang guard).
pub const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// A daemon with the job files of `tests/fixtures/lines`, `--tcp` and `--udp` on free ports
/// and `toml` as its offload.toml, booted on its own runtime.
pub fn start(toml: &str) -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&fixtures(), &tmp.path().join("data"), toml);
    cfg.tcp = Some("127.0.0.1:0".parse().unwrap());
    cfg.udp = Some("127.0.0.1:0".parse().unwrap());
    let store = sqlite(&cfg);
    Running::boot(cfg, store).keep(tmp)
}

/// `GET path` on the HTTP API, blocking: the JSON body (a 2xx expected).
pub fn http_get(d: &Running, path: &str) -> serde_json::Value {
    let mut s = TcpStream::connect(d.http).unwrap();
    s.set_read_timeout(Some(ANSWER_WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        d.http
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 2"), "GET {path}: {head}\n{body}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// A connection with read and write timeouts (hang guards).
pub fn connect(addr: SocketAddr) -> TcpStream {
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
