//! One worker process: its handle ([`JobProcess`]) and the actor task that owns it.
//!
//! The actor owns the tokio `Child`, the channel's reading half, the pending calls and every
//! decision about the process's end. Handles talk to it through a command queue and watch its
//! outcome through `watch` channels. A writer task owns the channel's writing half (so a worker
//! that stops reading can never block the actor), and two reader tasks turn stdout and stderr
//! into bounded log lines.
//!
//! ```text
//!   JobProcess ──commands──▶ actor ──frames──▶ writer task ──▶ fd 3 (worker)
//!        ▲                     │  ◀──frames── FrameReader  ◀── fd 3
//!        └─events/outcome──────┘  ◀──exit──── Child::wait
//! ```
//!
//! One file per role:
//!
//! - `handle.rs`: [`JobProcess`] and the commands it sends the actor;
//! - `event.rs`: [`ProcessEvent`], what the actor reports;
//! - `launch.rs`: [`start_process`], [`ProcessOptions`], wiring a spawned worker to its actor;
//! - `actor.rs`: the `select!` loop over frames, commands, the exit and the timers;
//! - `verdict.rs`: how the outcome is decided, as pure functions with their own table tests;
//! - `output.rs`: the stdout and stderr pumps.

mod actor;
mod event;
mod handle;
mod launch;
mod output;
mod verdict;

pub use event::{ProcessEvent, Stream};
pub(crate) use handle::MainJob;
pub use handle::{CallError, JobProcess, SendError};
pub(crate) use launch::{start, Dispatch};
pub use launch::{start_process, ProcessOptions};
pub use output::MAX_LOG_LINE;
