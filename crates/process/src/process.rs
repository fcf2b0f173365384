//! One worker process: its handle ([`JobProcess`]) and the actor task that owns it.
//!
//! The actor owns the tokio `Child`, the channel's reading half, the pending calls and every
//! decision about the process's end. Handles talk to it through a command queue and watch its
//! outcome through `watch` channels. Frames to the worker go into the channel's shared write
//! buffer (`outbox.rs`): the actor's (the main run, `send`, `call`) and the hot ones a handle
//! writes itself (`queue`/`flush`/`send_frame`, a pool's runs: no hop to the actor), written
//! from the sender's own task when the socket takes them at once; a writer task writes the
//! rest (so a worker that stops reading can never block a sender). Two reader tasks turn stdout
//! and stderr into bounded log lines.
//!
//! ```text
//!   JobProcess ──queue/flush──▶ outbox ──write──▶ fd 3 (worker)   (rest: writer task)
//!        │──commands──▶ actor ──frames──▶ outbox
//!        ▲                     │  ◀──frames── FrameReader  ◀── fd 3
//!        └─events/outcome──────┘  ◀──exit──── Child::wait
//! ```
//!
//! One file per role:
//!
//! - `handle.rs`: [`JobProcess`] and the commands it sends the actor;
//! - `event.rs`: [`ProcessEvent`], what the actor reports;
//! - `launch.rs`: [`start_process`], [`ProcessOptions`], wiring a spawned worker to its actor;
//! - `outbox.rs`: the channel's shared write buffer and its writer task;
//! - `fds.rs`: what descriptors a run may carry (`SCM_RIGHTS`), their limits and typed errors;
//! - `actor.rs`: the `select!` loop over frames, commands, the exit and the timers; its
//!   `actor/passing.rs` sends a run's descriptors, one acknowledged at a time;
//! - `verdict.rs`: how the outcome is decided, as pure functions with their own table tests;
//! - `output.rs`: the stdout and stderr pumps.

mod actor;
mod channel;
mod errors;
mod event;
mod fds;
mod handle;
mod host_read;
mod launch;
mod outbox;
mod output;
mod verdict;

pub use errors::{CallError, SendError};
pub use event::{OutputItem, ProcessEvent, Stream};
pub(crate) use fds::classify_all;
pub use fds::{FdError, DEFAULT_FD_ACK_TIMEOUT, DEFAULT_MAX_FDS_PER_RUN};
pub use handle::JobProcess;
pub(crate) use handle::MainJob;
pub use host_read::{HostChannel, HostRead};
pub(crate) use launch::{start, Dispatch};
pub use launch::{start_process, ProcessOptions};
pub use output::MAX_LOG_LINE;
