#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod borrowed;
mod codec;
mod error;
mod frame;
mod handle;
mod message;
mod stream;

#[cfg(feature = "tokio")]
mod reader;

pub use borrowed::{PrefixedId, RunRef};
pub use codec::{decode_from_worker, decode_to_worker, encode, encode_into, Decoded};
pub use error::{DecodeError, EncodeError};
pub use frame::LineFramer;
pub use handle::{
    decode_handle, decode_handle_reply, encode_handle, FdKind, FdNotice, HandleFrame, HandleReply,
    CAP_FDS, CAP_HANDLES, HANDLE_ACK, HANDLE_NACK, PROTOCOL_MINOR,
};
pub use message::{
    Ack, Broadcast, Call, Cancel, ErrorInfo, Event, FromWorker, Kill, Ping, Pong, Progress, Ready,
    Receiver, ResultMsg, Run, Shutdown, ToWorker, WorkerError,
};
#[cfg(feature = "tokio")]
pub use reader::{write_frames, FrameReader, ReadError};
pub use stream::{StreamError, StreamSpec, DEFAULT_STREAM_STALL};
#[cfg(feature = "tokio")]
pub use stream::{StreamReader, StreamWriter};

/// The protocol version this crate speaks. See `docs/protocol.md` §8.
pub const PROTOCOL_VERSION: u32 = 1;

/// The default largest frame, in bytes, newline excluded (16 MiB).
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The largest `id`, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// The `id` a worker acknowledges `shutdown` with.
pub const SHUTDOWN_ACK_ID: &str = "shutdown";

/// Environment variables a supervisor sets for its workers (`docs/protocol.md` §1).
pub mod env {
    /// The channel's file descriptor (always `3`).
    pub const CHANNEL_FD: &str = "OFFLOAD_CHANNEL_FD";
    /// The highest protocol version the supervisor speaks.
    pub const PROTOCOL: &str = "OFFLOAD_PROTOCOL";
    /// The highest minor version of it the supervisor speaks (`1`: descriptors, §9).
    pub const PROTOCOL_MINOR: &str = "OFFLOAD_PROTOCOL_MINOR";
    /// The largest frame either side may send, in bytes.
    pub const MAX_FRAME: &str = "OFFLOAD_MAX_FRAME";
    /// The jobs folder, absolute.
    pub const JOBS_DIR: &str = "OFFLOAD_JOBS_DIR";
    /// How many jobs a runner runs at once.
    pub const CONCURRENCY: &str = "OFFLOAD_CONCURRENCY";
    /// Node's IPC channel fd: set to the same fd for Node workers.
    pub const NODE_CHANNEL_FD: &str = "NODE_CHANNEL_FD";
    /// Node's IPC serialization: `json` for Node workers.
    pub const NODE_CHANNEL_SERIALIZATION_MODE: &str = "NODE_CHANNEL_SERIALIZATION_MODE";
}

/// The fd number the worker's end of the channel is inherited as.
pub const CHANNEL_FD: i32 = 3;
