//! Spawning and supervising offload worker processes.
//!
//! - [`WorkerCommand`] starts one contained worker with its channel (`spawn` module).
#![deny(missing_docs)]

mod spawn;
mod sys;

pub use spawn::{
    group_alive, signal_group, ResourceLimits, SpawnError, SpawnedWorker, WorkerCommand,
};
