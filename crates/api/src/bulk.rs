//! Deleting one job and retrying or deleting many by a filter.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{JobId, JobState};

/// A state a bulk retry takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetryableState {
    /// Failed for good.
    Dead,
    /// Cancelled.
    Cancelled,
}

/// A state a bulk delete takes: the job is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinishedState {
    /// Done, with a result.
    Succeeded,
    /// Failed for good.
    Dead,
    /// Cancelled.
    Cancelled,
}

/// The body of `POST /v1/jobs/retry`: which jobs to queue again with a fresh round of
/// attempts (numbered on after the earlier ones).
/// Every condition given must hold; at most `limit` jobs (oldest first) in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRetry {
    /// Jobs in one of these states.
    #[schema(min_items = 1, max_items = 2)]
    pub states: Vec<RetryableState>,
    /// Only jobs of this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Only jobs of this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Only jobs submitted at or after this time (ms since the epoch).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 0, maximum = 253_402_300_799_999_i64)]
    pub since: Option<i64>,
    /// Only jobs submitted before this time (ms since the epoch).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 0, maximum = 253_402_300_799_999_i64)]
    pub until: Option<i64>,
    /// At most this many jobs (default and maximum 10,000).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// The body of `POST /v1/jobs/delete`: which finished jobs to delete with their attempts.
/// Every condition given must hold; at most `limit` jobs (oldest first) in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDelete {
    /// Jobs in one of these states.
    #[schema(min_items = 1, max_items = 3)]
    pub states: Vec<FinishedState>,
    /// Only jobs of this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Only jobs of this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Only jobs submitted at or after this time (ms since the epoch).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 0, maximum = 253_402_300_799_999_i64)]
    pub since: Option<i64>,
    /// Only jobs submitted before this time (ms since the epoch).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 0, maximum = 253_402_300_799_999_i64)]
    pub until: Option<i64>,
    /// At most this many jobs (default and maximum 10,000).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// The answer to a bulk retry or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkDone {
    /// Jobs changed.
    pub affected: u64,
    /// More jobs match (the call stopped at its limit): send it again.
    pub more: bool,
}

/// The answer to `DELETE /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobDeleted {
    /// The job.
    #[schema(value_type = String, format = Uuid)]
    pub id: JobId,
    /// The state it had.
    pub state: JobState,
}
