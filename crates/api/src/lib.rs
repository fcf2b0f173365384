//! The wire contract of `offload serve`'s HTTP/JSON API (`docs/http-api.md`): every request and
//! response body, the query strings, the error envelope and its [`ErrorCode`]s, as serde types
//! with their OpenAPI schemas (`utoipa::ToSchema`).
//!
//! The daemon answers with these types and generates its OpenAPI document
//! (`GET /v1/openapi.json`) from them; the CLI and every other Rust client read and write them.
//! The crate has no HTTP stack and no runtime: it is only the contract.
//!
//! ```
//! use offload_api::{ErrorBody, ErrorCode, SubmitRequest};
//!
//! let req = SubmitRequest { job: "images/resize".into(), ..Default::default() };
//! assert_eq!(serde_json::to_string(&req).unwrap(), r#"{"job":"images/resize"}"#);
//! let e: ErrorBody =
//!     serde_json::from_str(r#"{"error":{"code":"queue_full","message":"full"}}"#).unwrap();
//! assert_eq!(e.error.code, ErrorCode::QueueFull);
//! assert_eq!(e.error.code.status(), 429);
//! ```
#![deny(missing_docs)]

mod bulk;
pub mod control;
mod cron;
mod error;
mod int;
mod jobs;
pub mod limits;
mod logs;
mod nodes;
mod ops;
mod queues;
mod retry;
mod stats;
mod throttle;

pub use bulk::{BulkDelete, BulkDone, BulkRetry, FinishedState, JobDeleted, RetryableState};
pub use control::{
    BroadcastAck, BroadcastRequest, Broadcasted, KillMode, KillRequest, WorkerKilled,
};
pub use cron::{
    AddSchedule, Missed, Overlap, Schedule, ScheduleAdded, ScheduleCounters, ScheduleList,
    SchedulePause, ScheduleSource,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail, UnknownCode};
pub use jobs::{
    AfterPolicy, Attempt, BatchRequest, BatchSubmitted, EventsQuery, Job, JobError, JobId, JobPage,
    JobPending, JobResult, JobState, JobStateView, ListQuery, Millis, SubmitRequest, Submitted,
    Unique, WaitQuery,
};
pub use logs::{
    parse_log_cursor, JobLogs, LogLine, LogStream, LogsQuery, DEFAULT_LOG_PAGE, MAX_LOG_PAGE,
};
pub use nodes::{
    AfterDrain, DrainRequest, Node, NodeDrain, NodeList, NodeState, DEFAULT_DRAIN_DEADLINE_MS,
    MAX_DRAIN_DEADLINE_MS,
};
pub use ops::{
    Health, Isolation, Pool, PoolKind, PoolList, Recycled, ResizeRequest, Resized, Worker,
    WorkerList, WorkerState,
};
pub use queues::{PausedQueue, PausedQueueList, QueueKind, QueueStatus};
pub use retry::Backoff;
pub use stats::{StatsPoint, StatsQuery, StatsSeries, StatsStep};
pub use throttle::{Held, HeldReason, Limit, LimitList, Rate};
