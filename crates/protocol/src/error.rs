use thiserror::Error;

/// Why a frame could not be decoded. Every case is a protocol error (`docs/protocol.md` §6).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The line is longer than the frame limit.
    #[error("frame larger than the limit of {max} bytes")]
    FrameTooLarge {
        /// The limit.
        max: usize,
    },
    /// The line is not UTF-8.
    #[error("frame is not valid utf-8")]
    InvalidUtf8,
    /// The line is not JSON.
    #[error("frame is not valid json: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// The JSON value is not an object.
    #[error("frame is not a json object")]
    NotAnObject,
    /// The object has no `type`, `cmd` or `channel`.
    #[error("frame has no \"type\" (nor a legacy \"cmd\" or \"channel\")")]
    MissingType,
    /// A known message with a missing or ill-typed field.
    #[error("invalid {kind:?} message: {source}")]
    InvalidMessage {
        /// The message's type.
        kind: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// An `id` that is empty or longer than [`MAX_ID_LEN`](crate::MAX_ID_LEN).
    #[error("invalid id: must be 1..={max} bytes, got {len}")]
    InvalidId {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a message could not be encoded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded frame would exceed the limit.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The encoded size, newline excluded.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// serde could not serialize it (a map with non-string keys, say).
    #[error("message cannot be serialized: {0}")]
    Serialize(#[source] serde_json::Error),
}
