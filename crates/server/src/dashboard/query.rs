//! The jobs list's query as the page's form sends it, its times, and the page of jobs it
//! shows: shared by the pages, the actions and the views (a leaf: it renders nothing).

use offload_api::Job;
use serde::Deserialize;

use super::layout;
use crate::error::ApiError;

/// The filters of the jobs page, as the form sends them (empty fields mean "any").
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct JobsQuery {
    pub(crate) state: Option<String>,
    pub(crate) job: Option<String>,
    /// Only the runs of this cron schedule.
    pub(crate) schedule: Option<String>,
    /// Created at or after (`YYYY-MM-DDTHH:MM`, UTC).
    pub(crate) since: Option<String>,
    /// Created before (`YYYY-MM-DDTHH:MM`, UTC).
    pub(crate) until: Option<String>,
    /// A job id to open.
    pub(crate) id: Option<String>,
    pub(crate) cursor: Option<String>,
}

impl JobsQuery {
    pub(crate) fn field(v: Option<&String>) -> Option<&str> {
        v.map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// The query string that repeats these filters (for the partial and the next page).
    pub(crate) fn to_query(&self, cursor: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("state", &self.state),
            ("job", &self.job),
            ("schedule", &self.schedule),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(v) = Self::field(v.as_ref()) {
                parts.push(format!("{k}={}", layout::encode(v)));
            }
        }
        if let Some(c) = cursor {
            parts.push(format!("cursor={}", layout::encode(c)));
        }
        parts.join("&")
    }
}

/// A `datetime-local` value (UTC) as ms since the epoch.
pub(crate) fn parse_time(field: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"];
    formats
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(v, f).ok())
        .map(|t| Some(t.and_utc().timestamp_millis()))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{field}: {v:?} is not a time like 2026-12-04T09:30 (UTC)"
            ))
        })
}

/// What the jobs table shows: a page of the store's list, newest first.
pub(crate) struct JobsView {
    pub(crate) jobs: Vec<Job>,
    pub(crate) next: Option<String>,
}
