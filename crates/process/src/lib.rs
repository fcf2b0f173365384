//! Spawning and supervising offload worker processes.
//!
//! - [`ChildJob`] runs one job in a fresh child process and returns a [`JobProcess`] handle:
//!   events, calls, a typed [`Outcome`], and `kill(grace)` that escalates to SIGKILL on the
//!   actual exit, for the whole process group.
//! - [`WorkerCommand`] is the layer below: one contained process with its channel on fd 3.
//! - [`registry`] kills everything on exit; `reaper` explains how nothing survives a SIGKILLed
//!   supervisor.
//! - [`JobsDir`] resolves job names safely; [`Runtimes`] finds `node`, `python3` and the SDKs.
//! - [`timer`] clamps every duration before it reaches a timer: no option can panic a
//!   supervisor.
//! - Containment has four layers where a writable cgroup v2 hierarchy exists (a cgroup per
//!   worker; [`JobProcess::sweep_leftovers`] kills what a job left behind), three elsewhere
//!   (`ARCHITECTURE.md`, "Containment"). A process actor that panics kills its process and
//!   reports `Outcome::Failed { name: "SupervisorFailed" }`.
//!
//! Linux is the supported platform (`PR_SET_PDEATHSIG`, `/proc`); other Unixes build but lose
//! those two guarantees.
#![deny(missing_docs)]

mod cgroup;
mod child;
mod child_job;
mod clone3;
mod contain;
mod emitter;
mod env_policy;
mod fdpass;
mod flow;
mod guard;
mod limits;
mod markers;
mod outcome;
mod process;
mod reaper;
pub mod registry;
mod resolve;
mod runtime;
mod spawn;
mod sys;
pub mod timer;
mod vfork;

pub use cgroup::NO_CGROUP_ENV;
pub use child::WorkerChild;
pub use child_job::{ChildJob, ChildJobConfig, ExecError, ExecOptions, Mode, ParamsVia, Runtime};
pub use emitter::{Answers, SinkHook};
pub use env_policy::{
    check_env_var, EnvAllowList, EnvPolicy, EnvVarError, DEFAULT_ALLOW, DEFAULT_DENY,
};
pub use flow::{Credit, EventFlow, MAX_EVENT_BACKPRESSURE, STALL_WARNING};
pub use guard::panic_message;
pub use limits::ResourceLimits;
pub use markers::{SUPERVISOR_ENV, WORKER_ENV};
pub use offload_protocol::{ErrorInfo, Receiver};
pub use outcome::{Limit, Outcome};
pub use process::{
    start_process, CallError, FdError, HostChannel, HostRead, JobProcess, OutputItem, ProcessEvent,
    ProcessOptions, SendError, Stream, DEFAULT_FD_ACK_TIMEOUT, DEFAULT_MAX_FDS_PER_RUN,
    MAX_LOG_LINE,
};
pub use reaper::pids_with_env;
pub use resolve::{check_name, JobKind, JobsDir, ResolveError, ResolvedJob};
pub use runtime::Runtimes;
pub use spawn::{
    group_alive, live_group_members, signal_group, SpawnError, SpawnedWorker, WorkerCommand,
};
