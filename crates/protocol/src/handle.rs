//! Descriptors passed with a run (protocol 1.1, `docs/protocol.md` §9): the frames of Node's
//! own handle passing (`NODE_HANDLE` with one descriptor attached by `SCM_RIGHTS`, answered by
//! `NODE_HANDLE_ACK` or `NODE_HANDLE_NACK`), so a plain Node worker receives a real
//! `net.Socket` / `net.Server` / `dgram.Socket`, and the Rust and Python SDKs read the same
//! frames. Each carries an [`FdNotice`] naming the run it belongs to; the `run` itself then
//! says how many it takes ([`Run::fds`](crate::Run::fds)).

use serde::{Deserialize, Serialize};

use crate::error::DecodeError;

/// The minor version of protocol 1 this crate speaks: 1 adds descriptors (§9). A worker
/// announces it in `ready.minor`; an older worker omits it (minor 0).
pub const PROTOCOL_MINOR: u32 = 1;

/// The capability of a worker that takes any descriptor (files, pipes, sockets): the Rust and
/// Python SDKs.
pub const CAP_FDS: &str = "fds";

/// The capability of a worker that takes sockets only, as Node handles (`net.Socket`,
/// `net.Server`, `dgram.Socket`): the Node SDK. Node cannot wrap a file or a pipe.
pub const CAP_HANDLES: &str = "handles";

/// The acknowledgement a receiver writes after taking a descriptor (what Node writes).
pub const HANDLE_ACK: &[u8] = br#"{"cmd":"NODE_HANDLE_ACK"}"#;

/// The refusal a receiver writes when the frame came without a descriptor, or it holds too
/// many already (what Node writes when no descriptor arrived).
pub const HANDLE_NACK: &[u8] = br#"{"cmd":"NODE_HANDLE_NACK"}"#;

/// What kind of descriptor it is, as the supervisor found it (`fstat`, `SO_TYPE`,
/// `SO_DOMAIN`, `SO_ACCEPTCONN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FdKind {
    /// A connected TCP socket.
    Tcp,
    /// A listening TCP socket.
    TcpListener,
    /// A connected `AF_UNIX` stream socket.
    Unix,
    /// A listening `AF_UNIX` stream socket.
    UnixListener,
    /// A UDP socket over IPv4.
    Udp4,
    /// A UDP socket over IPv6.
    Udp6,
    /// Any other socket (`AF_UNIX` datagram, raw, …).
    Socket,
    /// A regular file.
    File,
    /// A pipe or FIFO.
    Pipe,
    /// Anything else (a character device, an eventfd, …).
    Other,
}

impl FdKind {
    /// The `type` of the `NODE_HANDLE` frame: Node's handle conversion for the kinds Node
    /// can wrap, `None` for the others (a worker with only [`CAP_HANDLES`] cannot take them).
    pub fn node_type(self) -> Option<&'static str> {
        match self {
            Self::Tcp | Self::Unix => Some("net.Socket"),
            Self::TcpListener | Self::UnixListener => Some("net.Server"),
            Self::Udp4 | Self::Udp6 => Some("dgram.Socket"),
            _ => None,
        }
    }

    /// Node's `dgramType` for a UDP socket.
    pub fn dgram_type(self) -> Option<&'static str> {
        match self {
            Self::Udp4 => Some("udp4"),
            Self::Udp6 => Some("udp6"),
            _ => None,
        }
    }

    /// The kebab-case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::TcpListener => "tcp-listener",
            Self::Unix => "unix",
            Self::UnixListener => "unix-listener",
            Self::Udp4 => "udp4",
            Self::Udp6 => "udp6",
            Self::Socket => "socket",
            Self::File => "file",
            Self::Pipe => "pipe",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for FdKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message inside a `NODE_HANDLE` frame: descriptor `index` of `of` for run `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FdNotice {
    /// Always `"fd"`.
    #[serde(rename = "type")]
    pub kind_tag: String,
    /// The run it belongs to.
    pub id: String,
    /// Its position among the run's descriptors, from 0.
    pub index: u32,
    /// How many the run has.
    pub of: u32,
    /// What it is.
    pub kind: FdKind,
}

impl FdNotice {
    /// Descriptor `index` of `of` for run `id`.
    pub fn new(id: impl Into<String>, index: u32, of: u32, kind: FdKind) -> Self {
        Self {
            kind_tag: "fd".into(),
            id: id.into(),
            index,
            of,
            kind,
        }
    }
}

#[derive(Serialize)]
struct HandleFrameOut<'a> {
    cmd: &'static str,
    #[serde(rename = "type")]
    handle_type: &'a str,
    #[serde(rename = "dgramType", skip_serializing_if = "Option::is_none")]
    dgram_type: Option<&'a str>,
    msg: &'a FdNotice,
}

#[derive(Deserialize)]
struct HandleFrameIn {
    cmd: String,
    msg: FdNotice,
}

/// The `NODE_HANDLE` frame (without its newline) announcing `notice`; the descriptor goes
/// with its first byte. The `type` is Node's conversion for sockets, `offload.fd` for the
/// kinds Node cannot wrap (sent only to workers with [`CAP_FDS`]).
pub fn encode_handle(notice: &FdNotice) -> Vec<u8> {
    let frame = HandleFrameOut {
        cmd: "NODE_HANDLE",
        handle_type: notice.kind.node_type().unwrap_or("offload.fd"),
        dgram_type: notice.kind.dgram_type(),
        msg: notice,
    };
    // A struct of strings and integers always serializes.
    serde_json::to_vec(&frame).unwrap_or_default()
}

/// What a worker does with a frame it reads, when the frame is about descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandleFrame {
    /// A `NODE_HANDLE` frame: a descriptor came (or should have come) with it.
    Handle(FdNotice),
}

/// For a worker: `Some` when `line` is a `NODE_HANDLE` frame (cheap check first: any other
/// frame costs one prefix comparison).
///
/// # Errors
///
/// [`DecodeError::InvalidMessage`] when it is a `NODE_HANDLE` frame without a valid `msg`.
pub fn decode_handle(line: &[u8]) -> Option<Result<HandleFrame, DecodeError>> {
    if !line.starts_with(br#"{"cmd":"NODE_HANDLE""#) {
        return None;
    }
    Some(
        serde_json::from_slice::<HandleFrameIn>(line)
            .map_err(|source| DecodeError::InvalidMessage {
                kind: "NODE_HANDLE".into(),
                source,
            })
            .and_then(|f| {
                if f.cmd == "NODE_HANDLE" && f.msg.kind_tag == "fd" {
                    crate::codec::check_id(&f.msg.id)?;
                    Ok(HandleFrame::Handle(f.msg))
                } else {
                    Err(DecodeError::InvalidMessage {
                        kind: "NODE_HANDLE".into(),
                        source: serde::de::Error::custom("msg.type must be \"fd\""),
                    })
                }
            }),
    )
}

/// A worker's answer to a `NODE_HANDLE` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleReply {
    /// The descriptor was taken.
    Ack,
    /// It was not (none arrived, or the worker holds too many).
    Nack,
}

/// For a supervisor: `Some` when `line` is `NODE_HANDLE_ACK` or `NODE_HANDLE_NACK` (any
/// whitespace or key order Node may use is accepted; other frames cost one search for
/// `NODE_HANDLE_`).
pub fn decode_handle_reply(line: &[u8]) -> Option<HandleReply> {
    if line.len() > 256 || !line.windows(12).any(|w| w == b"NODE_HANDLE_") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    match v.get("cmd")?.as_str()? {
        "NODE_HANDLE_ACK" => Some(HandleReply::Ack),
        "NODE_HANDLE_NACK" => Some(HandleReply::Nack),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_goes_as_node_would_send_it_and_a_worker_reads_it_back() {
        let n = FdNotice::new("j7", 0, 2, FdKind::Tcp);
        let line = encode_handle(&n);
        assert_eq!(
            std::str::from_utf8(&line).unwrap(),
            r#"{"cmd":"NODE_HANDLE","type":"net.Socket","msg":{"type":"fd","id":"j7","index":0,"of":2,"kind":"tcp"}}"#
        );
        assert_eq!(
            decode_handle(&line).unwrap().unwrap(),
            HandleFrame::Handle(n)
        );
        let udp = encode_handle(&FdNotice::new("j", 1, 2, FdKind::Udp6));
        assert!(std::str::from_utf8(&udp)
            .unwrap()
            .contains(r#""type":"dgram.Socket","dgramType":"udp6""#));
        let file = encode_handle(&FdNotice::new("j", 0, 1, FdKind::File));
        assert!(std::str::from_utf8(&file)
            .unwrap()
            .contains(r#""type":"offload.fd""#));
    }

    #[test]
    fn replies_are_recognised_and_other_frames_are_not() {
        assert_eq!(decode_handle_reply(HANDLE_ACK), Some(HandleReply::Ack));
        assert_eq!(decode_handle_reply(HANDLE_NACK), Some(HandleReply::Nack));
        assert_eq!(
            decode_handle_reply(br#"{ "cmd" : "NODE_HANDLE_ACK" }"#),
            Some(HandleReply::Ack)
        );
        assert_eq!(
            decode_handle_reply(br#"{"type":"result","id":"NODE_HANDLE_ACK","value":1}"#),
            None
        );
        assert!(decode_handle(br#"{"type":"run","id":"a","job":"x"}"#).is_none());
        assert!(decode_handle(
            br#"{"cmd":"NODE_HANDLE","type":"net.Socket","msg":{"type":"run"}}"#
        )
        .unwrap()
        .is_err());
        assert!(decode_handle(br#"{"cmd":"NODE_HANDLE","type":"net.Socket","msg":{"type":"fd","id":"","index":0,"of":1,"kind":"tcp"}}"#)
            .unwrap()
            .is_err());
    }
}
