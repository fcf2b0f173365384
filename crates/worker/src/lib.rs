#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod config;
mod context;
mod control;
mod error;
mod fd;
mod fds;
mod inbound;
mod job;
mod outbox;
mod shared;
mod streams;
mod watchdog;
mod worker;

pub use context::{Context, JobError};
pub use control::Control;
pub use error::WorkerError;
pub use fds::MAX_PENDING_FDS;
pub use offload_protocol::{Receiver, StreamError, StreamReader, StreamWriter};
pub use outbox::SEND_HIGH_WATER;
pub use tokio_util::sync::CancellationToken;
pub use worker::{Stopped, Worker};
