//! The documented exit codes of `offload` (README, "Exit codes").

use offload_process::Outcome;

/// The job succeeded.
pub(crate) const OK: i32 = 0;
/// The job failed (threw, rejected, returned an error).
pub(crate) const FAILED: i32 = 1;
/// Bad usage: unknown job, invalid name, bad params, unreadable file.
pub(crate) const USAGE: i32 = 2;
/// The job timed out.
pub(crate) const TIMED_OUT: i32 = 3;
/// The process was killed, crashed, or exited without answering.
pub(crate) const DIED: i32 = 4;
/// The worker broke the protocol.
pub(crate) const PROTOCOL: i32 = 5;
/// The job hit a resource limit.
pub(crate) const RESOURCE_LIMIT: i32 = 6;
/// The daemon cannot be reached (`offload serve` not running at `--server`, no answer in time,
/// or shutting down).
pub(crate) const UNREACHABLE: i32 = 7;
/// The job was cancelled.
pub(crate) const CANCELLED: i32 = 8;
/// The job is not over yet (`offload result` without `--wait`, or the wait ran out).
pub(crate) const PENDING: i32 = 9;
/// offload itself failed.
pub(crate) const INTERNAL: i32 = 70;

/// The exit code for an outcome.
pub(crate) fn for_outcome(o: &Outcome) -> i32 {
    match o {
        Outcome::Succeeded { .. } => OK,
        Outcome::Failed { .. } | Outcome::FailedNoRetry { .. } => FAILED,
        Outcome::TimedOut => TIMED_OUT,
        Outcome::ProtocolError { .. } => PROTOCOL,
        Outcome::ResourceLimit { .. } => RESOURCE_LIMIT,
        _ => DIED,
    }
}
